"""The metric registry: short names for the numbers of a trial's result.json.

Every table, ``--metric``, ``--best-by`` and ``--expect`` use these names. Per-layer
statistics are named ``family[l]`` with the hidden layer l counted from 1 (``corr[1]`` is the
mean |correlation| among the units of the first hidden layer); ``family_last`` names the last
hidden layer whatever the depth. ``learned_p[l]`` (concrete dropout) counts unit layers the same
way, with 0 for the input.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dropout_lab.errors import CompareError

Better = str | None  # "higher", "lower" or None (no direction)


@dataclass(frozen=True)
class Metric:
    """A number read from result.json at ``path`` (strings are keys, ints list indices)."""

    name: str
    path: tuple[str | int, ...]
    description: str
    better: Better = None
    core: bool = False

    def extract(self, result: dict[str, Any]) -> float | None:
        node: Any = result
        for step in self.path:
            if isinstance(step, int):
                if not isinstance(node, list) or not node or step >= len(node):
                    return None
                node = node[step]
            else:
                if not isinstance(node, dict):
                    return None
                node = node.get(step)
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            return None
        return float(node) if math.isfinite(node) else None


@dataclass(frozen=True)
class LayerFamily:
    """A per-layer statistic: ``key`` of each entry of ``coadaptation.layers``."""

    key: str
    description: str
    better: Better = None

    def at(self, name: str, layer: int) -> Metric:
        """layer >= 1 counts from the first hidden layer; -1 is the last one."""
        where = "the last hidden layer" if layer == -1 else f"hidden layer {layer}"
        index = -1 if layer == -1 else layer - 1
        return Metric(name, ("coadaptation", "layers", index, self.key),
                      f"{self.description}, {where}", self.better)


# Per-layer statistics (docs/metrics.md): corr[1], decov_std[2], ...
LAYER_FAMILIES: dict[str, LayerFamily] = {
    "corr": LayerFamily("mean_abs_corr", "mean |correlation| between units", "lower"),
    "decov": LayerFamily("decov", "DeCov penalty (raw covariances)", "lower"),
    "decov_std": LayerFamily("decov_std", "DeCov of standardized activations (scale-free)",
                             "lower"),
    "pr": LayerFamily("participation_ratio_norm", "participation ratio / units", "higher"),
    "dead": LayerFamily("dead_fraction", "fraction of dead units", "lower"),
    "corr_units": LayerFamily("corr_units", "units the correlation is over (active on >= 1%)"),
    "zero": LayerFamily("zero_fraction", "fraction of zero activations (sparsity)"),
    "selectivity": LayerFamily("selectivity", "mean class selectivity"),
}

_STATIC: list[Metric] = [
    Metric("test_acc", ("final", "test_acc"), "test accuracy", "higher", True),
    Metric("gap_acc", ("final", "gap_acc"), "train_acc - test_acc", "lower", True),
    Metric("gap_loss", ("final", "gap_loss"), "test_loss - train_loss", "lower", True),
    Metric("train_acc", ("final", "train_acc"), "training accuracy (no dropout)", "higher", True),
    Metric("test_loss", ("final", "test_loss"), "test cross-entropy", "lower"),
    Metric("train_loss", ("final", "train_loss"), "training cross-entropy (no dropout)", "lower"),
    *[f.at(f"{name}_last", -1) for name, f in LAYER_FAMILIES.items()],
    Metric("ablation_auc", ("coadaptation", "ablation", "auc"),
           "area under the accuracy-vs-fraction-ablated curve", "higher"),
    Metric("synergy", ("coadaptation", "ablation", "pair_synergy", "mean"),
           "mean pairwise ablation synergy", "lower"),
    Metric("mc_acc", ("uncertainty", "mc_acc"), "MC-dropout accuracy", "higher"),
    Metric("det_acc", ("uncertainty", "det_acc"), "deterministic accuracy (eval set)", "higher"),
    Metric("mc_nll", ("uncertainty", "mc_nll"), "MC-dropout negative log-likelihood", "lower"),
    Metric("det_nll", ("uncertainty", "det_nll"), "deterministic negative log-likelihood",
           "lower"),
    Metric("entropy", ("uncertainty", "predictive_entropy"), "mean predictive entropy (nats)"),
    Metric("mutual_information", ("uncertainty", "mutual_information"),
           "mean mutual information (epistemic part, nats)"),
    Metric("ece_det", ("uncertainty", "ece_det"), "expected calibration error, deterministic",
           "lower"),
    Metric("ece_mc", ("uncertainty", "ece_mc"), "expected calibration error, MC dropout", "lower"),
    Metric("brier_det", ("uncertainty", "brier_det"), "Brier score, deterministic", "lower"),
    Metric("brier_mc", ("uncertainty", "brier_mc"), "Brier score, MC dropout", "lower"),
]
METRICS: dict[str, Metric] = {m.name: m for m in _STATIC}
# The values a metric can take (accuracies are fractions, a gap of accuracies a difference of
# two): a t interval does not know them, so intervals and bands are clipped when shown.
RANGES: dict[str, tuple[float, float]] = {
    **{m: (0.0, 1.0) for m in ("test_acc", "train_acc", "val_acc", "mc_acc", "det_acc",
                               "ablation_auc")},
    "gap_acc": (-1.0, 1.0),
}


# Concrete dropout's learned p of unit layer l (0 = the input, 1.. the hidden layers), stored
# in result.json as ``learned_p``, a list indexed by l.
LEARNED_P = "learned_p"


def learned_p_metric(layer: int) -> Metric:
    """``learned_p[l]``: the drop probability concrete dropout learned for unit layer l."""
    where = "the input" if layer == 0 else f"hidden layer {layer}"
    return Metric(f"{LEARNED_P}[{layer}]", (LEARNED_P, layer),
                  f"drop probability learned by concrete dropout, {where}")


def clip(name: str, lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi] clipped to the range metric ``name`` can take (unchanged when unbounded)."""
    a, b = RANGES.get(name, (-math.inf, math.inf))
    return max(a, lo), min(b, hi)

