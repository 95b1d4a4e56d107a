"""Co-adaptation statistics on cases with known answers (docs/metrics.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dropout_lab.backends.base import NetSpec
from dropout_lab.backends.numpy_backend import NumpyNetwork
from dropout_lab.config import TrainConfig
from dropout_lab.dropout import make_plan
from dropout_lab.metrics import Probe
from dropout_lab.metrics import coadaptation as co


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# -- per-layer statistics -------------------------------------------------------------------
def test_identical_units_have_correlation_one():
    a = np.random.default_rng(0).normal(size=(200, 1))
    h = np.hstack([a, a, -2 * a])  # |corr| = 1 for every pair, whatever the sign and scale
    c = co.covariance(h)
    assert co.mean_abs_corr(c, co.live_units(h)) == pytest.approx(1.0, abs=1e-12)


def test_independent_units_have_correlation_near_zero():
    h = np.random.default_rng(1).normal(size=(20000, 6))
    c = co.covariance(h)
    # Pearson r of independent variables has sd 1/sqrt(N) = 0.007; the mean of |r| is ~0.006.
    assert co.mean_abs_corr(c, co.live_units(h)) < 0.02


def test_dead_and_constant_units_are_left_out_of_correlation():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(100, 1))
    h = np.hstack([a, a, np.zeros((100, 1)), np.full((100, 1), 3.0)])
    live = co.live_units(h)
    assert live.tolist() == [True, True, False, False]
    assert co.mean_abs_corr(co.covariance(h), live) == pytest.approx(1.0)
    assert math.isnan(co.mean_abs_corr(co.covariance(h[:, 1:]), co.live_units(h[:, 1:])))


def test_covariance_is_the_biased_estimate():
    h = np.random.default_rng(3).normal(size=(50, 4))
    assert np.allclose(co.covariance(h), np.cov(h, rowvar=False, bias=True))


def test_decov_is_half_the_squared_off_diagonal():
    c = np.array([[1.0, 0.5, 0.0], [0.5, 2.0, -1.0], [0.0, -1.0, 3.0]])
    # 0.5 * (2 * 0.5^2 + 2 * 1^2) = 1.25
    assert co.decov(c) == pytest.approx(1.25)
    assert co.decov(np.diag([1.0, 5.0])) == 0.0


def test_participation_ratio_known_spectra():
    assert co.participation_ratio(np.eye(7)) == pytest.approx(7.0)  # equal variance: d
    v = np.array([1.0, 2.0, -1.0])
    assert co.participation_ratio(np.outer(v, v)) == pytest.approx(1.0)  # rank one: 1
    # eigenvalues 3 and 1 in a rotated basis: (3 + 1)^2 / (9 + 1) = 1.6
    q, _ = np.linalg.qr(np.random.default_rng(4).normal(size=(2, 2)))
    assert co.participation_ratio(q @ np.diag([3.0, 1.0]) @ q.T) == pytest.approx(1.6)
    assert math.isnan(co.participation_ratio(np.zeros((3, 3))))


def test_participation_ratio_matches_eigenvalues():
    rng = np.random.default_rng(5)
    h = rng.normal(size=(40, 10)) @ rng.normal(size=(10, 10))
    c = co.covariance(h)
    lam = np.linalg.eigvalsh(c)
    assert co.participation_ratio(c) == pytest.approx(lam.sum() ** 2 / (lam**2).sum())


def test_sparsity_fractions():
    h = np.array([[0.0, 1.0, 0.0], [0.0, 3.0, 2.0]])
    stats = co.layer_statistics(h, np.array([0, 1]), 2)
    assert stats["zero_fraction"] == pytest.approx(3 / 6)
    assert stats["dead_fraction"] == pytest.approx(1 / 3)
    assert stats["mean_activation"] == pytest.approx(1.0)
    assert stats["units"] == 3
    assert stats["participation_ratio_norm"] == pytest.approx(stats["participation_ratio"] / 3)


def test_dead_is_one_definition_for_the_column_and_the_health_flag():
    # issue 21 item 3: health.py counted constant units, coadaptation only units at zero.
    from dropout_lab import health

    h = np.array([[0.0, 1.0, 0.7, 0.0],
                  [0.0, 3.0, 0.7, 2.0],
                  [0.0, 2.0, 0.7, 0.0]])  # unit 0 at zero, unit 2 constant (saturated tanh)
    assert co.dead_units(h).tolist() == [True, False, True, False]
    assert co.layer_statistics(h, np.array([0, 1, 0]), 2)["dead_fraction"] == 0.5
    assert health.dead_fraction(h) == 0.5
    assert health.dead_fraction is co.dead_fraction
    assert co.dead_fraction(np.zeros((0, 3))) == 0.0


def test_corr_averages_over_units_active_on_enough_of_the_sample():
    # issue 21 item 6: two units perfectly correlated on every example, and a third that
    # fires on 1 of 200 examples (0.5 % < 1 %), uncorrelated with them. Over all three the
    # mean |corr| would be (1 + 2 r) / 3 with r small; over the two used units it is 1.
    n = 200
    rng = np.random.default_rng(0)
    a = rng.uniform(1.0, 2.0, n)
    rare = np.zeros(n)
    rare[7] = 5.0
    h = np.stack([a, 2 * a, rare], axis=1)
    stats = co.layer_statistics(h, np.arange(n) % 2, 2)
    assert stats["corr_units"] == 2
    assert stats["corr_min_active"] == co.CORR_MIN_ACTIVE == 0.01
    assert stats["mean_abs_corr"] == pytest.approx(1.0, abs=1e-12)
    rare[:2] = 5.0  # now 3 / 200 = 1.5 %: used, and pulls the mean below 1
    stats = co.layer_statistics(np.stack([a, 2 * a, rare], axis=1), np.arange(n) % 2, 2)
    assert stats["corr_units"] == 3
    assert stats["mean_abs_corr"] < 0.9


def test_selectivity_known_units():
    y = np.array([0, 0, 1, 1, 2, 2])
    only_class0 = np.array([[2.0], [2.0], [0.0], [0.0], [0.0], [0.0]])
    assert co.selectivity(only_class0, y, 3) == pytest.approx(1.0)
    flat = np.ones((6, 1))
    assert co.selectivity(flat, y, 3) == pytest.approx(0.0)
    # class means 3, 1, 1: (3 - 1) / (3 + 1) = 0.5
    mixed = np.array([[3.0], [3.0], [1.0], [1.0], [1.0], [1.0]])
    assert co.selectivity(mixed, y, 3) == pytest.approx(0.5)
    # a dead unit is left out of the mean rather than counted as 0
    both = np.hstack([only_class0, np.zeros((6, 1))])
    assert co.selectivity(both, y, 3) == pytest.approx(1.0)
    assert math.isnan(co.selectivity(only_class0, np.zeros(6, dtype=int), 3))


# -- reliance on units (pure parts) ---------------------------------------------------------
def test_ablation_auc_is_the_normalised_area():
    f = co.ABLATION_FRACTIONS
    assert co.ablation_auc(f, [0.8] * 10) == pytest.approx(0.8)
    linear = [1.0 - x for x in f]  # 1.0 down to 0.1: mean 0.55
    assert co.ablation_auc(f, linear) == pytest.approx(0.55)


def test_per_example_nll_matches_direct_formula_and_stacks():
    z = np.array([[0.0, 0.0], [2.0, 0.0], [1000.0, 0.0]])
    y = np.array([0, 1, 1])
    expected = [math.log(2), softplus(2.0), 1000.0]
    assert co.per_example_nll(z, y) == pytest.approx(expected)
    stacked = co.per_example_nll(np.stack([z, z]), y)
    assert stacked.shape == (2, 3) and stacked[1] == pytest.approx(expected)


def test_sample_pairs_distinct_reproducible_and_exhaustive_when_few():
    units = np.arange(0, 40, 2)
    a = co.sample_pairs(np.random.default_rng(7), units, 30)
    b = co.sample_pairs(np.random.default_rng(7), units, 30)
    assert a == b and len(set(a)) == 30
    assert all(i < j and i in units and j in units for i, j in a)
    assert sorted(co.sample_pairs(np.random.default_rng(0), np.array([1, 5, 9]), 30)) == \
        [(1, 5), (1, 9), (5, 9)]
    assert co.sample_pairs(np.random.default_rng(0), np.array([3]), 5) == []


def test_synergy_summary_threshold_and_fraction():
    rng = np.random.default_rng(8)
    noise = [rng.normal(0, 1, 400) for _ in range(50)]  # pure noise: SE = 0.05
    s = co.synergy_summary(noise)
    assert s["threshold"] == pytest.approx(2 * 0.05, rel=0.1)
    assert s["frac_above"] < 0.1 and s["pairs"] == 50
    shifted = co.synergy_summary([v + 1.0 for v in noise])
    assert shifted["frac_above"] == 1.0 and shifted["mean"] == pytest.approx(1.0, abs=0.05)
    empty = co.synergy_summary([])
    assert empty["pairs"] == 0 and math.isnan(empty["mean"])


# -- reliance on units, through a real network ----------------------------------------------
def probe_for(weights, x, y, n_classes, hidden_p=(0.0,), activation="relu"):
    sizes = [weights[0][0].shape[0]] + [w.shape[1] for w, _ in weights]
    spec = NetSpec(tuple(sizes), activation, "float64", ())
    net = NumpyNetwork(spec, [(np.asarray(w, float), np.asarray(b, float)) for w, b in weights],
                       TrainConfig().optimizer_spec())
    plan = make_plan("inverted", 0.0, list(hidden_p), sizes, "float64")
    return Probe.build(net, plan, (), np.asarray(x, float), np.asarray(y), n_classes)


def and_network(a: float = 5.0, c: float = 7.5):
    """Two hidden units that are 1 on every input; class 1's logit is a h1 + a h2 - c.

    Correct (class 1) needs BOTH units when a < c < 2a: removing one flips the margin."""
    w0, b0 = np.zeros((1, 2)), np.ones(2)
    w1, b1 = np.array([[0.0, a], [0.0, a]]), np.array([0.0, -c])
    return [(w0, b0), (w1, b1)]


@pytest.mark.parametrize("a,c", [(5.0, 7.5), (5.0, 5.0), (3.0, 4.0)])
def test_units_needed_together_give_the_exact_positive_synergy(a, c):
    probe = probe_for(and_network(a, c), np.zeros((10, 1)), np.ones(10, dtype=int), 2)
    s = co.pair_synergy(probe, np.random.default_rng(0), pair_samples=4)
    # loss(margin m) = softplus(-m); m = 2a - c, a - c (one removed), -c (both removed)
    base, one, both = softplus(c - 2 * a), softplus(c - a), softplus(c)
    expected = (both - base) - 2 * (one - base)
    assert expected > 0
    assert s["pairs"] == 1
    assert s["mean"] == pytest.approx(expected, rel=1e-9)
    assert s["frac_above"] == 1.0  # every example agrees: the standard error is 0


def test_units_that_work_alone_give_zero_synergy():
    """Unit 1 decides the examples of class 0, unit 2 those of class 1: removing both costs
    exactly what removing each costs, so dL(1,2) - dL(1) - dL(2) = 0."""
    w0, b0 = np.eye(2), np.zeros(2)
    w1, b1 = np.array([[4.0, 0.0], [0.0, 4.0]]), np.zeros(2)
    x = np.array([[1.0, 0.0]] * 5 + [[0.0, 1.0]] * 5)
    y = np.array([0] * 5 + [1] * 5)
    probe = probe_for([(w0, b0), (w1, b1)], x, y, 2)
    s = co.pair_synergy(probe, np.random.default_rng(0), pair_samples=4)
    assert s["pairs"] == 1
    assert s["mean"] == pytest.approx(0.0, abs=1e-12)
    assert s["frac_above"] == 0.0


def test_pair_synergy_in_an_earlier_layer_uses_the_backend_and_agrees():
    """The same AND network with an identity layer appended: now the pair lives in layer 1,
    which the read-out shortcut cannot reach, and the backend forward must give the same."""
    (w0, b0), (w1, b1) = and_network()
    weights = [(w0, b0), (np.eye(2), np.zeros(2)), (w1, b1)]
    probe = probe_for(weights, np.zeros((6, 1)), np.ones(6, dtype=int), 2, hidden_p=(0.0, 0.0))
    s = co.pair_synergy(probe, np.random.default_rng(0), pair_samples=1)
    one_layer = co.pair_synergy(probe_for(and_network(), np.zeros((6, 1)),
                                          np.ones(6, dtype=int), 2),
                                np.random.default_rng(0), pair_samples=1)
    assert s["pairs"] == 2  # one pair in each hidden layer
    assert s["mean"] == pytest.approx(one_layer["mean"], rel=1e-9)


def test_dead_units_are_not_sampled_for_pairs():
    w0, b0 = np.zeros((1, 3)), np.array([1.0, 1.0, -1.0])  # unit 3 is always 0 (dead)
    w1, b1 = np.array([[0.0, 5.0], [0.0, 5.0], [0.0, 9.0]]), np.array([0.0, -7.5])
    probe = probe_for([(w0, b0), (w1, b1)], np.zeros((4, 1)), np.ones(4, dtype=int), 2)
    assert co.pair_synergy(probe, np.random.default_rng(0), pair_samples=10)["pairs"] == 1


def test_ablation_curve_redundant_units_keep_accuracy():
    """Ten copies of one useful unit: any 9 can go and the answer is still right."""
    w0, b0 = np.ones((1, 10)), np.zeros(10)
    w1, b1 = np.hstack([-np.ones((10, 1)), np.ones((10, 1))]), np.zeros(2)
    x = np.ones((8, 1))
    probe = probe_for([(w0, b0), (w1, b1)], x, np.ones(8, dtype=int), 2)
    curve = co.ablation_curve(probe, np.random.default_rng(0), draws=3)
    assert curve == [1.0] * 10
    assert co.ablation_auc(co.ABLATION_FRACTIONS, curve) == pytest.approx(1.0)


def test_ablation_curve_single_needed_unit_is_linear_in_f():
    """Each example is decided by its own unit (unit k is on only for examples of group k):
    clamping a fraction f of the units loses exactly a fraction f of the accuracy."""
    d = 10
    w0, b0 = np.eye(d), np.zeros(d)
    w1, b1 = np.hstack([np.zeros((d, 1)), np.ones((d, 1))]), np.array([0.0, -0.5])
    x = np.eye(d)
    probe = probe_for([(w0, b0), (w1, b1)], x, np.ones(d, dtype=int), 2)
    curve = co.ablation_curve(probe, np.random.default_rng(0), draws=2)
    assert curve == pytest.approx([1.0 - f for f in co.ABLATION_FRACTIONS])
