"""Tests of the generalized-Jacobian layer against independent computations.

Oracles: reshape-to-2-D matmul (``np.reshape`` + ``@``) for Jacobian products and chains,
``numpy.einsum`` with basis vectors for the einsum derivative rules, finite differences, and a
brute-force enumeration of every binary contraction tree for the chain bracketing cost.
"""

from __future__ import annotations

import doctest
import functools
import itertools
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import contract.jacobian as jacobian_module
from contract.jacobian import (
    ChainResult,
    Jacobian,
    chain,
    check_linearization,
    einsum_jacobian,
    einsum_jvp,
    einsum_vjp,
    jacobian_subscripts,
    numeric_jacobian,
)

DTYPES = [np.float32, np.float64, np.complex128]
# tolerances for results computed two ways in floating point
EXACT_TOL = {
    np.dtype(np.float32): dict(rtol=2e-5, atol=2e-5),
    np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12),
    np.dtype(np.complex128): dict(rtol=1e-12, atol=1e-12),
}
# tolerances for central finite differences (truncation and rounding error)
FD_TOL = {
    np.dtype(np.float32): dict(rtol=5e-3, atol=5e-3),
    np.dtype(np.float64): dict(rtol=1e-7, atol=1e-8),
    np.dtype(np.complex128): dict(rtol=1e-7, atol=1e-8),
}
# JAC_EXAMPLES=500 for a longer search
HYPOTHESIS = settings(
    max_examples=int(os.environ.get("JAC_EXAMPLES", "40")), deadline=None, derandomize=True
)


def random_array(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    dtype = np.dtype(dtype)
    values = rng.standard_normal(shape)
    if dtype.kind == "c":
        values = values + 1j * rng.standard_normal(shape)
    return np.asarray(values).astype(dtype)


def as_matrix(array: np.ndarray, out_shape, in_shape) -> np.ndarray:
    """The oracle's pseudo-2-D matrix: plain np.reshape."""
    return np.reshape(array, (math.prod(out_shape), math.prod(in_shape)))


def assert_close(actual, expected, dtype) -> None:
    np.testing.assert_allclose(actual, expected, **EXACT_TOL[np.dtype(dtype)])


shapes = st.lists(st.integers(1, 3), min_size=0, max_size=4).map(tuple)
small_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)


# ------------------------------------------------------------------------------------------
# the Jacobian type
# ------------------------------------------------------------------------------------------


def test_constructor_splits_the_axes():
    a = np.zeros((2, 3, 4, 5))
    for jac in [
        Jacobian(a, in_ndim=2),
        Jacobian(a, out_shape=(2, 3)),
        Jacobian(a, in_shape=(4, 5)),
        Jacobian(a, out_shape=(2, 3), in_shape=(4, 5)),
        Jacobian(a.reshape(6, 20), out_shape=(2, 3), in_shape=(4, 5)),
    ]:
        assert jac.out_shape == (2, 3) and jac.in_shape == (4, 5)
        assert (jac.out_ndim, jac.in_ndim, jac.out_size, jac.in_size) == (2, 2, 6, 20)
        assert jac.shape == (2, 3, 4, 5) and jac.ndim == 4 and jac.size == 120
        assert jac.dtype == np.float64
    assert Jacobian(a, in_ndim=2).array is a  # no copy
    assert np.asarray(Jacobian(a, in_ndim=2)) is a


def test_constructor_rank0_sides():
    v = np.arange(3.0)
    assert Jacobian(v, in_ndim=0).out_shape == (3,)
    assert Jacobian(v, in_ndim=0).in_shape == ()
    assert Jacobian(v, in_ndim=1).out_shape == ()
    assert Jacobian(v, in_shape=()).out_shape == (3,)
    assert Jacobian(v, out_shape=()).in_shape == (3,)
    s = Jacobian(np.float64(2.0), in_ndim=0)
    assert s.shape == () and s.out_shape == () and s.in_shape == ()
    assert s.as_matrix().shape == (1, 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_ndim=5),
        dict(in_ndim=-1),
        dict(out_shape=(3,)),
        dict(in_shape=(2,)),
        dict(in_shape=(1, 2, 3, 4, 5)),
        dict(out_shape=(2,), in_shape=(4,)),
        dict(in_ndim=1, out_shape=(3, 2)),
        dict(out_shape=(-1,)),
    ],
)
def test_constructor_rejects_bad_splits(kwargs):
    with pytest.raises(ValueError):
        Jacobian(np.zeros((2, 3, 4)), **kwargs)


def test_constructor_needs_a_split():
    with pytest.raises(TypeError, match=r"\(2, 3\)"):
        Jacobian(np.zeros((2, 3)))


def test_as_matrix_is_a_view_when_possible():
    jac = Jacobian(np.arange(24.0).reshape(2, 3, 4), in_ndim=1)
    matrix = jac.as_matrix()
    assert matrix.shape == (6, 4) and np.shares_memory(matrix, jac.array)
    transposed = Jacobian(np.arange(24.0).reshape(4, 3, 2).T, in_ndim=1)  # not contiguous
    np.testing.assert_array_equal(transposed.as_matrix(), as_matrix(transposed.array, (2, 3), (4,)))


