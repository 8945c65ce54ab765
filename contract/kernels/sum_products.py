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
* ``dims[nd-1]`` is the *tight* loop (the planner adds a dimension of extent 1 if none is
  left). If ``inner_out`` is false it is a summed dimension and the sum is accumulated in a local
  variable; if true it is an output dimension and partial sums are accumulated in the output row
  (the first middle step stores, later ones add), with all middle dimensions summed. The parallel
  variant may also split the tight output dimension into blocks when there are few outer rows.

Operands that do not move along the tight dimension are hoisted out of it as one factor, and
unit-stride tight loops with one, two or three moving operands take a contiguous path that LLVM
vectorizes. The loop nest (``_run_range``) is compiled without Numba's reference counting and
its helpers are inlined into it: the operands are bound to local names once, so no row of the
loop takes or drops a reference (atomic updates that had cost about 150 ns per row).

``zero`` is a zero of the output dtype (it types the accumulator). For each output element the
order of accumulation is fixed by the layout alone, so serial and parallel runs, and runs on any
number of threads, give bit-identical results.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit, jit_inline, jit_loop, jit_parallel

__all__ = ["sum_products_serial", "sum_products_parallel", "KERNELS"]

# Indexing with unsigned ints skips Numba's negative-index wraparound, which would otherwise
# stop LLVM from vectorizing the tight loops. Every index computed here is >= 0 by construction.
_u = np.uint64


@jit_inline
def _hoisted(pos, f0, f1, f2, jf, n_fixed, ops, zero):
    """The product of the operands that do not move along the tight dimension (``zero`` when
    there are none; callers then ignore it).

    The product starts from the first such factor, not from a literal one: ``(1+0j) * (inf+1j)``
    is ``inf+nanj``, and a uint64 plus an int literal is a float64 in Numba.
    """
    if n_fixed == 0:
        return zero
    c = f0[_u(pos[jf[0]])]
    if n_fixed > 1:
        c = c * f1[_u(pos[jf[1]])]
        if n_fixed > 2:
            c = c * f2[_u(pos[jf[2]])]
            for j in range(3, n_fixed):
                c = c * ops[jf[j] - 1][_u(pos[jf[j]])]
    return c


@jit_inline
def _scaled(c, has_c, p):
    """``c * p`` when there is a hoisted factor, else ``p`` (the branch is loop-invariant)."""
    return c * p if has_c else p


@jit_inline
def _moving(i, pos, ops, strides, last, jv, n_vary):
    """The product of four or more moving operands at step ``i`` of the tight dimension."""
    k = jv[0]
    p = ops[k - 1][_u(pos[k] + i * strides[k, last])]
    for j in range(1, n_vary):
        k = jv[j]
        p = p * ops[k - 1][_u(pos[k] + i * strides[k, last])]
    return p


