"""The dropout variant registry: one object per variant, the only place a variant name is read.

A variant is its training noise, written once as :meth:`Variant.sample` over a few noise
primitives (:class:`NoiseOps`: ``keep``, a Bernoulli draw from a uniform; ``uniform``;
``normal``; and two in-place arithmetic steps) that each place noise is drawn fills: the host
(NumPy, :class:`HostOps`, the masks every backend sees by default) and a torch device
(``backends/torch_device.py``). Plus its test-time scale and whether it multiplies units or
weights. p is always the probability of DROPPING.

======================  ===========================================  ====================
variant                 training: a' = a * r with r =                 test time
======================  ===========================================  ====================
inverted (default)      0 w.p. p, else 1/(1-p)                        a' = a
standard                0 w.p. p, else 1                              a' = (1-p) a
gaussian                r ~ N(1, p/(1-p))  (same mean/var as inverted) a' = a
dropconnect             on each WEIGHT: 0 w.p. p, else 1/(1-p)        W' = W
unscaled (a mistake)    0 w.p. p, else 1                              a' = a  (no rescale)
concrete (p learned)    (1 - z) / (1 - p), z = sigmoid((logit p +     a' = a
                        log u - log(1 - u)) / t), u ~ U[0, 1)
======================  ===========================================  ====================

``p`` may be one float, or (for a pack, dropout_lab/packs) an array of one p per member: the
noise then has the members on its leading axis and the ops broadcast p over the rest.

Concrete dropout (:mod:`dropout_lab.concrete`, the formulas) is the one variant whose noise
is not yet r: its p is a parameter of the network, so the noise drawn here is the uniforms
u, and the network turns them into its relaxed mask with its current p (``relaxed``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

import numpy as np

from dropout_lab.errors import ConfigError

T = TypeVar("T")
Rate = float | np.ndarray  # one drop probability, or one per pack member (shape (K,))
Target = Literal["units", "weights"]


class NoiseOps(Protocol[T]):
    """The primitives a place that draws noise fills (host: NumPy, device: torch)."""

    def keep(self, shape: tuple[int, ...], p: Rate) -> T:
        """1[u >= p] as 0/1 in the noise dtype, u uniform on [0, 1): kept w.p. 1 - p."""

    def uniform(self, shape: tuple[int, ...]) -> T:
        """Uniform draws on [0, 1) in the noise dtype (the raw material of a relaxed mask,
        e.g. concrete dropout's, whose p is learned)."""

    def normal(self, shape: tuple[int, ...]) -> T:
        """Standard normal draws in the noise dtype."""

    def scale_(self, x: T, s: Rate) -> T:
        """x *= s in place (s in float64, cast to the noise dtype); returns x."""

    def shift_(self, x: T, s: float) -> T:
        """x += s in place; returns x."""


@dataclass(frozen=True)
class Variant:
    """One dropout variant: its training noise and its test-time scale."""

    name: str
    target: Target  # what the noise multiplies: unit activations or weights
    summary: str

    def sample(self, ops: NoiseOps[T], shape: tuple[int, ...], p: Rate) -> T:
        """The multiplicative noise r of one layer (``shape``: batch x units, or the weight
        matrix), drawn through ``ops``."""
        raise NotImplementedError

    def test_scale(self, p: float) -> float:
        """The factor on a unit layer at test time (1 unless the variant scales there)."""
        return 1.0

    @property
    def relaxed(self) -> bool:
        """True when :meth:`sample` draws the raw uniforms of a relaxed mask that the network
        completes with its learned p (concrete), not the noise r itself."""
        return False

    @property
    def packs(self) -> bool:
        """Whether trials of this variant may train in a pack (dropout_lab/packs): not when
        p is learned, a parameter the stacked network does not hold."""
        return not self.relaxed


@dataclass(frozen=True)
class Bernoulli(Variant):
    """r = 1[u >= p] (0 w.p. p), times 1/(1-p) when ``rescale`` (inverted, dropconnect);
    ``test_scaled``: a' = (1-p) a at test time instead (standard)."""

    rescale: bool = True
    test_scaled: bool = False

    def sample(self, ops: NoiseOps[T], shape: tuple[int, ...], p: Rate) -> T:
        r = ops.keep(shape, p)
        if self.rescale:
            ops.scale_(r, 1.0 / (1.0 - p))  # E[r] = 1
        return r

    def test_scale(self, p: float) -> float:
        return 1.0 - p if self.test_scaled else 1.0


@dataclass(frozen=True)
class Gaussian(Variant):
    """r ~ N(1, sigma^2), sigma^2 = p / (1 - p): inverted dropout's mean and variance."""

    def sample(self, ops: NoiseOps[T], shape: tuple[int, ...], p: Rate) -> T:
        r = ops.normal(shape)
        ops.scale_(r, np.sqrt(p / (1.0 - p)))
        return ops.shift_(r, 1.0)


@dataclass(frozen=True)
class Concrete(Variant):
    """Concrete dropout (Gal et al. 2017): u ~ U[0, 1); the network makes r = (1 - z) / (1 - p)
    with z = sigmoid((logit p + log u - log(1 - u)) / t) from its learned p
    (dropout_lab/concrete.py). ``p`` here is only whether the layer drops at all."""

    def sample(self, ops: NoiseOps[T], shape: tuple[int, ...], p: Rate) -> T:
        return ops.uniform(shape)

    @property
    def relaxed(self) -> bool:
        return True


_REGISTRY: dict[str, Variant] = {}


def register(variant: Variant) -> None:
    """Add a variant (its name must be in the config's ``Variant`` literal to be usable)."""
    _REGISTRY[variant.name] = variant


def names() -> list[str]:
    """The registered variant names, in registration order."""
    return list(_REGISTRY)


def get(name: str) -> Variant:
    """The variant called ``name``; a ConfigError lists the valid names on a typo."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown dropout variant {name!r}{hint} "
                          f"(known: {', '.join(names())})") from None


register(Bernoulli("inverted", "units", "0 w.p. p, else 1/(1-p); nothing at test time"))
register(Bernoulli("standard", "units", "0 w.p. p, else 1; a' = (1-p) a at test time",
                   rescale=False, test_scaled=True))
register(Gaussian("gaussian", "units", "r ~ N(1, p/(1-p)); nothing at test time"))
register(Bernoulli("dropconnect", "weights", "each weight 0 w.p. p, else 1/(1-p), per batch"))
register(Bernoulli("unscaled", "units", "0 w.p. p, else 1, no rescale (a mistake, on purpose)",
                   rescale=False))
register(Concrete("concrete", "units", "relaxed mask (1-z)/(1-p) with p learned per layer "
                  "(Gal et al. 2017); nothing at test time"))


# -- the host's primitives (NumPy) ------------------------------------------------------------
class HostOps:
    """:class:`NoiseOps` in NumPy, from explicit Generators.

    One Generator (a trial) or one per pack member (the noise's leading axis is the member;
    ``draw[k]`` False: member k draws nothing, its noise is the identity, exactly as a solo
    trial skips a layer of rate 0). Buffers are reused between steps: the i-th draw of a
    sample reuses the i-th buffer of its shape, so sampling allocates nothing after the first
    batch (callers must not keep the arrays past the next sample)."""

    def __init__(self, rngs: np.random.Generator | list[np.random.Generator],
                 dtype: np.dtype | str) -> None:
        self.rngs = rngs if isinstance(rngs, list) else [rngs]
        self.packed = isinstance(rngs, list)
        self.dtype = np.dtype(dtype)
        self.draw = np.ones(len(self.rngs), dtype=bool)
        self._buffers: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        self._calls = 0

    def start(self, draw: np.ndarray | None = None) -> None:
        """Begin a sample (buffers are handed out again from the first); ``draw``: which
        members draw (a pack)."""
        self._calls = 0
        if draw is not None:
            self.draw = draw

    def _buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        key = (self._calls, shape)
        self._calls += 1
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = np.empty(shape, dtype=self.dtype)
        return buf

    def _members(self, out: np.ndarray) -> list[tuple[np.random.Generator, np.ndarray, int]]:
        if not self.packed:
            return [(self.rngs[0], out, -1)]
        return [(g, out[k], k) for k, g in enumerate(self.rngs)]

    def keep(self, shape: tuple[int, ...], p: Rate) -> np.ndarray:
        """u uniform on the 32-bit integers (two per raw 64-bit draw of the generator) and
        t = round(p 2^32), so P(kept) = P(u >= t) = 1 - p to within 2^-33; about twice as fast
        as comparing float32 uniforms (which resolve p only to 2^-24)."""
        out = self._buffer(shape)
        rates = np.broadcast_to(np.asarray(p, dtype=np.float64), (len(self.rngs),))
        for rng, buf, k in self._members(out):
            if k >= 0 and not self.draw[k]:
                buf.fill(1)
                continue
            n = buf.size
            u = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]
            threshold = np.uint32(min(round(float(rates[max(k, 0)]) * 2.0**32), 2**32 - 1))
            np.greater_equal(u.reshape(buf.shape), threshold, out=buf, casting="unsafe")
        return out

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        out = self._buffer(shape)
        for rng, buf, k in self._members(out):
            if k >= 0 and not self.draw[k]:
                buf.fill(0)
                continue
            rng.random(out=buf, dtype=self.dtype)
        return out

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:
        out = self._buffer(shape)
        for rng, buf, k in self._members(out):
            if k >= 0 and not self.draw[k]:
                buf.fill(0)  # scaled by sigma = 0 and shifted by 1: the identity
                continue
            rng.standard_normal(out=buf, dtype=self.dtype)
        return out

    def scale_(self, x: np.ndarray, s: Rate) -> np.ndarray:
        if np.ndim(s) == 0:
            if s != 1.0:  # (x * 1 is x: skipping it changes no bit)
                x *= self.dtype.type(s)
            return x
        # one factor per member, cast to the dtype as a solo trial casts its scalar
        x *= np.asarray(s, dtype=np.float64).astype(self.dtype).reshape(-1, *[1] * (x.ndim - 1))
        return x

    def shift_(self, x: np.ndarray, s: float) -> np.ndarray:
        x += self.dtype.type(s)
        return x
