"""Template tags: ``{{name}}`` and ``{{=expression}}`` substituted into strings and nested objects.

Simple tags are looked up in a *flat* scope keyed by the full dotted name, as Argo's
``replaceMap`` is (https://argo-workflows.readthedocs.io/en/latest/variables/), so
``inputs.parameters.message`` is one key, not three maps. Substitution is a single pass: a
substituted value is never re-scanned for tags, so a parameter whose value contains ``{{`` cannot
inject a tag. Expression tags are handed to expr-lang (`evaluate`) over the scope nested into maps
(`scope_to_env`), as Argo's ``EnvMap`` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, TypeVar

from galaxy_argo.local.expressions.errors import UnknownNameError, suggest
from galaxy_argo.local.expressions.evaluation import evaluate
from galaxy_argo.local.expressions.values import render_value

__all__ = ["scope_to_env", "substitute", "substitute_obj"]

T = TypeVar("T")

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_MISSING: Final = object()


def _lookup(scope: Mapping[str, Any], name: str) -> Any:
    """Value of a dotted name, or `_MISSING`.

    The flat key wins; otherwise the longest present prefix is descended into, so ``item.key``
    reads ``scope["item"]["key"]`` when ``item`` is a map, as Argo's ``item.*`` variables do.
    """
    if name in scope:
        return scope[name]
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix not in scope:
            continue
        value = scope[prefix]
        for part in parts[cut:]:
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return _MISSING
        return value
    return _MISSING


def scope_to_env(scope: Mapping[str, Any]) -> dict[str, Any]:
    """Nest a flat scope (``{"inputs.parameters.x": "1"}``) into maps for expr, like Argo's ``EnvMap``.

    Shorter keys are placed first and a non-map value keeps its place, so a deeper key under it
    is dropped rather than destroying it. Maps taken from the scope are copied before keys are
    added to them: the caller's scope is never changed.
    """
    env: dict[str, Any] = {}
    owned: set[int] = {id(env)}
    for key in sorted(scope, key=lambda k: k.count(".")):
        parts = key.split(".")
        node: dict[str, Any] | None = env
        for part in parts[:-1]:
            if node is None:
                break
            child = node.get(part, _MISSING)
            if child is _MISSING:
                child = {}
            elif isinstance(child, Mapping) and id(child) not in owned:
                child = dict(child)
            elif not isinstance(child, dict):
                node = None
                break
            owned.add(id(child))
            node[part] = child
            node = child
        if node is not None and parts[-1] not in node:
            node[parts[-1]] = scope[key]
    return env


def substitute(text: str, scope: Mapping[str, Any], *, strict: bool = True) -> str:
    """Replace every ``{{name}}`` and ``{{=expression}}`` tag in ``text`` from ``scope``.

    Args:
        text: The template text; tags may have whitespace inside the braces.
        scope: Flat map from full dotted names to values, as Argo builds it; a map value also
            answers the names below it (``item.key``).
        strict: Raise on a tag that does not resolve. When false, such tags are left untouched for
            a later pass, as Argo leaves ``{{workflow.status}}`` until the exit handler runs.
            That covers ``{{=...}}`` reading an unknown name or giving nil; a syntax or type
            error in one cannot be cured by a later pass and raises either way.

    Returns:
        The text with resolved tags replaced by `render_value` of their values.

    Raises:
        UnknownNameError: ``strict`` and a tag names nothing in ``scope``.
        ExpressionError: An expression tag is malformed or fails to evaluate.
    """
    env: dict[str, Any] | None = None

    def replace(match: re.Match[str]) -> str:
        nonlocal env
        tag = match.group(1).strip()
        if tag.startswith("="):
            if env is None:
                env = scope_to_env(scope)
            try:
                result = evaluate(tag[1:], env)
            except UnknownNameError:
                if strict:
                    raise
                return match.group(0)
            if result is None:
                if strict:
                    raise UnknownNameError(
                        tag[1:], "evaluated to nil, which cannot be written into a template"
                    )
                return match.group(0)
            return render_value(result)
        value = _lookup(scope, tag)
        if value is _MISSING:
            if strict:
                raise UnknownNameError(
                    match.group(0),
                    f"no variable {tag!r} in scope{suggest(tag, list(scope))}",
                    kind="template tag",
                )
            return match.group(0)
        return render_value(value)

    return _TAG.sub(replace, text)


def substitute_obj(obj: T, scope: Mapping[str, Any], *, strict: bool = True) -> T:
    """`substitute` every string inside nested dicts and lists; keys and other values stay as they are.

    Returns a new structure, so a template stored in the workflow is never changed in place.
    """
    if isinstance(obj, str):
        return substitute(obj, scope, strict=strict)  # type: ignore[return-value]
    if isinstance(obj, dict):
        return {k: substitute_obj(v, scope, strict=strict) for k, v in obj.items()}  # type: ignore[return-value]
    if isinstance(obj, list):
        return [substitute_obj(v, scope, strict=strict) for v in obj]  # type: ignore[return-value]
    if isinstance(obj, tuple):
        return tuple(substitute_obj(v, scope, strict=strict) for v in obj)  # type: ignore[return-value]
    return obj
