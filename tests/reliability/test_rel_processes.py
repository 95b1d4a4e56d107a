"""Real processes, real signals, faults injected by monkeypatching (issue 12, items 3, 8, 10,
11, and the crash-safety guarantee): kill -9 at every commit point of the store, SIGTERM and
SIGHUP like Ctrl-C, Ctrl-C during start-up, workers of a killed driver, Ray-style lines on
stdout under --json, disk full / permission denied / read-only."""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers.reliability import cli, env, tiny, write_yaml

SLOW_TRIALS = dict(dataset={"name": "synthetic", "n_train": 3000, "n_test": 200,
                            "n_features": 32, "n_classes": 3},
                   model={"hidden": [128]}, train={"epochs": 6, "batch_size": 32},
                   sweep={"seed": [0, 1, 2, 3, 4, 5]})


def _results(sweep: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted((sweep / "trials").glob("*/result.json")):
        json.loads(p.read_text())  # every stored result parses: never half-written
        out[p.parent.name] = p.read_bytes()
    return out


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.name.endswith(".tmp")]


# -- kill -9 at every commit point ---------------------------------------------------------------

KILLER = textwrap.dedent("""
    import os, signal, sys
    at, when = int(os.environ["KILL_AT"]), os.environ["KILL_WHEN"]
    real, calls = os.replace, [0]
    def replace(src, dst):
        calls[0] += 1
        if calls[0] == at and when == "before":  # the temporary file is written and synced
            os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst)
        if calls[0] == at and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace  # the store's atomic writes (dropout_lab/store/files.py) call it
    from dropout_lab.cli.app import run_app
    sys.exit(run_app(sys.argv[1:]))
""")

# One epoch, no after-training statistics: the kill tests time the store, not training.
QUICK = dict(train={"epochs": 1, "batch_size": 32},
             eval={"coadaptation": False, "uncertainty": False})

# Two trials with --workers 1: sweep.yaml, 2 x config.yaml, 2 x (weights.npz, metrics.jsonl,
# result.json), summary.csv: ten renames, each a commit point (result.json: the 6th and 9th).
COMMIT_POINTS = 10


@pytest.mark.slow
@pytest.mark.parametrize("at,when", [(k, "before") for k in range(1, COMMIT_POINTS + 1)]
                         + [(6, "after"), (9, "after")])
def test_kill_9_at_a_commit_point_loses_nothing_and_resumes(tmp_path, at, when):
    cfg = write_yaml(tmp_path / "c.yaml", tiny(sweep={"dropout.p": [0.0, 0.5]}, **QUICK))
    runs = tmp_path / "runs"
    p = subprocess.run([sys.executable, "-c", KILLER, "sweep", str(cfg), "--runs-dir",
                        str(runs), "--workers", "1"], capture_output=True, text=True,
                       env=dict(env(), KILL_AT=str(at), KILL_WHEN=when), timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr
    sweep = runs / "tiny"
    before = _results(sweep) if sweep.exists() else {}
    if when == "before":
        assert _temporaries(runs), "the kill should leave a temporary file"
    resumed = cli("sweep", cfg, "--runs-dir", runs, "--workers", "1", "--json")
    assert resumed.code == 0, resumed.text
    trials = json.loads(resumed.out)["trials"]
    assert [t["status"] for t in trials] == ["done", "done"]
    ran_again = {t["trial_id"] for t in trials if t["executed"]}
    assert not ran_again & set(before), "a finished trial ran twice"
    after = _results(sweep)
    assert all(after[k] == v for k, v in before.items())  # finished results untouched
    assert _temporaries(runs) == []  # the resume removed the killed run's leftovers
    assert (sweep / "summary.csv").is_file()


def test_the_commit_point_count_is_what_the_kill_test_assumes(tmp_path, monkeypatch):
    calls = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda s, d: (calls.append(d), real(s, d))[1])
    cfg = write_yaml(tmp_path / "c.yaml", tiny(sweep={"dropout.p": [0.0, 0.5]}, **QUICK))
    assert cli("sweep", cfg, "--runs-dir", tmp_path / "runs", "--workers", "1").code == 0
    assert len(calls) == COMMIT_POINTS, calls


# -- signals -----------------------------------------------------------------------------------

def _start(tmp_path: Path, workers: int, **popen) -> tuple[subprocess.Popen, Path]:
    cfg = write_yaml(tmp_path / "c.yaml", tiny(name="sig", **SLOW_TRIALS))
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "dropout_lab", "sweep", str(cfg), "--runs-dir", str(runs),
           "--workers", str(workers), "--threads", "1", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(), **popen)
    return proc, runs / "sig"


def _wait_for_a_result(proc: subprocess.Popen, sweep: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not list(sweep.glob("trials/*/result.json")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig,code,workers", [(signal.SIGTERM, 143, 2),
                                              (signal.SIGHUP, 129, 1)])
