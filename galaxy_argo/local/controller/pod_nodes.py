"""The embedded engine's Pod nodes: a template made into a pod request, and a pod's result recorded.

A container, script or containerSet template becomes a ``Pod`` node (and, for a containerSet, one
``Container`` node per container, as Argo shows them). Its ``{{...}}`` tags are substituted here,
its volumes and claims resolved and its node selector checked against our one node, so the pod
(`galaxy_argo.local.pods.run_pod`, launched by the engine) gets a finished `PodRequest`; when the
pod reports, its `PodResult` becomes the nodes' phases, messages, outputs and Argo's
``resourcesDuration``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from galaxy_argo.core.naming import argo_pod_name
from galaxy_argo.local.artifacts import ArtifactError
from galaxy_argo.local.controller.nodes import (
    FULFILLED,
    Context,
    EngineError,
    Walk,
    finish_node,
    node_id,
    parse_time,
)
from galaxy_argo.local.expressions import ExpressionError, substitute_obj
from galaxy_argo.local.pods import PodRequest, PodResult, parse_quantity

__all__ = ["apply_result", "container_nodes", "execute_pod"]

_MACHINE = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
#: The labels of our one node, for ``nodeSelector``.
_NODE_LABELS = {
    "kubernetes.io/os": "linux",
    "beta.kubernetes.io/os": "linux",
    "kubernetes.io/arch": _MACHINE,
    "beta.kubernetes.io/arch": _MACHINE,
}


def execute_pod(ctx: Context, name: str, template: dict[str, Any]) -> dict[str, Any] | None:
    """The Pod node ``name``: the existing one, or a new one whose pod is launched.

    ``None`` while no new pod may start (the workflow shuts down, or its ``parallelism`` is full).
    """
    walk, scope = ctx.walk, ctx.scope
    existing = walk.by_name.get(name)
    if existing is not None:
        return existing
    if not walk.new_pods:
        return None
    parallelism = walk.spec.get("parallelism")
    if parallelism and walk.running_pods >= int(parallelism):
        return None
    wf_name, namespace = walk.name, walk.namespace
    nid = node_id(wf_name, name)
    pod_name = argo_pod_name(wf_name, template.get("name", ""), nid)
    node = ctx.add_node(name, "Pod", template, phase="Pending")
    inputs: dict[str, Any] = {}
    if scope.get("_inputs_parameters"):
        inputs["parameters"] = scope["_inputs_parameters"]
    if scope.get("_inputs_artifacts"):
        inputs["artifacts"] = scope["_inputs_artifacts"]
    if inputs:
        node["inputs"] = inputs
    body = {k: v for k, v in template.items() if k not in ("inputs", "_templateRef")}
    try:
        resolved = substitute_obj(body, {**scope, "pod.name": pod_name, "node.name": name}, strict=True)
        resolved["inputs"] = {"artifacts": substitute_obj(inputs.get("artifacts", []), scope, strict=False)}
        unschedulable = _unschedulable(walk.spec, resolved)
        repository = walk.cluster.repos.repository(walk.spec.get("artifactRepositoryRef"))
    except (ExpressionError, EngineError, ArtifactError) as err:
        finish_node(node, "Error", str(err))
        return node
    if unschedulable:
        node["message"] = unschedulable
        return node
    volumes = {v["name"]: v for v in (walk.spec.get("volumes") or []) + (resolved.get("volumes") or [])}
    claims: dict[str, Path] = {}
    wf_dir = walk.cluster.workflow_dir(namespace, wf_name)
    for claim in walk.spec.get("volumeClaimTemplates") or []:
        claim_name = claim["metadata"]["name"]
        volumes.setdefault(
            claim_name, {"name": claim_name, "persistentVolumeClaim": {"claimName": claim_name}}
        )
        claims[claim_name] = wf_dir / "claims" / claim_name
    patches = [p for p in (walk.spec.get("podSpecPatch"), resolved.get("podSpecPatch")) if p]
    request = PodRequest(
        namespace=namespace,
        workflow_name=wf_name,
        pod_name=pod_name,
        template=resolved,
        pod_dir=wf_dir / "pods" / pod_name,
        repository=repository,
        repos=walk.cluster.repos,
        image_map=walk.cluster.image_map,
        volumes=volumes,
        claim_dirs=claims,
        pod_spec_patches=patches,
    )
    container_nodes(walk, node, resolved)
    walk.cluster.launch(namespace, wf_name, nid, request)
    walk.running_pods += 1
    return node


def _unschedulable(spec: dict[str, Any], template: dict[str, Any]) -> str:
    """Why the pod cannot be scheduled on our one node, or ``""``."""
    selector = {**(spec.get("nodeSelector") or {}), **(template.get("nodeSelector") or {})}
    for key, value in selector.items():
        if key in _NODE_LABELS and _NODE_LABELS[key] != str(value):
            return (
                "Unschedulable: 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
            )
    return ""


def container_nodes(walk: Walk, pod: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """Argo's ``Container`` nodes of a containerSet pod: children of the pod or of their dependency."""
    if "containerSet" not in template:
        return {}
    nodes: dict[str, Any] = {}
    containers = template["containerSet"].get("containers") or []
    for container in containers:
        nodes[container["name"]] = walk.add_node(
            f"{pod['name']}.{container['name']}",
            "Container",
            None,
            pod["id"],
            None,
            display=container["name"],
            phase=pod.get("phase", "Pending"),
        )
    for container in containers:
        parents = [nodes[d] for d in container.get("dependencies") or [] if d in nodes] or [pod]
        for parent in parents:
            children = parent.setdefault("children", [])
            if nodes[container["name"]]["id"] not in children:
                children.append(nodes[container["name"]]["id"])
    return nodes


