"""The embedded engine's steps and DAG templates: groups of steps, tasks by ``depends``, their fan-out.

Follows Argo's ``steps.go`` and ``dag.go`` (see
https://argo-workflows.readthedocs.io/en/latest/walk-through/steps/ and ``.../dag/``): a
``Steps`` node runs its groups in order, a group's steps in parallel, and stops at the first failed
group; a ``DAG`` node starts each task once its ``depends`` (or legacy ``dependencies``) is final,
omitting it when the expression is false. Both run a step or task the same way, through
`fan_out`: once, or once per ``withItems``/``withParam`` item, each child with its ``when``,
``templateRef`` and exit hook; what differs is only where the children hang and how their outputs
are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from galaxy_argo.local.artifacts import ArtifactError
from galaxy_argo.local.controller.nodes import FAILED, FULFILLED, Context, EngineError, finish_node
from galaxy_argo.local.controller.scope import expand, fan_in_parameters, record_outputs, template_outputs
from galaxy_argo.local.expressions import (
    ExpressionError,
    dependencies_to_depends,
    depends_ready,
    evaluate_depends,
    evaluate_when,
    failures_handled_by_depends,
    substitute,
    substitute_obj,
)
from galaxy_argo.local.store import NotFound

__all__ = ["FanOut", "execute_dag", "execute_steps", "fan_out"]


@dataclass
class FanOut:
    """What one step or task gave across its items (a single item without withItems/withParam)."""

    #: Each item's node, in item order; ``None`` for one that cannot start yet.
    nodes: list[dict[str, Any] | None] = field(default_factory=list)
    #: The fulfilled ones, in item order (their exit hooks may still be running).
    finished: list[dict[str, Any]] = field(default_factory=list)
    #: Every item's node is fulfilled, and so is its exit hook.
    done: bool = True


def fan_out(
    ctx: Context, step: dict[str, Any], items: list[tuple[str, dict[str, Any]]], exit_hooks: bool = True
) -> FanOut:
    """Run ``step`` (a step or a DAG task) once per item of `expand`, each child under ``ctx.parent``.

    A child sees ``ctx.scope`` with its item's variables; once it is fulfilled its exit hook runs
    (unless ``exit_hooks`` is false: a DAG task's TaskGroup children have none of their own).
    """
    fan = FanOut()
    for child_name, item_scope in items:
        child = _run_child(ctx.seeing({**ctx.scope, **item_scope}), step, child_name)
        fan.nodes.append(child)
        if child is None or child.get("phase") not in FULFILLED:
            fan.done = False
            continue
        if exit_hooks and not _run_hook(ctx, step, child):
            fan.done = False
        fan.finished.append(child)
    return fan


def execute_steps(ctx: Context, name: str, template: dict[str, Any]) -> dict[str, Any]:
    """Run the ``Steps`` node ``name``: each group after the previous one succeeded."""
    node = ctx.add_node(name, "Steps", template)
    local = dict(ctx.scope)
    inner = ctx.inside(node).seeing(local)
    try:
        for index, group in enumerate(template["steps"] or []):
            group_node = inner.add_node(f"{name}[{index}]", "StepGroup", None, display=f"[{index}]")
            done, failed = True, []
            for step in group:
                fan = fan_out(
                    inner.under(group_node), step, expand(step, local, f"{name}[{index}].{step['name']}")
                )
                done = done and fan.done
                failed += [child for child in fan.finished if _fails_group(step, child)]
                if len(fan.finished) == 1 and "withItems" not in step and "withParam" not in step:
                    record_outputs(local, f"steps.{step['name']}", fan.finished[0])
                elif fan.finished:
                    local[f"steps.{step['name']}.outputs.parameters"] = fan_in_parameters(fan.finished)
            if not done:
                return node
            if failed:
                finish_node(group_node, "Failed", f"child '{failed[0]['id']}' failed")
                finish_node(node, "Failed", f"child '{failed[0]['id']}' failed")
                return node
            finish_node(group_node, "Succeeded")
    except (EngineError, ExpressionError, ArtifactError) as err:
        finish_node(node, "Error", str(err))
        return node
    node["outputs"] = template_outputs(template, local)
    finish_node(node, "Succeeded")
    return node


def _fails_group(step: dict[str, Any], child: dict[str, Any]) -> bool:
    """Whether a finished child fails its step group (failed, and its step has no ``continueOn``)."""
    return child["phase"] in FAILED and not (step.get("continueOn") or {}).get(
        "failed" if child["phase"] == "Failed" else "error"
    )


def execute_dag(ctx: Context, name: str, template: dict[str, Any]) -> dict[str, Any]:
    """Run the ``DAG`` node ``name``: each task once its dependencies are final."""
    node = ctx.add_node(name, "DAG", template)
    tasks = template["dag"].get("tasks") or []
    inner = ctx.inside(node).seeing(dict(ctx.scope))
    phases: dict[str, str] = {}
    handled: set[str] = set()
    try:
        for _ in range(len(tasks) + 1):
            progress = False
            for task in tasks:
                if task["name"] in phases and phases[task["name"]] in FULFILLED:
                    continue
                expression = task.get("depends") or dependencies_to_depends(task.get("dependencies") or [])
                if expression:
                    mentioned = {t["name"]: phases.get(t["name"], "Pending") for t in tasks}
                    if not depends_ready(expression, mentioned):
                        continue
                    # a task whose failure a later depends tests for does not fail the DAG
                    handled.update(failures_handled_by_depends(expression))
                    if not evaluate_depends(expression, mentioned):
                        omitted = inner.add_node(f"{name}.{task['name']}", "Skipped", None, phase="Omitted")
                        finish_node(omitted, "Omitted", "omitted: depends condition not met")
                        phases[task["name"]] = "Omitted"
                        progress = True
                        continue
                phase = _run_task(inner, task, name)
                if phase is not None:
                    phases[task["name"]] = phase
                    progress = progress or phase in FULFILLED
            if not progress:
                break
    except (EngineError, ExpressionError, ArtifactError) as err:
        finish_node(node, "Error", str(err))
        return node
    if len([t for t in tasks if phases.get(t["name"]) in FULFILLED]) < len(tasks):
        return node
    failed = [t["name"] for t in tasks if phases.get(t["name"]) in FAILED and t["name"] not in handled]
    if failed:
        finish_node(node, "Failed", f"task '{name}.{failed[0]}' failed")
        return node
    node["outputs"] = template_outputs(template, inner.scope)
    finish_node(node, "Succeeded")
    return node


def _run_task(ctx: Context, task: dict[str, Any], dag_name: str) -> str | None:
    """Run one DAG task; its phase (``Running`` while its exit hook runs), ``None`` if it cannot start."""
    base = f"{dag_name}.{task['name']}"
    items = expand(task, ctx.scope, base)
    if len(items) == 1 and items[0][0] == base:
        fan = fan_out(ctx, task, items)
        child = fan.nodes[0]
        if child is None:
            return None
        if child.get("phase") in FULFILLED:
            if not fan.done:
                return "Running"
            record_outputs(ctx.scope, f"tasks.{task['name']}", child)
        return str(child.get("phase"))
    group = ctx.add_node(base, "TaskGroup", None)
    fan = fan_out(ctx.under(group), task, items, exit_hooks=False)
    if not fan.done:
        return "Running"
    phase = "Failed" if any(r["phase"] in FAILED for r in fan.finished) else "Succeeded"
    finish_node(group, phase)
    ctx.scope[f"tasks.{task['name']}.outputs.parameters"] = fan_in_parameters(fan.finished)
    return phase


def _run_child(ctx: Context, step: dict[str, Any], child_name: str) -> dict[str, Any] | None:
    """Run one child of a step or task (with its item in ``ctx.scope``): skipped by ``when``, or run."""
    existing = ctx.walk.by_name.get(child_name)
    if existing is not None and existing.get("phase") in FULFILLED:
        return existing
    when = step.get("when")
    if when:
        condition = substitute(str(when), ctx.scope, strict=True)
        if not evaluate_when(condition):
            node = ctx.add_node(child_name, "Skipped", None, phase="Skipped")
            finish_node(node, "Skipped", f"when '{condition}' evaluated false")
            return node
    arguments = substitute_obj(
        {k: v for k, v in (step.get("arguments") or {}).items() if k != "artifacts"},
        ctx.scope,
        strict=True,
    )
    arguments["artifacts"] = [
        a if "from" in a else substitute_obj(a, ctx.scope, strict=True)
        for a in (step.get("arguments") or {}).get("artifacts") or []
    ]
    template, templates = _resolve(ctx, step)
    return replace(ctx, templates=templates).execute(child_name, template, arguments)


def _run_hook(ctx: Context, step: dict[str, Any], child: dict[str, Any]) -> bool:
    """Run a step's exit hook after it finished; ``True`` once the hook is done (or absent)."""
    hook = ((step.get("hooks") or {}).get("exit")) or (step.get("onExit") and {"template": step["onExit"]})
    if not hook:
        return True
    hook_ctx = ctx.seeing({**ctx.scope, "status": child.get("phase", "")})
    node = _run_child(hook_ctx, hook, f"{child['name']}.onExit")
    return node is not None and node.get("phase") in FULFILLED


def _resolve(ctx: Context, step: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The template a step/task names, and the templates its own steps name (its WorkflowTemplate's).

    Raises:
        EngineError: The template or the WorkflowTemplate of its ``templateRef`` does not exist.
    """
    ref = step.get("templateRef")
    if ref:
        kind = "clusterworkflowtemplates" if ref.get("clusterScope") else "workflowtemplates"
        ns = "" if ref.get("clusterScope") else ctx.walk.namespace
        try:
            owner = ctx.walk.cluster.store.get(kind, ns, ref["name"])
        except NotFound as err:
            raise EngineError(f'templateRef: WorkflowTemplate "{ref["name"]}" not found') from err
        scope = {t["name"]: t for t in owner["spec"].get("templates", [])}
        if ref.get("template") not in scope:
            raise EngineError(
                f'templateRef: template "{ref.get("template")}" not found in WorkflowTemplate "{ref["name"]}"'
            )
        template = dict(scope[ref["template"]])
        template["_templateRef"] = {"name": ref["name"], "template": ref["template"]}
        return template, scope
    name = step.get("template")
    if name not in ctx.templates:
        raise EngineError(f"template {name!r} not found")
    return ctx.templates[name], ctx.templates
