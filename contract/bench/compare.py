"""``python -m contract compare``: time contract against numpy and opt_einsum on the bench cases.

Everything runs in one process. For each (case, dtype) pair the result of ``contract.einsum`` is
first checked against ``numpy.einsum`` (a wrong answer is reported as WRONG, never timed, and
makes the exit code nonzero); then contract and every baseline are timed *interleaved*: each
repeat takes one sample of every engine in turn (round-robin, starting position rotated), so the
noise of a shared machine hits all of them alike, and the table reports medians.

Each sample runs an engine ``number`` times, with ``number`` chosen so that a sample lasts at
least ``--min-sample`` seconds. A baseline whose single call exceeds ``--budget`` seconds (or is
predicted to, from opt_einsum's cost of the path numpy would take) is skipped and shown as '—'.

Before and after the cases, the machine's peak is measured briefly (the better of the two is
kept): BLAS GEMM throughput (float64 and float32 ``numpy.matmul`` on 2000x2000, best of a few)
and memory bandwidth (``numpy.copyto`` and ``sum`` over a 200 MB and a 16 MB array). Each
case's achieved rate is reported against its roofline bound:
``min(peak GEMM, arithmetic intensity * bandwidth)``.

``--threads N`` limits BLAS, OpenMP and Numba to N threads for every engine: on a busy machine
multi-threaded timings are dominated by scheduling (a BLAS call waiting a whole time slice for its
second thread), and single-threaded numbers are the steadier comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contract.bench.cases import (
    ALL_DTYPES,
    NETWORK_CATEGORY,
    BenchCase,
    check_result,
    get_case,
    select,
)

__all__ = ["main"]

_DASH = "\u2014"


# ---------------------------------------------------------------------------------- engines
@dataclass
class _Engine:
    """One thing that is timed: contract, or a baseline."""

    key: str
    label: str
    baseline: bool
    #: make(case, operands) -> a zero-argument callable, or a string saying why it does not apply
    make: Callable[[BenchCase, list[np.ndarray]], Callable[[], Any] | str]
    #: the engine a baseline's speedup is measured against (``contract``, or ``contract_path``
    #: for the engines that run the shared path)
    versus: str = "contract"


#: the peers that plan their own path (a per-instance "best peer" is the fastest of them)
_PEERS = ("sesum", "cotengra", "opt_einsum", "numpy_optimize")
_PATHS: dict[str, dict[str, Any]] = {}


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _network_like(case: BenchCase) -> bool:
    """Cases on which every engine plans once, outside the timing (the generated networks)."""
    return case.category == NETWORK_CATEGORY


def _case_paths(case: BenchCase) -> dict[str, Any]:
    """Each path-finding engine's path for ``case`` (planned once, timed) and the shared path:
    the one with the fewest FLOPs, which the ``@path`` engines all run."""
    if case.name in _PATHS:
        return _PATHS[case.name]
    import warnings

    import opt_einsum

    import contract

    shapes = case.shapes
    dummies = [np.broadcast_to(np.zeros((), np.float64), s) for s in shapes]
    found: dict[str, dict[str, Any]] = {}

    def record(key: str, plan: Callable[[], Any]) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                path, extra = plan()
                seconds = time.perf_counter() - start
            path = [tuple(int(i) for i in p) for p in path]
            _, info = opt_einsum.contract_path(case.subscripts, *shapes, shapes=True,
                                               optimize=path)
            found[key] = {"path": path, "planning": seconds, "flops": int(info.opt_cost),
                          **extra}
        except Exception as exc:  # noqa: BLE001 - a peer that cannot plan is reported
            found[key] = {"error": _exception_text(exc)}

    def plan_contract():
        path, info = contract.contract_path(*case.einsum_args(dummies))
        return path, {"optimizer": info.optimizer, "search": info.path_search}

    record("contract", plan_contract)
    if _available("sesum") and "." not in case.subscripts:
        import sesum

        record("sesum", lambda: (sesum.compute_path(case.subscripts, *shapes,
                                                    minimize="flops")[0], {}))
    if _available("cotengra") and "." not in case.subscripts:
        import cotengra

        record("cotengra", lambda: (cotengra.einsum_tree(case.subscripts, *shapes).get_path(),
                                    {}))
    record("opt_einsum", lambda: (opt_einsum.contract_path(case.subscripts, *shapes,
                                                           shapes=True)[0], {}))
    if case.numpy_compatible:
        record("numpy_optimize", lambda: (np.einsum_path(case.subscripts, *dummies,
                                                         optimize=True)[0][1:], {}))
    usable = {k: v for k, v in found.items() if "path" in v}
    shared = min(usable, key=lambda k: (usable[k]["flops"], k != "contract"))
    _PATHS[case.name] = {"engines": found, "shared": shared, "path": usable[shared]["path"]}
    return _PATHS[case.name]


def _engines(with_expression: bool, same_path: bool = False) -> list[_Engine]:
    import opt_einsum

    import contract

    def make_contract(case: BenchCase, ops: list[np.ndarray]) -> Callable[[], Any]:
        args = case.einsum_args(ops)
        return lambda: contract.einsum(*args)

    def make_expression(case: BenchCase, ops: list[np.ndarray]) -> Callable[[], Any] | str:
        if not case.numpy_compatible:
            return "more than 52 labels"
        expr = contract.contract_expression(case.subscripts, *[op.shape for op in ops])
        return lambda: expr(*ops)

    def make_numpy(case: BenchCase, ops: list[np.ndarray]) -> Callable[[], Any] | str:
        if not case.numpy_compatible:
            return "more than 52 labels (numpy's limit)"
        return lambda: np.einsum(case.subscripts, *ops, optimize=False)

    def make_numpy_opt(case: BenchCase, ops: list[np.ndarray]) -> Callable[[], Any] | str:
        if not case.numpy_compatible:
            return "more than 52 labels (numpy's limit)"
        if _network_like(case):  # numpy's own greedy path, found once
            path = ["einsum_path", *_case_paths(case)["engines"]["numpy_optimize"]["path"]]
            return lambda: np.einsum(case.subscripts, *ops, optimize=path)
        return lambda: np.einsum(case.subscripts, *ops, optimize=True)

    def make_opt_einsum(case: BenchCase, ops: list[np.ndarray]) -> Callable[[], Any]:
        if _network_like(case):  # planned once, as contract's cached plan is
            expr = opt_einsum.contract_expression(case.subscripts, *[op.shape for op in ops])
            return lambda: expr(*ops)
        return lambda: opt_einsum.contract(case.subscripts, *ops)

    def make_matmul(case: BenchCase, ops: list[np.ndarray]) -> Callable[[], Any] | str:
        if case.matmul is None:
            return "not a matrix product"
        matmul = case.matmul
        return lambda: matmul(*ops)

    def make_sesum(case: BenchCase, ops: list[np.ndarray]) -> Callable[[], Any] | str:
        if "." in case.subscripts:
            return "sesum takes no '...'"
        import sesum

        info = _case_paths(case)["engines"].get("sesum", {})
        if "path" not in info:
            return info.get("error", "no path")
        path = info["path"]
        return lambda: sesum.sesum(case.subscripts, *ops, path=path)

    def make_cotengra(case: BenchCase, ops: list[np.ndarray]) -> Callable[[], Any] | str:
        if "." in case.subscripts:
            return "cotengra's einsum takes no '...'"
        import cotengra

        expr = cotengra.einsum_expression(case.subscripts, *[op.shape for op in ops])
        return lambda: expr(*ops)

    def on_shared_path(kind: str) -> Callable[[BenchCase, list[np.ndarray]], Any]:
        def make(case: BenchCase, ops: list[np.ndarray]) -> Callable[[], Any] | str:
            if case.n_operands < 3 or "." in case.subscripts and kind in ("sesum", "cotengra"):
                return "no path to share"
            path = _case_paths(case)["path"]
            shapes = [op.shape for op in ops]
            if kind == "contract":
                args = case.einsum_args(ops)
                fixed = tuple(path)
                return lambda: contract.einsum(*args, optimize=fixed)
            if kind == "numpy":
                if not case.numpy_compatible:
                    return "more than 52 labels (numpy's limit)"
                explicit = ["einsum_path", *path]
                return lambda: np.einsum(case.subscripts, *ops, optimize=explicit)
            if kind == "opt_einsum":
                expr = opt_einsum.contract_expression(case.subscripts, *shapes, optimize=path)
                return lambda: expr(*ops)
            if kind == "sesum":
                import sesum

                return lambda: sesum.sesum(case.subscripts, *ops, path=path)
            import cotengra

            expr = cotengra.einsum_expression(case.subscripts, *shapes, optimize=path)
            return lambda: expr(*ops)

        return make

    engines = [_Engine("contract", "contract", False, make_contract)]
    if with_expression:
        engines.append(_Engine("contract_expression", "expr", False, make_expression))
    engines += [
        _Engine("numpy", "np", True, make_numpy),
        _Engine("numpy_optimize", "np(opt)", True, make_numpy_opt),
        _Engine("opt_einsum", "opt_einsum", True, make_opt_einsum),
        _Engine("matmul", "matmul", True, make_matmul),
    ]
    if _available("sesum"):
        engines.append(_Engine("sesum", "sesum", True, make_sesum))
    if _available("cotengra"):
        engines.append(_Engine("cotengra", "cotengra", True, make_cotengra))
    if same_path:
        engines.append(_Engine("contract_path", "c@path", False, on_shared_path("contract")))
        for key, label, needed in (
            ("numpy_path", "np@path", "numpy"),
            ("opt_einsum_path", "oe@path", "opt_einsum"),
            ("sesum_path", "sesum@path", "sesum"),
            ("cotengra_path", "ctg@path", "cotengra"),
        ):
            if needed in ("numpy", "opt_einsum") or _available(needed):
                engines.append(_Engine(key, label, True, on_shared_path(needed),
                                       versus="contract_path"))
    return engines


@dataclass
class _Timing:
    """Samples of one engine on one (case, dtype)."""

    status: str = "ok"  # ok | skipped | wrong | error
    reason: str = ""
    number: int = 0
    first_call: float = math.nan
    compile_call: float = math.nan
    samples: list[float] = field(default_factory=list)
    thunk: Callable[[], Any] | None = None
    spent: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.samples:
            ordered = sorted(self.samples)
            out.update(
                median=self.median,
                min=ordered[0],
                max=ordered[-1],
                q1=ordered[len(ordered) // 4],
                q3=ordered[(3 * len(ordered)) // 4],
                number=self.number,
                samples=self.samples,
            )
        if not math.isnan(self.first_call):
            out["first_call"] = self.first_call
        if not math.isnan(self.compile_call):
            out["compile_call"] = self.compile_call
        return out


def _run(thunk: Callable[[], Any], number: int) -> float:
    """Seconds for ``number`` calls, with the garbage collector off (as timeit does)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            thunk()
        return time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()


