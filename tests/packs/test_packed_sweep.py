"""Packed sweeps end to end (issue 19, the sweep side): ``--pack`` validation, a packed torch
sweep writes the folders and results an unpacked one writes, ``compare`` prints the same
table, a worker dying mid-pack fails only its unfinished members, kill -9 of the sweep in the
middle of a pack re-trains only the members that were not done, ``--dry-run`` shows packs."""

from __future__ import annotations

import copy
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dropout_lab.config import validate
from dropout_lab.executors.local import LocalExecutor
from dropout_lab.packs.plan import Packing
from dropout_lab.runner import run_sweep
from dropout_lab.sweep import expand
from tests.helpers.configs import TINY

pytest.importorskip("torch", reason="packs train on the torch backend")

LOSS_TOL = 1e-4  # float32: the conformance suite's tolerance between backends
ACC_EXAMPLES = 2  # ... and accuracies within two examples


def torch_tiny(**top) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg.update(backend="torch", device="cpu", **top)
    return cfg


def trial_files(sweep: Path) -> dict[str, list[str]]:
    return {d.name: sorted(f.name for f in d.iterdir())
            for d in sorted((sweep / "trials").iterdir())}


def stored(sweep: Path) -> dict[str, tuple[dict, list[dict]]]:
    out = {}
    for d in sorted((sweep / "trials").iterdir()):
        rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
        out[d.name] = (json.loads((d / "result.json").read_text()), rows)
    return out


def close(a: dict, b: dict, n_test: int, n_train: int) -> None:
    """Two metric rows (or finals) agree within the float32 tolerance."""
    assert a.keys() == b.keys()
    for k, v in a.items():
        if not isinstance(v, float):
            continue
        if k.endswith("_acc"):
            n = n_train if k.startswith("train") else n_test
            assert abs(v - b[k]) * n <= ACC_EXAMPLES + 1e-9, (k, v, b[k])
        elif k.endswith("_seconds"):
            continue
        else:
            assert abs(v - b[k]) <= LOSS_TOL * max(1.0, abs(b[k])), (k, v, b[k])


@pytest.mark.parametrize("value", ["0", "-1", "many", "2.5"])
def test_bad_pack_values_exit_2_before_anything_is_written(cli, write_config, tmp_path, value):
    path = write_config(torch_tiny())
    code, out, err = cli("sweep", path, "--runs-dir", tmp_path / "runs", "--pack", value)
    assert code == 2, err
    assert "--pack must be 'auto' or a whole number" in err
    assert "Traceback" not in out + err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_packed_sweep_writes_what_an_unpacked_sweep_writes(cli, write_config, tmp_path,
                                                           workers):
    path = write_config(torch_tiny())
    common = ("--workers", workers, "--threads", "1", "--json")
    code, out, err = cli("sweep", path, "--runs-dir", tmp_path / "solo", "--pack", "1", *common)
    assert code == 0, err
    code, out, err = cli("sweep", path, "--runs-dir", tmp_path / "packed", "--pack", "4",
                         *common)
    assert code == 0, err
    assert "4 trial(s) in " in err  # the progress header names the packs

    solo, packed = tmp_path / "solo" / "tiny", tmp_path / "packed" / "tiny"
    assert trial_files(solo) == trial_files(packed)
    a, b = stored(solo), stored(packed)
    ids = [p.trial_id for p in expand(validate(torch_tiny()))]
    n_test, n_train = TINY["dataset"]["n_test"], TINY["dataset"]["n_train"]
    for tid in ids:
        (ra, rows_a), (rb, rows_b) = a[tid], b[tid]
        assert "pack" not in ra["env"]  # --pack 1 is today's sweep exactly
        # 4 points on 1 worker: one pack of 4; on 2 workers: two packs of 2, in grid order
        size = 4 if workers == "1" else 2
        assert rb["env"]["pack"] == {"size": size, "index": ids.index(tid) % size}
        assert rb["status"] == ra["status"] == "done"
        assert rb["params"] == ra["params"] and rb["epochs_trained"] == ra["epochs_trained"]
        close(rb["final"], ra["final"], n_test, n_train)
        assert len(rows_a) == len(rows_b) == TINY["train"]["epochs"]
        for x, y in zip(rows_b, rows_a, strict=True):
            close(x, y, n_test, n_train)
    assert (solo / "summary.csv").read_text().splitlines()[0] == \
        (packed / "summary.csv").read_text().splitlines()[0]


