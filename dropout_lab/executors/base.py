"""The executor contract: ``run(points, events) -> iterator of outcomes`` (Hydra's launcher).

An executor gets :class:`~dropout_lab.sweep.GridPoint` s (they pickle: a worker process or a
Ray task gets the point itself) and yields one :class:`~dropout_lab.trial.TrialOutcome` per
point, in completion order.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Protocol

from dropout_lab.result import Result, Status
from dropout_lab.sweep import GridPoint
from dropout_lab.trial import TrialOutcome


class Events(Protocol):
    """What an executor reports while it runs (the progress display listens)."""

    def started(self, trial_id: str) -> None: ...

    def epoch(self, trial_id: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
        """One epoch finished; ``row`` is its metrics row (as metrics.jsonl stores it)."""

    def checkpoint(self, trial_id: str, epoch: int, data: bytes) -> None:
        """The trial's checkpoint after ``epoch`` (after that epoch's row): the runner writes
        it (dropout_lab/checkpoint.py); displays ignore it."""

    def finished(self, trial_id: str, status: Status) -> None:
        """The trial ended with ``status`` (its outcome is already written to the store)."""


class Executor(Protocol):
    name: str
    workers: int
    threads: int

    def close(self) -> None:
        """Release what the executor holds (a Ray connection); safe to call twice."""

    def run(self, points: list[GridPoint], events: Events
            ) -> Generator[TrialOutcome, None, None]:
        """Yield one outcome per point, in completion order. Closing the generator (or an
        exception such as KeyboardInterrupt in the consumer) cancels what is still running."""


def lost_trial(point: GridPoint, reason: str, threads: int, workers: int) -> TrialOutcome:
    """The outcome of a trial whose worker vanished (killed, out of memory, crashed): failed,
    with the reason as its error, so the sweep goes on and a re-run retries the trial."""
    result: Result = {
        "trial_id": point.trial_id, "status": Status.FAILED, "params": point.params,
        "final": None, "error": reason, "timing": {},
        "env": {"backend": point.config.backend, "device": None, "threads": threads,
                "workers": workers, "dtype": point.config.dtype, "versions": {}},
    }
    return TrialOutcome(point.trial_id, Status.FAILED, result, [], reason + "\n")
