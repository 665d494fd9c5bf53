"""workflow_metrics: Argo's node status -> Galaxy job metrics, nothing guessed."""

from __future__ import annotations

from typing import Any

from galaxy_argo.core.metrics import seconds_between, workflow_metrics


def container(pod: str, name: str, started: str, finished: str) -> dict[str, Any]:
    # As Argo writes a containerSet's nodes: named <pod node>.<container>, no boundaryID needed.
    return {
        "id": f"{pod}-{name}",
        "name": f"{pod}.{name}",
        "displayName": name,
        "type": "Container",
        "phase": "Succeeded",
        "startedAt": started,
        "finishedAt": finished,
    }


def finished_workflow() -> dict[str, Any]:
    nodes = {
        "wf": {"id": "wf", "name": "galaxy-main-7", "type": "Retry", "phase": "Succeeded"},
        "p0": {
            "id": "galaxy-main-7-2176424288",
            "templateName": "galaxy-job",
            "name": "galaxy-main-7(0)",
            "type": "Pod",
            "phase": "Failed",
            "startedAt": "2026-11-23T10:00:01Z",
            "hostNodeName": "node-a",
        },
        "p1": {
            "id": "galaxy-main-7-766957197",  # Argo's: <workflow>-<fnv32a(node name)>
            "templateName": "galaxy-job",
            "name": "galaxy-main-7(1)",
            "type": "Pod",
            "phase": "Succeeded",
            "startedAt": "2026-11-23T10:01:00Z",
            "hostNodeName": "node-b",
        },
        "c0": container("galaxy-main-7(0)", "run", "2026-11-23T10:00:05Z", "2026-11-23T10:00:50Z"),
        "c1": container("galaxy-main-7(1)", "stage-in", "2026-11-23T10:01:10Z", "2026-11-23T10:01:12Z"),
        "c2": container("galaxy-main-7(1)", "run", "2026-11-23T10:01:12Z", "2026-11-23T10:02:42Z"),
        "c3": container("galaxy-main-7(1)", "metadata", "2026-11-23T10:02:42Z", "2026-11-23T10:02:45Z"),
        "c4": container("galaxy-main-7(1)", "main", "2026-11-23T10:02:45Z", "2026-11-23T10:02:46Z"),
    }
    return {
        "metadata": {"name": "galaxy-main-7"},
        "status": {
            "phase": "Succeeded",
            "startedAt": "2026-11-23T10:00:00Z",
            "finishedAt": "2026-11-23T10:02:47Z",
            "nodes": nodes,
            "resourcesDuration": {"cpu": 140, "memory": 5600, "nvidia.com/gpu": 90},
        },
    }


def test_last_attempt_containers_node_and_argo_estimates() -> None:
    assert workflow_metrics(finished_workflow()) == {
        "pod_attempts": 2,
        "node": "node-b",
        "pod_name": "galaxy-main-7-galaxy-job-766957197",
        "stage_in_seconds": 2.0,
        "tool_seconds": 90.0,
        "metadata_seconds": 3.0,
        "stage_out_seconds": 1.0,
        "queued_seconds": 70.0,  # from the workflow's start to the last attempt's first container
        "workflow_seconds": 167.0,
        "resources_duration_cpu": 140,
        "resources_duration_memory": 5600,
        "resources_duration_nvidia_com_gpu": 90,
    }


def test_what_argo_did_not_report_is_left_out() -> None:
    workflow = finished_workflow()
    status = workflow["status"]
    del status["finishedAt"], status["resourcesDuration"]
    for node in status["nodes"].values():
        node.pop("hostNodeName", None)
        if node["type"] == "Container":
            node.pop("finishedAt")
    metrics = workflow_metrics(workflow)
    assert metrics == {
        "pod_attempts": 2,
        "pod_name": "galaxy-main-7-galaxy-job-766957197",
        "queued_seconds": 70.0,
    }
    assert workflow_metrics({"metadata": {"name": "x"}, "status": {"phase": "Pending"}}) == {}


def test_pod_name_of_a_single_attempt_is_the_workflows() -> None:
    """No retryStrategy: the pod node is the root, and Argo names the pod after the workflow."""
    pod = {"id": "galaxy-main-8", "name": "galaxy-main-8", "templateName": "galaxy-job", "type": "Pod"}
    workflow = {"metadata": {"name": "galaxy-main-8"}, "status": {"nodes": {"galaxy-main-8": pod}}}
    assert workflow_metrics(workflow)["pod_name"] == "galaxy-main-8"


def test_seconds_between() -> None:
    assert seconds_between("2026-11-23T10:00:00Z", "2026-11-23T10:00:30Z") == 30.0
    assert seconds_between("2026-11-23T10:00:30Z", "2026-11-23T10:00:00Z") == 0.0  # clock skew
    assert seconds_between(None, "2026-11-23T10:00:00Z") is None
    assert seconds_between("yesterday", "2026-11-23T10:00:00Z") is None
