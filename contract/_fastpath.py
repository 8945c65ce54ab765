"""The per-call fast path: runners remembered per call signature.

A call with default keywords whose subscripts, optimize (and its type), use_blas and operand
types, shapes and dtypes were seen before skips parsing, keyword checks and planning: it goes
straight to the runner the first such call decided on (numpy's loop for a tiny equation, else the
plan). Every key in a cache was stored by a first call that succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["Runner", "RunnerCache", "operand_key"]

Runner = Callable[..., Any]


class RunnerCache:
    """At most ``maxsize`` runners by key; full, it starts over (keys are cheap to rebuild).

    The module-level cache of :mod:`contract._call` serves ``einsum`` and ``contract``; each
    ``ContractExpression`` owns another.
    """

    __slots__ = ("maxsize", "_runners")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._runners: dict[tuple, Runner] = {}

    def get(self, key: tuple | None) -> Runner | None:
        """The runner stored under ``key`` (None for no key or an unknown one)."""
        return self._runners.get(key)

    def lookup(self, subscripts: Any, optimize: Any, use_blas: bool, operands: Sequence[Any]
               ) -> tuple[tuple | None, Runner | None]:
        """The key of a call with default keywords and the runner stored under it; ``(None,
        None)`` for operands that are not arrays or arguments that are not hashable."""
        try:
            key = (subscripts, type(optimize), optimize, use_blas, operand_key(operands))
            return key, self._runners.get(key)
        except (AttributeError, TypeError):
            return None, None

    def remember(self, key: tuple, runner: Runner) -> None:
        """Store ``runner`` under ``key``."""
        if len(self._runners) >= self.maxsize:
            self._runners.clear()
        self._runners[key] = runner

    def clear(self) -> None:
        """Forget every runner."""
        self._runners.clear()

    def __len__(self) -> int:
        return len(self._runners)

    def __iter__(self) -> Iterator[tuple]:
        return iter(self._runners)


def operand_key(operands: Sequence[Any]) -> tuple:
    """Type, shape and dtype of every operand, as one flat tuple (AttributeError for non-arrays).

    Spelled out for up to three operands: this runs on every fast-path call, and a comprehension
    costs twice as much.
    """
    if len(operands) == 2:
        a, b = operands
        return (type(a), a.shape, a.dtype, type(b), b.shape, b.dtype)
    if len(operands) == 3:
        a, b, c = operands
        return (type(a), a.shape, a.dtype, type(b), b.shape, b.dtype, type(c), c.shape, c.dtype)
    if len(operands) == 1:
        a = operands[0]
        return (type(a), a.shape, a.dtype)
    return tuple([(type(a), a.shape, a.dtype) for a in operands])
