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

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from dropout_lab import seeds
from dropout_lab.backends.base import NetSpec, Network
from dropout_lab.config import ExperimentConfig
from dropout_lab.data.base import Dataset
from dropout_lab.dropout import DropoutPlan, Noise
from dropout_lab.metrics import coadaptation, uncertainty
from dropout_lab.metrics.probe import CHUNK, Probe

__all__ = ["after_training", "after_training_many", "evaluation_sample", "held_out", "Probe",
           "StackedForward", "TrainedTrial"]


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
    return after_training_many([prep])[0]


# (member positions, one Noise per member (None: no noise), the members' inputs) -> their
# training-mode logits (K, N, C) float64 from one stacked forward pass: a pack's network.
StackedForward = Callable[[list[int], list[Noise | None], list[np.ndarray]], np.ndarray]


def after_training_many(preps: Sequence[TrainedTrial],
                        stacked: StackedForward | None = None) -> list[dict[str, Any]]:
    """:func:`after_training` for several trained trials, each its own numbers.

    With ``stacked`` (a pack's members, issue 19), the Monte Carlo dropout passes of the
    members that share the uncertainty settings and sample shape run as one stacked forward
    pass per pass number: each member still draws its noise from its own ``eval`` stream in
    the same order as alone, so each member's numbers are its solo numbers (up to the
    rounding of a batched product: tests/packs/test_pack_statistics.py). Everything else is
    per member."""
    out: list[dict[str, Any]] = [{} for _ in preps]
    mc: list[tuple[int, Probe, np.random.Generator]] = []
    for i, prep in enumerate(preps):
        ev = prep.config.eval
        if not (ev.coadaptation or ev.uncertainty):
            continue
        base = seeds.rng(prep.config.seed, "eval")
        # the sample is the stream's first draw: the same rows as evaluation_sample(prep)
        x, y = held_out(prep.data.x_test, prep.data.y_test, ev.max_samples, base)
        rng_ablation, rng_pairs, rng_mc = base.spawn(3)
        probe = Probe.build(prep.network, prep.plan, prep.spec.test_scales, x, y,
                            prep.data.n_classes, activation=prep.spec.activation)
        if ev.coadaptation:
            out[i]["coadaptation"] = coadaptation.compute(probe, ev.ablation_draws,
                                                          ev.pair_samples, rng_ablation,
                                                          rng_pairs)
        if ev.uncertainty:
            mc.append((i, probe, rng_mc))
    groups: dict[tuple[Any, ...], list[tuple[int, Probe, np.random.Generator]]] = {}
    for item in mc:
        i, probe, _ = item
        ev = preps[i].config.eval
        # batched: stochastic members of one block layout whose passes are not the cheap
        # read-out shortcut (one small product on h_L, already cheaper than a forward pass)
        batch = (stacked is not None and probe.stochastic and not probe.noise_only_in_readout)
        key = ((ev.mc_samples, ev.ece_bins, len(probe.y), probe.x.shape, tuple(probe.widths))
               if batch else ("alone", i))
        groups.setdefault(key, []).append(item)
    for members in groups.values():
        first = preps[members[0][0]].config.eval
        if len(members) == 1 or stacked is None:
            for i, probe, rng in members:
                out[i]["uncertainty"] = uncertainty.compute(probe, first.mc_samples,
                                                            first.ece_bins, rng)
            continue
        results = uncertainty.compute_many([p for _, p, _ in members], first.mc_samples,
                                           first.ece_bins, _stacked_passes(members, stacked))
        for (i, _, _), result in zip(members, results, strict=True):
            out[i]["uncertainty"] = result
    return out


def _stacked_passes(members: list[tuple[int, Probe, np.random.Generator]],
                    stacked: StackedForward) -> uncertainty.McLogits:
    """``passes`` Monte Carlo passes of every member: pass t draws each member's noise from
    its own generator (as Probe.mc_logits does alone), then one stacked forward pass for all
    of them, in chunks of probe.CHUNK rows (noise sliced with the rows, as alone)."""
    positions = [i for i, _, _ in members]
    probes = [p for _, p, _ in members]
    n = len(probes[0].x)

    def passes(count: int) -> list[np.ndarray]:
        out = np.empty((len(members), count, n, probes[0].n_classes))
        for t in range(count):
            noises = [p.plan.sample(rng, n) for _, p, rng in members]
            for s in range(0, n, CHUNK):
                e = s + CHUNK
                rows = [None if z is None else
                        Noise([None if u is None else u[s:e] for u in z.units], z.weights)
                        for z in noises]
                out[:, t, s:e] = stacked(positions, rows, [p.x[s:e] for p in probes])
        return list(out)

    return passes
