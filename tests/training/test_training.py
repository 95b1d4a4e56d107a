"""The training loop, the runs directory and resume."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from dropout_lab.config import validate
from dropout_lab.store import SweepStore, atomic_write_text
from dropout_lab.sweep import expand
from dropout_lab.trial import prepare, run_trial
from tests.helpers.configs import TINY


def one_trial(**changes):
    data = copy.deepcopy(TINY)
    data["sweep"] = {}
    for key, value in changes.items():
        section, field = key.split("__")
        data[section][field] = value
    return expand(validate(data))[0]


def test_same_seed_is_bit_identical():
    t = one_trial()
    a = run_trial(t.config_dict, t.trial_id, t.params)
    b = run_trial(t.config_dict, t.trial_id, t.params)
    assert a.status == "done"
    assert a.metrics == [dict(r, epoch_seconds=a.metrics[i]["epoch_seconds"])
                         for i, r in enumerate(b.metrics)]


def test_p_does_not_change_initial_weights():
    w0 = prepare(one_trial(dropout__p=0.0).config).network.get_weights()
    w5 = prepare(one_trial(dropout__p=0.5).config).network.get_weights()
    for (a, _), (b, _) in zip(w0, w5, strict=False):
        assert np.array_equal(a, b)


def test_training_learns_and_records_the_gap():
    t = one_trial(train__epochs=8)
    out = run_trial(t.config_dict, t.trial_id, t.params)
    first, last = out.metrics[0], out.metrics[-1]
    assert last["train_loss"] < first["train_loss"]
    assert last["test_acc"] > 1 / 3 + 0.2  # 3 classes: well above chance
    f = out.result["final"]
    assert f["gap_acc"] == f["train_acc"] - f["test_acc"]
    assert f["gap_loss"] == f["test_loss"] - f["train_loss"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point here
def test_divergence_is_a_status_not_a_crash():
    t = one_trial(train__lr=1e30, train__optimizer="sgd", train__epochs=3)
    out = run_trial(t.config_dict, t.trial_id, t.params)
    assert out.status == "diverged"
    assert out.result["final"] is None


def test_failure_is_recorded_with_traceback():
    t = one_trial(dataset__train_size=100000)
    out = run_trial(t.config_dict, t.trial_id, t.params)
    assert out.status == "failed"
    assert "Traceback" in out.error and "train_size" in out.error


def test_runs_layout_and_resume(cli, tiny_config, tmp_path):
    runs = tmp_path / "runs"
    code, out, _ = cli("sweep", tiny_config, "--runs-dir", runs, "--json")
    assert code == 0
    first = json.loads(out)
    root = runs / "tiny"
    assert (root / "sweep.yaml").exists() and (root / "summary.csv").exists()
    for t in first["trials"]:
        d = root / "trials" / t["trial_id"]
        result = json.loads((d / "result.json").read_text())
        assert result["status"] == "done" and result["params"] == t["params"]
        assert set(result["final"]) >= {"train_loss", "train_acc", "test_loss", "test_acc",
                                        "gap_acc", "gap_loss"}
        assert result["env"]["backend"] == "numpy" and "numpy" in result["env"]["versions"]
        lines = (d / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
        assert (d / "config.yaml").exists()
    assert len((root / "summary.csv").read_text().splitlines()) == 1 + 4

    # Re-run: nothing executes; delete one result and only that trial runs again.
    code, out, _ = cli("sweep", tiny_config, "--runs-dir", runs, "--json")
    second = json.loads(out)
    assert code == 0 and not any(t["executed"] for t in second["trials"])
    assert [t["final"] for t in second["trials"]] == [t["final"] for t in first["trials"]]
    victim = first["trials"][2]["trial_id"]
    (root / "trials" / victim / "result.json").unlink()
    code, out, _ = cli("sweep", tiny_config, "--runs-dir", runs, "--json")
    third = json.loads(out)
    assert [t["trial_id"] for t in third["trials"] if t["executed"]] == [victim]
    assert [t["final"] for t in third["trials"]] == [t["final"] for t in first["trials"]]

    # --fresh runs everything again
    code, out, _ = cli("sweep", tiny_config, "--runs-dir", runs, "--json", "--fresh")
    assert all(t["executed"] for t in json.loads(out)["trials"])


def test_changed_grid_reports_exactly_the_current_trials(cli, tiny_config, tmp_path):
    runs = tmp_path / "runs"
    cli("sweep", tiny_config, "--runs-dir", runs)
    code, out, _ = cli("sweep", tiny_config, "--runs-dir", runs, "--json",
                       "--set", "sweep.seed=[0]")
    doc = json.loads(out)
    assert code == 0 and len(doc["trials"]) == 2
    assert not any(t["executed"] for t in doc["trials"])  # both were in the old grid
    summary = (runs / "tiny" / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 2
    assert len(list((runs / "tiny" / "trials").iterdir())) == 4  # old trials stay on disk
    assert len(SweepStore(runs / "tiny").results(earlier=False)) == 2
    # the readers still see the first grid's other seed (issue 21, item 2: grids extend)
    assert len(SweepStore(runs / "tiny").results()) == 4


def test_failed_trial_gives_exit_1_and_is_rerun(cli, write_config, tmp_path, monkeypatch):
    # The data preflight refuses a train_size above the data before training; without it,
    # the trial raises when it runs, as any runtime error would.
    monkeypatch.setattr("dropout_lab.data.preflight", lambda cfg, report=None: None)
    data = copy.deepcopy(TINY)
    data["sweep"] = {"dataset.train_size": [60, 100000]}
    path = write_config(data)
    code, out, err = cli("sweep", path, "--runs-dir", tmp_path / "runs", "--json")
    doc = json.loads(out)
    assert code == 1
    assert sorted(t["status"] for t in doc["trials"]) == ["done", "failed"]
    failed = next(t for t in doc["trials"] if t["status"] == "failed")
    assert (tmp_path / "runs" / "tiny" / "trials" / failed["trial_id"] / "error.txt").exists()
    assert "failed" in err and "train_size" in err
    code, out, _ = cli("sweep", path, "--runs-dir", tmp_path / "runs", "--json")
    executed = [t["trial_id"] for t in json.loads(out)["trials"] if t["executed"]]
    assert executed == [failed["trial_id"]]


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "result.json"
    atomic_write_text(target, '{"status": "done"}')

    class Boom:
        def __str__(self):
            raise RuntimeError("disk full")

    try:
        atomic_write_text(target, Boom())  # type: ignore[arg-type]
    except Exception:
        pass
    assert target.read_text() == '{"status": "done"}'
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left


def test_unreadable_result_is_not_done(tmp_path):
    store = SweepStore(tmp_path / "s")
    (store.trial_dir("abc")).mkdir(parents=True)
    (store.trial_dir("abc") / "result.json").write_text('{"status": "do')  # torn write
    assert store.load_result("abc") is None and not store.is_done("abc")


def test_thread_budget_covers_every_blas_a_trial_loads():
    """A statistic may load scipy's BLAS, a second OpenBLAS, during the trial: the worker's
    budget must hold there too, or a 1-thread trial silently computes with 2 (and gives other
    numbers). The budget is the worker layer's (executors/threads.py), not the backend's."""
    import subprocess
    import sys

    code = (
        "from dropout_lab.executors.threads import thread_budget\n"
        "from dropout_lab.backends.numpy_backend import NumpyBackend\n"
        "with thread_budget(1):\n"
        "    NumpyBackend().set_threads(1)\n"
        "    import scipy.linalg.blas, threadpoolctl\n"
        "    print(sorted({i['num_threads'] for i in threadpoolctl.threadpool_info()"
        " if i['user_api'] == 'blas'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[1]"


def test_the_numpy_backend_leaves_the_environment_alone():
    # thread variables belong to the worker layer; the backend limits only its own BLAS
    import os

    from dropout_lab.backends.numpy_backend import NumpyBackend
    from dropout_lab.executors.threads import THREAD_ENV_VARS, thread_budget

    before = dict(os.environ)
    NumpyBackend().set_threads(1)
    assert dict(os.environ) == before
    with thread_budget(3):
        assert {os.environ[v] for v in THREAD_ENV_VARS} == {"3"}
    assert dict(os.environ) == before  # restored after the trial


def test_unwritable_runs_dir_is_one_message_and_exit_2(cli, tiny_config, tmp_path):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("x")
    code, out, err = cli("sweep", tiny_config, "--runs-dir", not_a_folder)
    assert code == 2
    assert "cannot write the runs directory" in err and "--runs-dir" in err
    assert "Traceback" not in out + err
    assert not_a_folder.read_text() == "x"  # nothing lost
