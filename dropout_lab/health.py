"""Health flags: is a finished trial a result, or a broken run that only looks like one?

A trial that trains to the end without a NaN is stored as ``done``, but it can still be
useless as evidence about p: at p = 0.9 and a high learning rate most first-layer ReLUs die
and the network predicts every class with probability 1/K. Its numbers would enter a
comparison like any other. Each trial therefore gets a ``health`` section in result.json:

``collapsed``
    final test accuracy <= chance + COLLAPSE_ACC_MARGIN (chance = the frequency of the most
    common test class, the accuracy of a constant guess), or final training loss (evaluation
    mode) >= COLLAPSE_LOSS_FRACTION x ln K (ln K is the loss of the uniform prediction).
    ``compare`` leaves collapsed trials out of its means unless ``--include-collapsed``.
``dead_units``
    some hidden layer has more than DEAD_FRACTION_LIMIT of its units dead: one value on
    every example of the evaluation sample (a ReLU at 0, a saturated tanh). The definition
    (:func:`dropout_lab.metrics.coadaptation.dead_fraction`) and the sample (``eval.max_samples``
    test examples drawn from the trial seed) are those of the ``dead[l]`` column, so the flag
    and the column always agree.
``not_converged``
    the training loss (with dropout, averaged over each epoch) still fell by more than
    CONVERGED_REL_DROP relatively and CONVERGED_ABS_DROP in absolute terms over the last
    k = max(3, ceil(E / 10)) epochs: more epochs, or another schedule, would change the answer.
    Not raised for a run that early stopping ended.
``under_trained``
    the learning rate decayed (a cosine, step or exponential schedule) and the training loss
    still fell by more than CONVERGED_REL_DROP relatively and CONVERGED_ABS_DROP absolutely
    over the last k epochs of the high-lr phase (the epochs whose lr is at least
    HIGH_LR_FRACTION of the run's peak): the test of ``not_converged``, applied where the
    schedule still let the network learn at full speed. Under a decaying schedule the loss
    flattens at the end because lr -> 0, so ``not_converged`` cannot see that the network was
    still learning; this can. Not raised for a constant learning rate (``not_converged``
    covers it) nor for a run that early stopping ended. docs/metrics.md defends the choice.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dropout_lab.metrics.coadaptation import dead_fraction

__all__ = ["FLAGS", "assess", "chance_accuracy", "convergence_window", "dead_fraction"]

COLLAPSE_ACC_MARGIN = 0.05
COLLAPSE_LOSS_FRACTION = 0.95
DEAD_FRACTION_LIMIT = 0.5
CONVERGED_REL_DROP = 0.10
CONVERGED_ABS_DROP = 0.01
HIGH_LR_FRACTION = 0.5  # under_trained: the high-lr phase, lr >= this x the peak lr

FLAGS = ("collapsed", "dead_units", "not_converged", "under_trained")


def chance_accuracy(y: np.ndarray) -> float:
    """The accuracy of always guessing the most frequent class of ``y``."""
    if len(y) == 0:
        return 0.0
    return float(np.bincount(np.asarray(y, dtype=np.int64)).max() / len(y))


def convergence_window(epochs: int) -> int:
    return max(3, math.ceil(epochs / 10))


def high_lr_end(rows: list[dict[str, Any]]) -> int | None:
    """Index of the last epoch of the high-lr phase (lr >= HIGH_LR_FRACTION x the peak lr), or
    None when the learning rate never decayed below that after it (a constant schedule) or
    the rows carry no lr."""
    if not rows or any(not isinstance(r.get("lr"), (int, float)) for r in rows):
        return None
    lrs = [float(r["lr"]) for r in rows]
    peak = max(lrs)
    high = [i for i, lr in enumerate(lrs) if lr >= HIGH_LR_FRACTION * peak]
    end = high[-1]
    return end if end < len(rows) - 1 else None


def still_falling(before: float, after: float) -> bool:
    """The loss fell by more than CONVERGED_REL_DROP relatively and CONVERGED_ABS_DROP in
    absolute terms (both: a loss near 0 that halves is no sign of learning left)."""
    drop = before - after
    return drop > CONVERGED_ABS_DROP and drop > CONVERGED_REL_DROP * abs(before)


def assess(rows: list[dict[str, Any]], final: dict[str, float], n_classes: int,
           chance_acc: float, dead_fractions: list[float], early_stopped: bool = False
           ) -> dict[str, Any]:
    """The ``health`` section: raised ``flags`` (a subset of FLAGS, in that order), the
    ``checks`` they were decided on and the ``thresholds`` used."""
    ln_k = math.log(n_classes)
    checks: dict[str, Any] = {
        "test_acc": final["test_acc"], "chance_acc": chance_acc,
        "train_loss": final["train_loss"], "ln_k": ln_k,
        "dead_fraction": [float(f) for f in dead_fractions],
    }
    flags = []
    if (final["test_acc"] <= chance_acc + COLLAPSE_ACC_MARGIN
            or final["train_loss"] >= COLLAPSE_LOSS_FRACTION * ln_k):
        flags.append("collapsed")
    if any(f > DEAD_FRACTION_LIMIT for f in dead_fractions):
        flags.append("dead_units")
    k = convergence_window(len(rows))
    if len(rows) > k:
        before, last = rows[-1 - k]["fit_loss"], rows[-1]["fit_loss"]
        drop = before - last
        checks["fit_loss_drop"] = {"epochs": k, "from": before, "to": last}
        if (not early_stopped and drop > CONVERGED_ABS_DROP
                and drop > CONVERGED_REL_DROP * abs(before)):
            flags.append("not_converged")
    end = high_lr_end(rows)
    if end is not None and end >= k:
        before, last = rows[end - k]["fit_loss"], rows[end]["fit_loss"]
        checks["high_lr_fit_loss_drop"] = {"epochs": k, "from_epoch": rows[end - k]["epoch"],
                                           "to_epoch": rows[end]["epoch"], "from": before,
                                           "to": last}
        if not early_stopped and still_falling(before, last):
            flags.append("under_trained")
    return {"flags": flags, "checks": checks, "thresholds": {
        "collapse_acc_margin": COLLAPSE_ACC_MARGIN,
        "collapse_loss_fraction": COLLAPSE_LOSS_FRACTION,
        "dead_fraction_limit": DEAD_FRACTION_LIMIT,
        "converged_rel_drop": CONVERGED_REL_DROP, "converged_abs_drop": CONVERGED_ABS_DROP,
        "convergence_window": k, "high_lr_fraction": HIGH_LR_FRACTION}}
