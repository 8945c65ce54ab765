"""contract.einsum against numpy.einsum on generated equations, dtypes and layouts."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    DTYPES,
    LAYOUTS,
    assert_matches,
    equations,
    make_operand,
    numpy_or_error,
)
from hypothesis import given
from hypothesis import strategies as st

import contract


@given(
    eq=equations(),
    dtype=st.sampled_from(DTYPES),
    layouts=st.lists(st.sampled_from(LAYOUTS), min_size=5, max_size=5),
    optimize=st.sampled_from([True, False, "greedy", "optimal"]),
    seed=st.integers(0, 2**16),
)
def test_matches_numpy(eq, dtype, layouts, optimize, seed):
    subscripts, shapes = eq
    rng = np.random.default_rng(seed)
    ops = [make_operand(s, dtype, lay, rng) for s, lay in zip(shapes, layouts)]
    expected, err = numpy_or_error(subscripts, ops)
    if err is not None:
        with pytest.raises(type(err)):
            contract.einsum(subscripts, *ops, optimize=optimize)
        return
    result = contract.einsum(subscripts, *ops, optimize=optimize)
    assert_matches(result, expected)
    assert type(result) is type(expected)


@given(eq=equations(max_operands=3), seed=st.integers(0, 2**16), use_blas=st.booleans())
def test_contract_and_expression_match_numpy(eq, seed, use_blas):
    subscripts, shapes = eq
    rng = np.random.default_rng(seed)
    ops = [make_operand(s, np.float64, "C", rng) for s in shapes]
    expected, err = numpy_or_error(subscripts, ops)
    if err is not None:
        return
    assert_matches(contract.contract(subscripts, *ops, use_blas=use_blas), expected)
    expr = contract.contract_expression(subscripts, *shapes, use_blas=use_blas)
    assert_matches(expr(*ops), expected)


@given(
    eq=equations(max_operands=3, allow_zero=False),
    out_dtype=st.sampled_from([np.float64, np.complex128, np.float32]),
    layout=st.sampled_from(["C", "F", "sliced", "negative"]),
    seed=st.integers(0, 2**16),
)
def test_out_argument(eq, out_dtype, layout, seed):
    subscripts, shapes = eq
    rng = np.random.default_rng(seed)
    ops = [make_operand(s, np.float32, "C", rng) for s in shapes]
    expected, err = numpy_or_error(subscripts, ops)
    if err is not None:
        return
    expected = np.asarray(expected).astype(out_dtype)
    out = make_operand(expected.shape, out_dtype, layout, rng)
    returned = contract.einsum(subscripts, *ops, out=out)
    assert returned is out
    assert_matches(out, expected, dtype=np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.complex128])
@pytest.mark.parametrize(
    "subscripts,shapes",
    [
        ("ij,jk->ik", [(64, 48), (48, 80)]),
        ("bij,bjk->bik", [(6, 20, 24), (6, 24, 16)]),
        ("aebd,ce->dcba", [(6, 7, 8, 9), (5, 7)]),
        ("abcd,dbef->aecf", [(5, 6, 7, 8), (8, 6, 5, 4)]),
        ("ij,ij->ij", [(200, 300), (200, 300)]),
        ("ij,ij->i", [(200, 300), (200, 300)]),
        ("ijk->i", [(40, 50, 60)]),
        ("ii->i", [(300, 300)]),
        ("iij->j", [(30, 30, 40)]),
        ("i,j->ij", [(300,), (400,)]),
        ("awc,wvst,bvd,ctd->asb", [(9, 4, 9), (4, 4, 3, 3), (9, 4, 9), (9, 3, 9)]),
        ("...ij,...jk->...ik", [(3, 1, 8, 9), (4, 9, 5)]),
    ],
)
def test_kinds_of_contraction(subscripts, shapes, dtype):
    rng = np.random.default_rng(1)
    ops = [make_operand(s, dtype, "C", rng) for s in shapes]
    expected = np.einsum(subscripts, *ops)
    for optimize in (True, False):
        assert_matches(contract.einsum(subscripts, *ops, optimize=optimize), expected)


def test_sublist_form_matches_string_form():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    np.testing.assert_allclose(contract.einsum(a, [0, 1], b, [1, 2], [0, 2]), a @ b)
    np.testing.assert_allclose(
        contract.einsum(a, [0, 1], b, [1, 2]), np.einsum(a, [0, 1], b, [1, 2])
    )
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(
        contract.einsum(x, [Ellipsis, 1], [1, Ellipsis]), np.einsum(x, [Ellipsis, 1], [1, Ellipsis])
    )


def test_wide_sublist_labels_beyond_52():
    """Sublists may use any non-negative int (the Jacobian layer needs more than 52 labels)."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    np.testing.assert_allclose(contract.einsum(a, [100, 200], b, [200, 300], [100, 300]), a @ b)
    big = rng.standard_normal((2,) * 10)
    labels = list(range(60, 70))
    np.testing.assert_allclose(contract.einsum(big, labels, [], optimize=False), big.sum())


