"""Find contraction paths: opt_einsum's optimizers, and a time-budgeted search for big networks.

``optimize='auto'`` (and ``True``) means:

* up to ``auto_small_operands`` operands (a field of :class:`~contract._tuning.Tuning`, as are
  the other settings named here), or with a ``memory_limit``: opt_einsum's own ``'auto'``
  (optimal for few operands, branch-and-bound up to eight), called straight through its path
  function so that planning a small equation costs no more than opt_einsum's own search;
* beyond that: opt_einsum's ``'auto'`` path first (greedy beyond 14 operands); from its cost
  (:func:`path_cost`: FLOPs plus ``path_write_weight`` per element the steps write), an
  estimate of how long the contraction will run (``cost_per_second``); then a search for at
  most ``search_fraction`` of that time (:func:`search_budget`, capped at
  ``search_max_seconds``): randomized greedy trials -- in Rust when the optional ``cotengrust``
  package is installed, else in Python --, on hypernetworks elimination orders of the summed
  labels (:func:`_elimination_path`), and, when the budget reaches ``hyper_min_seconds`` and
  the optional ``cotengra`` package is installed, cotengra's hyper-optimizer for the last two
  thirds of the budget. The cheapest path found (by :func:`path_cost`, which predicts the run
  time here far better than FLOPs alone) wins; the first path is always a candidate, so the
  search never makes a path worse than opt_einsum's by that cost.

A cheap contraction is therefore never planned for longer than a fraction of its own run time,
and an expensive one is planned with a search that repays itself. The result says which
optimizer found the path and how long the search took (:class:`PathChoice`), for the path
report.

Every other ``optimize=`` form (opt_einsum names, ``PathOptimizer`` objects, explicit paths,
``False``) is passed through unchanged (:func:`find_path`).

This module needs only opt_einsum; cotengrust and cotengra (the ``paths`` extra) are imported
lazily, cotengra only for searches of a second or more.
"""

from __future__ import annotations

import heapq
import importlib.util
import math
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opt_einsum import paths as _oe_paths

from . import _tuning
from ._tuning import Tuning
from .parser import symbol_names

__all__ = [
    "PathChoice",
    "find_path",
    "auto_path",
    "search_budget",
    "path_flops",
    "cotengra_available",
]

#: Randomized greedy trials stop here even when the budget is not spent.
_MAX_TRIALS = 1024
#: The fixed weights of the first pure-Python greedy trials (see ``_random_greedy``).
_SWEEP = (0.3, 2.0, 0.5, 4.0, 0.1)


@dataclass(frozen=True)
class PathChoice:
    """A contraction path and how it was found.

    Attributes
    ----------
    path : tuple of tuple of int
        The path in opt_einsum's (linear, recycled) form.
    optimizer : str
        Which optimizer chose this path, e.g. ``"opt_einsum 'greedy'"`` or
        ``"auto: random-greedy (37 trials)"``.
    seconds : float
        Wall time spent finding it.
    budget : float or None
        The search budget ``'auto'`` allowed (None when no budget applied).
    """

    path: tuple[tuple[int, ...], ...]
    optimizer: str
    seconds: float
    budget: float | None = None


def cotengra_available() -> bool:
    """Whether the optional ``cotengra`` package can be imported."""
    return importlib.util.find_spec("cotengra") is not None


