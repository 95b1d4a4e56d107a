"""Checkpoints (issue 20, item 1), in-process: a trial resumed from the checkpoint of ANY epoch
ends with exactly the uninterrupted result (numbers, best epoch, health, statistics, weights),
bit for bit, on the numpy backend and on torch CPU (host and device noise); taking
checkpoints changes nothing; a checkpoint that does not fit is ignored with a warning.
The kill -9 tests with real processes are in tests/reliability/test_rel_checkpoint.py."""

from __future__ import annotations

import copy
import io
import json
import zipfile

import numpy as np
import pytest

from dropout_lab import checkpoint
from dropout_lab.config import validate
from dropout_lab.errors import ConfigError
from dropout_lab.runner import warn_if_started_over
from dropout_lab.store import SweepStore
from dropout_lab.store.checkpoint import checkpoint_path, write_checkpoint
from dropout_lab.sweep import expand, trial_id_of
from dropout_lab.trial import run_trial

# 480 training examples (600 less the validation fifth) in batches of 16: 30 steps an epoch,
# so 5 epochs cross the subnormal flush (every 64 steps) twice; the validation split serves
# early stopping and the best epoch.
BASE = {
    "name": "ckpt",
    "dataset": {"name": "synthetic", "n_train": 600, "n_test": 120, "n_features": 12,
                "n_classes": 3, "val_fraction": 0.2},
    "model": {"hidden": [24, 16]},
    "dropout": {"p": 0.5, "input_p": 0.1},
    "train": {"epochs": 5, "batch_size": 16, "optimizer": "momentum", "lr": 0.05,
              "checkpoint_every": 1},
    "eval": {"mc_samples": 3, "max_samples": 100, "pair_samples": 3, "ablation_draws": 1,
             "train_subset": 200, "save_weights": "all"},
}

# The optimizers' and loop's state each variant exercises.
VARIANTS = {
    # velocity (fused on numpy), a cosine schedule, max-norm, early stopping's counters
    "momentum": {"train": {"lr_schedule": "cosine", "max_norm": 3.0, "weight_decay": 1e-4,
                           "early_stopping": {"patience": 50}}},
    # Adam's m, v and step counter t (its bias corrections), gaussian noise
    "adam": {"train": {"optimizer": "adam", "lr": 0.003}, "dropout": {"variant": "gaussian"}},
    # a weight mask per step, standard dropout's test-time scaling
    "dropconnect": {"dropout": {"variant": "dropconnect", "input_p": 0.0}},
    # concrete dropout: the learned logits and their optimizer moments (Adam's m and v)
    "concrete": {"train": {"optimizer": "adam", "lr": 0.003},
                 "dropout": {"variant": "concrete", "p": 0.2}},
}


def config(backend: str = "numpy", variant: str = "momentum", **sections: dict) -> dict:
    data = copy.deepcopy(BASE)
    data["backend"] = backend
    for changes in (VARIANTS[variant], sections):
        for section, values in changes.items():
            data[section].update(values)
    return data


def run(data: dict, resume: bytes | None = None, keep: list | None = None):
    """One trial; ``keep`` collects the checkpoints it sends (epoch, bytes)."""
    (point,) = expand(validate(data))

    def on_checkpoint(trial_id: str, epoch: int, blob: bytes) -> None:
        assert trial_id == point.trial_id
        if keep is not None:
            keep.append((epoch, blob))

    return run_trial(point.config_dict, point.trial_id, point.params, threads=1,
                     resume=resume, on_checkpoint=on_checkpoint)


def numbers(out) -> dict:
    """Everything a trial computes, without its timings: must match bit for bit."""
    r = {k: v for k, v in out.result.items() if k not in ("timing", "env", "resumed")}
    rows = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in out.metrics]
    return {"result": json.dumps(r, sort_keys=True), "rows": json.dumps(rows)}


def same_weights(a, b) -> bool:
    return a.arrays.keys() == b.arrays.keys() and all(
        np.array_equal(a.arrays[k], b.arrays[k]) and a.arrays[k].dtype == b.arrays[k].dtype
        for k in a.arrays)


