"""``contract.einsum`` inside Numba ``@njit`` code: planned at compile time, run in nopython mode.

Importing this module (Numba does it through the ``numba_extensions`` entry point before its first
compile; ``import contract`` does not) registers an overload of :func:`contract.einsum`.
:func:`register_numpy_einsum` adds the same overload for :func:`numpy.einsum`.

How a call compiles. Numba's typing sees the literal subscripts and each operand's ndim, dtype and
layout, never a shape. Everything that follows from those is decided once, in Python, while the
caller compiles: the parsed equation (the parser is run on all-ones shapes of the right ranks, so
only shape-free errors can come out of it), the result dtype, and for three or more operands the
candidate pairwise orders (every order up to ``_ALL_ORDERS_MAX`` operands, one opt_einsum
``'greedy'`` order on uniform sizes beyond). The generated nopython function then, at run time:

1. binds the label sizes from the shapes, raising numpy's ValueError on a mismatch;
2. runs the whole contraction as one generated loop nest when it is tiny (the product of all label
   sizes at most ``_TINY_WORK``: a 4x4 matrix product costs what a hand-written loop costs);
3. otherwise picks the cheapest candidate order with a FLOP count evaluated on the sizes, and runs
   its steps: matrix-product steps through ``np.dot`` for floats and complex numbers (BLAS, which
   Numba reaches through SciPy) or the project's ``gemm_serial`` (integers, and floats without
   SciPy), one call per batch item when the step is batched (its batch labels first in its
   result); every other step through ``sum_products_serial`` on flat, uncopied views of the
   operands' memory, with the loop layout computed by :func:`kernel_dims_arrays`: the executor's
   own rule, :func:`contract.layout.kernel_dims_arrays`, compiled.

Only the serial kernels run here: the caller owns the threads (a user's ``prange`` loop may call
einsum in every iteration, and a parallel kernel launched from a worker thread would nest thread
pools), and the results stay bit-identical to the serial kernels'. The generated source is compiled
into the caller, so ``@njit(cache=True)`` callers cache it with the rest of their code.

The per-call cost outside the loop nest. Numba brackets every array argument of a function with
atomic reference-count updates (``lock`` instructions, several nanoseconds each), and its pruning
pass removes a pair only across a short, simple stretch of code, which the size checks and the
loop nest are not. The generated function therefore takes each operand at its entry as a borrowed
view (:func:`_borrow`: no reference, so nothing to count), and allocates a tiny product's result
in its final shape (no reshape, a C call and two more counts). Measured on a 4x4 ``ij,jk->ik`` in
an njit loop: from 2.2x to about 1.1-1.2x the time of a hand-written loop.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from typing import Any

import numba
import numpy as np
from numba import types
from numba.core import cgutils, ir
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array, populate_array
from numba.np.numpy_support import as_dtype

from . import layout
from .kernels._jit import jit
from .kernels.gemm import gemm_serial
from .kernels.sum_products import sum_products_serial
from .parser import label_name, parse, parse_structure

__all__ = ["register_numpy_einsum", "chosen_order", "kernel_dims_arrays", "MAX_OPERANDS"]

#: The most operands one call may take inside njit (the overload spells them out as arguments).
MAX_OPERANDS = 16
# the whole contraction runs as one generated loop nest when the product of all sizes is at most
# this (no allocation of scratch arrays, no layout work: what a hand-written loop costs)
_TINY_WORK = 4096
# every pairwise order is a candidate up to this many operands (3 -> 3 orders, 4 -> 18)
_ALL_ORDERS_MAX = 4
# matrix-product steps run through BLAS / the gemm kernel from this many multiply-adds
_GEMM_MIN_WORK = 4096

_HAVE_SCIPY = importlib.util.find_spec("scipy") is not None
_DEFAULT_OPTIMIZE = True


# ---------------------------------------------------------------------------------------------
# nopython helpers (plain source, cached on disk like the kernels)


@intrinsic
def _flat_span(typingctx, arr, lo, span):
    """A 1-D C-ordered view (no copy) of ``span`` elements of ``arr``'s memory, starting ``lo``
    elements (``lo <= 0``) from element ``[0, ..., 0]``. Typed read-only whatever ``arr`` is:
    the kernels' calling convention for inputs, so the kernels compiled for calls from Python
    (and cached on disk) serve calls from here too."""
    rettype = types.Array(arr.dtype, 1, "C", readonly=True)

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        dst = make_array(rettype)(context, builder)
        itemsize = src.itemsize
        data = builder.gep(src.data, [args[1]])
        intp = context.get_value_type(types.intp)
        populate_array(
            dst,
            data=data,
            shape=cgutils.pack_array(builder, [args[2]], ty=intp),
            strides=cgutils.pack_array(builder, [itemsize], ty=intp),
            itemsize=itemsize,
            meminfo=src.meminfo,
            parent=src.parent,
        )
        res = dst._getvalue()
        if context.enable_nrt:
            context.nrt.incref(builder, rettype, res)
        return res

    return rettype(arr, types.intp, types.intp), codegen


@intrinsic
def _borrow(typingctx, arr):
    """``arr`` itself (same type, same memory) without a reference: its meminfo and parent are
    null, so Numba's reference counting of it costs nothing (the operations on a null pointer
    are pruned). The generated code takes each operand so at its entry: the caller's reference
    keeps the memory alive for the whole call, and no borrowed view outlives the call (every
    result is a new array, or ``out``)."""

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        dst = make_array(sig.return_type)(context, builder)
        populate_array(
            dst,
            data=src.data,
            shape=src.shape,
            strides=src.strides,
            itemsize=src.itemsize,
            meminfo=None,
            parent=None,
        )
        return dst._getvalue()

    return arr(arr), codegen


def _same_array(context, builder, sig, args):
    """Codegen of :func:`_readonly` and :func:`_writable`: the argument itself, retyped (one
    more reference to it when reference counting is on)."""
    if context.enable_nrt:
        context.nrt.incref(builder, sig.args[0], args[0])
    return args[0]


@intrinsic
def _readonly(typingctx, arr):
    """``arr`` typed read-only: an intermediate result (or a matrix) as a kernel input."""
    return arr.copy(readonly=True)(arr), _same_array


@intrinsic
def _writable(typingctx, arr):
    """``arr`` (1-D, C-ordered) typed writable, for ``np.dot``, which takes one array type per
    operand (it never writes to it)."""
    return types.Array(arr.dtype, 1, "C")(arr), _same_array


@jit
def _size_error(prev, dim, operand, axis, name):
    """A label's size in an operand disagrees with an earlier one (and neither is 1)."""
    raise ValueError("operands could not be broadcast together: label '" + name
                     + "' has size " + str(dim) + " in operand " + str(operand)
                     + " (axis " + str(axis) + ") but size " + str(prev)
                     + " in an earlier operand")


