"""The parser's two stages: structure from ranks alone, then sizes bound to shapes."""

from __future__ import annotations

import pytest
from conftest import equations
from hypothesis import given

from contract.parser import bind_sizes, parse, parse_structure


@given(eq=equations())
def test_structure_then_sizes_is_parse(eq):
    """Parsing against ranks and then binding shapes gives parse's equation (or its error)."""
    subscripts, shapes = eq
    try:
        expected = parse(subscripts, shapes)
    except ValueError as exc:
        with pytest.raises(ValueError) as raised:
            bind_sizes(parse_structure(subscripts, [len(s) for s in shapes]), shapes)
        assert str(raised.value) == str(exc)
        return
    structure = parse_structure(subscripts, [len(s) for s in shapes])
    assert (structure.terms, structure.output, structure.implicit) == (
        expected.terms, expected.output, expected.implicit)
    assert bind_sizes(structure, shapes) == expected


def test_structure_errors_need_no_sizes():
    """Rank and label errors come from the structure alone; size errors only when binding."""
    with pytest.raises(ValueError, match="more dimensions"):
        parse_structure("ij", [3])
    with pytest.raises(ValueError, match="never appeared"):
        parse_structure("ij->k", [2])
    structure = parse_structure("ij,jk->ik", [2, 2])  # fine without sizes
    with pytest.raises(ValueError, match="label 'j' has size 4 in operand 1"):
        bind_sizes(structure, [(2, 3), (4, 5)])
    with pytest.raises(ValueError, match="ranks"):
        bind_sizes(structure, [(2, 3), (3,)])


def test_one_structure_binds_many_shapes():
    """A structure is reused for every shape set of its ranks (what a backend caches)."""
    structure = parse_structure("...ij,...jk", [3, 2])
    small = bind_sizes(structure, [(5, 2, 3), (3, 4)])
    large = bind_sizes(structure, [(7, 20, 30), (30, 40)])
    assert small.terms == large.terms and small.output == large.output
    assert small.size_dict != large.size_dict
