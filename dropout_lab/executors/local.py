"""Run packs in a small pool of worker processes on this machine (``--workers N``).

Why not ``concurrent.futures.ProcessPoolExecutor``: when one of its workers dies (SIGKILL, the
out-of-memory killer) it marks *every* pending future broken. Here each worker is a
``multiprocessing.Process`` with its own pipe, the driver knows which trial each worker holds,
and a dead worker costs exactly the pack it held (each member it had not returned is
recorded as failed) and is replaced. A solo trial is a pack of one.

* Workers are started once (``spawn``: a fresh interpreter, nothing inherited from the
  driver's threads) and run trial after trial, so each keeps its data sets in memory
  (``dropout_lab.data`` caches loads per process).
* The BLAS thread limit is set before the worker imports NumPy (the ``*_NUM_THREADS``
  variables of its environment) and again with threadpoolctl; torch gets
  ``set_num_threads`` from the backend at each trial. Equal threads per trial give
  bit-identical results whatever the number of workers (see ``executors/budget.py``).
* Workers ignore SIGINT: Ctrl-C reaches the whole process group, and only the driver decides
  what happens (it stops the workers; finished trials are already stored). A worker whose
  driver is gone (killed) exits quietly at its next message.
* Messages are small: ``started`` per member, ``epoch``, ``checkpoint`` (a solo trial's
  state, which the driver writes: dropout_lab/checkpoint.py) and one outcome per member (as
  soon as it is final).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from threadpoolctl import threadpool_limits

from dropout_lab.errors import TrialPruned
from dropout_lab.executors.base import Events, Feed, StopTest, lost_trial, run_unit
from dropout_lab.executors.threads import thread_env
from dropout_lab.packs.plan import Pack
from dropout_lab.sweep import GridPoint
from dropout_lab.trial import TrialOutcome

POLL_SECONDS = 0.5  # how often the driver wakes up with nothing to read (liveness checks)
STOP_GRACE_SECONDS = 3.0  # after SIGTERM, how long a worker gets before SIGKILL


def _worker_main(conn: Connection, threads: int, workers: int) -> None:
    """Body of a worker process: receive packs, run them, send back events and outcomes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C
    limits = threadpool_limits(limits=threads)  # noqa: F841 (held for the process's lifetime)

    def send(message: tuple[Any, ...]) -> None:
        try:
            conn.send(message)
        except OSError:  # BrokenPipeError: the driver is gone (killed); nobody to tell
            os._exit(0)  # quietly: no traceback, no cleanup that could write anything

    sent: set[str] = set()  # members of the current pack already sent to the driver
    while True:
        try:
            pack = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if pack is None:
            return
        if isinstance(pack, tuple):  # ("stop", id) for a trial that has ended since: late
            continue
        for point in pack.points:
            send(("started", point.trial_id))

        def on_epoch(trial_id: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
            send(("epoch", trial_id, epoch, epochs, row))
            # A search's pruner may have stopped this trial (the driver decides from the rows
            # it gets; the message reaches us after this epoch or a later one).
            while conn.poll():
                message = conn.recv()
                if isinstance(message, tuple) and message == ("stop", trial_id):
                    raise TrialPruned(trial_id)

        def on_checkpoint(trial_id: str, epoch: int, data: bytes) -> None:
            send(("checkpoint", trial_id, epoch, data))  # after its epoch's row (one pipe)

        sent.clear()

        def on_outcome(outcome: TrialOutcome) -> None:
            # A member final before its pack ends (early-stopped, diverged) goes to the
            # driver at once, which stores it: a worker killed later does not lose it.
            sent.add(outcome.trial_id)
            send(("outcome", outcome))

        for outcome in run_unit(pack, threads, workers, on_epoch=on_epoch,
                                on_outcome=on_outcome, on_checkpoint=on_checkpoint):
            if outcome.trial_id not in sent:
                send(("outcome", outcome))


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Spawn with SIGINT ignored: the disposition survives exec, so a Ctrl-C that arrives
    while the worker is still importing cannot kill it with a traceback."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not ours to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Spawn without re-running the driver's main script in the worker.

    ``spawn`` re-imports the parent's ``__main__`` in every child when it is a file (the
    ``dropout-lab`` console script: 0.6 s of CLI imports per worker, measured) but not when it
    was run as a module (``python -m dropout_lab``). Workers need nothing from it (grid points
    and the worker function live in ``dropout_lab`` modules), so its ``__file__`` is hidden for
    the instant of ``start()``."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or getattr(main, "__spec__", None) is not None:
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


@dataclass
class _Slot:
    """One worker process, its end of the pipe, and the members of the pack it runs whose
    outcomes have not come back yet (empty when idle)."""

    process: Any
    conn: Connection
    owed: dict[str, GridPoint] = field(default_factory=dict)
    released: bool = False  # told to exit (nothing left to run)
    stopped: set[str] = field(default_factory=set)  # trials told to stop (a search's pruner)

    @property
    def busy(self) -> bool:
        return bool(self.owed)


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        return f"worker process died (signal {-exitcode}, {name})"
    return f"worker process died (exit code {exitcode})"


