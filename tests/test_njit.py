"""contract.einsum inside @njit code (contract.numba_ext), against numpy.einsum.

Every jitted specialization costs seconds of cold compiling (each literal subscripts string is
part of the type), so the default set compiles few: one jitted function per operand count, and
each specialization is run on several shapes (tiny loop nest, kernel and BLAS paths, broadcasting,
size 0, errors). ``CONTRACT_NJIT_FULL=1`` adds more dtypes, layouts and operand counts.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from conftest import assert_matches, make_operand
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numba import prange
from numba.core.errors import TypingError

import contract
import contract.numba_ext as ne
from contract import layout

FULL = os.environ.get("CONTRACT_NJIT_FULL") == "1"
full_only = pytest.mark.skipif(not FULL, reason="long njit variant: set CONTRACT_NJIT_FULL=1")


@numba.njit
def run1(subscripts, a):
    return contract.einsum(subscripts, a)


@numba.njit
def run2(subscripts, a, b):
    return contract.einsum(subscripts, a, b)


@numba.njit
def run3(subscripts, a, b, c):
    return contract.einsum(subscripts, a, b, c)


@numba.njit
def run4(subscripts, a, b, c, d):
    return contract.einsum(subscripts, a, b, c, d)


def check(func, subscripts, *ops):
    got = func(subscripts, *ops)
    expected = np.einsum(subscripts, *ops)
    if np.ndim(expected) == 0:
        assert np.isscalar(got) or isinstance(got, np.generic), type(got)
    assert_matches(got, expected)


def test_matrix_product_tiny_blas_broadcast_and_size_zero():
    rng = np.random.default_rng(1)
    eq = "ij,jk->ik"
    for shapes in [((4, 4), (4, 4)), ((60, 50), (50, 70)), ((3, 1), (5, 4)), ((30, 200), (200, 1)),
                   ((0, 5), (5, 3)), ((3, 0), (0, 4)), ((1, 300), (300, 40))]:
        a, b = (make_operand(s, np.float64, "C", rng) for s in shapes)
        check(run2, eq, a, b)


def test_strided_float32_sliced_and_negative():
    rng = np.random.default_rng(2)
    for shapes in [((4, 3), (3, 5)), ((70, 60), (60, 50))]:
        a = make_operand(shapes[0], np.float32, "sliced", rng)
        b = make_operand(shapes[1], np.float32, "negative", rng)
        check(run2, "ij,jk->ik", a, b)
        check(run2, "ij,jk->ik", a[::-1], b[:, 1:][:, ::-2])


def test_shape_mismatch_raises_value_error():
    a = np.ones((3, 4))
    with pytest.raises(ValueError, match=r"label 'j' has size 5 in operand 1 \(axis 0\)"):
        run2("ij,jk->ik", a, np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"operand 0 for collapsing index 'i' don't match"):
        run1("iij->j", np.ones((2, 3, 4), dtype=np.int64))


def test_chain_order_chosen_from_shapes():
    rng = np.random.default_rng(3)
    eq = "ij,jk,kl->il"
    wide = [(200, 10), (10, 200), (200, 10)]
    narrow = [(10, 200), (200, 10), (10, 200)]
    # the candidates are planned once; the cheaper order is picked from the sizes at run time
    assert ne.chosen_order(eq, *wide) == [(1, 2), (0, 1)]
    assert ne.chosen_order(eq, *narrow) == [(0, 1), (0, 1)]
    for shapes in (wide, narrow, [(2, 3), (3, 4), (4, 2)]):
        check(run3, eq, *(make_operand(s, np.float64, "C", rng) for s in shapes))


def test_batched_products_one_blas_call_per_item():
    # batch labels first in the result: one matrix product per batch item (BLAS); broadcast
    # and strided batches, an empty batch, items below the BLAS threshold (the kernel), and a
    # batched intermediate in a chain
    rng = np.random.default_rng(11)
    for (sa, la), (sb, lb) in [
            (((5, 20, 30), "C"), ((5, 30, 25), "C")),
            (((1, 20, 30), "C"), ((5, 30, 25), "negative")),
            (((5, 20, 30), "sliced"), ((1, 30, 25), "F")),
            (((0, 20, 30), "C"), ((0, 30, 25), "C")),
            (((300, 4, 4), "C"), ((300, 4, 4), "C"))]:
        check(run2, "bij,bjk->bik", make_operand(sa, np.float64, la, rng),
              make_operand(sb, np.float64, lb, rng))
    for shapes in ([(4, 20, 30), (4, 30, 25), (4, 25, 20)],
                   [(300, 2, 4), (300, 4, 2), (300, 2, 2)]):
        check(run3, "bij,bjk,bkl->bil", *(make_operand(s, np.float64, "C", rng) for s in shapes))


def test_integer_matrix_products_run_the_gemm_kernel():
    # no BLAS for integers: matrix-product steps (batched or not) run gemm_serial, exactly
    assert ne._gemm_function(np.int64) is ne._gemm_kernel
    rng = np.random.default_rng(13)
    for (sa, la), (sb, lb) in [(((60, 50), "C"), ((50, 70), "C")),
                               (((60, 50), "sliced"), ((50, 70), "negative")),
                               (((1, 300), "F"), ((300, 40), "C"))]:
        check(run2, "ij,jk->ik", make_operand(sa, np.int64, la, rng),
              make_operand(sb, np.int64, lb, rng))
    check(run2, "bij,bjk->bik", make_operand((5, 20, 30), np.int64, "C", rng),
          make_operand((1, 30, 25), np.int64, "C", rng))


@full_only
def test_full_batched_product_orders():
    rng = np.random.default_rng(12)
    a = make_operand((3, 20, 30), np.float64, "C", rng)
    b = make_operand((3, 30, 25), np.float64, "F", rng)
    check(run2, "bij,bjk->bki", a, b)  # the operands swapped: C-ordered over (b, k, i)
    check(run2, "bij,bjk->ibk", a, b)  # the batch label not first: the kernel
    check(run2, "...ij,...jk->...ik", make_operand((2, 3, 20, 30), np.float64, "C", rng),
          make_operand((2, 3, 30, 25), np.float64, "sliced", rng))  # two batch labels


def test_repeated_labels_int64_and_bool_trace():
    rng = np.random.default_rng(4)
    for n, m in ((3, 4), (40, 30)):
        check(run1, "iij->j", make_operand((n, n, m), np.int64, "C", rng))
    for n in (5, 80):
        check(run1, "ii", make_operand((n, n), np.bool_, "C", rng))  # a bool scalar


def test_ellipsis_broadcasting():
    rng = np.random.default_rng(5)
    eq = "...ij,...jk->...ik"
    for sa, sb in [((2, 1, 3, 4), (5, 4, 6)), ((3, 20, 30), (30, 40)), ((2, 2), (2, 3))]:
        check(run2, eq, make_operand(sa, np.float64, "C", rng),
              make_operand(sb, np.float64, "C", rng))


def test_implicit_outer_product_mixed_int64_bool():
    rng = np.random.default_rng(6)
    for n, m in ((3, 4), (120, 100)):
        a = make_operand((n,), np.int64, "C", rng)
        b = make_operand((m,), np.bool_, "C", rng)
        got = run2("j,i", a, b)  # implicit: output 'ij', int64
        assert_matches(got, np.einsum("j,i", a, b))


@numba.njit
def _into_out(a, b, out):
    return contract.einsum("ij,jk->ik", a, b, out=out)


@numba.njit
def _dots(x, y):
    s = 0.0
    for k in range(x.shape[0]):
        s += contract.einsum("i,i->", x[k], y[k], dtype=np.float64)
    return s


def test_out_and_dtype_keywords_and_scalar_accumulation():
    rng = np.random.default_rng(7)
    for m, k, n in ((3, 4, 5), (50, 60, 70)):
        a = make_operand((m, k), np.float64, "C", rng)
        b = make_operand((k, n), np.float64, "C", rng)
        out = np.zeros((n, m)).T  # F-ordered
        res = _into_out(a, b, out)
        assert res is out or np.shares_memory(res, out)
        assert_matches(out, a @ b)
    with pytest.raises(ValueError, match="out: axis 1 has size 4 but the result has size 5"):
        _into_out(np.ones((3, 4)), np.ones((4, 5)), np.zeros((3, 4)))
    x = make_operand((6, 3000), np.float32, "C", rng)
    y = make_operand((6, 3000), np.float32, "C", rng)
    want = sum(np.einsum("i,i->", x[k], y[k], dtype=np.float64) for k in range(6))
    np.testing.assert_allclose(_dots(x, y), want, rtol=1e-10)


@numba.njit
def _eight(a, b, c, d, e, f, g, h):
    return contract.einsum("ab,bc,cd,de,ef,fg,gh,hi->ai", a, b, c, d, e, f, g, h)


@full_only
def test_full_eight_operands():
    rng = np.random.default_rng(8)
    for n in (2, 12):
        ops = [make_operand((n, n), np.float64, "C", rng) for _ in range(8)]
        assert_matches(_eight(*ops), np.einsum("ab,bc,cd,de,ef,fg,gh,hi->ai", *ops,
                                               optimize=True))


@numba.njit(parallel=True)
def _batched(a, b):
    out = np.empty((a.shape[0], a.shape[1], b.shape[2]))
    for t in prange(a.shape[0]):
        out[t] = contract.einsum("ij,jk->ik", a[t], b[t])
    return out


def test_inside_prange():
    rng = np.random.default_rng(9)
    for n in (4, 40):
        a = make_operand((8, n, n), np.float64, "C", rng)
        b = make_operand((8, n, n), np.float64, "C", rng)
        assert_matches(_batched(a, b), np.einsum("tij,tjk->tik", a, b))


@numba.njit
def _temporaries(a, b):
    # operands that only the caller's temporaries hold, dropped right after each call; the
    # first result is kept past the allocations that follow
    first = contract.einsum("ij,jk->ik", a * 1.0, b + 0.0)
    second = contract.einsum("ij,jk->ik", a.copy(), b.copy())
    return first, second + 0.0, contract.einsum("ij,jk->ik", a, b)


def test_borrowed_operands_no_leak_no_alias():
    # the generated code reads its operands through views that hold no reference (_borrow):
    # every result must be a new array, and each call must free what it allocated
    from numba.core.runtime import _nrt_python as nrt

    def stats():
        return (nrt.memsys_get_stats_alloc(), nrt.memsys_get_stats_free(),
                nrt.memsys_get_stats_mi_alloc(), nrt.memsys_get_stats_mi_free())

    rng = np.random.default_rng(10)
    was_enabled = nrt.memsys_stats_enabled()
    nrt.memsys_enable_stats()
    try:
        for m, k, n in ((3, 4, 5), (60, 70, 50)):  # the tiny loop nest, then a BLAS step
            a = make_operand((m, k), np.float64, "C", rng)
            b = make_operand((k, n), np.float64, "C", rng)
            for got in _temporaries(a, b):
                assert_matches(got, a @ b)
                assert not (np.shares_memory(got, a) or np.shares_memory(got, b))
            del got
            # (a call that compiles keeps references to its arguments; so does a call through
            # numba.literally's retry, as run2's: hence a second call of a literal function)
            refs = sys.getrefcount(a), sys.getrefcount(b)
            before = stats()
            _temporaries(a, b)  # the results freed at once
            alloc, free, mi_alloc, mi_free = (x - y for x, y in zip(stats(), before))
            assert (alloc, mi_alloc) == (free, mi_free)
            assert (sys.getrefcount(a), sys.getrefcount(b)) == refs
    finally:
        if not was_enabled:
            nrt.memsys_disable_stats()


_CACHED = """
import sys
import numba, numpy as np
import contract

