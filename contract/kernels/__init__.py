"""Numba kernels: plain ``@njit`` loops over 1-D buffers, int64 extents and element strides."""

from .sum_products import KERNELS, sum_products_parallel, sum_products_serial

__all__ = ["KERNELS", "sum_products_parallel", "sum_products_serial"]
