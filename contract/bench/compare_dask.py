"""The dask case family: contract on dask arrays against ``dask.array.einsum(..., optimize=True)``
and ``opt_einsum.contract(..., backend='dask')``, on a LocalCluster of 2 workers x 1 thread.

Each method runs on a cluster of its own (a method's run must not pay for what another left in
the workers). Operands are created on the workers before timing: the same values, and the same
placement of blocks on workers, on every cluster. Each timed run builds the graph and computes
the result into the client process. Every method's result is checked against ``numpy.einsum``
(on the same blocks, made in the client) before anything is timed; the methods are then timed
interleaved, round by round (the order rotating), and the median of each is reported, with
per-case ratios and geometric means.

``main(argv)`` is the command (wired as ``python -m contract compare --dask``)::

    python -m contract.bench.compare_dask [--quick] [--filter REGEX] [--repeat N] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CASES", "DaskCase", "main", "run_cases"]


@dataclass(frozen=True)
class DaskCase:
    """One contraction: its equation, operand shapes and chunks, dtype and family."""

    name: str
    family: str
    equation: str
    shapes: tuple[tuple[int, ...], ...]
    chunks: tuple[tuple[int, ...], ...]
    dtype: str = "float64"


CASES: tuple[DaskCase, ...] = (
    DaskCase("chain3", "chain", "ij,jk,kl->il",
             ((1600, 1600), (1600, 1600), (1600, 1600)), ((400, 400),) * 3),
    DaskCase("chain4_thin", "chain", "ij,jk,kl,lm->im",
             ((4000, 4000), (4000, 4000), (4000, 4000), (4000, 8)),
             ((1000, 1000), (1000, 1000), (1000, 1000), (1000, 8))),
    DaskCase("chain5_vec", "chain", "i,ij,jk,kl,l->i",
             ((8000,), (8000, 8000), (8000, 8000), (8000, 8000), (8000,)),
             ((2000,), (2000, 2000), (2000, 2000), (2000, 2000), (2000,))),
    DaskCase("tccg_abcd_dbef", "tccg", "abcd,dbef->aecf",
             ((40, 40, 40, 40), (40, 40, 40, 40)), ((20, 20, 20, 20), (20, 20, 20, 20))),
    DaskCase("tccg_abc_dca", "tccg", "abc,dca->bd",
             ((288, 288, 288), (288, 288, 288)), ((144, 144, 144), (144, 144, 144))),
    DaskCase("tccg_abcde_efbad", "tccg", "abcde,efbad->cf",
             ((34, 34, 34, 34, 34), (34, 34, 34, 34, 34)),
             ((17, 34, 34, 34, 17), (17, 34, 34, 17, 34))),
    DaskCase("batched_matmul", "batched", "bij,bjk->bik",
             ((64, 400, 400), (64, 400, 400)), ((16, 400, 400), (16, 400, 400))),
    DaskCase("hadamard_reduce", "hadamard", "ij,ij,ij->i",
             ((10000, 10000), (10000, 10000), (10000, 10000)), ((2500, 2500),) * 3),
    DaskCase("int_matmul", "integer", "ij,jk->ik",
             ((800, 800), (800, 800)), ((400, 400), (400, 400)), "int64"),
)

METHODS = ("contract", "dask.einsum", "opt_einsum")


def _block(case: DaskCase, k: int, index: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Block ``index`` of operand ``k``: its own random stream, the same values wherever it is
    made (on a worker, or in the client for the reference)."""
    shape = tuple(c[i] for c, i in zip(_chunks(case, k), index))
    rng = np.random.default_rng((seed, k, *index))
    if np.dtype(case.dtype).kind in "iu":
        return rng.integers(-8, 9, shape, dtype=case.dtype)
    return rng.random(shape).astype(case.dtype)


def _chunks(case: DaskCase, k: int) -> tuple[tuple[int, ...], ...]:
    from dask.array.core import normalize_chunks

    return normalize_chunks(case.chunks[k], case.shapes[k])


def _local_operands(case: DaskCase, seed: int = 0) -> list[np.ndarray]:
    """The operands as numpy arrays, assembled from the same blocks (for the reference)."""
    out = []
    for k in range(len(case.shapes)):
        chunks = _chunks(case, k)
        arr = np.empty(case.shapes[k], dtype=case.dtype)
        for index in np.ndindex(*(len(c) for c in chunks)):
            where = tuple(slice(sum(c[:i]), sum(c[:i + 1])) for c, i in zip(chunks, index))
            arr[where] = _block(case, k, index, seed)
        out.append(arr)
    return out


def _operands(case: DaskCase, client: Any, seed: int = 0) -> list[Any]:
    """The operands as dask arrays whose blocks are made on the workers, block ``n`` (in C
    order over an operand's block grid) on worker ``n % workers``: the same placement on every
    cluster. Left to ``persist``, where a block landed varied from cluster to cluster, and a
    method ran on its cluster's placement for every round of a case (whether the blocks one
    task needs share a worker decides whether it first fetches one: ``tccg_abcde_efbad``'s
    91 MB blocks)."""
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    workers = sorted(client.scheduler_info()["workers"])
    out = []
    for k in range(len(case.shapes)):
        chunks = _chunks(case, k)
        name = f"operand-{case.name}-{k}-{seed}"
        graph = {}
        for n, index in enumerate(np.ndindex(*(len(c) for c in chunks))):
            graph[(name, *index)] = client.submit(
                _block, case, k, index, seed, key=(name, *index),
                workers=[workers[n % len(workers)]], pure=False)
        out.append(da.Array(HighLevelGraph.from_collections(name, graph, dependencies=()),
                            name, chunks, dtype=case.dtype))
    return out


