"""The NumPy reference backend: an MLP whose forward and backward passes read like the math.

Notation, for layer l = 0..L-1 (L = number of weight matrices, hidden layers 1..L-1):

    a_0 = x * r_0                          (input dropout noise r_0, if any)
    z_l = a_l @ W'_l + b_l                 (W'_l = W_l * M_l under dropconnect, else W_l)
    h_l = f(z_l)                           (f = ReLU or tanh, for l < L-1)
    a_{l+1} = h_l * r_{l+1}                (unit dropout noise, if any)
    loss = mean_n [ logsumexp(z_{L-1}) - z_{L-1}[y] ]

and backward, with g = dloss/dz:

    g_{L-1} = (softmax(z_{L-1}) - onehot(y)) / N
    dW'_l = a_l^T g_l,  db_l = sum_n g_l,  dW_l = dW'_l * M_l (dropconnect)
    g_{l-1} = ((g_l @ W'_l^T) * r_l) * f'(z_{l-1})

Noise comes from :mod:`dropout_lab.dropout`; this module only multiplies.
"""

from __future__ import annotations

import numpy as np

from dropout_lab.backends.base import NetSpec, Weights
from dropout_lab.config import TrainConfig
from dropout_lab.dropout import Noise
from dropout_lab.errors import BackendError


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class NumpyNetwork:
    def __init__(self, spec: NetSpec, weights: Weights, train: TrainConfig):
        self.spec = spec
        self.dtype = np.dtype(spec.dtype)
        self.W = [np.array(w, dtype=self.dtype) for w, _ in weights]
        self.b = [np.array(b, dtype=self.dtype) for _, b in weights]
        self.train = train
        self.test_scales = list(spec.test_scales) or [1.0] * (len(spec.sizes) - 1)
        self._relu = spec.activation == "relu"
        # Optimizer state: momentum velocity, or Adam's first/second moments.
        self._m = [np.zeros_like(p) for p in self.W + self.b]
        self._v = [np.zeros_like(p) for p in self.W + self.b] if train.optimizer == "adam" else []
        self._t = 0
        self._tmp: list[np.ndarray] = []  # scratch for weight decay and Adam, made on first use

    # -- forward ------------------------------------------------------------------------------
    def _act(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0, out=z) if self._relu else np.tanh(z, out=z)

    def _forward_train(self, x: np.ndarray, noise: Noise | None):
        """Forward pass keeping what backward needs: inputs a_l, effective W'_l, outputs h_l."""
        a = x if noise is None or noise.units[0] is None else x * noise.units[0]
        inputs, weights, hidden = [], [], []
        last = len(self.W) - 1
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            M = None if noise is None else noise.weights[l]
            Weff = W if M is None else W * M
            z = a @ Weff
            z += b
            inputs.append(a)
            weights.append(Weff)
            if l == last:
                return z, inputs, weights, hidden
            h = self._act(z)
            hidden.append(h)
            r = None if noise is None else noise.units[l + 1]
            a = h if r is None else h * r
        raise AssertionError("unreachable")

    def forward(self, x, noise=None, ablate=None, return_hidden=False):
        x = np.asarray(x, dtype=self.dtype)
        eval_mode = noise is None
        s0 = self.test_scales[0] if eval_mode else 1.0
        a = x * self.dtype.type(s0) if s0 != 1.0 else x
        if not eval_mode and noise.units[0] is not None:
            a = a * noise.units[0]
        hidden = []
        last = len(self.W) - 1
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            M = None if eval_mode else noise.weights[l]
            z = a @ (W if M is None else W * M)
            z += b
            if l == last:
                return (z, hidden) if return_hidden else z
            h = self._act(z)
            if ablate is not None and ablate[l] is not None:
                h *= ablate[l]
            if return_hidden:
                hidden.append(h.copy())
            if eval_mode:
                s = self.test_scales[l + 1]
                a = h * self.dtype.type(s) if s != 1.0 else h
            else:
                r = noise.units[l + 1]
                a = h if r is None else h * r
        raise AssertionError("unreachable")

    # -- backward -----------------------------------------------------------------------------
    def loss_and_grads(self, x, y, noise):
        x = np.asarray(x, dtype=self.dtype)
        z, inputs, weights, hidden = self._forward_train(x, noise)
        n = x.shape[0]
        logp = log_softmax(z)
        loss = float(-logp[np.arange(n), y].mean())
        g = np.exp(logp)  # softmax
        g[np.arange(n), y] -= 1.0
        g /= n
        grads: Weights = [None] * len(self.W)  # type: ignore[list-item]
        for l in range(len(self.W) - 1, -1, -1):
            dW = inputs[l].T @ g
            M = None if noise is None else noise.weights[l]
            if M is not None:
                dW *= M
            grads[l] = (dW, g.sum(axis=0))
            if l == 0:
                break
            g = g @ weights[l].T
            r = None if noise is None else noise.units[l]
            if r is not None:
                g *= r
            h = hidden[l - 1]
            if self._relu:
                g *= h > 0
            else:
                g *= 1.0 - h * h
        return loss, grads

    # -- optimizer ----------------------------------------------------------------------------
    def train_step(self, x, y, noise):
        loss, grads = self.loss_and_grads(x, y, noise)
        self._apply(grads)
        return loss

    def _apply(self, grads: Weights) -> None:
        """SGD / momentum / Adam with coupled L2 weight decay, as torch.optim defines them.

        The gradient arrays are this step's own (fresh from loss_and_grads), so they double as
        scratch space: with ``out=`` and in-place operators a step allocates nothing the size
        of the weights (allocating and first-touching megabytes each step is what made this
        slower than torch's fused updates)."""
        t = self.train
        params = self.W + self.b
        gs = [g for g, _ in grads] + [g for _, g in grads]
        wd = t.weight_decay
        lr = t.lr
        if (wd or t.optimizer == "adam") and not self._tmp:
            self._tmp = [np.empty_like(p) for p in params]
        if t.optimizer == "adam":
            self._t += 1
            b1, b2, eps = 0.9, 0.999, 1e-8
            c1 = 1.0 - b1**self._t
            c2_sqrt = np.sqrt(1.0 - b2**self._t)
        for i, (p, g) in enumerate(zip(params, gs, strict=True)):
            if wd and i < len(self.W):  # g <- g + wd W: decay weights, not biases
                g += np.multiply(p, wd, out=self._tmp[i])
            if t.optimizer == "sgd":
                g *= lr
                p -= g  # W <- W - lr g
            elif t.optimizer == "momentum":
                m = self._m[i]
                m *= t.momentum
                m += g  # v <- mu v + g
                p -= np.multiply(m, lr, out=g)  # W <- W - lr v
            else:
                m, v, s = self._m[i], self._v[i], self._tmp[i]
                m *= b1
                m += np.multiply(g, 1 - b1, out=s)  # m <- b1 m + (1 - b1) g
                v *= b2
                np.multiply(g, g, out=s)
                v += np.multiply(s, 1 - b2, out=s)  # v <- b2 v + (1 - b2) g^2
                denom = np.sqrt(v, out=s)
                denom /= c2_sqrt
                denom += eps  # sqrt(v / (1 - b2^t)) + eps
                step = np.divide(m, denom, out=g)
                step *= lr / c1
                p -= step  # W <- W - lr / (1 - b1^t) * m / denom
        if t.max_norm is not None:
            for W in self.W:
                # Each unit's incoming weights are a column of W: rescale columns over the cap.
                # (einsum: the squared column norms without a W-sized temporary)
                norms = np.sqrt(np.einsum("ij,ij->j", W, W))
                over = norms > t.max_norm
                if over.any():
                    W[:, over] *= (t.max_norm / norms[over]).astype(W.dtype)

    def get_weights(self) -> Weights:
        return [(W.copy(), b.copy()) for W, b in zip(self.W, self.b)]


class NumpyBackend:
    name = "numpy"

    def resolve_device(self, device: str) -> str:
        if device in ("auto", "cpu"):
            return "cpu"
        raise BackendError(f"the numpy backend runs on the CPU only; device {device!r} is not "
                           "available (use backend: torch for cuda/mps)")

    def set_threads(self, n: int) -> None:
        from threadpoolctl import threadpool_limits

        # Kept on the instance: the limit holds for this process for the backend's lifetime.
        self._limits = threadpool_limits(limits=n)

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def build(self, spec: NetSpec, weights: Weights, train: TrainConfig, device: str) -> NumpyNetwork:
        self.resolve_device(device)
        return NumpyNetwork(spec, weights, train)
