"""``dropout-lab show SWEEP_DIR``: one sweep (config, axes, every trial of its grid), or one
trial folder (cli/trial_detail.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.syntax import Syntax
from rich.table import Table

from dropout_lab.cli.app import current, guard
from dropout_lab.cli.store_warnings import warn
from dropout_lab.cli.trial_detail import is_trial_folder, show_trial
from dropout_lab.comparison.values import fmt_value
from dropout_lab.report.progress import fmt_number
from dropout_lab.report.terminal_width import WIDE_HELP, parse_columns, print_table
from dropout_lab.result import UNSUCCESSFUL, Status
from dropout_lab.safe_text import markup
from dropout_lab.store import SweepStore, dumps
from dropout_lab.store.manage import status_counts

COLUMNS_HELP = "show only these columns, e.g. trial,status,test_acc (comma-separated)"
# Column priorities when the table is wider than the terminal (report/terminal_width.py): the
# trial id, the axes (0, added below), the status and test accuracy stay; the seed tells rows
# apart, so it goes after the timing and the error text.
PRIORITIES: dict[str, int] = {
    "trial": 0, "status": 0, "test_acc": 0, "gap_acc": 1, "seed": 2, "train s": 4, "error": 3,
}


def register(app: typer.Typer) -> None:
    app.command("show")(show)


def _natural_key(value: Any) -> tuple[object, ...]:
    """Sort key for a parameter value: numbers (and lists of them, model.hidden) by value,
    so [32] comes before [128]; anything else by its text, after the numbers."""
    if isinstance(value, bool) or value is None:
        return (2, str(value))
    if isinstance(value, (int, float)):
        return (0, (float(value),))
    if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
        return (0, (len(value), *map(float, value)))
    return (1, json.dumps(value, sort_keys=True))


def _error_line(store: SweepStore, result: dict[str, Any]) -> str:
    reason = result.get("error") or result.get("reason") or ""
    if not reason and result.get("status") in UNSUCCESSFUL:
        reason = store.view(result["trial_id"]).error_line()  # damaged: no reason, no crash
    lines = str(reason).splitlines()
    return lines[-1] if lines else ""


def _axes_with_earlier(axes: dict[str, list[Any]], results: list[dict[str, Any]]
                       ) -> dict[str, list[Any]]:
    """The sweep's axes with the values only trials of earlier grids have, appended."""
    merged = {k: list(v) if isinstance(v, list) else [v] for k, v in axes.items()}
    for r in results:
        for k, v in (r.get("params") or {}).items():
            if k in merged and v not in merged[k]:
                merged[k].append(v)
    return merged


@guard
def show(
    sweep_dir: Path = typer.Argument(..., help="a sweep folder (runs/quickstart) or one trial "
                                     "folder (runs/quickstart/trials/<id>)"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
    columns: str = typer.Option(None, "--columns", help=COLUMNS_HELP),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """Show a sweep: its resolved config, its axes and the status of every trial; or one
    trial: config, final metrics, health, timing, environment and a summary of its curves."""
    ui = current()
    if is_trial_folder(sweep_dir):
        show_trial(sweep_dir, json_out)
        return
    store = SweepStore(sweep_dir, warn=warn)
    doc = store.read_sweep()
    results = store.results()
    axes = _axes_with_earlier(doc.get("sweep") or {}, results)
    results = sorted(results, key=lambda r: tuple(
        _natural_key((r.get("params") or {}).get(k)) for k in axes))
    history = store.history(doc)
    if json_out:
        trials = [{"trial_id": r["trial_id"], "status": r.get("status"), "params": r.get("params"),
                   "final": r.get("final"), "error": _error_line(store, r) or None,
                   "grid": r.get("grid", "current")}
                  for r in results]
        payload = {"sweep_dir": str(sweep_dir), "config": doc.get("config"), "axes": axes,
                   "counts": status_counts(results), "history": history, "trials": trials}
        ui.print_json(json.loads(dumps(payload)))
        return
    text = yaml.safe_dump(doc.get("config") or {}, sort_keys=False)
    ui.out.print(f"[bold]{markup(str(sweep_dir))}[/]: config", highlight=False)
    ui.out.print(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    ui.out.print("axes: " + markup("; ".join(f"{k} = {', '.join(fmt_value(v) for v in vals)}"
                                           for k, vals in axes.items()) or "none"),
                 highlight=False)
    c = status_counts(results)
    ui.out.print(f"on disk: {history['on_disk']} trial folder(s), {history['in_grid']} of the "
              f"current grid" + (f", {history['earlier']} of earlier grids (shown, marked *)"
                                 if history["earlier"] else "")
              + (f"; {history['hidden']} not shown (another config value, replaced, or "
                 f"damaged: 'dropout-lab gc {markup(str(sweep_dir))}' lists them)"
                 if history["hidden"] else ""), highlight=False, soft_wrap=False)
    table = Table(title=f"trials: {c['done']} done, {c['failed']} failed, {c['pending']} pending, "
                        f"{c['total']} total", title_justify="left")
    table.add_column("trial")
    for k in axes:
        table.add_column(k, justify="right")
    for col in ("status", "test_acc", "gap_acc", "train s"):
        table.add_column(col, justify="right")
    table.add_column("error")
    styles: dict[str, str] = {Status.DONE: "green", Status.FAILED: "red", Status.DIVERGED: "red",
              Status.PENDING: "yellow", Status.CORRUPT: "red"}
    for r in results:
        final = r.get("final") or {}
        params = r.get("params") or {}
        secs = (r.get("timing") or {}).get("train_seconds")
        status = r.get("status", "?")
        mark = "*" if r.get("grid") == "earlier" else ""
        table.add_row(
            markup(r["trial_id"]) + mark, *[markup(fmt_value(params.get(k))) for k in axes],
            f"[{styles.get(status, '') if isinstance(status, str) else ''}]{markup(status)}",
            *[fmt_number(final[k]) if isinstance(final.get(k), (int, float)) else "-"
              for k in ("test_acc", "gap_acc")],
            f"{secs:.1f}" if isinstance(secs, (int, float)) else "-",
            markup(_error_line(store, r)))
    priorities = {**PRIORITIES, **{k: 0 for k in axes if k != "seed"}}
    print_table(table, ui.out, priorities, parse_columns(columns), wide)
