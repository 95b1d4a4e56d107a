"""Run packs (a solo trial is a pack of one) one after another in this process
(``--workers 1``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any

from dropout_lab.errors import TrialPruned
from dropout_lab.executors.base import Events, Feed, StopTest, run_unit
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

    def run(self, packs: list[Pack], events: Events, feed: Feed | None = None,
            stop: StopTest | None = None) -> Generator[TrialOutcome, None, None]:
        def on_epoch(trial_id: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
            events.epoch(trial_id, epoch, epochs, row)
            if stop is not None and stop(trial_id):  # decided by the search just now
                raise TrialPruned(trial_id)

        queue = deque(packs)
        while True:
            if not queue and feed is not None:
                queue.extend(feed())
            if not queue:
                return
            pack = queue.popleft()
            for point in pack.points:
                events.started(point.trial_id)
            yield from run_unit(pack, self.threads, 1, on_epoch=on_epoch,
                                on_checkpoint=events.checkpoint)
