"""contract: a Numba-compiled, numpy-compatible einsum and generalized-Jacobian toolkit.

>>> import numpy as np, contract
>>> a, b = np.ones((2, 3)), np.ones((3, 4))
>>> contract.einsum("ij,jk->ik", a, b).shape
(2, 4)
"""

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

__version__ = "0.1.0"

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

from . import _njit_entry  # noqa: E402 -- last: the @njit overloads need the finished package

_njit_entry.finish()
