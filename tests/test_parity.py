"""Parity with numpy's and opt_einsum's own test suites (issue 11): one regression test per gap.

The suites themselves run in ``tests/peer/``; these pin each behaviour here, against numpy or
opt_einsum as the oracle where they agree.
"""

from __future__ import annotations

import numpy as np
import opt_einsum
import pytest
from conftest import tuned

import contract

RNG = np.random.default_rng(11)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((4, 5))
C = RNG.standard_normal((5, 2))


# ---- 1. any character but ',', '-', '>', '.' and whitespace is a label ----------------------


SHIPPED_THRESHOLD = 1 << 15  # Tuning.numpy_loop_max_work (conftest.py sets it to 0)


@pytest.fixture(params=[0, SHIPPED_THRESHOLD], ids=["engine", "numpy-loop"])
def loop_limit(request):
    """Run with tiny equations in the engine, and with numpy's C loop on (as shipped)."""
    with tuned(numpy_loop_max_work=request.param):
        yield request.param


@pytest.mark.parametrize("subscripts", ["αβ,βγ->αγ", "a%,%0->a0", "x[,[_->x_", "😀b,b😎->😀😎"])
def test_unicode_labels(subscripts, loop_limit):
    expected = A @ B
    np.testing.assert_allclose(contract.einsum(subscripts, A, B), expected)
    np.testing.assert_allclose(contract.contract(subscripts, A, B), expected)
    path, info = contract.contract_path(subscripts, A, B)
    assert path == [(0, 1)] and info.eq == subscripts
    expr = contract.contract_expression(subscripts, A.shape, B.shape)
    np.testing.assert_allclose(expr(A, B), expected)
    assert contract.einsum_path(subscripts, A, B)[0] == ["einsum_path", (0, 1)]


def test_unicode_implicit_output_is_sorted_by_code_point(loop_limit):
    x = RNG.standard_normal((2, 3, 4))
    # 'cβa' -> 'acβ', as opt_einsum orders it (and as 'cxa' -> 'acx')
    np.testing.assert_allclose(contract.contract("cβa", x), np.einsum("cxa", x))
    np.testing.assert_allclose(contract.einsum("Bα,αa", A, B), np.einsum("Bx,xa", A, B))


def test_many_unicode_labels_as_opt_einsum_spells_them():
    symbols = "".join(opt_einsum.get_symbol(i) for i in range(300))
    terms = ",".join(symbols[i : i + 2] for i in range(299))
    shapes = [(2, 2)] * 299
    path, info = contract.contract_path(terms, *shapes, shapes=True, optimize="greedy")
    assert len(path) == 298
    ops = [np.full((2, 2), 0.5) for _ in range(5)]
    sub = ",".join(symbols[100 + i : 102 + i] for i in range(5))
    np.testing.assert_allclose(contract.einsum(sub, *ops), np.einsum("ab,bc,cd,de,ef", *ops))


@pytest.mark.parametrize("subscripts", ["i\tj", "i\nj", "i-j", "i>j", "i,j->i.j"])
def test_whitespace_and_syntax_characters_are_not_labels(subscripts):
    with pytest.raises(ValueError):
        contract.einsum(subscripts, np.ones((2, 2)), *([np.ones(2)] if "," in subscripts else []))


# ---- 2. hashable labels in contract's interleaved form --------------------------------------


def test_hashable_interleaved_labels():
    expected = A @ B @ C
    got = contract.contract(A, ("left", "b1"), B, ("b1", "b2"), C, ("b2", "right"))
    np.testing.assert_allclose(got, expected)
    got = contract.contract(A, ("left", "b1"), B, ("b1", "b2"), C, ("b2", "right"),
                            ("right", "left"))
    np.testing.assert_allclose(got, expected.T)
    path, _ = contract.contract_path(A, ("l", "b"), B, ("b", "r"))
    assert path == [(0, 1)]
    expr = contract.contract_expression(A.shape, ("l", "b"), B.shape, ("b", "r"))
    np.testing.assert_allclose(expr(A, B), A @ B)
    # negative ints and huge ints, as opt_einsum accepts them
    np.testing.assert_allclose(contract.contract(A, (-5, 10**9), B, (10**9, 7)), A @ B)
    # implicit output in sorted label order, as opt_einsum numbers labels
    np.testing.assert_allclose(contract.contract(A, ("z", "a")), A.T)
    np.testing.assert_allclose(
        contract.contract(A, ("z", "a")), opt_einsum.contract(A, ("z", "a")))


