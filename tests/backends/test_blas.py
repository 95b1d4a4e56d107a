"""gemm with beta and axpy from NumPy's own BLAS, and the fused momentum step built on them.

Known answers: each routine against NumPy's formula; the fused step against the same network
with the fusion switched off (and with the BLAS routines switched off), step by step, in
float64 where the two orders of summation agree to rounding.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from dropout_lab.backends import numpy_backend
from dropout_lab.backends.base import NetSpec, init_weights
from dropout_lab.backends.blas import BLAS, Blas
from dropout_lab.config import TrainConfig
from dropout_lab.dropout import make_plan

needs_blas = pytest.mark.skipif(BLAS is None, reason="NumPy's BLAS has no CBLAS symbols here")


def test_numpy_wheels_expose_their_blas():
    """On the platform CI runs (NumPy's manylinux wheel) the fast path must be active; a
    silent fallback would lose the fused update without any test failing."""
    assert isinstance(BLAS, Blas)


@needs_blas
def test_the_routines_are_the_ones_in_the_library_numpy_uses():
    """Same function address as the symbol looked up in the BLAS that threadpoolctl lists for
    NumPy: one library, one thread pool, one threadpoolctl limit."""
    assert BLAS is not None
    (numpy_blas,) = [i for i in threadpool_info()
                     if i["user_api"] == "blas" and "numpy" in i["filepath"]]
    lib = ctypes.CDLL(numpy_blas["filepath"])
    for dtype in (np.float32, np.float64):
        ours = BLAS._gemm[np.dtype(dtype)]
        theirs = getattr(lib, ours.__name__)
        assert ctypes.cast(ours, ctypes.c_void_p).value == \
            ctypes.cast(theirs, ctypes.c_void_p).value


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [0.0, 0.9, 1.0])
def test_gemm_tn_is_a_transpose_g_plus_beta_out(dtype, beta):
    assert BLAS is not None
    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 13)).astype(dtype)
    g = rng.standard_normal((37, 6)).astype(dtype)
    out = rng.standard_normal((13, 6)).astype(dtype)
    want = a.astype(np.float64).T @ g.astype(np.float64) + beta * out.astype(np.float64)
    assert BLAS.gemm_tn(a, g, out, beta)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axpy_is_y_plus_alpha_x(dtype):
    assert BLAS is not None
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 7)).astype(dtype)
    y = rng.standard_normal((50, 7)).astype(dtype)
    want = y + dtype(-0.25) * x
    assert BLAS.axpy(-0.25, x, y)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)


@needs_blas
def test_arrays_blas_cannot_take_are_refused_untouched():
    """A transposed view, a mixed dtype or a read-only output: False, nothing written, so the
    caller's NumPy fallback runs instead."""
    assert BLAS is not None
    rng = np.random.default_rng(2)
    a = rng.standard_normal((8, 5))
    g = rng.standard_normal((8, 3))
    out = np.zeros((5, 3))
    assert not BLAS.gemm_tn(np.ascontiguousarray(a.T).T, g, out, 0.0)  # not C-contiguous
    assert not BLAS.gemm_tn(a.astype(np.float32), g, out, 0.0)  # mixed dtypes
    frozen = np.zeros((5, 3))
    frozen.flags.writeable = False
    assert not BLAS.gemm_tn(a, g, frozen, 0.0)
    assert not BLAS.axpy(1.0, a[:, :3], out)  # shapes differ
    assert not out.any() and not frozen.any()


class _Unfused(numpy_backend.NumpyNetwork):
    fuse_momentum = False


def _train(cls: type, train: TrainConfig, variant: str = "inverted", steps: int = 5,
           fused: list[list[bool]] | None = None) -> list[np.ndarray]:
    # 300 x 256 weights reach BLAS_MIN_SIZE (the fused BLAS gemm and axpy), the two small
    # layers take the NumPy path of the same formulas: one network exercises both.
    sizes = [300, 256, 8, 4]
    assert sizes[0] * sizes[1] >= numpy_backend.BLAS_MIN_SIZE > sizes[1] * sizes[2]
    weights = init_weights(sizes, "relu", np.random.default_rng(0))
    net = cls(NetSpec(tuple(sizes), "relu", "float64"), weights, train)
    plan = make_plan(variant, 0.2, [0.5, 0.5], sizes, "float64")
    rng, noise_rng = np.random.default_rng(1), np.random.default_rng(2)
    for _ in range(steps):
        x = rng.standard_normal((20, sizes[0]))
        y = rng.integers(0, sizes[-1], 20)
        net.train_step(x, y, plan.sample(noise_rng, 20))
        if fused is not None:
            fused.append(list(net._fused))
    return [w for pair in net.get_weights() for w in pair] + list(net._m)


@pytest.mark.parametrize("variant", ["inverted", "dropconnect"])
@pytest.mark.parametrize("train", [
    TrainConfig(optimizer="momentum", lr=0.1, momentum=0.9),
    TrainConfig(optimizer="momentum", lr=0.1, momentum=0.5, weight_decay=0.01, max_norm=0.5),
], ids=["momentum", "momentum+wd+maxnorm"])
def test_fused_momentum_step_equals_the_unfused_formula(train, variant):
    """v <- mu v + a^T g in one gemm, then W <- W - lr v: the same weights and velocities as
    v <- mu v; v <- v + dW; W <- W - lr v, over several steps (dropconnect keeps the unfused
    path: its gradient is masked after the product)."""
    which: list[list[bool]] = []
    fused = _train(numpy_backend.NumpyNetwork, train, variant, fused=which)
    unfused = _train(_Unfused, train, variant)
    # The comparison means something only if the fused path really ran (and only there).
    assert which == [[variant != "dropconnect"] * 3] * 5
    for a, b in zip(fused, unfused, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_without_numpys_blas_the_numpy_formulas_give_the_same_step(monkeypatch):
    """A NumPy without reachable CBLAS symbols (BLAS is None) trains to the same numbers."""
    train = TrainConfig(optimizer="momentum", lr=0.1, momentum=0.9, weight_decay=0.01)
    with_blas = _train(numpy_backend.NumpyNetwork, train)
    monkeypatch.setattr(numpy_backend, "BLAS", None)
    without = _train(numpy_backend.NumpyNetwork, train)
    for a, b in zip(with_blas, without, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
