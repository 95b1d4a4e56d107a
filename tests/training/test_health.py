"""Health flags: each fires on a constructed case and stays quiet on a healthy one."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from dropout_lab.health import assess, chance_accuracy, convergence_window, dead_fraction
from tests.helpers.configs import TINY

HEALTHY = {"test_acc": 0.95, "train_loss": 0.05}


def flat_rows(n: int, loss: float = 0.1) -> list[dict]:
    return [{"epoch": e, "fit_loss": loss} for e in range(1, n + 1)]


def test_a_healthy_trial_raises_no_flag():
    h = assess(flat_rows(20), HEALTHY, 10, 0.11, [0.02, 0.1])
    assert h["flags"] == []
    assert h["checks"]["ln_k"] == pytest.approx(math.log(10))


@pytest.mark.parametrize("final", [
    {"test_acc": 0.14, "train_loss": 0.5},          # within 0.05 of chance (0.11)
    {"test_acc": 0.90, "train_loss": 0.96 * math.log(10)},  # loss near ln K
])
def test_collapsed_near_chance_or_near_ln_k(final):
    assert assess(flat_rows(20), final, 10, 0.11, [0.0])["flags"] == ["collapsed"]


def test_collapse_thresholds_are_margins_not_equality():
    assert assess(flat_rows(20), {"test_acc": 0.17, "train_loss": 0.5}, 10, 0.11,
                  [0.0])["flags"] == []
    assert assess(flat_rows(20), {"test_acc": 0.9, "train_loss": 0.94 * math.log(10)}, 10, 0.11,
                  [0.0])["flags"] == []


def test_dead_fraction_counts_units_constant_on_every_example():
    rng = np.random.default_rng(0)
    h = np.maximum(rng.normal(size=(50, 10)), 0)
    h[:, :6] = 0.0  # six dead ReLUs
    h[:, 6] = 3.0  # a constant unit counts too
    assert dead_fraction(h) == pytest.approx(0.7)
    assert dead_fraction(np.maximum(rng.normal(size=(50, 10)), 0)) == 0.0


def test_dead_units_flag_above_half_a_layer():
    assert assess(flat_rows(20), HEALTHY, 10, 0.1, [0.1, 0.6])["flags"] == ["dead_units"]
    assert assess(flat_rows(20), HEALTHY, 10, 0.1, [0.5, 0.5])["flags"] == []


def test_not_converged_when_the_loss_still_falls_fast():
    rows = [{"epoch": e, "fit_loss": 10.0 / e} for e in range(1, 21)]  # k = 3: 10/17 -> 10/20
    assert convergence_window(20) == 3
    assert assess(rows, HEALTHY, 10, 0.1, [0.0])["flags"] == ["not_converged"]
    # a tiny absolute fall (a loss already near 0) is no sign of it
    tiny = [{"epoch": e, "fit_loss": 1e-3 / e} for e in range(1, 21)]
    assert assess(tiny, HEALTHY, 10, 0.1, [0.0])["flags"] == []
    # nor a run that early stopping ended on purpose
    assert assess(rows, HEALTHY, 10, 0.1, [0.0], early_stopped=True)["flags"] == []


def test_chance_accuracy_is_the_majority_class_frequency():
    assert chance_accuracy(np.array([0, 1, 1, 2, 1])) == pytest.approx(0.6)


def test_a_trial_that_collapses_is_flagged_and_a_healthy_one_is_not(cli, write_config, tmp_path):
    """lr = 1 kills every ReLU of the tiny network (known from this configuration): the trial
    ends 'done' but flagged; at lr 0.05 the same network is healthy."""
    data = copy.deepcopy(TINY)
    data["train"]["epochs"] = 5
    data["sweep"] = {"train.lr": [0.05, 1.0], "seed": [0]}
    code, out, err = cli("sweep", write_config(data), "--runs-dir", tmp_path / "runs", "--json")
    assert code == 0, err
    by_lr = {r["params"]["train.lr"]: r for r in json.loads(out)["trials"]}
    assert by_lr[1.0]["status"] == "done"
    assert by_lr[1.0]["health"]["flags"] == ["collapsed", "dead_units"]
    assert by_lr[1.0]["health"]["checks"]["dead_fraction"] == [1.0]
    assert by_lr[0.05]["health"]["flags"] == []


def test_the_dead_units_flag_reads_the_same_sample_as_the_dead_column():
    """issue 21 item 3: one definition and one sample, so health.checks.dead_fraction and
    coadaptation.layers[*].dead_fraction are the same numbers (the sample is a strict subset
    of the test split here, as with the default eval.max_samples on MNIST)."""
    from dropout_lab.sweep import expand
    from dropout_lab.trial import run_trial
    from tests.helpers.configs import TINY as tiny_config

    data = copy.deepcopy(tiny_config)
    data["sweep"] = {}
    data["train"]["lr"] = 1.0  # kills most units: the fractions are not all 0
    data["eval"]["max_samples"] = 30  # of 80 test examples
    from dropout_lab.config import validate

    (point,) = expand(validate(data))
    result = run_trial(point.config_dict, point.trial_id, point.params).result
    layers = result["coadaptation"]["layers"]
    assert result["health"]["checks"]["dead_fraction"] == [lay["dead_fraction"] for lay in layers]