# Shown by default when present, after the core four and the per-layer correlations.
DEFAULT_EXTRAS = ("ablation_auc", "synergy", "mc_acc", "ece_mc", "mutual_information")
_LAYER_NAME = re.compile(r"^([a-z_]+)\[(\d+)\]$")


def metric(name: str) -> Metric:
    """The metric called ``name`` (``test_acc``, ``corr[2]``); CompareError with a suggestion."""
    if name in METRICS:
        return METRICS[name]
    m = _LAYER_NAME.match(name)
    if m and m.group(1) in LAYER_FAMILIES and int(m.group(2)) >= 1:
        return LAYER_FAMILIES[m.group(1)].at(name, int(m.group(2)))
    if m and m.group(1) == LEARNED_P and name == f"{LEARNED_P}[{int(m.group(2))}]":
        return learned_p_metric(int(m.group(2)))
    known = [*METRICS, *(f"{f}[l]" for f in LAYER_FAMILIES), f"{LEARNED_P}[l]"]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(known)}"
    raise CompareError(f"unknown metric '{name}'{hint}")


def is_metric(name: str) -> bool:
    try:
        metric(name)
    except CompareError:
        return False
    return True


def present_metrics(results: Iterable[dict[str, Any]]) -> list[str]:
    """Every metric name with a value in at least one of ``results``, in registry order, the
    per-layer ones (``corr[1]``, ``corr[2]``, ...) after the static ones."""
    results = list(results)
    names = [m.name for m in METRICS.values() if any(m.extract(r) is not None for r in results)]
    depth = max((len((r.get("coadaptation") or {}).get("layers") or []) for r in results),
                default=0)
    for family in LAYER_FAMILIES:
        for layer in range(1, depth + 1):
            name = f"{family}[{layer}]"
            if any(metric(name).extract(r) is not None for r in results):
                names.append(name)
    units = max((len(r.get(LEARNED_P) or []) for r in results), default=0)
    for layer in range(units):
        if any(learned_p_metric(layer).extract(r) is not None for r in results):
            names.append(f"{LEARNED_P}[{layer}]")
    return names


def default_metrics(present: list[str]) -> list[str]:
    """The core four, the correlation of every hidden layer, then the default extras."""
    core = [m.name for m in METRICS.values() if m.core]
    layers = [n for n in present if n.startswith("corr[")]
    return core + layers + [m for m in DEFAULT_EXTRAS if m in present]


def choose_metrics(requested: list[str] | None, present: list[str]) -> list[str]:
    """``requested`` names checked against what the results hold; None: the defaults;
    ``["all"]``: everything present."""
    if not requested:
        return default_metrics(present)
    if requested == ["all"]:
        core = [m.name for m in METRICS.values() if m.core]
        return core + [n for n in present if n not in core]
    chosen: list[str] = []
    for name in requested:
        m = metric(name)
        if not m.core and m.name not in present:
            raise CompareError(f"metric '{name}' has no values in this sweep "
                               "(were the statistics turned off in eval?)")
        if name not in chosen:
            chosen.append(name)
    return chosen
