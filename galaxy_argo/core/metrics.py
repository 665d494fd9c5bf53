"""A finished Argo workflow -> the numbers Galaxy keeps as job metrics (plugin ``argo``). Pure.

Galaxy's own ``core`` metrics (runtime, slots, memory) come from files the job script writes in
the job directory, which travels back whole; these add what only Argo knows: where the pod ran,
how many attempts it took, how long the job waited for the cluster and how long each container
of the pod took (so an admin sees at once whether a slow job was slow to start, to stage or to
compute), and Argo's ``resourcesDuration`` estimate. Values Argo did not report are left out,
never guessed.

Argo's node fields: https://argo-workflows.readthedocs.io/en/latest/fields/#nodestatus
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from galaxy_argo.core.naming import argo_pod_name

__all__ = [
    "CONTAINER_METRICS",
    "METRICS_PLUGIN",
    "pod_name",
    "pod_nodes",
    "seconds_between",
    "workflow_metrics",
]

#: Plugin name the metrics are stored under in Galaxy (``job_metric_numeric.plugin``).
METRICS_PLUGIN = "argo"
#: Container of the job's pod -> metric of its duration.
CONTAINER_METRICS = {
    "stage-in": "stage_in_seconds",
    "run": "tool_seconds",
    "metadata": "metadata_seconds",
    "main": "stage_out_seconds",
}


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one RFC 3339 timestamp (as Argo writes them) to another; ``None`` if unknown."""
    if not start or not end:
        return None
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (b - a).total_seconds())


def _in_pod(container: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    # Argo names a containerSet's nodes <pod node name>.<container>; the engine also sets boundaryID.
    return container.get("boundaryID") == pod.get("id") or str(container.get("name", "")).startswith(
        f"{pod.get('name')}."
    )


def pod_nodes(workflow: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The workflow's Pod nodes in the order they started: for a job, its attempts."""
    nodes: Mapping[str, Mapping[str, Any]] = (workflow.get("status") or {}).get("nodes") or {}
    return sorted(
        (n for n in nodes.values() if n.get("type") == "Pod"), key=lambda n: str(n.get("startedAt") or "")
    )


def pod_name(workflow: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
    """The name of the pod Argo ran for ``node``, or ``None`` if the node does not say enough."""
    if not node.get("id") or not node.get("templateName"):
        return None
    name = str((workflow.get("metadata") or {}).get("name", ""))
    return argo_pod_name(name, str(node["templateName"]), str(node["id"]))


def workflow_metrics(workflow: Mapping[str, Any]) -> dict[str, float | str]:
    """Metrics of the job's last pod attempt and of the whole workflow."""
    status = workflow.get("status") or {}
    nodes: Mapping[str, Mapping[str, Any]] = status.get("nodes") or {}
    metrics: dict[str, float | str] = {}
    pods = pod_nodes(workflow)
    if pods:
        metrics["pod_attempts"] = len(pods)
        last = pods[-1]
        if last.get("hostNodeName"):
            metrics["node"] = str(last["hostNodeName"])
        last_pod = pod_name(workflow, last)
        if last_pod:
            metrics["pod_name"] = last_pod
        containers = [n for n in nodes.values() if n.get("type") == "Container" and _in_pod(n, last)]
        for container in containers:
            metric = CONTAINER_METRICS.get(str(container.get("displayName")))
            seconds = seconds_between(container.get("startedAt"), container.get("finishedAt"))
            if metric and seconds is not None:
                metrics[metric] = seconds
        started = [str(c["startedAt"]) for c in containers if c.get("startedAt")]
        queued = seconds_between(status.get("startedAt"), min(started)) if started else None
        if queued is not None:
            metrics["queued_seconds"] = queued
    total = seconds_between(status.get("startedAt"), status.get("finishedAt"))
    if total is not None:
        metrics["workflow_seconds"] = total
    for resource, value in (status.get("resourcesDuration") or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            # Argo's estimate: cpu in core-seconds, memory in 100Mi-seconds, per its docs.
            metrics[f"resources_duration_{resource.replace('/', '_').replace('.', '_')}"] = value
    return metrics
