"""One trial: data + backend + training loop -> metrics per epoch and a final result.

This function runs wherever the executor puts it (this process, a worker process, a Ray
task). It writes nothing: it returns a :class:`TrialOutcome` and the driver stores it.
"""

from __future__ import annotations

import math
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from dropout_lab import __version__, seeds
from dropout_lab.backends import registry as backends
from dropout_lab.backends.base import Backend, NetSpec, Network, init_weights, train_epoch
from dropout_lab.config import ExperimentConfig
from dropout_lab.data import Dataset, load_dataset
from dropout_lab.dropout import DropoutPlan, make_plan
from dropout_lab.environment import trial_environment
from dropout_lab.errors import DivergedError
from dropout_lab.health import HEALTH_SAMPLES, assess, chance_accuracy, dead_fraction
from dropout_lab.result import FINAL_KEYS, BestEpoch, Env, Final, Health, Result, Status
from dropout_lab.schedules import hyperparameters_at

EVAL_CHUNK = 4096  # rows per evaluation forward pass: bounds memory on large data sets

# (trial_id, epoch, epochs, row): the row reaches the driver, which appends it to metrics.jsonl
EpochCallback = Callable[[str, int, int, dict[str, Any]], None]


@dataclass
class TrialOutcome:
    trial_id: str
    status: Status  # DONE, FAILED or DIVERGED
    result: Result
    metrics: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # traceback text for failed trials
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # weights.npz (eval.save_weights)


