"""One trial: data + backend + training loop -> metrics per epoch and a final result.

:func:`prepare` builds what a trial trains with, :func:`~dropout_lab.training.train` (the
loop, in training.py) trains it, :func:`assemble_result` turns the rows into the result
(final numbers, best epoch, health, statistics, weights). :func:`run_trial` runs wherever the
executor puts it (this process, a worker process, a Ray task). It writes nothing: it returns a
:class:`TrialOutcome` and the driver stores it.
"""

from __future__ import annotations

import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from dropout_lab import __version__, checkpoint
from dropout_lab.backends.base import Network
from dropout_lab.checkpoint import CheckpointCallback, Checkpointer
from dropout_lab.config import ExperimentConfig
from dropout_lab.data.fingerprint import fingerprint as data_fingerprint
from dropout_lab.environment import code_version, trial_environment
from dropout_lab.errors import DivergedError, TrialPruned
from dropout_lab.health import assess, chance_accuracy, dead_fraction
from dropout_lab.prepared import Prepared, prepare
from dropout_lab.result import FINAL_KEYS, BestEpoch, Env, Final, Health, Result, Status
from dropout_lab.training import LoopState, TrainingLog, train

__all__ = ["EpochCallback", "Prepared", "TrialOutcome", "prepare", "run_trial"]

# (trial_id, epoch, epochs, row): the row reaches the driver, which appends it to metrics.jsonl
EpochCallback = Callable[[str, int, int, dict[str, Any]], None]


@dataclass
class TrialOutcome:
    trial_id: str
    status: Status  # DONE, FAILED, DIVERGED or PRUNED
    result: Result
    metrics: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # traceback text for failed trials
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # weights.npz (eval.save_weights)


def run_trial(config_dict: dict[str, Any], trial_id: str, params: dict[str, Any],
              threads: int | None = None, workers: int = 1,
              on_epoch: EpochCallback | None = None, resume: bytes | None = None,
              on_checkpoint: CheckpointCallback | None = None) -> TrialOutcome:
    """Run one trial from its resolved config; any exception becomes a failed outcome.

    ``resume``: a checkpoint the runner found (dropout_lab/checkpoint.py); the trial continues
    from it, or starts over with a warning when it does not fit. ``on_checkpoint`` receives
    the checkpoints ``train.checkpoint_every`` asks for (None: none are taken)."""
    from dropout_lab.config import validate

    started = time.time()
    t_start = time.perf_counter()
    config = validate(config_dict, where=f"trial {trial_id}")
    result = new_result(config, trial_id, params, threads, workers)
    log = TrainingLog()
    arrays: dict[str, np.ndarray] = {}
    try:
        prep = prepare(config, threads)
        record_environment(result, prep)
        setup_seconds = time.perf_counter() - t_start

        def forward_epoch(row: dict[str, Any]) -> None:
            if on_epoch is not None:
                on_epoch(trial_id, row["epoch"], config.train.epochs, row)

        state, seconds_before = resume_from(prep, resume, trial_id, log, result)
        after_epoch = (None if on_checkpoint is None
                       else Checkpointer(prep, trial_id, on_checkpoint, seconds_before,
                                         result["env"].get("data")))
        t_train = time.perf_counter()
        try:
            train(prep, forward_epoch, log, state, after_epoch)
        except DivergedError as exc:
            result["status"] = Status.DIVERGED
            result["reason"] = str(exc)
        except TrialPruned:
            pruned_result(result, log.rows)
        # a resumed trial: the seconds of its earlier runs too (the checkpoint kept them)
        train_seconds = seconds_before + time.perf_counter() - t_train
        if result["status"] not in (Status.DIVERGED, Status.PRUNED):
            arrays = assemble_result(prep, log, result)
        timing = result["timing"]
        timing["setup_seconds"], timing["train_seconds"] = setup_seconds, train_seconds
        error = None
    except Exception:  # a failed trial is data, not a crash of the sweep
        error = traceback.format_exc()
        result["status"] = Status.FAILED
        result["error"] = error.strip().splitlines()[-1]
    result["timing"]["total_seconds"] = time.perf_counter() - t_start
    result["timing"]["started_at"] = started
    return TrialOutcome(trial_id, result["status"], result, log.rows, error, arrays)


def resume_from(prep: Prepared, resume: bytes | None, trial_id: str, log: TrainingLog,
            result: Result) -> tuple[LoopState | None, float]:
    """Restore the checkpoint ``resume`` into ``prep`` and ``log``: (the loop state to go on
    from, training seconds spent before); (None, 0.0) to start at epoch 1, with a warning
    when the checkpoint did not fit (the runner already checked its trial and config)."""
    if resume is None:
        return None, 0.0
    try:
        ckpt = checkpoint.parse(resume)
        checkpoint.check(ckpt, trial_id, prep.config.trial_dict())
        checkpoint.check_data(ckpt, result["env"].get("data"))  # the files may have changed
        state, seconds = checkpoint.restore(ckpt, prep, log)
    except checkpoint.CheckpointError as exc:
        # the driver warns (runner.warn_if_started_over): this may run in a worker process
        result["resumed"] = {"from_epoch": 0, "ignored": str(exc)}
        return None, 0.0
    result["resumed"] = {"from_epoch": state.epoch, "train_seconds_before": seconds}
    return state, seconds


