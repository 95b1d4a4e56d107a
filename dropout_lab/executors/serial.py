"""Run packs (a solo trial is a pack of one) one after another in this process
(``--workers 1``)."""

from __future__ import annotations

from collections.abc import Generator

from dropout_lab.executors.base import Events, run_unit
from dropout_lab.packs.plan import Pack
from dropout_lab.trial import TrialOutcome


class SerialExecutor:
    # Users see one executor, ``local`` (``--executor local``, the progress header "executor
    # local: 1 worker x 2 threads"); with one worker it runs the packs in this process.
    name = "local"

    def __init__(self, threads: int):
        self.workers = 1
        self.threads = threads

    def close(self) -> None:
        pass

    def run(self, packs: list[Pack], events: Events
            ) -> Generator[TrialOutcome, None, None]:
        for pack in packs:
            for point in pack.points:
                events.started(point.trial_id)
            yield from run_unit(pack, self.threads, 1, on_epoch=events.epoch,
                                on_checkpoint=events.checkpoint)