class LocalExecutor:
    """``workers`` processes, each running one pack at a time with ``threads`` threads."""

    name = "local"

    def __init__(self, workers: int, threads: int):
        self.workers = workers
        self.threads = threads
        self._ctx = mp.get_context("spawn")

    # -- worker life cycle --------------------------------------------------------------------
    def _spawn(self) -> _Slot:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=_worker_main, args=(child, self.threads, self.workers),
                                    name="dropout-lab-worker", daemon=True)
        with thread_env(self.threads), _sigint_ignored(), _main_module_hidden():
            process.start()
        child.close()  # the driver keeps only its end: EOF on it means the worker is gone
        return _Slot(process, parent)

    @staticmethod
    def _stop(slots: list[_Slot]) -> None:
        """Idle workers get a polite stop; busy ones (cancelled trials) SIGTERM, then SIGKILL."""
        for s in slots:
            if s.process.is_alive() and not s.released:
                if not s.busy:
                    with contextlib.suppress(OSError, BrokenPipeError):
                        s.conn.send(None)
                else:
                    s.process.terminate()
        for s in slots:
            s.process.join(STOP_GRACE_SECONDS)
            if s.process.is_alive():
                s.process.kill()
                s.process.join()
            s.conn.close()

    def close(self) -> None:
        pass  # workers live only while run() does

    # -- the Executor protocol ----------------------------------------------------------------
    def run(self, packs: list[Pack], events: Events, feed: Feed | None = None,
            stop: StopTest | None = None) -> Generator[TrialOutcome, None, None]:
        queue = deque(packs)
        slots = [self._spawn() for _ in range(min(self.workers, len(packs)))]
        try:
            while True:
                if feed is not None:  # a search: ask for work while a worker would be idle
                    while len(queue) < sum(not s.busy for s in slots) + self.workers \
                            - len(slots):
                        more = feed()
                        if not more:
                            break
                        queue.extend(more)
                    while len(slots) < min(self.workers, len(queue) + sum(s.busy for s in slots)):
                        slots.append(self._spawn())
                if not (queue or any(s.busy for s in slots)):
                    break
                for i, s in enumerate(slots):
                    if not s.busy and queue:
                        if not s.process.is_alive():  # died while idle: replace it
                            s.conn.close()
                            slots[i] = s = self._spawn()
                        pack = queue.popleft()
                        s.owed = {p.trial_id: p for p in pack.points}
                        try:
                            s.conn.send(pack)
                        except (BrokenPipeError, OSError):
                            pass  # it died just now: its sentinel reports it below
                    elif not s.busy and not queue and not s.released and feed is None:
                        # Nothing left for it: let it exit now, while the others finish (a
                        # search's worker waits: the feed may have more once a trial ends).
                        s.released = True
                        with contextlib.suppress(OSError):
                            s.conn.send(None)
                busy = [s for s in slots if s.busy]
                ready = set(wait([s.conn for s in busy] + [s.process.sentinel for s in busy],
                                 timeout=POLL_SECONDS))
                for i, s in enumerate(slots):
                    if s.conn in ready:
                        yield from self._read(s, events, stop)
                    if s.busy and (s.process.sentinel in ready or not s.process.is_alive()):
                        yield from self._read(s, events, stop)  # what it sent before dying
                        if s.busy:  # every member it had not returned is lost
                            s.process.join()
                            reason = _death_reason(s.process.exitcode)
                            lost, s.owed = list(s.owed.values()), {}
                            for point in lost:
                                yield lost_trial(point, reason, self.threads, self.workers)
                        s.conn.close()
                        slots[i] = (self._spawn() if queue or feed is not None
                                    else _Slot(s.process, s.conn))
        finally:
            self._stop(slots)

    @staticmethod
    def _read(slot: _Slot, events: Events, stop: StopTest | None = None
              ) -> Iterator[TrialOutcome]:
        """Handle every message waiting on a worker's pipe; yield the outcome if one came.
        After an epoch, a trial ``stop`` says is pruned gets one ("stop", id) message."""
        while not slot.conn.closed:
            try:
                if not slot.conn.poll():
                    return
                msg = slot.conn.recv()
            except (EOFError, OSError):
                return  # the worker is gone; the caller notices through its sentinel
            kind = msg[0]
            if kind == "started":
                events.started(msg[1])
            elif kind == "epoch":
                events.epoch(msg[1], msg[2], msg[3], msg[4])
                if stop is not None and msg[1] not in slot.stopped and stop(msg[1]):
                    slot.stopped.add(msg[1])
                    with contextlib.suppress(OSError):
                        slot.conn.send(("stop", msg[1]))
            elif kind == "checkpoint":
                events.checkpoint(msg[1], msg[2], msg[3])
            elif kind == "outcome":
                slot.owed.pop(msg[1].trial_id, None)
                yield msg[1]
