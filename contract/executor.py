"""Run a Plan in memory (the numpy backend): labelled views, BLAS (NumPy) or the Numba kernels.

This is the only module that joins the planner (plain data) and the kernels (plain loops).
:func:`run_step` is a function of its inputs alone: the sizes come from the input arrays, the
method from :data:`STEP_RUNNERS`, and serial or parallel from its ``parallel`` argument (another
backend, running steps on blocks from its own threads, passes ``parallel=False``). The one piece
of process state is the launch lock behind ``parallel="auto"`` (see :func:`_launch`).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numba
import numpy as np

from . import _njit_entry
from ._dtypes import kernel_dtype
from ._tuning import DEFAULT, Tuning
from .kernels import (
    gemm_parallel,
    gemm_serial,
    sum_products_parallel,
    sum_products_serial,
    table_products_parallel,
    table_products_serial,
)
from .kernels._jit import warm_up
from .layout import (
    buffer_geometry,
    by_stride,
    flat_view,
    foldable_tail,
    folds,
    is_blasable,
    kernel_dims,
    labelled_view,
    tabulate,
)
from .planner import Plan, Step

__all__ = ["execute", "run_step", "reserve", "STEP_RUNNERS", "Parallel", "TRIAL_BYTES"]

Labelled = tuple[np.ndarray, tuple[int, ...]]
# How a step may use threads: "auto" (parallel kernels when the step is big enough and the
# thread pool is free), True (parallel kernels for big enough steps, no pool check: the caller
# owns the pool) or False (serial kernels only).
Parallel = Literal["auto"] | bool

# Parallel kernels launch one at a time: a Python thread that finds the pool busy runs the serial
# variant (bit-identical results) instead of oversubscribing the cores -- and instead of aborting,
# which is what Numba's workqueue layer (used where neither OpenMP nor TBB exists) does on
# concurrent launches. A child forked after the parent used the OpenMP pool must not touch it
# (GNU OpenMP does not survive fork), so it runs serial kernels only.
_PARALLEL_LOCK = threading.Lock()
_parallel_state = {"used": False, "forked_after_use": False}


def _after_fork_in_child() -> None:
    global _PARALLEL_LOCK
    _PARALLEL_LOCK = threading.Lock()
    _parallel_state["forked_after_use"] = _parallel_state["used"]


os.register_at_fork(after_in_child=_after_fork_in_child)
warm_up()  # Numba's one-time setup, at the engine's first use rather than its first kernel call


def _launch(parallel: Parallel, kernel, *args) -> bool:
    """Run a parallel kernel as ``parallel`` allows; False if the caller must run it serially.

    ``"auto"`` runs it only if the pool is free and usable in this process.
    """
    if parallel is False:
        return False
    if parallel is True:
        kernel(*args)
        return True
    if _parallel_state["forked_after_use"] or not _PARALLEL_LOCK.acquire(blocking=False):
        return False
    try:
        _parallel_state["used"] = True
        kernel(*args)
    finally:
        _PARALLEL_LOCK.release()
    return True


#: Arrays this large (bytes) that a plan allocates are test-allocated before it runs.
TRIAL_BYTES = 1 << 26


def reserve(plan: Plan, itemsize: int, output_allocated: bool) -> None:
    """Raise numpy's MemoryError now, before any arithmetic, if the system refuses one of the
    large arrays the plan allocates (an intermediate, or the output unless ``output_allocated``),
    rather than after the earlier steps ran: each is allocated once, untouched (costing no
    resident memory), and freed. Call it after :func:`contract.planner.check_limits`."""
    if plan.largest_loop * itemsize < TRIAL_BYTES:
        return  # no step allocates that much (computed once per plan)
    size = plan.equation.size_dict
    last = len(plan.steps) - 1
    for k, step in enumerate(plan.steps):
        allocates = (not output_allocated) if k == last else step.method != "copy"
        shape = tuple(size[lab] for lab in step.output)
        if allocates and math.prod(shape) * itemsize >= TRIAL_BYTES:
            np.empty(shape, dtype=plan.dtype)  # MemoryError (or ValueError) if refused


def execute(plan: Plan, operands: Sequence[np.ndarray], out: np.ndarray | None,
            *, parallel: Parallel = "auto") -> np.ndarray:
    """Run ``plan`` on ``operands`` (already of the plan's dtype, validated) into ``out``, with
    the thresholds the plan was made with (``plan.tuning``).

    Without ``out``, the first run for a geometry of the operands (their shapes and strides)
    also records a :class:`_PreparedRun` in ``plan.prepared``, and later runs with that geometry
    replay it, skipping every per-step decision that the geometry settles.

    Parameters
    ----------
    plan : Plan
        The plan to run.
    operands : sequence of ndarray
        One array per term of the plan's equation, each of dtype ``plan.dtype``, native byte
        order and aligned, with the shapes the equation was parsed with.
    out : ndarray or None
        The destination, of dtype ``plan.dtype`` and the output shape, not overlapping any input.
        ``None`` lets the last step choose the result's memory layout (numpy's ``order='K'``):
        a BLAS result is returned as a transposed view instead of being copied into C order.
    parallel : {"auto", True, False}, optional
        Whether steps may run parallel kernels (see :data:`Parallel`).

    Returns
    -------
    ndarray
        ``out``, or a new array (never a view of an operand) when ``out`` is None.
    """
    if out is not None:
        _run_steps(plan, operands, out, parallel, None)
        return out
    geometry = tuple([(op.shape, op.strides) for op in operands])
    prepared = plan.prepared.get(geometry)
    if prepared is not None:
        return prepared.run(operands, parallel)
    recorded: list = []
    result = _run_steps(plan, operands, None, parallel, recorded)
    if len(plan.prepared) < _PREPARED_PER_PLAN:
        plan.prepared[geometry] = _PreparedRun(plan, recorded)
    return result


# Geometries (operand shapes and strides) remembered per plan; a plan called with ever new
# strides keeps its first ones and runs the others step by step.
_PREPARED_PER_PLAN = 8


def _run_steps(plan: Plan, operands: Sequence[np.ndarray], out: np.ndarray | None,
               parallel: Parallel, recorded: list | None) -> np.ndarray:
    """Run the plan step by step; with ``recorded``, append what :class:`_PreparedRun` needs:
    whether each operand's labelled view is the operand itself, then per step its prepared call
    (or None: run it with :func:`run_step`) and its inputs' labels, then the result's labels."""
    eq, tuning = plan.equation, plan.tuning
    size = eq.size_dict
    work: list[Labelled] = [labelled_view(op, term, size) for op, term in zip(operands, eq.terms)]
    if recorded is not None:
        recorded.append([view is op for (view, _), op in zip(work, operands)])
    steps = plan.steps
    last = len(steps) - 1
    for k, step in enumerate(steps):
        inputs = [work[p] for p in step.operands]
        target = out if k == last else None
        if recorded is not None:
            recorded.append((_prepared_call(step, inputs, tuning),
                             tuple(lab for _, lab in inputs)))
        if step.in_place:  # a pre-reduction: the result takes its operand's place
            work[step.operands[0]] = run_step(step, inputs, parallel=parallel, tuning=tuning)
            continue
        for p in sorted(step.operands, reverse=True):
            del work[p]
        work.append(run_step(step, inputs, target, parallel=parallel, tuning=tuning))
    result, labels = work[0]
    if recorded is not None:
        recorded.append(labels)
    if out is not None:
        return out
    return _as_output(result, labels, eq.output, steps[-1].method == "copy")


def _as_output(result: np.ndarray, labels: tuple[int, ...], output: tuple[int, ...],
               copy: bool) -> np.ndarray:
    """The last step's result in the output's axis order (a copy step's result is a view of an
    operand, so it is copied)."""
    if copy:
        result = np.copy(result, order="K")
    if labels == output:
        return result
    return result.transpose([labels.index(lab) for lab in output])


def _prepared_call(step: Step, inputs: list[Labelled],
                   tuning: Tuning) -> _KernelCall | _BlasCall | None:
    """The call that runs ``step`` on these inputs when its result is allocated fresh: a BLAS
    product, or a kernel call; None when the step runs another way (the GEMM kernel, a view)
    or has a zero-size result or sum."""
    if step.method not in ("kernel", "blas"):
        return None
    size = {lab: n for view, labels in inputs for lab, n in zip(labels, view.shape)}
    if step.method == "blas" and _blas_pays(inputs, step.output, tuning):
        return _blas_call(inputs, size, step.output, tuning)
    shape = tuple(size[lab] for lab in step.output)
    if 0 in shape:
        return None
    item = inputs[0][0].itemsize
    strides = [item] * len(shape)
    for axis in range(len(shape) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * shape[axis + 1]
    return _kernel_call(step.output, step.summed, (shape, tuple(strides), item),
                        tuple([(labels, view.shape, view.strides) for view, labels in inputs]),
                        tuning)


class _PreparedRun:
    """A plan's steps replayed for operands of one geometry (shapes and strides), with the
    choices that the geometry settles (labelled views, BLAS or kernel, the kernel's loop layout,
    how matmul views or copies its operands, every intermediate's layout) made once, when the
    plan first ran with that geometry: the Python cost per step is an allocation and a kernel or
    matmul call (or a :func:`run_step` call for the other methods)."""

    __slots__ = ("size", "terms", "views", "steps", "output", "out_labels", "copy", "tuning")

    def __init__(self, plan: Plan, recorded: list) -> None:
        eq = plan.equation
        self.tuning = plan.tuning
        self.size, self.terms, self.output = eq.size_dict, eq.terms, eq.output
        self.views = tuple(not same for same in recorded[0])  # True: take a labelled view
        self.steps = tuple(
            (step, call, step.operands, step.in_place, tuple(sorted(step.operands, reverse=True)),
             labels)
            for step, (call, labels) in zip(plan.steps, recorded[1:-1]))
        self.out_labels = recorded[-1]
        self.copy = plan.steps[-1].method == "copy"

    def run(self, operands: Sequence[np.ndarray], parallel: Parallel) -> np.ndarray:
        """The plan's result for operands of the recorded geometry."""
        work = [labelled_view(op, term, self.size)[0] if view else op
                for op, term, view in zip(operands, self.terms, self.views)]
        for step, call, positions, in_place, removed, labels in self.steps:
            inputs = [work[p] for p in positions]
            if call is not None:
                result = call.run(inputs, parallel)
            else:
                result = run_step(step, list(zip(inputs, labels)), parallel=parallel,
                                  tuning=self.tuning)[0]
            if in_place:
                work[positions[0]] = result
                continue
            for p in removed:
                del work[p]
            work.append(result)
        return _as_output(work[0], self.out_labels, self.output, self.copy)


def run_step(step: Step, inputs: list[Labelled], out: np.ndarray | None = None,
             *, parallel: Parallel = "auto", tuning: Tuning = DEFAULT) -> Labelled:
    """Run one step on labelled inputs; write into ``out`` (labelled ``step.output``) if given.

    Parameters
    ----------
    step : Step
        The step; its ``method`` picks the runner in :data:`STEP_RUNNERS`.
    inputs : list of (ndarray, tuple of int)
        One labelled view per operand of the step (one axis per distinct label, of one dtype);
        the sizes of the step are read off them.
    out : ndarray, optional
        The destination, with one axis per label of ``step.output``, in that order.
    parallel : {"auto", True, False}, optional
        Whether the step may run a parallel kernel (see :data:`Parallel`).
    tuning : Tuning, optional
        The thresholds (threads, BLAS layout, the BLAS-or-kernel cost model); the plan's.

    Returns
    -------
    (ndarray, tuple of int)
        The result and its labels (for an intermediate, the labels may come in another order
        than ``step.output``).
    """
    size = {lab: n for view, labels in inputs for lab, n in zip(labels, view.shape)}
    return STEP_RUNNERS[step.method](step, inputs, size, out, parallel, tuning)


def _run_copy(step: Step, inputs: list[Labelled], size: dict[int, int],
              out: np.ndarray | None, parallel: Parallel, tuning: Tuning) -> Labelled:
    """A step that only transposes (or takes a diagonal of) its operand: a view, or a copy into
    ``out``."""
    view, labels = inputs[0]
    result = view.transpose(tuple(labels.index(lab) for lab in step.output))
    if out is None:
        return result, step.output
    np.copyto(out, result)
    return out, step.output


def _run_blas(step: Step, inputs: list[Labelled], size: dict[int, int],
              out: np.ndarray | None, parallel: Parallel, tuning: Tuning) -> Labelled:
    """A GEMM-shaped float/complex step: NumPy's matmul, unless reading the operands into the
    order BLAS needs costs more than the kernel (:func:`_blas_pays`)."""
    if _blas_pays(inputs, step.output, tuning):
        return _run_matmul(inputs, step.output, size, out, "blas", parallel, tuning)
    return _run_sum_products(step, inputs, size, out, parallel, tuning)


def _run_gemm(step: Step, inputs: list[Labelled], size: dict[int, int],
              out: np.ndarray | None, parallel: Parallel, tuning: Tuning) -> Labelled:
    """A GEMM-shaped step in the project's blocked kernel (integers, and floats without BLAS)."""
    return _run_matmul(inputs, step.output, size, out, "gemm", parallel, tuning)


def _run_sum_products(step: Step, inputs: list[Labelled], size: dict[int, int],
                      out: np.ndarray | None, parallel: Parallel, tuning: Tuning) -> Labelled:
    """Any step, in the strided sum-of-products kernel."""
    if out is None:
        out = np.empty(tuple(size[lab] for lab in step.output), dtype=inputs[0][0].dtype)
    _run_kernel(inputs, out, step.output, step.summed, parallel, tuning)
    return out, step.output


# Step.method -> its runner: (step, inputs, sizes, out, parallel, tuning) -> (result, labels)
STEP_RUNNERS = {
    "copy": _run_copy,
    "blas": _run_blas,
    "gemm": _run_gemm,
    "kernel": _run_sum_products,
}


def _run_kernel(
    inputs: list[Labelled],
    out: np.ndarray,
    out_labels: tuple[int, ...],
    summed: tuple[int, ...],
    parallel: Parallel = "auto",
    tuning: Tuning = DEFAULT,
) -> None:
    """out[out_labels] = sum over ``summed`` of the product of the inputs, by the Numba kernel."""
    if out.size == 0:
        return
    call = _kernel_call(
        out_labels,
        summed,
        (out.shape, out.strides, out.itemsize),
        tuple([(labels, view.shape, view.strides) for view, labels in inputs]),
        tuning,
    )
    if call is None:  # a summed label has size 0
        out[...] = 0
        return
    call.launch([view for view, _ in inputs], out, parallel)


class _KernelCall:
    """Everything about a kernel call that depends only on shapes and strides (see
    :func:`_kernel_call`), and the call itself (:meth:`launch`)."""

    __slots__ = ("out_shape", "offsets", "out_off", "extents", "strides", "n_outer", "inner_out",
                 "table", "big", "outer", "parts", "min_block")

    def __init__(self, out_shape: tuple[int, ...], offsets: np.ndarray, out_off: int,
                 extents: np.ndarray, strides: np.ndarray, n_outer: int, inner_out: bool,
                 table: np.ndarray, big: bool, outer: int, parts: int, min_block: int) -> None:
        self.out_shape, self.offsets, self.out_off = out_shape, offsets, out_off
        self.extents, self.strides, self.n_outer = extents, strides, n_outer
        self.inner_out, self.table = inner_out, table
        self.big, self.outer, self.parts = big, outer, parts
        self.min_block = min_block

    def run(self, inputs: Sequence[np.ndarray], parallel: Parallel) -> np.ndarray:
        """The kernel's result for ``inputs`` (of the geometry this call was made for), in a new
        C-ordered array."""
        result = np.empty(self.out_shape, dtype=inputs[0].dtype)
        self.launch(inputs, result, parallel)
        return result

    def launch(self, inputs: Sequence[np.ndarray], out: np.ndarray, parallel: Parallel) -> None:
        """Run the kernel on ``inputs`` (of the geometry this call was made for) into ``out``."""
        kernel_type = kernel_dtype(out.dtype)  # unsigned ints run on the signed kernels
        buffers = []
        for view in inputs:
            buf = flat_view(view)
            if kernel_type != buf.dtype:
                buf = buf.view(kernel_type)
            buf.setflags(write=False)  # one Numba type (readonly) for every input buffer
            buffers.append(buf)
        n_chunks = n_blocks = 0
        if self.big and parallel is not False:  # the thread count only for steps worth sharing
            threads = numba.get_num_threads()
            tight = int(self.extents[-1])
            # too few outer rows to share: split the tight (output) dimension into blocks too
            n_blocks = max(1, min(tight // self.min_block, 4 * threads)
                           if self.inner_out and self.outer < 4 * threads else 1)
            if threads > 1 and (self.outer > 1 or n_blocks > 1):
                n_chunks = 4 * threads
        target = out
        if self.parts > 1:  # partial sums, one per part of a summed label, added up below
            target = np.empty((self.parts, *out.shape), dtype=out.dtype)
        target_buffer = flat_view(target)
        if kernel_type != target_buffer.dtype:
            target_buffer = target_buffer.view(kernel_type)
        args = [
            target_buffer,
            self.out_off,
            tuple(buffers),
            self.offsets,
            self.extents,
            self.strides,
            self.n_outer,
            self.inner_out,
            kernel_type.type(0),
        ]
        serial, parallel_kernel = sum_products_serial, sum_products_parallel
        if self.table.shape[1]:  # the tight loop runs over a table of offsets
            serial, parallel_kernel = table_products_serial, table_products_parallel
            args.insert(-1, self.table)
        if not (n_chunks and _launch(parallel, parallel_kernel, *args, n_chunks, n_blocks)):
            serial(*args)
        if self.parts > 1:
            np.add.reduce(target, axis=0, out=out)


@lru_cache(maxsize=4096)
def _kernel_call(
    out_labels: tuple[int, ...],
    summed: tuple[int, ...],
    out_geometry: tuple,
    in_geometry: tuple,
    tuning: Tuning = DEFAULT,
) -> _KernelCall | None:
    """The kernel call for this geometry (cached); None when a summed label has size 0 (the
    output is all zeros).

    A reduction whose output has too few rows to share between threads is split: one summed
    label is cut into ``parts`` ranges whose partial sums go to a scratch array (an extra
    leading output axis) and are added up afterwards. Whether and how to split depends on the
    shapes alone, never on the thread count, so results stay bit-identical on any number of
    threads.
    """
    out_shape, out_strides, item = out_geometry
    size = dict(zip(out_labels, out_shape))
    for labels, shape, _ in in_geometry:
        size.update(zip(labels, shape))
    if any(size[lab] == 0 for lab in summed):
        return None
    out_off, out_est = buffer_geometry(out_shape, out_strides, item)
    rows = [dict(zip(out_labels, out_est))]
    offsets = []
    for labels, shape, strides in in_geometry:
        off, est = buffer_geometry(shape, strides, item)
        rows.append(dict(zip(labels, est)))
        offsets.append(off)
    extents, kstrides, n_outer, inner_out = kernel_dims(out_labels, summed, rows, size)
    out_size = math.prod(size[lab] for lab in out_labels)
    work = out_size * math.prod(size[lab] for lab in summed)
    outer = math.prod(int(e) for e in extents[:n_outer])
    parts = 1
    big = work >= tuning.parallel_min_work
    parts_max = tuning.split_parts
    if outer < parts_max and big and out_size * parts_max * 16 <= work:
        split = _split_label(summed, size, parts_max)
        if split is not None:
            label, parts = split
            extents, kstrides, n_outer, inner_out, out_off = _split_dims(
                out_labels, summed, rows, size, label, parts, out_shape)
    tight_max = tuning.table_tight_max if work >= tuning.table_min_work else 0
    extents, kstrides, n_outer, inner_out, table = tabulate(
        extents, kstrides, n_outer, inner_out, tight_max, tuning.table_max)
    outer = math.prod(int(e) for e in extents[:n_outer])
    return _KernelCall(tuple(out_shape), np.array(offsets, dtype=np.int64), out_off, extents,
                       kstrides, n_outer, inner_out, table, big, outer, parts, tuning.min_block)


def _split_label(summed: tuple[int, ...], size: dict[int, int], parts_max: int
                 ) -> tuple[int, int] | None:
    """The summed label to cut into parts (the largest with a divisor in 2..parts_max) and the
    number of parts (that divisor, the largest one), or None."""
    for lab in sorted(summed, key=lambda x: -size[x]):
        parts = next((p for p in range(parts_max, 1, -1) if size[lab] % p == 0), None)
        if parts is not None:
            return lab, parts
    return None


def _split_dims(
    out_labels: tuple[int, ...], summed: tuple[int, ...], rows: list[dict[int, int]],
    size: dict[int, int], label: int, parts: int, out_shape: tuple[int, ...],
) -> tuple:
    """The kernel layout with ``label`` cut into ``parts`` ranges that become a leading output
    axis of a C-ordered scratch array of shape ``(parts, *out_shape)``."""
    part = -1  # a label of its own: parser labels are never negative
    length = size[label] // parts
    size = {**size, label: length, part: parts}
    scratch = [1] * len(out_shape)
    for axis in range(len(out_shape) - 2, -1, -1):
        scratch[axis] = scratch[axis + 1] * out_shape[axis + 1]
    out_row = dict(zip(out_labels, scratch))
    out_row[part] = math.prod(out_shape)
    split_rows = [out_row]
    for row in rows[1:]:
        row = dict(row)
        if label in row:
            row[part] = row[label] * length
        split_rows.append(row)
    extents, kstrides, n_outer, inner_out = kernel_dims((part, *out_labels), summed, split_rows,
                                                        size)
    return extents, kstrides, n_outer, inner_out, 0


def _run_matmul(
    inputs: list[Labelled],
    out_labels: tuple[int, ...],
    size: dict[int, int],
    out: np.ndarray | None,
    method: str,
    parallel: Parallel,
    tuning: Tuning,
) -> Labelled:
    """A (batched) matrix product: NumPy's matmul (``'blas'``) or the blocked kernel (``'gemm'``).

    Returns the result and its labels, which come in the order the product produced them
    (``out``'s when ``out`` is given).
    """
    if method == "blas":
        result, labels = _blas_product(inputs, out_labels, size, out, tuning)
    else:
        result, labels = _kernel_product(inputs, out_labels, size, parallel, tuning)
    if out is None or result is out:
        return result, labels
    np.copyto(out, result.transpose([labels.index(lab) for lab in out_labels]))
    return out, out_labels


def _blas_product(
    inputs: list[Labelled], out_labels: tuple[int, ...], size: dict[int, int],
    out: np.ndarray | None, tuning: Tuning,
) -> Labelled:
    """A matrix product through NumPy's matmul (see :func:`_blas_call`), into ``out`` when the
    product's labels come in its order and it is C-contiguous."""
    call = _blas_call(inputs, size, out_labels, tuning)
    arrays = [view for view, _ in inputs]
    if (out is not None and not call.summed and call.labels == out_labels
            and out.flags.c_contiguous):
        call.into(arrays, out.reshape(call.stack_shape))
        return out, out_labels
    return call.run(arrays), call.labels


def _blas_call(inputs: list[Labelled], size: dict[int, int], out_labels: tuple[int, ...],
               tuning: Tuning) -> _BlasCall:
    """How matmul computes this pair, copying an operand only when BLAS cannot read it (the
    grouping is :func:`_blas_grouping`'s, cached per shapes and strides)."""
    (a, la), (b, lb) = inputs
    a_axes, a_shape, b_axes, b_shape, labels, stack_shape = _blas_grouping(
        la, a.shape, a.strides, lb, b.shape, b.strides, out_labels, a.itemsize,
        tuning)
    # decided from the geometry alone: the stacks are built (and copied, if need be) once, in
    # _BlasCall.into
    copy_a, c_order_a = _stack_layout(a.shape, a.strides, a_axes, a_shape, a.itemsize)
    copy_b, c_order_b = _stack_layout(b.shape, b.strides, b_axes, b_shape, b.itemsize)
    # numpy's matmul runs a C-ordered stack times a transposed small one far below BLAS speed
    # (measured: (16807, 7) @ (7, 8) 0.28 ms with both C-ordered, 12 ms with the second a
    # transposed view): the smaller operand, when small, is copied into C order
    n_a, n_b = math.prod(a_shape), math.prod(b_shape)
    if n_b <= n_a:
        copy_b = copy_b or (n_b <= tuning.small_operand and not c_order_b)
    else:
        copy_a = copy_a or (n_a <= tuning.small_operand and not c_order_a)
    swap = a.dtype == np.float64 and stack_shape[-2] > stack_shape[-1]
    if swap:
        # OpenBLAS's dgemm (through numpy's row-major matmul) runs faster when the result's
        # contiguous axis is the longer one. Measured here over 108 shapes (m 1024-20000, n 32-256,
        # k 64-256, each operand read plain or transposed), taking the product the other way round
        # (B^T A^T) was within 1.008x of the better orientation on geometric mean (at worst
        # 1.16x), against 1.24x (at worst 2.76x) for A B. sgemm is the opposite (A B within
        # 1.015x, B^T A^T 1.17x), and complex was not measured, so only float64 is turned.
        labels = labels[:-2] + (labels[-1], labels[-2])
        stack_shape = stack_shape[:-2] + (stack_shape[-1], stack_shape[-2])
    m_labels, n_labels = labels[-2:]
    labels = labels[:-2] + m_labels + n_labels
    # summed labels taken as batch axes (_summed_lead): the partial products are added up
    summed = tuple(i for i, lab in enumerate(labels) if lab not in out_labels)
    return _BlasCall(a_axes, a_shape, copy_a, b_axes, b_shape, copy_b, swap, stack_shape,
                     tuple(size[lab] for lab in labels), summed,
                     tuple(lab for lab in labels if lab in out_labels))


class _BlasCall:
    """A BLAS step's matmul for one geometry of its inputs (shapes and strides): how each operand
    is viewed (or copied) as a stack of matrices, and the result's shape and labels (the
    product's shape; its axes ``summed`` are added up, and ``labels`` are the remaining ones)."""

    __slots__ = ("a_axes", "a_shape", "copy_a", "b_axes", "b_shape", "copy_b", "swap",
                 "stack_shape", "result_shape", "summed", "labels")

    def __init__(self, a_axes: tuple[int, ...], a_shape: tuple[int, ...], copy_a: bool,
                 b_axes: tuple[int, ...], b_shape: tuple[int, ...], copy_b: bool, swap: bool,
                 stack_shape: tuple[int, ...], result_shape: tuple[int, ...],
                 summed: tuple[int, ...], labels: tuple[int, ...]) -> None:
        self.a_axes, self.a_shape, self.copy_a = a_axes, a_shape, copy_a
        self.b_axes, self.b_shape, self.copy_b = b_axes, b_shape, copy_b
        self.swap, self.stack_shape = swap, stack_shape
        self.result_shape, self.summed, self.labels = result_shape, summed, labels

    def into(self, inputs: Sequence[np.ndarray], target: np.ndarray) -> None:
        """The product of ``inputs`` (arrays of the geometry this call was made for) into
        ``target``, a C-contiguous array of shape ``stack_shape``."""
        a, b = inputs
        a3 = a.transpose(self.a_axes).reshape(self.a_shape)
        if self.copy_a:
            a3 = np.ascontiguousarray(a3)
        b3 = b.transpose(self.b_axes).reshape(self.b_shape)
        if self.copy_b:
            b3 = np.ascontiguousarray(b3)
        if self.swap:
            a3, b3 = b3.swapaxes(-1, -2), a3.swapaxes(-1, -2)
        np.matmul(a3, b3, out=target)

    def run(self, inputs: Sequence[np.ndarray], parallel: Parallel = "auto") -> np.ndarray:
        """The product of ``inputs`` in a new array, labelled ``labels`` (BLAS picks its own
        threads: ``parallel`` is not used)."""
        result = np.empty(self.stack_shape, dtype=inputs[0].dtype)
        self.into(inputs, result)
        if self.summed:
            return result.reshape(self.result_shape).sum(axis=self.summed)
        return result.reshape(self.result_shape)


@lru_cache(maxsize=4096)
def _blas_grouping(
    la: tuple[int, ...], a_shape: tuple[int, ...], a_strides: tuple[int, ...],
    lb: tuple[int, ...], b_shape: tuple[int, ...], b_strides: tuple[int, ...],
    out_labels: tuple[int, ...], item: int, tuning: Tuning,
) -> tuple:
    """How :func:`_blas_product` lays a pair out for matmul, from shapes and strides alone.

    The labels are grouped GETT-style rather than transposed into a fixed order: each group
    (batch; rows ``m`` of the first operand; the summed ``k``; columns ``n`` of the second) is
    ordered by the operand's strides so it folds into one axis as a view, and BLAS reads either
    matrix transposed. Free labels that do not fold with the rest of their group become extra
    batch axes (the other operand is broadcast over them) as long as each BLAS call keeps
    ``tuning.min_split_work`` multiply-adds and the extra calls (``tuning.blas_call_ns`` each)
    cost less than copying that operand (``tuning.copy_ns`` per element); otherwise that operand
    is copied into order, as is one
    whose summed labels do not fold in the order the other operand needs.

    Returns
    -------
    tuple
        Axis order and stack shape of each operand, the result's labels (the leading ones, then
        the tuple of row labels, then the tuple of column labels), and the result stack's shape.
    """
    size = dict(zip(la, a_shape)) | dict(zip(lb, b_shape))
    sa = {lab: st // item for lab, st in zip(la, a_strides)}
    sb = {lab: st // item for lab, st in zip(lb, b_strides)}
    batch = by_stride([lab for lab in la if lab in lb and lab in out_labels and size[lab] > 1], sa)
    m = by_stride([lab for lab in la if lab not in lb and size[lab] > 1], sa)
    n = by_stride([lab for lab in lb if lab not in la and size[lab] > 1], sb)
    k = [lab for lab in la if lab in lb and lab not in out_labels and size[lab] > 1]
    # one order of the summed labels for both operands: one that folds in both if there is one,
    # else the one that folds in the larger operand (the smaller one is copied), else the one
    # that folds in the smaller (the larger is copied either way: 'abc,dca->bd' copies one
    # operand, not both)
    orders = [by_stride(k, sa), by_stride(k, sb)]
    if math.prod(a_shape) < math.prod(b_shape):
        orders.reverse()
    k = next((o for o in orders if folds(o, sa, size) and folds(o, sb, size)),
             next((o for o in orders if folds(o, sa, size) or folds(o, sb, size)), orders[0]))
    k_lead: list[int] = []
    if not folds(k, sa, size) and not folds(k, sb, size):
        k_lead, k = _summed_lead(k, m, n, a_shape, sa, b_shape, sb, size, tuning)
    nk = math.prod(size[lab] for lab in k)
    a_extra: list[int] = []
    b_extra: list[int] = []
    if k_lead:
        pass
    elif folds(k, sa, size) and not folds(m, sa, size):
        head, tail = foldable_tail(m, sa, size)
        if (math.prod(size[lab] for lab in tail + n) * nk >= tuning.min_split_work
                and _split_pays(head, a_shape, size, tuning)):
            a_extra, m = head, tail
    if not k_lead and folds(k, sb, size) and not folds(n, sb, size):
        head, tail = foldable_tail(n, sb, size)
        if (math.prod(size[lab] for lab in m + tail) * nk >= tuning.min_split_work
                and _split_pays(head, b_shape, size, tuning)):
            b_extra, n = head, tail
    nm = math.prod(size[lab] for lab in m)
    nn = math.prod(size[lab] for lab in n)
    batch = batch + k_lead  # summed over after the product (see _summed_lead)
    lead = [size[lab] for lab in batch]
    a_order = batch + a_extra + m + k
    b_order = batch + b_extra + k + n
    a_axes = [la.index(lab) for lab in la if lab not in a_order] + [la.index(x) for x in a_order]
    b_axes = [lb.index(lab) for lab in lb if lab not in b_order] + [lb.index(x) for x in b_order]
    ones = [lab for lab in out_labels if size[lab] == 1]
    return (
        tuple(a_axes),
        tuple(lead + [size[lab] for lab in a_extra] + [1] * len(b_extra) + [nm, nk]),
        tuple(b_axes),
        tuple(lead + [1] * len(a_extra) + [size[lab] for lab in b_extra] + [nk, nn]),
        (*ones, *batch, *a_extra, *b_extra, tuple(m), tuple(n)),
        tuple(lead + [size[lab] for lab in a_extra + b_extra] + [nm, nn]),
    )


def _summed_lead(
    k: list[int], m: list[int], n: list[int], a_shape: tuple[int, ...], sa: dict[int, int],
    b_shape: tuple[int, ...], sb: dict[int, int], size: dict[int, int], tuning: Tuning,
) -> tuple[list[int], list[int]]:
    """``(lead, tail)``: summed labels that become batch axes of the product (its partial
    results summed afterwards), and the summed labels left in the matrices; ``([], k)`` when
    that does not pay.

    Called when ``k`` folds in neither operand, so both would be copied into matrix order. An
    operand whose summed labels of smallest stride fold (``tail``) and whose free labels fold
    is read in place as a stack over the other summed labels (``lead``) of matrices
    ``free x tail``; only the other operand is copied. ``abcde,efbad->cf`` (extents 17-34,
    91 MB operands): 56 ms against 89 ms for two copies and one product (numpy's tensordot
    89 ms), and one 91 MB allocation fewer. Taken when each call keeps
    ``tuning.min_split_work`` multiply-adds, the calls cost less than the copy they save
    (:func:`_split_pays`) and the partial results hold at most half the elements of that
    operand (the larger operand is tried first).
    """
    candidates = [(a_shape, sa, m), (b_shape, sb, n)]
    if math.prod(a_shape) < math.prod(b_shape):
        candidates.reverse()
    nm = math.prod(size[lab] for lab in m)
    nn = math.prod(size[lab] for lab in n)
    for shape, strides, free in candidates:
        lead, tail = foldable_tail(by_stride(k, strides), strides, size)
        if not lead or not tail or not folds(free, strides, size):
            continue
        calls = math.prod(size[lab] for lab in lead)
        work = nm * nn * math.prod(size[lab] for lab in tail)
        if (work >= tuning.min_split_work and _split_pays(lead, shape, size, tuning)
                and 2 * calls * nm * nn <= math.prod(shape)):
            return lead, tail
    return [], k


def _split_pays(extra: list[int], shape: tuple[int, ...], size: dict[int, int],
                tuning: Tuning) -> bool:
    """Whether one BLAS call per combination of the ``extra`` labels costs less than one copy of
    the operand of ``shape`` that would make them fold (and one call do).

    Each call is a thread-pool launch and sync in a threaded BLAS, and its matrices are thinner:
    ``dega,gfbc->abcdef`` (extents 16-24) split into 384 calls took 0.7 s on a busy machine
    against 0.09 s for a copy of the 0.2-million-element operand and one call (numpy's tensordot
    does the same); a few calls are cheaper than a copy (see ``Tuning.blas_call_ns``).
    """
    calls = math.prod(size[lab] for lab in extra)
    return calls * tuning.blas_call_ns < math.prod(shape) * tuning.copy_ns


def _blas_pays(inputs: list[Labelled], out_labels: tuple[int, ...],
               tuning: Tuning = DEFAULT) -> bool:
    """Whether a ``'blas'`` step runs through matmul (else the strided kernel runs it).

    The planner routes by FLOPs; this looks at the bytes as well, from the operands' strides
    (cached): when an operand must be copied into order first (a transposing copy), the copy
    costs about ``tuning.copy_ns`` per element (this machine: 2 cores, AVX2; a copy reads and
    writes each element; BLAS runs a GEMM at ~20 FLOPs/ns and the strided kernel a thin product
    at ~2; only the ratios matter), and the kernel, which reads the operands where they
    lie, wins whenever that copy outweighs what BLAS saves on the arithmetic -- matrix-vector
    shaped steps (``abcdefgh,d->abcefgh``: measured 206 ms through copy + matmul, 27 ms in the
    kernel, numpy's C loop 23 ms).
    """
    (a, la), (b, lb) = inputs
    copied, flops = _blas_cost(la, a.shape, a.strides, lb, b.shape, b.strides, out_labels,
                               a.itemsize, tuning)
    if not copied:
        return True
    blas_ns = tuning.copy_ns * copied + flops / tuning.blas_flops_per_ns
    return blas_ns < flops / tuning.kernel_flops_per_ns


@lru_cache(maxsize=4096)
def _blas_cost(
    la: tuple[int, ...], a_shape: tuple[int, ...], a_strides: tuple[int, ...],
    lb: tuple[int, ...], b_shape: tuple[int, ...], b_strides: tuple[int, ...],
    out_labels: tuple[int, ...], item: int, tuning: Tuning,
) -> tuple[int, int]:
    """(elements :func:`_blas_product` copies, FLOPs of the product) for this geometry."""
    a_axes, a_stack, b_axes, b_stack, _, stack = _blas_grouping(
        la, a_shape, a_strides, lb, b_shape, b_strides, out_labels, item, tuning)
    copied = sum(math.prod(stacked) for shape, strides, axes, stacked in
                 ((a_shape, a_strides, a_axes, a_stack), (b_shape, b_strides, b_axes, b_stack))
                 if _stack_layout(shape, strides, axes, stacked, item)[0])
    nk = a_stack[-1]
    return copied, 2 * math.prod(stack) * nk


@lru_cache(maxsize=4096)
def _stack_layout(shape: tuple[int, ...], strides: tuple[int, ...], axes: tuple[int, ...],
                  stacked: tuple[int, ...], item: int) -> tuple[bool, bool]:
    """(whether BLAS needs a copy, whether the stack is C-contiguous) for an operand of this
    geometry transposed by ``axes`` and reshaped into the matrix stack ``stacked``, found on a
    stand-in of the same strides (no data is touched or copied). A stack the reshape can only
    copy needs that copy, which is C-contiguous."""
    stand_in = np.lib.stride_tricks.as_strided(np.empty(1, dtype=np.dtype((np.void, item))),
                                               shape, strides)
    try:
        matrices = np.reshape(stand_in.transpose(axes), stacked, copy=False)
    except ValueError:  # the reshape would copy
        return True, True
    return not is_blasable(matrices), bool(matrices.flags.c_contiguous)


def _kernel_product(
    inputs: list[Labelled], out_labels: tuple[int, ...], size: dict[int, int],
    parallel: Parallel, tuning: Tuning,
) -> Labelled:
    """A matrix product by the blocked Numba kernel, on ``(batch, m, k)`` and ``(batch, k, n)``
    stacks packed contiguous; the result has labels ``batch + m + n``."""
    (a, la), (b, lb) = inputs
    batch = [lab for lab in la if lab in lb and lab in out_labels]
    m = [lab for lab in la if lab not in lb]
    n = [lab for lab in lb if lab not in la]
    k = [lab for lab in la if lab in lb and lab not in out_labels]
    nb = math.prod(size[lab] for lab in batch)
    nm = math.prod(size[lab] for lab in m)
    nn = math.prod(size[lab] for lab in n)
    nk = math.prod(size[lab] for lab in k)
    a3 = np.ascontiguousarray(a.transpose([la.index(lab) for lab in batch + m + k]).reshape(
        nb, nm, nk))
    b3 = np.ascontiguousarray(b.transpose([lb.index(lab) for lab in batch + k + n]).reshape(
        nb, nk, nn))
    if a3.flags.writeable:
        a3 = a3.view()
        a3.flags.writeable = False  # the kernel's one calling convention: read-only inputs
    if b3.flags.writeable:
        b3 = b3.view()
        b3.flags.writeable = False
    labels = tuple(batch + m + n)
    result = np.empty((nb, nm, nn), dtype=a.dtype)
    ka, kb, kout = a3, b3, result
    kernel_type = kernel_dtype(a.dtype)  # unsigned ints run on the signed kernels
    if kernel_type != a.dtype:
        ka, kb, kout = (x.view(kernel_type) for x in (a3, b3, result))
    # the kernel splits one matrix across threads only from 2**20 multiply-adds
    work = nb * nm * nn * nk
    if not (work >= tuning.gemm_parallel_min_work
            and _launch(parallel, gemm_parallel, ka, kb, kout)):
        gemm_serial(ka, kb, kout)
    return result.reshape(tuple(size[lab] for lab in labels)), labels


_njit_entry.finish(__name__)  # the module is complete: the @njit overloads may be registered now
