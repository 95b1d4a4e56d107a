"""One sweep per folder (issue 12, item 1): an flock on runs/<name>/.lock held for the whole
sweep; a second sweep exits 2 at once naming the holder, or waits with --wait; a stored
sweep of another base config is refused unless only axes were added."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dropout_lab.store import SweepLock
from tests.helpers.reliability import cli, env, tiny, write_yaml


def test_a_second_sweep_on_a_locked_folder_exits_2_naming_the_holder(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    runs = tmp_path / "runs"
    with SweepLock(runs / "tiny") as lock:
        lock.acquire()
        run = cli("sweep", cfg, "--runs-dir", runs, "--workers", "1")
    run.assert_clean_failure(2, "in use by another sweep", f"pid {os.getpid()}", "--wait")
    assert not (runs / "tiny" / "trials").exists() or not any((runs / "tiny" / "trials").iterdir())
    # Released: the same command now runs.
    assert cli("sweep", cfg, "--runs-dir", runs, "--workers", "1").code == 0


def test_dry_run_and_readers_need_no_lock(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    runs = tmp_path / "runs"
    assert cli("sweep", cfg, "--runs-dir", runs, "--workers", "1").code == 0
    with SweepLock(runs / "tiny") as lock:
        lock.acquire()
        assert cli("sweep", cfg, "--runs-dir", runs, "--dry-run").code == 0
        assert cli("show", runs / "tiny").code == 0
        assert cli("ls", runs).code == 0


def test_the_lock_dies_with_its_process_even_by_sigkill(tmp_path):
    root = tmp_path / "runs" / "x"
    code = ("import sys, time; from dropout_lab.store import SweepLock; "
            "SweepLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(Exception, match=f"pid {p.pid}"):
            SweepLock(root).acquire()
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        lock = SweepLock(root)
        lock.acquire()  # no stale lock after kill -9
        lock.release()
    finally:
        if p.poll() is None:
            p.kill()


@pytest.mark.slow
def test_two_concurrent_sweeps_run_each_trial_once(tmp_path):
    # Six trials of about a second; the second sweep starts while the first runs.
    cfg = write_yaml(tmp_path / "c.yaml", tiny(
        name="both", dataset={"name": "synthetic", "n_train": 3000, "n_test": 200,
                              "n_features": 32, "n_classes": 3},
        model={"hidden": [128]}, train={"epochs": 6, "batch_size": 32},
        sweep={"seed": [0, 1, 2, 3, 4, 5]}))
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "dropout_lab", "sweep", str(cfg), "--runs-dir", str(runs),
           "--workers", "1", "--json"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env())
    try:
        deadline = time.monotonic() + 60
        lock = runs / "both" / ".lock"
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text()):
            time.sleep(0.02)
        # Freeze the first sweep while it holds the lock: on a loaded machine the second
        # interpreter can take longer to start than the first takes to finish its six trials,
        # and the refusal must not depend on that race.
        os.kill(first.pid, signal.SIGSTOP)
        try:
            refused = subprocess.run(cmd, capture_output=True, text=True, env=env())
        finally:
            os.kill(first.pid, signal.SIGCONT)
        waiting = subprocess.run(cmd + ["--wait"], capture_output=True, text=True, env=env())
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert refused.returncode == 2 and "in use by another sweep" in refused.stderr
    assert f"pid {first.pid}" in refused.stderr and "Traceback" not in refused.stderr
    assert waiting.returncode == 0, waiting.stderr
    executed_first = [t for t in json.loads(out)["trials"] if t["executed"]]
    executed_second = [t for t in json.loads(waiting.stdout)["trials"] if t["executed"]]
    assert len(executed_first) == 6 and executed_second == []  # nothing trained twice


def test_another_base_config_under_the_same_name_is_refused(tmp_path):
    runs = tmp_path / "runs"
    assert cli("sweep", write_yaml(tmp_path / "a.yaml", tiny()), "--runs-dir", runs,
               "--workers", "1").code == 0
    before = (runs / "tiny" / "sweep.yaml").read_text()
    other = write_yaml(tmp_path / "b.yaml", tiny(train={"epochs": 3, "batch_size": 32}))
    run = cli("sweep", other, "--runs-dir", runs, "--workers", "1")
    run.assert_clean_failure(2, "another config", "train.epochs", "--fresh", "name")
    assert (runs / "tiny" / "sweep.yaml").read_text() == before  # nothing rewritten
    assert cli("sweep", other, "--runs-dir", runs, "--workers", "1", "--fresh").code == 0


def test_adding_an_axis_is_allowed(tmp_path):
    runs = tmp_path / "runs"
    assert cli("sweep", write_yaml(tmp_path / "a.yaml", tiny(sweep={"seed": [0, 1]})),
               "--runs-dir", runs, "--workers", "1").code == 0
    wider = tiny(sweep={"seed": [0, 1], "dropout.p": [0.5, 0.2]})
    run = cli("sweep", write_yaml(tmp_path / "b.yaml", wider), "--runs-dir", runs,
              "--workers", "1", "--json")
    assert run.code == 0, run.text
    executed = [t for t in json.loads(run.out)["trials"] if t["executed"]]
    assert len(executed) == 2  # the p=0.5 trials were reused