def _autonumber(thunk: Callable[[], Any], first_call: float, min_sample: float) -> int:
    """A ``number`` of calls whose sample lasts at least ``min_sample`` seconds."""
    if first_call >= min_sample:  # a first call may include warm-up or a preemption: once more
        first_call = min(first_call, _run(thunk, 1))
        if first_call >= min_sample:
            return 1
    number = max(1, int(min_sample / max(first_call, 1e-7)))
    for _ in range(20):
        # best of two, so that one slow run on a busy machine does not stop the search early
        elapsed = min(_run(thunk, number), _run(thunk, number))
        if elapsed >= min_sample:
            return number
        number = max(number * 2, math.ceil(number * 1.2 * min_sample / max(elapsed, 1e-9)))
    return number


# ---------------------------------------------------------------------------------- machine
def _machine_info() -> dict[str, Any]:
    import numba
    import opt_einsum

    import contract

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "opt_einsum": opt_einsum.__version__,
        "contract": getattr(contract, "__version__", "unknown"),
        "cpu_count": os.cpu_count(),
        "numba_num_threads": numba.config.NUMBA_NUM_THREADS,
    }
    if hasattr(os, "getloadavg"):
        info["load_average_start"] = os.getloadavg()
    if hasattr(os, "sched_getaffinity"):
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: v for k, v in pool.items() if k != "filepath"} for pool in threadpool_info()
        ]
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        info["blas"] = "threadpoolctl not installed"
    return info


