"""The one table of benchmark cases that drives asv, ``python -m contract compare`` and tests.

Each :class:`BenchCase` names an einsum equation, its operand shapes, the dtypes it is meaningful
for, and (for matrix products) a ``numpy.matmul`` formulation used as an extra baseline. Operands
are built deterministically from a seed derived from the case name, so every run, every process
and every tool sees the same numbers. FLOP counts come from opt_einsum's cost model (the optimal
path's cost, which for a pairwise GEMM is ``2 * prod(all label sizes)``), scaled by 4 for complex
dtypes (a complex multiply-add is 8 real flops); bytes moved are the operands' plus the output's.

Sizes are chosen so that one call of a good engine takes roughly 0.05-50 ms on a 2-core machine;
the ``tiny`` category measures per-call overhead instead.

This module itself needs only numpy and opt_einsum; it never calls the engine.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import opt_einsum

__all__ = [
    "ALL_DTYPES",
    "CASES",
    "CATEGORIES",
    "NETWORK_CATEGORY",
    "NETWORK_NAMES",
    "BenchCase",
    "check_result",
    "einsum_benchmark_available",
    "get_case",
    "network_case",
    "select",
    "tolerance",
]

#: Every dtype a case may run for, in display order.
ALL_DTYPES: tuple[str, ...] = ("float64", "float32", "complex128", "int64")

#: Categories, in display order, with a one-line description each.
CATEGORIES: dict[str, str] = {
    "gemm": "GEMM-shaped 2-D products (matrix-matrix, matrix-vector, dot)",
    "ttgt": "higher-rank GEMM-like contractions needing transposes (TTGT/TCCG style)",
    "batched": "batched matrix products (explicit and ellipsis batch axes)",
    "elementwise": "Hadamard products and reductions (memory bound)",
    "diagonal": "diagonals and traces (repeated labels)",
    "outer": "outer products (write bound)",
    "network": "multi-operand chains and tensor networks (3-7 operands)",
    "jacobian": "generalized-Jacobian chains with tall/wide factors",
    "tiny": "tiny operands (axes of 2-8): per-call overhead",
}
#: The category of the generated networks (not in :data:`CATEGORIES`, whose cases are all in
#: the static table): tensor networks of 16-152 operands made by the einsum_benchmark
#: package's generators (bench extra), see :data:`NETWORK_NAMES`.
NETWORK_CATEGORY = "einsum_benchmark"

_FLOAT = ("float64", "float32")
_REAL_COMPLEX = ("float64", "float32", "complex128")
_ALL = ALL_DTYPES

#: A baseline whose predicted cost exceeds this many opt_einsum cost units (multiply-adds
#: counted as 2) is expected to take over ~2 s in numpy's naive einsum loop.
_NAIVE_UNITS_PER_SECOND = 1.0e9
# ... and a path that pairs operands at most this fast (above any BLAS on such a machine): a
# network's numpy path can still cost 1e16 (eb_language_model ran for over 20 minutes)
_PAIRED_UNITS_PER_SECOND = 1.0e11


def _chain(*arrays: np.ndarray) -> np.ndarray:
    """Left-to-right matrix chain ``a @ b @ c ...``, the way a user writes it."""
    return functools.reduce(np.matmul, arrays)


def _trace_chain(*arrays: np.ndarray) -> np.ndarray:
    """Trace of a left-to-right matrix chain."""
    return np.trace(_chain(*arrays))


def _matmul_bt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` (the NT GEMM)."""
    return a @ b.T


@dataclass(frozen=True)
class BenchCase:
    """One benchmark case: an einsum equation with operand shapes.

    Parameters
    ----------
    name : str
        Unique identifier, ``[a-z0-9_]`` only (used in asv parameter names and ``--filter``).
    category : str
        One of :data:`CATEGORIES`.
    subscripts : str
        The einsum equation, in explicit form (``'ij,jk->ik'``).
    shapes : tuple of tuple of int
        One shape per operand.
    dtypes : tuple of str
        The dtypes this case runs for (a subset of :data:`ALL_DTYPES`).
    quick : bool
        Part of the ``--quick`` subset (each quick case runs for its first dtype only).
    matmul : callable or None
        ``matmul(*operands)`` computing the same result with ``numpy.matmul``; ``None`` when
        the case is not a matrix product.
    layout : {'C', 'F', 'strided'}
        Memory layout of the operands: C order, Fortran order, or every other element of the
        last axis of a twice-as-wide C array (non-unit strides).
    heavy : bool
        Checking this case against numpy takes long; tests mark it slow.
    note : str
        Why the case is here, shown in ``--json`` output.

    Examples
    --------
    >>> case = get_case("gemm_square")
    >>> case.subscripts, case.shapes
    ('ij,jk->ik', ((256, 256), (256, 256)))
    >>> case.flops("float64") == 2 * 256**3
    True
    >>> [op.shape for op in case.make_operands("float64")]
    [(256, 256), (256, 256)]
    """

    name: str
    category: str
    subscripts: str
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...] = ("float64",)
    quick: bool = False
    matmul: Callable[..., np.ndarray] | None = field(default=None, compare=False)
    layout: str = "C"
    heavy: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9_]+", self.name):
            raise ValueError(f"bench case name {self.name!r} must match [a-z0-9_]+")
        if self.category not in CATEGORIES and self.category != NETWORK_CATEGORY:
            raise ValueError(f"bench case {self.name!r}: unknown category {self.category!r}")
        unknown = set(self.dtypes) - set(ALL_DTYPES)
        if unknown or not self.dtypes:
            raise ValueError(f"bench case {self.name!r}: bad dtypes {self.dtypes!r}")
        if self.layout not in ("C", "F", "strided"):
            raise ValueError(f"bench case {self.name!r}: bad layout {self.layout!r}")
        n_terms = len(self.subscripts.split("->")[0].split(","))
        if n_terms != len(self.shapes):
            raise ValueError(
                f"bench case {self.name!r}: {n_terms} terms but {len(self.shapes)} shapes"
            )

    # ------------------------------------------------------------------ derived data
    @property
    def is_matmul(self) -> bool:
        """Whether a ``numpy.matmul`` baseline applies."""
        return self.matmul is not None

    @property
    def n_operands(self) -> int:
        """Number of operands."""
        return len(self.shapes)

    @functools.cached_property
    def path_info(self) -> opt_einsum.contract.PathInfo:
        """opt_einsum's path report for this case (optimize='optimal' up to 4 operands)."""
        kind: object = "optimal" if self.n_operands <= 4 else "dp"
        if self.n_operands > 12:  # 'dp' is too slow on big networks: 8 random-greedy trials
            kind = opt_einsum.RandomGreedy(max_repeats=8)
        _, info = opt_einsum.contract_path(
            self.subscripts, *self.shapes, shapes=True, optimize=kind
        )
        return info

    @property
    def numpy_compatible(self) -> bool:
        """Whether numpy.einsum can take the equation (ASCII letters only, so at most 52)."""
        return all(c.isascii() for c in self.subscripts)

    def einsum_args(self, operands: Sequence[np.ndarray]) -> list:
        """Arguments of ``contract.einsum``/``opt_einsum.contract`` for these operands.

        The subscript string when it is ASCII, else the interleaved (sublist) form with int
        labels (contract's parser takes only ASCII letters, as numpy's does).
        """
        if self.numpy_compatible:
            return [self.subscripts, *operands]
        lhs, rhs = self.subscripts.split("->")
        number: dict[str, int] = {}
        args: list = []
        for op, term in zip(operands, lhs.split(","), strict=True):
            args += [op, [number.setdefault(c, len(number)) for c in term]]
        args.append([number[c] for c in rhs])
        return args

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the result."""
        info = self.path_info
        return tuple(int(info.size_dict[label]) for label in info.output_subscript)

    def flops(self, dtype: str | np.dtype = "float64") -> int:
        """Real floating-point (or integer) operations of the optimal path.

        Parameters
        ----------
        dtype : str or numpy.dtype
            Complex dtypes count 4 real operations per complex one.

        Returns
        -------
        int
            opt_einsum's cost of the cheaper of the optimal path and the single naive loop
            (for one-operand reductions opt_einsum's path cost counts each element twice),
            times 4 for complex dtypes.
        """
        scale = 4 if np.dtype(dtype).kind == "c" else 1
        info = self.path_info
        return int(min(info.opt_cost, info.naive_cost)) * scale

    def naive_flops(self) -> int:
        """opt_einsum's cost of a single loop over every label (numpy ``optimize=False``)."""
        return int(self.path_info.naive_cost)

    def numpy_cost(self, optimize: bool) -> int:
        """Predicted cost (opt_einsum units) of ``numpy.einsum(..., optimize=optimize)``.

        Parameters
        ----------
        optimize : bool
            ``False``: one naive loop. ``True``: numpy's greedy path with its default memory
            limit (the largest operand), which for some networks degenerates to the naive loop.

        Returns
        -------
        int
            The cost of the path numpy would take.
        """
        if not optimize or self.n_operands == 1 or not self.numpy_compatible:
            return self.naive_flops()
        dummies = [np.broadcast_to(np.zeros((), dtype=np.float64), s) for s in self.shapes]
        path = np.einsum_path(self.subscripts, *dummies, optimize=True)[0]
        _, info = opt_einsum.contract_path(
            self.subscripts, *self.shapes, shapes=True, optimize=path[1:]
        )
        return int(info.opt_cost)

    def predicted_numpy_seconds(self, optimize: bool) -> float:
        """A pessimistic guess of one ``numpy.einsum`` call's time, to skip hopeless baselines.

        Parameters
        ----------
        optimize : bool
            As for :meth:`numpy_cost`.

        Returns
        -------
        float
            Seconds, assuming numpy's naive loop runs 1e9 cost units per second, and a path
            that pairs operands 1e11 (faster than BLAS here, so only a hopeless path is
            skipped).
        """
        cost = self.numpy_cost(optimize)
        if optimize and cost < self.naive_flops():
            return cost / _PAIRED_UNITS_PER_SECOND
        return cost / _NAIVE_UNITS_PER_SECOND

    def bytes_moved(self, dtype: str | np.dtype = "float64") -> int:
        """Bytes of all operands plus the output, at ``dtype``.

        Parameters
        ----------
        dtype : str or numpy.dtype
            Element type.

        Returns
        -------
        int
            ``itemsize * (elements read + output size)``, where an operand with a repeated
            label (a diagonal) is read only on that diagonal.
        """
        itemsize = np.dtype(dtype).itemsize
        info = self.path_info
        elements = int(np.prod(self.output_shape))
        for term in info.input_subscripts.split(","):
            elements += int(np.prod([int(info.size_dict[label]) for label in set(term)]))
        return itemsize * elements

    @property
    def seed(self) -> int:
        """Seed of the operand generator, derived from the name (stable across processes)."""
        return zlib.crc32(self.name.encode())

    def make_operands(self, dtype: str | np.dtype) -> list[np.ndarray]:
        """Build this case's operands deterministically.

        Parameters
        ----------
        dtype : str or numpy.dtype
            Floats are uniform in [-1, 1); complex numbers have uniform real and imaginary
            parts; integers are uniform in [-3, 3].

        Returns
        -------
        list of numpy.ndarray
            One array per operand, in :attr:`layout`.

        Raises
        ------
        ValueError
            If ``dtype`` is not one of the case's :attr:`dtypes`.
        """
        dt = np.dtype(dtype)
        if dt.name not in self.dtypes:
            raise ValueError(f"bench case {self.name!r} does not run for dtype {dt.name}")
        rng = np.random.default_rng(self.seed)
        operands = []
        scale = self._network_scale()
        for shape in self.shapes:
            full = tuple(shape[:-1]) + (2 * shape[-1],) if self.layout == "strided" else shape
            if scale is not None:  # a network: positive values, scaled so the result is ~1
                if dt.kind in "iu":
                    arr = rng.integers(0, 3, size=full).astype(dt)
                else:
                    arr = rng.uniform(0.5, 1.5, full) * scale
                    if dt.kind == "c":
                        arr = arr * np.exp(0.1j * rng.uniform(-1, 1, full))
                    arr = arr.astype(dt)
            elif dt.kind in "iu":
                arr = rng.integers(-3, 4, size=full).astype(dt)
            elif dt.kind == "c":
                arr = (rng.uniform(-1, 1, full) + 1j * rng.uniform(-1, 1, full)).astype(dt)
            else:
                arr = rng.uniform(-1, 1, full).astype(dt)
            if self.layout == "F":
                arr = np.asfortranarray(arr)
            elif self.layout == "strided":
                arr = arr[..., ::2]
            operands.append(arr)
        return operands

    def _network_scale(self) -> float | None:
        """For the einsum_benchmark networks, the factor each operand is scaled by so that the
        result of (values around 1) ** operands * (product of summed extents) is near 1 and no
        engine overflows float32; None for the other cases."""
        if self.category != NETWORK_CATEGORY:
            return None
        info = self.path_info
        kept = set(info.output_subscript)
        log_sum = sum(
            np.log(float(extent)) for label, extent in info.size_dict.items() if label not in kept
        )
        return float(np.exp(-log_sum / self.n_operands))

    def reference(self, operands: Sequence[np.ndarray]) -> np.ndarray:
        """The correct result: ``numpy.einsum`` along opt_einsum's path.

        Parameters
        ----------
        operands : sequence of numpy.ndarray
            From :meth:`make_operands`.

        Returns
        -------
        numpy.ndarray
            numpy's answer (an explicit path avoids numpy's slow naive loop on big networks).
        """
        if not self.numpy_compatible:  # beyond numpy's 52 letters: opt_einsum, pairwise
            return np.asarray(
                opt_einsum.contract(self.subscripts, *operands, optimize=self.path_info.path)
            )
        path = ["einsum_path", *self.path_info.path]
        return np.asarray(np.einsum(self.subscripts, *operands, optimize=path))


def tolerance(dtype: str | np.dtype) -> tuple[float, float]:
    """Relative and (max-scaled) absolute tolerance used to check results of ``dtype``.

    Parameters
    ----------
    dtype : str or numpy.dtype
        Result dtype.

    Returns
    -------
    tuple of float
        ``(rtol, atol_scale)``; the absolute tolerance is ``atol_scale * max(|expected|)``, so
        entries that cancel to near zero are judged against the result's scale. Integers: exact.
    """
    dt = np.dtype(dtype)
    if dt.kind in "iub":
        return 0.0, 0.0
    if dt in (np.float32, np.complex64):
        return 1e-4, 1e-4
    if dt == np.float16:
        return 1e-2, 1e-2
    return 1e-9, 1e-10


def check_result(result: object, expected: np.ndarray) -> str | None:
    """Compare an engine's result with the reference.

    Parameters
    ----------
    result : array_like
        The engine's answer.
    expected : numpy.ndarray
        The reference (:meth:`BenchCase.reference`).

    Returns
    -------
    str or None
        ``None`` when the result is right, else a short description of what is wrong.

    Examples
    --------
    >>> check_result(np.array([1.0, 2.0]), np.array([1.0, 2.0])) is None
    True
    >>> check_result(np.array([1, 3]), np.array([1, 2]))
    'max abs error 1 (1 of 2 elements differ)'
    """
    got = np.asarray(result)
    if got.shape != expected.shape:
        return f"shape {got.shape}, expected {expected.shape}"
    if got.dtype != expected.dtype:
        return f"dtype {got.dtype}, expected {expected.dtype}"
    if expected.size == 0:
        return None
    rtol, atol_scale = tolerance(expected.dtype)
    if rtol == 0.0:
        bad = got != expected
    else:
        atol = atol_scale * float(np.max(np.abs(expected)))
        bad = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    n_bad = int(np.count_nonzero(bad))
    if n_bad == 0:
        return None
    with np.errstate(all="ignore"):
        err = np.max(np.abs(got.astype(np.complex128) - expected.astype(np.complex128)))
    err_text = f"{int(err)}" if rtol == 0.0 else f"{err:.3g}"
    return f"max abs error {err_text} ({n_bad} of {expected.size} elements differ)"


def _c(name: str, category: str, subscripts: str, *shapes: tuple[int, ...], **kw) -> BenchCase:
    return BenchCase(name, category, subscripts, tuple(tuple(s) for s in shapes), **kw)


#: The table. Order is display order.
# fmt: off
CASES: tuple[BenchCase, ...] = (
    # --- GEMM-shaped 2-D -------------------------------------------------------------------
    _c("gemm_square", "gemm", "ij,jk->ik", (256, 256), (256, 256),
       dtypes=_ALL, quick=True, matmul=np.matmul),
    _c("gemm_nt", "gemm", "ij,kj->ik", (384, 256), (320, 256),
       dtypes=_REAL_COMPLEX, matmul=_matmul_bt, note="A @ B.T"),
    _c("gemm_tall_skinny", "gemm", "ij,jk->ik", (20000, 64), (64, 32),
       dtypes=_FLOAT, matmul=np.matmul),
    _c("gemm_fortran", "gemm", "ij,jk->ik", (300, 200), (200, 250),
       dtypes=("float64",), layout="F", matmul=np.matmul, note="Fortran-ordered operands"),
    _c("gemm_strided", "gemm", "ij,jk->ik", (300, 200), (200, 250),
       dtypes=("float64",), layout="strided", matmul=np.matmul,
       note="operands with a stride-2 last axis"),
    _c("matvec", "gemm", "ij,j->i", (2000, 2000), (2000,),
       dtypes=_ALL, matmul=np.matmul, note="memory bound GEMV"),
    _c("dot", "gemm", "i,i->", (1_000_000,), (1_000_000,),
       dtypes=_FLOAT, matmul=np.matmul),
    # --- TTGT / TCCG higher-rank contractions ------------------------------------------
    _c("ttgt_aebd_ce", "ttgt", "aebd,ce->dcba", (32, 64, 32, 32), (32, 64),
       dtypes=_FLOAT, quick=True, note="TCCG: output fully permuted"),
    _c("ttgt_abcd_dbef", "ttgt", "abcd,dbef->aecf", (24, 20, 24, 20), (20, 20, 24, 24),
       dtypes=_REAL_COMPLEX, note="TCCG: two contracted labels, interleaved free labels"),
    _c("ttm_last", "ttgt", "abc,cd->abd", (64, 64, 128), (128, 96),
       dtypes=_FLOAT, matmul=np.matmul, note="tensor-times-matrix on the last mode"),
    _c("ttm_first", "ttgt", "abc,ad->bcd", (128, 64, 64), (128, 96),
       dtypes=_FLOAT, note="tensor-times-matrix on the first mode"),
    _c("ttgt_abc_bda", "ttgt", "abc,bda->dc", (48, 64, 96), (64, 80, 48),
       dtypes=("float64", "int64"), note="two contracted labels in different orders"),
    _c("tccg_dega_gfbc", "ttgt", "dega,gfbc->abcdef", (24, 16, 24, 24), (24, 16, 16, 16),
       dtypes=_FLOAT, note="TCCG 6-D, one thin contracted label; free labels that do not fold"),
    # --- batched matmul ----------------------------------------------------------------
    _c("bmm", "batched", "bij,bjk->bik", (64, 64, 64), (64, 64, 64),
       dtypes=_ALL, quick=True, matmul=np.matmul),
    _c("bmm_ellipsis", "batched", "...ij,...jk->...ik", (8, 8, 32, 48), (8, 8, 48, 32),
       dtypes=_REAL_COMPLEX, matmul=np.matmul),
    _c("bmm_many_small", "batched", "bij,bjk->bik", (20000, 3, 3), (20000, 3, 3),
       dtypes=("float64",), matmul=np.matmul, note="many 3x3 products"),
    _c("bmm_broadcast", "batched", "bij,jk->bik", (64, 128, 96), (96, 80),
       dtypes=_FLOAT, matmul=np.matmul, note="batch on one operand only"),
    _c("batched_dot", "batched", "bi,bi->b", (4000, 256), (4000, 256),
       dtypes=_FLOAT, note="row-wise dot products"),
    # --- Hadamard and reductions ---------------------------------------------------------
    _c("hadamard", "elementwise", "ij,ij->ij", (1000, 1000), (1000, 1000),
       dtypes=_ALL, quick=True),
    _c("hadamard_rowsum", "elementwise", "ij,ij->i", (1000, 1000), (1000, 1000),
       dtypes=_ALL),
    _c("hadamard_full", "elementwise", "ij,ij->", (1000, 1000), (1000, 1000),
       dtypes=("float64",), note="Frobenius inner product"),
    _c("hadamard3", "elementwise", "ij,ij,ij->ij", (1000, 1000), (1000, 1000), (1000, 1000),
       dtypes=("float64",)),
    _c("reduce_ijk_i", "elementwise", "ijk->i", (200, 200, 200),
       dtypes=("float64", "float32", "int64"), quick=True),
    _c("reduce_ijk_k", "elementwise", "ijk->k", (200, 200, 200), dtypes=("float64",),
       note="reduction over the outer axes"),
    _c("reduce_all", "elementwise", "ij->", (2000, 1000), dtypes=_ALL),
    # --- diagonal / trace ----------------------------------------------------------------
    _c("diag", "diagonal", "ii->i", (2000, 2000), dtypes=("float64",)),
    _c("trace", "diagonal", "ii->", (2000, 2000), dtypes=("float64", "int64"), quick=True),
    _c("diag_sum_iij", "diagonal", "iij->j", (500, 500, 64), dtypes=("float64",)),
    _c("diag_product", "diagonal", "ii,ij->ij", (1000, 1000), (1000, 1000),
       dtypes=("float64",), note="scale rows by a diagonal"),
    # --- outer products ------------------------------------------------------------------
    _c("outer", "outer", "i,j->ij", (2000,), (2000,), dtypes=_ALL, quick=True),
    _c("outer3", "outer", "ij,k->ijk", (200, 200), (100,), dtypes=_FLOAT),
    # --- multi-operand chains and tensor networks --------------------------------------------
    _c("chain3", "network", "ij,jk,kl->il", (256, 256), (256, 256), (256, 256),
       dtypes=_FLOAT, matmul=_chain),
    _c("ring5_trace", "network", "ab,bc,cd,de,ea->", *[(200, 200)] * 5,
       dtypes=("float64",), matmul=_trace_chain, note="trace of a product of 5 matrices"),
    _c("chain7_mixed", "network", "ab,bc,cd,de,ef,fg,gh->ah",
       (64, 512), (512, 32), (32, 256), (256, 16), (16, 1024), (1024, 8), (8, 128),
       dtypes=("float64",), matmul=_chain, note="7-matrix chain whose order matters"),
    _c("dmrg_small", "network", "awc,wvst,bvd,ctd->asb",
       (40, 5, 40), (5, 5, 2, 2), (40, 5, 40), (40, 2, 40),
       dtypes=("float64",), quick=True,
       note="DMRG effective Hamiltonian; numpy optimize=True falls back to its naive loop"),
    _c("dmrg", "network", "awc,wvst,bvd,ctd->asb",
       (300, 5, 300), (5, 5, 2, 2), (300, 5, 300), (300, 2, 300),
       dtypes=("float64", "complex128"),
       note="DMRG at bond dimension 300; numpy's naive loop would take over an hour"),
    _c("hyperedge", "network", "ij,ik,il->jkl", (100, 40), (100, 40), (100, 40),
       dtypes=("float64",), note="one label shared by three operands"),
    _c("k4_network", "network", "ab,ac,ad,bc,bd,cd->", *[(48, 48)] * 6,
       dtypes=("float64",), note="complete graph K4 of matrices"),
    _c("mps_env_update", "network", "ac,apb,cpd->bd", (256, 256), (256, 4, 256),
       (256, 4, 256), dtypes=("float64", "complex128"),
       note="MPS environment update E'[b,d] = E[a,c] A[a,p,b] B[c,p,d]"),
    # --- generalized-Jacobian chains -------------------------------------------------------
    _c("jacobian_chain", "jacobian", "ab,bc,cd->ad", (10, 1000), (1000, 5), (5, 2000),
       dtypes=_FLOAT, quick=True, matmul=_chain, note="wide -> narrow -> wide"),
    _c("jacobian_chain_rev", "jacobian", "ab,bc,cd->ad", (2000, 5), (5, 1000), (1000, 10),
       dtypes=("float64",), matmul=_chain,
       note="left-to-right matmul builds a 2000x1000 intermediate"),
    _c("jacobian_batched", "jacobian", "bij,bjk,bkl->bil", (32, 64, 500), (32, 500, 8),
       (32, 8, 300), dtypes=("float64",), matmul=_chain, note="per-sample Jacobian chains"),
    # --- tiny operands: per-call overhead ---------------------------------------------------
    _c("tiny_gemm", "tiny", "ij,jk->ik", (4, 4), (4, 4), dtypes=_ALL, quick=True,
       matmul=np.matmul),
    _c("tiny_bmm", "tiny", "bij,bjk->bik", (2, 3, 3), (2, 3, 3), dtypes=("float64",),
       matmul=np.matmul),
    _c("tiny_trace", "tiny", "ii->", (8, 8), dtypes=("float64",)),
    _c("tiny_hadamard", "tiny", "ij,ij->i", (3, 8), (3, 8), dtypes=("float64", "int64")),
    _c("tiny_outer", "tiny", "i,j->ij", (8,), (8,), dtypes=("float64",)),
    _c("tiny_chain", "tiny", "ij,jk,kl->il", (3, 3), (3, 3), (3, 3), dtypes=("float64",),
       matmul=_chain),
    _c("tiny_network", "tiny", "abc,cd,dea->be", (2, 4, 8), (8, 3), (3, 5, 2),
       dtypes=("float64", "complex128")),
)
# fmt: on



# --- networks from the einsum_benchmark package's generators --------------------------------
def _model_counting(variables: int, clauses: int, seed: int) -> tuple[str, list]:
    """A random 3-SAT formula (DIMACS), turned into a counting network by einsum_benchmark."""
    import os
    import random
    import tempfile

    from einsum_benchmark.converters import tn_from_dimacs_file

    rng = random.Random(seed)
    lines = [f"p cnf {variables} {clauses}"]
    for _ in range(clauses):
        chosen = rng.sample(range(1, variables + 1), 3)
        lines.append(" ".join(str(v if rng.random() < 0.5 else -v) for v in chosen) + " 0")
    with tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    try:
        eq, tensors = tn_from_dimacs_file(f.name)
    finally:
        os.unlink(f.name)
    return eq, [t.shape for t in tensors]


def _maxcut(n: int, reg: int, p: int, seed: int) -> tuple[str, list]:
    from einsum_benchmark.generators.quantum_computing import maxcut

    eq, arrays = maxcut(n=n, reg=reg, p=p, seed=seed)
    return eq, [a.shape for a in arrays]


def _generator(module: str, name: str, *args, **kwargs) -> Callable[[], tuple[str, list]]:
    def make() -> tuple[str, list]:
        import importlib

        gen = getattr(importlib.import_module(f"einsum_benchmark.generators.{module}"), name)
        return gen(*args, **kwargs)

    return make


#: name -> (quick, note, generator of (equation, shapes)). Sizes are chosen so that a good engine
#: runs each in about 5 ms - 2 s on a 2-core machine (float64).
_NETWORKS: dict[str, tuple[bool, str, Callable[[], tuple[str, list]]]] = {
    "eb_matrix_chain": (False, "40 matrices, extents 20-400, shuffled",
                        _generator("structured", "matrix_chain", 40, 20, 400, True, seed=2)),
    "eb_lattice": (False, "6x6 cyclic lattice, bonds 2-4",
                   _generator("structured", "lattice", (6, 6), True, 2, 4, seed=1)),
    "eb_lattice_3d": (False, "3x3x4 open lattice, bonds 2-3",
                      _generator("structured", "lattice", (3, 3, 4), False, 2, 3, seed=3)),
    "eb_tree": (False, "a random tree of 120 tensors, bonds 4-12",
                _generator("structured", "tree", 120, 4, 12, 2, seed=1)),
    "eb_random": (False, "random network, 40 tensors, regularity 3, axes 3-6",
                  _generator("random", "connected_network", 40, 3.0, 2, 3, 6, seed=1)),
    "eb_hyper": (False, "random hypernetwork, 40 tensors, hyperedges of up to 3, axes 3-6",
                 _generator("random", "connected_hypernetwork", 40, 2.5, max_edge_order=3,
                            number_of_output_indices=2, min_axis_size=3, max_axis_size=6,
                            seed=1)),
    "eb_regular": (False, "random 3-regular graph of 60 tensors, bonds 3-5",
                   _generator("random", "regular", 60, 3, 3, 5, seed=1)),
    "eb_mps": (False, "inner product of two 24-site MPS, bond 48, physical 2-8",
               _generator("quantum_computing", "matrix_product_state", 24, 2, 8, 48, seed=1)),
    "eb_maxcut": (False, "QAOA MaxCut amplitude, 16 qubits, 3-regular, p=3",
                  lambda: _maxcut(16, 3, 3, seed=1)),
    "eb_language_model": (False, "MERA language model, depth 2, hidden 6, observed 30",
                          _generator("language_model", "p_first_and_last", 2, 6, 30)),
    "eb_language_sliding": (False, "MERA language model, sliding likelihood, batch 200",
                            _generator("language_model", "sliding_likelihood", 1, 3, 11, 200)),
    "eb_model_counting": (False, "random 3-SAT, 34 variables, 100 clauses (counting network)",
                          lambda: _model_counting(34, 100, seed=1)),
}
_NETWORK_CASES: dict[str, BenchCase] = {}
#: Names of the einsum_benchmark network cases (generated on first use, see :func:`network_case`).
NETWORK_NAMES: tuple[str, ...] = tuple(_NETWORKS)


def einsum_benchmark_available() -> bool:
    """Whether the einsum_benchmark package (bench extra) can be imported."""
    import importlib.util

    return importlib.util.find_spec("einsum_benchmark") is not None


def network_case(name: str) -> BenchCase:
    """One einsum_benchmark network case, generated on first use.

    Parameters
    ----------
    name : str
        A key of the network table (``eb_*``).

    Returns
    -------
    BenchCase
        Category ``'einsum_benchmark'``, all four dtypes.

    Raises
    ------
    ImportError
        When einsum_benchmark is not installed.
    """
    if name not in _NETWORK_CASES:
        quick, note, make = _NETWORKS[name]
        eq, shapes = make()
        eq = eq.replace(" ", "")
        _NETWORK_CASES[name] = BenchCase(
            name, NETWORK_CATEGORY, eq, tuple(tuple(int(d) for d in s) for s in shapes),
            dtypes=_ALL, quick=quick, heavy=True, note=note,
        )
    return _NETWORK_CASES[name]


_BY_NAME: dict[str, BenchCase] = {case.name: case for case in CASES}
if len(_BY_NAME) != len(CASES) or set(_BY_NAME) & set(_NETWORKS):  # pragma: no cover
    raise RuntimeError("duplicate bench case names")


def get_case(name: str) -> BenchCase:
    """Look a case up by name.

    Parameters
    ----------
    name : str
        A :attr:`BenchCase.name`.

    Returns
    -------
    BenchCase
        The case.

    Raises
    ------
    KeyError
        If there is no case of that name.

    Examples
    --------
    >>> get_case("trace").subscripts
    'ii->'
    """
    if name in _NETWORKS:
        return network_case(name)
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no bench case named {name!r}") from None


def select(
    pattern: str | None = None,
    dtypes: Iterable[str] | None = None,
    quick: bool = False,
    categories: Iterable[str] | None = None,
) -> list[tuple[BenchCase, str]]:
    """The (case, dtype) pairs matching a selection, in table order.

    Parameters
    ----------
    pattern : str, optional
        Regular expression searched for in the case name.
    dtypes : iterable of str, optional
        Keep only these dtypes.
    quick : bool
        Only quick cases, each for its first dtype (unless ``dtypes`` selects others).
    categories : iterable of str, optional
        Keep only these categories.

    Returns
    -------
    list of (BenchCase, str)
        Selected pairs.

    Examples
    --------
    >>> [(c.name, d) for c, d in select("^trace$")]
    [('trace', 'float64'), ('trace', 'int64')]
    >>> [(c.name, d) for c, d in select("^trace$", quick=True)]
    [('trace', 'float64')]
    """
    regex = re.compile(pattern) if pattern else None
    wanted_dtypes = None if dtypes is None else [np.dtype(d).name for d in dtypes]
    wanted_categories = None if categories is None else set(categories)
    pairs = []
    networks: list = []
    if einsum_benchmark_available() and (
        wanted_categories is None or NETWORK_CATEGORY in wanted_categories
    ):
        networks = [name for name, spec in _NETWORKS.items() if spec[0] or not quick]
        networks = [name for name in networks if regex is None or regex.search(name)]
    for case in (*CASES, *(network_case(name) for name in networks)):
        if quick and not case.quick:
            continue
        if regex is not None and not regex.search(case.name):
            continue
        if wanted_categories is not None and case.category not in wanted_categories:
            continue
        if wanted_dtypes is not None:
            case_dtypes = [d for d in case.dtypes if d in wanted_dtypes]
        elif quick:
            case_dtypes = list(case.dtypes[:1])
        else:
            case_dtypes = list(case.dtypes)
        pairs.extend((case, d) for d in case_dtypes)
    return pairs
