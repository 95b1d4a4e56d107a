"""The options every data set takes (train_size, val_fraction, normalize), on cases with
known answers: exact class counts, disjoint splits, statistics from the training split only."""

from __future__ import annotations

import numpy as np
import pytest

from dropout_lab.config import DatasetConfig
from dropout_lab.data import transforms
from dropout_lab.data.base import Dataset
from dropout_lab.errors import DataError


def imbalanced(n: int = 1000, d: int = 3, seed: int = 0) -> Dataset:
    """Classes in proportion 60/30/10; feature 0 is the row id, so rows can be traced."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], [n * 6 // 10, n * 3 // 10, n // 10]).astype(np.int64)
    rng.shuffle(y)
    x = np.column_stack([np.arange(n), rng.normal(5.0, 2.0, size=(n, d - 1))]).astype(np.float32)
    x_test = rng.normal(5.0, 2.0, size=(50, d)).astype(np.float32)
    return Dataset("toy", x, y, x_test, np.zeros(50, dtype=np.int64), 3)


def cfg(**options) -> DatasetConfig:
    return DatasetConfig(name="synthetic", **options)


@pytest.mark.parametrize(("size", "expected"), [(100, [60, 30, 10]), (10, [6, 3, 1]),
                                               (7, [4, 2, 1])])
def test_train_size_keeps_class_proportions(size, expected):
    raw = imbalanced()
    out = transforms.apply(raw, cfg(train_size=size, normalize="standardize"), seed=0)
    assert len(out.y_train) == size
    assert np.bincount(out.y_train, minlength=3).tolist() == expected


def test_train_size_is_reproducible_from_the_seed_and_varies_with_it():
    raw = imbalanced()
    a = transforms.apply(raw, cfg(train_size=100), seed=3)
    b = transforms.apply(raw, cfg(train_size=100), seed=3)
    c = transforms.apply(raw, cfg(train_size=100), seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.y_train, c.y_train) or not np.array_equal(a.x_train, c.x_train)


def test_train_size_larger_than_the_data_set_is_an_error():
    with pytest.raises(DataError, match="train_size = 1001 but toy has only 1000"):
        transforms.apply(imbalanced(), cfg(train_size=1001), seed=0)


def test_train_size_subset_rows_come_from_the_training_set_without_repeats():
    raw = imbalanced()
    out = transforms.apply(raw, cfg(train_size=200, normalize="scale01"), seed=1)
    ids = out.x_train[:, 0]  # an affine map of the row ids: distinct ids stay distinct
    assert len(np.unique(ids)) == 200  # no row drawn twice


def test_val_fraction_sizes_disjoint_and_stratified():
    raw = imbalanced()
    out = transforms.apply(raw, cfg(val_fraction=0.1, normalize="scale01"), seed=0)
    assert len(out.y_val) == 100 and len(out.y_train) == 900
    assert np.bincount(out.y_val, minlength=3).tolist() == [60, 30, 10]
    # feature 0 of train and val is the same affine map of the row ids (scale01 uses one
    # range, from the training split): 1000 distinct values in 1000 rows = disjoint, complete
    joined = np.concatenate([out.x_train[:, 0], out.x_val[:, 0]])
    assert len(np.unique(joined)) == 1000  # disjoint, and together they are every row


@pytest.mark.parametrize(("n", "fraction", "expected_val"), [(30, 0.2, 6), (100, 0.15, 15)])
def test_val_fraction_is_the_overall_fraction_even_with_small_classes(n, fraction,
                                                                      expected_val):
    # 10 classes of 3 examples: rounding per class would hold out 10 of 30 (33%), not 6.
    y = np.arange(n) % 10
    x = np.arange(n, dtype=np.float32)[:, None]
    raw = Dataset("toy", x, y, x[:5], y[:5], 10)
    out = transforms.apply(raw, cfg(val_fraction=fraction), seed=0)
    assert len(out.y_val) == expected_val and len(out.y_train) == n - expected_val


def test_val_split_depends_on_the_trial_seed_only():
    raw = imbalanced()
    a = transforms.apply(raw, cfg(val_fraction=0.2), seed=5)
    b = transforms.apply(raw, cfg(val_fraction=0.2), seed=5)
    c = transforms.apply(raw, cfg(val_fraction=0.2), seed=6)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.x_val, c.x_val)


def test_val_fraction_that_leaves_an_empty_split_is_an_error():
    raw = imbalanced(n=20)
    with pytest.raises(DataError, match="val_fraction = 0.01 leaves an empty split"):
        transforms.apply(raw, cfg(val_fraction=0.01), seed=0)


def test_scale01_uses_the_training_range_only():
    x = np.array([[0.0, 10.0], [5.0, 20.0], [2.0, 4.0]], dtype=np.float32)
    x_test = np.array([[40.0, -20.0]], dtype=np.float32)  # outside the training range
    raw = Dataset("toy", x, np.array([0, 1, 0]), x_test, np.array([1]), 2)
    out = transforms.apply(raw, cfg(), seed=0)
    # one range for all pixels (min 0, max 20), as for images: x' = (x - 0) / 20
    np.testing.assert_allclose(out.x_train, x / 20.0)
    np.testing.assert_allclose(out.x_test, [[2.0, -1.0]])
    assert out.x_train.dtype == np.float32


def test_standardize_with_training_statistics_only():
    raw = imbalanced()
    raw.x_test = raw.x_test * 100.0 + 1000.0  # test data far away: must not move the stats
    out = transforms.apply(raw, cfg(normalize="standardize"), seed=0)
    np.testing.assert_allclose(out.x_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.x_train.std(axis=0), 1.0, atol=1e-4)
    mu = raw.x_train.astype(np.float64).mean(axis=0)
    sd = raw.x_train.astype(np.float64).std(axis=0)
    np.testing.assert_allclose(out.x_test, (raw.x_test - mu) / sd, rtol=1e-5)


def test_standardize_excludes_the_validation_split_from_the_statistics():
    raw = imbalanced()
    out = transforms.apply(raw, cfg(normalize="standardize", val_fraction=0.2), seed=0)
    np.testing.assert_allclose(out.x_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.x_train.std(axis=0), 1.0, atol=1e-4)
    assert np.abs(out.x_val.mean(axis=0)).max() > 1e-3  # val was not part of the statistics


def test_standardize_leaves_a_constant_feature_finite():
    x = np.column_stack([np.ones(6), np.arange(6)]).astype(np.float32)
    raw = Dataset("toy", x, np.array([0, 1] * 3), x[:2], np.array([0, 1]), 2)
    out = transforms.apply(raw, cfg(normalize="standardize"), seed=0)
    assert np.isfinite(out.x_train).all()
    np.testing.assert_array_equal(out.x_train[:, 0], 0.0)


def test_options_on_uint8_memory_mapped_pixels(tmp_path):
    """The MNIST loaders hand uint8 memory maps to the transforms."""
    pixels = np.random.default_rng(0).integers(0, 256, (40, 16), dtype=np.uint8)
    pixels[0, 0], pixels[1, 1] = 0, 255
    path = tmp_path / "x.npy"
    np.save(path, pixels)
    mm = np.load(path, mmap_mode="r")
    raw = Dataset("toy", mm, np.arange(40) % 4, mm[:8], np.arange(8) % 4, 4)
    out = transforms.apply(raw, cfg(train_size=20), seed=0)
    assert out.x_train.dtype == np.float32 and out.x_train.shape == (20, 16)
    assert 0.0 <= out.x_train.min() and out.x_train.max() <= 1.0
    assert np.bincount(out.y_train).tolist() == [5, 5, 5, 5]


def test_float64_trials_normalize_in_float64_not_on_float32_rounded_inputs(tmp_path):
    # issue 21 item 8: dtype float64 trained on inputs rounded to float32 first
    x = np.array([[0.1, 1.0], [0.2, 2.0], [1 / 3, 7.0]])
    y = np.array([0, 1, 0])
    ds = Dataset("toy", x, y, x, y, 2)
    out = transforms.apply(ds, cfg(), seed=0, dtype="float64")
    lo, hi = x.min(), x.max()
    assert out.x_train.dtype == np.float64
    np.testing.assert_array_equal(out.x_train, (x - lo) / (hi - lo))
    # float32 trials are as before: float32 arithmetic throughout
    assert transforms.apply(ds, cfg(), seed=0).x_train.dtype == np.float32
    # and through a whole trial's data preparation
    from dropout_lab.config import validate
    from dropout_lab.trial import prepare
    from tests.helpers.configs import TINY

    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    data = {**TINY, "dtype": "float64", "sweep": {},
            "dataset": {"name": "npz", "path": str(tmp_path / "d.npz")}}
    prep = prepare(validate(data))
    np.testing.assert_array_equal(prep.data.x_test, (x - lo) / (hi - lo))
