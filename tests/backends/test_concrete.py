"""Concrete dropout's formulas (dropout_lab/concrete.py) against known answers: the relaxed
mask in closed form (u = 1/2, the t -> 0 limit), its logit gradient against a float64 central
difference, the regulariser's values and gradient; the config's defaults; and a short
training run that learns p inside (0, 1) on both backends."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from dropout_lab import concrete
from dropout_lab.config import validate
from dropout_lab.errors import ConfigError
from dropout_lab.sweep import trial_id_of
from dropout_lab.training import train
from dropout_lab.trial import prepare
from tests.helpers.configs import TINY
from tests.helpers.requires import backend_params


def logit(p: float) -> float:
    return float(np.log(p) - np.log1p(-p))


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_at_u_one_half_the_mask_is_a_sigmoid_of_the_logit(p):
    """u = 1/2: the logistic noise is 0 exactly, z = sigmoid(theta / t), r = (1 - z)/(1 - p)."""
    t = 0.1
    r, z = concrete.relax(np.full((2, 3), 0.5), logit(p), t)
    expected_z = 1 / (1 + np.exp(-logit(p) / t))
    assert np.allclose(z, expected_z, rtol=1e-12, atol=0)
    assert np.allclose(r, (1 - expected_z) / (1 - p), rtol=1e-12, atol=0)
    assert (z > 0.5).all() == (p > 0.5)  # the threshold behaviour: drop iff p > 1/2


@pytest.mark.parametrize("p", [0.2, 0.5, 0.7])
def test_as_t_goes_to_0_the_mask_is_bernoulli_with_drop_probability_p(p):
    """z -> 1[u > 1 - p]: for u away from the threshold, r is 0 or 1/(1 - p) exactly as
    inverted dropout with u >= 1 - p dropped."""
    u = np.linspace(0.0005, 0.9995, 2000)
    u = u[np.abs(u - (1 - p)) > 1e-3]
    r, z = concrete.relax(u, logit(p), 1e-6)
    dropped = u > 1 - p
    assert np.array_equal(z > 0.5, dropped)
    assert np.allclose(r[dropped], 0.0, atol=1e-12)
    assert np.allclose(r[~dropped], 1 / (1 - p), rtol=1e-12)


def test_the_relaxation_is_symmetric_so_r_has_mean_one_at_p_one_half():
    u = np.random.default_rng(0).random(200_000)
    r, _ = concrete.relax(u, 0.0, 0.1)
    assert abs(r.mean() - 1) < 5 * r.std() / np.sqrt(u.size)


@pytest.mark.parametrize("t", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("p", [0.05, 0.3, 0.6])
def test_the_logit_gradient_matches_a_float64_central_difference(p, t):
    """d/dtheta of L = sum(g * a * r(theta)) with a fixed: concrete.logit_grad's data term
    (it takes a * r, the unit after the mask) equals the central difference of L."""
    rng = np.random.default_rng(1)
    u, h, g = rng.random((40, 7)), rng.normal(size=(40, 7)), rng.normal(size=(40, 7))
    theta, eps = logit(p), 1e-6

    def loss(th: float) -> float:
        return float(np.sum(g * h * concrete.relax(u, th, t)[0]))

    r, z = concrete.relax(u, theta, t)
    analytic = concrete.logit_grad(g, h * r, z, theta, t)
    numeric = (loss(theta + eps) - loss(theta - eps)) / (2 * eps)
    assert abs(analytic - numeric) <= 1e-7 * max(1.0, abs(analytic))
    # and the closed form dr/dtheta = r (p - z / t), elementwise
    step = (concrete.relax(u, theta + eps, t)[0] - concrete.relax(u, theta - eps, t)[0]) / (2 * eps)
    assert np.allclose(step, r * (p - z / t), rtol=1e-6, atol=1e-8)


def test_the_regulariser_known_values_and_gradient():
    """At p = 1/2 (theta = 0): R = wr |W|^2 / (1/2) + dr K (log 1/2) and dR/dtheta =
    wr |W|^2 (the entropy term is flat at its maximum)."""
    wr, dr, K, w_sq = 1e-3, 1e-2, 7, 3.0
    assert concrete.penalty(w_sq, 0.0, K, wr, dr) == pytest.approx(2 * wr * w_sq
                                                                   - dr * K * np.log(2))
    assert concrete.penalty_logit_grad(w_sq, 0.0, K, wr, dr) == pytest.approx(wr * w_sq)
    for theta in (-2.0, -0.3, 1.5):
        eps = 1e-6
        numeric = (concrete.penalty(w_sq, theta + eps, K, wr, dr)
                   - concrete.penalty(w_sq, theta - eps, K, wr, dr)) / (2 * eps)
        assert concrete.penalty_logit_grad(w_sq, theta, K, wr, dr) == pytest.approx(
            numeric, rel=1e-7)
    # the entropy term alone pulls p towards 1/2: its gradient has the sign of theta
    assert concrete.penalty_logit_grad(0.0, -1.0, K, 0.0, dr) < 0 < concrete.penalty_logit_grad(
        0.0, 1.0, K, 0.0, dr)


def config(**dropout) -> dict:
    data = copy.deepcopy(TINY)
    data["sweep"] = {}
    data["dropout"] = {"p": 0.2, "variant": "concrete", **dropout}
    return data


def test_defaults_follow_the_paper_for_n_training_examples():
    cfg = validate(config())
    assert cfg.concrete_settings(1000) == (0.1, 1e-8 / 2000, 1e-3)  # l = 1e-4: l^2 / 2N, 1/N
    cfg = validate(config(concrete={"temperature": 0.5, "length_scale": 0.1,
                                    "dropout_regularizer": 0.0}))
    assert cfg.concrete_settings(100) == (0.5, pytest.approx(0.01 / 200), 0.0)


def test_concrete_settings_on_another_variant_are_refused():
    data = config(concrete={"temperature": 0.5})
    data["dropout"]["variant"] = "inverted"
    with pytest.raises(ConfigError, match="dropout.concrete sets the learned p of variant "
                                          "concrete; the variant is 'inverted'"):
        validate(data)


def test_a_config_without_concrete_settings_keeps_its_trial_id():
    """dropout.concrete (null unless set) is left out of the id: stored trials keep theirs."""
    data = config()
    data["dropout"]["variant"] = "inverted"
    cfg = validate(data)
    dump = cfg.model_dump(mode="json", exclude={"sweep"})
    assert dump["dropout"]["concrete"] is None
    del dump["dropout"]["concrete"]
    from dropout_lab.sweep import _id_of_dump

    assert trial_id_of(cfg) == _id_of_dump(dump)
    assert trial_id_of(validate(config(concrete={"temperature": 0.5}))) != trial_id_of(
        validate(config()))


@pytest.mark.parametrize("name", backend_params(["numpy", "torch"]))
def test_training_learns_p_inside_0_1_per_layer(name):
    """Input and hidden p move away from where they start and stay inside (0, 1); every
    epoch's row holds them, the input first."""
    data = config(input_p=0.1, p=0.3)
    data.update(backend=name)
    data["train"].update(epochs=6, optimizer="adam", lr=0.01)
    prep = prepare(validate(data), threads=1)
    rows = train(prep)
    trace = np.array([r["learned_p"] for r in rows], dtype=np.float64)
    assert trace.shape == (6, 2)
    assert ((trace > 0) & (trace < 1)).all()
    moved = np.abs(trace[-1] - [0.1, 0.3])
    assert (moved > 0).all() and moved.max() > 1e-2, trace[-1]
    assert prep.network.learned_p() == rows[-1]["learned_p"]


def test_the_presets_validate_and_hold_both_arms():
    from pathlib import Path

    from dropout_lab.config import load_config
    from dropout_lab.sweep import expand

    root = Path(__file__).resolve().parents[2] / "configs"
    points = expand(load_config(root / "learned-vs-swept-mnist.yaml"))
    assert len(points) == 30
    arms = [p.config.dropout.variant for p in points]
    assert arms.count("concrete") == arms.count("inverted") == 15
    assert {p.config.seed for p in points} == {0, 1, 2}
    digits = expand(load_config(root / "concrete-digits.yaml"))
    assert {p.config.dropout.variant for p in digits} == {"concrete"}
