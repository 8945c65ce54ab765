"""Generic strided sum-of-products kernels over flattened multi-indices.

One kernel computes any single einsum step::

    out[o] = sum_r  prod_k  ops[k][offs[k] + (o, r) . strides[k]]

Every operand is a 1-D buffer (a flat view of its memory) with an element offset and one element
stride per dimension; the output is written through its own offset and strides, so it may be
any strided array. Kernels are compiled once per (dtype, number of operands), never per equation.

Dimension layout (decided by the planner, see ``layout.kernel_dims``):

* ``dims[0:n_outer]`` are *outer output* dimensions; their flattened range is split across threads
  (``prange``), so threads never write the same output element;
* ``dims[n_outer:nd-1]`` are *middle* dimensions, walked with an odometer per output element;
* ``dims[nd-1]`` is the *tight* loop (the planner adds a dimension of extent 1 if none is left). If ``inner_out`` is false it is a summed dimension and the
  sum is accumulated in a local variable; if true it is an output dimension and partial sums are
  accumulated in the output row (which is zeroed first), with all middle dimensions summed.

``zero`` is a zero of the output dtype (it types the accumulator). For each output element the order of accumulation is fixed by the layout alone, so serial and
parallel runs, and runs on any number of threads, give bit-identical results.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit, jit_parallel

__all__ = ["sum_products_serial", "sum_products_parallel", "KERNELS"]


@jit
def _run_range(start, stop, out, out_off, ops, offs, extents, strides, n_outer, inner_out, zero):
    """Compute output elements ``start..stop-1`` of the flattened outer range."""
    nops = len(ops)
    nd = extents.shape[0]
    last = nd - 1
    n_tight = extents[last]
    pos = np.empty(nops + 1, dtype=np.int64)  # row 0: output, rows 1..: operands
    idx = np.zeros(nd, dtype=np.int64)
    # unravel `start` over the outer dims (C order: last outer dim fastest)
    rem = start
    for d in range(n_outer - 1, -1, -1):
        idx[d] = rem % extents[d]
        rem //= extents[d]
    base = np.empty(nops + 1, dtype=np.int64)
    base[0] = out_off
    for k in range(nops):
        base[k + 1] = offs[k]
    for d in range(n_outer):
        for k in range(nops + 1):
            base[k] += idx[d] * strides[k, d]
    so = strides[0, last]
    n_mid = 1
    for d in range(n_outer, last):
        n_mid *= extents[d]

    for _o in range(start, stop):
        acc = zero
        if inner_out:
            for i in range(n_tight):
                out[base[0] + i * so] = zero
        for k in range(nops + 1):
            pos[k] = base[k]
        for d in range(n_outer, last):
            idx[d] = 0
        for _m in range(n_mid):
            if inner_out:
                for i in range(n_tight):
                    p = ops[0][pos[1] + i * strides[1, last]]
                    for k in range(1, nops):
                        p = p * ops[k][pos[k + 1] + i * strides[k + 1, last]]
                    out[pos[0] + i * so] += p
            else:
                for i in range(n_tight):
                    p = ops[0][pos[1] + i * strides[1, last]]
                    for k in range(1, nops):
                        p = p * ops[k][pos[k + 1] + i * strides[k + 1, last]]
                    acc += p
            # odometer over the middle dims (last middle dim fastest)
            d = last - 1
            while d >= n_outer:
                idx[d] += 1
                for k in range(nops + 1):
                    pos[k] += strides[k, d]
                if idx[d] < extents[d]:
                    break
                for k in range(nops + 1):
                    pos[k] -= idx[d] * strides[k, d]
                idx[d] = 0
                d -= 1
        if not inner_out:
            out[base[0]] = acc
        # odometer over the outer dims
        d = n_outer - 1
        while d >= 0:
            idx[d] += 1
            for k in range(nops + 1):
                base[k] += strides[k, d]
            if idx[d] < extents[d]:
                break
            for k in range(nops + 1):
                base[k] -= idx[d] * strides[k, d]
            idx[d] = 0
            d -= 1


@jit
def sum_products_serial(out, out_off, ops, offs, extents, strides, n_outer, inner_out, zero):
    """Run one einsum step on one thread (see the module docstring for the arguments)."""
    total = 1
    for d in range(n_outer):
        total *= extents[d]
    _run_range(0, total, out, out_off, ops, offs, extents, strides, n_outer, inner_out, zero)


@jit_parallel
def sum_products_parallel(out, out_off, ops, offs, extents, strides, n_outer, inner_out, zero,
                          n_chunks):
    """Run one einsum step with ``prange`` over ``n_chunks`` chunks of the outer output range."""
    total = 1
    for d in range(n_outer):
        total *= extents[d]
    n_chunks = max(1, min(total, n_chunks))
    for c in prange(n_chunks):
        start = c * total // n_chunks
        stop = (c + 1) * total // n_chunks
        _run_range(start, stop, out, out_off, ops, offs, extents, strides, n_outer, inner_out, zero)


KERNELS = (sum_products_serial, sum_products_parallel)
