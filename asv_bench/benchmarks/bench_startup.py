"""Start-up costs: ``import contract``, first-call latency (cold and warm disk cache), and the
number of compiled kernel specializations.

``timeraw_*`` benchmarks run their code in a fresh interpreter. "Cold" points ``NUMBA_CACHE_DIR``
at a new empty temporary directory, so the first call compiles; "warm" reuses a directory that
``setup`` filled by running the same call once in another process, so the first call only loads
from the cache.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

try:
    from contract.bench.cases import CASES, get_case
except ImportError:  # commits from before the contract.bench subpackage
    from contract.bench_cases import CASES, get_case

__all__ = ["FirstCall", "Import", "Specializations", "kernel_dispatchers"]

#: Cases whose first call is timed (one per kind of kernel, roughly).
FIRST_CALL_CASES = ["gemm_square", "hadamard_rowsum", "reduce_ijk_i", "trace", "dmrg_small"]
FIRST_CALL_DTYPES = ["float64", "int64"]


def kernel_dispatchers():
    """Every numba dispatcher reachable from ``contract.kernels``.

    Scans the attributes of ``contract.kernels`` and its submodules (and the values of dicts,
    lists and tuples held in them, where memoized per-dtype kernels may live) for
    ``numba.core.dispatcher.Dispatcher`` objects.

    Returns
    -------
    dict
        ``{qualified name: dispatcher}``.
    """
    import importlib
    import pkgutil

    from numba.core.dispatcher import Dispatcher

    package = importlib.import_module("contract.kernels")
    modules = [package]
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), package.__name__ + "."):
        modules.append(importlib.import_module(info.name))
    found = {}
    for module in modules:
        for name, value in vars(module).items():
            candidates = [(name, value)]
            if isinstance(value, dict):
                candidates += [(f"{name}[{k!r}]", v) for k, v in value.items()]
            elif isinstance(value, (list, tuple)):
                candidates += [(f"{name}[{i}]", v) for i, v in enumerate(value)]
            for label, obj in candidates:
                if isinstance(obj, Dispatcher):
                    found.setdefault(id(obj), (f"{module.__name__}.{label}", obj))
    return dict(found.values())


def _first_call_code(case, dtype):
    return textwrap.dedent(
        f"""
        try:
            from contract.bench.cases import get_case
        except ImportError:
            from contract.bench_cases import get_case
        _case = get_case({case!r})
        _operands = _case.make_operands({dtype!r})
        import contract
        """
    ), "contract.einsum(_case.subscripts, *_operands)"


_COLD_CACHE = textwrap.dedent(
    """
    import atexit, os, shutil, tempfile
    _cache = tempfile.mkdtemp(prefix="contract-asv-cold-")
    atexit.register(shutil.rmtree, _cache, True)
    os.environ["NUMBA_CACHE_DIR"] = _cache
    """
)


class Import:
    """Time of ``import contract`` in a fresh interpreter."""

    timeout = 120

    def timeraw_import_contract(self):
        return "import contract"

    def timeraw_import_numpy_numba(self):
        """Reference point: what contract's dependencies cost to import."""
        return "import numpy, numba, opt_einsum"


def _skip_unsupported():
    return [
        (c, d) for c in FIRST_CALL_CASES for d in FIRST_CALL_DTYPES if d not in get_case(c).dtypes
    ]


class FirstCall:
    """Latency of the first ``contract.einsum`` call in a fresh process (import excluded)."""

    params = [FIRST_CALL_CASES, FIRST_CALL_DTYPES]
    param_names = ["case", "dtype"]
    timeout = 600
    skip_params = _skip_unsupported()

    def setup(self, case, dtype):
        if dtype not in get_case(case).dtypes:
            raise NotImplementedError(f"{case} does not run for {dtype}")
        self.warm_cache = tempfile.mkdtemp(prefix="contract-asv-warm-")
        setup, code = _first_call_code(case, dtype)
        env = dict(os.environ, NUMBA_CACHE_DIR=self.warm_cache)
        subprocess.run([sys.executable, "-c", setup + code], env=env, check=True)

    def teardown(self, case, dtype):
        shutil.rmtree(self.warm_cache, ignore_errors=True)

    def timeraw_first_call_cold(self, case, dtype):
        setup, code = _first_call_code(case, dtype)
        return code, _COLD_CACHE + setup

    def timeraw_first_call_warm(self, case, dtype):
        setup, code = _first_call_code(case, dtype)
        prelude = f"import os\nos.environ['NUMBA_CACHE_DIR'] = {self.warm_cache!r}\n"
        return code, prelude + setup


class Specializations:
    """How many kernel specializations the whole benchmark suite compiles."""

    timeout = 1800
    unit = "signatures"

    def setup(self):
        if not kernel_dispatchers():
            raise NotImplementedError("no numba dispatchers found in contract.kernels")

    def _run_suite(self):
        import contract

        for case in CASES:
            for dtype in case.dtypes:
                contract.einsum(case.subscripts, *case.make_operands(dtype))

    def track_signatures_after_suite(self):
        """Sum of ``len(dispatcher.signatures)`` after one call of every (case, dtype)."""
        self._run_suite()
        return sum(len(d.signatures) for d in kernel_dispatchers().values())

    track_signatures_after_suite.unit = "signatures"

    def track_dispatchers(self):
        """Number of numba dispatchers (kernels) in ``contract.kernels``."""
        return len(kernel_dispatchers())

    track_dispatchers.unit = "kernels"
