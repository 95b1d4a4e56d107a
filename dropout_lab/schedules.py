"""Learning-rate and momentum schedules: the value of each epoch, computed once per epoch.

Epochs are numbered e = 1..E. A schedule fixes the value for every step of an epoch; the
training loop hands it to the network with ``set_hyperparameters`` before the epoch starts, so
both backends follow the same schedule by construction.

Learning rate (base rate lr, warm-up W epochs, E epochs in all):

    constant      lr_e = lr
    step          lr_e = lr * gamma ** #{m in milestones : m < e}      (drops after epoch m)
    exponential   lr_e = lr * gamma ** (e - 1)
    cosine        lr_e = min_lr + (lr - min_lr) * (1 + cos(pi * t)) / 2,
                  t = (e - 1 - W) / (E - 1 - W)  for e > W           (lr at the first epoch
                                                                       after the warm-up,
                                                                       min_lr at the last;
                                                                       lr when only one
                                                                       epoch follows W)
    warm-up       lr_e <- lr_e * e / W  for e <= W                   (linear ramp to lr)

Momentum (the velocity decay mu of ``v <- mu v + g; W <- W - lr v``):

    constant      mu_e = momentum
    linear        mu_e = start + (end - start) * min(1, (e - 1) / epochs)
                  (Srivastava et al. 2014: 0.5 -> 0.99 over the first 500 epochs)
"""

from __future__ import annotations

import math

from dropout_lab.config import LRSchedule, MomentumSchedule, TrainConfig


def lr_at(schedule: LRSchedule, lr: float, epoch: int, epochs: int) -> float:
    """The learning rate of epoch ``epoch`` (1-based) of ``epochs``."""
    w = schedule.warmup_epochs
    if schedule.kind == "constant":
        value = lr
    elif schedule.kind == "step":
        assert schedule.gamma is not None  # checked by the config
        value = lr * schedule.gamma ** sum(m < epoch for m in schedule.milestones)
    elif schedule.kind == "exponential":
        assert schedule.gamma is not None
        value = lr * schedule.gamma ** (epoch - 1)
    else:  # cosine over the epochs after the warm-up: t runs from 0 (epoch W + 1) to 1
        # (epoch E), so the last epoch trains at min_lr as documented (t = (e-1-W)/(E-W) never
        # reached 1: 0.00342 instead of 0.001 for min_lr 0.001)
        t = max(0, epoch - 1 - w) / max(1, epochs - 1 - w)
        value = schedule.min_lr + (lr - schedule.min_lr) * (1.0 + math.cos(math.pi * t)) / 2.0
    if w and epoch <= w:
        value *= epoch / w
    return value


def momentum_at(schedule: MomentumSchedule, momentum: float, epoch: int) -> float:
    """The momentum of epoch ``epoch`` (1-based)."""
    if schedule.kind == "constant":
        return momentum
    assert schedule.start is not None and schedule.end is not None and schedule.epochs
    ramp = min(1.0, (epoch - 1) / schedule.epochs)
    return schedule.start + (schedule.end - schedule.start) * ramp


def hyperparameters_at(train: TrainConfig, epoch: int) -> tuple[float, float]:
    """(learning rate, momentum) of one epoch under ``train``'s schedules."""
    return (lr_at(train.lr_schedule, train.lr, epoch, train.epochs),
            momentum_at(train.momentum_schedule, train.momentum, epoch))
