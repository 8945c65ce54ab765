"""Numba's ``numba_extensions`` entry point for the ``@njit`` overloads (no Numba import here).

Numba loads its extensions once per process, on its first compile or typing-registry refresh.
``import contract`` itself triggers that refresh (the kernels' warm-up) while ``contract.api`` is
still half-imported, so the overload of ``contract.einsum`` cannot be registered at that moment:
:func:`_init` then leaves it to :func:`finish`, which ``contract/__init__.py`` calls last.
"""

from __future__ import annotations

import sys

__all__ = ["finish"]

_pending = {"deferred": False}


def _init() -> None:
    """Register the overloads now, or as soon as ``import contract`` has finished."""
    api = sys.modules.get("contract.api")
    if api is None or not hasattr(api, "einsum") or "contract" not in sys.modules or not hasattr(
            sys.modules["contract"], "__all__"):
        _pending["deferred"] = True
        return
    import contract.numba_ext  # noqa: F401 -- registers the overloads


def finish() -> None:
    """Run a registration :func:`_init` had to defer (called at the end of ``import contract``)."""
    if _pending["deferred"]:
        _pending["deferred"] = False
        import contract.numba_ext  # noqa: F401
