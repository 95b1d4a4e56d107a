"""The end-of-sweep table: one row per grid point (seeds averaged), grouped by dropout.p.

The rows are those of the comparison model (:mod:`dropout_lab.comparison.model`), built from
the sweep's results with ``compare``'s defaults: the same trials enter the same means, so the
table and ``compare`` cannot disagree (collapsed trials are left out of both; the seeds column
says how many trials a mean is over). Columns are metric names of
:mod:`dropout_lab.comparison.metric_names` (the same words as ``compare``): the core numbers, the
correlation of every hidden layer, the ablation AUC, and the health flags of the row's
trials."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from dropout_lab.comparison.metric_names import present_metrics
from dropout_lab.comparison.model import Comparison, SweepData, TrialRecord, build
from dropout_lab.config import P_KEY
from dropout_lab.report.cells import fmt_number
from dropout_lab.result import Status
from dropout_lab.safe_text import markup

BASE_COLUMNS = ("test_acc", "train_acc", "gap_acc", "gap_loss")


def columns(results: list[dict[str, Any]]) -> list[str]:
    """The metric columns: core numbers, corr[l] of every hidden layer, ablation_auc, and
    concrete dropout's learned_p[l] of every unit layer that learned one."""
    present = present_metrics(r for r in results if r.get("status") == Status.DONE)
    return [*(m for m in BASE_COLUMNS if m in present),
            *(m for m in present if m.startswith("corr[")),
            *(m for m in ("ablation_auc",) if m in present),
            *(m for m in present if m.startswith("learned_p["))]


def health_text(counts: Counter[str] | dict[str, int], done: int) -> str:
    """'collapsed 2/2, dead_units 1/2', or '' for a healthy row."""
    return ", ".join(f"{f} {n}/{done}" for f, n in sorted(counts.items()))


def _fmt_value(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def comparison_of(results: list[dict[str, Any]], axes: list[str],
                  base_config: dict[str, Any] | None = None) -> Comparison:
    """The comparison model of a sweep's results (grid order), grouped by dropout.p when it
    is an axis (else by the first other axis), with compare's defaults."""
    by = P_KEY if P_KEY in axes else next((a for a in axes if a != "seed"), P_KEY)
    base = copy.deepcopy(base_config or {})
    if by == P_KEY and P_KEY not in axes:  # one row: p as the config fixes it (or unknown)
        base.setdefault("dropout", {}).setdefault("p", None)
    trials = [TrialRecord(str(r.get("trial_id", "")), dict(r.get("params") or {}), r)
              for r in results]
    data = SweepData(str(base.get("name") or "sweep"), Path("."), {a: [] for a in axes},
                     base, trials)
    return build(data, by=by, metrics=columns(results) or ["test_acc"])


def group_rows(results: list[dict[str, Any]], axes: list[str],
               base_config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per combination of the non-seed axes (p first), from the comparison model:
    ``params`` (formatted axis values), ``n`` (trials in the means), ``of`` (trials of the
    grid point), ``excluded`` (collapsed trials left out), ``values`` (metric -> mean or
    None) and ``health`` (flag -> finished trials with it)."""
    comp = comparison_of(results, axes, base_config)
    keys = [a for a in axes if a != "seed"]
    if comp.by in keys:  # the grouping key first: the table is read p by p
        keys = [comp.by] + [k for k in keys if k != comp.by]
    shown = columns(results)
    rows = []
    for block in comp.blocks:
        for row in block.rows:
            values = {comp.by: row.value, **block.selectors}
            rows.append({
                "params": {k: _fmt_value(values.get(k)) for k in keys},
                "n": row.used, "of": row.total, "done": row.done, "excluded": row.excluded,
                "values": {name: row.cells[name].summary.mean for name in shown},
                "health": Counter(row.flags),
            })
    return rows


def results_table(results: list[dict[str, Any]], axes: list[str], title: str,
                  base_config: dict[str, Any] | None = None) -> Table:
    rows = group_rows(results, axes, base_config)
    present = columns(results)  # "-" where every trial of a row collapsed
    flagged = any(r["health"] for r in rows)
    excluded = any(r["excluded"] for r in rows)
    table = Table(title=title, title_justify="left")
    for k in (rows[0]["params"] if rows else {}):
        table.add_column(escape(k), justify="right")
    table.add_column("seeds", justify="right")
    for t in present:
        table.add_column(escape(t), justify="right")
    if flagged:
        table.add_column("health", justify="left")
    for row in rows:
        seeds = f"{row['n']}/{row['of']}"
        cells = [fmt_number(row["values"][t]) if row["values"][t] is not None else "-"
                 for t in present]
        if flagged:
            cells.append(f"[yellow]{health_text(row['health'], row['done'])}")
        table.add_row(*map(markup, row["params"].values()),
                      seeds if row["n"] == row["of"] else f"[red]{seeds}", *cells)
    notes = []
    if excluded:
        notes.append("seeds = trials in the means / trials of the point;\n"
                     "collapsed trials are left out, as in compare")
    if flagged:
        notes.append("health flags: see docs/metrics.md#health-flags")
    if notes:
        table.caption = "\n".join(notes)
    return table
