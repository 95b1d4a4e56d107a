"""Compare the values of one axis (default ``dropout.p``) across seeds, block by block.

A *block* is one combination of the other swept axes except ``seed`` (e.g. one model size on
one data set). Inside a block there is one *row* per value of the grouping key; for every
metric a row holds the mean over seeds with its Student t interval, and the paired difference
against the baseline row of the same block (trials paired by seed). The best row by one metric
is marked, with the rows whose paired difference from it has an interval containing 0.

This module builds that structure (``build_comparison``) and renders it in four formats
(``FORMATS``: rich, csv, json, markdown). ``docs/compare.md`` documents the JSON schema.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Group
from rich.table import Table
from rich.text import Text

from dropout_lab.errors import CompareError
from dropout_lab.stats import DEFAULT_LEVEL, Paired, Summary, paired_difference, summarize
from dropout_lab.store import SweepStore

SCHEMA = "dropout-lab.compare/1"
DEFAULT_BY = "dropout.p"


# -- metrics: short names for the numbers stored in result.json --------------------------------
@dataclass(frozen=True)
class Metric:
    """A number read from result.json. ``better`` is 'higher', 'lower' or None (no direction)."""

    name: str
    path: tuple[str | int, ...]
    description: str
    better: str | None = None
    core: bool = False

    def extract(self, result: dict[str, Any]) -> float | None:
        node: Any = result
        for step in self.path:
            if isinstance(step, int):
                if not isinstance(node, list) or not node:
                    return None
                node = node[step]
            else:
                if not isinstance(node, dict):
                    return None
                node = node.get(step)
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            return None
        return float(node) if math.isfinite(node) else None


def _last(key: str) -> tuple[str | int, ...]:
    return ("coadaptation", "layers", -1, key)


# The registry of metric names (tables, --metric, --best-by and --expect all use these).
METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("test_acc", ("final", "test_acc"), "test accuracy after the last epoch", "higher", True),
    Metric("gap_acc", ("final", "gap_acc"), "train_acc - test_acc", "lower", True),
    Metric("gap_loss", ("final", "gap_loss"), "test_loss - train_loss", "lower", True),
    Metric("train_acc", ("final", "train_acc"), "training accuracy (no dropout)", "higher", True),
    Metric("test_loss", ("final", "test_loss"), "test cross-entropy", "lower"),
    Metric("train_loss", ("final", "train_loss"), "training cross-entropy (no dropout)", "lower"),
    Metric("corr_last", _last("mean_abs_corr"),
           "mean |correlation| between units of the last hidden layer", "lower"),
    Metric("decov_last", _last("decov"), "DeCov penalty of the last hidden layer", "lower"),
    Metric("pr_last", _last("participation_ratio_norm"),
           "participation ratio / units, last hidden layer", "higher"),
    Metric("dead_last", _last("dead_fraction"), "fraction of dead units, last hidden layer",
           "lower"),
    Metric("zero_last", _last("zero_fraction"), "fraction of zero activations, last hidden layer"),
    Metric("selectivity_last", _last("selectivity"), "mean class selectivity, last hidden layer"),
    Metric("ablation_auc", ("coadaptation", "ablation", "auc"),
           "area under the accuracy-vs-fraction-ablated curve", "higher"),
    Metric("synergy", ("coadaptation", "ablation", "pair_synergy", "mean"),
           "mean pairwise ablation synergy", "lower"),
    Metric("mc_acc", ("uncertainty", "mc_acc"), "MC-dropout accuracy", "higher"),
    Metric("det_acc", ("uncertainty", "det_acc"), "deterministic accuracy (eval set)", "higher"),
    Metric("mc_nll", ("uncertainty", "mc_nll"), "MC-dropout negative log-likelihood", "lower"),
    Metric("det_nll", ("uncertainty", "det_nll"), "deterministic negative log-likelihood",
           "lower"),
    Metric("entropy", ("uncertainty", "predictive_entropy"), "mean predictive entropy (nats)"),
    Metric("mutual_information", ("uncertainty", "mutual_information"),
           "mean mutual information (epistemic part, nats)"),
    Metric("ece_det", ("uncertainty", "ece_det"), "expected calibration error, deterministic",
           "lower"),
    Metric("ece_mc", ("uncertainty", "ece_mc"), "expected calibration error, MC dropout", "lower"),
    Metric("brier_det", ("uncertainty", "brier_det"), "Brier score, deterministic", "lower"),
    Metric("brier_mc", ("uncertainty", "brier_mc"), "Brier score, MC dropout", "lower"),
]}

# Shown by default when the results contain them (after the core four).
DEFAULT_EXTRAS = ("corr_last", "ablation_auc", "synergy", "mc_acc", "ece_mc", "mutual_information")


def metric(name: str) -> Metric:
    """The metric called ``name``; CompareError with a suggestion for a typo."""
    if name in METRICS:
        return METRICS[name]
    close = difflib.get_close_matches(name, list(METRICS), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(METRICS)}"
    raise CompareError(f"unknown metric '{name}'{hint}")


# -- values of an axis: canonical keys, display, order -----------------------------------------
def canon(value: Any) -> str:
    """A key under which 0 and 0.0 (and [256] and [256.0]) are the same axis value."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(float(value))
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canon(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{canon(v)}" for k, v in sorted(value.items())) + "}"
    return json.dumps(str(value))


