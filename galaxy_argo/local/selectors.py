"""Kubernetes label selectors (``a=b,c!=d,e in (x,y),!f``), as both embedded APIs filter by them."""

from __future__ import annotations

import re

from galaxy_argo.core.errors import GalaxyArgoError

__all__ = ["LabelSelectorError", "match_labels"]


class LabelSelectorError(GalaxyArgoError, ValueError):
    """A label selector that Kubernetes would refuse."""


_SELECTOR_TERM = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9._/-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?\s*$"
)


def _split_selector(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return terms


def match_labels(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes label selector semantics.

    Supports ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)`` and ``a notin (x)``.
    """
    for term in _split_selector(selector or ""):
        match = _SELECTOR_TERM.match(term)
        if not match:
            raise LabelSelectorError(f"unable to parse requirement: {term.strip()!r}")
        key, neg = match.group("key"), bool(match.group("neg"))
        if match.group("op"):
            equal = labels.get(key) == match.group("value")
            if (match.group("op") == "!=") == equal:
                return False
        elif match.group("setop"):
            values = {v.strip() for v in match.group("values").split(",")}
            inside = key in labels and labels[key] in values
            if (match.group("setop") == "in") != inside:
                return False
        elif neg == (key in labels):
            return False
    return True
