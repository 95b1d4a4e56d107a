"""Predictive uncertainty: Monte Carlo dropout beside the deterministic prediction.

The deterministic prediction is the evaluation-mode network (weight scaling: nothing dropped,
``standard`` dropout scaled by 1 - p). The Monte Carlo (MC) prediction averages the softmax of
T training-mode passes, p_bar = (1/T) sum_t softmax(z_t) (Gal and Ghahramani 2016). From them:
accuracy, negative log-likelihood, predictive entropy, mutual information (BALD), expected
calibration error, Brier score, a reliability diagram and the MC accuracy as a function of T
(Srivastava et al. 2014, Fig. 11). Definitions and how to read them: docs/metrics.md.

The pure functions take probabilities or log-probabilities as NumPy arrays (float64).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import numpy as np

from dropout_lab.metrics.probe import Probe

MC_CURVE_T = (1, 2, 5, 10, 20, 50)
MAX_BLOCK_ELEMENTS = 1 << 22  # noise numbers drawn at once (16 MB in float32)


# -- pure functions -------------------------------------------------------------------------
def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax per row, with the row max subtracted first (no overflow)."""
    z = np.asarray(logits, dtype=np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    log_p: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return log_p


def nll(log_probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood -(1/N) sum_n log p_n[y_n]."""
    return float(-np.mean(log_probs[np.arange(len(y)), y]))


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(probs).argmax(axis=1) == y))


def entropy(probs: np.ndarray) -> np.ndarray:
    """Per-row entropy H[p] = -sum_k p_k log p_k in nats (0 log 0 = 0)."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    h: np.ndarray = -terms.sum(axis=1)
    return h


def mutual_information(mean_probs: np.ndarray, mean_pass_entropy: np.ndarray) -> np.ndarray:
    """BALD per example: H[p_bar] - (1/T) sum_t H[p_t] (Houlsby et al. 2011; Gal et al. 2017).

    Non-negative by Jensen's inequality; rounding below zero is clipped to 0."""
    mi: np.ndarray = np.maximum(entropy(mean_probs) - mean_pass_entropy, 0.0)
    return mi


def brier(probs: np.ndarray, y: np.ndarray) -> float:
    """Multi-class Brier score (1/N) sum_n sum_k (p_nk - 1[y_n = k])^2, in [0, 2]."""
    p = np.asarray(probs, dtype=np.float64)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(((p - onehot) ** 2).sum(axis=1)))


def bin_edges(bins: int) -> np.ndarray:
    """The B + 1 edges 0, 1/B, ..., 1 of the equal-width confidence bins."""
    return np.linspace(0.0, 1.0, bins + 1)


class Reliability(TypedDict):
    """A reliability diagram: per confidence bin, mean confidence, accuracy and count."""

    confidence: list[float]
    accuracy: list[float]
    count: list[int]


def reliability(probs: np.ndarray, y: np.ndarray, bins: int) -> Reliability:
    """Per equal-width confidence bin (b/B, (b+1)/B]: mean confidence, accuracy and count.

    Confidence is max_k p_k, the prediction argmax_k p_k. Empty bins have NaN confidence and
    accuracy (null in result.json) and count 0."""
    p = np.asarray(probs, dtype=np.float64)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    # Bin b holds (edges[b], edges[b+1]], found against the very edges result.json reports:
    # ceil(conf * B) - 1 put a confidence equal to an edge one bin too high whenever
    # conf * B rounds up (0.3 * 10 = 3.0000000000000004 -> bin (0.3, 0.4]).
    idx = np.clip(np.searchsorted(bin_edges(bins), conf, side="left") - 1, 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=bins) / count
        mean_acc = np.bincount(idx, weights=correct, minlength=bins) / count
    return {"confidence": [float(v) for v in mean_conf], "accuracy": [float(v) for v in mean_acc],
            "count": [int(v) for v in count]}


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int) -> float:
    """ECE = sum_b (n_b / N) |acc_b - conf_b| over equal-width bins (Guo et al. 2017)."""
    rel = reliability(probs, y, bins)
    return ece_from_reliability(rel, len(y))


def ece_from_reliability(rel: Reliability, n: int) -> float:
    total = 0.0
    for c, a, k in zip(rel["confidence"], rel["accuracy"], rel["count"], strict=True):
        if k:
            total += k / n * abs(a - c)
    return float(total)


class McAverage:
    """Running Monte Carlo average over passes, without keeping the passes.

    Keeps sum_t p_t (for p_bar), the running log-sum-exp of log p_t (for a log p_bar that
    does not underflow: log p_bar = logsumexp_t log p_t - log T) and sum_t H[p_t]."""

    def __init__(self) -> None:
        self.passes = 0
        self._sum_p: np.ndarray | None = None
        self._lse: np.ndarray | None = None
        self._sum_h: np.ndarray | None = None

    def add(self, logits: np.ndarray) -> None:
        """Add one pass (N, C) or a stack of passes (K, N, C)."""
        z = np.asarray(logits, dtype=np.float64)
        if z.ndim == 2:
            z = z[None]
        logp = log_softmax(z.reshape(-1, z.shape[-1])).reshape(z.shape)
        p = np.exp(logp)
        sum_p, sum_h = p.sum(axis=0), -(p * logp).sum(axis=(0, 2))
        lse = np.logaddexp.reduce(logp, axis=0) if len(z) > 1 else logp[0]
        if self._sum_p is None or self._lse is None or self._sum_h is None:  # the first pass
            self._sum_p, self._lse, self._sum_h = sum_p, lse, sum_h
        else:
            self._sum_p += sum_p
            self._lse = np.logaddexp(self._lse, lse)
            self._sum_h += sum_h
        self.passes += len(z)

    def mean_probs(self) -> np.ndarray:
        """p_bar = (1/T) sum_t p_t."""
        return _added(self._sum_p) / self.passes

    def mean_log_probs(self) -> np.ndarray:
        """log p_bar = logsumexp_t log p_t - log T."""
        return _added(self._lse) - math.log(self.passes)

    def mean_pass_entropy(self) -> np.ndarray:
        """(1/T) sum_t H[p_t]."""
        return _added(self._sum_h) / self.passes


