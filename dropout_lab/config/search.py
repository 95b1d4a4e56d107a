"""The ``search:`` section and range axes: the config of an adaptive search (docs/search.md).

A sweep axis is either a list of grid values or a :class:`RangeAxis` (``{min, max}`` with
optional ``log`` and ``step``). With a ``step`` and method ``grid`` (or no ``search:``
section) a range expands to grid values (:func:`grid_values`: both ends included when the
step divides the range); without a step it is a continuous range a sampler draws from
(method ``random`` or ``tpe``). The search itself (Optuna's samplers and pruners) is in
:mod:`dropout_lab.search`.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from dropout_lab.config.strict import StrictModel

# The metrics every epoch's row holds (dropout_lab/evaluation.py): what a search can report
# each epoch and optimise. Each with the goal that is better (the default of search.goal).
EPOCH_METRICS: dict[str, Literal["maximize", "minimize"]] = {
    "val_acc": "maximize", "val_loss": "minimize",
    "test_acc": "maximize", "test_loss": "minimize",
    "train_acc": "maximize", "train_loss": "minimize",
    "gap_acc": "minimize", "gap_loss": "minimize",
}
# A range with a step expands to at most this many grid values (a typo such as step 1e-9).
MAX_RANGE_VALUES = 10_000


class RangeAxis(StrictModel):
    """A sweep axis given as a range: ``{min: 0.0, max: 0.9}`` (continuous: a search draws
    from it), ``log: true`` (drawn uniformly in log space; min > 0), ``step: 0.1`` (the grid
    min, min + step, ..., up to max)."""

    min: float
    max: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> RangeAxis:
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise ValueError("min and max must be finite numbers")
        if self.min > self.max:
            raise ValueError(f"min = {self.min} is more than max = {self.max}")
        if self.log and self.min <= 0:
            raise ValueError(f"log: true needs min > 0 (got min = {self.min}): a log scale "
                             "has no 0; use e.g. min: 0.01")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined (a step is even on a linear "
                             "scale); drop one of them")
        if self.step is not None and (self.max - self.min) / self.step + 1 > MAX_RANGE_VALUES:
            raise ValueError(f"step {self.step} makes more than {MAX_RANGE_VALUES:,} values")
        return self


def grid_values(axis: RangeAxis) -> list[float]:
    """The grid of a range with a step: min, min + step, ... while <= max (max itself when the
    step divides max - min, up to rounding: 1e-9 of a step). Values are rounded to 12
    significant decimals, so 0.1 * 3 is written 0.3 (a trial id hashes the value)."""
    assert axis.step is not None
    n = math.floor((axis.max - axis.min) / axis.step + 1e-9)
    return [float(f"{axis.min + i * axis.step:.12g}") for i in range(n + 1)]


class EarlyTerminate(StrictModel):
    """``early_terminate``: stop hopeless trials (Optuna's pruners).

    ``asha``: successive halving (SuccessiveHalvingPruner; min_epochs is its minimum
    resource, reduction_factor its eta). ``hyperband``: HyperbandPruner over min_epochs ..
    train.epochs. ``median``: MedianPruner (a trial below the median of the earlier trials at
    the same epoch stops; n_startup_trials finish first, no pruning before min_epochs).
    ``wilcoxon``: WilcoxonPruner with the seeds of a block as its instances (a suggestion
    stops between seeds when a signed-rank test says it is worse than the best; p_threshold)."""

    type: Literal["asha", "hyperband", "median", "wilcoxon"]
    min_epochs: int = Field(default=1, ge=1, le=100_000,
                            description="epochs every trial runs before it can be pruned")
    reduction_factor: int = Field(default=3, ge=2, le=100,
                                  description="asha/hyperband: keep 1 in this many at a rung")
    n_startup_trials: int = Field(default=5, ge=0, le=100_000,
                                  description="median: trials that finish before any pruning")
    p_threshold: float = Field(default=0.1, gt=0, lt=1,
                               description="wilcoxon: significance level of the test")


class SearchConfig(StrictModel):
    """``search:``: how the points of the sweep are chosen (docs/search.md)."""

    method: Literal["grid", "random", "tpe"] = "grid"
    trials: int | None = Field(default=None, ge=1, le=100_000,
                               description="suggestions to run (each over every seed of the "
                               "seed axis); grid: default the grid's size")
    metric: str = Field(default="val_acc",
                        description=f"what the search optimises: {', '.join(EPOCH_METRICS)}")
    goal: Literal["maximize", "minimize"] | None = Field(
        default=None, description="default: maximize accuracies, minimize losses and gaps")
    seed: int = Field(default=0, ge=0, lt=2**32, description="the sampler's seed")
    early_terminate: EarlyTerminate | None = None

    @model_validator(mode="after")
    def _known_metric(self) -> SearchConfig:
        if self.metric not in EPOCH_METRICS:
            raise ValueError(f"search.metric {self.metric!r} is not measured every epoch; "
                             f"choose one of {', '.join(EPOCH_METRICS)}")
        return self

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        return self.goal or EPOCH_METRICS[self.metric]
