"""Exports carry everything (issue 22): every statistic, the health flags, the artifacts, and
a re-export updates instead of adding. Read back with MLflow's client and TensorBoard's reader
from a real tiny sweep (statistics and all weights kept)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import dropout_lab
from dropout_lab.export import trial_statistics
from tests.helpers.configs import TINY


def tiny():
    cfg = copy.deepcopy(TINY)
    cfg["eval"]["save_weights"] = "all"
    return cfg


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A real sweep with its plots and report written (once: rendering is the slow part)."""
    from dropout_lab.comparison import build_comparison
    from dropout_lab.report.html import write_report
    from dropout_lab.report.plots import render_all, write_plots

    runs = tmp_path_factory.mktemp("export") / "runs"
    s = dropout_lab.sweep(tiny(), runs_dir=runs, workers=1)
    c = build_comparison(s.path, epochs=True, weights=True)
    plots, notes = render_all(c)
    write_plots(plots, s.path / "plots")
    write_report(c, plots, notes, s.path / "report.html")
    return s


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One SQLite tracking store for this module's MLflow tests (creating one takes seconds:
    MLflow migrates the schema); each test logs into its own experiment."""
    pytest.importorskip("mlflow", reason="export --to mlflow needs the extra [mlflow]")
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def test_statistics_are_every_number_of_the_sections(swept):
    t = swept.trials[0]
    stats = trial_statistics(t)
    layer = t.result["coadaptation"]["layers"][0]
    assert stats["coadaptation/layers/1/mean_abs_corr"] == layer["mean_abs_corr"]
    assert stats["coadaptation/ablation/auc"] == t.result["coadaptation"]["ablation"]["auc"]
    assert stats["uncertainty/mutual_information"] == t.result["uncertainty"]["mutual_information"]
    assert stats["health/chance_acc"] == t.health["checks"]["chance_acc"]
    assert stats["timing/train_seconds"] == t.result["timing"]["train_seconds"]
    assert all(isinstance(v, float) and np.isfinite(v) for v in stats.values())


@pytest.mark.slow
def test_mlflow_gets_statistics_flags_and_artifacts_and_reexport_updates(swept, tracking,
                                                                          tmp_path):
    from mlflow.tracking import MlflowClient

    from dropout_lab.export import export

    uri = tracking
    first = export(swept.path, "mlflow", tracking_uri=uri)
    assert (first["created"], first["replaced"], first["unchanged"]) == (4, 0, 0)
    db = Path(uri[len("sqlite:///"):])
    assert (db.parent / "mlartifacts").is_dir()  # beside the database, not in the cwd
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("dropout-lab/tiny")

    def runs():
        return client.search_runs([exp.experiment_id])

    assert len(runs()) == 5
    parent = first["parent_run_id"]
    parent_files = {a.path for a in client.list_artifacts(parent)}
    assert {"sweep.yaml", "summary.csv", "report.html", "plots"} <= parent_files
    pngs = {a.path for a in client.list_artifacts(parent, "plots")}
    assert pngs and all(p.endswith(".png") for p in pngs)
    assert pngs == {f"plots/{p.name}" for p in (swept.path / "plots").glob("*.png")}

    for t in swept.trials:
        child = next(r for r in runs() if r.data.tags.get("dropout_lab.trial_id") == t.trial_id)
        m = child.data.metrics
        for key, value in trial_statistics(t).items():
            assert m[key] == pytest.approx(value, rel=1e-12), key
        assert m["final.test_acc"] == t.final["test_acc"]
        flags = t.health["flags"]
        assert child.data.tags["dropout_lab.health.flags"] == (",".join(flags) or "none")
        for flag in ("collapsed", "dead_units", "not_converged"):
            assert child.data.tags[f"dropout_lab.health.{flag}"] == str(flag in flags).lower()
        files = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert files == {"result.json", "metrics.jsonl", "weights.npz"}
    # the weights travel whole: download one trial's and compare
    t = swept.trials[1]
    child = next(r for r in runs() if r.data.tags["dropout_lab.trial_id"] == t.trial_id)
    got = client.download_artifacts(child.info.run_id, "weights.npz", str(tmp_path))
    with np.load(got) as npz, np.load(swept.path / "trials" / t.trial_id / "weights.npz") as ref:
        assert sorted(npz.files) == sorted(ref.files) == ["W0", "W1", "b0", "b1"]
        for k in ref.files:
            np.testing.assert_array_equal(npz[k], ref[k])

    # exported again: the same parent, nothing added
    second = export(swept.path, "mlflow", tracking_uri=uri)
    assert second["parent_run_id"] == parent
    assert (second["created"], second["replaced"], second["unchanged"]) == (0, 0, 4)
    assert len(runs()) == 5
    ids = {r.info.run_id for r in runs()}

    # the trials run again (--fresh): each child run is replaced, not duplicated
    dropout_lab.sweep(tiny(), runs_dir=swept.path.parent, workers=1, fresh=True)
    third = export(swept.path, "mlflow", tracking_uri=uri)
    assert third["parent_run_id"] == parent
    assert (third["created"], third["replaced"], third["unchanged"]) == (0, 4, 0)
    now = runs()
    assert len(now) == 5 and parent in {r.info.run_id for r in now}
    assert len({r.info.run_id for r in now} - ids) == 4
    fresh = dropout_lab.load(swept.path)
    for t in fresh.trials:
        child = next(r for r in now if r.data.tags["dropout_lab.trial_id"] == t.trial_id)
        assert child.data.metrics["final.test_acc"] == t.final["test_acc"]
        assert len(client.get_metric_history(child.info.run_id, "test_acc")) == len(t.curve())


def test_tensorboard_gets_statistics_and_flags_and_reexport_rewrites(swept, tmp_path):
    pytest.importorskip("tensorboard", reason="export --to tensorboard needs the extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dropout_lab.export import export
    from dropout_lab.export.tensorboard_target import run_name

    logdir = tmp_path / "tb"
    export(swept.path, "tensorboard", dest=logdir)
    export(swept.path, "tensorboard", dest=logdir)  # again: must not double the points
    t = dropout_lab.load(swept.path).trials[3]  # read now (another test may have re-run it)
    run_dir = logdir / "tiny" / run_name(t.params, t.trial_id)
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    stats = trial_statistics(t)
    assert set(stats) <= tags
    for key, value in stats.items():
        (event,) = acc.Scalars(key)
        assert event.value == pytest.approx(value, rel=1e-6) and event.step == 2
    flags = t.health["flags"]
    for flag in ("collapsed", "dead_units", "not_converged"):
        (event,) = acc.Scalars(f"health/flag/{flag}")
        assert event.value == float(flag in flags)
    assert [e.step for e in acc.Scalars("test_acc")] == [1, 2]
    assert json.loads(json.dumps(acc.Scalars("final/test_acc")[0].value)) == \
        pytest.approx(t.final["test_acc"], rel=1e-6)


def test_mlflow_a_folder_reused_for_another_config_gets_a_new_parent(tracking, tmp_path):
    import yaml
    from mlflow.tracking import MlflowClient

    from dropout_lab.export import export
    from tests.helpers.fake_sweeps import write_sweep

    sweep = write_sweep(tmp_path / "runs", name="reused", axes={"dropout.p": [0.0, 0.5],
                                                                "seed": [0]})
    uri = tracking
    first = export(sweep, "mlflow", tracking_uri=uri)
    assert export(sweep, "mlflow", tracking_uri=uri)["parent_run_id"] == first["parent_run_id"]
    doc = yaml.safe_load((sweep / "sweep.yaml").read_text())
    doc["config"]["train"] = {"lr": 0.5}  # what sweep --fresh with another config leaves
    (sweep / "sweep.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    second = export(sweep, "mlflow", tracking_uri=uri)
    assert second["parent_run_id"] != first["parent_run_id"]
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(second["parent_run_id"])
    assert parent.data.params["train.lr"] == "0.5"
    assert "train.lr" not in client.get_run(first["parent_run_id"]).data.params
