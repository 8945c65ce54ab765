"""Which backend runs a call, decided from the operand types before anything converts them.

numpy arrays (and everything ``numpy.asarray`` accepts) run in memory on this engine's executor.
An operand whose type comes from a package listed in :data:`BACKENDS` sends the whole call to
that package's backend module instead (as opt_einsum's ``infer_backend`` does): a dask array is
never computed by an ``np.asarray`` it did not ask for. A new backend is one module plus one entry
in :data:`BACKENDS`; the backend module is imported on first use only, so ``import contract``
never imports the package it serves.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["BACKENDS", "infer_backend", "backend_module"]

# the root package of an operand's type -> the module that runs calls on such operands; each
# module provides ``evaluate(call)`` (see contract._call.Request)
BACKENDS: dict[str, str] = {"dask": "contract.dask_backend"}

_ROOTS: dict[type, str] = {}  # the root package of each operand type seen (types are few)


def _root(cls: type) -> str:
    root = _ROOTS.get(cls)
    if root is None:
        root = _ROOTS[cls] = cls.__module__.partition(".")[0]
    return root


def infer_backend(operands: Sequence[Any]) -> str:
    """``'numpy'``, or the name of the backend that owns the first operand of a type it serves.

    Examples
    --------
    >>> import numpy as np
    >>> infer_backend([np.ones(3), [1.0, 2.0, 3.0]])
    'numpy'
    """
    if BACKENDS:
        for op in operands:
            root = _root(type(op))
            if root in BACKENDS:
                return root
    return "numpy"


def backend_module(name: str) -> ModuleType:
    """The module of the backend ``name`` (imported now if it was not yet)."""
    return importlib.import_module(BACKENDS[name])
