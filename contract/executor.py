"""Run a Plan: prepare labelled views, call BLAS (NumPy) or the Numba kernels, fill the output.

This is the only module that joins the planner (plain data) and the kernels (plain loops).
Every function here is a function of its inputs alone: no hidden state besides Numba's caches.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from functools import lru_cache

import numba
import numpy as np

from .kernels import gemm_parallel, gemm_serial, sum_products_parallel, sum_products_serial
from .layout import buffer_geometry, flat_view, kernel_dims, labelled_view
from .planner import Plan, Step

__all__ = ["execute", "run_step", "PARALLEL_MIN_WORK"]

# Below this many multiply-adds a step runs on one thread: a parallel launch costs ~10 us on an
# idle machine and a whole scheduler slice on a busy one, which only large steps can repay.
PARALLEL_MIN_WORK = 1 << 17
_GEMM_PARALLEL_MIN_WORK = 1 << 20
# The shortest block of the tight dimension worth giving to a thread of its own.
_MIN_BLOCK = 256

Labelled = tuple[np.ndarray, tuple[int, ...]]

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


def _run_parallel(kernel, *args) -> bool:
    """Run a parallel kernel if the pool is free and usable; False if the caller must go serial."""
    if _parallel_state["forked_after_use"] or not _PARALLEL_LOCK.acquire(blocking=False):
        return False
    try:
        _parallel_state["used"] = True
        kernel(*args)
    finally:
        _PARALLEL_LOCK.release()
    return True


def execute(plan: Plan, operands: Sequence[np.ndarray], out: np.ndarray | None) -> np.ndarray:
    """Run ``plan`` on ``operands`` (already of the plan's dtype, validated) into ``out``.

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

    Returns
    -------
    ndarray
        ``out``, or a new array (never a view of an operand) when ``out`` is None.
    """
    eq = plan.equation
    size = eq.size_dict
    work: list[Labelled] = [labelled_view(op, term, size) for op, term in zip(operands, eq.terms)]
    last = len(plan.steps) - 1
    for k, step in enumerate(plan.steps):
        inputs = [work[p] for p in step.operands]
        for p in sorted(step.operands, reverse=True):
            del work[p]
        work.append(run_step(step, inputs, size, out if k == last else None))
    if out is not None:
        return out
    result, labels = work[0]
    if plan.steps[-1].method == "copy":
        result = np.copy(result, order="K")  # a copy step's result is a view of an operand
    return result.transpose([labels.index(lab) for lab in eq.output])


def run_step(
    step: Step, inputs: list[Labelled], size: dict[int, int], out: np.ndarray | None = None
) -> Labelled:
    """Run one step on labelled inputs; write into ``out`` (labelled ``step.output``) if given.

    Returns the result and its labels (for an intermediate, the labels may come in another order
    than ``step.output``).
    """
    if step.method == "copy":
        view, labels = inputs[0]
        perm = tuple(labels.index(lab) for lab in step.output)
        result = view.transpose(perm)
        if out is None:
            return result, step.output
        np.copyto(out, result)
        return out, step.output
    if step.method in ("blas", "gemm"):
        return _run_matmul(inputs, step.output, size, out, step.method)
    if out is None:
        out = np.empty(tuple(size[lab] for lab in step.output), dtype=inputs[0][0].dtype)
    _run_kernel(inputs, out, step.output, step.summed, size)
    return out, step.output


def _run_kernel(
    inputs: list[Labelled],
    out: np.ndarray,
    out_labels: tuple[int, ...],
    summed: tuple[int, ...],
    size: dict[int, int],
) -> None:
    """out[out_labels] = sum over ``summed`` of the product of the inputs, by the Numba kernel."""
    if out.size == 0:
        return
    if any(size[lab] == 0 for lab in summed):
        out[...] = 0
        return
    buffers = []
    for view, _ in inputs:
        buf = flat_view(view)
        buf.flags.writeable = False  # one Numba type (readonly) for every input buffer
        buffers.append(buf)
    layout = _kernel_layout(
        out_labels,
        summed,
        (out.shape, out.strides, out.itemsize),
        tuple((labels, view.shape, view.strides) for view, labels in inputs),
        tuple((lab, size[lab]) for lab in out_labels + summed),
        numba.get_num_threads(),
    )
    offsets, out_off, extents, strides, n_outer, inner_out, n_chunks, n_blocks = layout
    args = (
        flat_view(out),
        out_off,
        tuple(buffers),
        offsets,
        extents,
        strides,
        n_outer,
        inner_out,
        out.dtype.type(0),
    )
    if not (n_chunks and _run_parallel(sum_products_parallel, *args, n_chunks, n_blocks)):
        sum_products_serial(*args)


@lru_cache(maxsize=4096)
def _kernel_layout(
    out_labels: tuple[int, ...],
    summed: tuple[int, ...],
    out_geometry: tuple,
    in_geometry: tuple,
    sizes: tuple,
    threads: int,
) -> tuple:
    """Everything about a kernel call that depends only on shapes and strides (cached)."""
    size = dict(sizes)
    out_shape, out_strides, item = out_geometry
    out_off, out_est = buffer_geometry(out_shape, out_strides, item)
    rows = [dict(zip(out_labels, out_est))]
    offsets = []
    for labels, shape, strides in in_geometry:
        off, est = buffer_geometry(shape, strides, item)
        rows.append(dict(zip(labels, est)))
        offsets.append(off)
    extents, kstrides, n_outer, inner_out = kernel_dims(out_labels, summed, rows, size)
    work = math.prod(size[lab] for lab in out_labels) * math.prod(size[lab] for lab in summed)
    outer = math.prod(int(e) for e in extents[:n_outer])
    tight = int(extents[-1])
    # too few outer rows to share: split the tight (output) dimension into blocks as well
    blocks = min(tight // _MIN_BLOCK, 4 * threads) if inner_out and outer < 4 * threads else 1
    parallel = work >= PARALLEL_MIN_WORK and threads > 1 and (outer > 1 or blocks > 1)
    return (
        np.array(offsets, dtype=np.int64),
        out_off,
        extents,
        kstrides,
        n_outer,
        inner_out,
        4 * threads if parallel else 0,
        max(blocks, 1),
    )


def _run_matmul(
    inputs: list[Labelled],
    out_labels: tuple[int, ...],
    size: dict[int, int],
    out: np.ndarray | None,
    method: str,
) -> Labelled:
    """A (batched) matrix product: NumPy's matmul (``'blas'``) or the blocked kernel (``'gemm'``).

    The operands are viewed as ``(batch, m, k)`` and ``(batch, k, n)`` stacks (a copy only where
    the labels are not already in that order); the result has labels ``batch + m + n``.
    """
    (a, la), (b, lb) = inputs
    batch = [lab for lab in la if lab in lb and lab in out_labels]
    m = [lab for lab in la if lab not in lb]
    n = [lab for lab in lb if lab not in la]
    k = [lab for lab in la if lab in lb and lab not in out_labels]
    nb = math.prod(size[lab] for lab in batch)
    nm = math.prod(size[lab] for lab in m)
    nn = math.prod(size[lab] for lab in n)
    nk = math.prod(size[lab] for lab in k)
    a3 = a.transpose([la.index(lab) for lab in batch + m + k]).reshape(nb, nm, nk)
    b3 = b.transpose([lb.index(lab) for lab in batch + k + n]).reshape(nb, nk, nn)
    labels = tuple(batch + m + n)
    shape = tuple(size[lab] for lab in labels)
    direct = out is not None and labels == out_labels and out.flags.c_contiguous
    result = out.reshape(nb, nm, nn) if direct else np.empty((nb, nm, nn), dtype=a.dtype)
    if method == "blas":
        np.matmul(a3, b3, out=result)
    else:
        a3 = np.ascontiguousarray(a3)
        b3 = np.ascontiguousarray(b3)
        if a3.flags.writeable:
            a3 = a3.view()
            a3.flags.writeable = False  # the kernel's one calling convention: read-only inputs
        if b3.flags.writeable:
            b3 = b3.view()
            b3.flags.writeable = False
        # the kernel splits one matrix across threads only from 2**20 multiply-adds
        work = nb * nm * nn * nk
        if not (work >= _GEMM_PARALLEL_MIN_WORK and _run_parallel(gemm_parallel, a3, b3, result)):
            gemm_serial(a3, b3, result)
    if direct:
        return out, out_labels
    result = result.reshape(shape)
    if out is None:
        return result, labels
    np.copyto(out, result.transpose([labels.index(lab) for lab in out_labels]))
    return out, out_labels
