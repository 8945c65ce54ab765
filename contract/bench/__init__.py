"""Benchmark tooling (not imported by the engine)."""
