"""Batched matrix products ``out[t] = a[t] @ b[t]`` for dtypes BLAS does not cover (integers).

``gemm_serial(a, b, out)`` and ``gemm_parallel(a, b, out)`` take three C-contiguous 3-D arrays of
one dtype: ``a`` of shape ``(batch, m, k)``, ``b`` of shape ``(batch, k, n)`` and ``out`` of shape
``(batch, m, n)``. ``out`` is overwritten, never accumulated into (``k == 0`` gives zeros) and must
not overlap ``a`` or ``b``. ``a`` and ``b`` are passed **read-only** (``flags.writeable = False``)
and ``out`` writable: with that one calling convention each kernel compiles exactly once per dtype
(a writable input would be a second Numba type, hence a second specialization). Supported dtypes:
int8..int64, uint8..uint64 (exact, wrapping modulo ``2**bits`` as numpy does), float32, float64,
complex64, complex128. Not bool (numpy's bool matmul is a logical or of ands: multiply in a wider
integer and compare with zero) and not float16.

How it runs (all decisions depend on the shapes and values only, never on the thread count):

* ``i-p-j`` order: the innermost loop runs along a row of ``b`` and a row of ``out``, both
  contiguous, so LLVM vectorizes it. Register blocking: ``_MR = 4`` rows of ``a`` times 4 steps
  of ``k`` per pass (hand-unrolled in ``_rows4``), so each output vector is loaded and stored once
  per 16 multiply-adds (without it the kernel is bound by stores, not by multiplies).
* Cache blocking: output row segments of ``_NC_BYTES`` (they stay in L1 while the 4 rows are
  accumulated), panels of ``_MC`` such rows (they stay in L2 across the ``k`` blocks), ``_KC``
  steps of ``k`` (the ``_KC x _NC_BYTES`` panel of ``b`` stays in L2 while the rows of the
  output panel pass over it).
* 64-bit integers whose values all fit in 32 bits (the common case) are first copied to int32
  (uint32) buffers; the kernel then multiplies sign- (zero-) extended 32-bit values, which LLVM
  lowers to ``vpmuldq`` (``vpmuludq``) instead of the slow ``vpmullq`` or its AVX2 emulation. The
  products are exact, so the result is the same as the 64-bit path's. The scan is skipped when
  ``min(m, n) < _NARROW_MIN`` (it would cost about as much as it saves).
* Tiny products (``m * n * k <= _TINY``) run plain ``i-p-j`` loops without any blocking.
* Narrow products (rows of ``out`` shorter than ``_DOT_ROW_BYTES``, with ``k >= _DOT_MIN_K``) use
  dot products along ``k`` against a transposed copy of the ``b`` matrix instead: LLVM's
  vectorized ``j`` loop needs 16 (int64) to 128 (int8) elements before it leaves the scalar path.

Determinism: every output element accumulates its ``k`` products in a fixed order that depends on
the shapes only (increasing ``k``, except that ``reassoc`` lets LLVM regroup the 4 products of a
pass, or vectorize the sum of the dot-product path; integers are exact either way).
``gemm_parallel`` splits the work over batch items, or over the blocks ``gemm_serial`` computes
(rows for the dot-product path), so every output element is computed by the same code on the same
block, in the same ``k`` order, as in ``gemm_serial``: the two are bit-identical, on any number of
threads.

Cost: compiling both kernels for one dtype takes about 5 s (10 s for int64/uint64, whose 32-bit
path is a second set of specializations of the helpers); they are cached on disk afterwards.
"""

from __future__ import annotations

import numpy as np
from numba import prange, types
from numba.extending import overload

from ._jit import FASTMATH, jit, jit_parallel

__all__ = ["gemm_serial", "gemm_parallel", "GEMM_KERNELS"]

# Indexing with unsigned ints skips Numba's negative-index wraparound, which would otherwise stop
# LLVM from vectorizing the tight loops. Every index computed here is >= 0 by construction.
_u = np.uint64

