"""Hardening: bad input, NaN/Inf and overflow, threads, the Numba cache, memory, out= aliasing.

The oracle is :func:`numpy.einsum`: every call of ``contract.einsum``, ``contract.contract``,
``contract.contract_path``/``einsum_path``, ``contract.contract_expression`` and of the Jacobian
API (``einsum_jvp``/``einsum_vjp``/``einsum_jacobian``, ``Jacobian``, ``chain``,
``jacobian_subscripts``) either returns numpy's answer or raises the exception type numpy raises
for the same call, and nothing crashes the interpreter.

How to run
----------
``pytest tests/test_hardening.py`` runs a bounded, deterministic fuzz: the whole file in about 40 s
with a warm Numba cache (a few minutes on the first run after a kernel change, which recompiles
the kernels for every dtype). ``pytest tests/test_hardening.py --run-fuzz`` adds the long runs:
20,000 fresh hypothesis cases in-process, 50,000 seeded random ones in a subprocess (seed and
case are printed on failure, ``fuzz_with_random(seed, 1, start=case)`` replays one), 5,000
Jacobian-object cases, 100,000-call memory checks (about three minutes). The fuzz also runs in a
subprocess in the default run, so a segfault is a test failure rather than the end of pytest.

When a call has several faults (say bad subscripts *and* ``order=1``) numpy and this engine may
report different ones first; the fuzz then accepts the exception type numpy raises for any one of
the faults (the call with keywords left out, a keyword on a valid call, an operand numpy cannot
convert).

Differences from numpy.einsum that are intended (the fuzz accepts them, targeted tests pin them)
-------------------------------------------------------------------------------------------------
* ``optimize=``: an unknown optimizer name raises an error that is a KeyError and a ValueError
  (numpy ignores it for one or two operands and raises KeyError for three or more); an explicit
  path is validated: out-of-range positions raise an IndexError (numpy's type, also a
  ValueError), a path that leaves operands uncontracted a RuntimeError (numpy's, also a
  ValueError), ``(0, 0)`` a ValueError (numpy silently contracts operands 0 and 1), also for a
  single operand (numpy returns it unchanged for ``['einsum_path']``); opt_einsum's bare path
  form ``[(0, 1), ...]`` and every opt_einsum optimizer name (``'dp'``, ``'branch-2'``, ...)
  are accepted (numpy: TypeError / KeyError). A ContractExpression validates an explicit path
  when it is created.
* Sublist labels ``>= 52`` are accepted (numpy: ValueError); labels must still be ints, not bools.
* Any character but ``,``, ``-``, ``>``, ``.`` and whitespace is a label (as in opt_einsum); numpy
  raises ValueError for a character that is not an ASCII letter (UnicodeEncodeError, a subclass,
  for a non-ASCII one).
* A single operand that is only transposed or has a diagonal taken: numpy returns a view and
  ignores ``dtype=`` and ``casting=`` (``einsum('ij->ji', f32, dtype=f64)`` is float32;
  ``casting='no'`` does not stop a byte-order change); we compute in the requested dtype and
  apply the casting rule (TypeError where it forbids the cast).
* numpy's single-operand view does not check a repeated label whose first size is 0:
  ``einsum('bb->b', np.zeros((0, 3)))`` returns a (3,) view past the end of the data (reading
  uninitialized memory); we raise ValueError like for any other size mismatch.
* numpy's ``optimize != False`` code (Python) and its C einsum (the default) disagree in places;
  we follow the C einsum: '...' dimensions missing from an explicit output are an error (numpy's
  Python path sums them), 0-d results are numpy scalars (its Python path sometimes returns 0-d
  arrays), ``order=None`` and ``order=b'F'`` work (its Python path raises AttributeError /
  TypeError), object operands are only multiplied when an axis is not empty.
* Sizes that cannot be computed: numpy's exception depends on its code path (``optimize=False``:
  ValueError "iterator is too large" when the loop nest overflows ``intp``; ``optimize=True``:
  MemoryError when its BLAS output cannot be allocated, sometimes after computing intermediates
  for seconds). We raise ValueError "iterator is too large" whenever one step's loop nest
  overflows ``intp`` (numpy's type for ``optimize=False``, ``numpy.einsum``'s default), else
  numpy's own ValueError "array is too big" or MemoryError for the output or an intermediate --
  in every case before any arithmetic.
* Result dtype byte order: for a byte-swapped operand that numpy returns as a view, numpy's
  result has the operand's non-native dtype (``>f8``); ours is a native copy (``<f8``, equal
  values). The fuzz compares dtypes up to byte order (and a strict xfail pins it).
* ``out=`` given as an ndarray subclass (``np.matrix``) is filled through a temporary (numpy
  writes it directly); the result is the same.
* ``out=`` of another dtype than the operands' result dtype, without ``dtype=``: like numpy's
  default (C) einsum we compute in the common dtype of the operands *and out* (bools are counted
  into an int8 out: ``einsum('i->', [True, True], out=int8)`` is 2; int8 sums into an int64 out
  do not wrap). numpy's own ``optimize=True`` path computes in the operands' dtype instead; the
  fuzz accepts both; see test_out_of_another_dtype.

Problems found and fixed here (contract/api.py, contract/parser.py)
-------------------------------------------------------------------
* ``out=np.matrix(...)`` was written by the kernels through a 2-D "flat" view: heap corruption
  ("double free or corruption", "corrupted size vs. prev_size", process abort). Subclass outputs
  now go through a temporary.
* A fused step with more than 2**63 index combinations wrapped around in int64 and returned a
  wrong answer silently (``einsum('a,b,c,d,e,f,g->', *[np.ones(2048)] * 7, optimize=False)``
  gave ``0.0``; numpy raises ValueError "iterator is too large"); others failed with
  OverflowError in ``np.array(..., dtype=int64)``. Plans are now checked before running.
* An output or intermediate that cannot be allocated was found only when its step ran, after the
  earlier steps (``einsum('c,a,a->ac', ...)`` on broadcast views computed an 8 GB intermediate
  for 9 s, then raised MemoryError); large arrays of a plan are now test-allocated first.
* longdouble / clongdouble operands or ``dtype=`` crashed in Numba's typing (TypingError); they
  are delegated to numpy like the other dtypes the kernels do not run.
* ``order=``/``casting=``: non-strings raise TypeError like numpy (were ValueError); ``order`` is
  case-insensitive and ``None`` means ``'K'``; ASCII bytes are accepted (numpy's converters).
* ``Equation.to_string`` (used to delegate object-dtype ContractExpressions to numpy, and in
  reports) gave '...' dimensions the symbols of real labels: ``'a...,a...->...'`` became
  ``'aa,aa->a'``, so an object-dtype expression on 3x3 operands returned ``[0, 16, 64]`` instead
  of ``[45, 66, 93]`` (and raised for other shapes).
* ``einsum(x)`` (one non-string argument) raises numpy's ValueError, not a sublist error.
* ``contract_path`` on operands whose dtypes do not promote (datetime with float) raised
  DTypePromotionError; planning needs no common dtype (it plans as float64).
* The longdouble delegation exposed a numpy heap corruption (``np.einsum('ij,->ij', a, 3.0)``
  for ``a = np.zeros((3, 2), np.clongdouble)[:2, :0]``, an abort at a later free; found by the
  subprocess fuzz): delegated calls pass numpy fresh copies of empty operands.
* Sublist labels that are bools (``[0, True]``) are refused with TypeError, as numpy does; a tab
  or newline in the subscripts is an invalid subscript (numpy ignores spaces only).

Fixed after this module first pinned them (the tests now guard them): complex NaN/Inf and uint64
sums in the kernels (products no longer start from ``zero + 1``), concurrent launches under the
workqueue layer and parallel kernels in a child forked after OpenMP ran (executor: one parallel
launch at a time, serial kernels after such a fork), ``optimize='dp'`` with ``memory_limit``
(falls back to one fused contraction), the bare ``optimize='einsum_path'`` (refused), and the
byte-swapped single-operand view (returned as a view, like numpy), and stale cached kernels
after a change of the jit options (kernels/_jit.py puts them in Numba's cache key).
"""

from __future__ import annotations

import gc
import itertools
import json
import math
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import opt_einsum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contract
from contract import jacobian as jac
from contract.parser import label_char

# np.matrix outputs and numpy's own NaN/overflow warnings are part of what is tested here
pytestmark = [
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]

TESTS_DIR = pathlib.Path(__file__).resolve().parent
PACKAGE_DIR = pathlib.Path(contract.__file__).resolve().parent

_FAST = settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def _examples(n: int, *, explore: bool = False):
    """Hypothesis settings: deterministic examples by default (a reproducible CI run); the long
    fuzz (``explore=True``) draws new ones every run."""
    return settings(_FAST, max_examples=n, derandomize=not explore)


def _known_bug(reason: str, raises=AssertionError):
    """A strict xfail: the test turns red when the bug it pins is fixed (remove the mark)."""
    return pytest.mark.xfail(strict=True, raises=raises, reason=reason)


# =============================================================================================
# outcomes and comparison
# =============================================================================================


class _Ok:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        v = self.value
        return f"Ok({type(v).__name__} {getattr(v, 'dtype', '')} {getattr(v, 'shape', '')})"


class _Err:
    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc

    def __repr__(self):
        return f"Err({type(self.exc).__name__}: {str(self.exc)[:160]})"


