"""Config -> grid -> skip what is done -> executor -> store -> summary.

Words: a :class:`~dropout_lab.sweep.GridPoint` is one point of the grid; :func:`schedule`
picks the points still to run; a :class:`~dropout_lab.packs.plan.Packing` groups them into
packs (a solo trial is a pack of one); an executor runs the packs into
:class:`~dropout_lab.trial.TrialOutcome` s, one per point; :func:`run_sweep` stores those and
returns a :class:`SweepOutcome`, one :class:`PointResult` per grid point.

The runner is the only writer of the runs directory. It stores each outcome the moment it
arrives (result.json last, atomically), so an interrupted sweep keeps every finished trial
and a re-run resumes with what is missing or failed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

from dropout_lab.checkpoint import resumable
from dropout_lab.config import MAX_TRIALS, ExperimentConfig
from dropout_lab.executors.base import Events, Executor
from dropout_lab.interrupts import interrupts_deferred
from dropout_lab.packs.plan import Packing
from dropout_lab.result import Result, Status
from dropout_lab.store import SweepStore
from dropout_lab.store.checkpoint import remove_checkpoint, rewrite_metrics, write_checkpoint
from dropout_lab.sweep import GridPoint, changed_data, expand


class SweepInterrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP: finished trials are stored and the summary written; a
    re-run resumes. ``exit_code``: 130 for Ctrl-C, 128 + the signal number otherwise."""

    def __init__(self, message: str, exit_code: int = 130,
                 outcome: SweepOutcome | None = None):
        super().__init__(message)
        self.exit_code = exit_code
        self.outcome = outcome  # what was finished and stored (a --json sweep still prints it)


