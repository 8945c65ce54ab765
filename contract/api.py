"""The public functions, shaped like numpy's (``einsum``, ``einsum_path``) and opt_einsum's
(``contract``, ``contract_path``, ``contract_expression``).

A thin shell: each function takes its own keywords and its fast-path lookup, then hands the call
to the one pipeline in :mod:`contract._call` (dtype rules in :mod:`contract._dtypes`, numpy's
checks and delegation in :mod:`contract._numpy_compat`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from . import _dtypes, _njit_entry, _tuning
from ._backends import backend_module, infer_backend
from ._call import NO_ARGUMENTS as _NO_ARGUMENTS
from ._call import RUNNERS, RUNNERS_MAX, evaluate, finish
from ._call import Request as _Request
from ._call import arguments as _arguments
from ._fastpath import Runner, RunnerCache, operand_key
from ._numpy_compat import check_keywords, check_out, delegate, numpy_loop_applies
from .parser import label_name, parse_cached, relabel_sublists, split_operands
from .planner import Plan, make_plan, normalize_optimize, split_memory_limit

__all__ = [
    "einsum",
    "einsum_path",
    "contract",
    "contract_path",
    "contract_expression",
    "ContractExpression",
    "PathInfo",
]

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
# numpy-shaped API


def einsum(subscripts: Any = _NO_ARGUMENTS, *operands: Any, out: np.ndarray | None = None,
           dtype: Any = None,
           order: str = "K", casting: str = "safe", optimize: Any = True,
           split_every: Any = None) -> Any:
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
    split_every : int or dict, optional
        With dask operands: the fan-in of dask's tree reduction over the blocks of a summed
        label (as in :func:`dask.array.einsum`). Accepted and ignored for numpy operands.

    Returns
    -------
    ndarray, numpy scalar or dask.array.Array
        The result (a numpy scalar when the result is 0-d and ``out`` is not given; a view of the
        operand, as in numpy, when a single operand is only transposed or has a diagonal taken);
        a lazy dask array when any operand is a dask array (see the "Scaling out with dask"
        page).

    Raises
    ------
    ValueError
        Malformed subscripts, operand-count or shape mismatches, a wrong ``out`` shape, bad
        ``order``/``casting``/``optimize`` values.
    TypeError
        Unsafe casts under ``casting``, an ``out`` that is not an ndarray, ``out`` with dask
        operands.

    Notes
    -----
    Object and other non-numeric dtypes are delegated to :func:`numpy.einsum` (with dask
    operands, to :func:`dask.array.einsum`).

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
        key, runner = RUNNERS.lookup(subscripts, optimize, True, operands)
        if runner is not None:
            return runner(*operands) if type(subscripts) is str else runner(subscripts, *operands)
    return evaluate(subscripts, operands, out, dtype, order, casting, optimize, None, True, key,
                    split_every=split_every)


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
             optimize: Any = "auto", memory_limit: Any = None, backend: str = "auto",
             split_every: Any = None) -> Any:
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
        Only ``'auto'``, ``'numpy'`` and ``'contract'`` (all meaning this engine) are accepted;
        dask operands are recognised by their type whatever the value.
    split_every : int or dict, optional
        As for :func:`einsum` (dask operands only; ignored for numpy operands).

    Returns
    -------
    ndarray, numpy scalar or dask.array.Array

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
        key, runner = RUNNERS.lookup(subscripts, optimize, use_blas, operands,
                                     hashable_labels=True)
        if runner is not None:
            return runner(*operands) if type(subscripts) is str else runner(subscripts, *operands)
    if backend not in ("auto", "numpy", "contract"):
        raise ValueError(f"backend: only 'auto', 'numpy' and 'contract' are supported, "
                         f"got {backend!r}")
    return evaluate(subscripts, operands, out, dtype, order, casting, optimize, memory_limit,
                    use_blas, key, hashable_labels=True, split_every=split_every)


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
        The readable report (``print(info)``) and its numbers; for dask operands a
        ``DaskPathInfo``, whose report adds each step's block grid and bytes per task.

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
    backend = "numpy" if shapes else infer_backend(ops)
    if backend != "numpy":  # shapes and chunks only: nothing computed
        optimize = normalize_optimize(optimize)
        return backend_module(backend).path_info(_Request(
            sub, tuple(ops), None, dtype, "K", "safe", optimize, memory_limit, bool(use_blas)))
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
    eq = parse_cached(sub, tuple(shape_list))
    if not _dtypes.is_native(plan_dtype):
        plan_dtype = np.dtype(np.float64)
    plan = make_plan(eq, _dtypes.computation_dtype(plan_dtype), normalize_optimize(optimize),
                     memory_limit, bool(use_blas))
    return plan.path, PathInfo(plan, numpy_loop_applies(sub, eq, None, bool(use_blas)))


def _shaped(operand: Any) -> Any:
    """An operand of another backend as it is (it has a shape), anything else as a numpy array."""
    return operand if hasattr(operand, "shape") else np.asarray(operand)


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
        self.equation = parse_cached(self._sub, tuple(self.shapes))
        self.num_args = n - len(self.constants)
        self._optimize = normalize_optimize(optimize)
        self._memory_limit = memory_limit
        self._use_blas = bool(use_blas)
        self._plans: dict[tuple[str, ...], tuple[Plan, np.dtype]] = {}
        # the fast path, as for einsum (its runners take the constants first)
        self._runners = (_ConstantsFirst(self._const_arrays, n) if self._const_arrays
                         else RunnerCache(RUNNERS_MAX))
        self._free = [k for k in range(n) if k not in self._const_arrays]
        self.contraction = self.equation.to_string()
        if isinstance(self._optimize, tuple):  # an explicit path: refuse a bad one now, not later
            make_plan(self.equation, np.dtype(np.float64), self._optimize, memory_limit,
                      self._use_blas)

    def _plan_for(self, arrays: list[np.ndarray], dtype: Any, casting: str
                  ) -> tuple[Plan, np.dtype]:
        # plans made with other settings (contract._tuning) are not reused
        key = tuple(a.dtype.str for a in arrays) + (str(dtype), casting, _tuning.generation())
        hit = self._plans.get(key)
        if hit is None:
            result = _dtypes.result_dtype(arrays, dtype, casting)
            plan = make_plan(self.equation, _dtypes.computation_dtype(result), self._optimize,
                             self._memory_limit, self._use_blas)
            hit = self._plans[key] = (plan, result)
        return hit

    def __call__(self, *arrays: Any, out: np.ndarray | None = None, dtype: Any = None,
                 order: str = "K", casting: str = "safe", backend: str = "auto") -> Any:
        """Evaluate the expression on the non-constant operands.

        With a dask array among ``arrays`` the result is a lazy dask array (see :func:`einsum`).

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
                key = operand_key(arrays)
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
        order, casting = check_keywords(order, casting)
        backend = infer_backend(arrays)
        if backend != "numpy":  # dask: its arrays stay lazy, the backend runs the call
            full = self._with_constants(arrays, _shaped)
            return backend_module(backend).evaluate(_Request(
                self._sub, tuple(full), out, dtype, order, casting, self._optimize,
                self._memory_limit, self._use_blas))
        full = self._with_constants(arrays, np.asarray)
        if not _dtypes.runs_natively(full, dtype):
            return delegate(self.contraction, full, out, dtype, order, casting)
        if out is not None and dtype is None:  # numpy counts out's dtype
            dtype = _dtypes.widen_for_out(np.result_type(*full), out, None)
        plan, result = self._plan_for(full, dtype, casting)
        if out is not None:
            out_shape = tuple(self.equation.size_dict[lab] for lab in self.equation.output)
            if isinstance(out, np.ndarray) and out.shape != out_shape:
                raise ValueError(f"Internal error while evaluating `ContractExpression`: out has "
                                 f"shape {out.shape}, the result ({self.contraction}) has shape "
                                 f"{out_shape}")
            out = check_out(out, out_shape, result, casting)
        cacheable = key is not None and all(type(a) is np.ndarray for a in arrays)
        return finish(self._sub, self.equation, full, result, out, dtype, order, casting,
                      self._use_blas, lambda _: plan, self._runners if cacheable else None, key)

    def _with_constants(self, arrays: Sequence[Any], as_array: Callable[[Any], Any]) -> list:
        """Every operand in order: the constants in their places, each of ``arrays`` through
        ``as_array`` and checked against the shape it was planned with."""
        full: list[Any] = []
        free = iter(arrays)
        for k, shape in enumerate(self.shapes):
            if k in self._const_arrays:
                full.append(self._const_arrays[k])
                continue
            arr = as_array(next(free))
            if tuple(arr.shape) != shape:
                raise ValueError(f"Internal error while evaluating `ContractExpression`: operand "
                                 f"{k} of this expression ({self.contraction}) must have shape "
                                 f"{shape}, got {tuple(arr.shape)}")
            full.append(arr)
        return full

    def __repr__(self) -> str:
        return f"<ContractExpression('{self.contraction}')>"

    def __str__(self) -> str:
        plan = next(iter(self._plans.values()))[0] if self._plans else make_plan(
            self.equation, np.dtype(np.float64), self._optimize, self._memory_limit,
            self._use_blas)
        return f"<ContractExpression('{self.contraction}')>\n{plan.report()}"


class _ConstantsFirst(RunnerCache):
    """A ``ContractExpression``'s runner cache when it has constants: every runner stored is
    wrapped to take the free operands and put the constants in their places first."""

    __slots__ = ("constants", "n_operands")

    def __init__(self, constants: dict[int, np.ndarray], n_operands: int) -> None:
        super().__init__(RUNNERS_MAX)
        self.constants, self.n_operands = constants, n_operands

    def remember(self, key: tuple, runner: Runner) -> None:
        super().remember(key, partial(_with_constants, self.constants, self.n_operands, runner))


def _with_constants(constants: dict[int, np.ndarray], n_operands: int, runner: Runner,
                    *arrays: np.ndarray) -> Any:
    free = iter(arrays)
    return runner(*[constants[k] if k in constants else next(free) for k in range(n_operands)])


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


_njit_entry.finish(__name__)  # the module is complete: the @njit overloads may be registered now