@jit_inline
def _tight_into_out(out, p0, so, t0, t1, assign, c, has_c, n_vary, unit,
                    m0, m1, m2, q0, q1, q2, s0, s1, s2, pos, ops, strides, last, jv):
    """out[p0 + i*so] (+)= c * prod of the moving operands, for t0 <= i < t1 (the tight dimension
    is an output one). ``m*`` are the (first three) moving operands, ``q*`` their positions and
    ``s*`` their tight strides; ``unit``: the output and every moving operand have unit stride.

    With ``assign`` the products are stored (first step of the summed dimensions), else added.
    """
    if n_vary == 0:  # every operand is constant along the tight dimension
        for i in range(t0, t1):
            if assign:
                out[_u(p0 + i * so)] = c
            else:
                out[_u(p0 + i * so)] += c
    elif n_vary == 1:
        if unit:
            if assign:
                for i in range(t0, t1):
                    out[_u(p0 + i)] = _scaled(c, has_c, m0[_u(q0 + i)])
            else:
                for i in range(t0, t1):
                    out[_u(p0 + i)] += _scaled(c, has_c, m0[_u(q0 + i)])
        else:
            if assign:
                for i in range(t0, t1):
                    out[_u(p0 + i * so)] = _scaled(c, has_c, m0[_u(q0 + i * s0)])
            else:
                for i in range(t0, t1):
                    out[_u(p0 + i * so)] += _scaled(c, has_c, m0[_u(q0 + i * s0)])
    elif n_vary == 2:
        if unit:
            if assign:
                for i in range(t0, t1):
                    out[_u(p0 + i)] = _scaled(c, has_c, m0[_u(q0 + i)] * m1[_u(q1 + i)])
            else:
                for i in range(t0, t1):
                    out[_u(p0 + i)] += _scaled(c, has_c, m0[_u(q0 + i)] * m1[_u(q1 + i)])
        else:
            if assign:
                for i in range(t0, t1):
                    out[_u(p0 + i * so)] = _scaled(
                        c, has_c, m0[_u(q0 + i * s0)] * m1[_u(q1 + i * s1)])
            else:
                for i in range(t0, t1):
                    out[_u(p0 + i * so)] += _scaled(
                        c, has_c, m0[_u(q0 + i * s0)] * m1[_u(q1 + i * s1)])
    elif n_vary == 3:
        if unit:
            if assign:
                for i in range(t0, t1):
                    out[_u(p0 + i)] = _scaled(
                        c, has_c, m0[_u(q0 + i)] * m1[_u(q1 + i)] * m2[_u(q2 + i)])
            else:
                for i in range(t0, t1):
                    out[_u(p0 + i)] += _scaled(
                        c, has_c, m0[_u(q0 + i)] * m1[_u(q1 + i)] * m2[_u(q2 + i)])
        else:
            for i in range(t0, t1):
                p = _scaled(c, has_c, m0[_u(q0 + i * s0)] * m1[_u(q1 + i * s1)]
                            * m2[_u(q2 + i * s2)])
                if assign:
                    out[_u(p0 + i * so)] = p
                else:
                    out[_u(p0 + i * so)] += p
    else:
        for i in range(t0, t1):
            p = _scaled(c, has_c, _moving(i, pos, ops, strides, last, jv, n_vary))
            if assign:
                out[_u(p0 + i * so)] = p
            else:
                out[_u(p0 + i * so)] += p


@jit_inline
def _tight_sum(acc, n, c, has_c, n_vary, unit,
               m0, m1, m2, q0, q1, q2, s0, s1, s2, pos, ops, strides, last, jv):
    """acc + sum_i c * prod of the moving operands, for i < n (the tight dimension is summed);
    arguments as for :func:`_tight_into_out` (``unit``: every moving operand has unit stride)."""
    if n_vary == 0:  # every operand is constant along the tight dimension
        for _i in range(n):
            acc += c
    elif n_vary == 1:
        if unit:
            for i in range(n):
                acc += _scaled(c, has_c, m0[_u(q0 + i)])
        else:
            for i in range(n):
                acc += _scaled(c, has_c, m0[_u(q0 + i * s0)])
    elif n_vary == 2:
        if unit:
            for i in range(n):
                acc += _scaled(c, has_c, m0[_u(q0 + i)] * m1[_u(q1 + i)])
        else:
            for i in range(n):
                acc += _scaled(c, has_c, m0[_u(q0 + i * s0)] * m1[_u(q1 + i * s1)])
    elif n_vary == 3:
        if unit:
            for i in range(n):
                acc += _scaled(c, has_c, m0[_u(q0 + i)] * m1[_u(q1 + i)] * m2[_u(q2 + i)])
        else:
            for i in range(n):
                acc += _scaled(c, has_c, m0[_u(q0 + i * s0)] * m1[_u(q1 + i * s1)]
                               * m2[_u(q2 + i * s2)])
    else:
        for i in range(n):
            acc += _scaled(c, has_c, _moving(i, pos, ops, strides, last, jv, n_vary))
    return acc


