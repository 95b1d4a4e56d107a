"""The command-line interface: one module per command, all registered here."""

from __future__ import annotations

import inspect
import sys

import typer

from dropout_lab.cli import (
    compare,
    datasets,
    export,
    gc,
    ls,
    note,
    plot,
    report,
    rm,
    schema,
    show,
    sweep,
    validate,
)
from dropout_lab.cli.app import app, run_app

# One place registers every command (each module defines ``register(app)``).
for _module in (sweep, validate, datasets, compare, plot, report, ls, show, note, rm, gc, export,
                schema):
    _module.register(app)


def _one_line_summaries() -> None:
    """Help shows a docstring's paragraphs with their line breaks, so a paragraph wrapped at
    100 characters in the source breaks mid-sentence on an 80-column terminal: give each
    command (and each command of a group, ``datasets list``) its paragraphs on one line each,
    which rich then wraps at the terminal's width. The command list shows the first."""
    infos = [*app.registered_commands,
             *[c for g in app.registered_groups if g.typer_instance is not None
               for c in g.typer_instance.registered_commands]]
    for info in infos:
        if info.callback is None:
            continue
        paragraphs = [" ".join(p.split()) for p in
                      (inspect.getdoc(info.callback) or "").split("\n\n") if p.strip()]
        if info.help is None and paragraphs:
            info.help = "\n\n".join(paragraphs)
        if info.short_help is None and paragraphs:
            info.short_help = paragraphs[0]


_one_line_summaries()


def main() -> None:
    sys.exit(run_app())


__all__ = ["app", "main", "typer"]
