"""The one place that sets Numba options: disk cache (with a clean fallback), fastmath, parallel.

Environment knobs (read once, at import):

``OMP_WAIT_POLICY``
    Set to ``PASSIVE`` by :func:`warm_up` unless the user set it (before Numba's OpenMP layer
    loads, which happens at the first parallel kernel launch): idle OpenMP
    threads sleep instead of spinning. Measured here with one core busy elsewhere, a small
    ``prange`` kernel took 5.2 ms (median) with spinning threads and 0.63 ms with passive ones,
    and a spinning pool also steals the cores BLAS needs right after a kernel.
``CONTRACT_NUMBA_CACHE``
    ``0`` disables Numba's on-disk cache (default ``1``). Numba's own ``NUMBA_CACHE_DIR`` picks
    the directory; when neither the package directory nor ``NUMBA_CACHE_DIR`` is writable, the
    cache is switched off with a warning instead of failing.
``CONTRACT_EAGER_INIT``
    ``0`` leaves Numba's one-time setup to the first kernel call (default ``1``: done when the
    executor is imported, see :func:`warm_up`).
"""

from __future__ import annotations

import os
import tempfile
import types
import warnings

import numba
import numpy as np

__all__ = ["jit", "jit_inline", "jit_loop", "jit_parallel", "warm_up", "CACHE_ENABLED", "FASTMATH"]

# Reassociation (and FMA contraction) only: NaN and Inf must propagate as in numpy.
FASTMATH = {"reassoc", "contract"}


def _cache_is_writable() -> bool:
    """True when Numba can write its cache for this package (its own dir or NUMBA_CACHE_DIR)."""
    target = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        os.path.dirname(__file__), "__pycache__"
    )
    try:
        os.makedirs(target, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target):
            pass
    except OSError:
        # Numba also falls back to a user-wide cache dir when the package dir is read-only;
        # rather than depend on that heuristic, we try it explicitly.
        return False
    return True


def _cache_wanted() -> bool:
    if os.environ.get("CONTRACT_NUMBA_CACHE", "1") == "0":
        return False
    if _cache_is_writable():
        return True
    warnings.warn(
        "contract: no writable Numba cache directory (set NUMBA_CACHE_DIR to enable the "
        "on-disk cache); kernels will be compiled in every process",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


CACHE_ENABLED = _cache_wanted()


def _keyed(func, options: dict):
    """``func`` with the jit options (and numba's version) in its cache key.

    Numba keys its disk cache on the source file's stamp, the bytecode and the closure's cell
    contents -- not on the options it compiles with (numba/numba#10821) -- so a change here would
    be served stale machine code. An unused closure cell holding the options fixes that.
    """
    if func.__closure__ is not None:
        return func
    # sets are sorted: their repr follows the per-process string hash seed, which would give
    # every process its own key (and no cache hits at all)
    canonical = sorted((k, sorted(v) if isinstance(v, (set, frozenset)) else v)
                       for k, v in options.items())
    fingerprint = repr((canonical, numba.__version__))
    code = func.__code__.replace(co_freevars=("_contract_jit_options",))
    cell = types.CellType(fingerprint)
    keyed = types.FunctionType(code, func.__globals__, func.__name__, func.__defaults__, (cell,))
    keyed.__doc__, keyed.__qualname__, keyed.__module__ = (
        func.__doc__,
        func.__qualname__,
        func.__module__,
    )
    return keyed


def jit(func):
    """Compile a serial kernel (nopython, cached, reassociation-only fastmath)."""
    options = {"cache": CACHE_ENABLED, "fastmath": FASTMATH, "nogil": True}
    return numba.njit(**options)(_keyed(func, options))


def jit_loop(func):
    """Compile a loop nest without Numba's reference counting (it may not allocate).

    Every array a jitted function binds to a name, takes out of a tuple or passes to another
    function is bracketed by atomic reference-count updates (``lock incq``/``lock decq``) that
    Numba's pruning pass does not remove inside loops with branches: measured here, they were
    most of the ~150 ns a kernel row cost (a row of 30 elements, or of 1). Arrays stay alive
    through the caller, which allocates any scratch space and holds the references.
    """
    options = {"cache": CACHE_ENABLED, "fastmath": FASTMATH, "nogil": True, "_nrt": False}
    return numba.njit(**options)(_keyed(func, options))


def jit_inline(func):
    """Compile a helper of a :func:`jit_loop` function, inlined into it (Numba IR inlining)."""
    options = {"cache": CACHE_ENABLED, "fastmath": FASTMATH, "nogil": True, "inline": "always",
               "_nrt": False}
    return numba.njit(**options)(_keyed(func, options))


def jit_parallel(func):
    """Compile a ``prange`` kernel (as :func:`jit`, plus ``parallel=True``)."""
    options = {"cache": CACHE_ENABLED, "fastmath": FASTMATH, "nogil": True, "parallel": True}
    return numba.njit(**options)(_keyed(func, options))


def warm_up() -> None:
    """Do Numba's once-per-process setup now instead of inside the first kernel call.

    Called once, by the executor's import (the first use of the engine, not ``import contract``).
    It first sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user set it (see the module docstring).

    Before it loads its first compiled function, Numba fills its CPU target's typing and lowering
    registries (about 100 ms here), and typing the first array imports ``numpy.ma`` (about 14 ms).
    Doing both at import keeps ``import contract`` near 0.3 s and brings the first kernel call
    in a new process down from ~120 ms to the cache load of that one kernel (~15 ms); the total
    is the same. It launches no threads, so forking after import stays safe.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if os.environ.get("CONTRACT_EAGER_INIT", "1") == "0":
        return
    from numba.core.registry import cpu_target

    # typing first, as Numba's own compile path does: refreshing the target context first made
    # every later cold compile about 1.4 s slower (4.3 s -> 5.7 s for one kernel, measured here)
    cpu_target.typing_context.refresh()
    cpu_target.target_context.refresh()
    numba.typeof(np.empty((1, 1)))
