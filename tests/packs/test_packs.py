"""The pack conformance suite: every member of a pack is the trial it would be alone.

For every variant, pack sizes 1..4, mixed p, input_p, lr, seeds, optimizers, weight decay,
max-norm and schedules: run_pack's outcome of each member equals run_trial's (rows, final
numbers, best epoch, health, after-training statistics, weights) to 1e-9 relative in float64,
and within the between-backends tolerance in float32. One diverging member leaves the others
identical; an exception in the stacked training fails only the members not finished.
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest

from dropout_lab import variants
from dropout_lab.config import validate
from dropout_lab.packs import PackMember, run_pack
from dropout_lab.sweep import trial_id_of
from dropout_lab.trial import run_trial
from dropout_lab.variants import names as variant_names

pytest.importorskip("torch", reason="packs train on the torch backend")

# The device the suite trains on: cpu here; DROPOUT_LAB_PACK_DEVICE=cuda runs it on a GPU
# (members against their solo runs on that device).
DEVICE = os.environ.get("DROPOUT_LAB_PACK_DEVICE", "cpu")

BASE = {
    "name": "packs",
    "backend": "torch", "device": DEVICE, "dtype": "float64",
    "dataset": {"name": "synthetic", "n_train": 120, "n_test": 60, "n_features": 8,
                "n_classes": 3},
    "model": {"hidden": [16, 12]},
    "dropout": {"p": 0.5},
    "train": {"epochs": 3, "batch_size": 32, "optimizer": "momentum", "lr": 0.05},
    "eval": {"mc_samples": 3, "max_samples": 60, "pair_samples": 3, "ablation_draws": 1,
             "save_weights": "all"},
}


def config(base=None, **changes):
    raw = copy.deepcopy(base or BASE)
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        holder = raw
        for part in path:
            holder = holder.setdefault(part, {})
        holder[key] = value
    return validate(raw)


def member(cfg, i=0):
    return PackMember(cfg.trial_dict(), trial_id_of(cfg), {"i": i})


def close(a, b, rel, where="result"):
    """Nested dicts/lists of numbers equal to ``rel`` relative (strings, None, bools exact)."""
    if isinstance(b, dict):
        assert isinstance(a, dict) and set(a) == set(b), (where, set(a) ^ set(b))
        for key in b:
            close(a[key], b[key], rel, f"{where}.{key}")
    elif isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, rel, f"{where}[{i}]")
    elif isinstance(b, float) and not isinstance(b, bool):
        if math.isnan(b):
            assert math.isnan(a), where
        else:
            assert a == pytest.approx(b, rel=rel, abs=rel), (where, a, b)
    else:
        assert a == b, (where, a, b)


def assert_member_is_solo(outcome, solo, size, index, rel=1e-9):
    assert outcome.trial_id == solo.trial_id
    assert outcome.status == solo.status, (outcome.error, solo.error)
    packed_result = copy.deepcopy(outcome.result)
    assert packed_result["env"].pop("pack") == {"size": size, "index": index}
    assert set(packed_result["env"]) == set(solo.result["env"])
    for part in (packed_result, solo.result):
        part.pop("env"), part.pop("timing")
    close(packed_result, solo.result, rel)
    strip = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in outcome.metrics]
    solo_rows = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in solo.metrics]
    close(strip, solo_rows, rel, "metrics")
    assert set(outcome.arrays) == set(solo.arrays)
    for key, value in solo.arrays.items():
        np.testing.assert_allclose(outcome.arrays[key], value, rtol=max(rel, 1e-6), atol=1e-6)


def check_pack(cfgs, rel=1e-9):
    members = [member(c, i) for i, c in enumerate(cfgs)]
    outcomes = run_pack(members, threads=1)
    assert [o.trial_id for o in outcomes] == [m.trial_id for m in members]
    solos = [run_trial(m.config, m.trial_id, m.params, threads=1) for m in members]
    for index, (outcome, solo) in enumerate(zip(outcomes, solos, strict=True)):
        assert_member_is_solo(outcome, solo, len(members), index, rel)
    return outcomes


# -- member == solo ---------------------------------------------------------------------------
@pytest.mark.parametrize("variant", [n for n in variant_names() if variants.get(n).packs])
def test_every_variant_member_equals_solo_float64(variant):
    """Mixed p (one member without dropout), input_p, lr and seeds."""
    cfgs = [
        config(dropout__variant=variant, seed=0, dropout__p=0.5, dropout__input_p=0.2),
        config(dropout__variant=variant, seed=1, dropout__p=[0.3, 0.0], train__lr=0.1),
        config(dropout__variant=variant, seed=2, dropout__p=0.0, dropout__input_p=0.0),
    ]
    outcomes = check_pack(cfgs)
    assert all(o.status == "done" for o in outcomes)


@pytest.mark.parametrize("size", [1, 2, 4])
def test_pack_sizes_member_equals_solo(size):
    cfgs = [config(seed=s, dropout__p=0.1 * s, train__lr=0.02 + 0.02 * s) for s in range(size)]
    check_pack(cfgs)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_per_member_optimizer_settings_and_schedules(optimizer):
    """Weight decay, max-norm (one member without), the lr schedule and (momentum) the
    momentum schedule differ between members."""
    mom_sched = ({"kind": "linear", "start": 0.5, "end": 0.95, "epochs": 2}
                 if optimizer == "momentum" else "constant")
    cfgs = [
        config(train__optimizer=optimizer, seed=3, train__weight_decay=1e-2, train__max_norm=1.0,
               train__lr_schedule={"kind": "cosine", "warmup_epochs": 1}),
        config(train__optimizer=optimizer, seed=4, train__lr=0.02,
               train__lr_schedule={"kind": "step", "gamma": 0.5, "milestones": [1]},
               train__momentum_schedule=mom_sched),
        config(train__optimizer=optimizer, seed=5, train__max_norm=0.5, dropout__p=0.2),
    ]
    check_pack(cfgs)


def test_members_with_their_own_training_sets():
    """A stratified subset and a validation split drawn from each member's seed: members train
    on different examples (and two members of one seed share a copy)."""
    cfgs = [config(seed=s, dataset__train_size=90, dataset__val_fraction=0.2, train__lr=lr)
            for s, lr in ((0, 0.05), (1, 0.05), (0, 0.1))]
    check_pack(cfgs)


def test_device_noise_member_equals_solo():
    """dropout.noise: device: each member's own torch.Generator, seeded as alone."""
    cfgs = [config(dropout__noise="device", seed=s, dropout__p=p)
            for s, p in ((0, 0.5), (1, 0.2))]
    check_pack(cfgs)


