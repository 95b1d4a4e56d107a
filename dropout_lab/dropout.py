"""Dropout noise of one trial, sampled once and handed to any backend.

Every variant is "multiply something by a random matrix during training" plus, for
``standard``, a fixed scale at test time. The formulas are the variant objects of
:mod:`dropout_lab.variants` (the registry, the only place a variant name is dispatched); a
:class:`DropoutPlan` holds a trial's rates per layer and samples its :class:`Noise` through
the host's primitives (:class:`~dropout_lab.variants.HostOps`); backends only multiply.
p is always the probability of DROPPING.

Unit noise has one row per example; dropconnect noise is one weight mask per mini-batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dropout_lab import variants
from dropout_lab.concrete import DEFAULT_TEMPERATURE, ConcreteSpec
from dropout_lab.variants import HostOps


@dataclass
class Noise:
    """Multiplicative training noise for one forward pass.

    ``units[0]`` multiplies the input, ``units[l]`` the activations of hidden layer l (1-based);
    ``weights[l]`` multiplies weight matrix l (0 = input -> first hidden). ``None`` = no noise.
    """

    units: list[np.ndarray | None]
    weights: list[np.ndarray | None]


class DropoutPlan:
    """Rates per layer and the variant; samples :class:`Noise` from an explicit Generator.

    ``sizes`` are the layer widths [inputs, hidden..., classes]; ``rates`` has one drop
    probability per unit layer [input_p, p_1, ..., p_H]. Under ``concrete`` the rates are
    where each layer's learned p starts (0: the layer drops nothing and learns nothing), and
    :attr:`concrete` is what the network needs to learn them (temperature, regularisers).
    """

    def __init__(self, variant: str, rates: list[float], sizes: list[int],
                 dtype: str = "float32", temperature: float = DEFAULT_TEMPERATURE,
                 weight_regularizer: float = 0.0, dropout_regularizer: float = 0.0) -> None:
        if len(rates) != len(sizes) - 1:
            raise ValueError("one rate per unit layer (input + hidden layers)")
        self.variant = variant
        self.kind = variants.get(variant)  # a ConfigError listing the valid names on a typo
        self.rates = [float(r) for r in rates]
        self.sizes = list(sizes)
        self.dtype = np.dtype(dtype)
        self._ops: HostOps | None = None
        self._ops_rng: np.random.Generator | None = None
        self.concrete: ConcreteSpec | None = None
        if self.kind.relaxed and self.active:
            self.concrete = ConcreteSpec(tuple(r > 0 for r in self.rates), tuple(self.rates),
                                         temperature, weight_regularizer, dropout_regularizer)

    @property
    def active(self) -> bool:
        return any(r > 0 for r in self.rates)

    def test_scales(self) -> list[float]:
        """Factor applied to each unit layer at test time (only ``standard`` scales: 1-p)."""
        return [self.kind.test_scale(r) for r in self.rates]

    def noise_shape(self, layer: int, batch: int) -> tuple[int, int]:
        """The shape of layer ``layer``'s noise: the weight matrix (in, out) for a weight
        variant, else (batch, units)."""
        if self.kind.target == "weights":
            return (self.sizes[layer], self.sizes[layer + 1])
        return (batch, self.sizes[layer])

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, batch: int) -> Noise | None:
        """Noise for one training step of ``batch`` examples (None when every rate is 0).
        The arrays are reused by the next call (no allocation after the first batch)."""
        if not self.active:
            return None
        if self._ops is None or self._ops_rng is not rng:
            self._ops, self._ops_rng = HostOps(rng, self.dtype), rng
        ops = self._ops
        ops.start()
        n_layers = len(self.sizes) - 1
        units: list[np.ndarray | None] = [None] * n_layers
        weights: list[np.ndarray | None] = [None] * n_layers
        on_weights = self.kind.target == "weights"
        for layer, p in enumerate(self.rates):
            if p <= 0:
                continue  # no draw at all: the stream is the same as for a net without it
            r = self.kind.sample(ops, self.noise_shape(layer, batch), p)
            if on_weights:
                weights[layer] = r
            else:
                units[layer] = r
        return Noise(units, weights)


def make_plan(variant: str, input_p: float, hidden_p: list[float], sizes: list[int],
              dtype: str = "float32", temperature: float = DEFAULT_TEMPERATURE,
              weight_regularizer: float = 0.0, dropout_regularizer: float = 0.0
              ) -> DropoutPlan:
    """Plan with input rate ``input_p`` and one rate per hidden layer (concrete: the initial
    p of each, its temperature and regulariser weights; dropout_lab/concrete.py)."""
    return DropoutPlan(variant, [input_p, *hidden_p], sizes, dtype, temperature,
                       weight_regularizer, dropout_regularizer)
