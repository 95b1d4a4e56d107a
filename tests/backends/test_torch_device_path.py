"""The GPU-ready torch path, checked on the CPU device: no GPU is needed to count copies.

A network whose ``on_device`` is set treats the CPU as a separate device. Every host -> device
copy of the torch backend goes through ``_to_backend`` / ``_labels`` and every device -> host
transfer (a synchronisation on a GPU) through ``_to_numpy`` / ``_item``, so counting calls to
those four primitives counts the copies a GPU run would make.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from dropout_lab import seeds
from dropout_lab.backends.base import host_epoch, train_epoch
from dropout_lab.config import validate
from dropout_lab.training import train
from dropout_lab.trial import prepare
from tests.helpers.configs import TINY

torch = pytest.importorskip("torch", reason="the torch backend needs PyTorch")

from dropout_lab.backends.torch_backend import TorchNetwork  # noqa: E402
from dropout_lab.backends.torch_device import DeviceNoise  # noqa: E402


class CountingNetwork(TorchNetwork):
    """A TorchNetwork on the CPU that counts host<->device transfers by direction."""

    def __init__(self, *args, **kwargs) -> None:
        self.copies = {"to_device": 0, "to_host": 0}
        super().__init__(*args, **kwargs)
        self.on_device = True  # take the device path, as on a GPU
        self.copies = {"to_device": 0, "to_host": 0}  # count from here: not the weights' upload

    def _to_backend(self, a):
        self.copies["to_device"] += 1
        return super()._to_backend(a)

    def _labels(self, y):
        self.copies["to_device"] += 1
        return super()._labels(y)

    def _to_numpy(self, t):
        self.copies["to_host"] += 1
        return super()._to_numpy(t)

    def _item(self, t):
        self.copies["to_host"] += 1
        return super()._item(t)


def _config(noise: str, n_train: int = 256, variant: str = "inverted"):
    data = copy.deepcopy(TINY)
    data.update(backend="torch", sweep={})
    data["dataset"]["n_train"] = n_train
    data["dropout"] = {"p": 0.5, "input_p": 0.2, "variant": variant, "noise": noise}
    return validate(data)


def _counting(cfg):
    prep = prepare(cfg, threads=1)
    net = prep.network
    counting = CountingNetwork(prep.spec, net.get_weights(), cfg.train.optimizer_spec(), "cpu")
    return prep, counting


def _epoch(prep, net, noise_on: str, epoch_seed: int = 0) -> float:
    data, cfg = prep.data, prep.config
    order = seeds.rng(epoch_seed, "order").permutation(len(data.y_train))
    return train_epoch(net, data.x_train, data.y_train, order, cfg.train.batch_size, prep.plan,
                       seeds.rng(cfg.seed, "dropout"), noise_on)


@pytest.mark.parametrize("n_train", [128, 512])
def test_device_noise_path_copies_once_per_epoch_not_per_step(n_train):
    prep, net = _counting(_config("device", n_train))
    steps = -(-n_train // prep.config.train.batch_size)
    _epoch(prep, net, "device")  # binds the data: x and y go to the device once
    assert net.copies == {"to_device": 3, "to_host": 1}  # x, y, the order; the loss
    for k in range(1, 3):
        before = dict(net.copies)
        _epoch(prep, net, "device", epoch_seed=k)
        # Per epoch: one index vector up, one summed loss down; nothing per step.
        assert net.copies["to_device"] - before["to_device"] == 1
        assert net.copies["to_host"] - before["to_host"] == 1
    assert steps >= 4


def test_host_loop_copies_every_step_so_the_count_can_fail():
    prep, net = _counting(_config("host"))
    steps = -(-len(prep.data.y_train) // prep.config.train.batch_size)
    order = np.arange(len(prep.data.y_train))
    host_epoch(net, prep.data.x_train, prep.data.y_train, order, prep.config.train.batch_size,
               prep.plan, seeds.rng(0, "dropout"))
    # x, y and two noise arrays (input and hidden) up, the loss down, every step.
    assert net.copies == {"to_device": 4 * steps, "to_host": steps}


def test_host_noise_on_a_device_keeps_data_resident_and_matches_the_host_loop():
    """noise: host on a device: NumPy's masks, uploaded per step; the data stay resident and
    the loss is read once per epoch; the trained weights equal the step-by-step host loop's."""
    prep, net = _counting(_config("host"))
    _, reference = _counting(_config("host"))
    reference.on_device = False
    a = _epoch(prep, net, "host")
    b = _epoch(prep, reference, "host")
    assert net.copies["to_host"] == 1 and reference.copies["to_host"] > 1
    assert a == pytest.approx(b, rel=1e-6)
    for (w, _), (rw, _) in zip(net.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(w, rw, rtol=1e-5, atol=1e-6)


def test_device_noise_trains_deterministically_through_the_trial_loop():
    cfg = _config("device", n_train=512)
    runs = []
    for _ in range(2):
        prep = prepare(cfg, threads=1)
        rows = train(prep)
        runs.append(([r["fit_loss"] for r in rows], prep.network.get_weights()))
    (loss_a, w_a), (loss_b, w_b) = runs
    assert loss_a == loss_b  # the device generator is seeded from the trial's dropout stream
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(w_a, w_b, strict=True))
    host_prep = prepare(cfg.model_copy(update={"dropout": cfg.dropout.model_copy(
        update={"noise": "host"})}), threads=1)
    host_loss = [r["fit_loss"] for r in train(host_prep)]
    assert host_loss != loss_a  # other masks than NumPy's: the check above can fail


@pytest.mark.parametrize("variant", ["inverted", "standard", "gaussian", "dropconnect"])
def test_device_noise_has_the_variant_moments(variant):
    """Known answers: Bernoulli masks drop a fraction p (kept value 1/(1-p) when inverted or
    dropconnect, 1 when standard); gaussian noise has mean 1 and variance p/(1-p)."""
    from dropout_lab.dropout import make_plan

    p, batch = 0.3, 4000
    plan = make_plan(variant, 0.0, [p], [5, 50, 3], "float64")
    gen = torch.Generator().manual_seed(0)
    units, masks = DeviceNoise(plan, gen, torch.device("cpu"), torch.float64).sample(batch)
    r = (masks[1] if variant == "dropconnect" else units[1]).numpy()
    n = r.size
    if variant == "gaussian":
        assert abs(r.mean() - 1) < 5 * np.sqrt(p / (1 - p) / n)
        assert abs(r.var() - p / (1 - p)) < 0.05 * p / (1 - p)
    else:
        dropped = (r == 0).mean()
        assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)
        kept = 1 / (1 - p) if variant in ("inverted", "dropconnect") else 1.0
        assert np.allclose(r[r != 0], kept)