def test_identity():
    eye = Jacobian.identity((2, 3), dtype=np.float32)
    assert eye.shape == (2, 3, 2, 3) and eye.dtype == np.float32
    np.testing.assert_array_equal(eye.as_matrix(), np.eye(6))
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(eye @ x, x)
    np.testing.assert_array_equal(x @ eye, x)


@HYPOTHESIS
@given(out=shapes, mid=shapes, inn=shapes, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 99))
def test_products_match_reshape_matmul(out, mid, inn, dtype, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, out + mid, dtype)
    b = random_array(rng, mid + inn, dtype)
    ja, jb = Jacobian(a, out_shape=out, in_shape=mid), Jacobian(b, out_shape=mid, in_shape=inn)
    dx = random_array(rng, mid, dtype)
    u = random_array(rng, out, dtype)
    a2 = as_matrix(a, out, mid)
    b2 = as_matrix(b, mid, inn)

    jvp = ja @ dx
    assert isinstance(jvp, np.ndarray) and jvp.shape == out
    assert_close(jvp, (a2 @ dx.reshape(-1)).reshape(out), dtype)

    vjp = u @ ja
    assert isinstance(vjp, np.ndarray) and vjp.shape == mid
    assert_close(vjp, (u.reshape(-1) @ a2).reshape(mid), dtype)

    product = ja @ jb
    assert isinstance(product, Jacobian)
    assert product.out_shape == out and product.in_shape == inn
    assert_close(product.as_matrix(), a2 @ b2, dtype)


