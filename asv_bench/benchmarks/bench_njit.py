"""``contract.einsum`` called from inside ``@njit`` code (``contract.numba_ext``), against the
baselines issue 14 names: a hand-written njit loop (tiny), ``contract.einsum`` called from
Python (large matrix product, batched and integer products), ``numpy.einsum(optimize=True)``
(chains); and the first-call (compile) latency of a jitted function that calls it.

Jitted functions are compiled in ``setup`` (a first call), so only steady-state calls are timed.
"""

import os
import subprocess
import sys
import tempfile
import textwrap

import numba
import numpy as np

import contract

__all__ = ["NjitTiny", "NjitLarge", "NjitBatched", "NjitChain", "NjitFirstCall"]

#: calls per timed sample of the tiny case (the per-call cost is tens of nanoseconds)
TINY_CALLS = 10_000


@numba.njit
def tiny_einsum_loop(a, b, n):
    s = 0.0
    for _ in range(n):
        s += contract.einsum("ij,jk->ik", a, b)[0, 0]
    return s


@numba.njit
def tiny_hand_loop(a, b, n):
    s = 0.0
    for _ in range(n):
        out = np.empty((a.shape[0], b.shape[1]))
        for i in range(a.shape[0]):
            for k in range(b.shape[1]):
                acc = 0.0
                for j in range(a.shape[1]):
                    acc += a[i, j] * b[j, k]
                out[i, k] = acc
        s += out[0, 0]
    return s


@numba.njit
def matmul_njit(a, b):
    return contract.einsum("ij,jk->ik", a, b)


@numba.njit
def bmm_njit(a, b):
    return contract.einsum("bij,bjk->bik", a, b)


@numba.njit
def chain_njit(a, b, c):
    return contract.einsum("ij,jk,kl->il", a, b, c)


class NjitTiny:
    """4x4 ``ij,jk->ik`` in an njit loop of ``TINY_CALLS`` calls, and the hand-written loop."""

    def setup(self):
        rng = np.random.default_rng(0)
        self.a, self.b = rng.random((4, 4)), rng.random((4, 4))
        tiny_einsum_loop(self.a, self.b, 1)
        tiny_hand_loop(self.a, self.b, 1)

    def time_einsum_in_njit(self):
        tiny_einsum_loop(self.a, self.b, TINY_CALLS)

    def time_hand_loop(self):
        tiny_hand_loop(self.a, self.b, TINY_CALLS)


class NjitLarge:
    """1000x1000 ``ij,jk->ik``: inside njit, and ``contract.einsum`` from Python."""

    def setup(self):
        rng = np.random.default_rng(0)
        self.a, self.b = rng.random((1000, 1000)), rng.random((1000, 1000))
        matmul_njit(self.a, self.b)
        contract.einsum("ij,jk->ik", self.a, self.b)

    def time_njit(self):
        matmul_njit(self.a, self.b)

    def time_python(self):
        contract.einsum("ij,jk->ik", self.a, self.b)


class NjitBatched:
    """``bij,bjk->bik`` on (64, 64, 64) float64 (one BLAS call per batch item inside njit) and
    ``ij,jk->ik`` on 300x300 int64 (the blocked GEMM kernel): inside njit, and from Python."""

    params = [["bmm_float64", "gemm_int64"]]
    param_names = ["case"]
    CASES = {"bmm_float64": ("bij,bjk->bik", (64, 64, 64), np.float64),
             "gemm_int64": ("ij,jk->ik", (300, 300), np.int64)}

    def setup(self, case):
        self.subscripts, shape, dtype = self.CASES[case]
        rng = np.random.default_rng(0)
        self.a, self.b = (rng.integers(-3, 4, shape).astype(dtype) for _ in range(2))
        self.njit = bmm_njit if case == "bmm_float64" else matmul_njit
        self.njit(self.a, self.b)
        contract.einsum(self.subscripts, self.a, self.b)

    def time_njit(self, case):
        self.njit(self.a, self.b)

    def time_python(self, case):
        contract.einsum(self.subscripts, self.a, self.b)


class NjitChain:
    """``ij,jk,kl->il`` with the two shape sets of issue 14: inside njit (order picked from the
    shapes at run time) and ``numpy.einsum(optimize=True)``."""

    params = [["wide", "narrow"]]
    param_names = ["shapes"]
    SHAPES = {"wide": [(2000, 10), (10, 2000), (2000, 10)],
              "narrow": [(10, 2000), (2000, 10), (10, 2000)]}

    def setup(self, shapes):
        rng = np.random.default_rng(0)
        self.ops = [rng.random(s) for s in self.SHAPES[shapes]]
        chain_njit(*self.ops)

    def time_njit(self, shapes):
        chain_njit(*self.ops)

    def time_numpy_optimize(self, shapes):
        np.einsum("ij,jk,kl->il", *self.ops, optimize=True)


class NjitFirstCall:
    """First call of a new jitted function that calls ``contract.einsum``, in a fresh
    interpreter: the project's kernels and helpers are in the disk cache (``setup`` runs the same
    code once), the user's function is compiled (it is not cached)."""

    timeout = 600
    CACHE = os.path.join(tempfile.gettempdir(), "contract-njit-bench-cache")

    def setup(self):
        env = {**os.environ, "NUMBA_CACHE_DIR": self.CACHE}
        subprocess.run([sys.executable, "-c", self._code()], env=env, check=True)

    def _code(self):
        return textwrap.dedent(f"""
            import os
            os.environ["NUMBA_CACHE_DIR"] = {self.CACHE!r}
            import numba, numpy as np, contract
            @numba.njit
            def f(a, b):
                return contract.einsum("ij,jk->ik", a, b)
            f(np.ones((3, 3)), np.ones((3, 3)))
        """)

    def timeraw_first_call_matmul(self):
        return self._code()
