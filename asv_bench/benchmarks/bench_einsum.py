"""Steady-state timings of contract and its baselines on every case of ``contract.bench.cases``.

One class per category; each is parameterized over the category's case names and all dtypes.
Combinations a case does not run for, a matmul baseline for a case that is not a matrix product,
and numpy's naive loop where it would take longer than ``NAIVE_BUDGET`` seconds per call are
skipped before ``setup`` (asv's ``skip_params``); ``setup`` also raises ``NotImplementedError``
for them, for asv versions that ignore ``skip_params``. Operands are built and contract's kernels
compiled in ``setup``, so only steady-state calls are timed.
"""

import numpy as np
import opt_einsum

import contract

try:
    from contract.bench.cases import ALL_DTYPES, CASES, CATEGORIES, get_case
except ImportError:  # commits from before the contract.bench subpackage
    from contract.bench_cases import ALL_DTYPES, CASES, CATEGORIES, get_case

__all__ = [
    "Batched",
    "Diagonal",
    "Elementwise",
    "Gemm",
    "Jacobian",
    "Network",
    "Outer",
    "Tiny",
    "Ttgt",
]

#: numpy.einsum baselines predicted to take longer than this per call are skipped.
NAIVE_BUDGET = 2.0


def _params(category):
    return [[c.name for c in CASES if c.category == category], list(ALL_DTYPES)]


def _unsupported():
    return [(c.name, d) for c in CASES for d in ALL_DTYPES if d not in c.dtypes]


def _too_slow(optimize):
    return [
        (c.name, d)
        for c in CASES
        for d in c.dtypes
        if c.predicted_numpy_seconds(optimize) > NAIVE_BUDGET
    ]


def _skip(pairs):
    """Attach an asv ``skip_params`` list (invalid dtypes are always added)."""
    skip = sorted(set(_unsupported()) | set(pairs))

    def decorate(func):
        func.skip_params = skip
        return func

    return decorate


_NOT_MATMUL = [(c.name, d) for c in CASES for d in c.dtypes if c.matmul is None]
_NAIVE_TOO_SLOW = _too_slow(optimize=False)
_OPTIMIZE_TOO_SLOW = _too_slow(optimize=True)


class _EinsumBench:
    """Base class: one (case, dtype) per parameter combination."""

    params = [[], list(ALL_DTYPES)]
    param_names = ["case", "dtype"]
    timeout = 300
    skip_params = _unsupported()

    def setup(self, case, dtype):
        bench_case = get_case(case)
        if dtype not in bench_case.dtypes:
            raise NotImplementedError(f"{case} does not run for {dtype}")
        self.case = bench_case
        self.subscripts = bench_case.subscripts
        self.operands = bench_case.make_operands(dtype)
        self.matmul = bench_case.matmul
        # compile (or load from the disk cache) before timing
        contract.einsum(self.subscripts, *self.operands)
        self.expression = contract.contract_expression(
            self.subscripts, *[op.shape for op in self.operands]
        )
        self.expression(*self.operands)

    @_skip([])
    def time_contract(self, case, dtype):
        contract.einsum(self.subscripts, *self.operands)

    @_skip([])
    def time_contract_expression(self, case, dtype):
        self.expression(*self.operands)

    @_skip(_NAIVE_TOO_SLOW)
    def time_numpy_einsum_nooptimize(self, case, dtype):
        if self.case.predicted_numpy_seconds(optimize=False) > NAIVE_BUDGET:
            raise NotImplementedError("numpy's naive loop is too slow here")
        np.einsum(self.subscripts, *self.operands, optimize=False)

    @_skip(_OPTIMIZE_TOO_SLOW)
    def time_numpy_einsum_optimize(self, case, dtype):
        if self.case.predicted_numpy_seconds(optimize=True) > NAIVE_BUDGET:
            raise NotImplementedError("numpy's path falls back to a naive loop that is too slow")
        np.einsum(self.subscripts, *self.operands, optimize=True)

    @_skip([])
    def time_opt_einsum(self, case, dtype):
        opt_einsum.contract(self.subscripts, *self.operands)

    @_skip(_NOT_MATMUL)
    def time_numpy_matmul(self, case, dtype):
        if self.matmul is None:
            raise NotImplementedError("not a matrix product")
        self.matmul(*self.operands)


class Gemm(_EinsumBench):
    __doc__ = CATEGORIES["gemm"]
    params = _params("gemm")


class Ttgt(_EinsumBench):
    __doc__ = CATEGORIES["ttgt"]
    params = _params("ttgt")


class Batched(_EinsumBench):
    __doc__ = CATEGORIES["batched"]
    params = _params("batched")


class Elementwise(_EinsumBench):
    __doc__ = CATEGORIES["elementwise"]
    params = _params("elementwise")


class Diagonal(_EinsumBench):
    __doc__ = CATEGORIES["diagonal"]
    params = _params("diagonal")


class Outer(_EinsumBench):
    __doc__ = CATEGORIES["outer"]
    params = _params("outer")


class Network(_EinsumBench):
    __doc__ = CATEGORIES["network"]
    params = _params("network")


class Jacobian(_EinsumBench):
    __doc__ = CATEGORIES["jacobian"]
    params = _params("jacobian")


class Tiny(_EinsumBench):
    __doc__ = CATEGORIES["tiny"]
    params = _params("tiny")
