"""Shared test helpers: operand factories, layouts, and tolerance-by-dtype comparison."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DTYPES = [
    np.bool_,
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    np.complex64,
    np.complex128,
]
LAYOUTS = ["C", "F", "sliced", "negative", "broadcast"]


def pytest_addoption(parser):
    parser.addoption("--run-fuzz", action="store_true", help="run the long fuzz tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-fuzz"):
        return
    skip = pytest.mark.skip(reason="long fuzz: pass --run-fuzz")
    for item in items:
        if "fuzz" in item.keywords:
            item.add_marker(skip)


def make_operand(shape, dtype, layout="C", rng=None):
    """An array of ``shape`` and ``dtype`` with the given memory layout (values small)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    dtype = np.dtype(dtype)
    shape = tuple(shape)

    def values(s):
        if dtype.kind == "b":
            return rng.random(s) < 0.5
        if dtype.kind in "iu":
            return rng.integers(0 if dtype.kind == "u" else -3, 4, size=s).astype(dtype)
        if dtype.kind == "c":
            return (rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(dtype)
        return rng.standard_normal(s).astype(dtype)

    if len(shape) == 0:
        return np.array(values(shape), dtype=dtype)
    if layout == "C":
        return np.ascontiguousarray(values(shape))
    if layout == "F":
        return np.asfortranarray(values(shape))
    if layout == "sliced":
        big = values(tuple(2 * n + 1 for n in shape))
        return big[tuple(slice(1, 1 + 2 * n, 2) for n in shape)]
    if layout == "negative":
        return values(shape)[tuple(slice(None, None, -1) for _ in shape)]
    if layout == "broadcast":
        # stride 0 along the first axis (a broadcast view), real data elsewhere
        base = values((1,) + shape[1:])
        return np.broadcast_to(base, shape)
    raise ValueError(layout)


def assert_matches(result, expected, dtype=None):
    """Compare against numpy with a tolerance that depends on the dtype.

    ``dtype`` is the dtype the computation ran in, when it differs from the result's.
    """
    result = np.asarray(result)
    expected = np.asarray(expected)
    assert result.shape == expected.shape, (result.shape, expected.shape)
    assert result.dtype == expected.dtype, (result.dtype, expected.dtype)
    tol_dtype = np.dtype(dtype) if dtype is not None else expected.dtype
    if tol_dtype.kind in "biu":
        np.testing.assert_array_equal(result, expected)
        return
    if tol_dtype == np.float16:
        rtol, atol = 2e-2, 5e-2
    elif tol_dtype in (np.float32, np.complex64):
        rtol, atol = 2e-4, 2e-4
    else:
        rtol, atol = 1e-10, 1e-10
    scale = max(1.0, float(np.max(np.abs(expected.astype(np.complex128)), initial=0.0)))
    np.testing.assert_allclose(result, expected, rtol=rtol, atol=atol * scale)
