"""The per-call fast path: tiny equations in numpy's C loop, and cached runners for repeat calls.

The rest of the suite runs with the numpy loop switched off (see conftest.py); the ``numpy_loop``
fixture here switches it on with its shipped threshold.
"""

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
    tuned,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contract
from contract import _call, _numpy_compat, executor, parser, planner

SHIPPED_THRESHOLD = 1 << 15


@pytest.fixture
def numpy_loop():
    with tuned(numpy_loop_max_work=SHIPPED_THRESHOLD):
        yield


@pytest.fixture
def fresh_runners():
    _call.RUNNERS.clear()
    yield
    _call.RUNNERS.clear()


def _same(result, expected):
    """Bit-identical, same type and dtype: the numpy loop *is* numpy's answer."""
    assert type(result) is type(expected)
    np.testing.assert_array_equal(np.asarray(result), np.asarray(expected), strict=True)


@given(
    eq=equations(max_operands=3),
    dtype=st.sampled_from(DTYPES),
    layouts=st.lists(st.sampled_from(LAYOUTS), min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
)
# the fixture only sets the threshold; runners cached by earlier examples are meant to be reused
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_tiny_calls_are_numpys_answer_first_and_second_time(numpy_loop, eq, dtype, layouts, seed):
    subscripts, shapes = eq
    rng = np.random.default_rng(seed)
    ops = [make_operand(s, dtype, lay, rng) for s, lay in zip(shapes, layouts)]
    expected, err = numpy_or_error(subscripts, ops)
    if err is not None:
        for _ in range(2):  # an error is never cached
            with pytest.raises(type(err)):
                contract.einsum(subscripts, *ops)
        return
    first = contract.einsum(subscripts, *ops)
    second = contract.einsum(subscripts, *ops)  # through the cached runner
    eq_parsed = parser.parse_cached(subscripts, tuple(shapes))
    copies = [o.copy(order="C") for o in ops]  # the same key, other strides
    if planner.runs_in_numpy_loop(eq_parsed):
        _same(first, expected)
        # numpy's own rounding depends on the strides (stride-0 inner loops), so compare with it
        _same(contract.einsum(subscripts, *copies), np.einsum(subscripts, *copies))
    else:
        assert_matches(first, expected)
        assert_matches(contract.einsum(subscripts, *copies), expected)
    _same(second, first)


def test_tiny_call_with_keywords_is_numpys_answer(numpy_loop):
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    b = np.arange(12, dtype=np.int32).reshape(3, 4)
    out = np.zeros((2, 4), dtype=np.float64)
    assert contract.einsum("ij,jk->ik", a, b, out=out) is out
    _same(out, np.einsum("ij,jk->ik", a, b).astype(np.float64))
    _same(contract.einsum("ij,jk->ik", a, b, dtype=np.float32, casting="same_kind"),
          np.einsum("ij,jk->ik", a, b, dtype=np.float32, casting="same_kind"))
    f = contract.einsum("ij,jk->ik", a, b, order="F")
    assert f.flags.f_contiguous
    with pytest.raises(TypeError):
        contract.einsum("ij,jk->ik", a, b, dtype=np.int8)  # unsafe under 'safe'
    view = contract.einsum("ij->ji", a)
    assert np.shares_memory(view, a)


def test_cached_key_still_validates_what_is_not_in_it(numpy_loop):
    a = np.ones((4, 4))
    contract.einsum("ij,jk->ik", a, a, optimize=True)
    with pytest.raises(TypeError):  # 1 == True, but numpy refuses optimize=1
        contract.einsum("ij,jk->ik", a, a, optimize=1)
    with pytest.raises(ValueError):
        contract.einsum("ij,jk->ik", a, np.ones((3, 4)))
    with pytest.raises(ValueError):
        contract.einsum("ij,jk->ik", a, a, optimize="no-such-optimizer")


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_non_arrays_and_subclasses_take_the_full_path(numpy_loop):
    a = [[1.0, 2.0], [3.0, 4.0]]
    for _ in range(2):
        result = contract.einsum("ij,jk->ik", a, a)
        assert type(result) is np.ndarray
        _same(result, np.einsum("ij,jk->ik", np.asarray(a), np.asarray(a)))
    m = np.matrix(a)
    for _ in range(2):
        assert type(contract.einsum("ij,jk->ik", m, m)) is np.ndarray
    assert all(t is np.ndarray for key in _call.RUNNERS for t in key[4] if isinstance(t, type))


def test_use_blas_false_never_uses_the_numpy_loop(numpy_loop, monkeypatch):
    a = np.arange(16.0).reshape(4, 4)
    expected = np.einsum("ij,jk->ik", a, a)
    contract.contract("ij,jk->ik", a, a)  # caches a numpy-loop runner under use_blas=True

    def refuse(*args, **kwargs):
        raise AssertionError("the numpy loop ran")

    monkeypatch.setattr(_numpy_compat, "numpy_loop", refuse)
    for _ in range(2):
        assert_matches(contract.contract("ij,jk->ik", a, a, use_blas=False), expected)
    _, info = contract.contract_path("ij,jk->ik", a, a, use_blas=False)
    assert not info.numpy_loop and "numpy's C einsum loop" not in str(info)


def test_report_says_when_the_numpy_loop_runs(numpy_loop):
    _, small = contract.contract_path("ij,jk->ik", (4, 4), (4, 4), shapes=True)
    _, big = contract.contract_path("ij,jk->ik", (64, 64), (64, 64), shapes=True)
    assert small.numpy_loop and "numpy's C einsum loop" in str(small)
    assert not big.numpy_loop and "numpy's C einsum loop" not in str(big)
    _, zero = contract.contract_path("ij,jk->ik", (0, 4), (4, 4), shapes=True)
    assert not zero.numpy_loop  # zero-size axes stay in the engine


def test_sublist_form_runs_in_the_engine(numpy_loop, monkeypatch):
    a = np.arange(4.0).reshape(2, 2)

    def refuse(*args, **kwargs):
        raise AssertionError("the numpy loop ran")

    monkeypatch.setattr(_numpy_compat, "numpy_loop", refuse)
    assert_matches(contract.einsum(a, [0, 1], a, [1, 2], [0, 2]), a @ a)


def test_expression_fast_path(numpy_loop):
    a = np.arange(12.0).reshape(3, 4)
    b = np.arange(20.0).reshape(4, 5)
    expr = contract.contract_expression("ij,jk->ik", a.shape, b.shape)
    for _ in range(2):
        _same(expr(a, b), np.einsum("ij,jk->ik", a, b))
    with pytest.raises(ValueError, match="shape"):
        expr(a, b[:, :4])  # numpy would accept it; the expression was planned for (4, 5)
    with pytest.raises(ValueError):
        expr(a)
    const = contract.contract_expression("ij,jk->ik", a.shape, b, constants=[1])
    for _ in range(2):
        _same(const(a), np.einsum("ij,jk->ik", a, b))
    out = np.empty((3, 5))
    assert expr(a, b, out=out) is out
    _same(out, np.einsum("ij,jk->ik", a, b))


def test_expression_fast_path_without_numpy_loop(fresh_runners):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 5))
    b = rng.standard_normal((5, 7))
    expr = contract.contract_expression("ij,jk->ik", a.shape, b.shape)
    first = expr(a, b)
    assert_matches(first, a @ b)
    _same(expr(np.asfortranarray(a), b[::-1][::-1]), first)
    bt = np.ascontiguousarray(b.T).T  # same shape and dtype, other strides
    assert_matches(expr(a, bt), a @ b)
    a32 = a.astype(np.float32)
    assert_matches(expr(a32, b), a32 @ b)  # another dtype: another runner


