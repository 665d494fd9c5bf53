"""One reconcile of one workflow: the walk from its entrypoint and onExit, and its final phase.

Like ``operate`` in Argo's ``workflow/controller/operator.go``, every reconcile re-walks the
workflow's template tree from the entrypoint, with ``status.nodes`` as the memory between walks
(`galaxy_argo.local.controller.nodes`): nodes that can start are created and pods launched, finished ones
are read. Around the walk this module applies what concerns the whole workflow: the
workflowTemplateRef's spec, ``activeDeadlineSeconds``, stop and terminate (a shutdown fails what
has not finished and lets only exit handlers start pods), the ``onExit`` handler, and the
workflow's final phase, message, progress and conditions. `execute` dispatches one template to
the steps/DAG, retry or pod walkers; they recurse through it (`galaxy_argo.local.controller.nodes.Context`).
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from galaxy_argo.local.controller.admission import UNSUPPORTED_TEMPLATE_KINDS
from galaxy_argo.local.controller.nodes import (
    FAILED,
    FULFILLED,
    Cluster,
    Context,
    EngineError,
    Walk,
    finish_node,
    finish_pod,
    parse_time,
)
from galaxy_argo.local.controller.pod_nodes import execute_pod
from galaxy_argo.local.controller.retries import execute_retry
from galaxy_argo.local.controller.scope import inputs_scope
from galaxy_argo.local.controller.steps_and_dags import execute_dag, execute_steps
from galaxy_argo.local.expressions import ExpressionError
from galaxy_argo.local.store import NotFound, now_iso

__all__ = ["begin", "execute", "operate", "shutdown_message"]

_DEADLINE = "Step exceeded its deadline"


def shutdown_message(strategy: str) -> str:
    """The message a workflow and its unfinished nodes end with when it shuts down.

    ``strategy``: ``Stop`` or ``Terminate`` (``argo stop|terminate``, ``spec.shutdown``), or
    ``Deadline`` when ``activeDeadlineSeconds`` has passed.
    """
    return _DEADLINE if strategy == "Deadline" else f"Stopped with strategy '{strategy}'"


def begin(wf: dict[str, Any], cluster: Cluster) -> Walk | None:
    """Start a reconcile of ``wf``: its effective spec and ``workflow.*`` variables.

    ``None`` if the workflow cannot run at all (its workflowTemplateRef is missing): it is then
    finished with phase ``Error``.
    """
    status = wf["status"]
    status.setdefault("nodes", {})
    try:
        spec = _effective_spec(wf, cluster)
    except (EngineError, NotFound, ExpressionError) as err:
        _finish_workflow(wf, "Error", str(err))
        return None
    if not status.get("phase"):
        status["phase"] = "Running"
        status["startedAt"] = now_iso()
        status["progress"] = "0/0"
        ref = spec.get("artifactRepositoryRef")
        status["artifactRepositoryRef"] = {
            "configMap": (ref or {}).get("configMap", cluster.repos.default[0]),
            "key": (ref or {}).get("key", cluster.repos.default[1]),
            "namespace": wf["metadata"].get("namespace", ""),
            **({} if ref else {"default": True}),
        }
    global_scope: dict[str, Any] = {
        "workflow.name": wf["metadata"]["name"],
        "workflow.namespace": wf["metadata"].get("namespace", ""),
        "workflow.uid": wf["metadata"].get("uid", ""),
        "workflow.serviceAccountName": spec.get("serviceAccountName", "default"),
        "workflow.creationTimestamp": wf["metadata"].get("creationTimestamp", ""),
    }
    for param in (spec.get("arguments") or {}).get("parameters") or []:
        global_scope[f"workflow.parameters.{param['name']}"] = param.get("value", "")
    for key, value in (wf["metadata"].get("labels") or {}).items():
        global_scope[f"workflow.labels.{key}"] = value
    for key, value in (wf["metadata"].get("annotations") or {}).items():
        global_scope[f"workflow.annotations.{key}"] = value
    by_name = {n["name"]: n for n in status["nodes"].values()}
    return Walk(wf, spec, global_scope, by_name, cluster, execute)


def _effective_spec(wf: dict[str, Any], cluster: Cluster) -> dict[str, Any]:
    """The spec merged with its workflowTemplateRef's (stored in the status on the first walk)."""
    spec = wf["spec"]
    ref = spec.get("workflowTemplateRef")
    if not ref:
        return spec
    stored = wf["status"].get("storedWorkflowTemplateSpec")
    if stored is None:
        kind = "clusterworkflowtemplates" if ref.get("clusterScope") else "workflowtemplates"
        ns = "" if ref.get("clusterScope") else wf["metadata"].get("namespace", "")
        template = cluster.store.get(kind, ns, ref["name"])
        stored = copy.deepcopy(template["spec"])
        wf["status"]["storedWorkflowTemplateSpec"] = stored
    merged = {**stored, **{k: v for k, v in spec.items() if k != "workflowTemplateRef"}}
    args = {p["name"]: p for p in (stored.get("arguments") or {}).get("parameters") or []}
    for p in (spec.get("arguments") or {}).get("parameters") or []:
        args[p["name"]] = {**args.get(p["name"], {}), **p}
    merged["arguments"] = {
        **(stored.get("arguments") or {}),
        **(spec.get("arguments") or {}),
        "parameters": list(args.values()),
    }
    merged["templates"] = stored.get("templates", []) + spec.get("templates", [])
    return merged