def pruned_result(result: Result, rows: list[dict[str, Any]]) -> None:
    """A trial a search's pruner stopped after its last row: status ``pruned``, no ``final``
    (a pruned trial is never pooled into a mean), ``pruned`` with the epoch it stopped after
    and the numbers of its last evaluated row (what plots draw for it)."""
    result["status"] = Status.PRUNED
    result["final"] = None
    result["epochs_trained"] = rows[-1]["epoch"] if rows else 0
    result["stopped_by"] = "pruned"
    evaluated = [r for r in rows if "test_acc" in r]
    last = evaluated[-1] if evaluated else {}
    keys = (*FINAL_KEYS, "val_loss", "val_acc")
    result["pruned"] = {"epoch": result["epochs_trained"], "evaluated_epoch": last.get("epoch"),
                        **{k: last[k] for k in keys if k in last}}


def new_result(config: ExperimentConfig, trial_id: str, params: dict[str, Any],
               threads: int | None, workers: int) -> Result:
    """The result of a trial that has not run yet (status ``failed`` until it has)."""
    env: Env = {
        "backend": config.backend, "device": None, "threads": threads, "workers": workers,
        "dtype": config.dtype, "python": platform.python_version(),
        "platform": platform.platform(), "versions": {"dropout_lab": __version__},
        "code": code_version(),
    }
    return {"trial_id": trial_id, "status": Status.FAILED, "params": params,
            "final": None, "timing": {}, "env": env}


def record_environment(result: Result, prep: Prepared) -> None:
    """The data fingerprint, the device, the backend's versions, the BLAS libraries and
    thread pools (once the backend is set) into ``result["env"]``."""
    env = result["env"]
    # what the trial read: a re-run re-trains it when the data changed (sweep.changed_data)
    env["data"] = data_fingerprint(prep.config.dataset)
    env["device"] = prep.device
    env["versions"].update(prep.backend.versions())
    pools = trial_environment()
    env["thread_pools"] = pools["thread_pools"]
    env["scipy"], env["scipy_loaded"] = pools["scipy"], pools["scipy_loaded"]


def assemble_result(prep: Prepared, log: TrainingLog, result: Result,
                    stats: tuple[dict[str, Any], float] | None = None
                    ) -> dict[str, np.ndarray]:
    """Fill ``result`` of a trial that trained to the end (status ``done``): the final numbers
    (the last row), the best epoch, health, the after-training statistics and their timing
    (``stats``: already computed, with their seconds, by a pack for several members at once).
    Returns the arrays kept as weights.npz (``eval.save_weights``)."""
    rows = log.rows
    result["status"] = Status.DONE
    final = cast(Final, {k: rows[-1][k] for k in FINAL_KEYS})
    result["final"] = final
    result["epochs_trained"] = rows[-1]["epoch"]
    result["stopped_by"] = log.stopped_by
    result["best_epoch"] = best_epoch(rows)
    if "learned_p" in rows[-1]:  # concrete dropout: p per unit layer after the last epoch
        result["learned_p"] = rows[-1]["learned_p"]
    result["health"] = health_of(prep, rows, final, log.stopped_by == "early_stopping")
    t_stats = time.perf_counter()
    computed = after_training_statistics(prep) if stats is None else stats[0]
    if "coadaptation" in computed:
        result["coadaptation"] = computed["coadaptation"]
    if "uncertainty" in computed:
        result["uncertainty"] = computed["uncertainty"]
    result["timing"]["stats_seconds"] = (time.perf_counter() - t_stats if stats is None
                                         else stats[1])
    return saved_weights(prep.network, prep.config.eval.save_weights)


def best_epoch(rows: list[dict[str, Any]]) -> BestEpoch:
    """The epoch a user would stop at: the highest validation accuracy among the evaluated
    epochs (the earliest on a tie), with that epoch's numbers; the last epoch when there is no
    validation split."""
    evaluated = [r for r in rows if "test_acc" in r]
    if "val_acc" not in evaluated[-1]:
        return {"by": None, "epoch": rows[-1]["epoch"]}
    best = max(evaluated, key=lambda r: r["val_acc"])  # max keeps the first of equals
    return {"by": "val_acc", "epoch": best["epoch"], "test_acc": best["test_acc"],
            "val_acc": best["val_acc"], "val_loss": best["val_loss"],
            "metrics": cast(Final, {k: best[k] for k in FINAL_KEYS}), "train_n": best["train_n"]}


def health_of(prep: Prepared, rows: list[dict[str, Any]], final: Final,
              early_stopped: bool) -> Health:
    """The ``health`` section (see dropout_lab/health.py): dead units are looked for on the
    evaluation sample of the after-training statistics (the same examples as ``dead[l]``)."""
    from dropout_lab.metrics import evaluation_sample

    data = prep.data
    x, _ = evaluation_sample(prep)
    _, hidden = prep.network.forward(x, return_hidden=True)
    health = assess(rows, cast("dict[str, float]", final), data.n_classes,
                    chance_accuracy(data.y_test), [dead_fraction(h) for h in hidden], early_stopped)
    return cast(Health, health)


def saved_weights(net: Network, which: str) -> dict[str, np.ndarray]:
    """Weights kept with the result (weights.npz): ``W0``/``b0`` for the first layer, all
    layers for ``all``; float32 whatever the training dtype."""
    if which == "none":
        return {}
    layers = net.get_weights()
    if which == "first":
        layers = layers[:1]
    out: dict[str, np.ndarray] = {}
    for layer, (W, b) in enumerate(layers):
        out[f"W{layer}"], out[f"b{layer}"] = W.astype(np.float32), b.astype(np.float32)
    return out


def after_training_statistics(prep: Prepared) -> dict[str, Any]:
    """Co-adaptation and uncertainty statistics (see docs/metrics.md), when turned on."""
    from dropout_lab.metrics import after_training  # empty dict when both are turned off

    return after_training(prep)
