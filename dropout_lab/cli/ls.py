"""``dropout-lab ls [RUNS_DIR]``: list the stored sweeps of a runs directory."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import JustifyMethod
from rich.table import Table

from dropout_lab.cli.app import current, guard
from dropout_lab.cli.store_warnings import warn
from dropout_lab.errors import StoreError
from dropout_lab.report.terminal_width import WIDE_HELP, parse_columns, print_table
from dropout_lab.safe_text import markup
from dropout_lab.store import RESULT_FILE, SWEEP_FILE, SweepStore
from dropout_lab.store import manage as runs
from dropout_lab.store.reading import lstat_kind

COLUMNS_HELP = "show only these columns, e.g. name,done,tags (comma-separated)"
# Column priorities when the table is wider than the terminal (report/terminal_width.py: 0 =
# never hidden, higher = hidden sooner): name and progress stay; the note is shortened before
# anything is hidden.
PRIORITIES: dict[str, int] = {
    "name": 0, "done": 0, "failed": 1, "total": 1, "on disk": 3, "last modified": 4,
    "tags": 2, "note": 6,
}


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)


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
            entry.update(runs.status_counts(results))
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
    print_table(table, ui.out, PRIORITIES, parse_columns(columns), wide)
