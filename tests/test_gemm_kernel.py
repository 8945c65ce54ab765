"""The batched matrix-product kernels: exact integer wrapping, every path, serial == parallel."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from conftest import assert_matches

from contract.kernels.gemm import GEMM_KERNELS, gemm_parallel, gemm_serial

INT_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
FLOAT_DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
ALL_DTYPES = INT_DTYPES + FLOAT_DTYPES

# (batch, m, k, n), chosen to reach every path of the kernel: tiny plain loops (m*n*k <= 1024),
# dot products (short output rows, k >= 32), the blocked i-p-j kernel with its 4-row and 1-row
# blocks, its 4-step and 1-step k loops, several k blocks (k > 256) and output segments
# (n * itemsize > 4096), plus size-1 and size-0 extents. gemm_parallel splits by batch item below
# 2**20 multiply-adds per item, else within each matrix: (2, 5, 261, 1030) and (1, 40, 300, 100)
# on the blocked path, (1, 1100, 64, 15) on the dot path (except for complex128).
SHAPES = [
    (1, 1, 1, 1),
    (1, 2, 3, 2),
    (3, 3, 5, 4),
    (2, 7, 9, 13),
    (1, 1, 37, 1),
    (2, 9, 40, 3),
    (1, 33, 65, 17),
    (1, 6, 70, 600),
    (1, 13, 300, 40),
    (2, 5, 261, 1030),
    (1, 40, 300, 100),
    (1, 1100, 64, 15),
    (1, 20, 1, 20),
    (4, 17, 2, 19),
    (1, 0, 3, 4),
    (1, 4, 3, 0),
    (1, 12, 0, 12),
    (0, 3, 3, 3),
]
BIG_SEGMENT = (1, 5, 6, 4200)  # crosses the output segment of 1-byte dtypes


def _readonly(x):
    x = np.ascontiguousarray(x)
    x.flags.writeable = False
    return x


def _operands(shape, dtype, rng, values="full"):
    """a, b (read-only) for ``shape = (batch, m, k, n)``; integers over their full range."""
    nb, m, k, n = shape
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = (info.min, info.max) if values == "full" else (0 if dtype.kind == "u" else -50, 50)
        a = rng.integers(lo, hi, (nb, m, k), dtype=dtype, endpoint=True)
        b = rng.integers(lo, hi, (nb, k, n), dtype=dtype, endpoint=True)
    else:
        a = rng.standard_normal((nb, m, k))
        b = rng.standard_normal((nb, k, n))
        if dtype.kind == "c":
            a = a + 1j * rng.standard_normal((nb, m, k))
            b = b - 1j * rng.standard_normal((nb, k, n))
        a, b = a.astype(dtype), b.astype(dtype)
    return _readonly(a), _readonly(b)


def _run(kernel, a, b):
    """Run ``kernel`` into an output pre-filled with garbage (NaN for inexact dtypes)."""
    nb, m, _ = a.shape
    garbage = np.nan if a.dtype.kind in "fc" else 7
    out = np.full((nb, m, b.shape[2]), garbage, dtype=a.dtype)
    kernel(a, b, out)
    return out


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("values", ["full", "small"])
def test_integers_exact_and_wrapping(dtype, values):
    rng = np.random.default_rng(1)
    for shape in SHAPES + [BIG_SEGMENT]:
        a, b = _operands(shape, dtype, rng, values)
        expected = np.matmul(a, b)  # numpy wraps modulo 2**bits
        for kernel in GEMM_KERNELS:
            np.testing.assert_array_equal(_run(kernel, a, b), expected, err_msg=str(shape))


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_extreme_values_wrap(dtype):
    """All products and sums overflow: values at the ends of the range."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(2)
    for shape in [(1, 3, 4, 5), (1, 20, 50, 24), (1, 9, 70, 4), (2, 17, 300, 530)]:
        nb, m, k, n = shape
        choices = np.array([info.min, info.max, info.max - 1, info.min + 1], dtype=dtype)
        a = _readonly(rng.choice(choices, (nb, m, k)))
        b = _readonly(rng.choice(choices, (nb, k, n)))
        expected = np.matmul(a, b)
        for kernel in GEMM_KERNELS:
            np.testing.assert_array_equal(_run(kernel, a, b), expected, err_msg=str(shape))


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_64_bit_fast_path_boundaries(dtype):
    """Values at the ends of the 32-bit range take the fast path; one value beyond them, in ``a``
    or as the last element of ``b``, sends the product down the 64-bit path: same results."""
    small = np.iinfo(np.int32 if dtype == np.int64 else np.uint32)
    big = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    nb, m, k, n = 2, 24, 70, 40
    a = rng.integers(small.min, small.max, (nb, m, k), endpoint=True).astype(dtype)
    b = rng.integers(small.min, small.max, (nb, k, n), endpoint=True).astype(dtype)
    a[0, 0, :2] = small.min, small.max
    b[0, 0, :2] = small.min, small.max
    beyond = [small.max + 1, big.max] + ([small.min - 1, big.min] if big.min < 0 else [])
    cases = [(a, b)]
    for value in beyond:
        a_out = a.copy()
        a_out[1, 5, 7] = value
        b_out = b.copy()
        b_out[-1, -1, -1] = value
        cases += [(a_out, b), (a, b_out)]
    for x, y in cases:
        x, y = _readonly(x), _readonly(y)
        expected = np.matmul(x, y)
        for kernel in GEMM_KERNELS:
            np.testing.assert_array_equal(_run(kernel, x, y), expected)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_inexact_dtypes(dtype):
    rng = np.random.default_rng(4)
    for shape in SHAPES:
        a, b = _operands(shape, dtype, rng)
        expected = np.matmul(a.astype(np.complex128), b.astype(np.complex128))
        if np.dtype(dtype).kind == "f":
            expected = expected.real
        for kernel in GEMM_KERNELS:
            result = _run(kernel, a, b)
            assert_matches(result, expected.astype(dtype), dtype=dtype)


