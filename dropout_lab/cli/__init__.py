"""The command-line interface: one module per command, all registered here."""

from __future__ import annotations

import sys

import typer

from dropout_lab.cli import browse, compare, datasets, plot, report, sweep, validate
from dropout_lab.cli.app import app, run_app

# One place registers every command (each module defines ``register(app)``).
for _module in (sweep, validate, datasets, compare, plot, report, browse):
    _module.register(app)


def main() -> None:
    sys.exit(run_app())


__all__ = ["app", "main", "typer"]
