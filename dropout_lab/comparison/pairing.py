"""Sweep to sweep: the same grid points of two sweeps side by side (``compare A B``).

Two sweeps of one experiment (two code versions, two backends, packed and unpacked) differ
in a few keys of their base configs. Those keys are set aside; every other swept axis but
``seed`` names a *point*, and the trials of A and B at the same point are compared, B - A,
metric by metric (no rendering, no I/O here: :mod:`dropout_lab.comparison.source` reads):

- **paired** where the two sides share seeds: at one seed both start from the same weights
  and see the same batches, so ``d_s = b_s - a_s`` over the shared seeds is summarized with
  its Student t interval (:func:`dropout_lab.stats.paired_difference`);
- **Welch** where they share none: the difference of the means, with
  ``se^2 = s_a^2 / n_a + s_b^2 / n_b`` and the Welch-Satterthwaite degrees of freedom
  ``df = se^4 / ((s_a^2 / n_a)^2 / (n_a - 1) + (s_b^2 / n_b)^2 / (n_b - 1))``,
  interval ``mean_b - mean_a +- t_{(1+level)/2, df} * se``.

Points present on one side only are listed, never compared with another point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropout_lab.comparison.metric_names import choose_metrics, metric, present_metrics
from dropout_lab.comparison.model import SweepData, TrialRecord
from dropout_lab.comparison.selection import At, select
from dropout_lab.comparison.values import canon, dotted, order_key
from dropout_lab.config import flatten_dotted
from dropout_lab.errors import CompareError
from dropout_lab.result import Status
from dropout_lab.stats import DEFAULT_LEVEL, Summary, paired_difference, summarize

SCHEMA = "dropout-lab.compare-sweeps/1"
PAIRED, WELCH = "paired", "welch"


@dataclass(frozen=True)
class Difference:
    """B - A for one metric at one point: ``kind`` paired (over ``seeds``) or welch."""

    kind: str
    mean: float | None
    lo: float | None
    hi: float | None
    df: float | None  # degrees of freedom of the interval (n - 1 when paired)
    n_a: int
    n_b: int
    seeds: tuple[Any, ...] = ()  # the shared seeds, when paired
    uninformative: bool = False  # two paired values with no spread (Summary.uninformative)

    @property
    def excludes_zero(self) -> bool:
        """The interval lies above or below 0 (never for a point-interval from two seeds,
        as in the one-sweep comparison: :attr:`dropout_lab.stats.Summary.excludes_zero`)."""
        if self.lo is None or self.hi is None or self.uninformative:
            return False
        return self.lo > 0.0 or self.hi < 0.0

    def to_dict(self) -> dict[str, Any]:
        ci = None if self.lo is None else [self.lo, self.hi]
        return {"kind": self.kind, "mean": self.mean, "ci": ci, "df": self.df,
                "n_a": self.n_a, "n_b": self.n_b, "excludes_zero": self.excludes_zero,
                "seeds": list(self.seeds)}


def welch_difference(a: list[float], b: list[float], level: float = DEFAULT_LEVEL
                     ) -> Difference:
    """mean(b) - mean(a) with the Welch interval (formulas in the module docstring); the
    interval is undefined (None) when either side has fewer than two values."""
    from scipy import stats  # lazy, as in dropout_lab.stats

    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        return Difference(WELCH, None, None, None, None, na, nb)
    mean = math.fsum(b) / nb - math.fsum(a) / na
    if na < 2 or nb < 2:
        return Difference(WELCH, mean, None, None, None, na, nb)
    va = math.fsum((x - math.fsum(a) / na) ** 2 for x in a) / (na - 1)
    vb = math.fsum((x - math.fsum(b) / nb) ** 2 for x in b) / (nb - 1)
    qa, qb = va / na, vb / nb
    se = math.sqrt(qa + qb)
    if se == 0.0:  # no spread on either side: the difference is a point
        return Difference(WELCH, mean, mean, mean, None, na, nb)
    df = (qa + qb) ** 2 / (qa**2 / (na - 1) + qb**2 / (nb - 1))
    half = float(stats.t.ppf((1.0 + level) / 2.0, df)) * se
    return Difference(WELCH, mean, mean - half, mean + half, df, na, nb)


def difference(a: dict[Any, float], b: dict[Any, float], level: float = DEFAULT_LEVEL
               ) -> Difference:
    """B - A from per-seed values: paired over the shared seeds when there are any, Welch
    over all values otherwise."""
    shared = [s for s in a if s in b]
    if shared:
        p = paired_difference(b, a, level)
        s = p.summary
        return Difference(PAIRED, s.mean, s.lo, s.hi, None if s.n < 2 else float(s.n - 1),
                          len(a), len(b), p.seeds, s.uninformative)
    return welch_difference(list(a.values()), list(b.values()), level)


@dataclass
class PointMetric:
    """One metric at one point: each side's summary over its seeds, and B - A."""

    a: Summary
    b: Summary
    diff: Difference


@dataclass
class Point:
    """A grid point both sweeps ran: its params (the matched axes), the seeds of each side."""

    params: dict[str, Any]
    seeds_a: list[Any]
    seeds_b: list[Any]
    metrics: dict[str, PointMetric]

    @property
    def kind(self) -> str:
        return PAIRED if set(map(canon, self.seeds_a)) & set(map(canon, self.seeds_b)) \
            else WELCH


@dataclass
class SweepPair:
    """Two sweeps compared point by point (B - A)."""

    a: SweepData
    b: SweepData
    differ: dict[str, tuple[Any, Any]]  # base-config key -> (A's value, B's value)
    matched_on: list[str]
    metrics: list[str]
    level: float
    at: At
    points: list[Point]
    only_a: list[dict[str, Any]] = field(default_factory=list)
    only_b: list[dict[str, Any]] = field(default_factory=list)


