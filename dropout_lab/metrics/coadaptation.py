"""Co-adaptation statistics of the hidden units (definitions and references: docs/metrics.md).

Two kinds of statistic:

* per hidden layer, from the N x d matrix h of evaluation-mode activations: correlation,
  DeCov, participation ratio, sparsity and class selectivity (pure functions on arrays);
* reliance on units, by clamping them to zero through the backend interface: the ablation
  curve and its area, and the pair synergy dL(i, j) - dL(i) - dL(j).

Covariances use the 1/N normalisation of Cogswell et al. (2016); correlations do not depend
on it. Everything is computed in float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dropout_lab.metrics.probe import Probe

ABLATION_FRACTIONS = tuple(round(0.1 * k, 1) for k in range(10))  # 0.0, 0.1, ..., 0.9
SYNERGY_Z = 2.0  # a pair counts as synergistic above 2 pooled standard errors

# A unit is "live" for correlations when its variance exceeds this fraction of its mean square:
# constant units (dead ReLUs, saturated tanh) have no defined correlation.
_LIVE_RTOL = 1e-10

# corr[l] averages only over units active (h != 0) on at least this fraction of the sample: a
# unit that fires on a handful of images has a correlation estimated from a handful of points,
# and such units moved corr[1] at p = 0.8 from 0.194 to 0.1115 (2,000 images) or 0.0705
# (10,000 images). ``corr_units`` reports how many units the mean is over.
CORR_MIN_ACTIVE = 0.01

# A unit is dead when it takes one value on every example of the sample: its spread
# max - min is at most this fraction of max(1, max |h|). A ReLU stuck at 0 and a saturated
# tanh are both dead; this is the one definition (health's dead_units flag uses it too).
DEAD_RTOL = 1e-12


# -- per-layer statistics (pure functions) --------------------------------------------------
def covariance(h: np.ndarray) -> np.ndarray:
    """C = (1/N) (h - mean)^T (h - mean), the d x d covariance of the units (1/N as in DeCov)."""
    h = np.asarray(h, dtype=np.float64)
    centred = h - h.mean(axis=0)
    c: np.ndarray = centred.T @ centred / len(h)
    return c


def live_units(h: np.ndarray) -> np.ndarray:
    """Boolean mask of units whose activation varies over the examples."""
    h = np.asarray(h, dtype=np.float64)
    var = h.var(axis=0)
    live: np.ndarray = var > _LIVE_RTOL * np.maximum((h * h).mean(axis=0),
                                                     np.finfo(np.float64).tiny)
    return live


def dead_units(h: np.ndarray) -> np.ndarray:
    """Boolean mask of dead units: constant over every example (rows) of ``h`` (N x d).

    Constant means max - min <= DEAD_RTOL x max(1, max |h|): a ReLU at 0 on every example, a
    tanh saturated at +-1, any unit with one value. All False when there are no examples."""
    h = np.asarray(h, dtype=np.float64)
    if h.shape[0] == 0:
        return np.zeros(h.shape[1], dtype=bool)
    spread = h.max(axis=0) - h.min(axis=0)
    dead: np.ndarray = spread <= DEAD_RTOL * np.maximum(1.0, np.abs(h).max(axis=0))
    return dead


def dead_fraction(h: np.ndarray) -> float:
    """Fraction of the units of ``h`` (N x d) that are dead (:func:`dead_units`); 0 if d = 0."""
    mask = dead_units(h)
    return float(mask.mean()) if mask.size else 0.0


def corr_units(h: np.ndarray, min_active: float = CORR_MIN_ACTIVE) -> np.ndarray:
    """Boolean mask of the units ``corr[l]`` averages over: live (:func:`live_units`) and
    active (h != 0) on at least ``min_active`` of the examples."""
    h = np.asarray(h, dtype=np.float64)
    if h.shape[0] == 0:
        return np.zeros(h.shape[1], dtype=bool)
    active = np.mean(h != 0, axis=0) >= min_active
    mask: np.ndarray = live_units(h) & active
    return mask


def mean_abs_corr(c: np.ndarray, live: np.ndarray) -> float:
    """Mean of |C_ij| / sqrt(C_ii C_jj) over pairs i < j of live units (NaN with < 2)."""
    idx = np.flatnonzero(live)
    k = len(idx)
    if k < 2:
        return math.nan
    sub = c[np.ix_(idx, idx)]
    std = np.sqrt(np.diag(sub))
    corr = np.abs(sub / np.outer(std, std))
    # Sum over the strict upper triangle = (sum of all - trace) / 2; the trace of |corr| is k.
    return float((corr.sum() - np.trace(corr)) / (k * (k - 1)))


def decov(c: np.ndarray) -> float:
    """DeCov loss 0.5 (||C||_F^2 - ||diag C||^2) (Cogswell et al. 2016, eq. 1)."""
    diag = np.diag(c)
    return float(0.5 * ((c * c).sum() - (diag * diag).sum()))


def decov_standardized(c: np.ndarray, live: np.ndarray) -> float:
    """DeCov of the standardized activations (h_i - mean_i) / sd_i of the live units.

    Their covariance is the correlation matrix R, so this is 0.5 sum_{i != j} R_ij^2: unlike
    the raw DeCov it does not grow with the scale of the activations (dropout's 1/(1-p)
    rescaling, weight norms), only with how correlated the units are and how many there
    are. d identical units give 0.5 d (d - 1); uncorrelated units give 0. NaN with < 2."""
    idx = np.flatnonzero(live)
    if len(idx) < 2:
        return math.nan
    sub = c[np.ix_(idx, idx)]
    std = np.sqrt(np.diag(sub))
    r = sub / np.outer(std, std)
    return decov(r)


def participation_ratio(c: np.ndarray) -> float:
    """(sum_k lambda_k)^2 / sum_k lambda_k^2 over the eigenvalues of C.

    For symmetric C, sum lambda = tr C and sum lambda^2 = ||C||_F^2: no eigendecomposition.
    1 when one direction carries all the variance, d when all d directions carry equal
    variance. NaN when C = 0."""
    sq = float((c * c).sum())
    return float(np.trace(c)) ** 2 / sq if sq > 0 else math.nan


def selectivity(h: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """Mean over units of (mu_max - mu_rest) / (mu_max + mu_rest) (Morcos et al. 2018).

    mu_c is a unit's mean |activation| over the examples of class c, mu_max the largest and
    mu_rest the mean of the other classes present. |h| = h for ReLU; for tanh it makes the
    index defined. Units that are zero on every example are left out; NaN if no unit is
    left or fewer than two classes are present."""
    a = np.abs(np.asarray(h, dtype=np.float64))
    y = np.asarray(y)
    present = [c for c in range(n_classes) if np.any(y == c)]
    if len(present) < 2:
        return math.nan
    mu = np.stack([a[y == c].mean(axis=0) for c in present])  # (classes, d)
    top = mu.argmax(axis=0)
    mu_max = mu[top, np.arange(mu.shape[1])]
    mu_rest = (mu.sum(axis=0) - mu_max) / (len(present) - 1)
    denom = mu_max + mu_rest
    ok = denom > 0
    if not ok.any():
        return math.nan
    return float(np.mean((mu_max[ok] - mu_rest[ok]) / denom[ok]))


def layer_statistics(h: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, float]:
    """Every per-layer statistic of one hidden layer's N x d activation matrix."""
    h = np.asarray(h, dtype=np.float64)
    d = h.shape[1]
    c = covariance(h)
    live = live_units(h)
    used = corr_units(h)
    pr = participation_ratio(c)
    return {
        "units": int(d),
        "mean_abs_corr": mean_abs_corr(c, used),
        "corr_units": int(used.sum()),
        "corr_min_active": CORR_MIN_ACTIVE,
        "decov": decov(c),
        "decov_std": decov_standardized(c, live),
        "participation_ratio": pr,
        "participation_ratio_norm": pr / d,
        "mean_activation": float(h.mean()),
        # Sparsity as in Srivastava et al. (2014, section 7.2): how many activations are zero.
        "zero_fraction": float(np.mean(h == 0)),
        "dead_fraction": dead_fraction(h),
        "selectivity": selectivity(h, y, n_classes),
    }


