"""The embedded engine's expression layer: template tags, expr-lang, ``depends`` and ``when``. Pure.

Four small languages, each implemented the way Argo evaluates it, without Python's ``eval``:

* Simple template tags, ``{{inputs.parameters.message}}``, and expression tags,
  ``{{=asInt(inputs.parameters.x) + 1}}`` (`tags`; https://argo-workflows.readthedocs.io/en/latest/variables/).
* expr-lang (https://expr-lang.org/docs/language-definition), the subset Argo workflows use, in
  expression tags and ``retryStrategy.expression`` (`evaluation`).
* A step's or task's ``when`` after substitution, as Argo hands it to govaluate (`evaluation`).
* DAG ``depends``, task results combined with ``&&``, ``||`` and ``!`` (`depends`).

The modules follow the stages a text goes through rather than the languages: `syntax` tokenizes
and parses all three expression dialects with one parser, so positions and "expected ..., found
..." messages agree everywhere; `evaluation` walks expr and ``when`` trees (they share operators
and differ only in how values compare); `depends` walks ``depends`` trees with Argo's phase rules;
`tags` substitutes into templates; `values` renders values as Go's ``json.Marshal`` does; `errors`
holds the exceptions all of them raise. The engine imports from this package only, never from
a module of it.
"""

from __future__ import annotations

from galaxy_argo.local.expressions.depends import (
    PHASES,
    dependencies_to_depends,
    depends_ready,
    evaluate_depends,
    failures_handled_by_depends,
)
from galaxy_argo.local.expressions.errors import ExpressionError, ExpressionSyntaxError, UnknownNameError
from galaxy_argo.local.expressions.evaluation import FUNCTIONS, evaluate, evaluate_when
from galaxy_argo.local.expressions.tags import scope_to_env, substitute, substitute_obj
from galaxy_argo.local.expressions.values import render_value

__all__ = [
    "ExpressionError",
    "ExpressionSyntaxError",
    "FUNCTIONS",
    "PHASES",
    "UnknownNameError",
    "dependencies_to_depends",
    "depends_ready",
    "evaluate",
    "evaluate_depends",
    "evaluate_when",
    "failures_handled_by_depends",
    "render_value",
    "scope_to_env",
    "substitute",
    "substitute_obj",
]
