"""Ctrl-C during a sweep: exit 130, finished trials kept intact, the summary written; a re-run
completes the grid without running any finished trial again."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.configs import TINY

FINAL_KEYS = {"train_loss", "train_acc", "test_loss", "test_acc", "gap_acc", "gap_loss"}


def _sweep_cmd(path: Path, runs: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "dropout_lab", "sweep", str(path), "--runs-dir", str(runs),
            "--workers", str(workers), "--threads", "1", "--json"]


def _done_results(sweep_dir: Path) -> dict[str, dict]:
    out = {}
    for p in (sweep_dir / "trials").glob("*/result.json"):
        out[p.parent.name] = json.loads(p.read_text())  # must parse: never half-written
    return out


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_then_resume(write_config, tmp_path, workers):
    # Six trials of ~0.5-1 s: the first finishes well before the last starts.
    cfg = dict(TINY, name="intr",
               dataset={"name": "synthetic", "n_train": 2000, "n_test": 200,
                        "n_features": 32, "n_classes": 3},
               model={"hidden": [128]}, train=dict(TINY["train"], epochs=6),
               sweep={"seed": [0, 1, 2, 3, 4, 5]})
    path = write_config(cfg)
    runs = tmp_path / "runs"
    sweep_dir = runs / "intr"
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    # Its own process group, so the SIGINT reaches the driver and its workers, as a Ctrl-C
    # in a terminal does.
    proc = subprocess.Popen(_sweep_cmd(path, runs, workers), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(sweep_dir.glob("trials/*/result.json")):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    doc = json.loads(out)  # an interrupted --json sweep still prints its document (issue 21)
    assert doc["interrupted"] is True and doc["code"] == 130

    first = _done_results(sweep_dir)
    assert 1 <= len(first) < 6
    for r in first.values():
        assert r["status"] == "done" and set(r["final"]) == FINAL_KEYS
    with (sweep_dir / "summary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    assert sum(r["status"] == "done" for r in rows) == len(first)
    assert {r["status"] for r in rows} <= {"done", "pending"}
    stamps = {tid: r["timing"]["started_at"] for tid, r in first.items()}

    res = subprocess.run(_sweep_cmd(path, runs, workers), capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert len(doc["trials"]) == 6 and all(t["status"] == "done" for t in doc["trials"])
    executed = {t["trial_id"]: t["executed"] for t in doc["trials"]}
    assert {tid for tid, ran in executed.items() if not ran} == set(first)  # nothing twice
    assert sum(executed.values()) == 6 - len(first)  # nothing lost
    after = _done_results(sweep_dir)
    assert {tid: after[tid]["timing"]["started_at"] for tid in first} == stamps
