"""numpy compatibility: numpy's keyword checks, ``out=`` rules, and the work handed to numpy.

Two kinds of call are numpy's own: non-native dtypes (object, strings, long double), which
:func:`delegate` passes to :func:`numpy.einsum`, and tiny equations, which run in numpy's C einsum
loop (:func:`call_numpy_loop`) because its per-call cost is below this engine's. The private
``c_einsum`` import lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._dtypes import is_long_double
from .parser import Equation, parse_cached
from .planner import runs_in_numpy_loop

try:  # numpy's C einsum loop, without the Python wrapper of numpy.einsum
    from numpy._core.multiarray import c_einsum as numpy_loop
except ImportError:  # numpy < 2
    from numpy.core.multiarray import c_einsum as numpy_loop

__all__ = [
    "alloc",
    "call_numpy_loop",
    "check_keywords",
    "check_out",
    "delegate",
    "numpy_loop",
    "numpy_loop_applies",
]

_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")
_ORDER_NAMES = {"C": "C", "F": "F", "A": "A", "K": "K", "c": "C", "f": "F", "a": "A", "k": "K"}
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_NUMPY_SUBSCRIPT_CHARS = frozenset(_LETTERS + ",.-> ")


def _keyword_text(value: Any, name: str) -> str:
    """numpy's string-keyword conversion: str or ASCII bytes, else TypeError."""
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"{name} must be an ASCII string, got {value!r}") from None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    return value


def check_keywords(order: Any, casting: Any) -> tuple[str, str]:
    """Validate ``order`` and ``casting`` as numpy does; return them normalized.

    Like numpy: ``order`` is case-insensitive and ``None`` means ``'K'``; ``casting`` is
    case-sensitive; both accept ASCII bytes; a non-string raises TypeError.
    """
    order_text = "K" if order is None else _keyword_text(order, "order")
    if order_text not in _ORDER_NAMES:
        raise ValueError(f"order must be one of 'C', 'F', 'A', or 'K' (got {order!r})")
    casting_text = _keyword_text(casting, "casting")
    if casting_text not in _CASTINGS:
        raise ValueError(f"casting must be one of 'no', 'equiv', 'safe', 'same_kind', 'unsafe' "
                         f"(got {casting!r})")
    return _ORDER_NAMES[order_text], casting_text


def check_out(out: Any, shape: tuple[int, ...], result: np.dtype, casting: str) -> np.ndarray:
    """``out`` if numpy would write the result into it, else numpy's TypeError/ValueError."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out: the result has shape {shape} but out has shape {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out: output array is read-only")
    if not np.can_cast(result, out.dtype, casting=casting):
        raise TypeError(f"out: cannot cast the result from {result!r} to the dtype of out "
                        f"{out.dtype!r} according to the rule {casting!r}")
    if not np.can_cast(out.dtype, result, casting=casting):
        # numpy's einsum reads out= too (a read-write operand), so it checks this direction
        raise TypeError(f"out: cannot cast the dtype of out {out.dtype!r} to the computation "
                        f"dtype {result!r} according to the rule {casting!r}")
    return out


def alloc(shape: tuple[int, ...], dtype: np.dtype, order: str,
          arrays: Sequence[np.ndarray]) -> np.ndarray:
    """A new result array in the memory order numpy's ``order=`` asks for."""
    if order == "A":
        order = "F" if arrays and all(a.flags.f_contiguous and not a.flags.c_contiguous
                                      for a in arrays) else "C"
    return np.empty(shape, dtype=dtype, order="F" if order == "F" else "C")


def numpy_loop_applies(sub: Any, eq: Equation, out: Any, use_blas: bool) -> bool:
    """Whether a validated call runs in numpy's C einsum loop: a tiny equation in string form
    written in numpy's alphabet (numpy's own spelling of it), with BLAS allowed and ``out``
    absent or a plain ndarray."""
    return (use_blas and type(sub) is str and (out is None or type(out) is np.ndarray)
            and runs_in_numpy_loop(eq) and _NUMPY_SUBSCRIPT_CHARS.issuperset(sub))


def call_numpy_loop(sub: str, arrays: Sequence[np.ndarray], out: np.ndarray | None, dtype: Any,
                    order: str, casting: str) -> Any:
    """Run the whole call in numpy's C einsum loop (its answer and its errors)."""
    keywords = {"order": order, "casting": casting}
    if out is not None:
        keywords["out"] = out
    if dtype is not None:
        keywords["dtype"] = dtype
    return numpy_loop(sub, *arrays, **keywords)


def delegate(subscripts: Any, operands: Sequence[Any], out: Any, dtype: Any, order: str,
             casting: str) -> Any:
    """Object and other non-numeric dtypes: numpy.einsum does the work.

    With an empty long-double operand (and no ``out=`` or ``dtype=``), numpy's optimize path runs
    it instead of its C loop: numpy 2.4's C loop corrupts the heap for some empty clongdouble
    operands ("munmap_chunk(): invalid pointer" at a later free), e.g.
    ``einsum('bd...a,bcb->b...cd', a, b)`` with ``a`` of shape ``(2, 0, 3, 2, 3)``; the optimize
    path, which spells the equation out first, does not. That path returns 0-d arrays where the C
    loop returns scalars, which is undone here.
    """
    subscripts = _numpy_spelling(subscripts)
    args = [_fresh_if_empty(subscripts), *map(_fresh_if_empty, operands)]
    if not (isinstance(subscripts, str)
            and any(isinstance(a, np.ndarray) and a.size == 0 for a in args)):
        return np.einsum(*args, out=out, dtype=dtype, order=order, casting=casting)
    # validated as for native dtypes: numpy's C loop returns an unchecked view past the data for
    # 'bb->b' on a (0, 3) operand (reading it crashes for object arrays); the parser refuses it
    parse_cached(subscripts, tuple(np.shape(op) for op in operands))
    if out is not None or dtype is not None or not any(
            is_long_double(a.dtype) for a in args if isinstance(a, np.ndarray)):
        # (the optimize path skips some of the C loop's out=/dtype= checks, so those stay there)
        return np.einsum(*args, out=out, dtype=dtype, order=order, casting=casting)
    result = np.einsum(*args, out=out, dtype=dtype, order=order, casting=casting, optimize=True)
    if out is None and isinstance(result, np.ndarray) and result.ndim == 0:
        return result[()]
    return result


def _numpy_spelling(subscripts: Any) -> Any:
    """A subscript string in numpy's alphabet: other characters become letters, assigned in code
    point order so that an implicit output keeps its order (ValueError past 52 labels)."""
    if not isinstance(subscripts, str) or _NUMPY_SUBSCRIPT_CHARS.issuperset(subscripts):
        return subscripts
    labels = sorted(set(subscripts) - set(",.-> "))
    if len(labels) > len(_LETTERS):
        raise ValueError(f"this equation has {len(labels)} distinct labels; numpy.einsum, which "
                         f"computes its non-numeric dtype, takes at most {len(_LETTERS)}")
    return subscripts.translate({ord(c): _LETTERS[k] for k, c in enumerate(labels)})


def _fresh_if_empty(arg: Any) -> Any:
    """A fresh copy of an empty view (free), else ``arg``.

    numpy.einsum corrupts the heap for some empty clongdouble views that need no cast while
    another operand does (numpy 2.4: ``a = np.zeros((3, 2), np.clongdouble)[:2, :0];
    np.einsum('ij,->ij', a, 3.0)``, then "munmap_chunk(): invalid pointer"); a fresh empty
    array does not trigger it.
    """
    if isinstance(arg, np.ndarray) and arg.size == 0:
        return arg.copy()
    return arg
