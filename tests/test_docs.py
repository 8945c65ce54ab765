"""Doctests of the documentation pages (docs/*.md) and of every module's docstrings.

The pages are found relative to this file, so this works from any working directory and with
``--import-mode=importlib``; without a ``docs/`` directory next to ``tests/`` (an installed copy
tested on its own) the page tests are skipped. Modules are imported from wherever ``contract``
is installed.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import contract

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md")) if DOCS.is_dir() else []
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

MODULES = sorted(
    [contract.__name__]
    + [info.name for info in pkgutil.walk_packages(contract.__path__, contract.__name__ + ".")]
)


@pytest.mark.skipif(not PAGES, reason="no docs/ directory next to tests/")
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples(page: Path) -> None:
    result = doctest.testfile(
        str(page), module_relative=False, optionflags=FLAGS, raise_on_error=False, verbose=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {page}"


@pytest.mark.parametrize("name", MODULES)
def test_module_docstrings(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=FLAGS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.skipif(not PAGES, reason="no docs/ directory next to tests/")
def test_api_page_lists_every_public_name() -> None:
    """Every name in ``contract.__all__`` and ``contract.jacobian.__all__`` has a ``:::`` entry
    (the Jacobian names that ``contract`` re-exports are documented once, under
    ``contract.jacobian``)."""
    from contract import jacobian

    text = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: ([\w.]+)\s*$", text, flags=re.MULTILINE))
    wanted = {f"contract.{name}" for name in contract.__all__ if name not in jacobian.__all__}
    wanted |= {f"contract.jacobian.{name}" for name in jacobian.__all__}
    assert sorted(wanted - documented) == []


@pytest.mark.skipif(not PAGES, reason="no docs/ directory next to tests/")
def test_every_page_is_in_the_nav() -> None:
    """``mkdocs build --strict`` checks this too; here it fails fast without mkdocs."""
    config = DOCS.parent / "mkdocs.yml"
    if not config.is_file():
        pytest.skip("no mkdocs.yml next to docs/")
    nav = config.read_text(encoding="utf-8")
    missing = [
        p.name
        for p in PAGES
        if not re.search(rf":\s*{re.escape(p.name)}\s*$", nav, flags=re.MULTILINE)
    ]
    assert missing == []


def test_jacobian_api_is_reachable_from_the_package() -> None:
    """``import contract`` exports every Jacobian name, as the same objects."""
    from contract import jacobian

    for name in jacobian.__all__:
        assert name in contract.__all__
        assert getattr(contract, name) is getattr(jacobian, name)