@pytest.mark.slow
def test_compare_prints_the_same_table_for_a_packed_and_an_unpacked_run(cli, write_config,
                                                                        tmp_path):
    # float64: members equal their solo runs to 1e-9, so every printed digit agrees
    path = write_config(torch_tiny(dtype="float64"))
    for name, pack in (("solo", "1"), ("packed", "2")):
        code, _, err = cli("sweep", path, "--runs-dir", tmp_path / name, "--pack", pack,
                           "--workers", "1", "--threads", "1")
        assert code == 0, err
    tables = []
    for name in ("solo", "packed"):
        code, out, err = cli("compare", tmp_path / name / "tiny")
        assert code == 0, err
        tables.append(out.replace(str(tmp_path / name), "RUNS"))
    assert tables[0] == tables[1]
    assert "dropout.p" in tables[0]


class _KillWorkerAtFirstStart:
    """Events that SIGKILL the worker process the moment the first member of a pack starts
    (the worker really dies mid-pack; the driver must notice)."""

    def __init__(self) -> None:
        self.killed: list[int] = []

    def started(self, trial_id: str) -> None:
        if not self.killed:
            for child in mp.active_children():
                if child.name == "dropout-lab-worker" and child.pid is not None:
                    os.kill(child.pid, signal.SIGKILL)
                    self.killed.append(child.pid)

    def epoch(self, trial_id: str, epoch: int, epochs: int, row: dict) -> None:
        pass

    def finished(self, trial_id: str, status) -> None:
        pass

    def checkpoint(self, trial_id: str, epoch: int, data: bytes) -> None:
        pass


@pytest.mark.slow
def test_a_worker_dying_mid_pack_fails_its_unfinished_members_and_a_rerun_retries_them(
        tmp_path):
    cfg = validate(torch_tiny())
    ids = [p.trial_id for p in expand(cfg)]
    events = _KillWorkerAtFirstStart()
    swept = run_sweep(cfg, tmp_path, LocalExecutor(workers=1, threads=1), events=events,
                      packing=Packing(2, 1))
    assert len(events.killed) == 1
    status = {t.point.trial_id: t.result["status"] for t in swept.trials}
    # the first pack (grid positions 0 and 1) died with its worker; a new worker ran the second
    assert [status[t] for t in ids] == ["failed", "failed", "done", "done"]
    for tid in ids[:2]:
        result = json.loads((tmp_path / "tiny" / "trials" / tid / "result.json").read_text())
        assert result["error"] == "worker process died (signal 9, SIGKILL)"

    again = run_sweep(cfg, tmp_path, LocalExecutor(workers=1, threads=1),
                      packing=Packing(2, 1))
    assert {t.point.trial_id for t in again.trials if t.executed} == set(ids[:2])
    assert again.all_done