@jit
def _same_error(d0, d1, operand, name):
    """The two axes of a repeated label of one operand must have one size."""
    raise ValueError("dimensions in operand " + str(operand) + " for collapsing index '"
                     + name + "' don't match (" + str(d0) + " != " + str(d1) + ")")


@jit
def _check_out(dim, want, axis):
    if dim != want:
        raise ValueError("out: axis " + str(axis) + " has size " + str(dim)
                         + " but the result has size " + str(want))


# the kernel's loop layout: layout.py's one implementation of the rule, compiled for nopython
# callers (it reads layout.FOLD_ROW_MAX, frozen in at compile time)
kernel_dims_arrays = jit(layout.kernel_dims_arrays)


@jit
def _run_step(out_buf, out_off, out_row, bufs, offs, rows, size, kind, zero):
    """out = sum over the ``kind == 2`` labels of the product of the operands, by the serial
    kernel; ``out_row`` gives the output's element strides per label (every size >= 1)."""
    nops = len(bufs)
    nl = size.shape[0]
    allrows = np.empty((nops + 1, nl), dtype=np.int64)
    allrows[0] = out_row
    offsets = np.empty(nops, dtype=np.int64)
    for k in range(nops):
        allrows[k + 1] = rows[k]
        offsets[k] = offs[k]
    extents, strides, n_outer, inner_out = kernel_dims_arrays(allrows, size, kind)
    sum_products_serial(out_buf, np.int64(out_off), bufs, offsets, extents, strides, n_outer,
                        inner_out, zero)


@jit
def _c_row(order, size):
    """C-order element strides over the labels ``order`` (0 elsewhere), and the element count."""
    row = np.zeros(size.shape[0], dtype=np.int64)
    acc = 1
    for j in range(order.shape[0] - 1, -1, -1):
        row[order[j]] = acc
        acc *= size[order[j]]
    return row, acc


