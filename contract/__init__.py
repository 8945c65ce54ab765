"""contract: a Numba-compiled, numpy-compatible einsum and generalized-Jacobian toolkit.

>>> import numpy as np, contract
>>> a, b = np.ones((2, 3)), np.ones((3, 4))
>>> contract.einsum("ij,jk->ik", a, b).shape
(2, 4)

The package imports lazily (PEP 562): ``import contract`` loads neither Numba nor the kernels,
and ``import contract.parser`` (or ``planner``, ``layout``) stays free of Numba. The first use of
a public name imports the module that defines it; Numba's one-time setup then happens when the
executor is first imported (see ``docs/runtime.md``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_API = ("ContractExpression", "PathInfo", "contract", "contract_expression", "contract_path",
        "einsum", "einsum_path")
# the generalized-Jacobian API (documented as contract.jacobian.*)
_JACOBIAN = ("ChainResult", "Jacobian", "LinearizationCheck", "chain", "check_linearization",
             "einsum_jacobian", "einsum_jvp", "einsum_vjp", "jacobian_subscripts",
             "numeric_jacobian")
_HOME = {**{name: ".api" for name in _API}, **{name: ".jacobian" for name in _JACOBIAN}}

__all__ = [
    "ContractExpression",
    "PathInfo",
    "__version__",
    "contract",
    "contract_expression",
    "contract_path",
    "einsum",
    "einsum_path",
    # the generalized-Jacobian API (documented as contract.jacobian.*)
    "ChainResult",
    "Jacobian",
    "LinearizationCheck",
    "chain",
    "check_linearization",
    "einsum_jacobian",
    "einsum_jvp",
    "einsum_vjp",
    "jacobian_subscripts",
    "numeric_jacobian",
]

if TYPE_CHECKING:  # what static tools see; at run time the names load on first use
    from .api import (
        ContractExpression,
        PathInfo,
        contract,
        contract_expression,
        contract_path,
        einsum,
        einsum_path,
    )
    from .jacobian import (
        ChainResult,
        Jacobian,
        LinearizationCheck,
        chain,
        check_linearization,
        einsum_jacobian,
        einsum_jvp,
        einsum_vjp,
        jacobian_subscripts,
        numeric_jacobian,
    )


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'contract' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