_MR = 4  # rows of a (and out) per register block; the hand-unrolled _rows4 depends on it
_NC_BYTES = 4096  # bytes of an output row segment (the n-block)
_KC = 256  # steps of k per cache block
_MC = 32  # rows of an output panel (a multiple of _MR; small enough to balance the threads)
_DOT_ROW_BYTES = 128  # output rows shorter than this (in bytes) use the dot-product path ...
_DOT_MIN_K = 32  # ... when k is at least this
_NARROW_MIN = 16  # min(m, n) from which 64-bit integers are scanned for the 32-bit fast path
_TINY = 1024  # m * n * k up to this: plain loops (the blocking costs more than it saves)
# gemm_parallel splits over batch items when there are at least _BATCH_SPLIT of them or each is
# smaller than _ITEM_SPLIT multiply-adds; else it splits each matrix (one parallel launch per
# matrix). Below _ITEM_SPLIT, a single matrix runs on one thread: callers should prefer
# gemm_serial there. Neither depends on the thread count: numba.get_num_threads() in jitted code
# would make the kernel uncacheable, and a thread count frozen at compile time would go stale in
# the cache.
_BATCH_SPLIT = 64
_ITEM_SPLIT = 1 << 20


def _narrowed(x):
    """``(True, copy of x as int32/uint32)`` when x is int64/uint64 with every value in range,
    else ``(False, anything)``. Compiled only (see the overload below)."""
    raise NotImplementedError("only callable from jitted code")


@overload(_narrowed, jit_options={"fastmath": FASTMATH, "nogil": True})
def _narrowed_overload(x):
    dtype = x.dtype
    if not (isinstance(dtype, types.Integer) and dtype.bitwidth == 64):
        return lambda x: (False, x)
    if dtype.signed:
        small = np.int32
        lo = np.int64(-(2**31))
        hi = np.int64(2**31 - 1)
    else:
        small = np.uint32
        lo = np.uint64(0)
        hi = np.uint64(2**32 - 1)

    def impl(x):
        flat = x.reshape(x.size)
        copy = np.empty(x.shape, small)
        cflat = copy.reshape(copy.size)
        size = flat.size
        for s in range(0, size, 4096):
            e = min(size, s + 4096)
            mn = flat[s]
            mx = flat[s]
            for t in range(_u(s), _u(e)):
                v = flat[t]
                mn = min(mn, v)
                mx = max(mx, v)
                cflat[t] = v
            if mn < lo or mx > hi:
                return False, copy
        return True, copy

    return impl


