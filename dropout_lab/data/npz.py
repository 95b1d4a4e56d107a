"""The ``npz`` data set: the user's own arrays in one NumPy ``.npz`` file.

The file (``dataset.path``) must hold ``x_train``, ``y_train``, ``x_test`` and ``y_test``:
features of any shape (flattened to N x D), integer labels 0..K-1. It is opened with
``allow_pickle=False``, so a file cannot run code when it is loaded.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dropout_lab.data.base import Dataset
from dropout_lab.data.checks import MAX_CLASSES, check_allocation, check_working_set
from dropout_lab.data.download import Reporter
from dropout_lab.errors import DataError
from dropout_lab.specs.datasets import DatasetOptions

KEYS = ("x_train", "y_train", "x_test", "y_test")


def _path(cfg: DatasetOptions) -> Path:
    if not cfg.path:
        raise DataError("data set 'npz' reads your own arrays: set dataset.path to a .npz file "
                        f"holding {', '.join(KEYS)} (e.g. --set dataset.path=data.npz)")
    path = Path(cfg.path).expanduser()
    if path.is_dir():
        raise DataError(f"dataset.path = {cfg.path!r} is a folder; the npz data set needs a "
                        ".npz file")
    if not path.is_file():
        raise DataError(f"dataset.path = {cfg.path!r}: no such file")
    return path


def sources(cfg: DatasetOptions) -> list[Path]:
    """The one file this data set reads (for its fingerprint)."""
    return [_path(cfg)]


def preflight(cfg: DatasetOptions, report: Reporter | None = None) -> None:
    """The file must exist and be a readable .npz with the four arrays."""
    _read(_path(cfg))


def _read(path: Path) -> dict[str, np.ndarray]:
    try:
        obj = np.load(path, allow_pickle=False)
    except ValueError as exc:  # e.g. a pickle file, refused by allow_pickle=False
        raise DataError(f"{path}: cannot load ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    if not isinstance(obj, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single .npy array, not a .npz archive of {', '.join(KEYS)}")
    with obj as npz:
        missing = [k for k in KEYS if k not in npz.files]
        if missing:
            raise DataError(f"{path}: missing array(s) {', '.join(missing)} "
                            f"(it holds: {', '.join(npz.files) or 'nothing'})")
        declared = {k: _check_declared_size(npz, k, path) for k in KEYS}
        raw = sum(nbytes for nbytes, _ in declared.values())
        features = sum(declared[k][1] for k in ("x_train", "x_test"))
        check_working_set(raw, features, f"{path}: x_train and x_test")
        try:
            return {k: npz[k] for k in KEYS}
        except ValueError as exc:  # object arrays refused (allow_pickle=False), bad headers
            raise DataError(f"{path}: cannot load ({exc})") from None
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path}: damaged .npz file ({exc})") from None


def _check_declared_size(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> tuple[int, int]:
    """Read the .npy header of one member (a few bytes) and refuse a declared shape whose
    bytes the member does not hold or this machine could not allocate, before NumPy
    allocates it (a 100 kB file can declare 100000 x 100000 float64 = 80 GB). Returns the
    declared (bytes, values); (0, 0) when the header cannot tell (NumPy reports it later)."""
    archive = npz.zip
    assert archive is not None, "None only once closed; _read calls this inside its with block"
    try:
        info = archive.getinfo(f"{key}.npy")
        with archive.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except KeyError:
        return 0, 0  # a member without the .npy suffix: NumPy reports it below
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: {key} has a damaged header ({exc})") from None
    if dtype.hasobject:
        return 0, 0  # refused by allow_pickle=False when it is read, with NumPy's own message
    values = int(np.prod([int(d) for d in shape], dtype=object))
    nbytes = values * dtype.itemsize
    if nbytes > info.file_size:
        raise DataError(f"{path}: {key} declares shape {shape} ({nbytes:,} bytes) but holds "
                        f"{info.file_size:,} bytes")
    check_allocation(nbytes, f"{path}: {key} of shape {shape}")
    return nbytes, values


def load(cfg: DatasetOptions, seed: int) -> Dataset:
    """Registry loader for ``npz``; features keep their dtype, labels become int64."""
    path = _path(cfg)
    arrays = _read(path)
    out = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim < 2:
            raise DataError(f"{path}: x_{split} must be N x features, got shape {x.shape}")
        if y.ndim != 1:
            raise DataError(f"{path}: y_{split} must be 1-D, got shape {y.shape}")
        if len(x) != len(y):
            raise DataError(f"{path}: x_{split} has {len(x)} rows but y_{split} has {len(y)}")
        if len(y) == 0:
            raise DataError(f"{path}: the {split} split is empty")
        if x.dtype.kind not in "biuf":
            raise DataError(f"{path}: x_{split} must be numeric, got {x.dtype}")
        if y.dtype.kind not in "iu":
            raise DataError(f"{path}: y_{split} must hold integer class labels, got {y.dtype}")
        if y.min() < 0:
            raise DataError(f"{path}: y_{split} has a negative label {int(y.min())}")
        if y.max() >= MAX_CLASSES:
            raise DataError(f"{path}: y_{split} label {int(y.max())} is outside "
                            f"0..{MAX_CLASSES - 1}")
        x = x.reshape(len(x), -1)
        if not np.isfinite(x).all():
            raise DataError(f"{path}: x_{split} contains NaN or infinite values")
        out[split] = (x, y.astype(np.int64))
    (x_train, y_train), (x_test, y_test) = out["train"], out["test"]
    if x_train.shape[1] != x_test.shape[1]:
        raise DataError(f"{path}: x_train has {x_train.shape[1]} features per example but "
                        f"x_test has {x_test.shape[1]}")
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    if n_classes < 2:
        raise DataError(f"{path}: needs at least two classes (labels 0 and 1)")
    return Dataset("npz", x_train, y_train, x_test, y_test, n_classes,
                   info={"source": str(path)})
