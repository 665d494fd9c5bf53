"""Argo's ``fields`` projection of a resource (``metadata.name,status.phase`` or ``-status.nodes``). Pure.

The Argo Server applies it server-side; the embedded server does the same, and the Kubernetes
backend applies it to what the Kubernetes API returned whole, so every backend hands the runner
the same shape.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["item_fields", "project_fields"]


def _pick(obj: Any, path: list[str]) -> Any:
    if not path:
        return copy.deepcopy(obj)
    if isinstance(obj, list):
        return [_pick(item, path) for item in obj]
    if isinstance(obj, dict) and path[0] in obj:
        inner = _pick(obj[path[0]], path[1:])
        return None if inner is None else {path[0]: inner}
    return None


def _merge_into(target: dict[str, Any], part: Any) -> None:
    for key, value in part.items():
        if key in target and isinstance(target[key], dict) and isinstance(value, dict):
            _merge_into(target[key], value)
        elif key in target and isinstance(target[key], list) and isinstance(value, list):
            for existing, new in zip(target[key], value, strict=False):
                if isinstance(existing, dict) and isinstance(new, dict):
                    _merge_into(existing, new)
        else:
            target[key] = value


def _drop(obj: Any, path: list[str]) -> None:
    if isinstance(obj, list):
        for item in obj:
            _drop(item, path)
    elif isinstance(obj, dict) and path and path[0] in obj:
        if len(path) == 1:
            del obj[path[0]]
        else:
            _drop(obj[path[0]], path[1:])


def project_fields(obj: dict[str, Any], fields: str) -> dict[str, Any]:
    """Argo's ``fields`` projection: keep the listed dotted paths, or drop those prefixed ``-``."""
    paths = [p.strip() for p in fields.split(",") if p.strip()]
    if not paths:
        return obj
    if all(p.startswith("-") for p in paths):
        trimmed = copy.deepcopy(obj)
        for path in paths:
            _drop(trimmed, path[1:].split("."))
        return trimmed
    kept: dict[str, Any] = {}
    for path in paths:
        part = _pick(obj, path.lstrip("-").split("."))
        if isinstance(part, dict):
            _merge_into(kept, part)
    return kept


def item_fields(list_fields: str) -> str:
    """The per-item part of a LIST's ``fields`` (``items.metadata.name`` -> ``metadata.name``)."""
    return ",".join(
        ("-" if f.startswith("-") else "") + f.lstrip("-").removeprefix("items.")
        for f in list_fields.split(",")
        if f.lstrip("-").startswith("items.")
    )
