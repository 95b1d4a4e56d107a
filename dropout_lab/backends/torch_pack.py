"""K networks of one architecture as one: the torch primitives with a leading member axis.

:class:`TorchPackNetwork` is the same skeleton (:class:`~dropout_lab.backends.mlp.MLP`, the
layer loop, the backward pass, the modes) filled with stacked primitives: every weight
W_l has shape (K, in, out), every bias (K, out), every activation (K, batch, units), and the
products are batched (``baddbmm``/``bmm``: member k's product is its own gemm). What may
differ between members are per-member scalars held as broadcast tensors: the learning rate
and momentum of the epoch, weight decay, the max-norm cap (inf: none) and the test-time
scales. The optimizer formulas are :mod:`~dropout_lab.backends.mlp`'s, with those tensors:

    g <- g + wd_k W;   sgd: W <- W - lr_k g;   momentum: v <- mu_k v + g;  W <- W - lr_k v
    adam: m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
          W <- W - lr_k / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)

Members never mix: no operation reduces over the member axis, so a member whose weights turn
NaN leaves the others' numbers unchanged; :meth:`TorchPackNetwork.keep_members` drops
finished or diverged members from the stack (their slices are sliced away, nothing else moves).
"""

from __future__ import annotations

import numpy as np
import torch

from dropout_lab.backends.base import NetSpec, Weights
from dropout_lab.backends.mlp import ADAM_BETAS, ADAM_EPS, Grads
from dropout_lab.backends.torch_backend import TorchNetwork
from dropout_lab.specs.backends import OptimizerSpec


