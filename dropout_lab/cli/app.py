"""The Typer app and the application object: one :class:`Application` per invocation owns
output (the stdout and stderr consoles), the --json mode, warnings and ``abort``; domain errors
become one message and an exit code here, and nowhere in library code.

Exit codes (docs/reliability.md): 0 done, 1 a trial failed or an expectation does not hold,
2 bad input, 3 the machine refused (disk full, permission denied), 4 every trial of a sweep
collapsed to chance (``sweep --fail-on-collapse``), 130/143 interrupted, 141 stdout closed by
its reader (``| head``)."""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import inspect
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console, RenderableType
from typer.core import TyperGroup

from dropout_lab import __version__
from dropout_lab.errors import DropoutLabError, EnvironmentFault, Terminated
from dropout_lab.safe_text import message as safe_text

# Exit codes beyond 0/1 (docs/reliability.md). 4: a sweep ran, and every trial it holds
# collapsed to chance accuracy (the numbers exist, but answer no question); only with
# `sweep --fail-on-collapse` (docs/reliability.md says why it is not the default).
EXIT_BAD_INPUT = 2
EXIT_ALL_COLLAPSED = 4
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141, what a shell reports for `cmd | head`

# Input faults reported by the OS: the path the user gave is wrong, not the machine.
_INPUT_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ENOTDIR, errno.ELOOP, errno.EISDIR,
                           errno.ENOENT, errno.EEXIST, errno.EINVAL})

# Typer ships its own copy of click: its UsageError is the base of the public BadParameter
# (the one raised for an unknown option, a missing argument, a bad value). At run time it is
# reached through that public name; the type checker reads the vendored modules, which also
# type the Context a command group is called with (click's, not its subclass typer.Context).
if TYPE_CHECKING:
    from typer._click import Context as ClickContext
    from typer._click.exceptions import ClickException, UsageError
else:
    UsageError = typer.BadParameter.__bases__[0]
    ClickException = UsageError.__bases__[0]
    assert UsageError.__name__ == "UsageError" and ClickException.__name__ == "ClickException"

P = ParamSpec("P")
R = TypeVar("R")


def asks_for_json(argv: list[str]) -> bool:
    """--json anywhere (before or after the command), or compare's -f/--format json."""
    if "--json" in argv or "--format=json" in argv or "-fjson" in argv:
        return True
    pairs = zip(argv, argv[1:], strict=False)  # each argument with the next one
    return any(a in ("-f", "--format") and b == "json" for a, b in pairs)


class _Console(Console):
    """A rich console that ends the command with 141 when its reader went away (rich's own
    handling exits 1, which a shell cannot tell from a failure)."""

    def on_broken_pipe(self) -> None:
        _quiet_stdout()
        raise SystemExit(EXIT_BROKEN_PIPE)


