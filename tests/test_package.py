"""The package edges: a lazy, side-effect-free ``import contract``."""

from __future__ import annotations

import json
import subprocess
import sys

import contract

_PROBE = """
import json, os, sys
before = dict(os.environ)
import contract, contract.parser, contract.planner, contract.layout
state = {"numba": "numba" in sys.modules, "env_changed": dict(os.environ) != before,
         "kernels": "contract.kernels" in sys.modules}
import numpy as np
state["result"] = float(contract.einsum("i,i->", np.ones(3), np.ones(3)))
state["numba_after_use"] = "numba" in sys.modules
state["dask"] = "dask" in sys.modules  # the dask backend is imported on a dask operand only
print(json.dumps(state))
"""


def test_import_loads_no_numba_and_changes_nothing():
    env = {"PATH": "/usr/bin:/bin"}  # no OMP_WAIT_POLICY, no CONTRACT_* variables
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state == {"numba": False, "env_changed": False, "kernels": False, "result": 3.0,
                     "numba_after_use": True, "dask": False}


def test_every_public_name_resolves_and_unknown_names_raise():
    for name in contract.__all__:
        assert getattr(contract, name) is not None, name
    assert sorted(contract.__all__) == dir(contract)
    try:
        contract.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("an unknown attribute resolved")
