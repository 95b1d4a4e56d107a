"""Show the warnings the store collected (damaged files it skipped), one line each on stderr.

The store prints nothing (issue 24, item 6); commands pass :func:`warn` as the store's
callback, or hand its ``warnings`` list to :func:`print_warnings`. (When the application
object of issue 24 owns the consoles, these two move onto it.)"""

from __future__ import annotations

from collections.abc import Iterable

import typer


def _safe(message: str) -> str:
    """Control characters of a stored name (ESC, newlines) shown escaped, never sent raw."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def warn(message: str) -> None:
    """One warning line on stderr (stdout stays clean for --json)."""
    typer.echo(_safe(message), err=True)


def print_warnings(messages: Iterable[str]) -> None:
    for message in messages:
        warn(message)
