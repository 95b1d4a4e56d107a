"""Statistics across seeds: Student-t confidence intervals and paired differences.

Every p of a sweep starts from the same initial weights and sees the same mini-batches at a
given seed (separate random streams, see ``seeds.py``); only the dropout masks change. The
difference ``metric[p] - metric[baseline]`` at one seed is therefore a *paired* observation,
and the interval of its mean over seeds is much narrower than the two unpaired intervals.

Formulas (n observations x_1..x_n):

    mean  = sum(x) / n
    sd    = sqrt(sum((x - mean)^2) / (n - 1))          sample standard deviation
    CI    = mean +- t_{(1+level)/2, n-1} * sd / sqrt(n)  Student t interval of the mean

With n = 1 the standard deviation and the interval are undefined (``None``), never an error.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

DEFAULT_LEVEL = 0.95


def t_quantile(level: float, df: int) -> float:
    """Two-sided Student t critical value: t_{(1+level)/2, df} (12.706 for 95 % and df=1)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level {level} is outside (0, 1)")
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    from scipy import stats  # lazy: scipy.stats takes 0.5 s to import; `sweep` never needs it

    return float(stats.t.ppf((1.0 + level) / 2.0, df))


@dataclass(frozen=True)
class Summary:
    """Mean of n values with its Student t interval; ``sd``/``lo``/``hi`` are None when n < 2."""

    n: int
    mean: float | None
    sd: float | None
    lo: float | None
    hi: float | None
    level: float = DEFAULT_LEVEL

    @property
    def half_width(self) -> float | None:
        """t * sd / sqrt(n): the interval is symmetric, mean +- half_width."""
        return None if self.lo is None or self.hi is None else (self.hi - self.lo) / 2.0

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely above or entirely below 0.

        A zero-width interval never counts, however many values made it: accuracies on N
        test examples move in steps of 1/N, so seeds that differ by the same step are common,
        and a t interval of width 0 claims a certainty no finite sample gives."""
        if self.lo is None or self.hi is None or self.uninformative:
            return False
        return self.lo > 0.0 or self.hi < 0.0

    @property
    def uninformative(self) -> bool:
        """Two or more values with no spread (up to float rounding): the interval is a point
        and says nothing (see :attr:`excludes_zero`)."""
        return (self.n >= 2 and self.sd is not None and self.mean is not None
                and self.sd <= 1e-12 * max(1.0, abs(self.mean)))

    @property
    def no_spread(self) -> bool:
        """No usable spread: fewer than 2 values, or values that are all equal. Renderers
        print "n/a (no spread)" for what needs one (detectable difference, seeds needed)."""
        return self.n < 2 or self.sd is None or self.uninformative

    def to_dict(self) -> dict[str, object]:
        """The JSON form: ``n``, ``mean``, ``sd``, ``ci`` ([lo, hi] or null)."""
        ci = None if self.lo is None else [self.lo, self.hi]
        return {"n": self.n, "mean": self.mean, "sd": self.sd, "ci": ci}


def summarize(values: Iterable[float], level: float = DEFAULT_LEVEL) -> Summary:
    """Mean, sample standard deviation and t interval of the finite ``values``."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return Summary(0, None, None, None, None, level)
    mean = math.fsum(xs) / n
    if n == 1:
        return Summary(1, mean, None, None, None, level)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))  # Bessel's n - 1
    half = t_quantile(level, n - 1) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half, level)


@dataclass(frozen=True)
class Paired:
    """The mean difference a - b over the seeds present in both, with its t interval."""

    seeds: tuple[Hashable, ...]
    diffs: tuple[float, ...]
    summary: Summary

    @property
    def n(self) -> int:
        return self.summary.n

    def to_dict(self) -> dict[str, object]:
        """The summary's JSON form plus ``excludes_zero`` and the paired ``seeds``."""
        return {**self.summary.to_dict(), "excludes_zero": self.summary.excludes_zero,
                "seeds": list(self.seeds)}


