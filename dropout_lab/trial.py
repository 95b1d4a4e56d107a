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
from typing import Any

import numpy as np

from dropout_lab import __version__, seeds
from dropout_lab.backends import registry as backends
from dropout_lab.backends.base import NetSpec, Network, init_weights, train_epoch
from dropout_lab.config import ExperimentConfig
from dropout_lab.data import Dataset, load_dataset
from dropout_lab.dropout import make_plan
from dropout_lab.environment import trial_environment
from dropout_lab.errors import DivergedError

EVAL_CHUNK = 4096  # rows per evaluation forward pass: bounds memory on large data sets

EpochCallback = Callable[[str, int, int], None]  # (trial_id, epoch, epochs)


@dataclass
class TrialOutcome:
    trial_id: str
    status: str  # "done" | "failed" | "diverged"
    result: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # traceback text for failed trials


def evaluate(net: Network, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
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


def epoch_metrics(net: Network, data: Dataset) -> dict[str, float]:
    train_loss, train_acc = evaluate(net, data.x_train, data.y_train)
    test_loss, test_acc = evaluate(net, data.x_test, data.y_test)
    row = {
        "train_loss": train_loss, "train_acc": train_acc,
        "test_loss": test_loss, "test_acc": test_acc,
        "gap_acc": train_acc - test_acc, "gap_loss": test_loss - train_loss,
    }
    if data.x_val is not None:
        row["val_loss"], row["val_acc"] = evaluate(net, data.x_val, data.y_val)
    return row


@dataclass
class Prepared:
    """Everything a trial trains with, built deterministically from its config."""

    config: ExperimentConfig
    data: Dataset
    spec: NetSpec
    network: Network
    device: str
    backend: Any
    plan: Any


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


def train(prep: Prepared, on_epoch: Callable[[dict[str, Any]], None] | None = None
          ) -> list[dict[str, Any]]:
    """The training loop: shuffled mini-batches (``order`` stream), dropout noise (``dropout``
    stream), evaluation after every epoch. Raises DivergedError on a non-finite loss."""
    cfg, data, net, plan = prep.config, prep.data, prep.network, prep.plan
    order_rng = seeds.rng(cfg.seed, "order")
    noise_rng = seeds.rng(cfg.seed, "dropout")
    n, bs = len(data.y_train), cfg.train.batch_size
    rows = []
    for epoch in range(1, cfg.train.epochs + 1):
        t0 = time.perf_counter()
        perm = order_rng.permutation(n)
        fit_loss_sum = train_epoch(net, data.x_train, data.y_train, perm, bs, plan, noise_rng,
                                   cfg.dropout.noise)  # a device backend may run it on the device
        fit_loss = fit_loss_sum / n
        train_seconds = time.perf_counter() - t0
        if not math.isfinite(fit_loss):
            raise DivergedError(f"non-finite training loss at epoch {epoch}")
        row = {"epoch": epoch, "fit_loss": fit_loss, **epoch_metrics(net, data),
               "epoch_seconds": train_seconds}
        if not (math.isfinite(row["train_loss"]) and math.isfinite(row["test_loss"])):
            rows.append(row)
            raise DivergedError(f"non-finite evaluation loss at epoch {epoch}")
        rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return rows


FINAL_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "gap_acc", "gap_loss")


def run_trial(config_dict: dict[str, Any], trial_id: str, params: dict[str, Any],
              threads: int | None = None, workers: int = 1,
              on_epoch: EpochCallback | None = None) -> TrialOutcome:
    """Run one trial from its resolved config; any exception becomes a failed outcome."""
    from dropout_lab.config import validate

    started = time.time()
    t_start = time.perf_counter()
    config = validate(config_dict, where=f"trial {trial_id}")
    env = {
        "backend": config.backend, "device": None, "threads": threads, "workers": workers,
        "dtype": config.dtype, "python": platform.python_version(),
        "platform": platform.platform(), "versions": {"dropout_lab": __version__},
    }
    result: dict[str, Any] = {"trial_id": trial_id, "status": "failed", "params": params,
                              "final": None, "timing": {}, "env": env}
    rows: list[dict[str, Any]] = []
    try:
        prep = prepare(config, threads)
        env["device"] = prep.device
        env["versions"].update(prep.backend.versions())
        env.update(trial_environment())  # BLAS libraries + thread pools, once the backend is set
        setup_seconds = time.perf_counter() - t_start

        def report(row: dict[str, Any]) -> None:
            rows.append(row)
            if on_epoch is not None:
                on_epoch(trial_id, row["epoch"], config.train.epochs)

        t_train = time.perf_counter()
        try:
            train(prep, report)
        except DivergedError as exc:
            result.update(status="diverged", reason=str(exc))
        train_seconds = time.perf_counter() - t_train
        if result["status"] != "diverged":
            result["status"] = "done"
            result["final"] = {k: rows[-1][k] for k in FINAL_KEYS}
            result["best_epoch"] = _best_epoch(rows)
            t_stats = time.perf_counter()
            result.update(after_training_statistics(prep))
            result["timing"]["stats_seconds"] = time.perf_counter() - t_stats
        result["timing"].update(setup_seconds=setup_seconds, train_seconds=train_seconds)
        error = None
    except Exception:  # a failed trial is data, not a crash of the sweep
        error = traceback.format_exc()
        result["status"] = "failed"
        result["error"] = error.strip().splitlines()[-1]
    result["timing"]["total_seconds"] = time.perf_counter() - t_start
    result["timing"]["started_at"] = started
    return TrialOutcome(trial_id, result["status"], result, rows, error)


def _best_epoch(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch a user would pick: by validation accuracy when there is a validation split."""
    key = "val_acc" if "val_acc" in rows[-1] else None
    if key is None:
        return {"by": None, "epoch": rows[-1]["epoch"]}
    best = max(rows, key=lambda r: r[key])
    return {"by": key, "epoch": best["epoch"], "test_acc": best["test_acc"], key: best[key]}


def after_training_statistics(prep: Prepared) -> dict[str, Any]:
    """Co-adaptation and uncertainty statistics (see docs/metrics.md), when turned on."""
    from dropout_lab.metrics import after_training  # empty dict when both are turned off

    return after_training(prep)