CASES = [("numpy", "momentum", "float32"), ("numpy", "adam", "float64"),
         ("numpy", "dropconnect", "float32"), ("torch", "momentum", "float32"),
         ("torch", "adam", "float64"), ("numpy", "concrete", "float32"),
         ("torch", "concrete", "float32")]


@pytest.mark.slow
@pytest.mark.parametrize("backend,variant,dtype", CASES)
def test_resuming_from_every_epoch_gives_the_uninterrupted_result_bit_for_bit(
        backend, variant, dtype):
    if backend == "torch":
        pytest.importorskip("torch")
    data = config(backend, variant)
    data["dtype"] = dtype
    kept: list = []
    whole = run(data, keep=kept)
    assert whole.status == "done", whole.error
    assert [e for e, _ in kept] == [1, 2, 3, 4, 5]
    plain = dict(data, train=dict(data["train"], checkpoint_every=0))
    untouched = run(plain)  # no checkpoints taken at all
    assert numbers(untouched) == numbers(whole) and same_weights(untouched, whole)
    for epoch, blob in kept:
        resumed = run(data, resume=blob)
        assert resumed.result["resumed"]["from_epoch"] == epoch
        assert numbers(resumed) == numbers(whole), f"resumed from epoch {epoch}"
        assert same_weights(resumed, whole)
        assert [r["epoch"] for r in resumed.metrics] == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_torch_device_noise_resumes_its_generator():
    pytest.importorskip("torch")
    data = config("torch", "momentum", dropout={"noise": "device"})
    kept: list = []
    whole = run(data, keep=kept)
    assert whole.status == "done", whole.error
    meta = checkpoint.parse(kept[1][1])
    assert "random.device_generator0" in meta.arrays  # the torch.Generator's state is kept
    for _, blob in kept[:2]:
        resumed = run(data, resume=blob)
        assert numbers(resumed) == numbers(whole) and same_weights(resumed, whole)


def test_early_stopping_state_is_restored():
    # patience 1 stops early: resumed at each epoch, it stops at the same one
    data = config(train={"early_stopping": {"patience": 1, "min_delta": 0.05}, "epochs": 8})
    kept: list = []
    whole = run(data, keep=kept)
    assert whole.result["stopped_by"] == "early_stopping"
    for _, blob in kept:
        resumed = run(data, resume=blob)
        assert numbers(resumed) == numbers(whole)


def test_a_checkpoint_holds_what_the_next_epoch_needs():
    kept: list = []
    run(config(variant="adam"), keep=kept)
    ckpt = checkpoint.parse(kept[2][1])
    assert ckpt.epoch == 3 and [r["epoch"] for r in ckpt.rows] == [1, 2, 3]
    names = set(ckpt.arrays)
    for kind in ("W", "b", "m", "v"):  # weights, biases, Adam's two moments, per layer
        assert {f"net.{kind}{i}" for i in range(3)} <= names
    meta = ckpt.meta
    assert meta["network"]["t"] == 3 * 30  # Adam's step counter (480 examples: 30 steps)
    assert set(meta["streams"]) == {"order", "dropout"}
    assert set(meta["early_stopping"]) == {"best_val", "since_best"}
    assert meta["train_seconds"] > 0


def test_a_concrete_checkpoint_holds_the_learned_logits_and_their_moments():
    kept: list = []
    out = run(config(variant="concrete"), keep=kept)
    ckpt = checkpoint.parse(kept[2][1])
    theta = ckpt.arrays["net.theta0"]  # one logit per unit layer: input, two hidden
    assert theta.shape == (3,)
    p = 1 / (1 + np.exp(-theta.astype(np.float64)))
    assert np.allclose(p, ckpt.rows[-1]["learned_p"], rtol=1e-6)
    assert not np.allclose(p, [0.1, 0.2, 0.2])  # learned: moved from where it started
    assert {"net.m6", "net.v6"} <= set(ckpt.arrays)  # Adam's moments of theta (parameter 2L)
    assert out.result["learned_p"] == out.metrics[-1]["learned_p"]