def test_planned_runner_is_reused_and_respects_strides(fresh_runners):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((30, 20))
    b = rng.standard_normal((20, 10))
    expected = a @ b
    assert_matches(contract.einsum("ij,jk->ik", a, b), expected)
    assert len(_call.RUNNERS) == 1
    for a2 in (np.asfortranarray(a), a[::-1][::-1], np.ascontiguousarray(a[::-1])[::-1]):
        assert_matches(contract.einsum("ij,jk->ik", a2, b), expected)
    assert len(_call.RUNNERS) == 1
    ro = a.copy()
    ro.flags.writeable = False
    assert_matches(contract.einsum("ij,jk->ik", ro, b), expected)


def test_runner_cache_is_bounded(fresh_runners, monkeypatch):
    monkeypatch.setattr(_call.RUNNERS, "maxsize", 8)
    for n in range(1, 30):
        a = np.ones((n, 2))
        assert_matches(contract.einsum("ij->i", a), np.full(n, 2.0))
    assert len(_call.RUNNERS) <= 8


def test_a_failed_call_leaves_no_runner_behind(fresh_runners, monkeypatch):
    # the intermediate d,d->d (8 GB) would fit; the result (477 PiB) never does
    ops = [np.broadcast_to(1.0, (10**9,)), np.broadcast_to(1.0, (2**26,)),
           np.broadcast_to(1.0, (10**9,))]
    with pytest.raises(MemoryError):
        contract.einsum("d,b,d->bd", *ops)
    assert not _call.RUNNERS

    def no_step_may_run(*args, **kwargs):
        raise AssertionError("a step ran before the size checks")

    monkeypatch.setattr(executor, "run_step", no_step_may_run)
    for _ in range(2):  # the same key again, through einsum and contract
        with pytest.raises(MemoryError):
            contract.einsum("d,b,d->bd", *ops)
        with pytest.raises(MemoryError):
            contract.contract("d,b,d->bd", *ops)
    expr = contract.contract_expression("d,b,d->bd", *[o.shape for o in ops])
    for _ in range(2):
        with pytest.raises(MemoryError):
            expr(*ops)


