"""Numba's ``numba_extensions`` entry point for the ``@njit`` overloads (no Numba import here).

Numba loads its extensions once per process, on its first compile or typing-registry refresh.
The engine's first use triggers that refresh (the executor's warm-up) while ``contract.api`` is
still half-imported, and a user's first ``@njit`` compile may come before ``contract.api`` is
imported at all (``import contract`` is lazy). :func:`_init` therefore imports ``contract.api``
itself when nothing has, and otherwise leaves the registration to :func:`finish`, which
``contract/api.py`` calls last.
"""

from __future__ import annotations

import sys

__all__ = ["finish"]

_pending = {"deferred": False}


def _init() -> None:
    """Register the overloads now, or as soon as ``contract.api`` has finished importing.

    Numba calls this ahead of its first compile in the process. If ``contract.api`` was not
    imported yet (``import contract`` is lazy), it is imported here, so the overloads exist
    before the compile reads its typing registries; if it is being imported right now (its
    warm-up refreshed Numba's registries), :func:`finish` registers them at its end.
    """
    api = sys.modules.get("contract.api")
    if api is not None and not hasattr(api, "_API_READY"):
        _pending["deferred"] = True
        return
    import contract.api  # noqa: F401
    import contract.numba_ext  # noqa: F401 -- registers the overloads


def finish() -> None:
    """Run a registration :func:`_init` had to defer (called at the end of ``contract.api``)."""
    if _pending["deferred"]:
        _pending["deferred"] = False
        import contract.numba_ext  # noqa: F401