def operate(walk: Walk) -> None:
    """Walk the workflow once (the pods' reports already applied) and set its ``PodRunning`` condition."""
    _operate(walk)
    running = any(n.get("type") == "Pod" and n.get("phase") == "Running" for n in walk.nodes.values())
    _upsert_condition(walk.wf["status"], "PodRunning", running)


def _operate(walk: Walk) -> None:
    wf, spec, name = walk.wf, walk.spec, walk.name
    walk.running_pods = sum(
        1 for n in walk.nodes.values() if n.get("type") == "Pod" and n.get("phase") in ("Pending", "Running")
    )
    shutdown = spec.get("shutdown")
    deadline = spec.get("activeDeadlineSeconds")
    started = parse_time(wf["status"].get("startedAt"))
    if deadline is not None and time.time() > started + float(deadline):
        _fail_unfinished(walk, shutdown_message("Deadline"))
        walk.cluster.cancel_pods(name, shutdown_message("Deadline"))
        shutdown = shutdown or "Deadline"
    elif deadline is not None:
        walk.soon(max(0.1, started + float(deadline) - time.time()))
    if shutdown in ("Stop", "Terminate"):
        _fail_unfinished(walk, shutdown_message(shutdown))
    entry = spec.get("entrypoint")
    templates = {t["name"]: t for t in spec.get("templates", [])}
    if entry not in templates:
        _finish_workflow(wf, "Error", f"entrypoint template {entry!r} not found")
        return
    walk.new_pods = not shutdown
    root_ctx = Context(walk, templates, scope=dict(walk.global_scope))
    root = root_ctx.execute(name, templates[entry], spec.get("arguments") or {})
    unfinished = root is not None and root.get("phase") not in FULFILLED
    if shutdown and unfinished and not (walk.cluster.launched_pods() & walk.nodes.keys()):
        # Shutting down and nothing runs any more: what never started never will.
        for node in walk.nodes.values():
            if node.get("phase") not in FULFILLED:
                finish_node(node, "Failed", shutdown_message(shutdown))
    if root is None or root.get("phase") not in FULFILLED:
        _update_progress(walk)
        return
    final_phase, message = root["phase"], root.get("message", "")
    if shutdown in ("Stop", "Terminate", "Deadline"):
        final_phase, message = "Failed", shutdown_message(shutdown)
    on_exit = spec.get("onExit")
    if on_exit and shutdown != "Terminate":
        scope = {
            **walk.global_scope,
            "workflow.status": final_phase,
            "workflow.failures": json.dumps(_failures(walk)),
        }
        if on_exit not in templates:
            _finish_workflow(wf, "Error", f"onExit template {on_exit!r} not found")
            return
        walk.new_pods = True
        handler = Context(walk, templates, scope=scope).execute(f"{name}.onExit", templates[on_exit], {})
        if handler is None or handler.get("phase") not in FULFILLED:
            _update_progress(walk)
            return
        if handler["phase"] in FAILED and final_phase == "Succeeded":
            final_phase, message = "Failed", f"exit handler failed: {handler.get('message', '')}"
    _update_progress(walk)
    _finish_workflow(wf, final_phase, message)


