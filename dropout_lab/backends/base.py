"""The contract every backend fills: build a network from given weights, train, evaluate.

Weights are drawn once, in NumPy, from the trial's ``init`` stream and handed to the backend;
dropout noise is sampled in NumPy by :mod:`dropout_lab.dropout` and handed in too. So two
backends given the same seed start from the same network, see the same batches and the same
masks, and can be held to one standard by the conformance suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dropout_lab.concrete import ConcreteSpec
from dropout_lab.dropout import DropoutPlan, Noise
from dropout_lab.specs.backends import OptimizerSpec

# Optimizer state that keeps decaying (the momentum of a weight whose gradient is always zero,
# e.g. one fed by a blank pixel) ends up *subnormal*, and x86 CPUs compute with subnormal
# operands in microcode, hundreds of times slower: on digits at p = 0.8 training slowed 3x
# after a few hundred epochs. Every backend therefore zeroes optimizer-state entries below
# FLUSH_BELOW x the dtype's smallest normal number every FLUSH_EVERY optimizer steps. A value
# decays by at most mu^64 (1e-3 for mu = 0.9) between flushes, so it never gets subnormal, and
# the flushed values (< 1e-33 in float32) are far too small to move any weight.
FLUSH_EVERY = 64
FLUSH_BELOW = 1e5

Weights = list[tuple[np.ndarray, np.ndarray]]  # [(W_l of shape (in, out), b_l of shape (out,))]


@dataclass(frozen=True)
class NetSpec:
    """Architecture of the MLP: ``sizes`` = [inputs, hidden..., classes]."""

    sizes: tuple[int, ...]
    activation: str = "relu"
    dtype: str = "float32"
    test_scales: tuple[float, ...] = ()  # per unit layer (input + hidden); () means all 1.0
    concrete: ConcreteSpec | None = None  # learned p (dropout_lab/concrete.py); None: fixed p

    @classmethod
    def of_plan(cls, sizes: list[int] | tuple[int, ...], activation: str, dtype: str,
                plan: DropoutPlan) -> NetSpec:
        """The spec of a network trained under ``plan``: its test-time scales and, under
        concrete dropout, what it needs to learn p."""
        return cls(tuple(sizes), activation, dtype, tuple(plan.test_scales()), plan.concrete)

    @property
    def n_hidden(self) -> int:
        return len(self.sizes) - 2


def init_weights(sizes: list[int] | tuple[int, ...], activation: str,
                 rng: np.random.Generator) -> Weights:
    """He-normal (ReLU) or Glorot-normal (tanh) weights, zero biases, in float64."""
    weights: Weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=False):
        var = 2.0 / fan_in if activation == "relu" else 2.0 / (fan_in + fan_out)
        weights.append((rng.normal(0.0, np.sqrt(var), size=(fan_in, fan_out)), np.zeros(fan_out)))
    return weights


@runtime_checkable
class Network(Protocol):
    """A built network on a backend. Inputs and outputs are NumPy arrays.

    Optionally, a network class may define ``train_epoch(x, y, order, batch_size, plan,
    noise_rng, noise_on) -> float`` to run a whole epoch itself (the torch backend does, to keep
    data and noise on a GPU); the trainer calls :func:`train_epoch`, whose default is the
    step-by-step loop over :meth:`train_step`."""

    def train_step(self, x: np.ndarray, y: np.ndarray, noise: Noise | None) -> float:
        """One optimizer step on a mini-batch; returns the mini-batch loss (with dropout on)."""

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, noise: Noise | None
                       ) -> tuple[float, Weights]:
        """Mean cross-entropy and its gradients [(dW, db)], without updating anything."""

    def forward(self, x: np.ndarray, noise: Noise | None = None,
                ablate: list[np.ndarray | None] | None = None, return_hidden: bool = False
                ) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
        """Logits. ``noise=None`` is evaluation mode (test-time scaling applied); with noise
        it is a training-mode pass without updates (Monte Carlo dropout). ``ablate[l]`` (shape
        (d_l,)) multiplies hidden layer l+1's activations. With ``return_hidden`` also the
        post-activation hidden matrices (N x d_l), before any dropout or test-time scaling."""

    def set_hyperparameters(self, lr: float, momentum: float) -> None:
        """Learning rate and momentum for the steps that follow (a schedule calls this once per
        epoch). ``momentum`` is the velocity decay of the ``momentum`` optimizer; the others
        ignore it."""

    def get_weights(self) -> Weights:
        """Copies of the current weights as NumPy arrays."""

    def learned_p(self) -> list[float | None]:
        """Concrete dropout: the learned p of every unit layer (0 = the input; None where
        p is not learned); [] under any other variant."""

    # -- checkpoints (dropout_lab/checkpoint.py; backends/mlp.py fills them for every backend)
    def export_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Everything the next optimizer step depends on: named NumPy copies of the weights
        and optimizer moments, and the scalars (step counter, lr, momentum)."""

    def import_state(self, arrays: dict[str, np.ndarray], scalars: dict[str, Any]) -> None:
        """Restore :meth:`export_state`'s output bit for bit (ValueError if it does not fit)."""

    def random_state(self) -> dict[str, np.ndarray]:
        """Random state the network holds itself (a device generator), as arrays."""

    def restore_random_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Take back :meth:`random_state`'s output."""


class Backend(Protocol):
    """A backend: resolves devices, limits threads, builds networks."""

    name: str

    def resolve_device(self, device: str) -> str:
        """The concrete device for a requested one (``auto`` -> ``cpu``/``cuda``), or raise
        :class:`~dropout_lab.errors.BackendError` with a one-line reason."""

    def set_threads(self, n: int) -> None:
        """Limit the intra-op threads this backend uses in this process."""

    def versions(self) -> dict[str, str]:
        """Library versions recorded with every result."""

    def build(self, spec: NetSpec, weights: Weights, train: OptimizerSpec, device: str) -> Network:
        """A network holding a copy of ``weights``, with the optimizer of ``train``."""


def train_epoch(net: Network, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
                plan: DropoutPlan, noise_rng: np.random.Generator, noise_on: str = "host"
                ) -> float:
    """One epoch of mini-batches ``x[order]``, ``y[order]``; returns the sum over mini-batches
    of loss x batch size. The noise of every step is ``plan.sample(noise_rng, batch)``
    (``noise_on = "host"``). A network class that defines ``train_epoch`` (the torch backend,
    for data resident on a GPU, noise drawn there, one loss read-back per epoch) runs the
    epoch itself; the class is asked, not the instance, so a wrapper that forwards attributes
    (a recorder in a test) still sees every step."""
    own = getattr(type(net), "train_epoch", None)
    if own is not None:
        return float(own(net, x, y, order, batch_size, plan, noise_rng, noise_on))
    return host_epoch(net, x, y, order, batch_size, plan, noise_rng)


def host_epoch(net: Network, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
               plan: DropoutPlan, noise_rng: np.random.Generator) -> float:
    """The epoch step by step from the host: gather a mini-batch, sample its noise, train."""
    total = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        loss = net.train_step(x[idx], y[idx], plan.sample(noise_rng, len(idx)))
        total += loss * len(idx)
    return total
