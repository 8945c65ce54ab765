"""asv benchmarks for contract; the cases come from ``contract.bench.cases``."""

__all__: list[str] = []
