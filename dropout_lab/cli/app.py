"""The application object: owns the consoles, turns domain errors into a message + exit code."""

from __future__ import annotations

import functools
import signal

import typer
from rich.console import Console
from rich.markup import escape

from dropout_lab.errors import DropoutLabError, EnvironmentFault, Terminated

app = typer.Typer(
    name="dropout-lab",
    help="Sweep the dropout probability p (the probability of DROPPING a unit), the model size "
    "and the data set; train an MLP at every point; measure the generalization gap and "
    "co-adaptation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

out = Console(soft_wrap=True)  # results (stdout)
err = Console(stderr=True, soft_wrap=True)  # messages and progress (stderr)


def abort(message: str, code: int = 2) -> typer.Exit:
    """Print one clear message on stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM/SIGHUP (CI cancellation, ``timeout``, SLURM, a closed terminal) take the
    Ctrl-C path: stop dispatching, keep finished trials, write the summary."""
    raise Terminated(signum)


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP behave like Ctrl-C (exit 128 + signal number, see
    docs/reliability.md). Only the real command line installs them, not tests in-process."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)


def run_app(argv: list[str] | None = None) -> int:
    """Run the Typer app; a DropoutLabError escaping a command becomes its exit code (2 bad
    input, 3 environment fault), an interruption 130/143, never a traceback."""
    try:
        install_signal_handlers()
        app(args=argv, prog_name="dropout-lab", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except DropoutLabError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # outside a command (click's own parsing, start-up)
        return getattr(exc, "exit_code", 130)
    return 0


def guard(fn):
    """Decorator for commands: domain errors -> message + exit code (2 bad input, 3
    environment fault), Ctrl-C/SIGTERM -> 130/143, also under CliRunner."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DropoutLabError as exc:
            raise abort(str(exc), exc.exit_code) from None
        except OSError as exc:  # disk full, permission denied, read-only: the environment
            fault = EnvironmentFault.from_os_error(exc)
            raise abort(str(fault), fault.exit_code) from None
        except KeyboardInterrupt as exc:
            raise abort("interrupted", getattr(exc, "exit_code", 130)) from None

    return wrapper


def print_whole(*renderables, measure: list | None = None) -> None:
    """Print tables at their natural width: numbers are never squeezed into ellipses, even
    when the terminal (or the 80 columns assumed for a pipe) is narrower. ``measure``: the
    renderables whose width counts (default all; leave out free text, which would not wrap)."""
    wide = out.options.update_width(10_000)
    natural = max((out.measure(r, options=wide).maximum for r in measure or renderables),
                  default=0)
    width = out.width
    out.width = max(width, natural)  # print() caps its width at the console's
    try:
        out.print(*renderables)
    finally:
        out.width = width
