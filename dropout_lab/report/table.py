"""The end-of-sweep table: one row per grid point (seeds averaged), grouped by dropout.p.

Columns are metric names of :mod:`dropout_lab.comparison.metrics` (the same words as
``compare``): the core numbers, the correlation of every hidden layer, the ablation AUC, and
the health flags of the row's trials."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from typing import Any

from rich.table import Table

from dropout_lab.comparison.metrics import metric, present_metrics
from dropout_lab.comparison.values import order_key
from dropout_lab.config import P_KEY
from dropout_lab.result import Status
from dropout_lab.safe_text import markup

BASE_COLUMNS = ("test_acc", "train_acc", "gap_acc", "gap_loss")


def columns(results: list[dict[str, Any]]) -> list[str]:
    """The metric columns: core numbers, corr[l] of every hidden layer, ablation_auc."""
    present = present_metrics(r for r in results if r.get("status") == Status.DONE)
    return [*BASE_COLUMNS, *(m for m in present if m.startswith("corr[")),
            *(m for m in ("ablation_auc",) if m in present)]


def health_text(counts: Counter[str], done: int) -> str:
    """'collapsed 2/2, dead_units 1/2', or '' for a healthy row."""
    return ", ".join(f"{f} {n}/{done}" for f, n in sorted(counts.items()))


def _fmt_value(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def group_rows(results: list[dict[str, Any]], axes: list[str]) -> list[dict[str, Any]]:
    """Average finished trials over seeds for every combination of the other axes."""
    keys = [a for a in axes if a != "seed"]
    if P_KEY in keys:  # p first: the table is read p by p
        keys = [P_KEY] + [k for k in keys if k != P_KEY]
    shown = columns(results)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    values: dict[tuple[str, ...], list[Any]] = {}  # the axis values of each row, for ordering
    for r in results:
        params = [r.get("params", {}).get(k) for k in keys]
        key = tuple(_fmt_value(v) for v in params)
        values.setdefault(key, params)
        groups[key].append(r)
    rows = []
    # numbers numerically, model sizes by depth then width ([32] before [128]), last axis first
    for key in sorted(values, key=lambda k: tuple(order_key(v) for v in values[k][::-1])):
        members = groups[key]
        done = [r for r in members if r.get("status") == Status.DONE]
        row: dict[str, Any] = {"params": dict(zip(keys, key, strict=False)), "n": len(done),
                               "of": len(members), "values": {},
                               "health": Counter(f for r in done for f in
                                                 (r.get("health") or {}).get("flags") or [])}
        for name in shown:
            extracted = [metric(name).extract(r) for r in done]
            vals = [v for v in extracted if v is not None]
            row["values"][name] = statistics.fmean(vals) if vals else None
        rows.append(row)
    return rows


def results_table(results: list[dict[str, Any]], axes: list[str], title: str) -> Table:
    rows = group_rows(results, axes)
    present = [t for t in columns(results) if any(r["values"][t] is not None for r in rows)]
    flagged = any(r["health"] for r in rows)
    table = Table(title=title, title_justify="left")
    for k in (rows[0]["params"] if rows else {}):
        table.add_column(k, justify="right")
    table.add_column("seeds", justify="right")
    for t in present:
        table.add_column(t, justify="right")
    if flagged:
        table.add_column("health", justify="left")
    for row in rows:
        seeds = f"{row['n']}/{row['of']}"
        cells = [f"{row['values'][t]:.4f}" if row["values"][t] is not None else "-"
                 for t in present]
        if flagged:
            cells.append(f"[yellow]{health_text(row['health'], row['n'])}")
        table.add_row(*map(markup, row["params"].values()),
                      seeds if row["n"] == row["of"] else f"[red]{seeds}", *cells)
    if flagged:
        table.caption = "health flags: see docs/metrics.md#health-flags"
    return table
