"""A trained network seen through the backend interface, on a fixed held-out sample.

Every after-training statistic needs the same few things from the network: evaluation-mode
logits and hidden activations, logits with some hidden units clamped to zero, and Monte Carlo
dropout passes. :class:`Probe` asks the backend for them only through the
:class:`~dropout_lab.backends.base.Network` protocol (``forward`` and ``get_weights``), so the
statistics are computed by one backend-neutral module and both backends give the same numbers
for the same weights.

Why a read-out shortcut. The last hidden layer L feeds the output through one affine map,

    logits = (h_L * s_L) @ W_L + b_L          (evaluation mode; s_L = test-time scale)
    logits = (h_L * r_L) @ (W_L * M_L) + b_L  (training mode; r_L unit noise, M_L dropconnect)

where h_L is exactly the matrix ``forward(..., return_hidden=True)`` hands back. So clamping a
set S of units of layer L to zero changes the logits by  - s_L * h_L[:, S] @ W_L[S, :], and a
Monte Carlo pass whose noise touches only layer L (no input dropout, no dropout in earlier
layers: the common one-hidden-layer case) is one small matrix product on h_L. That makes the
ablation curve, the unit-pair losses and the Monte Carlo passes cheap.

The same algebra one layer down (the *tail* shortcut): clamping units S of an earlier hidden
layer l changes the next layer's pre-activation by a rank-|S| term,

    z_{l+1}' = z_{l+1} - s_l * h_l[:, S] @ W_{l+1}[S, :],   z_{l+1} = (h_l s_l) @ W_{l+1} + b

and only the layers above l are recomputed from there (in float64 NumPy, from the weights).
For a pair of units of the first layer of a 784-1024-1024-10 MLP that is a rank-2 update, a
ReLU and the 10-column read-out instead of a whole forward pass: the pair synergy of earlier
layers no longer dominates a trial's statistics. It needs the activation (``relu``/``tanh``);
without it, and in every other case (noise in an earlier layer, ablating several layers at
once), the backend's own ``forward`` runs. ``tests/metrics/test_metrics_integration.py`` checks that
the paths agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dropout_lab.dropout import DropoutPlan, Noise

CHUNK = 4096  # rows per backend forward pass: bounds memory when max_samples is large
TAIL_ROWS = 256  # rows per block of the tail shortcut (a 256 x 1024 float64 block is 2 MiB)


@dataclass
class Probe:
    """Evaluation-mode view of a trained network on held-out examples ``x``, ``y``."""

    network: object  # a backends.base.Network
    plan: DropoutPlan
    x: np.ndarray
    y: np.ndarray
    n_classes: int
    logits: np.ndarray  # (N, C) float64, evaluation mode, from the backend
    hidden: list[np.ndarray]  # per hidden layer, (N, d_l), evaluation mode, before test scaling
    readout_w: np.ndarray  # W_L (d_L, C), network dtype
    readout_b: np.ndarray  # b_L (C,)
    readout_scale: float  # s_L: test-time factor of the last hidden layer (standard: 1 - p)
    readout: np.ndarray  # (N, C) float64: (h_L s_L) W_L + b_L recomputed from h_L
    hidden64: np.ndarray  # h_L in float64, for the read-out shortcut
    readout_w64: np.ndarray  # W_L in float64
    # For the tail shortcut (None: unknown activation, use the backend): every layer's
    # (W, b) in float64, the test-time factor of every unit layer (input first), and f.
    weights64: list[tuple[np.ndarray, np.ndarray]] | None = None
    scales: list[float] | None = None
    activation: str | None = None

    @classmethod
    def build(cls, network, plan: DropoutPlan, test_scales: Sequence[float], x: np.ndarray,
              y: np.ndarray, n_classes: int, activation: str | None = None) -> Probe:
        """One evaluation-mode pass through the backend, plus the read-out weights.
        ``activation`` (``relu``/``tanh``; default: the network's ``spec.activation`` when
        it has one) enables the tail shortcut for earlier layers."""
        parts = [network.forward(x[s : s + CHUNK], return_hidden=True)
                 for s in range(0, len(x), CHUNK)]
        logits = np.concatenate([np.asarray(p[0], dtype=np.float64) for p in parts])
        n_hidden = len(parts[0][1])
        hidden = [np.concatenate([np.asarray(p[1][k]) for p in parts]) for k in range(n_hidden)]
        weights = network.get_weights()
        w, b = (np.asarray(a) for a in weights[-1])
        scales = [float(s) for s in (list(test_scales) or [1.0] * (n_hidden + 1))]
        scale = scales[n_hidden]
        if activation is None:
            activation = getattr(getattr(network, "spec", None), "activation", None)
        weights64 = [(np.asarray(W, dtype=np.float64), np.asarray(bb, dtype=np.float64))
                     for W, bb in weights]
        # The read-out shortcut subtracts from these recomputed logits (not from the backend's),
        # so every logit of a pair-synergy comparison carries the same rounding.
        h64, w64 = hidden[-1].astype(np.float64), w.astype(np.float64)
        readout = (h64 * scale) @ w64 + b.astype(np.float64)
        return cls(network, plan, x, np.asarray(y), n_classes, logits, hidden, w, b, scale,
                   readout, h64, w64, weights64, scales,
                   activation if activation in ("relu", "tanh") else None)

    @property
    def n_hidden(self) -> int:
        return len(self.hidden)

    @property
    def widths(self) -> list[int]:
        return [h.shape[1] for h in self.hidden]

    # -- ablation: clamp hidden units to zero in evaluation mode -----------------------------
    def logits_without(self, drop: Sequence[np.ndarray | Sequence[int] | None]) -> np.ndarray:
        """Evaluation-mode logits (float64) with ``drop[l]`` (unit indices) of hidden layer
        l+1 clamped to zero; ``drop`` has one entry per hidden layer (None = keep all)."""
        drop = [None if d is None or len(d) == 0 else np.asarray(d, dtype=np.intp) for d in drop]
        if all(d is None for d in drop[:-1]):
            units = drop[-1]
            if units is None:
                return self.readout.copy()
            # Removing units S of the last layer: logits - s_L * h_L[:, S] @ W_L[S, :].
            removed = self.hidden64[:, units] @ self.readout_w64[units]
            return self.readout - self.readout_scale * removed
        ablate = []
        for d, width in zip(drop, self.widths, strict=True):
            mask = None
            if d is not None:
                mask = np.ones(width, dtype=self.hidden[0].dtype)
                mask[d] = 0
            ablate.append(mask)
        return self._forward(ablate=ablate)

    def logits_without_each(self, layer: int, unit_sets: Sequence[Sequence[int]]) -> np.ndarray:
        """(S, N, C) float64: logits with each set of units of hidden layer ``layer`` (0-based)
        clamped to zero in turn, the other layers intact.

        For the last layer the removals are linear in the read-out, so all sets are done at
        once: delta_u = s_L h_L[:, u] (outer) W_L[u, :], and set k subtracts sum_{u in k} delta_u
        (a gather of the stacked deltas)."""
        if layer != self.n_hidden - 1 and self.has_tail:
            return self.tail_logits_each(layer, unit_sets)
        if layer != self.n_hidden - 1:
            drop: list = [None] * self.n_hidden
            out = []
            for units in unit_sets:
                drop[layer] = list(units)
                out.append(self.logits_without(drop))
            return np.stack(out) if out else np.empty((0, *self.logits.shape))
        units = sorted({int(u) for s in unit_sets for u in s})
        col = {u: k for k, u in enumerate(units)}
        width = max(len(s) for s in unit_sets)
        # Row len(units) of the stacked deltas is zero: it pads the shorter sets.
        index = np.full((len(unit_sets), width), len(units), dtype=np.intp)
        for k, s in enumerate(unit_sets):
            index[k, : len(s)] = [col[int(u)] for u in s]
        n, c = self.readout.shape
        deltas = np.zeros((len(units) + 1, n, c))
        np.multiply(self.hidden64[:, units].T[:, :, None], self.readout_w64[units][:, None, :],
                    out=deltas[:-1])
        deltas *= self.readout_scale
        return self.readout[None] - deltas[index].sum(axis=1)

    # -- the tail shortcut: ablate units of an earlier layer, recompute only the layers above --
    @property
    def has_tail(self) -> bool:
        """True when the tail shortcut can run (the activation and the weights are known)."""
        return self.activation is not None and self.weights64 is not None

    def tail_logits(self, layer: int, units: Sequence[int] = ()) -> np.ndarray:
        """(N, C) float64 evaluation-mode logits with ``units`` of hidden layer ``layer``
        (0-based) clamped to zero, recomputed from that layer up in float64 (``units`` empty:
        the unablated logits of the same path, the reference every ablation of this layer is
        compared with, so that every term carries the same rounding)."""
        return self.tail_logits_each(layer, [units])[0]

    def tail_logits_each(self, layer: int, unit_sets: Sequence[Sequence[int]]) -> np.ndarray:
        """(S, N, C): :meth:`tail_logits` for each set of ``unit_sets``. Rows go in blocks of
        TAIL_ROWS so that the next layer's pre-activation of a block, computed once and
        shared by every set, stays in cache while the sets are applied to it."""
        assert self.weights64 is not None and self.scales is not None
        W_next, b_next = self.weights64[layer + 1]
        s_l = self.scales[layer + 1]
        index = [np.asarray(list(u), dtype=np.intp) for u in unit_sets]
        n = len(self.x)
        out = np.empty((len(index), n, len(self.readout_b)))
        for r in range(0, n, TAIL_ROWS):
            h = self.hidden[layer][r : r + TAIL_ROWS].astype(np.float64)
            z = (h * s_l) @ W_next + b_next  # z_{l+1} = (h_l s_l) W_{l+1} + b_{l+1}
            for k, idx in enumerate(index):
                # z_{l+1}' = z_{l+1} - s_l h_l[:, S] W_{l+1}[S, :]   (rank |S|)
                z_k = z - s_l * (h[:, idx] @ W_next[idx]) if len(idx) else z
                out[k, r : r + TAIL_ROWS] = self._layers_above(layer + 1, z_k)
        return out

    def _layers_above(self, first: int, z: np.ndarray) -> np.ndarray:
        """Logits from the pre-activation ``z`` of hidden layer ``first`` (0-based): f, then
        each layer above with its test-time factor, then the read-out."""
        assert self.weights64 is not None and self.scales is not None
        for k in range(first, self.n_hidden):
            h = np.maximum(z, 0.0) if self.activation == "relu" else np.tanh(z)
            W, b = self.weights64[k + 1]
            z = (h * self.scales[k + 1]) @ W + b
        return z

    # -- Monte Carlo dropout -----------------------------------------------------------------
    @property
    def stochastic(self) -> bool:
        """False when every rate is 0: a Monte Carlo pass equals the deterministic one."""
        return self.plan.active

    @property
    def noise_only_in_readout(self) -> bool:
        """True when dropout noise can touch only the last hidden layer (and W_L)."""
        return all(r <= 0 for r in self.plan.rates[:-1])

    def mc_logits(self, rng: np.random.Generator, passes: int = 1) -> np.ndarray:
        """(passes, N, C) float64 logits of Monte Carlo dropout passes: training-mode noise
        drawn from the plan with ``rng``, no weight update. Call only when :attr:`stochastic`.

        Each pass draws its own noise, one ``plan.sample`` per pass (a dropconnect mask is one
        per call), so pass t sees the same masks however the passes are grouped."""
        n = len(self.x)
        if not self.noise_only_in_readout:
            return np.stack([self._forward(noise=self.plan.sample(rng, n))
                             for _ in range(passes)])
        h, w, b = self.hidden[-1], self.readout_w, self.readout_b
        out = np.empty((passes, n, len(b)))
        for t in range(passes):  # one pass at a time: h * r_t stays in cache
            noise = self.plan.sample(rng, n)
            r, m = noise.units[-1], noise.weights[-1]
            z = (h if r is None else h * r) @ (w if m is None else w * m)  # (h r_t)(W M_t)
            np.add(z, b, out=out[t])
        return out

    def _forward(self, noise: Noise | None = None, ablate: list | None = None,
                 x: np.ndarray | None = None) -> np.ndarray:
        """Backend forward over ``x`` (default: the sample) in chunks; noise rows are sliced
        with the chunk, so the random draws do not depend on the chunk size."""
        x = self.x if x is None else x
        out = []
        for s in range(0, len(x), CHUNK):
            e = s + CHUNK
            part = None
            if noise is not None:
                part = Noise([None if u is None else u[s:e] for u in noise.units], noise.weights)
            out.append(np.asarray(self.network.forward(x[s:e], noise=part, ablate=ablate),
                                  dtype=np.float64))
        return np.concatenate(out)
