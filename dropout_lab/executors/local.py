"""Run trials in a small pool of worker processes on this machine (``--workers N``).

Why not ``concurrent.futures.ProcessPoolExecutor``: when one of its workers dies (SIGKILL, the
out-of-memory killer) it marks *every* pending future broken. Here each worker is a
``multiprocessing.Process`` with its own pipe, the driver knows which trial each worker holds,
and a dead worker costs exactly one trial (recorded as failed) and is replaced.

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
* Messages are small: ``started``, ``epoch``, ``checkpoint`` (the trial's state, which the
  driver writes: dropout_lab/checkpoint.py) and, at the end, the outcome.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from threadpoolctl import threadpool_limits

from dropout_lab.executors.base import Events, lost_trial
from dropout_lab.sweep import GridPoint
from dropout_lab.trial import TrialOutcome, run_trial

# Read once by each BLAS/OpenMP runtime when it loads: set in the worker's environment so the
# runtime starts with the right pool size (threadpoolctl then enforces it as well).
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

POLL_SECONDS = 0.5  # how often the driver wakes up with nothing to read (liveness checks)
STOP_GRACE_SECONDS = 3.0  # after SIGTERM, how long a worker gets before SIGKILL


def _worker_main(conn: Connection, threads: int, workers: int) -> None:
    """Body of a worker process: receive grid points, run them, send back events and
    outcomes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C
    limits = threadpool_limits(limits=threads)  # noqa: F841 (held for the process's lifetime)

    def send(message: tuple[Any, ...]) -> None:
        try:
            conn.send(message)
        except OSError:  # BrokenPipeError: the driver is gone (killed); nobody to tell
            os._exit(0)  # quietly: no traceback, no cleanup that could write anything

    while True:
        try:
            point = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if point is None:
            return
        send(("started", point.trial_id))

        def on_epoch(trial_id: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
            send(("epoch", trial_id, epoch, epochs, row))

        def on_checkpoint(trial_id: str, epoch: int, data: bytes) -> None:
            send(("checkpoint", trial_id, epoch, data))  # after its epoch's row (one pipe)

        outcome = run_trial(point.config_dict, point.trial_id, point.params, threads=threads,
                            workers=workers, on_epoch=on_epoch, resume=point.resume,
                            on_checkpoint=on_checkpoint)
        send(("outcome", outcome))


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """Set the BLAS/OpenMP thread variables while a worker is spawned (it copies the
    environment), then restore the driver's own values."""
    saved = {k: os.environ.get(k) for k in THREAD_ENV_VARS}
    os.environ.update({k: str(threads) for k in THREAD_ENV_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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
    """One worker process, its end of the pipe, and the point it runs (None when idle)."""

    process: Any
    conn: Connection
    point: GridPoint | None = None
    released: bool = False  # told to exit (nothing left to run)


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        return f"worker process died (signal {-exitcode}, {name})"
    return f"worker process died (exit code {exitcode})"


class LocalExecutor:
    """``workers`` processes, each running one trial at a time with ``threads`` threads."""

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
        with _thread_env(self.threads), _sigint_ignored(), _main_module_hidden():
            process.start()
        child.close()  # the driver keeps only its end: EOF on it means the worker is gone
        return _Slot(process, parent)

    @staticmethod
    def _stop(slots: list[_Slot]) -> None:
        """Idle workers get a polite stop; busy ones (cancelled trials) SIGTERM, then SIGKILL."""
        for s in slots:
            if s.process.is_alive() and not s.released:
                if s.point is None:
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
    def run(self, points: list[GridPoint], events: Events
            ) -> Generator[TrialOutcome, None, None]:
        queue = deque(points)
        slots = [self._spawn() for _ in range(min(self.workers, len(points)))]
        try:
            while queue or any(s.point is not None for s in slots):
                for i, s in enumerate(slots):
                    if s.point is None and queue:
                        if not s.process.is_alive():  # died while idle: replace it
                            s.conn.close()
                            slots[i] = s = self._spawn()
                        s.point = queue.popleft()
                        try:
                            s.conn.send(s.point)
                        except (BrokenPipeError, OSError):
                            pass  # it died just now: its sentinel reports it below
                    elif s.point is None and not queue and not s.released:
                        # Nothing left for it: let it exit now, while the others finish.
                        s.released = True
                        with contextlib.suppress(OSError):
                            s.conn.send(None)
                busy = [s for s in slots if s.point is not None]
                ready = set(wait([s.conn for s in busy] + [s.process.sentinel for s in busy],
                                 timeout=POLL_SECONDS))
                for i, s in enumerate(slots):
                    if s.conn in ready:
                        yield from self._read(s, events)
                    if s.point is not None and (s.process.sentinel in ready
                                              or not s.process.is_alive()):
                        yield from self._read(s, events)  # whatever it sent before dying
                        if s.point is not None:
                            s.process.join()
                            yield lost_trial(s.point, _death_reason(s.process.exitcode),
                                             self.threads, self.workers)
                            s.point = None
                        s.conn.close()
                        slots[i] = self._spawn() if queue else _Slot(s.process, s.conn)
        finally:
            self._stop(slots)

    @staticmethod
    def _read(slot: _Slot, events: Events) -> Iterator[TrialOutcome]:
        """Handle every message waiting on a worker's pipe; yield the outcome if one came."""
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
            elif kind == "checkpoint":
                events.checkpoint(msg[1], msg[2], msg[3])
            elif kind == "outcome":
                slot.point = None
                yield msg[1]
