"""The application object: owns the consoles, turns domain errors into a message + exit code."""

from __future__ import annotations

import functools
import json
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from typer.core import TyperGroup

from dropout_lab import __version__
from dropout_lab.errors import DropoutLabError, EnvironmentFault, Terminated


def _asks_for_json(argv: list[str]) -> bool:
    """--json anywhere, or compare's -f/--format json."""
    if "--json" in argv or "--format=json" in argv:
        return True
    pairs = zip(argv, argv[1:], strict=False)  # each argument with the next one
    return any(a in ("-f", "--format") and b == "json" for a, b in pairs)


# Typer ships its own copy of click: its UsageError is the base of the public BadParameter
# (the one raised for an unknown option, a missing argument, a bad value). At run time it is
# reached through that public name; the type checker reads the vendored modules, which also
# type the Context a command group is called with (click's, not its subclass typer.Context).
if TYPE_CHECKING:
    from typer._click import Context as ClickContext
    from typer._click.exceptions import UsageError
else:
    UsageError = typer.BadParameter.__bases__[0]
    assert UsageError.__name__ == "UsageError"

P = ParamSpec("P")
R = TypeVar("R")


class JsonErrorsGroup(TyperGroup):
    """The root command group: under --json, a command-line error (an unknown option, a
    missing argument) is also a JSON object on stdout, like the errors of the commands."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        ctx.meta["dropout_lab.argv"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: ClickContext) -> object:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            if _asks_for_json(ctx.meta.get("dropout_lab.argv", [])):
                param = getattr(exc, "param", None)  # BadParameter's; other UsageErrors have none
                key = param.name if param is not None else None
                typer.echo(json.dumps({"error": exc.format_message(), "code": exc.exit_code,
                                       "key": key, "kind": "UsageError"}, indent=2))
            raise


app = typer.Typer(
    name="dropout-lab",
    cls=JsonErrorsGroup,
    help="Sweep the dropout probability p (the probability of DROPPING a unit), the model size "
    "and the data set; train an MLP at every point; measure the generalization gap and "
    "co-adaptation.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
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


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"dropout-lab {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="print the version and exit"),
) -> None:
    pass


def error_doc(exc: DropoutLabError) -> dict[str, object]:
    """The JSON form of an error: ``error`` (the human line), ``code`` (the exit code),
    ``key`` (the config key or option at fault where known, else null), ``kind`` (its type)."""
    return {"error": str(exc), "code": exc.exit_code, "key": getattr(exc, "key", None),
            "kind": type(exc).__name__}


def _wants_json(kwargs: dict[str, object]) -> bool:
    """--json on a command (``json_out``), or compare's ``-f json`` (``fmt``)."""
    return kwargs.get("json_out") is True or kwargs.get("fmt") == "json"


def guard(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator for commands: domain errors -> message + exit code (2 bad input, 3
    environment fault), Ctrl-C/SIGTERM -> 130/143, also under CliRunner.

    Under --json the error is also a JSON object on stdout, so a script reading stdout always
    gets a document; the human line still goes to stderr."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DropoutLabError as exc:
            if _wants_json(kwargs):
                typer.echo(json.dumps(error_doc(exc), indent=2))
            raise abort(str(exc), exc.exit_code) from None
        except OSError as exc:  # disk full, permission denied, read-only: the environment
            fault = EnvironmentFault.from_os_error(exc)
            if _wants_json(kwargs):
                typer.echo(json.dumps(error_doc(fault), indent=2))
            raise abort(str(fault), fault.exit_code) from None
        except KeyboardInterrupt as exc:
            raise abort("interrupted", getattr(exc, "exit_code", 130)) from None

    return wrapper


def print_whole(*renderables: RenderableType,
                measure: list[RenderableType] | None = None) -> None:
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
