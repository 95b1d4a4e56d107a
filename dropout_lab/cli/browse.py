"""``dropout-lab ls [RUNS_DIR]`` and ``dropout-lab show SWEEP_DIR``: browse stored sweeps."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from dropout_lab.cli.app import guard, out, print_whole
from dropout_lab.comparison.values import show as show_value
from dropout_lab.errors import StoreError
from dropout_lab.store import CORRUPT, RESULT_FILE, SWEEP_FILE, SweepStore, dumps


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)
    app.command("show")(show)


def _counts(results: list[dict[str, Any]]) -> dict[str, int]:
    c = {"done": 0, "failed": 0, "pending": 0, "corrupt": 0, "total": len(results)}
    for r in results:
        st = r.get("status")
        c["done" if st == "done" else "failed" if st in ("failed", "diverged")
          else CORRUPT if st == CORRUPT else "pending"] += 1
    if not c[CORRUPT]:  # shown only when there is damage
        del c[CORRUPT]
    return c


def _last_modified(root: Path) -> float:
    """Newest of sweep.yaml and the trials' result.json files (unreadable ones left out)."""
    times = []
    for p in [root / SWEEP_FILE, *root.glob(f"trials/*/{RESULT_FILE}")]:
        with contextlib.suppress(OSError):
            times.append(p.stat().st_mtime)
    return max(times, default=root.stat().st_mtime)


def _is_sweep(folder: Path) -> bool:
    try:
        return (folder / SWEEP_FILE).is_file()
    except OSError:  # an unreadable folder: not listed
        return False


def _when(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


@guard
def ls(
    runs_dir: Path = typer.Argument(Path("runs"), help="folder holding sweeps (default ./runs)"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
) -> None:
    """List the sweeps in RUNS_DIR: name, trials done / failed / total, last modified."""
    if not runs_dir.is_dir():
        raise StoreError(f"{runs_dir}: no such runs folder")
    sweeps = []
    for child in sorted(p for p in runs_dir.iterdir() if _is_sweep(p)):
        entry: dict[str, Any] = {"name": child.name, "path": str(child)}
        try:
            entry.update(_counts(SweepStore(child).results()))
            entry["modified"] = _when(_last_modified(child))
        except (StoreError, OSError) as exc:  # one broken sweep must not hide the others
            entry["error"] = str(exc)
            entry.setdefault("modified", "")
        sweeps.append(entry)
    if json_out:
        typer.echo(json.dumps({"runs_dir": str(runs_dir), "sweeps": sweeps}, indent=2))
        return
    if not sweeps:
        out.print(f"no sweeps in {escape(str(runs_dir))}", highlight=False)
        return
    table = Table(title=f"sweeps in {runs_dir}", title_justify="left")
    for col, just in [("name", "left"), ("done", "right"), ("failed", "right"),
                      ("total", "right"), ("last modified", "left")]:
        table.add_column(col, justify=just)
    for s in sweeps:
        if "error" in s:
            table.add_row(s["name"], "-", "-", "-", f"[red]{escape(s['error'])}")
            continue
        table.add_row(s["name"], str(s["done"]),
                      f"[red]{s['failed']}" if s["failed"] else "0", str(s["total"]),
                      s["modified"])
    print_whole(table)


def _error_line(store: SweepStore, result: dict[str, Any]) -> str:
    reason = result.get("error") or result.get("reason") or ""
    path = store.trial_dir(result["trial_id"]) / "error.txt"
    if not reason and path.exists():
        try:  # damaged or unreadable: no reason shown, never a crash
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        lines = [x for x in text.splitlines() if x.strip()]
        reason = lines[-1] if lines else ""
    return str(reason).splitlines()[-1] if reason else ""


@guard
def show(
    sweep_dir: Path = typer.Argument(..., help="a sweep folder, e.g. runs/quickstart"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
) -> None:
    """Show a sweep: its resolved config, its axes and the status of every trial."""
    store = SweepStore(sweep_dir)
    doc = store.read_sweep()
    results = store.results()
    axes = doc.get("sweep") or {}
    if json_out:
        trials = [{"trial_id": r["trial_id"], "status": r.get("status"), "params": r.get("params"),
                   "final": r.get("final"), "error": _error_line(store, r) or None}
                  for r in results]
        payload = {"sweep_dir": str(sweep_dir), "config": doc.get("config"), "axes": axes,
                   "counts": _counts(results), "trials": trials}
        typer.echo(json.dumps(json.loads(dumps(payload)), indent=2))
        return
    text = yaml.safe_dump(doc.get("config") or {}, sort_keys=False)
    out.print(f"[bold]{escape(str(sweep_dir))}[/]: config", highlight=False)
    out.print(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    out.print("axes: " + ("; ".join(f"{k} = {', '.join(show_value(v) for v in vals)}"
                                    for k, vals in axes.items()) or "none"), highlight=False)
    c = _counts(results)
    table = Table(title=f"trials: {c['done']} done, {c['failed']} failed, {c['pending']} pending, "
                        f"{c['total']} total", title_justify="left")
    table.add_column("trial")
    for k in axes:
        table.add_column(k, justify="right")
    for col in ("status", "test_acc", "gap_acc", "train s"):
        table.add_column(col, justify="right")
    table.add_column("error")
    styles = {"done": "green", "failed": "red", "diverged": "red", "pending": "yellow",
              CORRUPT: "red"}
    for r in results:
        final = r.get("final") or {}
        params = r.get("params") or {}
        secs = (r.get("timing") or {}).get("train_seconds")
        status = r.get("status", "?")
        table.add_row(
            r["trial_id"], *[show_value(params.get(k)) for k in axes],
            f"[{styles.get(status, '')}]{status}",
            *[f"{final[k]:.4f}" if isinstance(final.get(k), (int, float)) else "-"
              for k in ("test_acc", "gap_acc")],
            f"{secs:.1f}" if isinstance(secs, (int, float)) else "-",
            escape(_error_line(store, r)))
    print_whole(table)