def test_products_with_scalars():
    jac = Jacobian(np.arange(3.0), in_ndim=0)  # d(3-vector)/d(scalar)
    np.testing.assert_array_equal(jac @ 2.0, [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(jac @ np.float64(2.0), [0.0, 2.0, 4.0])
    grad = Jacobian(np.arange(3.0), in_ndim=1)  # d(scalar)/d(3-vector)
    np.testing.assert_array_equal(2.0 @ grad, [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(np.float64(2.0) @ grad, [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(np.array(2.0) @ grad, [0.0, 2.0, 4.0])
    assert float(grad @ np.ones(3)) == 3.0
    assert (grad @ jac).shape == () and float((grad @ jac).array) == 5.0
    outer = jac @ grad
    np.testing.assert_array_equal(outer.array, np.outer(np.arange(3.0), np.arange(3.0)))


def test_products_promote_dtypes():
    jac = Jacobian(np.ones((2, 3), dtype=np.float32), in_ndim=1)
    assert (jac @ np.ones(3)).dtype == np.float64
    assert (jac @ np.ones(3, dtype=np.float32)).dtype == np.float32
    assert (jac @ np.ones(3, dtype=np.complex128)).dtype == np.complex128


def test_product_shape_errors_name_both_shapes():
    jac = Jacobian(np.zeros((2, 3, 4)), in_ndim=1)
    with pytest.raises(ValueError, match=r"\(5,\).*\(2, 3\) \+ \(4,\)"):
        jac @ np.zeros(5)
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\) \+ \(4,\)"):
        np.zeros((3, 2)) @ jac
    other = Jacobian(np.zeros((5, 6)), in_ndim=1)
    with pytest.raises(ValueError, match=r"\(2, 3\) \+ \(4,\).*\(5,\) \+ \(6,\)"):
        jac @ other


# ------------------------------------------------------------------------------------------
# subscripts
# ------------------------------------------------------------------------------------------


def test_jacobian_subscripts():
    assert jacobian_subscripts((2, 3), (4,), (5, 6)) == ([[0, 1, 2], [2, 3, 4]], [0, 1, 3, 4])
    assert jacobian_subscripts((2,), (3,), ()) == ([[0, 1], [1]], [0])  # JVP
    assert jacobian_subscripts((), (2,), (3,)) == ([[0], [0, 1]], [1])  # VJP
    terms, output = jacobian_subscripts((2,), (3,), (4,), (5,), (6,))
    assert terms == [[0, 1], [1, 2], [2, 3], [3, 4]] and output == [0, 4]
    assert jacobian_subscripts((2,), (3,)) == ([[0, 1]], [0, 1])
    with pytest.raises(TypeError):
        jacobian_subscripts((2,))


def test_jacobian_subscripts_have_no_letter_ceiling():
    """A 30-axis by 30-axis chain needs 90 labels, more than numpy's 52 letters."""
    out, mid, inn = (1,) * 30, (2,) + (1,) * 29, (1,) * 30
    terms, output = jacobian_subscripts(out, mid, inn)
    assert max(max(terms[0]), max(terms[1])) == 89
    a = Jacobian(np.full(out + mid, 2.0), out_shape=out, in_shape=mid)
    b = Jacobian(np.full(mid + inn, 3.0), out_shape=mid, in_shape=inn)
    product = a @ b
    assert product.shape == out + inn
    np.testing.assert_array_equal(product.array, np.full(out + inn, 12.0))


# ------------------------------------------------------------------------------------------
# chains
# ------------------------------------------------------------------------------------------


def random_chain(rng, boundaries, dtype=np.float64) -> list[Jacobian]:
    """Jacobians J_n..J_1 for boundary shapes K_n..K_0 (left to right)."""
    return [
        Jacobian(random_array(rng, a + b, dtype), out_shape=a, in_shape=b)
        for a, b in zip(boundaries[:-1], boundaries[1:], strict=True)
    ]


def matmul_chain(jacobians) -> np.ndarray:
    """The oracle: reshape each to 2-D and multiply left to right."""
    matrix = as_matrix(jacobians[0].array, jacobians[0].out_shape, jacobians[0].in_shape)
    for jac in jacobians[1:]:
        matrix = matrix @ as_matrix(jac.array, jac.out_shape, jac.in_shape)
    return matrix


OPTIMIZE = ["auto", "forward", "reverse", "greedy", "optimal"]


@HYPOTHESIS
@given(
    boundaries=st.lists(small_shapes, min_size=2, max_size=6),
    optimize=st.sampled_from(OPTIMIZE),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 99),
)
def test_chain_matches_reshape_matmul(boundaries, optimize, dtype, seed):
    rng = np.random.default_rng(seed)
    jacs = random_chain(rng, boundaries, dtype)
    expected = matmul_chain(jacs)
    out, inn = boundaries[0], boundaries[-1]

    result = chain(*jacs, optimize=optimize)
    assert isinstance(result, ChainResult) and isinstance(result.value, Jacobian)
    assert result.value.out_shape == out and result.value.in_shape == inn
    assert_close(result.value.as_matrix(), expected, dtype)

    dx = random_array(rng, inn, dtype)
    u = random_array(rng, out, dtype)
    jvp = chain(*jacs, dx=dx, optimize=optimize).value
    assert jvp.shape == out
    assert_close(jvp.reshape(-1), expected @ dx.reshape(-1), dtype)
    vjp = chain(*jacs, u=u, optimize=optimize).value
    assert vjp.shape == inn
    assert_close(vjp.reshape(-1), u.reshape(-1) @ expected, dtype)
    both = chain(*jacs, u=u, dx=dx, optimize=optimize).value
    assert both.shape == ()
    assert_close(both, u.reshape(-1) @ expected @ dx.reshape(-1), dtype)


def test_chain_is_associative():
    rng = np.random.default_rng(1)
    j4, j3, j2, j1 = random_chain(rng, [(2, 3), (4,), (), (3, 2), (5,)])
    ref = chain(j4, j3, j2, j1).value.array
    for value in [
        ((j4 @ j3) @ j2) @ j1,
        j4 @ (j3 @ (j2 @ j1)),
        (j4 @ j3) @ (j2 @ j1),
        j4 @ ((j3 @ j2) @ j1),
        chain(j4, j3, j2, j1, optimize="forward").value,
        chain(j4, j3, j2, j1, optimize="reverse").value,
        chain(chain(j4, j3).value, chain(j2, j1).value).value,
    ]:
        np.testing.assert_allclose(value.array, ref, rtol=1e-12, atol=1e-12)


def test_chain_of_one():
    jac = Jacobian(np.ones((2, 3)), in_ndim=1)
    result = chain(jac)
    assert result.value is jac and result.flops == 0 and result.path == []
    np.testing.assert_array_equal(chain(jac, dx=np.ones(3)).value, [3.0, 3.0])
    np.testing.assert_array_equal(chain(jac, u=np.ones(2)).value, [2.0, 2.0, 2.0])
    assert chain(jac, u=np.ones(2)).order == "reverse"
    assert chain(jac, dx=np.ones(3)).order == "forward"


def test_chain_orders_and_report():
    rng = np.random.default_rng(0)
    # output 10, input 2000, middle 1000 and 5: reverse mode
    wide = random_chain(rng, [(10,), (1000,), (5,), (2000,)])
    result = chain(*wide)
    assert result.order == "reverse" and result.bracketing == "(J3 @ J2) @ J1"
    assert result.path == [(0, 1), (0, 1)]
    forward = chain(*wide, optimize="forward")
    reverse = chain(*wide, optimize="reverse")
    assert forward.order == "forward" and forward.bracketing == "J3 @ (J2 @ J1)"
    assert reverse.order == "reverse" and reverse.flops == result.flops < forward.flops
    assert result.flops == 2 * 10 * 1000 * 5 + 2 * 10 * 5 * 2000
    assert forward.flops == 2 * 1000 * 5 * 2000 + 2 * 10 * 1000 * 2000
    assert result.largest_intermediate == 10 * 5  # J3 @ J2; the result is not counted
    assert forward.largest_intermediate == 1000 * 2000
    text = str(result)
    assert "reverse" in text and f"{result.flops:,}" in text and "(J3 @ J2) @ J1" in text
    # a tangent: forward; a cotangent: reverse, whatever the shapes
    dx_result = chain(*wide, dx=np.ones(2000))
    assert dx_result.order == "forward" and dx_result.bracketing == "J3 @ (J2 @ (J1 @ dx))"
    u_result = chain(*wide, u=np.ones(10))
    assert u_result.order == "reverse" and u_result.bracketing == "((u @ J3) @ J2) @ J1"
    # tall: forward
    tall = random_chain(rng, [(2000,), (5,), (1000,), (10,)])
    assert chain(*tall).order == "forward"
    # large both ends, narrow middle: the two halves first
    mixed = random_chain(rng, [(100,), (2,), (100,), (100,), (2,), (100,)])
    result = chain(*mixed)
    assert result.order == "mixed"
    assert result.flops < min(chain(*mixed, optimize=o).flops for o in ("forward", "reverse"))


def test_chain_errors():
    j2 = Jacobian(np.zeros((2, 3)), in_ndim=1)
    j1 = Jacobian(np.zeros((4, 5)), in_ndim=1)
    with pytest.raises(ValueError, match=r"\(2,\) \+ \(3,\).*\(4,\) \+ \(5,\)"):
        chain(j2, j1)
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        chain(j2, dx=np.zeros(4))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        chain(j2, u=np.zeros(3))
    with pytest.raises(TypeError):
        chain()
    with pytest.raises(TypeError):
        chain(np.zeros((2, 3)))


def brute_force_min_flops(terms, output, sizes) -> int:
    """Minimum opt_einsum-model FLOPs over every binary contraction tree (not only chains).

    A pairwise contraction costs ``prod(sizes of all labels involved)``, twice that when a label
    is summed. In a chain every label is in at most two operands, so the labels summed when
    joining groups ``A`` and ``B`` are exactly those they share, and a group's open labels are
    those appearing an odd number of times in it.
    """
    n = len(terms)

    def labels(group: frozenset) -> frozenset:
        counts: dict[int, int] = {}
        for i in group:
            for lab in terms[i]:
                counts[lab] = counts.get(lab, 0) + 1
        return frozenset(lab for lab, c in counts.items() if c == 1 or lab in output)

    @functools.cache
    def best(group: frozenset) -> int:
        if len(group) == 1:
            return 0
        first, *rest = sorted(group)
        costs = []
        for r in range(len(rest)):
            for extra in itertools.combinations(rest, r):
                left = frozenset((first, *extra))
                right = group - left
                la, lb = labels(left), labels(right)
                cost = math.prod(sizes[lab] for lab in la | lb) * (2 if la & lb else 1)
                costs.append(best(left) + best(right) + cost)
        return min(costs)

    return best(frozenset(range(n)))


def chain_flops(boundaries, dx: bool, u: bool, order: str) -> int:
    """FLOPs of the pure forward / reverse order, written out from the matrix sizes."""
    sizes = [math.prod(b) for b in boundaries]
    if u:
        sizes = [1] + sizes
    if dx:
        sizes = sizes + [1]
    # factor i maps sizes[i+1] -> sizes[i]; each product of an (a x b) by (b x c) block costs
    # 2abc, or abc when the shared side has rank 0 (an outer product: nothing summed)
    ranks = ([0] if u else []) + [len(b) for b in boundaries] + ([0] if dx else [])
    total = 0
    if order == "forward":
        for k in range(len(sizes) - 3, -1, -1):
            total += sizes[k] * sizes[k + 1] * sizes[-1] * (2 if ranks[k + 1] else 1)
    else:
        for k in range(2, len(sizes)):
            total += sizes[0] * sizes[k - 1] * sizes[k] * (2 if ranks[k - 1] else 1)
    return total


def chain_problem(boundaries, dx_given, u_given):
    """Random Jacobians for the boundaries, the ends, and the brute-force minimum FLOPs."""
    rng = np.random.default_rng(0)
    jacs = random_chain(rng, boundaries)
    kwargs = {}
    if dx_given:
        kwargs["dx"] = random_array(rng, boundaries[-1])
    if u_given:
        kwargs["u"] = random_array(rng, boundaries[0])
    full = ([()] if u_given else []) + list(boundaries) + ([()] if dx_given else [])
    terms, output = jacobian_subscripts(*full)
    sizes = {}
    for term, a, b in zip(terms, full[:-1], full[1:], strict=True):
        sizes.update(zip(term, a + b, strict=True))
    return jacs, kwargs, brute_force_min_flops(terms, set(output), sizes)


ENDS = [(False, False), (True, False), (False, True), (True, True)]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    boundaries=st.lists(
        st.lists(st.sampled_from([1, 2, 3, 5, 8, 13]), min_size=0, max_size=2).map(tuple),
        min_size=4,
        max_size=6,
    ),
    ends=st.sampled_from(ENDS),
)
def test_chain_flops_match_brute_force(boundaries, ends):
    """3 to 5 Jacobians: the exhaustive path costs the minimum over all binary trees, and the
    forced orders cost what the matrix sizes say."""
    dx_given, u_given = ends
    jacs, kwargs, minimum = chain_problem(boundaries, dx_given, u_given)
    optimal = chain(*jacs, optimize="optimal", **kwargs)
    assert optimal.flops == minimum
    for order in ("forward", "reverse"):
        forced = chain(*jacs, optimize=order, **kwargs)
        assert forced.order == order
        assert forced.flops == chain_flops(boundaries, dx_given, u_given, order) >= minimum
        np.testing.assert_allclose(
            np.asarray(forced.value), np.asarray(optimal.value), rtol=1e-10, atol=1e-10
        )


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    boundaries=st.lists(
        st.lists(st.sampled_from([2, 3, 5, 8, 13, 50]), min_size=1, max_size=2).map(tuple),
        min_size=4,
        max_size=6,
    ),
    ends=st.sampled_from(ENDS),
)
def test_default_chain_order_is_optimal(boundaries, ends):
    """The default ('dp') finds the minimum when no intermediate shape is rank 0."""
    jacs, kwargs, minimum = chain_problem(boundaries, *ends)
    assert chain(*jacs, **kwargs).flops == minimum


def test_default_chain_order_where_auto_misses():
    """A case where opt_einsum's 'auto' (branch-and-bound) pays about 21 times the minimum."""
    boundaries = [(3, 50), (13, 50), (8, 13), (50,), (5,), (2, 2), (13,)]
    jacs, kwargs, minimum = chain_problem(boundaries, True, False)
    assert chain(*jacs, **kwargs).flops == minimum == 341_244


# ------------------------------------------------------------------------------------------
# finite differences
# ------------------------------------------------------------------------------------------


def test_numeric_jacobian_of_a_tensor_linear_map():
    rng = np.random.default_rng(2)
    a = random_array(rng, (2, 3, 4, 5))
    jac = numeric_jacobian(lambda x: np.einsum("ijkl,kl->ij", a, x), rng.standard_normal((4, 5)))
    assert jac.out_shape == (2, 3) and jac.in_shape == (4, 5)
    np.testing.assert_allclose(jac.array, a, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["central", "forward"])
def test_numeric_jacobian_of_matrix_square(dtype, method):
    rng = np.random.default_rng(3)
    x = random_array(rng, (3, 3), dtype)
    jac = numeric_jacobian(lambda m: m @ m, x, method=method)
    # d(XX)[i, k] / dX[a, b] = delta(i, a) X[b, k] + X[i, a] delta(k, b)
    eye = np.eye(3)
    exact = np.einsum("ia,bk->ikab", eye, x) + np.einsum("ia,kb->ikab", x, eye)
    assert jac.shape == (3, 3, 3, 3) and jac.dtype == dtype
    tol = FD_TOL[np.dtype(dtype)]
    if method == "forward":  # first order: error ~ sqrt(eps)
        tol = {k: v * (1e2 if np.dtype(dtype) == np.float32 else 1e1) for k, v in tol.items()}
    np.testing.assert_allclose(jac.array, exact, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numeric_jacobian_elementwise_rank3(dtype):
    rng = np.random.default_rng(4)
    x = random_array(rng, (2, 3, 2), dtype)
    jac = numeric_jacobian(np.sin, x)
    exact = np.diag(np.cos(x.astype(np.float64)).ravel()).reshape(x.shape + x.shape)
    np.testing.assert_allclose(jac.array, exact, **FD_TOL[np.dtype(dtype)])


def test_numeric_jacobian_rank0_sides():
    np.testing.assert_allclose(numeric_jacobian(lambda t: t**3, 2.0).array, 12.0, rtol=1e-8)
    jac = numeric_jacobian(lambda t: np.array([np.sin(t), np.cos(t)]), np.float64(0.5))
    assert jac.out_shape == (2,) and jac.in_shape == ()
    np.testing.assert_allclose(jac.array, [np.cos(0.5), -np.sin(0.5)], rtol=1e-8)
    x = np.array([1.0, 2.0, 3.0])
    grad = numeric_jacobian(lambda v: np.sum(v**2), x)
    assert grad.out_shape == () and grad.in_shape == (3,)
    np.testing.assert_allclose(grad.array, 2 * x, rtol=1e-8)


def test_numeric_jacobian_complex_is_holomorphic():
    z = np.array([1.0 + 2.0j, -0.5 + 0.25j])
    jac = numeric_jacobian(lambda v: v**2 + 1j * v, z)
    assert jac.dtype == np.complex128
    np.testing.assert_allclose(jac.array, np.diag(2 * z + 1j), rtol=1e-8)


def test_numeric_jacobian_details():
    # integer input is differentiated in float64
    jac = numeric_jacobian(lambda v: v * 3.0, np.arange(3))
    assert jac.dtype == np.float64
    np.testing.assert_allclose(jac.array, 3 * np.eye(3), rtol=1e-9)
    # f may return its (perturbed) input itself
    np.testing.assert_allclose(numeric_jacobian(lambda v: v, np.ones(4)).array, np.eye(4))
    # large |x|: the relative step keeps the result accurate
    big = np.array([1e8, -3e7])
    np.testing.assert_allclose(numeric_jacobian(np.square, big).array, np.diag(2 * big), rtol=1e-7)
    # an explicit eps
    jac = numeric_jacobian(np.exp, np.zeros(2), eps=1e-3, method="forward")
    np.testing.assert_allclose(jac.array, np.eye(2), rtol=1e-3)
    with pytest.raises(ValueError, match="method"):
        numeric_jacobian(np.sin, np.ones(2), method="backward")
    with pytest.raises(ValueError, match=r"\(1,\).*\(\)"):
        numeric_jacobian(lambda v: np.zeros(()) if v[0] == 1.0 else np.zeros(1), np.ones(2))


# ------------------------------------------------------------------------------------------
# derivative rules of einsum
# ------------------------------------------------------------------------------------------

EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)], 0),
    ("ij,jk->ik", [(2, 3), (3, 4)], 1),
    ("ii->i", [(3, 3)], 0),
    ("ii", [(3, 3)], 0),
    ("iij->j", [(2, 2, 3)], 0),
    ("ij->", [(2, 3)], 0),
    ("ij->i", [(2, 3)], 0),
    ("i,i->", [(3,), (3,)], 1),
    ("i,i->i", [(3,), (3,)], 0),
    ("ij,j", [(2, 3), (3,)], 1),
    ("ba", [(2, 3)], 0),
    ("i...", [(3, 2)], 0),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)], 0),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)], 1),
    ("ij,ij->ij", [(3, 1), (3, 4)], 0),
    ("ji,jk", [(1, 2), (3, 4)], 0),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)], 1),
    ("ii,ij->j", [(3, 3), (3, 2)], 0),
    ("ij,ji->", [(2, 3), (3, 2)], 0),
    ("ijk,kj->i", [(2, 3, 4), (4, 3)], 1),
    (",->", [(), ()], 0),
    ("i,->i", [(3,), ()], 1),
    ("i,j->ij", [(2,), (3,)], 0),
    ("ab,bc->", [(1, 1), (1, 1)], 1),
]