@jit
def _segment(out):
    """Elements of an output row segment (the n-block)."""
    return max(16, _NC_BYTES // out.itemsize)


@jit
def _use_dots(k, n, itemsize):
    """Whether the dot-product path computes this product (see the module docstring)."""
    return n * itemsize < _DOT_ROW_BYTES and k >= _DOT_MIN_K


@jit
def _rows4(a, b, out, t, i, j0, j1, p0, p1):
    """out[t, i:i+4, j0:j1] (+)= a[t, i:i+4, p0:p1] @ b[t, p0:p1, j0:j1]; assigns when p0 == 0."""
    o0 = out[t, i]
    o1 = out[t, i + 1]
    o2 = out[t, i + 2]
    o3 = out[t, i + 3]
    if p0 == 0:
        for j in range(_u(j0), _u(j1)):
            o0[j] = 0
            o1[j] = 0
            o2[j] = 0
            o3[j] = 0
    r0 = a[t, i]
    r1 = a[t, i + 1]
    r2 = a[t, i + 2]
    r3 = a[t, i + 3]
    p = p0
    while p + 4 <= p1:
        # 4 rows x 4 steps of k per pass: each out vector is loaded and stored once per 16 MACs.
        # Sums are written left to right, so each element still accumulates in k order.
        a00, a01, a02, a03 = r0[p], r0[p + 1], r0[p + 2], r0[p + 3]
        a10, a11, a12, a13 = r1[p], r1[p + 1], r1[p + 2], r1[p + 3]
        a20, a21, a22, a23 = r2[p], r2[p + 1], r2[p + 2], r2[p + 3]
        a30, a31, a32, a33 = r3[p], r3[p + 1], r3[p + 2], r3[p + 3]
        b0 = b[t, p]
        b1 = b[t, p + 1]
        b2 = b[t, p + 2]
        b3 = b[t, p + 3]
        for j in range(_u(j0), _u(j1)):
            v0 = b0[j]
            v1 = b1[j]
            v2 = b2[j]
            v3 = b3[j]
            o0[j] = o0[j] + a00 * v0 + a01 * v1 + a02 * v2 + a03 * v3
            o1[j] = o1[j] + a10 * v0 + a11 * v1 + a12 * v2 + a13 * v3
            o2[j] = o2[j] + a20 * v0 + a21 * v1 + a22 * v2 + a23 * v3
            o3[j] = o3[j] + a30 * v0 + a31 * v1 + a32 * v2 + a33 * v3
        p += 4
    while p < p1:
        a0 = r0[p]
        a1 = r1[p]
        a2 = r2[p]
        a3 = r3[p]
        bp = b[t, p]
        for j in range(_u(j0), _u(j1)):
            v = bp[j]
            o0[j] = o0[j] + a0 * v
            o1[j] = o1[j] + a1 * v
            o2[j] = o2[j] + a2 * v
            o3[j] = o3[j] + a3 * v
        p += 1


@jit
def _row1(a, b, out, t, i, j0, j1, p0, p1):
    """out[t, i, j0:j1] (+)= a[t, i, p0:p1] @ b[t, p0:p1, j0:j1]; assigns when p0 == 0."""
    o = out[t, i]
    if p0 == 0:
        for j in range(_u(j0), _u(j1)):
            o[j] = 0
    r = a[t, i]
    p = p0
    while p + 4 <= p1:
        a0, a1, a2, a3 = r[p], r[p + 1], r[p + 2], r[p + 3]
        b0 = b[t, p]
        b1 = b[t, p + 1]
        b2 = b[t, p + 2]
        b3 = b[t, p + 3]
        for j in range(_u(j0), _u(j1)):
            o[j] = o[j] + a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
        p += 4
    while p < p1:
        a0 = r[p]
        bp = b[t, p]
        for j in range(_u(j0), _u(j1)):
            o[j] = o[j] + a0 * bp[j]
        p += 1


@jit
def _row_block(a, b, out, t, i, j0, j1, p0, p1):
    """Rows i:i+_MR (fewer at the end of the matrix) of a block: _rows4, else one row at a time.

    ``i`` is a multiple of ``_MR``, so each row is always handled by the same code."""
    m = a.shape[1]
    if i + _MR <= m:
        _rows4(a, b, out, t, i, j0, j1, p0, p1)
    else:
        for r in range(i, m):
            _row1(a, b, out, t, r, j0, j1, p0, p1)


@jit
def _panel(a, b, out, t, i0, i1, j0, j1):
    """out[t, i0:i1, j0:j1] = a[t, i0:i1] @ b[t, :, j0:j1]: k blocks of ``_KC``, then row blocks.

    ``i0`` is a multiple of ``_MR``. The output panel (at most ``_MC`` rows of a segment) stays in
    L2 across the k blocks; each k block of the ``b`` panel stays in L2 across the row blocks."""
    k = a.shape[2]
    for p0 in range(0, max(k, 1), _KC):  # at least once: with k == 0 this zeroes the panel
        p1 = min(k, p0 + _KC)
        for i in range(i0, i1, _MR):
            _row_block(a, b, out, t, i, j0, j1, p0, p1)


@jit
def _blocked(a, b, out, t):
    """out[t] = a[t] @ b[t], panel by panel (output segments times ``_MC`` rows)."""
    m = a.shape[1]
    n = b.shape[2]
    nc = _segment(out)
    for j0 in range(0, n, nc):
        for i0 in range(0, m, _MC):
            _panel(a, b, out, t, i0, min(m, i0 + _MC), j0, min(n, j0 + nc))


@jit
def _transposed(b, t):
    """b[t].T as a new C-contiguous array (each column of b[t] contiguous)."""
    k, n = b.shape[1:]
    bt = np.empty((n, k), b.dtype)
    for p in range(k):
        for j in range(n):
            bt[j, p] = b[t, p, j]
    return bt


@jit
def _dot_row(a, bt, out, t, i):
    """out[t, i, :] = a[t, i] @ bt.T as dot products along k (narrow n; requires k >= 1).

    Columns go by 4: each load of ``a`` feeds 4 dot products."""
    k = a.shape[2]
    n = bt.shape[0]
    r = a[t, i]
    o = out[t, i]
    j = 0
    while j + 4 <= n:
        c0 = bt[j]
        c1 = bt[j + 1]
        c2 = bt[j + 2]
        c3 = bt[j + 3]
        x = r[0]
        s0 = x * c0[0]
        s1 = x * c1[0]
        s2 = x * c2[0]
        s3 = x * c3[0]
        for p in range(_u(1), _u(k)):
            x = r[p]
            s0 += x * c0[p]
            s1 += x * c1[p]
            s2 += x * c2[p]
            s3 += x * c3[p]
        o[j] = s0
        o[j + 1] = s1
        o[j + 2] = s2
        o[j + 3] = s3
        j += 4
    while j < n:
        c0 = bt[j]
        s0 = r[0] * c0[0]
        for p in range(_u(1), _u(k)):
            s0 += r[p] * c0[p]
        o[j] = s0
        j += 1


@jit
def _plain(a, b, out, t):
    """out[t] = a[t] @ b[t] without any blocking (tiny products)."""
    m, k = a.shape[1:]
    n = b.shape[2]
    for i in range(m):
        o = out[t, i]
        for j in range(_u(n)):
            o[j] = 0
        r = a[t, i]
        for p in range(k):
            x = r[p]
            bp = b[t, p]
            for j in range(_u(n)):
                o[j] = o[j] + x * bp[j]


@jit
def _task(a, b, out, t):
    """out[t] = a[t] @ b[t] on one thread, by the path the shapes call for."""
    m, k = a.shape[1:]
    n = b.shape[2]
    if _use_dots(k, n, out.itemsize):
        bt = _transposed(b, t)
        for i in range(m):
            _dot_row(a, bt, out, t, i)
    elif m * n * k <= _TINY:
        _plain(a, b, out, t)
    else:
        _blocked(a, b, out, t)


@jit
def _run_serial(a, b, out):
    for t in range(a.shape[0]):
        _task(a, b, out, t)


@jit
def gemm_serial(a, b, out):
    """``out[t] = a[t] @ b[t]`` for every ``t``, on one thread.

    Parameters
    ----------
    a : ndarray, shape (batch, m, k), C-contiguous, read-only
    b : ndarray, shape (batch, k, n), C-contiguous, read-only, dtype of ``a``
    out : ndarray, shape (batch, m, n), C-contiguous, writable, dtype of ``a``
        Overwritten; must not overlap ``a`` or ``b``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6, dtype=np.int8).reshape(1, 2, 3); a.flags.writeable = False
    >>> b = np.full((1, 3, 2), 100, dtype=np.int8); b.flags.writeable = False
    >>> out = np.empty((1, 2, 2), dtype=np.int8)
    >>> gemm_serial(a, b, out)
    >>> out[0]  # wraps modulo 256, as numpy does
    array([[ 44,  44],
           [-80, -80]], dtype=int8)
    """
    if min(a.shape[1], b.shape[2]) >= _NARROW_MIN:
        ok_a, a32 = _narrowed(a)
        if ok_a:
            ok_b, b32 = _narrowed(b)
            if ok_b:
                _run_serial(a32, b32, out)
                return
    _run_serial(a, b, out)


@jit_parallel
def _run_parallel(a, b, out):
    nb, m, k = a.shape
    n = b.shape[2]
    if nb >= _BATCH_SPLIT or m * n * k < _ITEM_SPLIT:
        for t in prange(nb):  # whole matrices per thread
            _task(a, b, out, np.int64(t))  # (prange indices are unsigned)
        return
    for t in range(nb):  # few large matrices: split each one
        if _use_dots(k, n, out.itemsize):
            bt = _transposed(b, t)
            for i in prange(m):
                _dot_row(a, bt, out, t, np.int64(i))
            continue
        # The panels of _blocked, row-major: each thread gets a contiguous range of row panels
        # (measured: faster than giving threads segments). Per element, the same blocks in the
        # same k order as gemm_serial.
        nc = _segment(out)
        segs = (n + nc - 1) // nc
        for q in prange((m + _MC - 1) // _MC * segs):
            i0 = np.int64(q) // segs * _MC
            j0 = np.int64(q) % segs * nc
            _panel(a, b, out, t, i0, min(m, i0 + _MC), j0, min(n, j0 + nc))


@jit
def gemm_parallel(a, b, out):
    """As :func:`gemm_serial`, with ``prange`` over batch items, or, for a few large matrices,
    over (output segment, row block) pairs within each ``k`` block (rows for the dot path).

    The result is bit-identical to :func:`gemm_serial`'s on any number of threads.
    """
    if min(a.shape[1], b.shape[2]) >= _NARROW_MIN:
        ok_a, a32 = _narrowed(a)
        if ok_a:
            ok_b, b32 = _narrowed(b)
            if ok_b:
                _run_parallel(a32, b32, out)
                return
    _run_parallel(a, b, out)


GEMM_KERNELS = (gemm_serial, gemm_parallel)
