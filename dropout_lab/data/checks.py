"""Content checks a data set passes once, before any training (the sweep's preflight).

A file that exists and parses can still be unusable: float or huge labels, NaN features, an
empty split, fewer examples than ``dataset.train_size``. Found per trial, each of these was
N failed trials (or a 238 GiB allocation); found here it is one DataError, exit 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dropout_lab.data.base import Dataset
from dropout_lab.errors import DataError
from dropout_lab.specs.datasets import DatasetOptions

MAX_CLASSES = 10_000  # a label above this is a damaged file, not a class (one-hot would explode)
FINITE_SAMPLE_VALUES = 4_000_000  # feature values checked for NaN/inf (evenly spaced rows)
FALLBACK_MEMORY = 64 * 2**30  # when the machine does not say how much memory it has


def memory_bytes() -> int:
    """Physical memory of this machine (the bound for any array a header declares)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return FALLBACK_MEMORY


def available_memory_bytes() -> int:
    """Memory this process can still use: MemAvailable (Linux), lowered to the cgroup's
    limit minus its usage in a container; the physical memory where neither is known."""
    best = memory_bytes()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                best = min(best, int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            best = min(best, max(0, int(limit) - int(used)))
    except (OSError, ValueError):
        pass
    return best


# Float32 copies a trial makes of the features besides the raw arrays: the converted training
# split, and the normalized train and test splits with their temporaries.
WORKING_COPIES = 3


def check_working_set(raw_bytes: int, feature_values: int, what: str) -> None:
    """Refuse a data set whose raw arrays plus the float32 working copies of its
    ``feature_values`` features would not fit in the memory available now: found before
    loading (a .npz that inflates to 6.4 GB of uint8 becomes 25.6 GB of float32), it is one
    DataError, not a MemoryError traceback or the out-of-memory killer."""
    need = raw_bytes + WORKING_COPIES * 4 * feature_values
    limit = available_memory_bytes()
    if need > limit:
        raise DataError(f"{what} would need about {need / 2**30:,.1f} GiB to train on (the "
                        f"arrays and their float32 copies), more than the "
                        f"{limit / 2**30:,.1f} GiB of memory available; use a smaller file "
                        "or dataset.train_size on a subset saved separately")


def check_allocation(nbytes: int, what: str) -> None:
    """Refuse to allocate more than the machine's memory for one array, before trying."""
    limit = memory_bytes()
    if nbytes > limit:
        raise DataError(f"{what} would need {nbytes / 2**30:,.1f} GiB, more than this "
                        f"machine's memory ({limit / 2**30:,.1f} GiB)")


def _sample_rows(n: int, n_features: int) -> np.ndarray:
    """Evenly spaced row indices holding at most FINITE_SAMPLE_VALUES values (bounded time)."""
    rows = max(1, FINITE_SAMPLE_VALUES // max(1, n_features))
    return np.unique(np.linspace(0, n - 1, num=min(n, rows)).astype(np.int64))


def check_split(x: np.ndarray, y: np.ndarray, split: str, source: str) -> None:
    """One split: non-empty, N x D numeric features (finite where sampled), N integer labels
    in 0..MAX_CLASSES-1."""
    if len(y) == 0 or len(x) == 0:
        raise DataError(f"{source}: the {split} split is empty")
    if y.ndim != 1:
        raise DataError(f"{source}: {split} labels must be 1-D, got shape {y.shape}")
    if len(x) != len(y):
        raise DataError(f"{source}: the {split} split has {len(x)} examples but {len(y)} labels")
    if x.ndim < 2 or int(np.prod(x.shape[1:])) == 0:
        raise DataError(f"{source}: {split} examples have no features (shape {x.shape})")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{source}: {split} features must be numeric, got {x.dtype}")
    if y.dtype.kind not in "iu":
        raise DataError(f"{source}: {split} labels must be integer classes, got {y.dtype}")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= MAX_CLASSES:
        bad = lo if lo < 0 else hi
        raise DataError(f"{source}: {split} label {bad} is outside 0..{MAX_CLASSES - 1}")
    if x.dtype.kind == "f":
        flat = x.reshape(len(x), -1)
        sample = np.asarray(flat[_sample_rows(len(flat), flat.shape[1])])
        if not np.isfinite(sample).all():
            raise DataError(f"{source}: {split} features contain NaN or infinite values")


def check_content(ds: Dataset, cfg: DatasetOptions) -> None:
    """Everything a trial would trip over in ``ds`` under the options of ``cfg``."""
    source = str(ds.info.get("source") or f"data set {ds.name!r}")
    check_split(ds.x_train, ds.y_train, "training", source)
    check_split(ds.x_test, ds.y_test, "test", source)
    d_train = int(np.prod(ds.x_train.shape[1:]))
    d_test = int(np.prod(ds.x_test.shape[1:]))
    if d_train != d_test:
        raise DataError(f"{source}: training examples have {d_train} features but test "
                        f"examples {d_test}")
    if ds.n_classes < 2:
        raise DataError(f"{source}: needs at least two classes (labels 0 and 1)")
    n = len(ds.y_train)
    if cfg.train_size is not None and cfg.train_size > n:
        raise DataError(f"dataset.train_size = {cfg.train_size} but {ds.name} has only {n} "
                        "training examples")
    kept = cfg.train_size or n
    held = int(round(cfg.val_fraction * kept))
    if cfg.val_fraction > 0 and not 0 < held < kept:
        raise DataError(f"dataset.val_fraction = {cfg.val_fraction} of {kept} training "
                        "examples leaves an empty split")