def test_hashable_labels_must_sort_together():
    with pytest.raises(TypeError):
        contract.contract(A, ("left", 1), B, (1, 2))
    with pytest.raises(TypeError):
        contract.contract(A, ([0], [1]))


def test_einsum_keeps_numpy_sublist_rules_and_the_cache_sees_no_collision():
    np.testing.assert_allclose(contract.einsum(A, [0, 1], B, [1, 2]), A @ B)  # cached parse
    for bad in ([0.0, 1], [0, True], ["a", "b"]):
        with pytest.raises(TypeError):
            contract.einsum(A, bad)
        with pytest.raises(TypeError):
            contract.einsum_path(A, bad)
    with pytest.raises(ValueError):
        contract.einsum(A, [-1, 0])
    # contract: a float label is a hashable label (opt_einsum), numbered by rank, not cast
    np.testing.assert_allclose(contract.contract(A, [1.5, 0.5]), A.T)


# ---- 3. no arguments at all --------------------------------------------------------------


@pytest.mark.parametrize("fn", [contract.einsum, contract.einsum_path, contract.contract,
                                contract.contract_path])
def test_no_arguments_raise_value_error(fn):
    for optimize in (True, False):
        with pytest.raises(ValueError):
            fn(optimize=optimize)
    with pytest.raises(ValueError):
        np.einsum()  # the oracle


# ---- 4. views --------------------------------------------------------------------------


def _callers():
    for optimize in (False, True, "greedy"):
        yield lambda *args, o=optimize: contract.einsum(*args, optimize=o)
    yield contract.contract


VIEW_CASES = [
    (("...",), (2, 3)),
    (("ij",), (2, 3)),
    (("ji",), (2, 3)),
    (("ii->i",), (3, 3)),
    (("...ii->...i",), (2, 3, 3)),
    (("ii...->i...",), (3, 3, 2)),
    (("jii->ij",), (2, 3, 3)),
    (("iii->i",), (3, 3, 3)),
    (([Ellipsis],), (2, 3)),
    (([0, 1],), (2, 3)),
    (([1, 0],), (2, 3)),
    (([0, 0], [0]), (3, 3)),
    (([Ellipsis, 0, 0], [0, Ellipsis]), (2, 3, 3)),
]


@pytest.mark.parametrize("sub, shape", VIEW_CASES)
def test_views_share_base_and_writeability(sub, shape, loop_limit):
    base = np.arange(int(np.prod(shape)), dtype=np.float64)
    a = base.reshape(shape)
    args = (sub[0], a) if isinstance(sub[0], str) else (a, *sub)
    expected = np.einsum(*args)
    assert expected.base is a.base
    for call in _callers():
        got = call(*args)
        assert got.base is a.base
        np.testing.assert_array_equal(got, expected)
        assert got.flags.writeable
    a.flags.writeable = False
    for call in _callers():
        assert not call(*args).flags.writeable


def test_writing_a_diagonal_view_writes_the_operand(loop_limit):
    for call in _callers():
        a = np.arange(9.0).reshape(3, 3)
        call("ii->i", a)[:] = 0
        np.testing.assert_array_equal(np.diag(a), 0)
        assert a[0, 1] == 1


# ---- 5. explicit paths are validated as numpy validates them -------------------------------


def test_explicit_path_errors_match_numpy():
    ops = [np.ones((2, 2))] * 4
    for fn in (contract.einsum, contract.einsum_path, np.einsum, np.einsum_path):
        with pytest.raises(RuntimeError):
            fn("ab,bc,cd,de->ae", *ops, optimize=["einsum_path", (2, 3), (0, 1)])
        with pytest.raises(RuntimeError):
            fn("a,a,a->a", *[np.ones(2)] * 3, optimize=["einsum_path", (1,), (0, 1)])
        with pytest.raises(RuntimeError):
            fn("ab,bc,cd,de->ae", *ops, optimize=["einsum_path"])
        with pytest.raises(IndexError):
            fn("ab,bc,cd,de->ae", *ops, optimize=["einsum_path", (5,), (0, 1, 2, 3)])
        with pytest.raises(IndexError):
            fn("ab,bc,cd,de->ae", *ops, optimize=["einsum_path", (0, 1), (0, 1), (0, 1), (0, 1)])
    with pytest.raises(RuntimeError):
        contract.contract("ab,bc,cd,de->ae", *ops, optimize=[(2, 3), (0, 1)])
    with pytest.raises(RuntimeError):
        contract.contract_expression("ab,bc,cd,de->ae", *[(2, 2)] * 4, optimize=[(0, 1)])
    # still ValueErrors, as before
    with pytest.raises(ValueError):
        contract.einsum("ab,bc,cd,de->ae", *ops, optimize=["einsum_path", (2, 3), (0, 1)])


