"""Shared test helpers: operand factories, layouts, and tolerance-by-dtype comparison."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from contract import _tuning

# Tiny equations normally run in numpy's own C einsum loop (the engine's per-call cost is higher
# there). The suite uses tiny shapes to test the engine, so it switches that off; test_fast_path.py
# switches it back on to test the numpy-loop path itself.
_tuning.set_current(replace(_tuning.DEFAULT, numpy_loop_max_work=0))


@contextmanager
def tuned(**changes):
    """The engine's settings (contract._tuning) changed as given inside a ``with`` block."""
    with _tuning.use(replace(_tuning.current(), **changes)) as tuning:
        yield tuning

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


def numpy_or_error(subscripts, operands, **kwargs):
    """``(numpy.einsum's result, None)``, or ``(None, the exception it raised)``."""
    try:
        return np.einsum(subscripts, *operands, **kwargs), None
    except Exception as err:  # noqa: BLE001 - callers compare exception types
        return None, err


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


LETTERS = "abcdef"


@st.composite
def equations(draw, max_operands=4, allow_zero=True):
    """(subscripts, shapes): repeated labels, size-1 broadcasting, '...', implicit or explicit."""
    n_ops = draw(st.integers(1, max_operands))
    size_choices = [1, 2, 3, 4, 5] + ([0] if allow_zero else [])
    sizes = {c: draw(st.sampled_from(size_choices)) for c in LETTERS}
    ell = draw(st.sampled_from([None, None, None, (2,), (3, 2)]))
    terms, shapes = [], []
    for _ in range(n_ops):
        labels = draw(st.lists(st.sampled_from(LETTERS), min_size=0, max_size=4))
        squeezed = draw(st.sets(st.sampled_from(LETTERS), max_size=2))  # size-1 broadcast
        shape = [1 if c in squeezed else sizes[c] for c in labels]
        term = "".join(labels)
        if ell is not None:
            n_ell = draw(st.integers(0, len(ell)))
            ell_shape = list(ell[len(ell) - n_ell :])
            ell_shape = (
                [
                    1 if draw(st.booleans()) and d > 1 and len(ell_shape) > 0 else d
                    for d in ell_shape
                ]
                if draw(st.booleans())
                else ell_shape
            )
            pos = draw(st.integers(0, len(labels)))
            term = term[:pos] + "..." + term[pos:]
            shape = shape[:pos] + ell_shape + shape[pos:]
        terms.append(term)
        shapes.append(tuple(shape))
    lhs = ",".join(terms)
    if draw(st.booleans()):
        return lhs, shapes  # implicit mode
    present = sorted(set("".join(terms).replace(".", "")))
    out = draw(st.permutations(present))
    out = out[: draw(st.integers(0, len(out)))]
    out = "".join(out)
    if ell is not None:
        pos = draw(st.integers(0, len(out)))
        out = out[:pos] + "..." + out[pos:]
    return lhs + "->" + out, shapes
