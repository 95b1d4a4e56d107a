"""Learning-rate and momentum schedules: hand-computed values, what the network is given each
epoch, both backends following them alike, and config errors naming the key."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from dropout_lab.backends import registry
from dropout_lab.config import LRSchedule, MomentumSchedule, TrainConfig, validate
from dropout_lab.errors import BackendError
from dropout_lab.schedules import hyperparameters_at, lr_at, momentum_at
from dropout_lab.training import train
from dropout_lab.trial import prepare
from tests.helpers.configs import TINY


def backend_or_skip(name: str) -> None:
    try:
        registry.create(name)
    except BackendError as exc:
        pytest.skip(str(exc))


# -- values, computed by hand -----------------------------------------------------------------
@pytest.mark.parametrize("schedule, epochs, expected", [
    ({"kind": "constant"}, 3, [0.1, 0.1, 0.1]),
    ({"kind": "step", "gamma": 0.5, "milestones": [2, 4]}, 6,
     [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]),
    ({"kind": "exponential", "gamma": 0.9}, 4, [0.1, 0.09, 0.081, 0.0729]),
    # t = (e - 1) / 4: 0.1 (1 + cos(pi t)) / 2, min_lr (0) reached at the last epoch
    ({"kind": "cosine"}, 5, [0.1, 0.0853553, 0.05, 0.0146447, 0.0]),
    ({"kind": "cosine", "min_lr": 0.01}, 2, [0.1, 0.01]),
    ({"kind": "cosine", "min_lr": 0.01}, 1, [0.1]),  # one epoch: t = 0
    ({"kind": "constant", "warmup_epochs": 2}, 3, [0.05, 0.1, 0.1]),
    # warm-up 2 epochs, then cosine over epochs 3..6 with t = (e - 3) / 3
    ({"kind": "cosine", "warmup_epochs": 2}, 6,
     [0.05, 0.1, 0.1, 0.075, 0.025, 0.0]),
])
def test_learning_rate_schedules_match_hand_computed_values(schedule, epochs, expected):
    s = LRSchedule.model_validate(schedule)
    got = [lr_at(s, 0.1, e, epochs) for e in range(1, epochs + 1)]
    assert got == pytest.approx(expected, abs=1e-7)


def test_cosine_reaches_min_lr_at_the_last_epoch():
    # issue 21 item 8: min_lr is documented as the final learning rate (was 0.00342 for 0.001)
    s = LRSchedule.model_validate({"kind": "cosine", "min_lr": 0.001, "warmup_epochs": 3})
    assert lr_at(s, 0.1, 30, 30) == pytest.approx(0.001, abs=1e-15)
    assert lr_at(s, 0.1, 4, 30) == pytest.approx(0.1)


def test_linear_momentum_ramp_then_constant():
    s = MomentumSchedule(kind="linear", start=0.5, end=0.9, epochs=4)
    got = [momentum_at(s, 0.99, e) for e in range(1, 7)]
    assert got == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 0.9])
    assert momentum_at(MomentumSchedule(), 0.95, 7) == 0.95


def test_shorthand_names_a_schedule_kind():
    t = TrainConfig.model_validate({"lr_schedule": "cosine", "epochs": 4})
    assert t.lr_schedule.kind == "cosine"
    assert hyperparameters_at(t, 4) == pytest.approx((lr_at(t.lr_schedule, t.lr, 4, 4), 0.9))


# -- the network is given the schedule's value every epoch --------------------------------------
def schedule_config(backend: str, dtype: str = "float32", **train) -> dict:
    data = copy.deepcopy(TINY)
    data["sweep"] = {}
    data["backend"] = backend
    data["dtype"] = dtype
    data["train"].update(epochs=5, **train)
    return data


STEP_AND_RAMP = {"lr_schedule": {"kind": "step", "gamma": 0.5, "milestones": [2, 3]},
                 "momentum_schedule": {"kind": "linear", "start": 0.5, "end": 0.9, "epochs": 2}}


class HyperRecorder:
    """Wraps a network and records every set_hyperparameters call and the steps in between."""

    def __init__(self, net):
        self.net, self.calls = net, []

    def set_hyperparameters(self, lr, momentum):
        self.calls.append([lr, momentum, 0])
        self.net.set_hyperparameters(lr, momentum)

    def train_step(self, x, y, noise):
        self.calls[-1][2] += 1
        return self.net.train_step(x, y, noise)

    def __getattr__(self, attr):
        return getattr(self.net, attr)


def test_every_epoch_gets_its_values_before_its_steps_and_they_are_logged():
    prep = prepare(validate(schedule_config("numpy", **STEP_AND_RAMP)))
    prep.network = HyperRecorder(prep.network)
    rows = train(prep)
    expected = [0.05, 0.5, 0.05, 0.7, 0.025, 0.9, 0.0125, 0.9, 0.0125, 0.9]  # (lr, mu) per epoch
    assert [v for lr, mu, _ in prep.network.calls for v in (lr, mu)] == pytest.approx(expected)
    assert all(steps == 4 for _, _, steps in prep.network.calls)  # 120 examples / 32
    assert [v for r in rows for v in (r["lr"], r["momentum"])] == pytest.approx(expected)


# -- both backends follow a schedule alike -------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
@pytest.mark.parametrize("name", registry.names())
def test_a_step_of_every_backend_uses_the_current_lr_and_momentum(name, optimizer):
    """W1 = W0 - lr g (sgd); v1 = g, v2 = mu v1 + g2 and W2 = W1 - lr v2 (momentum),
    with the values given by set_hyperparameters, not those of the config."""
    backend_or_skip(name)
    cfg = validate(schedule_config(name, "float64", optimizer=optimizer, lr=0.3, momentum=0.1))
    cfg.dropout.p = 0.0
    prep = prepare(cfg)
    net = prep.network
    x, y = prep.data.x_train[:16], prep.data.y_train[:16]
    w0 = net.get_weights()
    _, g1 = net.loss_and_grads(x, y, None)
    net.set_hyperparameters(0.02, 0.6)
    net.train_step(x, y, None)
    w1 = net.get_weights()
    for (a, _), (b, _), (g, _) in zip(w0, w1, g1, strict=True):
        np.testing.assert_allclose(b, a - 0.02 * g, rtol=1e-10, atol=1e-12)
    if optimizer == "momentum":
        _, g2 = net.loss_and_grads(x, y, None)
        net.set_hyperparameters(0.01, 0.6)
        net.train_step(x, y, None)
        w2 = net.get_weights()
        for (a, _), (b, _), (ga, _), (gb, _) in zip(w1, w2, g1, g2, strict=True):
            np.testing.assert_allclose(b, a - 0.01 * (0.6 * ga + gb), rtol=1e-9, atol=1e-12)


def final_weights(name: str, **train) -> list[np.ndarray]:
    prep = prepare(validate(schedule_config(name, "float64", **train)), threads=1)
    train_rows = train_fn(prep)
    assert len(train_rows) == 5
    return [w for w, _ in prep.network.get_weights()]


train_fn = train


@pytest.mark.parametrize("name", [n for n in registry.names() if n != "numpy"])
def test_backends_agree_under_schedules_in_float64(name):
    backend_or_skip(name)
    reference = final_weights("numpy", **STEP_AND_RAMP)
    other = final_weights(name, **STEP_AND_RAMP)
    for a, b in zip(reference, other, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    constant = final_weights("numpy")
    assert max(np.abs(a - c).max() for a, c in zip(reference, constant, strict=True)) > 1e-3


# -- config: bad schedules are one message naming the key ----------------------------------------
@pytest.mark.parametrize("override, words", [
    ("train.lr_schedule.kind=step", ["train.lr_schedule", "gamma"]),
    ("train.lr_schedule={kind: step, gamma: 0.1}", ["milestones"]),
    ("train.lr_schedule={kind: step, gamma: 0.1, milestones: [5, 2]}", ["increasing"]),
    ("train.lr_schedule={kind: exponential, gamma: 1.5}", ["train.lr_schedule.gamma"]),
    ("train.lr_schedule={kind: cosine, gamma: 0.5}", ["takes no gamma"]),
    ("train.lr_schedule=linear", ["train.lr_schedule.kind"]),
    ("train.lr_schedule.warmup_epochs=50", ["warmup_epochs", "train.epochs"]),
    ("train.momentum_schedule={kind: linear, start: 0.5}", ["start, end and epochs"]),
    ("train.momentum_schedule={kind: linear, start: 0.5, end: 1.2, epochs: 3}",
     ["train.momentum_schedule.end"]),
    ("train.optimizer=adam", ["momentum_schedule needs optimizer: momentum"]),
    ("train.early_stopping={patience: 3}", ["val_fraction"]),
    ("train.early_stopping.patience=0", ["train.early_stopping.patience"]),
    ("eval.every=0", ["eval.every"]),
    ("eval.train_subset=-5", ["eval.train_subset"]),
])
def test_bad_schedule_options_exit_2_naming_the_key(cli, write_config, override, words):
    data = copy.deepcopy(TINY)
    if "optimizer=adam" in override:
        data["train"]["momentum_schedule"] = {"kind": "linear", "start": 0.5, "end": 0.9,
                                              "epochs": 2}
    code, out, err = cli("validate", write_config(data), "--set", override)
    assert code == 2, out
    assert "Traceback" not in err
    for w in words:
        assert w in err, err


def test_schedules_are_sweepable_axes(cli, write_config, tmp_path):
    data = copy.deepcopy(TINY)
    data["sweep"] = {"train.lr_schedule": ["constant", {"kind": "exponential", "gamma": 0.5}],
                     "seed": [0]}
    data["dropout"]["p"] = 0.0
    code, out, err = cli("sweep", write_config(data), "--runs-dir", tmp_path / "runs", "--json")
    assert code == 0, err
    import json

    results = json.loads(out)["trials"]
    assert len(results) == 2
    assert results[0]["final"]["train_loss"] != results[1]["final"]["train_loss"]
    lrs = []
    for r in results:
        metrics = (tmp_path / "runs" / "tiny" / "trials" / r["trial_id"] / "metrics.jsonl")
        rows = [json.loads(line) for line in metrics.read_text().splitlines()]
        lrs.append([row["lr"] for row in rows])
    assert lrs[0] == [0.05, 0.05] and lrs[1] == pytest.approx([0.05, 0.025])
    assert math.isclose(lrs[1][1], 0.025)