def _added(total: np.ndarray | None) -> np.ndarray:
    """A running total of :class:`McAverage`, which exists once a pass was added."""
    if total is None:
        raise ValueError("no Monte Carlo pass added yet")
    return total


def prediction_stats(probs: np.ndarray, log_probs: np.ndarray, y: np.ndarray, bins: int
                     ) -> dict[str, Any]:
    """Accuracy, NLL, ECE, Brier and the reliability bins of one predictive distribution."""
    rel = reliability(probs, y, bins)
    return {"acc": accuracy(probs, y), "nll": nll(log_probs, y),
            "ece": ece_from_reliability(rel, len(y)), "brier": brier(probs, y),
            "reliability": rel}


# -- driving the network --------------------------------------------------------------------
# (passes) -> the Monte Carlo logits of the next ``passes`` passes of each probe, (passes, N, C)
McLogits = Callable[[int], list[np.ndarray]]


def compute(probe: Probe, mc_samples: int, ece_bins: int, rng: np.random.Generator
                ) -> dict[str, Any]:
    """The ``uncertainty`` section of result.json (schema in docs/metrics.md).

    Runs max(mc_samples, 50) passes once: the statistics use the first ``mc_samples`` and the
    curve reads the running average after 1, 2, 5, 10, 20 and 50 passes (prefix means of one
    sequence of draws). Without any dropout (every rate 0) a pass equals the deterministic
    prediction, so none is run and mutual_information is 0."""
    return compute_many([probe], mc_samples, ece_bins,
                        lambda passes: [probe.mc_logits(rng, passes)])[0]


def compute_many(probes: Sequence[Probe], mc_samples: int, ece_bins: int,
                 mc_logits: McLogits) -> list[dict[str, Any]]:
    """:func:`compute` for several trained networks at once (a pack's members, issue 19):
    the same blocks of passes for every probe, each block's passes of all of them asked of
    ``mc_logits`` in one call, so a stacked network can run them as one forward pass. Each
    probe's passes are drawn from its own generator exactly as :func:`compute` draws them
    (``mc_logits`` is a probe's own :meth:`~dropout_lab.metrics.probe.Probe.mc_logits` for a
    single one). The probes share the sample size and layer widths (one block size), and
    are all stochastic or there is only one."""
    widths = {(len(p.y), p.x.shape[1], tuple(p.widths)) for p in probes}
    if len(widths) != 1 or (len(probes) > 1 and not all(p.stochastic for p in probes)):
        raise ValueError("compute_many needs stochastic probes of one sample size and shape")
    dets = []
    for probe in probes:
        det_logp = log_softmax(probe.logits)
        det_p = np.exp(det_logp)
        dets.append((det_p, prediction_stats(det_p, det_logp, probe.y, ece_bins)))

    mcs: list[dict[str, Any]] = [{} for _ in probes]
    mc_curves: list[list[float]] = [[] for _ in probes]
    first = probes[0]
    if first.stochastic:
        avgs = [McAverage() for _ in probes]
        curves: list[dict[int, float]] = [{} for _ in probes]
        # Passes in blocks that end on every T where a snapshot is read; each block is one
        # batched draw, capped so a block's noise stays below MAX_BLOCK_ELEMENTS numbers.
        stops = sorted({*MC_CURVE_T, mc_samples})
        n = len(first.y)
        cap = max(1, MAX_BLOCK_ELEMENTS // (n * max(first.widths + [first.x.shape[1]])))
        done = 0
        for stop in stops:
            while done < stop:
                k = min(stop - done, cap)
                for avg, logits in zip(avgs, mc_logits(k), strict=True):
                    avg.add(logits)
                done += k
            for probe, avg, curve, mc in zip(probes, avgs, curves, mcs, strict=True):
                if stop in MC_CURVE_T:
                    curve[stop] = accuracy(avg.mean_probs(), probe.y)
                if stop == mc_samples:
                    mean_p = avg.mean_probs()
                    mc.update(prediction_stats(mean_p, avg.mean_log_probs(), probe.y,
                                               ece_bins))
                    mc["entropy"] = float(entropy(mean_p).mean())
                    mc["mi"] = float(mutual_information(mean_p,
                                                        avg.mean_pass_entropy()).mean())
        mc_curves = [[curve[t] for t in MC_CURVE_T] for curve in curves]
    else:
        det_p, det = dets[0]
        mcs[0] = {**det, "entropy": float(entropy(det_p).mean()), "mi": 0.0}
        mc_curves[0] = [det["acc"]] * len(MC_CURVE_T)

    return [{
        "mc_samples": int(mc_samples),
        "mc_acc": mc["acc"], "mc_nll": mc["nll"],
        "det_acc": det["acc"], "det_nll": det["nll"],
        "predictive_entropy": mc["entropy"], "mutual_information": mc["mi"],
        "ece_det": det["ece"], "ece_mc": mc["ece"],
        "brier_det": det["brier"], "brier_mc": mc["brier"],
        "mc_curve": {"T": list(MC_CURVE_T), "acc": curve},
        "reliability": {"edges": [float(e) for e in bin_edges(ece_bins)],
                        "det": det["reliability"], "mc": mc["reliability"]},
    } for (_, det), mc, curve in zip(dets, mcs, mc_curves, strict=True)]
