"""How single steps run: BLAS against the kernel by bytes moved, folded tight rows, high-rank
small-extent operands, and plan reports of networks whose naive cost exceeds a float."""

from __future__ import annotations

import decimal
import re

import numpy as np
import pytest
from conftest import assert_matches, make_operand

import contract
from contract import executor
from contract._tuning import DEFAULT
from contract.layout import kernel_dims
from contract.parser import parse
from contract.planner import make_plan


def _mps_norm(n, bond):
    args = []
    for side in (200, 400):
        for i in range(n):
            shape = (1 if i == 0 else bond, 2, 1 if i == n - 1 else bond)
            args += [shape, [side + i, i, side + i + 1]]
    return [*args, []]


def test_path_report_of_a_100_site_mps_does_not_overflow():
    path, info = contract.contract_path(*_mps_norm(100, 64), shapes=True)
    assert len(path) == 199
    assert isinstance(info.speedup, decimal.Decimal) and info.speedup > 10**300
    assert info.naive_cost > info.opt_cost
    text = str(info)
    assert "Naive FLOP count:  1.066e+390" in text
    # the speedup depends on the path the search finds (its budget is wall time): its form only
    assert re.search(r"Theoretical speedup:  \d\.\d{3}e\+3\d\d\n", text), text
    # small networks keep a float
    _, small = contract.contract_path(*_mps_norm(4, 3), shapes=True)
    assert isinstance(small.speedup, float)


def test_thin_product_needing_a_copy_runs_in_the_kernel():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((4, 5, 6, 7, 8))
    v = rng.standard_normal(6)
    eq = "abcde,c->abde"
    _, info = contract.contract_path(eq, t, v)
    assert info.methods == ["blas"]  # the FLOP-based routing
    L = lambda s: tuple(map(ord, s))  # noqa: E731
    copied, flops = executor._blas_cost(L("abcde"), t.shape, t.strides, L("c"), v.shape,
                                        v.strides, L("abde"), 8, DEFAULT)
    assert copied == t.size and flops == 2 * t.size
    assert not executor._blas_pays([(t, L("abcde")), (v, L("c"))], L("abde"))
    assert_matches(contract.einsum(eq, t, v), np.einsum(eq, t, v))
    out = np.zeros((4, 5, 7, 8))
    contract.einsum(eq, t, v, out=out)
    assert_matches(out, np.einsum(eq, t, v))
    # a real matrix product with the same copy keeps BLAS
    m = rng.standard_normal((6, 64))
    assert executor._blas_pays([(t, L("abcde")), (m, L("cx"))], L("abdex"))
    assert_matches(contract.einsum("abcde,cx->abdex", t, m), np.einsum("abcde,cx->abdex", t, m))


def test_outer_dims_fold_into_an_output_tight_row():
    # ijk->jk on a C-ordered operand: one row of j*k, i summed around it
    rows = [{1: 30, 2: 1}, {0: 1200, 1: 30, 2: 1}]
    extents, strides, n_outer, inner_out = kernel_dims((1, 2), (0,), rows, {0: 50, 1: 40, 2: 30})
    assert inner_out and n_outer == 0
    assert extents.tolist() == [50, 1200]
    # too long a row to keep in cache while the summed loop runs around it: not folded
    rows = [{1: 3000, 2: 1}, {0: 3000 * 40, 1: 3000, 2: 1}]
    extents, _, n_outer, _ = kernel_dims((1, 2), (0,), rows, {0: 5, 1: 40, 2: 3000})
    assert n_outer == 1 and extents.tolist() == [40, 5, 3000]


HIGH_RANK = [
    # 16 axes of extent 2 (some 3), contracted with a small tensor
    ("abcdefghijklmnop,dexy->abcfghijklmnopxy", 2),
    ("abcdefghijklmnop->ponmlkjihgfedcba", 2),
    ("abcdefghijklmnop,ap->bcdefghijklmno", 2),
    ("abcdefgh,hgfe->abcd", 3),
    ("abcdefgh,d->abcefgh", 3),
    ("...,...", None),
]


@pytest.mark.parametrize("eq,extent", HIGH_RANK)
@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.complex128])
@pytest.mark.parametrize("layout", ["C", "F", "negative", "every-other"])
def test_high_rank_small_extents_match_numpy(eq, extent, dtype, layout):
    rng = np.random.default_rng(2)
    if extent is None:
        shapes = [(30, 40), (20, 30, 40)]
    else:
        shapes = [(extent,) * len(t) for t in eq.split("->")[0].split(",")]
    if layout == "every-other":  # a stride-2 view along the first axis
        ops = [make_operand((2 * s[0], *s[1:]), dtype, "C", rng)[::2] for s in shapes]
    else:
        ops = [make_operand(s, dtype, layout, rng) for s in shapes]
    expected = np.einsum(eq, *ops)
    assert_matches(contract.einsum(eq, *ops), expected)
    assert_matches(contract.contract(eq, *ops, use_blas=False), expected)