@jit
def _as_matrix(buf, off, row, size, order, n_rows, n_cols):
    """The operand as a C-ordered ``(n_rows, n_cols)`` matrix over the labels ``order``: a view
    of ``buf`` when it is laid out so already, else a packed copy (an odometer over ``order``;
    a plain loop rather than the kernel, whose code every caller would link and optimize
    again)."""
    crow, n = _c_row(order, size)
    same = True
    for j in range(order.shape[0]):
        lab = order[j]
        if size[lab] != 1 and row[lab] != crow[lab]:
            same = False
    if same:
        return _writable(buf[off:off + n]).reshape((n_rows, n_cols))
    packed = np.empty(n, dtype=buf.dtype)
    nd = order.shape[0]
    idx = np.zeros(nd, dtype=np.int64)
    pos = off
    for e in range(n):
        packed[e] = buf[pos]
        d = nd - 1
        while d >= 0:
            lab = order[d]
            idx[d] += 1
            pos += row[lab]
            if idx[d] < size[lab]:
                break
            pos -= idx[d] * row[lab]
            idx[d] = 0
            d -= 1
    return packed.reshape((n_rows, n_cols))


@jit
def _gemm_blas(a2, b2, out2):
    """out2 = a2 @ b2 for C-ordered matrices, by BLAS (``np.dot``: Numba needs SciPy for it)."""
    np.dot(a2, b2, out2)


@jit
def _gemm_kernel(a2, b2, out2):
    """out2 = a2 @ b2 for C-ordered matrices, by the project's blocked kernel (integers; floats
    without SciPy). The inputs read-only, as the kernel's calls from Python pass them: one
    specialization per dtype, loaded from the disk cache."""
    gemm_serial(_readonly(a2.reshape((1,) + a2.shape)), _readonly(b2.reshape((1,) + b2.shape)),
                out2.reshape((1,) + out2.shape))


def _gemm_function(dtype: Any = np.float64) -> Any:
    """The matrix-product function for steps computed in ``dtype``: BLAS for floats and complex
    numbers when SciPy is there (Numba's ``np.dot`` needs it), else the project's kernel."""
    return _gemm_blas if _HAVE_SCIPY and np.dtype(dtype).kind in "fc" else _gemm_kernel


@jit
def _work(size, labels):
    w = 1
    for j in range(labels.shape[0]):
        w *= size[labels[j]]
    return w


# ---------------------------------------------------------------------------------------------
# compile-time planning and code generation


