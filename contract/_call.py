"""The one call pipeline behind ``einsum``, ``contract`` and ``ContractExpression.__call__``.

keywords -> backend -> dtype -> delegate to numpy -> ``out=`` -> numpy's loop (tiny equations)
-> plan -> run -> remember (the fast path)

:func:`evaluate` takes a call from its raw arguments to the point where the equation and the
arrays are known; :func:`finish` runs the rest, and is also where ``ContractExpression`` joins with
its fixed equation and per-dtype plans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from . import _dtypes, _numpy_compat
from ._backends import backend_module, infer_backend
from ._fastpath import RunnerCache
from ._numpy_compat import (
    alloc,
    call_numpy_loop,
    check_keywords,
    check_out,
    delegate,
    numpy_loop_applies,
)
from .executor import TRIAL_BYTES, execute, reserve
from .layout import needs_copy
from .parser import Equation, parse_cached, relabel_sublists, split_operands
from .planner import Plan, check_limits, make_plan, normalize_optimize, split_memory_limit

__all__ = ["NO_ARGUMENTS", "PlannedCall", "RUNNERS", "Request", "arguments", "evaluate", "finish",
           "run"]

RUNNERS_MAX = 4096

RUNNERS = RunnerCache(RUNNERS_MAX)  # the fast path of einsum and contract


class _Missing:
    """The default of ``subscripts``: a call with no arguments at all raises numpy's ValueError
    (from :func:`~contract.parser.split_operands`) rather than Python's TypeError."""

    def __repr__(self) -> str:
        return "<required>"


NO_ARGUMENTS = _Missing()


def arguments(subscripts: Any, operands: Sequence[Any]) -> tuple[Any, ...]:
    """einsum's ``*args``: ``(subscripts, *operands)``, or ``()`` when nothing was passed."""
    return () if subscripts is NO_ARGUMENTS else (subscripts, *operands)


@dataclass(frozen=True)
class Request:
    """A call as the caller made it: what a backend other than numpy's receives.

    ``subscripts`` is the string or the ``(sublists, output sublist)`` pair of the sublist form
    (opt_einsum's hashable labels already renumbered); ``operands`` are untouched.
    """

    subscripts: Any
    operands: tuple[Any, ...]
    out: Any
    dtype: Any
    order: str
    casting: str
    optimize: Any
    memory_limit: Any
    use_blas: bool
    #: dask's ``split_every`` for the tree reductions of labels summed over several blocks
    split_every: Any = None


def evaluate(subscripts: Any, operands: Sequence[Any], out: Any, dtype: Any, order: Any,
             casting: Any, optimize: Any, memory_limit: Any, use_blas: bool,
             key: tuple | None = None, hashable_labels: bool = False,
             split_every: Any = None) -> Any:
    """Validate a call of :func:`~contract.einsum` or :func:`~contract.contract`, then run it.

    ``subscripts, *operands`` are einsum's positional arguments. ``key`` is the fast-path key of
    a call with default keywords (None otherwise); the runner this call decides on is stored
    under it when the operands are plain arrays. ``hashable_labels`` (contract's interleaved
    form) allows opt_einsum's hashable sublist labels. ``split_every`` goes to a backend that
    reduces over blocks (dask); the numpy path ignores it.
    """
    raw_optimize = optimize
    sub, ops = split_operands(arguments(subscripts, operands))
    if hashable_labels:
        relabelled = relabel_sublists(sub)
        if relabelled is not sub:
            sub = relabelled
            subscripts, *operands = _interleave(ops, sub)
    order, casting = check_keywords(order, casting)
    optimize, tuple_limit = split_memory_limit(optimize)
    if memory_limit is None:
        memory_limit = tuple_limit
    optimize = normalize_optimize(optimize)
    backend = infer_backend(ops)
    if backend != "numpy":
        return backend_module(backend).evaluate(Request(
            sub, tuple(ops), out, dtype, order, casting, optimize, memory_limit, use_blas,
            split_every))
    arrays = [np.asarray(op) for op in ops]
    asked = None if dtype is None else np.dtype(dtype)  # delegation gets dtype= as given
    if not _dtypes.runs_natively(arrays, asked):
        return delegate(subscripts, operands, out, dtype, order, casting)
    eq = parse_cached(sub, tuple(a.shape for a in arrays))
    result = _dtypes.result_dtype(arrays, asked, casting)
    if out is not None:
        operands_result = result
        widened = _dtypes.widen_for_out(result, out, dtype)
        if widened != result:  # numpy computes in the wider dtype: the operands must cast to it
            _dtypes.check_operand_casts(arrays, widened, casting)
            result = widened
        try:
            out = check_out(out, tuple(eq.size_dict[lab] for lab in eq.output), result, casting)
        except TypeError:
            if not (optimize is not False and len(arrays) > 1 and isinstance(out, np.ndarray)
                    and out.ndim == 0 and out.flags.writeable):
                raise
            # numpy 2.4's optimize= path assigns a pairwise contraction into a 0-d out= without a
            # casting check (gh-31350: einsum('i,i->', f8, f8, out=np.array(0), optimize=True)
            # is 7); its default mode raises TypeError, as above
            out[...] = run(eq, arrays, operands_result, None, "K",
                           partial(make_plan, eq, optimize=optimize, memory_limit=memory_limit,
                                   use_blas=use_blas))
            return out
    # optimizer objects may answer differently each time; names, bools and explicit paths
    # (plain data, validated by this first call) plan the same way every time
    cacheable = (key is not None and _plain(raw_optimize)
                 and all(type(op) is np.ndarray for op in ops))
    plan_for = partial(make_plan, eq, optimize=optimize, memory_limit=memory_limit,
                       use_blas=use_blas)
    return finish(sub, eq, arrays, result, out, dtype, order, casting, use_blas, plan_for,
                  RUNNERS if cacheable else None, key)


