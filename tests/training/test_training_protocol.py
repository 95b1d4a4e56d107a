"""The evaluation cadence (eval.train_subset, eval.every), early stopping, the best epoch and
the weights kept with a result."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from dropout_lab.config import validate
from dropout_lab.result import FINAL_KEYS
from dropout_lab.training import train
from dropout_lab.trial import best_epoch, prepare, run_trial
from tests.helpers.configs import TINY


def config(**changes) -> dict:
    data = copy.deepcopy(TINY)
    data["sweep"] = {}
    data["train"]["epochs"] = 5
    for section, values in changes.items():
        data.setdefault(section, {}).update(values)
    return data


def run(data: dict):
    return run_trial(validate(data).trial_dict(), "t", {})


def test_train_subset_and_every_change_the_curves_not_the_final_numbers():
    full = run(config(eval={"train_subset": None, "every": 1}))
    cheap = run(config(eval={"train_subset": 50, "every": 2}))
    assert full.status == cheap.status == "done"
    assert cheap.result["final"] == full.result["final"]  # training is untouched by evaluation
    assert [r["epoch"] for r in cheap.metrics if "test_acc" in r] == [2, 4, 5]
    assert all("test_acc" in r for r in full.metrics)
    assert [r["train_n"] for r in cheap.metrics if "train_n" in r] == [50, 50, 120]
    assert [r["train_n"] for r in full.metrics] == [120] * 5
    # the curve differs where it is measured on the subset
    assert cheap.metrics[1]["train_loss"] != full.metrics[1]["train_loss"]
    assert cheap.metrics[1]["test_loss"] == full.metrics[1]["test_loss"]
    assert [r["fit_loss"] for r in cheap.metrics] == [r["fit_loss"] for r in full.metrics]


def test_the_curve_subset_is_fixed_per_seed():
    from dropout_lab.evaluation import curve_rows

    a, b = curve_rows(1000, 100, 3), curve_rows(1000, 100, 3)
    assert np.array_equal(a, b) and len(np.unique(a)) == 100
    assert not np.array_equal(a, curve_rows(1000, 100, 4))
    assert curve_rows(100, 100, 0) is None and curve_rows(100, None, 0) is None


@pytest.mark.parametrize("patience, stops_at", [(1, 2), (2, 3)])
def test_early_stopping_stops_after_patience_epochs_without_improvement(patience, stops_at):
    """min_delta larger than any loss: only the first epoch improves on +inf, so training
    stops exactly `patience` epochs later (a known answer)."""
    out = run(config(dataset={"val_fraction": 0.25},
                     train={"early_stopping": {"patience": patience, "min_delta": 1e9}}))
    assert out.status == "done"
    assert out.result["stopped_by"] == "early_stopping"
    assert out.result["epochs_trained"] == stops_at == len(out.metrics)
    last = out.metrics[-1]
    assert last["train_n"] == 90  # the final epoch is evaluated on the whole training split
    assert out.result["final"] == {k: last[k] for k in FINAL_KEYS}
    assert all("val_loss" in r for r in out.metrics)


def test_without_early_stopping_every_epoch_is_trained():
    out = run(config(dataset={"val_fraction": 0.25}))
    assert out.result["stopped_by"] == "epochs" and out.result["epochs_trained"] == 5


def test_best_epoch_is_the_highest_validation_accuracy_earliest_on_ties():
    rows = []
    for e, val in enumerate([0.5, 0.8, 0.7, 0.8, 0.6], start=1):
        rows.append({"epoch": e, "val_acc": val, "val_loss": 1.0 - val, "train_n": 10,
                     **{k: e / 10 for k in FINAL_KEYS}})
    rows.insert(2, {"epoch": 2.5, "fit_loss": 0.1})  # an epoch not evaluated is never picked
    b = best_epoch(rows)
    assert b["epoch"] == 2 and b["val_acc"] == 0.8 and b["metrics"]["test_acc"] == 0.2
    assert best_epoch([{"epoch": 3, "test_acc": 0.9, **{k: 0 for k in FINAL_KEYS}}]) == \
        {"by": None, "epoch": 3}


def test_first_layer_weights_are_kept_and_match_the_network(cli, write_config, tmp_path):
    data = config()
    data["sweep"] = {"seed": [0]}
    code, out, err = cli("sweep", write_config(data), "--runs-dir", tmp_path / "runs", "--json")
    assert code == 0, err
    tid = json.loads(out)["trials"][0]["trial_id"]
    with np.load(tmp_path / "runs" / "tiny" / "trials" / tid / "weights.npz") as npz:
        assert sorted(npz.files) == ["W0", "b0"]
        w0 = npz["W0"]
    prep = prepare(validate(config()))
    train(prep)
    np.testing.assert_array_equal(w0, prep.network.get_weights()[0][0].astype(np.float32))


def test_save_weights_none_keeps_no_file():
    assert run(config(eval={"save_weights": "none"})).arrays == {}
    assert sorted(run(config(eval={"save_weights": "all"})).arrays) == ["W0", "W1", "b0", "b1"]
