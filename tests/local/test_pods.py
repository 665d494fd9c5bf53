"""A pod whose container cannot start ends as StartError (or as cancelled), never as a crashed thread."""

from __future__ import annotations

from pathlib import Path

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
