"""The search driver: an ask/tell loop in the process that owns the sweep folder.

Why in the driver (not Optuna's storage shared by the workers): the runner stays the only
writer of the sweep folder (workers return outcomes and epoch rows, as in a grid sweep), the
study is written under the sweep lock by one process, and the executors need only two hooks
(:data:`~dropout_lab.executors.base.Feed`, :data:`~dropout_lab.executors.base.StopTest`).

The loop, for one suggestion (an Optuna trial) and its block of seeds:

1. ``ask``: the sampler draws a value of every searched axis (:func:`space.suggest`); the
   block is one grid point per seed (:func:`space.block`).
2. Each idle worker gets the next point of the oldest unfinished block (a block's seeds run
   side by side when workers allow); a point already stored as done is reused, not run.
3. Every epoch row of a block's trial arrives here; once every seed of the block has reported
   epoch e, the block's mean of ``search.metric`` at e is reported to the study (step e) and
   the pruner asked. A pruned block's running trials get a stop (they end after their current
   epoch, status ``pruned``) and its seeds not started are never started. ``wilcoxon``
   instead reports each seed's final value (step = the seed's index) as the seed finishes.
4. ``tell``: the block's mean of the metric's last value (complete), ``pruned``, or ``fail``
   (a seed failed or diverged).

Resume: a suggestion still ``running`` in the journal (its run was killed) is told ``fail``
and asked again with the same values; its seeds stored as done are reused, so a kill -9 loses
at most the trials that were running. ``search.trials`` counts complete, pruned and failed
suggestions: a finished search re-run executes nothing, a larger ``trials`` runs only the new
ones.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropout_lab.checkpoint import resumable
from dropout_lab.config import ExperimentConfig
from dropout_lab.executors.base import Events, Executor
from dropout_lab.interrupts import interrupts_deferred
from dropout_lab.packs.plan import Pack
from dropout_lab.result import Result, Status
from dropout_lab.runner import (
    NullEvents,
    PointResult,
    SweepInterrupted,
    SweepOutcome,
    _StoringEvents,
    _warn,
    preflight,
)
from dropout_lab.search import space
from dropout_lab.search.study import import_optuna, open_study
from dropout_lab.stats import Summary, summarize
from dropout_lab.store import SweepStore
from dropout_lab.store.checkpoint import remove_checkpoint
from dropout_lab.sweep import GridPoint, changed_data
from dropout_lab.trial import TrialOutcome


@dataclass
class Block:
    """One suggestion and its trials (one per seed)."""

    trial: Any  # optuna.Trial
    params: dict[str, Any]
    points: list[GridPoint]
    unfed: deque[GridPoint]
    results: dict[str, Result] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)  # trial id -> last metric value
    at_epoch: dict[int, dict[str, float]] = field(default_factory=dict)
    reported: set[int] = field(default_factory=set)
    running: set[str] = field(default_factory=set)
    pruned: bool = False
    told: bool = False

    @property
    def number(self) -> int:
        return int(self.trial.number)


@dataclass
class Suggestion:
    """A finished suggestion as the study holds it (what the end of a search prints)."""

    number: int
    state: str  # complete | pruned | fail
    params: dict[str, Any]
    value: float | None
    trial_ids: list[str]
    seed_values: list[float]
    last_step: int | None = None  # the last epoch reported (a pruned one: where it stopped)


@dataclass
class SearchOutcome(SweepOutcome):
    """:class:`~dropout_lab.runner.SweepOutcome` of a search (``trials``: every trial of the
    search so far, in the order they were started), its suggestions, and the best one."""

    suggestions: list[Suggestion] = field(default_factory=list)
    best: Suggestion | None = None
    metric: str = ""
    direction: str = "maximize"

    @property
    def all_done(self) -> bool:  # a pruned trial ended as it should
        return all(t.result.get("status") in (Status.DONE, Status.PRUNED) for t in self.trials)

    def best_summary(self) -> Summary | None:
        """The best suggestion's mean over its seeds, with its t interval."""
        return None if self.best is None else summarize(self.best.seed_values)