def _methods() -> dict[str, Callable[..., Any]]:
    import dask.array as da
    import opt_einsum

    import contract

    return {
        "contract": lambda eq, *ops: contract.einsum(eq, *ops),
        "dask.einsum": lambda eq, *ops: da.einsum(eq, *ops, optimize=True),
        "opt_einsum": lambda eq, *ops: opt_einsum.contract(eq, *ops, backend="dask"),
    }


def _close(got: np.ndarray, want: np.ndarray, dtype: str) -> bool:
    if np.dtype(dtype).kind in "iub":
        return bool(np.array_equal(got, want))
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1.0)
    return bool(np.allclose(got, want, rtol=1e-9, atol=1e-9 * scale))


def run_cases(cases: Sequence[DaskCase], clients: dict[str, Any], repeat: int,
              progress: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Check, then time every case; one record per case.

    ``clients`` maps each method to the client of its own cluster: a method never runs on
    workers another method has run on (after one ``dask.array.einsum`` run of ``chain5_vec``,
    every later run of any method on the same workers took 1.9-2.7x as long; after the workers
    sent the operands to the client, 1.5-2.9x). The methods are
    timed interleaved, round by round, the order rotating.
    """
    from distributed import wait

    methods = _methods()
    names = list(methods)
    records = []
    for case in cases:
        ops = {}
        for name, client in clients.items():
            ops[name] = _operands(case, client)
            wait([f for op in ops[name] for f in op.dask.values()])
        # the reference from the same blocks made here (the same values), not gathered from
        # a cluster: sending operands to the client left those workers slower afterwards
        local = _local_operands(case)
        want = np.einsum(case.equation, *local, optimize=True)
        del local
        for name, method in methods.items():
            got = clients[name].compute(method(case.equation, *ops[name])).result()
            if not _close(np.asarray(got), want, case.dtype):
                raise AssertionError(f"{case.name}: {name} differs from numpy.einsum")
        del got, want
        times: dict[str, list[float]] = {name: [] for name in methods}
        for round_ in range(repeat):
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                client = clients[name]
                client.run(gc.collect)
                start = time.perf_counter()
                client.compute(methods[name](case.equation, *ops[name])).result()
                times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(ts) for name, ts in times.items()}
        record = {"case": case.name, "family": case.family, "equation": case.equation,
                  "dtype": case.dtype, "seconds": medians,
                  "vs_dask": medians["dask.einsum"] / medians["contract"],
                  "vs_opt_einsum": medians["opt_einsum"] / medians["contract"],
                  "vs_best": min(medians["dask.einsum"], medians["opt_einsum"])
                  / medians["contract"]}
        records.append(record)
        progress(_row(record))
        del ops
    return records


def _header() -> str:
    return (f"{'case':<18} {'equation':<18} {'contract':>9} {'dask.einsum':>12} "
            f"{'opt_einsum':>11} {'vs dask':>8} {'vs oe':>7} {'vs best':>8}")


def _row(r: dict[str, Any]) -> str:
    s = r["seconds"]
    return (f"{r['case']:<18} {r['equation']:<18} {s['contract']:>8.3f}s "
            f"{s['dask.einsum']:>11.3f}s {s['opt_einsum']:>10.3f}s {r['vs_dask']:>7.2f}x "
            f"{r['vs_opt_einsum']:>6.2f}x {r['vs_best']:>7.2f}x")


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def summary(records: Sequence[dict[str, Any]]) -> str:
    """Geometric means of the ratios, and the slowest case against the better baseline."""
    if not records:
        return "no cases"
    worst = min(records, key=lambda r: r["vs_best"])
    return (f"geomean: {_geomean([r['vs_dask'] for r in records]):.2f}x vs dask.array.einsum"
            f"(optimize=True), {_geomean([r['vs_opt_einsum'] for r in records]):.2f}x vs "
            f"opt_einsum backend='dask'; slowest against the better baseline: {worst['case']} "
            f"{worst['vs_best']:.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    """The command: parse ``argv``, start the cluster, run the cases, print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m contract compare --dask",
        description="contract on dask arrays vs dask.array.einsum and opt_einsum's dask "
                    "backend, on a LocalCluster of 2 workers x 1 thread (loopback)")
    parser.add_argument("--filter", default="", help="only cases whose name matches REGEX")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (median)")
    parser.add_argument("--quick", action="store_true", help="1 round")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the records to FILE")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        import distributed
    except ImportError:
        print("compare --dask needs the dask extra: pip install 'contract[dask]'",
              file=sys.stderr)
        return 2
    cases = [c for c in CASES if re.search(args.filter, c.name)]
    repeat = 1 if args.quick else args.repeat
    warnings.simplefilter("ignore")  # dask's PerformanceWarning for the baselines' rechunks
    with contextlib.ExitStack() as stack:
        clients = {}
        for name in METHODS:  # one cluster per method (see run_cases)
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None))
            clients[name] = stack.enter_context(distributed.Client(cluster))
        print(f"LocalCluster per method: {args.workers} workers x 1 thread; medians of "
              f"{repeat} interleaved rounds; results checked against numpy.einsum first")
        print(_header())
        records = run_cases(cases, clients, repeat)
    print(summary(records))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(records, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
