"""Skip the peer suites' not-applicable tests; thin out opt_einsum's parametrized cases unless
``CONTRACT_PEER_FULL=1`` (see ``test_peer_suites.py``)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    seen: dict[str, int] = {}
    deselected = []
    kept = []
    for item in items:
        module = getattr(item, "module", None)
        table = getattr(module, "NOT_APPLICABLE", None)
        if table is None:
            kept.append(item)
            continue
        name = item.nodeid.split("::", 1)[1]
        base = name.split("[", 1)[0]
        reason = table.get(name, table.get(base))
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"not applicable: {reason}"))
        elif (not module.FULL and name != base and base.startswith("TestOptEinsum")):
            k = seen[base] = seen.get(base, -1) + 1
            if k % module.SUBSET_STRIDE:
                deselected.append(item)
                continue
        kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