@dataclass
class PointResult:
    """A grid point and its result after the sweep: run now (``executed``) or stored before
    (done, failed, or pending when the sweep stopped early)."""

    point: GridPoint
    result: Result
    executed: bool


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` ended with: every point of the current grid, in grid order."""

    sweep_dir: Path
    config: ExperimentConfig
    trials: list[PointResult] = field(default_factory=list)
    stopped_early: str | None = None

    @property
    def all_done(self) -> bool:
        return all(t.result.get("status") == Status.DONE for t in self.trials)

    def results(self) -> list[dict[str, Any]]:
        """The results in grid order (as plain dicts: what the table renderers take)."""
        return [cast("dict[str, Any]", t.result) for t in self.trials]

    def json_doc(self) -> dict[str, Any]:
        """The ``--json`` document of the run: its folder and every trial of the grid."""
        return {
            "sweep_dir": str(self.sweep_dir),
            "trials": [
                {"trial_id": t.point.trial_id, "status": t.result.get("status"),
                 "params": t.point.params, "final": t.result.get("final"),
                 "health": t.result.get("health"), "executed": t.executed}
                for t in self.trials
            ],
        }


class NullEvents:
    def started(self, trial_id: str) -> None:
        pass

    def epoch(self, trial_id: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
        pass

    def checkpoint(self, trial_id: str, epoch: int, data: bytes) -> None:
        pass

    def finished(self, trial_id: str, status: Status) -> None:
        pass


class _StoringEvents:
    """Appends each epoch's row to the trial's metrics.jsonl as it arrives and writes its
    checkpoints, then passes the other events on to the display (every executor streams
    epochs: serial by calls, local through its pipes, Ray through a queue)."""

    def __init__(self, store: SweepStore, inner: Events, warn: Callable[[str], None]):
        self.store, self.inner, self.warn = store, inner, warn
        # trial id -> the rows of the checkpoint it resumes from (epochs 1..k)
        self.resumed: dict[str, list[dict[str, Any]]] = {}
        self._last_epoch: dict[str, int] = {}

    def started(self, trial_id: str) -> None:
        rows = self.resumed.get(trial_id)
        if rows:  # metrics.jsonl holds each epoch once: the checkpoint's rows, then new ones
            rewrite_metrics(self.store, trial_id, rows)
        else:
            self.store.start_metrics(trial_id)
        self._last_epoch[trial_id] = len(rows or [])
        self.inner.started(trial_id)

    def epoch(self, trial_id: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
        if epoch <= self._last_epoch.get(trial_id, 0):  # started over: its checkpoint did not
            self.store.start_metrics(trial_id)  # fit (a warning said so)
        self._last_epoch[trial_id] = epoch
        self.store.append_metrics_row(trial_id, row)
        self.inner.epoch(trial_id, epoch, epochs, row)

    def checkpoint(self, trial_id: str, epoch: int, data: bytes) -> None:
        write_checkpoint(self.store, trial_id, data)

    def finished(self, trial_id: str, status: Status) -> None:
        self.inner.finished(trial_id, status)


def preflight(points: list[GridPoint], report: Callable[[str], None] | None = None) -> None:
    """Fail before any training when a backend, device or data set of the grid is unusable
    (raises BackendError / DataError: exit 2 with one line, not a grid of failed trials).
    ``report`` receives the progress lines of a data set's download (None: not shown)."""
    from dropout_lab.backends import registry as backends
    from dropout_lab.data import preflight as data_preflight

    seen_devices: set[tuple[str, str]] = set()
    seen_data: set[str] = set()
    for point in points:
        cfg = point.config
        if (cfg.backend, cfg.device) not in seen_devices:
            seen_devices.add((cfg.backend, cfg.device))
            backends.create(cfg.backend).resolve_device(cfg.device)
        key = cfg.dataset.model_dump_json()
        if key not in seen_data:
            seen_data.add(key)
            data_preflight(cfg.dataset, report=report)


class Schedule(NamedTuple):
    """What a sweep is to do: its store, the whole grid, and the points still to run."""

    store: SweepStore
    grid: list[GridPoint]
    pending: list[GridPoint]


def schedule(config: ExperimentConfig, runs_dir: Path, fresh: bool = False,
             max_trials: int = MAX_TRIALS, report: Callable[[str], None] | None = None
             ) -> Schedule:
    """The store, the whole grid and the points still to run (not done, or --fresh); the
    pending points' backends, devices and data sets are checked (:func:`preflight`, which
    hands ``report`` the lines of a download)."""
    grid = expand(config, max_trials=max_trials)
    store = SweepStore.for_config(runs_dir, config.name)
    pending = _pending(store, grid, fresh)
    preflight(pending, report)
    return Schedule(store, grid, pending)


def rerun_reasons(scheduled: Schedule) -> dict[str, str]:
    """trial id -> why, for the pending points that are stored as done: re-run because their
    data changed since they ran (what the CLI tells the user before training them)."""
    store = scheduled.store
    done = [p for p in scheduled.pending if store.is_done(p.trial_id, p.params)]
    return changed_data(done, lambda p: store.load_result(p.trial_id, p.params))


def _pending(store: SweepStore, grid: list[GridPoint], fresh: bool) -> list[GridPoint]:
    """Points not stored as done (a damaged result counts as not done), and done points whose
    data changed since they ran (:func:`~dropout_lab.sweep.changed_data`)."""
    if fresh:
        return grid
    done = [p for p in grid if store.is_done(p.trial_id, p.params)]
    stale = changed_data(done, lambda p: store.load_result(p.trial_id, p.params))
    kept = {p.trial_id for p in done} - set(stale)
    return [p for p in grid if p.trial_id not in kept]


def run_sweep(config: ExperimentConfig, runs_dir: Path, executor: Executor,
              events: Events | None = None, fresh: bool = False,
              max_failures: int | None = None,
              scheduled: Schedule | None = None,
              wait: bool = False, packing: Packing | None = None,
              warn: Callable[[str], None] | None = None) -> SweepOutcome:
    """Run the pending points of ``config`` with ``executor`` and store each outcome.

    ``scheduled`` is what :func:`schedule` returned, when the caller already scheduled (the
    CLI does, to size the executor), so the grid is not expanded and checked twice. The sweep
    folder is locked for the whole run: a second sweep on it fails at once (StoreError naming
    the holder) or, with ``wait``, waits for the first to finish. ``packing`` groups the
    pending points into packs (default: every point alone); every member is stored as its own
    trial, as an unpacked one is. ``warn`` receives the warnings of the run (a checkpoint
    ignored; default: a Python ``RuntimeWarning``)."""
    events = events or NullEvents()
    store, grid, pending = scheduled or schedule(config, runs_dir, fresh)
    base = config.model_dump(mode="json", exclude={"sweep"})
    store.prepare()  # an unwritable runs dir fails here, before any training
    with store.lock(wait):
        if not fresh:
            store.check_compatible(base, dict(config.sweep))
            pending = _pending(store, grid, fresh)  # what another sweep did while we waited
        store.remove_stale_temporaries()
        return _run_locked(config, store, grid, pending, base, executor, events, fresh,
                           max_failures, packing or Packing(), warn or _warn)


def _run_locked(config: ExperimentConfig, store: SweepStore, grid: list[GridPoint],
                pending: list[GridPoint], base: dict[str, Any], executor: Executor,
                events: Events, fresh: bool, max_failures: int | None,
                packing: Packing, warn: Callable[[str], None]) -> SweepOutcome:
    """The body of :func:`run_sweep`, with the sweep folder locked."""
    executed: dict[str, Result] = {}
    swept = SweepOutcome(store.root, config)
    failures = 0
    outcomes = None
    # each epoch's row is appended to metrics.jsonl, each checkpoint written
    events = storing = _StoringEvents(store, events, warn)
    try:
        if fresh:
            store.reset()
        store.write_sweep(base, dict(config.sweep), [(p.trial_id, p.params) for p in grid],
                          fresh=fresh)
        for p in pending:
            store.discard_damaged(p.trial_id)
            store.write_trial_config(p.trial_id, p.config_dict)
        if not fresh:  # a trial a killed run left a checkpoint of continues from it
            pending = [_with_checkpoint(store, p, storing) for p in pending]
        # (a point carrying a checkpoint runs alone: packing.group never packs it)
        outcomes = executor.run(packing.group(pending), events)
        for outcome in outcomes:
            store.write_outcome(outcome.trial_id, outcome.result, outcome.metrics, outcome.error,
                                outcome.arrays)
            warn_if_started_over(outcome.result, warn)
            if outcome.status in (Status.DONE, Status.DIVERGED):  # ended: nothing to resume
                remove_checkpoint(store, outcome.trial_id)  # (a failed one keeps it)
            executed[outcome.trial_id] = outcome.result
            events.finished(outcome.trial_id, outcome.status)
            if outcome.status != Status.DONE:
                failures += 1
                if max_failures is not None and failures >= max_failures:
                    swept.stopped_early = (f"stopped after {failures} failed trial(s) "
                                            "(--max-failures)")
                    break
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (errors.Terminated)
        with interrupts_deferred():
            if outcomes is not None:
                outcomes.close()  # stops the workers
            _finish(swept, store, grid, executed)
        raise SweepInterrupted(
            f"interrupted: {len(executed)} trial(s) finished and stored; run the same command "
            "again to resume", getattr(exc, "exit_code", 130), swept
        ) from None
    finally:
        if outcomes is not None:
            outcomes.close()
    try:
        with interrupts_deferred():
            _finish(swept, store, grid, executed)
    except KeyboardInterrupt as exc:  # arrived while the summary was written: it is written
        raise SweepInterrupted(
            f"interrupted: {len(executed)} trial(s) finished and stored; run the same command "
            "again to resume", getattr(exc, "exit_code", 130), swept) from None
    return swept


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def warn_if_started_over(result: Result, warn: Callable[[str], None]) -> None:
    """The trial could not continue from its checkpoint (its data changed, or it did not
    restore): it says so in ``resumed.ignored``, the driver tells the user."""
    ignored = (result.get("resumed") or {}).get("ignored")
    if ignored:
        warn(f"trial {result['trial_id']}: checkpoint ignored ({ignored}); the trial started "
             "over")


def _with_checkpoint(store: SweepStore, point: GridPoint, events: _StoringEvents
                     ) -> GridPoint:
    """``point`` carrying its trial's checkpoint, if a usable one is stored (its rows then
    start the trial's metrics.jsonl when it starts)."""
    point, rows = resumable(store, point, events.warn)
    if rows:
        events.resumed[point.trial_id] = rows
    return point


def _finish(swept: SweepOutcome, store: SweepStore, grid: list[GridPoint],
            executed: dict[str, Result]) -> None:
    """Collect the current grid's results (fresh or reused) and write summary.csv."""
    swept.trials = []
    for p in grid:
        if p.trial_id in executed:
            swept.trials.append(PointResult(p, executed[p.trial_id], True))
            continue
        r: Result = store.load_result(p.trial_id, p.params) or {
            "trial_id": p.trial_id, "status": Status.PENDING, "params": p.params}
        r = r.copy()
        # Params as the current grid names them (an older grid may have had other axes).
        r["params"] = p.params
        swept.trials.append(PointResult(p, r, False))
    store.write_summary(swept.results(), list(swept.config.sweep))
