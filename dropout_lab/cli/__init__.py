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
    """The command list shows each command's first paragraph as written, line breaks and all
    (a summary broken mid-sentence): give each command that paragraph on one line."""
    for info in app.registered_commands:
        if info.short_help is None and info.callback is not None:
            doc = inspect.getdoc(info.callback) or ""
            info.short_help = " ".join(doc.split("\n\n")[0].split())


_one_line_summaries()


def main() -> None:
    sys.exit(run_app())


__all__ = ["app", "main", "typer"]
