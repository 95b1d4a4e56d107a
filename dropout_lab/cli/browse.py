"""``dropout-lab ls [RUNS_DIR]`` and ``dropout-lab show SWEEP_DIR``: browse stored sweeps."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import JustifyMethod
from rich.syntax import Syntax
from rich.table import Table

from dropout_lab.cli.app import current, guard
from dropout_lab.cli.show_trial import is_trial_folder, show_trial
from dropout_lab.cli.store_warnings import warn
from dropout_lab.comparison.values import fmt_value
from dropout_lab.errors import StoreError
from dropout_lab.report.fit import LS_PRIORITIES, SHOW_PRIORITIES, parse_columns, print_table
from dropout_lab.report.progress import fmt_number
from dropout_lab.result import UNSUCCESSFUL, Status
from dropout_lab.safe_text import markup
from dropout_lab.store import RESULT_FILE, SWEEP_FILE, SweepStore, dumps
from dropout_lab.store import manage as runs
from dropout_lab.store.reading import lstat_kind

COLUMNS_HELP = "show only these columns, e.g. name,done,tags (comma-separated)"
SHOW_COLUMNS_HELP = "show only these columns, e.g. trial,status,test_acc (comma-separated)"
WIDE_HELP = "show every column at full width, even wider than the terminal"


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)
    app.command("show")(show)


def _counts(results: list[dict[str, Any]]) -> dict[str, int]:
    c = {"done": 0, "failed": 0, "pending": 0, "corrupt": 0, "pruned": 0,
         "total": len(results)}
    for r in results:
        st = r.get("status")
        c["done" if st == Status.DONE else "failed" if st in UNSUCCESSFUL
          else "corrupt" if st == Status.CORRUPT else "pruned" if st == Status.PRUNED
          else "pending"] += 1
    for key in ("corrupt", "pruned"):  # shown only when there are some (damage; a search)
        if not c[key]:
            del c[key]
    return c


def _last_modified(store: SweepStore) -> float:
    """Newest of sweep.yaml and the trials' result.json files (unreadable ones left out;
    lstat only: a symlink is never followed, a FIFO never opened)."""
    root = store.root
    times = []
    paths = [root / SWEEP_FILE, *[store.trial_dir(t) / RESULT_FILE
                                  for t, kind in store.trial_entries().items() if kind == "dir"]]
    for p in paths:
        with contextlib.suppress(OSError):
            times.append(os.lstat(p).st_mtime)
    return max(times, default=os.lstat(root).st_mtime)


def _when(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


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


@guard
def ls(
    runs_dir: Path = typer.Argument(Path("runs"), help="folder holding sweeps (default ./runs)"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
    sort: str = typer.Option("name", "--sort",
                             help=f"sort by {', '.join(runs.SORT_KEYS)}; '-modified' = newest "
                             "first"),
    filter_: list[str] = typer.Option([], "--filter",
                                      help="keep sweeps with tag=NAME, name=GLOB or "
                                      "status=done|failed|pending; repeatable (all must hold)"),
    columns: str = typer.Option(None, "--columns", help=COLUMNS_HELP),
    wide: bool = typer.Option(False, "--wide", help=WIDE_HELP),
) -> None:
    """List the sweeps in RUNS_DIR: name, trials done / failed / total (the current grid and
    the finished trials of earlier grids), trial folders on disk, tags, note, last modified."""
    ui = current()
    filters = [runs.parse_filter(f) for f in filter_]
    sweeps = []
    for child in runs.sweep_folders(runs_dir):
        entry: dict[str, Any] = {"name": child.name, "path": str(child)}
        store = SweepStore(child, warn=warn)
        try:
            if lstat_kind(child) == "link":
                raise StoreError(f"{child} is a symlink (not followed)")
            problem = store.layout_problem()
            if problem:
                raise StoreError(problem)
            results = store.results()
            entry.update(_counts(results))
            history = store.history()
            entry.update(on_disk=history["on_disk"], in_grid_on_disk=history["in_grid"],
                         earlier=history["earlier"], hidden=history["hidden"])
        except (StoreError, OSError) as exc:  # one broken sweep must not hide the others
            entry["error"] = str(exc)
        if lstat_kind(child) == "dir":
            entry.update(runs.read_meta(child))
        try:
            entry["modified"] = _when(_last_modified(store))
        except OSError:
            entry["modified"] = ""
        sweeps.append(entry)
    sweeps = runs.sort_sweeps([s for s in sweeps if runs.matches(s, filters)], sort)
    if json_out:
        ui.print_json({"runs_dir": str(runs_dir), "sweeps": sweeps})
        return
    if not sweeps:
        ui.out.print(f"no sweeps in {markup(str(runs_dir))}", highlight=False)
        return
    table = Table(title=f"sweeps in {markup(runs_dir)}", title_justify="left",
                  caption="done/failed/total: the sweep's trials, earlier grids too; "
                          "on disk: every folder",
                  caption_justify="left")
    headers: list[tuple[str, JustifyMethod]] = [
        ("name", "left"), ("done", "right"), ("failed", "right"), ("total", "right"),
        ("on disk", "right"), ("tags", "left"), ("note", "left"), ("last modified", "left")]
    for col, just in headers:
        table.add_column(col, justify=just)
    for s in sweeps:
        tags, note = markup(", ".join(s.get("tags", []))), markup(s.get("note", ""))
        if "error" in s:
            table.add_row(markup(s["name"]), "-", "-", "-", "-", tags, f"[red]{markup(s['error'])}",
                          s["modified"])
            continue
        table.add_row(markup(s["name"]), str(s["done"]),
                      f"[red]{s['failed']}" if s["failed"] else "0", str(s["total"]),
                      str(s["on_disk"]), tags, note, s["modified"])
    print_table(table, ui.out, LS_PRIORITIES, parse_columns(columns), wide)


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
    columns: str = typer.Option(None, "--columns", help=SHOW_COLUMNS_HELP),
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
                   "counts": _counts(results), "history": history, "trials": trials}
        ui.print_json(json.loads(dumps(payload)))
        return
    text = yaml.safe_dump(doc.get("config") or {}, sort_keys=False)
    ui.out.print(f"[bold]{markup(str(sweep_dir))}[/]: config", highlight=False)
    ui.out.print(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    ui.out.print("axes: " + markup("; ".join(f"{k} = {', '.join(fmt_value(v) for v in vals)}"
                                           for k, vals in axes.items()) or "none"),
                 highlight=False)
    c = _counts(results)
    ui.out.print(f"on disk: {history['on_disk']} trial folder(s), {history['in_grid']} of the "
              f"current grid" + (f", {history['earlier']} of earlier grids (shown, marked *)"
                                 if history["earlier"] else "")
              + (f"; {history['hidden']} not shown (another config value, replaced, or "
                 f"damaged: 'dropout-lab gc {markup(str(sweep_dir))}' lists them)"
                 if history["hidden"] else ""), highlight=False, soft_wrap=False)
    pruned = f", {c['pruned']} pruned" if "pruned" in c else ""
    table = Table(title=f"trials: {c['done']} done, {c['failed']} failed{pruned}, "
                        f"{c['pending']} pending, {c['total']} total", title_justify="left")
    table.add_column("trial")
    for k in axes:
        table.add_column(k, justify="right")
    for col in ("status", "test_acc", "gap_acc", "train s"):
        table.add_column(col, justify="right")
    table.add_column("error")
    styles: dict[str, str] = {Status.DONE: "green", Status.FAILED: "red", Status.DIVERGED: "red",
              Status.PENDING: "yellow", Status.CORRUPT: "red", Status.PRUNED: "yellow"}
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
    priorities = {**SHOW_PRIORITIES, **{k: 0 for k in axes if k != "seed"}}
    print_table(table, ui.out, priorities, parse_columns(columns), wide)
