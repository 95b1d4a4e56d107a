"""``sweep --dry-run``: each trial's action and size, and an estimate of the run time.

The estimate times a short probe of every distinct trial shape (data loading, a few training
steps after untimed warm-up steps, one evaluation pass, the after-training statistics), scales
it by steps per epoch and epochs, spreads the trials over the workers (longest first) and adds
a worker's cold start. ``benchmarks/bench_main_job.py`` measures the same sweep for real
epochs; the two should agree within 25% (docs/performance.md).

Packs (issue 19): a pack's time is its members' solo times over the measured per-step
speedup of that pack size (:func:`dropout_lab.packs.sizing.pack_seconds`); the packs, not
the trials, are spread over the workers.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dropout_lab import seeds
from dropout_lab.config import ExperimentConfig
from dropout_lab.data import load_dataset
from dropout_lab.errors import DropoutLabError
from dropout_lab.evaluation import epoch_metrics
from dropout_lab.executors.budget import weight_count
from dropout_lab.packs.plan import Packing
from dropout_lab.packs.sizing import pack_memory_bytes, pack_seconds
from dropout_lab.runner import Schedule, schedule
from dropout_lab.sweep import GridPoint
from dropout_lab.trial import after_training_statistics, prepare


def layer_sizes(config: ExperimentConfig) -> list[int] | None:
    """[inputs, hidden..., classes] of a trial's network (loads the data set: cached per
    process); None when the data set cannot be loaded here (the trial will fail on its own)."""
    try:
        data = load_dataset(config.dataset, config.seed)
    except (DropoutLabError, OSError, ValueError):
        return None
    return [data.n_features, *config.model.hidden, data.n_classes]


def largest_weights(points: list[GridPoint]) -> int | None:
    """Weight count of the biggest network of the grid (None if any size is unknown)."""
    best = 0
    seen: dict[str, int | None] = {}
    for point in points:
        key = point.config.dataset.model_dump_json() + repr(point.config.model.hidden)
        if key not in seen:
            sizes = layer_sizes(point.config)
            seen[key] = None if sizes is None else weight_count(sizes)
        weights = seen[key]
        if weights is None:
            return None
        best = max(best, weights)
    return best


@dataclass
class TrialEstimate:
    """One grid point in ``--dry-run``: what the sweep would do with it, and its size."""

    point: GridPoint
    action: str  # "run" | "rerun" (stored as failed/diverged) | "skip" (done)
    stored_status: str | None
    weights: int | None
    seconds: float | None  # estimated run time of this trial alone


@dataclass
class PackEstimate:
    """One pack of the pending trials in ``--dry-run`` (a solo trial is a pack of one)."""

    trials: list[TrialEstimate]
    seconds: float | None  # estimated run time of the pack (None: a member's probe failed)
    memory_bytes: int | None  # what the pack holds beyond the data set (None: size unknown)

    @property
    def size(self) -> int:
        return len(self.trials)


@dataclass
class DryRun:
    sweep_dir: Path
    trials: list[TrialEstimate]
    workers: int
    threads: int
    seconds: float | None  # estimated wall time of the pending trials on `workers` workers
    probe: list[str]  # what was timed, for the reader of the estimate
    packs: list[PackEstimate] = field(default_factory=list)  # the pending trials, grouped
    packing: Packing = field(default_factory=Packing)

    @property
    def pending(self) -> list[TrialEstimate]:
        return [p for p in self.trials if p.action != "skip"]


PROBE_STEPS = 20  # training steps timed per distinct trial shape
PROBE_SECONDS = 1.0  # ... or less, when steps are slow
PROBE_WARMUP = 2  # untimed steps before the timed ones


def dry_run(config: ExperimentConfig, runs_dir: Path, fresh: bool, workers: int, threads: int,
            scheduled: Schedule | None = None, packing: Packing | None = None) -> DryRun:
    """What ``sweep`` would do, without writing anything: each trial's action and size, the
    packs ``packing`` makes of the pending trials, and an estimate of the run time from a
    short timing probe of every distinct trial shape (data loading, a few training steps, one
    evaluation pass, the after-training statistics), scaled by steps per epoch and epochs,
    combined per pack by the measured pack speedup, then spread over ``workers`` (longest
    first)."""
    packing = packing or Packing()
    store, grid, pending = scheduled or schedule(config, runs_dir, fresh)
    pending_ids = {p.trial_id for p in pending}
    probes: dict[str, tuple[float, float] | None] = {}
    notes: list[str] = []
    rows: list[TrialEstimate] = []
    for point in grid:
        result = None if fresh else store.load_result(point.trial_id)
        stored = None if result is None else result["status"]
        if point.trial_id not in pending_ids:
            action = "skip"
        else:
            action = "rerun" if stored else "run"
        sizes = layer_sizes(point.config)
        seconds = None
        if action != "skip":
            key = _shape_key(point.config)
            if key not in probes:
                probes[key] = _probe(point.config, threads, notes)
            probe = probes[key]
            seconds = None if probe is None else probe[0]
        rows.append(TrialEstimate(point, action, stored,
                                  None if sizes is None else weight_count(sizes), seconds))
    packs = _pack_estimates(rows, packing)
    times = [pk.seconds for pk in packs]
    known = [s for s in times if s is not None]
    total = None
    if times and len(known) == len(times):
        # Each worker starts an interpreter and loads its data once: time that in a fresh
        # process (here the data are already in memory), add it to the trials' makespan.
        first = next(r.point for r in rows if r.action != "skip")
        start = _cold_start_seconds(first.config)
        notes.append(f"worker start (interpreter, imports, data set): {start:.2f} s")
        total = _makespan(known, workers) + start
    elif not times:
        total = 0.0
    return DryRun(store.root, rows, workers, threads, total, notes, packs, packing)


# Buffers an optimizer keeps per weight (momentum: the velocity; adam: two moments).
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}


def _pack_estimates(rows: list[TrialEstimate], packing: Packing) -> list[PackEstimate]:
    """The pending rows grouped as the sweep will group them, each pack with its estimated
    time (members' solo times combined by the measured speedup) and memory."""
    from dropout_lab.backends import registry as backends

    pending = [r for r in rows if r.action != "skip"]
    by_id = {r.point.trial_id: r for r in pending}
    out: list[PackEstimate] = []
    for pack in packing.group([r.point for r in pending]):
        members = [by_id[t] for t in pack.trial_ids]
        seconds: float | None = None
        if all(m.seconds is not None for m in members):
            cfg = pack.config
            try:
                device = backends.create(cfg.backend).resolve_device(cfg.device)
            except DropoutLabError:
                device = "cpu"
            seconds = pack_seconds([m.seconds for m in members if m.seconds is not None],
                                   members[0].weights, device)
        sizes = layer_sizes(pack.config)
        memory = None if sizes is None else pack_memory_bytes(
            sizes, pack.config.train.batch_size, pack.size, pack.config.dtype,
            OPTIMIZER_STATES[pack.config.train.optimizer])
        out.append(PackEstimate(members, seconds, memory))
    return out


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
    try:
        t0 = time.perf_counter()
        prep = prepare(cfg, threads)
        setup = time.perf_counter() - t0
        data, net, dropout_plan = prep.data, prep.network, prep.plan
        n, bs = len(data.y_train), cfg.train.batch_size
        steps_per_epoch = math.ceil(n / bs)
        noise_rng = seeds.rng(cfg.seed, "dropout")
        order = seeds.rng(cfg.seed, "order").permutation(n)

        def one_step(k: int) -> float:
            idx = order[(k * bs) % n : (k * bs) % n + bs]
            t = time.perf_counter()
            net.train_step(data.x_train[idx], data.y_train[idx],
                           dropout_plan.sample(noise_rng, len(idx)))
            return time.perf_counter() - t

        # Untimed warm-up: the first steps pay for first-touch allocations, the BLAS threads
        # starting and cold caches, which a trial pays once, not every step.
        for k in range(PROBE_WARMUP):
            one_step(k)
        times: list[float] = []
        t1 = time.perf_counter()
        while len(times) < PROBE_STEPS and time.perf_counter() - t1 < PROBE_SECONDS:
            times.append(one_step(PROBE_WARMUP + len(times)))
        timed = len(times)
        # The median: a step slowed by another process on a shared machine is not the rule.
        step = statistics.median(times)
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
