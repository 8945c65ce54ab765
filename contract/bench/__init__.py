"""Benchmark tooling, kept out of the runtime import path: ``import contract`` never loads it.

- :mod:`contract.bench.cases`: the one table of benchmark cases (asv, ``compare`` and tests);
- :mod:`contract.bench.compare`: ``python -m contract compare``;
- :mod:`contract.bench.compare_njit`: ``python -m contract compare --njit``;
- :mod:`contract.bench.compare_dask`: ``python -m contract compare --dask``.
"""
