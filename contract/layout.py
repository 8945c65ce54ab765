"""Pure NumPy stride arithmetic: labelled views, flat buffers, and the kernel's loop layout.

Nothing here allocates operand-sized memory or imports Numba.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = [
    "labelled_view",
    "buffer_geometry",
    "flat_view",
    "kernel_dims",
    "kernel_dims_arrays",
    "tabulate",
    "needs_copy",
    "by_stride",
    "folds",
    "foldable_tail",
    "is_blasable",
]


def labelled_view(
    arr: np.ndarray, term: Sequence[int], size_dict: dict[int, int]
) -> tuple[np.ndarray, tuple[int, ...]]:
    """A view of ``arr`` with one axis per distinct label, broadcast to the full label sizes.

    Repeated labels (``'ii'``) become one axis whose stride is the sum of their strides (the
    diagonal); a size-1 axis whose label is larger elsewhere gets stride 0. The view is read-only.

    Parameters
    ----------
    arr : ndarray
        The operand.
    term : sequence of int
        Its labels, one per axis (validated by the parser).
    size_dict : dict
        Label -> size after broadcasting.

    Returns
    -------
    view : ndarray
        The labelled view (``arr`` itself when nothing changes).
    labels : tuple of int
        Its labels, each once, in first-appearance order.
    """
    if len(set(term)) == len(term) and all(
        size_dict[lab] == dim for lab, dim in zip(term, arr.shape)
    ):
        return arr, tuple(term)
    labels: list[int] = []
    strides: list[int] = []
    for lab, dim, st in zip(term, arr.shape, arr.strides):
        if lab in labels:
            strides[labels.index(lab)] += 0 if dim == 1 else st
            continue
        labels.append(lab)
        strides.append(0 if dim == 1 else st)
    shape = tuple(size_dict[lab] for lab in labels)
    if len(labels) == arr.ndim and shape == arr.shape:
        return arr, tuple(labels)
    return as_strided(arr, shape=shape, strides=tuple(strides), writeable=False), tuple(labels)


def needs_copy(arr: np.ndarray) -> bool:
    """True when ``arr`` cannot be addressed as a flat buffer of its own dtype.

    That is the case for non-native byte order, misaligned data, or strides that are not a
    multiple of the item size (possible for views built on raw buffers).
    """
    flags = arr.flags
    if not arr.dtype.isnative or not flags.aligned:
        return True
    if flags.c_contiguous:  # the common case, without walking the strides
        return False
    item = arr.dtype.itemsize
    return any(st % item for st in arr.strides)


def buffer_geometry(
    shape: Sequence[int], strides: Sequence[int], itemsize: int
) -> tuple[int, tuple[int, ...]]:
    """Element offset of element ``[0, ..., 0]`` inside :func:`flat_view`'s buffer, and the
    element strides.

    The buffer starts at the lowest address the array touches, so every axis with a negative
    stride moves the first element up by ``(n - 1) * |stride|``.
    """
    estrides = tuple(st // itemsize for st in strides)
    offset = sum((n - 1) * -st for n, st in zip(shape, estrides) if st < 0 and n > 1)
    return offset, estrides


def flat_view(arr: np.ndarray) -> np.ndarray:
    """A 1-D view of the memory ``arr`` spans, starting at its lowest address.

    ``arr`` must be non-empty and satisfy ``not needs_copy(arr)``. Negative and zero strides are
    supported; contiguous arrays take a fast path. Element ``idx`` of ``arr`` is at
    ``offset + idx . estrides`` with the numbers from :func:`buffer_geometry`.
    """
    if arr.flags.c_contiguous:
        return arr.reshape(-1)
    if arr.flags.f_contiguous:
        return arr.T.reshape(-1)
    item = arr.dtype.itemsize
    span = 1
    flips = []
    for axis, (n, st) in enumerate(zip(arr.shape, arr.strides)):
        if st < 0 and n > 1:
            flips.append(axis)
        span += (n - 1) * abs(st) // item
    low = arr
    if flips:
        low = arr[
            tuple(slice(None, None, -1) if a in flips else slice(None) for a in range(arr.ndim))
        ]
    return as_strided(low, shape=(span,), strides=(item,), writeable=arr.flags.writeable)


# The longest tight output row (elements) that outer dimensions are folded into when summed
# dimensions loop around it (see kernel_dims_arrays). Numba freezes it into the njit backend's
# compiled copy of kernel_dims_arrays: one constant for both.
FOLD_ROW_MAX = 4096


def kernel_dims(
    out_labels: Sequence[int],
    red_labels: Sequence[int],
    rows: Sequence[dict[int, int]],
    size_dict: dict[int, int],
) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Choose the kernel's loop order and fold adjacent dimensions (labels and dicts in, the
    rule itself in :func:`kernel_dims_arrays`).

    Parameters
    ----------
    out_labels, red_labels : sequence of int
        Labels kept in the output, and labels summed over.
    rows : sequence of dict
        Element strides per label: first the output (summed labels absent), then each operand
        (labels absent from an operand have stride 0 there).
    size_dict : dict
        Label -> size.

    Returns
    -------
    extents : ndarray of int64, shape (nd,)
    strides : ndarray of int64, shape (len(rows), nd)
    n_outer : int
        The number of leading outer (output, parallel) dimensions.
    inner_out : bool
        True when the tight (last) dimension is an output dimension.
    """
    labels = (*out_labels, *red_labels)
    n_out = len(out_labels)
    strides = np.array([[row.get(lab, 0) for lab in labels] for row in rows], dtype=np.int64)
    size = np.array([size_dict[lab] for lab in labels], dtype=np.int64)
    kind = np.full(len(labels), 2, dtype=np.int8)
    kind[:n_out] = 1
    ids = np.array(labels, dtype=np.int64)
    return kernel_dims_arrays(strides.reshape(len(rows), len(labels)), size, kind, ids)