def execute(
    ctx: Context, name: str, template: dict[str, Any], arguments: dict[str, Any], in_retry: bool = False
) -> dict[str, Any] | None:
    """Run (or look at) the node ``name`` for ``template``; ``None`` while it cannot start yet.

    The walk's dispatcher (`Walk.execute`): a template with a ``retryStrategy`` becomes a Retry
    node (whose attempts come back here with ``in_retry``), the others a Steps, DAG or Pod node.
    """
    existing = ctx.walk.by_name.get(name)
    if existing is not None and existing.get("phase") in FULFILLED:
        return existing
    if template.get("retryStrategy") and not in_retry:
        return execute_retry(ctx, name, template, arguments)
    try:
        local = ctx.seeing(inputs_scope(template, arguments, ctx.scope))
    except (EngineError, ExpressionError) as err:
        node = ctx.add_node(name, "Pod", template, phase="Error")
        finish_node(node, "Error", str(err))
        return node
    if "steps" in template:
        return execute_steps(local, name, template)
    if "dag" in template:
        return execute_dag(local, name, template)
    if any(k in template for k in ("container", "script", "containerSet")):
        return execute_pod(local, name, template)
    kinds = [k for k in UNSUPPORTED_TEMPLATE_KINDS if k in template]
    node = ctx.add_node(name, "Pod", template, phase="Error")
    finish_node(
        node,
        "Error",
        f"template {template.get('name')!r}: {kinds or 'this'} templates are not "
        "supported by the embedded engine",
    )
    return node


def _failures(walk: Walk) -> list[dict[str, Any]]:
    """``workflow.failures``: the failed pods, for the exit handler."""
    return [
        {
            "displayName": n.get("displayName"),
            "message": n.get("message", ""),
            "templateName": n.get("templateName"),
            "phase": n.get("phase"),
            "podName": n.get("id"),
            "finishedAt": n.get("finishedAt"),
        }
        for n in walk.nodes.values()
        if n.get("type") == "Pod" and n.get("phase") in FAILED
    ]


def _finish_workflow(wf: dict[str, Any], phase: str, message: str) -> None:
    status = wf["status"]
    status["phase"] = phase
    status.setdefault("startedAt", now_iso())
    status["finishedAt"] = now_iso()
    if message:
        status["message"] = message
    _upsert_condition(status, "Completed", True)
    wf["metadata"].setdefault("labels", {})["workflows.argoproj.io/completed"] = "true"
    wf["metadata"]["labels"]["workflows.argoproj.io/phase"] = phase
    totals = {"cpu": 0, "memory": 0}
    for node in status.get("nodes", {}).values():
        if node.get("type") == "Pod":
            for key in totals:
                totals[key] += int((node.get("resourcesDuration") or {}).get(key, 0))
    status["resourcesDuration"] = totals


def _update_progress(walk: Walk) -> None:
    pods = [n for n in walk.nodes.values() if n.get("type") == "Pod"]
    done = sum(1 for n in pods if n.get("phase") == "Succeeded")
    walk.wf["status"]["progress"] = f"{done}/{len(pods)}"
    walk.wf["metadata"].setdefault("labels", {})["workflows.argoproj.io/phase"] = walk.wf["status"]["phase"]


def _fail_unfinished(walk: Walk, message: str) -> None:
    """Fail the Pending/Running pod nodes whose pods no longer run (running ones report themselves)."""
    launched = walk.cluster.launched_pods()
    for node in walk.nodes.values():
        if node.get("type") == "Pod" and node.get("phase") in ("Pending", "Running"):
            if node["id"] not in launched:
                finish_pod(walk.nodes, node, "Failed", message)


def _upsert_condition(status: dict[str, Any], kind: str, true: bool) -> None:
    """Argo's ``Conditions.UpsertCondition``: one entry per type, others kept.

    ``PodRunning`` is set on every pod reconciliation of a running workflow (True while any of
    its pods runs), ``Completed`` when it ends: clients read them from a LIST without the nodes.
    """
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    conditions.append({"type": kind, "status": "True" if true else "False"})
    status["conditions"] = conditions