def loss_and_accuracy(net: Network, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in evaluation mode (no dropout)."""
    total_loss = 0.0
    correct = 0
    for start in range(0, len(y), EVAL_CHUNK):
        logits = np.asarray(net.forward(x[start : start + EVAL_CHUNK]), dtype=np.float64)
        yb = y[start : start + EVAL_CHUNK]
        shifted = logits - logits.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        total_loss += float(-logp[np.arange(len(yb)), yb].sum())
        correct += int((logits.argmax(axis=1) == yb).sum())
    return total_loss / len(y), correct / len(y)


def epoch_metrics(net: Network, data: Dataset, train_rows: np.ndarray | None = None,
                  validation: bool = True) -> dict[str, float]:
    """Evaluation-mode loss and accuracy on the training and test sets (and the validation
    split, when there is one). ``train_rows`` evaluates only those training examples (the
    per-epoch curves); None evaluates all of them (the final numbers)."""
    x_train, y_train = data.x_train, data.y_train
    if train_rows is not None:
        x_train, y_train = x_train[train_rows], y_train[train_rows]
    train_loss, train_acc = loss_and_accuracy(net, x_train, y_train)
    test_loss, test_acc = loss_and_accuracy(net, data.x_test, data.y_test)
    row = {
        "train_loss": train_loss, "train_acc": train_acc,
        "test_loss": test_loss, "test_acc": test_acc,
        "gap_acc": train_acc - test_acc, "gap_loss": test_loss - train_loss,
        "train_n": len(y_train),
    }
    if validation and data.x_val is not None and data.y_val is not None:
        row["val_loss"], row["val_acc"] = loss_and_accuracy(net, data.x_val, data.y_val)
    return row


def curve_rows(n_train: int, subset: int | None, seed: int) -> np.ndarray | None:
    """The training examples evaluated after each epoch: a fixed subset drawn once from the
    ``curves`` stream (sorted), or None for all of them."""
    if subset is None or subset >= n_train:
        return None
    return np.sort(seeds.rng(seed, "curves").choice(n_train, size=subset, replace=False))


@dataclass
class Prepared:
    """Everything a trial trains with, built deterministically from its config."""

    config: ExperimentConfig
    data: Dataset
    spec: NetSpec
    network: Network
    device: str
    backend: Backend
    plan: DropoutPlan


def prepare(config: ExperimentConfig, threads: int | None = None) -> Prepared:
    """Load data, draw initial weights from the ``init`` stream and build the network."""
    backend = backends.create(config.backend)
    device = backend.resolve_device(config.device)
    if threads:
        backend.set_threads(threads)
    data = load_dataset(config.dataset, config.seed).astype(config.dtype)
    sizes = [data.n_features, *config.model.hidden, data.n_classes]
    plan = make_plan(config.dropout.variant, config.dropout.input_p, config.hidden_p(), sizes,
                     config.dtype)
    spec = NetSpec(tuple(sizes), config.model.activation, config.dtype, tuple(plan.test_scales()))
    weights = init_weights(sizes, config.model.activation, seeds.rng(config.seed, "init"))
    network = backend.build(spec, weights, config.train, device)
    return Prepared(config, data, spec, network, device, backend, plan)


@dataclass
class TrainingLog:
    """What the training loop produced: one row per epoch, and why it stopped."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    stopped_by: str = "epochs"  # "epochs" (ran them all) | "early_stopping"


def train(prep: Prepared, on_epoch: Callable[[dict[str, Any]], None] | None = None,
          log: TrainingLog | None = None) -> list[dict[str, Any]]:
    """The training loop: shuffled mini-batches (``order`` stream), dropout noise (``dropout``
    stream), the learning rate and momentum of each epoch from the schedules, evaluation every
    ``eval.every`` epochs (training metrics on the ``eval.train_subset`` curve sample) and a
    full evaluation of the last epoch. With ``train.early_stopping`` the validation loss is
    watched every epoch and training ends after ``patience`` epochs without an improvement of
    ``min_delta``. Returns the rows; ``log`` (if given) also gets them, as far as they got when
    DivergedError is raised on a non-finite loss, and why training stopped."""
    cfg, data, net, plan = prep.config, prep.data, prep.network, prep.plan
    log = log if log is not None else TrainingLog()
    order_rng = seeds.rng(cfg.seed, "order")
    noise_rng = seeds.rng(cfg.seed, "dropout")
    n, bs, epochs = len(data.y_train), cfg.train.batch_size, cfg.train.epochs
    curve = curve_rows(n, cfg.eval.train_subset, cfg.seed)
    stopping = cfg.train.early_stopping
    best_val, since_best = math.inf, 0
    for epoch in range(1, epochs + 1):
        lr, momentum = hyperparameters_at(cfg.train, epoch)
        net.set_hyperparameters(lr, momentum)
        t0 = time.perf_counter()
        perm = order_rng.permutation(n)
        fit_loss_sum = train_epoch(net, data.x_train, data.y_train, perm, bs, plan, noise_rng,
                                   cfg.dropout.noise)  # a device backend may run it on the device
        fit_loss = fit_loss_sum / n
        train_seconds = time.perf_counter() - t0
        if not math.isfinite(fit_loss):
            raise DivergedError(f"non-finite training loss at epoch {epoch}")
        row: dict[str, Any] = {"epoch": epoch, "lr": lr, "momentum": momentum,
                               "fit_loss": fit_loss}
        if stopping is not None:
            # the config refuses early stopping without a validation split
            assert data.x_val is not None and data.y_val is not None
            row["val_loss"], row["val_acc"] = loss_and_accuracy(net, data.x_val, data.y_val)
            if row["val_loss"] < best_val - stopping.min_delta:
                best_val, since_best = row["val_loss"], 0
            else:
                since_best += 1
            if since_best >= stopping.patience and epoch < epochs:
                log.stopped_by = "early_stopping"
        last = epoch == epochs or log.stopped_by == "early_stopping"
        if last or epoch % cfg.eval.every == 0:
            # (early stopping has just evaluated the validation split)
            row.update(epoch_metrics(net, data, None if last else curve, stopping is None))
            if not (math.isfinite(row["train_loss"]) and math.isfinite(row["test_loss"])):
                log.rows.append(row)
                raise DivergedError(f"non-finite evaluation loss at epoch {epoch}")
        row["epoch_seconds"] = train_seconds
        log.rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if last:
            break
    return log.rows


def run_trial(config_dict: dict[str, Any], trial_id: str, params: dict[str, Any],
              threads: int | None = None, workers: int = 1,
              on_epoch: EpochCallback | None = None) -> TrialOutcome:
    """Run one trial from its resolved config; any exception becomes a failed outcome."""
    from dropout_lab.config import validate

    started = time.time()
    t_start = time.perf_counter()
    config = validate(config_dict, where=f"trial {trial_id}")
    env: Env = {
        "backend": config.backend, "device": None, "threads": threads, "workers": workers,
        "dtype": config.dtype, "python": platform.python_version(),
        "platform": platform.platform(), "versions": {"dropout_lab": __version__},
    }
    result: Result = {"trial_id": trial_id, "status": Status.FAILED, "params": params,
                      "final": None, "timing": {}, "env": env}
    log = TrainingLog()
    arrays: dict[str, np.ndarray] = {}
    try:
        prep = prepare(config, threads)
        env["device"] = prep.device
        env["versions"].update(prep.backend.versions())
        # BLAS libraries + thread pools, once the backend is set
        pools = trial_environment()
        env["thread_pools"] = pools["thread_pools"]
        env["scipy"], env["scipy_loaded"] = pools["scipy"], pools["scipy_loaded"]
        setup_seconds = time.perf_counter() - t_start

        def forward_epoch(row: dict[str, Any]) -> None:
            if on_epoch is not None:
                on_epoch(trial_id, row["epoch"], config.train.epochs, row)

        t_train = time.perf_counter()
        try:
            train(prep, forward_epoch, log)
        except DivergedError as exc:
            result["status"] = Status.DIVERGED
            result["reason"] = str(exc)
        train_seconds = time.perf_counter() - t_train
        timing = result["timing"]
        if result["status"] != Status.DIVERGED:
            rows = log.rows
            result["status"] = Status.DONE
            final = cast(Final, {k: rows[-1][k] for k in FINAL_KEYS})
            result["final"] = final
            result["epochs_trained"] = rows[-1]["epoch"]
            result["stopped_by"] = log.stopped_by
            result["best_epoch"] = best_epoch(rows)
            result["health"] = health_of(prep, rows, final, log.stopped_by == "early_stopping")
            t_stats = time.perf_counter()
            stats = after_training_statistics(prep)
            if "coadaptation" in stats:
                result["coadaptation"] = stats["coadaptation"]
            if "uncertainty" in stats:
                result["uncertainty"] = stats["uncertainty"]
            timing["stats_seconds"] = time.perf_counter() - t_stats
            arrays = saved_weights(prep.network, config.eval.save_weights)
        timing["setup_seconds"], timing["train_seconds"] = setup_seconds, train_seconds
        error = None
    except Exception:  # a failed trial is data, not a crash of the sweep
        error = traceback.format_exc()
        result["status"] = Status.FAILED
        result["error"] = error.strip().splitlines()[-1]
    result["timing"]["total_seconds"] = time.perf_counter() - t_start
    result["timing"]["started_at"] = started
    return TrialOutcome(trial_id, result["status"], result, log.rows, error, arrays)


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
    first HEALTH_SAMPLES test examples."""
    data = prep.data
    _, hidden = prep.network.forward(data.x_test[:HEALTH_SAMPLES], return_hidden=True)
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