def show(value: Any) -> str:
    """How an axis value is printed: 0.5, [256, 256], digits."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def order_key(value: Any) -> tuple:
    """Numbers in numeric order, then lists (by length, then elementwise), then text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, (list, tuple)):
        return (1, len(value), tuple(order_key(v) for v in value))
    return (2, str(value))


def parse_value(text: str) -> Any:
    """A value typed on the command line, read as YAML (``0.5``, ``[256]``, ``digits``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _dotted(doc: dict[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


# -- the comparison structure ------------------------------------------------------------------
@dataclass
class Cell:
    """One metric in one row: the summary over seeds and the paired difference vs baseline."""

    summary: Summary
    diff: Paired | None  # None in the baseline row, or when the block has no baseline row
    per_seed: dict[Any, float]


@dataclass
class Row:
    value: Any
    done: int
    total: int
    failed: int
    seeds: list[Any]
    cells: dict[str, Cell]
    best: bool = False
    tie: bool = False  # not distinguishable from the best row
    is_baseline: bool = False
    results: list[dict[str, Any]] = field(default_factory=list)  # the finished trials (plots)


@dataclass
class Block:
    selectors: dict[str, Any]
    rows: list[Row]
    best_value: Any = None
    tie_values: list[Any] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={show(v)}" for k, v in self.selectors.items()) or "all trials"

    def row(self, value: Any) -> Row | None:
        key = canon(value)
        return next((r for r in self.rows if canon(r.value) == key), None)


@dataclass
class Comparison:
    name: str
    sweep_dir: Path
    by: str
    baseline: Any
    level: float
    metrics: list[str]
    best_by: str
    block_axes: list[str]
    blocks: list[Block]
    values: list[Any]  # every value of the grouping key, in order
    present: list[str]  # every metric with at least one value in the results

    def matching_blocks(self, selectors: dict[str, Any]) -> list[Block]:
        """Blocks whose selectors agree with ``selectors`` (a subset of the block axes)."""
        want = {k: canon(v) for k, v in selectors.items()}
        return [b for b in self.blocks
                if all(canon(b.selectors.get(k)) == v for k, v in want.items())]


def build_comparison(sweep_dir: Path, by: str = DEFAULT_BY, baseline: str | Any | None = None,
                     metrics: list[str] | None = None, best_by: str = "test_acc",
                     level: float = DEFAULT_LEVEL) -> Comparison:
    """Group the finished trials of ``sweep_dir`` into blocks and rows and compute statistics.

    ``baseline`` may be a string typed by the user (read as YAML) or a value; default: the
    smallest value of ``by``. ``metrics``: names, ``["all"]`` for every metric present, or None
    for the core four plus the default extras present in the results.
    """
    if not 0.0 < level < 1.0:
        raise CompareError(f"confidence level {level} is outside (0, 1)")
    store = SweepStore(Path(sweep_dir))
    doc = store.read_sweep()
    axes = list((doc.get("sweep") or {}).keys())
    base_config = doc.get("config") or {}
    results = store.results()

    def value_of(result: dict[str, Any], key: str) -> Any:
        params = result.get("params") or {}
        if key in params:
            return params[key]
        return _dotted(base_config, key)[1]

    if by == "seed":
        raise CompareError("--by seed: seeds are what the statistics average over; "
                           "group by another axis")
    if by not in axes and not _dotted(base_config, by)[0]:
        raise CompareError(f"--by {by}: not an axis or config key of this sweep; "
                           f"axes: {', '.join(axes) or 'none'}")
    block_axes = [a for a in axes if a not in (by, "seed")]

    best_metric = metric(best_by)
    if best_metric.better is None:
        raise CompareError(f"--best-by {best_by}: this metric has no better direction; "
                           "pick one of " + ", ".join(m for m, d in METRICS.items() if d.better))

    present = [m.name for m in METRICS.values()
               if any(r.get("status") == "done" and m.extract(r) is not None for r in results)]
    chosen = _choose_metrics(metrics, present)
    # statistics for every metric present (expectations may name any), shown or not
    chosen_for_stats = list(dict.fromkeys([*chosen, *present, best_by]))

    # group: block key -> row key -> results
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    block_sel: dict[str, dict[str, Any]] = {}
    row_val: dict[str, Any] = {}
    for r in results:
        sel = {a: value_of(r, a) for a in block_axes}
        bkey = canon([sel[a] for a in block_axes])
        block_sel.setdefault(bkey, sel)
        v = value_of(r, by)
        row_val.setdefault(canon(v), v)
        groups.setdefault(bkey, {}).setdefault(canon(v), []).append(r)

    values = sorted(row_val.values(), key=order_key)
    if not values:
        raise CompareError(f"{sweep_dir}: the sweep has no trials")
    if baseline is None:
        base_value = values[0]
    else:
        base_value = parse_value(baseline) if isinstance(baseline, str) else baseline
        if canon(base_value) not in row_val:
            raise CompareError(f"--baseline {show(base_value)}: {by} takes the values "
                               + ", ".join(show(v) for v in values))
        base_value = row_val[canon(base_value)]

    seed_default = base_config.get("seed", 0)
    blocks = []
    for bkey in sorted(groups, key=lambda k: tuple(order_key(block_sel[k][a])
                                                   for a in block_axes)):
        rows = []
        for rkey in sorted(groups[bkey], key=lambda k: order_key(row_val[k])):
            members = groups[bkey][rkey]
            done = [r for r in members if r.get("status") == "done"]
            cells = {}
            for name in chosen_for_stats:
                m = METRICS[name]
                per_seed = {}
                for r in done:
                    x = m.extract(r)
                    if x is not None:
                        per_seed[(r.get("params") or {}).get("seed", seed_default)] = x
                cells[name] = Cell(summarize(per_seed.values(), level), None, per_seed)
            rows.append(Row(
                value=row_val[rkey], done=len(done), total=len(members),
                failed=sum(r.get("status") in ("failed", "diverged") for r in members),
                seeds=sorted({(r.get("params") or {}).get("seed", seed_default) for r in done},
                             key=order_key),
                cells=cells, is_baseline=canon(row_val[rkey]) == canon(base_value),
                results=done))
        block = Block(block_sel[bkey], rows)
        _pair_with_baseline(block, base_value, level)
        _mark_best(block, best_metric, level)
        blocks.append(block)

    name = (base_config.get("name") if isinstance(base_config, dict) else None) \
        or Path(sweep_dir).name
    return Comparison(name=str(name), sweep_dir=Path(sweep_dir), by=by, baseline=base_value,
                      level=level, metrics=chosen, best_by=best_by, block_axes=block_axes,
                      blocks=blocks, values=values, present=present)


def _choose_metrics(requested: list[str] | None, present: list[str]) -> list[str]:
    if not requested:
        return [m.name for m in METRICS.values() if m.core] + \
            [m for m in DEFAULT_EXTRAS if m in present]
    if requested == ["all"]:
        return [m.name for m in METRICS.values() if m.core or m.name in present]
    chosen = []
    for name in requested:
        m = metric(name)
        if not m.core and m.name not in present:
            raise CompareError(f"metric '{name}' has no values in this sweep "
                               "(were the statistics turned off in eval?)")
        if name not in chosen:
            chosen.append(name)
    return chosen


def _pair_with_baseline(block: Block, base_value: Any, level: float) -> None:
    base = block.row(base_value)
    if base is None:
        return
    for row in block.rows:
        if row is base:
            continue
        for name, cell in row.cells.items():
            cell.diff = paired_difference(cell.per_seed, base.cells[name].per_seed, level)


def _mark_best(block: Block, m: Metric, level: float) -> None:
    """Best row by ``m``'s mean; ties: rows whose paired CI of (row - best) contains 0."""
    scored = [(r, r.cells[m.name].summary.mean) for r in block.rows]
    scored = [(r, x) for r, x in scored if x is not None]
    if not scored:
        return
    sign = 1.0 if m.better == "higher" else -1.0
    best = max(scored, key=lambda rx: sign * rx[1])[0]
    best.best = True
    block.best_value = best.value
    for row, _ in scored:
        if row is best:
            continue
        d = paired_difference(row.cells[m.name].per_seed, best.cells[m.name].per_seed, level)
        if not d.summary.excludes_zero:  # also when undefined (n < 2): not shown to differ
            row.tie = True
            block.tie_values.append(row.value)


