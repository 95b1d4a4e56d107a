"""scikit-learn's bundled 8x8 handwritten digits (1797 images, offline)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from dropout_lab.data.base import Dataset
from dropout_lab.data.transforms import stratified_split
from dropout_lab.errors import DataError
from dropout_lab.specs.datasets import DatasetOptions


def bundled_file() -> Path | None:
    """The CSV that ``sklearn.datasets.load_digits`` reads, located without importing sklearn.

    ``import sklearn.datasets`` takes about 0.5 s (it pulls in scipy); every worker process of
    a parallel sweep would pay it before its first trial. The file is a plain gzipped CSV
    (64 pixel values and the label per row), so it is read directly when it is where
    scikit-learn keeps it, and through scikit-learn otherwise."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def sources(cfg: DatasetOptions) -> list[Path]:
    """The bundled CSV (for the fingerprint); [] when scikit-learn keeps it elsewhere."""
    path = bundled_file()
    return [] if path is None else [path]


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """(x, y): 1797 x 64 pixel intensities 0..16 as float32, labels 0..9 as int64."""
    path = bundled_file()
    if path is not None:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        if table.shape == (1797, 65):
            return table[:, :-1], table[:, -1].astype(np.int64)
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - sklearn is a core dependency
        raise DataError("the digits data set needs scikit-learn: pip install scikit-learn") from exc
    bunch = load_digits()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


def load(cfg: DatasetOptions, seed: int) -> Dataset:
    x, y = read_digits()
    test_fraction = 0.25 if cfg.test_fraction is None else cfg.test_fraction
    # The split is fixed by the data set's own seed, not the trial seed: every trial of a
    # sweep is scored on the same test examples.
    train_idx, test_idx = stratified_split(y, test_fraction, np.random.default_rng(seed))
    return Dataset("digits", x[train_idx], y[train_idx], x[test_idx], y[test_idx], 10,
                   info={"source": "scikit-learn's bundled digits", "value_range": [0.0, 16.0]})
