"""The after-training statistics of a pack's members, batched (issue 19): the Monte Carlo
dropout passes of the members that finish together run as one stacked forward pass per pass
number (metrics.after_training_many), and each member's numbers equal its solo numbers
(float64, 1e-9 relative). The pack batches them on a GPU only (on the CPU the passes are
large products and batching measured slower: packs/stacked.py BATCH_STATISTICS_ON_CPU);
here the batched path is run on the CPU directly and through run_pack with the switch on.
With DROPOUT_LAB_PACK_DEVICE=cuda (benchmarks/gpu_check.sh) test_packs.py takes it too."""

from __future__ import annotations

import pytest

from tests.packs.test_packs import check_pack, close, config

pytest.importorskip("torch", reason="packs train on the torch backend")

from dropout_lab.backends.torch_pack import TorchPackNetwork  # noqa: E402
from dropout_lab.metrics import after_training, after_training_many  # noqa: E402
from dropout_lab.packs.stacked import _stacked_forward  # noqa: E402
from dropout_lab.trial import prepare  # noqa: E402

MC = {"eval__mc_samples": 5}


def _trained(cfgs):
    """Prepared members after a few solo epochs (their own weights: the statistics see
    different networks)."""
    from dropout_lab.training import train

    preps = [prepare(c, threads=1) for c in cfgs]
    for prep in preps:
        train(prep)
    return preps


def test_batched_statistics_equal_each_members_own_known_answer(monkeypatch):
    """Same weights, two ways: after_training_many with a stacked forward against
    after_training member by member. Members 0, 1 and 4 (noise in both hidden layers, one
    with input dropout, one with dropconnect-free rates (0.5, 0.2)) batch; member 2 (no
    dropout: no passes) and member 3 (noise only in the last layer: the read-out shortcut)
    compute alone; member 4 has its own mc_samples: a group of its own, computed alone."""
    cfgs = [config(seed=0, dropout__input_p=0.2, **MC),
            config(seed=1, dropout__p=[0.5, 0.2], **MC),
            config(seed=2, dropout__p=0.0, **MC),
            config(seed=3, dropout__p=[0.0, 0.5], **MC),
            config(seed=4, dropout__p=0.3, eval__mc_samples=7)]
    preps = _trained(cfgs)
    calls = []
    real = TorchPackNetwork.forward

    def counted(self, x, noise=None, *args, **kwargs):
        calls.append((self.k, noise is not None))
        return real(self, x, noise, *args, **kwargs)

    monkeypatch.setattr(TorchPackNetwork, "forward", counted)
    batched = after_training_many(preps, _stacked_forward(preps))
    monkeypatch.undo()
    alone = [after_training(p) for p in preps]
    for mine, ref in zip(batched, alone, strict=True):
        close(mine, ref, 1e-9, "statistics")
    # members 0 and 1: max(5, 50) passes, each one K=2 forward; member 4, alone in its
    # group, through its own network
    assert calls == [(2, True)] * 50


def test_dropconnect_and_device_noise_members_batch_and_equal_solo(monkeypatch):
    """Weight noise (a mask per pass on every weight matrix) and members that trained with
    noise on the device: run_pack against run_trial, statistics included, with the batched
    statistics turned on for the CPU (the pack uses them on a GPU only)."""
    import dropout_lab.packs.stacked as stacked

    monkeypatch.setattr(stacked, "BATCH_STATISTICS_ON_CPU", True)
    calls = []
    real = stacked.after_training_many

    def counted(preps, forward=None):
        calls.append(len(preps))
        return real(preps, forward)

    monkeypatch.setattr(stacked, "after_training_many", counted)
    check_pack([config(dropout__variant="dropconnect", seed=s, dropout__p=p, **MC)
                for s, p in ((0, 0.5), (1, 0.2), (2, 0.4))])
    check_pack([config(dropout__noise="device", seed=s, dropout__p=p, **MC)
                for s, p in ((0, 0.5), (1, 0.2))])
    assert calls == [3, 2]


def test_a_batch_that_raises_leaves_each_member_to_compute_its_own(monkeypatch):
    """A failure inside the batched statistics is not the members' failure: each then
    computes alone (and matches its solo trial)."""
    import dropout_lab.packs.stacked as stacked

    monkeypatch.setattr(stacked, "BATCH_STATISTICS_ON_CPU", True)

    def broken(preps, forward=None):
        raise RuntimeError("injected fault in the batched statistics")

    monkeypatch.setattr(stacked, "after_training_many", broken)
    outcomes = check_pack([config(seed=0, **MC), config(seed=1, dropout__p=0.2, **MC)])
    assert all(o.status == "done" and "uncertainty" in o.result for o in outcomes)