@pytest.mark.slow
def test_kill_9_mid_pack_then_resume_retrains_only_the_unfinished_members(write_config,
                                                                         tmp_path):
    # 4 points -> 2 packs of 2 on one worker; enough epochs that a pack takes a few seconds
    raw = torch_tiny()
    raw["dataset"] = dict(raw["dataset"], n_train=1200)
    raw["train"] = dict(raw["train"], epochs=60)
    raw["eval"] = dict(raw["eval"], coadaptation=False, uncertainty=False)
    path = write_config(raw)
    ids = [p.trial_id for p in expand(validate(raw))]
    first, second = ids[:2], ids[2:]
    runs = tmp_path / "runs"
    trials = runs / "tiny" / "trials"
    cmd = [sys.executable, "-m", "dropout_lab", "sweep", str(path), "--runs-dir", str(runs),
           "--pack", "2", "--workers", "1", "--threads", "1", "--json"]
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 300
        # the first pack stored, the second one training (an epoch row of one of its members)
        while not (all((trials / t / "result.json").exists() for t in first)
                   and any((trials / t / "metrics.jsonl").exists()
                           and (trials / t / "metrics.jsonl").read_text().strip()
                           for t in second)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the second pack never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not any((trials / t / "result.json").exists() for t in second), (
        "the second pack finished before the kill: make it longer")
    kept = {t: (trials / t / "result.json").read_bytes() for t in first}

    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    executed = {t["trial_id"] for t in doc["trials"] if t["executed"]}
    assert executed == set(second)  # only the members that were not done
    assert all(t["status"] == "done" for t in doc["trials"])
    assert {t: (trials / t / "result.json").read_bytes() for t in first} == kept
    for t in second:  # metrics.jsonl restarted: one row per epoch, not the killed run's too
        rows = (trials / t / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(r)["epoch"] for r in rows] == list(range(1, 61))


def test_dry_run_shows_the_packs_their_members_and_estimates(cli, write_config, tmp_path):
    path = write_config(torch_tiny())
    runs = tmp_path / "runs"
    code, out, err = cli("sweep", path, "--runs-dir", runs, "--dry-run", "--json", "--pack",
                         "2", "--workers", "1")
    assert code == 0, err
    assert not runs.exists()
    doc = json.loads(out)
    ids = [p.trial_id for p in expand(validate(torch_tiny()))]
    assert doc["pack"] == 2
    assert [p["trials"] for p in doc["packs"]] == [ids[:2], ids[2:]]
    assert all(p["size"] == 2 and p["estimate_seconds"] > 0 and p["memory_bytes"] > 0
               for p in doc["packs"])
    assert doc["estimate_seconds"] > 0

    code, out, err = cli("sweep", path, "--runs-dir", runs, "--dry-run", "--pack", "2",
                         "--workers", "1")
    assert code == 0, err
    assert "4 trial(s) in 2 pack(s) of sizes 2" in out
    assert ids[0] in out and "est. memory" in out

    code, out, _ = cli("sweep", path, "--runs-dir", runs, "--dry-run", "--json", "--pack", "1")
    assert [p["size"] for p in json.loads(out)["packs"]] == [1, 1, 1, 1]


class _Order:
    """Events that record the order in which epoch rows and finished trials reach the
    driver."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def started(self, trial_id: str) -> None:
        pass

    def epoch(self, trial_id: str, epoch: int, epochs: int, row: dict) -> None:
        self.log.append(("epoch", trial_id))

    def finished(self, trial_id: str, status) -> None:
        self.log.append(("finished", trial_id))

    def checkpoint(self, trial_id: str, epoch: int, data: bytes) -> None:
        pass


@pytest.mark.slow
def test_a_member_final_before_its_pack_ends_is_stored_at_once(tmp_path):
    # lr 1e250 diverges in the first epoch; its outcome reaches the driver (and the store)
    # while the other member still trains, not when the pack ends
    raw = torch_tiny(dtype="float64")
    raw["train"] = dict(raw["train"], epochs=8)
    raw["sweep"] = {"train.lr": [1e250, 0.05]}
    cfg = validate(raw)
    bad, good = (p.trial_id for p in expand(cfg))
    events = _Order()
    swept = run_sweep(cfg, tmp_path, LocalExecutor(workers=1, threads=1), events=events,
                      packing=Packing(2, 1))
    status = {t.point.trial_id: t.result["status"] for t in swept.trials}
    assert status == {bad: "diverged", good: "done"}
    when_bad = events.log.index(("finished", bad))
    assert ("epoch", good) in events.log[when_bad:], events.log
