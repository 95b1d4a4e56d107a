"""The MLP written once: layer loop, modes, backward pass and optimizers over backend primitives.

In the spirit of Keras 3, the network is written here a single time and each backend
(:mod:`~dropout_lab.backends.numpy_backend`, :mod:`~dropout_lab.backends.torch_backend`) fills
a small set of primitives with the same names: array conversion (``_to_backend``,
``_to_numpy``, ``_labels``, ``_item``), products (``_addmm``, ``_matmul_tn``,
``_matmul_nt``), elementwise ops (``_mul``, ``_mul_``, ``_scale``, ``_add_``, ``_addcmul_``,
``_addcdiv_``, ``_sqrt``, ``_add_scalar_``, ``_flush_``), the activation and its backward
(``_act_``, ``_act_grad_``), the loss (``_softmax_xent``), ``_sum_rows`` and the max-norm
pair (``_column_norms``, ``_rescale_columns_``). Speed paths are overrides in clearly named
places: the torch ``_foreach_*`` optimizer (``torch_foreach.py``) replaces
:meth:`MLP._optimizer_step`; a backend that sets :attr:`MLP.fuse_momentum` (NumPy) has the
momentum update's first half done by the weight gradient's own product,
``v_l <- mu v_l + a_l^T g_l`` (one gemm with beta = mu, see ``backends/blas.py``), so a step
writes no weight gradient at all and allocates nothing the size of the weights.

Notation, for layer l = 0..L-1 (L = number of weight matrices, hidden layers 1..L-1):

    a_0 = x * r_0                          (input dropout noise r_0, if any)
    z_l = a_l @ W'_l + b_l                 (W'_l = W_l * M_l under dropconnect, else W_l)
    h_l = f(z_l)                           (f = ReLU or tanh, for l < L-1)
    a_{l+1} = h_l * r_{l+1}                (unit dropout noise, if any)
    loss = mean_n [ logsumexp(z_{L-1}) - z_{L-1}[y] ]

and backward, with g = dloss/dz:

    g_{L-1} = (softmax(z_{L-1}) - onehot(y)) / N
    dW'_l = a_l^T g_l,  db_l = sum_n g_l,  dW_l = dW'_l * M_l (dropconnect)
    (fused momentum: v_l <- mu v_l + a_l^T g_l in the same product, when there is no M_l)
    g_{l-1} = ((g_l @ W'_l^T) * r_l) * f'(z_{l-1})

Optimizers (coupled L2 weight decay on the weights only, as torch.optim defines them), with
one step counter t (Adam's bias corrections and the flush period both read it):

    g <- g + wd W                                            (weights only)
    sgd:       W <- W - lr g
    momentum:  v <- mu v + g;  W <- W - lr v
    adam:      m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
               W <- W - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
    max-norm:  W[:, j] <- W[:, j] * cap / |W[:, j]|  where |W[:, j]| > cap

Noise comes from :mod:`dropout_lab.dropout`; the network only multiplies. Under concrete
dropout (:mod:`dropout_lab.concrete`, the formulas) the network also holds a learned logit
theta_l per unit layer (one array ``theta``, a parameter after the biases: no weight decay, no
max-norm) and completes each layer's noise from the uniforms u it is given,
r_l = (1 - z_l) / (1 - p_l) with z_l = sigmoid((theta_l + log u - log(1 - u)) / t); the loss
gains the regulariser R = sum_l R_l, and backward adds, by hand:

    dW_l += 2 wr W_l / (1 - p_l)
    dtheta_l = sum (g_l @ W'_l^T) * a_l * (p_l - z_l / t) + dR_l/dtheta_l
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

import numpy as np

from dropout_lab import concrete
from dropout_lab.backends.base import FLUSH_BELOW, FLUSH_EVERY, NetSpec, Weights
from dropout_lab.dropout import Noise
from dropout_lab.specs.backends import OptimizerSpec

T = TypeVar("T")  # the backend's array type: np.ndarray, torch.Tensor

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

Grads = list[tuple[T, T]]  # [(dW_l, db_l)] per layer l


class MLP(ABC, Generic[T]):
    """A network on one backend; fills the :class:`~dropout_lab.backends.base.Network`
    Protocol. Inputs and outputs of the public methods are NumPy arrays."""

    # True: under momentum, a training step's weight-gradient product accumulates straight
    # into the velocity (v_l <- mu v_l + a_l^T g_l, one gemm with beta = mu) instead of
    # writing dW_l to a scratch buffer that the optimizer then reads. Same formula; a
    # backend turns it on where its gemm takes beta at no extra cost.
    fuse_momentum = False
    # True: under concrete dropout, _loss_and_grads hands the whole step to
    # _concrete_loss_and_grads (the torch backend: autograd) instead of the backward below.
    concrete_by_autograd = False

    def __init__(self, spec: NetSpec, weights: Weights, train: OptimizerSpec) -> None:
        self.spec = spec
        self.np_dtype = np.dtype(spec.dtype)
        # Copies: the caller's NumPy weights are never aliased (nor mutated by training).
        self.W: list[T] = [self._to_backend(np.array(w, dtype=self.np_dtype)) for w, _ in weights]
        self.b: list[T] = [self._to_backend(np.array(b, dtype=self.np_dtype)) for _, b in weights]
        self.train = train
        # The optimizer's hyperparameters of the current epoch; a schedule changes them
        # between epochs through set_hyperparameters (train.lr / train.momentum start them).
        self.lr, self.momentum = float(train.lr), float(train.momentum)
        self.test_scales = list(spec.test_scales) or [1.0] * (len(spec.sizes) - 1)
        self.relu = spec.activation == "relu"
        # Concrete dropout: the learned logit of every unit layer (0 where none is learned)
        # and its gradient of the last step.
        self.concrete = spec.concrete
        self.theta: T | None = None
        if self.concrete is not None:
            self.theta = self._to_backend(
                self.concrete.init_logits().astype(self.np_dtype))
            self._dtheta: T = self._zeros_like(self.theta)
        # Optimizer state for parameter i (weights 0..L-1, then biases, then theta):
        # momentum's velocity, or Adam's first (_m) and second (_v) moments.
        self._m: list[T] = [self._zeros_like(p) for p in self._params()]
        adam = train.optimizer == "adam"
        self._v: list[T] = [self._zeros_like(p) for p in self._params()] if adam else []
        # Scratch buffers the weight gradients dW_l of a training step are written into.
        self._dW: list[T] = [self._zeros_like(W) for W in self.W]
        self.t = 0  # optimizer steps taken: Adam's t, and the clock of the periodic flush
        # Per layer, whether this step's weight gradient went straight into the velocity.
        self._fused: list[bool] = [False] * len(self.W)

    @property
    def n_layers(self) -> int:
        """L, the number of weight matrices."""
        return len(self.W)

    def _params(self) -> list[T]:
        """Every trained array: W_0..W_{L-1}, b_0..b_{L-1}, then theta (concrete dropout)."""
        return self.W + self.b + ([] if self.theta is None else [self.theta])

    # -- primitives every backend fills (same names in every backend) -------------------------
    @abstractmethod
    def _to_backend(self, a: np.ndarray) -> T:
        """``a`` as a backend array of the network's dtype, on its device."""

    @abstractmethod
    def _labels(self, y: np.ndarray) -> T:
        """Integer class labels as a backend array on the network's device."""

    @abstractmethod
    def _to_numpy(self, t: T) -> np.ndarray:
        """A NumPy view or copy of ``t`` (callers copy when they keep it)."""

    @abstractmethod
    def _item(self, t: T) -> float:
        """A 0-d array as a Python float (on a GPU: a host synchronisation)."""

    @abstractmethod
    def _zeros_like(self, t: T) -> T:
        """Zeros of ``t``'s shape, dtype and device."""

    @abstractmethod
    def _addmm(self, b: T, a: T, W: T) -> T:
        """z = a @ W + b, a new array."""

    @abstractmethod
    def _matmul_tn(self, a: T, g: T, out: T | None, beta: float = 0.0) -> T:
        """a^T g, written into ``out`` when given; with ``beta``, out <- a^T g + beta out
        (``out`` required)."""

    @abstractmethod
    def _matmul_nt(self, g: T, W: T) -> T:
        """g W^T, a new array."""

    @abstractmethod
    def _mul(self, x: T, y: T) -> T:
        """x * y (broadcasting), a new array."""

    @abstractmethod
    def _mul_(self, x: T, y: T) -> T:
        """x *= y in place (broadcasting); returns x."""

    @abstractmethod
    def _scale(self, x: T, s: float) -> T:
        """s x, a new array."""

    @abstractmethod
    def _scale_(self, x: T, s: float) -> T:
        """x *= s in place; returns x."""

    @abstractmethod
    def _add_(self, x: T, y: T, alpha: float = 1.0) -> T:
        """x += alpha y in place; returns x."""

    @abstractmethod
    def _addcmul_(self, x: T, a: T, b: T, value: float) -> T:
        """x += value a b in place; returns x."""

    @abstractmethod
    def _addcdiv_(self, x: T, a: T, b: T, value: float) -> T:
        """x += value a / b in place; returns x."""

    @abstractmethod
    def _sqrt(self, x: T) -> T:
        """sqrt(x), a new array."""

    @abstractmethod
    def _add_scalar_(self, x: T, s: float) -> T:
        """x += s in place; returns x."""

    @abstractmethod
    def _flush_(self, x: T, below: float) -> None:
        """x[|x| < below] = 0 in place."""

    @abstractmethod
    def _act_(self, z: T) -> T:
        """h = f(z) in place: ReLU or tanh."""

    @abstractmethod
    def _act_grad_(self, g: T, h: T) -> T:
        """g * f'(z) from h = f(z): g * 1[h > 0] (ReLU) or g * (1 - h^2) (tanh)."""

    @abstractmethod
    def _softmax_xent(self, z: T, y: T) -> tuple[T, T]:
        """(loss, g) with loss = mean_n [logsumexp(z_n) - z_n[y_n]] as a 0-d array and
        g = (softmax(z) - onehot(y)) / N, its gradient with respect to z."""

    @abstractmethod
    def _sum_rows(self, g: T) -> T:
        """sum_n g_n, the bias gradient."""

    @abstractmethod
    def _column_norms(self, W: T) -> T:
        """|W[:, j]| for every column j (a unit's incoming weights)."""

    @abstractmethod
    def _rescale_columns_(self, W: T, norms: T, cap: float) -> None:
        """W[:, j] *= cap / norms[j] where norms[j] > cap, in place."""

    # -- noise --------------------------------------------------------------------------------
    def _noise(self, noise: Noise | None) -> tuple[list[T | None], list[T | None]] | None:
        """The unit noise r_l and weight masks M_l as backend arrays (None: no noise)."""
        if noise is None:
            return None
        units = [None if r is None else self._to_backend(r) for r in noise.units]
        masks = [None if m is None else self._to_backend(m) for m in noise.weights]
        return units, masks

    # -- concrete dropout (dropout_lab/concrete.py) --------------------------------------------
    def _logits(self) -> np.ndarray:
        """theta of every unit layer, on the host in float64."""
        assert self.theta is not None
        return np.asarray(self._to_numpy(self.theta), dtype=np.float64)

    def _relax(self, layer: int, u: T) -> tuple[T, T]:
        """(r, z) of unit layer ``layer`` from its uniforms u: z = sigmoid((theta + log(u + eps)
        - log(1 - u + eps)) / t), r = (1 - z) / (1 - p), by concrete.relax on the host (a
        backend may compute the same where its arrays are)."""
        assert self.concrete is not None
        r, z = concrete.relax(np.asarray(self._to_numpy(u)), float(self._logits()[layer]),
                              self.concrete.temperature)
        return self._to_backend(r), self._to_backend(z)

    def _relaxed(self, units: list[T | None] | None
                 ) -> tuple[list[T | None] | None, list[T | None]]:
        """Concrete dropout: the noise r_l of every unit layer from the uniforms it was given,
        and the z_l backward needs; any other variant: ``units`` as they are."""
        spec = self.concrete
        zs: list[T | None] = [None] * self.n_layers
        if spec is None or units is None:
            return units, zs
        rs: list[T | None] = []
        for l, u in enumerate(units):
            if u is None or not spec.learned[l]:
                rs.append(u)
                continue
            r, zs[l] = self._relax(l, u)
            rs.append(r)
        return rs, zs

    def learned_p(self) -> list[float | None]:
        """p_l = sigmoid(theta_l) of every unit layer l (0 = the input, 1..H the hidden
        layers), None where p is not learned; [] for a network without concrete dropout."""
        if self.concrete is None:
            return []
        p = concrete.probability(self._logits())
        return [float(p[l]) if on else None for l, on in enumerate(self.concrete.learned)]

    def set_logits(self, theta: np.ndarray) -> None:
        """Replace theta (one logit per unit layer), e.g. to move it in a finite difference."""
        assert self.theta is not None, "no learned p: the variant is not concrete"
        self.theta = self._to_backend(np.array(theta, dtype=self.np_dtype))

    def loss_and_logit_grad(self, x: np.ndarray, y: np.ndarray, noise: Noise | None
                            ) -> tuple[float, np.ndarray]:
        """The loss (cross-entropy + regulariser) and dloss/dtheta, one per unit layer
        (0 where none is learned), without updating anything."""
        assert self.theta is not None, "no learned p: the variant is not concrete"
        loss, _ = self._loss_and_grads(self._to_backend(np.asarray(x)), self._labels(y),
                                       self._noise(noise), into_scratch=False)
        return self._item(loss), np.asarray(self._to_numpy(self._dtheta), dtype=np.float64)

    def _penalty(self, grads: Grads[T], dtheta: np.ndarray) -> float:
        """R = sum_l R_l over the learned layers, with dR_l/dW_l added to ``grads`` (a fused
        velocity as well: mu v + a^T g + dR/dW) and dR_l/dtheta_l to ``dtheta``."""
        spec = self.concrete
        assert spec is not None
        theta = self._logits()
        p = concrete.probability(theta)
        wr, dr = spec.weight_regularizer, spec.dropout_regularizer
        total = 0.0
        for l, on in enumerate(spec.learned):
            if not on:
                continue
            w = np.asarray(self._to_numpy(self.W[l]))
            w_sq = float(np.einsum("ij,ij->", w, w, dtype=np.float64))  # |W_l|^2
            width = self.spec.sizes[l]  # K_l, the input dimension of W_l
            total += concrete.penalty(w_sq, float(theta[l]), width, wr, dr)
            dtheta[l] += concrete.penalty_logit_grad(w_sq, float(theta[l]), width, wr, dr)
            if wr:
                self._add_(grads[l][0], self.W[l], 2.0 * wr / (1.0 - float(p[l])))
        return total

    def _effective_weight(self, l: int, masks: list[T | None] | None) -> T:
        """W'_l = W_l * M_l under dropconnect, else W_l."""
        M = None if masks is None else masks[l]
        return self.W[l] if M is None else self._mul(self.W[l], M)

    # -- forward ------------------------------------------------------------------------------
    def _forward_train(self, x: T, units: list[T | None] | None, masks: list[T | None] | None
                       ) -> tuple[T, list[T], list[T], list[T]]:
        """Forward pass keeping what backward needs: (z_{L-1}, inputs a_l, effective W'_l,
        outputs h_l)."""
        r0 = None if units is None else units[0]
        a = x if r0 is None else self._mul(x, r0)  # a_0 = x * r_0
        inputs: list[T] = []
        weights: list[T] = []
        hidden: list[T] = []
        last = self.n_layers - 1
        for l in range(self.n_layers):
            Weff = self._effective_weight(l, masks)
            z = self._addmm(self.b[l], a, Weff)  # z_l = a_l @ W'_l + b_l
            inputs.append(a)
            weights.append(Weff)
            if l == last:
                return z, inputs, weights, hidden
            h = self._act_(z)  # h_l = f(z_l)
            hidden.append(h)
            r = None if units is None else units[l + 1]
            a = h if r is None else self._mul(h, r)  # a_{l+1} = h_l * r_{l+1}
        raise AssertionError("unreachable")

    def forward(self, x: np.ndarray, noise: Noise | None = None,
                ablate: list[np.ndarray | None] | None = None, return_hidden: bool = False
                ) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
        """Logits. ``noise=None`` is evaluation mode (test-time scaling applied); with noise
        it is a training-mode pass without updates (Monte Carlo dropout). ``ablate[l]``
        multiplies hidden layer l+1's activations; ``return_hidden`` also returns the
        post-activation hidden matrices, before any dropout or test-time scaling."""
        a = self._to_backend(np.asarray(x))
        eval_mode = noise is None
        units, masks = self._noise(noise) or (None, None)
        units = self._relaxed(units)[0]  # concrete dropout: r_l from the uniforms
        if eval_mode:
            a = self._test_scale(a, 0)  # standard dropout: a_0 = (1 - p_in) x at test time
        elif units is not None and units[0] is not None:
            a = self._mul(a, units[0])
        hidden: list[np.ndarray] = []
        last = self.n_layers - 1
        for l in range(self.n_layers):
            z = self._addmm(self.b[l], a, self._effective_weight(l, masks))
            if l == last:
                logits = self._to_numpy(z)
                return (logits, hidden) if return_hidden else logits
            h = self._act_(z)
            keep = None if ablate is None else ablate[l]
            if keep is not None:
                self._mul_(h, self._to_backend(keep))
            if return_hidden:
                hidden.append(self._to_numpy(h).copy())
            if eval_mode:
                a = self._test_scale(h, l + 1)  # standard dropout: (1 - p) h
            else:
                r = None if units is None else units[l + 1]
                a = h if r is None else self._mul(h, r)
        raise AssertionError("unreachable")

    # -- backward -----------------------------------------------------------------------------
    def _loss_and_grads(self, x: T, y: T, noise: tuple[list[T | None], list[T | None]] | None,
                        into_scratch: bool) -> tuple[T, Grads[T]]:
        """Mean cross-entropy (0-d backend array) and [(dW_l, db_l)] of a mini-batch already on
        the backend; with ``into_scratch`` every dW_l is written into this network's scratch
        buffer (valid until the next step)."""
        units, masks = noise or (None, None)
        if self.concrete is not None and self.concrete_by_autograd:
            return self._concrete_loss_and_grads(x, y, units)
        units, zs = self._relaxed(units)  # concrete dropout: r_l from the uniforms
        z, inputs, weights, hidden = self._forward_train(x, units, masks)
        loss, g = self._softmax_xent(z, y)  # g_{L-1} = (softmax - onehot) / N
        grads: Grads[T] = [None] * self.n_layers  # type: ignore[list-item]
        spec = self.concrete
        dtheta = np.zeros(self.n_layers)
        fuse = into_scratch and self.fuse_momentum and self.train.optimizer == "momentum"
        self._fused = [False] * self.n_layers
        for l in range(self.n_layers - 1, -1, -1):
            M = None if masks is None else masks[l]
            if fuse and M is None:
                # v_l <- mu v_l + a_l^T g_l: the velocity's update, fused into the product;
                # _update finishes it (weight decay, W <- W - lr v). Only the velocity is
                # written, so the W'_l used below for g_{l-1} is still this step's.
                dW = self._matmul_tn(inputs[l], g, self._m[l], beta=self.momentum)
                self._fused[l] = True
            else:
                out = self._dW[l] if into_scratch else None
                dW = self._matmul_tn(inputs[l], g, out)  # dW'_l = a_l^T g_l
            if M is not None:
                self._mul_(dW, M)  # dW_l = dW'_l * M_l
            grads[l] = (dW, self._sum_rows(g))  # db_l = sum_n g_l
            z_l = zs[l]
            if l == 0:
                if z_l is not None and spec is not None:  # the input's p: dL/da_0 needed too
                    dtheta[0] += concrete.logit_grad(
                        self._host(self._matmul_nt(g, weights[0])), self._host(inputs[0]),
                        self._host(z_l), float(self._logits()[0]), spec.temperature)
                break
            g = self._matmul_nt(g, weights[l])  # g_{l-1} = (g_l @ W'_l^T) * r_l * f'(z_{l-1})
            if z_l is not None and spec is not None:
                # dtheta_l = sum dL/da_l * a_l * (p_l - z_l / t), dL/da_l = g_l @ W'_l^T
                dtheta[l] += concrete.logit_grad(self._host(g), self._host(inputs[l]),
                                                 self._host(z_l), float(self._logits()[l]),
                                                 spec.temperature)
            r = None if units is None else units[l]
            if r is not None:
                self._mul_(g, r)
            g = self._act_grad_(g, hidden[l - 1])
        if spec is not None:  # the regulariser: loss + R, dR/dW_l, dR/dtheta_l
            loss = self._add_scalar_(loss, self._penalty(grads, dtheta))
            self._dtheta = self._to_backend(dtheta.astype(self.np_dtype))
        return loss, grads

    def _concrete_loss_and_grads(self, x: T, y: T, units: list[T | None] | None
                                 ) -> tuple[T, Grads[T]]:
        """Concrete dropout's loss and gradients another way than the backward above (a
        backend that sets :attr:`concrete_by_autograd` fills it; it also sets _dtheta)."""
        raise NotImplementedError(f"{type(self).__name__} has no autograd path")

    def _host(self, t: T) -> np.ndarray:
        """A backend array as a NumPy array (no copy on the CPU)."""
        return np.asarray(self._to_numpy(t))

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, noise: Noise | None
                       ) -> tuple[float, Weights]:
        """Mean cross-entropy (plus the regulariser under concrete dropout: the objective the
        optimizer minimises) and its gradients [(dW, db)], without updating anything."""
        loss, grads = self._loss_and_grads(self._to_backend(np.asarray(x)), self._labels(y),
                                           self._noise(noise), into_scratch=False)
        return self._item(loss), [(self._to_numpy(dW).copy(), self._to_numpy(db).copy())
                                  for dW, db in grads]

    # -- optimizer ----------------------------------------------------------------------------
    def train_step(self, x: np.ndarray, y: np.ndarray, noise: Noise | None) -> float:
        """One optimizer step on a mini-batch; returns the mini-batch loss (dropout on)."""
        return self._item(self._train_step(x, y, noise))

    def _train_step(self, x: np.ndarray, y: np.ndarray, noise: Noise | None) -> T:
        """One optimizer step; the loss stays a backend array (no host synchronisation)."""
        return self._step(self._to_backend(np.asarray(x)), self._labels(y), self._noise(noise))

    def _step(self, x: T, y: T, noise: tuple[list[T | None], list[T | None]] | None) -> T:
        """One optimizer step on a mini-batch (and noise) already on the backend."""
        loss, grads = self._loss_and_grads(x, y, noise, into_scratch=True)
        self.t += 1
        self._optimizer_step(grads)
        self._apply_max_norm()
        if self.t % FLUSH_EVERY == 0:
            self._flush_tiny_state()
        return loss

    def _test_scale(self, a: T, layer: int) -> T:
        """Unit layer ``layer``'s activations at test time: (1 - p) a under standard dropout,
        else a itself (a pack overrides this with one factor per member)."""
        s = self.test_scales[layer]
        return self._scale(a, s) if s != 1.0 else a

    def _apply_max_norm(self) -> None:
        """max-norm: W[:, j] <- W[:, j] * cap / |W[:, j]| where |W[:, j]| > cap (a pack
        overrides this with one cap per member)."""
        if self.train.max_norm is not None:
            for W in self.W:
                self._rescale_columns_(W, self._column_norms(W), self.train.max_norm)

    def _optimizer_step(self, grads: Grads[T]) -> None:
        """The update of every parameter, one at a time (a backend may override this with a
        fused or multi-tensor version of the same formulas)."""
        L = self.n_layers
        for l, (dW, db) in enumerate(grads):
            self._update(l, self.W[l], dW, fused=self._fused[l])
            self._update(L + l, self.b[l], db)
        self._update_logits()

    def _update_logits(self) -> None:
        """Concrete dropout: theta's step, by the weights' optimizer (parameter 2L: no weight
        decay, no max-norm)."""
        if self.theta is not None:
            self._update(2 * self.n_layers, self.theta, self._dtheta)

    def _update(self, i: int, p: T, g: T, fused: bool = False) -> None:
        """SGD / momentum / Adam with coupled L2 weight decay for parameter i (weights
        0..L-1, then biases, then theta). ``g`` is this step's own array, so it is updated in place.
        ``fused``: momentum only, ``g`` is the velocity, already mu v + a^T g."""
        opt, wd, lr = self.train.optimizer, self.train.weight_decay, self.lr
        if fused:
            v = self._m[i]
            if wd:
                self._add_(v, p, wd)  # v <- (mu v + g) + wd W, i.e. mu v + (g + wd W)
            self._add_(p, v, -lr)  # W <- W - lr v
            return
        if wd and i < self.n_layers:
            self._add_(g, p, wd)  # g <- g + wd W: decay weights, not biases
        if opt == "sgd":
            self._add_(p, g, -lr)  # W <- W - lr g
        elif opt == "momentum":
            v = self._m[i]
            self._scale_(v, self.momentum)
            self._add_(v, g)  # v <- mu v + g
            self._add_(p, v, -lr)  # W <- W - lr v
        else:
            b1, b2 = ADAM_BETAS
            c1 = 1.0 - b1**self.t  # bias corrections of step t
            c2_sqrt = (1.0 - b2**self.t) ** 0.5
            m, v = self._m[i], self._v[i]
            self._scale_(m, b1)
            self._add_(m, g, 1 - b1)  # m <- b1 m + (1 - b1) g
            self._scale_(v, b2)
            self._addcmul_(v, g, g, 1 - b2)  # v <- b2 v + (1 - b2) g^2
            denom = self._scale_(self._sqrt(v), 1.0 / c2_sqrt)
            self._add_scalar_(denom, ADAM_EPS)  # sqrt(v / (1 - b2^t)) + eps
            self._addcdiv_(p, m, denom, -lr / c1)  # W <- W - lr/(1 - b1^t) * m / denom

    def _flush_tiny_state(self) -> None:
        """Zero optimizer-state entries below FLUSH_BELOW x the smallest normal float, so none
        becomes subnormal (slow on x86; see FLUSH_EVERY in backends/base.py)."""
        tiny = float(np.finfo(self.np_dtype).tiny) * FLUSH_BELOW
        for state in self._m + self._v:
            self._flush_(state, tiny)

    # -- the rest of the Network protocol -----------------------------------------------------
    def set_hyperparameters(self, lr: float, momentum: float) -> None:
        """Learning rate and momentum for the steps that follow (read at every step)."""
        self.lr, self.momentum = float(lr), float(momentum)

    def get_weights(self) -> Weights:
        """Copies of the current weights as NumPy arrays."""
        return [(self._to_numpy(W).copy(), self._to_numpy(b).copy())
                for W, b in zip(self.W, self.b, strict=True)]

    # -- checkpoints (dropout_lab/checkpoint.py) ----------------------------------------------
    def state_lists(self) -> dict[str, list[T]]:
        """Every array the next step depends on, by name: weights ``W``, biases ``b`` and the
        optimizer's moments ``m`` (momentum's velocity, Adam's first moment) and ``v`` (Adam's
        second). The scratch buffers are not state: every step overwrites them."""
        lists = {"W": self.W, "b": self.b, "m": self._m, "v": self._v}
        if self.theta is not None:  # concrete dropout's learned logits
            lists["theta"] = [self.theta]
        return lists

    def export_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Copies of :meth:`state_lists` as NumPy arrays named ``W0``, ``b0``, ``m0``, ...,
        and the scalars: the step counter ``t`` (Adam's bias corrections, the flush period)
        and the current ``lr`` and ``momentum``."""
        arrays = {f"{name}{i}": self._to_numpy(a).copy()
                  for name, state in self.state_lists().items() for i, a in enumerate(state)}
        return arrays, {"t": self.t, "lr": self.lr, "momentum": self.momentum}

    def import_state(self, arrays: dict[str, np.ndarray], scalars: dict[str, Any]) -> None:
        """Restore what :meth:`export_state` returned, bit for bit. Raises ValueError, before
        changing anything, when a name, shape or dtype does not fit this network."""
        lists = self.state_lists()
        expected = {f"{name}{i}": a for name, state in lists.items() for i, a in enumerate(state)}
        if set(arrays) != set(expected):
            raise ValueError(f"arrays {sorted(set(arrays) ^ set(expected))} do not fit the "
                             "network")
        for key, current in expected.items():
            shape = tuple(self._to_numpy(current).shape)
            if arrays[key].shape != shape or arrays[key].dtype != self.np_dtype:
                raise ValueError(f"{key} is {arrays[key].dtype}{list(arrays[key].shape)}, the "
                                 f"network has {self.np_dtype}{list(shape)}")
        for name, state in lists.items():
            for i in range(len(state)):  # the lists stay the same objects; elements replaced
                state[i] = self._to_backend(np.array(arrays[f"{name}{i}"], dtype=self.np_dtype))
        if "theta" in lists:  # (a list made for the occasion: the attribute takes its element)
            self.theta = lists["theta"][0]
        self.t = int(scalars["t"])
        self.set_hyperparameters(float(scalars["lr"]), float(scalars["momentum"]))

    def random_state(self) -> dict[str, np.ndarray]:
        """Random state the network itself holds, as arrays (none here; the torch backend's
        generator of ``noise: device`` is one). The trial's named NumPy streams are not the
        network's: the training loop holds them."""
        return {}

    def restore_random_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Take back what :meth:`random_state` returned (before the next epoch)."""
