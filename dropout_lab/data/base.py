"""The in-memory data set every backend trains on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Dataset:
    """Features as float arrays (N x D), labels as int64 (N,), classes 0..n_classes-1."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    info: dict[str, object] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def astype(self, dtype: str) -> Dataset:
        def cast(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(a, dtype=dtype)

        x_val = None if self.x_val is None else cast(self.x_val)
        return Dataset(
            self.name, cast(self.x_train), self.y_train, cast(self.x_test), self.y_test,
            self.n_classes, x_val, self.y_val, dict(self.info),
        )
