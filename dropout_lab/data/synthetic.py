"""A generated classification task: each class is a mixture of two Gaussian clusters.

Fully determined by ``dataset.seed``; ``noise`` is the standard deviation of each cluster
relative to the spread of the cluster centres, so larger noise means more overlap."""

from __future__ import annotations

import numpy as np

from dropout_lab.config import DatasetConfig
from dropout_lab.data.base import Dataset


def load(cfg: DatasetConfig, seed: int) -> Dataset:
    n_train = cfg.n_train or 1000
    n_test = cfg.n_test or 1000
    d = cfg.n_features or 20
    k = cfg.n_classes or 4
    noise = 1.0 if cfg.noise is None else cfg.noise
    rng = np.random.default_rng(seed)
    clusters_per_class = 2
    centres = rng.normal(0.0, 1.0, size=(k * clusters_per_class, d)) * np.sqrt(2.0 / d) * 3.0
    n = n_train + n_test
    cluster = rng.integers(0, k * clusters_per_class, size=n)
    y = (cluster % k).astype(np.int64)
    x = centres[cluster] + rng.normal(0.0, noise * np.sqrt(1.0 / d), size=(n, d))
    return Dataset("synthetic", x[:n_train].astype(np.float32), y[:n_train],
                   x[n_train:].astype(np.float32), y[n_train:], k,
                   info={"clusters_per_class": clusters_per_class, "noise": noise})
