"""Checkpoints under kill -9, with real processes (issue 20, item 1): the sweep is killed
before, during and after a checkpoint write (faults placed by monkeypatching the driver's
writer, not by luck of timing), and a worker and a whole sweep are killed from outside; each
time the resumed sweep ends with exactly the uninterrupted result, metrics.jsonl holds each
epoch once, and no checkpoint or temporary file is left. Both backends (numpy, torch CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers.reliability import cli, env, tiny, write_yaml

# Kills the sweep around its KILL_AT-th checkpoint write (counting every checkpoint the
# driver writes): before anything is written, during (half the bytes in the temporary file),
# at the rename (the temporary file whole and synced, not yet renamed), or after it.
KILLER = textwrap.dedent("""
    import os, signal, sys, tempfile
    import dropout_lab.store.checkpoint as store_checkpoint
    at, phase = int(os.environ["KILL_AT"]), os.environ["KILL_PHASE"]
    real_write, calls = store_checkpoint.atomic_write_bytes, [0]
    def die():
        os.kill(os.getpid(), signal.SIGKILL)
    def write(path, data):
        calls[0] += 1
        if calls[0] != at:
            return real_write(path, data)
        if phase == "before":
            die()
        if phase == "during":  # named as atomic_write_bytes names its temporary file
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.write(fd, data[: len(data) // 2])
            die()
        if phase == "rename":
            os.replace = lambda src, dst: die()
        real_write(path, data)
        if phase == "after":
            die()
    store_checkpoint.atomic_write_bytes = write
    from dropout_lab.cli.app import run_app
    sys.exit(run_app(sys.argv[1:]))
""")


def _config(tmp_path: Path, backend: str, **train: object) -> Path:
    """One trial of a few epochs, a checkpoint after every epoch."""
    cfg = tiny(name="ck", backend=backend,
               dataset={"name": "synthetic", "n_train": 600, "n_test": 100, "n_features": 12,
                        "n_classes": 3, "val_fraction": 0.2},
               model={"hidden": [32]},
               train={"epochs": 6, "batch_size": 16, "optimizer": "momentum", "lr": 0.05,
                      "checkpoint_every": 1, **train},
               sweep={})
    return write_yaml(tmp_path / "c.yaml", cfg)


def _trial(runs: Path) -> Path:
    (trial,) = (runs / "ck" / "trials").iterdir()
    return trial


def _numbers(trial: Path) -> dict:
    """What the trial computed, without timings: must be identical after a resume."""
    result = json.loads((trial / "result.json").read_text())
    assert result["status"] == "done", result
    for key in ("timing", "env", "resumed"):
        result.pop(key, None)
    rows = [json.loads(line) for line in (trial / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("epoch_seconds")
    with np.load(trial / "weights.npz") as npz:
        weights = {k: npz[k].tobytes() for k in npz.files}
    return {"result": result, "rows": rows, "weights": weights}


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.name.endswith(".tmp")]


def _reference(tmp_path: Path, cfg: Path) -> dict:
    runs = tmp_path / "reference"
    done = cli("sweep", cfg, "--runs-dir", runs, "--workers", "1", "--threads", "1")
    assert done.code == 0, done.text
    return _numbers(_trial(runs))


def _resume_and_check(cfg: Path, runs: Path, reference: dict, from_epoch: int,
                      epochs: int = 6) -> None:
    resumed = cli("sweep", cfg, "--runs-dir", runs, "--workers", "1", "--threads", "1")
    assert resumed.code == 0, resumed.text
    trial = _trial(runs)
    result = json.loads((trial / "result.json").read_text())
    assert result.get("resumed", {"from_epoch": 0})["from_epoch"] == from_epoch
    got = _numbers(trial)
    assert [r["epoch"] for r in got["rows"]] == list(range(1, epochs + 1))  # each epoch once
    assert got == reference  # bit for bit: every number, every row, every weight
    assert not (trial / "checkpoint.npz").exists()  # removed when the trial was done
    assert _temporaries(runs) == []


@pytest.mark.slow
@pytest.mark.parametrize("backend,phase,at", [
    ("numpy", "before", 3), ("numpy", "during", 3), ("numpy", "rename", 3),
    ("numpy", "after", 3), ("numpy", "during", 1), ("numpy", "after", 6),
    ("torch", "before", 2), ("torch", "during", 4), ("torch", "after", 4),
])
def test_kill_9_around_a_checkpoint_write_then_resume_gives_the_uninterrupted_result(
        tmp_path, backend, phase, at):
    if backend == "torch":
        pytest.importorskip("torch")
    cfg = _config(tmp_path, backend)
    reference = _reference(tmp_path, cfg)
    runs = tmp_path / "runs"
    p = subprocess.run([sys.executable, "-c", KILLER, "sweep", str(cfg), "--runs-dir", str(runs),
                        "--workers", "1", "--threads", "1"], capture_output=True, text=True,
                       env=dict(env(), KILL_AT=str(at), KILL_PHASE=phase), timeout=180)
    assert p.returncode == -signal.SIGKILL, p.stderr
    trial = _trial(runs)
    assert not (trial / "result.json").exists()
    kept = at if phase == "after" else at - 1  # the checkpoint on disk when it died
    assert (trial / "checkpoint.npz").exists() == (kept > 0)
    assert bool(_temporaries(runs)) == (phase in ("during", "rename"))
    _resume_and_check(cfg, runs, reference, kept)


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (the sweep's worker processes), from /proc."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _wait_for_checkpoint(proc: subprocess.Popen, trial_dir: Path, rows: int) -> None:
    deadline = time.monotonic() + 120
    metrics = trial_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if (trial_dir / "checkpoint.npz").exists() and metrics.exists() \
                and len(metrics.read_text().splitlines()) >= rows:
            return
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


SLOWER = {"epochs": 12}  # long enough to be killed in the middle from outside


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_worker_killed_mid_trial_leaves_a_checkpoint_the_rerun_continues(tmp_path, backend):
    if backend == "torch":
        pytest.importorskip("torch")
    cfg = _config(tmp_path, backend, **SLOWER)
    data = yaml.safe_load(cfg.read_text())
    data["dataset"]["n_train"] = 3000
    write_yaml(cfg, data)
    reference = _reference(tmp_path, cfg)
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "dropout_lab", "sweep", str(cfg),
                             "--runs-dir", str(runs), "--workers", "2", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        deadline = time.monotonic() + 60
        while not (runs / "ck" / "trials").is_dir() or not list((runs / "ck" / "trials").iterdir()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        _wait_for_checkpoint(proc, _trial(runs), rows=3)
        workers = _children(proc.pid)
        assert workers, "no worker process found"
        for pid in workers:  # the trial's worker (and the multiprocessing helper, if any)
            os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err  # the trial failed: its worker was lost
    trial = _trial(runs)
    assert "worker process died" in json.loads((trial / "result.json").read_text())["error"]
    assert (trial / "checkpoint.npz").exists()  # a failed trial keeps its checkpoint
    from dropout_lab.checkpoint import parse

    kept = parse((trial / "checkpoint.npz").read_bytes()).epoch
    assert 3 <= kept < 12
    _resume_and_check(cfg, runs, reference, kept, epochs=12)


@pytest.mark.slow
def test_a_sweep_killed_from_outside_at_any_moment_resumes_to_the_same_result(tmp_path):
    cfg = _config(tmp_path, "numpy", **SLOWER)
    reference = _reference(tmp_path, cfg)
    runs = tmp_path / "runs"
    for rows in (2, 7):  # killed twice: the second run resumes, is killed, resumes again
        proc = subprocess.Popen([sys.executable, "-m", "dropout_lab", "sweep", str(cfg),
                                 "--runs-dir", str(runs), "--workers", "1", "--threads", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env())
        try:
            deadline = time.monotonic() + 60
            while not (runs / "ck" / "trials").is_dir() \
                    or not list((runs / "ck" / "trials").iterdir()):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
            _wait_for_checkpoint(proc, _trial(runs), rows=rows)
            proc.kill()
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    from dropout_lab.checkpoint import parse

    kept = parse((_trial(runs) / "checkpoint.npz").read_bytes()).epoch
    assert kept >= 6  # the second run went on (its epoch-7 row was out, so epoch 6 was saved)
    _resume_and_check(cfg, runs, reference, kept, epochs=12)


@pytest.mark.slow
def test_ctrl_c_keeps_the_running_trials_checkpoint_and_the_same_command_continues(tmp_path):
    cfg = _config(tmp_path, "numpy", **SLOWER)
    reference = _reference(tmp_path, cfg)
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "dropout_lab", "sweep", str(cfg),
                             "--runs-dir", str(runs), "--workers", "1", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        deadline = time.monotonic() + 60
        while not (runs / "ck" / "trials").is_dir() \
                or not list((runs / "ck" / "trials").iterdir()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        _wait_for_checkpoint(proc, _trial(runs), rows=3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    from dropout_lab.checkpoint import parse

    kept = parse((_trial(runs) / "checkpoint.npz").read_bytes()).epoch
    assert kept >= 2
    _resume_and_check(cfg, runs, reference, kept, epochs=12)
