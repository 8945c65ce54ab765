"""Path finding (contract/paths.py): the search budget, 'auto' on networks, every optimize= form."""

from __future__ import annotations

import itertools
import math
import random
import time
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


def _counting(variables: int, clauses: int, seed: int) -> tuple[str, list]:
    """A random 3-SAT formula as a counting network: one 2x2x2 tensor per clause over its three
    variables' labels, so every variable is a hyperedge shared by many clauses."""
    rng = random.Random(seed)
    terms = ["".join(_LETTERS[v] for v in rng.sample(range(variables), 3)) for _ in range(clauses)]
    return ",".join(terms) + "->", [(2, 2, 2)] * clauses


NETWORKS = {
    "lattice_3x4": _lattice(3, 4, 1),
    "lattice_4x4": _lattice(4, 4, 2),
    "random_10": _random_graph(10, 3, 3, out=2),
    "random_14": _random_graph(14, 3, 4, out=1),
    "counting_20": _counting(20, 48, 1),
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
    assert paths.search_budget(4e9, cost_per_second=rate, fraction=0.25, min_seconds=0) == 1.0
    assert paths.search_budget(4e8, cost_per_second=rate, fraction=0.25) == pytest.approx(0.1)
    assert paths.search_budget(4e8, cost_per_second=rate, fraction=0.5) == pytest.approx(0.2)
    assert paths.search_budget(4e8, cost_per_second=2 * rate, fraction=0.25) == pytest.approx(
        0.05
    )


def test_search_budget_floor_and_cap():
    # a contraction of a millisecond is not searched at all
    assert paths.search_budget(1e6, cost_per_second=1e9, fraction=0.25, min_seconds=0.002) == 0
    assert paths.search_budget(1e7, cost_per_second=1e9, fraction=0.25, min_seconds=0.002) == (
        pytest.approx(0.0025)
    )
    assert paths.search_budget(1e15, cost_per_second=1e9, max_seconds=3.0) == 3.0
    # FLOP counts beyond a float's range (a 100-site MPS's naive count) do not overflow
    assert paths.search_budget(10**400, cost_per_second=1e9, max_seconds=3.0) == 3.0
    assert paths.search_budget(2**1100, cost_per_second=1e9, max_seconds=3.0) == 3.0
    assert paths.search_budget(0) == 0.0


def test_search_budget_defaults_are_the_current_settings():
    with tuned(cost_per_second=1e9, search_fraction=0.1, search_min_seconds=0.0,
               search_max_seconds=10.0):
        assert paths.search_budget(1e9) == pytest.approx(0.1)
    assert paths.search_budget(1e9, tuning=replace(DEFAULT, cost_per_second=1e9,
                                                   search_fraction=0.1)) == pytest.approx(0.1)


def test_search_budget_follows_the_dtype():
    """'auto' searches a complex128 network three times as long as a float64 one (it runs
    about that much longer), and a float32 one for 0.6 of the time."""
    n = 12  # a chain of 400x400 matrices: a budget between the floor and the cap
    inputs = [(k, k + 1) for k in range(n)]
    size = dict.fromkeys(range(n + 1), 400)
    budgets = {}
    for char in "dDfG":
        choice = paths.find_path(inputs, (0, n), size, "auto", None, DEFAULT, char)
        budgets[char] = choice.budget
    assert 0 < budgets["d"] < DEFAULT.search_max_seconds
    assert budgets["D"] == pytest.approx(3.0 * budgets["d"])
    assert budgets["f"] == pytest.approx(0.6 * budgets["d"])
    assert budgets["G"] == pytest.approx(budgets["d"])  # a dtype without an entry: as float64


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
    # never worse than opt_einsum's path by the cost the search ranks paths by
    assert paths.path_cost(inputs, output, size, choice.path) <= paths.path_cost(
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
    greedy = paths.path_cost(inputs, output, size, paths._opt_einsum_search(
        inputs, output, size, "greedy", None))
    assert paths.path_cost(inputs, output, size, choice.path) <= greedy


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


# ----------------------------------------------------------------------------- path cost
def test_path_cost_is_flops_plus_weighted_writes():
    subscripts, shapes = NETWORKS["lattice_3x4"]
    inputs, output, size = _problem(subscripts, shapes)
    path, _ = opt_einsum.contract_path(subscripts, *shapes, shapes=True, optimize="greedy")
    flops = paths.path_flops(inputs, output, size, path)
    assert paths.path_cost(inputs, output, size, path, write_weight=0) == flops
    written = paths.path_cost(inputs, output, size, path, write_weight=1) - flops
    # every step writes its result: the last one is the (scalar) output
    assert written >= len(path)
    assert paths.path_cost(inputs, output, size, path, write_weight=64) == flops + 64 * written
    with tuned(path_write_weight=3):
        assert paths.path_cost(inputs, output, size, path) == flops + 3 * written


def test_search_ranks_paths_by_path_cost(monkeypatch):
    """With writes weighted heavily, 'auto' keeps the candidate that writes least, though
    another has fewer FLOPs."""
    subscripts, shapes = NETWORKS["random_14"]
    inputs, output, size = _problem(subscripts, shapes)
    few_flops = (
        (0, 1),
        *(((0, 1),) * (len(inputs) - 2)),
    )
    small = paths._opt_einsum_search(inputs, output, size, "greedy", None)
    monkeypatch.setattr(paths, "_opt_einsum_search", lambda *a: few_flops)
    monkeypatch.setattr(paths, "_cotengrust", lambda: None)
    monkeypatch.setattr(paths, "_random_greedy", lambda *a: [small])
    for weight in (0, 10**6):
        choice = paths.auto_path(inputs, output, size, budget=0.01,
                                 tuning=replace(DEFAULT, path_write_weight=weight))
        costs = {p: paths.path_cost(inputs, output, size, p, weight) for p in (few_flops, small)}
        assert choice.path == min(costs, key=costs.get)



@pytest.mark.skipif(paths._cotengrust() is None, reason="cotengrust not installed")
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_cotengrust_counts_no_more_flops_than_path_flops(name):
    """auto_path skips pricing a batch whose cotengrust FLOPs exceed the best cost: sound only
    if cotengrust's count is never above path_flops."""
    inputs, output, size = _problem(*NETWORKS[name])
    for seed in range(4):
        path, log_flops = paths._rust_random_greedy(inputs, output, size, 4, seed)
        assert 10**log_flops <= paths.path_flops(inputs, output, size, path) * (1 + 1e-9)

# ----------------------------------------------------------------------------- hypernetworks
def test_elimination_order_is_valid_and_beats_greedy_on_counting():
    subscripts, shapes = NETWORKS["counting_20"]
    inputs, output, size = _problem(subscripts, shapes)
    greedy = paths._opt_einsum_search(inputs, output, size, "greedy", None)
    for score in ("width", "fill"):
        path = paths._elimination_path(inputs, output, size, score)
        _check_path([tuple(p) for p in path], len(inputs))
        assert paths.path_flops(inputs, output, size, path) < paths.path_flops(
            inputs, output, size, greedy) / 4
    rng = random.Random(0)
    path = paths._elimination_path(inputs, output, size, "fill", rng, temperature=1.0)
    _check_path([tuple(p) for p in path], len(inputs))
    assert paths._elimination_path(inputs, output, size, deadline=0.0) is None
    assert paths._has_hyperedges(inputs, output)
    assert not paths._has_hyperedges(*_problem(*NETWORKS["lattice_4x4"])[:2])


@pytest.mark.parametrize("engine", ["installed", "python"])
def test_auto_uses_elimination_on_hypernetworks_even_without_the_extra(engine, monkeypatch):
    if engine == "python":
        monkeypatch.setattr(paths, "_cotengrust", lambda: None)
        monkeypatch.setattr(paths, "cotengra_available", lambda: False)
    subscripts, shapes = NETWORKS["counting_20"]
    inputs, output, size = _problem(subscripts, shapes)
    # a budget too small for anything but one batch of greedy trials: elimination still runs
    choice = paths.auto_path(inputs, output, size, budget=1e-6)
    assert choice.optimizer.startswith("auto: elimination order")
    base = paths._opt_einsum_search(inputs, output, size, "auto", None)
    assert paths.path_cost(inputs, output, size, choice.path) < paths.path_cost(
        inputs, output, size, base)
    ops = [np.random.default_rng(1).uniform(0, 1, s) for s in shapes]
    expected = _reference(subscripts, *ops)
    assert_matches(contract.einsum(subscripts, *ops, optimize=list(choice.path)), expected)


def test_search_keeps_to_its_budget(monkeypatch):
    """After opt_einsum's path, the search stops within its budget (plus the trial under way)."""
    monkeypatch.setattr(paths, "cotengra_available", lambda: False)
    subscripts, shapes = NETWORKS["lattice_4x4"]
    inputs, output, size = _problem(subscripts, shapes)
    start = time.perf_counter()
    paths._opt_einsum_search(inputs, output, size, "auto", None)
    base_seconds = time.perf_counter() - start
    for budget in (0.01, 0.05):
        choice = paths.auto_path(inputs, output, size, budget=budget)
        assert choice.seconds < 2 * base_seconds + budget + 0.02


# ----------------------------------------------------------------------------- the report
def test_report_names_the_optimizer_and_search_time():
    subscripts, shapes = NETWORKS["random_14"]
    # every network looks expensive; the search stops at 30 ms
    with tuned(cost_per_second=1.0, search_max_seconds=0.03):
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
