"""Config -> grid -> skip what is done -> executor -> store -> summary.

The runner is the only writer of the runs directory. It stores each outcome the moment it
arrives (result.json last, atomically), so an interrupted sweep keeps every finished trial
and a re-run resumes with what is missing or failed.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropout_lab.config import MAX_TRIALS, ExperimentConfig
from dropout_lab.executors.base import Events, Executor, Job
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
    result: dict[str, Any]
    executed: bool


@dataclass
class SweepReport:
    sweep_dir: Path
    config: ExperimentConfig
    trials: list[TrialReport] = field(default_factory=list)
    stopped_early: str | None = None

    @property
    def all_done(self) -> bool:
        return all(t.result.get("status") == "done" for t in self.trials)

    def results(self) -> list[dict[str, Any]]:
        return [t.result for t in self.trials]


class NullEvents:
    def started(self, trial_id: str) -> None:
        pass

    def epoch(self, trial_id: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
        pass

    def finished(self, trial_id: str, status: str) -> None:
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

    def finished(self, trial_id: str, status: str) -> None:
        finished = getattr(self.inner, "finished", None)
        if finished is not None:
            finished(trial_id, status)


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
    executed: dict[str, dict[str, Any]] = {}
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
            finished = getattr(events, "finished", None)
            if finished is not None:
                finished(outcome.trial_id, outcome.status)
            if outcome.status != "done":
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
            executed: dict[str, dict[str, Any]]) -> None:
    """Collect the current grid's results (fresh or reused) and write summary.csv."""
    report.trials = []
    for t in trials:
        if t.trial_id in executed:
            report.trials.append(TrialReport(t, executed[t.trial_id], True))
            continue
        r = store.load_result(t.trial_id, t.params) or {
            "trial_id": t.trial_id, "status": "pending", "params": t.params}
        # Params as the current grid names them (an older grid may have had other axes).
        report.trials.append(TrialReport(t, dict(r, params=t.params), False))
    store.write_summary(report.results(), list(report.config.sweep))


# -- sizes and the dry run --------------------------------------------------------------------

def layer_sizes(config: ExperimentConfig) -> list[int] | None:
    """[inputs, hidden..., classes] of a trial's network (loads the data set: cached per
    process); None when the data set cannot be loaded here (the trial will fail on its own)."""
    from dropout_lab.data import load_dataset
    from dropout_lab.errors import DropoutLabError

    try:
        data = load_dataset(config.dataset, config.seed)
    except (DropoutLabError, OSError, ValueError):
        return None
    return [data.n_features, *config.model.hidden, data.n_classes]


def largest_weights(trials: list[Trial]) -> int | None:
    """Weight count of the biggest network of the grid (None if any size is unknown)."""
    from dropout_lab.executors.budget import weight_count

    best = 0
    seen: dict[str, int | None] = {}
    for t in trials:
        key = t.config.dataset.model_dump_json() + repr(t.config.model.hidden)
        if key not in seen:
            sizes = layer_sizes(t.config)
            seen[key] = None if sizes is None else weight_count(sizes)
        if seen[key] is None:
            return None
        best = max(best, seen[key])
    return best


@dataclass
class PlannedTrial:
    trial: Trial
    action: str  # "run" | "rerun" (stored as failed/diverged) | "skip" (done)
    stored_status: str | None
    weights: int | None
    seconds: float | None  # estimated run time of this trial alone


@dataclass
class DryRun:
    sweep_dir: Path
    trials: list[PlannedTrial]
    workers: int
    threads: int
    seconds: float | None  # estimated wall time of the pending trials on `workers` workers
    probe: list[str]  # what was timed, for the reader of the estimate

    @property
    def pending(self) -> list[PlannedTrial]:
        return [p for p in self.trials if p.action != "skip"]


PROBE_STEPS = 20  # training steps timed per distinct trial shape
PROBE_SECONDS = 1.0  # ... or less, when steps are slow


