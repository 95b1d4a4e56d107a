"""The executor contract: ``run(jobs, events) -> iterator of outcomes`` (Hydra's launcher)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from dropout_lab.result import Result, Status
from dropout_lab.trial import TrialOutcome


@dataclass(frozen=True)
class Job:
    """Plain, picklable description of one trial: what a worker process or Ray task gets."""

    trial_id: str
    config: dict[str, Any]
    params: dict[str, Any]


class Events(Protocol):
    """What an executor reports while it runs (the progress display listens)."""

    def started(self, trial_id: str) -> None: ...

    def epoch(self, trial_id: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
        """One epoch finished; ``row`` is its metrics row (as metrics.jsonl stores it)."""

    def finished(self, trial_id: str, status: Status) -> None:
        """The trial ended with ``status`` (its outcome is already written to the store)."""


class Executor(Protocol):
    name: str
    workers: int
    threads: int

    def close(self) -> None:
        """Release what the executor holds (a Ray connection); safe to call twice."""

    def run(self, jobs: list[Job], events: Events) -> Iterator[TrialOutcome]:
        """Yield one outcome per job, in completion order. Closing the iterator (or an
        exception such as KeyboardInterrupt in the consumer) cancels what is still running."""


def lost_trial(job: Job, reason: str, threads: int, workers: int) -> TrialOutcome:
    """The outcome of a trial whose worker vanished (killed, out of memory, crashed): failed,
    with the reason as its error, so the sweep goes on and a re-run retries the trial."""
    result: Result = {
        "trial_id": job.trial_id, "status": Status.FAILED, "params": job.params, "final": None,
        "error": reason, "timing": {},
        "env": {"backend": job.config.get("backend"), "device": None, "threads": threads,
                "workers": workers, "dtype": job.config.get("dtype"), "versions": {}},
    }
    return TrialOutcome(job.trial_id, Status.FAILED, result, [], reason + "\n")