def basis_jacobian(subscripts, operands, k) -> np.ndarray:
    """The oracle: column j of the Jacobian is numpy.einsum with operand k = e_j."""
    target = operands[k]
    out = np.einsum(subscripts, *operands)
    dtype = np.result_type(*operands)
    columns = np.zeros((out.size, target.size), dtype=dtype)
    for j in range(target.size):
        basis = np.zeros(target.size, dtype=dtype)
        basis[j] = 1
        ops = list(operands)
        ops[k] = basis.reshape(target.shape)
        columns[:, j] = np.einsum(subscripts, *ops).reshape(-1)
    return columns


def check_einsum_rules(subscripts, operands, k, rng):
    dtype = np.result_type(*operands)
    out = np.einsum(subscripts, *operands)
    expected = basis_jacobian(subscripts, operands, k)

    jac = einsum_jacobian(subscripts, *operands, wrt=k)
    assert jac.out_shape == out.shape and jac.in_shape == operands[k].shape
    assert jac.dtype == dtype
    assert_close(jac.as_matrix(), expected, dtype)

    dx = random_array(rng, operands[k].shape, dtype)
    ops = list(operands)
    ops[k] = dx
    jvp = einsum_jvp(subscripts, *operands, wrt=k, tangent=dx)
    assert jvp.shape == out.shape
    assert_close(jvp, np.einsum(subscripts, *ops), dtype)
    assert_close(jvp, jac @ dx, dtype)

    u = random_array(rng, out.shape, dtype)
    vjp = einsum_vjp(subscripts, *operands, wrt=k, cotangent=u)
    assert vjp.shape == operands[k].shape
    assert_close(vjp.reshape(-1), u.reshape(-1) @ expected, dtype)
    # the transpose identity <u, J dx> == <u J, dx>
    assert_close(np.sum(u * jvp), np.sum(vjp * dx), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("subscripts, shapes, k", EINSUM_CASES)
def test_einsum_rules(subscripts, shapes, k, dtype):
    rng = np.random.default_rng(5)
    operands = [random_array(rng, shape, dtype) for shape in shapes]
    check_einsum_rules(subscripts, operands, k, rng)


@pytest.mark.parametrize("subscripts, shapes, k", EINSUM_CASES[:6])
def test_einsum_rules_integers_are_exact(subscripts, shapes, k):
    rng = np.random.default_rng(10)
    operands = [rng.integers(-5, 5, shape) for shape in shapes]
    out = np.einsum(subscripts, *operands)
    jac = einsum_jacobian(subscripts, *operands, wrt=k)
    assert jac.dtype == np.int64
    np.testing.assert_array_equal(jac.as_matrix(), basis_jacobian(subscripts, operands, k))
    u = rng.integers(-5, 5, out.shape)
    np.testing.assert_array_equal(einsum_vjp(subscripts, *operands, wrt=k, cotangent=u), u @ jac)


@pytest.mark.parametrize("subscripts, shapes, k", EINSUM_CASES[:12])
def test_einsum_jacobian_matches_finite_differences(subscripts, shapes, k):
    rng = np.random.default_rng(6)
    operands = [random_array(rng, shape) for shape in shapes]

    def f(a):
        ops = list(operands)
        ops[k] = a
        return np.einsum(subscripts, *ops)

    numeric = numeric_jacobian(f, operands[k])
    np.testing.assert_allclose(
        einsum_jacobian(subscripts, *operands, wrt=k).array,
        numeric.array,
        **FD_TOL[np.dtype(float)],
    )


@st.composite
def einsum_problems(draw):
    """Random equations: 1-3 operands, repeated labels, implicit output, size-1 broadcasting."""
    letters = "abcd"
    sizes = dict(
        zip(letters, draw(st.lists(st.integers(1, 3), min_size=4, max_size=4)), strict=True)
    )
    n_ops = draw(st.integers(1, 3))
    terms = [draw(st.lists(st.sampled_from(letters), max_size=3)) for _ in range(n_ops)]
    used = sorted(set("".join("".join(t) for t in terms)))
    if draw(st.booleans()):
        output = draw(st.permutations(used))[: draw(st.integers(0, len(used)))]
        subscripts = ",".join("".join(t) for t in terms) + "->" + "".join(output)
    else:
        subscripts = ",".join("".join(t) for t in terms)
    shapes = []
    for term in terms:
        shape = []
        first_axis = {}
        for axis, lab in enumerate(term):
            if lab in first_axis:  # repeated labels must match within an operand
                shape.append(shape[first_axis[lab]])
            else:
                first_axis[lab] = axis
                broadcast = draw(st.integers(0, 4)) == 0
                shape.append(1 if broadcast else sizes[lab])
        shapes.append(tuple(shape))
    k = draw(st.integers(0, n_ops - 1))
    dtype = draw(st.sampled_from(DTYPES))
    return subscripts, shapes, k, dtype


@HYPOTHESIS
@given(problem=einsum_problems(), seed=st.integers(0, 99))
def test_einsum_rules_generated(problem, seed):
    subscripts, shapes, k, dtype = problem
    rng = np.random.default_rng(seed)
    operands = [random_array(rng, shape, dtype) for shape in shapes]
    check_einsum_rules(subscripts, operands, k, rng)


def test_einsum_rules_sublist_form_with_wide_labels():
    rng = np.random.default_rng(7)
    a = random_array(rng, (5, 2, 3))
    b = random_array(rng, (3, 4))
    u = random_array(rng, (5, 4, 2))
    dx = random_array(rng, (3, 4))
    args = (a, [..., 0, 100], b, [100, 2000], [..., 2000, 0])
    np.testing.assert_allclose(
        einsum_jacobian(*args, wrt=1).array, einsum_jacobian("...ab,bc->...ca", a, b, wrt=1).array
    )
    np.testing.assert_allclose(
        einsum_vjp(*args, wrt=0, cotangent=u), einsum_vjp("...ab,bc->...ca", a, b, cotangent=u)
    )
    np.testing.assert_allclose(
        einsum_jvp(*args, wrt=1, tangent=dx), np.einsum("...ab,bc->...ca", a, dx)
    )
    # implicit output of the sublist form: labels in increasing order
    np.testing.assert_allclose(
        einsum_jacobian(a, [7, 3, 5], wrt=0).array,
        einsum_jacobian("cab->abc", a, wrt=0).array,
    )


@pytest.mark.parametrize(
    "subscripts, shapes, error",
    [
        ("ij,jk", [(2, 3), (4, 5)], ValueError),
        ("ij", [(2, 3), (3,)], ValueError),
        ("ijk", [(2, 3)], ValueError),
        ("i", [(2, 3)], ValueError),
        ("ii", [(2, 3)], ValueError),
        ("i\tj", [(2, 3)], ValueError),
        ("ij->ii", [(2, 3)], ValueError),
        ("ij->k", [(2, 3)], ValueError),
        ("...i->i", [(2, 3)], ValueError),
        ("i->->i", [(2,)], ValueError),
    ],
)
def test_einsum_rules_reject_bad_subscripts(subscripts, shapes, error):
    operands = [np.ones(shape) for shape in shapes]
    with pytest.raises(error):
        np.einsum(subscripts, *operands)  # numpy agrees it is an error of this type
    with pytest.raises(error):
        einsum_jacobian(subscripts, *operands)


@pytest.mark.parametrize(
    "args, error",
    [
        ((np.ones(2), [0.5]), TypeError),
        ((np.ones(2), ["i"]), TypeError),
        ((np.ones(2), [-1]), ValueError),
        ((np.ones(2), [0, 0]), ValueError),
        ((np.ones(2), [0], [1]), ValueError),
        ((np.ones((2, 2)), [0, 1], [0, 0]), ValueError),
        ((np.ones(2), [0], np.ones(3), [0]), ValueError),
        ((np.ones(2), [..., ...]), ValueError),
    ],
)
def test_einsum_rules_reject_bad_sublists(args, error):
    with pytest.raises(error):
        np.einsum(*args)
    with pytest.raises(error):
        einsum_jacobian(*args)


def test_einsum_rules_more_than_52_labels():
    """The parsed labels are renumbered for the sublist form: 60 distinct labels work."""
    rng = np.random.default_rng(11)
    shape = (2,) + (1,) * 19
    ops = [random_array(rng, shape) for _ in range(3)]
    args: list = []
    for k, op in enumerate(ops):
        args += [op, list(range(100 * k, 100 * k + 20))]
    args.append([0, 100, 200])
    a, _, c = (op.reshape(2) for op in ops)
    jac = einsum_jacobian(*args, wrt=1)
    assert jac.out_shape == (2, 2, 2) and jac.in_shape == shape
    expected = np.einsum("i,k,jl->ijkl", a, c, np.eye(2)).reshape(8, 2)
    np.testing.assert_allclose(jac.as_matrix(), expected)
    dx = random_array(rng, shape)
    np.testing.assert_allclose(einsum_jvp(*args, wrt=1, tangent=dx), jac @ dx)
    u = random_array(rng, (2, 2, 2))
    np.testing.assert_allclose(einsum_vjp(*args, wrt=1, cotangent=u), u @ jac)


def test_einsum_rules_argument_errors():
    a, b = np.ones((2, 3)), np.ones((3, 4))
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(3, 4\)"):
        einsum_jvp("ij,jk->ik", a, b, wrt=1, tangent=np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"\(4, 2\).*\(2, 4\)"):
        einsum_vjp("ij,jk->ik", a, b, wrt=1, cotangent=np.ones((4, 2)))
    with pytest.raises(IndexError):
        einsum_jacobian("ij,jk->ik", a, b, wrt=2)
    assert einsum_jacobian("ij,jk->ik", a, b, wrt=-1).in_shape == (3, 4)


def test_einsum_jacobian_chain_rule():
    """d tr(A B C) / dB through the chain rule, as an einsum Jacobian product."""
    rng = np.random.default_rng(8)
    a, b, c = random_array(rng, (2, 3)), random_array(rng, (3, 4)), random_array(rng, (4, 2))
    inner = einsum_jacobian("ij,jk->ik", b, c, wrt=0)  # d(BC)/dB, shape (3, 2) + (3, 4)
    outer = einsum_jacobian("ij,ji->", a, b @ c, wrt=1)  # d tr(A M)/dM, shape () + (3, 2)
    direct = einsum_jacobian("ij,jk,ki->", a, b, c, wrt=1)
    np.testing.assert_allclose((outer @ inner).array, direct.array, rtol=1e-12)
    np.testing.assert_allclose(direct.array, (c @ a).T, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# linearization check
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_check_linearization_slope(dtype):
    rng = np.random.default_rng(9)
    x = random_array(rng, (2, 3), dtype)

    def f(m):
        return np.sin(m) @ m.T

    jac = numeric_jacobian(f, x)
    check = check_linearization(f, x, jac)
    assert len(check.scales) == len(check.errors) == 6
    assert np.all(np.diff(check.errors) < 0)
    assert abs(check.slope - 2) < 0.2
    wrong = Jacobian(jac.array * 1.5, in_ndim=2)
    assert abs(check_linearization(f, x, wrong).slope - 1) < 0.2
    assert "slope" in str(check)


def test_check_linearization_details():
    x = np.linspace(-1.0, 1.0, 4)
    exact = Jacobian(np.diag(np.exp(x)), in_ndim=1)
    check = check_linearization(np.exp, x, exact.array, scales=[1e-1, 1e-2, 1e-3])
    np.testing.assert_allclose(check.scales, [1e-1, 1e-2, 1e-3])
    assert abs(check.slope - 2) < 0.1
    # a linear map with its exact Jacobian: only rounding error remains
    a = np.arange(12.0).reshape(3, 4)
    linear = check_linearization(lambda v: a @ v, x, Jacobian(a, in_ndim=1), direction=np.ones(4))
    assert np.all(linear.errors < 1e-12)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        check_linearization(np.exp, x, exact, direction=np.ones(3))
    with pytest.raises(ValueError, match=r"\(4,\).*\(5,\)"):
        check_linearization(np.exp, x, Jacobian(np.ones((4, 5)), in_ndim=1))
    with pytest.raises(ValueError, match=r"\(4,\).*\(2,\)"):
        check_linearization(np.exp, x, Jacobian(np.ones((2, 4)), in_ndim=1))


# ------------------------------------------------------------------------------------------
# documentation
# ------------------------------------------------------------------------------------------


def test_module_doctests():
    result = doctest.testmod(jacobian_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 20 and result.failed == 0


def test_docs_page_runs():
    page = Path(__file__).resolve().parents[1] / "docs" / "jacobians.md"
    result = doctest.testfile(str(page), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10 and result.failed == 0


def test_public_names():
    assert set(jacobian_module.__all__) == {
        "ChainResult",
        "Jacobian",
        "LinearizationCheck",
        "chain",
        "check_linearization",
        "einsum_jacobian",
        "einsum_jvp",
        "einsum_vjp",
        "jacobian_subscripts",
        "numeric_jacobian",
    }
