"""contract on dask arrays against ``dask.array.einsum(optimize=True)`` and opt_einsum's dask
backend, on dask's threaded scheduler (2 threads), small versions of the ``compare --dask`` cases
(:mod:`contract.bench.compare_dask` runs them at full size on a LocalCluster).

Skipped (``NotImplementedError`` in ``setup``) when dask is not installed. Operands are numpy
arrays wrapped in dask arrays in ``setup``; each sample builds the graph and computes it.
"""

import numpy as np

import contract

__all__ = ["DaskEinsum"]

# name -> (equation, shapes, chunk length per axis, dtype)
CASES = {
    "chain3": ("ij,jk,kl->il", [(600, 600)] * 3, 150, "float64"),
    "tccg_abc_dca": ("abc,dca->bd", [(96, 96, 96)] * 2, 48, "float64"),
    "batched_matmul": ("bij,bjk->bik", [(16, 200, 200)] * 2, 100, "float64"),
    "hadamard_reduce": ("ij,ij,ij->i", [(2000, 2000)] * 3, 500, "float64"),
    "int_matmul": ("ij,jk->ik", [(300, 300)] * 2, 150, "int64"),
}


class DaskEinsum:
    """One contraction on dask arrays, per method."""

    params = (list(CASES), ["contract", "dask.einsum", "opt_einsum"])
    param_names = ["case", "method"]
    timeout = 120

    def setup(self, case, method):
        try:
            import dask
            import dask.array as da
        except ImportError:
            raise NotImplementedError("dask is not installed") from None
        import opt_einsum

        equation, shapes, chunk, dtype = CASES[case]
        rng = np.random.default_rng(0)
        arrays = [(rng.random(s) * 8).astype(dtype) for s in shapes]
        self.ops = [da.from_array(a, chunks=chunk) for a in arrays]
        self.equation = equation
        self.run = {
            "contract": lambda: contract.einsum(equation, *self.ops),
            "dask.einsum": lambda: da.einsum(equation, *self.ops, optimize=True),
            "opt_einsum": lambda: opt_einsum.contract(equation, *self.ops, backend="dask"),
        }[method]
        self.config = dask.config.set(scheduler="threads", num_workers=2)
        self.config.__enter__()
        self.run().compute()  # first call: kernels loaded, caches filled

    def teardown(self, case, method):
        config = getattr(self, "config", None)
        if config is not None:
            config.__exit__(None, None, None)

    def time_einsum(self, case, method):
        self.run().compute()
