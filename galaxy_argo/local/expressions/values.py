"""Values as Argo writes and names them: Go ``json.Marshal`` rendering and expr-lang type names.

Templates, ``toJson`` and ``when``'s text comparisons all turn a value into text, and they must
agree with Argo on it: ints as ints, integral floats without ``.0``, ``true``/``false``, ``null``,
and maps and lists as compact JSON with sorted keys, as Go's encoder writes them; strings go in as
they are. Type errors name types as expr-lang does (``string``, ``map``, ``nil``), so a message
reads the same as the one Argo would give.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["is_number", "render_value", "type_name"]


def _jsonable(value: Any) -> Any:
    """Integral floats as ints, tuples as lists: what Go's encoder writes for the same values."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def render_value(value: Any) -> str:
    """Text of ``value`` inside a template, as Argo writes it.

    Strings are inserted verbatim; everything else is its Go ``json.Marshal`` form (compact, keys
    sorted as Go sorts map keys), so ``{{item}}`` of ``{"b": 1, "a": 2.0}`` is ``{"a":2,"b":1}``.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # Go refuses to marshal these; a readable value beats an error here.
    return json.dumps(
        _jsonable(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str
    )


def is_number(value: Any) -> bool:
    """An int or a float; a bool is not a number, as in expr (``true`` is not 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_name(value: Any) -> str:
    """Expr-lang's name for the type of ``value``, for type errors."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__
