"""``python -m contract compare --njit``: ``contract.einsum`` called from inside ``@njit`` code.

The case family of issue 14, each against the baseline it names: a hand-written njit loop (a tiny
product called many times), ``contract.einsum`` called from Python (a large matrix product, a
batched product, an integer product) and ``numpy.einsum(optimize=True)`` (three-operand chains
whose best order depends on the shapes). Results are checked against ``numpy.einsum`` first; the
first call of each jitted function (its compile, with the project's kernels from Numba's cache
when they are there) is reported apart; then the engines are timed interleaved, and the table
shows medians and ratios (x > 1: the njit call is faster).

Needs the ``njit`` extra (SciPy, for the BLAS steps inside jitted code).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["main", "CASES"]

#: calls per sample of the tiny case, inside one jitted loop (a call costs tens of nanoseconds)
TINY_CALLS = 10_000


@dataclass(frozen=True)
class NjitCase:
    """One case: the subscripts, the operand shapes and dtype, the baseline it is measured
    against, and whether the timed call loops ``TINY_CALLS`` times inside the jitted code."""

    name: str
    subscripts: str
    shapes: tuple[tuple[int, ...], ...]
    dtype: str
    baseline: str  # "hand loop", "contract from Python" or "numpy optimize=True"
    loop: bool = False


CASES = (
    NjitCase("njit_tiny_4x4", "ij,jk->ik", ((4, 4), (4, 4)), "float64", "hand loop", loop=True),
    NjitCase("njit_gemm_1000", "ij,jk->ik", ((1000, 1000), (1000, 1000)), "float64",
             "contract from Python"),
    NjitCase("njit_bmm", "bij,bjk->bik", ((64, 64, 64), (64, 64, 64)), "float64",
             "contract from Python"),
    NjitCase("njit_int_gemm", "ij,jk->ik", ((300, 300), (300, 300)), "int64",
             "contract from Python"),
    NjitCase("njit_chain_wide", "ij,jk,kl->il", ((2000, 10), (10, 2000), (2000, 10)), "float64",
             "numpy optimize=True"),
    NjitCase("njit_chain_narrow", "ij,jk,kl->il", ((10, 2000), (2000, 10), (10, 2000)),
             "float64", "numpy optimize=True"),
)


def _jitted(case: NjitCase) -> tuple[Callable, Callable, Callable]:
    """(the jitted call, the baseline, numpy's reference) for ``case``; each takes the operands.

    A jitted function is made per case (its subscripts are a compile-time literal), so each case
    compiles one function of the user's, as a user's code would.
    """
    import numba

    import contract

    sub = case.subscripts
    if case.loop:
        @numba.njit
        def in_njit(a, b):
            s = 0.0
            for _ in range(TINY_CALLS):
                s += contract.einsum(sub, a, b)[0, 0]
            return s

        @numba.njit
        def hand(a, b):
            s = 0.0
            for _ in range(TINY_CALLS):
                out = np.empty((a.shape[0], b.shape[1]))
                for i in range(a.shape[0]):
                    for k in range(b.shape[1]):
                        acc = 0.0
                        for j in range(a.shape[1]):
                            acc += a[i, j] * b[j, k]
                        out[i, k] = acc
                s += out[0, 0]
            return s

        return in_njit, hand, lambda a, b: TINY_CALLS * np.einsum(sub, a, b)[0, 0]
    if len(case.shapes) == 2:
        @numba.njit
        def in_njit(a, b):
            return contract.einsum(sub, a, b)
    else:
        @numba.njit
        def in_njit(a, b, c):
            return contract.einsum(sub, a, b, c)
    if case.baseline == "numpy optimize=True":
        def baseline(*ops):
            return np.einsum(sub, *ops, optimize=True)
    else:
        def baseline(*ops):
            return contract.einsum(sub, *ops)
    return in_njit, baseline, lambda *ops: np.einsum(sub, *ops, optimize=True)


def _operands(case: NjitCase) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    if case.dtype == "int64":
        return [rng.integers(-3, 4, size=s).astype(np.int64) for s in case.shapes]
    return [rng.random(s) for s in case.shapes]


def _sample(fn: Callable[[], object], min_seconds: float) -> float:
    """Seconds per call, over enough calls to last ``min_seconds``."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def run_case(case: NjitCase, repeat: int, min_seconds: float) -> dict:
    """Check, compile and time one case; a dict of its numbers (seconds)."""
    ops = _operands(case)
    in_njit, baseline, reference = _jitted(case)
    start = time.perf_counter()
    result = in_njit(*ops)
    first_call = time.perf_counter() - start
    expected = reference(*ops)
    if case.dtype == "int64":
        ok = np.array_equal(result, expected)
    else:
        scale = max(1.0, float(np.abs(expected).max()))
        ok = np.allclose(result, expected, rtol=1e-10, atol=1e-10 * scale)
    if not ok:
        return {"case": case.name, "wrong": True, "first_call": first_call}
    baseline(*ops)
    samples: dict[str, list[float]] = {"njit": [], "baseline": []}
    for k in range(repeat):  # interleaved, the starting engine alternating
        order = ("njit", "baseline") if k % 2 == 0 else ("baseline", "njit")
        for engine in order:
            fn = in_njit if engine == "njit" else baseline
            samples[engine].append(_sample(lambda f=fn: f(*ops), min_seconds))
    njit, base = statistics.median(samples["njit"]), statistics.median(samples["baseline"])
    per_call = TINY_CALLS if case.loop else 1
    return {"case": case.name, "subscripts": case.subscripts, "dtype": case.dtype,
            "baseline": case.baseline, "first_call": first_call, "njit": njit / per_call,
            "baseline_time": base / per_call, "speedup": base / njit, "samples": samples,
            "wrong": False}


def _fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g}{unit}"
    return f"{seconds / 1e-9:.3g}ns"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the njit case family; 0 on success, 1 when a result was wrong."""
    parser = argparse.ArgumentParser(
        prog="python -m contract compare --njit",
        description="Time contract.einsum called inside @njit code against the baselines of "
        "issue 14 (interleaved samples, medians).")
    parser.add_argument("--filter", metavar="REGEX", help="only cases whose name matches REGEX")
    parser.add_argument("--repeat", type=int, default=7, metavar="N",
                        help="samples per engine (default 7)")
    parser.add_argument("--min-sample", type=float, default=0.05, metavar="SECONDS",
                        help="each sample lasts at least this long (default 0.05)")
    parser.add_argument("--json", metavar="FILE", help="write all numbers here")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    cases = [c for c in CASES if not args.filter or re.search(args.filter, c.name)]
    records = []
    print("contract.einsum inside @njit; x = baseline time / njit time (>1: njit is faster); "
          f"medians of {args.repeat} interleaved samples; first call = compile of the jitted "
          "function (project kernels from the disk cache when present)")
    header = (f"{'case':<18} {'dtype':<8} {'subscripts':<14} {'njit':>9} {'baseline':>9} "
              f"{'x':>6}  {'first call':>10}  baseline")
    print(header)
    print("-" * len(header))
    failed = 0
    for case in cases:
        record = run_case(case, args.repeat, args.min_sample)
        records.append(record)
        if record["wrong"]:
            failed += 1
            print(f"{case.name:<18} {case.dtype:<8} {case.subscripts:<14} WRONG")
            continue
        print(f"{case.name:<18} {case.dtype:<8} {case.subscripts:<14} "
              f"{_fmt(record['njit']):>9} {_fmt(record['baseline_time']):>9} "
              f"{record['speedup']:>5.2f}x  {_fmt(record['first_call']):>10}  {case.baseline}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cases": records}, fh, indent=1)
    return 1 if failed else 0