@jit_inline
def _advance(idx, pos, extents, strides, lo, hi):
    """Step the odometer ``idx[lo..hi]`` (``hi`` fastest) and the offsets ``pos`` with it."""
    d = hi
    while d >= lo:
        idx[d] += 1
        for k in range(pos.shape[0]):
            pos[k] += strides[k, d]
        if idx[d] < extents[d]:
            return
        for k in range(pos.shape[0]):
            pos[k] -= idx[d] * strides[k, d]
        idx[d] = 0
        d -= 1


@jit_inline
def _start_at(start, out_off, offs, extents, strides, n_outer, idx, base):
    """Point the odometer ``idx`` and the offsets ``base`` (row 0 the output, rows 1.. the
    operands) at element ``start`` of the flattened outer range (C order: the last outer
    dimension fastest); the other dimensions start at 0."""
    for d in range(extents.shape[0]):
        idx[d] = 0
    rem = start
    for d in range(n_outer - 1, -1, -1):
        idx[d] = rem % extents[d]
        rem //= extents[d]
    base[0] = out_off
    for k in range(offs.shape[0]):
        base[k + 1] = offs[k]
    for d in range(n_outer):
        for k in range(offs.shape[0] + 1):
            base[k] += idx[d] * strides[k, d]


@jit_inline
def _moving_rows(strides, nops, jv, jf):
    """The rows of the operands that move along the tight dimension (into ``jv``) and of those
    that do not (into ``jf``: they contribute one factor per middle step, hoisted out of the
    tight loop); returns how many of each."""
    last = strides.shape[1] - 1
    n_vary = 0
    n_fixed = 0
    for k in range(nops):
        if strides[k + 1, last] != 0:
            jv[n_vary] = k + 1
            n_vary += 1
        else:
            jf[n_fixed] = k + 1
            n_fixed += 1
    return n_vary, n_fixed


@jit_inline
def _rewind(pos, base, idx, n_outer, last):
    """Start an output element's middle dimensions over: the offsets ``pos`` from ``base``, the
    middle odometer at 0."""
    for k in range(pos.shape[0]):
        pos[k] = base[k]
    for d in range(n_outer, last):
        idx[d] = 0


