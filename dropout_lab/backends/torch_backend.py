"""The PyTorch backend: the primitives of :mod:`dropout_lab.backends.mlp` in torch.

The network (layer loop, modes, the backward pass written by hand, the optimizers) is written
once in :class:`~dropout_lab.backends.mlp.MLP`, with the formulas; this module fills the same
primitives as :mod:`~dropout_lab.backends.numpy_backend`, with the same names. The backward
pass is written out rather than left to autograd: it mirrors the reference (so the conformance
suite can hold the two to 1e-5), and it skips autograd's graph bookkeeping, which dominates a
step for the small MLPs dropout-lab trains. The speed path is the multi-tensor optimizer in
:mod:`~dropout_lab.backends.torch_foreach`. The noise arrays come from
:mod:`dropout_lab.dropout` (NumPy) and are only wrapped (``torch.from_numpy``, no copy on the
CPU) or copied to the device: given a seed, both backends see identical masks.

This module, ``torch_foreach.py``, ``torch_device.py``, ``torch_pack.py`` (a pack's stacked
network) and the packs' training (``dropout_lab/packs/stacked.py``, ``epochs.py``) are the only
places dropout-lab imports torch; the registry and ``packs.run_pack`` import them lazily.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import torch

from dropout_lab.backends.base import NetSpec, Weights, host_epoch
from dropout_lab.backends.mlp import MLP, Grads
from dropout_lab.backends.torch_device import DeviceEpochs
from dropout_lab.backends.torch_foreach import foreach_optimizer_step
from dropout_lab.concrete import EPS
from dropout_lab.dropout import DropoutPlan, Noise
from dropout_lab.errors import BackendError
from dropout_lab.specs.backends import OptimizerSpec

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _shared(a: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy(a)``, also for a read-only array (the data cache's labels,
    dropout_lab/data/__init__.py): the network only reads its inputs, so torch's warning
    that it could write into them does not apply."""
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


