"""Config -> grid -> skip what is done -> executor -> store -> summary.

The runner is the only writer of the runs directory. It stores each outcome the moment it
arrives (result.json last, atomically), so an interrupted sweep keeps every finished trial
and a re-run resumes with what is missing or failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropout_lab.config import ExperimentConfig
from dropout_lab.executors.base import Events, Executor, Job
from dropout_lab.store import SweepStore
from dropout_lab.sweep import Trial, expand


class SweepInterrupted(Exception):
    """Ctrl-C: finished trials are stored and the summary written; a re-run resumes."""


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

    def epoch(self, trial_id: str, epoch: int, epochs: int) -> None:
        pass

    def finished(self, trial_id: str, status: str) -> None:
        pass


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


def plan(config: ExperimentConfig, runs_dir: Path, fresh: bool = False
         ) -> tuple[SweepStore, list[Trial], list[Trial]]:
    """The store, the whole grid and the trials still to run (not done, or --fresh)."""
    trials = expand(config)
    store = SweepStore.for_config(runs_dir, config.name)
    pending = trials if fresh else [t for t in trials if not store.is_done(t.trial_id)]
    preflight(pending)
    return store, trials, pending


def run_sweep(config: ExperimentConfig, runs_dir: Path, executor: Executor,
              events: Events | None = None, fresh: bool = False,
              max_failures: int | None = None,
              planned: tuple[SweepStore, list[Trial], list[Trial]] | None = None
              ) -> SweepReport:
    """Run the pending trials of ``config`` with ``executor`` and store each outcome.

    ``planned`` is what :func:`plan` returned, when the caller already planned (the CLI does,
    to size the executor), so the grid is not expanded and checked twice."""
    events = events or NullEvents()
    store, trials, pending = planned or plan(config, runs_dir, fresh)
    store.prepare()  # an unwritable runs dir fails here, before any training
    if fresh:
        store.reset()
    base = config.model_dump(mode="json", exclude={"sweep"})
    store.write_sweep(base, dict(config.sweep), [(t.trial_id, t.params) for t in trials])
    for t in pending:
        store.write_trial_config(t.trial_id, t.config_dict)

    executed: dict[str, dict[str, Any]] = {}
    report = SweepReport(store.root, config)
    failures = 0
    jobs = [Job(t.trial_id, t.config_dict, t.params) for t in pending]
    outcomes = executor.run(jobs, events)
    try:
        for outcome in outcomes:
            store.write_outcome(outcome.trial_id, outcome.result, outcome.metrics, outcome.error)
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
    except KeyboardInterrupt:
        outcomes.close()
        _finish(report, store, trials, executed)
        raise SweepInterrupted(
            f"interrupted: {len(executed)} trial(s) finished and stored; run the same command "
            "again to resume"
        ) from None
    finally:
        outcomes.close()
    _finish(report, store, trials, executed)
    return report


def _finish(report: SweepReport, store: SweepStore, trials: list[Trial],
            executed: dict[str, dict[str, Any]]) -> None:
    """Collect the current grid's results (fresh or reused) and write summary.csv."""
    report.trials = []
    for t in trials:
        if t.trial_id in executed:
            report.trials.append(TrialReport(t, executed[t.trial_id], True))
            continue
        r = store.load_result(t.trial_id) or {
            "trial_id": t.trial_id, "status": "pending", "params": t.params}
        # Params as the current grid names them (an older grid may have had other axes).
        report.trials.append(TrialReport(t, dict(r, params=t.params), False))
    store.write_summary(report.results(), list(report.config.sweep))
