"""The public functions, shaped like numpy's (``einsum``, ``einsum_path``) and opt_einsum's
(``contract``, ``contract_path``, ``contract_expression``).

Each call: split and convert the operands, parse (cached), check ``out``/``dtype``/``casting``/
``order`` exactly where numpy does, plan (cached), then hand validated arrays to the executor.
Object, string and other non-numeric dtypes are delegated to :func:`numpy.einsum`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache, partial
from typing import Any

import numpy as np

from .executor import execute
from .layout import needs_copy
from .parser import Equation, label_name, parse, relabel_sublists, split_operands
from .planner import Plan, make_plan, normalize_optimize, runs_in_numpy_loop, split_memory_limit

try:  # numpy's C einsum loop, without the Python wrapper of numpy.einsum
    from numpy._core.multiarray import c_einsum as _numpy_loop
except ImportError:  # numpy < 2
    from numpy.core.multiarray import c_einsum as _numpy_loop

__all__ = [
    "einsum",
    "einsum_path",
    "contract",
    "contract_path",
    "contract_expression",
    "ContractExpression",
    "PathInfo",
]

_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")
_ORDER_NAMES = {"C": "C", "F": "F", "A": "A", "K": "K", "c": "C", "f": "F", "a": "A", "k": "K"}
_MAX_INDEX = int(np.iinfo(np.intp).max)  # the kernels index with int64
_TRIAL_BYTES = 1 << 26  # arrays this large are test-allocated before a plan runs


class _Missing:
    """The default of ``subscripts``: a call with no arguments at all raises numpy's ValueError
    (from :func:`~contract.parser.split_operands`) rather than Python's TypeError."""

    def __repr__(self) -> str:
        return "<required>"


_NO_ARGUMENTS = _Missing()


def _arguments(subscripts: Any, operands: Sequence[Any]) -> tuple[Any, ...]:
    """einsum's ``*args``: ``(subscripts, *operands)``, or ``()`` when nothing was passed."""
    return () if subscripts is _NO_ARGUMENTS else (subscripts, *operands)


# The per-call fast path. A call with default keywords whose subscripts, optimize (and its type),
# use_blas and operand types, shapes and dtypes were seen before skips parsing, keyword checks and
# planning: it goes straight to what the first such call decided (numpy's loop for a tiny
# equation, else the plan). Every key here was validated by a first call that succeeded; at most
# _RUNNERS_MAX entries are kept.
Runner = Callable[..., Any]
_RUNNERS: dict[tuple, Runner] = {}
_RUNNERS_MAX = 4096


# ---------------------------------------------------------------------------------------------
# reports


class PathInfo:
    """A contraction plan as a readable report (``str(info)``) and as numbers.

    Attributes
    ----------
    path : list of tuple of int
        The contraction order, in opt_einsum's form.
    naive_cost, opt_cost : int
        FLOP counts of the unoptimized and the planned order.
    speedup : float or decimal.Decimal
        ``naive_cost / opt_cost`` (a Decimal when too large for a float).
    largest_intermediate : int
        The largest intermediate, in elements.
    methods : list of str
        How each step runs: ``'blas'``, ``'kernel'`` or ``'copy'``.
    scale_list : list of int
        Per step, the number of distinct labels it loops over (as opt_einsum's ``PathInfo``).
    size_list : list of int
        Per step, the size of its result, in elements (as opt_einsum's ``PathInfo``).
    eq : str
        The equation as an explicit einsum string.
    numpy_loop : bool
        True when the equation is tiny and :func:`einsum` runs the whole call in numpy's C einsum
        loop, whose cost is below this engine's per-call cost (see the guide).
    optimizer : str
        Which optimizer chose the path (e.g. ``"auto: opt_einsum 'auto'"``,
        ``"auto: cotengrust random-greedy (124 trials)"``, ``"explicit path"``).
    path_search : float
        Seconds spent finding the path when it was planned (a cached plan keeps its first
        search time).
    """

    def __init__(self, plan: Plan, numpy_loop: bool = False) -> None:
        self.plan = plan
        self.numpy_loop = numpy_loop
        self.path = plan.path
        self.naive_cost = plan.naive_flops
        self.opt_cost = plan.opt_flops
        self.speedup = plan.speedup
        self.largest_intermediate = plan.largest_intermediate
        self.methods = [step.method for step in plan.steps]
        size = plan.equation.size_dict
        self.scale_list = [len(set().union(*step.terms)) for step in plan.steps]
        self.size_list = [math.prod(size[lab] for lab in step.output) for step in plan.steps]
        self.eq = plan.equation.to_string()
        self.size_dict = {label_name(k): v for k, v in plan.equation.sizes}
        self.optimizer = plan.optimizer
        self.path_search = plan.path_search

    def __str__(self) -> str:
        return self.plan.report(self.numpy_loop)

    def __repr__(self) -> str:
        return (f"PathInfo(eq={self.eq!r}, path={self.path!r}, opt_cost={self.opt_cost}, "
                f"methods={self.methods!r})")


# ---------------------------------------------------------------------------------------------
# shared preparation


@lru_cache(maxsize=4096)
def _parse_cached(subscripts: Any, shapes: tuple[tuple[int, ...], ...]) -> Equation:
    return parse(subscripts, shapes)


def _parse(subscripts: Any, shapes: tuple[tuple[int, ...], ...]) -> Equation:
    if not isinstance(subscripts, str):
        sublists, out_sub = subscripts
        try:
            key = (tuple(_sublist_key(s) for s in sublists),
                   None if out_sub is None else _sublist_key(out_sub))
        except TypeError:
            return parse(subscripts, shapes)  # raises the right error for malformed sublists
        subscripts = key
    return _parse_cached(subscripts, shapes)


