"""outcome_of: each Argo status shape a poller meets, classified with a one-line reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from galaxy_argo.core.outcome import OutcomeError, OutcomeState, deleted_outcome, outcome_of


def wf(
    phase: str,
    pod_message: str = "",
    message: str = "",
    pod_phase: str | None = None,
    manifest: dict[str, Any] | None = None,
    pods: int = 1,
) -> dict[str, Any]:
    nodes: dict[str, Any] = {"w": {"id": "w", "name": "w", "type": "Retry", "phase": phase}}
    for i in range(pods):
        node: dict[str, Any] = {
            "id": f"w-{i}",
            "name": f"w({i})",
            "type": "Pod",
            "phase": pod_phase or phase,
            "startedAt": f"2026-01-01T00:00:0{i}Z",
            "finishedAt": f"2026-01-01T00:01:0{i}Z",
            "hostNodeName": "node-a",
        }
        if pod_message:
            node["message"] = pod_message
        if manifest is not None:
            node["outputs"] = {"parameters": [{"name": "outputs-manifest", "value": json.dumps(manifest)}]}
        nodes[node["id"]] = node
    status: dict[str, Any] = {"phase": phase, "nodes": nodes, "resourcesDuration": {"cpu": 60, "memory": 600}}
    if message:
        status["message"] = message
    return {"metadata": {"name": "w"}, "status": status}


MANIFEST = {"version": 1, "exit_code": 0, "metadata_exit_code": None, "files": [], "missing": []}


@pytest.mark.parametrize(
    ("workflow", "state", "reason"),
    [
        ({"status": {}}, OutcomeState.QUEUED, ""),
        (wf("Pending"), OutcomeState.QUEUED, ""),
        (
            wf("Running", pod_phase="Pending", pod_message="Unschedulable: 0/3 nodes"),
            OutcomeState.QUEUED,
            "Unschedulable: 0/3 nodes",
        ),
        (
            wf("Running", pod_phase="Pending", pod_message='ImagePullBackOff: Back-off pulling image "x"'),
            OutcomeState.IMAGE_PULL,
            "the container image could not be pulled: ImagePullBackOff: Back-off pulling",
        ),
        # Kubelet's CreateContainerConfigError as Argo 4.1's getPendingReason puts it on the node.
        (
            wf(
                "Running",
                pod_phase="Pending",
                pod_message='CreateContainerConfigError: secret "galaxy-store-keys" not found',
            ),
            OutcomeState.CONTAINER_CONFIG,
            'the job\'s pod cannot create its containers: secret "galaxy-store-keys" not found '
            "(CreateContainerConfigError); the Secret and key must exist in the workflow's namespace",
        ),
        (
            wf(
                "Running",
                pod_phase="Pending",
                pod_message="CreateContainerConfigError: couldn't find key accesskey in Secret galaxy/keys",
            ),
            OutcomeState.CONTAINER_CONFIG,
            "cannot create its containers: couldn't find key accesskey in Secret galaxy/keys (Create",
        ),
        (
            wf("Failed", 'CreateContainerConfigError: secret "keys" not found'),
            OutcomeState.CONTAINER_CONFIG,
            'cannot create its containers: secret "keys" not found (CreateContainerConfigError)',
        ),
        (wf("Running"), OutcomeState.RUNNING, ""),
        # The poll's LIST, projected without nodes: Argo's PodRunning condition says which.
        (
            {"status": {"phase": "Running", "conditions": [{"type": "PodRunning", "status": "True"}]}},
            OutcomeState.RUNNING,
            "",
        ),
        (
            {"status": {"phase": "Running", "conditions": [{"type": "PodRunning", "status": "False"}]}},
            OutcomeState.QUEUED,
            "",
        ),
        ({"status": {"phase": "Running"}}, OutcomeState.QUEUED, ""),
        (wf("Succeeded", manifest=MANIFEST), OutcomeState.SUCCEEDED, ""),
        (
            wf("Failed", "run: OOMKilled (exit code 137)"),
            OutcomeState.OOM,
            "the tool used more memory than its limit (4 GiB) and was killed (OOMKilled)",
        ),
        (
            wf("Failed", "Pod was active on the node longer than the specified deadline"),
            OutcomeState.WALLTIME,
            "the job ran longer than its walltime limit (2 h) and was stopped",
        ),
        (wf("Failed", message="Step exceeded its deadline"), OutcomeState.WALLTIME, "walltime"),
        (
            wf("Failed", "Stopped with strategy 'Stop'"),
            OutcomeState.STOPPED,
            "the workflow was stopped in Argo (Stop)",
        ),
        (
            wf("Failed", "stage-in: Error (exit code 1): input /galaxy/inputs/a has 3 bytes, expected 4"),
            OutcomeState.BAD_INPUT,
            "an input did not arrive intact: input /galaxy/inputs/a has 3 bytes, expected 4",
        ),
        (
            wf(
                "Failed",
                "main: Error (exit code 3): tool exited with code 3",
                manifest={**MANIFEST, "exit_code": 3},
            ),
            OutcomeState.TOOL_FAILED,
            "the tool exited with code 3",
        ),
        (
            wf("Failed", "main: Error (exit code 1): metadata step exited with code 2"),
            OutcomeState.METADATA_FAILED,
            "setting output metadata failed (exit code 2)",
        ),
        (
            wf("Failed", "The node was low on resource: memory.", pods=3),
            OutcomeState.EVICTED,
            "the pod was evicted from its node and retries ran out: The node was low on resource: memory.",
        ),
        (wf("Error", "pod deleted", pods=3), OutcomeState.INFRASTRUCTURE, "deleted or lost"),
        (
            wf("Error", "init: failed to load artifacts: s3://b/k does not exist"),
            OutcomeState.INFRASTRUCTURE,
            "Argo reports Error: init: failed to load artifacts: s3://b/k does not exist",
        ),
    ],
)
def test_classification(workflow: dict[str, Any], state: OutcomeState, reason: str) -> None:
    outcome = outcome_of(workflow, memory_limit="4 GiB", walltime="2 h")
    assert outcome.state is state
    assert reason in outcome.reason
    assert outcome.state.finished is (state not in (OutcomeState.QUEUED, OutcomeState.RUNNING))


def test_exit_code_manifest_and_metrics() -> None:
    outcome = outcome_of(
        wf("Failed", "tool exited with code 3", manifest={**MANIFEST, "exit_code": 3}, pods=2)
    )
    assert outcome.exit_code == 3 and outcome.manifest is not None
    assert outcome.metrics == {
        "retries": 1,
        "pod": "w-1",
        "runtime_seconds": 60.0,
        "node": "node-a",
        "cpu_seconds": 60,
        "memory_100mi_seconds": 600,
    }


def test_unknown_values_are_errors_naming_them() -> None:
    with pytest.raises(OutcomeError, match="workflow phase 'Exploded' is not one Argo reports: .*Succeeded"):
        outcome_of({"status": {"phase": "Exploded"}})
    broken = wf("Running")
    broken["status"]["nodes"]["w-0"]["type"] = "Teleport"
    with pytest.raises(OutcomeError, match="node 'w\\(0\\)' has type 'Teleport'; known: Pod"):
        outcome_of(broken)
    bad_manifest = wf("Succeeded")
    bad_manifest["status"]["nodes"]["w-0"]["outputs"] = {
        "parameters": [{"name": "outputs-manifest", "value": "{"}]
    }
    with pytest.raises(OutcomeError, match="outputs manifest of w\\(0\\) is not JSON"):
        outcome_of(bad_manifest)


def test_missing_fields_are_tolerated() -> None:
    assert outcome_of({}).state is OutcomeState.QUEUED
    assert outcome_of({"status": {"phase": "Failed"}}).reason == "Argo reports Failed: no message"


def test_deleted() -> None:
    outcome = deleted_outcome("galaxy-main-7")
    assert outcome.state is OutcomeState.DELETED and "galaxy-main-7 was deleted in Argo" in outcome.reason


def test_the_states_argo_leaves_running_are_the_pods_that_never_start() -> None:
    # Neither Argo nor the kubelet gives up on them: the runner stops the workflow.
    stuck = {state for state in OutcomeState if state.leaves_workflow_running}
    assert stuck == {OutcomeState.IMAGE_PULL, OutcomeState.CONTAINER_CONFIG}
    assert all(state.finished for state in stuck)