def kernel_dims_arrays(rows, size, kind, ids=None):
    """The kernel's loop layout over plain int64 arrays: the one implementation of the rule.

    Written in the subset of Python that Numba's nopython mode compiles: the executor runs it
    as it is (through :func:`kernel_dims`, once per geometry), and the njit backend compiles it
    (``contract.numba_ext.kernel_dims_arrays``) to run inside the caller's ``@njit`` code.

    The rule. Labels of size 1 are dropped. The tight (innermost) loop is the label of smallest
    total stride over all rows, a summed one on ties, then the largest, then the smallest id.
    The other output labels loop outermost and the other summed labels in the middle, each
    group from the largest total stride to the smallest (ties in column order). Adjacent
    dimensions of one group fold into one when every row's stride of the outer one is the inner
    one's times its extent; a summed tight dimension may also absorb the last middle one, and an
    output tight dimension the innermost outer ones (while the row stays within
    ``FOLD_ROW_MAX`` elements when summed dimensions loop around it).

    Parameters
    ----------
    rows : int64 array, shape (1 + nops, n_labels)
        Element strides per label (column): row 0 the output (0 for summed labels), then each
        operand (0 where the operand lacks the label).
    size : int64 array, shape (n_labels,)
        Label sizes.
    kind : integer array, shape (n_labels,)
        1 for an output label of the step, 2 for a summed one, 0 for a label the step lacks.
    ids : int64 array, shape (n_labels,), optional
        The labels' ids, the last tie-break for the tight loop (default: the column index).

    Returns
    -------
    extents : ndarray of int64, shape (nd,)
    strides : ndarray of int64, shape (1 + nops, nd)
    n_outer : int
        The number of leading outer (output, parallel) dimensions.
    inner_out : bool
        True when the tight (last) dimension is an output dimension.

    Examples
    --------
    ``ij,jk->ik`` on C-ordered 2x3 and 3x4 operands (labels i, k, j; output row first):

    >>> rows = np.array([[4, 1, 0], [3, 0, 1], [0, 1, 4]])
    >>> ext, st, n_outer, inner_out = kernel_dims_arrays(rows, np.array([2, 4, 3]),
    ...                                                  np.array([1, 1, 2]))
    >>> ext.tolist(), st.tolist(), n_outer, inner_out
    ([2, 3, 4], [[4, 0, 1], [3, 1, 0], [0, 4, 1]], 1, True)
    """
    nr = rows.shape[0]
    nl = size.shape[0]
    if ids is None:
        tie = np.arange(nl)
    else:
        tie = ids
    weight = np.abs(rows).sum(axis=0)
    # the tight loop: smallest total stride; a summed label on ties; then the largest; then id
    tight = -1
    n_o = 0
    n_m = 0
    for lab in range(nl):
        k = kind[lab]
        if k == 0 or size[lab] == 1:
            continue
        if k == 1:
            n_o += 1
        else:
            n_m += 1
        if tight < 0:
            tight = lab
            continue
        wa, wb = weight[lab], weight[tight]
        oa, ob = k == 1, kind[tight] == 1
        if wa < wb or (wa == wb and (oa < ob or (oa == ob and (
                size[lab] > size[tight] or (size[lab] == size[tight] and tie[lab] < tie[tight]))))):
            tight = lab
    inner_out = False
    if tight >= 0:
        inner_out = bool(kind[tight] == 1)
        if inner_out:
            n_o -= 1
        else:
            n_m -= 1
    # the loop order: outer (output) labels, middle (summed) labels, each by decreasing weight
    # (stable), then the tight one
    order = np.empty(n_o + n_m + 1, dtype=np.int64)
    j_o = 0
    j_m = n_o
    for lab in range(nl):
        k = kind[lab]
        if k == 0 or size[lab] == 1 or lab == tight:
            continue
        if k == 1:
            order[j_o] = lab
            j_o += 1
        else:
            order[j_m] = lab
            j_m += 1
    # each group by decreasing weight, stable (insertion sort: a handful of labels)
    for lo, hi in ((0, n_o), (n_o, n_o + n_m)):
        for i in range(lo + 1, hi):
            lab = order[i]
            j = i - 1
            while j >= lo and weight[order[j]] < weight[lab]:
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = lab
    order[n_o + n_m] = tight
    ext = np.empty(n_o + n_m + 1, dtype=np.int64)
    st = np.empty((nr, n_o + n_m + 1), dtype=np.int64)
    # fold within each group: a dimension merges into the previous one when every row's stride
    # there is this one's times this extent
    nd = 0
    n_outer = 0
    n_mid = 0
    for j in range(n_o + n_m + (1 if tight >= 0 else 0)):
        lab = order[j]
        e = size[lab]
        if j != 0 and j != n_o and j != n_o + n_m:  # not the first of its group
            ok = True
            for r in range(nr):
                if st[r, nd - 1] != rows[r, lab] * e:
                    ok = False
                    break
            if ok:
                ext[nd - 1] *= e
                for r in range(nr):
                    st[r, nd - 1] = rows[r, lab]
                continue
        ext[nd] = e
        for r in range(nr):
            st[r, nd] = rows[r, lab]
        nd += 1
        if j < n_o:
            n_outer = nd
        elif j < n_o + n_m:
            n_mid = nd - n_outer
    if tight < 0:
        ext[nd] = 1
        for r in range(nr):
            st[r, nd] = 0
        nd += 1
    t = nd - 1
    # a summed tight dimension may absorb the last middle one
    if not inner_out and tight >= 0 and n_mid > 0:
        ok = True
        for r in range(nr):
            if st[r, t - 1] != st[r, t] * ext[t]:
                ok = False
        if ok:
            ext[t - 1] *= ext[t]
            for r in range(nr):
                st[r, t - 1] = st[r, t]
            nd -= 1
            t -= 1
    # an output tight dimension absorbs the outer dimensions that fold into it: the summed
    # (middle) loops then run outside them and each tight row is longer (``ijk->jk`` on a
    # C-ordered operand: 50 passes over one row of j*k, not j*i rows of k). With summed
    # dimensions the row is added to once per summed step, so it stays short enough for L1/L2.
    if inner_out and n_outer > 0:
        text = ext[t]
        while n_outer > 0:
            p = n_outer - 1
            if n_mid > 0 and text * ext[p] > FOLD_ROW_MAX:
                break
            ok = True
            for r in range(nr):
                if st[r, p] != st[r, t] * text:
                    ok = False
            if not ok:
                break
            text *= ext[p]
            # drop dimension p: shift the middle and tight dimensions down by one
            for d in range(p, nd - 1):
                ext[d] = ext[d + 1]
                for r in range(nr):
                    st[r, d] = st[r, d + 1]
            nd -= 1
            t -= 1
            n_outer -= 1
        ext[t] = text
    return ext[:nd].copy(), st[:, :nd].copy(), n_outer, inner_out


