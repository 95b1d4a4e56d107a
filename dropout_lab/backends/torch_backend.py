"""The PyTorch backend: the NumPy reference's math, line for line, on a torch device.

Same notation as :mod:`dropout_lab.backends.numpy_backend` (layer l = 0..L-1; the code writes
the index l as ``i``):

    a_0 = x * r_0;   z_l = a_l @ W'_l + b_l;   h_l = f(z_l);   a_{l+1} = h_l * r_{l+1}
    g_{L-1} = (softmax(z_{L-1}) - onehot(y)) / N
    dW'_l = a_l^T g_l,  db_l = sum_n g_l,  dW_l = dW'_l * M_l (dropconnect)
    g_{l-1} = ((g_l @ W'_l^T) * r_l) * f'(z_{l-1})

The backward pass is written by hand rather than left to autograd: it mirrors the reference
(so the conformance suite can hold the two to 1e-5), and it skips autograd's graph
bookkeeping, which dominates a step for the small MLPs dropout-lab trains. The noise arrays
come from :mod:`dropout_lab.dropout` (NumPy) and are only wrapped (``torch.from_numpy``, no
copy on the CPU) or copied to the device: given a seed, both backends see identical masks.

This module is the only place dropout-lab imports torch; the registry imports it lazily.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from dropout_lab.backends.base import FLUSH_BELOW, FLUSH_EVERY, NetSpec, Weights
from dropout_lab.config import TrainConfig
from dropout_lab.dropout import Noise
from dropout_lab.errors import BackendError

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


class TorchNetwork:
    """An MLP on one torch device. Inputs and outputs are NumPy arrays, as the Protocol says."""

    def __init__(self, spec: NetSpec, weights: Weights, train: TrainConfig, device: str):
        self.spec = spec
        self.device = torch.device(device)
        self.np_dtype = np.dtype(spec.dtype)
        self.dtype = _DTYPES[spec.dtype]
        # Copies: the caller's NumPy weights are never aliased (nor mutated by training).
        self.W = [self._tensor(np.array(w, dtype=self.np_dtype)) for w, _ in weights]
        self.b = [self._tensor(np.array(b, dtype=self.np_dtype)) for _, b in weights]
        self.train = train
        # The optimizer's hyperparameters of the current epoch (see set_hyperparameters).
        self.lr, self.momentum = float(train.lr), float(train.momentum)
        self.test_scales = list(spec.test_scales) or [1.0] * (len(spec.sizes) - 1)
        self._relu = spec.activation == "relu"
        # Optimizer state, as in the reference: momentum velocity, or Adam's two moments.
        self._m = [torch.zeros_like(p) for p in self.W + self.b]
        adam = train.optimizer == "adam"
        self._v = [torch.zeros_like(p) for p in self.W + self.b] if adam else []
        self._t = 0
        self._steps = 0  # optimizer steps taken (for the periodic flush of tiny state)

    # -- NumPy <-> torch ----------------------------------------------------------------------
    def _tensor(self, a: np.ndarray | None) -> torch.Tensor | None:
        """A tensor of the network's dtype on its device; on the CPU it shares ``a``'s memory."""
        if a is None:
            return None
        a = np.ascontiguousarray(a, dtype=self.np_dtype)
        t = torch.from_numpy(a)
        # A blocking copy: DropoutPlan reuses its noise buffers for the next step.
        return t if self.device.type == "cpu" else t.to(self.device)

    def _noise(self, noise: Noise | None) -> tuple[list, list] | None:
        if noise is None:
            return None
        return [self._tensor(r) for r in noise.units], [self._tensor(m) for m in noise.weights]

    def _labels(self, y: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
        return t if self.device.type == "cpu" else t.to(self.device)

    def _numpy(self, t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    # -- forward ------------------------------------------------------------------------------
    def _act_(self, z: torch.Tensor) -> torch.Tensor:
        """f(z) in place: ReLU or tanh."""
        return z.clamp_(min=0) if self._relu else z.tanh_()

    def _forward_train(self, x: torch.Tensor, units: list | None, masks: list | None):
        """Forward pass keeping what backward needs: inputs a_l, effective W'_l, outputs h_l."""
        r0 = None if units is None else units[0]
        a = x if r0 is None else x * r0
        inputs, weights, hidden = [], [], []
        last = len(self.W) - 1
        for i, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            M = None if masks is None else masks[i]
            Weff = W if M is None else W * M  # W'_l = W_l * M_l (dropconnect)
            z = torch.addmm(b, a, Weff)  # z_l = a_l @ W'_l + b_l
            inputs.append(a)
            weights.append(Weff)
            if i == last:
                return z, inputs, weights, hidden
            h = self._act_(z)
            hidden.append(h)
            r = None if units is None else units[i + 1]
            a = h if r is None else h * r  # a_{l+1} = h_l * r_{l+1}
        raise AssertionError("unreachable")

    @torch.no_grad()
    def forward(self, x, noise=None, ablate=None, return_hidden=False):
        a = self._tensor(np.asarray(x))
        eval_mode = noise is None
        if eval_mode:
            units, masks = None, None
            if self.test_scales[0] != 1.0:  # standard dropout: a_0 = (1 - p_in) x at test time
                a = a * self.test_scales[0]
        else:
            units, masks = self._noise(noise)
            if units[0] is not None:
                a = a * units[0]
        hidden = []
        last = len(self.W) - 1
        for i, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            M = None if masks is None else masks[i]
            z = torch.addmm(b, a, W if M is None else W * M)
            if i == last:
                logits = self._numpy(z)
                return (logits, hidden) if return_hidden else logits
            h = self._act_(z)
            if ablate is not None and ablate[i] is not None:
                h *= self._tensor(ablate[i])
            if return_hidden:
                hidden.append(self._numpy(h).copy())
            if eval_mode:
                s = self.test_scales[i + 1]
                a = h * s if s != 1.0 else h  # standard dropout: (1 - p) h at test time
            else:
                r = units[i + 1]
                a = h if r is None else h * r
        raise AssertionError("unreachable")

    # -- backward -----------------------------------------------------------------------------
    @torch.no_grad()
    def _loss_and_grads(self, x: np.ndarray, y: np.ndarray, noise: Noise | None
                        ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        xt, yt = self._tensor(np.asarray(x)), self._labels(y)
        units, masks = self._noise(noise) or (None, None)
        z, inputs, weights, hidden = self._forward_train(xt, units, masks)
        n = xt.shape[0]
        rows = torch.arange(n, device=self.device)
        logp = torch.log_softmax(z, dim=1)
        loss = -logp[rows, yt].mean()  # mean cross-entropy
        g = logp.exp_()  # softmax(z); g = (softmax - onehot(y)) / N
        g[rows, yt] -= 1.0
        g /= n
        grads: list = [None] * len(self.W)
        for i in range(len(self.W) - 1, -1, -1):
            dW = inputs[i].T @ g  # dW'_l = a_l^T g_l
            if masks is not None and masks[i] is not None:
                dW *= masks[i]  # dW_l = dW'_l * M_l
            grads[i] = (dW, g.sum(dim=0))
            if i == 0:
                break
            g = g @ weights[i].T  # g_{l-1} = (g_l @ W'_l^T) * r_l * f'(z_{l-1})
            if units is not None and units[i] is not None:
                g *= units[i]
            h = hidden[i - 1]
            if self._relu:
                # g * ReLU'(z) = g * 1[h > 0], as aten's fused ReLU backward (one kernel)
                g = torch.ops.aten.threshold_backward(g, h, 0.0)
            else:
                g *= 1.0 - h * h  # tanh' = 1 - tanh^2
        return loss, grads

    def loss_and_grads(self, x, y, noise):
        loss, grads = self._loss_and_grads(x, y, noise)
        return float(loss), [(self._numpy(dW), self._numpy(db)) for dW, db in grads]

    # -- optimizer ----------------------------------------------------------------------------
    def train_step(self, x, y, noise):
        loss, grads = self._loss_and_grads(x, y, noise)
        self._apply(grads)
        self._steps += 1
        if self._steps % FLUSH_EVERY == 0:
            self._flush_tiny_state()
        return float(loss)

    @torch.no_grad()
    def _flush_tiny_state(self) -> None:
        """Zero optimizer-state entries below FLUSH_BELOW x the smallest normal float, as the
        reference does, so none becomes subnormal (see FLUSH_EVERY in backends/base.py)."""
        tiny = torch.finfo(self.dtype).tiny * FLUSH_BELOW
        for t in self._m + self._v:
            t.masked_fill_(t.abs() < tiny, 0.0)

    @torch.no_grad()
    def _apply(self, grads: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """SGD / momentum / Adam with coupled L2 weight decay (weights only), as torch.optim
        defines them and as the NumPy reference writes them out."""
        t = self.train
        params = self.W + self.b
        gs = [g for g, _ in grads] + [g for _, g in grads]
        n_weights = len(self.W)
        wd, lr = t.weight_decay, self.lr
        # torch._foreach_* ops update every tensor of a list in one call (as torch.optim's
        # foreach implementations do): no per-parameter Python loop, one dispatch per formula.
        if wd:  # g <- g + wd * W: the gradient of (wd/2)|W|^2, never of the biases
            torch._foreach_add_(gs[:n_weights], self.W, alpha=wd)
        if t.optimizer == "sgd":
            torch._foreach_add_(params, gs, alpha=-lr)  # W <- W - lr g
        elif t.optimizer == "momentum":
            torch._foreach_mul_(self._m, self.momentum)
            torch._foreach_add_(self._m, gs)  # v <- mu v + g
            torch._foreach_add_(params, self._m, alpha=-lr)  # W <- W - lr v
        else:
            self._t += 1
            b1, b2 = ADAM_BETAS
            c1 = 1.0 - b1**self._t
            c2_sqrt = (1.0 - b2**self._t) ** 0.5
            torch._foreach_mul_(self._m, b1)
            torch._foreach_add_(self._m, gs, alpha=1 - b1)  # m <- b1 m + (1 - b1) g
            torch._foreach_mul_(self._v, b2)
            torch._foreach_addcmul_(self._v, gs, gs, value=1 - b2)  # v <- b2 v + (1 - b2) g^2
            denom = torch._foreach_sqrt(self._v)
            torch._foreach_div_(denom, c2_sqrt)
            torch._foreach_add_(denom, ADAM_EPS)  # sqrt(v / (1 - b2^t)) + eps
            # W <- W - lr/(1 - b1^t) * m / denom
            torch._foreach_addcdiv_(params, self._m, denom, value=-lr / c1)
        if t.max_norm is not None:
            for W in self.W:
                # Each unit's incoming weights are a column of W: rescale columns over the cap.
                norms = torch.linalg.vector_norm(W, dim=0)
                scale = torch.where(norms > t.max_norm, t.max_norm / norms,
                                    torch.ones_like(norms))
                W.mul_(scale)

    def set_hyperparameters(self, lr: float, momentum: float) -> None:
        self.lr, self.momentum = float(lr), float(momentum)

    def get_weights(self) -> Weights:
        return [(self._numpy(W).copy(), self._numpy(b).copy())
                for W, b in zip(self.W, self.b, strict=True)]


class TorchBackend:
    name = "torch"

    def resolve_device(self, device: str) -> str:
        """``auto`` -> ``cuda`` when a CUDA GPU is visible, else ``cpu``; anything asked for
        explicitly must exist, or a one-line BackendError says why and what to use instead."""
        if not _DEVICE_RE.match(device):
            raise BackendError(f"unknown device {device!r} for the torch backend "
                               "(use one of: auto, cpu, cuda, cuda:N, mps)")
        if device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu":
            return "cpu"
        if device == "mps":
            if not torch.backends.mps.is_available():
                raise BackendError(f"device 'mps' is not available: torch {torch.__version__} "
                                   "reports no Apple MPS device; use device: cpu or auto")
            return "mps"
        if not torch.cuda.is_available():
            raise BackendError(f"device {device!r} is not available: torch {torch.__version__} "
                               "reports no CUDA GPU; use device: cpu or auto")
        if ":" in device:
            index, count = int(device.split(":")[1]), torch.cuda.device_count()
            if index >= count:
                raise BackendError(f"device {device!r} is not available: torch reports {count} "
                                   f"CUDA GPU(s) (cuda:0 to cuda:{count - 1})")
        return device

    def set_threads(self, n: int) -> None:
        # Intra-op threads (the matrix products), the counterpart of the BLAS limit NumPy gets.
        torch.set_num_threads(n)

    def versions(self) -> dict[str, str]:
        out = {"torch": torch.__version__, "numpy": np.__version__}
        if torch.version.cuda and torch.cuda.is_available():
            out["cuda"] = torch.version.cuda
        return out

    def build(self, spec: NetSpec, weights: Weights, train: TrainConfig, device: str
              ) -> TorchNetwork:
        if spec.dtype not in _DTYPES:
            raise BackendError(f"the torch backend has no dtype {spec.dtype!r}")
        resolved = self.resolve_device(device)
        if resolved == "mps" and spec.dtype == "float64":
            raise BackendError("device 'mps' has no float64; use dtype: float32 or device: cpu")
        return TorchNetwork(spec, weights, train, resolved)
