"""A real Ray head on 127.0.0.1: ``sweep --executor ray --ray-address`` gives the same numbers
as the local executor, and the driver alone writes the runs directory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is the optional extra: pip install 'dropout-lab[ray]'")

# Ray 2.60 replaces 127.0.0.1 by the machine's interface address unless this is 0, for the
# head and for the driver alike: test traffic must stay on the loopback interface.
# Token authentication off for this loopback-only head and its driver: otherwise a token
# left in ~/.ray by an earlier local Ray instance turns it on for the head only.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                "RAY_AUTH_MODE": "disabled", "NO_COLOR": "1", "COLUMNS": "200"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """``ray start --head --block`` in its own process group; ended by that group's id. One
    head serves the module's tests (each writes its own runs folder): starting a head takes
    most of a test's time (about 20 s each on a loaded 2-core machine)."""
    tmp_path = tmp_path_factory.mktemp("ray-head")
    port = _free_port()
    ray_cli = Path(sys.executable).parent / "ray"
    log = (tmp_path / "ray-head.log").open("w")
    env = dict(os.environ, **LOOPBACK_ENV)
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
         f"--ray-client-server-port={_free_port()}",
         f"--dashboard-agent-listen-port={_free_port()}", "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in (tmp_path / "ray-head.log").read_text():
            assert head.poll() is None, (tmp_path / "ray-head.log").read_text()
            assert time.monotonic() < deadline, "the Ray head did not start in 90 s"
            time.sleep(0.25)
        yield f"127.0.0.1:{port}"
    finally:
        # Only this head's process group: never `ray stop`, which would end every Ray here.
        for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                break
            try:
                head.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def _numbers(sweep_dir: Path) -> dict[str, tuple[list[dict], dict, str]]:
    out = {}
    for d in sorted((sweep_dir / "trials").iterdir()):
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        for r in rows:
            r.pop("epoch_seconds")
        result = json.loads((d / "result.json").read_text())
        out[d.name] = (rows, result["final"], result["status"])
    return out


@pytest.mark.slow
def test_ray_cluster_matches_local_executor(ray_head, cli, tiny_config, tmp_path):
    code, _, err = cli("sweep", tiny_config, "--runs-dir", tmp_path / "local", "--workers", "2",
                       "--threads", "1")
    assert code == 0, err

    env = dict(os.environ, **LOOPBACK_ENV)
    res = subprocess.run(
        [sys.executable, "-m", "dropout_lab", "sweep", str(tiny_config), "--runs-dir",
         str(tmp_path / "ray"), "--executor", "ray", "--ray-address", ray_head,
         "--threads", "1", "--json"],
        capture_output=True, text=True, env=env, timeout=180)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert len(doc["trials"]) == 4 and all(t["status"] == "done" for t in doc["trials"])
    assert f"executor ray at {ray_head}" in res.stderr

    local, remote = _numbers(tmp_path / "local" / "tiny"), _numbers(tmp_path / "ray" / "tiny")
    assert local.keys() == remote.keys()
    for tid in local:
        assert local[tid] == remote[tid], f"trial {tid}: Ray and local results differ"
    env_rec = json.loads((tmp_path / "ray" / "tiny" / "trials" / tid / "result.json")
                         .read_text())["env"]
    assert env_rec["threads"] == 1


def test_unreachable_ray_address_is_one_line(cli, tiny_config, tmp_path, monkeypatch):
    for k, v in LOOPBACK_ENV.items():
        monkeypatch.setenv(k, v)
    port = _free_port()  # nothing listens there
    code, _, err = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs", "--executor",
                       "ray", "--ray-address", f"127.0.0.1:{port}")
    assert code == 2, err
    assert f"cannot connect to the Ray cluster at 127.0.0.1:{port}" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


# The driver of the pack test runs in its own process, as the CLI test's does: Ray reads
# LOOPBACK_ENV when it starts, which this pytest process may have done before.
PACK_DRIVER = """
import copy, json, sys
from pathlib import Path
from dropout_lab.config import validate
from dropout_lab.executors.ray_executor import RayExecutor
from dropout_lab.packs.plan import Packing
from dropout_lab.runner import run_sweep
from tests.helpers.configs import TINY
raw = copy.deepcopy(TINY)
raw.update(backend="torch", device="cpu")
executor = RayExecutor(sys.argv[1])
try:
    executor.configure(workers=2, threads=1)
    swept = run_sweep(validate(raw), Path(sys.argv[2]), executor, packing=Packing(2, 2))
finally:
    executor.close()
print(json.dumps({"all_done": swept.all_done, "tasks": executor.tasks}))
"""


@pytest.mark.slow
def test_ray_ships_a_pack_as_one_task(ray_head, tmp_path):
    """Two packs of two: two Ray tasks, each returning its pack's members; the driver stores
    every member as its own trial."""
    pytest.importorskip("torch", reason="packs train on the torch backend")
    import copy

    from dropout_lab.config import validate
    from dropout_lab.sweep import expand
    from tests.helpers.configs import TINY

    raw = copy.deepcopy(TINY)
    raw.update(backend="torch", device="cpu")
    ids = [p.trial_id for p in expand(validate(raw))]
    env = dict(os.environ, **LOOPBACK_ENV)
    res = subprocess.run([sys.executable, "-c", PACK_DRIVER, ray_head, str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=180,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["all_done"]
    tasks = doc["tasks"]
    assert len(tasks) == 2  # one task per pack, not per trial
    assert len({task_id for task_id, _ in tasks}) == 2 and all(t for t, _ in tasks)
    assert sorted(members for _, members in tasks) == sorted([ids[:2], ids[2:]])
    for tid in ids:
        trial = tmp_path / "tiny" / "trials" / tid
        assert json.loads((trial / "result.json").read_text())["env"]["pack"]["size"] == 2
        assert len((trial / "metrics.jsonl").read_text().splitlines()) == TINY["train"]["epochs"]


@pytest.mark.slow
def test_a_ray_sweep_killed_after_a_checkpoint_resumes_to_the_uninterrupted_result(
        ray_head, tmp_path):
    """Checkpoints travel from the Ray task to the driver (a Ray queue), which writes them: a
    driver killed -9 right after its 3rd checkpoint write resumes from epoch 3, on Ray again,
    and ends with the result of an uninterrupted local run, bit for bit."""
    from tests.reliability.test_rel_checkpoint import KILLER, _config, _reference, _trial

    cfg = _config(tmp_path, "numpy")
    reference = _reference(tmp_path, cfg)
    runs = tmp_path / "runs"
    ray_args = ["sweep", str(cfg), "--runs-dir", str(runs), "--executor", "ray",
                "--ray-address", ray_head, "--threads", "1"]
    env = dict(os.environ, **LOOPBACK_ENV)
    killed = subprocess.run([sys.executable, "-c", KILLER, *ray_args], capture_output=True,
                            text=True, env=dict(env, KILL_AT="3", KILL_PHASE="after"),
                            timeout=180)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    trial = _trial(runs)
    rows = (trial / "metrics.jsonl").read_text().splitlines()
    assert len(rows) >= 3  # the task's rows streamed to the driver as it ran
    resumed = subprocess.run([sys.executable, "-m", "dropout_lab", *ray_args], capture_output=True,
                             text=True, env=env, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads((trial / "result.json").read_text())
    assert result["resumed"]["from_epoch"] == 3
    from tests.reliability.test_rel_checkpoint import _numbers as numbers_of

    assert numbers_of(trial) == reference
    assert not (trial / "checkpoint.npz").exists()
