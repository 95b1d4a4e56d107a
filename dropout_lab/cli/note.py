"""``dropout-lab note SWEEP [TEXT] [--tag T]``: a note and tags on a sweep, shown by ``ls``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from dropout_lab.cli.app import guard, out
from dropout_lab.store.manage import write_meta


def register(app: typer.Typer) -> None:
    app.command("note")(note)


@guard
def note(
    sweep_dir: Path = typer.Argument(..., help="a sweep folder, e.g. runs/quickstart"),
    text: str = typer.Argument(None, help="the note (replaces the old one; '' removes it)"),
    tag: list[str] = typer.Option([], "--tag", "-t", help="add a tag; repeatable"),
    untag: list[str] = typer.Option([], "--untag", help="remove a tag; repeatable"),
    clear: bool = typer.Option(False, "--clear", help="remove the note and every tag first"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
) -> None:
    """Write a note and tags on a sweep (stored in its meta.json; `ls` shows them and
    `ls --filter tag=NAME` selects by them)."""
    meta = write_meta(sweep_dir, note=text, add_tags=tag, remove_tags=untag, clear=clear)
    if json_out:
        typer.echo(json.dumps({"sweep_dir": str(sweep_dir), **meta}, indent=2))
        return
    tags = ", ".join(meta.get("tags", [])) or "none"
    out.print(f"{escape(str(sweep_dir))}: note {escape(repr(meta.get('note', '')))}; "
              f"tags {escape(tags)}", highlight=False)
