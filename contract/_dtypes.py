"""Dtype rules: which dtypes the engine runs, the dtype it computes in, and numpy's casts.

Every rule about dtypes lives here, so that a new dtype (or a backend with its own dtype set)
changes one module: the API asks :func:`runs_natively` and :func:`result_dtype`, the planner asks
:func:`blas_capable` and :func:`gemm_capable`, the executor hands the kernels
:func:`kernel_dtype` views.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .layout import needs_copy

__all__ = [
    "as_result",
    "blas_capable",
    "check_operand_casts",
    "computation_dtype",
    "gemm_capable",
    "in_dtype",
    "is_long_double",
    "is_native",
    "kernel_dtype",
    "result_dtype",
    "runs_natively",
    "widen_for_out",
]


def is_native(dtype: np.dtype) -> bool:
    """True for the dtypes the kernels run: bool, ints, float16/32/64, complex64/128.

    ``longdouble``/``clongdouble`` (kind ``'f'``/``'c'`` but wider than Numba supports) and
    every non-numeric dtype are delegated to numpy.
    """
    return dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize <= 8) or (
        dtype.kind == "c" and dtype.itemsize <= 16)


def is_long_double(dtype: np.dtype) -> bool:
    """True for ``longdouble`` and ``clongdouble`` (wider than float64/complex128)."""
    return (dtype.kind == "f" and dtype.itemsize > 8) or (dtype.kind == "c" and dtype.itemsize > 16)


def runs_natively(arrays: Sequence[np.ndarray], dtype: Any) -> bool:
    """True when the kernels handle every operand (and ``dtype=``); else numpy.einsum does."""
    return all(is_native(a.dtype) for a in arrays) and (
        dtype is None or is_native(np.dtype(dtype)))


def computation_dtype(result: np.dtype) -> np.dtype:
    """The dtype the kernels run in: bool counts in int64, float16 accumulates in float32."""
    if result.kind == "b":
        return np.dtype(np.int64)
    if result == np.float16:
        return np.dtype(np.float32)
    return result.newbyteorder("=")


def kernel_dtype(comp: np.dtype) -> np.dtype:
    """The dtype a computation in ``comp`` is compiled for: unsigned ints run as the signed int
    of their width.

    Sums and products of n-bit integers wrap modulo ``2**n`` whether the bits are read as signed
    or unsigned, so a uint64 step run on int64 views of its buffers gives the same bits as a
    uint64 kernel would: one compiled kernel serves both, and the unsigned dtypes cost no compile
    time of their own.
    """
    if comp.kind == "u":
        return np.dtype(f"i{comp.itemsize}")
    return comp


def blas_capable(dtype: np.dtype) -> bool:
    """True when BLAS (through numpy's matmul) computes this dtype: float and complex."""
    return dtype.kind in "fc"


def gemm_capable(dtype: np.dtype) -> bool:
    """True when the project's blocked GEMM kernel computes this dtype (every native one)."""
    return dtype.kind in "iufcb"


def result_dtype(arrays: Sequence[np.ndarray], dtype: Any, casting: str) -> np.dtype:
    """numpy's result dtype (``dtype=`` if given), after checking every operand may be cast to
    it under ``casting`` (TypeError naming the operand otherwise)."""
    result = np.result_type(*arrays) if dtype is None else np.dtype(dtype)
    check_operand_casts(arrays, result, casting)
    return result


def check_operand_casts(arrays: Sequence[np.ndarray], result: np.dtype, casting: str) -> None:
    """numpy's TypeError for the first operand that ``casting`` does not allow to cast."""
    for k, arr in enumerate(arrays):
        if not np.can_cast(arr.dtype, result, casting=casting):
            raise TypeError(f"Cannot cast einsum operand {k} from {arr.dtype!r} to {result!r} "
                            f"according to the rule {casting!r}")


def widen_for_out(result: np.dtype, out: Any, dtype: Any) -> np.dtype:
    """numpy's einsum computes in the common dtype of the operands *and* ``out`` (unless
    ``dtype=`` is given): ``einsum('i->', [True, True], out=int8_array)`` is 2, not True."""
    if dtype is None and isinstance(out, np.ndarray) and is_native(out.dtype):
        return np.result_type(result, out.dtype)
    return result


def in_dtype(arrays: Sequence[np.ndarray], comp: np.dtype) -> list[np.ndarray]:
    """The operands as the kernels take them: of dtype ``comp``, native and aligned."""
    return [a if a.dtype == comp and not needs_copy(a) else a.astype(comp) for a in arrays]


def as_result(target: np.ndarray, result: np.dtype) -> Any:
    """A computed array as numpy returns it: in ``result``'s dtype, a scalar when 0-d."""
    if result.kind == "b":
        target = target != 0
    elif target.dtype != result:
        target = target.astype(result)
    return target[()] if target.ndim == 0 else target
