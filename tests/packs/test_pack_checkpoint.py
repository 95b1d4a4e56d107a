"""Pack checkpoints (issue 19): a pack honours ``train.checkpoint_every`` with one checkpoint
per member still training, in the solo format and the member's own trial folder; members
continuing from them (run_pack with ``resume``) end bit for bit as the uninterrupted pack, and
within the conformance tolerance of their solo trials. The kill -9 tests through the CLI are
in tests/reliability/test_rel_pack_checkpoint.py."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest

from dropout_lab import checkpoint
from tests.packs.test_packs import assert_member_is_solo, config, member

pytest.importorskip("torch", reason="packs train on the torch backend")

from dropout_lab.packs import run_pack  # noqa: E402
from dropout_lab.trial import run_trial  # noqa: E402


def _checkpointed(cfgs, every=1):
    """The members, the uninterrupted pack's outcomes and every checkpoint it sent:
    {epoch: {trial_id: bytes}}."""
    members = [member(c.model_copy(update={"train": c.train.model_copy(
        update={"checkpoint_every": every})}), i) for i, c in enumerate(cfgs)]
    sent: dict[int, dict[str, bytes]] = {}

    def on_checkpoint(trial_id, epoch, data):
        sent.setdefault(epoch, {})[trial_id] = data

    outcomes = run_pack(members, threads=1, on_checkpoint=on_checkpoint)
    return members, outcomes, sent


def _numbers(outcome):
    """Everything an outcome computed but its timings (bit for bit comparable)."""
    result = copy.deepcopy(outcome.result)
    for key in ("timing", "resumed"):
        result.pop(key, None)
    result["env"].pop("pack")
    rows = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in outcome.metrics]
    arrays = {k: v.tobytes() for k, v in outcome.arrays.items()}
    # as JSON text: equal texts are equal numbers, NaN (an empty reliability bin) included
    return json.dumps(result), json.dumps(rows), arrays


def _resume(members, kept, only=None):
    """run_pack again, each member of ``only`` (default: all) from its checkpoint in
    ``kept``."""
    chosen = members if only is None else [members[i] for i in only]
    return run_pack([dataclasses.replace(m, resume=kept[m.trial_id]) for m in chosen],
                    threads=1)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_members_resumed_from_a_packs_checkpoints_end_bitwise_as_the_uninterrupted_pack(dtype):
    cfgs = [config(dtype=dtype, seed=0, dropout__input_p=0.2, train__epochs=4),
            config(dtype=dtype, seed=1, dropout__p=0.2, train__lr=0.1, train__epochs=4),
            config(dtype=dtype, seed=2, dropout__p=0.0, train__epochs=4)]
    members, outcomes, sent = _checkpointed(cfgs)
    assert sorted(sent) == [1, 2, 3]  # after every epoch but the last (then the result)
    assert all(set(sent[e]) == {m.trial_id for m in members} for e in sent)
    ckpt = checkpoint.parse(sent[2][members[1].trial_id])
    assert ckpt.stacked and ckpt.epoch == 2 and len(ckpt.rows) == 2
    # the solo format: the member's own slice, in the solo names and shapes
    assert ckpt.arrays["net.W0"].shape == (8, 16)
    resumed = _resume(members, sent[2])
    for before, after in zip(outcomes, resumed, strict=True):
        assert after.status == "done"
        assert after.result["resumed"]["from_epoch"] == 2
        assert _numbers(after) == _numbers(before)  # bit for bit
    if dtype == "float64":  # and, as the uninterrupted pack, the trial it is alone
        for index, (m, after) in enumerate(zip(members, resumed, strict=True)):
            solo = run_trial(m.config, m.trial_id, m.params, threads=1)
            after.result.pop("resumed")
            assert_member_is_solo(after, solo, 3, index)


def test_a_subset_of_members_resumes_bitwise_even_alone():
    """After a kill, only the unfinished members come back, in another pack's company (or
    none: a pack of one on the pack's code path): each still ends as the uninterrupted pack."""
    cfgs = [config(seed=s, dropout__p=p, train__epochs=4) for s, p in ((0, 0.5), (1, 0.3),
                                                                          (2, 0.1))]
    members, outcomes, sent = _checkpointed(cfgs)
    for only in ([2], [0, 2]):
        resumed = _resume(members, sent[1], only)
        for i, after in zip(only, resumed, strict=True):
            assert _numbers(after) == _numbers(outcomes[i])


@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_optimizer_state_device_noise_and_early_stopping_survive_the_checkpoint(optimizer):
    """Adam's two moments and step count, momentum's velocity, a member's device generator
    (noise: device) and early stopping's state (member 0 stops after epoch 3) all come back."""
    base = config(dataset__val_fraction=0.25, train__epochs=5, train__optimizer=optimizer,
                  train__lr=0.01 if optimizer == "adam" else 0.05, dropout__noise="device"
                  ).model_dump(mode="json", exclude={"sweep"})
    cfgs = [config(base, seed=0, train__early_stopping={"patience": 2, "min_delta": 100.0}),
            config(base, seed=1, dropout__p=0.2, train__max_norm=1.0),
            config(base, seed=2, train__weight_decay=1e-2)]
    members, outcomes, sent = _checkpointed(cfgs)
    assert outcomes[0].result["stopped_by"] == "early_stopping"
    assert set(sent[2]) == {m.trial_id for m in members}
    assert set(sent[3]) == {m.trial_id for m in members[1:]}  # member 0 ended at epoch 3
    resumed = _resume(members, sent[2])
    for before, after in zip(outcomes, resumed, strict=True):
        assert _numbers(after) == _numbers(before)


def test_checkpoint_every_n_epochs_and_a_solo_run_of_a_packs_checkpoint():
    """Every 2 epochs; a pack's checkpoint continued by run_trial (``--pack 1`` would not do
    that: a pack's checkpoint resumes on the pack's path) is the solo trial within the
    conformance tolerance, not bit for bit."""
    cfgs = [config(seed=0, train__epochs=5), config(seed=1, dropout__p=0.2, train__epochs=5)]
    members, outcomes, sent = _checkpointed(cfgs, every=2)
    assert sorted(sent) == [2, 4]
    m = members[1]
    solo = run_trial(m.config, m.trial_id, m.params, threads=1)
    continued = run_trial(m.config, m.trial_id, m.params, threads=1, resume=sent[2][m.trial_id])
    assert continued.result["resumed"]["from_epoch"] == 2
    continued.result.pop("resumed")
    continued.result["env"]["pack"] = {"size": 2, "index": 1}
    assert_member_is_solo(continued, solo, 2, 1)


def test_a_checkpoint_that_does_not_fit_starts_that_member_over_in_its_own_stack():
    """Member 1's checkpoint belongs to another trial: it starts over (warning), trained as a
    stack of its own after the others; every member still ends as uninterrupted."""
    cfgs = [config(seed=0, train__epochs=3), config(seed=1, dropout__p=0.2, train__epochs=3)]
    members, outcomes, sent = _checkpointed(cfgs)
    kept = dict(sent[1])
    kept[members[1].trial_id] = sent[1][members[0].trial_id]
    resumed = _resume(members, kept)
    assert resumed[0].result["resumed"]["from_epoch"] == 1
    assert resumed[1].result["resumed"]["from_epoch"] == 0
    assert "belongs to trial" in resumed[1].result["resumed"]["ignored"]
    for before, after in zip(outcomes, resumed, strict=True):
        assert _numbers(after) == _numbers(before)
    assert np.isfinite(resumed[1].result["final"]["test_loss"])
