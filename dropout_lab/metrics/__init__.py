"""After-training statistics: co-adaptation of hidden units and predictive uncertainty.

``after_training(prep)`` is called by :mod:`dropout_lab.trial` once a trial has trained. It
picks the held-out sample (the test split, or ``eval.max_samples`` examples of it drawn from
the trial seed's ``eval`` stream), looks at the network through the backend interface
(:class:`~dropout_lab.metrics.probe.Probe`) and returns the ``coadaptation`` and
``uncertainty`` sections of result.json, each only when turned on in ``eval``.

Randomness: one ``eval`` generator per trial seed. It draws the sample, then spawns one
independent child per statistic (ablation draws, unit pairs, Monte Carlo masks), so turning
one statistic off does not change the numbers of another, and every p of a sweep is measured
on the same examples. Formulas and references: docs/metrics.md.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from dropout_lab import seeds
from dropout_lab.backends.base import NetSpec, Network
from dropout_lab.config import ExperimentConfig
from dropout_lab.data.base import Dataset
from dropout_lab.dropout import DropoutPlan
from dropout_lab.metrics import coadaptation, uncertainty
from dropout_lab.metrics.probe import Probe

__all__ = ["after_training", "evaluation_sample", "held_out", "Probe", "TrainedTrial"]


class TrainedTrial(Protocol):
    """What :func:`after_training` reads of a trained trial (``trial.Prepared`` has it)."""

    @property
    def config(self) -> ExperimentConfig: ...
    @property
    def data(self) -> Dataset: ...
    @property
    def spec(self) -> NetSpec: ...
    @property
    def network(self) -> Network: ...
    @property
    def plan(self) -> DropoutPlan: ...


def held_out(x: np.ndarray, y: np.ndarray, max_samples: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """All of (x, y), or ``max_samples`` rows of it drawn without replacement (kept in order)."""
    if len(y) <= max_samples:
        return x, y
    idx = np.sort(rng.choice(len(y), size=max_samples, replace=False))
    return x[idx], y[idx]


def evaluation_sample(prep: TrainedTrial) -> tuple[np.ndarray, np.ndarray]:
    """The held-out examples every after-training statistic (and health's dead-unit check)
    is computed on: ``eval.max_samples`` test rows drawn first from the ``eval`` stream."""
    return held_out(prep.data.x_test, prep.data.y_test, prep.config.eval.max_samples,
                    seeds.rng(prep.config.seed, "eval"))


def after_training(prep: TrainedTrial) -> dict[str, Any]:
    """The ``coadaptation`` and/or ``uncertainty`` sections for a trained trial."""
    ev = prep.config.eval
    if not (ev.coadaptation or ev.uncertainty):
        return {}
    base = seeds.rng(prep.config.seed, "eval")
    # the sample is the stream's first draw: the same rows as evaluation_sample(prep)
    x, y = held_out(prep.data.x_test, prep.data.y_test, ev.max_samples, base)
    rng_ablation, rng_pairs, rng_mc = base.spawn(3)
    probe = Probe.build(prep.network, prep.plan, prep.spec.test_scales, x, y, prep.data.n_classes,
                        activation=prep.spec.activation)
    out: dict[str, Any] = {}
    if ev.coadaptation:
        out["coadaptation"] = coadaptation.compute(probe, ev.ablation_draws, ev.pair_samples,
                                                   rng_ablation, rng_pairs)
    if ev.uncertainty:
        out["uncertainty"] = uncertainty.compute(probe, ev.mc_samples, ev.ece_bins, rng_mc)
    return out