def tabulate(
    extents: np.ndarray,
    strides: np.ndarray,
    n_outer: int,
    inner_out: bool,
    tight_max: int,
    table_max: int,
) -> tuple[np.ndarray, np.ndarray, int, bool, np.ndarray]:
    """Fold the innermost dimensions of a kernel layout into one table of offsets.

    A layout from :func:`kernel_dims` whose tight loop is shorter than ``tight_max`` runs a
    nest of loops of a few iterations each when the operands have many small axes in different
    orders (nothing folds): every few multiply-adds pay for the loop bookkeeping around them.
    Here the innermost dimensions of one kind become a single *block* dimension whose ``T``
    steps are listed in a table: ``table[k, t]`` is the offset of step ``t`` in row ``k`` (row 0
    the output, then each operand), and the kernel loops ``t`` over the table.

    The block holds dimensions of one kind only, so the kernel's two tight modes stay valid:

    * summed dimensions (the tight one and the innermost middle ones), accumulated in a local
      variable, preferred when the summed dimensions hold at least ``tight_max`` steps per
      output element;
    * output dimensions (the tight one, if it is an output one, and the innermost outer ones),
      each step a distinct output element; every summed dimension then loops outside the
      block, adding into the output row. Preferred otherwise: per output element there is too
      little to sum for the loop around it to pay.

    The other kind is taken when the preferred one has fewer than two dimensions to offer.

    Parameters
    ----------
    extents, strides, n_outer, inner_out
        A layout as :func:`kernel_dims` returns it.
    tight_max : int
        Layouts whose tight dimension has at least this many steps are returned unchanged.
    table_max : int
        The most entries a table may have.

    Returns
    -------
    extents, strides, n_outer, inner_out
        The new layout; in ``strides`` the block's column is 1 for rows that move in the block
        and 0 for rows that do not.
    table : ndarray of int64, shape (len(strides), T)
        The offsets; ``T == 0`` when the layout is returned unchanged (no block pays).
    """
    rows, nd = strides.shape
    unchanged = extents, strides, n_outer, inner_out, np.zeros((rows, 0), dtype=np.int64)
    last = nd - 1
    if extents[last] >= tight_max:
        return unchanged
    summed = [d for d in range(n_outer, nd) if not (inner_out and d == last)]
    outer = list(range(n_outer)) + ([last] if inner_out else [])
    many_summed = math.prod(int(extents[d]) for d in summed) >= tight_max
    # (output block?, its candidate dimensions), the preferred kind first; an output tight
    # dimension cannot join a summed block
    kinds = [(True, outer)] if inner_out else [(False, summed), (True, outer)]
    if not inner_out and not many_summed:
        kinds.reverse()
    for kind, candidates in kinds:  # noqa: B007 (the kind that breaks the loop is used below)
        block: list[int] = []
        count = 1
        for d in reversed(candidates):
            if count * int(extents[d]) > table_max:
                break
            block.insert(0, d)
            count *= int(extents[d])
        if len(block) >= 2:
            break
    else:
        return unchanged
    table = np.zeros((rows, 1), dtype=np.int64)
    for d in block:  # C order over the block: its innermost dimension moves fastest
        steps = np.arange(int(extents[d]), dtype=np.int64)
        table = (table[:, :, None] + strides[:, d, None, None] * steps).reshape(rows, -1)
    head = [d for d in candidates if d not in block]
    rest = summed if kind else outer
    order = head + rest if kind else rest + head  # outer, middle, then the block
    new_extents = np.array([extents[d] for d in order] + [count], dtype=np.int64)
    flags = (table != 0).any(axis=1).astype(np.int64)
    new_strides = np.concatenate([strides[:, order], flags[:, None]], axis=1)
    new_strides = np.ascontiguousarray(new_strides)  # (fancy indexing may give F order)
    return new_extents, new_strides, len(head) if kind else len(rest), kind, table


