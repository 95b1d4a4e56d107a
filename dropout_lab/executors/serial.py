"""Run trials one after another in this process (``--workers 1``)."""

from __future__ import annotations

from collections.abc import Generator

from dropout_lab.executors.base import Events
from dropout_lab.sweep import GridPoint
from dropout_lab.trial import TrialOutcome, run_trial


class SerialExecutor:
    name = "serial"

    def __init__(self, threads: int):
        self.workers = 1
        self.threads = threads

    def close(self) -> None:
        pass

    def run(self, points: list[GridPoint], events: Events
            ) -> Generator[TrialOutcome, None, None]:
        for point in points:
            events.started(point.trial_id)
            yield run_trial(point.config_dict, point.trial_id, point.params,
                            threads=self.threads, workers=1, on_epoch=events.epoch,
                            resume=point.resume, on_checkpoint=events.checkpoint)
