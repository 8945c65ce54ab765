"""Parse einsum subscripts (string or sublist form) into a frozen, validated :class:`Equation`.

Labels are plain ints so that the rest of the engine has no 52-letter ceiling:

* a character ``c`` in a subscript string is the label ``_CHAR_BASE + ord(c)``: any character
  but ``,``, ``-``, ``>``, ``.`` and whitespace, as opt_einsum accepts (``'αβ,βγ'``; numpy takes
  only ASCII letters); spaces are ignored, as in numpy;
* an int ``n`` in a sublist is the label of the letter numpy maps it to (``0..25 -> 'A'..'Z'``,
  ``26..51 -> 'a'..'z'``), so both forms of one equation parse to the same labels; ints ``>= 52``
  (an extension over numpy, used by the Jacobian layer) become ``_WIDE_LABEL_BASE + n``;
* the dimensions covered by ``...`` become labels ``0..k-1`` (broadcast dimensions, counted from
  the left of the broadcast shape, which is right-aligned across operands as in numpy; numpy
  arrays have at most 64 dimensions, so these stay below ``_CHAR_BASE``).

Labels therefore sort as numpy and opt_einsum order an implicit output: broadcast dimensions
first, then characters by code point (``A..Z`` before ``a..z``), then wide sublist ints.
:func:`relabel_sublists` turns opt_einsum's hashable sublist labels (``("left", "bond")``) into
ints first.

Every subscript and shape validation error is raised here, with numpy's exception type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

__all__ = [
    "Equation",
    "Structure",
    "bind_sizes",
    "label_char",
    "label_name",
    "parse",
    "parse_cached",
    "parse_structure",
    "relabel_sublists",
    "split_operands",
    "symbol_names",
]

_CHAR_BASE = 64  # above every broadcast label (numpy arrays have at most 64 dimensions)
_WIDE_LABEL_BASE = _CHAR_BASE + 0x110000  # above every character label
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_NOT_LABELS = ",->."


def label_char(label: int) -> str | None:
    """The character a label was written as in a subscript string (or stands for in a sublist
    int below 52), or None for a ``...`` dimension or a wide sublist int."""
    if _CHAR_BASE <= label < _WIDE_LABEL_BASE:
        return chr(label - _CHAR_BASE)
    return None


def label_name(label: int) -> str:
    """Return a readable name for an internal label (for messages and reports)."""
    if label >= _WIDE_LABEL_BASE:
        return str(label - _WIDE_LABEL_BASE)
    char = label_char(label)
    if char is not None:
        return char
    return f"...[{label}]"


@dataclass(frozen=True)
class Equation:
    """A parsed, validated einsum equation.

    Attributes
    ----------
    terms : tuple of tuple of int
        One tuple of labels per operand, in axis order (repeated labels kept).
    output : tuple of int
        The labels of the result, in axis order (no repeats).
    sizes : tuple of (int, int)
        ``(label, size)`` pairs: the size of every label after size-1 broadcasting.
    implicit : bool
        True when the subscripts had no ``->``.
    """

    terms: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    sizes: tuple[tuple[int, int], ...]
    implicit: bool

    @cached_property
    def size_dict(self) -> dict[int, int]:
        """Label -> size mapping (computed once; do not mutate)."""
        return dict(self.sizes)

    def to_string(self) -> str:
        """The equation as an einsum string (``...`` labels and wide labels become symbols)."""
        names = symbol_names(self.terms)
        lhs = ",".join("".join(names[lab] for lab in term) for term in self.terms)
        return lhs + "->" + "".join(names[lab] for lab in self.output)


@dataclass(frozen=True)
class Structure:
    """What subscripts say once the operand ranks are known, before any size is bound.

    This is all that Numba's typing knows of a call (ranks and dtypes): the njit backend plans
    from it, and :func:`bind_sizes` turns it into an :class:`Equation` for given shapes.

    Attributes
    ----------
    terms : tuple of tuple of int
        One tuple of labels per operand, in axis order (repeated labels kept, ``...`` expanded).
    output : tuple of int
        The labels of the result, in axis order (no repeats).
    implicit : bool
        True when the subscripts had no ``->``.
    """

    terms: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    implicit: bool


def symbol_names(terms: Sequence[Sequence[int]]) -> dict[int, str]:
    """One printable character per label of ``terms``: the label's own character when it was
    written as one, else (``...`` dimensions, sublist ints) the first opt_einsum symbol not
    otherwise used, in order of first appearance. The engine's one label -> symbol mapping
    (equation strings, plan reports, path optimizers that need one-character labels).
    """
    from opt_einsum import get_symbol

    names: dict[int, str] = {}
    used = {label_char(lab) for term in terms for lab in term} - {None}
    counter = 0
    for term in terms:
        for lab in term:
            if lab in names:
                continue
            char = label_char(lab)
            if char is None:
                char = get_symbol(counter)
                while char in used:
                    counter += 1
                    char = get_symbol(counter)
                used.add(char)
            names[lab] = char
    return names


def split_operands(args: Sequence[Any]) -> tuple[Any, list[Any]]:
    """Split einsum's ``*args`` into ``(subscripts, operands)``.

    The string form is ``(subscripts, op0, op1, ...)``; the sublist (interleaved) form is
    ``(op0, sub0, op1, sub1, ..., [out_sub])``. For the sublist form ``subscripts`` is returned as
    a tuple ``(list_of_input_sublists, output_sublist_or_None)``.
    """
    if not args:
        raise ValueError("No input operands: einsum needs the subscripts and at least one operand")
    if isinstance(args[0], str):
        return args[0], list(args[1:])
    if len(args) < 2:
        raise ValueError("must provide at least an operand and a subscripts list to einsum")
    operands = list(args[0::2])
    sublists = list(args[1::2])
    out_sub = None
    if len(operands) > len(sublists):
        # odd number of args: the last one is the output sublist
        out_sub = operands.pop()
    return (sublists, out_sub), operands


def _sublist_labels(sub: Any, where: str) -> list[int | None]:
    """Convert one sublist to labels; ``None`` marks an ellipsis."""
    try:
        items = list(sub)
    except TypeError:
        raise TypeError(
            f"{where}: the subscript list must be a sequence of ints or Ellipsis, "
            f"got {type(sub).__name__}"
        ) from None
    labels: list[int | None] = []
    for item in items:
        if item is Ellipsis:
            if None in labels:
                raise ValueError(f"{where}: each subscripts list may have only one ellipsis")
            labels.append(None)
            continue
        try:
            if isinstance(item, bool):  # numpy refuses bools as subscripts
                raise TypeError
            n = int(item.__index__())  # rejects floats and other non-integers
        except (AttributeError, TypeError):
            raise TypeError(f"{where}: subscript {item!r} is not an int or Ellipsis") from None
        if n < 0:
            raise ValueError(f"{where}: subscript is not within the valid range [0, 52), got {n}")
        labels.append(_CHAR_BASE + ord(_LETTERS[n]) if n < 52 else _WIDE_LABEL_BASE + n)
    return labels


def _plain_int(item: Any) -> bool:
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def relabel_sublists(subscripts: Any) -> Any:
    """opt_einsum's interleaved form: hashable labels (``("left", "bond")``) become ints.

    ``subscripts`` is :func:`split_operands`' ``(input_sublists, output_sublist_or_None)``; a
    string, or sublists of non-negative ints (and Ellipsis), are returned unchanged. Otherwise every
    distinct label is numbered by its rank in sorted order, as opt_einsum numbers them (so an
    implicit output comes out in the same order).

    Raises
    ------
    TypeError
        For a label that is unhashable, or that does not compare with the others.
    """
    if isinstance(subscripts, str) or not (isinstance(subscripts, tuple) and len(subscripts) == 2):
        return subscripts
    sublists, out_sub = subscripts
    try:
        lists = [list(s) for s in sublists]
        out_list = None if out_sub is None else list(out_sub)
    except TypeError:
        return subscripts  # not sequences: parse() reports it
    items = [item for s in lists + ([out_list] if out_list is not None else []) for item in s]
    if all(item is Ellipsis or (_plain_int(item) and item >= 0) for item in items):
        return subscripts
    try:
        rank = {lab: k for k, lab in enumerate(sorted({i for i in items if i is not Ellipsis}))}
    except TypeError:
        raise TypeError(
            "subscript lists must hold Ellipsis or hashable labels that can be sorted together "
            "(all ints, or all strings, ...)"
        ) from None

    def renumber(sub: list[Any]) -> list[Any]:
        return [item if item is Ellipsis else rank[item] for item in sub]

    return [renumber(s) for s in lists], None if out_list is None else renumber(out_list)


def _string_labels(term: str, where: str) -> list[int | None]:
    """Convert one subscript-string term to labels; ``None`` marks an ellipsis."""
    labels: list[int | None] = []
    i = 0
    while i < len(term):
        c = term[i]
        if c == ".":
            if term[i : i + 3] != "...":
                raise ValueError(
                    f"einstein sum subscripts string contains a '.' that is not part "
                    f"of an ellipsis ('...') in {where}"
                )
            if None in labels:
                raise ValueError(
                    f"einstein sum subscripts string contains more than one ellipsis in {where}"
                )
            labels.append(None)
            i += 3
            continue
        if c == " ":  # numpy ignores spaces (only: a tab or newline is an invalid subscript)
            i += 1
            continue
        if c in _NOT_LABELS or c.isspace():
            raise ValueError(
                f"invalid subscript {c!r} in einstein sum subscripts string ({where}): a label "
                f"may be any character but ',', '-', '>', '.' and whitespace"
            )
        labels.append(_CHAR_BASE + ord(c))
        i += 1
    return labels


def parse(subscripts: Any, shapes: Sequence[tuple[int, ...]]) -> Equation:
    """Parse and validate einsum subscripts against the operand shapes.

    Parameters
    ----------
    subscripts : str or tuple
        An einsum subscript string, or ``(input_sublists, output_sublist_or_None)`` as returned by
        :func:`split_operands` for the sublist form.
    shapes : sequence of tuple of int
        The operand shapes.

    Returns
    -------
    Equation
        The canonical equation, with ``...`` expanded into broadcast labels.

    Raises
    ------
    ValueError
        For malformed subscripts, a wrong number of operands, an unknown output label, an output
        label given twice, a term whose length does not match its operand's rank, or label sizes
        that do not agree (and are not 1).
    TypeError
        For subscripts that are neither a string nor sublists.

    Examples
    --------
    >>> eq = parse("ij,jk", [(2, 3), (3, 4)])
    >>> eq.to_string()
    'ij,jk->ik'
    """
    structure = parse_structure(subscripts, [len(shape) for shape in shapes])
    return bind_sizes(structure, shapes)


def parse_structure(subscripts: Any, ranks: Sequence[int]) -> Structure:
    """Parse and validate einsum subscripts against the operand ranks alone (no sizes).

    Parameters
    ----------
    subscripts : str or tuple
        As for :func:`parse`.
    ranks : sequence of int
        The number of dimensions of each operand.

    Returns
    -------
    Structure
        The terms with ``...`` expanded into broadcast labels, and the output labels.

    Raises
    ------
    ValueError
        For malformed subscripts, a wrong number of operands, an unknown output label, an output
        label given twice, or a term whose length does not match its operand's rank.
    TypeError
        For subscripts that are neither a string nor sublists.

    Examples
    --------
    >>> s = parse_structure("...ij,jk", [3, 2])
    >>> [len(term) for term in s.terms], len(s.output), s.implicit
    ([3, 2], 3, True)
    """
    # ---- split into raw terms -------------------------------------------------------------
    if isinstance(subscripts, str):
        text = subscripts
        if (
            text.count("->") > 1
            or text.count(">") != text.count("->")
            or ("-" in text.replace("->", ""))
        ):
            raise ValueError(
                "einstein sum subscripts string includes output subscripts in a "
                "malformed way: use '->' at most once"
            )
        implicit = "->" not in text
        lhs, _, rhs = text.partition("->")
        raw_terms = [_string_labels(t, f"input term {k}") for k, t in enumerate(lhs.split(","))]
        raw_out = None if implicit else _string_labels(rhs, "the output term")
        if not implicit and "," in rhs:
            raise ValueError("einstein sum subscripts string: the output term must not contain ','")
    elif isinstance(subscripts, tuple) and len(subscripts) == 2:
        sublists, out_sub = subscripts
        raw_terms = [_sublist_labels(s, f"operand {k}") for k, s in enumerate(sublists)]
        implicit = out_sub is None
        raw_out = None if implicit else _sublist_labels(out_sub, "the output sublist")
    else:
        raise TypeError("einsum(): subscripts must be a string or the sublist form")

    if len(raw_terms) < len(ranks):
        raise ValueError(
            f"more operands provided to einstein sum function than specified in the "
            f"subscripts string ({len(ranks)} operands, {len(raw_terms)} terms)"
        )
    if len(raw_terms) > len(ranks):
        raise ValueError(
            f"fewer operands provided to einstein sum function than specified in the "
            f"subscripts string ({len(ranks)} operands, {len(raw_terms)} terms)"
        )

    # ---- expand ellipses ------------------------------------------------------------------
    n_broadcast = 0
    for k, (labels, rank) in enumerate(zip(raw_terms, ranks)):
        n_named = sum(lab is not None for lab in labels)
        if None in labels:
            if n_named > rank:
                raise ValueError(
                    f"einstein sum subscripts for operand {k} has {n_named} labels "
                    f"but the operand has only {rank} dimensions"
                )
            n_broadcast = max(n_broadcast, rank - n_named)
        elif n_named != rank:
            if n_named < rank:
                raise ValueError(
                    f"operand {k} has more dimensions ({rank}) than subscripts "
                    f"given in einstein sum ({n_named}), but no '...' ellipsis "
                    f"provided to broadcast the extra dimensions."
                )
            raise ValueError(
                f"einstein sum subscripts for operand {k} has more subscripts "
                f"({n_named}) than dimensions in the operand ({rank})"
            )

    terms: list[tuple[int, ...]] = []
    for labels, rank in zip(raw_terms, ranks):
        if None in labels:
            pos = labels.index(None)
            k_here = rank - (len(labels) - 1)
            ell = tuple(range(n_broadcast - k_here, n_broadcast))
            terms.append(tuple(labels[:pos]) + ell + tuple(labels[pos + 1 :]))  # type: ignore[arg-type]
        else:
            terms.append(tuple(labels))  # type: ignore[arg-type]

    # ---- output ---------------------------------------------------------------------------
    counts: dict[int, int] = {}
    for term in terms:
        for lab in term:
            counts[lab] = counts.get(lab, 0) + 1
    if raw_out is None:
        once = sorted(lab for lab, c in counts.items() if c == 1 and lab >= n_broadcast)
        output = tuple(range(n_broadcast)) + tuple(once)
    else:
        out: list[int] = []
        for lab in raw_out:
            if lab is None:
                out.extend(range(n_broadcast))
                continue
            if lab in out:
                raise ValueError(
                    f"einstein sum subscripts string includes output subscript "
                    f"'{label_name(lab)}' multiple times"
                )
            if lab not in counts:
                raise ValueError(
                    f"einstein sum subscripts string included output subscript "
                    f"'{label_name(lab)}' which never appeared in an input"
                )
            out.append(lab)
        if None not in raw_out and n_broadcast:
            raise ValueError(
                f"output has more dimensions than subscripts given in einstein sum "
                f"({n_broadcast} dimensions covered by '...' in the inputs), but no "
                f"'...' ellipsis provided to broadcast the extra dimensions."
            )
        output = tuple(out)
    return Structure(tuple(terms), output, implicit)


def bind_sizes(structure: Structure, shapes: Sequence[tuple[int, ...]]) -> Equation:
    """The :class:`Equation` of ``structure`` for operands of these shapes.

    ``shapes`` must have the ranks the structure was parsed with.

    Raises
    ------
    ValueError
        When a label's sizes do not agree (and are not 1), within an operand (a repeated label)
        or across operands, or when the shapes do not have the structure's ranks.

    Examples
    --------
    >>> bind_sizes(parse_structure("ij,jk", [2, 2]), [(2, 3), (3, 4)]).size_dict[ord("j") + 64]
    3
    """
    terms, output = structure.terms, structure.output
    if len(shapes) != len(terms) or any(len(t) != len(s) for t, s in zip(terms, shapes)):
        raise ValueError("bind_sizes: the shapes do not have the ranks the subscripts were "
                         "parsed with")
    sizes: dict[int, int] = {}
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        seen: dict[int, int] = {}
        for axis, (lab, dim) in enumerate(zip(term, shape)):
            if lab in seen and shape[seen[lab]] != dim:
                raise ValueError(
                    f"dimensions in operand {k} for collapsing index "
                    f"'{label_name(lab)}' don't match ({shape[seen[lab]]} != {dim})"
                )
            seen.setdefault(lab, axis)
            prev = sizes.get(lab)
            if prev is None or prev == 1:
                sizes[lab] = dim
            elif dim != 1 and dim != prev:
                raise ValueError(
                    f"operands could not be broadcast together: label '{label_name(lab)}' has size "
                    f"{dim} in operand {k} (axis {axis}) but size {prev} in an earlier operand"
                )
    for lab in output:
        sizes.setdefault(lab, 1)
    return Equation(terms, output, tuple(sorted(sizes.items())), structure.implicit)


def parse_cached(subscripts: Any, shapes: tuple[tuple[int, ...], ...]) -> Equation:
    """:func:`parse`, remembered per ``(subscripts, shapes)`` (the parser's one cache).

    A sublist form is keyed by its plain-int labels; a malformed one is not cached (it raises).
    """
    if not isinstance(subscripts, str):
        sublists, out_sub = subscripts
        try:
            key = (tuple(_sublist_key(s) for s in sublists),
                   None if out_sub is None else _sublist_key(out_sub))
        except TypeError:
            return parse(subscripts, shapes)  # raises the right error for malformed sublists
        subscripts = key
    return _parse_remembered(subscripts, shapes)


@lru_cache(maxsize=4096)
def _parse_remembered(subscripts: Any, shapes: tuple[tuple[int, ...], ...]) -> Equation:
    return parse(subscripts, shapes)


def _sublist_key(sub: Any) -> tuple[Any, ...]:
    """A sublist as a cache key of plain ints (and Ellipsis); TypeError for anything else.

    The key must not be equal to a valid one for an invalid sublist: ``(1, 2.0) == (1, 2)`` and
    ``(True,) == (1,)``, so a float or bool label would otherwise hit a cached valid parse.
    """
    if isinstance(sub, (str, bytes)):
        raise TypeError
    key = []
    for item in sub:
        if item is Ellipsis:
            key.append(item)
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            key.append(int(item))
        else:
            raise TypeError
    return tuple(key)