def run_search(config: ExperimentConfig, runs_dir: Path, executor: Executor,
               events: Events | None = None, fresh: bool = False, wait: bool = False,
               warn: Callable[[str], None] | None = None) -> SearchOutcome:
    """Run (or resume, or extend) the search of ``config`` with ``executor`` (local or
    serial); every trial is stored as a sweep's trial is. The sweep folder is locked for the
    whole run. ``warn`` receives the run's warnings, as :func:`run_sweep`'s does."""
    from dropout_lab.store.study import remove_study

    import_optuna()  # a missing extra fails here, before anything is written
    store = SweepStore.for_config(runs_dir, config.name)
    base = config.model_dump(mode="json", exclude={"sweep"})
    store.prepare()
    with store.lock(wait):
        if fresh:
            store.reset()
            remove_study(store)
        else:
            store.check_compatible(base, dict(config.sweep))
        store.remove_stale_temporaries()
        driver = _Driver(config, store, open_study(store, config), events or NullEvents(),
                         warn or _warn)
        return driver.run(executor, base, fresh)


class _Driver:
    def __init__(self, config: ExperimentConfig, store: SweepStore, study: Any,
                 events: Events, warn: Callable[[str], None]) -> None:
        assert config.search is not None
        self.config, self.store, self.study = config, store, study
        self.search = config.search
        self.metric = self.search.metric
        et = self.search.early_terminate
        self.wilcoxon = et is not None and et.type == "wilcoxon"
        self.budget = self.search.trials or space.grid_size(config)
        if self.search.method == "grid":
            self.budget = min(self.budget, space.grid_size(config))
        self.blocks: list[Block] = []
        self.by_tid: dict[str, list[Block]] = {}
        self.running: set[str] = set()
        self.executed: dict[str, Result] = {}
        self.entries: dict[str, dict[str, Any]] = {}  # sweep.yaml's trials, in start order
        self.warn = warn
        self.storing = _StoringEvents(store, events, warn)
        self.events = events
        self.base: dict[str, Any] = {}
        self.checked_data: set[str] = set()
        self.counted = 0

    # -- the run ----------------------------------------------------------------------------
    def run(self, executor: Executor, base: dict[str, Any], fresh: bool) -> SearchOutcome:
        optuna = import_optuna()
        states = optuna.trial.TrialState
        self.base = base
        for t in self.study.get_trials(deepcopy=False):
            if t.state == states.RUNNING:  # its run was killed: ask the same values again
                self.study.tell(t.number, state=states.FAIL)
                if t.params:
                    self.study.enqueue_trial(t.params)
            elif t.state in (states.COMPLETE, states.PRUNED) or (
                    t.state == states.FAIL and t.user_attrs.get("failed")):
                self.counted += 1
        if not fresh:
            try:
                doc = self.store.read_sweep()
                self.entries = {t["trial_id"]: t["params"] for t in doc["trials"]}
            except Exception:  # noqa: BLE001 - no sweep.yaml yet, or damaged: rewritten
                self.entries = {}
        self._write_sweep()
        outcomes = executor.run([], _SearchEvents(self), feed=self._feed, stop=self._stop)
        try:
            for outcome in outcomes:
                self._store(outcome)
        except KeyboardInterrupt as exc:
            with interrupts_deferred():
                outcomes.close()
                swept = self._finish()
            raise SweepInterrupted(
                f"interrupted: {len(self.executed)} trial(s) finished and stored; run the same "
                "command again to resume the search", getattr(exc, "exit_code", 130), swept
            ) from None
        finally:
            outcomes.close()
        with interrupts_deferred():
            return self._finish()

    # -- feeding the executor ------------------------------------------------------------------
    def _feed(self) -> list[Pack]:
        """The next point to run: of the oldest unfinished block, else of a new suggestion."""
        while True:
            for b in self.blocks:
                if b.told:
                    continue
                while b.unfed and not b.pruned:
                    point = b.unfed[0]
                    if point.trial_id in self.running:
                        break  # the same point runs for another block: its result serves both
                    b.unfed.popleft()
                    stored = self._stored_done(point)
                    if stored is not None:
                        self._reuse(b, point, stored)
                        continue
                    return [self._start(b, point)]
                self._maybe_tell(b)
            if self.counted + sum(not b.told for b in self.blocks) >= self.budget:
                return []
            self._ask()

    def _stored_done(self, point: GridPoint) -> Result | None:
        r = self.store.load_result(point.trial_id, point.params)
        if r is None or r.get("status") != Status.DONE:
            return None
        if changed_data([point], lambda p: r):  # trained on other data: run it again
            return None
        return r

    def _ask(self) -> None:
        optuna = import_optuna()
        trial = self.study.ask()
        try:
            params = space.suggest(trial, self.config)
            trial.set_user_attr("params", params)  # as trained (a drawn value rounded)
            points = space.block(self.config, params)
            preflight(points)  # an unusable backend or data set: exit 2 before training
        except Exception:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        b = Block(trial, params, points, deque(points))
        self.blocks.append(b)
        for p in points:
            self.by_tid.setdefault(p.trial_id, []).append(b)

    def _register(self, point: GridPoint) -> None:
        if point.trial_id not in self.entries:
            self.entries[point.trial_id] = point.params
            self._write_sweep()

    def _write_sweep(self) -> None:
        axes = self.config.model_dump(mode="json")["sweep"]  # a range as {min, max, ...}
        self.store.write_sweep(self.base, axes, list(self.entries.items()))

    def _start(self, b: Block, point: GridPoint) -> Pack:
        tid = point.trial_id
        self.store.discard_damaged(tid)
        self.store.write_trial_config(tid, point.config_dict)
        self._register(point)
        point, rows = resumable(self.store, point, self.warn)  # a killed run's checkpoint, if any
        if rows:
            self.storing.resumed[tid] = rows
            for row in rows:
                self._on_row(b, tid, row)
        self.running.add(tid)
        b.running.add(tid)
        return Pack((point,))

    def _reuse(self, b: Block, point: GridPoint, result: Result) -> None:
        """A point stored as done: its result and rows stand in for running it."""
        self._register(point)
        for row in self.store.load_metrics(point.trial_id):
            self._on_row(b, point.trial_id, row)
        self._result(b, point.trial_id, result, self.store.load_metrics(point.trial_id))

    # -- what comes back -------------------------------------------------------------------
    def on_epoch(self, trial_id: str, row: dict[str, Any]) -> None:
        for b in self.by_tid.get(trial_id, []):
            if not b.told and not b.pruned:
                self._on_row(b, trial_id, row)

    def _on_row(self, b: Block, trial_id: str, row: dict[str, Any]) -> None:
        """Report the block's mean at an epoch every seed has reached; ask the pruner."""
        value = row.get(self.metric)
        epoch = row.get("epoch")
        if self.wilcoxon or not isinstance(value, (int, float)) or not isinstance(epoch, int):
            return
        seen = b.at_epoch.setdefault(epoch, {})
        seen[trial_id] = float(value)
        if len(seen) == len(b.points) and epoch not in b.reported and not b.pruned:
            b.reported.add(epoch)
            mean = math.fsum(seen.values()) / len(seen)
            if math.isfinite(mean):
                b.trial.report(mean, epoch)
                b.pruned = bool(b.trial.should_prune())

    def _stop(self, trial_id: str) -> bool:
        blocks = self.by_tid.get(trial_id, [])
        return bool(blocks) and all(b.pruned for b in blocks)

    def _store(self, outcome: TrialOutcome) -> None:
        tid = outcome.trial_id
        self.store.write_outcome(tid, outcome.result, outcome.metrics, outcome.error,
                                 outcome.arrays)
        if outcome.status in (Status.DONE, Status.DIVERGED, Status.PRUNED):
            remove_checkpoint(self.store, tid)  # ended: nothing to resume
        self.executed[tid] = outcome.result
        self.running.discard(tid)
        self.events.finished(tid, outcome.status)
        for b in self.by_tid.get(tid, []):
            b.running.discard(tid)
            if not b.told:
                self._result(b, tid, outcome.result, outcome.metrics)

    def _result(self, b: Block, tid: str, result: Result, rows: list[dict[str, Any]]) -> None:
        b.results[tid] = result
        values = [r[self.metric] for r in rows if isinstance(r.get(self.metric), (int, float))]
        if result.get("status") == Status.DONE and values:
            b.final[tid] = float(values[-1])
            if self.wilcoxon and not b.pruned:  # the seeds are the Wilcoxon test's instances
                index = next(i for i, p in enumerate(b.points) if p.trial_id == tid)
                b.trial.report(b.final[tid], index)
                b.pruned = bool(b.trial.should_prune())
        self._maybe_tell(b)

    def _maybe_tell(self, b: Block) -> None:
        if b.told or b.running or (b.unfed and not b.pruned):
            return
        states = import_optuna().trial.TrialState
        ids = [p.trial_id for p in b.points if p.trial_id in b.results]
        b.trial.set_user_attr("trial_ids", ids)
        b.trial.set_user_attr("seed_values", [b.final[t] for t in ids if t in b.final])
        done = all(b.results[t].get("status") == Status.DONE and t in b.final for t in ids)
        if done and len(ids) == len(b.points):
            # complete, even when the pruner said stop after every seed had already finished
            # (several workers: the stop reaches a worker after the epoch it was decided at)
            self._tell(b.trial, math.fsum(b.final.values()) / len(b.final))
        elif b.pruned:
            self._tell(b.trial, state=states.PRUNED)
        else:
            b.trial.set_user_attr("failed", True)  # counts towards search.trials
            self._tell(b.trial, state=states.FAIL)
        b.told = True
        self.counted += 1

    def _tell(self, trial: Any, value: float | None = None, state: Any = None) -> None:
        """``study.tell``. Optuna's GridSampler calls ``study.stop()`` when the grid is used
        up, which raises outside ``optimize``; the tell is stored before that (Optuna stores
        it in a ``finally``), and the budget ends this loop anyway."""
        try:
            self.study.tell(trial, value, state=state)
        except RuntimeError as exc:
            if "Study.stop" not in str(exc):
                raise

    # -- the end ---------------------------------------------------------------------------
    def _finish(self) -> SearchOutcome:
        out = SearchOutcome(self.store.root, self.config, metric=self.metric,
                            direction=self.search.direction)
        for tid, params in self.entries.items():
            r = self.executed.get(tid)
            executed = r is not None
            if r is None:
                r = self.store.load_result(tid, params) or {
                    "trial_id": tid, "status": Status.PENDING, "params": params}
            r = dict(r, params=params)  # type: ignore[assignment]
            point = GridPoint(tid, params, self.config)
            out.trials.append(PointResult(point, r, executed))
        self.store.write_summary(out.results(), list(self.config.sweep))
        out.suggestions = suggestions(self.study)
        done = [s for s in out.suggestions if s.state == "complete" and s.value is not None]
        if done:
            pick: Callable[..., Suggestion] = max if self.search.direction == "maximize" else min
            out.best = pick(done, key=lambda s: s.value)
        return out


