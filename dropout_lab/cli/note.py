"""``dropout-lab note SWEEP [TEXT] [--tag T]``: a note and tags on a sweep, shown by ``ls``."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import typer

from dropout_lab.cli.app import current, guard
from dropout_lab.errors import ConfigError
from dropout_lab.safe_text import markup, printable
from dropout_lab.store.manage import write_meta

MAX_TAG = 64


def check_tag(tag: str) -> None:
    """A tag is one short word-like label (``ls --filter tag=NAME`` selects by it): no control
    or format characters (ESC, line breaks, bidirectional overrides), at most MAX_TAG
    characters; commas and '=' are refused where tags are stored (store.manage.write_meta)."""
    if len(tag) > MAX_TAG or any(
            unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in tag):
        raise ConfigError(f"--tag {printable(tag)!r}: a tag is one word without commas, '=', "
                          f"control characters or line breaks, at most {MAX_TAG} characters")


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
    ui = current()
    for t in [*tag, *untag]:
        check_tag(t)
    meta = write_meta(sweep_dir, note=text, add_tags=tag, remove_tags=untag, clear=clear)
    if json_out:
        ui.print_json({"sweep_dir": str(sweep_dir), **meta})
        return
    tags = ", ".join(meta.get("tags", [])) or "none"
    ui.out.print(f"{markup(str(sweep_dir))}: note {markup(repr(meta.get('note', '')))}; "
              f"tags {markup(tags)}", highlight=False)
