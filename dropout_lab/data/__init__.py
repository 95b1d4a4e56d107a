"""Data sets: a registry of loaders plus the options every data set shares."""

from __future__ import annotations

import importlib
import json
from collections import OrderedDict
from typing import TYPE_CHECKING

from dropout_lab.data import checks, registry, transforms
from dropout_lab.data.base import Dataset

if TYPE_CHECKING:  # config imports this package's registry: no import back at run time
    from dropout_lab.config import DatasetConfig

__all__ = ["Dataset", "load_dataset", "preflight", "registry"]


def preflight(cfg: DatasetConfig) -> None:
    """Make sure a data set can be loaded and trained on before any training starts (raise
    DataError if not): file-based ones are located (and fetched when allowed), sizes are
    checked against memory, then the content is checked once (:mod:`.checks`), so a missing
    file or a bad label is one clear message, exit 2, not a grid of failed trials."""
    spec = registry.get_spec(cfg.name)
    if spec.preflight:  # locate/fetch files, limits checked before anything is allocated
        module, fn = spec.preflight.split(":")
        getattr(importlib.import_module(module), fn)(cfg)
    # Then the content, once (the arrays stay cached in this process).
    checks.check_content(_load_raw(cfg), cfg)


_RAW_CACHE: OrderedDict[str, Dataset] = OrderedDict()
_RAW_CACHE_SIZE = 4  # data sets kept in memory per process (least recently used dropped)


def _load_raw(cfg: DatasetConfig) -> Dataset:
    """The data set's raw arrays, loaded once per process for the options that decide them."""
    # the source files' (path, size, mtime) belong to the key: a file rewritten between two
    # sweeps in one process (the Python API, in-process tests) must not be served from memory
    key = json.dumps([cfg.model_dump(mode="json", include=set(_RAW_KEYS)), _stamps(cfg)],
                     sort_keys=True)
    if key in _RAW_CACHE:
        _RAW_CACHE.move_to_end(key)
        return _RAW_CACHE[key]
    data = registry.get_spec(cfg.name).load_fn()(cfg, cfg.seed)
    _RAW_CACHE[key] = data
    while len(_RAW_CACHE) > _RAW_CACHE_SIZE:
        _RAW_CACHE.popitem(last=False)
    return data


def _stamps(cfg: DatasetConfig) -> list[list[object]]:
    """(path, size, mtime_ns) of each source file; [] for generated data or missing files
    (the loader then reports what is missing)."""
    from dropout_lab.data.fingerprint import source_files
    from dropout_lab.errors import DataError

    try:
        paths = source_files(cfg)
        return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]
    except (DataError, OSError):
        return []


def load_dataset(cfg: DatasetConfig, trial_seed: int, dtype: str = "float32") -> Dataset:
    """Load (once per process, then from memory) and apply subset/split/normalization, the
    features in ``dtype`` (the trial's; float64 is normalized in float64)."""
    return transforms.apply(_load_raw(cfg), cfg, trial_seed, dtype)


# The options that decide the raw arrays; the others are applied per trial by transforms.
_RAW_KEYS = ("name", "path", "seed") + registry.SPECIFIC_OPTIONS
