"""numpy's and opt_einsum's own einsum tests, run against contract.

The test modules ship inside the installed numpy and opt_einsum wheels
(``numpy/_core/tests/test_einsum.py``, ``opt_einsum/tests/``), and, when dask is installed, in
dask's (``dask/array/tests/test_routines.py``, of which the ``test_einsum*`` tests run, with
``dask.array.einsum`` swapped for contract's: dask operands give dask arrays); nothing is installed
or copied.
Each module is loaded afresh under a private name while ``numpy.einsum``/``numpy.einsum_path``
and ``opt_einsum.contract``/``contract_path``/``contract_expression`` are contract's (so the
functions bound at import time, including those in ``parametrize`` lists, are contract's); after
loading, the module's ``np`` (numpy's tests) or ``oe`` (opt_einsum's) is a stand-in module whose
einsum functions are contract's and whose every other attribute is the real module's. numpy and
opt_einsum themselves are never modified outside that import, so contract's own calls into them
(opt_einsum's path search, numpy's einsum for object dtypes) are unaffected.

Tests that check only numpy's or opt_einsum's internals are listed in ``NOT_APPLICABLE`` with a
reason each and are skipped (``conftest.py`` applies the list). Every other test must pass.

opt_einsum's parametrized cases are many (about 7,500); by default a deterministic subset of
them runs: every non-parametrized test, and the cases of a parametrized opt_einsum test whose name
has a CRC-32 divisible by ``SUBSET_MODULUS`` (a fixed sample that spreads over every parameter).
``CONTRACT_PEER_FULL=1`` runs them all, and numpy's sums tests of the narrow integer dtypes
(``NUMPY_FULL_ONLY``), which by default are left out for their compile time.
"""

from __future__ import annotations

import importlib.util
import os
import types
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path

import numpy
import opt_einsum

import contract

NUMPY_TESTS = Path(numpy.__file__).parent / "_core" / "tests" / "test_einsum.py"
OPT_EINSUM_TESTS = Path(opt_einsum.__file__).parent / "tests"
OPT_EINSUM_MODULES = ("test_backends", "test_blas", "test_contract", "test_edge_cases",
                      "test_input", "test_parser", "test_paths", "test_sharing")

FULL = os.environ.get("CONTRACT_PEER_FULL", "") not in ("", "0")
SUBSET_MODULUS = 5
# numpy's per-dtype sums tests of the narrow integer dtypes: each compiles the kernel variants
# for one more dtype. In a cold CI-style run (2 cores) the first of them, int8, took about 7
# minutes and the next ones 20-60 s each; CI has no other use for these dtypes' kernels. By
# default they are left out (the sums tests of int64, float16/32/64, complex64/128 and the
# delegated dtypes run); ``CONTRACT_PEER_FULL=1`` runs them.
NUMPY_FULL_ONLY = tuple(f"TestNumpy_Einsum::test_einsum_sums_{name}" for name in (
    "int8", "uint8", "int16", "uint16", "int32", "uint32", "uint64"))

DASK_TESTS = "test_einsum*"  # the tests of dask's test_routines.py that run here
_DASK_SWAPS = {"einsum": contract.einsum}
_NUMPY_SWAPS = {"einsum": contract.einsum, "einsum_path": contract.einsum_path}
_OPT_EINSUM_SWAPS = {"contract": contract.contract, "contract_path": contract.contract_path,
                     "contract_expression": contract.contract_expression}