_MISSING = object()


def differing_keys(a: SweepData, b: SweepData) -> dict[str, tuple[Any, Any]]:
    """Base-config keys whose values differ between the sweeps (a key only one side has
    counts, with None on the other); ``name`` and the swept axes of either side do not."""
    fa, fb = flatten_dotted(a.base_config), flatten_dotted(b.base_config)
    axes = set(a.axes) | set(b.axes)

    def swept(key: str) -> bool:
        return any(key == x or key.startswith(x + ".") for x in axes)

    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, _MISSING), fb.get(key, _MISSING)
        if key == "name" or swept(key):
            continue
        if va is _MISSING or vb is _MISSING or canon(va) != canon(vb):
            out[key] = (None if va is _MISSING else va, None if vb is _MISSING else vb)
    return out


def _value(rec: TrialRecord, base: dict[str, Any], key: str) -> Any:
    return rec.params[key] if key in rec.params else dotted(base, key)[1]


def _group(data: SweepData, keys: list[str], at: At, include_collapsed: bool
           ) -> tuple[dict[str, dict[str, Any]], dict[str, list[TrialRecord]]]:
    """Finished trials (collapsed ones left out unless asked) by point, numbers at ``at``."""
    params: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[TrialRecord]] = {}
    for rec in data.trials:
        point = {k: _value(rec, data.base_config, k) for k in keys}
        key = canon([point[k] for k in keys])
        params.setdefault(key, point)
        groups.setdefault(key, [])
        if rec.status != Status.DONE or (not include_collapsed and "collapsed" in rec.flags):
            continue
        groups[key].append(TrialRecord(rec.trial_id, rec.params, select(rec, at), rec.epochs,
                                       rec.weights))
    return params, groups


def pair_sweeps(a: SweepData, b: SweepData, metrics: list[str] | None = None,
                level: float = DEFAULT_LEVEL, at: At = "last",
                include_collapsed: bool = False) -> SweepPair:
    """Match the grid points of ``a`` and ``b`` and compute B - A for each metric.

    ``metrics``: names as ``compare -m`` takes them, ``["all"]``, or None for the defaults;
    a metric must have values in both sweeps."""
    if not 0.0 < level < 1.0:
        raise CompareError(f"confidence level {level} is outside (0, 1)")
    differ = differing_keys(a, b)
    keys = [k for k in dict.fromkeys([*a.axes, *b.axes]) if k != "seed" and k not in differ]
    params_a, groups_a = _group(a, keys, at, include_collapsed)
    params_b, groups_b = _group(b, keys, at, include_collapsed)
    done_a = [r.result for rs in groups_a.values() for r in rs]
    done_b = [r.result for rs in groups_b.values() for r in rs]
    in_b = set(present_metrics(done_b))
    present = [m for m in present_metrics(done_a) if m in in_b]
    chosen = choose_metrics(metrics, present)
    shared = [k for k in params_a if k in params_b]
    if not shared:
        raise CompareError(f"{a.sweep_dir} and {b.sweep_dir} share no grid point (matched on "
                           f"{', '.join(keys) or 'nothing'}; the base configs differ in "
                           f"{', '.join(differ) or 'nothing'})")
    seed_a, seed_b = a.base_config.get("seed", 0), b.base_config.get("seed", 0)
    points = []
    for key in sorted(shared, key=lambda k: tuple(order_key(params_a[k][x]) for x in keys)):
        cells = {}
        for name in chosen:
            m = metric(name)
            va = _per_seed(groups_a[key], m.extract, seed_a)
            vb = _per_seed(groups_b[key], m.extract, seed_b)
            cells[name] = PointMetric(summarize(va.values(), level), summarize(vb.values(), level),
                                      difference(va, vb, level))
        points.append(Point(params_a[key],
                            sorted({r.params.get("seed", seed_a) for r in groups_a[key]},
                                   key=order_key),
                            sorted({r.params.get("seed", seed_b) for r in groups_b[key]},
                                   key=order_key), cells))
    return SweepPair(a, b, differ, keys, chosen, level, at, points,
                     [params_a[k] for k in params_a if k not in params_b],
                     [params_b[k] for k in params_b if k not in params_a])


def _per_seed(records: list[TrialRecord], extract: Any, default_seed: Any) -> dict[Any, float]:
    out: dict[Any, float] = {}
    for rec in records:
        x = extract(rec.result)
        if x is not None:
            out[rec.params.get("seed", default_seed)] = x
    return out


def _side(data: SweepData) -> dict[str, Any]:
    return {"sweep": data.name, "sweep_dir": str(Path(data.sweep_dir))}


def to_json_doc(pair: SweepPair) -> dict[str, Any]:
    """The stable JSON document of ``compare A B`` (schema ``dropout-lab.compare-sweeps/1``,
    docs/compare.md): every difference is B - A."""
    points = []
    for p in pair.points:
        points.append({
            "params": p.params, "seeds": {"a": p.seeds_a, "b": p.seeds_b}, "pairing": p.kind,
            "metrics": {name: {"a": cell.a.to_dict(), "b": cell.b.to_dict(),
                               "diff": cell.diff.to_dict()}
                        for name, cell in p.metrics.items()}})
    return {"schema": SCHEMA, "a": _side(pair.a), "b": _side(pair.b),
            "differ": {k: list(v) for k, v in pair.differ.items()},
            "matched_on": pair.matched_on, "at": pair.at, "confidence": pair.level,
            "metrics": pair.metrics, "points": points,
            "unmatched": {"a": pair.only_a, "b": pair.only_b}}