def _sublist_key(sub: Any) -> tuple[Any, ...]:
    """A sublist as a cache key of plain ints (and Ellipsis); TypeError for anything else.

    The key must not be equal to a valid one for an invalid sublist: ``(1, 2.0) == (1, 2)`` and
    ``(True,) == (1,)``, so a float or bool label would otherwise hit a cached valid parse.
    """
    if isinstance(sub, (str, bytes)):
        raise TypeError
    key = []
    for item in sub:
        if item is Ellipsis:
            key.append(item)
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            key.append(int(item))
        else:
            raise TypeError
    return tuple(key)


def _keyword_text(value: Any, name: str) -> str:
    """numpy's string-keyword conversion: str or ASCII bytes, else TypeError."""
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"{name} must be an ASCII string, got {value!r}") from None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    return value


def _check_keywords(order: Any, casting: Any) -> tuple[str, str]:
    """Validate ``order`` and ``casting`` as numpy does; return them normalized.

    Like numpy: ``order`` is case-insensitive and ``None`` means ``'K'``; ``casting`` is
    case-sensitive; both accept ASCII bytes; a non-string raises TypeError.
    """
    order_text = "K" if order is None else _keyword_text(order, "order")
    if order_text not in _ORDER_NAMES:
        raise ValueError(f"order must be one of 'C', 'F', 'A', or 'K' (got {order!r})")
    casting_text = _keyword_text(casting, "casting")
    if casting_text not in _CASTINGS:
        raise ValueError(f"casting must be one of 'no', 'equiv', 'safe', 'same_kind', 'unsafe' "
                         f"(got {casting!r})")
    return _ORDER_NAMES[order_text], casting_text


def _is_native(dtype: np.dtype) -> bool:
    """True for the dtypes the kernels run: bool, ints, float16/32/64, complex64/128.

    ``longdouble``/``clongdouble`` (kind ``'f'``/``'c'`` but wider than Numba supports) and
    every non-numeric dtype are delegated to numpy.
    """
    return dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize <= 8) or (
        dtype.kind == "c" and dtype.itemsize <= 16)


def _runs_natively(arrays: Sequence[np.ndarray], dtype: Any) -> bool:
    """True when the kernels handle every operand (and ``dtype=``); else numpy.einsum does."""
    return all(_is_native(a.dtype) for a in arrays) and (
        dtype is None or _is_native(np.dtype(dtype)))


def _check_plan_sizes(plan: Plan, size: dict[int, int], itemsize: int,
                      output_allocated: bool) -> None:
    """Refuse, before any arithmetic, a plan the engine cannot index or allocate.

    numpy raises ``ValueError('iterator is too large')`` when an einsum's iteration space does
    not fit in ``intp``; the kernels index with int64, so a step whose loop nest is larger would
    wrap around silently (and a BLAS step that large would never finish). An intermediate whose
    byte size does not fit in ``intp`` cannot be allocated (numpy's ``ValueError('array is too
    big ...')``). Then a large intermediate (or the output, unless it is allocated before the
    plan runs) that the system refuses raises numpy's MemoryError now rather than after the
    earlier steps ran: it is allocated once, untouched (costing no resident memory), and freed.
    """
    if plan.largest_loop * itemsize < _TRIAL_BYTES:
        return  # no step loops over, or allocates, that much (computed once per plan)
    last = len(plan.steps) - 1
    shapes = [tuple(size[lab] for lab in step.output) for step in plan.steps]
    for k, step in enumerate(plan.steps):
        if step.method != "copy":
            labels = set().union(*step.terms)
            space = math.prod(size[lab] for lab in labels)
            if space > _MAX_INDEX:
                raise ValueError(
                    f"iterator is too large: step {k} of the plan loops over {space} index "
                    f"combinations (sizes {sorted(size[lab] for lab in labels)}), more than "
                    f"{_MAX_INDEX}")
        if k != last and math.prod(shapes[k]) * itemsize > _MAX_INDEX:
            raise ValueError(
                f"array is too big: intermediate {k} of the plan has shape {shapes[k]} "
                f"({math.prod(shapes[k])} elements of {itemsize} bytes), larger than the maximum "
                f"possible size")
    for k, step in enumerate(plan.steps):
        allocates = (not output_allocated) if k == last else step.method != "copy"
        if allocates and math.prod(shapes[k]) * itemsize >= _TRIAL_BYTES:
            np.empty(shapes[k], dtype=plan.dtype)  # MemoryError (or ValueError) if refused


def _computation_dtype(result: np.dtype) -> np.dtype:
    """The dtype the kernels run in: bool counts in int64, float16 accumulates in float32."""
    if result.kind == "b":
        return np.dtype(np.int64)
    if result == np.float16:
        return np.dtype(np.float32)
    return result.newbyteorder("=")


def _result_dtype(arrays: Sequence[np.ndarray], dtype: Any, casting: str) -> np.dtype:
    result = np.result_type(*arrays) if dtype is None else np.dtype(dtype)
    _check_operand_casts(arrays, result, casting)
    return result


def _check_operand_casts(arrays: Sequence[np.ndarray], result: np.dtype, casting: str) -> None:
    for k, arr in enumerate(arrays):
        if not np.can_cast(arr.dtype, result, casting=casting):
            raise TypeError(f"Cannot cast einsum operand {k} from {arr.dtype!r} to {result!r} "
                            f"according to the rule {casting!r}")


