"""Pods that do not get to run their containers: a StartError, a cancellation, a missing Secret.

Each ends as Kubernetes and Argo report it, never as a crashed thread; a missing Secret keeps the
pod waiting with the kubelet's ``CreateContainerConfigError`` until it appears or the pod ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from galaxy_argo.local.artifacts import ArtifactRepositories
from galaxy_argo.local.pods import PodRequest, run_pod
from galaxy_argo.local.sandbox import ImageEntry, ImageMap, Mount

pytestmark = pytest.mark.engine


def request_with_missing_mount(tmp_path: Path) -> PodRequest:
    missing = tmp_path / "was-deleted"
    image_map = ImageMap({"broken:*": ImageEntry(extra_mounts=[Mount(missing, "/data", read_only=True)])})
    return PodRequest(
        namespace="galaxy",
        workflow_name="wf",
        pod_name="wf-pod",
        template={"name": "main", "container": {"image": "broken:1", "command": ["true"]}},
        pod_dir=tmp_path / "pod",
        repository={},
        repos=ArtifactRepositories(),
        image_map=image_map,
    )


def test_a_container_that_cannot_start_is_a_start_error(tmp_path: Path) -> None:
    result = run_pod(request_with_missing_mount(tmp_path))
    assert result.phase == "Failed"
    assert result.exit_code == 128
    assert result.message.startswith("main: StartError (exit code 128): mount source ")
    assert str(tmp_path / "was-deleted") in result.message


def test_a_cancelled_pod_that_cannot_start_reports_the_cancellation(tmp_path: Path) -> None:
    request = request_with_missing_mount(tmp_path)
    request.cancel_message.append("pod deleted")
    request.cancel.set()
    result = run_pod(request)
    assert result.phase == "Failed"
    assert result.message == "pod deleted"


def secret_env(name: str, key: str = "accesskey") -> dict[str, Any]:
    return {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}


def container_set_request(tmp_path: Path, template: dict[str, Any]) -> PodRequest:
    return PodRequest(
        namespace="galaxy",
        workflow_name="wf",
        pod_name="wf-pod",
        template=template,
        pod_dir=tmp_path / "pod",
        repository={},
        repos=ArtifactRepositories(),
        image_map=ImageMap(),
    )


def test_a_missing_secret_keeps_the_pod_waiting_with_the_first_containers_reason(tmp_path: Path) -> None:
    # Argo shows the first waiting container of the kubelet's statuses, which are sorted by name.
    marker = tmp_path / "ran"
    template = {
        "name": "main",
        "containerSet": {
            "containers": [
                {"name": "b-first", "image": "busybox", "command": ["touch", str(marker)]},
                {"name": "a-second", "image": "busybox", "command": ["true"]},
            ]
        },
    }
    template["containerSet"]["containers"][0]["env"] = [secret_env("s2")]
    template["containerSet"]["containers"][1]["env"] = [secret_env("s1")]
    request = container_set_request(tmp_path, template)
    reasons: list[str] = []

    def waiting(reason: str) -> None:
        reasons.append(reason)
        request.cancel_message.append("Stopped with strategy 'Stop'")
        request.cancel.set()

    result = run_pod(request, on_started=lambda: reasons.append("started"), on_waiting=waiting)
    assert reasons == ['CreateContainerConfigError: secret "s1" not found']
    assert (result.phase, result.message, result.containers) == ("Failed", "Stopped with strategy 'Stop'", [])
    assert not marker.exists()


def test_a_pod_waiting_for_its_secret_ends_at_its_deadline(tmp_path: Path) -> None:
    template = {
        "name": "main",
        "activeDeadlineSeconds": 1,
        "container": {"image": "busybox", "command": ["true"], "env": [secret_env("store", "nokey")]},
    }
    request = container_set_request(tmp_path, template)
    request.repos.secrets["store"] = {"accesskey": "AKID"}
    reasons: list[str] = []
    result = run_pod(request, on_waiting=reasons.append)
    assert reasons == ["CreateContainerConfigError: couldn't find key nokey in Secret galaxy/store"]
    assert (result.phase, result.message) == (
        "Failed",
        "Pod was active on the node longer than the specified deadline",
    )


def test_the_pod_starts_once_its_secret_exists(tmp_path: Path) -> None:
    # The kubelet retries a container whose Secret is missing; the engine does the same.
    template = {
        "name": "main",
        "container": {"image": "busybox", "command": ["sh", "-c", 'echo "$KEY"']},
    }
    template["container"]["env"] = [secret_env("late")]
    request = container_set_request(tmp_path, template)
    reasons: list[str] = []

    def waiting(reason: str) -> None:
        reasons.append(reason)
        request.repos.secrets["late"] = {"accesskey": "AKIDLATE"}

    result = run_pod(request, on_started=lambda: reasons.append("started"), on_waiting=waiting)
    assert reasons == ['CreateContainerConfigError: secret "late" not found', "started"]
    assert result.phase == "Succeeded" and result.outputs["result"] == "AKIDLATE"


def test_an_unsupported_env_source_is_an_error(tmp_path: Path) -> None:
    env = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    request = container_set_request(
        tmp_path, {"name": "main", "container": {"image": "busybox", "command": ["true"], "env": env}}
    )
    result = run_pod(request)
    assert result.phase == "Error"
    assert result.message.startswith('env "POD": valueFrom fieldRef is not supported by the embedded engine')
