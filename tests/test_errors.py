"""Bad input raises numpy's exception type, with a message naming what is at fault."""

from __future__ import annotations

import numpy as np
import pytest

import contract

A2 = np.ones((2, 3))
B2 = np.ones((3, 4))

BAD_CALLS = [
    ("invalid character", ("i$", np.ones(2)), {}),
    ("lone dot", ("i.j", np.ones((2, 2))), {}),
    ("two arrows", ("i->i->i", np.ones(2)), {}),
    ("too many subscripts", ("ij", np.ones(2)), {}),
    ("too few subscripts", ("i", np.ones((2, 2))), {}),
    ("more operands than terms", ("i", np.ones(2), np.ones(2)), {}),
    ("fewer operands than terms", ("i,j", np.ones(2)), {}),
    ("output label repeated", ("i->ii", np.ones(2)), {}),
    ("output label unknown", ("i->j", np.ones(2)), {}),
    ("label size mismatch", ("ij,jk", A2, np.ones((4, 4))), {}),
    ("collapsing sizes differ", ("ii", np.ones((2, 3))), {}),
    ("ellipsis dims mismatch", ("...,...", np.ones(2), np.ones(3)), {}),
    ("broadcast dims missing from output", ("...i->i", np.ones((2, 3))), {}),
    ("out wrong shape", ("i->i", np.ones(2)), {"out": np.ones(3)}),
    ("bad order", ("i->i", np.ones(2)), {"order": "X"}),
    ("bad casting", ("i->i", np.ones(2)), {"casting": "bogus"}),
    ("unsafe dtype", ("i,i", np.ones(2), np.ones(2)), {"dtype": np.int32}),
    ("unsafe out", ("i->i", np.ones(2)), {"out": np.ones(2, np.float32)}),
    ("sublist out of range", (np.ones(2), [-1]), {}),
    ("sublist repeated output", (np.ones(2), [0], [0, 0]), {}),
]


@pytest.mark.parametrize("name,args,kwargs", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_same_exception_type_as_numpy(name, args, kwargs):
    with pytest.raises(Exception) as expected:
        np.einsum(*args, **kwargs)
    with pytest.raises(expected.type):
        contract.einsum(*args, **kwargs)
    with pytest.raises(expected.type):
        contract.einsum(*args, **kwargs, optimize=False)


def test_messages_name_operand_label_and_sizes():
    with pytest.raises(ValueError, match=r"label 'j' has size 4 in operand 1.*size 3"):
        contract.einsum("ij,jk", A2, np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"operand 0 for collapsing index 'i'.*2 != 3"):
        contract.einsum("ii", np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"operand 1 has more dimensions"):
        contract.einsum("i,i", np.ones(2), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"out has shape \(3,\)"):
        contract.einsum("i->i", np.ones(2), out=np.ones(3))
    with pytest.raises(TypeError, match=r"operand 0 from dtype\('float64'\)"):
        contract.einsum("i,i", np.ones(2), np.ones(2), dtype=np.int32)


def test_read_only_out_is_rejected():
    out = np.empty(2)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        contract.einsum("i->i", np.ones(2), out=out)


def test_bad_optimize_values():
    with pytest.raises(ValueError, match="unknown path optimizer"):
        contract.einsum("ij,jk", A2, B2, optimize="bogus")
    with pytest.raises(ValueError, match="invalid contraction"):
        contract.einsum("ij,jk,kl", A2, B2, np.ones((4, 2)), optimize=[(0, 5), (0, 1)])
    with pytest.raises(ValueError, match="does not contract all"):
        contract.einsum("ij,jk,kl", A2, B2, np.ones((4, 2)), optimize=[(0, 1)])
    with pytest.raises(TypeError):
        contract.einsum("ij,jk", A2, B2, optimize=3.5)


def test_expression_checks_shapes_and_counts():
    expr = contract.contract_expression("ij,jk->ik", (2, 3), (3, 4))
    with pytest.raises(ValueError, match=r"operand 1 .* must have shape \(3, 4\), got \(3, 5\)"):
        expr(A2, np.ones((3, 5)))
    with pytest.raises(ValueError, match="takes 2 operand"):
        expr(A2)


def test_contract_path_rejects_bad_shapes():
    with pytest.raises(TypeError):
        contract.contract_path("ij", 3, shapes=True)
    with pytest.raises(ValueError):
        contract.contract_path("ij", (2, -1), shapes=True)