# -- rendering ---------------------------------------------------------------------------------
def _f(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.4f}" if signed else f"{x:.4f}"


def _pm(s: Summary, signed: bool = False) -> str:
    """'0.9622 ± 0.0040' (mean ± half-width of the interval); '± -' when n < 2."""
    if s.mean is None:
        return "-"
    return f"{_f(s.mean, signed)} ± {_f(s.half_width)}"


def _pct(level: float) -> str:
    return f"{level * 100:g}%"


def legend(c: Comparison) -> str:
    return (f"mean ± half-width of the {_pct(c.level)} CI over seeds (Student t); "
            f"Δ = paired difference vs {c.by}={show(c.baseline)} at the same seeds; "
            f"* = the Δ interval excludes 0; ★ = best {c.by} by {c.best_by}; "
            "≈ = not distinguishable from the best (paired interval contains 0)")


def _value_mark(row: Row) -> str:
    return " ★" if row.best else (" ≈" if row.tie else "")


def render_rich(c: Comparison) -> Group:
    """One rich table per block; each cell: mean ± CI, then Δ vs baseline on a second line."""
    tables = []
    for block in c.blocks:
        title = f"{c.name}: {block.label}" if c.block_axes else c.name
        t = Table(title=title, title_justify="left", show_lines=True)
        t.add_column(c.by, justify="right", no_wrap=True)
        t.add_column("seeds", justify="right", no_wrap=True)
        for name in c.metrics:
            t.add_column(name, justify="right", no_wrap=True)
        for row in block.rows:
            label = Text(show(row.value) + _value_mark(row),
                         style="bold green" if row.best else ("green" if row.tie else ""))
            seeds = f"{row.done}/{row.total}"
            cells: list[Any] = [label, Text(seeds, style="" if row.done == row.total else "red")]
            for name in c.metrics:
                cell = row.cells[name]
                txt = Text(_pm(cell.summary))
                if row.is_baseline:
                    txt.append("\nbaseline", style="dim")
                elif cell.diff is not None:
                    sig = cell.diff.summary.excludes_zero
                    txt.append(f"\nΔ {_pm(cell.diff.summary, signed=True)}" + (" *" if sig else ""),
                               style="bold" if sig else "dim")
                cells.append(txt)
            t.add_row(*cells)
        tables.append(t)
    return Group(*tables, Text(legend(c), style="dim"))


