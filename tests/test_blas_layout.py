"""The BLAS step's GETT-style layout: label groups folded as views, extra batch axes, transposes.

The ``blas_everywhere`` fixture routes every GEMM-shaped float step to BLAS and lets any
free-label run become extra batch axes, so small generated cases reach every branch.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from conftest import assert_matches, tuned
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contract
from contract import executor
from contract._tuning import DEFAULT


@pytest.fixture
def blas_everywhere():
    with tuned(blas_min_flops=0, blas_min_dot=0, min_split_work=1):
        yield


def _strided(shape, dtype, how, rng):
    """An operand of ``shape`` whose memory order is ``how``: a permutation of its axes
    (outermost first), optionally with every axis stepping by 2 or a reversed axis."""
    order, step, flip = how
    base_shape = [shape[ax] * step for ax in order]
    data = rng.standard_normal(base_shape)
    if np.dtype(dtype).kind == "c":
        data = data + 1j * rng.standard_normal(base_shape)
    data = data.astype(dtype)[tuple(slice(None, None, step) for _ in order)]
    view = data.transpose(np.argsort(order))
    if flip and view.ndim:
        view = view[::-1]
    return view


@st.composite
def gemm_pairs(draw):
    """(subscripts, shapes, layouts) of a GEMM-shaped pair: batch, m, n and k labels."""
    letters = iter("abcdefghij")
    groups = {g: [next(letters) for _ in range(draw(st.integers(lo, 2)))]
              for g, lo in (("batch", 0), ("m", 0), ("n", 0), ("k", 1))}
    size = {lab: draw(st.integers(1, 4)) for g in groups.values() for lab in g}
    size[groups["k"][0]] = draw(st.integers(2, 4))  # something to sum over
    a_labels = draw(st.permutations(groups["batch"] + groups["m"] + groups["k"]))
    b_labels = draw(st.permutations(groups["batch"] + groups["k"] + groups["n"]))
    out = draw(st.permutations(groups["batch"] + groups["m"] + groups["n"]))
    layouts = []
    for labels in (a_labels, b_labels):
        order = draw(st.permutations(range(len(labels))))
        layouts.append((list(order), draw(st.sampled_from([1, 1, 2])), draw(st.booleans())))
    subscripts = f"{''.join(a_labels)},{''.join(b_labels)}->{''.join(out)}"
    shapes = [tuple(size[lab] for lab in a_labels), tuple(size[lab] for lab in b_labels)]
    return subscripts, shapes, layouts


@given(case=gemm_pairs(), dtype=st.sampled_from([np.float64, np.float32, np.complex128]),
       seed=st.integers(0, 2**16), with_out=st.booleans())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_blas_step_matches_numpy_for_any_layout(blas_everywhere, case, dtype, seed, with_out):
    subscripts, shapes, layouts = case
    rng = np.random.default_rng(seed)
    ops = [_strided(s, dtype, how, rng) for s, how in zip(shapes, layouts)]
    expected = np.einsum(subscripts, *ops)
    if with_out:
        out = np.zeros(expected.shape, dtype=dtype, order="F")
        assert contract.einsum(subscripts, *ops, out=out) is out
        assert_matches(out, expected)
    else:
        assert_matches(contract.einsum(subscripts, *ops), expected)


@pytest.mark.parametrize("subscripts", ["ab,bc->ac", "ab,cb->ca", "xab,xcb->cxa", "abcd,dbef->aecf",
                                        "ba,b->a", "aebd,ce->dcba"])
def test_generated_kinds_reach_blas(blas_everywhere, subscripts):
    shapes = [(2,) * len(term) for term in subscripts.split("->")[0].split(",")]
    _, info = contract.contract_path(subscripts, *shapes, shapes=True)
    assert info.methods == ["blas"]


def test_transposed_tccg_contraction_copies_no_operand():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((32, 64, 32, 32))
    b = rng.standard_normal((32, 64))
    expected = np.einsum("aebd,ce->dcba", a, b, optimize=True)
    contract.einsum("aebd,ce->dcba", a, b)  # plan and layout cached
    tracemalloc.start()
    try:
        result = contract.einsum("aebd,ce->dcba", a, b)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_matches(result, expected)
    # only the result is allocated (a copy of the 4 MiB operand would show up here)
    assert peak < result.nbytes + (1 << 20), peak


def test_grouping_splits_free_labels_into_batch_axes():
    # aebd,ce: 'a' does not fold with b and d (e sits between them), so it becomes a batch axis
    a_shape, b_shape = (32, 64, 32, 32), (32, 64)
    a_strides = tuple(8 * s for s in (64 * 32 * 32, 32 * 32, 32, 1))
    labels_a, labels_b = tuple(map(ord, "aebd")), tuple(map(ord, "ce"))
    out = tuple(map(ord, "dcba"))
    grouping = executor._blas_grouping(labels_a, a_shape, a_strides, labels_b, b_shape,
                                       (8 * 64, 8), out, 8, DEFAULT)
    _, a_stack, _, b_stack, labels, stack = grouping
    assert a_stack == (32, 1024, 64) and b_stack == (1, 64, 32)
    assert labels == (ord("a"), (ord("b"), ord("d")), (ord("c"),)) and stack == (32, 1024, 32)


def test_small_products_are_not_split():
    a_shape, b_shape = (4, 8, 4, 4), (4, 8)
    a_strides = tuple(8 * s for s in (8 * 4 * 4, 4 * 4, 4, 1))
    grouping = executor._blas_grouping(tuple(map(ord, "aebd")), a_shape, a_strides,
                                       tuple(map(ord, "ce")), b_shape, (64, 8),
                                       tuple(map(ord, "dcba")), 8, DEFAULT)
    assert grouping[1] == (64, 8)  # one matrix product on a copied operand


def test_stride_zero_and_size_one_labels():
    rng = np.random.default_rng(3)
    row = rng.standard_normal((1, 300))
    a = np.broadcast_to(row, (200, 300))  # stride 0 along i
    b = rng.standard_normal((300, 1, 250))
    assert_matches(contract.einsum("ij,jxk->ixk", a, b), np.einsum("ij,jxk->ixk", a, b))
    c = rng.standard_normal((1, 200, 300))
    assert_matches(contract.einsum("xij,jyk->kiyx", c, b),
                   np.einsum("xij,jyk->kiyx", c, b))


def test_many_thin_calls_give_way_to_one_copy():
    # dega,gfbc->abcdef: d and e do not fold with a (g sits between them); one BLAS call per
    # (d, e) would be 32 thin calls, so the small operand is copied and one call does it all
    size = dict(a=8, b=4, c=4, d=8, e=4, f=4, g=8)
    rng = np.random.default_rng(5)
    a = rng.standard_normal(tuple(size[c] for c in "dega"))
    b = rng.standard_normal(tuple(size[c] for c in "gfbc"))
    grouping = executor._blas_grouping(tuple(map(ord, "dega")), a.shape, a.strides,
                                       tuple(map(ord, "gfbc")), b.shape, b.strides,
                                       tuple(map(ord, "abcdef")), 8, DEFAULT)
    _, a_stack, _, b_stack, _, stack = grouping
    assert a_stack == (8 * 4 * 8, 8) and b_stack == (8, 64) and stack == (256, 64)
    with tuned(blas_min_flops=0):
        assert_matches(contract.einsum("dega,gfbc->abcdef", a, b),
                       np.einsum("dega,gfbc->abcdef", a, b))


def _tccg_pair(size, rng):
    a = rng.standard_normal(tuple(size[c] for c in "abcde"))
    b = rng.standard_normal(tuple(size[c] for c in "efbad"))
    grouping = executor._blas_grouping(tuple(map(ord, "abcde")), a.shape, a.strides,
                                       tuple(map(ord, "efbad")), b.shape, b.strides,
                                       tuple(map(ord, "cf")), 8, DEFAULT)
    copied, _ = executor._blas_cost(tuple(map(ord, "abcde")), a.shape, a.strides,
                                    tuple(map(ord, "efbad")), b.shape, b.strides,
                                    tuple(map(ord, "cf")), 8, DEFAULT)
    return a, b, grouping, copied


def test_summed_labels_become_batch_axes_instead_of_a_copy():
    # abcde,efbad->cf: the summed a,b,d,e fold in neither operand (c sits between b and d in the
    # first, f between e and b in the second). The first is read in place as a stack over (a, b)
    # of c x (d, e) matrices, only the second is copied, and the partial products are summed
    size = dict(a=4, b=4, c=16, d=32, e=16, f=16)
    a, b, grouping, copied = _tccg_pair(size, np.random.default_rng(11))
    a_axes, a_stack, _, b_stack, labels, stack = grouping
    assert a_axes == (0, 1, 2, 3, 4) and a_stack == (4, 4, 16, 512)
    assert b_stack == (4, 4, 512, 16) and stack == (4, 4, 16, 16)
    assert labels == (ord("a"), ord("b"), (ord("c"),), (ord("f"),))
    assert copied == b.size  # not a.size + b.size
    expected = np.einsum("abcde,efbad->cf", a, b)
    assert_matches(contract.einsum("abcde,efbad->cf", a, b), expected)
    out = np.zeros((16, 16), order="F")
    assert contract.einsum("abcde,efbad->cf", a, b, out=out) is out
    assert_matches(out, expected)
    assert_matches(contract.einsum("abcde,efbad->fc", a, b), expected.T)


def test_summed_labels_stay_in_the_matrices_for_thin_calls():
    # the same contraction on extents of 4: each call would do 256 multiply-adds, below
    # min_split_work, so both operands are copied into one product
    size = dict(a=4, b=4, c=4, d=4, e=4, f=4)
    a, b, grouping, copied = _tccg_pair(size, np.random.default_rng(12))
    assert grouping[1] == (4, 256) and copied == a.size + b.size
    assert_matches(contract.einsum("abcde,efbad->cf", a, b),
                   np.einsum("abcde,efbad->cf", a, b))