@numba.njit(cache=True)
def f(a, b):
    return contract.einsum("ij,jk->ik", a, b @ b.T)

a = np.arange(12.0).reshape(3, 4) / 7
b = np.arange(20.0).reshape(4, 5) / 3
np.save(sys.argv[1], f(a, b))
print(sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values()))
"""


def test_cache_true_second_process_loads(tmp_path):
    (tmp_path / "cached_user.py").write_text(_CACHED)
    # the project's own functions load from the cache the test run has filled; the user's
    # function (a new file) is compiled and saved by the first process, loaded by the second
    env = dict(os.environ)
    runs = []
    for k in range(2):
        proc = subprocess.run([sys.executable, str(tmp_path / "cached_user.py"),
                               str(tmp_path / f"r{k}.npy")], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout.split())
    assert runs[0] == ["0", "1"]  # compiled and saved
    assert runs[1] == ["1", "0"]  # loaded from the cache
    np.testing.assert_array_equal(np.load(tmp_path / "r0.npy"), np.load(tmp_path / "r1.npy"))
    a = np.arange(12.0).reshape(3, 4) / 7
    b = np.arange(20.0).reshape(4, 5) / 3
    np.testing.assert_allclose(np.load(tmp_path / "r0.npy"), a @ b @ b.T)


_NO_SCIPY = """
import sys
sys.modules["scipy"] = None  # as if SciPy were not installed: importing it fails
import numba
import numpy as np
import contract
from contract import numba_ext