def _with_out_dtype(result: np.dtype, out: Any, dtype: Any) -> np.dtype:
    """numpy's einsum computes in the common dtype of the operands *and* ``out`` (unless
    ``dtype=`` is given): ``einsum('i->', [True, True], out=int8_array)`` is 2, not True."""
    if dtype is None and isinstance(out, np.ndarray) and _is_native(out.dtype):
        return np.result_type(result, out.dtype)
    return result


def _check_out(out: Any, shape: tuple[int, ...], result: np.dtype, casting: str) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out: the result has shape {shape} but out has shape {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out: output array is read-only")
    if not np.can_cast(result, out.dtype, casting=casting):
        raise TypeError(f"out: cannot cast the result from {result!r} to the dtype of out "
                        f"{out.dtype!r} according to the rule {casting!r}")
    if not np.can_cast(out.dtype, result, casting=casting):
        # numpy's einsum reads out= too (a read-write operand), so it checks this direction
        raise TypeError(f"out: cannot cast the dtype of out {out.dtype!r} to the computation "
                        f"dtype {result!r} according to the rule {casting!r}")
    return out


def _alloc(shape: tuple[int, ...], dtype: np.dtype, order: str,
           arrays: Sequence[np.ndarray]) -> np.ndarray:
    if order == "A":
        order = "F" if arrays and all(a.flags.f_contiguous and not a.flags.c_contiguous
                                      for a in arrays) else "C"
    return np.empty(shape, dtype=dtype, order="F" if order == "F" else "C")


def _is_view_case(eq: Equation, arrays: Sequence[np.ndarray], result: np.dtype) -> bool:
    """numpy returns a view for one operand that is only transposed or has a diagonal taken."""
    return (len(arrays) == 1
            and arrays[0].dtype.newbyteorder("=") == result.newbyteorder("=")
            and set(eq.terms[0]) == set(eq.output))


def _view_result(eq: Equation, arr: np.ndarray) -> np.ndarray:
    """The view numpy returns: diagonals taken and axes transposed with numpy's own view
    operations, so the result shares ``arr``'s ``base`` and is writeable exactly when ``arr`` is
    (``einsum('ii->i', a)[:] = 0`` writes the diagonal of ``a``)."""
    view = arr
    labels = list(eq.terms[0])
    while len(set(labels)) < len(labels):
        first = next(k for k, lab in enumerate(labels) if lab in labels[k + 1:])
        second = labels.index(labels[first], first + 1)
        view = view.diagonal(axis1=first, axis2=second)  # the diagonal axis goes last
        labels = [lab for k, lab in enumerate(labels) if k not in (first, second)] + [
            labels[first]]
    view = view.transpose([labels.index(lab) for lab in eq.output])
    if arr.flags.writeable and not view.flags.writeable:
        view.flags.writeable = True  # numpy's diagonal() is read-only; einsum's view is not
    return view


def _run(eq: Equation, arrays: list[np.ndarray], result: np.dtype, out: np.ndarray | None,
         order: str, optimize: Any, memory_limit: Any, use_blas: bool = True,
         plan: Plan | None = None) -> Any:
    """Validated arrays in, numpy-compatible result out."""
    size = eq.size_dict
    out_shape = tuple(size[lab] for lab in eq.output)
    comp = _computation_dtype(result)
    if out is None and _is_view_case(eq, arrays, result):
        view = _view_result(eq, arrays[0])
        return view[()] if view.ndim == 0 else view
    converted = _in_dtype(arrays, comp)

    direct = (out is not None and type(out) is np.ndarray and out.dtype == comp
              and not needs_copy(out)
              and all(st != 0 or n <= 1 for st, n in zip(out.strides, out.shape))
              and not any(np.may_share_memory(out, a) for a in arrays))
    if 0 in size.values():
        target = out if direct else _alloc(out_shape, comp, order, arrays)
        target[...] = 0
    else:
        if plan is None:
            plan = make_plan(eq, comp, optimize, memory_limit, use_blas)
        _check_plan_sizes(plan, size, comp.itemsize,
                          output_allocated=out is not None or order != "K")
        if out is None and order == "K":
            target = execute(plan, converted, None)  # the last step picks the layout
        else:
            target = out if direct else _alloc(out_shape, comp, order, arrays)
            execute(plan, converted, target)

    if out is not None:
        if target is not out:
            np.copyto(out, target if result.kind != "b" else target != 0, casting="unsafe")
        return out
    return _as_result(target, result)


def _in_dtype(arrays: Sequence[np.ndarray], comp: np.dtype) -> list[np.ndarray]:
    """The operands as the kernels take them: of dtype ``comp``, native and aligned."""
    return [a if a.dtype == comp and not needs_copy(a) else a.astype(comp) for a in arrays]


def _as_result(target: np.ndarray, result: np.dtype) -> Any:
    """A computed array as numpy returns it: in ``result``'s dtype, a scalar when 0-d."""
    if result.kind == "b":
        target = target != 0
    elif target.dtype != result:
        target = target.astype(result)
    return target[()] if target.ndim == 0 else target


def _prepare(subscripts: Any, operands: Sequence[Any], dtype: Any, casting: str
             ) -> tuple[Equation | None, list[np.ndarray], np.dtype | None]:
    arrays = [np.asarray(op) for op in operands]
    if dtype is not None:
        dtype = np.dtype(dtype)
    if not _runs_natively(arrays, dtype):
        return None, arrays, None
    eq = _parse(subscripts, tuple(a.shape for a in arrays))
    return eq, arrays, _result_dtype(arrays, dtype, casting)


# ---------------------------------------------------------------------------------------------
# numpy-shaped API


def einsum(subscripts: Any = _NO_ARGUMENTS, *operands: Any, out: np.ndarray | None = None,
           dtype: Any = None,
           order: str = "K", casting: str = "safe", optimize: Any = True) -> Any:
    """Evaluate the Einstein summation convention on the operands, like :func:`numpy.einsum`.

    Semantics are numpy's: implicit and explicit (``->``) modes, ``...`` broadcasting, size-1
    broadcasting of labelled axes, repeated labels (diagonals, traces), the sublist form, 0-d
    operands, zero-size axes, ``out=``, ``dtype=``, ``casting=``, ``order=``, and numpy's result
    dtype. The difference is how it runs: the order of contractions is planned (opt_einsum), and
    each step runs through BLAS or a parallel Numba kernel.

    Parameters
    ----------
    subscripts : str or array_like
        The subscripts, e.g. ``'ij,jk->ik'``; or, in the sublist form, the first operand
        followed by its sublist, then the next operand and sublist, ..., and optionally an output
        sublist. Sublist labels may be any non-negative ints (numpy allows 0..51).
    *operands : array_like
        The arrays.
    out : ndarray, optional
        Where to write the result; may overlap an input.
    dtype : data-type, optional
        The dtype to compute and return in (operands are cast according to ``casting``).
    order : {'K', 'C', 'F', 'A'}, optional
        Memory layout of a new result; ``'K'`` gives C order for computed results.
    casting : {'safe', 'no', 'equiv', 'same_kind', 'unsafe'}, optional
        Which casts of the operands (and into ``out``) are allowed. Default ``'safe'``.
    optimize : bool, str, list or opt_einsum PathOptimizer, optional
        ``True`` (default) plans the order with opt_einsum's ``'auto'``; ``False`` runs one fused
        loop over all labels with no intermediates, as numpy defines it; a name such as
        ``'greedy'`` or ``'optimal'``, an explicit path (numpy's ``['einsum_path', (0, 1), ...]``
        or opt_einsum's), or a PathOptimizer are passed to opt_einsum.

    Returns
    -------
    ndarray or numpy scalar
        The result (a numpy scalar when the result is 0-d and ``out`` is not given; a view of the
        operand, as in numpy, when a single operand is only transposed or has a diagonal taken).

    Raises
    ------
    ValueError
        Malformed subscripts, operand-count or shape mismatches, a wrong ``out`` shape, bad
        ``order``/``casting``/``optimize`` values.
    TypeError
        Unsafe casts under ``casting``, an ``out`` that is not an ndarray.

    Notes
    -----
    Object and other non-numeric dtypes are delegated to :func:`numpy.einsum`.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> b = np.arange(12.0).reshape(3, 4)
    >>> np.allclose(einsum("ij,jk->ik", a, b), a @ b)
    True
    >>> einsum("ii", np.eye(3))
    np.float64(3.0)
    >>> einsum(a, [0, 1], b, [1, 2], [0, 2]).shape
    (2, 4)
    """
    key = None
    if out is None and dtype is None and order == "K" and casting == "safe":
        key, runner = _fast_lookup(subscripts, optimize, True, operands)
        if runner is not None:
            return runner(*operands)
    return _evaluate(subscripts, operands, out, dtype, order, casting, optimize, None, True, key)


def _evaluate(subscripts: Any, operands: Sequence[Any], out: Any, dtype: Any, order: Any,
              casting: Any, optimize: Any, memory_limit: Any, use_blas: bool,
              key: tuple | None = None, hashable_labels: bool = False) -> Any:
    """The body of :func:`einsum` and :func:`contract`: validate, then run.

    ``key`` is the fast-path key of a call with default keywords (None otherwise); the runner
    this call decides on is stored under it when the operands are plain arrays.
    ``hashable_labels`` (contract's interleaved form) allows opt_einsum's hashable sublist labels.
    """
    raw_optimize = optimize
    sub, ops = split_operands(_arguments(subscripts, operands))
    if hashable_labels:
        relabelled = relabel_sublists(sub)
        if relabelled is not sub:
            sub = relabelled
            subscripts, *operands = _interleave(ops, sub)
    order, casting = _check_keywords(order, casting)
    optimize, tuple_limit = split_memory_limit(optimize)
    if memory_limit is None:
        memory_limit = tuple_limit
    optimize = normalize_optimize(optimize)
    eq, arrays, result = _prepare(sub, ops, dtype, casting)
    if eq is None:
        return _delegate(subscripts, operands, out, dtype, order, casting)
    if out is not None:
        operands_result = result
        widened = _with_out_dtype(result, out, dtype)
        if widened != result:  # numpy computes in the wider dtype: the operands must cast to it
            _check_operand_casts(arrays, widened, casting)
            result = widened
        try:
            out = _check_out(out, tuple(eq.size_dict[lab] for lab in eq.output), result, casting)
        except TypeError:
            if not (optimize is not False and len(arrays) > 1 and isinstance(out, np.ndarray)
                    and out.ndim == 0 and out.flags.writeable):
                raise
            # numpy 2.4's optimize= path assigns a pairwise contraction into a 0-d out= without a
            # casting check (gh-31350: einsum('i,i->', f8, f8, out=np.array(0), optimize=True)
            # is 7); its default mode raises TypeError, as above
            out[...] = _run(eq, arrays, operands_result, None, "K", optimize, memory_limit,
                            use_blas)
            return out
    cacheable = (key is not None and isinstance(raw_optimize, (bool, str))
                 and all(type(op) is np.ndarray for op in ops))
    if _numpy_loop_applies(sub, eq, out, use_blas):
        # numpy's own answer, errors included (it also refuses an out= it cannot cast back to
        # the computation dtype, which the checks above do not look at)
        value = _call_numpy_loop(sub, arrays, out, dtype, order, casting)
        if cacheable:
            _remember(key, partial(_numpy_loop, sub))
        return value
    if cacheable:
        plan = make_plan(eq, _computation_dtype(result), optimize, memory_limit, use_blas)
        value = _run(eq, arrays, result, None, "K", None, None, plan=plan)
        # only after a call succeeded: the runner skips the size checks that call passed
        _remember(key, _PlannedCall(eq, result, plan, arrays))
        return value
    return _run(eq, arrays, result, out, order, optimize, memory_limit, use_blas)


def _interleave(operands: Sequence[Any], sub: tuple[list[Any], Any]) -> list[Any]:
    """``(op0, sub0, op1, sub1, ..., [out_sub])``: einsum's interleaved arguments."""
    sublists, out_sub = sub
    args = [item for pair in zip(operands, sublists) for item in pair]
    return args if out_sub is None else [*args, out_sub]


def _fast_lookup(subscripts: Any, optimize: Any, use_blas: bool, operands: Sequence[Any]
                 ) -> tuple[tuple | None, Runner | None]:
    """The fast-path key of a call with default keywords, and the runner stored under it."""
    try:
        key = (subscripts, type(optimize), optimize, use_blas, _operand_key(operands))
        return key, _RUNNERS.get(key)
    except (AttributeError, TypeError):  # operands that are not arrays, unhashable arguments
        return None, None


def _operand_key(operands: Sequence[Any]) -> tuple:
    """Type, shape and dtype of every operand, as one flat tuple (AttributeError for non-arrays).

    Spelled out for up to three operands: this runs on every fast-path call, and a comprehension
    costs twice as much.
    """
    if len(operands) == 2:
        a, b = operands
        return (type(a), a.shape, a.dtype, type(b), b.shape, b.dtype)
    if len(operands) == 3:
        a, b, c = operands
        return (type(a), a.shape, a.dtype, type(b), b.shape, b.dtype, type(c), c.shape, c.dtype)
    if len(operands) == 1:
        a = operands[0]
        return (type(a), a.shape, a.dtype)
    return tuple([(type(a), a.shape, a.dtype) for a in operands])


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_NUMPY_SUBSCRIPT_CHARS = frozenset(_LETTERS + ",.-> ")


def _numpy_loop_applies(sub: Any, eq: Equation, out: Any, use_blas: bool) -> bool:
    """Whether a validated call runs in numpy's C einsum loop: a tiny equation in string form
    written in numpy's alphabet (numpy's own spelling of it), with BLAS allowed and ``out``
    absent or a plain ndarray."""
    return (use_blas and type(sub) is str and (out is None or type(out) is np.ndarray)
            and runs_in_numpy_loop(eq) and _NUMPY_SUBSCRIPT_CHARS.issuperset(sub))


def _call_numpy_loop(sub: str, arrays: Sequence[np.ndarray], out: np.ndarray | None, dtype: Any,
                     order: str, casting: str) -> Any:
    keywords = {"order": order, "casting": casting}
    if out is not None:
        keywords["out"] = out
    if dtype is not None:
        keywords["dtype"] = dtype
    return _numpy_loop(sub, *arrays, **keywords)


def _remember(key: tuple, runner: Runner) -> None:
    if len(_RUNNERS) >= _RUNNERS_MAX:
        _RUNNERS.clear()
    _RUNNERS[key] = runner


class _PlannedCall:
    """A fast-path runner: ``_run`` for operands of the shapes and dtypes a first call validated
    and planned, with default keywords, minus everything that the shapes and dtypes settle."""

    __slots__ = ("eq", "result", "plan", "comp", "general")

    def __init__(self, eq: Equation, result: np.dtype, plan: Plan, arrays: Sequence[np.ndarray]
                 ) -> None:
        self.eq, self.result, self.plan = eq, result, plan
        self.comp = _computation_dtype(result)
        # views of an operand, and zero-size axes, take the general path
        self.general = _is_view_case(eq, arrays, result) or 0 in eq.size_dict.values()

    def __call__(self, *arrays: np.ndarray) -> Any:
        if self.general:
            return _run(self.eq, list(arrays), self.result, None, "K", None, None, plan=self.plan)
        return _as_result(execute(self.plan, _in_dtype(arrays, self.comp), None), self.result)


def _delegate(subscripts: Any, operands: Sequence[Any], out: Any, dtype: Any, order: str,
              casting: str) -> Any:
    """Object and other non-numeric dtypes: numpy.einsum does the work.

    With an empty long-double operand (and no ``out=`` or ``dtype=``), numpy's optimize path runs
    it instead of its C loop: numpy 2.4's C loop corrupts the heap for some empty clongdouble
    operands ("munmap_chunk(): invalid pointer" at a later free), e.g.
    ``einsum('bd...a,bcb->b...cd', a, b)`` with ``a`` of shape ``(2, 0, 3, 2, 3)``; the optimize
    path, which spells the equation out first, does not. That path returns 0-d arrays where the C
    loop returns scalars, which is undone here.
    """
    subscripts = _numpy_spelling(subscripts)
    args = [_fresh_if_empty(subscripts), *map(_fresh_if_empty, operands)]
    if not (isinstance(subscripts, str)
            and any(isinstance(a, np.ndarray) and a.size == 0 for a in args)):
        return np.einsum(*args, out=out, dtype=dtype, order=order, casting=casting)
    # validated as for native dtypes: numpy's C loop returns an unchecked view past the data for
    # 'bb->b' on a (0, 3) operand (reading it crashes for object arrays); the parser refuses it
    _parse(subscripts, tuple(np.shape(op) for op in operands))
    if out is not None or dtype is not None or not any(
            _is_long_double(a.dtype) for a in args if isinstance(a, np.ndarray)):
        # (the optimize path skips some of the C loop's out=/dtype= checks, so those stay there)
        return np.einsum(*args, out=out, dtype=dtype, order=order, casting=casting)
    result = np.einsum(*args, out=out, dtype=dtype, order=order, casting=casting, optimize=True)
    if out is None and isinstance(result, np.ndarray) and result.ndim == 0:
        return result[()]
    return result


def _numpy_spelling(subscripts: Any) -> Any:
    """A subscript string in numpy's alphabet: other characters become letters, assigned in code
    point order so that an implicit output keeps its order (ValueError past 52 labels)."""
    if not isinstance(subscripts, str) or _NUMPY_SUBSCRIPT_CHARS.issuperset(subscripts):
        return subscripts
    labels = sorted(set(subscripts) - set(",.-> "))
    if len(labels) > len(_LETTERS):
        raise ValueError(f"this equation has {len(labels)} distinct labels; numpy.einsum, which "
                         f"computes its non-numeric dtype, takes at most {len(_LETTERS)}")
    return subscripts.translate({ord(c): _LETTERS[k] for k, c in enumerate(labels)})


def _is_long_double(dtype: np.dtype) -> bool:
    return (dtype.kind == "f" and dtype.itemsize > 8) or (dtype.kind == "c" and dtype.itemsize > 16)


def _fresh_if_empty(arg: Any) -> Any:
    """A fresh copy of an empty view (free), else ``arg``.

    numpy.einsum corrupts the heap for some empty clongdouble views that need no cast while
    another operand does (numpy 2.4: ``a = np.zeros((3, 2), np.clongdouble)[:2, :0];
    np.einsum('ij,->ij', a, 3.0)``, then "munmap_chunk(): invalid pointer"); a fresh empty
    array does not trigger it.
    """
    if isinstance(arg, np.ndarray) and arg.size == 0:
        return arg.copy()
    return arg


def einsum_path(subscripts: Any = _NO_ARGUMENTS, *operands: Any, optimize: Any = "greedy"
                ) -> tuple[list[Any], str]:
    """The contraction order :func:`einsum` would use, in :func:`numpy.einsum_path`'s form.

    Parameters
    ----------
    subscripts : str or array_like
        As for :func:`einsum` (string or sublist form).
    *operands : array_like
        The arrays (only shapes and dtypes are used).
    optimize : bool, str, list or PathOptimizer, optional
        As for :func:`einsum`; default ``'greedy'`` as in numpy.

    Returns
    -------
    path : list
        ``['einsum_path', (i, j), ...]``, usable as ``optimize=path``.
    report : str
        The plan report: per step the contraction, FLOPs, result size and how it runs.

    Examples
    --------
    >>> import numpy as np
    >>> a, b, c = np.ones((2, 3)), np.ones((3, 4)), np.ones((4, 5))
    >>> einsum_path("ij,jk,kl->il", a, b, c)[0]
    ['einsum_path', (1, 2), (0, 1)]
    """
    _, info = _contract_path(_arguments(subscripts, operands), optimize, None, False, True, None,
                             hashable_labels=False)
    return ["einsum_path", *info.path], str(info)


# ---------------------------------------------------------------------------------------------
# opt_einsum-shaped API


def contract(subscripts: Any = _NO_ARGUMENTS, *operands: Any, out: np.ndarray | None = None,
             dtype: Any = None,
             order: str = "K", casting: str = "safe", use_blas: bool = True,
             optimize: Any = "auto", memory_limit: Any = None, backend: str = "auto") -> Any:
    """Evaluate an einsum expression, shaped like :func:`opt_einsum.contract`.

    Parameters
    ----------
    subscripts, *operands, out, dtype, order, casting
        As for :func:`einsum`.
    use_blas : bool, optional
        Route GEMM-shaped float/complex steps to BLAS (default). ``False`` runs every step in the
        Numba kernels.
    optimize : str, bool, list or PathOptimizer, optional
        Any form opt_einsum accepts; default ``'auto'``.
    memory_limit : int, 'max_input' or None, optional
        The largest intermediate allowed while planning, in elements.
    backend : str, optional
        Only ``'auto'``, ``'numpy'`` and ``'contract'`` (all meaning this engine) are accepted.

    Returns
    -------
    ndarray or numpy scalar

    Examples
    --------
    >>> import numpy as np
    >>> a, b, c = np.ones((2, 3)), np.ones((3, 4)), np.ones((4, 5))
    >>> contract("ij,jk,kl->il", a, b, c)[0, 0]
    np.float64(12.0)
    """
    use_blas = bool(use_blas)
    key = None
    if (out is None and dtype is None and order == "K" and casting == "safe"
            and memory_limit is None and backend == "auto"):
        key, runner = _fast_lookup(subscripts, optimize, use_blas, operands)
        if runner is not None:
            return runner(*operands)
    if backend not in ("auto", "numpy", "contract"):
        raise ValueError(f"backend: only 'auto', 'numpy' and 'contract' are supported, "
                         f"got {backend!r}")
    return _evaluate(subscripts, operands, out, dtype, order, casting, optimize, memory_limit,
                     use_blas, key, hashable_labels=True)


def contract_path(subscripts: Any = _NO_ARGUMENTS, *operands: Any, optimize: Any = "auto",
                  memory_limit: Any = None, shapes: bool = False, use_blas: bool = True,
                  dtype: Any = None) -> tuple[list[tuple[int, ...]], PathInfo]:
    """Plan a contraction without running it, shaped like :func:`opt_einsum.contract_path`.

    Parameters
    ----------
    subscripts : str or array_like
        As for :func:`einsum` (string or sublist form).
    *operands : array_like or tuple of int
        The arrays, or their shapes when ``shapes=True``.
    optimize, memory_limit, use_blas
        As for :func:`contract`.
    shapes : bool, optional
        Whether ``operands`` are shapes.
    dtype : data-type, optional
        The dtype to plan for (decides BLAS routing); by default the operands' result dtype, or
        float64 for shapes.

    Returns
    -------
    path : list of tuple of int
        The contraction order.
    info : PathInfo
        The readable report (``print(info)``) and its numbers.

    Examples
    --------
    >>> path, info = contract_path("ij,jk,kl->il", (10, 20), (20, 30), (30, 5), shapes=True)
    >>> path
    [(1, 2), (0, 1)]
    >>> info.methods
    ['kernel', 'kernel']
    """
    return _contract_path(_arguments(subscripts, operands), optimize, memory_limit, shapes,
                          use_blas, dtype, hashable_labels=True)


def _contract_path(args: Sequence[Any], optimize: Any, memory_limit: Any, shapes: bool,
                   use_blas: bool, dtype: Any, hashable_labels: bool
                   ) -> tuple[list[tuple[int, ...]], PathInfo]:
    """The body of :func:`contract_path` and :func:`einsum_path` (which keeps numpy's sublist
    rules: ``hashable_labels=False``)."""
    sub, ops = split_operands(args)
    if hashable_labels:
        sub = relabel_sublists(sub)
    optimize, tuple_limit = split_memory_limit(optimize)
    if memory_limit is None:
        memory_limit = tuple_limit
    if shapes:
        shape_list = []
        for k, s in enumerate(ops):
            try:
                shape_list.append(tuple(int(d) for d in s))
            except TypeError:
                raise TypeError(f"contract_path: operand {k} must be a shape (a sequence of "
                                f"ints) when shapes=True") from None
        plan_dtype = np.dtype(dtype if dtype is not None else np.float64)
    else:
        arrays = [np.asarray(op) for op in ops]
        shape_list = [a.shape for a in arrays]
        if dtype is not None:
            plan_dtype = np.dtype(dtype)
        else:
            try:  # planning needs only a dtype for BLAS routing; odd mixes plan as float64
                plan_dtype = np.result_type(*arrays) if arrays else np.dtype(np.float64)
            except TypeError:
                plan_dtype = np.dtype(np.float64)
    for k, s in enumerate(shape_list):
        if any(d < 0 for d in s):
            raise ValueError(f"contract_path: operand {k} has a negative dimension in {s}")
    eq = _parse(sub, tuple(shape_list))
    if not _is_native(plan_dtype):
        plan_dtype = np.dtype(np.float64)
    plan = make_plan(eq, _computation_dtype(plan_dtype), normalize_optimize(optimize),
                     memory_limit, bool(use_blas))
    return plan.path, PathInfo(plan, _numpy_loop_applies(sub, eq, None, bool(use_blas)))


class ContractExpression:
    """A contraction planned once for fixed shapes and called many times.

    Create with :func:`contract_expression`. Call as ``expr(*arrays, out=None)`` with the
    non-constant operands in order. Plans are kept per dtype.
    """

    def __init__(self, subscripts: Any, shapes: Sequence[Any], constants: Sequence[int],
                 optimize: Any, memory_limit: Any, use_blas: bool) -> None:
        self._sub, ops = split_operands((subscripts, *shapes))
        self._sub = relabel_sublists(self._sub)
        optimize, tuple_limit = split_memory_limit(optimize)
        if memory_limit is None:
            memory_limit = tuple_limit
        n = len(ops)
        self.constants = sorted(set(int(c) for c in constants))
        for c in self.constants:
            if not 0 <= c < n:
                raise ValueError(f"contract_expression: constant position {c} is out of range "
                                 f"for {n} operands")
        self._const_arrays = {c: np.asarray(ops[c]) for c in self.constants}
        self.shapes = []
        for k, s in enumerate(ops):
            if k in self._const_arrays:
                self.shapes.append(self._const_arrays[k].shape)
                continue
            try:
                self.shapes.append(tuple(int(d) for d in s))
            except TypeError:
                raise TypeError(f"contract_expression: operand {k} must be a shape (a sequence of "
                                f"ints), or an array listed in constants") from None
        self.equation = _parse(self._sub, tuple(self.shapes))
        self.num_args = n - len(self.constants)
        self._optimize = normalize_optimize(optimize)
        self._memory_limit = memory_limit
        self._use_blas = bool(use_blas)
        self._plans: dict[tuple[str, ...], tuple[Plan, np.dtype]] = {}
        self._runners: dict[tuple, Runner] = {}  # the fast path, as for einsum
        self._free = [k for k in range(n) if k not in self._const_arrays]
        self.contraction = self.equation.to_string()
        if isinstance(self._optimize, tuple):  # an explicit path: refuse a bad one now, not later
            make_plan(self.equation, np.dtype(np.float64), self._optimize, memory_limit,
                      self._use_blas)

    def _plan_for(self, arrays: list[np.ndarray], dtype: Any, casting: str
                  ) -> tuple[Plan, np.dtype]:
        key = tuple(a.dtype.str for a in arrays) + (str(dtype), casting)
        hit = self._plans.get(key)
        if hit is None:
            result = _result_dtype(arrays, dtype, casting)
            plan = make_plan(self.equation, _computation_dtype(result), self._optimize,
                             self._memory_limit, self._use_blas)
            hit = self._plans[key] = (plan, result)
        return hit

    def __call__(self, *arrays: Any, out: np.ndarray | None = None, dtype: Any = None,
                 order: str = "K", casting: str = "safe", backend: str = "auto") -> Any:
        """Evaluate the expression on the non-constant operands.

        Raises
        ------
        ValueError
            When the number of arrays, any shape or ``out``'s shape differs from the planned
            ones, or for a ``backend`` other than this engine.
        """
        if backend not in ("auto", "numpy", "contract"):
            raise ValueError(f"backend: only 'auto', 'numpy' and 'contract' are supported, "
                             f"got {backend!r}")
        if out is None and dtype is None and order == "K" and casting == "safe":
            try:
                key = _operand_key(arrays)
            except AttributeError:
                key = None
            runner = self._runners.get(key)
            if runner is not None:
                return runner(*arrays)
        else:
            key = None
        if len(arrays) != self.num_args:
            raise ValueError(f"`ContractExpression` takes exactly {self.num_args} array(s): "
                             f"this expression ({self.contraction}) takes {self.num_args} "
                             f"operand(s), got {len(arrays)}")
        order, casting = _check_keywords(order, casting)
        full: list[np.ndarray] = []
        free = iter(arrays)
        for k, shape in enumerate(self.shapes):
            if k in self._const_arrays:
                full.append(self._const_arrays[k])
                continue
            arr = np.asarray(next(free))
            if arr.shape != shape:
                raise ValueError(f"Internal error while evaluating `ContractExpression`: operand "
                                 f"{k} of this expression ({self.contraction}) must have shape "
                                 f"{shape}, got {arr.shape}")
            full.append(arr)
        if not _runs_natively(full, dtype):
            return _delegate(self.contraction, full, out, dtype, order, casting)
        if out is not None and dtype is None:
            dtype = _with_out_dtype(np.result_type(*full), out, None)  # numpy counts out's dtype
        plan, result = self._plan_for(full, dtype, casting)
        if out is not None:
            out_shape = tuple(self.equation.size_dict[lab] for lab in self.equation.output)
            if isinstance(out, np.ndarray) and out.shape != out_shape:
                raise ValueError(f"Internal error while evaluating `ContractExpression`: out has "
                                 f"shape {out.shape}, the result ({self.contraction}) has shape "
                                 f"{out_shape}")
            out = _check_out(out, out_shape, result, casting)
        cacheable = key is not None and all(type(a) is np.ndarray for a in arrays)
        if _numpy_loop_applies(self._sub, self.equation, out, self._use_blas):
            value = _call_numpy_loop(self._sub, full, out, dtype, order, casting)
            if cacheable:
                self._remember(key, partial(_numpy_loop, self._sub))
            return value
        value = _run(self.equation, full, result, out, order, None, None, plan=plan)
        if cacheable:  # only after a call succeeded: the runner skips its size checks
            self._remember(key, _PlannedCall(self.equation, result, plan, full))
        return value

    def _remember(self, key: tuple, runner: Runner) -> None:
        """Store a fast-path runner; with constants, it gets them put in their places first."""
        if self._const_arrays:
            runner = partial(self._with_constants, runner)
        if len(self._runners) >= _RUNNERS_MAX:
            self._runners.clear()
        self._runners[key] = runner

    def _with_constants(self, runner: Runner, *arrays: np.ndarray) -> Any:
        free = iter(arrays)
        return runner(*[self._const_arrays[k] if k in self._const_arrays else next(free)
                        for k in range(len(self.shapes))])

    def __repr__(self) -> str:
        return f"<ContractExpression('{self.contraction}')>"

    def __str__(self) -> str:
        plan = next(iter(self._plans.values()))[0] if self._plans else make_plan(
            self.equation, np.dtype(np.float64), self._optimize, self._memory_limit,
            self._use_blas)
        return f"<ContractExpression('{self.contraction}')>\n{plan.report()}"


def contract_expression(subscripts: Any, *shapes: Any, constants: Sequence[int] = (),
                        optimize: Any = "auto", memory_limit: Any = None,
                        use_blas: bool = True, **kwargs: Any) -> ContractExpression:
    """Plan a contraction once for fixed shapes, shaped like :func:`opt_einsum.contract_expression`.

    Parameters
    ----------
    subscripts : str
        The subscripts (or the sublist form, with shapes in place of arrays).
    *shapes : tuple of int or array_like
        Operand shapes; the positions listed in ``constants`` hold arrays instead.
    constants : sequence of int, optional
        Positions of operands that are fixed arrays, baked into the expression.
    optimize, memory_limit, use_blas
        As for :func:`contract`.

    Returns
    -------
    ContractExpression
        Call it with the remaining operands: ``expr(*arrays, out=None)``.

    Examples
    --------
    >>> import numpy as np
    >>> expr = contract_expression("ij,jk->ik", (2, 3), (3, 4))
    >>> expr(np.ones((2, 3)), np.ones((3, 4)))[0, 0]
    np.float64(3.0)
    """
    if "out" in kwargs:
        raise ValueError("contract_expression: out= is given when calling the expression, "
                         "not when creating it")
    if kwargs:
        raise TypeError(f"contract_expression() got an unexpected keyword argument "
                        f"{next(iter(kwargs))!r}")
    return ContractExpression(subscripts, shapes, constants, optimize, memory_limit, use_blas)