def _measure_peaks(quick: bool) -> dict[str, float]:
    """Best-of-a-few GEMM throughput (flop/s) and memory bandwidth (bytes/s)."""
    n = 1000 if quick else 2000
    tries = 3 if quick else 4
    peaks: dict[str, float] = {"gemm_n": n}
    rng = np.random.default_rng(0)
    for dtype in ("float64", "float32"):
        a = rng.uniform(-1, 1, (n, n)).astype(dtype)
        b = rng.uniform(-1, 1, (n, n)).astype(dtype)
        c = np.empty((n, n), dtype)
        np.matmul(a, b, out=c)
        best = min(_run(lambda a=a, b=b, c=c: np.matmul(a, b, out=c), 1) for _ in range(tries))
        peaks[f"gemm_{dtype}"] = 2 * n**3 / best
        del a, b, c
    # numpy's (single-threaded) streaming rate; the best of a DRAM-sized and a cache-sized
    # array, so that cases whose operands stay in cache do not show far above 100%
    copy = total = math.inf
    for mbytes in (16, 100 if quick else 200):
        src = np.ones(mbytes * 2**20 // 8)
        dst = np.empty_like(src)
        np.copyto(dst, src)

        def copy_once(dst=dst, src=src):
            np.copyto(dst, src)

        copy = min(copy, *(_run(copy_once, 1) / src.nbytes for _ in range(5)))
        total = min(total, *(_run(src.sum, 1) / src.nbytes for _ in range(5)))
        del src, dst
    peaks["bandwidth_copy"] = 2 / copy
    peaks["bandwidth_sum"] = 1 / total
    peaks["bandwidth"] = max(peaks["bandwidth_copy"], peaks["bandwidth_sum"])
    return peaks


def _roofline(
    case: BenchCase, dtype: str, seconds: float, peaks: dict[str, float]
) -> dict[str, Any]:
    """Achieved rates and the fraction of the roofline bound."""
    flops = case.flops(dtype)
    nbytes = case.bytes_moved(dtype)
    peak_flops = peaks["gemm_float32"] if dtype == "float32" else peaks["gemm_float64"]
    peak_bw = peaks["bandwidth"]
    frac_flops = flops / seconds / peak_flops
    frac_bw = nbytes / seconds / peak_bw
    bound = "compute" if flops / nbytes > peak_flops / peak_bw else "memory"
    return {
        "flops": flops,
        "bytes": nbytes,
        "gflops": flops / seconds / 1e9,
        "gbytes_per_s": nbytes / seconds / 1e9,
        "bound": bound,
        "fraction_of_peak": max(frac_flops, frac_bw),
    }


# ---------------------------------------------------------------------------------- running
class _Progress:
    """A plain-text progress bar on stderr (one line per step when stderr is not a terminal)."""

    def __init__(self, total: int, enabled: bool = True, width: int = 30) -> None:
        self.total = total
        self.enabled = enabled
        self.width = width
        self.tty = sys.stderr.isatty()
        self.count = 0

    def step(self, text: str) -> None:
        if not self.enabled:
            return
        done = int(self.width * self.count / max(self.total, 1))
        bar = "#" * done + "." * (self.width - done)
        line = f"[{bar}] {self.count}/{self.total} {text}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.count += 1

    def close(self) -> None:
        if not self.enabled:
            return
        bar = "#" * self.width
        end = "\r\033[K" if self.tty else ""
        sys.stderr.write(f"{end}[{bar}] {self.total}/{self.total} done\n")
        sys.stderr.flush()


def _exception_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 300 else text[:297] + "..."


def _bench_pair(
    case: BenchCase,
    dtype: str,
    engines: list[_Engine],
    repeat: int,
    min_sample: float,
    budget: float,
    engine_cap: float,
) -> dict[str, _Timing]:
    """Check and time every engine on one (case, dtype), interleaved."""
    operands = case.make_operands(dtype)
    expected = case.reference(operands)
    timings: dict[str, _Timing] = {}
    if _network_like(case) or any(e.versus == "contract_path" for e in engines):
        _case_paths(case)  # plan every engine once, cold, before contract's first call plans

    for engine in engines:
        timing = _Timing()
        timings[engine.key] = timing
        try:
            thunk = engine.make(case, operands)
        except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
            timing.status, timing.reason = "error", _exception_text(exc)
            continue
        if isinstance(thunk, str):
            timing.status, timing.reason = "skipped", thunk
            continue
        if engine.key in ("numpy", "numpy_optimize"):
            predicted = case.predicted_numpy_seconds(optimize=engine.key == "numpy_optimize")
            if predicted > 5 * budget:
                timing.status = "skipped"
                timing.reason = f"predicted {predicted:.3g} s per call > budget {budget:g} s"
                continue
        try:
            start = time.perf_counter()
            result = thunk()
            timing.first_call = time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001
            timing.status, timing.reason = "error", _exception_text(exc)
            continue
        if not engine.baseline:
            problem = check_result(result, expected)
            if problem is not None:
                timing.status, timing.reason = "wrong", problem
                continue
            # the first call may have compiled: time a second one to calibrate
            timing.compile_call = timing.first_call
            start = time.perf_counter()
            thunk()
            timing.first_call = time.perf_counter() - start
        del result
        if timing.first_call > budget:
            timing.status = "skipped"
            timing.reason = f"one call took {timing.first_call:.3g} s > budget {budget:g} s"
            continue
        timing.thunk = thunk
        timing.number = _autonumber(thunk, timing.first_call, min_sample)

    active = [e.key for e in engines if timings[e.key].thunk is not None]
    for r in range(repeat):
        shift = r % len(active) if active else 0
        for key in active[shift:] + active[:shift]:
            timing = timings[key]
            if timing.thunk is None:
                continue
            elapsed = _run(timing.thunk, timing.number)
            timing.samples.append(elapsed / timing.number)
            timing.spent += elapsed
            if len(timing.samples) >= 3 and timing.spent > engine_cap:
                timing.thunk = None  # enough of a slow baseline
    for timing in timings.values():
        timing.thunk = None
    return timings


# ---------------------------------------------------------------------------------- output
def _fmt_time(seconds: float) -> str:
    if math.isnan(seconds):
        return _DASH
    if seconds >= 1.0:
        return f"{seconds:.3g}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g}ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3g}us"
    return f"{seconds * 1e9:.3g}ns"


def _fmt_ratio(ratio: float | None) -> str:
    if ratio is None or math.isnan(ratio):
        return _DASH
    return f"{ratio:.3g}x" if ratio < 100 else f"{ratio:.0f}x"


def _speedup(record: dict[str, Any], key: str, versus: str = "contract") -> float | None:
    engines = record["engines"]
    mine, theirs = engines.get(versus, {}), engines.get(key)
    if theirs is None or "median" not in mine or "median" not in theirs:
        return None
    return theirs["median"] / mine["median"]


def _table(records: list[dict[str, Any]], engines: list[_Engine]) -> str:
    headers = ["case", "dtype"]
    for engine in engines:
        headers.append(engine.label)
        if engine.baseline:
            headers.append("x")
    headers += ["rate", "%peak"]
    rows = []
    for rec in records:
        row = [rec["case"], rec["dtype"]]
        mine = rec["engines"]["contract"]
        for engine in engines:
            timing = rec["engines"][engine.key]
            if timing["status"] == "wrong":
                row.append("WRONG")
            elif timing["status"] == "error":
                row.append("ERROR")
            else:
                row.append(_fmt_time(timing.get("median", math.nan)))
            if engine.baseline:
                row.append(_fmt_ratio(_speedup(rec, engine.key, engine.versus)))
        if "median" in mine:
            roof = rec["roofline"]
            if roof["bound"] == "compute":
                row.append(f"{roof['gflops']:.3g} GF/s")
            else:
                row.append(f"{roof['gbytes_per_s']:.3g} GB/s")
            pct = 100 * roof["fraction_of_peak"]
            row.append(_DASH if math.isnan(pct) else f"{pct:.0f}%" if pct >= 10 else f"{pct:.2g}%")
        else:
            row += [_DASH, _DASH]
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for n, row in enumerate([headers, *rows]):
        cells = [
            str(cell).ljust(w) if i < 2 else str(cell).rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _summary(records: list[dict[str, Any]], engines: list[_Engine]) -> dict[str, Any]:
    summary: dict[str, Any] = {"baselines": {}}
    for engine in engines:
        if not engine.baseline:
            continue
        pairs = [
            (ratio, f"{rec['case']}/{rec['dtype']}")
            for rec in records
            if (ratio := _speedup(rec, engine.key, engine.versus)) is not None
        ]
        if not pairs:
            continue
        ratios = [p[0] for p in pairs]
        worst = min(pairs)
        best = max(pairs)
        summary["baselines"][engine.key] = {
            "label": engine.label,
            "versus": engine.versus,
            "cases": len(pairs),
            "geomean_speedup": math.exp(sum(math.log(r) for r in ratios) / len(ratios)),
            "worst_speedup": worst[0],
            "worst_case": worst[1],
            "best_speedup": best[0],
            "best_case": best[1],
            "slower_cases": sum(r < 1 for r in ratios),
        }
    for status in ("wrong", "error"):
        summary[status if status == "wrong" else "errors"] = [
            f"{rec['case']}/{rec['dtype']}" + ("" if e.key == "contract" else f" ({e.key})")
            for rec in records
            for e in engines
            if not e.baseline and rec["engines"][e.key]["status"] == status
        ]
    return summary


def _summary_text(summary: dict[str, Any]) -> str:
    parts = []
    for info in summary["baselines"].values():
        parts.append(
            f"  vs {info['label']:<10} geomean {_fmt_ratio(info['geomean_speedup']):>7} over "
            f"{info['cases']:>2} cases, worst {_fmt_ratio(info['worst_speedup'])} "
            f"({info['worst_case']}), best {_fmt_ratio(info['best_speedup'])} "
            f"({info['best_case']}), slower on {info['slower_cases']}"
        )
    lines = ["speedup of contract (baseline time / contract time):", *parts]
    if summary["wrong"]:
        lines.append(f"WRONG results: {', '.join(summary['wrong'])}")
    if summary["errors"]:
        lines.append(f"errors: {', '.join(summary['errors'])}")
    return "\n".join(lines)


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def _family(record: dict[str, Any]) -> str:
    """An einsum_benchmark network's family: its case name without the ``eb_`` prefix."""
    return record["case"].removeprefix("eb_")


def _network_summary(records: list[dict[str, Any]], engines: list[_Engine]) -> dict[str, Any]:
    """For cases whose paths were compared: per family and overall, the geometric mean of
    contract's speedup over each peer on its own path and on the shared path, over the best peer
    per instance, the path FLOP ratio against each peer and the planning times."""
    rows = [rec for rec in records if "paths" in rec and rec["category"] == NETWORK_CATEGORY]
    if not rows:
        return {}  # no network case ran: no table
    own = [e.key for e in engines if e.key in _PEERS]
    same = [e.key for e in engines if e.versus == "contract_path"]
    out: dict[str, Any] = {}
    for family in [*dict.fromkeys(_family(r) for r in rows), "all"]:
        group = [r for r in rows if family in ("all", _family(r))]
        entry: dict[str, Any] = {"instances": len(group)}
        for key in own + same:
            versus = "contract_path" if key in same else "contract"
            ratios = [x for r in group if (x := _speedup(r, key, versus)) is not None]
            entry[key] = _geomean(ratios)
        best = []
        for r in group:
            times = [r["engines"][k]["median"] for k in own if "median" in r["engines"][k]]
            mine = r["engines"]["contract"].get("median")
            if times and mine:
                best.append(min(times) / mine)
        entry["best_peer"] = _geomean(best)
        entry["best_peer_worst"] = min(best) if best else math.nan
        entry["below_half"] = sum(b < 0.5 for b in best)
        for key in ("sesum", "cotengra", "opt_einsum", "numpy_optimize"):
            ratios = []
            for r in group:
                paths = r["paths"]["engines"]
                if "flops" in paths.get(key, {}) and "flops" in paths.get("contract", {}):
                    ratios.append(paths["contract"]["flops"] / paths[key]["flops"])
            entry[f"flops_vs_{key}"] = _geomean(ratios)
        for key in ("contract", "sesum", "cotengra", "opt_einsum"):
            times = [r["paths"]["engines"][key]["planning"] for r in group
                     if "planning" in r["paths"]["engines"].get(key, {})]
            entry[f"planning_{key}"] = statistics.median(times) if times else math.nan
        out[family] = entry
    return out


def _network_text(summary: dict[str, Any], engines: list[_Engine]) -> str:
    labels = {e.key: e.label for e in engines}
    own = [k for k in _PEERS if k in labels]
    same = [e.key for e in engines if e.versus == "contract_path"]
    head = ["family", "n", *[f"vs {labels[k]}" for k in own], "vs best", "worst", "<0.5x",
            *[f"{labels[k]}" for k in same], "FLOPs/ctg", "FLOPs/sesum", "plan c", "plan ctg",
            "plan sesum"]
    rows = []
    for family, e in summary.items():
        rows.append([
            family, str(e["instances"]), *[_fmt_ratio(e[k]) for k in own],
            _fmt_ratio(e["best_peer"]), _fmt_ratio(e["best_peer_worst"]), str(e["below_half"]),
            *[_fmt_ratio(e[k]) for k in same],
            _fmt_ratio(e["flops_vs_cotengra"]), _fmt_ratio(e["flops_vs_sesum"]),
            _fmt_time(e["planning_contract"]), _fmt_time(e["planning_cotengra"]),
            _fmt_time(e["planning_sesum"]),
        ])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "networks: geometric means of contract's speedup (peer time / contract time); 'vs X' = "
        "each on its own path, 'X@path' = both on the shared (fewest-FLOP) path; vs best = over "
        "the fastest peer per instance; FLOPs/X = contract's path FLOPs / X's; plan = median "
        "planning time",
    ]
    for n, row in enumerate([head, *rows]):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _plot(records: list[dict[str, Any]], engines: list[_Engine], filename: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baselines = [e for e in engines if e.baseline]
    labels = [f"{r['case']}/{r['dtype']}" for r in records]
    width = 0.8 / max(len(baselines), 1)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.32 * len(labels) + 2), 5.5))
    for i, engine in enumerate(baselines):
        xs, ys = [], []
        for j, rec in enumerate(records):
            ratio = _speedup(rec, engine.key, engine.versus)
            if ratio is not None:
                xs.append(j + (i - (len(baselines) - 1) / 2) * width)
                ys.append(ratio)
        # bars grow from 1 (parity): up when contract is faster, down when it is slower
        heights = [y - 1.0 for y in ys]
        ax.bar(xs, heights, width=width, label=f"vs {engine.label}", bottom=1.0)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=75, ha="right", fontsize=7)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_ylabel("speedup of contract (baseline time / contract time)")
    ax.set_title("contract vs baselines (median of interleaved samples; >1 = contract faster)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(filename, dpi=120)
    plt.close(fig)


def _jsonable(obj: Any) -> Any:
    """Replace NaN/inf by None (strict JSON) and numpy scalars by Python ones."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _safe_print(text: str) -> None:
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        text = text.replace(_DASH, "-")
    print(text)


# ---------------------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m contract compare",
        description="Time contract against numpy.einsum, opt_einsum and numpy.matmul on the "
        "built-in benchmark cases (interleaved samples, medians).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="quick cases only, fewer repeats (under a minute)"
    )
    parser.add_argument("--filter", metavar="REGEX", help="only cases whose name matches REGEX")
    parser.add_argument(
        "--njit",
        action="store_true",
        help="run the family of calls from inside @njit code instead (its own options: "
        "--filter, --repeat, --min-sample, --json)",
    )
    parser.add_argument(
        "--dask",
        action="store_true",
        help="run the dask family on a LocalCluster instead (needs the dask extra; its own "
        "options: see --dask --help)",
    )
    parser.add_argument(
        "--dtype",
        action="append",
        metavar="DTYPE",
        help=f"only this dtype (repeatable or comma separated; one of {', '.join(ALL_DTYPES)})",
    )
    parser.add_argument(
        "--repeat", type=int, metavar="N", help="samples per engine (default 7; 3 with --quick)"
    )
    parser.add_argument(
        "--min-sample",
        type=float,
        default=0.002,
        metavar="SECONDS",
        help="each sample runs an engine often enough to last this long (default 0.002)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="skip a baseline whose single call takes longer (default 2)",
    )
    parser.add_argument(
        "--expression",
        action="store_true",
        help="also time contract.contract_expression (planned once, outside the timing)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="limit BLAS, OpenMP and Numba to N threads for every engine (default: all CPUs; "
        "--threads 1 gives steadier numbers on a busy machine)",
    )
    parser.add_argument("--json", metavar="FILE", help="write all numbers and machine info here")
    parser.add_argument(
        "--plot", metavar="FILE.png", help="bar chart of speedups (needs matplotlib)"
    )
    parser.add_argument(
        "--no-peak", action="store_true", help="skip measuring the machine's GEMM/memory peak"
    )
    parser.add_argument(
        "--same-path",
        action="store_true",
        help="also run every engine on one shared path (the fewest-FLOP path of contract, "
        "sesum, cotengra, opt_einsum and numpy); on by default for the einsum_benchmark networks",
    )
    parser.add_argument("--list", action="store_true", help="list the selected cases and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and print a table.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (without the program name); ``sys.argv[1:]`` when omitted.
        ``--help`` lists them.

    Returns
    -------
    int
        0 when every checked result is right, 1 when contract gave a wrong answer or raised,
        2 for a usage error (bad option, nothing selected, matplotlib missing for ``--plot``).

    Examples
    --------
    >>> main(["--list", "--filter", "^tiny_gemm$", "--dtype", "float64"])
    tiny_gemm           float64     tiny         ij,jk->ik  (4, 4), (4, 4)  matmul
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--njit" in argv:  # a case family of its own: calls from inside @njit code
        from contract.bench.compare_njit import main as njit_main

        return njit_main([a for a in argv if a != "--njit"])
    if "--dask" in argv:  # a case family of its own: dask arrays on a LocalCluster
        from contract.bench.compare_dask import main as dask_main

        return dask_main([a for a in argv if a != "--dask"])
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error: return instead of exiting
        return int(exc.code or 0)

    dtypes = None
    if args.dtype:
        dtypes = [d.strip() for item in args.dtype for d in item.split(",") if d.strip()]
        unknown = [d for d in dtypes if d not in ALL_DTYPES]
        if unknown:
            parser.print_usage(sys.stderr)
            print(f"error: unknown dtype {', '.join(unknown)}", file=sys.stderr)
            return 2
    try:
        pairs = select(args.filter, dtypes=dtypes, quick=args.quick)
    except re.error as exc:
        print(f"error: bad --filter regular expression: {exc}", file=sys.stderr)
        return 2
    if not pairs:
        print("error: no bench case matches the selection", file=sys.stderr)
        return 2
    if args.list:
        for case, dtype in pairs:
            shapes = ", ".join(str(s) for s in case.shapes)
            extra = "matmul" if case.is_matmul else ""
            line = f"{case.name:<19} {dtype:<11} {case.category:<12} {case.subscripts}  {shapes}"
            print(f"{line}  {extra}".rstrip())
        return 0
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "error: --plot needs matplotlib, which is not installed "
                "(pip install matplotlib, or pip install 'contract[bench]')",
                file=sys.stderr,
            )
            return 2
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 7)
    if repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2

    if args.threads is not None and args.threads < 1:
        print("error: --threads must be at least 1", file=sys.stderr)
        return 2
    with _thread_limit(args.threads):
        return _compare(args, pairs, dtypes, repeat)


@contextlib.contextmanager
def _thread_limit(threads: int | None) -> Iterator[None]:
    """Limit BLAS/OpenMP (threadpoolctl) and Numba's thread count, restoring them afterwards."""
    if threads is None:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        numba.set_num_threads(before)


def _compare(
    args: argparse.Namespace,
    pairs: list[tuple[BenchCase, str]],
    dtypes: list[str] | None,
    repeat: int,
) -> int:
    """Measure, print and save; see :func:`main`."""
    progress = _Progress(len(pairs) + (1 if args.no_peak else 2), enabled=not args.no_progress)
    same_path = args.same_path or any(case.category == NETWORK_CATEGORY for case, _ in pairs)
    engines = _engines(args.expression, same_path)
    machine = _machine_info()
    machine["threads"] = args.threads or machine["cpu_count"]
    progress.step("measuring machine peak (GEMM, memory bandwidth)")
    if args.no_peak:
        peaks = {"gemm_float64": math.nan, "gemm_float32": math.nan, "bandwidth": math.nan}
    else:
        peaks = _measure_peaks(args.quick)

    records = []
    started = time.perf_counter()
    for case, dtype in pairs:
        progress.step(f"{case.name} {dtype}")
        timings = _bench_pair(
            case,
            dtype,
            engines,
            repeat=repeat,
            min_sample=args.min_sample,
            budget=args.budget,
            engine_cap=max(5.0, 3 * args.budget),
        )
        record: dict[str, Any] = {
            "case": case.name,
            "dtype": dtype,
            "category": case.category,
            "subscripts": case.subscripts,
            "shapes": [list(s) for s in case.shapes],
            "layout": case.layout,
            "is_matmul": case.is_matmul,
            "note": case.note,
            "engines": {key: timing.as_dict() for key, timing in timings.items()},
        }
        mine = timings["contract"]
        if mine.samples:
            record["roofline"] = _roofline(case, dtype, mine.median, peaks)
        record["speedup"] = {
            e.key: _speedup(record, e.key, e.versus) for e in engines if e.baseline
        }
        if case.name in _PATHS:
            record["paths"] = {
                "shared": _PATHS[case.name]["shared"],
                "engines": {k: {f: v for f, v in info.items() if f != "path"}
                            for k, info in _PATHS[case.name]["engines"].items()},
            }
        records.append(record)
    if not args.no_peak:
        # measure again at the end and keep the best: a busy moment at the start should not
        # make every case look above 100% of "peak"
        progress.step("measuring machine peak again")
        again = _measure_peaks(args.quick)
        peaks = {key: max(value, again[key]) for key, value in peaks.items()}
        for record in records:
            if "roofline" in record:
                case = get_case(record["case"])
                median = record["engines"]["contract"]["median"]
                record["roofline"] = _roofline(case, record["dtype"], median, peaks)
    progress.close()
    elapsed = time.perf_counter() - started

    if hasattr(os, "getloadavg"):
        machine["load_average_end"] = os.getloadavg()
    summary = _summary(records, engines)
    peak_text = (
        f"peak: GEMM float64 {peaks['gemm_float64'] / 1e9:.3g} GF/s, float32 "
        f"{peaks['gemm_float32'] / 1e9:.3g} GF/s; memory {peaks['bandwidth'] / 1e9:.3g} GB/s"
    )
    _safe_print(
        f"contract {machine['contract']}, numpy {machine['numpy']}, numba {machine['numba']}, "
        f"opt_einsum {machine['opt_einsum']}; {machine['cpu_count']} CPUs, "
        f"{machine['threads']} thread(s) used; {peak_text}"
    )
    load = machine.get("load_average_start")
    if load and machine["cpu_count"] and load[0] > 0.5 * machine["cpu_count"]:
        _safe_print(
            f"warning: the machine was busy (load average {load[0]:.2f} on "
            f"{machine['cpu_count']} CPUs at the start): multi-threaded timings (BLAS, parallel "
            "kernels) are unreliable"
        )
    _safe_print(
        f"times are medians of {repeat} interleaved samples; x = baseline time / contract "
        f"time (>1: contract is faster); {_DASH} = not applicable or over the {args.budget:g} s "
        f"budget; %peak = fraction of the roofline bound min(GEMM peak, flop/byte * numpy's "
        f"copy bandwidth)\n"
    )
    _safe_print(_table(records, engines))
    _safe_print("")
    _safe_print(_summary_text(summary))
    networks = _network_summary(records, engines)
    if networks:
        _safe_print("")
        _safe_print(_network_text(networks, engines))
    for rec in records:
        for key, timing in rec["engines"].items():
            if timing["status"] in ("wrong", "error"):
                _safe_print(
                    f"{timing['status'].upper()}: {key} on {rec['case']}/{rec['dtype']} "
                    f"({rec['subscripts']}): {timing['reason']}"
                )

    if args.json:
        payload = {
            "machine": machine,
            "peaks": peaks,
            "settings": {
                "quick": args.quick,
                "filter": args.filter,
                "dtypes": dtypes,
                "repeat": repeat,
                "min_sample": args.min_sample,
                "budget": args.budget,
                "threads": args.threads,
                "elapsed": elapsed,
            },
            "engines": [{"key": e.key, "label": e.label, "baseline": e.baseline} for e in engines],
            "results": records,
            "summary": summary,
            "networks": networks,
        }
        with open(args.json, "w") as f:
            json.dump(_jsonable(payload), f, indent=1)
    if args.plot:
        _plot(records, engines, args.plot)
    return 1 if summary["wrong"] or summary["errors"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
