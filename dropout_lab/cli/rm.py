"""``dropout-lab rm SWEEP``: delete a sweep folder, after a confirmation (or ``--yes``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.markup import escape

from dropout_lab.cli.app import guard, out
from dropout_lab.errors import StoreError
from dropout_lab.store import SWEEP_FILE, SweepStore
from dropout_lab.store.manage import remove_sweep
from dropout_lab.store.reading import lstat_kind


def register(app: typer.Typer) -> None:
    app.command("rm")(rm)


@guard
def rm(
    sweep_dir: Path = typer.Argument(..., help="a sweep folder, e.g. runs/quickstart"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
) -> None:
    """Delete a sweep folder with every trial in it. Asks first, unless --yes.

    With no terminal to ask on (CI, a pipe), it refuses without --yes (exit 2)."""
    if lstat_kind(sweep_dir) != "dir" or lstat_kind(sweep_dir / SWEEP_FILE) != "file":
        remove_sweep(sweep_dir)  # raises the StoreError that explains why
    if not yes:
        if not sys.stdin.isatty():
            raise StoreError(f"rm {sweep_dir}: no terminal to confirm on; pass --yes to delete "
                             "without asking")
        n = len(SweepStore(sweep_dir).trial_entries())
        if not typer.confirm(f"delete {sweep_dir} and its {n} trial folder(s)?", default=False,
                             err=True):
            raise StoreError(f"rm {sweep_dir}: not confirmed; nothing removed")
    n = remove_sweep(sweep_dir)
    if json_out:
        typer.echo(json.dumps({"removed": str(sweep_dir), "trials": n}, indent=2))
    else:
        out.print(f"removed {escape(str(sweep_dir))} ({n} trial folder(s))", highlight=False)
