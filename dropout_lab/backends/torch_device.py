"""The GPU-ready training epoch of the torch backend (``dropout.noise: device``).

On a GPU the per-step costs of the host path are copies and synchronisations, not arithmetic:
every mini-batch and every noise array crosses host -> device, and reading the loss back
(``float(loss)``) waits for the GPU to finish. This path removes them:

* the training set is copied to the device once (:meth:`DeviceEpochs.bind`), and each epoch
  one index vector (the epoch's order, drawn from the ``order`` stream as on the host path);
  mini-batches are gathered on the device;
* with ``noise: device``, dropout noise is drawn on the device by a ``torch.Generator`` seeded
  from the trial's ``dropout`` stream (one generator per named stream), with the variant's
  formula from the registry (:mod:`dropout_lab.variants`): r = 1[u >= p] / (1 - p)
  (inverted), 1[u >= p] (standard, unscaled), N(1, p / (1 - p)) (gaussian), a weight mask per
  mini-batch (dropconnect);
* the losses are summed on the device and read back once per epoch.

With ``noise: host`` on a GPU the data stay resident and the loss is read once per epoch, but
the masks are NumPy's (copied each step), so results match the numpy backend.

The masks are other random numbers than NumPy's, so this path does not agree bit for bit with
the numpy backend (``noise: host``, the default, does; the conformance suite uses it). No GPU
was available where this was written: it is tested on the CPU device, with the host<->device
transfers counted through the network's conversion primitives (tests/backends/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from dropout_lab.dropout import DropoutPlan
from dropout_lab.variants import Rate

if TYPE_CHECKING:
    from dropout_lab.backends.torch_backend import TorchNetwork

Tensors = list[torch.Tensor | None]


def generator_for(stream: np.random.Generator, device: torch.device) -> torch.Generator:
    """A torch.Generator on ``device`` seeded by one draw from a named NumPy stream (the
    trial's ``dropout`` stream), so each stream keeps its own independent generator."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(stream.integers(0, 2**63 - 1)))
    return gen


class TorchOps:
    """The noise primitives (:class:`~dropout_lab.variants.NoiseOps`) on a torch device:
    uniforms and normals from ``torch.Generator``s. One generator (a trial), or one per pack
    member (the noise's leading axis is the member, ``draw[k]`` False: member k draws nothing
    and its noise is the identity, as a solo trial skips a layer of rate 0)."""

    def __init__(self, gens: torch.Generator | list[torch.Generator], device: torch.device,
                 dtype: torch.dtype) -> None:
        self.packed = isinstance(gens, list)
        self.gens = gens if isinstance(gens, list) else [gens]
        self.device, self.dtype = device, dtype
        self.draw = np.ones(len(self.gens), dtype=bool)

    def _draw(self, shape: tuple[int, ...], sampler: str, fill: float) -> torch.Tensor:
        make = torch.rand if sampler == "rand" else torch.randn
        if not self.packed:
            return make(shape, generator=self.gens[0], device=self.device, dtype=self.dtype)
        out = torch.empty(shape, device=self.device, dtype=self.dtype)
        for k, gen in enumerate(self.gens):
            if self.draw[k]:
                # drawn with the member's own shape, as its solo trial draws it
                out[k] = make(shape[1:], generator=gen, device=self.device, dtype=self.dtype)
            else:
                out[k].fill_(fill)
        return out

    def _rate(self, p: Rate, ndim: int) -> float | torch.Tensor:
        if np.ndim(p) == 0:
            return float(p)
        return torch.as_tensor(np.asarray(p, dtype=np.float64), device=self.device,
                               dtype=self.dtype).reshape(-1, *[1] * (ndim - 1))

    def keep(self, shape: tuple[int, ...], p: Rate) -> torch.Tensor:
        """1[u >= p] for u ~ U[0, 1) (a member that draws nothing: u = 1, kept)."""
        u = self._draw(shape, "rand", 1.0)
        return (u >= self._rate(p, len(shape))).to(self.dtype)

    def uniform(self, shape: tuple[int, ...]) -> torch.Tensor:
        return self._draw(shape, "rand", 0.0)

    def normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        return self._draw(shape, "randn", 0.0)

    def scale_(self, x: torch.Tensor, s: Rate) -> torch.Tensor:
        return x.mul_(self._rate(s, x.dim()))

    def shift_(self, x: torch.Tensor, s: float) -> torch.Tensor:
        return x.add_(s)


class DeviceNoise:
    """Samples a :class:`~dropout_lab.dropout.DropoutPlan`'s noise on a torch device, with the
    variant's own formula (dropout_lab/variants.py) over :class:`TorchOps`."""

    def __init__(self, plan: DropoutPlan, gen: torch.Generator, device: torch.device,
                 dtype: torch.dtype) -> None:
        self.plan = plan
        self.ops = TorchOps(gen, device, dtype)

    def sample(self, batch: int) -> tuple[Tensors, Tensors] | None:
        """(unit noise r_l, weight masks M_l) for one step of ``batch`` examples."""
        plan = self.plan
        if not plan.active:
            return None
        n = len(plan.sizes) - 1
        units: Tensors = [None] * n
        masks: Tensors = [None] * n
        on_weights = plan.kind.target == "weights"
        for l, p in enumerate(plan.rates):
            if p <= 0:
                continue
            r = plan.kind.sample(self.ops, plan.noise_shape(l, batch), p)
            if on_weights:
                masks[l] = r
            else:
                units[l] = r
        return units, masks


class DeviceEpochs:
    """The training data of one trial resident on the network's device, and its epochs."""

    def __init__(self, net: TorchNetwork, x: np.ndarray, y: np.ndarray, plan: DropoutPlan,
                 noise_rng: np.random.Generator, noise_on: str) -> None:
        self.net, self.source, self.noise_on = net, x, noise_on
        self.plan, self.noise_rng = plan, noise_rng
        self.x = net._to_backend(x)  # one copy of the training set, for the whole trial
        self.y = net._labels(y)
        self.device_noise = (DeviceNoise(plan, generator_for(noise_rng, net.device), net.device,
                                         net.dtype) if noise_on == "device" else None)

    def serves(self, x: np.ndarray, noise_on: str) -> bool:
        """Whether this is the training set (and noise placement) it was built for."""
        return x is self.source and noise_on == self.noise_on

    def run(self, order: np.ndarray, batch_size: int) -> float:
        """One epoch over the training set in ``order``; the sum of loss x batch size, read
        back once (the epoch's only device -> host transfer)."""
        net = self.net
        idx_all = net._labels(order)  # the epoch's one host -> device copy (with noise: device)
        total = torch.zeros((), dtype=net.dtype, device=net.device)
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = idx_all[start : start + batch_size]
                n = int(idx.shape[0])
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
                if self.device_noise is not None:
                    noise = self.device_noise.sample(n)
                else:  # host noise: NumPy's masks, as the numpy backend gets them (copied)
                    noise = net._noise(self.plan.sample(self.noise_rng, n))
                loss = net._device_step(xb, yb, noise)
                total.add_(loss, alpha=n)  # stays on the device: no synchronisation
        return net._item(total)
