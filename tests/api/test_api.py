"""The Python API on a real (tiny) sweep: run, read back, frames, networks, errors."""

from __future__ import annotations

import copy
import json
import sys

import numpy as np
import pytest

import dropout_lab
from dropout_lab.errors import ConfigError, MissingExtraError, StoreError
from dropout_lab.result import FINAL_KEYS, Status
from tests.helpers.configs import TINY

pd = pytest.importorskip("pandas", reason="the DataFrame methods need the extra [pandas]")


def tiny(**eval_options):
    cfg = copy.deepcopy(TINY)
    cfg["eval"].update({"save_weights": "all", **eval_options})
    return cfg


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One real sweep of 4 trials (p in {0, 0.5} x seeds {0, 1}) with every statistic on."""
    runs = tmp_path_factory.mktemp("api") / "runs"
    return dropout_lab.sweep(tiny(), runs_dir=runs, workers=1), runs


def test_sweep_runs_and_reads_back_the_current_grid(swept):
    s, runs = swept
    assert s.path == runs / "tiny" and s.name == "tiny"
    assert len(s.trials) == 4 and not s.failed
    assert {(t.params["dropout.p"], t.params["seed"]) for t in s.trials} == \
        {(0.0, 0), (0.0, 1), (0.5, 0), (0.5, 1)}
    t = s.trial(dropout__p=0.5, seed=1)
    assert t.status is Status.DONE
    assert set(t.final) == set(FINAL_KEYS)
    assert t.final == t.result["final"]  # the stored numbers, not recomputed
    assert set(t.health) == {"flags", "checks", "thresholds"}
    assert len(t.curve()) == TINY["train"]["epochs"]
    # load() reads the same trials as sweep() returned
    again = dropout_lab.load(s.path)
    assert [x.result for x in again.trials] == [x.result for x in s.trials]


def test_a_second_call_resumes_and_runs_nothing(swept):
    s, runs = swept
    again = dropout_lab.sweep(tiny(), runs_dir=runs, workers=1)
    assert [t.result["timing"]["started_at"] for t in again.trials] == \
        [t.result["timing"]["started_at"] for t in s.trials]


def test_to_pandas_has_one_flat_row_per_trial(swept):
    s, _ = swept
    df = s.to_pandas()
    assert len(df) == 4
    assert {"trial_id", "status", "dropout.p", "seed", *FINAL_KEYS, "epochs_trained",
            "corr[1]", "ablation_auc", "mc_acc", "mutual_information", "health_flags",
            "health.collapsed", "health.dead_units", "health.not_converged",
            "train_seconds"} <= set(df.columns)
    for t in s.trials:
        row = df[df.trial_id == t.trial_id].iloc[0]
        assert row["test_acc"] == t.final["test_acc"]
        assert row["corr[1]"] == t.result["coadaptation"]["layers"][0]["mean_abs_corr"]
        assert row["mc_acc"] == t.result["uncertainty"]["mc_acc"]
        assert bool(row["health.collapsed"]) == ("collapsed" in t.health["flags"])


def test_curves_has_one_row_per_trial_and_epoch(swept):
    s, _ = swept
    df = s.curves()
    assert len(df) == 4 * TINY["train"]["epochs"]
    t = s.trials[2]
    mine = df[df.trial_id == t.trial_id].sort_values("epoch")
    assert list(mine["epoch"]) == [1, 2]
    assert list(mine["test_acc"]) == [r["test_acc"] for r in t.curve()]
    assert set(mine["dropout.p"]) == {t.params["dropout.p"]}


def test_compare_has_exactly_the_numbers_of_compare_json(swept, cli):
    s, _ = swept
    # the tiny trials are flagged collapsed: kept in, so every cell has two seeds
    code, out, err = cli("compare", s.path, "-f", "json", "-m", "test_acc", "-m", "corr[1]",
                         "--include-collapsed")
    assert code == 0, err
    doc = json.loads(out)
    df = s.compare(metrics=["test_acc", "corr[1]"], include_collapsed=True)
    assert set(df["n"]) == {2}
    assert len(df) == 2 * 2  # two values of p, two metrics
    for block in doc["blocks"]:
        for row in block["rows"]:
            for name, m in row["metrics"].items():
                got = df[(df["dropout.p"] == row["value"]) & (df.metric == name)]
                assert len(got) == 1
                g = got.iloc[0]
                diff = m["diff"] or {}
                pairs = [(g["n"], m["n"]), (g["mean"], m["mean"]), (g["sd"], m["sd"]),
                         (g["ci_lo"], (m["ci"] or [None, None])[0]),
                         (g["ci_hi"], (m["ci"] or [None, None])[1]),
                         (g["diff_mean"], diff.get("mean")), (g["diff_mdd"], diff.get("mdd")),
                         (g["diff_ci_lo"], (diff.get("ci") or [None, None])[0]),
                         (g["diff_ci_hi"], (diff.get("ci") or [None, None])[1])]
                for got_value, printed in pairs:
                    assert same(got_value, printed), (name, row["value"], got_value, printed)
                assert g["best"] == row["best"] and g["baseline"] == row["baseline"]


def same(frame_value, json_value) -> bool:
    """The same float, or both missing (a JSON null is NaN in a float column)."""
    if json_value is None:
        return frame_value is None or bool(np.isnan(frame_value))
    return bool(frame_value == json_value)


def test_network_reproduces_the_recorded_test_accuracy_exactly(swept):
    s, _ = swept
    for t in s.trials:
        net = t.network()
        x, y = t.test_data()
        assert x.dtype == np.float32 and len(y) == TINY["dataset"]["n_test"]
        probs = net.predict(x)
        assert probs.shape == (len(y), TINY["dataset"]["n_classes"])
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
        assert float(np.mean(probs.argmax(axis=1) == y)) == t.final["test_acc"]
        nll = -np.mean(np.log(probs[np.arange(len(y)), y]))
        assert nll == pytest.approx(t.final["test_loss"], rel=1e-9)


def test_every_variant_rebuilt_reproduces_its_accuracy(tmp_path):
    """The test-time scale of each variant (standard: 1 - p) is part of the rebuilt network."""
    from dropout_lab import variants

    for variant in variants.names():
        cfg = tiny(coadaptation=False, uncertainty=False)
        cfg.update(name=f"v-{variant}")
        cfg["dropout"] = {"p": 0.5, "variant": variant, "input_p": 0.2}
        cfg["train"]["epochs"] = 3
        s = dropout_lab.sweep(cfg, ["seed=0", "dropout.p=0.5"], runs_dir=tmp_path, workers=1)
        (t,) = s.trials
        x, y = t.test_data()
        probs = t.network().predict(x)
        assert float(np.mean(probs.argmax(axis=1) == y)) == t.final["test_acc"], variant
        # the loss sees the scale too (argmax alone could miss a wrong test-time scale)
        nll = -np.mean(np.log(probs[np.arange(len(y)), y]))
        assert nll == pytest.approx(t.final["test_loss"], rel=1e-9), variant


def test_a_torch_cpu_trial_rebuilt_on_numpy_reproduces_its_accuracy(tmp_path):
    pytest.importorskip("torch", reason="backend torch needs the extra [torch]")
    cfg = tiny(coadaptation=False, uncertainty=False)
    cfg.update(backend="torch", device="cpu")
    cfg["train"]["epochs"] = 4
    s = dropout_lab.sweep(cfg, ["seed=0"], runs_dir=tmp_path, workers=1)
    for t in s.trials:
        assert t.result["env"]["backend"] == "torch"
        x, y = t.test_data()
        assert float(np.mean(t.network().predict(x).argmax(axis=1) == y)) == t.final["test_acc"]


def test_earlier_grids_are_reachable_and_never_mixed_in(swept, tmp_path):
    s, runs = swept
    cfg = tiny()
    cfg["sweep"]["dropout.p"] = [0.0]  # a narrower grid in the same folder
    narrower = dropout_lab.sweep(cfg, runs_dir=runs, workers=1)
    try:
        assert {t.params["dropout.p"] for t in narrower.trials} == {0.0}
        assert len(narrower.trials) == 2 and len(narrower.to_pandas()) == 2
        earlier = narrower.earlier_trials
        assert {t.params["dropout.p"] for t in earlier} == {0.5}
        assert all(not t.current for t in earlier) and all(t.current for t in narrower.trials)
        assert len(narrower.all_trials) == 4
        assert len(narrower.to_pandas(narrower.all_trials)) == 4
    finally:  # the module's sweep gets its grid back for the other tests
        dropout_lab.sweep(tiny(), runs_dir=runs, workers=1)


def test_network_needs_all_weights(tmp_path):
    s = dropout_lab.sweep(tiny(save_weights="first", coadaptation=False, uncertainty=False),
                          ["dropout.p=0.5", "seed=0"], runs_dir=tmp_path, workers=1)
    with pytest.raises(StoreError, match="eval.save_weights: all"):
        s.trials[0].network()


def test_errors_are_typed(tmp_path):
    no_name = tiny()
    del no_name["name"]
    with pytest.raises(ConfigError, match="needs a 'name'"):
        dropout_lab.sweep(no_name, runs_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown option"):
        dropout_lab.sweep(tiny(), runs_dir=tmp_path, colour="red")
    with pytest.raises(ConfigError, match="unknown option"):
        dropout_lab.sweep(tiny(), runs_dir=tmp_path, scheduled=None)  # sweep() sets it
    with pytest.raises(ConfigError, match="dropout.pp"):
        dropout_lab.sweep(tiny(), ["dropout.pp=0.5"], runs_dir=tmp_path)
    with pytest.raises(ConfigError):
        dropout_lab.sweep(tmp_path / "missing.yaml", runs_dir=tmp_path)
    with pytest.raises(StoreError, match="no such sweep folder"):
        dropout_lab.load(tmp_path / "nothing")


def test_missing_pandas_names_the_extra(swept, monkeypatch):
    s, _ = swept
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(MissingExtraError, match=r'pip install "dropout-lab\[pandas\]"'):
        s.to_pandas()
    assert s.trials[0].final is not None  # the rest of the API does not need it


def test_dropout_lab_sweep_stays_the_function():
    import dropout_lab.sweep as _grid  # noqa: F401  (the submodule: the grid)
    from dropout_lab.sweep import expand

    assert callable(expand)
    assert dropout_lab.sweep.__module__ == "dropout_lab.api"
    assert dropout_lab.load.__module__ == "dropout_lab.api"
    assert {"sweep", "load", "Sweep", "Trial"} <= set(dropout_lab.__all__)


def test_to_pandas_known_answers_on_a_hand_made_sweep(tmp_path):
    from tests.helpers.fake_sweeps import write_sweep

    s = dropout_lab.load(write_sweep(tmp_path, stats=True,
                                     status=lambda p: "failed" if p == {"dropout.p": 0.2,
                                                                        "seed": 2} else "done"))
    df = s.to_pandas()
    assert len(df) == 9 and list(df.columns[:4]) == ["trial_id", "status", "dropout.p", "seed"]
    done = df[df.status == "done"]
    # test_acc means by p from tests/helpers/fake_sweeps.TEST_ACC (p = 0.2 without seed 2)
    assert done.groupby("dropout.p")["test_acc"].mean().to_dict() == pytest.approx(
        {0.0: 0.92, 0.2: 0.93, 0.5: 0.95})
    # corr[1] = 0.4 - 0.3 p + 0.01 seed, ablation_auc = 0.4 + 0.3 p
    row = df[(df["dropout.p"] == 0.5) & (df.seed == 1)].iloc[0]
    assert row["corr[1]"] == pytest.approx(0.4 - 0.15 + 0.01)
    assert row["ablation_auc"] == pytest.approx(0.55)
    assert row["mutual_information"] == pytest.approx(0.025)
    failed = df[df.status == "failed"].iloc[0]
    assert np.isnan(failed["test_acc"]) and failed["health_flags"] is None
    assert len(s.curves()) == 9 * 3  # a failed trial's logged epochs are rows too


def test_a_damaged_trial_is_a_warning_not_an_error(tmp_path):
    from tests.helpers.fake_sweeps import write_sweep

    root = write_sweep(tmp_path, axes={"dropout.p": [0.0, 0.5], "seed": [0]})
    (root / "trials" / "t001" / "result.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match="t001"):
        s = dropout_lab.load(root)
    assert [str(t.status) for t in s.trials] == ["done", "corrupt"]
    seen: list[str] = []
    dropout_lab.load(root, warn=seen.append)
    assert len(seen) == 1 and "t001" in seen[0]