def paired_difference(a: Mapping[Hashable, float], b: Mapping[Hashable, float],
                      level: float = DEFAULT_LEVEL) -> Paired:
    """Per seed s present in both ``a`` and ``b``: d_s = a[s] - b[s]; summarize the d_s.

    Seeds present in only one side (a failed trial) are dropped, never paired with another seed.
    """
    seeds = [s for s in a if s in b and a[s] is not None and b[s] is not None]
    seeds = [s for s in seeds if math.isfinite(a[s]) and math.isfinite(b[s])]
    seeds.sort(key=_seed_order)
    diffs = tuple(float(a[s]) - float(b[s]) for s in seeds)
    return Paired(tuple(seeds), diffs, summarize(diffs, level))


def _seed_order(seed: Hashable) -> tuple[int, Hashable, str]:
    return (0, seed, "") if isinstance(seed, (int, float)) else (1, 0, str(seed))


# -- power: how many seeds a difference needs -----------------------------------------------------
#
# For n paired seeds whose differences have standard deviation sd, the two-sided t test at
# confidence `level` finds a true difference delta with probability `power` when
#
#     delta >= (t_{(1+level)/2, n-1} + t_{power, n-1}) * sd / sqrt(n)        (MDD)
#
# the usual approximation to the exact noncentral-t power. It gives the sample sizes G*Power
# computes exactly for a paired t test at 95 % and power 0.8 (34 seeds for delta = sd / 2, 15
# for delta = 0.8 sd); at very few seeds it is optimistic (the exact power of the MDD is 0.77
# at n = 3 and 0.73 at n = 2, not 0.8). `paired_power` is the exact power, for checking.
DEFAULT_POWER = 0.8
MAX_SEEDS = 100_000


def min_detectable_difference(sd: float, n: int, level: float = DEFAULT_LEVEL,
                              power: float = DEFAULT_POWER) -> float | None:
    """The smallest true difference that ``n`` paired seeds with per-seed spread ``sd`` find
    with probability ``power`` (MDD above); None when n < 2 or sd = 0 (no spread: the
    formula's 0 would claim any difference is detectable)."""
    if n < 2 or not math.isfinite(sd) or sd <= 0:
        return None
    return (t_quantile(level, n - 1) + t_one_sided(power, n - 1)) * sd / math.sqrt(n)


def t_one_sided(q: float, df: int) -> float:
    """The q quantile of Student's t with ``df`` degrees of freedom."""
    from scipy import stats  # lazy: see t_quantile

    return float(stats.t.ppf(q, df))


def seeds_needed(delta: float, sd: float, level: float = DEFAULT_LEVEL,
                 power: float = DEFAULT_POWER) -> int | None:
    """The smallest number of paired seeds n >= 2 whose MDD is at most ``delta``, given
    per-seed differences of standard deviation ``sd`` (None when delta is 0, sd is 0 (no
    spread to plan from: not "2 seeds") or more than MAX_SEEDS would be needed)."""
    if delta == 0 or not math.isfinite(sd) or sd <= 0:
        return None

    def enough(n: int) -> bool:
        mdd = min_detectable_difference(sd, n, level, power)
        return mdd is not None and mdd <= abs(delta)

    lo, hi = 2, 2
    while not enough(hi):  # double, then bisect
        lo, hi = hi + 1, hi * 2
        if hi > MAX_SEEDS:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        if enough(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def paired_power(delta: float, sd: float, n: int, level: float = DEFAULT_LEVEL) -> float:
    """Exact power of the two-sided paired t test at ``level`` to find a true mean difference
    ``delta`` with per-seed spread ``sd`` and ``n`` seeds: P(|T| > t_{(1+level)/2, n-1}), T
    noncentral t with n - 1 degrees of freedom and noncentrality delta / sd * sqrt(n)."""
    if n < 2:
        return float("nan")
    if sd <= 0:
        return 1.0
    from scipy import stats  # lazy: see t_quantile

    crit = t_quantile(level, n - 1)
    dist = stats.nct(n - 1, abs(delta) / sd * math.sqrt(n))
    return float(dist.sf(crit) + dist.cdf(-crit))
