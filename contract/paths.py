"""Find contraction paths: opt_einsum's optimizers, and a time-budgeted search for big networks.

``optimize='auto'`` (and ``True``) means:

* up to ``auto_small_operands`` operands (a field of :class:`~contract._tuning.Tuning`, as are
  the other settings named here), or with a ``memory_limit``: opt_einsum's own ``'auto'``
  (optimal for few operands, branch-and-bound up to eight), called straight through its path
  function so that planning a small equation costs no more than opt_einsum's own search;
* beyond that: opt_einsum's ``'auto'`` path first (greedy beyond 14 operands); from its FLOP
  count, an estimate of how long the contraction will run (``flops_per_second``); then a
  search for at most ``search_fraction`` of that time (:func:`search_budget`, capped at
  ``search_max_seconds``): randomized greedy trials -- in Rust when the optional ``cotengrust``
  package is installed, else in Python -- and, when the budget reaches ``hyper_min_seconds`` and
  the optional ``cotengra`` package is installed, cotengra's hyper-optimizer for the last two
  thirds of the budget. The cheapest path found (in FLOPs) wins; the first path is always a
  candidate, so the search never makes a path worse than opt_einsum's.

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

import importlib.util
import math
import random
import time
from collections.abc import Sequence
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
    flops: float,
    flops_per_second: float | None = None,
    fraction: float | None = None,
    max_seconds: float | None = None,
    min_seconds: float | None = None,
    tuning: Tuning | None = None,
) -> float:
    """Seconds the ``'auto'`` search may spend on a contraction whose greedy path costs ``flops``.

    ``fraction * flops / flops_per_second``, capped at ``max_seconds``; 0.0 when that is below
    ``min_seconds`` (the greedy path is kept without searching). Defaults come from ``tuning``.

    Parameters
    ----------
    flops : float
        The greedy path's FLOP count (opt_einsum units); may be a huge int.
    flops_per_second, fraction, max_seconds, min_seconds : float, optional
        Override ``tuning``'s ``flops_per_second``, ``search_fraction``, ``search_max_seconds``
        and ``search_min_seconds``.
    tuning : Tuning, optional
        The settings (by default the current ones).

    Returns
    -------
    float
        The budget in seconds (0.0: do not search).

    Examples
    --------
    >>> search_budget(1e6, flops_per_second=1e9, fraction=0.25)  # 1 ms to run: no search
    0.0
    >>> search_budget(4e9, flops_per_second=1e9, fraction=0.25)  # 4 s to run: search 1 s
    1.0
    >>> search_budget(10**400, flops_per_second=1e9, max_seconds=5.0)  # capped, no overflow
    5.0
    """
    tuning = tuning or _tuning.current()
    rate = tuning.flops_per_second if flops_per_second is None else flops_per_second
    frac = tuning.search_fraction if fraction is None else fraction
    cap = tuning.search_max_seconds if max_seconds is None else max_seconds
    floor = tuning.search_min_seconds if min_seconds is None else min_seconds
    if flops <= 0 or rate <= 0 or frac <= 0:
        return 0.0
    # in logs: a FLOP count of a 100-site MPS does not fit in a float
    log_budget = math.log(frac) + _log(flops) - math.log(rate)
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
    work = [frozenset(t) for t in inputs]
    out = frozenset(output)
    total = 0
    for positions in path:
        picked = [work[p] for p in positions]
        for p in sorted(positions, reverse=True):
            del work[p]
        labels = frozenset().union(*picked)
        keep = labels & (out.union(*work))
        inner = bool(labels - keep)
        total += math.prod(size[lab] for lab in labels) * max(1, len(picked) - 1 + int(inner))
        work.append(keep)
    return total


def find_path(
    inputs: list[tuple[int, ...]],
    output: tuple[int, ...],
    size: dict[int, int],
    optimize: Any,
    memory_limit: Any = None,
    tuning: Tuning | None = None,
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
            return auto_path(inputs, output, size, tuning=tuning)
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
) -> PathChoice:
    """The ``'auto'`` path of a network of more than ``tuning.auto_small_operands`` operands.

    opt_einsum's ``'auto'`` path first (greedy beyond 14 operands); then, when
    :func:`search_budget` of its FLOP count allows, randomized greedy trials (cotengrust's, in
    Rust, when installed; else a pure-Python variant) and, for budgets of ``hyper_min_seconds``
    or more with cotengra installed, cotengra's hyper-optimizer for the last two thirds of the
    budget. The path with the fewest FLOPs wins. The budget bounds the whole search, the first
    path included.

    Parameters
    ----------
    inputs : list of tuple of int
        Each operand's distinct labels.
    output : tuple of int
        The result's labels.
    size : dict
        Label -> extent.
    budget : float, optional
        Search seconds; by default :func:`search_budget` of the greedy path's FLOPs.
    seed : int
        Seed of the randomized trials (how many trials fit in the budget depends on the
        machine's load, so a time-limited search is not bit-for-bit repeatable).
    tuning : Tuning, optional
        The search settings (by default the current ones).

    Returns
    -------
    PathChoice
    """
    tuning = tuning or _tuning.current()
    start = time.perf_counter()
    # the starting point is what opt_einsum's 'auto' returns (branch-and-bound up to 14
    # operands, greedy beyond), so the search can only improve on opt_einsum's choice
    base = _opt_einsum_search(inputs, output, size, "auto", None)
    best, best_flops = base, path_flops(inputs, output, size, base)
    name = "auto: opt_einsum 'auto'"
    if budget is None:
        budget = search_budget(best_flops, tuning=tuning)
    deadline = start + budget
    use_hyper = budget >= tuning.hyper_min_seconds and cotengra_available()
    if budget > 0:
        # with cotengra's hyper-optimizer to follow, randomized greedy gets a third of the time
        until = start + budget / 3 if use_hyper else deadline
        if _cotengrust() is not None:
            path, trials = _rust_random_greedy(inputs, output, size, until, seed)
            how = "cotengrust random-greedy"
        else:
            path, trials = _random_greedy(inputs, output, size, until, seed)
            how = "random-greedy"
        flops = path_flops(inputs, output, size, path)
        if flops < best_flops:
            best, best_flops, name = path, flops, f"auto: {how} ({trials} trials)"
        else:
            name += f" (kept after {trials} {how} trials)"
    remaining = deadline - time.perf_counter()
    if use_hyper and remaining > 0.05:
        path = _cotengra_path(inputs, output, size, remaining)
        if path is not None:
            flops = path_flops(inputs, output, size, path)
            if flops < best_flops:
                best, best_flops, name = path, flops, "auto: cotengra HyperOptimizer"
    return PathChoice(best, name, time.perf_counter() - start, budget)


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
    deadline: float,
    seed: int,
) -> tuple[tuple[tuple[int, ...], ...], int]:
    """cotengrust's randomized greedy in growing batches until ``deadline``: (best, trials)."""
    rust = _cotengrust()
    names, out, sizes = _as_characters(inputs, output, size)
    best: tuple[tuple[int, ...], ...] = ()
    best_log = math.inf
    trials, batch = 0, 4
    while trials == 0 or (time.perf_counter() < deadline and trials < 64 * _MAX_TRIALS):
        path, log_flops = rust.optimize_random_greedy_track_flops(
            names, out, sizes, ntrials=batch, seed=seed + trials
        )
        trials += batch
        if log_flops < best_log:
            best, best_log = tuple(tuple(int(i) for i in p) for p in path), log_flops
        batch = min(2 * batch, 64)
    return best, trials


def _random_greedy(
    inputs: list[tuple[int, ...]],
    output: tuple[int, ...],
    size: dict[int, int],
    deadline: float,
    seed: int,
) -> tuple[tuple[tuple[int, ...], ...], int]:
    """Randomized greedy trials (pure Python) until ``deadline``: (best path, trials run).

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
    best: tuple[tuple[int, ...], ...] = ()
    best_flops = -1
    trials = 0
    try:
        while trials < _MAX_TRIALS and (trials == 0 or time.perf_counter() < deadline):
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
            path = tuple(tuple(p) for p in _oe_paths.ssa_to_linear(ssa))
            flops = path_flops(inputs, output, size, path)
            if best_flops < 0 or flops < best_flops:
                best, best_flops = path, flops
            trials += 1
    finally:
        random.setstate(state)
    return best, trials


def _cotengra_path(
    inputs: list[tuple[int, ...]],
    output: tuple[int, ...],
    size: dict[int, int],
    seconds: float,
) -> tuple[tuple[int, ...], ...] | None:
    """cotengra's hyper-optimized path within ``seconds`` (None if cotengra fails)."""
    try:
        import warnings

        import cotengra

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "couldn't find optlib", no kahypar
            optimizer = cotengra.HyperOptimizer(
                minimize="flops",
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