class TorchNetwork(MLP[torch.Tensor]):
    """An MLP on one torch device. Inputs and outputs are NumPy arrays, as the Protocol says."""

    def __init__(self, spec: NetSpec, weights: Weights, train: OptimizerSpec, device: str) -> None:
        self.device = torch.device(device)
        self.dtype = _DTYPES[spec.dtype]
        self.np_dtype = np.dtype(spec.dtype)
        # Whether host <-> device copies cost anything (the GPU path); a test sets it on the CPU.
        self.on_device = self.device.type != "cpu"
        self._epochs: DeviceEpochs | None = None
        # A restored checkpoint's device generator states, applied when the epochs are built.
        self._generator_state: list[np.ndarray] = []
        super().__init__(spec, weights, train)

    # The whole network runs without autograd: the backward pass is written out in MLP.
    def forward(self, x: np.ndarray, noise: Noise | None = None,
                ablate: list[np.ndarray | None] | None = None, return_hidden: bool = False
                ) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
        with torch.no_grad():
            return super().forward(x, noise, ablate, return_hidden)

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, noise: Noise | None
                       ) -> tuple[float, Weights]:
        with torch.no_grad():
            return super().loss_and_grads(x, y, noise)

    def train_step(self, x: np.ndarray, y: np.ndarray, noise: Noise | None) -> float:
        with torch.no_grad():
            return super().train_step(x, y, noise)

    # -- GPU-ready epochs (torch_device.py) --------------------------------------------------
    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
                    plan: DropoutPlan, noise_rng: np.random.Generator, noise_on: str = "host"
                    ) -> float:
        """On a device other than the CPU, or with noise drawn on the device: the training
        data stay on the device, no host synchronisation per step (DeviceEpochs). Else the
        host loop, step by step, as the numpy backend."""
        if not (self.on_device or noise_on == "device"):
            return host_epoch(self, x, y, order, batch_size, plan, noise_rng)
        epochs = self._epochs
        if epochs is None or not epochs.serves(x, noise_on):
            epochs = self._epochs = DeviceEpochs(self, x, y, plan, noise_rng, noise_on)
            if self._generator_state and epochs.device_noise is not None:
                # a resumed trial: the generators continue where the checkpoint left them (the
                # seed DeviceEpochs just drew from the dropout stream is overwritten; noise:
                # device draws nothing else from that stream)
                for gen, state in zip(epochs.device_noise.ops.gens, self._generator_state,
                                      strict=True):
                    gen.set_state(torch.from_numpy(state))
            self._generator_state = []
        return epochs.run(order, batch_size)

    # -- checkpoints: the device generator of noise: device -----------------------------------
    def random_state(self) -> dict[str, np.ndarray]:
        """The torch.Generator drawing dropout noise on the device (``noise: device``), once
        the first epoch has made it; else nothing."""
        epochs = self._epochs
        if epochs is None or epochs.device_noise is None:
            return {}
        return {f"device_generator{k}": gen.get_state().numpy().copy()
                for k, gen in enumerate(epochs.device_noise.ops.gens)}

    def restore_random_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._generator_state = [np.array(arrays[f"device_generator{k}"], dtype=np.uint8)
                                 for k in range(len(arrays))
                                 if f"device_generator{k}" in arrays]

    def _device_step(self, x: torch.Tensor, y: torch.Tensor,
                     noise: tuple[list[torch.Tensor | None], list[torch.Tensor | None]] | None
                     ) -> torch.Tensor:
        """One optimizer step on a mini-batch and noise already on the device."""
        return self._step(x, y, noise)

    # -- concrete dropout: the same formulas in torch, its gradients by autograd --------------
    def _relax(self, layer: int, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.concrete is not None and self.theta is not None
        return relax(u, self.theta[layer], self.concrete.temperature)

    # Under concrete dropout the loss is written out in torch and autograd differentiates it:
    # an implementation apart from the NumPy reference's gradients by hand, which the
    # conformance suite compares it to.
    concrete_by_autograd = True

    def _concrete_loss_and_grads(self, x: torch.Tensor, y: torch.Tensor,
                                 units: list[torch.Tensor | None] | None
                                 ) -> tuple[torch.Tensor, Grads[torch.Tensor]]:
        """loss = mean cross-entropy + sum over learned layers l of
        wr |W_l|^2 / (1 - p_l) + dr K_l (p_l log p_l + (1 - p_l) log(1 - p_l)), with
        a_l = h_l * (1 - z_l) / (1 - p_l); every gradient (W, b, theta) by autograd."""
        spec = self.concrete
        assert spec is not None and self.theta is not None
        L = self.n_layers
        with torch.enable_grad():
            W = [w.detach().requires_grad_() for w in self.W]
            b = [v.detach().requires_grad_() for v in self.b]
            theta = self.theta.detach().requires_grad_()
            reg = torch.zeros((), dtype=self.dtype, device=self.device)
            a, z = x, x
            for l in range(L):
                u = None if units is None else units[l]
                if u is not None and spec.learned[l]:
                    a = a * relax(u, theta[l], spec.temperature)[0]
                if spec.learned[l]:
                    p = torch.sigmoid(theta[l])
                    reg = reg + spec.weight_regularizer * W[l].square().sum() / (1 - p)
                    reg = reg + spec.dropout_regularizer * self.spec.sizes[l] * (
                        p * torch.log(p) + (1 - p) * torch.log1p(-p))
                z = torch.addmm(b[l], a, W[l])
                if l < L - 1:
                    a = torch.relu(z) if self.relu else torch.tanh(z)
            loss = torch.nn.functional.cross_entropy(z, y) + reg
            grads = torch.autograd.grad(loss, [*W, *b, theta])
        self._fused = [False] * L
        self._dtheta = grads[-1]
        return loss.detach(), [(grads[l], grads[L + l]) for l in range(L)]

    # -- speed path: the multi-tensor optimizer (torch_foreach.py) ----------------------------
    def _optimizer_step(self, grads: Grads[torch.Tensor]) -> None:
        foreach_optimizer_step(self, grads)

    # -- array conversion ---------------------------------------------------------------------
    # _to_backend and _labels are the only host -> device copies, _to_numpy and _item the only
    # device -> host ones (tests/backends/test_torch_device_path.py counts them).
    def _to_backend(self, a: np.ndarray) -> torch.Tensor:
        """A tensor of the network's dtype on its device; on the CPU it shares ``a``'s memory."""
        t = _shared(np.ascontiguousarray(a, dtype=self.np_dtype))
        # A blocking copy: DropoutPlan reuses its noise buffers for the next step.
        return t if self.device.type == "cpu" else t.to(self.device)

    def _labels(self, y: np.ndarray) -> torch.Tensor:
        """Integer labels (or indices) as int64 on the device."""
        t = _shared(np.ascontiguousarray(y, dtype=np.int64))
        return t if self.device.type == "cpu" else t.to(self.device)

    def _to_numpy(self, t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    def _item(self, t: torch.Tensor) -> float:
        return float(t)

    def _zeros_like(self, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(t)

    # -- products -----------------------------------------------------------------------------
    def _addmm(self, b: torch.Tensor, a: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        return torch.addmm(b, a, W)

    def _matmul_tn(self, a: torch.Tensor, g: torch.Tensor, out: torch.Tensor | None,
                   beta: float = 0.0) -> torch.Tensor:
        if beta:
            assert out is not None, "beta needs out"
            return out.addmm_(a.T, g, beta=beta)  # out <- a^T g + beta out
        return torch.mm(a.T, g) if out is None else torch.mm(a.T, g, out=out)

    def _matmul_nt(self, g: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        return g @ W.T

    # -- elementwise --------------------------------------------------------------------------
    def _mul(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y

    def _mul_(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.mul_(y)

    def _scale(self, x: torch.Tensor, s: float) -> torch.Tensor:
        return x * s

    def _scale_(self, x: torch.Tensor, s: float) -> torch.Tensor:
        return x.mul_(s)

    def _add_(self, x: torch.Tensor, y: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        return x.add_(y, alpha=alpha)

    def _addcmul_(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, value: float
                  ) -> torch.Tensor:
        return x.addcmul_(a, b, value=value)

    def _addcdiv_(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, value: float
                  ) -> torch.Tensor:
        return x.addcdiv_(a, b, value=value)

    def _sqrt(self, x: torch.Tensor) -> torch.Tensor:
        return x.sqrt()

    def _add_scalar_(self, x: torch.Tensor, s: float) -> torch.Tensor:
        return x.add_(s)

    def _flush_(self, x: torch.Tensor, below: float) -> None:
        x.masked_fill_(x.abs() < below, 0.0)

    # -- activation, loss ---------------------------------------------------------------------
    def _act_(self, z: torch.Tensor) -> torch.Tensor:
        return z.clamp_(min=0) if self.relu else z.tanh_()

    def _act_grad_(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if self.relu:
            # g * ReLU'(z) = g * 1[h > 0], as aten's fused ReLU backward (one kernel)
            out: torch.Tensor = torch.ops.aten.threshold_backward(g, h, 0.0)
            return out
        return g.mul_(1.0 - h * h)  # tanh' = 1 - tanh^2

    def _softmax_xent(self, z: torch.Tensor, y: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        n = z.shape[0]
        rows = torch.arange(n, device=z.device)
        logp = torch.log_softmax(z, dim=1)
        loss = -logp[rows, y].mean()  # mean cross-entropy
        g = logp.exp_()  # softmax(z); g = (softmax - onehot(y)) / N
        g[rows, y] -= 1.0
        g /= n
        return loss, g

    def _sum_rows(self, g: torch.Tensor) -> torch.Tensor:
        return g.sum(dim=0)

    # -- max-norm -----------------------------------------------------------------------------
    def _column_norms(self, W: torch.Tensor) -> torch.Tensor:
        norms: torch.Tensor = torch.linalg.vector_norm(W, dim=0)
        return norms

    def _rescale_columns_(self, W: torch.Tensor, norms: torch.Tensor, cap: float) -> None:
        # No data-dependent branch (that would be a host synchronisation on a GPU).
        W.mul_(torch.where(norms > cap, cap / norms, torch.ones_like(norms)))


def relax(u: torch.Tensor, theta: torch.Tensor, temperature: float
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Concrete dropout's relaxed mask in torch (dropout_lab/concrete.py has the formulas):
    z = sigmoid((theta + log(u + eps) - log(1 - u + eps)) / t), r = (1 - z) / (1 - p)."""
    s = torch.log(u + EPS) - torch.log(1 - u + EPS)
    z = torch.sigmoid((theta + s) / temperature)
    return (1 - z) / (1 - torch.sigmoid(theta)), z


class TorchBackend:
    """PyTorch on cpu, cuda, cuda:N or mps."""

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

    def build(self, spec: NetSpec, weights: Weights, train: OptimizerSpec, device: str
              ) -> TorchNetwork:
        if spec.dtype not in _DTYPES:
            raise BackendError(f"the torch backend has no dtype {spec.dtype!r}")
        resolved = self.resolve_device(device)
        if resolved == "mps" and spec.dtype == "float64":
            raise BackendError("device 'mps' has no float64; use dtype: float32 or device: cpu")
        return TorchNetwork(spec, weights, train, resolved)