@jit_inline
def _part(c, n_blocks, n_chunks, total, n_tight):
    """Task ``c`` of a parallel run: its outer range ``start..stop`` (one of ``n_chunks``) and
    its tight range ``t0..t1`` (one of ``n_blocks``)."""
    chunk = c // n_blocks
    block = c % n_blocks
    return (chunk * total // n_chunks, (chunk + 1) * total // n_chunks,
            block * n_tight // n_blocks, (block + 1) * n_tight // n_blocks)


@jit_loop
def _run_range(
    start, stop, t0, t1, out, out_off, ops, offs, extents, strides, n_outer, inner_out, zero,
    pos, idx, base, jv, jf
):
    """Compute output elements ``start..stop-1`` of the flattened outer range (tight sub-range
    ``t0..t1`` when the tight dimension is an output one).

    ``pos``, ``base`` (``nops + 1`` each), ``idx`` (``nd``), ``jv`` and ``jf`` (``nops`` each) are
    int64 scratch arrays from the caller: this loop nest runs without reference counting and
    allocates nothing.

    The operands are bound to local names once (``m0..m2`` moving along the tight dimension,
    ``f0..f2`` fixed), so the loops below index arrays without taking new references to them.
    """
    nops = len(ops)
    nd = extents.shape[0]
    last = nd - 1
    n_tight = extents[last]
    _start_at(start, out_off, offs, extents, strides, n_outer, idx, base)
    so = strides[0, last]
    n_vary, n_fixed = _moving_rows(strides, nops, jv, jf)
    jm0 = jv[0] if n_vary > 0 else 1
    jm1 = jv[1] if n_vary > 1 else jm0
    jm2 = jv[2] if n_vary > 2 else jm0
    m0 = ops[jm0 - 1]
    m1 = ops[jm1 - 1]
    m2 = ops[jm2 - 1]
    f0 = ops[jf[0] - 1] if n_fixed > 0 else m0
    f1 = ops[jf[1] - 1] if n_fixed > 1 else f0
    f2 = ops[jf[2] - 1] if n_fixed > 2 else f0
    s0 = strides[jm0, last]
    s1 = strides[jm1, last]
    s2 = strides[jm2, last]
    unit = (s0 == 1 or n_vary < 1) and (s1 == 1 or n_vary < 2) and (s2 == 1 or n_vary < 3)
    has_c = n_fixed > 0
    if inner_out:
        unit = unit and so == 1
    n_mid = 1
    for d in range(n_outer, last):
        n_mid *= extents[d]

    for _o in range(start, stop):
        acc = zero
        _rewind(pos, base, idx, n_outer, last)
        for m in range(n_mid):
            c = _hoisted(pos, f0, f1, f2, jf, n_fixed, ops, zero)
            if inner_out:
                _tight_into_out(out, pos[0], so, t0, t1, m == 0, c, has_c, n_vary, unit,
                                m0, m1, m2, pos[jm0], pos[jm1], pos[jm2], s0, s1, s2,
                                pos, ops, strides, last, jv)
            else:
                acc = _tight_sum(acc, n_tight, c, has_c, n_vary, unit,
                                 m0, m1, m2, pos[jm0], pos[jm1], pos[jm2], s0, s1, s2,
                                 pos, ops, strides, last, jv)
            _advance(idx, pos, extents, strides, n_outer, last - 1)  # middle dims
        if not inner_out:
            out[_u(base[0])] = acc
        _advance(idx, base, extents, strides, 0, n_outer - 1)  # outer dims


@jit
def _scratch(nops, nd):
    """The scratch arrays of :func:`_run_range`: pos, idx, base, jv, jf."""
    return (np.empty(nops + 1, dtype=np.int64), np.empty(nd, dtype=np.int64),
            np.empty(nops + 1, dtype=np.int64), np.empty(nops, dtype=np.int64),
            np.empty(nops, dtype=np.int64))


@jit
def sum_products_serial(out, out_off, ops, offs, extents, strides, n_outer, inner_out, zero):
    """Run one einsum step on one thread (see the module docstring for the arguments)."""
    total = 1
    for d in range(n_outer):
        total *= extents[d]
    pos, idx, base, jv, jf = _scratch(len(ops), extents.shape[0])
    _run_range(
        0,
        total,
        0,
        extents[-1],
        out,
        out_off,
        ops,
        offs,
        extents,
        strides,
        n_outer,
        inner_out,
        zero,
        pos,
        idx,
        base,
        jv,
        jf,
    )


@jit_parallel
def sum_products_parallel(
    out, out_off, ops, offs, extents, strides, n_outer, inner_out, zero, n_chunks, n_blocks
):
    """Run one einsum step with ``prange`` over ``n_chunks`` chunks of the outer output range
    times ``n_blocks`` blocks of the tight dimension (blocks only when it is an output one)."""
    total = 1
    for d in range(n_outer):
        total *= extents[d]
    n_tight = extents[extents.shape[0] - 1]
    n_chunks = max(1, min(total, n_chunks))
    n_blocks = max(1, min(n_tight, n_blocks)) if inner_out else 1
    for c in prange(n_chunks * n_blocks):
        start, stop, t0, t1 = _part(c, n_blocks, n_chunks, total, n_tight)
        pos, idx, base, jv, jf = _scratch(len(ops), extents.shape[0])
        _run_range(start, stop, t0, t1, out, out_off, ops, offs, extents, strides, n_outer,
                   inner_out, zero, pos, idx, base, jv, jf)


KERNELS = (sum_products_serial, sum_products_parallel)  # the sum-of-products dispatchers
