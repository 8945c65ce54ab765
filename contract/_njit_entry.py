"""Numba's ``numba_extensions`` entry point for the ``@njit`` overloads (no Numba import here).

Numba loads its extensions once per process, on its first compile or typing-registry refresh.
The engine's first use triggers that refresh (the executor's warm-up) while a module of the
engine (``contract.executor``, ``contract.api``, ...) is still half-imported, and a user's first
``@njit`` compile may come before ``contract.api`` is imported at all (``import contract`` is
lazy). :func:`_init` therefore imports ``contract.api`` itself when no module of the package is
being imported, and otherwise leaves the registration to :func:`finish`, which
``contract/executor.py`` and ``contract/api.py`` call last.
"""

from __future__ import annotations

import sys

__all__ = ["finish"]

_pending = {"deferred": False}


def _init() -> None:
    """Register the overloads now, or as soon as the engine's modules have finished importing.

    Numba calls this ahead of its first compile in the process. If no module of the package is
    being imported, ``contract.api`` is imported here (``import contract`` is lazy), so the
    overloads exist before the compile reads its typing registries; if one is being imported
    right now (the executor's warm-up refreshed Numba's registries), :func:`finish` registers
    them at the end of ``contract.executor`` or ``contract.api``.
    """
    if _importing():
        _pending["deferred"] = True
        return
    import contract.api  # noqa: F401
    import contract.numba_ext  # noqa: F401 -- registers the overloads


def _importing(finished: str = "") -> bool:
    """Whether a module of the engine other than ``finished`` is half-imported (its import is
    on the stack).

    The import system marks a module's spec ``_initializing`` while its body runs (CPython's
    import lock relies on the same mark).
    """
    return any(getattr(getattr(sys.modules.get(name), "__spec__", None), "_initializing", False)
               for name in ("contract.api", "contract.executor", "contract._call")
               if name != finished)


def finish(module: str) -> None:
    """Run a registration :func:`_init` had to defer, unless an engine module other than
    ``module`` (which calls this as its last line) is still being imported."""
    if _pending["deferred"] and not _importing(module):
        _pending["deferred"] = False
        import contract.numba_ext  # noqa: F401