@pytest.mark.parametrize("n_rows", [1, 2, 7, 5000])
def test_kernel_rows_of_few_elements(n_rows):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((n_rows, 3, 2))[:, ::-1, :]
    b = rng.standard_normal((2, 3))
    for eq in ("rij,ji->r", "rij,ji->ri", "rij,jk->rik", "rij->ji", "rij,ji,ij->r"):
        ops = (a, b) if eq.count(",") == 1 else (a, b, b.T) if eq.count(",") else (a,)
        assert_matches(contract.einsum(eq, *ops), np.einsum(eq, *ops))
        assert_matches(contract.einsum(eq, *ops, optimize=False), np.einsum(eq, *ops))


@pytest.mark.parametrize("dtype", ["float64", "int64", "complex128"])
def test_prepared_runs_replay_each_operand_geometry(dtype):
    """A plan run again with operands of a geometry it ran with before replays the recorded
    steps (``plan.prepared``); each layout gets a run of its own, and every run matches numpy."""
    # a pre-reduction (label x), a diagonal (ii), a matrix-product step and kernel steps
    eq = "iaxb,bc,cd,dii->ad"
    shapes = [(3, 5, 4, 6), (6, 7), (7, 2), (2, 3, 3)]
    plan = make_plan(parse(eq, shapes), np.dtype(dtype), optimize="greedy")
    plan.prepared.clear()  # plans are cached: start from none recorded
    for n, layout in enumerate(["C", "F", "sliced", "negative", "broadcast"], start=1):
        ops = [make_operand(s, dtype, layout, np.random.default_rng(k))
               for k, s in enumerate(shapes)]
        expected = np.einsum(eq, *ops)
        first = executor.execute(plan, ops, None)  # runs step by step and records
        assert len(plan.prepared) == n
        again = executor.execute(plan, ops, None)  # replays
        assert len(plan.prepared) == n
        assert_matches(first, expected)
        assert np.array_equal(first, again)
        out = np.empty_like(expected)
        assert executor.execute(plan, ops, out) is out  # out= runs step by step
        assert np.array_equal(out, first)


@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128"])
def test_prepared_runs_replay_blas_steps(dtype):
    """BLAS steps are replayed from their prepared matmul (:class:`executor._BlasCall`): a
    transposed operand that BLAS reads as it lies, one that needs a copy (its summed labels fold
    in no order), a batched product, and float64's swapped orientation (more rows than
    columns), in every layout; each replay equals the step-by-step run bit for bit."""
    eq = "ba,bc,cdk,kde,ef->af"
    shapes = [(40, 30), (40, 50), (50, 6, 7), (7, 6, 45), (45, 20)]
    plan = make_plan(parse(eq, shapes), np.dtype(dtype), optimize="greedy")
    plan.prepared.clear()
    for layout in ["C", "F", "sliced", "negative"]:
        ops = [make_operand(s, dtype, layout, np.random.default_rng(k))
               for k, s in enumerate(shapes)]
        first = executor.execute(plan, ops, None)
        prepared = list(plan.prepared.values())[-1]
        calls = [call for _, call, *_ in prepared.steps]
        assert sum(isinstance(c, executor._BlasCall) for c in calls) >= 2, calls
        again = executor.execute(plan, ops, None)
        assert_matches(first, np.einsum(eq, *ops))
        assert np.array_equal(first, again)


def test_prepared_runs_per_plan_are_bounded():
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((6, 5)), rng.standard_normal((5, 4)), rng.standard_normal((4, 3))
    eq = "ij,jk,kl->il"
    plan = make_plan(parse(eq, [a.shape, b.shape, c.shape]), np.dtype("float64"),
                     optimize="greedy")
    plan.prepared.clear()
    for k in range(executor._PREPARED_PER_PLAN + 3):  # ever new strides
        view = np.zeros((6, 5 * (k + 1)))[:, :: k + 1]
        view[...] = a
        for _ in range(2):
            assert_matches(executor.execute(plan, [view, b, c], None), np.einsum(eq, a, b, c))
    assert len(plan.prepared) == executor._PREPARED_PER_PLAN
