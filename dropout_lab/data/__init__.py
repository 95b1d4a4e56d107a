"""Data sets: a registry of loaders plus the options every data set shares."""

from __future__ import annotations

import importlib
import json
from functools import lru_cache

from dropout_lab.config import DatasetConfig
from dropout_lab.data import registry, transforms
from dropout_lab.data.base import Dataset

__all__ = ["Dataset", "load_dataset", "preflight", "registry"]


def preflight(cfg: DatasetConfig) -> None:
    """Make sure a data set can be loaded before any training starts (raise DataError if not).

    Data sets bundled with a package or generated need nothing; file-based ones are located
    (and fetched when allowed) here, so a missing file is one clear message, exit 2."""
    spec = registry.get_spec(cfg.name)
    if spec.needs_files and spec.preflight:
        module, fn = spec.preflight.split(":")
        getattr(importlib.import_module(module), fn)(cfg)


@lru_cache(maxsize=4)
def _load_raw(cfg_json: str) -> Dataset:
    cfg = DatasetConfig.model_validate_json(cfg_json)
    spec = registry.get_spec(cfg.name)
    return spec.load_fn()(cfg, cfg.seed)


def load_dataset(cfg: DatasetConfig, trial_seed: int) -> Dataset:
    """Load (once per process, then from memory) and apply subset/split/normalization."""
    raw_key = cfg.model_dump(mode="json", include=set(_RAW_KEYS))
    raw = _load_raw(json.dumps(raw_key, sort_keys=True))
    return transforms.apply(raw, cfg, trial_seed)


# The options that decide the raw arrays; the others are applied per trial by transforms.
_RAW_KEYS = ("name", "path", "seed") + registry.SPECIFIC_OPTIONS