def search_budget(
    cost: float,
    cost_per_second: float | None = None,
    fraction: float | None = None,
    max_seconds: float | None = None,
    min_seconds: float | None = None,
    tuning: Tuning | None = None,
) -> float:
    """Seconds the ``'auto'`` search may spend on a contraction whose first path costs ``cost``.

    ``fraction * cost / cost_per_second`` (the expected run time, from the path's
    :func:`path_cost`), capped at ``max_seconds``; 0.0 when that is below ``min_seconds`` (the
    first path is kept without searching). Defaults come from ``tuning``.

    Parameters
    ----------
    cost : float
        The first path's :func:`path_cost` (FLOPs plus weighted writes); may be a huge int.
    cost_per_second, fraction, max_seconds, min_seconds : float, optional
        Override ``tuning``'s ``cost_per_second``, ``search_fraction``, ``search_max_seconds``
        and ``search_min_seconds``.
    tuning : Tuning, optional
        The settings (by default the current ones).

    Returns
    -------
    float
        The budget in seconds (0.0: do not search).

    Examples
    --------
    >>> search_budget(4e5, cost_per_second=1e9, fraction=0.25)  # 0.4 ms to run: no search
    0.0
    >>> search_budget(4e9, cost_per_second=1e9, fraction=0.25)  # 4 s to run: search 1 s
    1.0
    >>> search_budget(10**400, cost_per_second=1e9, max_seconds=5.0)  # capped, no overflow
    5.0
    """
    tuning = tuning or _tuning.current()
    rate = tuning.cost_per_second if cost_per_second is None else cost_per_second
    frac = tuning.search_fraction if fraction is None else fraction
    cap = tuning.search_max_seconds if max_seconds is None else max_seconds
    floor = tuning.search_min_seconds if min_seconds is None else min_seconds
    if cost <= 0 or rate <= 0 or frac <= 0:
        return 0.0
    # in logs: the cost of a 100-site MPS does not fit in a float
    log_budget = math.log(frac) + _log(cost) - math.log(rate)
    if log_budget >= math.log(cap):
        return float(cap)
    budget = math.exp(log_budget)
    return budget if budget >= floor else 0.0


def _log(x: float) -> float:
    if isinstance(x, int) and x > 2**1000:
        return math.log(x >> (x.bit_length() - 64)) + (x.bit_length() - 64) * math.log(2)
    return math.log(x)


def path_flops(
    inputs: Sequence[Sequence[int]],
    output: Sequence[int],
    size: dict[int, int],
    path: Sequence[Sequence[int]],
) -> int:
    """The FLOP count of a linear path, counted as opt_einsum counts it (an exact int).

    Parameters
    ----------
    inputs : sequence of sequence of int
        Each operand's (distinct) labels.
    output : sequence of int
        The result's labels.
    size : dict
        Label -> extent.
    path : sequence of sequence of int
        Positions in the working list of operands, as in opt_einsum.

    Returns
    -------
    int
        The sum over steps of ``prod(extents of the step's labels) * max(1, operands - 1 +
        (1 if the step sums a label else 0))``.

    Examples
    --------
    >>> path_flops([(0, 1), (1, 2), (2, 3)], (0, 3), {0: 2, 1: 3, 2: 4, 3: 5}, [(0, 1), (0, 1)])
    128
    """
    return _flops_and_writes(inputs, output, size, path)[0]


def path_cost(
    inputs: Sequence[Sequence[int]],
    output: Sequence[int],
    size: dict[int, int],
    path: Sequence[Sequence[int]],
    write_weight: int | None = None,
    tuning: Tuning | None = None,
) -> int:
    """The cost ``'auto'`` ranks paths by: FLOPs plus ``write_weight`` per element written.

    :func:`path_flops` plus ``write_weight`` times the summed sizes of every step's result (the
    memory traffic of the intermediates; cotengra's ``'combo'`` cost). Measured on the
    einsum_benchmark networks, it ranks paths by their run time in this engine far better than
    FLOPs alone: on a random hypernetwork two paths of 4.4e7 FLOPs ran in 7.6 ms and 31 ms, the
    second writing 5x more; on a 3x3x4 lattice the fastest path had 1.3x more FLOPs than another
    but wrote 2x less.

    Parameters
    ----------
    inputs, output, size, path
        As for :func:`path_flops`.
    write_weight : int, optional
        FLOP units per element written (by default ``tuning.path_write_weight``); 0 gives
        :func:`path_flops`.
    tuning : Tuning, optional
        The settings (by default the current ones).

    Returns
    -------
    int
        The cost (an exact int, as the FLOP count of a long chain does not fit in a float).

    Examples
    --------
    >>> path_cost([(0, 1), (1, 2), (2, 3)], (0, 3), {0: 2, 1: 3, 2: 4, 3: 5}, [(0, 1), (0, 1)],
    ...           write_weight=10)  # 128 FLOPs, writes 2*4 then 2*5 elements
    308
    """
    if write_weight is None:
        write_weight = (tuning or _tuning.current()).path_write_weight
    flops, written = _flops_and_writes(inputs, output, size, path)
    return flops + int(write_weight) * written