def test_views_like_numpy():
    a = np.arange(12.0).reshape(3, 4)
    t = contract.einsum("ij->ji", a)
    assert np.shares_memory(t, a) and np.array_equal(t, a.T)
    d = contract.einsum("ii->i", np.arange(9.0).reshape(3, 3))
    np.testing.assert_array_equal(d, [0.0, 4.0, 8.0])


def test_scalar_results_are_numpy_scalars():
    r = contract.einsum("i,i", np.arange(3.0), np.arange(3.0))
    assert isinstance(r, np.float64) and r == 5.0
    out = np.empty(())
    assert contract.einsum("i,i->", np.arange(3.0), np.arange(3.0), out=out) is out


def test_zero_d_and_python_scalars():
    assert contract.einsum(",", 3, 4) == 12
    np.testing.assert_array_equal(contract.einsum("i,->i", np.arange(3), 2), [0, 2, 4])
    assert contract.einsum("i,->i", np.ones(3, np.int8), 300).dtype == np.int64


@pytest.mark.parametrize("order", ["C", "F", "A", "K"])
def test_order(order):
    a, b = np.ones((3, 4), order="F"), np.ones((4, 5), order="F")
    r = contract.einsum("ij,jk->ik", a, b, order=order)
    if order in "FA":
        assert r.flags.f_contiguous
    elif order == "C":
        assert r.flags.c_contiguous
    np.testing.assert_allclose(r, a @ b)


def test_dtype_and_casting():
    a = np.arange(4.0)
    r = contract.einsum("i,i->i", a, a, dtype=np.float32, casting="same_kind")
    assert r.dtype == np.float32
    with pytest.raises(TypeError):
        contract.einsum("i,i", a, a, dtype=np.int32)
    with pytest.raises(TypeError):
        contract.einsum("i->i", a, out=np.empty(4, np.float32))
    assert contract.einsum("i,i", a.astype(np.int32), a.astype(np.int32), dtype=np.float64) == 14
    # out= widens the computation dtype (as in numpy), and the operands must cast to that one
    flags = np.array([True, False])
    for fn in (np.einsum, contract.einsum):
        with pytest.raises(TypeError):
            fn("i->i", flags, out=np.zeros(2, np.int8), casting="equiv")
    assert contract.einsum("i->i", flags, out=np.zeros(2, np.int8)).tolist() == [1, 0]
    # numpy reads out= as well: its dtype must also cast to the computation dtype
    big = np.ones((300, 300), np.float32)
    for fn in (np.einsum, contract.einsum):
        with pytest.raises(TypeError):
            fn("ij->i", big, dtype=np.float32, out=np.zeros(300))


def test_out_overlapping_an_input_gives_numpy_answer():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((20, 20))
    b = rng.standard_normal((20, 20))
    expected = a @ b
    contract.einsum("ij,jk->ik", a, b, out=a)
    np.testing.assert_allclose(a, expected)
    c = rng.standard_normal((30, 30))
    expected = np.einsum("ij->ji", c).copy()
    contract.einsum("ij->ji", c, out=c)
    np.testing.assert_allclose(c, expected)


