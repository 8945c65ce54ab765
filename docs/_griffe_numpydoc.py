"""A Griffe extension (used by mkdocstrings, see mkdocs.yml): render numpydoc as numpydoc means it.

Three conventions the code's docstrings use, which Griffe's numpy parser renders wrongly:

* Sphinx roles, ``:func:`numpy.einsum``` or ``:class:`~contract.jacobian.Jacobian```, are
  printed literally; they become inline code (``~`` keeps the last component, as in Sphinx).
* Parameters documented together (``a, b : int`` or ``out, dtype`` followed by "As for ...")
  all get the first name's default, and its annotation when the line has no type; each gets its
  own from the signature.
* A choice list (``order : {'K', 'C'}``) shows its first choice as the default; the signature's
  default is shown instead.
* numpy's type name ``data-type`` is parsed as an expression and shown as ``data - type``.

Nothing here changes the source: the doctests and ``help()`` see the docstrings as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from griffe import DocstringSectionParameters, Extension, Object, ParameterKind

_ROLE = re.compile(
    r":(?:py:)?(?:func|meth|class|attr|mod|data|exc|obj|const|ref|term):`(~?)([^`<]+?)(?:\s*<[^>]*>)?`"
)


def _role_to_code(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _walk(obj: Object) -> Iterator[Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]


def _signature(obj: Object) -> dict[str, Any]:
    try:
        params = obj.parameters  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - classes without __init__, attributes, modules
        return {}
    return {p.name: p for p in params}


def _fix_parameters(obj: Object) -> None:
    signature = _signature(obj)
    if not signature:
        return
    for section in obj.docstring.parsed:  # type: ignore[union-attr]
        if not isinstance(section, DocstringSectionParameters):
            continue
        items = section.value
        # one line documenting several names ("a, b, c" with no type) gives them all the first
        # name's signature annotation: find each item's group start before changing anything
        starts = []
        for k, item in enumerate(items):
            start = k
            while (
                start > 0
                and items[start - 1].description == item.description
                and items[start - 1].annotation is item.annotation
            ):
                start -= 1
            starts.append(start)
        for k, item in enumerate(items):
            sig = signature.get(item.name.lstrip("*"))
            if sig is None or sig.kind in (ParameterKind.var_positional, ParameterKind.var_keyword):
                continue
            first_sig = signature.get(items[starts[k]].name.lstrip("*"))
            if starts[k] < k and first_sig is not None and item.annotation is first_sig.annotation:
                item.annotation = sig.annotation
            item.value = sig.default
        for item in items:
            if str(item.annotation) == "data - type":  # numpy's "data-type", parsed as a minus
                item.annotation = "data-type"


class NumpydocConventions(Extension):
    """Rewrite Sphinx roles and fix grouped/choice parameters once the package is loaded."""

    def on_package(self, *, pkg: Object, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            docstring = obj.docstring
            if docstring is None:
                continue
            docstring.value = _ROLE.sub(_role_to_code, docstring.value)
            docstring.__dict__.pop("parsed", None)  # parse again from the rewritten text
            if obj.is_function or obj.is_class:
                _fix_parameters(obj)

    # the same hook under its Griffe 1.x name (running it twice changes nothing)
    on_package_loaded = on_package