def _outcome(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _Ok(fn(*args, **kwargs))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 -- every exception is an outcome here
            return _Err(exc)


def _tolerance(dtype: np.dtype) -> tuple[float, float]:
    if dtype == np.float16:
        return 2e-2, 5e-2
    if dtype in (np.float32, np.complex64):
        return 2e-4, 2e-4
    return 1e-10, 1e-10


def _same_values(ours, expected, *, what="") -> None:
    """Assert ``ours`` is numpy's ``expected`` (type category, shape, dtype up to byte order,
    values with a tolerance by dtype; NaN equal to NaN)."""
    if expected is None or not isinstance(expected, (np.ndarray, np.generic)):
        # numpy returned a Python object (object dtype, 0-d): compare by value
        assert not isinstance(ours, np.ndarray) or ours.ndim == 0, what
        ours_v = ours.item() if isinstance(ours, (np.ndarray, np.generic)) else ours
        if expected is None:
            assert ours_v is None, what
        elif type(expected) is object:  # a bare object() operand comes back as itself
            assert type(ours_v) is object, what
        elif isinstance(expected, float) and math.isnan(expected):
            assert isinstance(ours_v, float) and math.isnan(ours_v), what
        else:
            assert ours_v == expected, (what, ours_v, expected)
        return
    assert isinstance(ours, np.ndarray) == isinstance(expected, np.ndarray), (
        what,
        type(ours),
        type(expected),
    )
    ours_a, exp_a = np.asarray(ours), np.asarray(expected)
    assert ours_a.shape == exp_a.shape, (what, ours_a.shape, exp_a.shape)
    assert ours_a.dtype.newbyteorder("=") == exp_a.dtype.newbyteorder("="), (
        what,
        ours_a.dtype,
        exp_a.dtype,
    )
    if exp_a.dtype.kind not in "biufc" or ours_a.dtype.kind not in "biufc":
        assert ours_a.tolist() == exp_a.tolist() or np.array_equal(
            ours_a.astype(complex), exp_a.astype(complex), equal_nan=True
        ), what
        return
    if exp_a.dtype.kind in "biu" and ours_a.dtype.kind in "biu":
        np.testing.assert_array_equal(ours_a, exp_a, err_msg=what)
        return
    rtol, atol = _tolerance(exp_a.dtype)
    scale = max(1.0, float(np.max(np.abs(np.nan_to_num(exp_a.astype(np.complex128))), initial=0.0)))
    np.testing.assert_allclose(
        ours_a.astype(np.complex128),
        exp_a.astype(np.complex128),
        rtol=rtol,
        atol=atol * scale,
        equal_nan=True,
        err_msg=what,
    )


def _same_error(ours: _Err, expected: _Err, alternatives=(), extra=()) -> bool:
    """Our exception is numpy's type (or a subclass), or an accepted alternative."""
    t_ours, t_np = type(ours.exc), type(expected.exc)
    if issubclass(t_ours, t_np):
        return True
    # numpy raises UnicodeEncodeError (a ValueError) for non-ASCII subscripts; we raise ValueError
    if issubclass(t_np, UnicodeError) and t_ours is ValueError:
        return True
    return any(issubclass(t_ours, t) for t in (*alternatives, *extra))


# =============================================================================================
# random choices: one generator for hypothesis (data.draw) and for random.Random (subprocess)
# =============================================================================================


class _Draw:
    """Choices drawn from hypothesis (``st.data()``) or from a seeded ``random.Random``."""

    def __init__(self, data=None, seed=None):
        self._data = data
        self._rng = None if data is not None else random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        if self._data is not None:
            return self._data.draw(st.integers(lo, hi))
        return self._rng.randint(lo, hi)

    def choice(self, seq):
        seq = list(seq)
        return seq[self.integer(0, len(seq) - 1)]

    def chance(self, p: float) -> bool:
        return self.integer(0, 999) < p * 1000

    def text(self, alphabet: str, max_size: int) -> str:
        return "".join(self.choice(alphabet) for _ in range(self.integer(0, max_size)))


# letters, ',', '-', '>', '.', spaces, a tab (any other character is a label, as in opt_einsum,
# where numpy raises: an intended difference, pinned in test_parity.py)
_GARBAGE = "abcij,,->-->..... AZ\t"
_LABELS = "abcdA"

_DTYPES = [
    "bool",
    "int8",
    "uint8",
    "int16",
    "int32",
    "int64",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
]
_RARE_DTYPES = ["object", "longdouble", "clongdouble", ">f8", ">i4", "<U1", "M8[s]"]
_LAYOUTS = ["C", "C", "F", "sliced", "negative", "broadcast", "readonly", "byteswap", "unaligned"]
_JUNK = [
    "list",
    "ragged",
    "pyfloat",
    "pyint",
    "pybool",
    "pycomplex",
    "none",
    "object",
    "string",
    "tuple",
    "npscalar",
    "nested_empty",
]


def _values(rng: np.random.Generator, shape, dtype: np.dtype) -> np.ndarray:
    return np.asarray(_raw_values(rng, shape, dtype), dtype=dtype)


def _raw_values(rng: np.random.Generator, shape, dtype: np.dtype):
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind == "u":
        return rng.integers(0, 4, size=shape).astype(dtype)
    if dtype.kind == "i":
        return rng.integers(-3, 4, size=shape).astype(dtype)
    if dtype.kind == "c":
        return (rng.integers(-3, 4, size=shape) + 1j * rng.integers(-3, 4, size=shape)).astype(
            dtype
        )
    if dtype.kind == "f":
        return rng.integers(-3, 4, size=shape).astype(dtype)
    if dtype.kind == "O":
        return rng.integers(-3, 4, size=shape).astype(object)
    if dtype.kind == "U":
        return np.full(shape, "a", dtype=dtype)
    if dtype.kind == "M":
        return np.zeros(shape, dtype=dtype)
    raise AssertionError(dtype)


def _layout(arr: np.ndarray, layout: str) -> np.ndarray:
    """``arr``'s values in the given memory layout (``broadcast`` repeats the first row)."""
    if arr.ndim == 0 and layout not in ("readonly", "byteswap"):
        return arr
    if layout == "C":
        return np.ascontiguousarray(arr)
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "sliced":
        big = np.zeros(tuple(2 * n + 1 for n in arr.shape), dtype=arr.dtype)
        view = big[tuple(slice(1, 1 + 2 * n, 2) for n in arr.shape)]
        view[...] = arr
        return view
    if layout == "negative":
        flip = tuple(slice(None, None, -1) for _ in arr.shape)
        return np.ascontiguousarray(arr[flip])[flip]
    if layout == "broadcast":
        if arr.shape[0] == 0:
            return arr
        return np.broadcast_to(arr[:1], arr.shape)
    if layout == "readonly":
        out = arr.copy()
        out.flags.writeable = False
        return out
    if layout == "byteswap":
        if arr.dtype.byteorder == "|" or arr.dtype.kind == "O":
            return arr
        return arr.astype(arr.dtype.newbyteorder())
    if layout == "unaligned":
        if arr.dtype.itemsize == 1 or arr.dtype.kind == "O" or arr.size == 0:
            return arr
        raw = np.zeros(arr.nbytes + 1, dtype=np.uint8)[1:]
        out = raw.view(arr.dtype).reshape(arr.shape)
        out[...] = arr
        return out
    raise AssertionError(layout)


def _junk(tag: str):
    return {
        "list": [1.0, 2.0],
        "ragged": [[1, 2], [3]],
        "pyfloat": 1.5,
        "pyint": 2,
        "pybool": True,
        "pycomplex": 1 - 2j,
        "none": None,
        "object": object(),
        "string": "ab",
        "tuple": (1, 2, 3),
        "npscalar": np.float32(2.0),
        "nested_empty": [[]],
    }[tag]


def _split_terms(subscripts: str) -> list[list[str]]:
    """Rough terms of a (possibly garbage) subscripts string: letters, '...' kept."""
    lhs = subscripts.split("->")[0]
    terms = []
    for raw in lhs.split(","):
        term, i = [], 0
        while i < len(raw):
            if raw.startswith("...", i):
                term.append("...")
                i += 3
            else:
                if raw[i].isascii() and raw[i].isalpha():
                    term.append(raw[i])
                i += 1
        terms.append(term)
    return terms


def _gen_subscripts(d: _Draw) -> str:
    if d.chance(0.25):
        return d.text(_GARBAGE, 14)
    terms = []
    for _ in range(d.integer(0, 3)):
        term = "".join(d.choice(_LABELS) for _ in range(d.integer(0, 3)))
        if d.chance(0.2):
            pos = d.integer(0, len(term))
            term = term[:pos] + "..." + term[pos:]
        terms.append(term)
    text = ",".join(terms)
    if d.chance(0.6):
        letters = sorted({c for t in terms for c in t if c.isalpha()})
        out = [c for c in letters if d.chance(0.5)]
        if d.chance(0.1):
            out.append(d.choice(_LABELS))  # maybe unknown, maybe repeated
        if any("..." in t for t in terms) and d.chance(0.7):
            out.insert(d.integer(0, len(out)), "...")
        text += "->" + "".join(out)
    if d.chance(0.15):
        pos = d.integer(0, len(text))
        text = text[:pos] + d.choice(_GARBAGE) + text[pos:]
    return text


def _gen_operand_spec(
    d: _Draw, term: list[str] | None, sizes: dict[str, int], ell_shape: tuple[int, ...]
):
    if d.chance(0.1):
        return ("junk", d.choice(_JUNK))
    if term is None:
        shape = tuple(d.integer(0, 3) for _ in range(d.integer(0, 3)))
    else:
        shape = []
        for lab in term:
            if lab == "...":
                k = d.integer(0, len(ell_shape))
                shape.extend(ell_shape[len(ell_shape) - k :])
            else:
                n = sizes.setdefault(lab, d.choice([1, 2, 3]))
                if d.chance(0.06):
                    n = d.integer(0, 4)  # maybe a mismatch, maybe a broadcastable 1
                shape.append(n)
        if d.chance(0.05):
            shape.append(2)  # one dimension too many
        elif shape and d.chance(0.04):
            shape.pop()  # one too few
        shape = tuple(shape)
    dtype = d.choice(_RARE_DTYPES) if d.chance(0.05) else d.choice(_DTYPES)
    return ("array", shape, dtype, d.choice(_LAYOUTS))


_OPT_EINSUM_ONLY = (
    "dp",
    "branch-1",
    "branch-2",
    "branch-all",
    "auto-hq",
    "random-greedy",
    "random-greedy-128",
    "greedy",
    "optimal",
    "auto",
)
_OPTIMIZE_CHOICES = [
    True,
    False,
    None,
    "greedy",
    "optimal",
    "dp",
    "auto",
    "branch-2",
    "bogus",
    "einsum_path",
    ("greedy", 10),
    3.5,
    1,
    [1, 2],
    ["einsum_path", (0, 1)],
    ["einsum_path", (0, 0)],
    [(0, 1)],
    ["einsum_path"],
    "path-list",
]


def _gen_kwargs(d: _Draw, n_operands: int) -> dict:
    kw: dict = {}
    if d.chance(0.15):
        kw["out"] = d.choice(
            [
                "good",
                "good",
                "strided",
                "wrong_shape",
                "wrong_dtype",
                "list",
                "readonly",
                "alias0",
                "alias1",
                "scalar",
                "matrix",
            ]
        )
    if d.chance(0.12):
        kw["dtype"] = d.choice(
            [
                None,
                "float64",
                "float32",
                "int64",
                "int8",
                "complex128",
                "bool",
                "float16",
                "bogus",
                3,
                "object",
                "longdouble",
                "U3",
            ]
        )
    if d.chance(0.1):
        kw["casting"] = d.choice(
            ["no", "equiv", "safe", "same_kind", "unsafe", "bogus", None, "SAFE", b"safe", 1]
        )
    if d.chance(0.1):
        kw["order"] = d.choice(
            ["C", "F", "A", "K", "c", "f", "a", "k", None, "X", "", 1, b"F", "CC"]
        )
    if d.chance(0.35):
        choice = d.choice(_OPTIMIZE_CHOICES)
        if choice == "path-list":  # a valid numpy-style path for this operand count
            choice = ["einsum_path"] + [(0, 1)] * max(0, n_operands - 1)
        kw["optimize"] = choice
    return kw


def _gen_sublist_case(d: _Draw) -> dict:
    n = d.integer(0, 3)
    sizes = {k: d.integer(0, 3) for k in range(6)}
    items = []
    for _ in range(n):
        labels = [d.integer(0, 5) for _ in range(d.integer(0, 3))]
        shape = tuple(sizes[k] for k in labels)
        sub: list = list(labels)
        if d.chance(0.1):
            sub.insert(d.integer(0, len(sub)), Ellipsis)
        if d.chance(0.1):
            sub.append(d.choice([52, -1, 1.5, "a", True, None, np.int64(2), 60]))
        spec = (
            ("array", shape, d.choice(_DTYPES), d.choice(_LAYOUTS))
            if not d.chance(0.05)
            else ("junk", d.choice(_JUNK))
        )
        items.append((spec, sub if not d.chance(0.05) else d.choice([None, 5, "ab"])))
    out_sub = None
    if d.chance(0.6):
        out_sub = sorted(
            {
                x
                for _, s in items
                if isinstance(s, list)
                for x in s
                if isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 6 and d.chance(0.6)
            }
        )
        if d.chance(0.1):
            out_sub.append(d.choice([0, 1, 52, Ellipsis, -3, 2.0]))
    return {"form": "sublist", "items": items, "out_sub": out_sub}


def _gen_case(d: _Draw) -> dict:
    """A random einsum call: subscripts (string or sublist form), operands, keywords."""
    if d.chance(0.15):
        case = _gen_sublist_case(d)
        n_ops = len(case["items"])
    else:
        subscripts = _gen_subscripts(d)
        terms = _split_terms(subscripts)
        sizes = {lab: d.choice([1, 2, 3, 2, 3, 0]) for lab in _LABELS}
        ell = tuple(d.choice([1, 2, 3]) for _ in range(d.integer(0, 2)))
        n_ops = len(terms) + d.choice([0, 0, 0, 0, 0, 0, -1, 1])
        specs = [
            _gen_operand_spec(d, terms[k] if k < len(terms) else None, sizes, ell)
            for k in range(max(0, n_ops))
        ]
        case = {"form": "string", "subscripts": subscripts, "specs": specs}
    case["kwargs"] = _gen_kwargs(d, n_ops)
    case["seed"] = d.integer(0, 2**31 - 1)
    return case


def _build_operand(spec, rng: np.random.Generator):
    if spec[0] == "junk":
        return _junk(spec[1])
    _, shape, dtype, layout = spec
    dtype = np.dtype(dtype)
    arr = _layout(_values(rng, shape, dtype), layout)
    if arr.size == 0 and dtype.kind == "c" and dtype.itemsize > 16:
        # numpy.einsum itself (the oracle) corrupts the heap on some empty clongdouble views:
        # see test_empty_clongdouble_view_does_not_crash
        arr = arr.copy()
    return arr


def _operand_positions(case: dict) -> list:
    """Build the positional arguments (fresh objects each call; same values for one seed)."""
    rng = np.random.default_rng(case["seed"])
    if case["form"] == "string":
        return [case["subscripts"]] + [_build_operand(s, rng) for s in case["specs"]]
    args: list = []
    for spec, sub in case["items"]:
        args += [_build_operand(spec, rng), sub]
    if case["out_sub"] is not None:
        args.append(case["out_sub"])
    return args


def _operands_of(case: dict, args: list) -> list:
    return args[1:] if case["form"] == "string" else args[0 : 2 * len(case["items"]) : 2]


def _numpy_optimize(value):
    """numpy's equivalent of an ``optimize=`` value (opt_einsum-only names -> True)."""
    if isinstance(value, str) and value in _OPT_EINSUM_ONLY and value not in ("greedy", "optimal"):
        return True
    return value


def _make_out(tag: str, args: list, case: dict, kwargs: dict):
    """The ``out=`` argument described by ``tag``, sized from a numpy dry run."""
    # sized from subscripts, operands and dtype= only, so that it does not depend on the
    # other keywords (the fuzz drops them one by one to find alternative errors)
    dry = _outcome(np.einsum, *args, **{k: v for k, v in kwargs.items() if k == "dtype"})
    if isinstance(dry, _Err):
        dry = _outcome(np.einsum, *args)
    if isinstance(dry, _Ok) and isinstance(dry.value, (np.ndarray, np.generic)):
        shape, dtype = np.shape(dry.value), np.asarray(dry.value).dtype
    else:
        shape, dtype = (2,), np.dtype(np.float64)
    if dtype.kind not in "biufc":
        dtype = np.dtype(np.float64)
    if tag == "good":
        return np.zeros(shape, dtype=dtype)
    if tag == "strided":
        big = np.zeros(tuple(2 * n for n in shape), dtype=dtype)
        return big[tuple(slice(None, None, 2) for _ in shape)]
    if tag == "wrong_shape":
        return np.zeros(shape + (2,), dtype=dtype)
    if tag == "wrong_dtype":
        return np.zeros(shape, dtype=np.int8)
    if tag == "list":
        return np.zeros(shape).tolist()
    if tag == "readonly":
        out = np.zeros(shape, dtype=dtype)
        out.flags.writeable = False
        return out
    if tag == "scalar":
        return 0.0
    if tag == "matrix":
        return (
            np.asmatrix(np.zeros(shape, dtype=dtype))
            if len(shape) == 2
            else np.zeros(shape, dtype=dtype)
        )
    if tag in ("alias0", "alias1"):
        ops = _operands_of(case, args)
        k = int(tag[-1])
        if (
            k < len(ops)
            and isinstance(ops[k], np.ndarray)
            and ops[k].shape == shape
            and ops[k].flags.writeable
            and ops[k].dtype == dtype
        ):
            return ops[k]
        return np.zeros(shape, dtype=dtype)
    raise AssertionError(tag)


def _build(case: dict, for_numpy: bool) -> tuple[list, dict]:
    args = _operand_positions(case)
    kwargs = dict(case["kwargs"])
    if for_numpy and "optimize" in kwargs:
        kwargs["optimize"] = _numpy_optimize(kwargs["optimize"])
    if "out" in kwargs:
        kwargs["out"] = _make_out(kwargs["out"], args, case, kwargs)
    return args, kwargs


def _snapshot(objs) -> list:
    """Copies of the array operands' values (to check that inputs are not written)."""
    return [np.array(o, copy=True) if isinstance(o, np.ndarray) else None for o in objs]


# ---- the rules -------------------------------------------------------------------------------


def _has_wide_sublist_label(case: dict) -> bool:
    if case["form"] != "sublist":
        return False
    subs = [s for _, s in case["items"]] + [case["out_sub"] or []]
    return any(
        isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 52
        for s in subs
        if isinstance(s, list)
        for x in s
    )


# explicit paths (validated here, not by numpy) and the bare 'einsum_path' marker (see
# test_bare_einsum_path_marker_is_an_unknown_optimizer): lenient rules
_LENIENT = ("path", "einsum_path-string")
_PATH_ERRORS = (ValueError, TypeError, KeyError)


def _optimize_kind(case: dict) -> str:
    if "optimize" not in case["kwargs"]:
        return "default"
    value = case["kwargs"]["optimize"]
    if isinstance(value, str):
        if value == "einsum_path":
            return "einsum_path-string"
        return "name" if value in opt_einsum.paths._PATH_OPTIONS else "bogus"
    if isinstance(value, (list, tuple)) and not (
        len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], (int, float))
    ):
        return "path"
    return "other"


