"""The sum-of-products kernel for layouts whose tight loop is a table of offsets.

Tensors with many axes of extent 2-4 in different orders leave the strided kernel
(:mod:`.sum_products`) a nest of loops of a few iterations each: nothing folds, and every few
multiply-adds pay for the loop bookkeeping around them. ``layout.tabulate`` turns the innermost
dimensions of such a layout into one *block* dimension whose steps are listed in a table:
``table[k, t]`` is the element offset of step ``t`` in row ``k`` (row 0 the output, then each
operand). This kernel is the strided one with its tight loop replaced by a loop over that table:

    out[o] = sum_r  prod_k  ops[k][offs[k] + (o, r) . strides[k] + table[k, t]]

The arguments are those of the strided kernel plus ``table``; the block is the last dimension
(``extents[-1]`` is the table's length) and its column of ``strides`` only says which rows move
in it (nonzero) and which do not (zero: those operands are hoisted out of the loop). The block
holds either summed dimensions only (``inner_out`` false: a local accumulator) or output
dimensions only (``inner_out`` true: each step a distinct output element; the summed
dimensions loop outside it, the first of their steps storing and the later ones adding).

A kernel of its own, not a mode of the strided one: only the steps that need it compile it
(about as long as the strided kernel's compile: a mode would double that for every step).
Results do not depend on the thread count, as for the strided kernel.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit, jit_inline, jit_loop, jit_parallel
from .sum_products import (
    _advance,
    _hoisted,
    _moving_rows,
    _part,
    _rewind,
    _scaled,
    _scratch,
    _start_at,
)

__all__ = ["table_products_serial", "table_products_parallel", "TABLE_KERNELS"]

_u = np.uint64  # unsigned indexing: no negative-index wraparound (see sum_products)


@jit_inline
def _gathered(i, pos, ops, table, jv, n_vary):
    """The product of the moving operands at step ``i`` of the block (any number of them)."""
    k = jv[0]
    p = ops[k - 1][_u(pos[k] + table[k, i])]
    for j in range(1, n_vary):
        k = jv[j]
        p = p * ops[k - 1][_u(pos[k] + table[k, i])]
    return p


@jit_inline
def _block_into_out(out, p0, table, t0, t1, assign, c, has_c, n_vary, m0, m1, q0, q1, j0, j1,
                    pos, ops, jv):
    """out[p0 + table[0, i]] (+)= c * prod of the moving operands, for t0 <= i < t1. ``m0``,
    ``m1`` are the first two moving operands, ``q*`` their positions, ``j*`` their rows."""
    if n_vary == 0:
        for i in range(t0, t1):
            if assign:
                out[_u(p0 + table[0, i])] = c
            else:
                out[_u(p0 + table[0, i])] += c
    elif n_vary == 1:
        if assign:
            for i in range(t0, t1):
                out[_u(p0 + table[0, i])] = _scaled(c, has_c, m0[_u(q0 + table[j0, i])])
        else:
            for i in range(t0, t1):
                out[_u(p0 + table[0, i])] += _scaled(c, has_c, m0[_u(q0 + table[j0, i])])
    elif n_vary == 2:
        if assign:
            for i in range(t0, t1):
                out[_u(p0 + table[0, i])] = _scaled(
                    c, has_c, m0[_u(q0 + table[j0, i])] * m1[_u(q1 + table[j1, i])])
        else:
            for i in range(t0, t1):
                out[_u(p0 + table[0, i])] += _scaled(
                    c, has_c, m0[_u(q0 + table[j0, i])] * m1[_u(q1 + table[j1, i])])
    else:
        for i in range(t0, t1):
            p = _scaled(c, has_c, _gathered(i, pos, ops, table, jv, n_vary))
            if assign:
                out[_u(p0 + table[0, i])] = p
            else:
                out[_u(p0 + table[0, i])] += p


@jit_inline
def _block_sum(acc, n, c, has_c, n_vary, m0, m1, q0, q1, j0, j1, pos, ops, table, jv):
    """acc + sum_i c * prod of the moving operands, for i < n (arguments as for
    :func:`_block_into_out`)."""
    if n_vary == 0:
        for _i in range(n):
            acc += c
    elif n_vary == 1:
        for i in range(n):
            acc += _scaled(c, has_c, m0[_u(q0 + table[j0, i])])
    elif n_vary == 2:
        for i in range(n):
            acc += _scaled(c, has_c, m0[_u(q0 + table[j0, i])] * m1[_u(q1 + table[j1, i])])
    else:
        for i in range(n):
            acc += _scaled(c, has_c, _gathered(i, pos, ops, table, jv, n_vary))
    return acc


@jit_loop
def _run_range(start, stop, t0, t1, out, out_off, ops, offs, extents, strides, n_outer,
               inner_out, table, zero, pos, idx, base, jv, jf):
    """Compute output elements ``start..stop-1`` of the flattened outer range (block steps
    ``t0..t1`` when the block holds output dimensions); scratch arrays as for the strided
    kernel's loop nest, which this one follows."""
    nops = len(ops)
    nd = extents.shape[0]
    last = nd - 1
    n_block = extents[last]
    _start_at(start, out_off, offs, extents, strides, n_outer, idx, base)
    n_vary, n_fixed = _moving_rows(strides, nops, jv, jf)
    j0 = jv[0] if n_vary > 0 else 1
    j1 = jv[1] if n_vary > 1 else j0
    m0 = ops[j0 - 1]
    m1 = ops[j1 - 1]
    f0 = ops[jf[0] - 1] if n_fixed > 0 else m0
    f1 = ops[jf[1] - 1] if n_fixed > 1 else f0
    f2 = ops[jf[2] - 1] if n_fixed > 2 else f0
    has_c = n_fixed > 0
    n_mid = 1
    for d in range(n_outer, last):
        n_mid *= extents[d]

    for _o in range(start, stop):
        acc = zero
        _rewind(pos, base, idx, n_outer, last)
        for m in range(n_mid):
            c = _hoisted(pos, f0, f1, f2, jf, n_fixed, ops, zero)
            if inner_out:
                _block_into_out(out, pos[0], table, t0, t1, m == 0, c, has_c, n_vary, m0, m1,
                                pos[j0], pos[j1], j0, j1, pos, ops, jv)
            else:
                acc = _block_sum(acc, n_block, c, has_c, n_vary, m0, m1, pos[j0], pos[j1], j0,
                                 j1, pos, ops, table, jv)
            _advance(idx, pos, extents, strides, n_outer, last - 1)  # middle dims
        if not inner_out:
            out[_u(base[0])] = acc
        _advance(idx, base, extents, strides, 0, n_outer - 1)  # outer dims


