"""Uncertainty statistics on cases with known answers (docs/metrics.md)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dropout_lab.backends.base import NetSpec
from dropout_lab.backends.numpy_backend import NumpyNetwork
from dropout_lab.config import TrainConfig
from dropout_lab.dropout import make_plan
from dropout_lab.metrics import Probe
from dropout_lab.metrics import uncertainty as un


def binary_probs(conf: np.ndarray, predict_one: np.ndarray) -> np.ndarray:
    """Two-class probabilities whose top class is 1 where ``predict_one``, with confidence conf."""
    p1 = np.where(predict_one, conf, 1.0 - conf)
    return np.stack([1.0 - p1, p1], axis=1)


def test_perfectly_calibrated_predictor_has_ece_near_zero():
    rng = np.random.default_rng(0)
    n = 200_000
    conf = rng.uniform(0.5, 1.0, n)
    predict_one = rng.random(n) < 0.5
    correct = rng.random(n) < conf  # right with probability equal to the confidence
    y = np.where(correct, predict_one, ~predict_one).astype(int)
    # Sampling noise alone: about sum_b sqrt(acc(1-acc) n_b) / N ~ 0.002 here.
    assert un.expected_calibration_error(binary_probs(conf, predict_one), y, 15) < 0.01


def test_ece_exact_cases():
    n = 100
    conf = np.full(n, 0.7)
    pred = np.ones(n, dtype=bool)
    y = np.array([1] * 70 + [0] * 30)  # 70 % right at confidence 0.7: calibrated exactly
    ece = un.expected_calibration_error(binary_probs(conf, pred), y, 10)
    assert ece == pytest.approx(0, abs=1e-12)
    wrong = np.zeros(n, dtype=int)
    assert un.expected_calibration_error(binary_probs(np.ones(n), pred), wrong, 10) == 1.0
    # two bins: conf 0.9 all right (gap 0.1), conf 0.6 all wrong (gap 0.6) -> (0.1 + 0.6) / 2
    conf2 = np.array([0.9] * 50 + [0.6] * 50)
    y2 = np.array([1] * 50 + [0] * 50)
    assert un.expected_calibration_error(binary_probs(conf2, pred), y2, 10) == pytest.approx(0.35)


def test_reliability_bins():
    conf = np.array([0.55, 0.62, 0.68, 1.0])
    probs = binary_probs(conf, np.ones(4, dtype=bool))
    rel = un.reliability(probs, np.array([1, 1, 0, 1]), 5)  # bins (0.6, 0.8] and (0.8, 1]
    assert rel["count"] == [0, 0, 1, 2, 1]
    assert rel["confidence"][3] == pytest.approx(0.65)
    assert rel["accuracy"][3] == pytest.approx(0.5)
    assert rel["accuracy"][4] == 1.0
    assert math.isnan(rel["confidence"][0])  # empty bin
    assert un.bin_edges(5).tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


@pytest.mark.parametrize("bins", [3, 5, 7, 10, 15, 20])
def test_confidence_on_a_bin_edge_falls_in_the_bin_it_closes(bins):
    # issue 21 item 8: bins are (e_b, e_b+1]; ceil(conf * B) - 1 put an edge value one bin too
    # high for some B (0.3 * 10 = 3.0000000000000004).
    edges = un.bin_edges(bins)
    for b in range(1, bins + 1):
        conf = np.array([max(edges[b], 0.5)])  # binary confidences are >= 0.5
        if conf[0] != edges[b]:
            continue
        rel = un.reliability(binary_probs(conf, np.ones(1, dtype=bool)), np.array([1]), bins)
        assert rel["count"][b - 1] == 1, (bins, b)
    # a known answer: confidence exactly 0.6 with 10 bins sits in (0.5, 0.6] -> bin 5
    edges10 = un.bin_edges(10)
    rel = un.reliability(binary_probs(np.array([edges10[6], edges10[3] + 0.5]),
                                      np.ones(2, dtype=bool)), np.array([1, 0]), 10)
    assert rel["count"][5] == 1


def test_brier_known_values():
    y = np.array([0, 1, 2])
    assert un.brier(np.eye(3)[y], y) == 0.0
    assert un.brier(np.full((3, 4), 0.25), y) == pytest.approx(1 - 1 / 4)
    assert un.brier(np.eye(3)[[1, 2, 0]], y) == pytest.approx(2.0)


def test_entropy_and_mutual_information_known_values():
    k = 5
    assert un.entropy(np.full((2, k), 1 / k)) == pytest.approx([math.log(k)] * 2)
    assert un.entropy(np.eye(3)) == pytest.approx([0, 0, 0])
    # Two confident passes that disagree: p_bar uniform over 2, each pass has entropy 0.
    avg = un.McAverage()
    avg.add(np.array([[50.0, 0.0]]))
    avg.add(np.array([[0.0, 50.0]]))
    mi = un.mutual_information(avg.mean_probs(), avg.mean_pass_entropy())
    assert mi == pytest.approx([math.log(2)], abs=1e-12)
    # Identical passes: no disagreement, no mutual information.
    same = un.McAverage()
    for _ in range(3):
        same.add(np.array([[1.0, 2.0, 0.5]]))
    assert un.mutual_information(same.mean_probs(), same.mean_pass_entropy()) == \
        pytest.approx([0.0], abs=1e-12)


def test_mc_average_log_mean_does_not_underflow():
    avg = un.McAverage()
    avg.add(np.array([[0.0, 2000.0], [1.0, 2.0]]))
    avg.add(np.array([[0.0, 1000.0], [2.0, 1.0]]))
    logp = avg.mean_log_probs()
    # log p_bar[class 0] = log((e^-2000 + e^-1000) / 2) = -1000 - log 2 (to rounding)
    assert logp[0, 0] == pytest.approx(-1000 - math.log(2))
    assert np.allclose(np.exp(logp[1]), avg.mean_probs()[1])
    assert un.nll(logp, np.array([0, 1])) == pytest.approx((1000 + math.log(2) - logp[1, 1]) / 2)


def small_probe(p: float, seed: int = 0) -> Probe:
    rng = np.random.default_rng(seed)
    sizes = [4, 12, 3]
    x = rng.normal(size=(60, 4))
    weights = [(rng.normal(size=(4, 12)), rng.normal(size=12) * 0.1),
               (rng.normal(size=(12, 3)), np.zeros(3))]
    y = np.argmax(np.maximum(x @ weights[0][0] + weights[0][1], 0) @ weights[1][0], axis=1)
    y[:10] = (y[:10] + 1) % 3  # some mistakes, so accuracy and NLL are not trivial
    net = NumpyNetwork(NetSpec(tuple(sizes), "relu", "float64", ()), weights,
                      TrainConfig().optimizer_spec())
    plan = make_plan("inverted", 0.0, [p], sizes, "float64")
    return Probe.build(net, plan, (), x, y, 3)


def test_without_dropout_mc_equals_deterministic_and_draws_nothing():
    probe = small_probe(0.0)
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    u = un.compute(probe, 30, 10, rng)
    assert rng.bit_generator.state == state  # no pass was run
    assert u["mutual_information"] == 0.0
    for a, b in [("mc_acc", "det_acc"), ("mc_nll", "det_nll"), ("ece_mc", "ece_det"),
                 ("brier_mc", "brier_det")]:
        assert u[a] == u[b]
    assert u["mc_curve"]["acc"] == [u["det_acc"]] * 6


def test_mc_statistics_are_consistent_and_reproducible():
    probe = small_probe(0.5)
    u = un.compute(probe, 10, 10, np.random.default_rng(3))
    again = un.compute(probe, 10, 10, np.random.default_rng(3))
    assert json.dumps(u) == json.dumps(again)  # bit-identical from the same generator
    assert u["mc_curve"]["T"] == [1, 2, 5, 10, 20, 50]
    # mc_samples = 10 is a curve point: the statistics use the same first 10 passes.
    assert u["mc_acc"] == u["mc_curve"]["acc"][3]
    assert u["mutual_information"] > 0
    assert u["predictive_entropy"] >= u["mutual_information"]
    rel = u["reliability"]
    assert sum(rel["det"]["count"]) == sum(rel["mc"]["count"]) == 60
    assert len(rel["edges"]) == 11
    # The deterministic numbers are those of the evaluation-mode logits.
    logp = un.log_softmax(probe.logits)
    assert u["det_nll"] == pytest.approx(un.nll(logp, probe.y))
    assert u["det_acc"] == pytest.approx(np.mean(probe.logits.argmax(1) == probe.y))


def test_mc_passes_are_training_mode_noise():
    """One MC pass of an inverted-dropout net: the logits are (h * r) W + b with r in {0, 2}."""
    probe = small_probe(0.5)
    rng = np.random.default_rng(5)
    z = probe.mc_logits(rng)
    plan = make_plan("inverted", 0.0, [0.5], [4, 12, 3], "float64")
    r = plan.sample(np.random.default_rng(5), 60)
    w, b = probe.network.get_weights()[-1]
    assert np.allclose(z, (probe.hidden[-1] * r.units[1]) @ w + b)
    assert set(np.unique(r.units[1])) == {0.0, 2.0}


@pytest.mark.parametrize("variant,input_p", [("inverted", 0.0), ("dropconnect", 0.0),
                                             ("inverted", 0.3)])  # the last: backend path
def test_batched_passes_equal_passes_drawn_one_at_a_time(variant, input_p):
    probe = small_probe(0.5)
    probe.plan = make_plan(variant, input_p, [0.5], [4, 12, 3], "float64")
    batched = probe.mc_logits(np.random.default_rng(9), passes=4)
    rng = np.random.default_rng(9)
    one_by_one = np.concatenate([probe.mc_logits(rng) for _ in range(4)])
    assert batched.shape == (4, 60, 3)
    assert np.allclose(batched, one_by_one, atol=1e-12)
    assert not np.allclose(batched[0], batched[1])  # every pass has its own masks
