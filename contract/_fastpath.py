"""The per-call fast path: runners remembered per call signature.

A call with default keywords whose subscripts, optimize (a name, a bool or an explicit path, and
its type), use_blas and operand types, shapes and dtypes were seen before skips parsing, keyword
checks and planning: it goes straight to the runner the first such call decided on (numpy's loop
for a tiny equation, else the plan). Every key in a cache was stored by a first call that
succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ._tuning import clear_on_change

__all__ = ["Runner", "RunnerCache", "operand_key"]

Runner = Callable[..., Any]


class RunnerCache:
    """At most ``maxsize`` runners by key; full, it starts over (keys are cheap to rebuild).

    The module-level cache of :mod:`contract._call` serves ``einsum`` and ``contract``; each
    ``ContractExpression`` owns another. Runners were planned with the settings current when they
    were stored (:mod:`contract._tuning`): when those change, :mod:`contract._tuning` clears it.
    """

    __slots__ = ("maxsize", "_runners", "__weakref__")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._runners: dict[tuple, Runner] = {}
        clear_on_change(self)

    def get(self, key: tuple | None) -> Runner | None:
        """The runner stored under ``key`` (None for no key or an unknown one)."""
        return self._runners.get(key)

    def lookup(self, subscripts: Any, optimize: Any, use_blas: bool, operands: Sequence[Any],
               hashable_labels: bool = False) -> tuple[tuple | None, Runner | None]:
        """The key of a call with default keywords and the runner stored under it; ``(None,
        None)`` for operands that are not arrays or arguments that are not hashable.

        An explicit path given as a list (numpy's ``einsum_path`` gives one) is keyed by its
        items. A call in the interleaved form is keyed by its sublists, and by
        ``hashable_labels`` (``contract`` takes labels that ``einsum`` refuses)."""
        try:
            if type(optimize) is list:
                optimize = (list, *optimize)
            if type(subscripts) is not str:  # the interleaved form: op, sublist, op, ...
                args = (subscripts, *operands)
                n = len(args) // 2
                # each label with its type: True == 1 == 1.0, but only 1 is a label einsum takes
                labels = tuple([(*sub, *map(type, sub)) for sub in args[1:2 * n:2]])
                if len(args) % 2:
                    labels += ((*args[-1], *map(type, args[-1])),)
                key = (_INTERLEAVED, n, labels, hashable_labels, type(optimize), optimize,
                       use_blas, operand_key(args[0:2 * n:2]))
                return key, self._runners.get(key)
            key = (subscripts, type(optimize), optimize, use_blas, operand_key(operands))
            return key, self._runners.get(key)
        except (AttributeError, TypeError):
            return None, None

    def remember(self, key: tuple, runner: Runner) -> None:
        """Store ``runner`` under ``key`` (for an interleaved call, a runner that takes the
        call's arguments as they came: operand, sublist, operand, ...)."""
        if len(self._runners) >= self.maxsize:
            self._runners.clear()
        if key[0] is _INTERLEAVED:
            runner = _FromInterleaved(runner, 2 * key[1])
        self._runners[key] = runner

    def clear(self) -> None:
        """Forget every runner."""
        self._runners.clear()

    def __len__(self) -> int:
        return len(self._runners)

    def __iter__(self) -> Iterator[tuple]:
        return iter(self._runners)


class _Interleaved:
    """The first item of a fast-path key of the interleaved form."""


_INTERLEAVED = _Interleaved()


class _FromInterleaved:
    """A runner of arrays called with interleaved arguments: it picks the operands out."""

    __slots__ = ("runner", "end")

    def __init__(self, runner: Runner, end: int) -> None:
        self.runner, self.end = runner, end

    def __call__(self, *args: Any) -> Any:
        return self.runner(*args[0:self.end:2])


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
