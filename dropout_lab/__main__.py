"""``python -m dropout_lab`` and the ``dropout-lab`` script: the command-line interface.

This module is the entry point and stays light: a Ctrl-C while the CLI's dependencies are
still importing ends with exit 130 and no traceback."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _exit_at_once(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C during start-up: nothing is written yet, so leave at once. Raising
    KeyboardInterrupt instead can land inside an import's weakref callback, where Python
    prints it as "Exception ignored in ..." and goes on importing."""
    os._exit(130)


def main() -> None:
    """Import the CLI (typer, rich, pydantic: the slow part of start-up), then run it."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:  # a background job keeps ignoring it
        signal.signal(signal.SIGINT, _exit_at_once)
    try:
        from dropout_lab.cli import main as cli_main
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        if previous is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    cli_main()


if __name__ == "__main__":
    main()
