"""Generalized Jacobians: their products, chain bracketing and the derivative rules of einsum.

For ``y = f(x)`` with ``x.shape == N`` and ``y.shape == M`` the generalized Jacobian
``J = dy/dx`` has shape ``M + N`` (output axes first): ``J[i, j] = dy[i] / dx[j]`` for
multi-indices ``i`` over ``y`` and ``j`` over ``x``. Every product of such objects (the
Jacobian-vector product, the vector-Jacobian product and the chain rule) is one einsum whose
sublists are made from the shapes alone, with integer labels, so there is no 52-letter ceiling.
See ``docs/jacobians.md`` for the maths.

Design notes
------------
* Everything numeric goes through :func:`contract.api.einsum` and :func:`contract.api.contract_path`
  in the sublist form with integer labels; this module never calls ``numpy.einsum``.
* The einsum derivative rules parse their subscripts with :func:`contract.parser.parse` (numpy's
  rules and exception types, string or sublist form), then renumber the labels as contiguous
  sublist ints for the einsum calls they make.
* No complex conjugation anywhere: ``u @ J`` is ``sum_i u[i] J[i, j]`` (the transpose, not the
  adjoint), and :func:`numeric_jacobian` returns the holomorphic derivative for complex input.
* :func:`chain` defaults to ``optimize='dp'``, not ``'auto'``: for 5 to 8 operands opt_einsum's
  ``'auto'`` is a branch-and-bound search that can be far from optimal on chains (21 times the
  minimum FLOPs on a chain of six Jacobians and a tangent, see the tests), while ``'dp'`` (dynamic
  programming over connected sub-chains, i.e. the classic matrix-chain order) finds the minimum
  whenever no intermediate shape is rank 0. ``'auto'`` and every other form are still accepted.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import ArrayLike, DTypeLike

from .api import contract_path, einsum
from .parser import Equation, parse, split_operands

__all__ = [
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

# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _as_shape(shape: Any, name: str) -> tuple[int, ...]:
    """Normalize an int or a sequence of ints to a shape tuple, rejecting negative sizes."""
    try:
        dims = (operator.index(shape),)
    except TypeError:
        try:
            dims = tuple(operator.index(d) for d in shape)
        except TypeError:
            raise TypeError(f"{name} must be an int or a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{name} {dims} has a negative size")
    return dims


def _interleave(arrays: Sequence[Any], terms: Sequence[Sequence[int]]) -> list[Any]:
    """``[a0, t0, a1, t1, ...]``: the operands of an einsum call in sublist form."""
    args: list[Any] = []
    for array, term in zip(arrays, terms, strict=True):
        args += [array, list(term)]
    return args


def _einsum_path_arg(path: Sequence[tuple[int, ...]]) -> list[Any]:
    """An explicit contraction path in the form ``einsum(..., optimize=...)`` accepts."""
    return ["einsum_path", *path]


# --------------------------------------------------------------------------------------------
# subscripts of Jacobian products
# --------------------------------------------------------------------------------------------


def jacobian_subscripts(*shapes: Sequence[int]) -> tuple[list[list[int]], list[int]]:
    """Einsum sublists for a product of generalized Jacobians, from their shapes alone.

    Given the boundary shapes ``K0, K1, ..., Kn`` of a chain of ``n`` factors written left to
    right as in maths notation, factor ``i`` (``i = 0..n-1``, counted from the left) has shape
    ``K[i] + K[i+1]``: it maps a tangent of shape ``K[i+1]`` to one of shape ``K[i]``. The product
    has shape ``K0 + Kn``. Each boundary gets its own block of consecutive integer labels, so a
    label is shared by exactly the two factors that meet at that boundary and summed over.

    The three generalized matrix products are the three-shape case ``(out, mid, in)``:

    * chain rule ``(A @ B)[i, j] = sum_k A[i, k] B[k, j]``: ``jacobian_subscripts(K, M, N)``
      with ``A.shape == K + M``, ``B.shape == M + N``, result ``K + N``;
    * Jacobian-vector product ``J @ dx``: ``jacobian_subscripts(M, N, ())`` (``dx`` is a
      Jacobian with a rank-0 input side), result shape ``M``;
    * vector-Jacobian product ``u @ J``: ``jacobian_subscripts((), M, N)`` (``u`` has a rank-0
      output side), result shape ``N``.

    Parameters
    ----------
    *shapes : sequence of int
        At least two shapes; only their ranks matter for the labels.

    Returns
    -------
    terms : list of list of int
        One sublist per factor, ``len(shapes) - 1`` of them.
    output : list of int
        The sublist of the product.

    Raises
    ------
    TypeError
        If fewer than two shapes are given.

    Examples
    --------
    Chain rule for ``A`` of shape ``(2, 3) + (4,)`` and ``B`` of shape ``(4,) + (5, 6)``:

    >>> import numpy as np
    >>> from contract.jacobian import jacobian_subscripts
    >>> jacobian_subscripts((2, 3), (4,), (5, 6))
    ([[0, 1, 2], [2, 3, 4]], [0, 1, 3, 4])

    The Jacobian-vector product: the input side of ``dx`` is rank 0.

    >>> terms, output = jacobian_subscripts((2, 3), (4,), ())
    >>> terms, output
    ([[0, 1, 2], [2]], [0, 1])
    >>> J = np.arange(24.0).reshape(2, 3, 4)
    >>> np.einsum(J, terms[0], np.ones(4), terms[1], output)
    array([[ 6., 22., 38.],
           [54., 70., 86.]])
    """
    if len(shapes) < 2:
        raise TypeError(f"jacobian_subscripts() needs at least two shapes, got {len(shapes)}")
    blocks: list[list[int]] = []
    start = 0
    for i, shape in enumerate(shapes):
        rank = len(_as_shape(shape, f"shape {i}"))
        blocks.append(list(range(start, start + rank)))
        start += rank
    terms = [blocks[i] + blocks[i + 1] for i in range(len(blocks) - 1)]
    return terms, blocks[0] + blocks[-1]


# --------------------------------------------------------------------------------------------
# the Jacobian type
# --------------------------------------------------------------------------------------------


class Jacobian:
    """A generalized Jacobian: an array of shape ``out_shape + in_shape``.

    ``J[i, j] = dy[i] / dx[j]`` for a function ``y = f(x)`` with ``x.shape == in_shape`` and
    ``y.shape == out_shape``. ``@`` is the generalized matrix product: ``J @ dx`` (a tangent of
    shape ``in_shape`` to one of shape ``out_shape``), ``u @ J`` (a cotangent of shape
    ``out_shape`` to one of shape ``in_shape``), and ``J2 @ J1`` (the chain rule, a Jacobian).

    Parameters
    ----------
    array : array_like
        The entries, of shape ``out_shape + in_shape``; or, when both ``out_shape`` and
        ``in_shape`` are given, the pseudo-2-D matrix of shape
        ``(prod(out_shape), prod(in_shape))``. Not copied when already an ndarray.
    in_ndim : int, optional
        Number of trailing axes of ``array`` that are input axes.
    out_shape, in_shape : sequence of int, optional
        The output and input shapes. One of them is enough when ``array`` is not in matrix form.
        Either side may be ``()`` (scalar output or scalar input).

    Raises
    ------
    TypeError
        If none of ``in_ndim``, ``out_shape``, ``in_shape`` is given.
    ValueError
        If the shapes given do not fit the array.

    Notes
    -----
    ``@`` is the only arithmetic defined (numpy ufuncs are refused so that ``ndarray @ J``
    reaches :meth:`__rmatmul__`); use :attr:`array` for anything else. ``np.asarray(J)`` is
    :attr:`array`.

    Examples
    --------
    >>> import numpy as np
    >>> from contract.jacobian import Jacobian
    >>> J = Jacobian(np.arange(24.0).reshape(2, 3, 4), in_ndim=1)
    >>> J
    Jacobian(out_shape=(2, 3), in_shape=(4,), dtype=float64)
    >>> J @ np.ones(4)                        # JVP, shape out_shape
    array([[ 6., 22., 38.],
           [54., 70., 86.]])
    >>> np.ones((2, 3)) @ J                   # VJP, shape in_shape
    array([60., 66., 72., 78.])
    >>> K = Jacobian(np.ones((5, 2, 3)), in_ndim=2)
    >>> K @ J                                 # chain rule
    Jacobian(out_shape=(5,), in_shape=(4,), dtype=float64)
    >>> J.as_matrix().shape                   # the pseudo-2-D view
    (6, 4)
    """

    __slots__ = ("_array", "_in_ndim")

    # Tell numpy not to handle ``ndarray @ Jacobian`` itself, so Python calls __rmatmul__.
    __array_ufunc__ = None

    def __init__(
        self,
        array: ArrayLike,
        *,
        in_ndim: int | None = None,
        out_shape: Sequence[int] | None = None,
        in_shape: Sequence[int] | None = None,
    ) -> None:
        arr = np.asarray(array)
        out = None if out_shape is None else _as_shape(out_shape, "out_shape")
        inn = None if in_shape is None else _as_shape(in_shape, "in_shape")
        if in_ndim is not None:
            in_ndim = operator.index(in_ndim)
            if not 0 <= in_ndim <= arr.ndim:
                raise ValueError(
                    f"in_ndim={in_ndim} is out of range for an array of shape {arr.shape}"
                )
            split = arr.ndim - in_ndim
            if (out is not None and out != arr.shape[:split]) or (
                inn is not None and inn != arr.shape[split:]
            ):
                raise ValueError(
                    f"in_ndim={in_ndim} splits shape {arr.shape} into out_shape "
                    f"{arr.shape[:split]} and in_shape {arr.shape[split:]}, which contradicts "
                    f"out_shape={out} / in_shape={inn}"
                )
            inn = arr.shape[split:]
        elif out is not None and inn is not None:
            matrix_shape = (math.prod(out), math.prod(inn))
            if arr.shape != out + inn:
                if arr.shape != matrix_shape:
                    raise ValueError(
                        f"array of shape {arr.shape} is neither out_shape + in_shape = "
                        f"{out + inn} nor the matrix shape {matrix_shape}"
                    )
                arr = arr.reshape(out + inn)
        elif out is not None:
            if arr.shape[: len(out)] != out:
                raise ValueError(
                    f"out_shape {out} is not a prefix of the array's shape {arr.shape}"
                )
            inn = arr.shape[len(out) :]
        elif inn is not None:
            if len(inn) > arr.ndim or arr.shape[arr.ndim - len(inn) :] != inn:
                raise ValueError(f"in_shape {inn} is not a suffix of the array's shape {arr.shape}")
        else:
            raise TypeError(
                f"Jacobian() needs in_ndim=, out_shape= or in_shape= to split the axes of an "
                f"array of shape {arr.shape}"
            )
        self._array = arr
        self._in_ndim = len(inn)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def identity(cls, shape: Sequence[int], dtype: DTypeLike = np.float64) -> Jacobian:
        """The Jacobian of the identity map on arrays of ``shape``: ``dx/dx``.

        Parameters
        ----------
        shape : sequence of int
            Both ``out_shape`` and ``in_shape``.
        dtype : dtype, optional
            Its dtype (default float64).

        Returns
        -------
        Jacobian
            Of shape ``shape + shape``, ones where the two multi-indices agree.

        Examples
        --------
        >>> import numpy as np
        >>> from contract.jacobian import Jacobian
        >>> I = Jacobian.identity((2, 3))
        >>> I.shape
        (2, 3, 2, 3)
        >>> x = np.arange(6.0).reshape(2, 3)
        >>> bool(np.array_equal(I @ x, x))
        True
        """
        shape = _as_shape(shape, "shape")
        size = math.prod(shape)
        return cls(
            np.eye(size, dtype=dtype).reshape(shape + shape), out_shape=shape, in_shape=shape
        )

    # -- properties --------------------------------------------------------------------------

    @property
    def array(self) -> np.ndarray:
        """The entries, an ndarray of shape ``out_shape + in_shape``."""
        return self._array

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the function's output ``y`` (the leading axes)."""
        return self._array.shape[: self.out_ndim]

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Shape of the function's input ``x`` (the trailing axes)."""
        return self._array.shape[self.out_ndim :]

    @property
    def out_ndim(self) -> int:
        """Number of output axes."""
        return self._array.ndim - self._in_ndim

    @property
    def in_ndim(self) -> int:
        """Number of input axes."""
        return self._in_ndim

    @property
    def out_size(self) -> int:
        """``prod(out_shape)``: the number of rows of the pseudo-2-D matrix."""
        return math.prod(self.out_shape)

    @property
    def in_size(self) -> int:
        """``prod(in_shape)``: the number of columns of the pseudo-2-D matrix."""
        return math.prod(self.in_shape)

    @property
    def shape(self) -> tuple[int, ...]:
        """``out_shape + in_shape``."""
        return self._array.shape

    @property
    def ndim(self) -> int:
        """``out_ndim + in_ndim``."""
        return self._array.ndim

    @property
    def size(self) -> int:
        """Number of entries."""
        return self._array.size

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the entries."""
        return self._array.dtype

    def as_matrix(self) -> np.ndarray:
        """The pseudo-2-D view: shape ``(prod(out_shape), prod(in_shape))``.

        A view of :attr:`array` whenever numpy can reshape without copying (always for a
        C-contiguous array), otherwise a copy.

        Returns
        -------
        ndarray
            Row ``r`` is the flattened (C order) output index, column ``c`` the input index.

        Examples
        --------
        >>> import numpy as np
        >>> from contract.jacobian import Jacobian
        >>> J = Jacobian(np.zeros((2, 3, 4, 5)), in_ndim=2)
        >>> M = J.as_matrix()
        >>> M.shape, bool(np.shares_memory(M, J.array))
        ((6, 20), True)
        """
        return self._array.reshape(self.out_size, self.in_size)

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        return np.array(self._array, dtype=dtype, copy=copy)

    def __repr__(self) -> str:
        return f"Jacobian(out_shape={self.out_shape}, in_shape={self.in_shape}, dtype={self.dtype})"

    # -- generalized matrix products ---------------------------------------------------------

    def __matmul__(self, other: Any) -> Any:
        if isinstance(other, Jacobian):
            if self.in_shape != other.out_shape:
                raise ValueError(
                    f"chain rule J2 @ J1 needs J2.in_shape == J1.out_shape, got J2 of shape "
                    f"{self.out_shape} + {self.in_shape} and J1 of shape "
                    f"{other.out_shape} + {other.in_shape}"
                )
            terms, output = jacobian_subscripts(self.out_shape, self.in_shape, other.in_shape)
            product = einsum(*_interleave([self._array, other._array], terms), output)
            return Jacobian(product, out_shape=self.out_shape, in_shape=other.in_shape)
        dx = np.asarray(other)
        if dx.dtype == object:
            return NotImplemented
        if dx.shape != self.in_shape:
            raise ValueError(
                f"J @ dx needs dx.shape == J.in_shape: dx has shape {dx.shape}, J has shape "
                f"{self.out_shape} + {self.in_shape}"
            )
        terms, output = jacobian_subscripts(self.out_shape, self.in_shape, ())
        return np.asarray(einsum(*_interleave([self._array, dx], terms), output))

    def __rmatmul__(self, other: Any) -> Any:
        u = np.asarray(other)
        if u.dtype == object:
            return NotImplemented
        if u.shape != self.out_shape:
            raise ValueError(
                f"u @ J needs u.shape == J.out_shape: u has shape {u.shape}, J has shape "
                f"{self.out_shape} + {self.in_shape}"
            )
        terms, output = jacobian_subscripts((), self.out_shape, self.in_shape)
        return np.asarray(einsum(*_interleave([u, self._array], terms), output))


# --------------------------------------------------------------------------------------------
# chains of Jacobians
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainResult:
    """The product of a chain of Jacobians, or its action on ``dx`` / ``u``, and how it ran.

    Attributes
    ----------
    value : Jacobian or ndarray
        ``J_n ... J_1`` as a :class:`Jacobian`; or ``J_n ... J_1 dx`` (shape
        ``J_n.out_shape``), ``u J_n ... J_1`` (shape ``J_1.in_shape``) or ``u J_n ... J_1 dx``
        (shape ``()``) as an ndarray.
    order : {'forward', 'reverse', 'mixed'}
        ``'forward'``: right to left, ``J_n (... (J_2 (J_1 dx)))``; ``'reverse'``: left to
        right, ``((u J_n) J_{n-1}) ...``; ``'mixed'``: anything else. When only one bracketing
        exists (a single product) it is ``'reverse'`` if ``u`` was given, else ``'forward'``.
    path : list of tuple of int
        The contraction path (opt_einsum format) over the operands ``[u,] J_n, ..., J_1[, dx]``.
    flops : int
        Its cost, as counted by ``contract_path`` (``opt_cost``).
    largest_intermediate : int
        Number of elements of the largest intermediate, the result not counted (0 when the chain
        is a single product).
    bracketing : str
        The bracketing in maths notation, e.g. ``'J3 @ (J2 @ (J1 @ dx))'``.
    """

    value: Jacobian | np.ndarray = field(repr=False)
    order: str
    path: list[tuple[int, ...]]
    flops: int
    largest_intermediate: int
    bracketing: str

    def __str__(self) -> str:
        return "\n".join(
            [
                f"order:                {self.order}",
                f"bracketing:           {self.bracketing}",
                f"flops:                {self.flops:,}",
                f"largest intermediate: {self.largest_intermediate:,} elements",
                f"path:                 {self.path}",
            ]
        )


def _bracketing_path(order: str, n_operands: int) -> list[tuple[int, int]]:
    """The explicit opt_einsum path of the pure forward or reverse order.

    opt_einsum paths remove the contracted operands and append the result at the end.
    Forward always contracts the last two operands; reverse first contracts the first two, then
    the first remaining operand with the accumulated result (which sits at the end).
    """
    m = n_operands
    if order == "forward":
        return [(m - 2 - s, m - 1 - s) for s in range(m - 1)]
    return [(0, 1)] + [(0, m - 1 - s) for s in range(1, m - 1)]


def _describe_path(
    path: Sequence[Sequence[int]],
    names: Sequence[str],
    terms: Sequence[Sequence[int]],
    sizes: Mapping[int, int],
    prefer: str,
) -> tuple[str, str, int]:
    """Classify a path over a chain of operands, bracket it, and find its largest intermediate.

    Returns ``(order, bracketing, largest)``: ``order`` is 'forward' when every step joins the
    next operand from the right onto the accumulated right end, 'reverse' for the mirror image,
    else 'mixed' (``prefer`` when both hold, i.e. for a single product); ``largest`` is the
    number of elements of the largest intermediate, the final result not counted (0 for a single
    product). In a chain every label is in at most two operands, so the open labels of a group
    are those appearing once in it.
    """
    m = len(names)
    # one node per operand: (positions, text, open labels)
    nodes = [(frozenset([i]), name, frozenset(terms[i])) for i, name in enumerate(names)]
    forward = reverse = True
    largest = 0
    for s, step in enumerate(path):
        parts = sorted((nodes[i] for i in step), key=lambda node: min(node[0]))
        for i in sorted(step, reverse=True):
            del nodes[i]
        merged = frozenset().union(*(positions for positions, _, _ in parts))
        text = " @ ".join(f"({t})" if len(p) > 1 else t for p, t, _ in parts)
        labels: frozenset[int] = frozenset()
        for _, _, part_labels in parts:
            labels = labels ^ part_labels
        nodes.append((merged, text, labels))
        if s < len(path) - 1:
            largest = max(largest, math.prod(sizes[lab] for lab in labels))
        forward = forward and merged == frozenset(range(m - 2 - s, m))
        reverse = reverse and merged == frozenset(range(s + 2))
    if forward and reverse:
        order = prefer
    else:
        order = "forward" if forward else "reverse" if reverse else "mixed"
    return order, nodes[-1][1], largest


def chain(
    *jacobians: Jacobian,
    dx: ArrayLike | None = None,
    u: ArrayLike | None = None,
    optimize: str | bool | Sequence[tuple[int, ...]] = "dp",
) -> ChainResult:
    """Multiply a chain of generalized Jacobians, bracketed by the cheapest contraction order.

    Computes ``J_n @ ... @ J_1`` (maths order: ``J_n`` belongs to the last function applied, so
    ``dz/dx = J_n ... J_1``), or its action on a tangent ``dx`` or a cotangent ``u`` without
    forming the full product. The whole chain is one einsum in sublist form (see
    :func:`jacobian_subscripts`); ``contract_path`` chooses the bracketing from the shapes, and
    the result reports whether that is forward mode, reverse mode or a mix.

    Parameters
    ----------
    *jacobians : Jacobian
        ``J_n, ..., J_1``, with ``J_{k+1}.in_shape == J_k.out_shape``.
    dx : array_like, optional
        A tangent of shape ``J_1.in_shape``: the result is ``J_n ... J_1 dx``.
    u : array_like, optional
        A cotangent of shape ``J_n.out_shape``: the result is ``u J_n ... J_1``.
    optimize : str, bool or path, optional
        ``'forward'`` or ``'reverse'`` force that bracketing; any other value is passed to
        ``contract_path``. The default ``'dp'`` (opt_einsum's dynamic programming) finds the
        cheapest bracketing of a chain in polynomial time; ``'optimal'`` is exhaustive (exact
        also with rank-0 intermediate shapes, but exponential); ``'auto'`` and ``'greedy'`` are
        fast but may miss the best bracketing of a chain by a large factor.

    Returns
    -------
    ChainResult
        ``.value`` (a :class:`Jacobian`, or an ndarray when ``dx`` or ``u`` is given),
        ``.order``, ``.path``, ``.flops``, ``.largest_intermediate``, ``.bracketing``.
        A single Jacobian without ``dx`` or ``u`` is returned as is, with no contraction.

    Raises
    ------
    TypeError
        If no Jacobian is given, or an argument is not a :class:`Jacobian`.
    ValueError
        If neighbouring shapes, ``dx`` or ``u`` do not match; the message names both shapes.

    Examples
    --------
    Output of size 10, input of size 2000: reverse mode is cheaper.

    >>> import numpy as np
    >>> from contract.jacobian import Jacobian, chain
    >>> rng = np.random.default_rng(0)
    >>> J3 = Jacobian(rng.random((10, 1000)), in_ndim=1)
    >>> J2 = Jacobian(rng.random((1000, 5)), in_ndim=1)
    >>> J1 = Jacobian(rng.random((5, 2000)), in_ndim=1)
    >>> result = chain(J3, J2, J1)
    >>> result.order, result.bracketing
    ('reverse', '(J3 @ J2) @ J1')
    >>> result.value
    Jacobian(out_shape=(10,), in_shape=(2000,), dtype=float64)
    >>> forward = chain(J3, J2, J1, optimize="forward")
    >>> forward.bracketing, forward.flops > result.flops
    ('J3 @ (J2 @ J1)', True)
    >>> bool(np.allclose(forward.value.array, result.value.array))
    True

    Acting on a tangent never forms the product:

    >>> chain(J3, J2, J1, dx=np.ones(2000)).bracketing
    'J3 @ (J2 @ (J1 @ dx))'
    """
    if not jacobians:
        raise TypeError("chain() needs at least one Jacobian")
    for i, jac in enumerate(jacobians):
        if not isinstance(jac, Jacobian):
            raise TypeError(
                f"chain() argument {i} must be a Jacobian, got {type(jac).__name__}; wrap arrays "
                f"with Jacobian(array, in_ndim=...)"
            )
    n = len(jacobians)
    names = [f"J{n - i}" for i in range(n)]
    for i in range(n - 1):
        left, right = jacobians[i], jacobians[i + 1]
        if left.in_shape != right.out_shape:
            raise ValueError(
                f"cannot chain {names[i]} of shape {left.out_shape} + {left.in_shape} after "
                f"{names[i + 1]} of shape {right.out_shape} + {right.in_shape}: "
                f"{names[i]}.in_shape {left.in_shape} != {names[i + 1]}.out_shape "
                f"{right.out_shape}"
            )
    arrays: list[np.ndarray] = [jac.array for jac in jacobians]
    boundaries = [jac.out_shape for jac in jacobians] + [jacobians[-1].in_shape]
    if u is not None:
        u = np.asarray(u)
        if u.shape != boundaries[0]:
            raise ValueError(f"u has shape {u.shape} but {names[0]}.out_shape is {boundaries[0]}")
        arrays.insert(0, u)
        names.insert(0, "u")
        boundaries.insert(0, ())
    if dx is not None:
        dx = np.asarray(dx)
        if dx.shape != boundaries[-1]:
            raise ValueError(
                f"dx has shape {dx.shape} but {names[-1]}.in_shape is {boundaries[-1]}"
            )
        arrays.append(dx)
        names.append("dx")
        boundaries.append(())

    if len(arrays) == 1:
        jac = jacobians[0]
        return ChainResult(jac, "forward", [], 0, 0, names[0])

    terms, output = jacobian_subscripts(*boundaries)
    operands = [*_interleave(arrays, terms), output]
    if isinstance(optimize, str) and optimize in ("forward", "reverse"):
        requested: Any = _bracketing_path(optimize, len(arrays))
    else:
        requested = optimize
    path, info = contract_path(*operands, optimize=requested)
    path = [tuple(int(i) for i in step) for step in path if not isinstance(step, str)]
    product = np.asarray(einsum(*operands, optimize=_einsum_path_arg(path)))

    label_sizes: dict[int, int] = {}
    for array, term in zip(arrays, terms, strict=True):
        label_sizes.update(zip(term, array.shape, strict=True))
    order, bracketing, largest = _describe_path(
        path, names, terms, label_sizes, "reverse" if u is not None else "forward"
    )
    if dx is not None or u is not None:
        value: Jacobian | np.ndarray = product
    else:
        value = Jacobian(product, out_shape=boundaries[0], in_shape=boundaries[-1])
    return ChainResult(
        value=value,
        order=order,
        path=path,
        flops=int(info.opt_cost),
        largest_intermediate=largest,
        bracketing=bracketing,
    )


# --------------------------------------------------------------------------------------------
# finite differences and the linearization check
# --------------------------------------------------------------------------------------------


def _float_dtype(x: np.ndarray) -> np.ndarray:
    """``x`` itself if it is floating or complex, else ``x`` as float64."""
    return x if np.issubdtype(x.dtype, np.inexact) else x.astype(np.float64)


def numeric_jacobian(
    f: Callable[[np.ndarray], ArrayLike],
    x: ArrayLike,
    *,
    eps: float | None = None,
    method: str = "central",
) -> Jacobian:
    """Finite-difference generalized Jacobian of an array-to-array function.

    Column ``j`` (input element ``x[j]``) is ``(f(x + h e_j) - f(x - h e_j)) / (2 h)``
    (``'central'``, error ``O(h^2)``) or ``(f(x + h e_j) - f(x)) / h`` (``'forward'``, error
    ``O(h)``), with ``h = eps * max(1, |x[j]|)``; the step actually taken (after rounding
    ``x[j] + h``) is the denominator. ``f`` is evaluated ``2 x.size`` (central) or ``x.size + 1``
    (forward) times, always on fresh copies of ``x``.

    For complex ``x`` only the real direction is perturbed, so the result is the complex
    (holomorphic) derivative ``df/dz`` when ``f`` is holomorphic; for a non-holomorphic ``f``
    (``conj``, ``abs``, ...) it is the derivative along the real axis, ``df/d(Re x)``.

    Parameters
    ----------
    f : callable
        ``f(x) -> array_like``; its output shape must not depend on the perturbation.
    x : array_like
        The point; integer input is converted to float64. ``f`` sees arrays of this dtype.
    eps : float, optional
        The relative step. Default: ``cbrt(finfo(x.dtype).eps)`` for ``'central'``,
        ``sqrt(finfo(x.dtype).eps)`` for ``'forward'`` (about ``6e-6`` and ``1.5e-8`` in float64,
        ``5e-3`` and ``3.5e-4`` in float32), which balances truncation and rounding error.
    method : {'central', 'forward'}, optional
        The difference formula.

    Returns
    -------
    Jacobian
        Of shape ``f(x).shape + x.shape``, dtype the promotion of ``f(x)``'s dtype and the real
        dtype of ``x``.

    Raises
    ------
    ValueError
        For an unknown ``method`` or if ``f`` changes its output shape.

    Examples
    --------
    >>> import numpy as np
    >>> from contract.jacobian import numeric_jacobian
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> J = numeric_jacobian(lambda x: x**2, x)
    >>> J.shape
    (3, 3)
    >>> bool(np.allclose(J.array, np.diag(2 * x)))
    True
    >>> numeric_jacobian(np.sum, np.ones((2, 3))).shape     # scalar output
    (2, 3)
    """
    if method not in ("central", "forward"):
        raise ValueError(f"method must be 'central' or 'forward', got {method!r}")
    x = _float_dtype(np.asarray(x))
    real_dtype = np.finfo(x.dtype).dtype
    if eps is None:
        eps = float(np.finfo(x.dtype).eps) ** (1 / 3 if method == "central" else 1 / 2)
    steps = (eps * np.maximum(1.0, np.abs(x))).astype(real_dtype)

    y0 = np.array(f(x.copy()))
    dtype = np.result_type(y0.dtype, real_dtype)
    columns = np.empty(y0.shape + (x.size,), dtype=dtype)

    def evaluate(j: int, h: Any) -> tuple[np.ndarray, Any]:
        xp = x.copy()
        xp.flat[j] += h
        y = np.asarray(f(xp))
        if y.shape != y0.shape:
            raise ValueError(
                f"f returned shape {y.shape} at a perturbed x but shape {y0.shape} at x "
                f"(x has shape {x.shape})"
            )
        return y, xp.flat[j]

    for j in range(x.size):
        h = steps.flat[j]
        y_plus, x_plus = evaluate(j, h)
        if method == "central":
            y_minus, x_minus = evaluate(j, -h)
        else:
            y_minus, x_minus = y0, x.flat[j]
        width = np.real(x_plus - x_minus)  # the step actually taken, after rounding
        columns[..., j] = (y_plus - y_minus) / width
    return Jacobian(columns.reshape(y0.shape + x.shape), in_shape=x.shape)


@dataclass(frozen=True)
class LinearizationCheck:
    """First-order errors ``|f(x + t dx) - f(x) - t J dx|`` for shrinking ``t``.

    Attributes
    ----------
    scales : ndarray
        The ``t`` values, decreasing.
    errors : ndarray
        The 2-norm of the remainder at each ``t``.
    slope : float
        The least-squares slope of ``log(errors)`` against ``log(scales)``: about 2 when ``J``
        is the derivative (the remainder is ``O(t^2)``), about 1 when ``J`` is wrong (the
        remainder is ``O(t)``). NaN when fewer than two errors are positive (``f`` linear and
        ``J`` exact up to rounding).
    """

    scales: np.ndarray
    errors: np.ndarray
    slope: float

    def __str__(self) -> str:
        rows = [f"{'t':>10}  {'error':>10}"]
        rows += [f"{t:10.3e}  {e:10.3e}" for t, e in zip(self.scales, self.errors, strict=True)]
        rows.append(f"fitted slope {self.slope:.3f} (2 means the error shrinks like t**2)")
        return "\n".join(rows)


def check_linearization(
    f: Callable[[np.ndarray], ArrayLike],
    x: ArrayLike,
    J: Jacobian | ArrayLike,
    *,
    direction: ArrayLike | None = None,
    scales: Sequence[float] | None = None,
    seed: int = 0,
) -> LinearizationCheck:
    """Check that ``y(x + t dx) ~ y(x) + t J dx`` with an error shrinking like ``t**2``.

    Evaluates ``f`` at ``x + t dx`` (rounded to ``x``'s dtype; the step actually taken is used in
    ``J dx``) for each ``t`` and fits the log-log slope of the remainder norm.

    Parameters
    ----------
    f : callable
        ``f(x) -> array_like`` of shape ``J.out_shape``.
    x : array_like
        The point, of shape ``J.in_shape``.
    J : Jacobian or array_like
        The candidate derivative at ``x``; an array is split with ``in_shape=x.shape``.
    direction : array_like, optional
        ``dx``, shape ``x.shape``. Default: standard normal (real) entries from ``seed``.
    scales : sequence of float, optional
        The ``t`` values. Default: 6 values from ``min(0.5, 1000 e)`` down to
        ``e = finfo(x.dtype).eps ** 0.25`` (``1.2e-4`` in float64, ``0.018`` in float32), small
        enough for the ``t**2`` term to show and large enough to stay above rounding error.
    seed : int, optional
        Seed of the default direction.

    Returns
    -------
    LinearizationCheck
        ``.scales``, ``.errors`` and ``.slope``.

    Raises
    ------
    ValueError
        If the shapes of ``x``, ``f(x)``, ``direction`` and ``J`` do not fit.

    Examples
    --------
    >>> import numpy as np
    >>> from contract.jacobian import Jacobian, check_linearization
    >>> x = np.linspace(0.0, 1.0, 5)
    >>> J = Jacobian(np.diag(np.cos(x)), in_ndim=1)          # d sin(x) / dx
    >>> check = check_linearization(np.sin, x, J)
    >>> print(f"{check.slope:.1f}")
    2.0
    >>> wrong = Jacobian(np.diag(np.cos(x) + 0.1), in_ndim=1)
    >>> print(f"{check_linearization(np.sin, x, wrong).slope:.1f}")
    1.0
    """
    x = _float_dtype(np.asarray(x))
    if not isinstance(J, Jacobian):
        J = Jacobian(J, in_shape=x.shape)
    if J.in_shape != x.shape:
        raise ValueError(
            f"x has shape {x.shape} but J has shape {J.out_shape} + {J.in_shape} "
            f"(in_shape {J.in_shape})"
        )
    y0 = np.asarray(f(x))
    if y0.shape != J.out_shape:
        raise ValueError(
            f"f(x) has shape {y0.shape} but J has shape {J.out_shape} + {J.in_shape} "
            f"(out_shape {J.out_shape})"
        )
    if direction is None:
        dx = np.random.default_rng(seed).standard_normal(x.shape)
    else:
        dx = np.asarray(direction)
        if dx.shape != x.shape:
            raise ValueError(f"direction has shape {dx.shape} but x has shape {x.shape}")
    if scales is None:
        low = float(np.finfo(x.dtype).eps) ** 0.25
        ts = np.geomspace(min(0.5, 1000 * low), low, 6)
    else:
        ts = np.asarray(scales, dtype=np.float64)

    wide = np.result_type(x.dtype, dx.dtype, np.float64)
    errors = np.empty(len(ts))
    for i, t in enumerate(ts):
        x_t = (x + t * dx).astype(x.dtype)
        step = x_t.astype(wide) - x.astype(wide)
        remainder = np.asarray(f(x_t)).astype(wide) - y0.astype(wide) - (J @ step)
        errors[i] = np.linalg.norm(remainder.ravel())
    positive = errors > 0
    if positive.sum() >= 2:
        slope = float(np.polyfit(np.log(ts[positive]), np.log(errors[positive]), 1)[0])
    else:
        slope = float("nan")
    return LinearizationCheck(scales=ts, errors=errors, slope=slope)


# --------------------------------------------------------------------------------------------
# derivative rules of einsum
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _EinsumCall:
    """An einsum call in sublist form, with the operand to differentiate by.

    ``terms`` and ``output`` are sublists of contiguous ints (see :func:`_sublist_numbers`). Every
    label's size is the same in every operand that has it: an axis of size 1 that numpy would
    broadcast against a larger size has a fresh label of its own (size 1, summed away), which
    computes the same einsum.
    """

    arrays: list[np.ndarray]
    terms: list[list[int]]
    output: list[int]
    sizes: dict[int, int]
    wrt: int

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(self.sizes[label] for label in self.output)

    @property
    def wrt_shape(self) -> tuple[int, ...]:
        return self.arrays[self.wrt].shape

    def others(self) -> list[tuple[np.ndarray, list[int]]]:
        """``(array, term)`` for every operand but ``wrt``."""
        pairs = zip(self.arrays, self.terms, strict=True)
        return [pair for i, pair in enumerate(pairs) if i != self.wrt]


def _sublist_numbers(eq: Equation) -> dict[int, int]:
    """Renumber the labels of ``eq`` as ``0, 1, 2, ...``, in order of first appearance.

    The :class:`~contract.parser.Equation` labels (``ord`` of a letter, ``0..k-1`` for the ``...``
    dimensions, ``1000 + n`` for a wide sublist int) are internal: ``einsum``'s sublist form
    would read them again as input (ints ``0..51`` as letters, larger ints as wide labels). The
    sublist ints made here are small, contiguous and distinct, however many labels there are.
    """
    labels = dict.fromkeys(label for term in (*eq.terms, eq.output) for label in term)
    return {label: number for number, label in enumerate(labels)}


def _parse_einsum(subscripts: Any, operands: Sequence[Any], wrt: int) -> _EinsumCall:
    """Parse an einsum call (string or sublist form) with :func:`contract.parser.parse`."""
    sub, ops = split_operands((subscripts, *operands))
    arrays = [np.asarray(op) for op in ops]
    eq = parse(sub, tuple(array.shape for array in arrays))
    k = operator.index(wrt)
    if not -len(arrays) <= k < len(arrays):
        raise IndexError(f"wrt={wrt} is out of range for an einsum of {len(arrays)} operands")

    number = _sublist_numbers(eq)
    label_sizes = eq.size_dict
    sizes = {number[label]: label_sizes[label] for label in number}
    terms: list[list[int]] = []
    for array, term in zip(arrays, eq.terms, strict=True):
        terms.append([])
        for label, dim in zip(term, array.shape, strict=True):
            if dim == 1 and label_sizes[label] != 1:  # broadcast: a fresh label of size 1
                terms[-1].append(len(sizes))
                sizes[len(sizes)] = 1
            else:
                terms[-1].append(number[label])
    output = [number[label] for label in eq.output]
    return _EinsumCall(arrays, terms, output, sizes, k % len(arrays))


def _scatter_product(
    factors: Sequence[tuple[np.ndarray, Sequence[int]]],
    target: Sequence[int],
    target_shape: tuple[int, ...],
    sizes: dict[int, int],
    dtype: DTypeLike,
) -> np.ndarray:
    """Contract ``factors`` onto the (possibly repeated) labels ``target``.

    Returns an array of ``target_shape`` whose entries are
    ``sum over the other labels of prod(factors)`` where all axes that share a label agree (a
    repeated label is a diagonal, zero elsewhere), and constant along target labels that no
    factor has (broadcast). With no factors the product is 1.
    """
    unique = list(dict.fromkeys(target))
    present = {lab for _, term in factors for lab in term}
    kept = [lab for lab in unique if lab in present]
    if factors:
        arrays = [array for array, _ in factors]
        values = np.asarray(einsum(*_interleave(arrays, [t for _, t in factors]), kept))
    else:
        values = np.ones((), dtype=dtype)
    # ``kept`` is ``unique`` minus the absent labels, in the same order: insert size-1 axes
    values = values.reshape([sizes[lab] if lab in present else 1 for lab in unique])
    result = np.zeros(target_shape, dtype=np.result_type(values.dtype, dtype))
    diagonal = as_strided(
        result,
        shape=[sizes[lab] for lab in unique],
        strides=[
            sum(stride for stride, t in zip(result.strides, target, strict=True) if t == lab)
            for lab in unique
        ],
    )
    diagonal[...] = values
    return result


def einsum_jvp(subscripts: Any, *operands: Any, wrt: int = 0, tangent: ArrayLike) -> np.ndarray:
    """Jacobian-vector product of an einsum with respect to one operand.

    An einsum is linear in each operand, so its derivative along ``tangent`` is the same einsum
    with operand ``wrt`` replaced by ``tangent``:
    ``einsum(s, ..., dA, ...) = J @ dA`` with ``J = einsum_jacobian(s, ..., A, ..., wrt=k)``.

    Parameters
    ----------
    subscripts : str or array_like
        As for ``einsum``: a subscripts string (implicit or explicit, with ``...``), or the first
        operand of the sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])``.
    *operands : array_like
        The operands (interleaved with their sublists in the sublist form).
    wrt : int, optional
        Index of the operand to differentiate by, among the arrays (default 0).
    tangent : array_like
        ``dA``, of the shape of operand ``wrt``.

    Returns
    -------
    ndarray
        Of the einsum's output shape.

    Raises
    ------
    ValueError
        If ``tangent`` does not have the operand's shape, or the subscripts are invalid.
    IndexError
        If ``wrt`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from contract.jacobian import einsum_jvp
    >>> A, B = np.arange(6.0).reshape(2, 3), np.ones((3, 2))
    >>> einsum_jvp("ij,jk->ik", A, B, wrt=1, tangent=np.eye(3, 2))
    array([[0., 1.],
           [3., 4.]])
    """
    call = _parse_einsum(subscripts, operands, wrt)
    dx = np.asarray(tangent)
    if dx.shape != call.wrt_shape:
        raise ValueError(
            f"tangent has shape {dx.shape} but operand {call.wrt} has shape {call.wrt_shape}"
        )
    arrays = list(call.arrays)
    arrays[call.wrt] = dx
    return np.asarray(einsum(*_interleave(arrays, call.terms), call.output))


def einsum_vjp(subscripts: Any, *operands: Any, wrt: int = 0, cotangent: ArrayLike) -> np.ndarray:
    """Vector-Jacobian product of an einsum with respect to one operand.

    ``(u @ J)[j] = sum_i u[i] J[i, j]`` for ``J = einsum_jacobian(..., wrt=k)``, computed
    without ``J``: an einsum of ``u`` (carrying the output labels) with the other operands onto
    the labels of operand ``k``, then

    * a label repeated in operand ``k`` (``'ii->i'``) is scattered onto that diagonal, zero
      elsewhere;
    * a label of operand ``k`` that appears in no other operand and not in the output (summed
      in the forward pass) is broadcast: the gradient does not depend on it;
    * an axis of size 1 that numpy broadcast against a larger size is summed over.

    No complex conjugation is applied (this is the transpose, not the adjoint).

    Parameters
    ----------
    subscripts : str or array_like
        As for ``einsum`` (string or sublist form).
    *operands : array_like
        The operands.
    wrt : int, optional
        Index of the operand to differentiate by (default 0).
    cotangent : array_like
        ``u``, of the einsum's output shape.

    Returns
    -------
    ndarray
        Of the shape of operand ``wrt``.

    Raises
    ------
    ValueError
        If ``cotangent`` does not have the output shape, or the subscripts are invalid.
    IndexError
        If ``wrt`` is out of range.

    Examples
    --------
    The gradient of ``trace(A)`` is the identity; of ``diag(A)`` a diagonal matrix:

    >>> import numpy as np
    >>> from contract.jacobian import einsum_vjp
    >>> A = np.arange(9.0).reshape(3, 3)
    >>> einsum_vjp("ii", A, cotangent=1.0)
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    >>> einsum_vjp("ii->i", A, cotangent=np.array([1.0, 2.0, 3.0]))
    array([[1., 0., 0.],
           [0., 2., 0.],
           [0., 0., 3.]])
    """
    call = _parse_einsum(subscripts, operands, wrt)
    u = np.asarray(cotangent)
    if u.shape != call.out_shape:
        raise ValueError(
            f"cotangent has shape {u.shape} but the einsum's output has shape {call.out_shape}"
        )
    factors = [(u, call.output), *call.others()]
    return _scatter_product(factors, call.terms[call.wrt], call.wrt_shape, call.sizes, u.dtype)


def einsum_jacobian(subscripts: Any, *operands: Any, wrt: int = 0) -> Jacobian:
    """Dense generalized Jacobian of an einsum with respect to one operand.

    ``J[o, a] = d out[o] / d A[a]`` for ``A = operands[wrt]``: the einsum of the other operands
    onto the output labels and ``A``'s labels together, with a delta (identity) wherever a label
    is shared by the output and ``A`` or repeated within ``A``, and broadcast along labels of
    ``A`` that only ``A`` has.

    Parameters
    ----------
    subscripts : str or array_like
        As for ``einsum`` (string or sublist form).
    *operands : array_like
        The operands.
    wrt : int, optional
        Index of the operand to differentiate by (default 0).

    Returns
    -------
    Jacobian
        With ``out_shape`` the einsum's output shape and ``in_shape`` the operand's shape; its
        dtype is the promotion of all operands' dtypes.

    Raises
    ------
    ValueError
        If the subscripts are invalid.
    IndexError
        If ``wrt`` is out of range.

    Examples
    --------
    ``d(A @ B)/dB`` for ``A`` of shape ``(2, 3)`` and ``B`` of shape ``(3, 4)``:

    >>> import numpy as np
    >>> from contract.jacobian import einsum_jacobian
    >>> A, B = np.arange(6.0).reshape(2, 3), np.ones((3, 4))
    >>> J = einsum_jacobian("ij,jk->ik", A, B, wrt=1)
    >>> J
    Jacobian(out_shape=(2, 4), in_shape=(3, 4), dtype=float64)
    >>> bool(np.allclose(J @ B, A @ B))          # linear in B
    True
    >>> einsum_jacobian("ii->i", np.ones((2, 2))).as_matrix()
    array([[1., 0., 0., 0.],
           [0., 0., 0., 1.]])
    """
    call = _parse_einsum(subscripts, operands, wrt)
    dtype = np.result_type(*call.arrays)
    target = call.output + call.terms[call.wrt]
    values = _scatter_product(
        call.others(), target, call.out_shape + call.wrt_shape, call.sizes, dtype
    ).astype(dtype, copy=False)
    return Jacobian(values, out_shape=call.out_shape, in_shape=call.wrt_shape)