@jit
def table_products_serial(out, out_off, ops, offs, extents, strides, n_outer, inner_out, table,
                          zero):
    """Run one einsum step on one thread (see the module docstring for the arguments)."""
    total = 1
    for d in range(n_outer):
        total *= extents[d]
    pos, idx, base, jv, jf = _scratch(len(ops), extents.shape[0])
    _run_range(0, total, 0, extents[-1], out, out_off, ops, offs, extents, strides, n_outer,
               inner_out, table, zero, pos, idx, base, jv, jf)


@jit_parallel
def table_products_parallel(out, out_off, ops, offs, extents, strides, n_outer, inner_out, table,
                            zero, n_chunks, n_blocks):
    """Run one einsum step with ``prange`` over ``n_chunks`` chunks of the outer output range
    times ``n_blocks`` blocks of the table (blocks only when it holds output dimensions)."""
    total = 1
    for d in range(n_outer):
        total *= extents[d]
    n_block = extents[extents.shape[0] - 1]
    n_chunks = max(1, min(total, n_chunks))
    n_blocks = max(1, min(n_block, n_blocks)) if inner_out else 1
    for c in prange(n_chunks * n_blocks):
        start, stop, t0, t1 = _part(c, n_blocks, n_chunks, total, n_block)
        pos, idx, base, jv, jf = _scratch(len(ops), extents.shape[0])
        _run_range(start, stop, t0, t1, out, out_off, ops, offs, extents, strides, n_outer,
                   inner_out, table, zero, pos, idx, base, jv, jf)


TABLE_KERNELS = (table_products_serial, table_products_parallel)
