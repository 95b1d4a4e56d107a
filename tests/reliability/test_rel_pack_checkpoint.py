"""Pack checkpoints under kill -9, with real processes (issue 19, item 1 of the remainder).

One pack of 4 members (torch CPU, ``--pack 4 --workers 1``, a checkpoint after every epoch):
two members stop early after epoch 2 (done, stored at once), two train on. The sweep is killed
(SIGKILL, placed by the driver's checkpoint writer as in test_rel_checkpoint.py, or from
outside while the pack trains) and run again: the stored members are not re-trained, the
others continue from their own checkpoints (in a pack, or each alone on the pack's code path
when the kill left them at different epochs) and every file ends bit for bit as an
uninterrupted packed sweep's. The members' equality with their solo runs is the pack
conformance suite's (tests/packs/test_packs.py, test_pack_checkpoint.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.reliability import env, tiny, write_yaml
from tests.reliability.test_rel_checkpoint import KILLER, _temporaries

pytest.importorskip("torch", reason="packs train on the torch backend")

EPOCHS = 6


def _config(tmp_path: Path, dtype: str, epochs: int = EPOCHS, n_train: int = 600) -> Path:
    cfg = tiny(name="pk", backend="torch", device="cpu", dtype=dtype,
               dataset={"name": "synthetic", "n_train": n_train, "n_test": 100,
                        "n_features": 12, "n_classes": 3, "val_fraction": 0.2},
               model={"hidden": [32]},
               train={"epochs": epochs, "batch_size": 16, "optimizer": "momentum", "lr": 0.05,
                      "checkpoint_every": 1},
               # min_delta 100 stops after epoch 2: two members stored before the kill
               sweep={"train.early_stopping": [None, {"patience": 1, "min_delta": 100.0}],
                      "seed": [0, 1]})
    return write_yaml(tmp_path / "c.yaml", cfg)


def _sweep(cfg: Path, runs: Path) -> list[str]:
    return [str(cfg), "--runs-dir", str(runs), "--pack", "4", "--workers", "1", "--threads",
            "1", "--json"]


def _numbers(trial: Path) -> dict:
    """What the trial computed, without timings: bit for bit after a resume."""
    result = json.loads((trial / "result.json").read_text())
    for key in ("timing", "resumed", "env"):  # (env: pack size, thread pools' order, ...)
        result.pop(key, None)
    rows = [json.loads(line) for line in (trial / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("epoch_seconds")
    weights = {}
    if (trial / "weights.npz").exists():
        with np.load(trial / "weights.npz") as npz:
            weights = {k: npz[k].tobytes() for k in npz.files}
    # as JSON text: equal texts are equal numbers, NaN (an empty reliability bin) included
    return {"result": json.dumps(result, sort_keys=True), "rows": json.dumps(rows),
            "weights": weights}


def _all(runs: Path) -> dict[str, dict]:
    return {t.name: _numbers(t) for t in sorted((runs / "pk" / "trials").iterdir())}


def _reference(tmp_path: Path, cfg: Path, epochs: int = EPOCHS) -> dict[str, dict]:
    runs = tmp_path / "reference"
    p = subprocess.run([sys.executable, "-m", "dropout_lab", "sweep", *_sweep(cfg, runs)],
                       capture_output=True, text=True, env=env(), timeout=300)
    assert p.returncode == 0, p.stderr
    ref = _all(runs)
    assert sorted(json.loads(r["result"])["epochs_trained"] for r in ref.values()) == [
        2, 2, epochs, epochs]
    return ref


def _resume_and_check(cfg: Path, runs: Path, reference: dict[str, dict],
                      stored_before: dict[str, bytes], kept: dict[str, int]) -> None:
    p = subprocess.run([sys.executable, "-m", "dropout_lab", "sweep", *_sweep(cfg, runs)],
                       capture_output=True, text=True, env=env(), timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    executed = {t["trial_id"] for t in doc["trials"] if t["executed"]}
    assert executed == set(kept)  # only the members that were not done
    trials = runs / "pk" / "trials"
    for tid, data in stored_before.items():  # finished members untouched
        assert (trials / tid / "result.json").read_bytes() == data
    for tid, epoch in kept.items():
        result = json.loads((trials / tid / "result.json").read_text())
        assert result.get("resumed", {"from_epoch": 0})["from_epoch"] == epoch
        assert not (trials / tid / "checkpoint.npz").exists()
    got = _all(runs)
    for tid in got:  # each epoch once
        assert [r["epoch"] for r in json.loads(got[tid]["rows"])] == [
            r["epoch"] for r in json.loads(reference[tid]["rows"])]
    assert got == reference  # bit for bit: every number, row and weight
    assert _temporaries(runs) == []


def _state(runs: Path) -> tuple[dict[str, bytes], dict[str, int]]:
    """(result.json bytes of the stored trials, checkpoint epoch of the others)."""
    from dropout_lab.checkpoint import parse

    stored, kept = {}, {}
    for trial in (runs / "pk" / "trials").iterdir():
        if (trial / "result.json").exists():
            stored[trial.name] = (trial / "result.json").read_bytes()
        elif (trial / "checkpoint.npz").exists():
            ckpt = parse((trial / "checkpoint.npz").read_bytes())
            assert ckpt.stacked
            kept[trial.name] = ckpt.epoch
        else:
            kept[trial.name] = 0
    return stored, kept


# Writes: 4 after epoch 1, then 2 per epoch (the members still training) up to epoch 5 (none
# after the last): writes 5-6 are epoch 2's, 7-8 epoch 3's, 9-10 epoch 4's.
@pytest.mark.slow
@pytest.mark.parametrize("dtype,phase,at,expect", [
    ("float64", "before", 7, {2}),       # epoch 3's first write: both members at epoch 2
    ("float32", "before", 7, {2}),
    ("float64", "during", 8, {2, 3}),    # epoch 3's second write half done: one at 3, one at 2
    ("float32", "after", 10, {4}),       # both epoch-4 checkpoints on disk
])
def test_kill_9_mid_pack_then_resume_ends_bitwise_as_the_uninterrupted_pack(
        tmp_path, dtype, phase, at, expect):
    cfg = _config(tmp_path, dtype)
    reference = _reference(tmp_path, cfg)
    runs = tmp_path / "runs"
    p = subprocess.run([sys.executable, "-c", KILLER, "sweep", *_sweep(cfg, runs)],
                       capture_output=True, text=True,
                       env=dict(env(), KILL_AT=str(at), KILL_PHASE=phase), timeout=300)
    assert p.returncode == -signal.SIGKILL, p.stderr
    stored, kept = _state(runs)
    assert [json.loads(d)["stopped_by"] for d in stored.values()] == ["early_stopping"] * 2
    assert set(kept.values()) == expect
    assert bool(_temporaries(runs)) == (phase == "during")
    _resume_and_check(cfg, runs, reference, stored, kept)


@pytest.mark.slow
def test_a_sweep_killed_from_outside_mid_pack_resumes_bitwise(tmp_path):
    cfg = _config(tmp_path, "float64", epochs=12, n_train=3000)
    reference = _reference(tmp_path, cfg, epochs=12)
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "dropout_lab", "sweep", *_sweep(cfg, runs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    try:
        deadline = time.monotonic() + 180
        trials = runs / "pk" / "trials"
        while not (trials.is_dir() and len([t for t in trials.iterdir()
                                            if (t / "checkpoint.npz").exists()]) == 2
                   and any(len((t / "metrics.jsonl").read_text().splitlines()) >= 4
                           for t in trials.iterdir() if (t / "metrics.jsonl").exists())):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoints appeared"
            time.sleep(0.02)
        proc.kill()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    stored, kept = _state(runs)
    assert len(stored) == 2 and len(kept) == 2 and all(e >= 3 for e in kept.values()), kept
    assert all(e < 12 for e in kept.values()), "the pack finished before the kill"
    _resume_and_check(cfg, runs, reference, stored, kept)