def test_nan_and_inf_propagate():
    a = np.ones((1, 8, 40))
    b = np.ones((1, 40, 600))
    a[0, 1, 3] = np.nan
    b[0, 5, 7] = np.inf
    a, b = _readonly(a), _readonly(b)
    for kernel in GEMM_KERNELS:
        out = _run(kernel, a, b)
        expected = np.matmul(a, b)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_serial_equals_parallel_exactly(dtype):
    rng = np.random.default_rng(5)
    shapes = SHAPES + [(40, 8, 8, 8), (3, 37, 300, 70), (1, 150, 45, 6), (1, 10, 20, 2100)]
    for shape in shapes:
        a, b = _operands(shape, dtype, rng)
        np.testing.assert_array_equal(
            _run(gemm_serial, a, b), _run(gemm_parallel, a, b), err_msg=str(shape)
        )


def test_parallel_independent_of_thread_count():
    rng = np.random.default_rng(6)
    a, b = _operands((2, 61, 300, 530), np.float64, rng)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            results.append(_run(gemm_parallel, a, b))
    finally:
        numba.set_num_threads(before)
    results.append(_run(gemm_serial, a, b))
    for r in results[1:]:
        np.testing.assert_array_equal(results[0], r)


def test_one_signature_per_dtype_and_variant():
    """Read-only a and b, writable out, C order: one compiled signature per dtype per kernel."""
    rng = np.random.default_rng(7)
    for dtype in ALL_DTYPES:
        for shape in [(1, 2, 3, 4), (2, 20, 40, 30)]:
            a, b = _operands(shape, dtype, rng)
            for kernel in GEMM_KERNELS:
                _run(kernel, a, b)
    for kernel in GEMM_KERNELS:
        by_dtype = {}
        for sig in kernel.signatures:
            ta, tb, tout = sig
            assert (ta.mutable, tb.mutable, tout.mutable) == (False, False, True), sig
            assert ta.layout == tb.layout == tout.layout == "C", sig
            by_dtype.setdefault(tout.dtype, []).append(sig)
        assert len(by_dtype) >= len(ALL_DTYPES)
        assert all(len(sigs) == 1 for sigs in by_dtype.values()), by_dtype