@numba.njit
def product(a, b):
    return contract.einsum("ij,jk->ik", a, b)

a = np.arange(1200.0).reshape(30, 40) / 7
b = np.arange(800.0).reshape(40, 20) / 3  # 24,000 multiply-adds: a GEMM step
np.save(sys.argv[1], product(a, b))
print(numba_ext._HAVE_SCIPY, numba_ext._gemm_function().__name__)
"""


def test_gemm_step_without_scipy_runs_the_blocked_kernel(tmp_path):
    """Without SciPy (Numba's np.dot needs it) a GEMM step inside njit runs gemm_serial."""
    (tmp_path / "no_scipy.py").write_text(_NO_SCIPY)
    proc = subprocess.run([sys.executable, str(tmp_path / "no_scipy.py"), str(tmp_path / "r.npy")],
                          env=dict(os.environ), cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "_gemm_kernel"]
    assert ne._GEMM_MIN_WORK <= 30 * 40 * 20
    a = np.arange(1200.0).reshape(30, 40) / 7
    b = np.arange(800.0).reshape(40, 20) / 3
    np.testing.assert_allclose(np.load(tmp_path / "r.npy"), a @ b, rtol=1e-13)


def test_register_numpy_einsum():
    ne.register_numpy_einsum()
    ne.register_numpy_einsum()  # idempotent

    @numba.njit
    def col_sums(a):
        return np.einsum("ij->j", a)

    a = make_operand((5, 7), np.float64, "F", np.random.default_rng(10))
    assert_matches(col_sums(a), a.sum(0))


# ---- compile-time errors (no implementation is compiled for them)


@numba.njit
def _runtime_subscripts(s, a):
    return contract.einsum(s + "->", a)


def test_run_time_subscripts_are_a_compile_time_error():
    with pytest.raises(TypingError, match="compile-time string literal"):
        _runtime_subscripts("i", np.ones(3))


@pytest.mark.parametrize(("subscripts", "n_ops", "message"), [
    ("ij,jk->ikl", 2, "output subscript 'l' which never appeared"),
    ("ij,jk->ik", 1, "fewer operands"),
    ("ij->ij", 2, "more operands"),
    ("ijk->i", 1, "more subscripts"),
    ("ij->ii", 1, "output subscript 'i' multiple times"),
    ("i.j->", 1, "ellipsis"),
])
def test_equation_errors_at_compile_time(subscripts, n_ops, message):
    ops = [np.ones((2, 2))] * n_ops
    func = run1 if n_ops == 1 else run2
    with pytest.raises(TypingError, match=message):
        func(subscripts, *ops)


@numba.njit
def _bad_out(a, out):
    return contract.einsum("ij->i", a, out=out)


def test_out_casting_and_rank_are_compile_time_errors():
    with pytest.raises(TypingError, match="cannot cast the result from float64"):
        _bad_out(np.ones((2, 2)), np.zeros(2, dtype=np.float32))
    with pytest.raises(TypingError, match="out= has 2 dimensions"):
        _bad_out(np.ones((2, 2)), np.zeros((2, 2)))


# ---- the nopython layout twin


def test_kernel_dims_twin_matches_layout():
    from contract.layout import kernel_dims

    rng = np.random.default_rng(11)
    for _ in range(40):
        n_labels = int(rng.integers(1, 6))
        size = rng.integers(1, 5, size=n_labels).astype(np.int64)
        kind = rng.integers(0, 3, size=n_labels).astype(np.int8)
        rows = rng.integers(-6, 7, size=(3, n_labels)).astype(np.int64)
        rows[:, kind == 0] = 0
        rows[0, kind == 2] = 0
        out_labels = [lab for lab in range(n_labels) if kind[lab] == 1]
        red_labels = [lab for lab in range(n_labels) if kind[lab] == 2]
        dicts = [{lab: int(rows[r, lab]) for lab in range(n_labels) if kind[lab]}
                 for r in range(3)]
        dicts[0] = {lab: int(rows[0, lab]) for lab in out_labels}
        want = kernel_dims(out_labels, red_labels, dicts, dict(enumerate(size.tolist())))
        got = ne.kernel_dims_arrays.py_func(rows, size, kind)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert got[2:] == want[2:]


# the layout rule as layout.kernel_dims had it before it became kernel_dims_arrays (one
# implementation for Python and nopython callers): the oracle both must reproduce exactly
def _kernel_dims_before(out_labels, red_labels, rows, size_dict):

    def weight(lab: int) -> int:
        return sum(abs(row.get(lab, 0)) for row in rows)

    live_out = [lab for lab in out_labels if size_dict[lab] != 1]
    live_red = [lab for lab in red_labels if size_dict[lab] != 1]
    # The tight loop: smallest total stride; prefer a summed label on ties (local accumulator).
    candidates = [(weight(lab), 0, -size_dict[lab], lab) for lab in live_red]
    candidates += [(weight(lab), 1, -size_dict[lab], lab) for lab in live_out]
    if candidates:
        tight = min(candidates)[3]
        inner_out = tight in live_out
    else:
        tight, inner_out = None, False

    def ordered(labels: list[int]) -> list[int]:
        # outermost = largest stride, so the innermost loops walk the smallest strides
        return sorted(labels, key=lambda lab: -weight(lab))

    outer = ordered([lab for lab in live_out if lab != tight])
    middle = ordered([lab for lab in live_red if lab != tight])
    groups = [outer, middle, [tight] if tight is not None else []]

    def fold(group: list[int]) -> list[tuple[int, list[int]]]:
        dims: list[tuple[int, list[int]]] = []
        for lab in group:
            ext = size_dict[lab]
            st = [row.get(lab, 0) for row in rows]
            if dims:
                pext, pst = dims[-1]
                if all(p == s * ext for p, s in zip(pst, st)):
                    dims[-1] = (pext * ext, st)
                    continue
            dims.append((ext, st))
        return dims

    folded = [fold(g) for g in groups]
    # the tight dimension may also absorb the last middle dimension (both summed)
    if not inner_out and tight is not None and folded[1]:
        (mext, mst), (text, tst) = folded[1][-1], folded[2][0]
        if all(p == s * text for p, s in zip(mst, tst)):
            folded[1].pop()
            folded[2] = [(mext * text, tst)]
    # an output tight dimension also absorbs the outer dimensions that fold into it: the summed
    # (middle) loops then run outside them and each tight row is longer (``ijk->jk`` on a
    # C-ordered operand: 50 passes over one row of j*k, not j*i rows of k). With summed
    # dimensions the row is added to once per summed step, so it stays short enough for L1/L2.
    if inner_out and folded[0]:
        (text, tst) = folded[2][0]
        limit = layout.FOLD_ROW_MAX if folded[1] else None
        while folded[0]:
            pext, pst = folded[0][-1]
            if limit is not None and text * pext > limit:
                break
            if not all(p == s * text for p, s in zip(pst, tst)):
                break
            folded[0].pop()
            text *= pext
        folded[2] = [(text, tst)]
    if not folded[2]:
        folded[2] = [(1, [0] * len(rows))]
    dims = folded[0] + folded[1] + folded[2]
    extents = np.array([ext for ext, _ in dims], dtype=np.int64)
    strides = np.array([[st[k] for _, st in dims] for k in range(len(rows))], dtype=np.int64)
    strides = strides.reshape(len(rows), len(dims))
    return extents, strides, len(folded[0]), bool(inner_out)


@st.composite
def _layout_steps(draw):
    """A random step's labels, sizes and stride rows (output row first), with unsorted label
    ids, size-1 labels, zero and negative strides, folding (C-ordered, one order for all rows)
    and non-folding strides, ties, all-output and all-summed steps, and rows of FOLD_ROW_MAX
    elements and one more."""
    n = draw(st.integers(0, 6))
    ids = draw(st.permutations(range(10)))[:n]
    kinds = draw(st.lists(st.sampled_from([1, 2]), min_size=n, max_size=n))
    if n and draw(st.booleans()):
        kinds = [draw(st.sampled_from([1, 2]))] * n  # all output or all summed
    pool = draw(st.sampled_from([[1, 2, 3], [1, 2, 4, 16, 64, 65, 256, 1024, 4096, 4097]]))
    sizes = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    out = [lab for lab, k in zip(ids, kinds) if k == 1]
    red = [lab for lab, k in zip(ids, kinds) if k == 2]
    size = dict(zip(ids, sizes))
    shared = draw(st.permutations(ids)) if draw(st.booleans()) else None

    def row(labels):
        if shared is None:
            labels = draw(st.permutations(labels))
        else:
            labels = [lab for lab in shared if lab in labels]
        style = draw(st.sampled_from(["c", "c", "strided", "small", "random"]))
        strides, acc = {}, 1
        for lab in reversed(labels):
            if style in ("small", "random"):
                bound = 2 if style == "small" else 70
                strides[lab] = draw(st.integers(-bound, bound))
                continue
            sign = -1 if draw(st.integers(0, 4)) == 0 else 1
            zero = draw(st.integers(0, 5)) == 0
            strides[lab] = 0 if zero else sign * acc
            acc *= size[lab] * (draw(st.sampled_from([1, 1, 2])) if style == "strided" else 1)
        return strides

    rows = [row(out)]
    for _ in range(draw(st.integers(1, 3))):
        rows.append(row([lab for lab in ids if draw(st.integers(0, 3)) > 0]))
    return out, red, rows, size


def _same_layout(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[0].dtype == got[1].dtype == np.int64
    assert got[1].shape == (len(got[1]), len(got[0]))
    assert (int(got[2]), bool(got[3])) == (want[2], want[3])


@settings(max_examples=400, deadline=None)
@given(_layout_steps())
# an output row of exactly FOLD_ROW_MAX elements folds, one of more does not
@example(([3, 5], [1], [{3: 64, 5: 1}, {1: 4096, 3: 64, 5: 1}],
          {3: 64, 5: 64, 1: 3}))
@example(([3, 5], [1], [{3: 64, 5: 1}, {1: 4160, 3: 64, 5: 1}],
          {3: 65, 5: 64, 1: 3}))
@example(([3, 5], [1], [{3: 4096, 5: 1}, {1: 4096, 3: 4096, 5: 1}],
          {3: 1, 5: 4096, 1: 3}))
@example(([3, 5], [1], [{3: 4096, 5: 1}, {1: 8192, 3: 4096, 5: 1}],
          {3: 2, 5: 4096, 1: 3}))
@example(([3, 5], [1], [{3: 1, 5: 1}, {1: 4097, 3: 1, 5: 1}],
          {3: 4097, 5: 1, 1: 3}))
def test_layout_rule_python_jit_and_before_agree(step):
    """layout.kernel_dims, kernel_dims_arrays in Python and the njit backend's compiled copy
    all give the layout the dict-based rule gave."""
    out, red, rows, size = step
    want = _kernel_dims_before(out, red, rows, size)
    _same_layout(layout.kernel_dims(out, red, rows, size), want)
    labels = [*out, *red]
    arrays = (
        np.array([[r.get(lab, 0) for lab in labels] for r in rows],
                 dtype=np.int64).reshape(len(rows), len(labels)),
        np.array([size[lab] for lab in labels], dtype=np.int64),
        np.array([1] * len(out) + [2] * len(red), dtype=np.int8),
        np.array(labels, dtype=np.int64),
    )
    _same_layout(layout.kernel_dims_arrays(*arrays), want)
    _same_layout(ne.kernel_dims_arrays(*arrays), want)
    # the njit backend's convention: one column per label id (kind 0 where the step lacks it),
    # ties broken by the column; the same layout as labels given in increasing order
    n_ids = max(labels, default=-1) + 2
    grid = np.zeros((len(rows), n_ids), dtype=np.int64)
    grid[:, labels] = arrays[0]
    sizes = np.ones(n_ids, dtype=np.int64)
    sizes[labels] = arrays[1]
    kind = np.zeros(n_ids, dtype=np.int8)
    kind[labels] = arrays[2]
    want = _kernel_dims_before(sorted(out), sorted(red), rows, size)
    _same_layout(layout.kernel_dims_arrays(grid, sizes, kind), want)
    _same_layout(ne.kernel_dims_arrays(grid, sizes, kind), want)


# ---- long variants


@full_only
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.int32, np.bool_])
def test_full_dtypes(dtype):
    rng = np.random.default_rng(12)
    for shapes in [((4, 3), (3, 5)), ((40, 30), (30, 50))]:
        check(run2, "ij,jk->ik", *(make_operand(s, dtype, "C", rng) for s in shapes))
    check(run2, "...ij,...jk->...ik", make_operand((2, 1, 30, 40), dtype, "C", rng),
          make_operand((5, 40, 6), dtype, "C", rng))