def test_float32_members_within_the_backends_tolerance():
    """float32: losses within 1e-4 and accuracies within two examples of the solo trial (the
    tolerance tests/backends/test_conformance.py holds the torch backend to)."""
    cfgs = [config(dtype="float32", seed=s, dropout__p=p, train__lr=lr)
            for s, p, lr in ((0, 0.5, 0.05), (1, 0.2, 0.1), (2, 0.0, 0.03))]
    members = [member(c, i) for i, c in enumerate(cfgs)]
    for outcome, m in zip(run_pack(members, threads=1), members, strict=True):
        solo = run_trial(m.config, m.trial_id, m.params, threads=1)
        assert outcome.status == solo.status == "done"
        for row, ref in zip(outcome.metrics, solo.metrics, strict=True):
            for key in ("fit_loss", "train_loss", "test_loss"):
                assert abs(row[key] - ref[key]) <= 1e-4, (key, row[key], ref[key])
            assert abs(row["test_acc"] - ref["test_acc"]) * 60 <= 2 + 1e-9
            assert abs(row["train_acc"] - ref["train_acc"]) * 120 <= 2 + 1e-9


# -- isolation --------------------------------------------------------------------------------
def test_a_diverging_member_leaves_the_others_identical():
    cfgs = [config(seed=0), config(seed=1, train__lr=1e250), config(seed=2)]
    outcomes = check_pack(cfgs)
    assert [o.status for o in outcomes] == ["done", "diverged", "done"]
    assert "non-finite" in outcomes[1].result["reason"]
    # it left the pack early; the others trained on to the end
    assert len(outcomes[1].metrics) < 3 and outcomes[0].result["epochs_trained"] == 3