class Application:
    """One invocation of the CLI: its consoles, its --json mode, its warnings.

    Created by the root command for every invocation (never stored in a module), reached by
    commands through :func:`current`. Library code prints nothing: it returns warnings, or
    is handed :meth:`warn` as a sink."""

    def __init__(self, json_mode: bool = False) -> None:
        # file=None: each console writes to the sys.stdout / sys.stderr of the moment
        self.out: Console = _Console(soft_wrap=True)  # results (stdout)
        self.err: Console = _Console(stderr=True, soft_wrap=True)  # messages, progress (stderr)
        for console in (self.out, self.err):
            # A pipe or a file gets each line whole (scripts, grep); a terminal gets lines
            # wrapped at its width by rich, between words, rather than by the terminal.
            console.soft_wrap = not console.is_terminal
        self.json_mode = json_mode
        self.warnings: list[str] = []
        self.json_printed = False

    # -- output -------------------------------------------------------------------------
    def warn(self, text: str) -> None:
        """A warning for the user: kept (a --json document may carry them) and printed on
        stderr, control characters escaped."""
        self.warnings.append(text)
        self.err.print(f"[yellow]warning:[/] {safe_text(text)}", highlight=False)

    def report(self, text: str) -> None:
        """A progress line on stderr (a download, a trial of a sweep), shown literally:
        library code is handed this as its ``report`` sink."""
        self.err.print(safe_text(text), markup=False, highlight=False)

    def note(self, text: str) -> None:
        """A note on stderr (a figure skipped, a hint)."""
        self.err.print(f"[yellow]note:[/] {safe_text(text)}", highlight=False)

    def error_line(self, message: str) -> None:
        """``error: MESSAGE`` on stderr, the message shown literally."""
        self.err.print(f"[bold red]error:[/] {safe_text(message)}", highlight=False)

    def abort(self, message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
        """Print one clear message on stderr and return the Exit to raise."""
        self.error_line(message)
        return typer.Exit(code)

    def print_json(self, doc: Any) -> None:
        """The one JSON document of a --json command, on stdout."""
        typer.echo(json.dumps(doc, indent=2))
        self.json_printed = True

    def print_whole(self, *renderables: RenderableType,
                    measure: list[RenderableType] | None = None) -> None:
        """Print tables at their natural width: numbers are never squeezed into ellipses, even
        when the terminal (or the 80 columns assumed for a pipe) is narrower. ``measure``: the
        renderables whose width counts (default all; leave out free text, which would not
        wrap)."""
        out = self.out
        wide = out.options.update_width(10_000)
        natural = max((out.measure(r, options=wide).maximum for r in measure or renderables),
                      default=0)
        width = out.width
        out.width = max(width, natural)  # print() caps its width at the console's
        try:
            out.print(*renderables)
        finally:
            out.width = width


def _click_context() -> ClickContext | None:
    """The click context of the running command (Typer >= 0.22 vendors click)."""
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # an older Typer, on click itself
        get_current_context = importlib.import_module("click").get_current_context
    return get_current_context(silent=True)


def current() -> Application:
    """The application of the running invocation (a new one outside any command)."""
    ctx = _click_context()
    if ctx is None:
        return Application()
    found = ctx.find_object(Application)
    if found is None:
        found = Application(json_mode=asks_for_json(ctx.find_root().meta.get(
            "dropout_lab.argv", [])))
        ctx.find_root().obj = found
    return found


def _show_usage_error(exc: ClickException) -> None:
    """The error as Typer shows it (its rich box when rich is there)."""
    try:
        from typer import rich_utils
    except ImportError:  # pragma: no cover (rich is a dependency)
        exc.show()
        return
    rich_utils.rich_format_error(exc)


def show_flags_as_flags(command: Any) -> None:
    """A boolean option is a flag (``--dry-run``, never ``--dry-run true``): Typer's help
    shows ``<bool>`` beside it unless it has a metavar, so flags get an empty one (the help
    option too, and every command of a sub-group such as ``datasets``)."""
    if getattr(command, "_flags_shown", False):
        return
    command._flags_shown = True
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    original = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = original(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        show_flags_as_flags(sub)


class JsonErrorsGroup(TyperGroup):
    """The root command group: under --json (anywhere on the line), a command-line error (an
    unknown option, a missing argument, a bad value) is also a JSON object on stdout, like the
    errors of the commands."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Click's standalone mode, plus: a usage error under --json is also a JSON document,
        and a closed stdout (``| head``) ends quietly with 141 instead of click's exit 1."""
        argv = kwargs.get("args")
        if argv is None and args:
            argv = args[0]
        argv = list(sys.argv[1:] if argv is None else argv)
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        try:
            rv = super().main(*args, **{**kwargs, "standalone_mode": False})
        except ClickException as exc:
            if isinstance(exc, UsageError) and asks_for_json(argv):
                param = getattr(exc, "param", None)  # BadParameter's; other UsageErrors none
                key = param.name if param is not None else None
                with contextlib.suppress(BrokenPipeError):
                    typer.echo(json.dumps({"error": exc.format_message(), "code": exc.exit_code,
                                           "key": key, "kind": "UsageError"}, indent=2))
            _show_usage_error(exc)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        except BrokenPipeError:
            _quiet_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
        # Without standalone mode, click returns the code of a typer.Exit (and None when the
        # command returned): exit with it, as standalone mode would.
        sys.exit(rv if isinstance(rv, int) else 0)

    def get_params(self, ctx: ClickContext) -> list[Any]:
        show_flags_as_flags(self)
        return super().get_params(ctx)

    def get_command(self, ctx: ClickContext, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            show_flags_as_flags(command)
        return command

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        ctx.meta["dropout_lab.argv"] = list(args)
        # --json after the command also sets the invocation's JSON mode for usage errors
        return super().parse_args(ctx, args)


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


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM/SIGHUP (CI cancellation, ``timeout``, SLURM, a closed terminal) take the
    Ctrl-C path: stop dispatching, keep finished trials, write the summary."""
    raise Terminated(signum)


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP behave like Ctrl-C (exit 128 + signal number, see
    docs/reliability.md). Only the real command line installs them, not tests in-process."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)


def _quiet_stdout() -> None:
    """stdout's reader is gone (``| head``): point file descriptor 1 at /dev/null, so that
    the interpreter's own flush at exit does not print a second error."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def run_app(argv: list[str] | None = None) -> int:
    """Run the Typer app; a DropoutLabError escaping a command becomes its exit code (2 bad
    input, 3 environment fault), an interruption 130/143, a closed stdout 141, never a
    traceback."""
    try:
        install_signal_handlers()
        app(args=argv, prog_name="dropout-lab", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except DropoutLabError as exc:
        Application().error_line(str(exc))
        return exc.exit_code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt as exc:  # outside a command (click's own parsing, start-up)
        return getattr(exc, "exit_code", 130)
    return 0


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"dropout-lab {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="print the version and exit"),
    json_out: bool = typer.Option(False, "--json",
                                  help="every command prints one JSON document on stdout "
                                  "(also for errors); the same as the command's own --json"),
) -> None:
    # One application per invocation; --json before the command (or after it: the argv
    # holds it) switches the whole invocation to JSON.
    argv = ctx.meta.get("dropout_lab.argv", [])
    ctx.obj = Application(json_mode=json_out or asks_for_json(argv))


def error_doc(exc: DropoutLabError) -> dict[str, object]:
    """The JSON form of an error: ``error`` (the human line), ``code`` (the exit code),
    ``key`` (the config key or option at fault where known, else null), ``kind`` (its type)."""
    return {"error": str(exc), "code": exc.exit_code, "key": getattr(exc, "key", None),
            "kind": type(exc).__name__}


def fault_of(exc: OSError) -> DropoutLabError:
    """An OSError escaping a command: a path the user gave that cannot be (too long, not a
    folder, a loop of links) is bad input (exit 2); anything else the machine refused (exit
    3). The message names the path when the error carries one."""
    fault = EnvironmentFault.from_os_error(exc)
    if exc.errno in _INPUT_ERRNOS:
        bad = DropoutLabError(str(fault))
        return bad
    return fault


def _json_kwargs(fn: Callable[..., Any], kwargs: dict[str, Any], application: Application
                 ) -> None:
    """Under --json anywhere on the line, a command's own --json (or compare's -f) follows."""
    params = inspect.signature(fn).parameters  # the command's options, not its locals
    if kwargs.get("json_out") is True or kwargs.get("fmt") == "json":
        application.json_mode = True
    if application.json_mode:
        if "json_out" in params:
            kwargs["json_out"] = True
        if "fmt" in params and kwargs.get("fmt") in (None, "rich"):
            kwargs["fmt"] = "json"


def guard(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator for commands: domain errors -> message + exit code (2 bad input, 3
    environment fault), Ctrl-C/SIGTERM -> 130/143, a closed stdout -> 141, also under
    CliRunner.

    Under --json the error is also a JSON object on stdout (unless the command already printed
    its document), so a script reading stdout always gets one document; the human line still
    goes to stderr."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        application = current()
        _json_kwargs(fn, kwargs, application)

        def fail(exc: DropoutLabError) -> typer.Exit:
            if application.json_mode and not application.json_printed:
                with contextlib.suppress(BrokenPipeError):
                    application.print_json(error_doc(exc))
            return application.abort(str(exc), exc.exit_code)

        try:
            return fn(*args, **kwargs)
        except DropoutLabError as exc:
            raise fail(exc) from None
        except BrokenPipeError:
            _quiet_stdout()
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except OSError as exc:  # disk full, permission denied, read-only: the environment
            raise fail(fault_of(exc)) from None
        except (OverflowError, RecursionError) as exc:  # a number or nesting beyond any limit
            raise fail(DropoutLabError(f"a value is too large to handle ({exc})")) from None
        except KeyboardInterrupt as exc:
            code = getattr(exc, "exit_code", 130)
            if application.json_mode and not application.json_printed:
                with contextlib.suppress(OSError):
                    application.print_json({"error": "interrupted", "code": code, "key": None,
                                            "kind": "Interrupted"})
            raise application.abort("interrupted", code) from None

    return wrapper


@contextlib.contextmanager
def stdout_reserved(json_out: bool) -> Iterator[None]:
    """Under --json, stdout carries one JSON document only: while a command runs, file
    descriptor 1 points at stderr, so whatever a library or a worker writes there (Ray's
    "(raylet) A worker died" lines) lands on stderr instead."""
    if not json_out:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
