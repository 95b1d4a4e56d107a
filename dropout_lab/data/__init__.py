"""Data sets: a registry of loaders plus the options every data set shares."""

from __future__ import annotations

import json
from collections import OrderedDict

from dropout_lab.data import checks, registry, transforms
from dropout_lab.data.base import Dataset
from dropout_lab.data.download import Reporter
from dropout_lab.specs.datasets import DatasetOptions

__all__ = ["Dataset", "load_dataset", "preflight", "registry"]


def preflight(cfg: DatasetOptions, report: Reporter | None = None) -> None:
    """Make sure a data set can be loaded and trained on before any training starts (raise
    DataError if not): file-based ones are located (and fetched when allowed), sizes are
    checked against memory, then the content is checked once (:mod:`.checks`), so a missing
    file or a bad label is one clear message, exit 2, not a grid of failed trials. ``report``
    receives the progress lines of a download (the caller shows them; None: nothing)."""
    spec = registry.get_spec(cfg.name)
    if spec.preflight:  # locate/fetch files, limits checked before anything is allocated
        registry.function(spec.preflight)(cfg, report=report)
    # Then the content, once (the arrays stay cached in this process).
    checks.check_content(_load_raw(cfg), cfg)


_RAW_CACHE: OrderedDict[str, Dataset] = OrderedDict()
_RAW_CACHE_SIZE = 4  # data sets kept in memory per process (least recently used dropped)


def _load_raw(cfg: DatasetOptions) -> Dataset:
    """The data set's raw arrays, loaded once per process for the options that decide them."""
    # the source files' (path, size, mtime) belong to the key: a file rewritten between two
    # sweeps in one process (the Python API, in-process tests) must not be served from memory
    key = json.dumps([{k: getattr(cfg, k) for k in _RAW_KEYS}, _stamps(cfg)], sort_keys=True)
    if key in _RAW_CACHE:
        _RAW_CACHE.move_to_end(key)
        return _RAW_CACHE[key]
    data = _read_only(registry.load_fn(registry.get_spec(cfg.name))(cfg, cfg.seed))
    _RAW_CACHE[key] = data
    while len(_RAW_CACHE) > _RAW_CACHE_SIZE:
        _RAW_CACHE.popitem(last=False)
    return data


def _read_only(data: Dataset) -> Dataset:
    """The cached arrays are shared by every trial of this process: a trial that wrote into
    one would change the data of the trials after it, so writing raises instead."""
    for name in ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val"):
        array = getattr(data, name)
        if array is not None:
            array.flags.writeable = False
    return data


def _stamps(cfg: DatasetOptions) -> list[list[object]]:
    """(path, size, mtime_ns) of each source file; [] for generated data or missing files
    (the loader then reports what is missing)."""
    from dropout_lab.data.fingerprint import source_files
    from dropout_lab.errors import DataError

    try:
        paths = source_files(cfg)
        return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]
    except (DataError, OSError):
        return []


def load_dataset(cfg: DatasetOptions, trial_seed: int, dtype: str = "float32") -> Dataset:
    """Load (once per process, then from memory) and apply subset/split/normalization, the
    features in ``dtype`` (the trial's; float64 is normalized in float64)."""
    return transforms.apply(_load_raw(cfg), cfg, trial_seed, dtype)


# The options that decide the raw arrays; the others are applied per trial by transforms.
_RAW_KEYS = ("name", "path", "seed") + registry.SPECIFIC_OPTIONS
