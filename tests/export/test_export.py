"""export --to mlflow / tensorboard, read back with the libraries' own readers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.fake_sweeps import write_sweep


def _metrics(sweep, tid):
    path = sweep / "trials" / tid / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.slow
def test_mlflow_round_trip_through_a_sqlite_store(cli, tmp_path):
    pytest.importorskip("mlflow", reason="export --to mlflow needs the extra [mlflow]")
    from mlflow.tracking import MlflowClient

    sweep = write_sweep(tmp_path, axes={"dropout.p": [0.0, 0.5], "seed": [0, 1]}, epochs=3,
                        status=lambda p: "failed" if p == {"dropout.p": 0.5, "seed": 1}
                        else "done")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, out, err = cli("export", sweep, "--to", "mlflow", "--tracking-uri", uri, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["runs"] == 4

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("dropout-lab/fake")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 5  # one parent + one child per trial
    parent = [r for r in runs if r.info.run_id == summary["parent_run_id"]][0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4
    child = next(r for r in children if r.data.tags["dropout_lab.trial_id"] == "t000")
    assert child.data.params["dropout.p"] == "0.0" and child.data.params["seed"] == "0"
    history = client.get_metric_history(child.info.run_id, "test_acc")
    rows = _metrics(sweep, "t000")
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in history] == pytest.approx([r["test_acc"] for r in rows])
    assert child.data.metrics["final.test_acc"] == pytest.approx(0.90)
    assert child.info.status == "FINISHED"
    failed = next(r for r in children if r.data.tags["dropout_lab.status"] == "failed")
    assert failed.info.status == "FAILED"


def test_tensorboard_round_trip_with_tensorboards_reader(cli, tmp_path):
    pytest.importorskip("tensorboard", reason="export --to tensorboard needs the extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sweep = write_sweep(tmp_path, axes={"dropout.p": [0.0, 0.5], "seed": [0]}, epochs=4)
    logdir = tmp_path / "tb"
    code, out, err = cli("export", sweep, logdir, "--to", "tensorboard", "--json")
    assert code == 0, err
    assert json.loads(out)["runs"] == 2
    run_dirs = sorted((logdir / "fake").iterdir())
    assert [d.name for d in run_dirs] == ["dropout.p=0.0,seed=0-t000", "dropout.p=0.5,seed=0-t001"]
    acc = EventAccumulator(str(run_dirs[1]))
    acc.Reload()
    assert {"test_acc", "fit_loss", "gap_acc", "final/test_acc"} <= set(acc.Tags()["scalars"])
    events = acc.Scalars("test_acc")
    rows = _metrics(sweep, "t001")
    assert [e.step for e in events] == [1, 2, 3, 4]
    assert [e.value for e in events] == pytest.approx([r["test_acc"] for r in rows], rel=1e-6)


def test_export_errors(cli, tmp_path):
    sweep = write_sweep(tmp_path)
    code, _, err = cli("export", sweep, "--to", "wandb")
    assert code == 2 and "choose one of mlflow, tensorboard" in err
    code, _, err = cli("export", sweep, "--to", "tensorboard")
    assert code == 2 and "needs the folder to write to" in err
    code, _, err = cli("export", sweep, tmp_path / "x", "--to", "mlflow")
    assert code == 2 and "--tracking-uri" in err


@pytest.mark.slow
def test_the_core_commands_import_no_optional_library(tmp_path, tiny_config):
    """The light install: a NumPy sweep, ls, show, gc, plot never import torch, Ray, MLflow
    or TensorBoard (they are extras, imported lazily by the features that need them)."""
    code = f"""
import sys
from dropout_lab.cli import run_app
runs = {str(tmp_path / 'runs')!r}
for argv in (["sweep", {str(tiny_config)!r}, "--runs-dir", runs, "--workers", "1"],
             ["ls", runs], ["show", runs + "/tiny"], ["gc", runs + "/tiny"],
             ["plot", runs + "/tiny"]):
    assert run_app(argv) == 0, argv
heavy = sorted(m for m in ("torch", "ray", "mlflow", "tensorboard") if m in sys.modules)
print("HEAVY", heavy)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout
