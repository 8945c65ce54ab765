"""contract on dask arrays: lazy graphs with numpy.einsum's semantics, on the threaded scheduler
and on a dask.distributed LocalCluster (loopback, processes), with little memory and with a worker
killed mid-computation.

``CONTRACT_DASK_FULL=1`` also runs the memory-limited test at several GB on 1.5 GB workers.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import contract  # noqa: E402

FULL = os.environ.get("CONTRACT_DASK_FULL", "") not in ("", "0")


def _rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _close(got, want, dtype) -> None:
    assert got.shape == np.shape(want)
    assert got.dtype == np.asarray(want).dtype
    if np.dtype(dtype).kind in "biu":
        np.testing.assert_array_equal(got, want)
    else:
        tol = 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def _operand(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(-4, 5, shape).astype(dtype)
    if dtype.kind == "c":
        return (rng.random(shape) + 1j * rng.random(shape)).astype(dtype)
    return rng.random(shape).astype(dtype)


# (equation, shapes, chunks): uneven chunks everywhere, summed labels over several blocks
CASES = [
    ("ij,jk->ik", [(13, 17), (17, 11)], [(5, 6), (4, (3, 8))]),
    ("ij,jk,kl->il", [(9, 14), (14, 12), (12, 5)], [(4, 5), (6, 7), (5, 2)]),
    ("abc,bad->abcd", [(5, 6, 7), (6, 5, 4)], [(2, 4, 3), (3, 5, 2)]),
    ("ii->i", [(10, 10)], [(3, 3)]),
    ("ii", [(10, 10)], [(4, 4)]),
    ("iij,jk->ik", [(6, 6, 9), (9, 4)], [(4, 4, 5), (2, 3)]),
    ("...ij,...jk->...ik", [(3, 4, 5), (3, 5, 6)], [(2, 3, 2), (1, 4, 4)]),
    ("...ij,jk->...ik", [(2, 3, 4, 5), (5, 6)], [(1, 2, 3, 2), (3, 4)]),
    ("ij,ij->i", [(1, 8), (7, 8)], [(1, 3), (4, 5)]),  # size-1 broadcasting
    ("ij,ij,ij->ij", [(8, 9), (8, 9), (8, 9)], [(3, 4), (5, 5), (8, 2)]),  # fused Hadamard
    ("ij,ij->", [(12, 10), (12, 10)], [(5, 3), (4, 4)]),
    ("i,j->ij", [(6,), (7,)], [(4,), (3,)]),
    ("ijk->kji", [(4, 5, 6)], [(2, 3, 4)]),
    ("ea,fb,abcd,gc,hd->efgh", [(3, 4), (5, 6), (4, 6, 7, 8), (3, 7), (4, 8)],
     [(2, 2), (3, 3), (2, 4, 4, 3), (3, 5), (2, 4)]),
    # blocks large enough that the BLAS step reads the first operand in place as a stack over
    # the summed a, b and adds the partial products (executor._summed_lead)
    ("abcde,efbad->cf", [(8, 4, 16, 32, 16), (16, 16, 4, 8, 32)],
     [(4, 4, 16, 32, 8), (8, 16, 4, 4, 32)]),
]


# summed labels over several blocks: gathered into one task per output block (forced here by
# GATHER_MIN_INTENSITY = 0), or kept as block axes of partial results and tree-reduced (forced
# by a tiny chunk-size budget)
TREE = {"array.chunk-size": "1kiB"}


@pytest.mark.parametrize("mode", ["gathered", "tree"])
@pytest.mark.parametrize("equation,shapes,chunks", CASES, ids=[c[0] for c in CASES])
def test_matches_numpy_on_uneven_chunks(equation, shapes, chunks, mode, monkeypatch):
    from contract import dask_backend

    monkeypatch.setattr(dask_backend, "GATHER_MIN_INTENSITY", 0)
    rng = _rng()
    arrays = [_operand(rng, s, np.float64) for s in shapes]
    lazy = [da.from_array(a, chunks=c) for a, c in zip(arrays, chunks)]
    with dask.config.set(TREE if mode == "tree" else {}):
        got = contract.einsum(equation, *lazy)
    assert isinstance(got, da.Array)
    _close(got.compute(scheduler="threads"), np.einsum(equation, *arrays), np.float64)


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128", "int64", "bool"])
def test_dtypes(dtype):
    rng = _rng()
    a, b, c = (_operand(rng, s, dtype) for s in [(9, 10), (10, 11), (11, 4)])
    ops = [da.from_array(a, chunks=4), da.from_array(b, chunks=(3, 5)), c]  # mixed dask/numpy
    got = contract.einsum("ij,jk,kl->il", *ops)
    _close(got.compute(), np.einsum("ij,jk,kl->il", a, b, c), dtype)


def test_mixed_numpy_and_dask_operands_and_contract():
    rng = _rng()
    a, b = rng.random((12, 7)), rng.random((7, 9))
    got = contract.contract("ij,jk->ik", a, da.from_array(b, chunks=(3, 4)))
    assert isinstance(got, da.Array)
    assert got.chunks[1] == (4, 4, 1)  # output chunks follow the operands' chunks
    _close(got.compute(), a @ b, np.float64)
    # the interleaved (sublist) form
    got = contract.einsum(da.from_array(a, chunks=5), [0, 1], b, [1, 2], [0, 2])
    _close(got.compute(), a @ b, np.float64)


def test_numpy_operands_still_give_numpy():
    a = np.ones((3, 4))
    assert type(contract.einsum("ij,jk->ik", a, a.T, split_every=4)) is np.ndarray


def test_dtype_and_casting_keywords():
    rng = _rng()
    a = rng.integers(0, 9, (8, 6)).astype(np.int32)
    x = da.from_array(a, chunks=3)
    got = contract.einsum("ij,ij->i", x, x, dtype=np.float32, casting="same_kind")
    _close(got.compute(), np.einsum("ij,ij->i", a, a, dtype=np.float32, casting="same_kind"),
           np.float32)
    with pytest.raises(TypeError, match="Cannot cast"):
        contract.einsum("ij,ij->i", x, x, dtype=np.int16)  # casting='safe'
    got = contract.einsum("ij->j", x, order="F")
    assert got.dtype == np.einsum("ij->j", a).dtype
    _close(got.compute(), np.einsum("ij->j", a), np.int32)
    # int8 sums wrap as numpy's do (the reductions keep the computation dtype)
    small = np.full((40, 3), 100, dtype=np.int8)
    got = contract.einsum("ij->j", da.from_array(small, chunks=7))
    _close(got.compute(), np.einsum("ij->j", small), np.int8)


def test_out_is_refused_with_a_reason():
    x = da.ones((4, 4), chunks=2)
    with pytest.raises(TypeError, match="lazy dask array"):
        contract.einsum("ij,jk->ik", x, x, out=np.empty((4, 4)))


def test_errors_are_raised_when_the_graph_is_built():
    x = da.ones((4, 5), chunks=2)
    with dask.config.set(scheduler=_refuse):
        with pytest.raises(ValueError, match="broadcast|dimensions"):
            contract.einsum("ij,jk->ik", x, x)
        with pytest.raises(ValueError, match="more operands"):
            contract.einsum("ij->ij", x, x)
        with pytest.raises(ValueError):
            contract.einsum("ij,jk->iz", x, x.T)
        with pytest.raises(ValueError, match="unknown shape"):
            contract.einsum("i->", x[x[:, 0] > 0][:, 0])


def _refuse(*args, **kwargs):
    raise AssertionError("the graph was computed")


def test_building_the_graph_computes_nothing():
    calls = []

    def counted(block):
        calls.append(block.shape)
        return block

    x = da.random.default_rng(0).random((160, 192), chunks=(80, 64)).map_blocks(
        counted, meta=np.empty((0, 0)))
    y = da.random.default_rng(1).random((192, 160), chunks=(64, 80))
    with dask.config.set(scheduler=_refuse):
        lazy = contract.einsum("ij,jk->ik", x, y, split_every=2)
        lazy = contract.contract("ij,jk,k->i", x, y, np.ones(160))
        path, info = contract.contract_path("ij,jk->ik", x, y)
        with dask.config.set(TREE):
            _, tree = contract.contract_path("ij,jk->ik", x, y)
    assert calls == [] and isinstance(lazy, da.Array)
    assert path == [(0, 1)]
    # j (3 blocks) gathered: 2 x 2 tasks, 80 x 192 x 80 multiply-adds each
    assert info.tasks == [2 * 2] and info.reduced == [()]
    assert tree.tasks == [2 * 3 * 2] and tree.reduced == [("j",)]
    assert "block grid" in str(info) and "bytes/task" in str(info)


def test_split_every_and_zero_size():
    rng = _rng()
    a = rng.random((5, 64))
    x = da.from_array(a, chunks=(5, 4))
    for split_every in (None, 2, {1: 3}):
        with dask.config.set(TREE):
            got = contract.einsum("ij,ij->i", x, x, split_every=split_every)
        _close(got.compute(), np.einsum("ij,ij->i", a, a), np.float64)
    empty = da.from_array(np.ones((10, 10)), chunks=5)[:0]
    got = contract.einsum("ca,ca->c", empty, empty)
    assert got.shape == (0,)
    got = contract.einsum("ca,ca->a", empty, empty)
    _close(got.compute(), np.zeros(10), np.float64)


def test_non_native_dtypes_go_to_dask_einsum():
    a = np.arange(6, dtype=object).reshape(2, 3)
    got = contract.einsum("ij,ij->i", da.from_array(a, chunks=1), a)
    assert isinstance(got, da.Array)
    np.testing.assert_array_equal(got.compute(), np.einsum("ij,ij->i", a, a))


def test_contract_expression_with_dask_arrays():
    rng = _rng()
    a, b = rng.random((6, 5)), rng.random((5, 4))
    expr = contract.contract_expression("ij,jk->ik", a.shape, b.shape)
    got = expr(da.from_array(a, chunks=3), b)
    assert isinstance(got, da.Array)
    _close(got.compute(), a @ b, np.float64)
    expr = contract.contract_expression("ij,jk->ik", a, b.shape, constants=[0])
    _close(expr(da.from_array(b, chunks=2)).compute(), a @ b, np.float64)
    with pytest.raises(ValueError, match="must have shape"):
        expr(da.ones((3, 3), chunks=2))


def test_output_chunks_like_dask_einsum():
    x = da.ones((64, 8, 8, 8, 8), chunks=(32, 8, 1, 8, 8))
    y = da.ones((64, 8, 8, 8, 8), chunks=(32, 8, 8, 1, 8))
    got = contract.einsum("aijkl,amnop->ijklmnop", x, y)
    assert got.chunks == da.einsum("aijkl,amnop->ijklmnop", x, y).chunks


# ---------------------------------------------------------------------------------------------
# dask.distributed


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    # the kernels the cluster runs, compiled (or loaded) here first: workers load them from the
    # same Numba cache directory instead of compiling them side by side
    for dtype in (np.float64, np.int64):
        contract.einsum("ij,jk->ik", da.ones((4, 4), chunks=2, dtype=dtype),
                        np.ones((4, 4), dtype)).compute(scheduler="sync")
    contract.einsum("ij,ij,j->i", da.ones((4, 4), chunks=2), da.ones((4, 4), chunks=2),
                    da.ones(4, chunks=2)).compute(scheduler="sync")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       memory_limit="400MB")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_distributed_matches_numpy(client):
    env = client.run(lambda: os.environ.get("NUMBA_CACHE_DIR"))
    assert set(env.values()) == {os.environ.get("NUMBA_CACHE_DIR")}  # inherited by workers
    rng = _rng()
    for equation, shapes, chunks in CASES[:3]:
        arrays = [_operand(rng, s, np.float64) for s in shapes]
        lazy = [da.from_array(a, chunks=c) for a, c in zip(arrays, chunks)]
        got = client.compute(contract.einsum(equation, *lazy)).result()
        _close(got, np.einsum(equation, *arrays), np.float64)
    a = rng.integers(-3, 4, (20, 30))
    got = client.compute(contract.einsum("ij,jk->ik", da.from_array(a, chunks=7), a.T)).result()
    _close(got, a @ a.T, np.int64)


def test_memory_limited(client):
    # ~1 GB of operands, created lazily block by block, on two workers of 400 MB each
    rows, cols, chunk = 8000, 8000, (1000, 2000)
    x = da.random.default_rng(1).random((rows, cols), chunks=chunk)
    y = da.random.default_rng(2).random((rows, cols), chunks=chunk)
    v = da.random.default_rng(3).random(cols, chunks=chunk[1])
    workers = set(client.scheduler_info()["workers"])
    got = client.compute(contract.einsum("ij,ij,j->i", x, y, v)).result()
    assert set(client.scheduler_info()["workers"]) == workers  # none killed and restarted
    head = [client.compute(arr).result() for arr in (x[:3], y[:3], v)]
    _close(got[:3], np.einsum("ij,ij,j->i", *head), np.float64)


@pytest.mark.skipif(not FULL, reason="several GB: CONTRACT_DASK_FULL=1")
def test_memory_limited_full():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  memory_limit="1.5GB") as cluster, \
            distributed.Client(cluster) as c:
        n, chunk = 20000, (2000, 2500)  # two 3.2 GB operands
        x = da.random.default_rng(1).random((n, n), chunks=chunk)
        y = da.random.default_rng(2).random((n, n), chunks=chunk)
        workers = set(c.scheduler_info()["workers"])
        got = c.compute(contract.einsum("ij,ij->i", x, y)).result()
        assert set(c.scheduler_info()["workers"]) == workers  # none killed and restarted
        head = [c.compute(arr[:3]).result() for arr in (x, y)]
        _close(got[:3], np.einsum("ij,ij->i", *head), np.float64)


# a task that takes a while; defined outside this module, which the workers cannot import
# (cloudpickle sends a function of ``__main__`` by value)
_namespace = {"__name__": "__main__"}
exec("def slow(block):\n    import time\n    time.sleep(0.15)\n    return block\n", _namespace)
_slow = _namespace["slow"]


def test_worker_killed_mid_computation(client):
    rng = _rng()
    a, b = rng.random((40, 60)), rng.random((60, 30))
    x = da.from_array(a, chunks=(10, 10)).map_blocks(_slow)  # 24 blocks, ~2 s of work
    y = da.from_array(b, chunks=(10, 10)).map_blocks(_slow)  # 18 blocks
    future = client.compute(contract.einsum("ij,jk->ik", x, y))
    deadline = time.monotonic() + 30
    while not any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)  # some tasks done, more running
    assert not future.done()
    pids = client.run(os.getpid)
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    _close(future.result(timeout=120), a @ b, np.float64)


def test_workers_load_kernels_from_the_disk_cache(client):
    """A kernel this process compiled is loaded by the workers from Numba's disk cache, not
    compiled again in each of them (complex128 with three operands: no earlier test ran it)."""
    from contract.kernels import _jit

    if not _jit.CACHE_ENABLED:
        pytest.skip("Numba's disk cache is off")

    def counts() -> tuple[int, int]:  # (disk-cache loads, compiles) of the kernels, per worker
        from contract.kernels import KERNELS

        return (sum(sum(k.stats.cache_hits.values()) for k in KERNELS),
                sum(sum(k.stats.cache_misses.values()) for k in KERNELS))

    a = da.from_array(np.arange(48.0).reshape(6, 8) * (1 + 1j), chunks=(3, 4))
    b = da.from_array(np.ones((6, 8)) * (2 - 1j), chunks=(3, 4))
    c = da.from_array(np.arange(8.0) * 1j, chunks=4)
    lazy = contract.einsum("ij,ij,j->i", a, b, c, optimize=False)
    lazy.compute(scheduler="sync")  # compiled (or loaded) here first, written to the cache
    before = client.run(counts)
    got = client.compute(lazy).result()
    after = client.run(counts)
    _close(got, np.einsum("ij,ij,j->i", a.compute(), b.compute(), c.compute()), np.complex128)
    loads = sum(after[w][0] - before[w][0] for w in after)
    compiles = sum(after[w][1] - before[w][1] for w in after)
    assert compiles == 0 and loads >= 1, (before, after)


def test_blas_runs_on_one_thread_inside_tasks_and_the_limit_is_restored():
    from threadpoolctl import ThreadpoolController, threadpool_limits

    from contract import dask_backend

    def blas_threads():
        return [lib["num_threads"] for lib in ThreadpoolController().info()
                if lib["user_api"] == "blas"]

    if not blas_threads():
        pytest.skip("no BLAS library found by threadpoolctl")
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with dask_backend._one_blas_thread():
            with dask_backend._one_blas_thread():  # a second task in another thread
                assert set(blas_threads()) == {1}
            assert set(blas_threads()) == {1}  # the first task is still inside
        assert blas_threads() == before


def test_small_partial_results_are_added_up_by_the_next_step(monkeypatch):
    # i,ij,jk,k->i, a matrix-vector chain: the partial vectors of jk,k->j (4 blocks along k)
    # go straight to the tasks of ij,j->i, which add them up, and so on: no tree reduction
    # left (every step has one when split_every asks for a tree)
    rng = _rng()
    shapes = [(40,), (40, 40), (40, 40), (40,)]
    arrays = [_operand(rng, s, np.float64) for s in shapes]
    lazy = [da.from_array(a, chunks=10) for a in arrays]
    want = np.einsum("i,ij,jk,k->i", *arrays)

    def reductions(graph):
        return sum(1 for name in graph.__dask_graph__().layers if "aggregate" in name)

    _, info = contract.contract_path("i,ij,jk,k->i", *lazy)
    assert [len(r) for r in info.reduced] == [1, 1, 0]  # k, then j split over blocks
    got = contract.einsum("i,ij,jk,k->i", *lazy)
    _close(got.compute(scheduler="threads"), want, np.float64)
    assert reductions(got) == 0
    tree = contract.einsum("i,ij,jk,k->i", *lazy, split_every=4)
    _close(tree.compute(scheduler="threads"), want, np.float64)
    assert reductions(tree) == 2
    # partial results too large to defer (a budget of 0 bytes): tree-reduced
    from contract import dask_backend

    monkeypatch.setattr(dask_backend, "DEFER_MAX_BYTES", 0)
    big = contract.einsum("i,ij,jk,k->i", *lazy)
    assert reductions(big) == 2
    _close(big.compute(scheduler="threads"), want, np.float64)
