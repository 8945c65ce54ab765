"""Turn an Equation, its dtype and an ``optimize=`` choice into a frozen Plan of Steps.

The contraction order comes from :mod:`contract.paths` (opt_einsum's optimizers, every
``optimize=`` form they accept passed straight through, and the time-budgeted ``'auto'`` search
for large networks), except that up to ``Tuning.fuse_max_operands`` operands whose pairwise path
saves no arithmetic (``ij,ij,ij->ij``) become one fused step; then each step is told how it runs
(by the thresholds of a :class:`~contract._tuning.Tuning`):

``blas``
    a float/complex pairwise step shaped like a (batched) matrix product, run by NumPy's matmul;
``gemm``
    an integer (or, with ``use_blas=False``, any) pairwise matrix product big enough to repay
    packing its operands: the blocked Numba GEMM kernel;
``kernel``
    everything else -- integer and bool dtypes, Hadamard products, reductions, diagonals, traces,
    outer products, small or batch-heavy products, and fused multi-operand steps -- run by the
    generic strided Numba kernel;
``copy``
    a single operand that is only transposed or has a diagonal taken (no sum): a strided copy.

Before the pairwise path, an operand whose labels include some that no other operand and not
the output has is reduced on its own (:func:`_pre_reductions`), when that saves work; such a step
replaces its operand in place (``Step.in_place``), so :attr:`Plan.path` stays the pairwise path.

:func:`runs_in_numpy_loop` flags tiny equations, which the API hands whole to numpy's C loop.

The Plan is plain data (tuples of ints and strings), so it can be cached, printed, and one day
built at compile time inside Numba.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import opt_einsum

from . import _tuning
from ._dtypes import blas_capable, gemm_capable
from ._tuning import Tuning
from .parser import Equation, symbol_names
from .paths import PathChoice, _name, find_path

__all__ = [
    "Step",
    "Plan",
    "make_plan",
    "normalize_optimize",
    "split_memory_limit",
    "check_limits",
    "MAX_INDEX",
    "PathIndexError",
    "UnknownOptimizerError",
    "IncompletePathError",
    "runs_in_numpy_loop",
]

@dataclass(frozen=True)
class Step:
    """One contraction of a Plan.

    Attributes
    ----------
    operands : tuple of int
        Positions in the working list of operands (removed; the result is appended), as in
        opt_einsum's paths.
    terms : tuple of tuple of int
        The (distinct) labels of each input.
    output : tuple of int
        The labels of the result, in axis order.
    method : str
        ``'blas'``, ``'gemm'``, ``'kernel'`` or ``'copy'``.
    flops : int
        Floating-point operation count as opt_einsum counts it.
    in_place : bool
        A pre-reduction: one input operand, its labels summed in no other operand summed out
        (and repeated labels read as one diagonal), the result *replacing* that operand at its
        position. Such steps come first and are not part of :attr:`Plan.path`.
    """

    operands: tuple[int, ...]
    terms: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    method: str
    flops: int
    in_place: bool = False

    @cached_property
    def summed(self) -> tuple[int, ...]:
        """Labels summed over in this step."""
        seen: list[int] = []
        for term in self.terms:
            seen.extend(lab for lab in term if lab not in seen and lab not in self.output)
        return tuple(seen)


@dataclass(frozen=True)
class Plan:
    """How to compute one einsum: the order of contractions and how each one runs."""

    equation: Equation
    dtype: str  # numpy dtype char of the computation
    steps: tuple[Step, ...]
    naive_flops: int
    largest_intermediate: int
    optimizer: str = field(default="auto")
    #: seconds spent finding the path (the search, not the rest of planning)
    path_search: float = 0.0
    #: the thresholds the plan was made with, and is run with
    tuning: Tuning = field(default=_tuning.DEFAULT, repr=False)

    @property
    def path(self) -> list[tuple[int, ...]]:
        """The contraction path in opt_einsum's form (pre-reductions, which keep their operand's
        position, are not part of it: the path is valid as ``optimize=`` input as it stands)."""
        return [step.operands for step in self.steps if not step.in_place]

    @property
    def opt_flops(self) -> int:
        """The total FLOP count of the planned order."""
        return sum(step.flops for step in self.steps)

    @cached_property
    def prepared(self) -> dict:
        """The executor's runs of this plan prepared for one operand geometry each (shapes and
        strides -> a run with every per-step decision already made); empty until it runs."""
        return {}

    @cached_property
    def largest_loop(self) -> int:
        """The largest loop nest (every label a step touches, multiplied) or step result of the
        plan, in elements: a bound for the size checks made before a plan runs."""
        size = self.equation.size_dict
        return max(
            max(math.prod(size[lab] for lab in set().union(*step.terms)),
                math.prod(size[lab] for lab in step.output))
            for step in self.steps
        )

    @property
    def speedup(self) -> float | Decimal:
        """``naive_flops / opt_flops``: a float, or a :class:`~decimal.Decimal` when the ratio
        is too large for one (the naive count of a network of a hundred tensors can exceed any
        float; opt_einsum keeps such counts as Decimals too)."""
        return _ratio(self.naive_flops, max(self.opt_flops, 1))

    def report(self, numpy_loop: bool = False) -> str:
        """A readable table of the plan: per step the contraction, FLOPs, result size and method.

        With ``numpy_loop``, a last line says the whole call runs in numpy's C einsum loop instead
        (a tiny equation, see :func:`runs_in_numpy_loop`).
        """
        eq = self.equation
        size = eq.size_dict
        names = symbol_names(eq.terms)
        fmt = "".join
        lines = [
            f"  Complete contraction:  {','.join(fmt(names[lab] for lab in t) for t in eq.terms)}->"
            f"{fmt(names[lab] for lab in eq.output)}",
            f"         Optimizer:  {self.optimizer}",
            f"       Path search:  {_seconds_text(self.path_search)}",
            f"         Naive FLOP count:  {_count(self.naive_flops)}",
            f"     Optimized FLOP count:  {_count(self.opt_flops)}",
            f"      Theoretical speedup:  {_count(self.speedup)}",
            f"    Largest intermediate:  {_count(self.largest_intermediate)} elements",
            "-" * 78,
            f"{'step':>4}  {'contraction':<32} {'FLOPs':>10} {'result size':>12}  runs as",
            "-" * 78,
        ]
        for k, step in enumerate(self.steps):
            inputs = [eq.terms[step.operands[0]]] if step.in_place else step.terms
            text = (
                ",".join(fmt(names[lab] for lab in t) for t in inputs)
                + "->"
                + fmt(names[lab] for lab in step.output)
            )
            out_size = math.prod(size[lab] for lab in step.output)
            how = {
                "blas": "BLAS (numpy matmul)",
                "gemm": "blocked GEMM kernel",
                "kernel": _kernel_words(step),
                "copy": "strided copy",
            }[step.method]
            if step.in_place:
                how += f", pre-reduces operand {step.operands[0]}"
            lines.append(f"{k:>4}  {text:<32} {_count(step.flops):>10} {out_size:>12}  {how}")
        if numpy_loop:
            lines.append("-" * 78)
            lines.append(f"Tiny equation ({math.prod(size.values())} loop iterations): the whole "
                         f"call runs in numpy's C einsum loop")
        return "\n".join(lines)


#: The kernels index with int64 (intp): the largest loop nest a step may have, and the largest
#: byte size of an array numpy can allocate.
MAX_INDEX = int(np.iinfo(np.intp).max)


def check_limits(plan: Plan, itemsize: int) -> None:
    """Refuse a plan the engine cannot index or allocate, from its sizes alone.

    numpy raises ``ValueError('iterator is too large')`` when an einsum's iteration space does
    not fit in ``intp``; the kernels index with int64, so a step whose loop nest is larger would
    wrap around silently (and a BLAS step that large would never finish). An intermediate whose
    byte size does not fit in ``intp`` cannot be allocated (numpy's ``ValueError('array is too
    big ...')``). Checked before a plan runs (the run-time half, whether the system grants the
    memory, is :func:`contract.executor.reserve`).

    Raises
    ------
    ValueError
        Naming the step and its sizes.
    """
    if plan.largest_loop * itemsize <= MAX_INDEX:
        return  # no step loops over, or allocates, that much (computed once per plan)
    size = plan.equation.size_dict
    last = len(plan.steps) - 1
    for k, step in enumerate(plan.steps):
        if step.method != "copy":
            labels = set().union(*step.terms)
            space = math.prod(size[lab] for lab in labels)
            if space > MAX_INDEX:
                raise ValueError(
                    f"iterator is too large: step {k} of the plan loops over {space} index "
                    f"combinations (sizes {sorted(size[lab] for lab in labels)}), more than "
                    f"{MAX_INDEX}")
        shape = tuple(size[lab] for lab in step.output)
        if k != last and math.prod(shape) * itemsize > MAX_INDEX:
            raise ValueError(
                f"array is too big: intermediate {k} of the plan has shape {shape} "
                f"({math.prod(shape)} elements of {itemsize} bytes), larger than the maximum "
                f"possible size")


def _ratio(num: int, den: int) -> float | Decimal:
    """``num / den`` as a float, or as a Decimal when it does not fit in one."""
    try:
        return num / den
    except OverflowError:
        return Decimal(num) / Decimal(den)


def _count(value: float | int | Decimal) -> str:
    """A count or ratio in 4 significant digits, also beyond the range of a float."""
    try:
        return f"{value:.4g}"
    except OverflowError:  # an int too large for a float
        return f"{Decimal(value):.4g}"


def runs_in_numpy_loop(eq: Equation, tuning: Tuning | None = None) -> bool:
    """Whether :func:`contract.einsum` hands the whole equation to numpy's C einsum loop.

    True for a tiny equation (see ``Tuning.numpy_loop_max_work``; by default the current
    settings') with no zero-size axis, where numpy's loop is done before this engine could launch
    a kernel.
    """
    limit = (tuning or _tuning.current()).numpy_loop_max_work
    sizes = eq.size_dict.values()
    return 0 not in sizes and math.prod(sizes) * len(eq.terms) <= limit


def _seconds_text(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def _kernel_words(step: Step) -> str:
    if len(step.terms) > 2:
        return f"fused kernel ({len(step.terms)} operands)"
    return "strided kernel"


def split_memory_limit(optimize: Any) -> tuple[Any, int | None]:
    """numpy's ``optimize=(name, memory_limit)`` as ``(name, memory_limit)``; any other form as
    ``(optimize, None)``. The limit is the largest intermediate allowed, in elements; ``0`` allows
    none, so the path is one step over all operands."""
    if (isinstance(optimize, (list, tuple)) and len(optimize) == 2
            and isinstance(optimize[0], str) and optimize[0] != "einsum_path"
            and not isinstance(optimize[1], (tuple, list))):
        try:
            return optimize[0], int(optimize[1])
        except (TypeError, ValueError):
            raise TypeError(f"optimize: the memory limit of {optimize!r} must be an int") from None
    return optimize, None


def normalize_optimize(optimize: Any) -> Any:
    """Map numpy's and opt_einsum's ``optimize=`` forms onto what opt_einsum accepts.

    ``True`` means ``'auto'`` (see :mod:`contract.paths`: opt_einsum's ``'auto'`` for up to eight
    operands, a time-budgeted search beyond);
    ``False`` means numpy's unoptimized einsum: one fused loop over all labels; a numpy-style
    explicit path ``['einsum_path', (0, 1), ...]`` drops its marker; a numpy-style
    ``(name, memory_limit)`` tuple keeps only the name (the memory limit is an argument of its own,
    see :func:`split_memory_limit`).

    Raises
    ------
    UnknownOptimizerError
        For an unknown optimizer name (a KeyError and a ValueError).
    TypeError
        For a value of the wrong type.
    """
    if optimize is True:
        return "auto"
    if optimize is False or optimize is None:
        return False
    if isinstance(optimize, str):
        if optimize not in opt_einsum.paths._PATH_OPTIONS:
            raise UnknownOptimizerError(
                f"optimize: unknown path optimizer {optimize!r}; expected a bool, "
                f"one of {sorted(opt_einsum.paths._PATH_OPTIONS)}, an explicit path "
                f"or an opt_einsum PathOptimizer"
            )
        return optimize
    if isinstance(optimize, opt_einsum.paths.PathOptimizer):
        return optimize
    if isinstance(optimize, (list, tuple)):
        items = list(optimize)
        if items and items[0] == "einsum_path":
            items = items[1:]
        if len(items) == 2 and isinstance(items[0], str) and not isinstance(items[1], tuple):
            return normalize_optimize(items[0])  # numpy's ('greedy', memory_limit)
        try:
            return tuple(tuple(int(i) for i in pair) for pair in items)
        except (TypeError, ValueError):
            raise TypeError(
                f"optimize: an explicit path must be a sequence of tuples of ints, got {optimize!r}"
            ) from None
    if callable(optimize):
        return optimize
    raise TypeError(
        f"optimize: expected a bool, a path optimizer name, an explicit path or a "
        f"PathOptimizer, got {type(optimize).__name__}"
    )


def _distinct(term: tuple[int, ...]) -> tuple[int, ...]:
    out: list[int] = []
    for lab in term:
        if lab not in out:
            out.append(lab)
    return tuple(out)


def _flops(terms: list[tuple[int, ...]], output: tuple[int, ...], size: dict[int, int]) -> int:
    labels = set().union(*terms) if terms else set()
    inner = bool(labels - set(output))
    overall = math.prod(size[lab] for lab in labels)
    return overall * max(1, len(terms) - 1 + int(inner))


def _gemm_shape(
    a: tuple[int, ...], b: tuple[int, ...], out: tuple[int, ...], size: dict[int, int]
) -> tuple[int, int, int, int] | None:
    """(batch, m, n, k) sizes if the pair step is a (batched) matrix product, else None."""
    sa, sb, so = set(a), set(b), set(out)
    if (sa - sb - so) or (sb - sa - so):
        # labels summed in one operand only: the kernel does the pre-sum and the product in one go
        return None
    k = [lab for lab in a if lab in sb and lab not in so]
    if not k:
        return None
    batch = math.prod(size[lab] for lab in a if lab in sb and lab in so)
    m = math.prod(size[lab] for lab in a if lab not in sb)
    n = math.prod(size[lab] for lab in b if lab not in sa)
    return batch, m, n, math.prod(size[lab] for lab in k)


def _choose_method(
    terms: list[tuple[int, ...]], output: tuple[int, ...], size: dict[int, int], dtype: np.dtype,
    tuning: Tuning = _tuning.DEFAULT,
) -> str:
    if len(terms) == 1:
        return "kernel" if set(terms[0]) - set(output) else "copy"
    if len(terms) == 2 and blas_capable(dtype):
        shape = _gemm_shape(terms[0], terms[1], output, size)
        if shape is not None:
            batch, m, n, k = shape
            if k >= 2 and 2 * batch * m * n * k >= tuning.blas_min_flops:
                if m * n > 1 or (batch == 1 and k >= tuning.blas_min_dot):
                    return "blas"
    if len(terms) == 2 and gemm_capable(dtype):
        shape = _gemm_shape(terms[0], terms[1], output, size)
        if shape is not None:
            batch, m, n, k = shape
            if (k >= tuning.gemm_min_k and min(m, n) >= tuning.gemm_min_mn
                    and batch * m * n * k >= tuning.gemm_min_work):
                return "gemm"
    return "kernel"


def _intermediate_order(terms: list[tuple[int, ...]], keep: set[int]) -> tuple[int, ...]:
    """Labels of an intermediate result, in first-appearance order."""
    out: list[int] = []
    for term in terms:
        out.extend(lab for lab in term if lab in keep and lab not in out)
    return tuple(out)


def make_plan(
    eq: Equation,
    dtype: np.dtype,
    optimize: Any = "auto",
    memory_limit: Any = None,
    use_blas: bool = True,
    tuning: Tuning | None = None,
) -> Plan:
    """Plan an equation (cached for names, bools and explicit paths; optimizer objects plan anew).

    Parameters
    ----------
    eq : Equation
        The parsed equation.
    dtype : numpy.dtype
        The dtype of the computation.
    optimize : str, bool, tuple of tuples, or opt_einsum.paths.PathOptimizer
        Already normalized by :func:`normalize_optimize`.
    memory_limit : int, str or None
        opt_einsum's memory limit (largest intermediate, in elements, or ``'max_input'``).
    use_blas : bool
        Whether GEMM-shaped float/complex steps may run through BLAS.
    tuning : Tuning, optional
        The thresholds to plan (and later run) with; by default the current settings
        (:func:`contract._tuning.current`).

    Returns
    -------
    Plan
    """
    tuning = tuning or _tuning.current()
    if isinstance(memory_limit, int) and not isinstance(memory_limit, bool) and memory_limit == -1:
        memory_limit = None  # opt_einsum's spelling of "no limit"
    if isinstance(optimize, opt_einsum.paths.PathOptimizer) or callable(optimize):
        # an optimizer object: its settings may change between calls, and it records each
        # search it runs (RandomGreedy's costs, best path), so it plans every time, as in
        # opt_einsum
        return _make_plan(eq, np.dtype(dtype).char, optimize, memory_limit, use_blas, tuning)
    try:
        hash(optimize)
    except TypeError:  # an unhashable optimize= value: plan every time
        return _make_plan(eq, np.dtype(dtype).char, optimize, memory_limit, use_blas, tuning)
    return _make_plan_cached(eq, np.dtype(dtype).char, optimize, memory_limit, use_blas, tuning)


@lru_cache(maxsize=1024)
def _make_plan_cached(
    eq: Equation, dtype: str, optimize: Any, memory_limit: Any, use_blas: bool, tuning: Tuning
) -> Plan:
    return _make_plan(eq, dtype, optimize, memory_limit, use_blas, tuning)


def _opt_einsum_path(
    eq: Equation, terms: list[tuple[int, ...]], optimize: Any, memory_limit: Any, tuning: Tuning,
    dtype_char: str = "d",
) -> PathChoice:
    n = len(terms)
    try:
        choice = find_path(terms, eq.output, eq.size_dict, optimize, memory_limit, tuning,
                           dtype_char)
    except RuntimeError:
        # opt_einsum's 'dp' gives up when memory_limit cannot be met: one fused contraction (no
        # intermediates at all) is what the other optimizers fall back to
        return PathChoice((tuple(range(n)),), f"{_name(optimize)} (gave up: fused)", 0.0)
    path = list(choice.path)
    if (not isinstance(optimize, tuple) and isinstance(memory_limit, int)
            and _largest_intermediate(path, terms, eq) > memory_limit):
        # 'dp' can also return a path above the limit
        return PathChoice((tuple(range(n)),), f"{choice.optimizer} (over memory_limit: fused)",
                          choice.seconds)
    return choice


def _walk(
    path: list[tuple[int, ...]], terms: list[tuple[int, ...]], eq: Equation
) -> Iterator[tuple[tuple[int, ...], list[tuple[int, ...]], tuple[int, ...]]]:
    """Each step of ``path`` as (positions, the terms it contracts, its output labels).

    The last step's output is the equation's; an intermediate keeps the labels that later steps
    or the output still need, in first-appearance order.

    Raises
    ------
    ValueError
        When the last step leaves operands uncontracted (an explicit path).
    """
    work = list(terms)
    last = len(path) - 1
    for k, positions in enumerate(path):
        picked = [work[p] for p in positions]
        for p in sorted(positions, reverse=True):
            del work[p]
        if k == last:
            if work:
                raise ValueError(
                    f"optimize: the explicit path leaves {len(work)} operand(s) uncontracted"
                )
            output = eq.output
        else:
            output = _intermediate_order(picked, set(eq.output).union(*work))
        yield tuple(positions), picked, output
        work.append(output)


def _fusing_saves_traffic(
    path: list[tuple[int, ...]], terms: list[tuple[int, ...]], eq: Equation, max_operands: int
) -> bool:
    """Whether one fused step does no more arithmetic than ``path`` while skipping its
    intermediates: Hadamard-style products of up to ``max_operands`` operands, such as
    ``ij,ij,ij->ij``, where pairwise steps only add a round trip through memory."""
    if not 2 < len(terms) <= max_operands or len(path) < 2:
        return False
    size = eq.size_dict
    stepwise = sum(_flops(picked, output, size) for _, picked, output in _walk(path, terms, eq))
    return _flops(terms, eq.output, size) <= stepwise


def _largest_intermediate(
    path: list[tuple[int, ...]], terms: list[tuple[int, ...]], eq: Equation
) -> int:
    """The largest intermediate (not the result) that ``path`` creates, in elements."""
    size = eq.size_dict
    outputs = [output for _, _, output in _walk(path, terms, eq)][:-1]
    return max((math.prod(size[lab] for lab in output) for output in outputs), default=0)


def _make_plan(
    eq: Equation, dtype_char: str, optimize: Any, memory_limit: Any, use_blas: bool,
    tuning: Tuning,
) -> Plan:
    dtype = np.dtype(dtype_char)
    size = eq.size_dict
    terms = [_distinct(t) for t in eq.terms]
    if isinstance(optimize, tuple):  # an explicit path, validated as given (even for one operand)
        _check_path(list(optimize), len(terms))
    naive = _flops(terms, eq.output, size)
    steps: list[Step] = []
    if optimize is not False:  # False: numpy's single fused loop, exactly as it defines it
        for p, reduced in _pre_reductions(terms, eq.output, size, memory_limit).items():
            flops = _flops([terms[p]], reduced, size)
            steps.append(Step((p,), (terms[p],), reduced, "kernel", flops, in_place=True))
            terms[p] = reduced
    if memory_limit == 0 and not isinstance(memory_limit, bool) and not isinstance(optimize, tuple):
        # numpy's ('greedy', 0): no intermediate at all
        choice = PathChoice((tuple(range(len(terms))),),
                            f"{_name(optimize)} (memory_limit=0: fused)", 0.0)
    else:
        choice = _opt_einsum_path(eq, terms, optimize, memory_limit, tuning, dtype_char)
    path = [tuple(p) for p in choice.path]
    _check_path(path, len(terms))
    if (not isinstance(optimize, tuple)
            and _fusing_saves_traffic(path, terms, eq, tuning.fuse_max_operands)):
        path = [tuple(range(len(terms)))]

    for positions, picked, output in _walk(path, terms, eq):
        method = _choose_method(picked, output, size, dtype if use_blas else np.dtype(np.int64),
                                tuning)
        steps.append(Step(positions, tuple(picked), output, method, _flops(picked, output, size)))
    largest = max(math.prod(size[lab] for lab in step.output) for step in steps)
    return Plan(eq, dtype_char, tuple(steps), naive, largest, choice.optimizer, choice.seconds,
                tuning)


class UnknownOptimizerError(KeyError, ValueError):
    """An unknown ``optimize=`` name: opt_einsum (and numpy, for three or more operands) raise
    KeyError; a ValueError too, as this engine raised before."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PathIndexError(IndexError, ValueError):
    """An explicit path names an operand that does not exist at its step (numpy raises
    IndexError; a ValueError too, as this engine raised before)."""


class IncompletePathError(RuntimeError, ValueError):
    """An explicit path leaves operands uncontracted (numpy raises RuntimeError; a ValueError
    too, as this engine raised before)."""


def _pre_reductions(
    terms: list[tuple[int, ...]], output: tuple[int, ...], size: dict[int, int], memory_limit: Any
) -> dict[int, tuple[int, ...]]:
    """The operands worth reducing on their own before any pairwise step: position -> the
    labels left after summing out those that no other operand and not the output has.

    Summing such labels (``i`` in ``ijkj,jlp->pk``) in a pairwise step multiplies that step's
    loop by their extent; summing them first costs one pass over the operand (its diagonal view
    when a label repeats). The pass is made when it is cheaper than what it saves in the
    cheapest pairwise step the operand can take part in -- that is, unless every partner's
    labels are the operand's own (``ij,j->``, where the pair step is one pass already). With an
    integer ``memory_limit``, a reduced operand larger than the limit is not made.
    """
    if len(terms) < 2:
        return {}
    count: dict[int, int] = {}
    for term in terms:
        for lab in term:
            count[lab] = count.get(lab, 0) + 1
    keep = set(output)
    reductions: dict[int, tuple[int, ...]] = {}
    for p, term in enumerate(terms):
        alone = [lab for lab in term if count[lab] == 1 and lab not in keep]
        ratio = math.prod(size[lab] for lab in alone)
        if ratio < 2:
            continue
        reduced = tuple(lab for lab in term if lab not in alone)
        if isinstance(memory_limit, int) and math.prod(size[lab] for lab in reduced) > memory_limit:
            continue
        own = math.prod(size[lab] for lab in term)
        mine = set(term)
        cheapest = min(
            math.prod(size[lab] for lab in mine.union(other))
            for q, other in enumerate(terms) if q != p
        )
        if own + cheapest // ratio < cheapest:
            reductions[p] = reduced
    return reductions


def _check_path(path: list[tuple[int, ...]], n: int) -> None:
    """Validate an explicit contraction path before anything runs.

    Raises
    ------
    PathIndexError
        A step names a position past the operands left at that step.
    ValueError
        An empty step, or one naming a position twice (numpy pops such a position twice, that is
        it contracts a different operand than the one named).
    IncompletePathError
        The path ends with more than one operand left.
    """
    remaining = n
    for positions in path:
        if any(not 0 <= p < remaining for p in positions):
            raise PathIndexError(
                f"optimize: invalid contraction {positions!r} in path {path!r}: it names an "
                f"operand that does not exist ({remaining} operand(s) left at that step, of {n})"
            )
        if not positions or len(set(positions)) != len(positions):
            raise ValueError(
                f"optimize: invalid contraction {positions!r} in path {path!r} for {n} operands"
            )
        remaining = remaining - len(positions) + 1
    if remaining != 1:
        raise IncompletePathError(
            f"optimize: path {path!r} does not contract all {n} operands into one: "
            f"{remaining - 1} more operand(s) have to be contracted"
        )
