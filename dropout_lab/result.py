"""What a trial's result.json holds: its :class:`Status` and its keys (:class:`Result`).

The schema is documented in one place, docs/results.md (every key, type, meaning and unit);
the TypedDicts here are the same schema for the type checker, and tests/test_result.py checks
a real trial's result.json against both.

:class:`Status` is a ``str`` enum, so a member *is* its string: ``json.dumps(Status.DONE)``
writes ``"done"`` (result.json, summary.csv and every JSON output stay as they were) and a
status read back from an old file compares equal to the member (``"done" == Status.DONE``).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypedDict


class Status(str, Enum):
    """What became of a trial (result.json ``status``).

    (``enum.StrEnum`` needs Python 3.11; we support 3.10, so ``str()`` and ``format()`` are
    defined here to give the plain string, as StrEnum's do, in f-strings and CSV cells.)"""

    DONE = "done"  # trained to the end (or early-stopped): ``final`` holds its numbers
    FAILED = "failed"  # an exception, or its worker was lost: ``error`` says why
    DIVERGED = "diverged"  # a non-finite loss: ``reason`` names the epoch
    # Never written to result.json; readers report these for a trial of the grid:
    PENDING = "pending"  # no result.json yet (not run, or running now)
    CORRUPT = "corrupt"  # a result.json that cannot be read or does not fit the grid

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


# A trial that ran and did not finish: a re-run retries it, ``gc`` drops it, exit code 1.
UNSUCCESSFUL = (Status.FAILED, Status.DIVERGED)


class Final(TypedDict):
    """Evaluation-mode numbers of the last epoch (no dropout), on all training examples."""

    train_loss: float  # mean cross-entropy, nats
    train_acc: float  # fraction correct, 0..1
    test_loss: float
    test_acc: float
    gap_acc: float  # train_acc - test_acc
    gap_loss: float  # test_loss - train_loss


class _BestEpochAlways(TypedDict):
    by: str | None  # "val_acc", or None without a validation split
    epoch: int


class BestEpoch(_BestEpochAlways, total=False):
    """The epoch a user would stop at (:func:`dropout_lab.trial.best_epoch`)."""

    test_acc: float  # these only when ``by`` is "val_acc"
    val_acc: float
    val_loss: float
    metrics: Final  # that epoch's numbers (training ones on the curve sample)
    train_n: int  # training examples those numbers were measured on


class Health(TypedDict):
    """Health flags of a finished trial (dropout_lab/health.py, docs/metrics.md)."""

    flags: list[str]
    checks: dict[str, Any]
    thresholds: dict[str, float]


class Timing(TypedDict, total=False):
    """Seconds spent, and when the trial started (``{}`` for a lost worker)."""

    stats_seconds: float  # after-training statistics (done trials)
    setup_seconds: float  # data loading, initial weights, building the network
    train_seconds: float  # the training loop, evaluations included
    total_seconds: float
    started_at: float  # Unix time


class PackInfo(TypedDict):
    """Where a packed trial sat: the pack's number of members and its own index (0-based)."""

    size: int
    index: int


class _EnvAlways(TypedDict):
    backend: str | None
    device: str | None  # None until the backend chose one
    threads: int | None
    workers: int
    dtype: str | None
    versions: dict[str, str]


class Env(_EnvAlways, total=False):
    """What the trial ran on."""

    python: str  # these: every trial that started in a worker (not a lost one)
    platform: str
    thread_pools: list[dict[str, Any]]  # these: once the backend is set up
    scipy: str | None
    scipy_loaded: bool
    code: dict[str, Any]  # environment.code_version(): package version, git commit, dirty
    data: dict[str, Any]  # data.fingerprint.fingerprint(): sha256 of the files read, per file
    pack: PackInfo  # only for a trial trained in a pack (dropout_lab/packs)


class _ResultAlways(TypedDict):
    trial_id: str
    status: Status
    params: dict[str, Any]


class Result(_ResultAlways, total=False):
    """result.json as a trial writes it (keys in writing order; which ones depends on the
    status: docs/results.md). Readers also build records of this shape, status PENDING or
    CORRUPT, for trials of the grid without a readable result.json."""

    final: Final | None  # None unless done
    timing: Timing
    env: Env
    reason: str  # diverged: why
    epochs_trained: int  # done: this key and the ones below
    stopped_by: str  # "epochs" | "early_stopping"
    best_epoch: BestEpoch
    health: Health
    coadaptation: dict[str, Any]  # when eval.coadaptation (docs/metrics.md)
    uncertainty: dict[str, Any]  # when eval.uncertainty (docs/metrics.md)
    # dropout.variant concrete: the learned p of each unit layer after the last epoch
    # (0 = the input, 1.. the hidden layers; None where p is not learned)
    learned_p: list[float | None]
    error: str  # failed: the last line of the traceback (error.txt holds all of it)
    resumed: dict[str, Any]  # continued from a checkpoint: from_epoch, train_seconds_before


# The keys of ``final``, in the order they are written (summary.csv's columns too).
FINAL_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "gap_acc", "gap_loss")
