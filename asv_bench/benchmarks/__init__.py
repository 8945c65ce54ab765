"""asv benchmarks for contract; the cases come from ``contract.bench_cases``."""

__all__: list[str] = []
