"""Typed errors. Library code raises these; only the CLI turns them into a message and exit 2."""

from __future__ import annotations


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


class ExecutorError(DropoutLabError):
    """An executor cannot start: bad --workers/--threads, Ray not installed or unreachable."""


class OutputError(DropoutLabError):
    """An output option (--columns, --sort, --filter, --to) names something that is not there."""
