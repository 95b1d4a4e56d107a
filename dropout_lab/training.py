"""The training loop of one trial: epochs of shuffled mini-batches under the schedules.

:func:`train` reads a :class:`~dropout_lab.prepared.Prepared` trial (data, network, dropout plan)
and returns one row per epoch; what the rows become (the result, health, statistics) is
assembled in :mod:`dropout_lab.trial`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dropout_lab import seeds
from dropout_lab.backends.base import train_epoch
from dropout_lab.errors import DivergedError
from dropout_lab.evaluation import EvalSteps, curve_rows, drive, epoch_metrics_steps
from dropout_lab.schedules import hyperparameters_at

if TYPE_CHECKING:
    from dropout_lab.prepared import Prepared


@dataclass
class TrainingLog:
    """What the training loop produced: one row per epoch, and why it stopped."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    stopped_by: str = "epochs"  # "epochs" (ran them all) | "early_stopping"


@dataclass
class LoopState:
    """Where the loop stands between two epochs, besides the network: what the next epoch
    depends on (a checkpoint saves it, :mod:`dropout_lab.checkpoint`)."""

    epoch: int  # epochs completed
    order_rng: np.random.Generator  # the ``order`` stream: each epoch's permutation
    noise_rng: np.random.Generator  # the ``dropout`` stream: every step's noise
    best_val: float = math.inf  # early stopping: the best validation loss so far
    since_best: int = 0  # early stopping: epochs since it improved by min_delta

    @classmethod
    def start(cls, seed: int) -> LoopState:
        """Before epoch 1: the trial's named streams, freshly seeded."""
        return cls(0, seeds.rng(seed, "order"), seeds.rng(seed, "dropout"))


class EpochLoop:
    """The bookkeeping of one trial's epochs, apart from the optimizer steps: each epoch's
    hyperparameters and mini-batch order (:meth:`begin`), then its row, evaluation, early
    stopping and divergence check (:meth:`end`). :func:`train` drives one trial with it; a
    pack (dropout_lab/packs) drives one per member around a stacked epoch."""

    def __init__(self, prep: Prepared, on_epoch: Callable[[dict[str, Any]], None] | None = None,
                 log: TrainingLog | None = None, state: LoopState | None = None) -> None:
        cfg = prep.config
        self.prep, self.on_epoch = prep, on_epoch
        self.log = log if log is not None else TrainingLog()
        self.state = state if state is not None else LoopState.start(cfg.seed)
        self.n = len(prep.data.y_train)
        self.curve = curve_rows(self.n, cfg.eval.train_subset, cfg.seed)
        self._row: dict[str, Any] = {}

    @property
    def noise_rng(self) -> np.random.Generator:
        """The ``dropout`` stream: every step's noise."""
        return self.state.noise_rng

    def begin(self, epoch: int) -> tuple[float, float, np.ndarray]:
        """(learning rate, momentum, mini-batch order) of epoch ``epoch`` (1-based)."""
        lr, momentum = hyperparameters_at(self.prep.config.train, epoch)
        self._row = {"epoch": epoch, "lr": lr, "momentum": momentum}
        return lr, momentum, self.state.order_rng.permutation(self.n)

    def end(self, epoch: int, fit_loss_sum: float, train_seconds: float) -> bool:
        """Close epoch ``epoch`` given its sum of mini-batch loss x batch size: the row (with
        the evaluations due, on the network as it is now), early stopping, the callback.
        True when this was the last epoch. Raises DivergedError on a non-finite loss."""
        return drive(self.end_steps(epoch, fit_loss_sum, train_seconds), self.prep.network)

    def end_steps(self, epoch: int, fit_loss_sum: float, train_seconds: float
                  ) -> EvalSteps[bool]:
        """:meth:`end` with its evaluations as requests (``evaluation.Request``) for the
        caller to answer: a pack answers all its members' at once."""
        cfg, data, log = self.prep.config, self.prep.data, self.log
        stopping = cfg.train.early_stopping
        fit_loss = fit_loss_sum / self.n
        if not math.isfinite(fit_loss):
            raise DivergedError(f"non-finite training loss at epoch {epoch}")
        row = self._row
        row["fit_loss"] = fit_loss
        if self.prep.plan.concrete is not None:  # concrete dropout: p per unit layer, learned
            row["learned_p"] = self.prep.network.learned_p()
        if stopping is not None:
            # the config refuses early stopping without a validation split
            assert data.x_val is not None and data.y_val is not None
            row["val_loss"], row["val_acc"] = yield ("val", data.x_val, data.y_val)
            state = self.state
            if row["val_loss"] < state.best_val - stopping.min_delta:
                state.best_val, state.since_best = row["val_loss"], 0
            else:
                state.since_best += 1
            if state.since_best >= stopping.patience and epoch < cfg.train.epochs:
                log.stopped_by = "early_stopping"
        last = epoch == cfg.train.epochs or log.stopped_by == "early_stopping"
        if last or epoch % cfg.eval.every == 0:
            # (early stopping has just evaluated the validation split)
            row.update((yield from epoch_metrics_steps(data, None if last else self.curve,
                                                       stopping is None)))
            if not (math.isfinite(row["train_loss"]) and math.isfinite(row["test_loss"])):
                log.rows.append(row)
                raise DivergedError(f"non-finite evaluation loss at epoch {epoch}")
        row["epoch_seconds"] = train_seconds
        log.rows.append(row)
        self.state.epoch = epoch
        if self.on_epoch is not None:
            self.on_epoch(row)
        return last


# Called after each epoch's row is out (on_epoch): a checkpoint may be taken here.
AfterEpoch = Callable[[LoopState, TrainingLog], None]


def train(prep: Prepared, on_epoch: Callable[[dict[str, Any]], None] | None = None,
          log: TrainingLog | None = None, state: LoopState | None = None,
          after_epoch: AfterEpoch | None = None) -> list[dict[str, Any]]:
    """The training loop: shuffled mini-batches (``order`` stream), dropout noise (``dropout``
    stream), the learning rate and momentum of each epoch from the schedules, evaluation every
    ``eval.every`` epochs (training metrics on the ``eval.train_subset`` curve sample) and a
    full evaluation of the last epoch. With ``train.early_stopping`` the validation loss is
    watched every epoch and training ends after ``patience`` epochs without an improvement of
    ``min_delta``. Returns the rows; ``log`` (if given) also gets them, as far as they got when
    DivergedError is raised on a non-finite loss, and why training stopped.

    ``state`` (with ``log`` holding its rows) continues a trial from a restored checkpoint
    instead of epoch 1; ``after_epoch`` sees the state after every epoch."""
    cfg, data, net, plan = prep.config, prep.data, prep.network, prep.plan
    loop = EpochLoop(prep, on_epoch, log, state)
    if loop.log.stopped_by == "early_stopping":  # restored after its last epoch: nothing left
        return loop.log.rows
    for epoch in range(loop.state.epoch + 1, cfg.train.epochs + 1):
        lr, momentum, perm = loop.begin(epoch)
        net.set_hyperparameters(lr, momentum)
        t0 = time.perf_counter()
        fit_loss_sum = train_epoch(net, data.x_train, data.y_train, perm, cfg.train.batch_size,
                                   plan, loop.noise_rng, cfg.dropout.noise)
        # (a device backend may run the epoch on the device)
        last = loop.end(epoch, fit_loss_sum, time.perf_counter() - t0)
        if after_epoch is not None:
            after_epoch(loop.state, loop.log)
        if last:
            break
    return loop.log.rows
