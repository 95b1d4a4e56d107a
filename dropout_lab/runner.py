"""Config -> grid -> skip what is done -> executor -> store -> summary.

The runner is the only writer of the runs directory. It stores each outcome the moment it
arrives (result.json last, atomically), so an interrupted sweep keeps every finished trial
and a re-run resumes with what is missing or failed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from dropout_lab.config import MAX_TRIALS, ExperimentConfig
from dropout_lab.executors.base import Events, Executor, Job
from dropout_lab.result import Result, Status
from dropout_lab.store import SweepStore
from dropout_lab.sweep import Trial, expand


class SweepInterrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP: finished trials are stored and the summary written; a
    re-run resumes. ``exit_code``: 130 for Ctrl-C, 128 + the signal number otherwise."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C/SIGTERM/SIGHUP while the summary is written (a signal right after the last
    trial must not leave the sweep without summary.csv), then deliver it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught and callable(previous[caught[0]]):  # Python's own SIGINT handler included
            previous[caught[0]](caught[0], None)


@dataclass
class TrialReport:
    trial: Trial
    result: Result
    executed: bool


@dataclass
class SweepReport:
    sweep_dir: Path
    config: ExperimentConfig
    trials: list[TrialReport] = field(default_factory=list)
    stopped_early: str | None = None

    @property
    def all_done(self) -> bool:
        return all(t.result.get("status") == Status.DONE for t in self.trials)

    def results(self) -> list[dict[str, Any]]:
        """The results in grid order (as plain dicts: what the table renderers take)."""
        return [cast("dict[str, Any]", t.result) for t in self.trials]


class NullEvents:
    def started(self, trial_id: str) -> None:
        pass

    def epoch(self, trial_id: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
        pass

    def finished(self, trial_id: str, status: Status) -> None:
        pass


class _StoringEvents:
    """Appends each epoch's row to the trial's metrics.jsonl as it arrives, then passes every
    event on to the display (executors that stream epochs: local, serial)."""

    def __init__(self, store: SweepStore, inner: Events):
        self.store, self.inner = store, inner

    def started(self, trial_id: str) -> None:
        self.store.start_metrics(trial_id)
        self.inner.started(trial_id)

    def epoch(self, trial_id: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
        self.store.append_metrics_row(trial_id, row)
        self.inner.epoch(trial_id, epoch, epochs, row)

    def finished(self, trial_id: str, status: Status) -> None:
        self.inner.finished(trial_id, status)


def preflight(trials: list[Trial]) -> None:
    """Fail before any training when a backend, device or data set of the grid is unusable
    (raises BackendError / DataError: exit 2 with one line, not a grid of failed trials)."""
    from dropout_lab.backends import registry as backends
    from dropout_lab.data import preflight as data_preflight

    seen_devices: set[tuple[str, str]] = set()
    seen_data: set[str] = set()
    for t in trials:
        cfg = t.config
        if (cfg.backend, cfg.device) not in seen_devices:
            seen_devices.add((cfg.backend, cfg.device))
            backends.create(cfg.backend).resolve_device(cfg.device)
        key = cfg.dataset.model_dump_json()
        if key not in seen_data:
            seen_data.add(key)
            data_preflight(cfg.dataset)


def plan(config: ExperimentConfig, runs_dir: Path, fresh: bool = False,
         max_trials: int = MAX_TRIALS) -> tuple[SweepStore, list[Trial], list[Trial]]:
    """The store, the whole grid and the trials still to run (not done, or --fresh)."""
    trials = expand(config, max_trials=max_trials)
    store = SweepStore.for_config(runs_dir, config.name)
    pending = _pending(store, trials, fresh)
    preflight(pending)
    return store, trials, pending


def _pending(store: SweepStore, trials: list[Trial], fresh: bool) -> list[Trial]:
    """Trials not stored as done (a damaged result counts as not done)."""
    return trials if fresh else [t for t in trials if not store.is_done(t.trial_id, t.params)]


def run_sweep(config: ExperimentConfig, runs_dir: Path, executor: Executor,
              events: Events | None = None, fresh: bool = False,
              max_failures: int | None = None,
              planned: tuple[SweepStore, list[Trial], list[Trial]] | None = None,
              wait: bool = False) -> SweepReport:
    """Run the pending trials of ``config`` with ``executor`` and store each outcome.

    ``planned`` is what :func:`plan` returned, when the caller already planned (the CLI does,
    to size the executor), so the grid is not expanded and checked twice. The sweep folder
    is locked for the whole run: a second sweep on it fails at once (StoreError naming the
    holder) or, with ``wait``, waits for the first to finish."""
    events = events or NullEvents()
    store, trials, pending = planned or plan(config, runs_dir, fresh)
    base = config.model_dump(mode="json", exclude={"sweep"})
    store.prepare()  # an unwritable runs dir fails here, before any training
    with store.lock(wait):
        if not fresh:
            store.check_compatible(base, dict(config.sweep))
            pending = _pending(store, trials, fresh)  # what another sweep did while we waited
        store.remove_stale_temporaries()
        return _run_locked(config, store, trials, pending, base, executor, events, fresh,
                           max_failures)


def _run_locked(config: ExperimentConfig, store: SweepStore, trials: list[Trial],
                pending: list[Trial], base: dict[str, Any], executor: Executor, events: Events,
                fresh: bool, max_failures: int | None) -> SweepReport:
    """The body of :func:`run_sweep`, with the sweep folder locked."""
    executed: dict[str, Result] = {}
    report = SweepReport(store.root, config)
    failures = 0
    outcomes = None
    events = _StoringEvents(store, events)  # each epoch's row is appended to metrics.jsonl
    try:
        if fresh:
            store.reset()
        store.write_sweep(base, dict(config.sweep), [(t.trial_id, t.params) for t in trials])
        for t in pending:
            store.discard_damaged(t.trial_id)
            store.write_trial_config(t.trial_id, t.config_dict)
        jobs = [Job(t.trial_id, t.config_dict, t.params) for t in pending]
        outcomes = executor.run(jobs, events)
        for outcome in outcomes:
            store.write_outcome(outcome.trial_id, outcome.result, outcome.metrics, outcome.error,
                                outcome.arrays)
            executed[outcome.trial_id] = outcome.result
            events.finished(outcome.trial_id, outcome.status)
            if outcome.status != Status.DONE:
                failures += 1
                if max_failures is not None and failures >= max_failures:
                    report.stopped_early = (f"stopped after {failures} failed trial(s) "
                                            "(--max-failures)")
                    break
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (errors.Terminated)
        with _interrupts_deferred():
            if outcomes is not None:
                outcomes.close()  # stops the workers
            _finish(report, store, trials, executed)
        raise SweepInterrupted(
            f"interrupted: {len(executed)} trial(s) finished and stored; run the same command "
            "again to resume", getattr(exc, "exit_code", 130)
        ) from None
    finally:
        if outcomes is not None:
            outcomes.close()
    try:
        with _interrupts_deferred():
            _finish(report, store, trials, executed)
    except KeyboardInterrupt as exc:  # arrived while the summary was written: it is written
        raise SweepInterrupted(
            f"interrupted: {len(executed)} trial(s) finished and stored; run the same command "
            "again to resume", getattr(exc, "exit_code", 130)) from None
    return report


def _finish(report: SweepReport, store: SweepStore, trials: list[Trial],
            executed: dict[str, Result]) -> None:
    """Collect the current grid's results (fresh or reused) and write summary.csv."""
    report.trials = []
    for t in trials:
        if t.trial_id in executed:
            report.trials.append(TrialReport(t, executed[t.trial_id], True))
            continue
        r: Result = store.load_result(t.trial_id, t.params) or {
            "trial_id": t.trial_id, "status": Status.PENDING, "params": t.params}
        r = r.copy()
        # Params as the current grid names them (an older grid may have had other axes).
        r["params"] = t.params
        report.trials.append(TrialReport(t, r, False))
    store.write_summary(report.results(), list(report.config.sweep))