def dry_run(config: ExperimentConfig, runs_dir: Path, fresh: bool, workers: int, threads: int,
            planned: tuple[SweepStore, list[Trial], list[Trial]] | None = None) -> DryRun:
    """What ``sweep`` would do, without writing anything: each trial's action and size, and
    an estimate of the run time from a short timing probe of every distinct trial shape
    (data loading, a few training steps, one evaluation pass, the after-training statistics),
    scaled by steps per epoch and epochs, then spread over ``workers`` (longest first)."""
    from dropout_lab.executors.budget import weight_count

    store, trials, pending = planned or plan(config, runs_dir, fresh)
    pending_ids = {t.trial_id for t in pending}
    probes: dict[str, tuple[float, float] | None] = {}
    notes: list[str] = []
    rows: list[PlannedTrial] = []
    for t in trials:
        stored = None if fresh else (store.load_result(t.trial_id) or {}).get("status")
        if t.trial_id not in pending_ids:
            action = "skip"
        else:
            action = "rerun" if stored else "run"
        sizes = layer_sizes(t.config)
        seconds = None
        if action != "skip":
            key = _shape_key(t.config)
            if key not in probes:
                probes[key] = _probe(t.config, threads, notes)
            seconds = None if probes[key] is None else probes[key][0]
        rows.append(PlannedTrial(t, action, stored, None if sizes is None else weight_count(sizes),
                                 seconds))
    times = [r.seconds for r in rows if r.action != "skip"]
    total = None
    if times and not any(s is None for s in times):
        # Each worker starts an interpreter and loads its data once: time that in a fresh
        # process (here the data are already in memory), add it to the trials' makespan.
        first = next(r.trial for r in rows if r.action != "skip")
        start = _cold_start_seconds(first.config)
        notes.append(f"worker start (interpreter, imports, data set): {start:.2f} s")
        total = _makespan(times, workers) + start
    elif not times:
        total = 0.0
    return DryRun(store.root, rows, workers, threads, total, notes)


def _shape_key(cfg: ExperimentConfig) -> str:
    """Trials that cost the same: everything but the seeds and the dropout rates."""
    data = cfg.model_dump(mode="json", exclude={"seed", "sweep", "name"})
    data["dropout"] = {"variant": cfg.dropout.variant}
    data["dataset"].pop("seed", None)
    return json.dumps(data, sort_keys=True)


def _probe(cfg: ExperimentConfig, threads: int, notes: list[str]
           ) -> tuple[float, float] | None:
    """(seconds of one trial of this shape once its data are loaded, seconds to load the
    data), from a short timing probe; None if the probe fails."""
    from dropout_lab import seeds
    from dropout_lab.trial import after_training_statistics, epoch_metrics, prepare

    try:
        t0 = time.perf_counter()
        prep = prepare(cfg, threads)
        setup = time.perf_counter() - t0
        data, net, plan_ = prep.data, prep.network, prep.plan
        n, bs = len(data.y_train), cfg.train.batch_size
        steps_per_epoch = math.ceil(n / bs)
        noise_rng = seeds.rng(cfg.seed, "dropout")
        order = seeds.rng(cfg.seed, "order").permutation(n)
        timed, t1 = 0, time.perf_counter()
        limit = min(PROBE_STEPS, steps_per_epoch)
        while timed < limit and time.perf_counter() - t1 < PROBE_SECONDS:
            idx = order[timed * bs : (timed + 1) * bs]
            net.train_step(data.x_train[idx], data.y_train[idx], plan_.sample(noise_rng, len(idx)))
            timed += 1
        step = (time.perf_counter() - t1) / max(1, timed)
        t2 = time.perf_counter()
        epoch_metrics(net, data)
        evaluation = time.perf_counter() - t2
        t3 = time.perf_counter()
        after_training_statistics(prep)
        stats = time.perf_counter() - t3
    except Exception as exc:  # noqa: BLE001 - the estimate is advisory; the trial reports it
        notes.append(f"probe failed for one trial shape: {type(exc).__name__}: {exc}")
        return None
    epochs = cfg.train.epochs
    seconds = epochs * (steps_per_epoch * step + evaluation) + stats
    notes.append(f"{cfg.dataset.name} hidden {cfg.model.hidden}: {timed} step(s) of "
                 f"{step * 1e3:.2f} ms, {steps_per_epoch} steps/epoch x {epochs} epochs, "
                 f"evaluation {evaluation:.2f} s/epoch, statistics {stats:.2f} s, "
                 f"data {setup:.2f} s (once per worker)")
    return seconds, setup


def _cold_start_seconds(cfg: ExperimentConfig) -> float:
    """Seconds a new worker process needs before its first trial trains: interpreter start,
    imports, loading the data set (as a spawned worker does)."""
    import subprocess
    import sys

    code = ("import sys; from dropout_lab.config import DatasetConfig; "
            "from dropout_lab.data import load_dataset; import dropout_lab.trial; "
            "load_dataset(DatasetConfig.model_validate_json(sys.argv[1]), int(sys.argv[2]))")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, cfg.dataset.model_dump_json(), str(cfg.seed)],
                   check=False, capture_output=True)
    return time.perf_counter() - t0


def _makespan(seconds: list[float], workers: int) -> float:
    """Wall time of independent jobs on ``workers`` workers, longest job first (LPT)."""
    loads = [0.0] * max(1, workers)
    for s in sorted(seconds, reverse=True):
        i = loads.index(min(loads))
        loads[i] += s
    return max(loads) if seconds else 0.0