class TorchPackNetwork(TorchNetwork):
    """K MLPs of one architecture on one torch device, trained as one.

    ``weights[k]`` and ``trains[k]`` are member k's initial weights and training config
    (only ``optimizer`` must agree); ``test_scales[k]`` its factors per unit layer."""

    def __init__(self, spec: NetSpec, weights: list[Weights], trains: list[OptimizerSpec],
                 test_scales: list[list[float]], device: str) -> None:
        if len({t.optimizer for t in trains}) != 1:
            raise ValueError("the members of a pack share one optimizer")
        self.k = len(weights)
        stacked: Weights = [
            (np.stack([w[l][0] for w in weights]), np.stack([w[l][1] for w in weights]))
            for l in range(len(weights[0]))
        ]
        super().__init__(NetSpec(spec.sizes, spec.activation, spec.dtype), stacked, trains[0],
                         device)
        self.trains = list(trains)
        self._member_scales = np.asarray(test_scales, dtype=np.float64)  # (K, unit layers)
        self._set_members()

    # -- per-member scalars -------------------------------------------------------------------
    def _column(self, values: np.ndarray | list[float], ndim: int) -> torch.Tensor:
        """One value per member, shaped (K, 1, ...) to broadcast over an ndim-array."""
        t = torch.as_tensor(np.array(values, dtype=np.float64), dtype=self.dtype,
                            device=self.device)
        return t.reshape(-1, *[1] * (ndim - 1))

    def _set_members(self) -> None:
        """The per-member tensors of the current members (after building or keep_members)."""
        trains = self.trains
        self._wd = self._column([t.weight_decay for t in trains], 3)
        caps = [np.inf if t.max_norm is None else t.max_norm for t in trains]
        self._capped = any(t.max_norm is not None for t in trains)
        self._cap = self._column(caps, 2)
        self._scales = [self._column(self._member_scales[:, l], 3)
                        for l in range(self._member_scales.shape[1])]
        self._unscaled = [bool(np.all(self._member_scales[:, l] == 1.0))
                          for l in range(self._member_scales.shape[1])]
        self.set_hyperparameters([t.lr for t in trains], [t.momentum for t in trains])

    def set_hyperparameters(self, lr: float | list[float] | np.ndarray,
                            momentum: float | list[float] | np.ndarray) -> None:
        """Each member's learning rate and momentum for the steps that follow."""
        lrs = np.broadcast_to(np.asarray(lr, dtype=np.float64), (self.k,))
        mus = np.broadcast_to(np.asarray(momentum, dtype=np.float64), (self.k,))
        self.lrs, self.momenta = lrs.copy(), mus.copy()
        self._lr = [self._column(-lrs, 3), self._column(-lrs, 2)]  # -lr, weights / biases
        self._mu = [self._column(mus, 3), self._column(mus, 2)]

    def keep_members(self, keep: list[int]) -> None:
        """Keep only members ``keep`` (indices into the current members, in order): every
        stacked tensor and per-member scalar is sliced; the kept members' numbers are
        unchanged."""
        idx = torch.as_tensor(keep, dtype=torch.int64, device=self.device)

        def pick(ts: list[torch.Tensor]) -> list[torch.Tensor]:
            return [t.index_select(0, idx) for t in ts]

        self.W, self.b, self._m, self._dW = pick(self.W), pick(self.b), pick(self._m), pick(
            self._dW)
        self._v = pick(self._v)
        lrs, mus = self.lrs[keep], self.momenta[keep]
        self.trains = [self.trains[i] for i in keep]
        self._member_scales = self._member_scales[keep]
        self.k = len(keep)
        self._set_members()
        self.set_hyperparameters(lrs, mus)

    def member_weights(self, k: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Member k's weights and biases (views into the stack, valid until keep_members)."""
        return [W[k] for W in self.W], [b[k] for b in self.b]

    # -- stacked products (one gemm per member) -----------------------------------------------
    def _addmm(self, b: torch.Tensor, a: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        if a.dim() == 2:  # one input for every member (evaluation)
            a = a.expand(self.k, *a.shape)
        return torch.baddbmm(b.unsqueeze(1), a, W)  # z_k = a_k @ W_k + b_k

    def _matmul_tn(self, a: torch.Tensor, g: torch.Tensor, out: torch.Tensor | None,
                   beta: float = 0.0) -> torch.Tensor:
        if beta:
            assert out is not None, "beta needs out"
            return out.baddbmm_(a.transpose(1, 2), g, beta=beta)
        at = a.transpose(1, 2)
        return torch.bmm(at, g) if out is None else torch.bmm(at, g, out=out)

    def _matmul_nt(self, g: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        return torch.bmm(g, W.transpose(1, 2))

    # -- loss, reductions over examples (never over members) ----------------------------------
    def _softmax_xent(self, z: torch.Tensor, y: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss per member (K,), g) for logits (K, N, C) and labels (K, N)."""
        n = z.shape[1]
        logp = torch.log_softmax(z, dim=2)
        picked = logp.gather(2, y.unsqueeze(2)).squeeze(2)  # log p(y_n) per member
        loss = -picked.mean(dim=1)
        g = logp.exp_()  # softmax(z); g = (softmax - onehot(y)) / N
        g.scatter_add_(2, y.unsqueeze(2), torch.full_like(picked, -1.0).unsqueeze(2))
        g /= n
        return loss, g

    def _sum_rows(self, g: torch.Tensor) -> torch.Tensor:
        return g.sum(dim=1)

    def _column_norms(self, W: torch.Tensor) -> torch.Tensor:
        norms: torch.Tensor = torch.linalg.vector_norm(W, dim=1)  # (K, out)
        return norms

    def _rescale_columns_(self, W: torch.Tensor, norms: torch.Tensor, cap: float) -> None:
        # cap is the per-member tensor (K, 1): inf for a member without max-norm
        caps = self._cap
        W.mul_(torch.where(norms > caps, caps / norms, torch.ones_like(norms)).unsqueeze(1))

    def _apply_max_norm(self) -> None:
        if self._capped:
            for W in self.W:
                self._rescale_columns_(W, self._column_norms(W), 0.0)

    def _test_scale(self, a: torch.Tensor, layer: int) -> torch.Tensor:
        if self._unscaled[layer]:
            return a
        return a * self._scales[layer] if a.dim() == 3 else a.unsqueeze(0) * self._scales[layer]

    # -- the optimizer with per-member scalars ------------------------------------------------
    def _optimizer_step(self, grads: Grads[torch.Tensor]) -> None:
        opt, L = self.train.optimizer, self.n_layers
        params = self.W + self.b
        gs = [g for g, _ in grads] + [g for _, g in grads]
        for i, (p, g) in enumerate(zip(params, gs, strict=True)):
            kind = 0 if i < L else 1  # weights (K, in, out) or biases (K, out)
            neg_lr = self._lr[kind]
            if i < L:
                g.addcmul_(p, self._wd)  # g <- g + wd W: weights, not biases
            if opt == "sgd":
                p.addcmul_(g, neg_lr)  # W <- W - lr g
            elif opt == "momentum":
                v = self._m[i]
                v.mul_(self._mu[kind]).add_(g)  # v <- mu v + g
                p.addcmul_(v, neg_lr)  # W <- W - lr v
            else:
                b1, b2 = ADAM_BETAS
                c1 = 1.0 - b1**self.t
                c2_sqrt = (1.0 - b2**self.t) ** 0.5
                m, v = self._m[i], self._v[i]
                m.mul_(b1).add_(g, alpha=1 - b1)  # m <- b1 m + (1 - b1) g
                v.mul_(b2).addcmul_(g, g, value=1 - b2)  # v <- b2 v + (1 - b2) g^2
                denom = v.sqrt().div_(c2_sqrt).add_(ADAM_EPS)  # sqrt(v / (1 - b2^t)) + eps
                p.addcmul_(m.div(denom), neg_lr / c1)  # W <- W - lr/(1 - b1^t) m / denom
