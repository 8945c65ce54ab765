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
vectorizes.

``zero`` is a zero of the output dtype (it types the accumulator). For each output element the
order of accumulation is fixed by the layout alone, so serial and parallel runs, and runs on any
number of threads, give bit-identical results.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit, jit_parallel

__all__ = ["sum_products_serial", "sum_products_parallel", "KERNELS"]

# Indexing with unsigned ints skips Numba's negative-index wraparound, which would otherwise
# stop LLVM from vectorizing the tight loops. Every index computed here is >= 0 by construction.
_u = np.uint64


@jit
def _hoisted(pos, ops, strides, last):
    """(product of the operands that do not move along the tight dimension, whether there are any).

    The product starts from the first such factor, not from a literal one: ``(1+0j) * (inf+1j)``
    is ``inf+nanj``, and a uint64 plus an int literal is a float64 in Numba.
    """
    c = ops[0][_u(pos[1])]
    found = False
    for k in range(len(ops)):
        if strides[k + 1, last] == 0:
            v = ops[k][_u(pos[k + 1])]
            c = c * v if found else v
            found = True
    return c, found


@jit
def _scaled(c, has_c, p):
    """``c * p`` when there is a hoisted factor, else ``p`` (the branch is loop-invariant)."""
    return c * p if has_c else p


@jit
def _unit3(strides, last, vary):
    """Whether the three moving operands all have unit stride along the tight dimension."""
    return (
        strides[vary[0] + 1, last] == 1
        and strides[vary[1] + 1, last] == 1
        and strides[vary[2] + 1, last] == 1
    )


@jit
def _tight_into_out(out, pos, so, ops, strides, last, t0, t1, assign, n_vary, vary, zero):
    """out[pos0 + i*so] (+)= prod_k ops[k][...] for t0 <= i < t1 (tight dimension is an output).

    With ``assign`` the products are stored (first step of the summed dimensions), else added.
    """
    c, has_c = _hoisted(pos, ops, strides, last)
    p0 = pos[0]
    if n_vary == 0:  # every operand is constant along the tight dimension
        for i in range(t0, t1):
            if assign:
                out[_u(p0 + i * so)] = c
            else:
                out[_u(p0 + i * so)] += c
    elif n_vary == 1:
        a = ops[vary[0]]
        pa = pos[vary[0] + 1]
        sa = strides[vary[0] + 1, last]
        if so == 1 and sa == 1:
            if assign:
                for i in range(t0, t1):
                    out[_u(p0 + i)] = _scaled(c, has_c, a[_u(pa + i)])
            else:
                for i in range(t0, t1):
                    out[_u(p0 + i)] += _scaled(c, has_c, a[_u(pa + i)])
        else:
            if assign:
                for i in range(t0, t1):
                    out[_u(p0 + i * so)] = _scaled(c, has_c, a[_u(pa + i * sa)])
            else:
                for i in range(t0, t1):
                    out[_u(p0 + i * so)] += _scaled(c, has_c, a[_u(pa + i * sa)])
    elif n_vary == 2:
        a = ops[vary[0]]
        b = ops[vary[1]]
        pa = pos[vary[0] + 1]
        pb = pos[vary[1] + 1]
        sa = strides[vary[0] + 1, last]
        sb = strides[vary[1] + 1, last]
        if so == 1 and sa == 1 and sb == 1:
            if assign:
                for i in range(t0, t1):
                    out[_u(p0 + i)] = _scaled(c, has_c, a[_u(pa + i)] * b[_u(pb + i)])
            else:
                for i in range(t0, t1):
                    out[_u(p0 + i)] += _scaled(c, has_c, a[_u(pa + i)] * b[_u(pb + i)])
        else:
            if assign:
                for i in range(t0, t1):
                    out[_u(p0 + i * so)] = _scaled(
                        c, has_c, a[_u(pa + i * sa)] * b[_u(pb + i * sb)]
                    )
            else:
                for i in range(t0, t1):
                    out[_u(p0 + i * so)] += _scaled(
                        c, has_c, a[_u(pa + i * sa)] * b[_u(pb + i * sb)]
                    )
    elif n_vary == 3 and so == 1 and _unit3(strides, last, vary):
        a = ops[vary[0]]
        b = ops[vary[1]]
        d = ops[vary[2]]
        pa = pos[vary[0] + 1]
        pb = pos[vary[1] + 1]
        pd = pos[vary[2] + 1]
        if assign:
            for i in range(t0, t1):
                out[_u(p0 + i)] = _scaled(c, has_c, a[_u(pa + i)] * b[_u(pb + i)] * d[_u(pd + i)])
        else:
            for i in range(t0, t1):
                out[_u(p0 + i)] += _scaled(c, has_c, a[_u(pa + i)] * b[_u(pb + i)] * d[_u(pd + i)])
    else:
        for i in range(t0, t1):
            k = vary[0]
            p = ops[k][_u(pos[k + 1] + i * strides[k + 1, last])]
            for j in range(1, n_vary):
                k = vary[j]
                p = p * ops[k][_u(pos[k + 1] + i * strides[k + 1, last])]
            p = _scaled(c, has_c, p)
            if assign:
                out[_u(p0 + i * so)] = p
            else:
                out[_u(p0 + i * so)] += p


