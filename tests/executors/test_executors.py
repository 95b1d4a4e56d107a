"""Local executors: equal threads give bit-identical results whatever the number of workers,
a failing trial or a killed worker costs one trial only, and the workers x threads budget."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dropout_lab.errors import ExecutorError
from dropout_lab.executors import budget as budgets
from tests.helpers.configs import TINY

# -- helpers ----------------------------------------------------------------------------------


def _trial_files(sweep_dir: Path) -> dict[str, tuple[list[dict], dict]]:
    """trial id -> (metrics rows without timings, result.json)."""
    out = {}
    for d in sorted((sweep_dir / "trials").iterdir()):
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        for r in rows:
            r.pop("epoch_seconds")
        out[d.name] = (rows, json.loads((d / "result.json").read_text()))
    return out


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        kids.extend(int(k) for k in text)
    return kids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# -- determinism ------------------------------------------------------------------------------


def test_one_and_two_workers_give_identical_numbers(cli, tiny_config, tmp_path):
    code1, out1, _ = cli("sweep", tiny_config, "--runs-dir", tmp_path / "w1", "--json",
                         "--workers", "1", "--threads", "1")
    code2, out2, _ = cli("sweep", tiny_config, "--runs-dir", tmp_path / "w2", "--json",
                         "--workers", "2", "--threads", "1")
    assert code1 == 0 and code2 == 0
    one, two = _trial_files(tmp_path / "w1" / "tiny"), _trial_files(tmp_path / "w2" / "tiny")
    assert set(one) == set(two) and len(one) == 4
    for tid in one:
        rows1, res1 = one[tid]
        rows2, res2 = two[tid]
        assert rows1 == rows2, f"metrics of {tid} differ between 1 and 2 workers"
        assert res1["final"] == res2["final"]
        for key in ("coadaptation", "uncertainty"):
            assert res1.get(key) == res2.get(key)
        assert res1["env"]["threads"] == res2["env"]["threads"] == 1
        assert res1["env"]["workers"] == 1 and res2["env"]["workers"] == 2
    # The JSON documents agree too (they carry the same final numbers).
    assert [t["final"] for t in json.loads(out1)["trials"]] == \
        [t["final"] for t in json.loads(out2)["trials"]]


# -- failure isolation ------------------------------------------------------------------------


def _trials_fail_in_their_workers(monkeypatch) -> None:
    # The data preflight refuses a train_size above the data before any training; without
    # it in the driver, those trials raise in their workers, as any runtime error would.
    monkeypatch.setattr("dropout_lab.data.preflight", lambda cfg, report=None: None)


def test_a_trial_that_raises_is_failed_and_the_others_finish(cli, write_config, tmp_path,
                                                             monkeypatch):
    _trials_fail_in_their_workers(monkeypatch)
    cfg = dict(TINY, sweep={"dataset.train_size": [60, 5000], "seed": [0, 1]})
    path = write_config(cfg)
    code, out, err = cli("sweep", path, "--runs-dir", tmp_path / "runs", "--json",
                         "--workers", "2", "--threads", "1")
    assert code == 1
    doc = json.loads(out)
    by_size = {}
    for t in doc["trials"]:
        by_size.setdefault(t["params"]["dataset.train_size"], []).append(t)
    assert all(t["status"] == "done" for t in by_size[60])
    assert all(t["status"] == "failed" for t in by_size[5000])
    for t in by_size[5000]:
        error = (tmp_path / "runs" / "tiny" / "trials" / t["trial_id"] / "error.txt").read_text()
        assert "Traceback" in error and "train_size" in error
    assert "failed" in err and "Traceback" not in err


def test_max_failures_stops_early(cli, write_config, tmp_path, monkeypatch):
    _trials_fail_in_their_workers(monkeypatch)
    cfg = dict(TINY, sweep={"dataset.train_size": [5000, 6000, 7000, 8000, 9000, 60]})
    path = write_config(cfg)
    code, out, err = cli("sweep", path, "--runs-dir", tmp_path / "runs", "--json",
                         "--workers", "2", "--threads", "1", "--max-failures", "2")
    assert code == 1
    statuses = [t["status"] for t in json.loads(out)["trials"]]
    assert statuses.count("failed") >= 2
    assert "pending" in statuses  # the rest never ran
    assert "--max-failures" in err


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_killed_worker_fails_its_trial_only(write_config, tmp_path):
    # Trials long enough (~1-2 s each) that a worker is surely mid-trial when it is killed.
    cfg = dict(TINY, name="killme",
               dataset={"name": "synthetic", "n_train": 3000, "n_test": 200,
                        "n_features": 32, "n_classes": 3},
               model={"hidden": [128]}, train=dict(TINY["train"], epochs=8),
               sweep={"seed": [0, 1, 2]})
    path = write_config(cfg)
    runs = tmp_path / "runs"
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropout_lab", "sweep", str(path), "--runs-dir", str(runs),
         "--workers", "2", "--threads", "1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # Wait for an epoch of progress: plain progress lines go to stderr ("start <id>").
        victim = None
        deadline = time.monotonic() + 60
        started = 0
        while time.monotonic() < deadline and started < 2:
            line = proc.stderr.readline()
            if not line:
                break
            started += line.startswith("start")
        assert started == 2, "the sweep did not start two trials"
        workers = [p for p in _children(proc.pid) if "spawn_main" in _cmdline(p)]
        assert len(workers) == 2, workers
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    statuses = sorted(t["status"] for t in json.loads(out)["trials"])
    assert statuses == ["done", "done", "failed"]
    failed = next(t for t in json.loads(out)["trials"] if t["status"] == "failed")
    result = json.loads((runs / "killme" / "trials" / failed["trial_id"] / "result.json")
                        .read_text())
    assert result["error"] == "worker process died (signal 9, SIGKILL)"


# -- the budget -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pending", "grid", "cores", "weights", "expected"),
    [
        (8, 8, 2, 10**6, (2, 1)),   # many trials: one thread each, a worker per core
        (1, 1, 4, 10**6, (1, 3)),   # one big trial: one worker, every core but one
        (2, 2, 8, 10**6, (2, 3)),   # few big trials share the cores (one core spare)
        (1, 1, 4, 1000, (1, 1)),    # one small trial: threads would not pay off
        (1, 8, 2, 10**6, (1, 1)),   # resuming: threads follow the grid, not what is left
        (3, 3, 8, None, (3, 2)),    # unknown size: treated as big
        (1, 1, 2, 10**6, (1, 1)),   # one big trial on 2 cores: 2 threads would stall
    ],
)
def test_auto_budget(pending, grid, cores, weights, expected):
    b = budgets.choose(pending, grid, cores, weights)
    assert (b.workers, b.threads) == expected
    assert b.workers * b.threads <= cores and b.auto and b.warning is None


def test_explicit_budget_is_kept_and_oversubscription_warned():
    b = budgets.choose(8, 8, 2, 10**6, workers=4, threads=2)
    assert (b.workers, b.threads, b.auto) == (4, 2, False)
    assert "8 busy threads on 2 core(s)" in b.warning
    assert budgets.choose(8, 8, 4, 10**6, threads=2).workers == 2
    assert budgets.choose(8, 8, 4, 10**6, workers=2).threads == 1  # (4 - 1) // 2
    with pytest.raises(ExecutorError):
        budgets.choose(8, 8, 4, workers=0)


def test_weight_count():
    assert budgets.weight_count([64, 512, 10]) == 64 * 512 + 512 * 10


# -- bad options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "rya"], "unknown executor 'rya'; did you mean 'ray'?"),
        (["--ray-address", "127.0.0.1:1"], "--ray-address needs --executor ray"),
    ],
)
def test_bad_executor_options_are_one_line(cli, tiny_config, tmp_path, args, message):
    code, out, err = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_trial_config_written_by_driver_matches_yaml(cli, tiny_config, tmp_path):
    """env.workers/env.threads are recorded in result.json next to the resolved config."""
    code, _, _ = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs",
                     "--workers", "2", "--threads", "1")
    assert code == 0
    for d in (tmp_path / "runs" / "tiny" / "trials").iterdir():
        result = json.loads((d / "result.json").read_text())
        assert (result["env"]["workers"], result["env"]["threads"]) == (2, 1)
        assert yaml.safe_load((d / "config.yaml").read_text())["dataset"]["name"] == "synthetic"


@pytest.mark.parametrize("workers", [1, 2])
def test_the_progress_header_names_the_executor_the_user_chose(workers):
    # Issue 24, item 9: one worker runs in this process (SerialExecutor), but the user chose
    # --executor local, and the header says so ("executor local: 1 worker x 1 thread").
    from dropout_lab import executors

    selected = executors.create("local", pending=4, grid=4, workers=workers, threads=1)
    try:
        assert selected.describe().startswith(f"executor local: {workers} worker"), \
            selected.describe()
        assert selected.executor.name == "local"
    finally:
        selected.executor.close()
