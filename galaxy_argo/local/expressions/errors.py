"""Errors of the expression layer: what failed to parse or evaluate, where, and what was meant.

Every module of the layer raises these three classes, so the engine catches one `ExpressionError`
whatever the language, and tells "not known yet" (`UnknownNameError`, which a later pass may
resolve) from "never valid" (`ExpressionSyntaxError`). The message quotes the expression and the
offset of the problem because the author has to find it in their YAML.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from galaxy_argo.core.errors import GalaxyArgoError

__all__ = ["ExpressionError", "ExpressionSyntaxError", "UnknownNameError", "suggest"]


class ExpressionError(GalaxyArgoError, ValueError):
    """A template tag, expression, ``depends`` or ``when`` cannot be parsed or evaluated.

    The message quotes the expression and, when one applies, the 0-based offset of the problem, so
    a workflow author can find it in their YAML; the parts stay readable as attributes.
    """

    def __init__(
        self, expression: str, reason: str, position: int | None = None, *, kind: str = "expression"
    ) -> None:
        """Keep expression, reason and position apart for callers that report them separately."""
        self.expression = expression
        self.reason = reason
        self.position = position
        self.kind = kind
        where = f" (at position {position})" if position is not None else ""
        super().__init__(f"{kind} {expression!r}: {reason}{where}")


class ExpressionSyntaxError(ExpressionError):
    """The text is not a valid expression: it will not resolve later either, so it always raises."""


class UnknownNameError(ExpressionError):
    """A variable, map key or template tag has no value (yet): the one error non-strict mode tolerates."""


def suggest(name: str, names: Iterable[str]) -> str:
    """A "did you mean" hint: a misspelt parameter is the usual reason a tag does not resolve."""
    close = difflib.get_close_matches(name, [n for n in names if not n.startswith("_")], n=3)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