@jit
def _tight_sum(acc, pos, ops, strides, last, n, n_vary, vary, zero):
    """acc + sum_i prod_k ops[k][...] for i < n (the tight dimension is summed)."""
    c, has_c = _hoisted(pos, ops, strides, last)
    if n_vary == 0:  # every operand is constant along the tight dimension
        for _i in range(n):
            acc += c
    elif n_vary == 1:
        a = ops[vary[0]]
        pa = pos[vary[0] + 1]
        sa = strides[vary[0] + 1, last]
        if sa == 1:
            for i in range(n):
                acc += _scaled(c, has_c, a[_u(pa + i)])
        else:
            for i in range(n):
                acc += _scaled(c, has_c, a[_u(pa + i * sa)])
    elif n_vary == 2:
        a = ops[vary[0]]
        b = ops[vary[1]]
        pa = pos[vary[0] + 1]
        pb = pos[vary[1] + 1]
        sa = strides[vary[0] + 1, last]
        sb = strides[vary[1] + 1, last]
        if sa == 1 and sb == 1:
            for i in range(n):
                acc += _scaled(c, has_c, a[_u(pa + i)] * b[_u(pb + i)])
        else:
            for i in range(n):
                acc += _scaled(c, has_c, a[_u(pa + i * sa)] * b[_u(pb + i * sb)])
    elif n_vary == 3 and _unit3(strides, last, vary):
        a = ops[vary[0]]
        b = ops[vary[1]]
        d = ops[vary[2]]
        pa = pos[vary[0] + 1]
        pb = pos[vary[1] + 1]
        pd = pos[vary[2] + 1]
        for i in range(n):
            acc += _scaled(c, has_c, a[_u(pa + i)] * b[_u(pb + i)] * d[_u(pd + i)])
    else:
        for i in range(n):
            k = vary[0]
            p = ops[k][_u(pos[k + 1] + i * strides[k + 1, last])]
            for j in range(1, n_vary):
                k = vary[j]
                p = p * ops[k][_u(pos[k + 1] + i * strides[k + 1, last])]
            p = _scaled(c, has_c, p)
            acc += p
    return acc


@jit
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


@jit
def _run_range(
    start, stop, t0, t1, out, out_off, ops, offs, extents, strides, n_outer, inner_out, zero
):
    """Compute output elements ``start..stop-1`` of the flattened outer range (tight sub-range
    ``t0..t1`` when the tight dimension is an output one)."""
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
    # operands whose tight stride is 0 contribute one factor per middle step: hoist them
    vary = np.empty(nops, dtype=np.int64)
    n_vary = 0
    for k in range(nops):
        if strides[k + 1, last] != 0:
            vary[n_vary] = k
            n_vary += 1
    n_mid = 1
    for d in range(n_outer, last):
        n_mid *= extents[d]
    # the commonest summed tight loop -- one or two operands, both moving with unit stride, no
    # hoisted factor (row sums, batched dot products) -- is set up once here rather than once
    # per output element, which costs ~50 ns a row
    first = ops[0]
    second = ops[nops - 1]
    plain_sum = (
        not inner_out
        and n_vary == nops
        and nops <= 2
        and strides[1, last] == 1
        and strides[nops, last] == 1
    )
    # likewise an outer-product row: two operands, one fixed along the tight (output) dimension
    # and one moving with unit stride, like the output
    moving = vary[0] if n_vary > 0 else 0
    mover = ops[moving]
    fixed = ops[1 - moving] if nops == 2 else first
    outer_row = (
        inner_out and nops == 2 and n_vary == 1 and so == 1 and strides[moving + 1, last] == 1
    )

    for _o in range(start, stop):
        acc = zero
        for k in range(nops + 1):
            pos[k] = base[k]
        for d in range(n_outer, last):
            idx[d] = 0
        for m in range(n_mid):
            if plain_sum:
                p1 = pos[1]
                if nops == 1:
                    for i in range(n_tight):
                        acc += first[_u(p1 + i)]
                else:
                    p2 = pos[2]
                    for i in range(n_tight):
                        acc += first[_u(p1 + i)] * second[_u(p2 + i)]
            elif outer_row:
                c = fixed[_u(pos[2 - moving])]
                pm = pos[moving + 1]
                p0 = pos[0]
                if m == 0:
                    for i in range(t0, t1):
                        out[_u(p0 + i)] = c * mover[_u(pm + i)]
                else:
                    for i in range(t0, t1):
                        out[_u(p0 + i)] += c * mover[_u(pm + i)]
            elif inner_out:
                _tight_into_out(
                    out, pos, so, ops, strides, last, t0, t1, m == 0, n_vary, vary, zero
                )
            else:
                acc = _tight_sum(acc, pos, ops, strides, last, n_tight, n_vary, vary, zero)
            _advance(idx, pos, extents, strides, n_outer, last - 1)  # middle dims
        if not inner_out:
            out[_u(base[0])] = acc
        _advance(idx, base, extents, strides, 0, n_outer - 1)  # outer dims


@jit
def sum_products_serial(out, out_off, ops, offs, extents, strides, n_outer, inner_out, zero):
    """Run one einsum step on one thread (see the module docstring for the arguments)."""
    total = 1
    for d in range(n_outer):
        total *= extents[d]
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
        chunk = c // n_blocks
        block = c % n_blocks
        start = chunk * total // n_chunks
        stop = (chunk + 1) * total // n_chunks
        t0 = block * n_tight // n_blocks
        t1 = (block + 1) * n_tight // n_blocks
        _run_range(
            start, stop, t0, t1, out, out_off, ops, offs, extents, strides, n_outer, inner_out, zero
        )


KERNELS = (sum_products_serial, sum_products_parallel)  # the sum-of-products dispatchers
