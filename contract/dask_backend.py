"""The dask backend: a call with a dask array among its operands becomes a lazy dask graph whose
tasks run this engine's own step methods (BLAS or the Numba kernels) on one block each.

Registered in :data:`contract._backends.BACKENDS` and imported on first use only, so
``import contract`` never imports dask. The call is validated as the numpy path validates it
(the parser's shape and label errors, the dtype and casting rules of :mod:`contract._dtypes`),
when the graph is built. The order of contractions is planned by the same planner on the global
shapes; each step of the plan becomes one :func:`dask.array.blockwise` whose task runs
:func:`contract.executor.run_step` on its blocks, serially (``parallel=False``, one BLAS thread):
the scheduler's threads or workers are the parallelism. A label summed over several blocks is
either gathered (each task concatenates every block along it: compute-heavy steps whose gathered
inputs are small) or stays a block axis of the step's partial results, which dask's tree
reduction then adds up (``split_every``), or, when they are small, the next step's tasks.
Dtypes the kernels do not run (object, strings, long double) go to :func:`dask.array.einsum`.

Chunks: the operands' chunks are first split along output labels when the result's blocks would
otherwise be much larger than the largest input block (:func:`_output_chunks`, the rule
``dask.array.einsum`` follows: at most ``array.chunk-size-tolerance`` times the largest input
block), then aligned label by label on the common refinement of the operands' chunks
(:func:`dask.array.core.unify_chunks`, as dask's ``blockwise`` does). Output chunks therefore
follow the operands' chunks along the output labels, as in ``dask.array.einsum``.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _dtypes, _tuning
from ._call import Request
from ._numpy_compat import _numpy_spelling
from .layout import labelled_view
from .parser import Equation, label_name, parse_cached, symbol_names
from .planner import Plan, Step, make_plan

__all__ = ["evaluate", "path_info", "DaskPathInfo", "GATHER_MIN_INTENSITY",
           "DEFER_MAX_PARTIALS", "DEFER_MAX_BYTES"]

#: multiply-adds per gathered input element from which a step gathers its summed labels' blocks
#: into one task (see ``_Graph._tree_reduced``): ``ij,jk->ik`` on 400-blocks of a 1600-long
#: ``j`` does 200 and ran 1.8x faster gathered; a thin ``kl,lm->km`` (m = 8) does 8 and ran
#: faster with partial sums
GATHER_MIN_INTENSITY = 32

#: a step's partial results (a summed label split over blocks) are added up by the next step's
#: tasks, not by a tree reduction, when there are at most this many per result block ...
DEFER_MAX_PARTIALS = 8
#: ... and they hold at most this many bytes together (``i,ij,jk,kl,l->i`` on 2000-blocks of
#: 8000-long vectors: 4 partial vectors of 16 kB per block)
DEFER_MAX_BYTES = 1 << 20


def _dask_array() -> Any:
    import dask.array as da

    return da


# ---------------------------------------------------------------------------------------------
# the call


def evaluate(call: Request) -> Any:
    """The lazy dask array of a validated call (``call.operands`` include a dask array).

    Raises
    ------
    TypeError
        ``out=`` is given (a dask result is not written into an array), or ``casting`` forbids
        a cast of an operand.
    ValueError
        The parser's errors (labels, operand count, shapes), or an operand of unknown shape.
    """
    if call.out is not None:
        raise TypeError(
            "out= cannot be used with dask operands: the result is a lazy dask array, computed "
            "later and block by block, so there is no moment at which it could be written into "
            "an existing array; store the result instead (e.g. dask.array.store, or "
            "out[...] = result.compute())")
    prepared = _prepare(call)
    if isinstance(prepared, _Delegated):
        return prepared.run(call)
    return prepared.build(call.split_every)


def path_info(call: Request) -> tuple[list[tuple[int, ...]], DaskPathInfo]:
    """``contract_path`` for dask operands: the path, and a report with each step's block grid
    and bytes per task (nothing is computed)."""
    prepared = _prepare(call, path_only=True)
    if isinstance(prepared, _Delegated):  # a non-native dtype: planned as float64 would be
        prepared = _prepare(call, path_only=True, dtype=np.float64)
    return prepared.plan.path, DaskPathInfo(prepared)


class _Delegated:
    """A call in a dtype this engine does not run: :func:`dask.array.einsum` computes it."""

    def __init__(self, eq: Equation, arrays: list[Any]) -> None:
        self.eq, self.arrays = eq, arrays

    def run(self, call: Request) -> Any:
        da = _dask_array()
        arrays = [a if isinstance(a, da.Array) else da.from_array(a, chunks=a.shape or ())
                  for a in self.arrays]  # (dask cannot size "auto" chunks of object arrays)
        return da.einsum(_numpy_spelling(self.eq.to_string()), *arrays, dtype=call.dtype,
                         casting=call.casting, order=call.order, split_every=call.split_every)


def _prepare(call: Request, path_only: bool = False, dtype: Any = None) -> _Graph | _Delegated:
    da = _dask_array()
    arrays = [op if isinstance(op, da.Array) else np.asarray(op) for op in call.operands]
    for k, arr in enumerate(arrays):
        if any(math.isnan(d) for d in arr.shape):
            raise ValueError(f"operand {k} has an unknown shape {arr.shape}: call "
                             f"compute_chunk_sizes() on it first")
    eq = parse_cached(call.subscripts, tuple(tuple(int(d) for d in a.shape) for a in arrays))
    standins = [_dtype_standin(a) for a in arrays]
    asked = call.dtype if dtype is None else dtype
    asked = None if asked is None else np.dtype(asked)
    if not _dtypes.runs_natively(standins, asked):
        return _Delegated(eq, arrays)
    result = _dtypes.result_dtype(standins, asked, call.casting)
    return _Graph(eq, arrays, result, call, path_only)


def _dtype_standin(arr: Any) -> np.ndarray:
    """An empty numpy array of ``arr``'s dtype (0-d numpy operands are kept: numpy < 2 reads
    their values for the result dtype), for the dtype rules without touching a dask array."""
    if isinstance(arr, np.ndarray):
        return arr if arr.ndim == 0 else np.empty((0,) * arr.ndim, dtype=arr.dtype)
    return np.empty((0,) * max(arr.ndim, 1), dtype=arr.dtype)


# ---------------------------------------------------------------------------------------------
# chunks


def _split(chunks: tuple[int, ...], limit: float, tolerance: float) -> tuple[int, ...]:
    """Each chunk larger than ``tolerance * limit`` cut into near-equal parts of at most
    ``limit`` (the larger parts first)."""
    out: list[int] = []
    for c in chunks:
        if c > tolerance * limit:
            parts = min(c, math.ceil(c / limit))
            base, extra = divmod(c, parts)
            out.extend(base + 1 if i < extra else base for i in range(parts))
        else:
            out.append(c)
    return tuple(out)


def _output_chunks(eq: Equation, chunks: list[tuple[tuple[int, ...], ...]],
                   tolerance: float) -> dict[int, tuple[int, ...]]:
    """New chunks for output labels, so that a block of the result holds at most ``tolerance``
    times the elements of the largest input block.

    Every output label chunked more coarsely than needed is cut by the same factor (the excess
    shared evenly, the ``n``-th root of it for ``n`` labels), until the bound holds or those
    labels are in chunks of 1. Empty when nothing needs cutting (or for one operand, or a
    scalar result, as ``dask.array.einsum`` does).
    """
    if len(eq.terms) < 2 or not eq.output:
        return {}
    largest_input = max((math.prod(max(c, default=1) for c in op) for op in chunks), default=1)
    if largest_input == 0:  # an empty operand: nothing to compute, nothing to cut
        return {}
    current: dict[int, tuple[int, ...]] = {}
    for term, op in zip(eq.terms, chunks):
        for lab, c in zip(term, op):
            if lab in eq.output and max(c, default=1) > max(current.get(lab, (1,)), default=1):
                current[lab] = c
    new = dict(current)
    while True:
        block = math.prod(max(c, default=1) for c in new.values())
        excess = block / (largest_input * tolerance)
        movable = [lab for lab, c in new.items() if max(c, default=1) > 1]
        if excess <= 1 or not movable:
            break
        factor = excess ** (1 / len(movable))
        changed = False
        for lab in movable:
            cut = _split(new[lab], max(new[lab]) / factor, tolerance)
            if cut != new[lab]:
                new[lab], changed = cut, True
        if not changed:
            break
    return {lab: c for lab, c in new.items() if c != current[lab]}


# ---------------------------------------------------------------------------------------------
# the graph


class _Graph:
    """The operands as aligned dask arrays, the plan, and the per-step block layout."""

    def __init__(self, eq: Equation, arrays: list[Any], result: np.dtype, call: Request,
                 path_only: bool) -> None:
        import dask
        from dask.array.core import unify_chunks
        from dask.utils import parse_bytes

        da = _dask_array()
        self.eq, self.result = eq, result
        self.comp = comp = _dtypes.computation_dtype(result)
        self.plan: Plan = make_plan(eq, comp, call.optimize, call.memory_limit, call.use_blas,
                                    _tuning.current())
        ops = [a if isinstance(a, da.Array) else da.from_array(a, chunks=a.shape or ())
               for a in arrays]
        tolerance = float(dask.config.get("array.chunk-size-tolerance", 1.25))
        self.gather_bytes = parse_bytes(dask.config.get("array.chunk-size", "128MiB")) // 2
        cut = _output_chunks(eq, [op.chunks for op in ops], tolerance)
        if cut:
            ops = [op.rechunk({axis: cut[lab] for axis, lab in enumerate(term)
                               if lab in cut and op.shape[axis] > 1})
                   for op, term in zip(ops, eq.terms)]
        args = [item for op, term in zip(ops, eq.terms) for item in (op, term)]
        chunkss, ops = unify_chunks(*args, warn=False)
        self.chunks: dict[int, tuple[int, ...]] = {
            lab: tuple(c) for lab, c in chunkss.items()}
        for lab, n in eq.sizes:  # labels only on size-1 broadcast axes, or of size 0
            if lab not in self.chunks or sum(self.chunks[lab]) != n:
                self.chunks[lab] = (n,)
        if path_only:
            self.ops = ops
            return
        self.ops = [op if op.dtype == comp else op.astype(comp) for op in ops]

    def build(self, split_every: Any) -> Any:
        """The result as a lazy dask array (numpy's result dtype)."""
        da = _dask_array()
        eq = self.eq
        if 0 in eq.size_dict.values():  # zeros, in the output's chunks
            out = da.zeros(tuple(eq.size_dict[lab] for lab in eq.output), dtype=self.comp,
                           chunks=tuple(self.chunks[lab] for lab in eq.output))
        else:
            out = self._run_steps(split_every)
        if self.result.kind == "b":
            return out != 0
        return out if out.dtype == self.result else out.astype(self.result)

    def _run_steps(self, split_every: Any) -> Any:
        da = _dask_array()
        eq, tuning = self.eq, self.plan.tuning
        # each intermediate: (array, labels, partial axes): the partial axes are trailing block
        # axes of partial results not yet added up (see _deferred), which the consuming step's
        # tasks add up first
        work: list[tuple[Any, tuple[int, ...], tuple[int, ...]]] = [
            (op, term, ()) for op, term in zip(self.ops, eq.terms)]
        fresh = itertools.count(-1, -1)  # block-axis labels of partial results
        last = len(self.plan.steps) - 1
        for k, step in enumerate(self.plan.steps):
            inputs = [work[p] for p in step.operands]
            extra = self._tree_reduced(step, [term for _, term, _ in inputs])
            out_index = step.output + extra
            args = [item for arr, term, partial in inputs for item in (arr, term + partial)]
            block = da.blockwise(
                _block_step, out_index, *args,
                dtype=self.comp, adjust_chunks=dict.fromkeys(extra, 1), concatenate=True,
                align_arrays=False,  # aligned once, in __init__; every step keeps the chunks
                name=f"contract-step{k}-" + _token(step, [(a, t + p) for a, t, p in inputs]),
                step=step, terms=tuple(term for _, term, _ in inputs), n_extra=len(extra),
                partials=tuple(len(partial) for _, _, partial in inputs), tuning=tuning)
            partial: tuple[int, ...] = ()
            if extra and k != last and not step.in_place and self._deferred(step, extra,
                                                                            split_every):
                partial = tuple(next(fresh) for _ in extra)
            elif extra:
                n = len(step.output)
                block = block.sum(axis=tuple(range(n, n + len(extra))), dtype=self.comp,
                                  split_every=split_every)
            if step.in_place:
                work[step.operands[0]] = (block, step.output, ())
                continue
            for p in sorted(step.operands, reverse=True):
                del work[p]
            work.append((block, step.output, partial))
        return work[0][0]

    def _deferred(self, step: Step, extra: tuple[int, ...], split_every: Any) -> bool:
        """Whether a step's partial results are left for the next step's tasks to add up.

        Without a ``split_every``, when there are at most :data:`DEFER_MAX_PARTIALS` partial
        blocks per result block and they hold at most :data:`DEFER_MAX_BYTES` together (the
        partial vectors of a matrix-vector step): each consuming task then takes them all and
        adds them up first. That is one task hop per step fewer than a tree reduction (whose
        aggregate task the consumer would wait for), at the price of repeating a small sum in
        every consumer of a block.
        """
        if split_every is not None:
            return False
        count = math.prod(len(self.chunks[lab]) for lab in extra)
        block = math.prod(max(self.chunks[lab], default=0) for lab in step.output)
        return (count <= DEFER_MAX_PARTIALS
                and count * block * self.comp.itemsize <= DEFER_MAX_BYTES)

    def _tree_reduced(self, step: Step, terms: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
        """The summed labels in several blocks that stay block axes of partial results and are
        tree-reduced: all of them (every label keeps its aligned chunks through the steps),
        unless gathering them pays; then none.

        Gathered, a task takes every block along those labels, concatenated: one BLAS call or
        kernel run per output block instead of one per block of the summed labels, no partial
        results and no reduction, at the price of copying its inputs together. That pays for a
        step with much arithmetic per gathered element (at least :data:`GATHER_MIN_INTENSITY`
        multiply-adds: a matrix product with large output blocks, not a thin or
        matrix-vector-shaped one, which only streams its operands) whose gathered inputs fit
        in half of dask's ``array.chunk-size``.
        """
        split = tuple(lab for lab in step.summed if len(self.chunks[lab]) > 1)
        if not split:
            return ()
        big = {lab: max(c, default=0) for lab, c in self.chunks.items()}
        full = self.eq.size_dict
        extent = {lab: full[lab] if lab in split else big[lab]
                  for term in terms for lab in term}
        gathered = sum(math.prod(extent[lab] for lab in dict.fromkeys(term)) for term in terms)
        loop = math.prod(extent.values())
        if (gathered * self.comp.itemsize <= self.gather_bytes
                and loop >= GATHER_MIN_INTENSITY * gathered):
            return ()
        return split

    def step_layout(self) -> list[tuple[tuple[int, ...], tuple[int, ...], int]]:
        """Per step: its block grid (blocks per label, output labels then summed ones), the
        summed labels split over blocks (added by the tree reduction), and the bytes one task
        holds (its input blocks and its result block, at the largest chunk of each label)."""
        item = self.comp.itemsize
        big = {lab: max(c, default=0) for lab, c in self.chunks.items()}
        layout = []
        terms = [tuple(dict.fromkeys(t)) for t in self.eq.terms]
        for step in self.plan.steps:
            step_terms = [terms[p] for p in step.operands]
            labels = list(dict.fromkeys(lab for t in step_terms for lab in t))
            extra = self._tree_reduced(step, step_terms)
            gathered = [lab for lab in step.summed if lab not in extra]
            grid = tuple(1 if lab in gathered else len(self.chunks[lab]) for lab in labels)
            held = sum(math.prod(self.eq.size_dict[lab] if lab in gathered else big[lab]
                                 for lab in t) for t in step_terms)
            held += math.prod(big[lab] for lab in step.output)
            layout.append((tuple(zip(labels, grid)), extra, held * item))
            if step.in_place:
                terms[step.operands[0]] = step.output
                continue
            for p in sorted(step.operands, reverse=True):
                del terms[p]
            terms.append(step.output)
        return layout


def _token(step: Step, inputs: Sequence[tuple[Any, tuple[int, ...]]]) -> str:
    from dask.base import tokenize

    return tokenize(step, [(arr.name, term) for arr, term in inputs])


# ---------------------------------------------------------------------------------------------
# one task


def _block_step(*blocks: np.ndarray, step: Step, terms: tuple[tuple[int, ...], ...],
                n_extra: int, tuning: _tuning.Tuning,
                partials: tuple[int, ...] = ()) -> np.ndarray:
    """One step of the plan on one block of each input: the step's result block (labels
    ``step.output``), with ``n_extra`` trailing axes of length 1 for the summed labels that the
    tree reduction adds up. An input with ``partials[i]`` trailing axes holds the partial
    results of the step that made it, one per block along them: they are added up first.
    Pure: the same blocks give the same bits on any worker."""
    if any(partials):
        blocks = tuple(b.sum(axis=tuple(range(b.ndim - n, b.ndim))) if n else b
                       for b, n in zip(blocks, partials))
    size: dict[int, int] = {}
    for block, term in zip(blocks, terms):
        for lab, n in zip(term, block.shape):
            if size.get(lab, 1) == 1:  # a size-1 broadcast axis yields to the label's size
                size[lab] = n
    inputs = [labelled_view(block, term, size) for block, term in zip(blocks, terms)]
    if step.method == "blas":
        with _one_blas_thread():
            result, labels = _run_step(step, inputs, tuning)
    else:
        result, labels = _run_step(step, inputs, tuning)
    if labels != step.output:
        result = result.transpose([labels.index(lab) for lab in step.output])
    if step.method == "copy" and any(np.may_share_memory(result, b) for b in blocks):
        result = result.copy()
    return result.reshape(result.shape + (1,) * n_extra) if n_extra else result


def _run_step(step: Step, inputs: list[tuple[np.ndarray, tuple[int, ...]]],
              tuning: _tuning.Tuning) -> tuple[np.ndarray, tuple[int, ...]]:
    from .executor import run_step

    return run_step(step, inputs, parallel=False, tuning=tuning)


# BLAS runs on one thread while any dask task runs a BLAS step in this process: the scheduler's
# threads are the parallelism, and a threaded BLAS under each of them would oversubscribe the
# cores. A count of the tasks inside keeps the limit race-free: the first one in sets it, the
# last one out restores the previous thread counts. The BLAS libraries are found once per
# process (threadpoolctl's scan of the loaded libraries) and asked for their thread count
# directly: threadpoolctl's ``limit()`` and its restore cost about 50 us per task, 4% of a
# matrix-vector block of 2000 x 2000 (1.2 ms).
_BLAS_LOCK = threading.Lock()
_blas_state: dict[str, Any] = {"inside": 0, "libraries": None, "restore": []}


def _blas_libraries() -> list[Any]:
    if _blas_state["libraries"] is None:
        from threadpoolctl import ThreadpoolController

        _blas_state["libraries"] = list(
            ThreadpoolController().select(user_api="blas").lib_controllers)
    return _blas_state["libraries"]


class _one_blas_thread:
    def __enter__(self) -> None:
        with _BLAS_LOCK:
            if _blas_state["inside"] == 0:
                restore = []
                for lib in _blas_libraries():
                    threads = lib.get_num_threads()
                    if threads is not None and threads != 1:
                        lib.set_num_threads(1)
                        restore.append((lib, threads))
                _blas_state["restore"] = restore
            _blas_state["inside"] += 1

    def __exit__(self, *exc: object) -> None:
        with _BLAS_LOCK:
            _blas_state["inside"] -= 1
            if _blas_state["inside"] == 0:
                for lib, threads in _blas_state["restore"]:
                    lib.set_num_threads(threads)
                _blas_state["restore"] = []


# ---------------------------------------------------------------------------------------------
# the report


def _path_info_base() -> type:
    from .api import PathInfo

    return PathInfo


class DaskPathInfo(_path_info_base()):
    """:class:`~contract.api.PathInfo` for dask operands, with the block layout of each step.

    Attributes
    ----------
    chunks : dict
        Label name -> the chunks it is computed in (after the rechunk rule).
    grids : list of dict
        Per step: label name -> number of blocks along it (the step's tasks are their product).
    tasks : list of int
        Per step: the number of blockwise tasks (before the tree reduction).
    reduced : list of tuple of str
        Per step: the summed labels split over several blocks, whose partial results dask's tree
        reduction adds up (or, when small, the next step's tasks).
    task_bytes : list of int
        Per step: bytes one task holds at most (its input blocks and its result block).
    """

    def __init__(self, graph: _Graph) -> None:
        super().__init__(graph.plan)
        self.chunks = {label_name(lab): c for lab, c in sorted(graph.chunks.items())}
        layout = graph.step_layout()
        self.grids = [{label_name(lab): n for lab, n in grid} for grid, _, _ in layout]
        self.tasks = [math.prod(grid.values()) for grid in self.grids]
        self.reduced = [tuple(label_name(lab) for lab in extra) for _, extra, _ in layout]
        self.task_bytes = [held for _, _, held in layout]
        self._names = symbol_names(graph.eq.terms)
        self._layout = layout

    def __str__(self) -> str:
        lines = [self.plan.report(), "-" * 78,
                 "dask: one blockwise per step, each task one block of every input "
                 "(serial kernels, one BLAS thread)",
                 f"{'step':>4}  {'block grid':<32} {'tasks':>8} {'bytes/task':>12}  "
                 f"tree-reduced"]
        for k, (grid, extra, held) in enumerate(self._layout):
            text = " x ".join(f"{self._names[lab]}:{n}" for lab, n in grid)
            summed = ",".join(self._names[lab] for lab in extra) or "-"
            lines.append(f"{k:>4}  {text:<32} {self.tasks[k]:>8} {_bytes(held):>12}  {summed}")
        return "\n".join(lines)


def _bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} TB"
