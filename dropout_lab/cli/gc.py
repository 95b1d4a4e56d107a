"""``dropout-lab gc SWEEP``: drop trial folders not in the current grid, failed or corrupt;
never the finished trials of a tagged sweep without ``--force``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from dropout_lab.cli.app import guard, out
from dropout_lab.cli.store_warnings import warn
from dropout_lab.store import SweepStore
from dropout_lab.store.manage import apply_gc, gc_candidates


def register(app: typer.Typer) -> None:
    app.command("gc")(gc)


@guard
def gc(
    sweep_dir: Path = typer.Argument(..., help="a sweep folder, e.g. runs/quickstart"),
    apply: bool = typer.Option(False, "--apply", help="remove them (default: only list them)"),
    keep_failed: bool = typer.Option(False, "--keep-failed",
                                     help="keep failed and diverged trials of the grid"),
    force: bool = typer.Option(False, "--force",
                               help="also remove finished trials of a tagged sweep"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
) -> None:
    """Clean a sweep folder: trials of earlier grids, failed or diverged trials (a re-run
    retries them) and corrupt ones (unreadable result.json, a symlink or file under trials/),
    and the orphaned checkpoints of finished trials (a checkpoint of an unfinished trial is
    what a re-run resumes from).

    A dry run by default: it lists what would go; --apply lists it, then removes it. The
    finished trials of a sweep with tags (note --tag) are kept unless --force."""
    store = SweepStore(sweep_dir, warn=warn)
    candidates = gc_candidates(store, keep_failed=keep_failed, force=force)
    if json_out:
        if apply:
            apply_gc(store, candidates)
        typer.echo(json.dumps({**candidates.as_dict(), "applied": apply}, indent=2))
        return
    verb = "removing" if apply else "would remove"
    for reason, ids in (("not in the current grid", candidates.not_in_grid),
                        ("failed or diverged", candidates.failed),
                        ("corrupt", candidates.corrupt)):
        for tid in ids:
            out.print(f"{verb} {escape(tid)}  ({reason})", highlight=False)
    for tid in candidates.checkpoints:
        out.print(f"{verb} {escape(tid)}/checkpoint.npz  (orphaned checkpoint: the trial "
                  "finished)", highlight=False)
    if candidates.kept:
        out.print(f"kept {len(candidates.kept)} finished trial(s) of earlier grids: the sweep "
                  f"is tagged {escape(', '.join(candidates.tags))} (--force removes them)",
                  highlight=False)
    if apply:
        apply_gc(store, candidates)  # after the list: the user sees what goes first
    total = len(candidates.all)
    if not total and candidates.checkpoints:
        what = "removed" if apply else "would be removed; run again with --apply"
        out.print(f"{escape(str(sweep_dir))}: {len(candidates.checkpoints)} orphaned "
                  f"checkpoint(s) {what}", highlight=False)
    elif not total:
        out.print(f"{escape(str(sweep_dir))}: nothing to clean", highlight=False)
    elif apply:
        out.print(f"{escape(str(sweep_dir))}: removed {total} trial folder(s)", highlight=False)
    else:
        out.print(f"{escape(str(sweep_dir))}: {total} trial folder(s) would be removed; "
                  "run again with --apply to remove them", highlight=False)
