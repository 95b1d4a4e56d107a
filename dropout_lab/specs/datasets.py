"""The data sets' names, the options each one takes, and the options object loaders read.

``loader``, ``preflight`` and ``sources`` name functions as ``"module:function"``: only the
data package (:mod:`dropout_lab.data.registry`) imports them, when a data set is used, so
reading the names here imports no data module.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from dropout_lab.errors import ConfigError

# Options that only some data sets take (the rest, train_size/val_fraction/normalize/path,
# apply to every data set and are handled in dropout_lab.data.transforms).
SPECIFIC_OPTIONS = ("test_fraction", "n_train", "n_test", "n_features", "n_classes", "noise")
# The sizes of the synthetic data set where the config leaves them out (data/synthetic.py).
SYNTHETIC_DEFAULTS: Mapping[str, int] = MappingProxyType(
    {"n_train": 1000, "n_test": 1000, "n_features": 20, "n_classes": 4})


class DatasetOptions(Protocol):
    """What a loader reads of ``dataset:`` (the config's ``DatasetConfig`` is one: loaders
    depend on these names, not on the config package). ``None``: the data set's default."""

    @property
    def name(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def path(self) -> str | None: ...
    @property
    def test_fraction(self) -> float | None: ...
    @property
    def n_train(self) -> int | None: ...
    @property
    def n_test(self) -> int | None: ...
    @property
    def n_features(self) -> int | None: ...
    @property
    def n_classes(self) -> int | None: ...
    @property
    def noise(self) -> float | None: ...
    @property
    def train_size(self) -> int | None: ...
    @property
    def val_fraction(self) -> float: ...
    @property
    def normalize(self) -> str: ...


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    loader: str  # "module:function", imported lazily: fn(options, seed) -> Dataset
    description: str
    options: frozenset[str] = field(default_factory=frozenset)
    needs_files: bool = False
    # "module:function" fn(options, report): locate/fetch files, check sizes
    preflight: str | None = None
    # "module:function" fn(options) -> list[Path]: the files it reads, in a fixed order (their
    # content hash is the data fingerprint, dropout_lab.data.fingerprint); None: generated
    sources: str | None = None


def _mnist_family(name: str, description: str) -> DatasetSpec:
    return DatasetSpec(name, "dropout_lab.data.mnist:load", description, frozenset(),
                       needs_files=True, preflight="dropout_lab.data.mnist:preflight",
                       sources="dropout_lab.data.mnist:sources")


_SPECS: Mapping[str, DatasetSpec] = MappingProxyType({s.name: s for s in (
    DatasetSpec(
        "digits", "dropout_lab.data.digits:load",
        "8x8 handwritten digits bundled with scikit-learn (1797 images, 10 classes, offline)",
        frozenset({"test_fraction"}), sources="dropout_lab.data.digits:sources"),
    DatasetSpec(
        "synthetic", "dropout_lab.data.synthetic:load",
        "generated classification task (Gaussian class clusters), fully determined by the seed",
        frozenset({"n_train", "n_test", "n_features", "n_classes", "noise"}),
        preflight="dropout_lab.data.synthetic:preflight"),
    _mnist_family("mnist", "handwritten digits 0-9 (60k train / 10k test, 28x28, 10 classes)"),
    _mnist_family("fashion-mnist",
                  "Zalando clothing images (60k train / 10k test, 28x28, 10 classes)"),
    _mnist_family("kmnist",
                  "Kuzushiji-MNIST cursive Japanese (60k train / 10k test, 28x28, 10 classes)"),
    DatasetSpec(
        "idx", "dropout_lab.data.idx:load",
        "your own folder of four IDX files with the MNIST names (dataset.path; no checksum)",
        frozenset(), needs_files=True, preflight="dropout_lab.data.idx:preflight",
        sources="dropout_lab.data.idx:sources"),
    DatasetSpec(
        "npz", "dropout_lab.data.npz:load",
        "your own .npz file with x_train, y_train, x_test, y_test (dataset.path)",
        frozenset(), needs_files=True, preflight="dropout_lab.data.npz:preflight",
        sources="dropout_lab.data.npz:sources"),
)})


def names() -> list[str]:
    return sorted(_SPECS)


def get_spec(name: str) -> DatasetSpec:
    try:
        return _SPECS[name]
    except KeyError:
        close = difflib.get_close_matches(name, names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown data set {name!r}{hint} (known: {', '.join(names())})"
        ) from None