def _flops_and_writes(
    inputs: Sequence[Sequence[int]],
    output: Sequence[int],
    size: dict[int, int],
    path: Sequence[Sequence[int]],
) -> tuple[int, int]:
    """(FLOPs as opt_einsum counts them, elements written by all steps) of a linear path."""
    work = [frozenset(t) for t in inputs]
    out = frozenset(output)
    flops = written = 0
    for positions in path:
        picked = [work[p] for p in positions]
        for p in sorted(positions, reverse=True):
            del work[p]
        labels = frozenset().union(*picked)
        keep = labels & (out.union(*work))
        inner = bool(labels - keep)
        flops += math.prod(size[lab] for lab in labels) * max(1, len(picked) - 1 + int(inner))
        written += math.prod(size[lab] for lab in keep)
        work.append(keep)
    return flops, written


def find_path(
    inputs: list[tuple[int, ...]],
    output: tuple[int, ...],
    size: dict[int, int],
    optimize: Any,
    memory_limit: Any = None,
    tuning: Tuning | None = None,
    dtype_char: str = "d",
) -> PathChoice:
    """A path for ``optimize`` (already normalized by ``planner.normalize_optimize``).

    Parameters
    ----------
    inputs : list of tuple of int
        Each operand's distinct labels.
    output : tuple of int
        The result's labels.
    size : dict
        Label -> extent.
    optimize : str, False, tuple of tuples or opt_einsum.paths.PathOptimizer
        ``'auto'`` runs :func:`auto_path`; other names and optimizer objects run opt_einsum's
        search; an explicit path is returned as given; ``False`` is one fused step.
    memory_limit : int, str or None
        opt_einsum's memory limit (largest intermediate in elements, or ``'max_input'``).
    tuning : Tuning, optional
        The settings of the ``'auto'`` search (by default the current ones).
    dtype_char : str
        The computation's dtype character: the ``'auto'`` search budget follows the expected
        run time, which depends on it (``tuning.dtype_slowdown``).

    Returns
    -------
    PathChoice
    """
    tuning = tuning or _tuning.current()
    n = len(inputs)
    if n == 1:
        return PathChoice(((0,),), _name(optimize), 0.0)
    if optimize is False:
        return PathChoice((tuple(range(n)),), _name(optimize), 0.0)
    if isinstance(optimize, tuple):
        return PathChoice(tuple(tuple(p) for p in optimize), _name(optimize), 0.0)
    if isinstance(optimize, str) and optimize == "auto" and memory_limit is None:
        if n > tuning.auto_small_operands:
            slowdown = dict(tuning.dtype_slowdown).get(dtype_char, 1.0)
            return auto_path(inputs, output, size, tuning=tuning, slowdown=slowdown)
    start = time.perf_counter()
    path = _opt_einsum_search(inputs, output, size, optimize, memory_limit)
    return PathChoice(path, _name(optimize), time.perf_counter() - start)


def _name(optimize: Any) -> str:
    """How the path report names an ``optimize=`` value."""
    if optimize is False:
        return "none (single fused loop)"
    if isinstance(optimize, tuple):
        return "explicit path"
    if optimize == "auto":
        return "auto: opt_einsum 'auto'"
    if isinstance(optimize, str):
        return f"opt_einsum {optimize!r}"
    return type(optimize).__name__


def _opt_einsum_search(
    inputs: list[tuple[int, ...]],
    output: tuple[int, ...],
    size: dict[int, int],
    optimize: Any,
    memory_limit: Any,
) -> tuple[tuple[int, ...], ...]:
    """opt_einsum's search, called through its path functions (what ``contract_path`` does
    inside, without building its report)."""
    memory_arg = _memory_arg(memory_limit, [*inputs, output], size)
    if len(inputs) <= 2:
        return (tuple(range(len(inputs))),)
    input_sets = [set(t) for t in inputs]
    output_set = set(output)
    if isinstance(optimize, _oe_paths.PathOptimizer):
        # an optimizer object gets one-character labels, as opt_einsum.contract_path gives it
        # (cotengra's, for one, accepts nothing else)
        names, out, sizes = _as_characters(inputs, output, size)
        path = optimize([set(t) for t in names], set(out), sizes, memory_arg)
    else:
        path = _oe_paths.get_path_fn(optimize)(input_sets, output_set, size, memory_arg)
    return tuple(tuple(int(i) for i in p) for p in path)


