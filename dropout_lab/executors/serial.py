"""Run packs (a solo trial is a pack of one) one after another in this process
(``--workers 1``).

A solo trial runs in the calling thread. A stacked pack runs in one helper thread whose
events (epoch rows, checkpoints) and member outcomes come back through one queue, in the
order they happened, and are handled here, in the caller's thread, as the local executor
handles its workers' pipes: so a member that is final before its pack ends (early-stopped,
diverged) is yielded, and stored by the runner, at once, and a kill -9 later does not make
the next run train it again. Only this thread touches the store and the display.
"""

from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Generator
from typing import Any

from dropout_lab.executors.base import Events, lost_trial, run_unit
from dropout_lab.packs.plan import Pack
from dropout_lab.trial import TrialOutcome


class _Cancelled(BaseException):
    """Raised in the pack's thread when the sweep stopped consuming (Ctrl-C, an error); a
    BaseException, so that no member's ``except Exception`` turns it into a failure."""


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
            if not pack.stacked:
                yield from run_unit(pack, self.threads, 1, on_epoch=events.epoch,
                                    on_checkpoint=events.checkpoint)
            else:
                yield from self._stacked(pack, events)

    def _stacked(self, pack: Pack, events: Events) -> Generator[TrialOutcome, None, None]:
        """One pack in a helper thread; its messages handled here as they come."""
        messages: queue.Queue[tuple[Any, ...]] = queue.Queue()
        cancelled = threading.Event()

        def put(message: tuple[Any, ...]) -> None:
            if cancelled.is_set():  # nobody reads any more: stop the pack at its next event
                raise _Cancelled
            messages.put(message)

        def body() -> None:
            sent: set[str] = set()

            def on_outcome(outcome: TrialOutcome) -> None:
                sent.add(outcome.trial_id)
                put(("outcome", outcome))

            try:
                for outcome in run_unit(
                        pack, self.threads, 1,
                        on_epoch=lambda *row: put(("epoch", *row)),
                        on_outcome=on_outcome,
                        on_checkpoint=lambda *ck: put(("checkpoint", *ck))):
                    if outcome.trial_id not in sent:
                        put(("outcome", outcome))
            except _Cancelled:
                pass
            except BaseException:  # noqa: BLE001 - reported as the members' failure below
                messages.put(("crashed", traceback.format_exc()))
            messages.put(("end",))

        thread = threading.Thread(target=body, name="dropout-lab-pack", daemon=True)
        thread.start()
        owed = {p.trial_id: p for p in pack.points}
        try:
            while True:
                message = messages.get()
                kind = message[0]
                if kind == "epoch":
                    events.epoch(*message[1:])
                elif kind == "checkpoint":
                    events.checkpoint(*message[1:])
                elif kind == "outcome":
                    owed.pop(message[1].trial_id, None)
                    yield message[1]
                elif kind == "crashed":
                    for point in list(owed.values()):
                        yield lost_trial(point, message[1], self.threads, 1)
                    owed.clear()
                else:
                    break
            thread.join()
        finally:
            cancelled.set()