def by_stride(labels: Sequence[int], strides: dict[int, int]) -> list[int]:
    """``labels`` from the largest stride to the smallest (stable): the order that can fold."""
    return sorted(labels, key=lambda lab: -abs(strides[lab]))


def folds(labels: Sequence[int], strides: dict[int, int], size: dict[int, int]) -> bool:
    """Whether axes ``labels`` (in this order) merge into one axis without a copy.

    That is ``numpy.reshape``'s test for a view: each stride equals the next one times the next
    size. Size-1 labels must not be passed (they merge with anything).
    """
    return all(strides[x] == strides[y] * size[y] for x, y in zip(labels, labels[1:]))


def foldable_tail(
    labels: Sequence[int], strides: dict[int, int], size: dict[int, int]
) -> tuple[list[int], list[int]]:
    """Split labels (ordered by :func:`by_stride`) into ``(head, tail)``: ``tail`` is the longest
    run ending at the smallest nonzero stride that folds into one axis; ``head`` is the rest.

    A matrix product can keep ``tail`` as a matrix dimension and loop over ``head`` as extra
    batch axes, instead of copying the operand to make every label fold.
    """
    ordered = list(labels)
    live = [lab for lab in ordered if strides[lab] != 0]
    if not live:
        return ordered, []
    start = len(live) - 1
    while start > 0 and folds(live[start - 1:start + 1], strides, size):
        start -= 1
    tail = live[start:]
    return [lab for lab in ordered if lab not in tail], tail


def is_blasable(matrix: np.ndarray, itemsize: int | None = None) -> bool:
    """Whether numpy's matmul hands the last two axes of ``matrix`` to BLAS without a copy.

    numpy's rule (``is_blasable2d``), for the matrix or its transpose: one axis has unit stride
    and the other a positive stride, a multiple of the item size, at least the unit axis' length.
    Otherwise matmul runs a plain C loop that is many times slower than BLAS. ``itemsize``
    overrides ``matrix.itemsize`` (for a byte-typed stand-in that only carries the geometry).
    """
    rows, cols = matrix.shape[-2:]
    s_r, s_c = matrix.strides[-2:]
    item = matrix.itemsize if itemsize is None else itemsize

    def c_order(s0: int, s1: int, d1: int) -> bool:
        return s1 == item and s0 % item == 0 and s0 // item >= d1

    return c_order(s_r, s_c, cols) or c_order(s_c, s_r, rows)
