"""Every threshold the engine decides by, in one frozen settings object.

The planner (how each step runs), the path search (how long ``'auto'`` may search) and the numpy
executor (threads, BLAS layout, the BLAS-or-kernel cost model) read their thresholds from a
:class:`Tuning`. ``make_plan`` and ``execute`` take one as an argument (a plan carries the one it
was made with, and the executor runs it with that); the public functions use :func:`current`.
Another backend passes its own; tests change the current one with :func:`use` instead of patching
module globals.

No Numba and no other module of the package is imported here.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["Tuning", "DEFAULT", "current", "set_current", "use", "generation", "clear_on_change"]


@dataclass(frozen=True)
class Tuning:
    """The engine's thresholds (the defaults were measured on a 2-core AVX2 machine; see
    ``docs/guide.md``).

    Attributes
    ----------
    numpy_loop_max_work : int
        A whole equation whose work (every label's size multiplied, times the operand count) is at
        most this runs in numpy's C einsum loop: up to 2**15 numpy's loop takes 0.6-25 us
        (0.84 us for a 4x4 GEMM, 4.5 us for 24x24), less than this engine's per-call cost. ``0``
        switches it off.
    blas_min_flops : int
        A GEMM-shaped float step goes to NumPy's matmul when it sums over at least 2 elements and
        does at least this much work; below it NumPy's per-call cost and the transposing copies
        outweigh the kernel.
    blas_min_dot : int
        A single dot product (no rows, no columns) goes to BLAS from this length; batched dot
        products stay in the kernel, which streams them at memory speed.
    gemm_min_k, gemm_min_mn, gemm_min_work : int
        An integer (or ``use_blas=False``) matrix product with at least these summed size, rows
        and columns, and multiply-adds repays the packing copies of the blocked GEMM kernel.
    fuse_max_operands : int
        Up to this many operands whose pairwise path saves no arithmetic run as one fused kernel
        step (the kernel vectorizes up to 3 moving operands).
    auto_small_operands : int
        ``optimize='auto'`` on at most this many operands is opt_einsum's own ``'auto'``; beyond
        it, the time-budgeted search of :mod:`contract.paths`.
    path_write_weight : int
        The ``'auto'`` search ranks paths by FLOPs plus this many FLOP units per element its
        steps write (``paths.path_cost``; cotengra's ``'combo'`` cost with its default factor).
        On seven einsum_benchmark networks it ranked 49 paths by their run time here nearly as
        measured; FLOPs alone did not (two paths of 4.4e7 FLOPs ran in 7.6 ms and 31 ms).
    cost_per_second : float
        The assumed speed (``path_cost`` units per second) that turns a path's cost into an
        expected run time, which sets the search budget. Measured on those networks' paths:
        0.7e10-4e10 per second (median 2.5e10); taken at the low-middle so that a slow
        hypernetwork is not under-searched.
    dtype_slowdown : tuple of (str, float)
        How many times longer than in float64 a path of the same cost runs in other dtypes (by
        dtype character; 1 for any other), so that the search budget follows the expected run
        time: measured as contract's own time on the einsum_benchmark networks, 2026-12-02,
        float32 0.46-0.62x (one network 1.1x), complex128 1.8-4.6x, int64 2-3.7x (no BLAS).
    search_fraction, search_min_seconds, search_max_seconds : float
        The ``'auto'`` search may spend this fraction of the expected run time, not at all when
        that is below the minimum, and never more than the maximum.
    hyper_min_seconds : float
        From this budget on, cotengra's hyper-optimizer (when installed) joins the search.
    parallel_min_work : int
        Below this many multiply-adds a kernel step runs on one thread: a parallel launch costs
        ~10 us on an idle machine and a whole scheduler slice on a busy one.
    gemm_parallel_min_work : int
        The same for the blocked GEMM kernel.
    min_split_work : int
        A BLAS product split into several calls (extra batch axes instead of a copy) keeps at
        least this many multiply-adds per call; below it one copy of the operand costs less.
    small_operand : int
        The smaller operand stack of a BLAS step, up to this many elements, is copied into C
        order when it is not already (numpy's matmul runs a C-ordered stack times a transposed
        small matrix far below BLAS speed).
    split_parts : int
        A reduction with fewer output rows than this is cut into at most this many partial sums.
    min_block : int
        The shortest block of a kernel's tight output dimension worth a thread of its own.
    table_tight_max, table_max : int
        A kernel step whose tight loop is shorter than ``table_tight_max`` folds its innermost
        dimensions into one loop over a table of offsets (at most ``table_max`` entries), so
        that tensors with many axes of extent 2-4 in different orders do not run a nest of
        loops of a few iterations each (:func:`contract.layout.tabulate`).
    table_min_work : int
        Steps of fewer multiply-adds keep the strided kernel: they gain microseconds at most,
        and in a process that has not compiled the table kernel yet, it would cost a compile.
    copy_ns, blas_flops_per_ns, kernel_flops_per_ns : float
        The cost model that picks BLAS or the kernel for a BLAS-shaped step whose operand must be
        copied into order first: a copy costs ``copy_ns`` per element, BLAS runs
        ``blas_flops_per_ns`` and the strided kernel a thin product at ``kernel_flops_per_ns``
        (only the ratios matter).
    blas_call_ns : float
        What one more BLAS call costs against a copy (``copy_ns`` per element) when a product
        could be split into several calls instead of copying an operand into order (a call,
        thinner matrices, and in a threaded BLAS a launch and sync, which a busy machine makes
        long). Measured with one BLAS thread: ``ih,jhk->ijk`` (100, 100) x (8, 100, 100) 0.34 ms
        in 8 calls, 0.99 ms copying the second operand for one call; ``dega,gfbc->abcdef``
        (extents 16-24) the same either way in 384 calls or one; with two threads on a busy
        machine the 384 calls took 0.7 s and one call after a copy 0.09 s.
    """

    numpy_loop_max_work: int = 1 << 15
    blas_min_flops: int = 2 * 16**3
    blas_min_dot: int = 1 << 14
    gemm_min_k: int = 4
    gemm_min_mn: int = 4
    gemm_min_work: int = 1 << 15
    fuse_max_operands: int = 3
    auto_small_operands: int = 8
    path_write_weight: int = 64
    cost_per_second: float = 2.0e10
    dtype_slowdown: tuple[tuple[str, float], ...] = (
        ("f", 0.6), ("e", 0.6), ("F", 1.5), ("D", 3.0), ("i", 2.0), ("l", 2.5), ("q", 2.5))
    search_fraction: float = 0.25
    search_min_seconds: float = 0.0002
    search_max_seconds: float = 5.0
    hyper_min_seconds: float = 1.0
    parallel_min_work: int = 1 << 17
    gemm_parallel_min_work: int = 1 << 20
    min_split_work: int = 1 << 15
    small_operand: int = 1 << 14
    split_parts: int = 8
    min_block: int = 256
    table_tight_max: int = 16
    table_max: int = 512
    table_min_work: int = 1 << 16
    copy_ns: float = 2.0
    blas_flops_per_ns: float = 20.0
    kernel_flops_per_ns: float = 2.0
    blas_call_ns: float = 4_000.0

    def __hash__(self) -> int:
        # computed once: a Tuning is part of the keys of the executor's per-geometry caches
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(tuple(self.__dict__[name] for name in self.__dataclass_fields__))
            object.__setattr__(self, "_hash", cached)
        return cached


DEFAULT = Tuning()

_state = {"current": DEFAULT, "generation": 0}
# caches of runners planned with the current settings, cleared when they change (weakly held)
_caches: weakref.WeakSet = weakref.WeakSet()


def current() -> Tuning:
    """The settings the public functions plan and run with (:data:`DEFAULT` unless changed)."""
    return _state["current"]


def generation() -> int:
    """A number that changes whenever :func:`use` changes the current settings: caches of
    plans made with the current settings compare it to know when to start over."""
    return _state["generation"]


def clear_on_change(cache: Any) -> None:
    """Have ``cache.clear()`` called whenever the current settings change (so that a per-call
    cache needs no check of its own on every call); the cache is held weakly."""
    _caches.add(cache)


def set_current(tuning: Tuning) -> Tuning:
    """Make ``tuning`` the current settings from now on; returns the previous ones."""
    previous = _state["current"]
    _state["current"] = tuning
    _state["generation"] += 1
    for cache in list(_caches):
        cache.clear()
    return previous


@contextmanager
def use(tuning: Tuning) -> Iterator[Tuning]:
    """Make ``tuning`` the current settings inside a ``with`` block (for the whole process, not
    per thread); plans cached before are not used inside it, nor those made inside it after.

    Examples
    --------
    >>> from dataclasses import replace
    >>> before = current()
    >>> with use(replace(before, numpy_loop_max_work=0)):
    ...     current().numpy_loop_max_work
    0
    >>> current() is before
    True
    """
    previous = set_current(tuning)
    try:
        yield tuning
    finally:
        set_current(previous)
