"""``python -m dropout_lab`` and the ``dropout-lab`` script: the command-line interface.

This module is the entry point and stays light: a Ctrl-C while the CLI's dependencies are
still importing ends with exit 130 and no traceback."""

from __future__ import annotations

import sys


def main() -> None:
    """Import the CLI (typer, rich, pydantic: the slow part of start-up), then run it."""
    try:
        from dropout_lab.cli import main as cli_main
    except KeyboardInterrupt:
        sys.exit(130)
    cli_main()


if __name__ == "__main__":
    main()
