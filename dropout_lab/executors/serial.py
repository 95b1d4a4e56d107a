"""Run trials one after another in this process (``--workers 1``)."""

from __future__ import annotations

from collections.abc import Iterator

from dropout_lab.executors.base import Events, Job
from dropout_lab.trial import TrialOutcome, run_trial


class SerialExecutor:
    name = "serial"

    def __init__(self, threads: int):
        self.workers = 1
        self.threads = threads

    def close(self) -> None:
        pass

    def run(self, jobs: list[Job], events: Events) -> Iterator[TrialOutcome]:
        for job in jobs:
            events.started(job.trial_id)
            yield run_trial(job.config, job.trial_id, job.params, threads=self.threads,
                            workers=1, on_epoch=events.epoch)
