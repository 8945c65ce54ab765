"""Apply ``test_peer_suites.py``'s list of not-applicable tests (skipped, with the reason) and,
unless ``CONTRACT_PEER_FULL=1``, its deterministic subset of opt_einsum's parametrized cases."""

from __future__ import annotations

import zlib
from fnmatch import fnmatchcase

import pytest


def pytest_collection_modifyitems(config, items):
    kept, deselected = [], []
    for item in items:
        module = getattr(item, "module", None)
        table = getattr(module, "NOT_APPLICABLE", None)
        if table is None:
            kept.append(item)
            continue
        name = item.nodeid.split("::", 1)[1]
        reason = next((why for pattern, why in table.items() if fnmatchcase(name, pattern)), None)
        if reason is not None:
            # first among the skip marks, so this reason is the one reported
            item.add_marker(pytest.mark.skipif(True, reason=f"not applicable: {reason}"),
                            append=False)
        elif not module.FULL and (
                name in module.NUMPY_FULL_ONLY
                or ("[" in name and name.startswith("TestOptEinsum")
                    and zlib.crc32(name.encode()) % module.SUBSET_MODULUS)):
            deselected.append(item)
            continue
        kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
