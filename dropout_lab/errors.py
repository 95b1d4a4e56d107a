"""Typed errors. Library code raises these; only the CLI turns them into a message and an
exit code: 2 for input the user can fix, 3 for a fault of the environment (disk full,
permission denied, read-only file system), see docs/reliability.md."""

from __future__ import annotations

import errno


class DropoutLabError(Exception):
    """Base of every error the user can fix (bad config, missing data, unknown backend...)."""

    exit_code = 2


class ConfigError(DropoutLabError):
    """The config file or a --set override is invalid."""


class DataError(DropoutLabError):
    """A data set cannot be found, downloaded, verified or parsed."""


class BackendError(DropoutLabError):
    """A backend or device is unknown or not available on this machine."""


class StoreError(DropoutLabError):
    """The runs directory is missing, unreadable or not a sweep."""


class ExpectationError(DropoutLabError):
    """A --expect expression is malformed."""


class CompareError(DropoutLabError):
    """compare/plot/report was asked for an axis, value or metric the sweep does not have."""


class DivergedError(Exception):
    """Training produced a NaN or infinite loss (recorded as status 'diverged', not a crash)."""


class TrialPruned(Exception):  # noqa: N818 - named as Optuna names its own
    """A search's pruner stopped the trial after an epoch (recorded as status 'pruned', not a
    failure): raised from the epoch callback, caught by :func:`dropout_lab.trial.run_trial`."""


class ExecutorError(DropoutLabError):
    """An executor cannot start: bad --workers/--threads, Ray not installed or unreachable."""


# errno values that mean "the machine refused", not "the input is wrong".
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM,
                                errno.EROFS, errno.EIO, errno.EMFILE, errno.ENFILE})


class EnvironmentFault(DropoutLabError):
    """The machine refused an operation on a path (disk full, permission denied, read-only
    file system): the input was fine, so it gets its own exit code."""

    exit_code = 3

    @classmethod
    def from_os_error(cls, exc: OSError, what: str = "cannot access",
                      path: object = None) -> EnvironmentFault:
        """One line naming the path and the cause, e.g. ``cannot write runs/x/summary.csv:
        No space left on device``."""
        where = path if path is not None else exc.filename  # the path the user knows
        cause = exc.strerror or str(exc) or type(exc).__name__
        return cls(f"{what} {where if where is not None else '(unknown path)'}: {cause}")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: handled like Ctrl-C, with exit code 128 + the signal
    number (143 for SIGTERM, 129 for SIGHUP)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum


class OutputError(DropoutLabError):
    """An output option (--columns, --sort, --filter, --to) names something that is not there."""


class MissingExtraError(DropoutLabError, ImportError):
    """A feature needs an optional extra that is not installed; the message names the pip
    command (``pip install "dropout-lab[pandas]"``)."""