def render_markdown(c: Comparison) -> str:
    """GitHub-flavoured markdown: one table per block, Δ in parentheses, significant in bold."""
    lines = [f"### {c.name}: {c.by} compared over seeds", ""]
    for block in c.blocks:
        if c.block_axes:
            lines += [f"**{block.label}**", ""]
        lines.append("| " + " | ".join([f"`{c.by}`", "seeds", *c.metrics]) + " |")
        lines.append("|" + "---:|" * (2 + len(c.metrics)))
        for row in block.rows:
            value = show(row.value)
            value = f"**{value}** ★" if row.best else (f"{value} ≈" if row.tie else value)
            cells = [value, f"{row.done}/{row.total}"]
            for name in c.metrics:
                cell = row.cells[name]
                text = _pm(cell.summary)
                if row.is_baseline:
                    text += " (baseline)"
                elif cell.diff is not None and cell.diff.summary.mean is not None:
                    d = f"Δ {_pm(cell.diff.summary, signed=True)}"
                    text += f" (**{d}**)" if cell.diff.summary.excludes_zero else f" ({d})"
                cells.append(text)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"_mean ± half-width of the {_pct(c.level)} CI over seeds (Student t); "
                 f"Δ = paired difference vs {c.by}={show(c.baseline)} at the same seeds, "
                 f"**bold** when its interval excludes 0; ★ = best {c.by} by {c.best_by}; "
                 "≈ = not distinguishable from the best._")
    return "\n".join(lines) + "\n"