def _single_operand_dtype_view(case: dict, args: list) -> bool:
    """numpy ignores dtype= when it returns a view of a single operand."""
    ops = _operands_of(case, args)
    return case["kwargs"].get("dtype") is not None and len(ops) == 1


def _numpy_ignored_dtype(case: dict, args: list, expected: _Ok) -> bool:
    """numpy returned a single operand's view in its own dtype despite ``dtype=``."""
    if not _single_operand_dtype_view(case, args):
        return False
    try:
        wanted = np.dtype(case["kwargs"]["dtype"])
        op_dtype = np.asarray(_operands_of(case, args)[0]).dtype
    except (TypeError, ValueError):
        return False
    got = np.asarray(expected.value).dtype.newbyteorder("=")
    return got != wanted.newbyteorder("=") and got == op_dtype.newbyteorder("=")


def _cast_refused(case: dict, args: list) -> bool:
    """A single operand whose cast to ``dtype=`` (or to its own native order under
    ``casting='no'``) the casting rule forbids: numpy skips the check when it returns a view."""
    ops = _operands_of(case, args)
    if len(ops) != 1:
        return False
    try:
        op_dtype = np.asarray(ops[0]).dtype
        wanted = case["kwargs"].get("dtype")
        wanted = op_dtype.newbyteorder("=") if wanted is None else np.dtype(wanted)
        casting = case["kwargs"].get("casting", "safe")
        return not np.can_cast(op_dtype, wanted, casting=casting)
    except (TypeError, ValueError):
        return False


def _numpy_view_out_of_bounds(case: dict, args: list) -> bool:
    """numpy's single-operand view does not check a repeated label whose first size is 0
    (``'bb->b'`` on a (0, 3) array returns a (3,) view past the end of the data)."""
    ops = _operands_of(case, args)
    shape = _outcome(np.shape, ops[0]) if len(ops) == 1 else None
    return isinstance(shape, _Ok) and 0 in shape.value


def _numpy_alternatives(case: dict, call) -> set:
    """Exception types numpy raises for this call with some keyword arguments left out."""
    keys = [k for k in case["kwargs"]]
    found = set()
    for r in range(len(keys)):
        for drop in itertools.combinations(keys, r + 1):
            sub_case = dict(case, kwargs={k: v for k, v in case["kwargs"].items() if k not in drop})
            args, kwargs = _build(sub_case, for_numpy=True)
            outcome = _outcome(call, *args, **kwargs)
            if isinstance(outcome, _Err):
                found.add(type(outcome.exc))
    return found


def _keyword_fault_types(case: dict) -> set:
    """Exception types numpy raises for the call's keyword values on an otherwise valid call."""
    found = set()
    for key, value in case["kwargs"].items():
        if key == "out":
            continue
        value = _numpy_optimize(value) if key == "optimize" else value
        outcome = _outcome(np.einsum, "i->i", np.ones(2), **{key: value})
        if isinstance(outcome, _Err):
            found.add(type(outcome.exc))
    return found


def _has_hashable_labels(case: dict) -> bool:
    """Whether a sublist-form case has a label that is not an int or Ellipsis (``contract``
    accepts any hashable label there, as opt_einsum; numpy and ``einsum`` raise)."""
    if case.get("form") != "sublist":
        return False
    subs = [sub for _, sub in case["items"]]
    if case.get("out_sub") is not None:
        subs.append(case["out_sub"])
    return any(
        item is not Ellipsis
        and not (isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)))
        for sub in subs if isinstance(sub, (list, tuple))
        for item in sub
    )


