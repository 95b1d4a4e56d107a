"""A generated classification task: each class is a mixture of two Gaussian clusters.

Fully determined by ``dataset.seed``; ``noise`` is the standard deviation of each cluster
relative to the spread of the cluster centres, so larger noise means more overlap."""

from __future__ import annotations

import numpy as np

from dropout_lab.data.base import Dataset
from dropout_lab.data.checks import check_allocation
from dropout_lab.data.download import Reporter
from dropout_lab.specs.datasets import SYNTHETIC_DEFAULTS, DatasetOptions


def _sizes(cfg: DatasetOptions) -> tuple[int, int, int, int]:
    d = SYNTHETIC_DEFAULTS
    return (cfg.n_train or d["n_train"], cfg.n_test or d["n_test"],
            cfg.n_features or d["n_features"], cfg.n_classes or d["n_classes"])


def preflight(cfg: DatasetOptions, report: Reporter | None = None) -> None:
    """Refuse a size this machine cannot hold before generating anything."""
    n_train, n_test, d, _ = _sizes(cfg)
    # float64 draws plus their float32 copy: 12 bytes per value
    check_allocation((n_train + n_test) * d * 12,
                     f"synthetic data of {n_train + n_test:,} x {d:,}")


def load(cfg: DatasetOptions, seed: int) -> Dataset:
    """Registry loader for ``synthetic``: two Gaussian clusters per class."""
    n_train, n_test, d, k = _sizes(cfg)
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
