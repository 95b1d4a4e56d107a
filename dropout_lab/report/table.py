"""The end-of-sweep table: one row per grid point (seeds averaged), grouped by dropout.p."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from typing import Any

from rich.table import Table

# (column title, function of a result -> number or None)
COLUMNS: list[tuple[str, Any]] = [
    ("test_acc", lambda r: (r.get("final") or {}).get("test_acc")),
    ("train_acc", lambda r: (r.get("final") or {}).get("train_acc")),
    ("gap_acc", lambda r: (r.get("final") or {}).get("gap_acc")),
    ("gap_loss", lambda r: (r.get("final") or {}).get("gap_loss")),
    ("corr(last)", lambda r: _last_layer(r, "mean_abs_corr")),
    ("ablation auc", lambda r: ((r.get("coadaptation") or {}).get("ablation") or {}).get("auc")),
]


def _last_layer(r: dict[str, Any], key: str) -> float | None:
    layers = (r.get("coadaptation") or {}).get("layers") or []
    return layers[-1].get(key) if layers else None


def _fmt_value(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def group_rows(results: list[dict[str, Any]], axes: list[str]) -> list[dict[str, Any]]:
    """Average finished trials over seeds for every combination of the other axes."""
    keys = [a for a in axes if a != "seed"]
    if "dropout.p" in keys:  # p first: the table is read p by p
        keys = ["dropout.p"] + [k for k in keys if k != "dropout.p"]
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    order: list[tuple] = []
    for r in results:
        key = tuple(_fmt_value(r.get("params", {}).get(k)) for k in keys)
        if key not in groups:
            order.append(key)
        groups[key].append(r)
    rows = []
    for key in sorted(order, key=lambda k: tuple(_sort_key(x) for x in k[::-1])):
        members = groups[key]
        done = [r for r in members if r.get("status") == "done"]
        row: dict[str, Any] = {"params": dict(zip(keys, key, strict=False)), "n": len(done),
                               "of": len(members), "values": {}}
        for title, fn in COLUMNS:
            vals = [fn(r) for r in done]
            vals = [v for v in vals if v is not None]
            row["values"][title] = statistics.fmean(vals) if vals else None
        rows.append(row)
    return rows


def _sort_key(text: str):
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def results_table(results: list[dict[str, Any]], axes: list[str], title: str) -> Table:
    rows = group_rows(results, axes)
    present = [t for t, _ in COLUMNS if any(r["values"][t] is not None for r in rows)]
    table = Table(title=title, title_justify="left")
    for k in (rows[0]["params"] if rows else {}):
        table.add_column(k, justify="right")
    table.add_column("seeds", justify="right")
    for t in present:
        table.add_column(t, justify="right")
    for row in rows:
        seeds = f"{row['n']}/{row['of']}"
        cells = [f"{row['values'][t]:.4f}" if row["values"][t] is not None else "-"
                 for t in present]
        table.add_row(*row["params"].values(), seeds if row["n"] == row["of"] else f"[red]{seeds}",
                      *cells)
    return table
