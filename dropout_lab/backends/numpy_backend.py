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

from dropout_lab.backends.base import FLUSH_BELOW, FLUSH_EVERY, NetSpec, Weights
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
        # The optimizer's hyperparameters of the current epoch; a schedule changes them
        # between epochs through set_hyperparameters (train.lr / train.momentum start them).
        self.lr, self.momentum = float(train.lr), float(train.momentum)
        self.test_scales = list(spec.test_scales) or [1.0] * (len(spec.sizes) - 1)
        self._relu = spec.activation == "relu"
        # Optimizer state: momentum velocity, or Adam's first/second moments.
        self._m = [np.zeros_like(p) for p in self.W + self.b]
        self._v = [np.zeros_like(p) for p in self.W + self.b] if train.optimizer == "adam" else []
        self._t = 0

    # -- forward ------------------------------------------------------------------------------
    def _act(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0, out=z) if self._relu else np.tanh(z, out=z)

    def _forward_train(self, x: np.ndarray, noise: Noise | None):
        """Forward pass keeping what backward needs: inputs a_l, effective W'_l, outputs h_l."""
        a = x if noise is None or noise.units[0] is None else x * noise.units[0]
        inputs, weights, hidden = [], [], []
        last = len(self.W) - 1
        for l, (W, b) in enumerate(zip(self.W, self.b, strict=False)):
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
        for l, (W, b) in enumerate(zip(self.W, self.b, strict=False)):
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
    def _backward(self, z, y, inputs, weights, hidden, noise, sink) -> float:
        """Walk back from the loss. For every layer l, ``sink(l, a_l, g_l, M_l)`` receives the
        factors of dW'_l = a_l^T g_l, called only after g_{l-1} has been computed from W'_l,
        so a sink may update W_l in place."""
        n = z.shape[0]
        logp = log_softmax(z)
        rows = np.arange(n)
        loss = float(-logp[rows, y].mean())
        g = np.exp(logp)  # softmax
        g[rows, y] -= 1.0
        g /= n  # g_{L-1} = (softmax(z) - onehot(y)) / N
        for l in range(len(self.W) - 1, -1, -1):
            g_prev = None
            if l > 0:
                g_prev = g @ weights[l].T
                r = None if noise is None else noise.units[l]
                if r is not None:
                    g_prev *= r
                h = hidden[l - 1]
                if self._relu:
                    g_prev *= h > 0  # f'(z) = 1[z > 0] = 1[h > 0]
                else:
                    g_prev *= 1.0 - h * h  # tanh' = 1 - tanh^2
            sink(l, inputs[l], g, None if noise is None else noise.weights[l])
            g = g_prev
        return loss

    def loss_and_grads(self, x, y, noise):
        x = np.asarray(x, dtype=self.dtype)
        z, inputs, weights, hidden = self._forward_train(x, noise)
        grads: Weights = [None] * len(self.W)  # type: ignore[list-item]

        def collect(l, a, g, M):
            dW = a.T @ g  # dW'_l = a_l^T g_l
            if M is not None:
                dW *= M  # dW_l = dW'_l * M_l (dropconnect)
            grads[l] = (dW, g.sum(axis=0))

        loss = self._backward(z, y, inputs, weights, hidden, noise, collect)
        return loss, grads

    # -- optimizer ----------------------------------------------------------------------------
    def train_step(self, x, y, noise):
        x = np.asarray(x, dtype=self.dtype)
        z, inputs, weights, hidden = self._forward_train(x, noise)
        L = len(self.W)
        self._t += 1  # optimizer step count (Adam's bias corrections)

        def update(l, a, g, M):
            if M is None and self._fused:
                self._fused_update(l, a, g)
            else:
                dW = a.T @ g
                if M is not None:
                    dW *= M
                self._update(l, self.W[l], dW)
            self._update(L + l, self.b[l], g.sum(axis=0))

        loss = self._backward(z, y, inputs, weights, hidden, noise, update)
        if self._t % FLUSH_EVERY == 0:
            self._flush_tiny_state()
        return loss

    def _flush_tiny_state(self) -> None:
        """Zero optimizer-state entries below FLUSH_BELOW x the smallest normal float, so none
        becomes subnormal (slow on x86; see FLUSH_EVERY in backends/base.py)."""
        tiny = np.finfo(self.dtype).tiny * FLUSH_BELOW
        for state in (self._m, self._v):
            for arr in state:
                np.copyto(arr, 0, where=np.abs(arr) < tiny)

    @property
    def _fused(self) -> bool:
        return self.train.optimizer in ("sgd", "momentum")

    def _fused_update(self, l: int, a: np.ndarray, g: np.ndarray) -> None:
        """The same SGD / momentum step as :meth:`_update`, with the gradient product done by
        one BLAS gemm that writes straight into its destination (C <- alpha A B + beta C): no
        weight-sized temporary and three fewer passes over the weights (about 1 ms of a 10 ms
        step of a 784-1024-1024-10 MLP).

        BLAS is column-major, so a C-ordered X is passed as its transpose X.T (no copy), and
        C = a^T g is computed as C^T = g^T a."""
        t = self.train
        W = self.W[l]
        gemm, axpy = self._blas
        wd, lr = t.weight_decay, self.lr
        if t.optimizer == "sgd":
            # W <- W - lr (a^T g + wd W) = (1 - lr wd) W - lr a^T g
            gemm(-lr, g.T, a.T, beta=1.0 - lr * wd, c=W.T, trans_b=True, overwrite_c=True)
        else:
            m = self._m[l]
            # v <- mu v + a^T g (+ wd W);  W <- W - lr v
            gemm(1.0, g.T, a.T, beta=self.momentum, c=m.T, trans_b=True, overwrite_c=True)
            if wd:
                axpy(W.ravel(), m.ravel(), a=wd)
            axpy(m.ravel(), W.ravel(), a=-lr)
        self._max_norm(W)

    @property
    def _blas(self):
        if self.__dict__.get("_blas_fns") is None:
            from scipy.linalg import blas

            self._blas_fns = blas.get_blas_funcs(("gemm", "axpy"), dtype=self.dtype)
        return self._blas_fns

    def _update(self, i: int, p: np.ndarray, g: np.ndarray) -> None:
        """SGD / momentum / Adam with coupled L2 weight decay, as torch.optim defines them, for
        parameter i (weights 0..L-1, then biases). ``g`` is this step's own array, so it doubles
        as scratch space: a step allocates nothing the size of the weights."""
        t = self.train
        is_weight = i < len(self.W)
        if t.weight_decay and is_weight:  # g <- g + wd W: decay weights, not biases
            g += t.weight_decay * p
        if t.optimizer == "sgd":
            g *= self.lr
            p -= g  # W <- W - lr g
        elif t.optimizer == "momentum":
            m = self._m[i]
            m *= self.momentum
            m += g  # v <- mu v + g
            p -= np.multiply(m, self.lr, out=g)  # W <- W - lr v
        else:
            b1, b2, eps = 0.9, 0.999, 1e-8
            c1 = 1.0 - b1**self._t  # bias corrections of step t
            c2_sqrt = np.sqrt(1.0 - b2**self._t)
            m, v = self._m[i], self._v[i]
            m *= b1
            m += (1 - b1) * g  # m <- b1 m + (1 - b1) g
            v *= b2
            v += (1 - b2) * (g * g)  # v <- b2 v + (1 - b2) g^2
            denom = np.sqrt(v)
            denom /= c2_sqrt
            denom += eps  # sqrt(v / (1 - b2^t)) + eps
            np.divide(m, denom, out=g)
            g *= self.lr / c1
            p -= g  # W <- W - lr / (1 - b1^t) * m / denom
        if is_weight:
            self._max_norm(p)

    def _max_norm(self, W: np.ndarray) -> None:
        """Each unit's incoming weights are a column of W: rescale columns over the cap."""
        cap = self.train.max_norm
        if cap is None:
            return
        norms = np.sqrt(np.einsum("ij,ij->j", W, W))  # column norms without a W-sized temporary
        over = norms > cap
        if over.any():
            W[:, over] *= (cap / norms[over]).astype(W.dtype)

    def set_hyperparameters(self, lr: float, momentum: float) -> None:
        self.lr, self.momentum = float(lr), float(momentum)

    def get_weights(self) -> Weights:
        return [(W.copy(), b.copy()) for W, b in zip(self.W, self.b, strict=False)]


class NumpyBackend:
    name = "numpy"

    def resolve_device(self, device: str) -> str:
        if device in ("auto", "cpu"):
            return "cpu"
        raise BackendError(f"the numpy backend runs on the CPU only; device {device!r} is not "
                           "available (use backend: torch for cuda/mps)")

    def set_threads(self, n: int) -> None:
        # scipy's BLAS (the fused optimizer step) is a second OpenBLAS library: load it first,
        # because threadpoolctl limits only the libraries already loaded when it is called.
        import scipy.linalg.blas  # noqa: F401
        from threadpoolctl import threadpool_limits

        # Kept on the instance: the limit holds for this process for the backend's lifetime.
        self._limits = threadpool_limits(limits=n)

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def build(self, spec: NetSpec, weights: Weights, train: TrainConfig,
              device: str) -> NumpyNetwork:
        self.resolve_device(device)
        return NumpyNetwork(spec, weights, train)