def test_explicit_paths_that_numpy_takes():
    ops = [RNG.standard_normal(s) for s in [(2, 3, 3), (4, 3, 5), (5, 6), (2, 7, 4)]]
    path = ["einsum_path", (0, 2), (0, 2), (0, 1)]
    assert contract.einsum_path("dcc,fce,ea,dbf->ab", *ops, optimize=path)[0] == path
    np.testing.assert_allclose(contract.einsum("dcc,fce,ea,dbf->ab", *ops, optimize=path),
                               np.einsum("dcc,fce,ea,dbf->ab", *ops, optimize=False))
    ops = [RNG.standard_normal(s) for s in [(3, 4, 5), (3, 6, 6)]]
    path = ["einsum_path", (1,), (0, 1)]
    assert contract.einsum_path("cab,cdd->ab", *ops, optimize=path)[0] == path


# ---- 6. path forms as numpy reports them ---------------------------------------------------


def test_einsum_path_without_optimization_is_one_step():
    ops = [np.ones(s) for s in [(2, 3, 3), (4, 3, 5), (5, 6), (2, 7, 4)]]
    assert contract.einsum_path("dcc,fce,ea,dbf->ab", *ops, optimize=False)[0] == [
        "einsum_path", (0, 1, 2, 3)]


@pytest.mark.parametrize("name", ["greedy", "optimal"])
def test_memory_limit_zero_means_no_intermediate(name):
    outer = [np.ones(n) for n in (2, 3, 4)]
    assert contract.einsum_path("a,b,c->abc", *outer, optimize=(name, 0))[0] == [
        "einsum_path", (0, 1, 2)]
    sizes = dict(zip("abcdefghij", [2, 3, 4, 5, 4, 3, 2, 6, 5, 4]))
    terms = "acdf,jbje,gihb,hfac".split(",")
    ops = [RNG.standard_normal([sizes[c] for c in t]) for t in terms]
    assert contract.einsum_path(",".join(terms), *ops, optimize=(name, 0))[0] == [
        "einsum_path", (0, 1, 2, 3)]
    np.testing.assert_allclose(contract.einsum(",".join(terms), *ops, optimize=(name, 0)),
                               np.einsum(",".join(terms), *ops))
    assert contract.contract_path(",".join(terms), *ops, optimize=name, memory_limit=0)[0] == [
        (0, 1, 2, 3)]


def test_memory_limit_minus_one_means_no_limit():
    shapes = [(3, 4), (4, 5), (5, 2)]
    unlimited = contract.contract_path("ab,bc,cd->ad", *shapes, shapes=True)[0]
    assert contract.contract_path("ab,bc,cd->ad", *shapes, shapes=True, memory_limit=-1)[0] == (
        unlimited)
    assert len(unlimited) == 2


# ---- 7. a 0-d out= with optimize= set (numpy gh-31350) ------------------------------------


def test_zero_d_out_with_optimize_follows_numpy(loop_limit):
    a = np.ones(7)
    for optimize in ("optimal", True, "greedy"):
        out = np.array(0)
        assert np.einsum("i,i->", a, a, out=out, optimize=optimize) is out  # numpy 2.4
        out = np.array(0)
        assert contract.einsum("i,i->", a, a, out=out, optimize=optimize) is out
        assert out == 7
    # numpy's default mode refuses the unsafe cast; so does contract's
    for fn in (np.einsum, contract.einsum):
        with pytest.raises(TypeError):
            fn("i,i->", a, a, out=np.array(0), optimize=False)
    # a safe 0-d out= is unaffected
    out = np.array(0.0)
    contract.einsum("i,i->", a, a, out=out, optimize="optimal")
    assert out == 7