def test_sigterm_and_sighup_are_handled_like_ctrl_c(tmp_path, sig, code, workers):
    proc, sweep = _start(tmp_path, workers)
    try:
        _wait_for_a_result(proc, sweep)
        proc.send_signal(sig)  # to the driver only, as `timeout` and CI runners do
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err and "interrupted" in err
    doc = json.loads(out)  # one whole JSON document, never half of one (issue 21)
    assert doc["interrupted"] is True and doc["code"] == code
    done = _results(sweep)
    with open(sweep / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and sum(r["status"] == "done" for r in rows) == len(done) >= 1


def _wait_until_loaded(pid: int, library: str) -> bool:
    """True once the process has mapped ``library`` (a compiled module), i.e. start-up has
    reached that import; False if it ended first."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if library in Path(f"/proc/{pid}/maps").read_text():
                return True
        except OSError:
            return False
        time.sleep(0.002)
    return False


# Mapped in this order while the CLI starts: the config models, then the numerics.
@pytest.mark.parametrize("library", ["_pydantic_core", "_multiarray_umath", "_yaml"])
def test_ctrl_c_during_start_up_is_exit_130_without_traceback(tmp_path, library):
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    proc = subprocess.Popen([sys.executable, "-m", "dropout_lab", "sweep", str(cfg),
                             "--runs-dir", str(tmp_path / "runs"), "--dry-run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    if _wait_until_loaded(proc.pid, library):
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # 130 (interrupted) or 0 when the dry run had already finished
    assert proc.returncode in (130, 0), (proc.returncode, err)


@pytest.mark.slow
def test_workers_of_a_killed_driver_exit_quietly(tmp_path):
    proc, sweep = _start(tmp_path, 2)
    try:
        _wait_for_a_result(proc, sweep)
        proc.send_signal(signal.SIGKILL)  # the driver only: its workers are orphaned
        # stderr reaches EOF only when every worker holding it has exited
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


SITECUSTOMIZE = textwrap.dedent("""
    import os, sys
    # Only in the sweep's worker processes: write to file descriptor 1 the way Ray's log
    # monitor does ("(raylet) A worker died ...").
    if "--multiprocessing-fork" in sys.argv:
        os.write(1, b"(raylet) A worker died or was killed while executing a task\\n")
""")


@pytest.mark.slow
def test_json_stdout_holds_only_the_document_whatever_workers_write(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    cfg = write_yaml(tmp_path / "c.yaml", tiny(sweep={"seed": [0, 1]}, **QUICK))
    p = subprocess.run([sys.executable, "-m", "dropout_lab", "sweep", str(cfg), "--runs-dir",
                        str(tmp_path / "runs"), "--workers", "2", "--threads", "1", "--json"],
                       capture_output=True, text=True, timeout=120,
                       env=dict(env(), PYTHONPATH=str(site)))
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["trials"]) == 2  # stdout parses as one document
    assert "(raylet) A worker died" in p.stderr  # the lines went to stderr instead


# -- environment faults --------------------------------------------------------------------------

@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
def test_disk_full_mid_sweep_is_exit_3_with_results_intact(tmp_path, monkeypatch, code):
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    runs = tmp_path / "runs"
    real, calls = os.fsync, [0]

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] >= 13:  # sweep.yaml, 4 configs, 2 x (weights, metrics, result), then full
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    run = cli("sweep", cfg, "--runs-dir", runs, "--workers", "1")
    run.assert_clean_failure(3, "cannot write", str(runs / "tiny"), os.strerror(code))
    assert run.err.count("error:") == 1
    monkeypatch.setattr(os, "fsync", real)
    assert len(_results(runs / "tiny")) == 2  # the finished ones, whole
    assert _temporaries(runs) == []
    resumed = cli("sweep", cfg, "--runs-dir", runs, "--workers", "1", "--json")
    assert resumed.code == 0
    assert sum(t["executed"] for t in json.loads(resumed.out)["trials"]) == 2


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM, errno.EROFS])
def test_unwritable_runs_dir_is_exit_3_before_training(tmp_path, monkeypatch, code):
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    runs = tmp_path / "runs"
    runs.mkdir()

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(runs / "tiny"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    run = cli("sweep", cfg, "--runs-dir", runs, "--workers", "1")
    run.assert_clean_failure(3, str(runs / "tiny"), os.strerror(code))
    assert not list(runs.rglob("result.json"))


def test_unreadable_runs_folder_in_ls_is_exit_3(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()

    def refuse(self):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)
    cli("ls", runs).assert_clean_failure(3, str(runs), "Permission denied")


# -- leftovers --------------------------------------------------------------------------------

def test_a_sweep_removes_stale_temporaries_of_a_killed_run(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    runs = tmp_path / "runs"
    assert cli("sweep", cfg, "--runs-dir", runs, "--workers", "1").code == 0
    trial = next((runs / "tiny" / "trials").iterdir())
    stale = [trial / ".result.json.abc123.tmp", runs / "tiny" / ".sweep.yaml.x1.tmp",
             runs / "tiny" / ".write-check.zz"]
    for s in stale:
        s.write_text("half")
    keep = runs / "tiny" / "notes.tmp"  # not ours: not a dot file
    keep.write_text("mine")
    assert cli("sweep", cfg, "--runs-dir", runs, "--workers", "1").code == 0
    assert not any(s.exists() for s in stale) and keep.exists()


def test_ctrl_c_while_the_summary_is_written_still_writes_it(tmp_path, monkeypatch):
    # The signal arrives inside the last step (Ctrl-C "right after the last trial"): it is
    # held until summary.csv is written, then the sweep ends as interrupted.
    from dropout_lab.store import SweepStore

    real = SweepStore.write_summary

    def interrupted_write(self, results, axes):
        os.kill(os.getpid(), signal.SIGINT)  # delivered at the next bytecode boundary
        time.sleep(0.05)
        real(self, results, axes)

    monkeypatch.setattr(SweepStore, "write_summary", interrupted_write)
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    run = cli("sweep", cfg, "--runs-dir", tmp_path / "runs", "--workers", "1")
    run.assert_clean_failure(130, "interrupted")
    with open(tmp_path / "runs" / "tiny" / "summary.csv") as fh:
        assert [r["status"] for r in csv.DictReader(fh)] == ["done"] * 4
