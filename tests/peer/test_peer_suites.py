"""numpy's and opt_einsum's own einsum tests, run against contract.

The test modules ship inside the installed numpy and opt_einsum wheels
(``numpy/_core/tests/test_einsum.py``, ``opt_einsum/tests/``); nothing is installed or copied.
Each module is loaded afresh under a private name while ``numpy.einsum``/``numpy.einsum_path``
and ``opt_einsum.contract``/``contract_path``/``contract_expression`` are contract's (so the
functions bound at import time, including those in ``parametrize`` lists, are contract's); after
loading, the module's ``np`` (numpy's tests) or ``oe`` (opt_einsum's) is a stand-in module whose
einsum functions are contract's and whose every other attribute is the real module's. numpy and
opt_einsum themselves are never modified outside that import, so contract's own calls into them
(opt_einsum's path search, numpy's einsum for object dtypes) are unaffected.

Tests that check only numpy's or opt_einsum's internals are listed in ``NOT_APPLICABLE`` with a
reason each and are skipped (``conftest.py`` applies the list). Every other test must pass.

opt_einsum's parametrized cases are many; by default a deterministic subset of them runs (every
non-parametrized test, and every ``SUBSET_STRIDE``-th case of each parametrized one, by position
in collection order); ``CONTRACT_PEER_FULL=1`` runs them all.
"""

from __future__ import annotations

import importlib.util
import os
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy
import opt_einsum

import contract

NUMPY_TESTS = Path(numpy.__file__).parent / "_core" / "tests" / "test_einsum.py"
OPT_EINSUM_TESTS = Path(opt_einsum.__file__).parent / "tests"
OPT_EINSUM_MODULES = ("test_backends", "test_blas", "test_contract", "test_edge_cases",
                      "test_input", "test_parser", "test_paths", "test_sharing")

FULL = os.environ.get("CONTRACT_PEER_FULL", "") not in ("", "0")
SUBSET_STRIDE = 5

_NUMPY_SWAPS = {"einsum": contract.einsum, "einsum_path": contract.einsum_path}
_OPT_EINSUM_SWAPS = {"contract": contract.contract, "contract_path": contract.contract_path,
                     "contract_expression": contract.contract_expression}

# Tests that check numpy's or opt_einsum's internals, not einsum's results or errors: skipped.
# Keys: the test's name inside this module (``Class::test`` or ``function``), optionally with a
# parametrization id in brackets to name one case; a name without brackets covers every case.
NOT_APPLICABLE: dict[str, str] = {}


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


def _collect(module: types.ModuleType, prefix: str) -> dict[str, object]:
    """The module's tests under new names: classes ``Test<prefix>_<name>``; its test functions
    as static methods of one class ``Test<prefix>``."""
    found: dict[str, object] = {}
    functions: dict[str, object] = {}
    for name, obj in vars(module).items():
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
