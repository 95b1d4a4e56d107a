"""The dropout formula: a fraction p of units zeroed, expected activation unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from dropout_lab.dropout import make_plan

N, D = 4000, 50


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_inverted_mask_drops_fraction_p_and_keeps_the_mean(p):
    plan = make_plan("inverted", 0.0, [p], [10, D, 3])
    noise = plan.sample(np.random.default_rng(0), N)
    r = noise.units[1]
    assert noise.units[0] is None  # input_p = 0: no input noise
    dropped = (r == 0).mean()
    # binomial standard error of the dropped fraction over N*D draws
    se = np.sqrt(p * (1 - p) / (N * D))
    assert abs(dropped - p) < 5 * se
    kept = r[r != 0]
    np.testing.assert_allclose(kept, 1.0 / (1.0 - p), rtol=1e-6)  # a / (1 - p)
    a = np.random.default_rng(1).uniform(0, 2, size=(N, D)).astype(np.float32)
    # E[a * r] = a: compare the means of a*r and a with the standard error of the difference
    diff = (a * r - a).mean()
    se_mean = (a * r - a).std() / np.sqrt(a.size)
    assert abs(diff) < 5 * se_mean


def test_p_zero_samples_no_noise():
    assert make_plan("inverted", 0.0, [0.0, 0.0], [4, 8, 8, 2]).sample(
        np.random.default_rng(0), 16) is None


def test_same_generator_state_gives_the_same_mask_and_streams_are_independent():
    plan = make_plan("inverted", 0.2, [0.5], [10, 20, 3])
    a = plan.sample(np.random.default_rng(7), 32).units[1].copy()
    b = plan.sample(np.random.default_rng(7), 32).units[1].copy()
    c = plan.sample(np.random.default_rng(8), 32).units[1].copy()
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_variant_specific_noise():
    rng = np.random.default_rng(0)
    std = make_plan("standard", 0.0, [0.5], [10, 400, 3])
    assert std.test_scales() == [1.0, 0.5]
    r = std.sample(rng, 400).units[1]
    assert set(np.unique(r)) == {0.0, 1.0}  # no rescaling at training time
    g = make_plan("gaussian", 0.0, [0.5], [10, 400, 3]).sample(rng, 400).units[1]
    assert abs(g.mean() - 1.0) < 0.02 and abs(g.var() - 1.0) < 0.05  # p/(1-p) = 1
    dc = make_plan("dropconnect", 0.0, [0.5], [10, 400, 3]).sample(rng, 400)
    assert dc.units == [None, None] and dc.weights[0] is None
    assert dc.weights[1].shape == (400, 3)
    un = make_plan("unscaled", 0.0, [0.5], [10, 400, 3])
    assert un.test_scales() == [1.0, 1.0]