def _check_against_numpy(case: dict, ours_fn, *, extra_kwargs=None, label="einsum") -> None:
    """Run one fuzzed call through numpy and through ``ours_fn``; assert they agree."""
    np_args, np_kwargs = _build(case, for_numpy=True)
    np_before = _snapshot(_operands_of(case, np_args))
    expected = _outcome(np.einsum, *np_args, **np_kwargs)
    ct_args, ct_kwargs = _build(case, for_numpy=False)
    ct_kwargs.update(extra_kwargs or {})
    ours = _outcome(ours_fn, *ct_args, **ct_kwargs)
    where = f"{label}: {case!r}\n  numpy: {expected!r}\n  ours:  {ours!r}"
    opt_kind = _optimize_kind(case)
    if isinstance(ours, _Err) and not isinstance(ours.exc, Exception):
        raise AssertionError(f"non-Exception raised: {where}")
    if label == "contract" and _has_hashable_labels(case):
        return  # opt_einsum's interleaved form takes any hashable label (pinned in test_parity.py)

    if (
        isinstance(expected, _Err)
        and isinstance(expected.exc, AttributeError)
        and "optimize" in case["kwargs"]
    ):
        # numpy's Python path crashes on some keyword values (order=None -> None.upper());
        # its C path, the default, is the reference
        np_args, np_kwargs = _build(case, for_numpy=True)
        np_kwargs.pop("optimize")
        expected = _outcome(np.einsum, *np_args, **np_kwargs)
        where = f"{label}: {case!r}\n  numpy (C path): {expected!r}\n  ours:  {ours!r}"

    if not np_args:  # einsum(): numpy's ValueError (issue 11; it was Python's TypeError)
        assert isinstance(ours, _Err) and isinstance(ours.exc, ValueError), where
        return

    def accepted_error(extra=()) -> bool:
        """Our error is numpy's, or one numpy raises for a fault this call also has."""
        if isinstance(expected, _Err) and _same_error(ours, expected, extra=extra):
            return True
        alternatives = _numpy_alternatives(case, np.einsum) | _keyword_fault_types(case)
        for op in _operands_of(case, np_args):  # operands numpy cannot convert (ragged lists)
            converted = _outcome(np.asarray, op)
            if isinstance(converted, _Err):
                alternatives.add(type(converted.exc))
        return any(issubclass(type(ours.exc), t) for t in (*alternatives, *extra))

    if opt_kind == "bogus":  # intended: an unknown optimizer name is an error
        if isinstance(ours, _Err) and (isinstance(ours.exc, ValueError) or accepted_error()):
            return
        raise AssertionError(f"unknown optimizer name not refused: {where}")

    if isinstance(expected, _Err) and isinstance(ours, _Ok) and "optimize" in case["kwargs"]:
        # numpy's optimize path fails on some calls its C path runs (object operands that are
        # never multiplied because an axis has size 0): the C path is the reference
        np_args, np_kwargs = _build(case, for_numpy=True)
        np_kwargs.pop("optimize")
        np_before = _snapshot(_operands_of(case, np_args))
        c_outcome = _outcome(np.einsum, *np_args, **np_kwargs)
        if isinstance(c_outcome, _Ok):
            expected = c_outcome
            where = f"{label}: {case!r}\n  numpy (C path): {expected!r}\n  ours:  {ours!r}"

    if isinstance(expected, _Err):
        if isinstance(ours, _Ok):
            if _has_wide_sublist_label(case) or opt_kind in _LENIENT:
                return  # intended extensions (labels >= 52, opt_einsum's path forms)
            raise AssertionError(f"numpy raises, we return: {where}")
        extra = _PATH_ERRORS if opt_kind in _LENIENT else ()
        if _has_wide_sublist_label(case):
            extra += (ValueError, TypeError)
        if _cast_refused(case, np_args):
            extra += (TypeError,)
        if _numpy_view_out_of_bounds(case, np_args):
            extra += (ValueError,)
        if accepted_error(extra):
            return
        raise AssertionError(f"different exception type: {where}")

    # numpy succeeded
    if isinstance(ours, _Err):
        if opt_kind in _LENIENT and isinstance(ours.exc, _PATH_ERRORS):
            return  # explicit paths are validated (numpy accepts e.g. (0, 0))
        if _cast_refused(case, np_args) and isinstance(ours.exc, TypeError):
            return  # numpy ignored dtype=/casting= (a view); we apply them
        if _numpy_view_out_of_bounds(case, np_args) and isinstance(ours.exc, ValueError):
            return  # numpy's unchecked view reads past the data; we refuse
        if "optimize" in case["kwargs"]:
            # numpy's optimize != False code accepts some calls its C einsum (the default)
            # refuses ('...' dimensions missing from the output get summed, dtype= and the out=
            # shape are not always checked); we refuse them as the C einsum does
            c_case = dict(case, kwargs={k: v for k, v in case["kwargs"].items() if k != "optimize"})
            c_args, c_kwargs = _build(c_case, for_numpy=True)
            c_outcome = _outcome(np.einsum, *c_args, **c_kwargs)
            if isinstance(c_outcome, _Err):
                faults = {type(c_outcome.exc)} | _numpy_alternatives(c_case, np.einsum)
                faults |= _keyword_fault_types(c_case)
                if any(issubclass(type(ours.exc), t) for t in faults):
                    return
        raise AssertionError(f"numpy returns, we raise: {where}")
    ct_out = ct_kwargs.get("out")
    if "out" in np_kwargs:
        assert ours.value is ct_out, f"out= not returned: {where}"
    ct_ops = _operands_of(case, ct_args)

    def compare(expected, np_out) -> None:
        expected_value = expected.value
        if _numpy_ignored_dtype(case, np_args, expected) and (
            np.asarray(ours.value).dtype != np.asarray(expected_value).dtype
        ):
            # numpy ignored dtype= (it returned a view); we computed in the requested dtype
            wanted = np.dtype(case["kwargs"]["dtype"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected_value = np.asarray(expected_value).astype(wanted)
            if expected_value.ndim == 0 and not isinstance(expected.value, np.ndarray):
                expected_value = expected_value[()]
        _same_values(ours.value, expected_value, what=where)
        if isinstance(np_out, np.ndarray):
            _same_values(np.asarray(ct_out), np.asarray(np_out), what=where + " (out)")
        # inputs are not written (unless out= is one of them)
        for before, after in zip(np_before, ct_ops):
            if before is not None and after is not ct_out:
                np.testing.assert_array_equal(np.asarray(after), before, err_msg=where)

    try:
        compare(expected, np_kwargs.get("out"))
    except AssertionError as exc:
        # numpy's optimize != False path returns 0-d arrays where its C path returns scalars,
        # and runs a bad explicit path without complaint (``['einsum_path']`` with no step
        # returns the operand itself, leaving out= unwritten): its C path is the reference
        if "optimize" in case["kwargs"]:
            c_args, c_kwargs = _build(case, for_numpy=True)
            c_kwargs.pop("optimize")
            reference = _outcome(np.einsum, *c_args, **c_kwargs)
            if isinstance(reference, _Ok):
                try:
                    compare(reference, c_kwargs.get("out"))
                    return
                except AssertionError:
                    pass
        if _out_of_another_dtype(case, np_kwargs) and _matches_cast_result(case, ct_out):
            return  # computed in the operands' dtype, then cast into out= (see the docstring)
        raise AssertionError(f"different result: {where}\n{exc}") from None


def _out_of_another_dtype(case: dict, np_kwargs: dict) -> bool:
    out = np_kwargs.get("out")
    return isinstance(out, np.ndarray) and case["kwargs"].get("dtype") is None


def _matches_cast_result(case: dict, ct_out) -> bool:
    """``ct_out`` holds numpy's result without ``out=``, cast into out's dtype."""
    args, kwargs = _build(case, for_numpy=True)
    kwargs.pop("out")
    kwargs.pop("optimize", None)
    plain = _outcome(np.einsum, *args, **kwargs)
    if not isinstance(plain, _Ok):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cast = np.asarray(plain.value).astype(ct_out.dtype)
    try:
        _same_values(np.asarray(ct_out), cast)
    except AssertionError:
        return False
    return True


def _check_path_case(case: dict) -> None:
    """contract_path / einsum_path / contract_expression agree with numpy on which calls are
    valid, and the path they return computes numpy's answer."""
    if case["form"] != "string":
        return
    args = _operand_positions(case)
    sub, ops = args[0], args[1:]
    shapes = []
    for op in ops:
        arr = _outcome(np.asarray, op)
        if isinstance(arr, _Err):  # ragged lists: numpy and we both fail in np.asarray
            ours = _outcome(contract.contract_path, sub, *ops)
            assert isinstance(ours, _Err) and isinstance(ours.exc, type(arr.exc)), (case, ours)
            return
        shapes.append(arr.value.shape)
    zeros = [np.zeros(s) for s in shapes]
    optimize = case["kwargs"].get("optimize", "auto")
    opt_kind = _optimize_kind(case)
    expected = _outcome(np.einsum, sub, *zeros)  # numpy's C parser: the reference for validity
    with_optimize = _outcome(np.einsum, sub, *zeros, optimize=_numpy_optimize(optimize))
    if isinstance(expected, _Ok) and isinstance(with_optimize, _Err) and opt_kind == "other":
        expected = with_optimize  # a bad optimize= value (e.g. 3.5): numpy's TypeError
    for name, call in [
        ("contract_path", lambda: contract.contract_path(sub, *ops, optimize=optimize)),
        (
            "contract_path shapes",
            lambda: contract.contract_path(sub, *shapes, shapes=True, optimize=optimize),
        ),
        ("einsum_path", lambda: contract.einsum_path(sub, *ops, optimize=optimize)),
        (
            "contract_expression",
            lambda: contract.contract_expression(sub, *shapes, optimize=optimize),
        ),
    ]:
        ours = _outcome(call)
        where = f"{name}: {case!r}\n  numpy: {expected!r}\n  ours: {ours!r}"
        if opt_kind == "bogus":
            assert isinstance(ours, _Err) and isinstance(ours.exc, (ValueError, TypeError)), where
            continue
        if isinstance(expected, _Err):
            if opt_kind in _LENIENT and isinstance(ours, _Ok):
                continue  # planner: an explicit path for a single operand is ignored
            extra = _PATH_ERRORS if opt_kind in _LENIENT else ()
            assert isinstance(ours, _Err) and _same_error(ours, expected, extra=extra), where
            continue
        if isinstance(ours, _Err):
            assert opt_kind in _LENIENT and isinstance(ours.exc, _PATH_ERRORS), where
            continue
        if name == "contract_expression":
            expr = ours.value
            value = _outcome(expr, *zeros)
            if (
                isinstance(value, _Err)
                and opt_kind in _LENIENT
                and isinstance(value.exc, _PATH_ERRORS)
            ):
                continue  # the bare 'einsum_path' marker: refused when planning
            assert isinstance(value, _Ok), where + f"\n  call: {value!r}"
            _same_values(value.value, expected.value, what=where)
            bad = _outcome(expr, *zeros, np.zeros(1))
            assert isinstance(bad, _Err) and isinstance(bad.exc, ValueError), where
        elif name == "einsum_path":
            path = ours.value[0]
            value = _outcome(contract.einsum, sub, *zeros, optimize=path)
            assert isinstance(value, _Ok), where + f"\n  einsum(optimize=path): {value!r}"
            _same_values(value.value, expected.value, what=where)
        else:
            path = ours.value[0]
            assert all(isinstance(step, tuple) for step in path), where
            value = _outcome(contract.contract, sub, *zeros, optimize=path)
            assert isinstance(value, _Ok), where + f"\n  contract(optimize=path): {value!r}"
            _same_values(value.value, expected.value, what=where)


def _float_like(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "fc"


def _check_jacobian_case(case: dict, d: _Draw) -> None:
    """einsum_jvp / einsum_vjp / einsum_jacobian: numpy's answer or numpy's exception."""
    args = _operand_positions(case)
    ops = _operands_of(case, args)
    n = len(ops)
    wrt = d.integer(-n - 1, n)
    if not args:
        ours = _outcome(jac.einsum_jvp, wrt=wrt, tangent=np.ones(2))
        assert isinstance(ours, _Err) and isinstance(ours.exc, TypeError), ours
        return
    base = _outcome(np.einsum, *args)
    arrays = [
        np.asarray(op) if not isinstance(_outcome(np.asarray, op), _Err) else None for op in ops
    ]
    k_ok = -n <= wrt < n
    k = wrt % n if n and k_ok else None
    rng = np.random.default_rng(case["seed"] + 1)
    if k is not None and arrays[k] is not None:
        shape = arrays[k].shape if not d.chance(0.1) else arrays[k].shape + (1,)
        tangent = rng.integers(-3, 4, size=shape).astype(np.float64)
    else:
        tangent = np.ones(3)
    any_object = any(a is None or a.dtype.kind not in "biufc" for a in arrays)

    def replaced(t):
        new = list(args)
        positions = range(1, n + 1) if case["form"] == "string" else range(0, 2 * n, 2)
        new[list(positions)[k]] = t
        return new

    allowed_first = (IndexError,) if not k_ok else ()
    tangent_ok = k is not None and arrays[k] is not None and tangent.shape == arrays[k].shape

    # -- jvp
    ours = _outcome(jac.einsum_jvp, *args, wrt=wrt, tangent=tangent)
    where = f"einsum_jvp wrt={wrt}: {case!r}\n  numpy: {base!r}\n  ours: {ours!r}"
    if isinstance(ours, _Err) and not isinstance(ours.exc, Exception):
        raise AssertionError(where)
    if isinstance(base, _Err) or not k_ok or not tangent_ok or any_object:
        if isinstance(ours, _Ok):
            assert isinstance(base, _Ok) or _has_wide_sublist_label(case) or any_object, where
        else:
            extra = allowed_first + ((ValueError,) if not tangent_ok else ())
            if any_object:
                extra += (TypeError, ValueError)
            if isinstance(base, _Err):
                assert _same_error(
                    ours,
                    base,
                    extra=extra
                    + ((ValueError, TypeError) if _has_wide_sublist_label(case) else ()),
                ), where
            else:
                assert isinstance(ours.exc, extra or (ValueError,)), where
    else:
        expected = _outcome(np.einsum, *replaced(tangent))
        if isinstance(expected, _Err):
            assert isinstance(ours, _Err) and _same_error(ours, expected), where
        else:
            assert isinstance(ours, _Ok), where
            _same_values(np.asarray(ours.value), np.asarray(expected.value), what=where)

    if isinstance(base, _Err) or not k_ok or any_object or not tangent_ok:
        return
    out_shape = np.shape(base.value)
    u = rng.integers(-3, 4, size=out_shape).astype(np.float64)
    in_shape = arrays[k].shape

    # -- vjp: shape and the adjoint identity <vjp(u), t> == <u, jvp(t)>
    ours = _outcome(jac.einsum_vjp, *args, wrt=wrt, cotangent=u)
    where = f"einsum_vjp wrt={wrt}: {case!r}\n  ours: {ours!r}"
    assert isinstance(ours, _Ok), where
    vjp = np.asarray(ours.value)
    assert vjp.shape == in_shape, where
    jvp_np = np.einsum(*replaced(tangent))
    if all(_float_like(a) for a in arrays):
        lhs = np.sum(vjp.astype(np.complex128) * tangent)
        rhs = np.sum(u * np.asarray(jvp_np).astype(np.complex128))
        np.testing.assert_allclose(lhs, rhs, rtol=1e-3, atol=1e-3, err_msg=where)
    bad = _outcome(jac.einsum_vjp, *args, wrt=wrt, cotangent=np.ones(out_shape + (2,)))
    assert isinstance(bad, _Err) and isinstance(bad.exc, ValueError), where

    # -- the dense Jacobian: shape, and J . t == jvp(t)
    ours = _outcome(jac.einsum_jacobian, *args, wrt=wrt)
    where = f"einsum_jacobian wrt={wrt}: {case!r}\n  ours: {ours!r}"
    assert isinstance(ours, _Ok), where
    J = ours.value
    assert J.out_shape == out_shape and J.in_shape == in_shape, where
    if all(_float_like(a) for a in arrays):
        applied = np.tensordot(J.array.astype(np.complex128), tangent, axes=len(in_shape))
        np.testing.assert_allclose(
            applied, np.asarray(jvp_np).astype(np.complex128), rtol=1e-3, atol=1e-3, err_msg=where
        )


def _garbage_shape(d: _Draw):
    kind = d.integer(0, 9)
    if kind <= 5:
        return tuple(d.integer(0, 3) for _ in range(d.integer(0, 2)))
    return d.choice([None, -1, (2, -1), "ab", 1.5, (1.5,), [[2]], 2, (), np.int64(2), True])


def _check_jacobian_objects(d: _Draw) -> None:
    """Jacobian(), chain() and jacobian_subscripts() on garbage: TypeError/ValueError or a
    correct result."""
    allowed = (TypeError, ValueError)
    # jacobian_subscripts
    shapes = [_garbage_shape(d) for _ in range(d.integer(0, 4))]
    ours = _outcome(jac.jacobian_subscripts, *shapes)
    if isinstance(ours, _Err):
        assert isinstance(ours.exc, allowed), (shapes, ours)
    else:
        terms, output = ours.value
        assert len(terms) == len(shapes) - 1, (shapes, ours.value)
    # Jacobian(...)
    array_shape = tuple(d.integer(0, 3) for _ in range(d.integer(0, 4)))
    array = (
        np.arange(math.prod(array_shape), dtype=float).reshape(array_shape)
        if not d.chance(0.1)
        else d.choice([None, [[1, 2], [3]], "ab", object()])
    )
    kw = {}
    if d.chance(0.6):
        kw["in_ndim"] = d.choice([0, 1, 2, 3, -1, 10, 1.5, None, "1", True])
    if d.chance(0.4):
        kw["out_shape"] = _garbage_shape(d)
    if d.chance(0.4):
        kw["in_shape"] = _garbage_shape(d)
    ours = _outcome(jac.Jacobian, array, **kw)
    if isinstance(ours, _Err):
        assert isinstance(ours.exc, allowed), (array_shape, kw, ours)
    else:
        J = ours.value
        assert J.shape == J.out_shape + J.in_shape, (kw, J)
        assert J.array.size == np.asarray(array).size, (kw, J)
    # chain(...) on random (mostly compatible) boundary shapes
    n = d.integer(0, 4)
    bounds = [tuple(d.integer(1, 3) for _ in range(d.integer(0, 2))) for _ in range(n + 1)]
    rng = np.random.default_rng(d.integer(0, 2**31 - 1))
    jacs = []
    for i in range(n):
        out_s, in_s = bounds[i], bounds[i + 1]
        if d.chance(0.1):
            in_s = in_s + (2,)  # a mismatch
        jacs.append(jac.Jacobian(rng.standard_normal(out_s + in_s), out_shape=out_s, in_shape=in_s))
    if d.chance(0.1):
        jacs.append(d.choice([np.ones(2), None, "J"]))
    kw = {}
    if d.chance(0.3):
        kw["dx"] = rng.standard_normal(bounds[-1] if not d.chance(0.2) else (5,))
    if d.chance(0.3):
        kw["u"] = rng.standard_normal(bounds[0] if not d.chance(0.2) else (5,))
    if d.chance(0.4):
        kw["optimize"] = d.choice(
            ["dp", "greedy", "optimal", "forward", "reverse", "auto", True, False, "bogus", 3]
        )
    ours = _outcome(jac.chain, *jacs, **kw)
    if isinstance(ours, _Err):
        assert isinstance(ours.exc, allowed), (bounds, kw, ours)
        return
    # the reference: the whole chain as one numpy einsum
    arrays = [j.array for j in jacs]
    bds = [j.out_shape for j in jacs] + [jacs[-1].in_shape]
    if "u" in kw:
        arrays.insert(0, kw["u"])
        bds.insert(0, ())
    if "dx" in kw:
        arrays.append(kw["dx"])
        bds.append(())
    value = ours.value.value
    if len(arrays) == 1:
        np.testing.assert_allclose(np.asarray(value.array), arrays[0])
        return
    terms, output = jac.jacobian_subscripts(*bds)
    ref_args = []
    for a, t in zip(arrays, terms):
        ref_args += [a, t]
    expected = np.einsum(*ref_args, output)
    got = value.array if isinstance(value, jac.Jacobian) else np.asarray(value)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=str((bounds, kw)))


# ---- one fuzz iteration, shared by the hypothesis tests and the subprocess run ----------------


def _einsum_no_opt(*args, **kwargs):
    kwargs.setdefault("optimize", False)
    return contract.einsum(*args, **kwargs)


def _run_one(d: _Draw) -> None:
    case = _gen_case(d)
    _check_against_numpy(case, contract.einsum, label="einsum")
    target = d.integer(0, 4)
    if target == 0:
        _check_against_numpy(
            case, contract.contract, extra_kwargs={"use_blas": d.chance(0.5)}, label="contract"
        )
    elif target == 1:
        _check_path_case(case)
    elif target == 2:
        _check_jacobian_case(case, d)
    elif target == 3:
        _check_jacobian_objects(d)
    else:
        expr_case = dict(case)
        _check_expression_against_numpy(expr_case)


def _check_expression_against_numpy(case: dict) -> None:
    """A ContractExpression built from the operands' shapes, called on the operands."""
    if case["form"] != "string":
        return
    args = _operand_positions(case)
    sub, ops = args[0], args[1:]
    try:
        shapes = [np.asarray(op).shape for op in ops]
    except ValueError:
        return
    expr = _outcome(contract.contract_expression, sub, *shapes)
    if isinstance(expr, _Err):
        expected = _outcome(np.einsum, sub, *[np.zeros(s) for s in shapes])
        if _numpy_view_out_of_bounds(case, args) and isinstance(expr.exc, ValueError):
            return
        assert isinstance(expected, _Err) and _same_error(expr, expected), (case, expr, expected)
        return
    kwargs = {k: v for k, v in case["kwargs"].items() if k != "optimize"}
    sub_case = dict(case, kwargs=kwargs)
    _check_against_numpy(sub_case, lambda *a, **k: expr.value(*a[1:], **k), label="expression")


def fuzz_with_random(seed: int, n: int, start: int = 0, progress: bool = False) -> int:
    """The same fuzz without hypothesis (used by the subprocess test). Returns calls made.

    Case ``i`` depends on ``(seed, i)`` only: ``fuzz_with_random(seed, 1, start=i)`` replays it.
    """
    for i in range(start, start + n):
        if progress:
            print("case", i, flush=True)
        _run_one(_Draw(seed=seed * 1_000_003 + i))
    return n


# =============================================================================================
# 1. fuzzed bad input
# =============================================================================================


@_examples(600)
@given(st.data())
def test_fuzz_bad_input_matches_numpy(data):
    _run_one(_Draw(data))


@pytest.mark.fuzz
@_examples(20_000, explore=True)
@given(st.data())
def test_fuzz_bad_input_matches_numpy_long(data):
    _run_one(_Draw(data))


@_examples(200)
@given(st.data())
def test_fuzz_jacobian_objects(data):
    _check_jacobian_objects(_Draw(data))


@pytest.mark.fuzz
@_examples(5_000, explore=True)
@given(st.data())
def test_fuzz_jacobian_objects_long(data):
    _check_jacobian_objects(_Draw(data))


def _python(
    code: str, *, env: dict | None = None, cwd=None, timeout: float = 600, user=None
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (a crash there is a return code here)."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NUMBA_", "CONTRACT_", "PYTEST", "HYPOTHESIS"))
    }
    full_env.update(env or {})
    kwargs = {"user": user} if user is not None else {}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        cwd=cwd or tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def _fuzz_in_subprocess(n: int, seed: int) -> None:
    code = f"""
        import faulthandler, sys, warnings
        faulthandler.enable()
        warnings.simplefilter("ignore")
        sys.path.insert(0, {str(TESTS_DIR)!r})
        sys.path.insert(0, {str(PACKAGE_DIR.parent)!r})
        import test_hardening
        print("calls", test_hardening.fuzz_with_random({seed}, {n}, progress=True))
    """
    proc = _python(code, timeout=900)
    last = [line for line in proc.stdout.splitlines() if line.startswith("case ")][-1:]
    assert proc.returncode == 0, (
        f"fuzz subprocess (seed {seed}) ended with return code {proc.returncode} in "
        f"{last}; replay: test_hardening.fuzz_with_random({seed}, 1, start=<case>)\n"
        f"stderr:\n{proc.stderr[-6000:]}"
    )
    assert f"calls {n}" in proc.stdout