# -- reliance on units (pure parts) ---------------------------------------------------------
def per_example_nll(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[y] per example; ``logits`` is (N, C) or a stack (..., N, C).

    log-sum-exp with the max subtracted. Computed class-major (..., C, N): reducing over a
    few long rows is much faster in NumPy than over many rows of C = 10."""
    z = np.ascontiguousarray(np.moveaxis(np.asarray(logits, dtype=np.float64), -1, -2))
    m = z.max(axis=-2)
    lse = m + np.log(np.exp(z - m[..., None, :]).sum(axis=-2))
    y = np.asarray(y)
    picked = z[..., y, np.arange(len(y))]  # z[..., y_n, n]
    nll: np.ndarray = lse - picked
    return nll


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(logits).argmax(axis=1) == y))


def ablation_auc(fractions: list[float] | tuple[float, ...], curve: list[float]) -> float:
    """Normalised area under the ablation curve: trapezoid over f, divided by the f range.

    So it is an average accuracy in [0, 1]: 1 means clamping units never costs accuracy."""
    f = np.asarray(fractions, dtype=np.float64)
    a = np.asarray(curve, dtype=np.float64)
    span = f[-1] - f[0]
    if span <= 0:
        return float(a[0])
    return float(np.sum((a[1:] + a[:-1]) * np.diff(f)) / 2.0 / span)


def synergy_per_example(base: np.ndarray, loss_i: np.ndarray, loss_j: np.ndarray,
                        loss_ij: np.ndarray) -> np.ndarray:
    """s_n = l_n(ij) - l_n(i) - l_n(j) + l_n(none): its mean is dL(i,j) - dL(i) - dL(j)."""
    s: np.ndarray = loss_ij - loss_i - loss_j + base
    return s


def synergy_summary(per_pair: list[np.ndarray]) -> dict[str, Any]:
    """Mean synergy over pairs, and the fraction above a noise threshold.

    Each pair's synergy is a mean over N examples; its standard error is std(s_n)/sqrt(N).
    The threshold is SYNERGY_Z pooled standard errors, SYNERGY_Z * sqrt(mean_pairs SE^2): a
    pair above it has a loss interaction that the choice of test examples does not explain."""
    if not per_pair:
        return {"mean": math.nan, "frac_above": math.nan, "threshold": math.nan, "pairs": 0}
    s = np.stack(per_pair)  # (pairs, N)
    values = s.mean(axis=1)
    n = s.shape[1]
    if n < 2:
        threshold = math.nan
        frac = math.nan
    else:
        se2 = s.var(axis=1, ddof=1) / n
        threshold = float(SYNERGY_Z * np.sqrt(se2.mean()))
        frac = float(np.mean(values > threshold))
    return {"mean": float(values.mean()), "frac_above": frac, "threshold": threshold,
            "pairs": int(len(values))}


def sample_pairs(rng: np.random.Generator, units: np.ndarray, k: int) -> list[tuple[int, int]]:
    """Up to k distinct unordered pairs (i < j) of ``units``, uniformly; all pairs if fewer."""
    units = np.asarray(units)
    n = len(units)
    total = n * (n - 1) // 2
    if total <= k:
        return [(int(units[a]), int(units[b])) for a in range(n) for b in range(a + 1, n)]
    chosen: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int]] = []
    while len(pairs) < k:
        a, b = sorted(int(v) for v in rng.choice(n, size=2, replace=False))
        if (a, b) not in chosen:
            chosen.add((a, b))
            pairs.append((int(units[a]), int(units[b])))
    return pairs


# -- reliance on units (driving the network) ------------------------------------------------
def ablation_curve(probe: Probe, rng: np.random.Generator, draws: int,
                   fractions: tuple[float, ...] = ABLATION_FRACTIONS) -> list[float]:
    """Accuracy with a random fraction f of the units of EVERY hidden layer clamped to zero,
    averaged over ``draws`` draws (Morcos et al. 2018); f = 0 needs no draw."""
    curve = []
    for f in fractions:
        if f == 0:
            curve.append(accuracy(probe.logits, probe.y))
            continue
        accs = []
        for _ in range(draws):
            drop = [rng.permutation(d)[: int(round(f * d))] for d in probe.widths]
            accs.append(accuracy(probe.logits_without(drop), probe.y))
        curve.append(float(np.mean(accs)))
    return curve


def pair_synergy(probe: Probe, rng: np.random.Generator, pair_samples: int) -> dict[str, Any]:
    """Synergy of ``pair_samples`` random pairs of live units per hidden layer, pooled.

    Each unit's single-removal loss is computed once and shared by the pairs that contain it.
    Units that are zero on every example cannot matter and are not sampled."""
    per_pair: list[np.ndarray] = []
    last = probe.n_hidden - 1
    for layer, h in enumerate(probe.hidden):
        alive = np.flatnonzero(np.any(h != 0, axis=0))
        pairs = sample_pairs(rng, alive, pair_samples)
        if not pairs:
            continue
        singles = sorted({u for pair in pairs for u in pair})
        sets = [[u] for u in singles] + [list(pair) for pair in pairs]
        # The reference loss comes from the same path as the ablated ones (the read-out
        # shortcut for the last layer, the tail shortcut or else the backend for earlier
        # ones): equal rounding in every term. The two shortcuts take the empty set as the
        # reference, in the same pass as the ablations (the tail's shared product once).
        if layer == last or probe.has_tail:
            both = per_example_nll(probe.logits_without_each(layer, [[], *sets]), probe.y)
            base, losses = both[0], both[1:]  # (N,), (S, N)
        else:
            losses = per_example_nll(probe.logits_without_each(layer, sets), probe.y)
            base = per_example_nll(probe.logits, probe.y)
        row = {u: k for k, u in enumerate(singles)}
        for k, (i, j) in enumerate(pairs):
            per_pair.append(synergy_per_example(base, losses[row[i]], losses[row[j]],
                                                losses[len(singles) + k]))
    return synergy_summary(per_pair)


def compute(probe: Probe, draws: int, pair_samples: int, rng_ablation: np.random.Generator,
                 rng_pairs: np.random.Generator) -> dict[str, Any]:
    """The ``coadaptation`` section of result.json (schema in docs/metrics.md)."""
    layers = [{"layer": k + 1, **layer_statistics(h, probe.y, probe.n_classes)}
              for k, h in enumerate(probe.hidden)]
    curve = ablation_curve(probe, rng_ablation, draws)
    return {
        "layers": layers,
        "ablation": {
            "fractions": list(ABLATION_FRACTIONS),
            "curve": curve,
            "auc": ablation_auc(ABLATION_FRACTIONS, curve),
            "pair_synergy": pair_synergy(probe, rng_pairs, pair_samples),
        },
    }
