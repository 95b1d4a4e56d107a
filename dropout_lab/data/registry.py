"""The data-set registry: one entry per data set name, with the options it accepts."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dropout_lab.errors import ConfigError

if TYPE_CHECKING:
    from dropout_lab.config import DatasetConfig
    from dropout_lab.data.base import Dataset

# Options that only some data sets take (the rest, train_size/val_fraction/normalize/path,
# apply to every data set and are handled in dropout_lab.data.transforms).
SPECIFIC_OPTIONS = ("test_fraction", "n_train", "n_test", "n_features", "n_classes", "noise")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    loader: str  # "module:function", imported lazily: fn(cfg: DatasetConfig, seed) -> Dataset
    description: str
    options: frozenset[str] = field(default_factory=frozenset)
    needs_files: bool = False
    preflight: str | None = None  # "module:function" fn(cfg): locate/fetch files, check sizes
    # "module:function" fn(cfg) -> list[Path]: the files it reads, in a fixed order (their
    # content hash is the data fingerprint, dropout_lab.data.fingerprint); None: generated
    sources: str | None = None

    def load_fn(self) -> Callable[[DatasetConfig, int], Dataset]:
        module, name = self.loader.split(":")
        fn: Callable[[DatasetConfig, int], Dataset] = getattr(importlib.import_module(module), name)
        return fn


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> None:
    _REGISTRY[spec.name] = spec


def names() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> DatasetSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown data set {name!r}{hint} (known: {', '.join(names())})"
        ) from None


register(DatasetSpec(
    "digits", "dropout_lab.data.digits:load",
    "8x8 handwritten digits bundled with scikit-learn (1797 images, 10 classes, offline)",
    frozenset({"test_fraction"}), sources="dropout_lab.data.digits:sources",
))
register(DatasetSpec(
    "synthetic", "dropout_lab.data.synthetic:load",
    "generated classification task (Gaussian class clusters), fully determined by the seed",
    frozenset({"n_train", "n_test", "n_features", "n_classes", "noise"}),
    preflight="dropout_lab.data.synthetic:preflight",
))
for _name, _description in (
    ("mnist", "handwritten digits 0-9 (60k train / 10k test, 28x28, 10 classes)"),
    ("fashion-mnist", "Zalando clothing images (60k train / 10k test, 28x28, 10 classes)"),
    ("kmnist", "Kuzushiji-MNIST cursive Japanese (60k train / 10k test, 28x28, 10 classes)"),
):
    register(DatasetSpec(_name, "dropout_lab.data.mnist:load", _description, frozenset(),
                         needs_files=True, preflight="dropout_lab.data.mnist:preflight",
                         sources="dropout_lab.data.mnist:sources"))
register(DatasetSpec(
    "idx", "dropout_lab.data.idx:load",
    "your own folder of four IDX files with the MNIST names (dataset.path; no checksum)",
    frozenset(), needs_files=True, preflight="dropout_lab.data.idx:preflight",
    sources="dropout_lab.data.idx:sources",
))
register(DatasetSpec(
    "npz", "dropout_lab.data.npz:load",
    "your own .npz file with x_train, y_train, x_test, y_test (dataset.path)",
    frozenset(), needs_files=True, preflight="dropout_lab.data.npz:preflight",
    sources="dropout_lab.data.npz:sources",
))