def finish(sub: Any, eq: Equation, arrays: list[np.ndarray], result: np.dtype,
           out: np.ndarray | None, dtype: Any, order: str, casting: str, use_blas: bool,
           plan_for: Callable[[np.dtype], Plan], cache: RunnerCache | None, key: tuple | None
           ) -> Any:
    """Run a validated call: numpy's loop for a tiny equation, else the plan; with ``cache``,
    remember under ``key`` what ran (only after it succeeded: the runner skips the size checks
    this call passed).

    ``plan_for(computation_dtype)`` gives the plan; it is not called for an equation with a
    zero-size label or one that runs in numpy's loop.
    """
    if numpy_loop_applies(sub, eq, out, use_blas):
        # numpy's own answer, errors included (it also refuses an out= it cannot cast back to
        # the computation dtype, which the checks above do not look at)
        value = call_numpy_loop(sub, arrays, out, dtype, order, casting)
        if cache is not None:
            cache.remember(key, partial(_numpy_compat.numpy_loop, sub))
        return value
    if cache is not None:
        plan = plan_for(_dtypes.computation_dtype(result))
        value = run(eq, arrays, result, None, "K", lambda _: plan)
        cache.remember(key, PlannedCall(eq, result, plan, arrays))
        return value
    return run(eq, arrays, result, out, order, plan_for)


def _plain(optimize: Any) -> bool:
    """Whether ``optimize`` is plain data (a name, a bool, a number, or lists and tuples of
    them, such as an explicit path), which plans the same way on every call."""
    if isinstance(optimize, (bool, str, int, float)):
        return True
    return isinstance(optimize, (list, tuple)) and all(_plain(item) for item in optimize)


def _interleave(operands: Sequence[Any], sub: tuple[list[Any], Any]) -> list[Any]:
    """``(op0, sub0, op1, sub1, ..., [out_sub])``: einsum's interleaved arguments."""
    sublists, out_sub = sub
    args = [item for pair in zip(operands, sublists) for item in pair]
    return args if out_sub is None else [*args, out_sub]


def run(eq: Equation, arrays: list[np.ndarray], result: np.dtype, out: np.ndarray | None,
        order: str, plan_for: Callable[[np.dtype], Plan]) -> Any:
    """Validated arrays in, numpy-compatible result out."""
    size = eq.size_dict
    out_shape = tuple(size[lab] for lab in eq.output)
    comp = _dtypes.computation_dtype(result)
    if out is None and is_view_case(eq, arrays, result):
        view = view_result(eq, arrays[0])
        return view[()] if view.ndim == 0 else view
    converted = _dtypes.in_dtype(arrays, comp)

    direct = (out is not None and type(out) is np.ndarray and out.dtype == comp
              and not needs_copy(out)
              and all(st != 0 or n <= 1 for st, n in zip(out.strides, out.shape))
              and not any(np.may_share_memory(out, a) for a in arrays))
    if 0 in size.values():
        target = out if direct else alloc(out_shape, comp, order, arrays)
        target[...] = 0
    else:
        plan = plan_for(comp)
        if plan.largest_loop * comp.itemsize >= TRIAL_BYTES:  # a large plan: its limits
            check_limits(plan, comp.itemsize)  # sizes alone (the planner's half)
            reserve(plan, comp.itemsize, output_allocated=out is not None or order != "K")
        if out is None and order == "K":
            target = execute(plan, converted, None)  # the last step picks the layout
        else:
            target = out if direct else alloc(out_shape, comp, order, arrays)
            execute(plan, converted, target)

    if out is not None:
        if target is not out:
            np.copyto(out, target if result.kind != "b" else target != 0, casting="unsafe")
        return out
    return _dtypes.as_result(target, result)


class PlannedCall:
    """A fast-path runner: :func:`run` for operands of the shapes and dtypes a first call
    validated and planned, with default keywords, minus everything that the shapes and dtypes
    settle."""

    __slots__ = ("eq", "result", "plan", "comp", "general")

    def __init__(self, eq: Equation, result: np.dtype, plan: Plan, arrays: Sequence[np.ndarray]
                 ) -> None:
        self.eq, self.result, self.plan = eq, result, plan
        self.comp = _dtypes.computation_dtype(result)
        # views of an operand, and zero-size axes, take the general path
        self.general = is_view_case(eq, arrays, result) or 0 in eq.size_dict.values()

    def __call__(self, *arrays: np.ndarray) -> Any:
        if self.general:
            return run(self.eq, list(arrays), self.result, None, "K", lambda _: self.plan)
        return _dtypes.as_result(execute(self.plan, _dtypes.in_dtype(arrays, self.comp), None),
                                 self.result)


def is_view_case(eq: Equation, arrays: Sequence[np.ndarray], result: np.dtype) -> bool:
    """numpy returns a view for one operand that is only transposed or has a diagonal taken."""
    return (len(arrays) == 1
            and arrays[0].dtype.newbyteorder("=") == result.newbyteorder("=")
            and set(eq.terms[0]) == set(eq.output))


def view_result(eq: Equation, arr: np.ndarray) -> np.ndarray:
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
