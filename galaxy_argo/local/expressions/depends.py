"""DAG ``depends``: whether a task's dependencies are done, whether it runs, which failures it handles.

Argo's enhanced depends logic (https://argo-workflows.readthedocs.io/en/latest/enhanced-depends-logic/)
combines task results with ``&&``, ``||`` and ``!``, as Argo's ``evaluateDependsLogic`` builds
them. The text is parsed by the shared parser (`syntax`, dialect ``depends``) and the tree is
walked here with Argo's phase rules, kept apart from expr-lang's evaluator because its operands
are task results, not values. The engine asks three questions of one tree: is every named task
done (`depends_ready`), does the task run (`evaluate_depends`), and which failures does it handle
(`failures_handled_by_depends`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from galaxy_argo.local.expressions.errors import ExpressionError, UnknownNameError
from galaxy_argo.local.expressions.syntax import TASK_NAME, Binary, Dialect, Node, Task, Unary, parse

__all__ = [
    "PHASES",
    "dependencies_to_depends",
    "depends_ready",
    "evaluate_depends",
    "failures_handled_by_depends",
]

#: Node phases Argo reports, plus ``Daemoned`` for a daemon task that is up (still ``Running`` in
#: Argo, with ``daemoned: true``; a depends-ready dependency all the same).
PHASES: Final = frozenset(
    {"Pending", "Running", "Succeeded", "Skipped", "Failed", "Error", "Omitted", "Daemoned"}
)
#: Phases after which a dependency's result can no longer change.
_COMPLETED: Final = frozenset({"Succeeded", "Failed", "Error", "Skipped", "Omitted", "Daemoned"})
#: Results that let a task run after the task they name failed, wholly or in some of its children.
_FAILURE_RESULTS: Final = frozenset({"Failed", "Errored", "AnySucceeded", "AllFailed"})


def _parse_depends(expression: str) -> Node | None:
    """Syntax tree of a ``depends`` expression; None when it is empty (no dependencies)."""
    if not expression.strip():
        return None
    return parse(expression, Dialect.DEPENDS)


def _depends_tasks(node: Node | None) -> Iterator[Task]:
    if isinstance(node, Task):
        yield node
    elif isinstance(node, Unary):
        yield from _depends_tasks(node.operand)
    elif isinstance(node, Binary):
        yield from _depends_tasks(node.left)
        yield from _depends_tasks(node.right)


def _phase(expression: str, ref: Task, tasks: Mapping[str, str]) -> str:
    if ref.task not in tasks:
        raise UnknownNameError(
            expression,
            f"unknown task {ref.task!r}; tasks: {', '.join(sorted(tasks))}",
            ref.pos,
            kind="depends",
        )
    phase = tasks[ref.task]
    if phase not in PHASES:
        raise ExpressionError(
            expression,
            f"task {ref.task!r} has unknown phase {phase!r}; expected one of {', '.join(sorted(PHASES))}",
            ref.pos,
            kind="depends",
        )
    return phase


def depends_ready(expression: str, tasks: Mapping[str, str]) -> bool:
    """Whether every task ``expression`` mentions has completed, so that its value is final.

    Argo waits for all of a task's dependencies to be fulfilled before evaluating ``depends``; the
    engine calls this first and `evaluate_depends` only when it is true. An empty expression is
    ready.

    Args:
        expression: The task's ``depends``.
        tasks: Task name -> node phase for every task in the DAG (``Pending`` if not started).

    Raises:
        ExpressionError: The expression does not parse, names a task not in ``tasks`` or a
            mentioned task has a phase Argo does not have.
    """
    phases = [_phase(expression, ref, tasks) for ref in _depends_tasks(_parse_depends(expression))]
    return all(phase in _COMPLETED for phase in phases)  # every name checked, even after a pending one


def evaluate_depends(
    expression: str, tasks: Mapping[str, str], children: Mapping[str, Sequence[str]] | None = None
) -> bool:
    """Value of a DAG task's ``depends`` given the phases of the tasks it names.

    Results are those of Argo's ``TaskResults``: ``A.Succeeded``, ``A.Failed``, ``A.Errored`` (phase
    ``Error``), ``A.Skipped``, ``A.Omitted``, ``A.Daemoned``; a bare ``A`` means
    ``(A.Succeeded || A.Skipped || A.Daemoned)``. ``A.AnySucceeded`` / ``A.AllFailed`` look at the
    phases of a fanned-out task's children when ``children`` has them; for a task without that
    entry its own phase stands in for one child (Argo gives false for a task that is not a
    TaskGroup; treating it as a group of one keeps the answer useful when the engine only knows
    the group's phase). A pending task satisfies no result: check `depends_ready` first.

    Args:
        expression: The ``depends`` text, e.g. ``(A || B.Failed) && C``; empty means true.
        tasks: Task name -> node phase.
        children: Optional task name -> phases of the children of a ``withItems``/``withParam`` task.

    Raises:
        ExpressionError: The expression does not parse, names an unknown task or result, or a
            phase is not one Argo reports.
    """
    tree = _parse_depends(expression)
    if tree is None:
        return True
    for ref in _depends_tasks(tree):  # a misspelt task fails now, not only when its branch is reached
        _phase(expression, ref, tasks)

    def result(ref: Task) -> bool:
        phase = _phase(expression, ref, tasks)
        wanted = ref.result
        if wanted is None:
            return phase in ("Succeeded", "Skipped", "Daemoned")
        if wanted in ("AnySucceeded", "AllFailed"):
            phases = list(children[ref.task]) if children is not None and ref.task in children else [phase]
            for child in phases:
                if child not in PHASES:
                    raise ExpressionError(
                        expression,
                        f"a child of task {ref.task!r} has unknown phase {child!r}",
                        ref.pos,
                        kind="depends",
                    )
            if wanted == "AnySucceeded":
                return any(p == "Succeeded" for p in phases)
            return bool(phases) and all(p == "Failed" for p in phases)
        return phase == {"Errored": "Error"}.get(wanted, wanted)

    def value(node: Node) -> bool:
        if isinstance(node, Task):
            return result(node)
        if isinstance(node, Unary):
            return not value(node.operand)
        if isinstance(node, Binary):
            if node.op == "&&":
                return value(node.left) and value(node.right)
            return value(node.left) or value(node.right)
        raise ExpressionError(expression, "unexpected node", node.pos, kind="depends")  # pragma: no cover

    return value(tree)


def failures_handled_by_depends(expression: str) -> set[str]:
    """The tasks whose failure ``expression`` handles: those it asks for a result a failure can give.

    That is ``A.Failed``, ``A.Errored``, ``A.AllFailed`` and ``A.AnySucceeded`` (which holds while
    some of A's children fail). A failed task whose failure some ``depends`` handles does not fail
    its DAG by itself: the workflow was written to go on after it. Every mention counts, whatever
    ``!``, ``&&`` or ``||`` surround it, since the author has provided for that failure; a bare
    ``A`` or ``A.Succeeded`` handles nothing.

    Args:
        expression: A task's ``depends``; empty handles nothing.

    Returns:
        The task names, as written in the expression.

    Raises:
        ExpressionSyntaxError: The expression does not parse.
    """
    return {
        ref.task
        for ref in _depends_tasks(_parse_depends(expression))
        if ref.result in _FAILURE_RESULTS
    }


def dependencies_to_depends(deps: Sequence[str]) -> str:
    """The ``depends`` equivalent of the legacy ``dependencies: [A, B]``: ``"A && B"`` (Argo's own rule).

    Raises:
        ExpressionError: A name is not a valid task name (it would change the expression's meaning).
    """
    if isinstance(deps, str):
        raise ExpressionError(
            repr(deps), "dependencies must be a list of task names, not a string", kind="dependencies"
        )
    for name in deps:
        if not isinstance(name, str) or not TASK_NAME.fullmatch(name):
            raise ExpressionError(
                ", ".join(map(str, deps)), f"{name!r} is not a task name", kind="dependencies"
            )
    return " && ".join(deps)