def apply_result(walk: Walk, node: dict[str, Any], result: PodResult, request: PodRequest) -> None:
    """Record what a pod reported on its node and its Container nodes."""
    for outcome in result.containers:
        child = container_nodes(walk, node, request.template).get(outcome.name)
        if child is None:
            continue
        child["startedAt"] = outcome.started_at
        phase = "Succeeded" if outcome.exit_code == 0 else ("Error" if outcome.exit_code == 64 else "Failed")
        message = "" if outcome.exit_code == 0 else f"{outcome.reason} (exit code {outcome.exit_code})"
        if message and outcome.message:
            message += f": {outcome.message}"
        finish_node(child, phase, message)
        child["finishedAt"] = outcome.finished_at
        child["outputs"] = {"exitCode": str(outcome.exit_code)}
    for child in container_nodes(walk, node, request.template).values():
        if child.get("phase") not in FULFILLED:  # never started: the pod failed before it
            finish_node(child, "Error" if result.phase == "Error" else "Failed", result.message)
    node["outputs"] = result.outputs
    node["hostNodeName"] = os.uname().nodename
    node["startedAt"] = result.started_at
    finish_node(node, result.phase, result.message)
    node["finishedAt"] = result.finished_at
    node["resourcesDuration"] = _resources_duration(request.template, result)


def _resources_duration(template: dict[str, Any], result: PodResult) -> dict[str, int]:
    """Argo's resourcesDuration: seconds x requested cores, and x requested memory in 100Mi units."""
    seconds = max(1.0, parse_time(result.finished_at) - parse_time(result.started_at))
    cpu, memory = 0.0, 0.0
    containers: Iterable[dict[str, Any]] = (
        template["containerSet"]["containers"]
        if "containerSet" in template
        else [template.get("container") or template.get("script") or {}]
    )
    for container in containers:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += parse_quantity(requests.get("cpu", "100m"))
        memory += parse_quantity(requests.get("memory", "100Mi"))
    return {"cpu": math.ceil(seconds * cpu), "memory": math.ceil(seconds * memory / (100 * 2**20))}
