"""A trial's identity covers its data and records its code version (issue 21, item 1)."""

from __future__ import annotations

import copy
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from dropout_lab.config import DatasetConfig
from dropout_lab.data import fingerprint as fp
from dropout_lab.environment import code_version, describe_code
from tests.helpers.configs import TINY


def write_npz(path: Path, seed: int = 0, shuffle: bool = False) -> None:
    rng = np.random.default_rng(seed)
    x_train = rng.normal(size=(60, 5)).astype(np.float32)
    y_train = np.arange(60) % 3
    if shuffle:
        y_train = np.random.default_rng(99).permutation(y_train)
    x_test = rng.normal(size=(30, 5)).astype(np.float32)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=np.arange(30) % 3)


def npz_config(path: Path) -> dict:
    data = copy.deepcopy(TINY)
    data["dataset"] = {"name": "npz", "path": str(path)}
    data["sweep"] = {"seed": [0, 1]}
    return data


def test_shuffled_labels_retrain_instead_of_being_reused(cli, write_config, tmp_path):
    npz = tmp_path / "data.npz"
    write_npz(npz)
    config = write_config(npz_config(npz))
    runs = tmp_path / "runs"
    code, out, err = cli("sweep", config, "--runs-dir", runs, "--json")
    assert code == 0, err
    first = json.loads(out)["trials"]
    assert all(t["executed"] for t in first)
    # the same command again: nothing changed, everything is reused
    code, out, err = cli("sweep", config, "--runs-dir", runs, "--json")
    assert code == 0, err
    assert not any(t["executed"] for t in json.loads(out)["trials"])
    assert "2 reused" in err

    write_npz(npz, shuffle=True)  # same shapes, same size, other labels
    code, out, err = cli("sweep", config, "--runs-dir", runs, "--json")
    assert code == 0, err
    again = json.loads(out)["trials"]
    assert all(t["executed"] for t in again), "a changed data file must not be reused"
    assert "reused" not in err
    assert "2 done trial(s) run again: its data changed since it ran" in err
    stored = json.loads(next((runs / "tiny" / "trials").glob("*/result.json")).read_text())
    assert stored["env"]["data"]["sha256"] == fp.fingerprint(
        DatasetConfig(name="npz", path=str(npz)))["sha256"]
    assert stored["env"]["data"]["files"][0]["name"] == "data.npz"
    assert stored["env"]["code"] == code_version()


def test_fingerprint_is_a_content_hash_cached_by_size_and_mtime(tmp_path, monkeypatch):
    npz = tmp_path / "data.npz"
    write_npz(npz)
    cfg = DatasetConfig(name="npz", path=str(npz))
    first = fp.fingerprint(cfg)
    assert len(first["sha256"]) == 64
    assert first["files"][0]["bytes"] == npz.stat().st_size
    # a second call reads no byte of the file: both caches hit
    calls: list[Path] = []
    real_hash = fp._hash
    monkeypatch.setattr(fp, "_hash", lambda p: calls.append(p) or real_hash(p))
    assert fp.fingerprint(cfg) == first
    fp._memory.clear()  # a new process: the on-disk cache answers
    assert fp.fingerprint(cfg) == first
    assert calls == []
    write_npz(npz, shuffle=True)
    assert fp.fingerprint(cfg)["sha256"] != first["sha256"]
    assert calls == [npz]


def test_generated_data_has_no_hash_and_is_never_stale():
    cfg = DatasetConfig(name="synthetic")
    assert fp.fingerprint(cfg) == {"sha256": None, "files": []}
    assert fp.stale_reason({"sha256": None}, fp.fingerprint(cfg)) is None
    assert fp.stale_reason(None, {"sha256": "a" * 64}) is None  # results made before
    assert "changed" in (fp.stale_reason({"sha256": "a" * 64}, {"sha256": "b" * 64}) or "")