class _SearchEvents:
    """The executor's events: stored as a sweep's are, then the rows go to the driver."""

    def __init__(self, driver: _Driver) -> None:
        self.driver = driver
        self.storing = driver.storing

    def started(self, trial_id: str) -> None:
        self.storing.started(trial_id)

    def epoch(self, trial_id: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
        self.storing.epoch(trial_id, epoch, epochs, row)
        self.driver.on_epoch(trial_id, row)

    def checkpoint(self, trial_id: str, epoch: int, data: bytes) -> None:
        self.storing.checkpoint(trial_id, epoch, data)

    def finished(self, trial_id: str, status: Status) -> None:
        self.storing.finished(trial_id, status)


def suggestions(study: Any) -> list[Suggestion]:
    """Every finished suggestion of ``study``, in the order asked (a killed run's suggestion,
    asked again, is left out: its second asking stands for it)."""
    import json

    states = import_optuna().trial.TrialState
    names = {states.COMPLETE: "complete", states.PRUNED: "pruned", states.FAIL: "fail"}
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in names or (t.state == states.FAIL and not t.user_attrs.get("failed")):
            continue
        params = t.user_attrs.get("params") or {
            k: (json.loads(v) if isinstance(v, str) else v) for k, v in t.params.items()}
        out.append(Suggestion(t.number, names[t.state], params, t.value,
                              list(t.user_attrs.get("trial_ids", [])),
                              list(t.user_attrs.get("seed_values", [])), t.last_step))
    return out
