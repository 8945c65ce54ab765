"""Pre-reduction: labels summed in one operand only are summed out of it before any pair step."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DTYPES, assert_matches, make_operand
from hypothesis import given
from hypothesis import strategies as st

import contract

SIZES = {"i": 5, "j": 4, "k": 3, "l": 2, "p": 3}


def _shapes(subscripts, sizes=SIZES):
    return [tuple(sizes[c] for c in t) for t in subscripts.split("->")[0].split(",")]


def test_issue_case_reduces_each_operand_first():
    path, info = contract.contract_path("ijkj,jlp->pk", *_shapes("ijkj,jlp->pk"), shapes=True)
    steps = info.plan.steps
    assert [s.in_place for s in steps] == [True, True, False]
    assert [s.operands for s in steps[:2]] == [(0,), (1,)]
    assert path == [(0, 1)]  # pre-reductions keep positions: the path is the pairwise one
    assert info.opt_cost < info.naive_cost
    assert "pre-reduces operand 0" in str(info) and "ijkj->jk" in str(info)


def test_reported_path_round_trips_as_optimize_input():
    eq = "abxc,cd,dbe,efyy->af"  # x and y are summed in one operand only
    shapes = [(3, 4, 6, 5), (5, 6), (6, 4, 2), (2, 3, 4, 4)]
    path, info = contract.contract_path(eq, *shapes, shapes=True)
    assert [s.operands for s in info.plan.steps if s.in_place] == [(0,), (3,)]
    again, info2 = contract.contract_path(eq, *shapes, shapes=True, optimize=path)
    assert again == path
    assert [s.operands for s in info2.plan.steps] == [s.operands for s in info.plan.steps]
    np_path = contract.einsum_path(eq, *shapes_to_arrays(shapes))[0]
    ops = shapes_to_arrays(shapes)
    assert_matches(contract.einsum(eq, *ops, optimize=np_path), np.einsum(eq, *ops))
    assert_matches(np.einsum(eq, *ops, optimize=["einsum_path", *path]), np.einsum(eq, *ops))


def shapes_to_arrays(shapes):
    rng = np.random.default_rng(3)
    return [rng.standard_normal(s) for s in shapes]


def test_explicit_path_is_honoured():
    eq = "ia,ab,bc,cj->ij"
    shapes = [(4, 5), (5, 6), (6, 7), (7, 3)]
    for explicit in ([(0, 1), (0, 1), (0, 1)], [(2, 3), (0, 1), (0, 1)], [(0, 1, 2, 3)]):
        path, _ = contract.contract_path(eq, *shapes, shapes=True, optimize=explicit)
        assert path == explicit
    # a label summed in one operand only: the reduction is added, the given order kept
    eq = "iax,ab,bc,cj->ij"
    shapes = [(4, 5, 9), (5, 6), (6, 7), (7, 3)]
    explicit = [(2, 3), (0, 1), (0, 1)]
    path, info = contract.contract_path(eq, *shapes, shapes=True, optimize=explicit)
    assert path == explicit
    assert info.plan.steps[0].in_place and info.plan.steps[0].operands == (0,)
    ops = shapes_to_arrays(shapes)
    assert_matches(contract.einsum(eq, *ops, optimize=explicit), np.einsum(eq, *ops))


def test_no_prereduction_when_it_saves_nothing_or_optimize_false():
    # the partner's labels are the operand's own: the pair step is one pass already
    _, info = contract.contract_path("ij,j->", (50, 40), (40,), shapes=True)
    assert not any(s.in_place for s in info.plan.steps)
    # numpy's single fused loop stays one loop
    _, info = contract.contract_path("ijkj,jlp->pk", *_shapes("ijkj,jlp->pk"), shapes=True,
                                     optimize=False)
    assert [s.in_place for s in info.plan.steps] == [False]


def test_memory_limit_caps_the_reduced_operand():
    eq = "abc,cd->d"  # a, b summed in the first operand only
    shapes = [(6, 7, 8), (8, 5)]
    _, free = contract.contract_path(eq, *shapes, shapes=True)
    assert free.plan.steps[0].in_place
    _, capped = contract.contract_path(eq, *shapes, shapes=True, memory_limit=4)
    assert not any(s.in_place for s in capped.plan.steps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["C", "F", "negative", "sliced"])
def test_issue_case_matches_numpy(dtype, layout):
    eq = "ijkj,jlp->pk"
    rng = np.random.default_rng(0)
    ops = [make_operand(s, dtype, layout, rng) for s in _shapes(eq)]
    expected = np.einsum(eq, *ops)
    assert_matches(contract.einsum(eq, *ops), expected)
    assert_matches(contract.contract(eq, *ops), expected)
    out = np.zeros(expected.shape, dtype=expected.dtype)
    assert contract.einsum(eq, *ops, out=out) is out
    assert_matches(out, expected)


def test_zero_size_and_scalar_results():
    a = np.ones((3, 0, 4))
    b = np.ones((4, 5))
    assert_matches(contract.einsum("abc,cd->d", a, b), np.einsum("abc,cd->d", a, b))
    a = np.arange(24.0).reshape(2, 3, 4)
    b = np.arange(5.0)
    # the first operand reduces to a scalar
    assert_matches(contract.einsum("abc,d->d", a, b), np.einsum("abc,d->d", a, b))
    assert_matches(contract.einsum("aab,d->d", np.ones((3, 3, 2)), b),
                   np.einsum("aab,d->d", np.ones((3, 3, 2)), b))


@st.composite
def _single_label_equations(draw):
    n = draw(st.integers(2, 4))
    shared = "abc"
    own = "uvwxyz"
    sizes = {c: draw(st.integers(1, 4)) for c in shared + own}
    terms = []
    for k in range(n):
        labels = draw(st.lists(st.sampled_from(shared), min_size=1, max_size=3))
        labels += draw(st.lists(st.sampled_from(own[k:k + 2]), max_size=3))  # some repeat
        terms.append("".join(draw(st.permutations(labels))))
    present = sorted(set("".join(terms)) & set(shared))
    output = "".join(draw(st.permutations(present))[: draw(st.integers(0, len(present)))])
    eq = ",".join(terms) + "->" + output
    return eq, [tuple(sizes[c] for c in t) for t in terms]


@given(_single_label_equations(), st.sampled_from([np.int64, np.float64, np.bool_]),
       st.sampled_from(["C", "F", "negative"]))
def test_generated_matches_numpy(case, dtype, layout):
    eq, shapes = case
    rng = np.random.default_rng(1)
    ops = [make_operand(s, dtype, layout, rng) for s in shapes]
    expected = np.einsum(eq, *ops)
    assert_matches(contract.einsum(eq, *ops), expected)
    path, _ = contract.contract_path(eq, *ops)
    assert_matches(contract.einsum(eq, *ops, optimize=path), expected)
