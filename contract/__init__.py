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
]