@pytest.mark.parametrize("as_given", [
    lambda path: path,  # opt_einsum's list of tuples
    tuple,  # a tuple of tuples
    lambda path: ["einsum_path", *path],  # numpy's einsum_path form
])
def test_explicit_paths_take_the_fast_path(as_given):
    rng = np.random.default_rng(3)
    a, b, c = rng.random((4, 5)), rng.random((5, 6)), rng.random((6, 3))
    path = [(1, 2), (0, 1)]
    optimize = as_given(path)
    _call.RUNNERS.clear()
    first = contract.einsum("ij,jk,kl->il", a, b, c, optimize=optimize)
    assert len(_call.RUNNERS) == 1  # remembered
    second = contract.einsum("ij,jk,kl->il", a, b, c, optimize=optimize)
    assert len(_call.RUNNERS) == 1  # found, not stored again
    assert np.array_equal(first, second)
    assert_matches(second, np.einsum("ij,jk,kl->il", a, b, c))
    # another path is another key; a path invalid for these operands still raises every time
    contract.einsum("ij,jk,kl->il", a, b, c, optimize=[(0, 1), (0, 1)])
    assert len(_call.RUNNERS) == 2
    for _ in range(2):
        with pytest.raises(ValueError):
            contract.einsum("ij,jk,kl->il", a, b, c, optimize=[(0, 3), (0, 1)])
    assert len(_call.RUNNERS) == 2


def test_optimizer_objects_are_not_remembered():
    import opt_einsum

    a = np.ones((3, 4))
    _call.RUNNERS.clear()
    optimizer = opt_einsum.RandomGreedy(max_repeats=4)
    for _ in range(2):
        contract.einsum("ij,jk,kl->il", a, a.T, a, optimize=optimizer)
    assert len(_call.RUNNERS) == 0


def test_interleaved_calls_take_the_fast_path():
    rng = np.random.default_rng(4)
    a, b, c = rng.random((4, 5)), rng.random((5, 6)), rng.random((6, 3))
    expected = np.einsum("ij,jk,kl->il", a, b, c)
    _call.RUNNERS.clear()
    for _ in range(2):
        assert_matches(contract.einsum(a, [0, 1], b, [1, 2], c, [2, 3], [0, 3]), expected)
        assert len(_call.RUNNERS) == 1
    # no output sublist: another key; implicit output of the same labels
    for _ in range(2):
        assert_matches(contract.einsum(a, [0, 1], b, [1, 2], c, [2, 3]), expected)
    assert len(_call.RUNNERS) == 2
    # other sublists, other operands of another shape: other keys and the right answers
    assert_matches(contract.einsum(a, [1, 0], a, [1, 2], [0, 2]), np.einsum("ji,jk->ik", a, a))
    assert_matches(contract.einsum(c, [0, 1], c, [0, 2], [1, 2]), np.einsum("ji,jk->ik", c, c))
    # contract's hashable labels never answer an einsum call, which must refuse them
    assert_matches(contract.contract(a, ["x", "y"], b, ["y", "z"], ["x", "z"]), a @ b)
    assert_matches(contract.contract(a, ["x", "y"], b, ["y", "z"], ["x", "z"]), a @ b)
    with pytest.raises(TypeError):
        contract.einsum(a, ["x", "y"], b, ["y", "z"], ["x", "z"])