def test_object_dtype_is_delegated_to_numpy():
    a = np.array([1, 2, 3], dtype=object)
    assert contract.einsum("i,i", a, a) == 14


def test_nan_and_inf_propagate():
    a = np.array([1.0, np.nan, 2.0])
    b = np.array([np.inf, 1.0, 0.0])
    assert np.isnan(contract.einsum("i,i", a, np.ones(3)))
    assert np.isinf(contract.einsum("i,i", b, np.ones(3)))
    assert np.isnan(contract.einsum("i,i", b, np.array([0.0, 1.0, 1.0])))


def test_integer_overflow_wraps_like_numpy():
    a = np.full(1000, 100, dtype=np.int8)
    assert contract.einsum("i,i", a, a) == np.einsum("i,i", a, a)
    b = np.full(10, 2**62, dtype=np.int64)
    c = np.full(10, 4, np.int64)
    assert contract.einsum("i,i", b, c) == np.einsum("i,i", b, c)


def test_einsum_path_numpy_form():
    a, b, c = np.ones((2, 30)), np.ones((30, 40)), np.ones((40, 5))
    path, report = contract.einsum_path("ij,jk,kl->il", a, b, c)
    assert path[0] == "einsum_path" and len(path) == 3
    np.testing.assert_allclose(contract.einsum("ij,jk,kl->il", a, b, c, optimize=path), a @ b @ c)
    assert "runs as" in report


def test_expression_with_constants_and_optimizers():
    import opt_einsum

    rng = np.random.default_rng(9)
    a, b, c = rng.standard_normal((5, 6)), rng.standard_normal((6, 7)), rng.standard_normal((7, 3))
    expected = a @ b @ c
    expr = contract.contract_expression("ij,jk,kl->il", a.shape, b, c.shape, constants=[1])
    assert expr.num_args == 2
    np.testing.assert_allclose(expr(a, c), expected)
    for optimize in (
        "greedy",
        "optimal",
        "dp",
        "branch-2",
        opt_einsum.paths.DynamicProgramming(),
        [(0, 1), (0, 1)],
        ["einsum_path", (1, 2), (0, 1)],
        False,
    ):
        np.testing.assert_allclose(
            contract.contract("ij,jk,kl->il", a, b, c, optimize=optimize), expected
        )


def test_memory_limit_is_honoured_by_the_path():
    shapes = [(20, 30), (30, 40), (40, 50), (50, 20)]
    _, free = contract.contract_path("ij,jk,kl,lm->im", *shapes, shapes=True, optimize="greedy")
    _, capped = contract.contract_path(
        "ij,jk,kl,lm->im", *shapes, shapes=True, optimize="greedy", memory_limit=500
    )
    assert capped.largest_intermediate <= max(500, 20 * 20)
    assert capped.largest_intermediate <= free.largest_intermediate


def test_hadamard_style_steps_are_fused():
    shapes = [(30, 40)] * 3
    path, info = contract.contract_path("ij,ij,ij->ij", *shapes, shapes=True)
    assert path == [(0, 1, 2)] and info.methods == ["kernel"]
    assert contract.contract_path("i,i,i->", (50,), (50,), (50,), shapes=True)[0] == [(0, 1, 2)]
    # pairwise saves arithmetic here: not fused
    assert len(contract.contract_path("ij,jk,kl->il", *[(30, 30)] * 3, shapes=True)[0]) == 2
    # four operands stay pairwise (the kernel vectorizes at most three moving operands)
    assert len(contract.contract_path("ij,ij,ij,ij->ij", *[(30, 40)] * 4, shapes=True)[0]) == 3
    # an explicit path is followed as given
    explicit = contract.contract_path("ij,ij,ij->ij", *shapes, shapes=True,
                                      optimize=[(0, 1), (0, 1)])[0]
    assert explicit == [(0, 1), (0, 1)]
    rng = np.random.default_rng(4)
    ops = [rng.standard_normal(s) for s in shapes]
    assert_matches(contract.einsum("ij,ij,ij->ij", *ops), ops[0] * ops[1] * ops[2])