@full_only
def test_full_fortran_and_zero_d():
    rng = np.random.default_rng(13)
    check(run2, "ij,jk->ik", make_operand((40, 30), np.float64, "F", rng),
          make_operand((30, 50), np.float64, "F", rng))
    check(run2, ",ij->ij", np.array(2.5), make_operand((3, 4), np.float64, "C", rng))
    check(run1, "ii->i", make_operand((70, 70), np.float64, "sliced", rng))


@full_only
def test_full_four_operands_and_no_optimize():
    rng = np.random.default_rng(14)
    for n in (3, 20):
        ops = [make_operand((n, n), np.float64, "C", rng) for _ in range(4)]
        check(run4, "ab,bc,cd,da->", *ops)

    @numba.njit
    def plain(a, b, c):
        return contract.einsum("ij,jk,kl->il", a, b, c, optimize=False)

    ops = [make_operand((20, 20), np.float64, "C", rng) for _ in range(3)]
    assert_matches(plain(*ops), np.einsum("ij,jk,kl->il", *ops))


def test_compare_njit_family_runs_and_checks_results(capsys, tmp_path, monkeypatch):
    """``python -m contract compare --njit`` (its tiny case): checked against numpy, timed."""
    from contract.bench import compare_njit

    monkeypatch.setattr(compare_njit, "TINY_CALLS", 10)
    path = tmp_path / "njit.json"
    code = compare_njit.main(["--filter", "^njit_tiny", "--repeat", "1", "--min-sample", "0",
                              "--json", str(path)])
    assert code == 0
    assert "njit_tiny_4x4" in capsys.readouterr().out
    import json

    (record,) = json.loads(path.read_text())["cases"]
    assert not record["wrong"] and record["njit"] > 0 and record["baseline_time"] > 0