# Tests that check numpy's or opt_einsum's internals (printed reports, exact path choices,
# internal attributes and caches), other libraries' backends, or a documented difference: skipped
# with the reason given. Every other test must pass.
# Keys are fnmatch patterns over the test's name inside this module (``Class::test[params]``).
NOT_APPLICABLE: dict[str, str] = {
    # numpy's test_einsum.py
    "TestNumpy_Einsum::test_einsum_sorting_behavior":
        "parses the output term out of numpy's printed path report; contract's report is its own",
    "TestNumpy_Einsum::test_subscript_range":
        "expects ValueError for sublist label 52; contract accepts any non-negative int label "
        "(a documented difference)",
    "TestNumpy_Einsum::test_output_order":
        "expects numpy's non-contiguous layout for order='K'; contract gives a C-ordered result "
        "(a documented difference; order='A'/'F'/'C' are pinned in tests/test_parity.py)",
    "TestNumpy_EinsumPath::test_long_paths":
        "the exact path of numpy's own greedy/optimal search (numpy also caps intermediates at "
        "the largest input by default); contract plans with opt_einsum",
    "TestNumpy_EinsumPath::test_edge_paths":
        "the exact path of numpy's own greedy/optimal search, as above",
    "TestNumpy_EinsumPath::test_path_type_input":
        "the exact path numpy's greedy picks for optimize=True (contract: opt_einsum's 'auto'); "
        "its optimize=False and explicit-path checks are pinned in tests/test_parity.py",
    # opt_einsum's tests
    "TestOptEinsumBackends::test_tensorflow*": "backend-specific (TensorFlow)",
    "TestOptEinsumBackends::test_theano*": "backend-specific (Theano)",
    "TestOptEinsumBackends::test_cupy*": "backend-specific (CuPy)",
    "TestOptEinsumBackends::test_jax*": "backend-specific (JAX)",
    "TestOptEinsumBackends::test_autograd_gradient": "backend-specific (autograd)",
    "TestOptEinsumBackends::test_sparse*": "backend-specific (pydata/sparse)",
    "TestOptEinsumBackends::test_torch*": "backend-specific (PyTorch)",
    "TestOptEinsumBackends::test_object_arrays_backend*":
        "opt_einsum's pure-Python backend='object'; contract runs object arrays through "
        "numpy.einsum with the default backend and accepts only its own engine as backend=",
    "TestOptEinsumSharing::test_*[[]*torch*]": "backend-specific (PyTorch)",
    "TestOptEinsumSharing::test_*[[]*cupy*]": "backend-specific (CuPy)",
    "TestOptEinsumSharing::test_sharing_nesting*":
        "counts entries of opt_einsum's shared_intermediates cache, which contract does not use",
    "TestOptEinsumSharing::test_partial_sharing*":
        "counts entries of opt_einsum's shared_intermediates cache, which contract does not use",
    "TestOptEinsumSharing::test_chain_sharing*":
        "counts entries of opt_einsum's shared_intermediates cache, which contract does not use",
    "TestOptEinsumEdgeCases::test_contract_expression_checks":
        "expects ValueError for contract_expression(..., optimize=False) and TypeError for "
        "order= when calling an expression; contract keeps both (a fused-loop expression; "
        "numpy's dtype=/order=/casting= on calls); its other checks are pinned in "
        "tests/test_parity.py",
    "TestOptEinsumContract::test_printing":
        "the exact length of opt_einsum's printed path report",
    "TestOptEinsumEdgeCases::test_can_blas_on_healed_broadcast_dimensions":
        "reads opt_einsum's internal ContractExpression.contraction_list",
    "TestOptEinsumPaths::test_bad_path_option":
        "passes contract_path's shapes= keyword to contract(), which opt_einsum's contract takes "
        "through **kwargs; the KeyError for an unknown optimizer name is pinned in "
        "tests/test_parity.py",
    "TestOptEinsumPaths::test_dp_edge_cases_dimension_1":
        "contract runs three operands as one fused step when pairwise steps save no arithmetic "
        "(here every size is 1), so its steps differ from the path 'dp' returns",
    "TestOptEinsumPaths::test_path_scalar_cases[[]*-,*":
        "counts the steps of opt_einsum's path over scalars; contract runs up to three operands "
        "whose pairwise steps save no arithmetic as one fused step",
    "TestOptEinsumPaths::test_dp_errors_when_no_contractions_found":
        "when 'dp' cannot meet memory_limit, contract falls back to one fused step (as the other "
        "optimizers do) instead of raising opt_einsum's RuntimeError",
    # dask's test_routines.py: every test_einsum* test applies (numpy-only calls such as
    # test_einsum_order's give numpy results, which dask's assert_eq compares as well)
}


class _Standin(types.ModuleType):
    """A module whose swapped names are contract's and whose other attributes are the real one's."""

    def __init__(self, real: types.ModuleType, swaps: dict[str, object]) -> None:
        super().__init__(real.__name__, real.__doc__)
        self.__dict__.update(swaps)
        self._real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


@contextmanager
def _swapped(module: types.ModuleType, swaps: dict[str, object]) -> Iterator[None]:
    saved = {name: getattr(module, name) for name in swaps}
    for name, value in swaps.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def _load(name: str, path: Path, real: types.ModuleType, swaps: dict[str, object],
          alias: str) -> types.ModuleType:
    if not path.is_file():
        raise FileNotFoundError(f"the peer test module {path} is not in the installed wheel")
    spec = importlib.util.spec_from_file_location(f"_contract_peer_{name}", path)
    module = importlib.util.module_from_spec(spec)
    with _swapped(real, swaps):
        spec.loader.exec_module(module)
    if getattr(module, alias, None) is real:
        setattr(module, alias, _Standin(real, swaps))
    return module


def _collect(module: types.ModuleType, prefix: str, only: str = "*") -> dict[str, object]:
    """The module's tests under new names: classes ``Test<prefix>_<name>``; its test functions
    as static methods of one class ``Test<prefix>`` (``only``: an fnmatch pattern of the names
    to take)."""
    found: dict[str, object] = {}
    functions: dict[str, object] = {}
    for name, obj in vars(module).items():
        if not fnmatchcase(name, only):
            continue
        if name.startswith("Test") and isinstance(obj, type):
            found[f"Test{prefix}_{name[4:]}"] = obj
        elif name.startswith("test") and callable(obj):
            functions[name] = staticmethod(obj)
    if functions:
        found[f"Test{prefix}"] = type(f"Test{prefix}", (), functions)
    return found


globals().update(_collect(_load("numpy_test_einsum", NUMPY_TESTS, numpy, _NUMPY_SWAPS, "np"),
                          "Numpy"))
for _name in OPT_EINSUM_MODULES:
    _module = _load(f"opt_einsum_{_name}", OPT_EINSUM_TESTS / f"{_name}.py", opt_einsum,
                    _OPT_EINSUM_SWAPS, "oe")
    _prefix = "OptEinsum" + "".join(part.title() for part in _name.split("_")[1:])
    globals().update(_collect(_module, _prefix))

try:
    import dask.array as _dask_array
except ImportError:  # the dask extra is not installed: dask's tests are not collected
    _dask_array = None
if _dask_array is not None:
    _DASK_ROUTINES = Path(_dask_array.__file__).parent / "tests" / "test_routines.py"
    globals().update(_collect(_load("dask_test_routines", _DASK_ROUTINES, _dask_array,
                                    _DASK_SWAPS, "da"), "Dask", DASK_TESTS))
