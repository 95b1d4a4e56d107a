"""One epoch of a pack: every member's mini-batches and noise, one stacked step at a time.

As the device path of one trial (backends/torch_device.py, DeviceEpochs): the training sets
are copied to the network's device once, each epoch sends one index matrix (member k's row:
its own order, drawn from its own ``order`` stream), mini-batches are gathered on the device,
and the per-member loss sums are read back once per epoch. Members whose training sets are
equal share one copy (a sweep over p or lr has one data set; a seed-dependent subset or
validation split gives each seed its own).

The noise of member k comes from its own ``dropout`` stream: on the host (NumPy, the default)
through :class:`~dropout_lab.variants.HostOps` with one Generator per member, bit for bit the
masks of its solo trial; with ``dropout.noise: device`` from one ``torch.Generator`` per member,
seeded as its solo trial seeds its own. The variant's formula is the registry's
(dropout_lab/variants.py), with one p per member.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from dropout_lab.backends.torch_device import TorchOps, generator_for
from dropout_lab.backends.torch_pack import TorchPackNetwork
from dropout_lab.variants import HostOps

if TYPE_CHECKING:
    from dropout_lab.dropout import DropoutPlan
    from dropout_lab.prepared import Prepared

Tensors = list[torch.Tensor | None]


class PackEpochs:
    """The members' training data on the pack's device, their noise, and the stacked epoch.

    ``preps[k]`` and ``noise_rngs[k]`` are member k's prepared trial and its ``dropout``
    stream; members are named by their index in these lists throughout."""

    def __init__(self, net: TorchPackNetwork, preps: list[Prepared],
                 noise_rngs: list[np.random.Generator], noise_on: str) -> None:
        self.net, self.noise_on = net, noise_on
        self.plans: list[DropoutPlan] = [p.plan for p in preps]
        self.kind = self.plans[0].kind
        self.noise_rngs = noise_rngs
        self.n = len(preps[0].data.y_train)
        # one copy per distinct training set; member k's rows start at offsets[k]
        unique: list[tuple[np.ndarray, np.ndarray]] = []
        self.offsets: list[int] = []
        for prep in preps:
            x, y = prep.data.x_train, prep.data.y_train
            if len(y) != self.n:
                raise ValueError("the members of a pack need training sets of one size")
            for j, (ux, uy) in enumerate(unique):
                if ux is x or (ux.shape == x.shape and np.array_equal(uy, y)
                               and np.array_equal(ux, x)):
                    self.offsets.append(j * self.n)
                    break
            else:
                self.offsets.append(len(unique) * self.n)
                unique.append((x, y))
        self.x = net._to_backend(unique[0][0] if len(unique) == 1
                                 else np.concatenate([u[0] for u in unique]))
        self.y = net._labels(unique[0][1] if len(unique) == 1
                             else np.concatenate([u[1] for u in unique]))
        # (layer, member) drop rates; a layer every member leaves alone has no noise
        self.rates = np.array([plan.rates for plan in self.plans], dtype=np.float64)
        self.gens = ([generator_for(rng, net.device) for rng in noise_rngs]
                     if noise_on == "device" else [])
        self._ops: tuple[tuple[int, ...], HostOps | TorchOps] | None = None

    def _ops_for(self, members: list[int]) -> HostOps | TorchOps:
        """The noise primitives of the current members (rebuilt when the pack shrinks)."""
        key = tuple(members)
        if self._ops is None or self._ops[0] != key:
            ops: HostOps | TorchOps
            if self.noise_on == "device":
                ops = TorchOps([self.gens[k] for k in members], self.net.device, self.net.dtype)
            else:
                ops = HostOps([self.noise_rngs[k] for k in members], self.plans[0].dtype)
            self._ops = (key, ops)
        return self._ops[1]

    def _noise(self, members: list[int], batch: int) -> tuple[Tensors, Tensors] | None:
        """The stacked noise of one step: layer l's (K, ...) array, member k's slice drawn
        from its own stream exactly as its solo trial draws it."""
        rates = self.rates[members]  # (K, unit layers)
        if not np.any(rates > 0):
            return None
        ops = self._ops_for(members)
        if isinstance(ops, HostOps):
            ops.start()
        n_layers = rates.shape[1]
        units: Tensors = [None] * n_layers
        masks: Tensors = [None] * n_layers
        on_weights = self.kind.target == "weights"
        for layer in range(n_layers):
            p = rates[:, layer]
            if not np.any(p > 0):
                continue
            ops.draw = p > 0  # a member of rate 0 draws nothing here, as alone
            shape = (len(members), *self.plans[0].noise_shape(layer, batch))
            t = (self.kind.sample(ops, shape, p) if isinstance(ops, TorchOps)
                 else self.net._to_backend(self.kind.sample(ops, shape, p)))
            if on_weights:
                masks[layer] = t
            else:
                units[layer] = t
        return units, masks

    def run(self, members: list[int], orders: list[np.ndarray], batch_size: int
            ) -> np.ndarray:
        """One epoch of the current members (``orders[i]``: member ``members[i]``'s order);
        returns each member's sum of mini-batch loss x batch size (one read-back)."""
        net = self.net
        offsets = np.array([self.offsets[k] for k in members], dtype=np.int64)[:, None]
        idx_all = net._labels(np.stack(orders) + offsets)  # (K, n): the epoch's one copy
        total = torch.zeros(len(members), dtype=torch.float64, device=net.device)
        with torch.no_grad():
            for start in range(0, self.n, batch_size):
                idx = idx_all[:, start : start + batch_size]
                k, b = idx.shape
                flat = idx.reshape(-1)
                xb = self.x.index_select(0, flat).view(k, b, -1)
                yb = self.y.index_select(0, flat).view(k, b)
                loss = net._step(xb, yb, self._noise(members, b))
                total.add_(loss.to(torch.float64), alpha=b)  # on the device: no sync
        sums: np.ndarray = net._to_numpy(total).copy()
        return sums