def test_fuzz_in_subprocess_does_not_crash():
    _fuzz_in_subprocess(n=400, seed=12345)


@pytest.mark.fuzz
def test_fuzz_in_subprocess_long():
    _fuzz_in_subprocess(n=50_000, seed=int(time.time()) % 100_000)


# ---- targeted bad input ----------------------------------------------------------------------

A23, B34 = np.ones((2, 3)), np.ones((3, 4))


@pytest.mark.parametrize(
    "kwargs,exc",
    [
        ({"order": 1}, TypeError),
        ({"order": "X"}, ValueError),
        ({"order": ""}, ValueError),
        ({"casting": None}, TypeError),
        ({"casting": 1}, TypeError),
        ({"casting": "SAFE"}, ValueError),
        ({"dtype": "bogus"}, TypeError),
        ({"out": [[0.0] * 4] * 2}, TypeError),
        ({"out": np.zeros((2, 4), np.int8)}, TypeError),
        ({"out": np.zeros((4, 2))}, ValueError),
    ],
)
def test_keyword_errors_have_numpy_types(kwargs, exc):
    for fn in (np.einsum, contract.einsum, contract.contract):
        with pytest.raises(exc):
            fn("ij,jk->ik", A23, B34, **kwargs)
    expr = contract.contract_expression("ij,jk->ik", (2, 3), (3, 4))
    if "dtype" not in kwargs:
        with pytest.raises(exc):
            expr(A23, B34, **kwargs)


@pytest.mark.parametrize("order", ["c", "f", "a", "k", None, b"F"])
def test_order_accepted_like_numpy(order):
    expected = np.einsum("ij,jk->ik", A23, B34, order=order)
    for fn in (contract.einsum, contract.contract):
        got = fn("ij,jk->ik", A23, B34, order=order)
        np.testing.assert_array_equal(got, expected)
        if order in ("f", b"F"):
            assert got.flags.f_contiguous


def test_intended_differences_from_numpy():
    with pytest.raises(ValueError, match="unknown path optimizer"):
        contract.einsum("ij,jk", A23, B34, optimize="bogus")
    np.einsum("ij,jk", A23, B34, optimize="bogus")  # numpy ignores it
    with pytest.raises(ValueError, match="invalid contraction"):
        contract.einsum("ij,jk", A23, B34, optimize=["einsum_path", (0, 0)])
    np.einsum("ij,jk", A23, B34, optimize=["einsum_path", (0, 0)])  # numpy accepts it
    assert contract.einsum(A23, [0, 60]).shape == (2, 3)  # numpy: ValueError
    with pytest.raises(ValueError):
        np.einsum(A23, [0, 60])
    # any character but ',', '-', '>', '.' and whitespace is a label (issue 11; numpy: ValueError)
    np.testing.assert_allclose(contract.einsum("ij,jé", A23, B34), np.einsum("ij,jk", A23, B34))
    with pytest.raises(ValueError):  # as numpy (issue 11; it was TypeError)
        contract.einsum()
    f32 = np.ones((2, 2), np.float32)
    assert np.einsum("ij->ji", f32, dtype=np.float64).dtype == np.float32  # numpy ignores dtype
    assert contract.einsum("ij->ji", f32, dtype=np.float64).dtype == np.float64


def test_bare_einsum_path_marker_is_an_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer"):
        contract.einsum("ij,jk,kl", A23, B34, np.ones((4, 2)), optimize="einsum_path")


def test_bool_sublist_labels_and_tabs_are_refused():
    with pytest.raises(TypeError):
        contract.einsum(A23, [0, True])
    # not even when the equal valid sublist was parsed (and cached) before
    contract.einsum(A23, [0, 1], [1, 0])
    for bad in ([1, 0.0], [True, 0], [1.0, 0]):
        with pytest.raises(TypeError):
            np.einsum(A23, [0, 1], bad)
        with pytest.raises(TypeError):
            contract.einsum(A23, [0, 1], bad)
        with pytest.raises(TypeError):
            contract.einsum(A23, bad[::-1], [0, 1][: len(bad)])
    with pytest.raises(ValueError, match="invalid subscript"):
        contract.einsum("ij,\tjk", A23, B34)
    assert contract.einsum(" i j , j k -> i k ", A23, B34).shape == (2, 4)


def test_object_dtype_expression_with_ellipsis():
    y = np.arange(9).reshape(3, 3).astype(object)
    expr = contract.contract_expression("a...,a...->...", (3, 3), (3, 3))
    assert expr(y, y).tolist() == np.einsum("a...,a...->...", y, y).tolist() == [45, 66, 93]
    expr = contract.contract_expression("A,...a,A", (3,), (3, 3, 2, 2), (3,))
    z = np.ones((3, 3, 2, 2), dtype=object)
    np.testing.assert_array_equal(
        expr(np.ones(3), z, np.ones(3)), np.einsum("A,...a,A", np.ones(3), z, np.ones(3))
    )


def test_out_of_another_dtype():
    """Like numpy's C einsum: computed in the common dtype of the operands and out."""
    b = np.array([True, True])
    i8 = np.array([100, 100], np.int8)
    for fn in (contract.einsum, contract.contract, _einsum_no_opt):
        out = np.zeros((), np.int8)
        fn("i->", b, out=out)
        assert out == np.einsum("i->", b, out=np.zeros((), np.int8)) == 2
        out = np.zeros((), np.int64)
        fn("i,i->", i8, i8, out=out)
        assert out == np.einsum("i,i->", i8, i8, out=np.zeros((), np.int64)) == 20000
    expr = contract.contract_expression("i->", (2,))
    out = np.zeros((), np.int8)
    expr(b, out=out)
    assert out == 2


def test_single_non_string_argument():
    for arg in (np.ones(2), [0], None):
        with pytest.raises(ValueError):
            np.einsum(arg)
        with pytest.raises(ValueError, match="at least an operand"):
            contract.einsum(arg)


def test_contract_path_plans_operands_without_a_common_dtype():
    ops = (np.ones(3), np.zeros(3, dtype="M8[s]"))
    path, info = contract.contract_path("i,i->i", *ops)
    assert path == [(0, 1)] and info.eq == "i,i->i"


@pytest.mark.parametrize("dtype", ["longdouble", "clongdouble"])
def test_longdouble_is_delegated_to_numpy(dtype):
    a = np.arange(6).reshape(2, 3).astype(dtype)
    for fn in (
        contract.einsum,
        contract.contract,
        lambda s, *o, **k: contract.contract_expression(s, (2, 3), (3, 2))(*o, **k),
    ):
        got = fn("ij,jk->ik", a, a.T.copy())
        _same_values(got, np.einsum("ij,jk->ik", a, a.T.copy()))
    got = contract.einsum("ij,jk->ik", A23, B34, dtype=dtype)
    _same_values(got, np.einsum("ij,jk->ik", A23, B34, dtype=dtype))


