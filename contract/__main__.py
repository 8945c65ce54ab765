"""The command line: ``python -m contract explain ...`` and ``python -m contract compare ...``."""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

__all__ = ["main"]


def _parse_shape(text: str) -> tuple[int, ...]:
    text = text.strip().lower()
    if text in ("", "()", "scalar"):
        return ()
    try:
        return tuple(int(d) for d in text.replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a shape: {text!r} (write e.g. 300x400)") from None


def _operands(shapes: list[tuple[int, ...]], dtype: np.dtype, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if dtype.kind in "iub":
        return [rng.integers(0, 4, size=s).astype(dtype) for s in shapes]
    ops = [rng.standard_normal(s) for s in shapes]
    if dtype.kind == "c":
        ops = [o + 1j * rng.standard_normal(s) for o, s in zip(ops, shapes)]
    return [np.asarray(o, dtype=dtype) for o in ops]


def _median_time(func, min_time: float = 0.2, max_repeats: int = 50) -> float:
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_time and len(times) < max_repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def explain(argv: list[str]) -> int:
    """Print the plan of one contraction and time it once against numpy.einsum."""
    parser = argparse.ArgumentParser(
        prog="python -m contract explain",
        description="Show how contract plans and runs an einsum, and time it against numpy.",
    )
    parser.add_argument("subscripts", help="einsum subscripts, e.g. 'ij,jk->ik'")
    parser.add_argument("shapes", nargs="+", type=_parse_shape, help="operand shapes, e.g. 300x400")
    parser.add_argument("--dtype", default="float64", help="operand dtype (default float64)")
    parser.add_argument("--optimize", default="auto", help="path optimizer (default auto)")
    parser.add_argument("--no-time", action="store_true", help="only print the plan")
    args = parser.parse_args(argv)

    import contract

    dtype = np.dtype(args.dtype)
    optimize = {"true": True, "false": False}.get(args.optimize.lower(), args.optimize)
    _, info = contract.contract_path(
        args.subscripts, *args.shapes, shapes=True, optimize=optimize, dtype=dtype
    )
    print(info)
    if args.no_time:
        return 0
    ops = _operands(args.shapes, dtype)
    t0 = time.perf_counter()
    result = contract.einsum(args.subscripts, *ops, optimize=optimize)
    first = time.perf_counter() - t0
    expected = np.einsum(args.subscripts, *ops, optimize=True)
    ok = np.allclose(result, expected, rtol=1e-3 if dtype.itemsize <= 8 else 1e-9, atol=1e-3)
    print("-" * 78)
    print(f"result matches numpy.einsum: {'yes' if ok else 'NO'}")
    print(f"first call (plan + compile or cache load): {first * 1e3:.2f} ms")
    timings = {
        "contract.einsum": lambda: contract.einsum(args.subscripts, *ops, optimize=optimize),
        "numpy.einsum(optimize=True)": lambda: np.einsum(args.subscripts, *ops, optimize=True),
        "numpy.einsum(optimize=False)": lambda: np.einsum(args.subscripts, *ops, optimize=False),
    }
    ours = _median_time(timings["contract.einsum"])
    print(f"{'contract.einsum':<30} {ours * 1e3:10.3f} ms")
    for name, func in list(timings.items())[1:]:
        t = _median_time(func)
        print(f"{name:<30} {t * 1e3:10.3f} ms   contract is {t / ours:6.2f}x faster")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m contract``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = (
        "usage: python -m contract {explain,compare} ...\n"
        "  explain SUBSCRIPTS SHAPE [SHAPE ...] [--dtype D]   show and time one plan\n"
        "  compare [--quick] [--filter RE] [--json F]         benchmark against numpy"
    )
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "explain":
        return explain(rest)
    if command == "compare":
        from .bench.compare import main as compare_main

        return compare_main(rest)
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