# -- checkpoints that do not fit ---------------------------------------------------------------

def driver_warning(outcome) -> str:
    """What the driver warns about a trial that could not continue from its checkpoint."""
    warned: list[str] = []
    warn_if_started_over(outcome.result, warned.append)
    return " ".join(warned)


def _damaged(blob: bytes) -> dict[str, bytes]:
    flipped = bytearray(blob)
    flipped[len(blob) - 200] ^= 0xFF  # inside the last array's data or the meta JSON
    return {"truncated": blob[: len(blob) // 2], "flipped": bytes(flipped), "empty": b"",
            "not a checkpoint": b"hello"}


def test_a_damaged_checkpoint_is_ignored_with_a_warning_and_the_trial_starts_over(capfd):
    data = config()
    kept: list = []
    whole = run(data, keep=kept)
    for name, bad in _damaged(kept[2][1]).items():
        with pytest.raises(checkpoint.CheckpointError):
            checkpoint.parse(bad)
        out = run(data, resume=bad)
        assert out.status == "done", name
        assert out.result["resumed"]["from_epoch"] == 0 and out.result["resumed"]["ignored"]
        assert numbers(out) == numbers(whole), name
        # the trial prints nothing (it may run in a worker); the driver warns from its result
        err = capfd.readouterr().err
        assert "checkpoint ignored" not in err and "Traceback" not in err, name
        assert "checkpoint ignored" in driver_warning(out), name


def test_a_flipped_byte_anywhere_is_refused_or_changes_nothing():
    """Whatever byte is damaged, parse refuses the file or returns exactly the original
    state (a byte the zip format does not check, such as a header's date, changes no state):
    a damaged checkpoint never continues a trial from another state."""
    kept: list = []
    run(config(), keep=kept)
    blob = kept[1][1]
    good = checkpoint.parse(blob)
    refused = 0
    for pos in range(0, len(blob), max(1, len(blob) // 300)):
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        try:
            got = checkpoint.parse(bytes(bad))
        except checkpoint.CheckpointError:
            refused += 1
            continue
        assert got.meta == good.meta and got.arrays.keys() == good.arrays.keys()
        assert all(np.array_equal(got.arrays[k], good.arrays[k]) for k in got.arrays), pos
    assert refused > 250  # nearly every byte is content


def test_a_checkpoint_of_another_config_or_trial_is_refused():
    kept: list = []
    run(config(), keep=kept)
    blob = kept[1][1]
    other = config(dropout={"p": 0.25})
    (point,) = expand(validate(other))
    with pytest.raises(checkpoint.CheckpointError, match="trial"):
        checkpoint.check(checkpoint.parse(blob), point.trial_id, point.config_dict)
    (mine,) = expand(validate(config()))
    with pytest.raises(checkpoint.CheckpointError, match="another config"):
        checkpoint.check(checkpoint.parse(blob), mine.trial_id, point.config_dict)
    out = run(other, resume=blob)
    assert out.status == "done" and out.result["resumed"]["from_epoch"] == 0
    assert "checkpoint ignored" in driver_warning(out)


def test_the_runner_drops_an_unusable_checkpoint_with_one_warning(tmp_path, capfd):
    data = config()
    kept: list = []
    run(data, keep=kept)
    (point,) = expand(validate(data))
    store = SweepStore(tmp_path / "s")
    write_checkpoint(store, point.trial_id, kept[1][1][:100])
    warned: list[str] = []
    same, rows = checkpoint.resumable(store, point, warned.append)
    assert same.resume is None and rows == []
    assert not checkpoint_path(store, point.trial_id).exists()  # removed: starts over
    assert len(warned) == 1 and "checkpoint ignored" in warned[0]
    assert "damaged or truncated" in warned[0]
    assert capfd.readouterr().err == ""  # through the caller's warn only
    write_checkpoint(store, point.trial_id, kept[1][1])
    resumed, rows = checkpoint.resumable(store, point, warned.append)
    assert resumed.resume == kept[1][1] and [r["epoch"] for r in rows] == [1, 2]


def test_an_npz_with_a_pickle_is_not_loaded():
    buf = io.BytesIO()
    np.savez(buf, meta=np.array([{"epoch": 1}], dtype=object))
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.parse(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        assert z.namelist() == ["meta.npy"]


# -- when checkpoints are taken ------------------------------------------------------------------

def test_the_policy_every_n_never_and_auto():
    every2 = checkpoint.Policy(2)
    assert [e for e in range(1, 8) if every2.due(e)] == [2, 4, 6]
    never = checkpoint.Policy(0)
    assert not any(never.due(e) for e in range(1, 100))
    now = [0.0]
    auto = checkpoint.Policy("auto", clock=lambda: now[0])
    due = []
    for epoch, t in enumerate([20, 59, 61, 100, 121.5, 500], start=1):
        now[0] = t
        if auto.due(epoch):
            due.append(epoch)
    # 60 s after the start (epoch 3 at 61 s), then 60 s after that one (epoch 5 at 121.5 s)
    assert due == [3, 5, 6]


def test_a_short_trial_under_auto_takes_no_checkpoint():
    data = config(train={"checkpoint_every": "auto"})
    kept: list = []
    run(data, keep=kept)
    assert kept == []


def test_checkpoint_every_is_validated_and_not_part_of_the_trial_id():
    for bad in (-1, "often", 1.5, True):
        with pytest.raises(ConfigError, match="checkpoint_every"):
            validate(config(train={"checkpoint_every": bad}))
    ids = {trial_id_of(validate(config(train={"checkpoint_every": v}))) for v in (0, 1, "auto")}
    assert len(ids) == 1
    assert trial_id_of(validate(config(train={"lr": 0.06}))) not in ids


# -- the sweep: --fresh, gc, the config check ----------------------------------------------------

def _sweep_config(write_config, **train):
    data = config(train=train)
    data["sweep"] = {}
    return write_config(data)


def test_fresh_discards_a_checkpoint_and_gc_removes_an_orphaned_one(cli, write_config, tmp_path):
    cfg = _sweep_config(write_config)
    runs = tmp_path / "runs"
    assert cli("sweep", cfg, "--runs-dir", runs)[0] == 0
    (trial,) = (runs / "ckpt" / "trials").iterdir()
    assert not (trial / "checkpoint.npz").exists()  # removed when the trial was done
    kept: list = []
    run(config(), keep=kept)
    (trial / "checkpoint.npz").write_bytes(kept[1][1])  # as if the run died after result.json
    code, out, _ = cli("gc", runs / "ckpt")
    assert code == 0 and "orphaned checkpoint" in out and "would be removed" in out
    assert (trial / "checkpoint.npz").exists()  # a dry run
    code, out, _ = cli("gc", runs / "ckpt", "--apply")
    assert code == 0 and not (trial / "checkpoint.npz").exists()
    assert (trial / "result.json").exists()  # only the file goes, not the trial
    # an unfinished trial's checkpoint: kept by gc, resumed by a sweep, discarded by --fresh
    (trial / "result.json").unlink()
    (trial / "checkpoint.npz").write_bytes(kept[1][1])
    code, out, _ = cli("gc", runs / "ckpt")
    assert "orphaned" not in out and (trial / "checkpoint.npz").exists()
    assert cli("sweep", cfg, "--runs-dir", runs, "--fresh")[0] == 0
    assert "resumed" not in json.loads((trial / "result.json").read_text())
    (trial / "result.json").unlink()
    (trial / "checkpoint.npz").write_bytes(kept[1][1])
    assert cli("sweep", cfg, "--runs-dir", runs)[0] == 0
    assert json.loads((trial / "result.json").read_text())["resumed"]["from_epoch"] == 2


def test_changing_checkpoint_every_reuses_the_sweep_folder(cli, write_config, tmp_path):
    runs = tmp_path / "runs"
    assert cli("sweep", _sweep_config(write_config, checkpoint_every=0), "--runs-dir", runs,
               "--json")[0] == 0
    code, out, err = cli("sweep", _sweep_config(write_config, checkpoint_every=2),
                         "--runs-dir", runs, "--json")
    assert code == 0, err
    assert [t["executed"] for t in json.loads(out)["trials"]] == [False]  # nothing ran again


def test_the_network_state_functions_work_on_a_packs_stacked_network():
    """Packs do not checkpoint yet; the functions a pack checkpoint would use walk the stacked
    network's state lists (a leading member axis) as they walk a solo network's."""
    pytest.importorskip("torch")
    from dropout_lab import seeds
    from dropout_lab.backends.base import NetSpec, init_weights
    from dropout_lab.backends.torch_pack import TorchPackNetwork

    spec = NetSpec((6, 5, 3))
    train = validate({"train": {"optimizer": "adam"}}).train.optimizer_spec()
    members = [init_weights([6, 5, 3], "relu", seeds.rng(s, "init")) for s in (0, 1)]

    def build() -> TorchPackNetwork:
        return TorchPackNetwork(spec, members, [train, train], [[1.0, 1.0]] * 2, "cpu")

    net = build()
    arrays, scalars = net.export_state()
    assert arrays["W0"].shape == (2, 6, 5) and arrays["v3"].shape == (2, 3)  # member axis
    moved = {k: v + np.float32(0.5) for k, v in arrays.items()}
    other = build()
    other.import_state(moved, dict(scalars, t=7))
    again, again_scalars = other.export_state()
    assert all(np.array_equal(again[k], moved[k]) for k in moved) and again_scalars["t"] == 7
    with pytest.raises(ValueError):  # a solo network's state does not fit a pack
        other.import_state({k: v[0] for k, v in arrays.items()}, scalars)


def test_a_checkpoint_taken_on_other_data_files_is_refused(tmp_path):
    """Same config, same trial id, but the data file's content changed after the checkpoint:
    the trial starts over (the data fingerprint, env.data, is kept in the checkpoint)."""
    rng = np.random.default_rng(0)

    def write(shift: float) -> None:
        x = rng.normal(size=(200, 6)).astype(np.float32) + shift
        y = (x[:, 0] > shift).astype(np.int64)
        np.savez(tmp_path / "d.npz", x_train=x[:150], y_train=y[:150], x_test=x[150:],
                 y_test=y[150:])

    write(0.0)
    data = {"name": "ck-data", "dataset": {"name": "npz", "path": str(tmp_path / "d.npz")},
            "model": {"hidden": [8]}, "train": {"epochs": 3, "checkpoint_every": 1},
            "eval": {"coadaptation": False, "uncertainty": False}}
    kept: list = []
    run(data, keep=kept)
    assert checkpoint.parse(kept[0][1]).meta["data"]["sha256"]
    resumed = run(data, resume=kept[0][1])
    assert resumed.result["resumed"]["from_epoch"] == 1  # same file: continues
    write(1.0)
    changed = run(data, resume=kept[0][1])
    assert changed.status == "done" and changed.result["resumed"]["from_epoch"] == 0
    assert "data changed since the checkpoint" in changed.result["resumed"]["ignored"]
    assert "checkpoint ignored" in driver_warning(changed)


def test_a_symlinked_checkpoint_is_not_followed(tmp_path):
    kept: list = []
    run(config(), keep=kept)
    (point,) = expand(validate(config()))
    store = SweepStore(tmp_path / "s")
    target = tmp_path / "elsewhere.npz"
    target.write_bytes(kept[1][1])
    path = checkpoint_path(store, point.trial_id)
    path.parent.mkdir(parents=True)
    path.symlink_to(target)
    warned: list[str] = []
    same, rows = checkpoint.resumable(store, point, warned.append)
    assert same.resume is None and rows == [] and "symlink" in warned[0]
    assert not path.is_symlink() and target.exists()  # the link goes, never its target
