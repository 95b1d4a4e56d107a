"""The executor contract: ``run(packs, events) -> iterator of outcomes`` (Hydra's launcher).

An executor gets :class:`~dropout_lab.packs.plan.Pack` s, each a list of
:class:`~dropout_lab.sweep.GridPoint` s trained as one task (a solo trial is a pack of one;
packs pickle: a worker process or a Ray task gets the pack itself), and yields one
:class:`~dropout_lab.trial.TrialOutcome` per point, in completion order. :func:`run_unit` is
what every executor calls where the work runs.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol

from dropout_lab.executors.threads import thread_budget
from dropout_lab.packs.plan import Pack
from dropout_lab.result import Result, Status
from dropout_lab.sweep import GridPoint
from dropout_lab.trial import EpochCallback, TrialOutcome, run_trial

if TYPE_CHECKING:
    from dropout_lab.packs.train import PackMember


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


# A search's supply of work (dropout_lab/search): called when a worker is idle and the queue
# is empty; returns the next packs to run ([] when there is nothing more for now; the run ends
# when it returns [] and nothing is running).
Feed = Callable[[], list[Pack]]
# A search's stop test: True once a pruner has stopped this trial; the executor then stops it
# after its current epoch (it ends as status ``pruned``).
StopTest = Callable[[str], bool]


class Executor(Protocol):
    name: str
    workers: int
    threads: int

    def close(self) -> None:
        """Release what the executor holds (a Ray connection); safe to call twice."""

    def run(self, packs: list[Pack], events: Events, feed: Feed | None = None,
            stop: StopTest | None = None) -> Generator[TrialOutcome, None, None]:
        """Yield one outcome per point of every pack, in completion order. Closing the
        generator (or an exception such as KeyboardInterrupt in the consumer) cancels what is
        still running. ``feed`` and ``stop`` (a search) are taken by the serial and local
        executors; Ray refuses them."""


def run_unit(pack: Pack, threads: int | None, workers: int,
             on_epoch: EpochCallback | None = None,
             on_outcome: Callable[[TrialOutcome], None] | None = None,
             on_checkpoint: Callable[[str, int, bytes], None] | None = None
             ) -> list[TrialOutcome]:
    """Train one pack where the executor put it; one outcome per member, in member order
    (:func:`run_members` on the pack's points as plain data)."""
    return run_members(pack_members(pack), threads, workers, on_epoch, on_outcome,
                       on_checkpoint=on_checkpoint, stacked=pack.stacked)


def pack_members(pack: Pack) -> list[PackMember]:
    """The pack's points as plain data (what a worker or a Ray task receives), each with the
    checkpoint it continues from."""
    from dropout_lab.packs.train import PackMember

    return [PackMember(p.config_dict, p.trial_id, p.params, p.resume) for p in pack.points]


def run_members(members: list[PackMember], threads: int | None, workers: int,
                on_epoch: EpochCallback | None = None,
                on_outcome: Callable[[TrialOutcome], None] | None = None,
                on_checkpoint: Callable[[str, int, bytes], None] | None = None,
                stacked: bool = False) -> list[TrialOutcome]:
    """Train the members of one pack (plain data: what a Ray task receives).

    A pack of one is an ordinary trial (:func:`~dropout_lab.trial.run_trial`, no ``env.pack``):
    ``--pack 1`` is the unpacked sweep exactly. A larger pack trains as one stacked network
    (:func:`~dropout_lab.packs.train.run_pack`); should that raise rather than return (it
    turns a member's exception into that member's failed outcome itself), every member fails
    with the traceback, so the sweep goes on and a re-run retries them. ``on_outcome`` gets a
    member's outcome as soon as it is final (an early-stopped or diverged member before its
    pack ends), so a worker can send it at once; the returned list still holds every one.
    ``on_checkpoint`` gets the checkpoints ``train.checkpoint_every`` asks for (a pack's:
    one per member, each in its own trial folder); a member continues from its ``resume``.
    ``stacked`` (:attr:`~dropout_lab.packs.plan.Pack.stacked`): one member continuing from a
    pack's checkpoint trains on the pack's code path (a pack of one), not as a solo trial."""
    with thread_budget(threads):  # this process's threads, whichever executor runs it
        if len(members) == 1 and not stacked:
            m = members[0]
            return [run_trial(m.config, m.trial_id, m.params, threads=threads, workers=workers,
                              on_epoch=on_epoch, resume=m.resume, on_checkpoint=on_checkpoint)]
        from dropout_lab.packs.train import run_pack

        try:
            return run_pack(members, threads=threads, workers=workers, on_epoch=on_epoch,
                            on_outcome=on_outcome, on_checkpoint=on_checkpoint)
        except Exception:  # noqa: BLE001 - a failed pack is data, as a failed trial is
            error = traceback.format_exc()
            return [_failed(m.trial_id, m.params, m.config, error, threads, workers)
                    for m in members]


def lost_trial(point: GridPoint, reason: str, threads: int | None, workers: int
               ) -> TrialOutcome:
    """The outcome of a trial whose worker vanished (killed, out of memory, crashed): failed,
    with the reason as its error, so the sweep goes on and a re-run retries the trial. A
    worker that dies mid-pack loses every member it had not returned yet."""
    return _failed(point.trial_id, point.params, point.config_dict, reason + "\n", threads,
                   workers)


def _failed(trial_id: str, params: dict[str, Any], config: dict[str, Any], error: str,
            threads: int | None, workers: int) -> TrialOutcome:
    """A failed outcome with ``error`` (a reason or a traceback) as its error text; the
    result's ``error`` is its last line, as for a trial that raised."""
    result: Result = {
        "trial_id": trial_id, "status": Status.FAILED, "params": params,
        "final": None, "error": error.strip().splitlines()[-1], "timing": {},
        "env": {"backend": config.get("backend", ""), "device": None, "threads": threads,
                "workers": workers, "dtype": config.get("dtype", ""), "versions": {}},
    }
    return TrialOutcome(trial_id, Status.FAILED, result, [], error)
