"""The Numba kernels: serial == parallel exactly, thread-count independence, few specializations."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from conftest import tuned
from hypothesis import given
from hypothesis import strategies as st

import contract
from contract.executor import _run_kernel
from contract.kernels import (
    sum_products_parallel,
    sum_products_serial,
    table_products_parallel,
    table_products_serial,
)
from contract.kernels.sum_products import KERNELS
from contract.kernels.table_products import TABLE_KERNELS
from contract.layout import buffer_geometry, flat_view, kernel_dims, labelled_view, tabulate


def _kernel_args(subscripts, arrays, table_max=0):
    """Build kernel arguments for a single fused step, as the executor does (with
    ``table_max``, for the table kernel: a tight loop shorter than 64 is tabulated)."""
    from contract.parser import parse

    eq = parse(subscripts, [a.shape for a in arrays])
    size = eq.size_dict
    inputs = [labelled_view(a, t, size) for a, t in zip(arrays, eq.terms)]
    summed = tuple(sorted({lab for _, labs in inputs for lab in labs} - set(eq.output)))
    out = np.zeros(tuple(size[lab] for lab in eq.output), dtype=arrays[0].dtype)
    rows = [{lab: st // out.itemsize for lab, st in zip(eq.output, out.strides)}]
    bufs, offs = [], []
    for view, labels in inputs:
        buf = flat_view(view)
        off, est = buffer_geometry(view.shape, view.strides, view.itemsize)
        buf.flags.writeable = False
        rows.append(dict(zip(labels, est)))
        bufs.append(buf)
        offs.append(off)
    extents, strides, n_outer, inner_out = kernel_dims(eq.output, summed, rows, size)
    if table_max:
        extents, strides, n_outer, inner_out, table = tabulate(
            extents, strides, n_outer, inner_out, 64, table_max)
        assert table.shape[1] > 0, "the test case should tabulate"
    out_buf, out_off = flat_view(out), 0
    args = (out_buf, out_off, tuple(bufs), np.array(offs, dtype=np.int64), extents, strides,
            n_outer, inner_out)
    return out, (*args, table, out.dtype.type(0)) if table_max else (*args, out.dtype.type(0))


CASES = [
    ("ij,jk->ik", [(37, 41), (41, 29)]),
    ("ij,ij->i", [(53, 97), (53, 97)]),
    ("ijk,ikl->jl", [(7, 11, 13), (7, 13, 5)]),
    ("ij,jk,kl->il", [(9, 10), (10, 11), (11, 12)]),
    ("i,j->ij", [(61,), (67,)]),
    ("ij,ij,ij->ij", [(31, 43)] * 3),  # three unit-stride moving operands, into the output
    ("ij,ij,ij->i", [(31, 43)] * 3),  # ... and summed
    ("ij,ji,ij->j", [(31, 43), (43, 31), (31, 43)]),  # three moving, one not unit-stride
]


@pytest.mark.parametrize("subscripts,shapes", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128, np.int64])
def test_serial_equals_parallel_exactly(subscripts, shapes, dtype):
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    out_s, args_s = _kernel_args(subscripts, arrays)
    sum_products_serial(*args_s)
    out_p, args_p = _kernel_args(subscripts, arrays)
    sum_products_parallel(*args_p, 8 * numba.get_num_threads(), 3)
    np.testing.assert_array_equal(out_s, out_p)
    np.testing.assert_allclose(out_s, np.einsum(subscripts, *arrays), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("subscripts,shapes", CASES)
def test_result_independent_of_thread_and_chunk_count(subscripts, shapes):
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(s) for s in shapes]
    results = []
    for n_chunks, n_blocks in ((1, 1), (2, 1), (3, 2), (7, 5), (64, 1), (1, 64)):
        out, args = _kernel_args(subscripts, arrays)
        sum_products_parallel(*args, n_chunks, n_blocks)
        results.append(out)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        out, args = _kernel_args(subscripts, arrays)
        sum_products_parallel(*args, 8, 2)
        results.append(out)
    finally:
        numba.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(results[0], r)


# many small axes in different orders: the tight loop runs over a table of offsets
TABLE_CASES = [
    ("abcdef,fedcba->abc", [(2, 3, 2, 2, 3, 2), (2, 3, 2, 2, 3, 2)]),  # summed block
    ("abcdef,fdbeca->abcdef", [(2,) * 6, (2,) * 6]),  # output block, nothing summed
    ("abcdeg,gfedcb->fabc", [(2, 3, 2, 2, 3, 2), (2, 4, 3, 2, 2, 3)]),  # output block, summed
    ("abcd->dcba", [(3, 2, 4, 2)]),  # one moving operand
    ("abcd,dcb,a->", [(3, 2, 4, 2), (2, 4, 2), (3,)]),  # three, one hoisted
    ("abc,cba,bca,acb->ab", [(2, 3, 4), (4, 3, 2), (3, 4, 2), (2, 4, 3)]),  # four moving
    ("abc,cba,bca,acb->abc", [(2, 3, 4), (4, 3, 2), (3, 4, 2), (2, 4, 3)]),
    ("abcd,->dcba", [(3, 2, 4, 2), ()]),  # a constant factor only
]


@pytest.mark.parametrize("subscripts,shapes", TABLE_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.int64])
@pytest.mark.parametrize("table_max", [8, 64])
def test_table_kernel(subscripts, shapes, dtype, table_max):
    rng = np.random.default_rng(11)
    arrays = [rng.integers(-3, 4, s).astype(dtype) for s in shapes]
    try:
        out_s, args_s = _kernel_args(subscripts, arrays, table_max)
    except AssertionError:  # this block size fits no block of two dimensions or more
        assert table_max == 8
        return
    table_products_serial(*args_s)
    np.testing.assert_array_equal(out_s, np.einsum(subscripts, *arrays))
    for n_chunks, n_blocks in ((1, 1), (3, 2), (64, 7)):
        out_p, args_p = _kernel_args(subscripts, arrays, table_max)
        table_products_parallel(*args_p, n_chunks, n_blocks)
        np.testing.assert_array_equal(out_s, out_p)


def test_tabulate_blocks():
    """Which dimensions a table takes, and the offsets it lists."""
    extents = np.array([2, 3, 2, 2], dtype=np.int64)  # outer, outer, middle, tight (summed)
    strides = np.array([[3, 1, 0, 0], [1, 12, 2, 6], [6, 2, 1, 24]], dtype=np.int64)
    # four summed steps per output element: too few, so the block takes the output dimensions
    ext, st, n_outer, inner_out, table = tabulate(extents, strides, 2, False, 16, 64)
    assert (ext.tolist(), n_outer, inner_out) == ([2, 2, 6], 0, True)
    np.testing.assert_array_equal(table, [[0, 1, 2, 3, 4, 5], [0, 12, 24, 1, 13, 25],
                                          [0, 2, 4, 6, 8, 10]])
    np.testing.assert_array_equal(st, [[0, 0, 1], [2, 6, 1], [1, 24, 1]])
    # enough summed steps: the block takes them, the output dimensions stay outer
    ext, st, n_outer, inner_out, table = tabulate(extents, strides, 2, False, 4, 64)
    assert (ext.tolist(), n_outer, inner_out) == ([2, 3, 4], 2, False)
    np.testing.assert_array_equal(table, [[0, 0, 0, 0], [0, 6, 2, 8], [0, 24, 1, 25]])
    assert st[:, -1].tolist() == [0, 1, 1]
    # a long tight loop, or a block of one dimension: unchanged, no table
    for tight_max, table_max in ((2, 64), (16, 3), (4, 3)):
        ext, st, n_outer, inner_out, table = tabulate(extents, strides, 2, False, tight_max,
                                                      table_max)
        assert ext is extents and table.shape == (3, 0)


def test_kernel_reads_negative_and_zero_strides():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((20, 30))[::-1, ::-2]
    b = np.broadcast_to(rng.standard_normal(15), (40, 15))
    out = np.empty((20, 40))
    _run_kernel([(a, (1, 2)), (b, (3, 2))], out, (1, 3), (2,))
    np.testing.assert_allclose(out, a @ b.T)


def test_specializations_are_bounded():
    """One compile per (dtype, operand count): never per equation, shape or layout."""
    rng = np.random.default_rng(8)
    more = [("ij,jk->ki", [(5, 6), (6, 7)]), ("ab,bc->ac", [(3, 3)] * 2)]
    for subscripts, shapes in CASES + more:
        for layout in ("C", "F"):
            arrays = [np.asarray(rng.integers(0, 5, s), order=layout) for s in shapes]
            contract.einsum(subscripts, *arrays, optimize=False)
            contract.einsum(subscripts, *arrays)
    int_sigs = [sig for k in KERNELS for sig in k.signatures if "int64" in str(sig[0])]
    # int64 with 1..6 operands (other tests may add some), serial and parallel: at most 12,
    # although the loop above ran 7 equations x 2 layouts x 2 optimize settings
    assert len(int_sigs) <= 12, int_sigs
    for kernel in KERNELS + TABLE_KERNELS:
        # every signature differs only in dtype and operand count
        keys = {(str(sig[0].dtype), len(sig[2])) for sig in kernel.signatures}
        assert len(keys) == len(kernel.signatures), kernel.signatures


SPLIT_CASES = [
    ("ij->", [(512, 512)], True),
    ("ijk->k", [(64, 64, 40)], True),
    ("ij,ij->", [(400, 400), (400, 400)], True),
    ("ijk,ijk->j", [(80, 3, 700), (80, 3, 700)], True),
    ("ij->", [(263, 509)], False),  # both sizes prime: nothing to cut
]


@pytest.mark.parametrize("subscripts,shapes,splits", SPLIT_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128, np.int64])
def test_split_reductions_are_thread_count_independent(subscripts, shapes, splits, dtype):
    rng = np.random.default_rng(9)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    if dtype == np.complex128:
        arrays = [a + 1j * rng.standard_normal(a.shape) for a in arrays]
    expected = np.einsum(subscripts, *arrays)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            results.append(contract.contract(subscripts, *arrays, use_blas=False))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(results[0], expected, rtol=tol, atol=tol * max(1, expected.size))
    # the layout really cut a summed label (or, for prime sizes, really did not)
    assert (_split_parts(subscripts, arrays) > 1) == splits


def _split_parts(subscripts, arrays):
    """The ``parts`` of the kernel call the executor builds for a one-step equation."""
    from contract.executor import _kernel_call
    from contract.parser import parse

    eq = parse(subscripts, [a.shape for a in arrays])
    size = eq.size_dict
    inputs = [labelled_view(a, t, size) for a, t in zip(arrays, eq.terms)]
    summed = tuple(lab for lab in dict.fromkeys(sum(eq.terms, ())) if lab not in eq.output)
    out = np.empty(tuple(size[lab] for lab in eq.output), dtype=arrays[0].dtype)
    call = _kernel_call(
        eq.output, summed, (out.shape, out.strides, out.itemsize),
        tuple((labels, view.shape, view.strides) for view, labels in inputs))
    return call.parts


def test_split_reduction_into_strided_out():
    rng = np.random.default_rng(10)
    a = rng.standard_normal((64, 64, 80))[:, ::-1, ::-2]
    assert _split_parts("ijk->k", [a]) > 1
    out = np.zeros((3, 40))[1, ::-1]  # a reversed row of a bigger array
    assert contract.contract("ijk->k", a, out=out, use_blas=False) is out
    np.testing.assert_allclose(out, np.einsum("ijk->k", a))
    scalar = np.zeros(())
    contract.contract("ijk->", a, out=scalar, use_blas=False)
    np.testing.assert_allclose(scalar, a.sum())


@st.composite
def _many_small_axes(draw):
    """Two or three operands of 4-9 axes of extent 1-3 each, in different orders (nothing
    folds), with shared, summed and repeated labels, dtypes and layouts drawn too."""
    n_labels = draw(st.integers(5, 9))
    labels = "abcdefghi"[:n_labels]
    sizes = {lab: draw(st.integers(1, 3)) for lab in labels}
    terms = []
    for _ in range(draw(st.integers(2, 3))):
        term = draw(st.permutations(labels))[: draw(st.integers(4, n_labels))]
        if draw(st.booleans()):  # a repeated label: a diagonal read
            term = [*term, term[0]]
        terms.append("".join(term))
    used = sorted(set("".join(terms)))
    output = "".join(draw(st.permutations(used))[: draw(st.integers(0, len(used)))])
    return f"{','.join(terms)}->{output}", [tuple(sizes[c] for c in t) for t in terms]


@given(case=_many_small_axes(), dtype=st.sampled_from([np.float64, np.complex128, np.int64]),
       layout=st.sampled_from(["C", "F", "reversed"]), seed=st.integers(0, 2**16))
def test_many_small_axes_match_numpy(case, dtype, layout, seed):
    """Steps of many small axes (the table kernel's steps) give numpy's answer."""
    subscripts, shapes = case
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(-3, 4, s).astype(dtype) for s in shapes]
    if layout == "F":
        arrays = [np.asfortranarray(a) for a in arrays]
    elif layout == "reversed":
        arrays = [a[(slice(None, None, -1),) * a.ndim] for a in arrays]
    expected = np.einsum(subscripts, *arrays)
    with tuned(table_min_work=0):  # tabulate these small steps too
        for optimize in (False, True):
            # use_blas=False: tiny calls would otherwise run in numpy's own C loop
            result = contract.contract(subscripts, *arrays, optimize=optimize, use_blas=False)
            np.testing.assert_array_equal(result, expected)


def test_many_small_axes_run_the_table_kernel():
    """Such a step is tabulated (so the property above covers the table kernel), and its
    result is numpy's in the strided kernel too."""
    from contract.executor import _kernel_call
    from contract.parser import parse

    rng = np.random.default_rng(12)
    arrays = [rng.standard_normal((2,) * 9), rng.standard_normal((2,) * 6)]
    subscripts = "abcdefghi,ihgfed->abcde"
    eq = parse(subscripts, [a.shape for a in arrays])
    out = np.empty(tuple(eq.size_dict[lab] for lab in eq.output))
    summed = tuple(lab for lab in eq.size_dict if lab not in eq.output)
    geometry = ((out.shape, out.strides, out.itemsize),
                tuple((t, a.shape, a.strides) for t, a in zip(eq.terms, arrays)))
    assert _kernel_call(eq.output, summed, *geometry).table.shape[1] == 0  # too little work
    with tuned(table_min_work=0) as tuning:
        assert _kernel_call(eq.output, summed, *geometry, tuning).table.shape[1] > 1
        run = contract.contract(subscripts, *arrays, use_blas=False)
    expected = np.einsum(subscripts, *arrays)
    with tuned(table_tight_max=0):  # no tables: the strided kernel
        strided = contract.contract(subscripts, *arrays, use_blas=False)
    np.testing.assert_allclose(run, expected)
    np.testing.assert_allclose(strided, expected)