class _Source:
    """Lines of generated Python source with indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 1

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)


def _numpy_dtype(t: Any, what: str) -> np.dtype:
    """A Numba type or dtype argument as a numpy dtype (a TypingError if it is none)."""
    if isinstance(t, types.StringLiteral):
        return np.dtype(t.literal_value)
    if isinstance(t, types.DType):
        return as_dtype(t.dtype)
    if isinstance(t, types.NumberClass):
        return as_dtype(t.instance_type)
    if isinstance(t, (types.Number, types.Boolean)):
        return as_dtype(t)
    raise TypingError(f"contract.einsum: {what} must be a dtype known at compile time, got {t}")


def _is_none(t: Any) -> bool:
    return t is None or isinstance(t, (types.NoneType, types.Omitted))


def _literal(t: Any) -> Any:
    if t is None or isinstance(t, (bool, str)):
        return t
    if isinstance(t, types.Omitted):
        return t.value
    if isinstance(t, types.NoneType):
        return None
    if isinstance(t, types.Literal):
        return t.literal_value
    raise TypingError(
        "contract.einsum: optimize= must be a literal (True, False or a name) inside njit, "
        f"got {t}")


def _orders(n: int, terms: list[frozenset], output: frozenset) -> list[list[tuple[int, int]]]:
    """Candidate pairwise orders, each a list of (i, j) positions into the shrinking work list
    (opt_einsum's path form): all of them for up to ``_ALL_ORDERS_MAX`` operands, else one."""
    if n <= _ALL_ORDERS_MAX:
        def rec(k: int) -> list[list[tuple[int, int]]]:
            if k == 1:
                return [[]]
            rest = rec(k - 1)
            return [[pair, *tail] for pair in itertools.combinations(range(k), 2) for tail in rest]

        return rec(n)
    import opt_einsum

    sizes = {lab: 8 for t in terms for lab in t}
    path = opt_einsum.paths.greedy([set(t) for t in terms], set(output), sizes)
    return [[tuple(sorted(p)) for p in path]]


def _generate(subscripts: str, ops: list, out_t: Any, dtype_t: Any, optimize: Any,
              arg_list: str) -> tuple[str, dict]:
    """The source of the implementation for one call signature, and its globals."""
    ndims = [t.ndim for t in ops]
    try:
        structure = parse_structure(subscripts, ndims)
    except (ValueError, TypeError) as exc:
        raise TypingError(f"contract.einsum({subscripts!r}): {exc}") from None
    in_dtypes = [as_dtype(t.dtype) for t in ops]
    if not _is_none(dtype_t):
        result = _numpy_dtype(dtype_t, "dtype=")
        for k, d in enumerate(in_dtypes):
            if not np.can_cast(d, result, casting="safe"):
                raise TypingError(f"contract.einsum: cannot cast operand {k} from {d} to "
                                  f"{result} according to the rule 'safe'")
    else:
        extra = [] if _is_none(out_t) else [as_dtype(out_t.dtype)]
        result = np.result_type(*in_dtypes, *extra)
    comp = np.dtype(np.int64) if result.kind == "b" else result
    if comp.kind not in "biufc" or comp.itemsize > 16 or comp == np.float16:
        raise TypingError(f"contract.einsum: dtype {result} is not supported inside njit")
    if not _is_none(out_t):
        if not isinstance(out_t, types.Array):
            raise TypingError(f"contract.einsum: out= must be an array, got {out_t}")
        if out_t.ndim != len(structure.output):
            raise TypingError(f"contract.einsum: out= has {out_t.ndim} dimensions but the result "
                              f"has {len(structure.output)}")
        if not np.can_cast(result, as_dtype(out_t.dtype), casting="safe"):
            raise TypingError(f"contract.einsum: cannot cast the result from {result} to out's "
                              f"dtype {as_dtype(out_t.dtype)} according to the rule 'safe'")
    labels = sorted({lab for term in structure.terms for lab in term} | set(structure.output))
    index = {lab: i for i, lab in enumerate(labels)}
    names = [label_name(lab) for lab in labels]
    terms = [[index[lab] for lab in term] for term in structure.terms]
    output = [index[lab] for lab in structure.output]
    n_labels = len(labels)
    g: dict[str, Any] = {
        "np": np, "_size_error": _size_error, "_same_error": _same_error,
        "_check_out": _check_out, "_borrow": _borrow, "_writable": _writable,
        "_flat_span": _flat_span, "_readonly": _readonly, "_run_step": _run_step,
        "_as_matrix": _as_matrix, "_gemm": _gemm_function(comp), "_best_order": _best_order,
        "_c_row": _c_row, "_work": _work, "T": comp.type,
    }
    consts: dict[tuple, str] = {}

    def const(values: Any, dtype: Any = np.int64) -> str:
        key = (tuple(values), np.dtype(dtype).str)
        if key not in consts:
            name = f"_K{len(consts)}"
            g[name] = np.array(list(values), dtype=dtype)
            consts[key] = name
        return consts[key]

    def const_masks(masks: np.ndarray) -> str:
        name = f"_M{len(consts)}"
        g[name] = masks
        consts[(name,)] = name
        return name

    src = _Source()
    src.lines.append(f"def impl({arg_list}):")
    # the operands as borrowed views (see _borrow): the arguments' reference counts are then
    # touched only here, in one basic block, where Numba's pruning removes them
    for k in range(len(terms)):
        src(f"x{k} = _borrow(op{k})")
    # ---- sizes
    for lab in range(n_labels):
        src(f"s{lab} = -1")
    for k, term in enumerate(terms):
        first: dict[int, int] = {}
        for axis, lab in enumerate(term):
            if lab in first:
                src(f"if x{k}.shape[{first[lab]}] != x{k}.shape[{axis}]:")
                src(f"    _same_error(x{k}.shape[{first[lab]}], x{k}.shape[{axis}], {k}, "
                    f"{names[lab]!r})")
            else:
                first[lab] = axis
            # the sizes are locals s0, s1, ... (an array only on the kernel path): numpy's
            # broadcasting rule, inline
            src(f"d = x{k}.shape[{axis}]")
            src(f"if s{lab} < 0 or s{lab} == 1:")
            src(f"    s{lab} = d")
            src(f"elif d != 1 and d != s{lab}:")
            src(f"    _size_error(s{lab}, d, {k}, {axis}, {names[lab]!r})")
    if not _is_none(out_t):
        for axis, lab in enumerate(output):
            src(f"_check_out(out.shape[{axis}], s{lab}, {axis})")
    out_shape = "(" + "".join(f"s{lab}, " for lab in output) + ")"
    # ---- tiny: one loop nest over every label, into the result allocated in its shape (a
    # reshape costs a call and two reference counts per einsum call); a 0-d result is the
    # accumulator itself (``total``), with no allocation
    src(f"if {_prod_expr(range(n_labels), 's')} <= {_TINY_WORK}:")
    src.depth += 1
    if output:
        src(f"res = np.empty({out_shape}, dtype=T)")
    _emit_loops(src, terms, output, n_labels, in_dtypes, comp)
    src.depth -= 1
    # ---- otherwise the planned steps
    src("else:")
    src.depth += 1
    src(f"res_flat = np.empty({_prod_expr(output, 's')}, dtype=T)")
    src(f"size = np.array(({''.join(f's{lab}, ' for lab in range(n_labels))}), dtype=np.int64)")
    _emit_planned(src, const, const_masks, terms, output, n_labels, in_dtypes, comp, optimize)
    src(f"res = res_flat.reshape({out_shape})" if output else "total = res_flat[0]")
    src.depth -= 1
    # ---- result
    value = "res" if output else "total"
    if result.kind == "b":
        value += " != 0"
    if not _is_none(out_t):
        src(f"out[{'...' if output else '()'}] = {value}")
        src("return out")
    else:
        src(f"return {value}")
    return "\n".join(src.lines) + "\n", g


def _prod_expr(labs: Any, local: str = "") -> str:
    """The product of the sizes of ``labs``, from the size array (or the locals ``s0, ...``)."""
    labs = list(labs)
    if not labs:
        return "1"
    return " * ".join(f"s{lab}" if local else f"size[{lab}]" for lab in labs)


def _emit_loops(src: _Source, terms: list[list[int]], output: list[int], n_labels: int,
                in_dtypes: list[np.dtype], comp: np.dtype) -> None:
    """One loop nest over the output labels, then the summed ones; operands read in place."""
    summed = [lab for lab in range(n_labels) if lab not in output]
    # broadcast multipliers: an axis of size 1 is read at index 0 whatever its label's index
    for k, term in enumerate(terms):
        for axis in range(len(term)):
            src(f"m{k}_{axis} = np.int64(x{k}.shape[{axis}] != 1)")
    depth0 = src.depth
    for lab in output:
        src(f"for i{lab} in range(s{lab}):")
        src.depth += 1
    src("acc = T(0)")
    for lab in summed:
        src(f"for i{lab} in range(s{lab}):")
        src.depth += 1
    factors = []
    for k, term in enumerate(terms):
        index = ", ".join(f"i{lab} * m{k}_{axis}" for axis, lab in enumerate(term))
        read = f"x{k}[{index}]" if term else f"x{k}[()]"
        factors.append(read if in_dtypes[k] == comp else f"T({read})")
    src(f"acc += {' * '.join(factors)}")
    src.depth -= len(summed)
    if output:
        src(f"res[{', '.join(f'i{lab}' for lab in output)}] = acc")
    else:
        src("total = acc")
    src.depth = depth0


def _emit_planned(src: _Source, const: Any, const_masks: Any, terms: list[list[int]],
                  output: list[int],
                  n_labels: int, in_dtypes: list[np.dtype], comp: np.dtype,
                  optimize: Any) -> None:
    """Steps by the kernels (and BLAS), in the cheapest of the candidate orders."""
    # flat views of the operands (converted to the computation dtype first when needed)
    for k, term in enumerate(terms):
        src(f"c{k} = x{k}" if in_dtypes[k] == comp else f"c{k} = x{k}.astype(T)")
        src(f"r{k} = np.zeros({n_labels}, dtype=np.int64)")
        src(f"lo{k} = 0")
        src(f"hi{k} = 0")
        for axis, lab in enumerate(term):
            src(f"st = c{k}.strides[{axis}] // c{k}.itemsize")
            src(f"d = c{k}.shape[{axis}]")
            src("if d != 1:")
            src(f"    r{k}[{lab}] += st")
            src("if st < 0:")
            src(f"    lo{k} += (d - 1) * st")
            src("else:")
            src(f"    hi{k} += (d - 1) * st")
        src(f"b{k} = _flat_span(c{k}, lo{k}, hi{k} - lo{k} + 1)")
        src(f"o{k} = -lo{k}")
    src(f"res_row, _ = _c_row({const(output)}, size)")
    n = len(terms)
    work = [(f"b{k}", f"o{k}", f"r{k}", frozenset(t)) for k, t in enumerate(terms)]
    if n <= 2 or optimize is False:
        _emit_path(src, const, work, [tuple(range(n))], output, n_labels, "p0")
        return
    paths, masks = _candidates(terms, output, n_labels)
    if len(paths) > 1:
        src(f"best = _best_order(size, {const_masks(masks)})")
    for c, path in enumerate(paths):
        if len(paths) > 1:
            src(f"{'if' if c == 0 else 'elif'} best == {c}:")
            src.depth += 1
        _emit_path(src, const, work, path, output, n_labels, f"p{c}")
        if len(paths) > 1:
            src.depth -= 1


def _candidates(terms: list[list[int]], output: list[int], n_labels: int
                ) -> tuple[list[list[tuple[int, ...]]], np.ndarray]:
    """The candidate orders, and for each the labels every step touches as an int8 mask array
    of shape (orders, steps, labels): the cost table :func:`_best_order` evaluates."""
    sets0 = [frozenset(t) for t in terms]
    paths = _orders(len(terms), sets0, frozenset(output))
    masks = np.zeros((len(paths), len(terms) - 1, n_labels), dtype=np.int8)
    for c, path in enumerate(paths):
        sets = list(sets0)
        for s, pair in enumerate(path):
            touched = frozenset().union(*(sets[p] for p in pair))
            masks[c, s, sorted(touched)] = 1
            sets = [x for p, x in enumerate(sets) if p not in pair] + [touched]
    return paths, masks


def chosen_order(subscripts: str, *shapes: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The pairwise order a jitted ``contract.einsum(subscripts, ...)`` runs for operands of
    these shapes (beyond the tiny loop nest), in opt_einsum's path form.

    The same cost table and function as the compiled code: the candidates enumerated at compile
    time, and :func:`_best_order` (here its Python source) on the label sizes.

    Examples
    --------
    >>> chosen_order("ij,jk,kl->il", (2000, 10), (10, 2000), (2000, 10))
    [(1, 2), (0, 1)]
    """
    eq = parse(subscripts, shapes)
    labels = sorted({lab for term in eq.terms for lab in term} | set(eq.output))
    index = {lab: i for i, lab in enumerate(labels)}
    terms = [[index[lab] for lab in term] for term in eq.terms]
    if len(terms) < 3:
        return [tuple(range(len(terms)))]
    paths, masks = _candidates(terms, [index[lab] for lab in eq.output], len(labels))
    size = np.array([eq.size_dict[lab] for lab in labels], dtype=np.int64)
    return [tuple(p) for p in paths[_best_order.py_func(size, masks)]]


@jit
def _best_order(size, masks):
    """The candidate order of least cost: per step, the product of the sizes of the labels it
    touches (its multiply-adds), summed over the steps; the first on ties."""
    best = 0
    best_cost = 0.0
    for c in range(masks.shape[0]):
        cost = 0.0
        for s in range(masks.shape[1]):
            w = 1.0
            for lab in range(masks.shape[2]):
                if masks[c, s, lab]:
                    w *= size[lab]
            cost += w
        if c == 0 or cost < best_cost:
            best = c
            best_cost = cost
    return best


def _emit_path(src: _Source, const: Any, work: list, path: list, output: list[int],
               n_labels: int, tag: str) -> None:
    """The steps of one order; the last one writes into ``res``."""
    work = list(work)
    out_set = frozenset(output)
    for s, pair in enumerate(path):
        last = s == len(path) - 1
        inputs = [work[p] for p in pair]
        rest = [w for p, w in enumerate(work) if p not in pair]
        touched = frozenset().union(*(w[3] for w in inputs))
        keep = out_set if last else touched & frozenset().union(out_set, *(w[3] for w in rest))
        kind = [1 if lab in keep else 2 if lab in touched else 0 for lab in range(n_labels)]
        name = f"{tag}s{s}"
        if last:
            tb, to, tr = "res_flat", "0", "res_row"
        else:
            tb, to, tr = f"{name}b", "0", f"{name}r"
            src(f"{tr}, n_el = _c_row({const(sorted(keep))}, size)")
            src(f"{tb} = np.empty(n_el, dtype=T)")
        gemm = _gemm_split(inputs, keep, output if last else None)
        if gemm is not None:
            (xa, xb), batch, m, k, nn = gemm
            x, y = inputs[xa], inputs[xb]
            # a matrix product (per batch item) of at least _GEMM_MIN_WORK multiply-adds
            src(f"if _work(size, {const(sorted(m + k + nn))}) >= {_GEMM_MIN_WORK}:")
            src.depth += 1
            nm, nk, nnn = _prod_expr(m), _prod_expr(k), _prod_expr(nn)
            if not last:
                # the intermediate is laid out as (batch, m, n): its strides follow
                src(f"{tr}, _ = _c_row({const(batch + m + nn)}, size)")
            depth = src.depth
            for lab in batch:  # one matrix product per batch item, each a BLAS call
                src(f"for i{lab} in range(size[{lab}]):")
                src.depth += 1
            off_x, off_y, off_t = (
                " + ".join([base] + [f"i{lab} * {row}[{lab}]" for lab in batch])
                for base, row in ((x[1], x[2]), (y[1], y[2]), ("0", tr)))
            src(f"mat_a = _as_matrix({x[0]}, {off_x}, {x[2]}, size, {const(m + k)}, {nm}, {nk})")
            src(f"mat_b = _as_matrix({y[0]}, {off_y}, {y[2]}, size, {const(k + nn)}, {nk}, "
                f"{nnn})")
            if batch:
                src(f"ot = {off_t}")
                src(f"_gemm(mat_a, mat_b, _writable({tb}[ot:ot + {nm} * {nnn}])"
                    f".reshape(({nm}, {nnn})))")
            else:
                src(f"_gemm(mat_a, mat_b, {tb}.reshape(({nm}, {nnn})))")
            src.depth = depth - 1
            src("else:")
            src.depth += 1
        bufs = ", ".join(w[0] for w in inputs)
        offs = ", ".join(w[1] for w in inputs)
        rows = ", ".join(w[2] for w in inputs)
        src(f"_run_step({tb}, {to}, {tr}, ({bufs},), ({offs},), ({rows},), size, "
            f"{const(kind, np.int8)}, T(0))")
        if gemm is not None:
            src.depth -= 1
        if not last:
            src(f"{tb}_in = _readonly({tb})")
        work = rest + [(f"{tb}_in", to, tr, keep)]


def _gemm_split(inputs: list, keep: frozenset, final_order: list[int] | None) -> Any:
    """For a pair step that is a matrix product, batched or not (every summed label in both
    operands): ((first, second), batch, m, k, n) label lists such that the result, C-ordered
    over ``batch + m + n``, is ``final_order`` when given; else None. Batch labels are the kept
    labels of both operands; each batch item is one matrix product."""
    if len(inputs) != 2:
        return None
    la, lb = inputs[0][3], inputs[1][3]
    if (la | lb) - keep - (la & lb):
        return None  # labels summed in one operand only
    k = sorted((la & lb) - keep)
    if not k:
        return None
    batch = sorted(la & lb & keep)
    if final_order is not None:
        batch = [lab for lab in final_order if lab in batch]
        if final_order[:len(batch)] != batch:
            return None  # the batch labels must come first in the result
    for first, second, lx, ly in ((0, 1, la, lb), (1, 0, lb, la)):
        m, n = sorted(lx - ly), sorted(ly - lx)
        if final_order is None:
            return (first, second), batch, m, k, n
        mo = [lab for lab in final_order if lab in m]
        no = [lab for lab in final_order if lab in n]
        if final_order == batch + mo + no:
            return (first, second), batch, mo, k, no
    return None


# ---------------------------------------------------------------------------------------------
# the overloads

_ARGS = ", ".join(["subscripts", "op0", *(f"op{k}=None" for k in range(1, MAX_OPERANDS)),
                   "out=None", "dtype=None", f"optimize={_DEFAULT_OPTIMIZE!r}"])
_OPS = ", ".join(f"op{k}" for k in range(MAX_OPERANDS))


def _subscripts_origin() -> str:
    """Where the caller being typed gets the subscripts: ``'computed'`` (``numba.literally``
    cannot make them a literal), ``'literal'`` (they are one: typing with the literal failed),
    ``'argument'``, or ``'unknown'``; found from Numba's type-inference frames."""
    try:
        frame = sys._getframe(2)
        while frame is not None:
            ctx = frame.f_locals
            constraint, typeinfer = ctx.get("self"), ctx.get("typeinfer")
            if type(constraint).__name__ == "CallConstraint" and typeinfer is not None:
                var = constraint.args[0] if constraint.args else dict(constraint.kws).get(
                    "subscripts")
                if var is None:
                    return "unknown"
                typevar = typeinfer.typevars[var.name]
                if typevar.defined and isinstance(typevar.getone(), types.Literal):
                    return "literal"
                if isinstance(typeinfer.func_ir.get_definition(var), (ir.Arg, ir.Const)):
                    return "argument"
                return "computed"
            frame = frame.f_back
    except Exception:  # noqa: BLE001 -- an introspection failure only loses the better message
        return "unknown"
    return "unknown"


def _typing(subscripts: Any, ops: tuple, out: Any, dtype: Any, optimize: Any) -> Any:
    """The typing function of the overloads: returns the generated implementation."""
    if isinstance(subscripts, types.UnicodeType) and not isinstance(subscripts, types.Literal):
        origin = _subscripts_origin()
        if origin == "literal":
            raise TypingError("contract.einsum: typing with the literal subscripts failed (see "
                              "the error above)")
        if origin == "computed":
            raise TypingError(
                "contract.einsum inside njit needs the subscripts as a compile-time string "
                "literal (or an argument of the jitted function that its caller passes as a "
                "literal); this call computes them at run time")
        ns: dict[str, Any] = {"numba": numba}
        exec(f"def impl({_ARGS}):\n    return numba.literally(subscripts)\n", ns)  # noqa: S102
        return ns["impl"]
    if not isinstance(subscripts, types.StringLiteral):
        raise TypingError(f"contract.einsum inside njit needs the subscripts as a compile-time "
                          f"string literal, got {subscripts}")
    operands = [t for t in ops if not _is_none(t)]
    if len(operands) != sum(1 for t in ops if not _is_none(t)) or any(
            _is_none(t) for t in ops[:len(operands)]):
        raise TypingError("contract.einsum: an operand is None")
    for k, t in enumerate(operands):
        if not isinstance(t, types.Array):
            raise TypingError(f"contract.einsum inside njit takes arrays; operand {k} is {t}")
    source, g = _generate(subscripts.literal_value, operands, out, dtype, _literal(optimize),
                          _ARGS)
    exec(source, g)  # noqa: S102 -- generated from the parsed equation only
    return g["impl"]


def _make_typing_function() -> Any:
    ns: dict[str, Any] = {"_typing": _typing}
    exec(f"def einsum_typing({_ARGS}):\n"  # noqa: S102
         f"    return _typing(subscripts, ({_OPS},), out, dtype, optimize)\n", ns)
    return ns["einsum_typing"]


_registered: set[int] = set()


def _register(func: Any) -> None:
    if id(func) in _registered:
        return
    overload(func, prefer_literal=True)(_make_typing_function())
    _registered.add(id(func))


def register_numpy_einsum() -> None:
    """Make :func:`numpy.einsum` inside ``@njit`` code run on contract (opt-in).

    After this call, jitted functions compiled later that call ``np.einsum(subscripts, *ops)``
    compile with the same overload as :func:`contract.einsum` (same subset, same keywords).
    Calling it again does nothing.

    Examples
    --------
    >>> import contract.numba_ext
    >>> contract.numba_ext.register_numpy_einsum()

    after which ``@numba.njit def trace(a): return np.einsum("ii", a)`` compiles.
    """
    _register(np.einsum)


from .api import einsum as _contract_einsum  # noqa: E402 -- after the helpers it needs

_register(_contract_einsum)
