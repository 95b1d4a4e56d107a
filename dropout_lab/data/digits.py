"""scikit-learn's bundled 8x8 handwritten digits (1797 images, offline)."""

from __future__ import annotations

import numpy as np

from dropout_lab.config import DatasetConfig
from dropout_lab.data.base import Dataset
from dropout_lab.data.transforms import stratified_split
from dropout_lab.errors import DataError


def load(cfg: DatasetConfig, seed: int) -> Dataset:
    try:
        from sklearn.datasets import load_digits  # lazy: only this data set needs sklearn
    except ImportError as exc:  # pragma: no cover - sklearn is a core dependency
        raise DataError("the digits data set needs scikit-learn: pip install scikit-learn") from exc
    bunch = load_digits()
    x = bunch.data.astype(np.float32)  # pixel intensities 0..16
    y = bunch.target.astype(np.int64)
    test_fraction = 0.25 if cfg.test_fraction is None else cfg.test_fraction
    # The split is fixed by the data set's own seed, not the trial seed: every trial of a
    # sweep is scored on the same test examples.
    train_idx, test_idx = stratified_split(y, test_fraction, np.random.default_rng(seed))
    return Dataset("digits", x[train_idx], y[train_idx], x[test_idx], y[test_idx], 10,
                   info={"source": "sklearn.datasets.load_digits", "value_range": [0.0, 16.0]})
