"""Numba kernels: plain ``@njit`` loops over 1-D buffers, int64 extents and element strides."""

from .gemm import gemm_parallel, gemm_serial
from .sum_products import sum_products_parallel, sum_products_serial
from .table_products import table_products_parallel, table_products_serial

# every compiled dispatcher, for specialization counts (tests, asv track_* benchmarks)
KERNELS = (sum_products_serial, sum_products_parallel, table_products_serial,
           table_products_parallel, gemm_serial, gemm_parallel)

__all__ = [
    "KERNELS",
    "gemm_parallel",
    "gemm_serial",
    "sum_products_parallel",
    "sum_products_serial",
    "table_products_parallel",
    "table_products_serial",
]
