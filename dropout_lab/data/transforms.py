"""Options every data set takes: stratified subsets, a validation split, normalization."""

from __future__ import annotations

import numpy as np

from dropout_lab.data.base import Dataset
from dropout_lab.errors import DataError
from dropout_lab.seeds import rng as stream
from dropout_lab.specs.datasets import DatasetOptions


def stratified_split(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): ``fraction`` of each class held out, both sorted."""
    held: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        held.append(idx[: int(round(fraction * len(idx)))])
    held_out = np.sort(np.concatenate(held)) if held else np.array([], dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(y)), held_out, assume_unique=True)
    return keep, held_out


def stratified_subset(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` indices with the class proportions of ``y`` (largest remainders), sorted."""
    classes, counts = np.unique(y, return_counts=True)
    exact = counts / counts.sum() * size
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take))[: size - take.sum()]:
        take[i] += 1
    chosen = []
    for c, t in zip(classes, take, strict=True):
        idx = np.flatnonzero(y == c)
        chosen.append(rng.choice(idx, size=min(t, len(idx)), replace=False))
    return np.sort(np.concatenate(chosen))


# Features whose magnitude exceeds this are divided by max |x_train| before normalization
# (both normalizations are invariant to a common positive factor): near +-1e308, hi - lo
# and the variance overflow to inf and the normalized features became NaN, and anything
# beyond 3.4e38 is inf in float32.
_PRESCALE_ABOVE = 1e30


def apply(ds: Dataset, cfg: DatasetOptions, seed: int, dtype: str = "float32") -> Dataset:
    """Subset (``train_size``), validation split (``val_fraction``) and normalization, in
    ``dtype`` (the trial's ``dtype``: float64 features are normalized in float64, not rounded
    to float32 first).

    Subsets and the validation split are drawn from the trial seed; normalization statistics
    come from the training split only, so nothing about the test data leaks into training.
    Raises DataError when the features cannot be normalized to finite values."""
    g = stream(seed, "subset")
    x_train, y_train = ds.x_train, ds.y_train
    if cfg.train_size is not None:
        if cfg.train_size > len(y_train):
            raise DataError(
                f"dataset.train_size = {cfg.train_size} but {ds.name} has only "
                f"{len(y_train)} training examples"
            )
        idx = stratified_subset(y_train, cfg.train_size, g)
        x_train, y_train = x_train[idx], y_train[idx]
    x_val = y_val = None
    if cfg.val_fraction > 0:
        # round(fraction * n) examples in all, spread over the classes by largest remainders
        # (rounding per class would hold out 1 of 3 = 33% for val_fraction 0.2).
        val = stratified_subset(y_train, int(round(cfg.val_fraction * len(y_train))), g)
        keep = np.setdiff1d(np.arange(len(y_train)), val, assume_unique=True)
        if len(val) == 0 or len(keep) == 0:
            raise DataError(f"dataset.val_fraction = {cfg.val_fraction} leaves an empty split")
        x_val, y_val = x_train[val], y_train[val]
        x_train, y_train = x_train[keep], y_train[keep]
    if x_train.shape[0] == 0 or int(np.prod(x_train.shape[1:])) == 0:
        raise DataError(f"{_source(ds)}: the training split has no examples or no features "
                        f"(shape {x_train.shape})")
    work = np.dtype(np.float64 if dtype == "float64" else np.float32)
    # float32 trials keep the float32 arithmetic they always had (their numbers unchanged)
    factor = _prescale_factor(x_train)
    train = _cast(x_train, work, factor)  # the statistics' input; norm() casts the raw arrays
    shift: float | np.ndarray  # x' = (x - shift) / scale
    scale: float | np.ndarray
    if cfg.normalize == "scale01":
        lo, hi = float(train.min()), float(train.max())
        shift, scale = lo, (hi - lo) or 1.0
    else:  # standardize: per-feature statistics of the training split
        shift = train.mean(axis=0)
        scale = train.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0).astype(work)

    def norm(a: np.ndarray) -> np.ndarray:
        out = ((_cast(a, work, factor) - shift) / scale).astype(work)
        if not np.isfinite(out).all():
            raise DataError(f"{_source(ds)}: features cannot be normalized ({cfg.normalize}) "
                            "to finite values; rescale them to a moderate range")
        return out

    info = dict(ds.info, n_train=int(len(y_train)), n_test=int(len(ds.y_test)))
    return Dataset(ds.name, norm(x_train), y_train, norm(ds.x_test), ds.y_test, ds.n_classes,
                   None if x_val is None else norm(x_val), y_val, info)


def _source(ds: Dataset) -> str:
    return str(ds.info.get("source") or f"data set {ds.name!r}")


def _prescale_factor(x: np.ndarray) -> float:
    """max |x| when it exceeds _PRESCALE_ABOVE (features are divided by it), else 1."""
    if x.dtype.kind != "f" or x.size == 0:
        return 1.0
    biggest = float(np.max(np.abs(x)))
    return biggest if np.isfinite(biggest) and biggest > _PRESCALE_ABOVE else 1.0


def _cast(a: np.ndarray, work: np.dtype, factor: float) -> np.ndarray:
    """``a`` in the working dtype, divided by ``factor`` first (in float64) when it is not 1."""
    if factor != 1.0:
        return (np.asarray(a, dtype=np.float64) / factor).astype(work)
    return np.asarray(a, dtype=work)