def test_empty_clongdouble_view_does_not_crash():
    """numpy 2.4 corrupts the heap on ``einsum('ij,->ij', a, 3.0)`` for this empty view ``a``
    ("munmap_chunk(): invalid pointer" at a later free); clongdouble is delegated to numpy, so
    the API hands numpy a fresh copy of empty operands. Run in a subprocess: the failure is a
    crash."""
    code = f"""
        import sys, numpy as np
        sys.path.insert(0, {str(PACKAGE_DIR.parent)!r})
        import contract
        a = np.zeros((3, 2), np.clongdouble)[:2, :0]
        for _ in range(20):
            contract.einsum("ij,->ij", a, 3.0)
            contract.contract("ij,->ji", a, np.int64(2))
            contract.einsum(a, [0, 1], 3.0, [], [1, 0])
            contract.contract_expression("ij,->ij", (2, 0), ())(a, 3.0)
        junk = [np.ones(1000) for _ in range(2000)]
        print("ok")
    """
    proc = _python(code, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


def test_empty_clongdouble_with_diagonal_does_not_crash():
    """numpy 2.4's C einsum also corrupts the heap on ``'bd...a,bcb->b...cd'`` with an empty
    clongdouble operand (found by the long fuzz); the API runs delegated calls with an empty
    operand through numpy's optimize path, which does not. Results match numpy's C path,
    scalars included."""
    code = f"""
        import sys, numpy as np
        sys.path.insert(0, {str(PACKAGE_DIR.parent)!r})
        import contract
        b = np.broadcast_to(np.ones((1, 1, 2), np.clongdouble), (2, 1, 2))
        for _ in range(30):
            a = np.zeros((2, 0, 3, 2, 3), np.clongdouble)
            r = contract.einsum("bd...a,bcb->b...cd", a, b)
            assert r.shape == (2, 3, 2, 1, 0) and r.dtype == np.clongdouble
            s = contract.einsum("bdefa,bcb->", a, b)
            assert type(s) is np.clongdouble and s == 0
        junk = [np.ones(1000) for _ in range(2000)]
        print("ok")
    """
    proc = _python(code, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]
    empty_objects = np.zeros(0, dtype=object)
    assert contract.einsum("i,i->", empty_objects, empty_objects) == np.einsum(
        "i,i->", empty_objects, empty_objects)
    # numpy returns a (3,) view past the data of this empty object array (reading it crashes);
    # like the native dtypes, the delegated call refuses the mismatched diagonal
    with pytest.raises(ValueError, match="don't match"):
        contract.einsum("bb->b", np.zeros((0, 3), dtype=object))


def test_matrix_out_is_filled_safely():
    m = np.asmatrix(np.arange(4.0).reshape(2, 2))
    for fn in (contract.einsum, contract.contract, _einsum_no_opt):
        out = np.asmatrix(np.zeros((2, 2)))
        expected = np.einsum("ij,jk->ik", m, m, out=np.asmatrix(np.zeros((2, 2))))
        assert fn("ij,jk->ik", m, m, out=out) is out
        np.testing.assert_array_equal(out, expected)
    gc.collect()


@pytest.mark.parametrize(
    "layout", ["F", "sliced", "negative", "broadcast", "readonly", "byteswap", "unaligned"]
)
@pytest.mark.parametrize("dtype", ["float64", "int32", "complex64", "bool"])
def test_odd_layouts_everywhere(layout, dtype):
    rng = np.random.default_rng(3)
    a = _layout(_values(rng, (4, 5), np.dtype(dtype)), layout)
    b = _layout(_values(rng, (5, 3), np.dtype(dtype)), layout)
    for eq, ops in [
        ("ij,jk->ik", (a, b)),
        ("ij->", (a,)),
        ("ij->ji", (a,)),
        ("ij,ij->j", (a, a)),
        ("ij,jk->ki", (a, b)),
    ]:
        expected = np.einsum(eq, *ops)
        for got in (
            contract.einsum(eq, *ops),
            _einsum_no_opt(eq, *ops),
            contract.contract(eq, *ops, use_blas=False),
            contract.contract_expression(eq, *[o.shape for o in ops])(*ops),
        ):
            _same_values(got, expected, what=f"{eq} {layout} {dtype}")
        if len(ops) == 2:
            v = jac.einsum_jvp(eq, *ops, wrt=1, tangent=ops[1])
            _same_values(v, np.einsum(eq, *ops), what=f"jvp {eq} {layout} {dtype}")


def test_byteswapped_single_operand_is_a_view_like_numpy():
    a = np.arange(6.0).reshape(2, 3).astype(">f8")
    got = contract.einsum("ij->ji", a)
    assert got.dtype == np.einsum("ij->ji", a).dtype and np.shares_memory(got, a)


# =============================================================================================
# 2. huge declared sizes
# =============================================================================================

HUGE = [10**6, 10**9, 10**12, 2**31, 2**32 + 1, 2**40, 3**25]


@_examples(60)
@given(st.data())
def test_huge_shapes_plan_without_allocating(data):
    """contract_path / contract_expression only plan: any size works, fast."""
    d = _Draw(data)
    n = d.integer(1, 5)
    labels = "abcdefg"
    terms = ["".join(d.choice(labels) for _ in range(d.integer(1, 3))) for _ in range(n)]
    sizes = {lab: d.choice(HUGE + [1, 2]) for lab in labels}
    present = sorted({c for t in terms for c in t})
    output = "".join(c for c in present if d.chance(0.4))
    eq = ",".join(terms) + "->" + output
    shapes = [tuple(sizes[c] for c in t) for t in terms]
    optimize = d.choice(["auto", "greedy", "optimal" if n <= 4 else "greedy", "dp", False])
    limit = d.choice([None, 10**6, "max_input", 10**30])
    t0 = time.perf_counter()
    path, info = contract.contract_path(
        eq, *shapes, shapes=True, optimize=optimize, memory_limit=limit
    )
    expr = contract.contract_expression(eq, *shapes, optimize=optimize, memory_limit=limit)
    assert time.perf_counter() - t0 < 20
    assert info.largest_intermediate >= 1 and len(path) >= 1
    str(info), str(expr)
    with pytest.raises(ValueError, match="must have shape"):
        expr(*[np.ones([1] * (len(s) + 1)) for s in shapes])  # one axis too many
    with pytest.raises(ValueError):
        contract.contract_path(eq, *[s[:-1] + (-1,) for s in shapes], shapes=True)


def _huge_case(d: _Draw):
    """A 1-3 operand einsum on broadcast views whose output (>= 2**48 bytes) cannot exist."""
    n = d.integer(1, 3)
    labels = "abcd"
    terms = ["".join(d.choice(labels) for _ in range(d.integer(1, 2))) for _ in range(n)]
    present = sorted({c for t in terms for c in t})
    big = [c for c in present if d.chance(0.8)] or present[:1]
    sizes = {
        c: (d.choice([2**25, 2**26, 2**33, 10**9]) if c in big else d.choice([1, 2, 3]))
        for c in present
    }
    # every big label is kept in the output; small ones may be summed
    output = "".join(c for c in present if c in big or d.chance(0.5))
    out_elems = math.prod(sizes[c] for c in output)
    if out_elems * 8 < 2**48:
        return None
    ops = []
    for t in terms:
        shape = tuple(sizes[c] for c in t)
        if len(set(t)) < len(t):
            return None  # a repeated label on a broadcast view is fine but keep it simple
        try:
            ops.append(np.broadcast_to(np.float64(1.0), shape))
        except ValueError:  # numpy cannot even describe an operand that large
            return None
    return ",".join(terms) + "->" + output, ops


@_examples(40)
@given(st.data())
def test_huge_broadcast_views_fail_fast(data):
    case = _huge_case(_Draw(data))
    if case is None:
        return
    eq, ops = case
    lhs, output = eq.split("->")
    if len(ops) == 1 and sorted(lhs) == sorted(output):  # a transpose: a view, nothing allocated
        for fn in (np.einsum, contract.einsum, contract.contract):
            view = fn(eq, *ops)
            assert np.shares_memory(view, ops[0]) and view.shape == tuple(
                ops[0].shape[lhs.index(c)] for c in output
            )
        return
    # numpy only with optimize=False: its optimize=True path may compute an 8 GB intermediate
    # before it fails on the output (this engine checks the whole plan first)
    expected_c = _outcome(np.einsum, eq, *ops)
    for optimize in (False, True):
        expected = expected_c if optimize is False else None
        for fn in (contract.einsum, contract.contract):
            t0 = time.perf_counter()
            ours = _outcome(fn, eq, *ops, optimize=optimize)
            elapsed = time.perf_counter() - t0
            where = f"{eq} {[o.shape for o in ops]} optimize={optimize}: {expected!r} {ours!r}"
            assert isinstance(ours, _Err) and isinstance(ours.exc, (MemoryError, ValueError)), where
            assert elapsed < 5, where
            if isinstance(expected, _Err) and optimize is False and fn is contract.einsum:
                assert type(ours.exc) is type(expected.exc), where


def test_jacobian_api_with_huge_sizes_fails_fast():
    big = np.broadcast_to
    a, b = big(1.0, (10**6,)), big(1.0, (10**7,))
    J = jac.Jacobian(big(1.0, (10**6, 10**7)), in_ndim=1)
    K = jac.Jacobian(big(1.0, (10**7, 10**6)), in_ndim=1)
    calls = [
        lambda: jac.einsum_jvp("i,j->ij", a, b, wrt=0, tangent=a),  # 72.8 TiB output
        lambda: jac.einsum_jacobian("i,j->ij", a, b, wrt=0),
        lambda: jac.einsum_jacobian("i,j->ij", big(1.0, (2**31,)), big(1.0, (2**31,))),
        lambda: jac.chain(J, K),  # 10**19 multiply-adds in one step
        lambda: J @ K,
        lambda: jac.Jacobian.identity((10**6,)),
    ]
    for call in calls:
        t0 = time.perf_counter()
        with pytest.raises((MemoryError, ValueError)):
            call()
        assert time.perf_counter() - t0 < 2
    assert jac.jacobian_subscripts((10**12,), (10**12, 10**12), ()) == ([[0, 1, 2], [1, 2]], [0])


def test_int64_index_overflow_is_refused_not_wrapped():
    ops = [np.ones(2**11) for _ in range(7)]  # 2**77 index combinations in one fused loop
    with pytest.raises(ValueError, match="iterator is too large"):
        np.einsum("a,b,c,d,e,f,g->", *ops)
    with pytest.raises(ValueError, match="iterator is too large"):
        contract.einsum("a,b,c,d,e,f,g->", *ops, optimize=False)
    assert contract.einsum("a,b,c,d,e,f,g->", *ops) == 2.0**77  # pairwise: fine
    b = [np.broadcast_to(1.0, (2**31,)), np.broadcast_to(1.0, (2**31,)), np.ones(2)]
    with pytest.raises(ValueError, match="iterator is too large"):
        contract.einsum("a,b,c->", *b, optimize=False)


# =============================================================================================
# 3. NaN / Inf and overflow
# =============================================================================================

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -2.0, 0.5, 3.0])

