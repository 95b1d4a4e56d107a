"""The digits data set is read without importing scikit-learn, and equals load_digits."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from dropout_lab.data.digits import bundled_file, read_digits


def test_direct_read_equals_sklearn_load_digits():
    from sklearn.datasets import load_digits

    assert bundled_file() is not None
    x, y = read_digits()
    bunch = load_digits()
    np.testing.assert_array_equal(x, bunch.data.astype(np.float32))
    np.testing.assert_array_equal(y, bunch.target)
    assert x.dtype == np.float32 and y.dtype == np.int64


def test_loading_digits_does_not_import_sklearn():
    code = ("import sys; from dropout_lab.data.digits import read_digits; read_digits(); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
