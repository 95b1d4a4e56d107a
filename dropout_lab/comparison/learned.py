"""Learned vs swept (issue 23): the p concrete dropout learns, set beside the optimum a sweep
of fixed p finds, over the same seeds.

A sweep that holds both (``dropout.variant`` an axis with ``concrete`` among its values, the
compared axis ``dropout.p``) has blocks of fixed-p trials and blocks of concrete trials, whose
``dropout.p`` is where the learned p started. For every concrete block and the fixed-p block
that agrees with it on every other axis:

* the swept optimum: the value of p with the best mean of the compared metric (``--best-by``,
  the block's ★ row), that mean with its t interval over seeds, and each seed's own best p;
* per starting p: the learned p of every unit layer (mean and interval over seeds), the
  metric, and its paired difference from the swept optimum at the seeds both have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dropout_lab import variants
from dropout_lab.comparison.metric_names import metric
from dropout_lab.comparison.model import Block, Comparison, Row
from dropout_lab.comparison.values import canon, dotted
from dropout_lab.stats import Paired, Summary, paired_difference, summarize

VARIANT_KEY = "dropout.variant"


@dataclass
class SweptOptimum:
    """The best fixed p of one block by the compared metric."""

    selectors: dict[str, Any]
    value: Any
    metric: Summary
    per_seed: dict[Any, float]  # the metric at the optimum, per seed
    seed_best: dict[Any, Any]  # each seed's own best value of p


@dataclass
class LearnedRow:
    """The concrete trials that started from one p."""

    start: Any
    seeds: list[Any]
    learned_p: list[Summary | None]  # per unit layer (0 = the input); None: not learned
    metric: Summary
    diff: Paired | None  # metric(learned) - metric(swept optimum), paired by seed


@dataclass
class LearnedVsSwept:
    """One concrete block beside its swept optimum (None when no block of fixed p matches)."""

    selectors: dict[str, Any]  # the concrete block's
    metric: str
    optimum: SweptOptimum | None
    rows: list[LearnedRow]


def variant_of(c: Comparison, block: Block) -> Any:
    """The dropout variant of a block: its selector, else the sweep's base config's."""
    if VARIANT_KEY in block.selectors:
        return block.selectors[VARIANT_KEY]
    found, value = dotted(c.base_config, VARIANT_KEY)
    return value if found else "inverted"


def learns_p(c: Comparison, block: Block) -> bool:
    """Whether the block's variant learns p (concrete dropout; the registry says)."""
    name = variant_of(c, block)
    return isinstance(name, str) and name in variants.names() and variants.get(name).relaxed


def _others(block: Block) -> Any:
    return canon({k: v for k, v in block.selectors.items() if k != VARIANT_KEY})


def learned_vs_swept(c: Comparison) -> list[LearnedVsSwept]:
    """Every concrete block of ``c`` beside its swept optimum ([] without concrete trials)."""
    if c.by == VARIANT_KEY:
        return []
    learned = [b for b in c.blocks if learns_p(c, b)]
    swept = [b for b in c.blocks if not learns_p(c, b)]
    out = []
    for block in learned:
        match = [b for b in swept if _others(b) == _others(block)]
        optimum = _optimum(c, match[0]) if len(match) == 1 else None
        rows = [_learned_row(c, row, optimum) for row in block.rows if row.used]
        out.append(LearnedVsSwept(block.selectors, c.best_by, optimum, rows))
    return out


def _optimum(c: Comparison, block: Block) -> SweptOptimum | None:
    if block.best_value is None:
        return None
    best = block.row(block.best_value)
    if best is None:
        return None
    cell = best.cells[c.best_by]
    return SweptOptimum(block.selectors, best.value, cell.summary, dict(cell.per_seed),
                        _seed_best(c, block.rows))


def _seed_best(c: Comparison, rows: list[Row]) -> dict[Any, Any]:
    """Each seed's best value of the compared axis by the compared metric (the first of
    equals in the axis' order)."""
    higher = metric(c.best_by).better == "higher"
    best: dict[Any, tuple[float, Any]] = {}
    for row in rows:
        for seed, x in row.cells[c.best_by].per_seed.items():
            if seed not in best or (x > best[seed][0] if higher else x < best[seed][0]):
                best[seed] = (x, row.value)
    return {s: v for s, (_, v) in best.items()}


def _learned_row(c: Comparison, row: Row, optimum: SweptOptimum | None) -> LearnedRow:
    lists = [rec.result.get("learned_p") for rec in row.records]
    width = max((len(p) for p in lists if isinstance(p, list)), default=0)
    per_layer: list[Summary | None] = []
    for layer in range(width):
        xs = [p[layer] for p in lists if isinstance(p, list) and len(p) > layer
              and isinstance(p[layer], (int, float))]
        per_layer.append(summarize(xs, c.level) if xs else None)
    cell = row.cells[c.best_by]
    diff = None if optimum is None else paired_difference(cell.per_seed, optimum.per_seed,
                                                          c.level)
    return LearnedRow(row.value, list(row.seeds), per_layer, cell.summary, diff)


def to_json(c: Comparison, entries: list[LearnedVsSwept]) -> list[dict[str, Any]]:
    """The JSON form (``learned_vs_swept`` in ``compare -f json``, docs/compare.md)."""
    docs = []
    for e in entries:
        opt = e.optimum
        docs.append({
            "selectors": e.selectors, "metric": e.metric,
            "swept_optimum": None if opt is None else {
                "selectors": opt.selectors, "value": opt.value, "metric": opt.metric.to_dict(),
                "seed_best": [{"seed": s, "value": v} for s, v in opt.seed_best.items()]},
            "rows": [{"start": r.start, "seeds": r.seeds,
                      "learned_p": [None if s is None else s.to_dict() for s in r.learned_p],
                      "metric": r.metric.to_dict(),
                      "diff": None if r.diff is None else r.diff.to_dict()}
                     for r in e.rows]})
    return docs