SPECIAL_EQS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk->ik", [(64, 64), (64, 64)]),  # BLAS-sized
    ("bij,bjk->bik", [(2, 32, 32), (2, 32, 32)]),
    ("ij->", [(5, 6)]),
    ("ij->i", [(5, 6)]),
    ("ij->j", [(5, 6)]),
    ("i,i->", [(7,), (7,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ii->", [(4, 4)]),
    ("ii->i", [(4, 4)]),
    ("ij,ij->ij", [(3, 3), (3, 3)]),
    ("ij,jk,kl->il", [(20, 20), (20, 20), (20, 20)]),
    ("i,i,i->", [(40_000,), (40_000,), (40_000,)]),  # parallel kernel
]

_MODES = {
    "einsum": lambda eq, *ops: contract.einsum(eq, *ops),
    "einsum-unoptimized": lambda eq, *ops: contract.einsum(eq, *ops, optimize=False),
    "contract-blas": lambda eq, *ops: contract.contract(eq, *ops, use_blas=True),
    "contract-kernels": lambda eq, *ops: contract.contract(eq, *ops, use_blas=False),
}


def _classify(x) -> np.ndarray:
    x = np.asarray(x)
    return np.stack([np.isnan(x), np.isposinf(x), np.isneginf(x)])


def _assert_same_specials(got, expected, what=""):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape, what
    if expected.dtype.kind == "c":
        _assert_same_specials(got.real, expected.real, what + " (real)")
        _assert_same_specials(got.imag, expected.imag, what + " (imag)")
        return
    mismatch = _classify(got) != _classify(expected)
    assert not mismatch.any(), f"{what}: NaN/Inf differ at {np.argwhere(mismatch.any(0))[:5]}"
    finite = np.isfinite(expected)
    rtol = 2e-2 if expected.dtype == np.float16 else 1e-4 if expected.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(got[finite], expected[finite], rtol=rtol, atol=rtol, err_msg=what)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("eq,shapes", SPECIAL_EQS, ids=[e for e, _ in SPECIAL_EQS])
def test_nan_inf_propagate_like_numpy(eq, shapes, dtype):
    # A fixed seed per case (str hashes change between processes).
    rng = np.random.default_rng(zlib.crc32(f"{eq} {dtype}".encode()))
    for trial in range(4):
        # trial 0: sparse specials (finite results survive); later: dense
        p_special = 0.02 if trial == 0 else 0.3
        ops = []
        for s in shapes:
            x = rng.choice(SPECIAL[3:], size=s)
            mask = rng.random(s) < p_special
            x[mask] = rng.choice(SPECIAL[:3], size=int(mask.sum()))
            ops.append(x.astype(dtype))
        with np.errstate(all="ignore"):
            one_loop = np.einsum(eq, *ops, optimize=False)
            pairwise = np.einsum(eq, *ops, optimize=True)
        # With three or more operands the order of the products decides some specials
        # (-0.0 * 1.0 * inf is NaN in one loop; (-0.0 * 1.0 + 2.0) * inf is inf pairwise),
        # so numpy's two modes disagree there: either of numpy's answers is then right.
        for mode, fn in _MODES.items():
            with np.errstate(all="ignore"):
                got = np.asarray(fn(eq, *ops))
            what = f"{eq} {dtype} {mode} trial {trial}"
            assert got.dtype == one_loop.dtype and got.shape == one_loop.shape, what
            mismatch = (_classify(got) != _classify(one_loop)).any(0) & (
                _classify(got) != _classify(pairwise)
            ).any(0)
            assert not mismatch.any(), f"{what}: NaN/Inf differ at {np.argwhere(mismatch)[:5]}"
            if len(shapes) < 3:
                _assert_same_specials(got, one_loop, what)


def test_blas_path_is_exercised_by_the_special_value_tests():
    _, info = contract.contract_path("ij,jk->ik", (64, 64), (64, 64), shapes=True)
    assert "blas" in info.methods
    _, info = contract.contract_path("ij,jk->ik", (64, 64), (64, 64), shapes=True, use_blas=False)
    assert "blas" not in info.methods


@pytest.mark.parametrize("mode", list(_MODES))
def test_nan_inf_textbook_cases(mode):
    fn = _MODES[mode]
    inf, nan = np.inf, np.nan
    with np.errstate(all="ignore"):
        assert np.isnan(fn("i,i->", np.array([inf]), np.array([0.0])))  # inf * 0
        assert np.isnan(fn("i->", np.array([inf, -inf])))  # inf - inf
        assert fn("i->", np.array([inf, 1.0])) == inf
        assert np.isnan(fn("i->", np.array([nan, inf])))
        assert fn("i->", np.zeros(0)) == 0.0  # empty sum
        a = np.ones((64, 64))
        a[3, 5] = nan
        r = fn("ij,jk->ik", a, np.ones((64, 64)))
        assert np.isnan(r[3]).all() and np.isfinite(np.delete(r, 3, axis=0)).all()
        b = np.ones((64, 64))
        b[:, 7] = 0.0
        a = np.ones((64, 64))
        a[2, 9] = inf
        r = fn("ij,jk->ik", a, b)
        assert np.isnan(r[2, 7]) and np.isposinf(r[2, 0]) and np.isfinite(r[3]).all()


@pytest.mark.parametrize(
    "eq,ops",
    [
        ("i->", [np.array([complex(np.inf, 1.0)])]),
        ("ij->i", [np.array([[complex(np.inf, 1.0), 1.0]])]),
        ("i,i->i", [np.array([complex(np.inf, 1.0)]), np.array([1 + 1j])]),
        ("i,j->ij", [np.array([complex(np.inf, 1.0)]), np.array([1 + 1j])]),
        ("i->", [np.array([complex(np.nan, 0.0), 1.0])]),
    ],
    ids=["sum", "row-sum", "hadamard", "outer", "nan-sum"],
)
def test_complex_inf_nan_propagate_like_numpy(eq, ops):
    expected = np.einsum(eq, *ops)
    for fn in (_MODES["einsum"], _MODES["contract-kernels"], _MODES["einsum-unoptimized"]):
        with np.errstate(all="ignore"):
            _assert_same_specials(fn(eq, *ops), expected, f"{eq}")


def test_complex_nan_inf_in_blas_products():
    """Where both run BLAS (the GEMM-shaped case) numpy and we agree on complex specials."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((64, 64)) + 1j * rng.standard_normal((64, 64))
    b = a.T.copy()
    a[1, 2] = complex(np.nan, 0.0)
    with np.errstate(all="ignore"):
        got = contract.contract("ij,jk->ik", a, b, use_blas=True)
        expected = np.einsum("ij,jk->ik", a, b, optimize=True)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))


INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"]
OVERFLOW_EQS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk->ik", [(40, 40), (40, 40)]),
    ("ij->", [(5, 6)]),
    ("ij->i", [(5, 6)]),
    ("i,i->", [(7,), (7,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ii->", [(4, 4)]),
    ("ij,ij->ij", [(3, 3), (3, 3)]),
    ("ij,jk,kl->il", [(9, 9), (9, 9), (9, 9)]),
    ("i,i,i->", [(70_000,), (70_000,), (70_000,)]),
    ("i,i->i", [(3,), (3,)]),
]


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_overflow_wraps_like_numpy(dtype):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(11)
    for eq, shapes in OVERFLOW_EQS:
        ops = [rng.integers(info.min, info.max, size=s, dtype=dtype, endpoint=True) for s in shapes]
        for optimize in (False, True):
            expected = np.einsum(eq, *ops, optimize=optimize)
            for mode, fn in _MODES.items():
                got = fn(eq, *ops)
                assert np.asarray(got).dtype == np.asarray(expected).dtype, (eq, mode)
                np.testing.assert_array_equal(got, expected, err_msg=f"{eq} {dtype} {mode}")
    # explicit narrower dtype with unsafe casting wraps the same way
    a = rng.integers(-1000, 1000, size=(5, 6))
    expected = np.einsum("ij->i", a, dtype=np.int8, casting="unsafe")
    got = contract.einsum("ij->i", a, dtype=np.int8, casting="unsafe")
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expected)


def test_uint64_products_and_small_sums_are_exact():
    a = np.array([2**64 - 1, 2**63 + 1], dtype=np.uint64)
    for fn in _MODES.values():
        got = fn("i,i->i", a, np.array([3, 5], dtype=np.uint64))
        assert got.dtype == np.uint64
        np.testing.assert_array_equal(got, a * np.array([3, 5], dtype=np.uint64))


def test_uint64_reductions_wrap_like_numpy():
    a = np.array([2**64 - 1, 2**63 + 1], dtype=np.uint64)
    for fn in _MODES.values():
        got = fn("i->", a)
        assert got.dtype == np.uint64
        assert int(got) == int(np.einsum("i->", a)), fn  # 2**63 (wrapped)


def test_float16_overflow_and_bool_keep_their_dtypes():
    h = np.array([60000.0, 60000.0], dtype=np.float16)
    for fn in _MODES.values():
        got = fn("i->", h)
        assert got.dtype == np.float16 and np.isposinf(got)
        b = np.array([[True, False], [True, True]])
        got = fn("ij,jk->ik", b, b)
        _same_values(got, np.einsum("ij,jk->ik", b, b))


# =============================================================================================
# 4. threads
# =============================================================================================


def _thread_cases():
    rng = np.random.default_rng(5)
    big = rng.standard_normal((96, 96))
    ints = rng.integers(-5, 5, size=(120, 120))
    small = rng.standard_normal((4, 5))
    vec = rng.standard_normal(50_000)
    expr = contract.contract_expression("ij,jk,kl->il", (96, 96), (96, 96), (96, 96))
    j1 = jac.Jacobian(rng.standard_normal((6, 40)), in_ndim=1)
    j2 = jac.Jacobian(rng.standard_normal((40, 30)), in_ndim=1)
    return {
        # name: (callable, exact)
        "blas": (lambda a=big: contract.einsum("ij,jk->ik", a, a), False),
        "kernel-parallel-int": (lambda a=ints: contract.einsum("ij,jk->ik", a, a), True),
        "kernel-parallel-float": (
            lambda a=big: contract.contract("ij,jk->ik", a, a, use_blas=False),
            True,
        ),
        "kernel-serial": (lambda a=small: contract.einsum("ij,kj->ik", a, a), True),
        "reduction": (lambda v=vec: contract.einsum("i,i,i->", v, v, v, optimize=False), True),
        "expression-shared": (lambda a=big: expr(a, a, a), False),
        "out": (
            lambda a=ints: contract.einsum("ij,jk->ik", a, a, out=np.empty((120, 120), np.int64)),
            True,
        ),
        "path": (lambda a=big: contract.contract_path("ij,jk,kl->il", a, a, a)[0], True),
        "jacobian-chain": (lambda: jac.chain(j1, j2).value.array, False),
    }


def _equal(got, expected, exact):
    if exact:
        if isinstance(expected, list):
            assert got == expected
        else:
            np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def _run_threads(worker, n_threads=8, timeout=120):
    pool = ThreadPoolExecutor(max_workers=n_threads)
    futures = [pool.submit(worker, i) for i in range(n_threads)]
    try:
        return [f.result(timeout=timeout) for f in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@pytest.mark.parametrize("operands", ["shared", "distinct"])
def test_threads_give_serial_results(operands):
    cases = _thread_cases()
    serial = {name: fn() for name, (fn, _) in cases.items()}
    per_thread = [_thread_cases() for _ in range(8)] if operands == "distinct" else None

    def worker(i):
        mine = per_thread[i] if per_thread else cases
        results = []
        names = list(mine)
        random.Random(i).shuffle(names)
        for _ in range(3):
            for name in names:
                results.append((name, mine[name][0]()))
        return results

    for results in _run_threads(worker):
        for name, got in results:
            _equal(got, serial[name], cases[name][1])


def test_plan_and_parse_caches_under_concurrency():
    from contract import parser, planner

    rng = np.random.default_rng(9)
    problems = []
    for k in range(120):
        n = 2 + k % 3
        eq = ",".join(["ab", "bc", "cd", "de"][:n]) + "->a" + "bcde"[n - 1]
        shapes = [(2 + (k + i) % 5, 2 + (k + i + 1) % 5) for i in range(n)]
        shapes = [(shapes[0][0], shapes[0][1])] + [
            (shapes[i - 1][1] if i else 0, s[1]) for i, s in enumerate(shapes)
        ][1:]
        ops = [rng.integers(-3, 4, size=s) for s in shapes]
        problems.append((eq, ops))
    expected = [np.einsum(eq, *ops) for eq, ops in problems]
    parser._parse_remembered.cache_clear()
    planner._make_plan_cached.cache_clear()

    def worker(i):
        order = list(range(len(problems)))
        random.Random(i).shuffle(order)
        out = {}
        for k in order:
            eq, ops = problems[k]
            out[k] = (contract.einsum(eq, *ops), contract.contract_path(eq, *ops)[0])
        return out

    results = _run_threads(worker)
    for k, exp in enumerate(expected):
        paths = {tuple(r[k][1]) for r in results}
        assert len(paths) == 1, (problems[k][0], paths)
        for r in results:
            np.testing.assert_array_equal(r[k][0], exp)
    info = parser._parse_remembered.cache_info()
    assert info.currsize <= info.maxsize
    info = planner._make_plan_cached.cache_info()
    assert info.currsize <= info.maxsize


def test_thread_local_numba_thread_counts():
    import numba

    a = np.random.default_rng(2).integers(-5, 5, size=(150, 150))
    expected = contract.einsum("ij,jk->ik", a, a)

    def worker(i):
        numba.set_num_threads(1 + i % numba.config.NUMBA_NUM_THREADS)
        return [contract.einsum("ij,jk->ik", a, a) for _ in range(3)]

    for results in _run_threads(worker):
        for got in results:
            np.testing.assert_array_equal(got, expected)


_THREADS_SCRIPT = """
    import sys, numpy as np
    sys.path.insert(0, {root!r})
    import contract, numba
    from concurrent.futures import ThreadPoolExecutor
    a = np.random.default_rng(0).standard_normal((200, 200))
    ref = contract.contract("ij,jk->ik", a, a, use_blas=False)
    def work(_):
        for _ in range(10):
            np.testing.assert_array_equal(contract.contract("ij,jk->ik", a, a, use_blas=False), ref)
            contract.einsum("ij,jk->ik", a, a)
        return 1
    with ThreadPoolExecutor(8) as ex:
        assert sum(f.result(timeout=120) for f in [ex.submit(work, i) for i in range(8)]) == 8
    print("ok", numba.threading_layer())
"""


def test_threads_with_default_threading_layer_in_subprocess():
    proc = _python(_THREADS_SCRIPT.format(root=str(PACKAGE_DIR.parent)), timeout=600)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_threads_with_workqueue_layer_do_not_abort():
    proc = _python(
        _THREADS_SCRIPT.format(root=str(PACKAGE_DIR.parent)),
        env={"NUMBA_THREADING_LAYER": "workqueue"},
        timeout=600,
    )
    assert proc.returncode == 0 and "ok workqueue" in proc.stdout, proc.stderr[-3000:]


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_parallel_kernels_after_fork():
    import numba

    a = np.random.default_rng(0).standard_normal((200, 200))
    contract.contract("ij,jk->ik", a, a, use_blas=False)  # a parallel launch picks the layer
    if numba.threading_layer() != "omp":
        pytest.skip(f"the {numba.threading_layer()!r} threading layer, not GNU OpenMP")
    code = f"""
        import sys, multiprocessing as mp, numpy as np
        sys.path.insert(0, {str(PACKAGE_DIR.parent)!r})
        import contract
        a = np.random.default_rng(0).standard_normal((200, 200))
        ref = contract.contract("ij,jk->ik", a, a, use_blas=False)
        def child(q):
            q.put(float(np.abs(contract.contract("ij,jk->ik", a, a, use_blas=False) - ref).max()))
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start(); p.join(120)
        assert p.exitcode == 0, p.exitcode
        assert q.get(timeout=5) == 0.0
        print("ok")
    """
    proc = _python(code, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


# =============================================================================================
# 5. the Numba cache
# =============================================================================================

_CACHE_PROBE = """
    import json, sys, warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import numpy as np
        import contract
        from contract.kernels import _jit, sum_products_serial
        a = np.arange(9, dtype=np.int64).reshape(3, 3)
        # one tiny operand: the generic kernel, serial (use_blas=False keeps it out of numpy's loop)
        result = contract.contract("ij->i", a, use_blas=False)
    stats = sum_products_serial.stats
    print(json.dumps({
        "file": contract.__file__,
        "result": np.asarray(result).tolist(),
        "cache_enabled": bool(_jit.CACHE_ENABLED),
        "hits": sum(stats.cache_hits.values()),
        "misses": sum(stats.cache_misses.values()),
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught
                     if "contract" in str(w.message) or "cache" in str(w.message).lower()],
    }))
"""
_EXPECTED_PROBE = np.arange(9).reshape(3, 3).sum(axis=1).tolist()


def _copy_package(dest: pathlib.Path) -> pathlib.Path:
    shutil.copytree(
        PACKAGE_DIR,
        dest / "contract",
        ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc"),
    )
    return dest


def _probe(root: pathlib.Path | None, env: dict | None = None, user=None) -> dict:
    env = dict(env or {})
    root = root if root is not None else PACKAGE_DIR.parent
    env["PYTHONPATH"] = str(root)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = _python(_CACHE_PROBE, env=env, cwd=str(root), user=user)
    if proc.returncode != 0:
        pytest.fail(f"probe exited with {proc.returncode}:\n{proc.stderr[-4000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if pathlib.Path(info["file"]).resolve().parent != (root / "contract").resolve():
        pytest.fail(f"the probe imported the wrong package: {info['file']}")
    return info


@pytest.fixture(scope="module")
def scratch():
    # world-readable (a test runs a subprocess as 'nobody'); pytest's tmp_path is 0700
    path = pathlib.Path(tempfile.mkdtemp(prefix="contract-hardening-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def populated_cache(scratch):
    """A copy of the package with its kernels cached in a NUMBA_CACHE_DIR of its own."""
    root = _copy_package(scratch / "pkg")
    env = {"NUMBA_CACHE_DIR": str(scratch / "numba-cache")}
    first = _probe(root, env)
    second = _probe(root, env)
    return root, env, first, second


def test_cache_dir_elsewhere_is_used(populated_cache):
    root, env, first, second = populated_cache
    assert first["result"] == _EXPECTED_PROBE and second["result"] == _EXPECTED_PROBE
    assert first["cache_enabled"] and first["misses"] >= 1
    assert second["hits"] >= 1 and second["misses"] == 0, second
    assert list(pathlib.Path(env["NUMBA_CACHE_DIR"]).rglob("*.nbi"))
    assert not list((root / "contract").rglob("*.nbi"))  # nothing written into the package
    assert not first["warnings"] and not second["warnings"]


def test_modified_kernel_is_recompiled_not_loaded_stale(populated_cache):
    import ast

    root, env, _, _ = populated_cache
    source = root / "contract" / "kernels" / "sum_products.py"
    original = source.read_text()
    tree = ast.parse(original)
    kernel = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "sum_products_serial"
    )
    # at the end of the serial kernel, overwrite its output buffer (its first argument)
    lines = original.splitlines()
    indent = " " * kernel.body[-1].col_offset
    patched = (
        lines[: kernel.end_lineno]
        + [f"{indent}{kernel.args.args[0].arg}[:] = 42"]
        + lines[kernel.end_lineno :]
    )
    try:
        source.write_text("\n".join(patched) + "\n")
        info = _probe(root, env)
    finally:
        source.write_text(original)
    assert info["misses"] >= 1 and info["hits"] == 0, info
    assert info["result"] == [42] * 3, (
        "the modified kernel did not run: the stale cached one was loaded",
        info,
    )


def test_changed_jit_options_are_not_loaded_stale(populated_cache):
    root, env, _, _ = populated_cache
    _probe(root, env)  # make sure the cache holds this source's kernels
    options = root / "contract" / "kernels" / "_jit.py"
    original = options.read_text()
    if "FASTMATH" not in original:
        pytest.fail("kernels/_jit.py has no FASTMATH any more: update this test")
    try:  # jit() reads FASTMATH when the kernels module is imported, after this line ran
        options.write_text(original + '\nFASTMATH = set(FASTMATH) | {"arcp"}\n')
        info = _probe(root, env)
    finally:
        options.write_text(original)
    assert info["result"] == _EXPECTED_PROBE
    assert info["misses"] >= 1 and info["hits"] == 0, info


def test_unwritable_cache_dir_falls_back_with_a_warning(scratch):
    blocker = scratch / "a-regular-file"
    blocker.write_text("not a directory")
    info = _probe(None, {"NUMBA_CACHE_DIR": str(blocker / "sub")})
    assert info["result"] == _EXPECTED_PROBE
    assert not info["cache_enabled"]
    assert any("RuntimeWarning" in w and "cache" in w for w in info["warnings"]), info
    assert len(info["warnings"]) == 1


def test_cache_switched_off_by_environment(scratch):
    cache = scratch / "unused-cache"
    info = _probe(None, {"CONTRACT_NUMBA_CACHE": "0", "NUMBA_CACHE_DIR": str(cache)})
    assert info["result"] == _EXPECTED_PROBE
    assert not info["cache_enabled"] and not info["warnings"]
    assert not list(cache.rglob("*.nbi"))


def _nobody():
    """'nobody', when we are root and 'nobody' can run this interpreter; else None."""
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        user = pwd.getpwnam("nobody").pw_name
        ok = (
            subprocess.run(
                [sys.executable, "-c", "import numpy, numba"],
                user=user,
                capture_output=True,
                timeout=120,
                cwd="/",
            ).returncode
            == 0
        )
    except (ImportError, KeyError, OSError, subprocess.SubprocessError):
        return None
    return user if ok else None


def test_read_only_install_works(scratch):
    """A package directory nobody may write to: a warning at most, the right answer."""
    root = _copy_package(scratch / "ro")
    user = _nobody()
    if user is None and os.geteuid() == 0:
        # root ignores permissions: make __pycache__ impossible to create instead
        for sub in ("", "kernels"):
            (root / "contract" / sub / "__pycache__").write_text("")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        info = _probe(root, {}, user=user)
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert info["result"] == _EXPECTED_PROBE
    assert len(info["warnings"]) <= 1, info
    assert not list((root / "contract").rglob("*.nbi"))


# =============================================================================================
# 6. memory
# =============================================================================================


@_examples(40)
@given(st.data())
def test_memory_limit_is_honoured(data):
    d = _Draw(data)
    n = d.integer(3, 5)
    labels = "abcdefgh"
    terms = [
        "".join(sorted(set(d.choice(labels) for _ in range(d.integer(1, 3))))) for _ in range(n)
    ]
    present = sorted({c for t in terms for c in t})
    output = "".join(c for c in present if d.chance(0.3))
    sizes = {c: d.integer(2, 6) for c in labels}
    shapes = [tuple(sizes[c] for c in t) for t in terms]
    eq = ",".join(terms) + "->" + output
    limit = d.choice([1, 4, 16, 64, 256, "max_input"])
    # 'max_input' is the largest of the inputs *and the output* (opt_einsum's and numpy's rule)
    out_size = math.prod(sizes[c] for c in output)
    cap = max(max(math.prod(s) for s in shapes), out_size) if limit == "max_input" else limit
    optimize = d.choice(["greedy", "optimal", "auto", "branch-2", "auto-hq"])  # 'dp': see xfail
    _, info = contract.contract_path(
        eq, *shapes, shapes=True, optimize=optimize, memory_limit=limit
    )
    for step in info.plan.steps[:-1]:
        size = math.prod(sizes[c] for c in (label_char(lab) for lab in step.output))
        assert size <= cap, (eq, optimize, limit, info.path, str(info))
    # contract() runs the same plan (and so allocates no larger intermediate)
    rng = np.random.default_rng(1)
    ops = [rng.integers(-3, 4, size=s) for s in shapes]
    seen = []
    from contract import _call

    real_execute = _call.execute

    def spy(plan, *args, **kwargs):
        seen.append(plan)
        return real_execute(plan, *args, **kwargs)

    _call.execute = spy
    try:
        got = contract.contract(eq, *ops, optimize=optimize, memory_limit=limit)
    finally:
        _call.execute = real_execute
    np.testing.assert_array_equal(got, np.einsum(eq, *ops))
    for plan in seen:
        for step in plan.steps[:-1]:
            assert math.prod(sizes[label_char(lab)] for lab in step.output) <= cap


@pytest.mark.parametrize(
    "eq,shapes,limit",
    [
        ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 5)], 1),
        ("a,a,a->a", [(2,), (2,), (2,)], 1),
    ],
)
def test_memory_limit_with_dp(eq, shapes, limit):
    _, info = contract.contract_path(eq, *shapes, shapes=True, optimize="dp", memory_limit=limit)
    for step in info.plan.steps[:-1]:
        assert math.prod(info.size_dict[chr(lab)] for lab in step.output) <= limit


def test_too_big_output_raises_numpys_error_before_allocating():
    a = np.broadcast_to(1.0, (10**6,))
    b = np.broadcast_to(1.0, (10**7,))
    with pytest.raises(MemoryError) as expected:
        np.einsum("i,j->ij", a, b)
    for fn in (
        contract.einsum,
        contract.contract,
        _einsum_no_opt,
        lambda s, *o: contract.contract_expression(s, a.shape, b.shape)(*o),
    ):
        t0 = time.perf_counter()
        with pytest.raises(MemoryError, match=r"TiB|shape \(1000000, 10000000\)") as ours:
            fn("i,j->ij", a, b)
        assert time.perf_counter() - t0 < 2
        assert type(ours.value) is type(expected.value)


def test_too_big_intermediate_raises_before_any_step_runs():
    path = ["einsum_path", (0, 1), (0, 1), (0, 1)]  # the outer product i,j->ij first
    big = [np.broadcast_to(1.0, (2**31,))] * 4  # an intermediate of 2**62 elements
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="too big|too large"):
        contract.einsum("i,j,i,j->", *big, optimize=path)
    # 2**44 elements (128 TiB): representable, refused by the system, before step 0 runs;
    # numpy raises the same MemoryError
    ops = [np.broadcast_to(1.0, (2**22,))] * 4
    with pytest.raises(MemoryError):
        np.einsum("i,j,i,j->", *ops, optimize=path)
    for fn in (contract.einsum, contract.contract):
        with pytest.raises(MemoryError, match="shape"):
            fn("i,j,i,j->", *ops, optimize=path)
    # a big intermediate after a long first step: refused before the first step runs
    ops = [
        np.broadcast_to(1.0, (2**22, 64)),
        np.broadcast_to(1.0, (64,)),
        np.broadcast_to(1.0, (2**22,)),
    ]
    with pytest.raises(MemoryError):
        contract.einsum("ik,k,j->ij", *ops, optimize=["einsum_path", (0, 1), (0, 1)])
    assert time.perf_counter() - t0 < 3


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _leak_check(n_calls: int, slack_kb: int) -> None:
    rng = np.random.default_rng(0)
    a, b, c = rng.random((3, 4)), rng.random((4, 5)), rng.random((5, 2))
    ia = rng.integers(-3, 4, size=(6, 6))
    expr = contract.contract_expression("ij,jk,kl->il", a.shape, b.shape, c.shape)
    out = np.empty((3, 5))
    t1 = jac.Jacobian(rng.random((3, 4)), in_ndim=1)

    def bad():
        try:
            contract.einsum("ij,jk->ik", a, c)
        except ValueError:
            pass

    calls = {
        "einsum": lambda: contract.einsum("ij,jk,kl->il", a, b, c),
        "einsum-unoptimized": lambda: contract.einsum("ij,jk->ik", a, b, optimize=False),
        "expression": lambda: expr(a, b, c),
        "contract-kernels": lambda: contract.contract("ij,jk->ik", ia, ia, use_blas=False),
        "out": lambda: contract.einsum("ij,jk->ik", a, b, out=out),
        "contract_path": lambda: contract.contract_path("ij,jk,kl->il", a, b, c),
        "error": bad,
        "jvp": lambda: t1 @ np.ones(4),
    }
    for name, fn in calls.items():
        for _ in range(max(200, n_calls // 10)):  # warm up: caches, allocator pools
            fn()
        gc.collect()
        before = _rss_kb()
        for _ in range(n_calls):
            fn()
        gc.collect()
        grown = _rss_kb() - before
        assert grown < slack_kb, f"{name}: RSS grew by {grown} kB over {n_calls} calls"


def test_resident_memory_stays_flat():
    _leak_check(n_calls=12_000, slack_kb=4096)


@pytest.mark.fuzz
def test_resident_memory_stays_flat_long():
    _leak_check(n_calls=100_000, slack_kb=4096)


def test_caches_are_bounded():
    from contract import parser, planner

    for k in range(5000):
        contract.contract_path("ij,jk->ik", (2, 3 + k), (3 + k, 2), shapes=True)
    for cache in (parser._parse_remembered, planner._make_plan_cached):
        info = cache.cache_info()
        assert info.maxsize is not None and info.currsize <= info.maxsize


# =============================================================================================
# 7. out= aliasing an input
# =============================================================================================

_ALIAS_CASES = [
    # name, equation, shapes, which out: operand index or a view recipe
    ("matmul-out=a", "ij,jk->ik", [(24, 24), (24, 24)], 0),
    ("matmul-out=b", "ij,jk->ik", [(24, 24), (24, 24)], 1),
    ("matmul-blas-out=a", "ij,jk->ik", [(64, 64), (64, 64)], 0),
    ("matmul-blas-out=b", "ij,jk->ik", [(64, 64), (64, 64)], 1),
    ("matmul-out=a.T", "ij,jk->ik", [(32, 32), (32, 32)], "T0"),
    ("matmul-out=shifted", "ij,jk->ik", [(16, 16), (16, 16)], "shift"),
    ("batched-out=a", "bij,bjk->bik", [(3, 16, 16), (3, 16, 16)], 0),
    ("transpose-out=a", "ij->ji", [(5, 5)], 0),
    ("copy-out=a", "ij->ij", [(5, 5)], 0),
    ("hadamard-out=a", "ij,ij->ij", [(5, 5), (5, 5)], 0),
    ("hadamard-transposed-out=b", "ij,ji->ij", [(5, 5), (5, 5)], 1),
    ("row-sum-out=a[0]", "ij->i", [(5, 5)], "row0"),
    ("col-sum-out=a[:,0]", "ij->j", [(5, 5)], "col0"),
    ("reversed-out", "i,i->i", [(6,), (6,)], "rev0"),
    ("chain-out=a", "ij,jk,kl->il", [(16, 16), (16, 16), (16, 16)], 0),
    ("chain-out=c", "ij,jk,kl->il", [(16, 16), (16, 16), (16, 16)], 2),
]

_ALIAS_MODES = {
    "einsum": lambda *a, **k: contract.einsum(*a, **k),
    "einsum-unoptimized": lambda *a, **k: contract.einsum(*a, optimize=False, **k),
    "contract-blas": lambda *a, **k: contract.contract(*a, use_blas=True, **k),
    "contract-kernels": lambda *a, **k: contract.contract(*a, use_blas=False, **k),
    "expression": lambda eq, *ops, **k: contract.contract_expression(eq, *[o.shape for o in ops])(
        *ops, **k
    ),
}


def _alias_setup(shapes, which, dtype, seed):
    rng = np.random.default_rng(seed)
    ops = [rng.integers(-3, 4, size=s).astype(dtype) for s in shapes]
    if which == "shift":
        base = rng.integers(-3, 4, size=(17, 17)).astype(dtype)
        ops[0] = base[:16, :16]
        return ops, base[1:, 1:]
    if which == "T0":
        return ops, ops[0].T
    if which == "row0":
        return ops, ops[0][0]
    if which == "col0":
        return ops, ops[0][:, 0]
    if which == "rev0":
        return ops, ops[0][::-1]
    return ops, ops[which]


@pytest.mark.parametrize("dtype", ["float64", "int64", "complex128"])
@pytest.mark.parametrize("mode", list(_ALIAS_MODES))
@pytest.mark.parametrize("name,eq,shapes,which", _ALIAS_CASES, ids=[c[0] for c in _ALIAS_CASES])
def test_out_aliasing_an_input_gives_numpys_answer(name, eq, shapes, which, mode, dtype):
    np_ops, np_out = _alias_setup(shapes, which, dtype, seed=len(name))
    expected = np.einsum(eq, *np_ops, out=np_out).copy()
    ops, out = _alias_setup(shapes, which, dtype, seed=len(name))
    clean = np.einsum(eq, *[o.copy() for o in ops])
    np.testing.assert_allclose(expected, clean)  # numpy buffers overlapping operands
    got = _ALIAS_MODES[mode](eq, *ops, out=out)
    assert got is out
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
