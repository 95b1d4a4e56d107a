"""kill -9 in the middle of a search loses at most the trial that was running: a real
subprocess dies by SIGKILL while a trial trains (at a chosen metrics row, as the checkpoint
tests kill at a chosen write); the re-run keeps every stored result, re-runs the lost trial,
asks the killed suggestion again with the same value, and finishes the search."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.helpers.requires import requires

pytestmark = [requires("optuna"), pytest.mark.slow]

# Runs the CLI with SweepStore.append_metrics_row dying (SIGKILL) at its KILL_AT-th call: the
# process is killed while a trial trains, after that epoch's row reached metrics.jsonl.
KILLER = """
import os, signal, sys
from dropout_lab.store import sweep_store
real, calls = sweep_store.SweepStore.append_metrics_row, [0]
def append(self, trial_id, row):
    real(self, trial_id, row)
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
sweep_store.SweepStore.append_metrics_row = append
from dropout_lab.__main__ import main
sys.argv = ["dropout-lab", *sys.argv[1:]]
main()
"""

CFG = {
    "name": "killed",
    "dataset": {"name": "digits", "val_fraction": 0.2},
    "model": {"hidden": [8]},
    "train": {"epochs": 3, "lr": 0.1, "batch_size": 64},
    "eval": {"coadaptation": False, "uncertainty": False, "save_weights": "none"},
    "sweep": {"dropout.p": {"min": 0.0, "max": 0.9}, "seed": [0, 1]},
    "search": {"method": "random", "trials": 4, "metric": "val_acc", "seed": 3},
}


def test_kill_9_loses_only_the_running_trial(cli, write_config, tmp_path):
    path = write_config(CFG)
    runs = tmp_path / "runs"
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200", KILL_AT="10")
    p = subprocess.run([sys.executable, "-c", KILLER, "sweep", str(path), "--runs-dir", str(runs),
                        "--workers", "1", "--threads", "1"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode == -signal.SIGKILL, p.stderr
    trials = runs / "killed" / "trials"
    # 3 epochs a trial: rows 1-9 finished three trials, row 10 was the fourth's first epoch
    stored = {r.parent.name: r.read_bytes() for r in trials.glob("*/result.json")}
    assert len(stored) == 3
    running = [d.name for d in trials.iterdir() if not (d / "result.json").exists()]
    assert len(running) == 1
    sweep = json.loads(json.dumps(__import__("yaml").safe_load(
        (runs / "killed" / "sweep.yaml").read_text())))
    killed_p = next(t["params"]["dropout.p"] for t in sweep["trials"]
                    if t["trial_id"] == running[0])

    code, out, err = cli("sweep", path, "--runs-dir", runs, "--workers", "1", "--threads", "1",
                         "--json")
    assert code == 0, err
    doc = json.loads(out)
    executed = {t["trial_id"] for t in doc["trials"] if t["executed"]}
    assert not executed & set(stored)  # nothing finished ran again
    assert running[0] in executed  # the lost trial did
    assert len(doc["trials"]) == 8 and len(executed) == 5
    for tid, data in stored.items():
        assert (trials / tid / "result.json").read_bytes() == data
    suggestions = doc["search"]["suggestions"]
    assert len(suggestions) == 4 and all(s["state"] == "complete" for s in suggestions)
    assert suggestions[1]["params"]["dropout.p"] == killed_p  # asked again, same value
    assert set(suggestions[1]["trial_ids"]) >= {running[0]}
