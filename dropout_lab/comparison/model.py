"""The comparison model: the values of one axis (default ``dropout.p``) side by side, block by
block, with statistics over seeds. No rendering and no I/O here: :func:`build` takes the
trials already read (:mod:`dropout_lab.comparison.source`) and returns plain data that every
renderer (rich, markdown, csv, json, html, plots) and ``--expect`` read.

A *block* is one combination of the other swept axes except ``seed`` (e.g. one model size on
one data set). Inside a block there is one *row* per value of the grouping key; for every
metric a row holds the mean over seeds with its Student t interval, and the paired difference
against the baseline row of the same block (trials paired by seed), with the smallest
difference the seeds could detect. The best row by one metric is marked, with the rows whose
paired difference from it has an interval containing 0.

Which epoch: ``at`` selects each trial's numbers at the last epoch, at its best epoch by
validation accuracy, or at a fixed epoch (:mod:`dropout_lab.comparison.selection`). Health:
trials flagged ``collapsed`` are left out of the statistics unless ``include_collapsed``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropout_lab.comparison.metric_names import METRICS, choose_metrics, metric, present_metrics
from dropout_lab.comparison.selection import At, select
from dropout_lab.comparison.values import canon, dotted, fmt_value, order_key, parse_value
from dropout_lab.config import P_KEY
from dropout_lab.environment import describe_code
from dropout_lab.errors import CompareError
from dropout_lab.result import UNSUCCESSFUL, Status
from dropout_lab.stats import (
    DEFAULT_LEVEL,
    DEFAULT_POWER,
    Paired,
    Summary,
    min_detectable_difference,
    paired_difference,
    summarize,
)


# -- what the store holds of a sweep ------------------------------------------------------------
@dataclass
class TrialRecord:
    """One trial of the sweep as read from the runs directory."""

    trial_id: str
    params: dict[str, Any]  # from the grid (sweep.yaml), never from the result file
    result: dict[str, Any]  # result.json ({"status": "pending"} when absent)
    epochs: list[dict[str, Any]] | None = None  # metrics.jsonl rows, when read
    weights: dict[str, Any] | None = None  # weights.npz arrays, when read

    @property
    def status(self) -> str:
        return str(self.result.get("status", Status.PENDING))

    @property
    def flags(self) -> list[str]:
        return list((self.result.get("health") or {}).get("flags") or [])


@dataclass
class SweepData:
    """A sweep read once: its name, folder, axes, base config and every trial of the grid."""

    name: str
    sweep_dir: Path
    axes: dict[str, list[Any]]
    base_config: dict[str, Any]
    trials: list[TrialRecord]


# -- the comparison ------------------------------------------------------------------------------
@dataclass
class Cell:
    """One metric in one row: the summary over seeds, the paired difference against the
    baseline (None in the baseline row or without one) and the smallest difference the paired
    seeds could detect (``mdd``, at DEFAULT_POWER; None when undefined)."""

    summary: Summary
    diff: Paired | None
    per_seed: dict[Any, float]
    mdd: float | None = None


@dataclass
class Row:
    value: Any
    done: int  # finished trials (status done), collapsed ones included
    total: int
    failed: int
    seeds: list[Any]  # seeds of the trials in the statistics
    cells: dict[str, Cell]
    flags: dict[str, int] = field(default_factory=dict)  # health flag -> finished trials with it
    excluded: int = 0  # collapsed trials left out of the statistics
    epochs: list[int] = field(default_factory=list)  # the selected epoch of each trial used
    best: bool = False
    tie: bool = False  # not distinguishable from the best row
    is_baseline: bool = False
    records: list[TrialRecord] = field(default_factory=list)  # the trials in the statistics

    @property
    def used(self) -> int:
        return self.done - self.excluded

    @property
    def results(self) -> list[dict[str, Any]]:
        """The (epoch-selected) results of the trials in the statistics."""
        return [r.result for r in self.records]


@dataclass
class Block:
    selectors: dict[str, Any]
    rows: list[Row]
    best_value: Any = None
    tie_values: list[Any] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={fmt_value(v)}" for k, v in self.selectors.items()) or "all trials"

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
    metrics: list[str]  # shown
    best_by: str
    block_axes: list[str]
    blocks: list[Block]
    values: list[Any]  # every value of the grouping key, in order
    present: list[str]  # every metric with at least one value in the results
    at: At = "last"
    include_collapsed: bool = False
    axes: dict[str, list[Any]] = field(default_factory=dict)
    base_config: dict[str, Any] = field(default_factory=dict)
    power: float = DEFAULT_POWER
    # the code versions (environment.describe_code) of the finished trials, most trials first;
    # more than one: the comparison mixes code versions (a note says so)
    code_versions: dict[str, int] = field(default_factory=dict)
    # every trial read, whatever its status (a search's figure marks the pruned ones)
    trials: list[TrialRecord] = field(default_factory=list)

    def matching_blocks(self, selectors: dict[str, Any]) -> list[Block]:
        """Blocks whose selectors agree with ``selectors`` (a subset of the block axes)."""
        want = {k: canon(v) for k, v in selectors.items()}
        return [b for b in self.blocks
                if all(canon(b.selectors.get(k)) == v for k, v in want.items())]

    @property
    def rows(self) -> list[Row]:
        return [r for b in self.blocks for r in b.rows]

    @property
    def flagged(self) -> bool:
        return any(r.flags for r in self.rows)


def _seed_of(record: TrialRecord, default: Any) -> Any:
    return record.params.get("seed", default)


def build(data: SweepData, by: str = P_KEY, baseline: str | Any | None = None,
          metrics: list[str] | None = None, best_by: str = "test_acc",
          level: float = DEFAULT_LEVEL, at: At = "last", include_collapsed: bool = False,
          power: float = DEFAULT_POWER) -> Comparison:
    """Group the trials of ``data`` into blocks and rows and compute the statistics.

    ``baseline`` may be a string typed by the user (read as YAML) or a value; default: the
    smallest value of ``by``. ``metrics``: names, ``["all"]`` for every metric present, or None
    for the defaults (core four, per-layer correlations, statistics present)."""
    _check_options(data, by, level, power)
    best_metric = metric(best_by)
    if best_metric.better is None:
        raise CompareError(f"--best-by {best_by}: this metric has no better direction; "
                           "pick one of " + ", ".join(m for m, d in METRICS.items() if d.better))
    block_axes = [a for a in data.axes if a not in (by, "seed")]
    # Every finished trial, with its numbers at the selected epoch.
    selected = {rec.trial_id: TrialRecord(rec.trial_id, rec.params, select(rec, at), rec.epochs,
                                          rec.weights)
                for rec in data.trials if rec.status == Status.DONE}
    present = present_metrics(r.result for r in selected.values())
    chosen = choose_metrics(metrics, present)
    grouping = _Grouping.of(data, by, block_axes)
    base_value = _baseline_value(baseline, grouping.values, grouping.row_val, by)
    rows = _RowMaker(selected, list(dict.fromkeys([*chosen, *present, best_by])), level,
                     include_collapsed, data.base_config.get("seed", 0), base_value)
    blocks = []
    for bkey in grouping.block_keys():
        block = Block(grouping.block_sel[bkey], [rows.make(grouping.row_val[rkey], members)
                                                 for rkey, members in grouping.rows(bkey)])
        _pair_with_baseline(block, base_value, level, [*chosen, best_by], power)
        _mark_best(block, best_metric.name, best_metric.better, level)
        blocks.append(block)
    versions = Counter(describe_code(_env(rec.result).get("code"))
                       for rec in selected.values() if "code" in _env(rec.result))
    return Comparison(name=str(data.base_config.get("name") or data.name),
                      sweep_dir=data.sweep_dir, by=by, baseline=base_value,
                      level=level, metrics=chosen, best_by=best_by, block_axes=block_axes,
                      blocks=blocks, values=grouping.values, present=present, at=at,
                      include_collapsed=include_collapsed, axes=data.axes,
                      base_config=data.base_config, power=power,
                      code_versions=dict(versions.most_common()), trials=data.trials)


def _check_options(data: SweepData, by: str, level: float, power: float) -> None:
    """CompareError for a level or power outside (0, 1) or a ``--by`` that is no key."""
    if not 0.0 < level < 1.0:
        raise CompareError(f"confidence level {level} is outside (0, 1)")
    if not 0.0 < power < 1.0:
        raise CompareError(f"--power {power}: a probability of detecting a difference, in (0, 1)")
    if by == "seed":
        raise CompareError("--by seed: seeds are what the statistics average over; "
                           "group by another axis")
    if by not in data.axes and not dotted(data.base_config, by)[0]:
        raise CompareError(f"--by {by}: not an axis or config key of this sweep; "
                           f"axes: {', '.join(data.axes) or 'none'}")


@dataclass
class _Grouping:
    """Every trial (finished or not) in its block (the other axes' values) and row (the value
    of ``by``); keys are canonical texts of the values, for equality across types."""

    block_axes: list[str]
    groups: dict[str, dict[str, list[TrialRecord]]]  # block key -> row key -> trials
    block_sel: dict[str, dict[str, Any]]  # block key -> {axis: value}
    row_val: dict[str, Any]  # row key -> the value of ``by``
    values: list[Any]  # the values of ``by``, in order

    @classmethod
    def of(cls, data: SweepData, by: str, block_axes: list[str]) -> _Grouping:
        def value_of(record: TrialRecord, key: str) -> Any:
            if key in record.params:
                return record.params[key]
            return dotted(data.base_config, key)[1]

        grouping = cls(block_axes, {}, {}, {}, [])
        for rec in data.trials:
            sel = {a: value_of(rec, a) for a in block_axes}
            bkey = canon([sel[a] for a in block_axes])
            grouping.block_sel.setdefault(bkey, sel)
            v = value_of(rec, by)
            grouping.row_val.setdefault(canon(v), v)
            grouping.groups.setdefault(bkey, {}).setdefault(canon(v), []).append(rec)
        grouping.values = sorted(grouping.row_val.values(), key=order_key)
        if not grouping.values:
            raise CompareError(f"{data.sweep_dir}: the sweep has no trials")
        return grouping

    def block_keys(self) -> list[str]:
        return sorted(self.groups, key=lambda k: tuple(order_key(self.block_sel[k][a])
                                                       for a in self.block_axes))

    def rows(self, bkey: str) -> list[tuple[str, list[TrialRecord]]]:
        """(row key, its trials) of one block, in the order of the values of ``by``."""
        block = self.groups[bkey]
        return [(k, block[k]) for k in sorted(block, key=lambda k: order_key(self.row_val[k]))]


@dataclass
class _RowMaker:
    """Builds one :class:`Row`: the statistics over seeds of the finished trials of one value."""

    selected: dict[str, TrialRecord]  # finished trials at the selected epoch, by id
    for_stats: list[str]  # the metrics summarized (shown ones, present ones, --best-by)
    level: float
    include_collapsed: bool
    seed_default: Any  # the seed of a trial whose params do not name one
    base_value: Any

    def make(self, value: Any, members: list[TrialRecord]) -> Row:
        done = [self.selected[m.trial_id] for m in members if m.trial_id in self.selected]
        flags = Counter(f for rec in done for f in rec.flags)
        used = [r for r in done if self.include_collapsed or "collapsed" not in r.flags]
        cells = {}
        for name in self.for_stats:
            m = metric(name)
            per_seed = {}
            for rec in used:
                x = m.extract(rec.result)
                if x is not None:
                    per_seed[_seed_of(rec, self.seed_default)] = x
            cells[name] = Cell(summarize(per_seed.values(), self.level), None, per_seed)
        return Row(
            value=value, done=len(done), total=len(members),
            failed=sum(m.status in UNSUCCESSFUL for m in members),
            seeds=sorted({_seed_of(r, self.seed_default) for r in used}, key=order_key),
            cells=cells, flags=dict(sorted(flags.items())), excluded=len(done) - len(used),
            epochs=[int(r.result.get("selected_epoch") or 0) for r in used],
            is_baseline=canon(value) == canon(self.base_value), records=used)


def _env(result: dict[str, Any]) -> dict[str, Any]:
    env = result.get("env")
    return env if isinstance(env, dict) else {}


def _baseline_value(baseline: Any, values: list[Any], row_val: dict[str, Any], by: str) -> Any:
    if baseline is None:
        return values[0]
    value = parse_value(baseline) if isinstance(baseline, str) else baseline
    if canon(value) not in row_val:
        raise CompareError(f"--baseline {fmt_value(value)}: {by} takes the values "
                           + ", ".join(fmt_value(v) for v in values))
    return row_val[canon(value)]


def _pair_with_baseline(block: Block, base_value: Any, level: float, shown: list[str],
                        power: float) -> None:
    base = block.row(base_value)
    if base is None:
        return
    for row in block.rows:
        if row is base:
            continue
        for name, cell in row.cells.items():
            cell.diff = paired_difference(cell.per_seed, base.cells[name].per_seed, level)
            if name in shown:  # shown cells only: the JSON and CSV carry them
                s = cell.diff.summary
                # no spread (sd 0 up to rounding, e.g. 7e-16): nothing to size a difference by
                cell.mdd = (None if s.sd is None or s.no_spread else
                            min_detectable_difference(s.sd, s.n, level, power))


def _mark_best(block: Block, name: str, better: str | None, level: float) -> None:
    """Best row by the metric's mean; ties: rows whose paired CI of (row - best) contains 0."""
    means = [(r, r.cells[name].summary.mean) for r in block.rows]
    scored = [(r, x) for r, x in means if x is not None]
    if not scored:
        return
    sign = 1.0 if better == "higher" else -1.0
    best = max(scored, key=lambda rx: sign * rx[1])[0]
    best.best = True
    block.best_value = best.value
    for row, _ in scored:
        if row is best:
            continue
        d = paired_difference(row.cells[name].per_seed, best.cells[name].per_seed, level)
        if not d.summary.excludes_zero:  # also when undefined (n < 2): not shown to differ
            row.tie = True
            block.tie_values.append(row.value)