# ---- 8. contract_expression checks --------------------------------------------------------


def test_contract_expression_checks():
    with pytest.raises(ValueError):
        contract.contract_expression("ab,bc->ac", (2, 3), (3, 4), (42, 42))
    with pytest.raises(ValueError):
        contract.contract_expression("ab,bc->ac", (2, 3), (3, 4), out=np.empty((2, 4)))
    expr = contract.contract_expression("ab,bc->ac", (2, 3), (3, 4))
    with pytest.raises(ValueError, match="takes exactly 2"):
        expr(np.ones((2, 3)))
    with pytest.raises(ValueError, match="takes exactly 2"):
        expr(np.ones((2, 3)), np.ones((3, 4)), np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"must have shape \(2, 3\)"):
        expr(np.ones((2, 3, 4)), np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"out has shape \(2, 4, 6\)"):
        expr(np.ones((2, 3)), np.ones((3, 4)), out=np.ones((2, 4, 6)))
    with pytest.raises(TypeError, match="unexpected keyword"):
        expr(np.ones((2, 3)), np.ones((3, 4)), evaluate_constants=True)
    out = np.empty((2, 4))
    assert expr(np.ones((2, 3)), np.ones((3, 4)), out=out) is out
    np.testing.assert_array_equal(out, 3.0)


# ---- opt_einsum API details the peer suites rely on ---------------------------------------


def test_unknown_optimizer_name_is_a_key_error_and_a_value_error():
    for fn in (contract.contract, contract.contract_path, contract.einsum):
        with pytest.raises(KeyError):
            fn("a,b,c", np.ones(1), np.ones(2), np.ones(3), optimize="optimall")
        with pytest.raises(ValueError, match="unknown path optimizer"):
            fn("a,b,c", np.ones(1), np.ones(2), np.ones(3), optimize="optimall")


def test_path_info_scale_and_size_lists():
    _, info = contract.contract_path("ab,bc,cd->ad", (2, 3), (3, 4), (4, 5), shapes=True,
                                     optimize=[(0, 1), (0, 1)])
    assert info.scale_list == [3, 3]
    assert info.size_list == [8, 10]


def test_optimizer_objects_are_run_on_every_call():
    shapes = [(4, 5), (5, 6), (6, 7), (7, 3), (3, 4)]
    eq = "ab,bc,cd,de,ea->"
    optimizer = opt_einsum.RandomGreedy(max_repeats=4)
    contract.contract_path(eq, *shapes, shapes=True, optimize=optimizer)
    optimizer.max_repeats = 3
    path, info = contract.contract_path(eq, *shapes, shapes=True, optimize=optimizer)
    assert len(optimizer.costs) == 7
    assert path == optimizer.path and info.opt_cost == optimizer.best["flops"]


@pytest.mark.parametrize("optimize", [True, False])
def test_output_order_a_f_c(optimize):
    a = np.ones((2, 3, 5), order="F")
    b = np.ones((4, 3), order="F")
    c = np.ones((4, 3))
    eq = "...ft,mf->...mt"
    assert contract.einsum(eq, a, b, order="a", optimize=optimize).flags.f_contiguous
    assert contract.einsum(eq, a, b, order="f", optimize=optimize).flags.f_contiguous
    assert contract.einsum(eq, a, b, order="c", optimize=optimize).flags.c_contiguous
    assert contract.einsum(eq, a, c, order="a", optimize=optimize).flags.c_contiguous
    assert contract.einsum(eq, np.ones((2, 3, 5)), c, order="a",
                           optimize=optimize).flags.c_contiguous


def test_unicode_labels_with_object_operands_delegated_to_numpy():
    a, b = A.astype(object), B.astype(object)
    expected = np.einsum("ab,bc", a, b)
    for got in (contract.einsum("αβ,βγ", a, b), contract.contract("αβ,βγ->αγ", a, b),
                contract.contract_expression("αβ,βγ", A.shape, B.shape)(a, b),
                contract.contract(a, ("l", "b"), b, ("b", "r"))):
        assert got.dtype == object
        np.testing.assert_allclose(got.astype(float), expected.astype(float))
    # the implicit output order survives the respelling: 'αz' -> 'zα' ('z' < 'α'), a transpose
    np.testing.assert_array_equal(contract.einsum("αz", a), np.einsum("ba", a))