def test_code_version_names_the_checkout():
    code = code_version()
    from dropout_lab import __version__

    assert code["dropout_lab"] == __version__
    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():
        assert isinstance(code["commit"], str) and len(code["commit"]) == 40
        assert isinstance(code["dirty"], bool)
    assert describe_code({"dropout_lab": "1.0", "commit": "ab" * 20, "dirty": True}) == \
        f"1.0 @ {('ab' * 20)[:12]} (dirty)"
    assert describe_code(None) == "?"


@pytest.mark.parametrize("name", ["digits"])
def test_bundled_data_is_fingerprinted_too(name):
    got = fp.fingerprint(DatasetConfig(name=name))
    assert got["sha256"] is None or len(got["sha256"]) == 64


def test_compare_warns_when_trials_mix_code_versions_and_show_names_them(cli, tmp_path):
    from tests.helpers.fake_sweeps import write_sweep

    sweep = write_sweep(tmp_path)
    trials = sorted((sweep / "trials").iterdir())
    for i, d in enumerate(trials):
        path = d / "result.json"
        r = json.loads(path.read_text())
        r["env"]["code"] = {"dropout_lab": "0.1.0", "commit": ("a" if i else "b") * 40,
                            "dirty": i == 1}
        r["env"]["data"] = {"sha256": "c" * 64, "files": [{"name": "x.npz", "bytes": 1,
                                                           "sha256": "d" * 64}]}
        path.write_text(json.dumps(r))
    code, out, err = cli("compare", sweep)
    assert code == 0, err
    assert "3 code versions" in out.replace("\n", " ")
    code, out, _ = cli("compare", sweep, "-f", "json")
    assert any("code versions" in n for n in json.loads(out)["notes"])
    code, out, err = cli("show", trials[1])
    assert code == 0, err
    assert f"code: 0.1.0 @ {'a' * 12} (dirty)" in out
    assert f"data: sha256 {'c' * 12} (x.npz)" in out
    # one version: no warning
    for d in trials:
        path = d / "result.json"
        r = json.loads(path.read_text())
        r["env"]["code"] = {"dropout_lab": "0.1.0", "commit": None, "dirty": None}
        path.write_text(json.dumps(r))
    code, out, _ = cli("compare", sweep)
    assert "code versions" not in out


def test_results_without_a_fingerprint_are_reused_and_checking_writes_no_cache(tmp_path):
    """Runs made before fingerprints keep their trials; the check itself (also run by
    --dry-run) only reads the hash cache."""
    from dropout_lab.config import validate
    from dropout_lab.sweep import changed_data, expand

    npz = tmp_path / "data.npz"
    write_npz(npz)
    (point,) = expand(validate({**npz_config(npz), "sweep": {}}))
    legacy = {"status": "done", "env": {"backend": "numpy"}}
    assert changed_data([point], lambda p: legacy) == {}
    old = {"status": "done", "env": {"data": {"sha256": "0" * 64, "files": []}}}
    cache = tmp_path / "xdg-cache" / "dropout-lab" / fp.CACHE_FILE
    assert "data changed" in changed_data([point], lambda p: old)[point.trial_id]
    assert not cache.exists()
    fp.fingerprint(point.config.dataset)  # a trial's call writes it
    assert cache.is_file()


def test_idx_folders_are_fingerprinted_by_their_four_files(tmp_path):
    from dropout_lab.data import idx

    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for stem in idx.STEMS:
        labels = "labels" in stem
        n = 20 if stem.startswith("train") else 10
        arr = (rng.integers(0, 3, n) if labels else rng.integers(0, 255, (n, 4, 4))).astype(
            np.uint8)
        header = struct.pack(">HBB", 0, 0x08, arr.ndim) + b"".join(
            struct.pack(">I", d) for d in arr.shape)
        (folder / stem).write_bytes(header + arr.tobytes())
    cfg = DatasetConfig(name="idx", path=str(folder))
    first = fp.fingerprint(cfg)
    assert [f["name"] for f in first["files"]] == list(idx.STEMS)
    labels = folder / idx.STEMS[1]
    blob = bytearray(labels.read_bytes())
    blob[-1] = (blob[-1] + 1) % 3
    labels.write_bytes(bytes(blob))
    assert fp.fingerprint(cfg)["sha256"] != first["sha256"]
