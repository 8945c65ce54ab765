"""Path finding (contract/paths.py): the search budget, 'auto' on networks, every optimize= form."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import numpy as np
import opt_einsum
import pytest
from conftest import assert_matches, tuned

import contract
from contract import paths
from contract._tuning import DEFAULT
from contract.parser import parse_cached
from contract.planner import _check_path, make_plan

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _lattice(rows: int, cols: int, seed: int) -> tuple[str, list[tuple[int, ...]]]:
    """A rows x cols open lattice of tensors, one label per bond, extents 2-3."""
    rng = random.Random(seed)
    bonds: dict[tuple, str] = {}
    terms = []
    for r, c in itertools.product(range(rows), range(cols)):
        term = ""
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            rr, cc = r + dr, c + dc
            if 0 <= rr < rows and 0 <= cc < cols:
                edge = tuple(sorted([(r, c), (rr, cc)]))
                term += bonds.setdefault(edge, _LETTERS[len(bonds)])
        terms.append(term)
    size = {lab: rng.randint(2, 3) for lab in bonds.values()}
    return ",".join(terms) + "->", [tuple(size[lab] for lab in t) for t in terms]


def _random_graph(n: int, degree: int, seed: int, out: int = 1) -> tuple[str, list]:
    """A random graph of n tensors (each pair joined with probability degree/n), a few labels
    kept in the output, extents 2-3; labels summed in one operand only and hyperedges appear."""
    rng = random.Random(seed)
    terms = [[] for _ in range(n)]
    labels = iter(_LETTERS)
    for i, j in itertools.combinations(range(n), 2):
        if rng.random() < degree / n:
            lab = next(labels)
            terms[i].append(lab)
            terms[j].append(lab)
    hyper = next(labels)  # a label shared by three tensors
    for i in rng.sample(range(n), 3):
        terms[i].append(hyper)
    for i in range(n):  # keep the network connected and every operand non-scalar
        lab = next(labels)
        terms[i].append(lab)
        terms[(i + 1) % n].append(lab)
    used = sorted({lab for t in terms for lab in t})
    output = "".join(rng.sample(used, out))
    size = {lab: rng.randint(2, 3) for lab in used}
    return ",".join("".join(t) for t in terms) + "->" + output, [
        tuple(size[lab] for lab in t) for t in terms
    ]


NETWORKS = {
    "lattice_3x4": _lattice(3, 4, 1),
    "lattice_4x4": _lattice(4, 4, 2),
    "random_10": _random_graph(10, 3, 3, out=2),
    "random_14": _random_graph(14, 3, 4, out=1),
}


def _problem(subscripts: str, shapes: list) -> tuple[list, tuple, dict]:
    eq = parse_cached(subscripts, tuple(shapes))
    inputs = [tuple(dict.fromkeys(t)) for t in eq.terms]
    return inputs, eq.output, dict(eq.size_dict)


def _reference(*args) -> np.ndarray:
    """numpy.einsum along opt_einsum's greedy path (numpy's own greedy path, limited to the size
    of the largest input, falls back to one naive loop over every label on these networks)."""
    path, _ = opt_einsum.contract_path(*args, optimize="greedy")
    return np.einsum(*args, optimize=["einsum_path", *path])


def _operands(shapes: list, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, s) for s in shapes]


# ----------------------------------------------------------------------------- the budget
def test_search_budget_scales_with_the_estimated_run_time():
    rate = 1e9
    assert paths.search_budget(4e9, flops_per_second=rate, fraction=0.25, min_seconds=0) == 1.0
    assert paths.search_budget(4e8, flops_per_second=rate, fraction=0.25) == pytest.approx(0.1)
    assert paths.search_budget(4e8, flops_per_second=rate, fraction=0.5) == pytest.approx(0.2)
    assert paths.search_budget(4e8, flops_per_second=2 * rate, fraction=0.25) == pytest.approx(
        0.05
    )


def test_search_budget_floor_and_cap():
    # a contraction of a millisecond is not searched at all
    assert paths.search_budget(1e6, flops_per_second=1e9, fraction=0.25, min_seconds=0.002) == 0
    assert paths.search_budget(1e7, flops_per_second=1e9, fraction=0.25, min_seconds=0.002) == (
        pytest.approx(0.0025)
    )
    assert paths.search_budget(1e15, flops_per_second=1e9, max_seconds=3.0) == 3.0
    # FLOP counts beyond a float's range (a 100-site MPS's naive count) do not overflow
    assert paths.search_budget(10**400, flops_per_second=1e9, max_seconds=3.0) == 3.0
    assert paths.search_budget(2**1100, flops_per_second=1e9, max_seconds=3.0) == 3.0
    assert paths.search_budget(0) == 0.0


def test_search_budget_defaults_are_the_current_settings():
    with tuned(flops_per_second=1e9, search_fraction=0.1, search_min_seconds=0.0,
               search_max_seconds=10.0):
        assert paths.search_budget(1e9) == pytest.approx(0.1)
    assert paths.search_budget(1e9, tuning=replace(DEFAULT, flops_per_second=1e9,
                                                   search_fraction=0.1)) == pytest.approx(0.1)


def test_path_flops_matches_opt_einsum():
    subscripts, shapes = NETWORKS["random_10"]
    inputs, output, size = _problem(subscripts, shapes)
    path, info = opt_einsum.contract_path(subscripts, *shapes, shapes=True, optimize="greedy")
    assert paths.path_flops(inputs, output, size, path) == int(info.opt_cost)


# ----------------------------------------------------------------------------- 'auto'
@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("engine", ["installed", "python"])
def test_auto_search_is_valid_and_no_worse_than_opt_einsum(name, engine, monkeypatch):
    if engine == "python":
        monkeypatch.setattr(paths, "_cotengrust", lambda: None)
    subscripts, shapes = NETWORKS[name]
    inputs, output, size = _problem(subscripts, shapes)
    choice = paths.auto_path(inputs, output, size, budget=0.05)
    _check_path([tuple(p) for p in choice.path], len(inputs))
    base, _ = opt_einsum.contract_path(subscripts, *shapes, shapes=True, optimize="auto")
    assert paths.path_flops(inputs, output, size, choice.path) <= paths.path_flops(
        inputs, output, size, base
    )
    assert choice.optimizer.startswith("auto:")
    assert choice.budget == 0.05 and choice.seconds > 0
    # the result along the searched path matches numpy
    ops = _operands(shapes)
    expected = _reference(subscripts, *ops)
    assert_matches(contract.einsum(subscripts, *ops, optimize=list(choice.path)), expected)


def test_python_search_repairs_a_bad_greedy_path(monkeypatch):
    """A chain whose standard greedy order is poor: the swept weights find a better one."""
    monkeypatch.setattr(paths, "_cotengrust", lambda: None)
    rng = random.Random(5)
    dims = [rng.randint(2, 60) for _ in range(17)]
    subscripts = ",".join(_LETTERS[i : i + 2] for i in range(16)) + "->"
    shapes = [(dims[i], dims[i + 1]) for i in range(16)]
    subscripts = subscripts[:-2] + "->" + _LETTERS[0] + _LETTERS[16]
    inputs, output, size = _problem(subscripts, shapes)
    choice = paths.auto_path(inputs, output, size, budget=0.2)
    greedy = paths.path_flops(inputs, output, size, paths._opt_einsum_search(
        inputs, output, size, "greedy", None))
    assert paths.path_flops(inputs, output, size, choice.path) <= greedy


def test_no_budget_keeps_opt_einsums_path():
    subscripts, shapes = NETWORKS["lattice_4x4"]
    inputs, output, size = _problem(subscripts, shapes)
    choice = paths.auto_path(inputs, output, size, budget=0.0)
    base, _ = opt_einsum.contract_path(subscripts, *shapes, shapes=True, optimize="auto")
    assert choice.path == tuple(tuple(p) for p in base)
    assert choice.optimizer == "auto: opt_einsum 'auto'"


@pytest.mark.skipif(not paths.cotengra_available(), reason="cotengra not installed")
def test_cotengra_joins_long_searches():
    subscripts, shapes = NETWORKS["random_14"]
    inputs, output, size = _problem(subscripts, shapes)
    path = paths._cotengra_path(inputs, output, size, 0.2)
    assert path is not None
    _check_path([tuple(p) for p in path], len(inputs))
    choice = paths.auto_path(inputs, output, size, budget=0.3,
                             tuning=replace(DEFAULT, hyper_min_seconds=0.2))
    _check_path([tuple(p) for p in choice.path], len(inputs))


def test_small_equations_use_opt_einsums_auto():
    shapes = [(10, 20), (20, 30), (30, 5)]
    path, info = contract.contract_path("ij,jk,kl->il", *shapes, shapes=True)
    expected, _ = opt_einsum.contract_path("ij,jk,kl->il", *shapes, shapes=True)
    assert path == [tuple(p) for p in expected]
    assert info.optimizer == "auto: opt_einsum 'auto'"


# ----------------------------------------------------------------------------- the report
def test_report_names_the_optimizer_and_search_time():
    subscripts, shapes = NETWORKS["random_14"]
    # every network looks expensive; the search stops at 30 ms
    with tuned(flops_per_second=1.0, search_max_seconds=0.03):
        path, info = contract.contract_path(subscripts, *shapes, shapes=True, optimize=True)
    assert info.optimizer.startswith("auto:") and "trials" in info.optimizer
    assert 0 < info.path_search < 5
    text = str(info)
    assert f"Optimizer:  {info.optimizer}" in text
    assert "Path search:" in text
    for optimize, name in [
        ("greedy", "opt_einsum 'greedy'"),
        (opt_einsum.paths.DynamicProgramming(), "DynamicProgramming"),
        (path, "explicit path"),
        (False, "none (single fused loop)"),
    ]:
        _, info = contract.contract_path(subscripts, *shapes, shapes=True, optimize=optimize)
        assert info.optimizer == name
        assert f"Optimizer:  {name}" in str(info)


def test_memory_limit_with_auto_uses_opt_einsum():
    subscripts, shapes = NETWORKS["random_10"]
    _, info = contract.contract_path(subscripts, *shapes, shapes=True, memory_limit=10_000)
    assert info.optimizer.startswith("auto: opt_einsum 'auto'")
    assert info.largest_intermediate <= 10_000


def test_auto_plans_are_cached():
    subscripts, shapes = NETWORKS["lattice_4x4"]
    eq = parse_cached(subscripts, tuple(shapes))
    assert make_plan(eq, np.dtype(np.float64), "auto") is make_plan(eq, np.dtype(np.float64),
                                                                    "auto")


# ----------------------------------------------------------------------------- optimize= forms
def _forms() -> list:
    forms = [
        True,
        False,
        "auto",
        "greedy",
        "optimal",
        "dp",
        "branch-2",
        "random-greedy",
        "auto-hq",
        opt_einsum.paths.DynamicProgramming(),
        opt_einsum.RandomGreedy(max_repeats=4),
    ]
    if paths.cotengra_available():
        import cotengra

        forms.append(cotengra.HyperOptimizer(max_repeats=4, parallel=False, progbar=False))
    return forms


@pytest.mark.parametrize("optimize", _forms(), ids=lambda o: type(o).__name__ + str(o)[:12])
def test_every_optimize_form_passes_through(optimize):
    subscripts, shapes = NETWORKS["random_10"]
    if optimize is False or optimize == "optimal":  # one loop / exhaustive: a small network
        subscripts, shapes = "ab,bc,cd,de,ea->", [(3, 4), (4, 5), (5, 6), (6, 2), (2, 3)]
    ops = _operands(shapes, seed=1)
    expected = _reference(subscripts, *ops)
    assert_matches(contract.einsum(subscripts, *ops, optimize=optimize), expected)
    assert_matches(contract.contract(subscripts, *ops, optimize=optimize), expected)


def test_explicit_paths_pass_through_in_both_forms():
    subscripts, shapes = NETWORKS["random_10"]
    ops = _operands(shapes, seed=2)
    path, _ = opt_einsum.contract_path(subscripts, *shapes, shapes=True, optimize="greedy")
    expected = _reference(subscripts, *ops)
    got_path, info = contract.contract_path(subscripts, *shapes, shapes=True, optimize=path)
    assert got_path == [tuple(p) for p in path] and info.optimizer == "explicit path"
    assert_matches(contract.einsum(subscripts, *ops, optimize=path), expected)
    assert_matches(contract.einsum(subscripts, *ops, optimize=["einsum_path", *path]), expected)


def test_large_network_in_sublist_form_matches_numpy():
    """A 4x4 lattice with 24 bonds through the sublist form (int labels) and 'auto'."""
    subscripts, shapes = NETWORKS["lattice_4x4"]
    ops = _operands(shapes, seed=3)
    terms = subscripts.split("->")[0].split(",")
    index = {c: i for i, c in enumerate(_LETTERS)}
    args = []
    for op, term in zip(ops, terms):
        args += [op, [index[c] for c in term]]
    expected = _reference(*args, [])
    got = contract.einsum(*args, [])
    assert_matches(got, expected)
    assert math.isfinite(float(got))