def test_an_exception_in_the_stacked_training_fails_only_unfinished_members(monkeypatch):
    """Member 0 early-stops after epoch 2 (done, as alone); the stacked step then raises in
    epoch 3: members 1 and 2, not finished, fail with that error."""
    from dropout_lab.packs import epochs as pack_epochs

    base = config(dataset__val_fraction=0.25).model_dump(mode="json", exclude={"sweep"})
    cfgs = [config(base, train__early_stopping={"patience": 1, "min_delta": 100.0}, seed=0),
            config(base, seed=1), config(base, seed=2, dropout__p=0.2)]
    members = [member(c, i) for i, c in enumerate(cfgs)]
    real_run = pack_epochs.PackEpochs.run
    calls = []

    def failing_run(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("injected fault in the stacked step")
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(pack_epochs.PackEpochs, "run", failing_run)
    outcomes = run_pack(members, threads=1)
    monkeypatch.undo()
    solo = run_trial(members[0].config, members[0].trial_id, members[0].params, threads=1)
    assert solo.result["stopped_by"] == "early_stopping" and solo.result["epochs_trained"] == 2
    assert_member_is_solo(outcomes[0], solo, 3, 0)
    for outcome in outcomes[1:]:
        assert outcome.status == "failed"
        assert "injected fault" in outcome.result["error"]
        assert "injected fault" in outcome.error
        assert [row["epoch"] for row in outcome.metrics] == [1, 2]


def test_an_exception_in_one_members_callback_fails_only_that_member():
    cfgs = [config(seed=0), config(seed=1)]
    members = [member(c, i) for i, c in enumerate(cfgs)]

    def on_epoch(trial_id, epoch, epochs, row):
        if trial_id == members[0].trial_id and epoch == 2:
            raise OSError("disk full")

    outcomes = run_pack(members, threads=1, on_epoch=on_epoch)
    assert outcomes[0].status == "failed" and "disk full" in outcomes[0].result["error"]
    solo = run_trial(members[1].config, members[1].trial_id, members[1].params, threads=1)
    assert_member_is_solo(outcomes[1], solo, 2, 1)


# -- the device path, counted on the CPU ------------------------------------------------------
class CountingPack:
    """Counts a TorchPackNetwork's host<->device transfers (every copy of the torch backend
    goes through _to_backend/_labels one way and _to_numpy/_item the other)."""

    def __init__(self, net):
        self.copies = {"to_device": 0, "to_host": 0}
        for name, way in (("_to_backend", "to_device"), ("_labels", "to_device"),
                          ("_to_numpy", "to_host"), ("_item", "to_host")):
            real = getattr(net, name)

            def counted(*args, _real=real, _way=way):
                self.copies[_way] += 1
                return _real(*args)

            setattr(net, name, counted)


@pytest.mark.parametrize("noise", ["device", "host"])
def test_a_pack_epoch_reads_the_losses_back_once(noise):
    """One epoch of 4 mini-batches: the data went to the device before it, the epoch sends one
    index matrix (and, with host noise, each step's masks) and reads one loss vector back."""
    from dropout_lab.backends.torch_pack import TorchPackNetwork
    from dropout_lab.packs.epochs import PackEpochs
    from dropout_lab.training import EpochLoop
    from dropout_lab.trial import prepare

    preps = [prepare(config(seed=s, dropout__noise=noise, dropout__input_p=0.2), threads=1)
             for s in (0, 1)]
    net = TorchPackNetwork(preps[0].spec, [p.network.get_weights() for p in preps],
                           [p.config.train.optimizer_spec() for p in preps],
                           [list(p.spec.test_scales) for p in preps], preps[0].device)
    loops = [EpochLoop(p) for p in preps]
    epochs = PackEpochs(net, preps, [loop.noise_rng for loop in loops], noise)
    counter = CountingPack(net)
    orders = [loop.begin(1)[2] for loop in loops]
    sums = epochs.run([0, 1], orders, batch_size=32)  # 120 examples: 4 steps
    assert sums.shape == (2,) and np.all(np.isfinite(sums))
    assert counter.copies["to_host"] == 1
    # host noise: the input and both hidden layers are noisy: three mask copies per step
    per_step = 0 if noise == "device" else 3
    assert counter.copies["to_device"] == 1 + 4 * per_step


def test_tanh_dropconnect_adam_and_per_member_evaluation_settings():
    """tanh, weight noise, Adam; members evaluate on their own schedule (eval.every) and
    curve sample (eval.train_subset), and one keeps all weights while another keeps none."""
    base = config(model__activation="tanh", dropout__variant="dropconnect",
                  train__optimizer="adam", train__lr=0.01, train__epochs=4
                  ).model_dump(mode="json", exclude={"sweep"})
    cfgs = [config(base, seed=0, eval__every=2, eval__train_subset=50),
            config(base, seed=1, dropout__p=0.2, eval__save_weights="none",
                   eval__coadaptation=False),
            config(base, seed=2, dropout__input_p=0.3, eval__uncertainty=False)]
    check_pack(cfgs)


def test_members_of_different_pack_keys_are_refused():
    from dropout_lab.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot share a pack"):
        run_pack([member(config(seed=0)), member(config(model__hidden=[8, 8]), 1)])
    with pytest.raises(ConfigError, match="cannot share a pack"):
        run_pack([member(config(backend="numpy"))])


def test_evaluations_every_member_asks_for_run_as_one_stacked_pass(monkeypatch):
    """The per-epoch evaluations (train, test) of three members on one data set go through
    the pack's stacked forward pass, not three solo ones; the rows still equal the solo runs
    (check_pack)."""
    from dropout_lab.backends.torch_pack import TorchPackNetwork

    calls = []
    real_forward = TorchPackNetwork.forward

    def counted(self, x, *args, **kwargs):
        if not args and kwargs.get("noise") is None:  # (not the statistics' MC passes)
            calls.append((self.k, np.asarray(x).ndim))
        return real_forward(self, x, *args, **kwargs)

    monkeypatch.setattr(TorchPackNetwork, "forward", counted)
    check_pack([config(seed=0), config(seed=1, dropout__p=0.2), config(seed=2, train__lr=0.1)])
    # 3 epochs x (train, test), each one pass for all 3 members on the shared arrays
    assert calls == [(3, 2)] * 6


def test_each_outcome_is_handed_over_as_soon_as_it_is_final():
    """on_outcome: member 0 early-stops after epoch 2 and member 1 diverges, both before the
    pack ends: their outcomes come while member 2 still trains (its rows come after)."""
    base = config(dataset__val_fraction=0.25).model_dump(mode="json", exclude={"sweep"})
    cfgs = [config(base, train__early_stopping={"patience": 1, "min_delta": 100.0}, seed=0),
            config(base, seed=1, train__lr=1e250), config(base, seed=2)]
    members = [member(c, i) for i, c in enumerate(cfgs)]
    events = []
    outcomes = run_pack(members, threads=1,
                        on_epoch=lambda tid, epoch, epochs, row: events.append((tid, epoch)),
                        on_outcome=lambda outcome: events.append((outcome.trial_id, "final")))
    assert [o.status for o in outcomes] == ["done", "diverged", "done"]
    last_row_of_2 = events.index((members[2].trial_id, 3))
    assert events.index((members[0].trial_id, "final")) < last_row_of_2
    assert events.index((members[1].trial_id, "final")) < last_row_of_2
    assert events[-1] == (members[2].trial_id, "final")
    assert sum(e[1] == "final" for e in events) == 3
