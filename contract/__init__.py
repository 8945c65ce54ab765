"""contract: a Numba-compiled, numpy-compatible einsum and generalized-Jacobian toolkit."""

__version__ = "0.1.0"
