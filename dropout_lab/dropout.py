"""Dropout variants as multiplicative noise, sampled once and handed to any backend.

Every variant is "multiply something by a random matrix during training" plus, for
``standard``, a fixed scale at test time. Writing it this way keeps the formulas in one
backend-neutral place; backends only multiply. p is always the probability of DROPPING.

======================  ===========================================  ====================
variant                 training: a' = a * r with r =                 test time
======================  ===========================================  ====================
inverted (default)      0 w.p. p, else 1/(1-p)                        a' = a
standard                0 w.p. p, else 1                              a' = (1-p) a
gaussian                r ~ N(1, p/(1-p))  (same mean/var as inverted) a' = a
dropconnect             on each WEIGHT: 0 w.p. p, else 1/(1-p)        W' = W
unscaled (a mistake)    0 w.p. p, else 1                              a' = a  (no rescale)
======================  ===========================================  ====================

Unit noise has one row per example; dropconnect noise is one weight mask per mini-batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A reusable noise buffer: ("w", layer) for a weight mask, ("u", layer, batch) for a unit mask.
BufferKey = tuple[str, int] | tuple[str, int, int]


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
    probability per unit layer [input_p, p_1, ..., p_H].
    """

    def __init__(self, variant: str, rates: list[float], sizes: list[int],
                 dtype: str = "float32") -> None:
        if len(rates) != len(sizes) - 1:
            raise ValueError("one rate per unit layer (input + hidden layers)")
        self.variant = variant
        self.rates = [float(r) for r in rates]
        self.sizes = list(sizes)
        self.dtype = np.dtype(dtype)
        self._buffers: dict[BufferKey, np.ndarray] = {}

    @property
    def active(self) -> bool:
        return any(r > 0 for r in self.rates)

    def test_scales(self) -> list[float]:
        """Factor applied to each unit layer at test time (only ``standard`` scales: 1-p)."""
        if self.variant == "standard":
            return [1.0 - r for r in self.rates]
        return [1.0] * len(self.rates)

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, batch: int) -> Noise | None:
        """Noise for one training step of ``batch`` examples (None when every rate is 0)."""
        if not self.active:
            return None
        n_layers = len(self.sizes) - 1
        units: list[np.ndarray | None] = [None] * n_layers
        weights: list[np.ndarray | None] = [None] * n_layers
        for layer, p in enumerate(self.rates):
            if p <= 0:
                continue
            if self.variant == "dropconnect":
                shape = (self.sizes[layer], self.sizes[layer + 1])
                weights[layer] = self._bernoulli(rng, ("w", layer), shape, p, scale=True)
            elif self.variant == "gaussian":
                units[layer] = self._gaussian(
                    rng, ("u", layer, batch), (batch, self.sizes[layer]), p)
            else:
                units[layer] = self._bernoulli(
                    rng, ("u", layer, batch), (batch, self.sizes[layer]), p,
                    scale=self.variant == "inverted",
                )
        return Noise(units, weights)

    def _buffer(self, key: BufferKey, shape: tuple[int, int]) -> np.ndarray:
        # Reused between steps: sampling allocates nothing after the first batch.
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape:
            buf = self._buffers[key] = np.empty(shape, dtype=self.dtype)
        return buf

    def _bernoulli(self, rng: np.random.Generator, key: BufferKey, shape: tuple[int, int],
                   p: float, scale: bool) -> np.ndarray:
        """r = 1[u >= t] (kept with probability 1-p), times 1/(1-p) when ``scale``.

        u is uniform on the 32-bit integers (two per raw 64-bit draw of the generator) and
        t = round(p 2^32), so P(kept) = 1 - p to within 2^-33; this is about twice as fast as
        comparing float32 uniforms (which resolve p only to 2^-24)."""
        buf = self._buffer(key, shape)
        n = buf.size
        u = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n].reshape(shape)
        threshold = np.uint32(min(round(p * 2.0**32), 2**32 - 1))
        keep_value = 1.0 / (1.0 - p) if scale else 1.0
        # u >= t has probability 1 - p; write keep_value or 0 in place.
        np.greater_equal(u, threshold, out=buf, casting="unsafe")
        if keep_value != 1.0:
            buf *= self.dtype.type(keep_value)
        return buf

    def _gaussian(self, rng: np.random.Generator, key: BufferKey, shape: tuple[int, int],
                  p: float) -> np.ndarray:
        """r ~ N(1, sigma^2) with sigma^2 = p / (1 - p), the variance of inverted dropout."""
        buf = self._buffer(key, shape)
        rng.standard_normal(out=buf, dtype=self.dtype)
        buf *= self.dtype.type(np.sqrt(p / (1.0 - p)))
        buf += 1
        return buf


def make_plan(variant: str, input_p: float, hidden_p: list[float], sizes: list[int],
              dtype: str = "float32") -> DropoutPlan:
    """Plan with input rate ``input_p`` and one rate per hidden layer."""
    return DropoutPlan(variant, [input_p, *hidden_p], sizes, dtype)
