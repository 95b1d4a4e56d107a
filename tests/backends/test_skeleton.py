"""The shared MLP skeleton: every backend fills the same primitives, the optimizer reads the
current hyperparameters at every step, and one step counter drives Adam and the flush."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from dropout_lab.backends import registry
from dropout_lab.backends.base import NetSpec, init_weights
from dropout_lab.backends.mlp import MLP
from dropout_lab.config import TrainConfig

BACKENDS = registry.names()
SIZES = (6, 8, 3)


def _net(name: str, train: TrainConfig) -> MLP:
    if name == "torch":
        pytest.importorskip("torch", reason="the torch backend needs PyTorch")
    weights = init_weights(list(SIZES), "relu", np.random.default_rng(0))
    return registry.create(name).build(NetSpec(SIZES, "relu", "float64"), weights,
                                      train.optimizer_spec(), "cpu")


def _batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.normal(size=(10, SIZES[0])), rng.integers(0, SIZES[-1], size=10)


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_is_the_skeleton_with_no_primitive_missing(name):
    net = _net(name, TrainConfig())
    assert isinstance(net, MLP)
    assert not inspect.isabstract(type(net))
    # The layer loop, backward pass and optimizer formulas are not rewritten by the backend
    # (torch wraps the public methods in no_grad and overrides _optimizer_step with _foreach).
    for method in ("_forward_train", "_loss_and_grads", "_train_step", "_update"):
        assert getattr(type(net), method).__qualname__.startswith("MLP."), method


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
@pytest.mark.parametrize("name", BACKENDS)
def test_a_step_reads_the_current_lr_and_momentum(name, optimizer):
    """Known answer: after set_hyperparameters(lr, mu), a first step moves every parameter
    by -lr g (sgd) or -lr (mu * 0 + g) (momentum: the velocity starts at zero); a second
    step by -lr (mu g1 + g2)."""
    x, y = _batch()
    net = _net(name, TrainConfig(optimizer=optimizer, lr=0.5, momentum=0.5))
    net.set_hyperparameters(0.01, 0.9)
    w0 = net.get_weights()
    _, g1 = net.loss_and_grads(x, y, None)
    net.train_step(x, y, None)
    w1 = net.get_weights()
    for (a, b), (c, d), (ga, gb) in zip(w0, w1, g1, strict=True):
        np.testing.assert_allclose(c, a - 0.01 * ga, rtol=0, atol=1e-12)
        np.testing.assert_allclose(d, b - 0.01 * gb, rtol=0, atol=1e-12)
    _, g2 = net.loss_and_grads(x, y, None)
    net.set_hyperparameters(0.1, 0.5)
    net.train_step(x, y, None)
    mu = 0.5 if optimizer == "momentum" else 0.0
    for (a, b), (c, d), (ga, gb), (ha, hb) in zip(w1, net.get_weights(), g1, g2, strict=True):
        np.testing.assert_allclose(c, a - 0.1 * (mu * ga + ha), rtol=0, atol=1e-12)
        np.testing.assert_allclose(d, b - 0.1 * (mu * gb + hb), rtol=0, atol=1e-12)
    assert net.t == 2  # one step counter for every optimizer


@pytest.mark.parametrize("name", BACKENDS)
def test_adam_bias_correction_uses_the_step_counter(name):
    """Adam's first step moves each weight by lr * g / (|g| + eps), about lr * sign(g)."""
    x, y = _batch()
    net = _net(name, TrainConfig(optimizer="adam", lr=0.001))
    w0 = net.get_weights()
    _, g = net.loss_and_grads(x, y, None)
    net.train_step(x, y, None)
    for (a, _), (c, _), (ga, _) in zip(w0, net.get_weights(), g, strict=True):
        np.testing.assert_allclose(c, a - 0.001 * ga / (np.abs(ga) + 1e-8), rtol=1e-9,
                                   atol=1e-12)


@pytest.mark.parametrize("name", BACKENDS)
def test_matmul_tn_with_beta_accumulates_into_out(name):
    """The primitive the fused momentum step rests on: out <- a^T g + beta out, in place."""
    net = _net(name, TrainConfig())
    rng = np.random.default_rng(3)
    a, g, out = rng.normal(size=(9, 4)), rng.normal(size=(9, 5)), rng.normal(size=(4, 5))
    want = a.T @ g + 0.75 * out
    buf = net._to_backend(out)
    got = net._matmul_tn(net._to_backend(a), net._to_backend(g), buf, beta=0.75)
    np.testing.assert_allclose(net._to_numpy(got), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net._to_numpy(buf), want, rtol=1e-12, atol=1e-12)  # in place