def _memory_arg(memory_limit: Any, terms: list[tuple[int, ...]], size: dict[int, int]
                ) -> int | None:
    """opt_einsum's reading of ``memory_limit`` (``'max_input'``: the largest operand or result)."""
    if memory_limit == "max_input":
        return max(math.prod(size[lab] for lab in t) for t in terms)
    if isinstance(memory_limit, str):
        raise ValueError("memory_limit must be None, int, or the string Literal['max_input'].")
    if memory_limit is None:
        return None
    if memory_limit < 1:
        if memory_limit == -1:
            return None
        raise ValueError("Memory limit must be larger than 0, or -1")
    return int(memory_limit)


def auto_path(
    inputs: list[tuple[int, ...]],
    output: tuple[int, ...],
    size: dict[int, int],
    budget: float | None = None,
    seed: int = 0,
    tuning: Tuning | None = None,
    slowdown: float = 1.0,
) -> PathChoice:
    """The ``'auto'`` path of a network of more than ``tuning.auto_small_operands`` operands.

    opt_einsum's ``'auto'`` path first (greedy beyond 14 operands); then, when
    :func:`search_budget` of its cost (:func:`path_cost`) allows, randomized greedy trials
    (cotengrust's, in Rust, when installed; else a pure-Python variant), on hypernetworks (a
    summed label on four operands or more) elimination orders (:func:`_elimination_path`;
    randomized ones while they stay within 1.5x of the best path) and, for budgets of
    ``hyper_min_seconds`` or more with cotengra installed, cotengra's hyper-optimizer for the
    last two thirds of the budget. The
    path of the lowest :func:`path_cost` wins. The budget bounds the search after the first
    path, except that the first batch of greedy trials and, on a hypernetwork, the first
    elimination orders always run.

    Parameters
    ----------
    inputs : list of tuple of int
        Each operand's distinct labels.
    output : tuple of int
        The result's labels.
    size : dict
        Label -> extent.
    budget : float, optional
        Search seconds; by default :func:`search_budget` of the first path's cost.
    seed : int
        Seed of the randomized trials (how many trials fit in the budget depends on the
        machine's load, so a time-limited search is not bit-for-bit repeatable).
    tuning : Tuning, optional
        The search settings (by default the current ones).
    slowdown : float
        How many times longer than in float64 the contraction runs in its dtype: the default
        budget is :func:`search_budget` of the first path's cost at ``tuning.cost_per_second /
        slowdown``.

    Returns
    -------
    PathChoice
    """
    tuning = tuning or _tuning.current()
    weight = tuning.path_write_weight
    start = time.perf_counter()

    def cost(path: Sequence[Sequence[int]]) -> int:
        return path_cost(inputs, output, size, path, weight)

    # the starting point is what opt_einsum's 'auto' returns (branch-and-bound up to 14
    # operands, greedy beyond), so the search can only improve on opt_einsum's choice
    base = _opt_einsum_search(inputs, output, size, "auto", None)
    best, best_cost = base, cost(base)
    name = "auto: opt_einsum 'auto'"
    if budget is None:
        # (the cost may be an int too large for a float: the rate is scaled instead)
        budget = search_budget(best_cost, tuning.cost_per_second / slowdown, tuning=tuning)
    if budget <= 0:
        return PathChoice(best, name, time.perf_counter() - start, budget)
    # the budget counts from here: planning costs opt_einsum's own search plus at most the
    # budget (opt_einsum's greedy alone can take as long as the budget of a 2 ms contraction)
    searching = time.perf_counter()
    deadline = searching + budget
    use_hyper = budget >= tuning.hyper_min_seconds and cotengra_available()
    # with cotengra's hyper-optimizer to follow, the greedy searches get a third of the time
    until = searching + budget / 3 if use_hyper else deadline
    rust = _cotengrust() is not None
    how = "cotengrust random-greedy" if rust else "random-greedy"
    greedy_trials = elimination_trials = 0
    greedy_cost = elimination_cost = None
    rng = random.Random(seed)

    def greedy_batch() -> None:
        nonlocal best, best_cost, name, greedy_trials, greedy_cost
        if rust:
            batch = min(4 << (greedy_trials // 4).bit_length(), 64)
            # every other batch draws the greedy weight from 0.5-2 instead of cotengrust's
            # 0.1-4: by path_cost, 16 trials found 2x cheaper paths on a 3D lattice, 1.2x on a
            # random graph, 1.25x dearer on the language models (medians of 15 seeds)
            narrow = (greedy_trials // 4).bit_length() % 2 == 1
            path, log_flops = _rust_random_greedy(inputs, output, size, batch,
                                                  seed + greedy_trials,
                                                  (0.5, 2.0) if narrow else None)
            greedy_trials += batch
            # cotengrust counts no more FLOPs than path_flops, and path_cost adds writes: a
            # batch whose FLOPs alone exceed the best cost cannot win (skip pricing it)
            found = [path] if log_flops < _log(best_cost) / math.log(10) else []
        else:
            found = _random_greedy(inputs, output, size, until, seed, greedy_trials, 4)
            greedy_trials += len(found)
        for path in found:
            c = cost(path)
            greedy_cost = c if greedy_cost is None else min(greedy_cost, c)
            if c < best_cost:
                best, best_cost, name = path, c, "greedy"

    def elimination(randomized: bool, limit: float) -> None:
        nonlocal best, best_cost, name, elimination_trials, elimination_cost
        for score in ("width", "fill") if not randomized else (rng.choice(("width", "fill")),):
            temperature = 10 ** rng.uniform(-2.0, 0.5) if randomized else 0.0
            path = _elimination_path(inputs, output, size, score, rng, temperature, limit)
            if path is None:  # out of time
                return
            elimination_trials += 1
            c = cost(path)
            elimination_cost = c if elimination_cost is None else min(elimination_cost, c)
            if c < best_cost:
                best, best_cost, name = path, c, "elimination"

    greedy_batch()  # at least one batch, whatever the time
    if _has_hyperedges(inputs, output):
        # on a hypernetwork (a summed label on four operands or more) eliminating one summed
        # label at a time can be far better than pairwise greedy (random 3-SAT counting: 25x
        # fewer FLOPs than 256 greedy trials), so it runs even past the budget, for as long
        # again as the budget or opt_einsum's search took; on graphs, and on a hypernetwork of
        # labels on up to three operands, it never won (7 einsum_benchmark networks)
        extra = max(budget, searching - start)
        elimination(False, max(until, time.perf_counter() + extra))
    turn = 0
    while time.perf_counter() < until and greedy_trials < 64 * _MAX_TRIALS:
        # randomized elimination orders every other turn while they stay within 1.5x of the
        # best path
        competitive = elimination_cost is not None and 2 * elimination_cost <= 3 * best_cost
        if competitive and turn % 2:
            elimination(True, until)
        elif not rust and greedy_trials >= _MAX_TRIALS:
            break
        else:
            greedy_batch()
        turn += 1
    remaining = deadline - time.perf_counter()
    if use_hyper and remaining > 0.05:
        path = _cotengra_path(inputs, output, size, remaining)
        if path is not None:
            c = cost(path)
            if c < best_cost:
                best, best_cost, name = path, c, "cotengra"
    if name == "greedy":
        name = f"auto: {how} ({greedy_trials} trials)"
    elif name == "elimination":
        name = f"auto: elimination order ({elimination_trials} orders)"
    elif name == "cotengra":
        name = "auto: cotengra HyperOptimizer"
    else:
        name += f" (kept after {greedy_trials} {how} trials"
        name += f", {elimination_trials} elimination orders)" if elimination_trials else ")"
    return PathChoice(best, name, time.perf_counter() - start, budget)


def _has_hyperedges(
    inputs: Sequence[Sequence[int]], output: Sequence[int], degree: int = 4
) -> bool:
    """Whether some summed label is shared by ``degree`` operands or more."""
    count: dict[int, int] = {}
    out = set(output)
    for term in inputs:
        for lab in term:
            count[lab] = count.get(lab, 0) + 1
    return any(n >= degree and lab not in out for lab, n in count.items())


def _elimination_path(
    inputs: Sequence[Sequence[int]],
    output: Sequence[int],
    size: dict[int, int],
    score: str = "width",
    rng: random.Random | None = None,
    temperature: float = 0.0,
    deadline: float = math.inf,
) -> tuple[tuple[int, ...], ...] | None:
    """A path from an elimination order of the summed labels (None past ``deadline``).

    Variable elimination, as for graphical models: repeatedly pick the summed label whose
    elimination makes the smallest tensor, contract every operand that carries it (smallest
    two first), and go on; what is left (output labels, separate components) is contracted
    smallest first at the end. ``score`` ``'width'`` measures the tensor the step spans (the
    picked label included: its FLOPs), ``'fill'`` the result (without it). A ``temperature``
    above 0 perturbs the scores (log2 sizes) with Gumbel noise from ``rng``, for randomized
    trials. Pairwise greedy looks at one pair at a time; on hypernetworks (a label shared by
    many operands, e.g. a SAT variable in many clauses) that misses the order in which whole
    labels disappear.
    """
    logs = {lab: math.log2(e) if e > 0 else 0.0 for lab, e in size.items()}
    out = frozenset(output)
    terms = {i: frozenset(t) for i, t in enumerate(inputs)}
    where: dict[int, set[int]] = {}
    for i, term in terms.items():
        for lab in term:
            where.setdefault(lab, set()).add(i)
    ssa: list[tuple[int, int]] = []

    def weight(i: int) -> float:
        return sum(logs[lab] for lab in terms[i])

    def merge(a: int, b: int) -> int:
        new = len(inputs) + len(ssa)
        union = terms.pop(a) | terms.pop(b)
        keep = []
        for lab in union:
            holders = where[lab]
            holders.discard(a)
            holders.discard(b)
            if holders or lab in out:
                holders.add(new)
                keep.append(lab)
            else:
                del where[lab]
        terms[new] = frozenset(keep)
        ssa.append((a, b))
        return new

    def contract_all(ids: Iterable[int]) -> None:
        heap = [(weight(i), i) for i in ids]
        heapq.heapify(heap)
        while len(heap) > 1:
            _, a = heapq.heappop(heap)
            _, b = heapq.heappop(heap)
            new = merge(a, b)
            heapq.heappush(heap, (weight(new), new))

    # each summed label's score, recomputed only when an elimination touched its operands
    scores: dict[int, float] = {}
    while True:
        if time.perf_counter() > deadline:
            return None
        picked, picked_score = None, math.inf
        for lab, holders in where.items():
            if lab in out or len(holders) < 2:
                continue
            value = scores.get(lab)
            if value is None:
                spanned = frozenset().union(*(terms[i] for i in holders))
                value = sum(logs[x] for x in spanned)
                if score == "fill":
                    value -= logs[lab]
                if temperature:
                    value += temperature * math.log(-math.log(rng.random() or 1e-300))
                scores[lab] = value
            if value < picked_score:
                picked, picked_score = lab, value
        if picked is None:
            break
        bucket = list(where[picked])
        touched = frozenset().union(*(terms[i] for i in bucket))
        contract_all(bucket)
        for lab in touched:
            scores.pop(lab, None)
    contract_all(list(terms))
    return tuple(tuple(int(i) for i in p) for p in _oe_paths.ssa_to_linear(ssa))


def _cotengrust() -> Any:
    """The optional ``cotengrust`` module (Rust greedy searches), or None."""
    try:
        import cotengrust
    except ImportError:
        return None
    return cotengrust


def _as_characters(
    inputs: list[tuple[int, ...]], output: tuple[int, ...], size: dict[int, int]
) -> tuple[list[tuple[str, ...]], tuple[str, ...], dict[str, int]]:
    """The problem with one-character labels, which cotengrust (and so cotengra) requires."""
    char = symbol_names([*inputs, tuple(size)])
    names = [tuple(char[lab] for lab in t) for t in inputs]
    return names, tuple(char[lab] for lab in output), {char[lab]: e for lab, e in size.items()}


def _rust_random_greedy(
    inputs: list[tuple[int, ...]],
    output: tuple[int, ...],
    size: dict[int, int],
    trials: int,
    seed: int,
    costmod: tuple[float, float] | None = None,
) -> tuple[tuple[tuple[int, ...], ...], float]:
    """One batch of cotengrust's randomized greedy: (the batch's fewest-FLOP path, log10 FLOPs);
    ``costmod`` is the range of its greedy weight (cotengrust's default 0.1-4).

    Rust keeps the best of a batch by FLOPs; ``auto_path`` ranks the batches' winners by
    :func:`path_cost`, so batches stay small (4-64 trials).
    """
    names, out, sizes = _as_characters(inputs, output, size)
    weights = {} if costmod is None else {"costmod": costmod}
    path, log_flops = _cotengrust().optimize_random_greedy_track_flops(
        names, out, sizes, ntrials=trials, seed=seed, **weights
    )
    return tuple(tuple(int(i) for i in p) for p in path), log_flops


def _random_greedy(
    inputs: list[tuple[int, ...]],
    output: tuple[int, ...],
    size: dict[int, int],
    deadline: float,
    seed: int,
    first: int = 0,
    count: int = _MAX_TRIALS,
) -> list[tuple[tuple[int, ...], ...]]:
    """Randomized greedy trials (pure Python) ``first``, ``first + 1``, ... until ``deadline``
    or ``count`` trials (at least one): the path of each.

    Each trial runs opt_einsum's greedy with the score "size of the new tensor / c - sizes of
    the two removed ones * c" (``c`` small: remove big tensors first; large: keep new tensors
    small). The first trials use the fixed weights ``_SWEEP``; later ones draw ``c``
    log-uniformly from 0.1-4, jitter the score by 1 %, and choose among the best eight
    candidates by a Boltzmann weight at a random temperature. The trial in progress at the
    deadline is finished.
    """
    from opt_einsum.path_random import thermal_chooser

    input_sets = [frozenset(t) for t in inputs]
    output_set = frozenset(output)
    state = random.getstate()  # opt_einsum's chooser draws from the global generator
    found: list[tuple[tuple[int, ...], ...]] = []
    try:
        for trials in range(first, first + count):
            if found and time.perf_counter() >= deadline:
                break
            rng = random.Random(seed * 1_000_003 + trials)
            random.seed(rng.random())
            if trials < len(_SWEEP):
                # plain greedy runs at a few spread-out weights first: each one alone repairs
                # a family (0.3: trees and chains; 2: random graphs) that the standard score
                # (``c = 1``) handles badly
                costmod, choose_fn, jitter = _SWEEP[trials], None, 0.0
            else:
                costmod = math.exp(rng.uniform(math.log(0.1), math.log(4.0)))
                temperature = 10 ** rng.uniform(-3.0, 0.0)
                jitter = 0.01

                def choose_fn(queue, remaining, t=temperature):
                    return thermal_chooser(queue, remaining, nbranch=8, temperature=t)

            def cost_fn(size12, size1, size2, k12, k1, k2, c=costmod, j=jitter):
                score = size12 / c - (size1 + size2) * c
                return score * random.gauss(1.0, j) if j else score

            ssa = _oe_paths.ssa_greedy_optimize(input_sets, output_set, size, choose_fn, cost_fn)
            found.append(tuple(tuple(int(i) for i in p) for p in _oe_paths.ssa_to_linear(ssa)))
    finally:
        random.setstate(state)
    return found


def _cotengra_path(
    inputs: list[tuple[int, ...]],
    output: tuple[int, ...],
    size: dict[int, int],
    seconds: float,
) -> tuple[tuple[int, ...], ...] | None:
    """cotengra's hyper-optimized path within ``seconds``, minimizing its ``'combo'`` cost (FLOPs
    plus 64 per element written, as :func:`path_cost`); None if cotengra fails."""
    try:
        import warnings

        import cotengra

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "couldn't find optlib", no kahypar
            optimizer = cotengra.HyperOptimizer(
                minimize="combo",  # the path_cost that auto_path ranks by
                max_time=seconds,
                max_repeats=1_000_000,
                parallel=False,
                progbar=False,
                on_trial_error="ignore",
            )
            tree = optimizer.search(*_as_characters(inputs, output, size))
            return tuple(tuple(int(i) for i in p) for p in tree.get_path())
    except Exception:  # noqa: BLE001 - an optional accelerator must never break planning
        return None

