"""Hostile data sets (issue 21, item 7): each is one exit-2 message or a clean run, never a
traceback, and nothing is allocated that the machine does not have."""

from __future__ import annotations

import copy
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dropout_lab.config import DatasetConfig
from dropout_lab.data import transforms
from dropout_lab.data.base import Dataset
from dropout_lab.data.checks import WORKING_COPIES, available_memory_bytes
from tests.helpers.configs import TINY


def npz_config(path: Path, **dataset: object) -> dict:
    data = copy.deepcopy(TINY)
    data["dataset"] = {"name": "npz", "path": str(path), **dataset}
    data["sweep"] = {"seed": [0]}
    return data


def arrays(n_train: int = 30, n_test: int = 12, features: int = 4,
           scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x_train": (rng.uniform(-1, 1, (n_train, features)) * scale),
            "y_train": np.arange(n_train) % 3,
            "x_test": (rng.uniform(-1, 1, (n_test, features)) * scale),
            "y_test": np.arange(n_test) % 3}


def sweep(cli, write_config, tmp_path, data: dict) -> tuple[int, str, str]:
    return cli("sweep", write_config(data), "--runs-dir", tmp_path / "runs", "--json")


@pytest.mark.parametrize("case, words", [
    ("no training images", "split is empty"),
    ("no features", "no features"),
])
def test_empty_splits_and_featureless_data_are_one_message(cli, write_config, tmp_path, case,
                                                           words):
    a = arrays()
    if case == "no training images":
        a["x_train"], a["y_train"] = np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
    else:
        a["x_train"], a["x_test"] = np.zeros((30, 0)), np.zeros((12, 0))
    np.savez(tmp_path / "d.npz", **a)
    code, out, err = sweep(cli, write_config, tmp_path, npz_config(tmp_path / "d.npz"))
    assert code == 2, (out, err)
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "runs" / "tiny" / "trials").exists()


@pytest.mark.parametrize("normalize", ["scale01", "standardize"])
def test_features_near_the_float64_limit_train_to_finite_numbers(cli, write_config, tmp_path,
                                                                normalize):
    # scale01 computed hi - lo = inf and gave NaN features; anything beyond 3.4e38 was inf in
    # float32. Both normalizations ignore a common factor, so the features are divided by
    # max |x| first and the trial trains like the same data at scale 1.
    np.savez(tmp_path / "big.npz", **arrays(scale=1.7e308))
    np.savez(tmp_path / "unit.npz", **arrays(scale=1.0))
    finals = []
    for name in ("big", "unit"):
        data = npz_config(tmp_path / f"{name}.npz", normalize=normalize)
        data["name"] = name
        code, out, err = sweep(cli, write_config, tmp_path, data)
        assert code == 0, err
        (trial,) = json.loads(out)["trials"]
        assert trial["status"] == "done"
        finals.append(trial["final"])
    assert all(np.isfinite(v) for v in finals[0].values())
    assert finals[0]["test_acc"] == pytest.approx(finals[1]["test_acc"], abs=0.1)


def test_normalization_of_huge_features_is_finite_and_scale_free():
    a = arrays(scale=1.0)
    big = Dataset("npz", a["x_train"] * 1e308, a["y_train"], a["x_test"] * 1e308, a["y_test"], 3)
    unit = Dataset("npz", a["x_train"], a["y_train"], a["x_test"], a["y_test"], 3)
    for normalize in ("scale01", "standardize"):
        cfg = DatasetConfig(name="npz", path="x", normalize=normalize)
        got = transforms.apply(big, cfg, 0, "float64")
        want = transforms.apply(unit, cfg, 0, "float64")
        assert np.isfinite(got.x_train).all() and np.isfinite(got.x_test).all()
        np.testing.assert_allclose(got.x_train, want.x_train, atol=1e-9)


def _huge_npz(path: Path, rows: int, features: int) -> None:
    """An .npz whose x_train.npy declares rows x features uint8 (and says so in the zip's
    directory) while holding a few bytes: what a zip bomb looks like before it inflates."""
    header = _npy_header((rows, features))
    small = arrays()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("x_train.npy", header + b"\0" * 64)
        for k in ("y_train", "x_test", "y_test"):
            with zf.open(f"{k}.npy", "w") as fh:
                np.lib.format.write_array(fh, small[k])
    declared = len(header) + rows * features
    assert declared < 2**32  # fits the zip's 32-bit size field
    blob = bytearray(path.read_bytes())
    cd = blob.index(b"PK\x01\x02")  # the first central directory entry is x_train.npy
    assert blob[cd + 46:cd + 46 + 11] == b"x_train.npy"
    struct.pack_into("<I", blob, cd + 24, declared)  # its uncompressed size
    path.write_bytes(bytes(blob))


def _npy_header(shape: tuple[int, int]) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_an_npz_that_would_inflate_past_memory_is_refused_before_loading(cli, write_config,
                                                                         tmp_path):
    rows, features = 5_000_000, 784  # 3.9 GB of uint8, 47 GB with its float32 copies
    need = rows * features * (1 + 4 * WORKING_COPIES)
    if need <= available_memory_bytes():
        pytest.skip("this machine has the memory for it")
    _huge_npz(tmp_path / "bomb.npz", rows, features)
    with zipfile.ZipFile(tmp_path / "bomb.npz") as zf:
        assert zf.getinfo("x_train.npy").file_size > rows * features
    code, out, err = sweep(cli, write_config, tmp_path, npz_config(tmp_path / "bomb.npz"))
    assert code == 2, (out, err)
    assert "GiB" in err and "memory available" in err and "Traceback" not in err