def to_json_doc(c: Comparison) -> dict[str, Any]:
    """The stable JSON document (schema ``dropout-lab.compare/1``, see docs/compare.md)."""
    blocks = []
    for block in c.blocks:
        rows = []
        for row in block.rows:
            rows.append({
                "value": row.value,
                "trials": {"done": row.done, "failed": row.failed, "total": row.total},
                "seeds": row.seeds,
                "baseline": row.is_baseline,
                "best": row.best,
                "indistinguishable_from_best": row.tie,
                "metrics": {name: {**row.cells[name].summary.to_dict(),
                                   "diff": None if row.cells[name].diff is None
                                   else row.cells[name].diff.to_dict()}
                            for name in c.metrics},
            })
        blocks.append({"selectors": block.selectors, "rows": rows,
                       "best": None if block.best_value is None else
                       {"metric": c.best_by, "value": block.best_value,
                        "indistinguishable": block.tie_values}})
    return {"schema": SCHEMA, "sweep": c.name, "sweep_dir": str(c.sweep_dir), "by": c.by,
            "baseline": c.baseline, "confidence": c.level, "best_by": c.best_by,
            "metrics": c.metrics, "block_axes": c.block_axes, "blocks": blocks}


def render_json(c: Comparison) -> str:
    from dropout_lab.store import dumps

    return json.dumps(json.loads(dumps(to_json_doc(c))), indent=2) + "\n"


CSV_COLUMNS = ["block", "by", "value", "metric", "n", "mean", "sd", "ci_lo", "ci_hi",
               "diff_n", "diff_mean", "diff_sd", "diff_ci_lo", "diff_ci_hi", "diff_excludes_zero",
               "baseline", "best", "indistinguishable_from_best", "trials_done", "trials_total"]


def render_csv(c: Comparison) -> str:
    """Tidy CSV: one line per (block, value, metric); the block axes get a column each."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*c.block_axes, *CSV_COLUMNS])

    def cellv(v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, (list, dict)):
            return json.dumps(v)
        if isinstance(v, bool):
            return str(v).lower()
        return v

    for block in c.blocks:
        for row in block.rows:
            for name in c.metrics:
                s = row.cells[name].summary
                d = row.cells[name].diff
                ds = d.summary if d is not None else None
                w.writerow([cellv(block.selectors[a]) for a in c.block_axes] + [cellv(v) for v in [
                    block.label, c.by, row.value, name, s.n, s.mean, s.sd, s.lo, s.hi,
                    ds.n if ds else None, ds.mean if ds else None, ds.sd if ds else None,
                    ds.lo if ds else None, ds.hi if ds else None,
                    ds.excludes_zero if ds else None, row.is_baseline, row.best, row.tie,
                    row.done, row.total]])
    return buf.getvalue()


# The registry of output formats: name -> renderer (rich returns a renderable, others text).
FORMATS: dict[str, Callable[[Comparison], Any]] = {
    "rich": render_rich,
    "csv": render_csv,
    "json": render_json,
    "markdown": render_markdown,
}
