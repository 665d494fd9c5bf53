"""One embedded stack (SeaweedFS + engine + REST server) per test session, always stopped."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hera.workflows.models import WorkflowCreateRequest, WorkflowTemplateCreateRequest
from hera.workflows.service import WorkflowsService

from galaxy_argo.local.sandbox import ImageEntry, ImageMap, Mount
from galaxy_argo.local.stack import EmbeddedStack, StackInfo
from tests.conftest import SHARED

EXAMPLES = SHARED / "argo" / "examples"
DONE = ("Succeeded", "Failed", "Error")
#: Galaxy's object store bucket, and a Secret whose keys may only read and list it.
STORE_BUCKET = "galaxy-store"
READER_SECRET = "galaxy-store-reader"
#: An image that runs this test environment's Python (boto3 included), as the metadata image does.
VENV_IMAGE = "galaxy-argo-test/venv-python:1"


def venv_image_map() -> ImageMap:
    """`VENV_IMAGE` -> this virtualenv and the interpreter it was made from, bound read-only."""
    prefix = str(Path(sys.prefix).resolve())
    mounts = {prefix, str(Path(sys.base_prefix).resolve())}
    entry = ImageEntry(
        path_prepend=[f"{prefix}/bin"],
        extra_mounts=[Mount(Path(m), m, read_only=True) for m in sorted(mounts)],
        env={"VIRTUAL_ENV": prefix},
    )
    return ImageMap({VENV_IMAGE.rsplit(":", 1)[0] + ":*": entry})


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    state = tmp_path_factory.mktemp("embedded-stack")
    running = EmbeddedStack(
        state,
        max_pods=6,
        s3_identities={READER_SECRET: [f"Read:{STORE_BUCKET}", f"List:{STORE_BUCKET}"]},
        image_map=venv_image_map(),
    )
    running.start()
    try:
        assert running.s3 is not None and running.engine is not None
        running.s3.ensure_bucket(STORE_BUCKET)
        # Argo's example ConfigMap names a second repository key; point it at our SeaweedFS.
        running.engine.config.repos.config_maps["artifact-repositories"]["my-key"] = (
            running.s3.artifact_repository()
        )
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def info(stack: EmbeddedStack) -> StackInfo:
    return stack.info()


@pytest.fixture(scope="session")
def service(info: StackInfo) -> WorkflowsService:
    return WorkflowsService(
        host=info.argo_server_url, token=info.token, namespace=info.namespace, verify_ssl=False
    )


@pytest.fixture(scope="session")
def example_templates(service: WorkflowsService) -> list[str]:
    names = []
    for document in yaml.safe_load_all((EXAMPLES / "workflow-template" / "templates.yaml").read_text()):
        created = service.create_workflow_template(WorkflowTemplateCreateRequest(template=document))
        names.append(created.metadata.name)
    return names


def submit(service: WorkflowsService, document: dict[str, Any]) -> str:
    document = dict(document)
    document.setdefault("apiVersion", "argoproj.io/v1alpha1")
    document.setdefault("kind", "Workflow")
    created = service.create_workflow(WorkflowCreateRequest(workflow=document))
    return str(created.metadata.name)


def wait_for(
    service: WorkflowsService, name: str, timeout: float = 120, phases: tuple[str, ...] = DONE
) -> dict[str, Any]:
    """Poll the workflow (as JSON) until its phase is one of ``phases``; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        wf = service.get_workflow(name).model_dump(by_alias=True, exclude_none=True, mode="json")
        if (wf.get("status") or {}).get("phase") in phases:
            return wf
        if time.monotonic() > deadline:
            pytest.fail(f"workflow {name} still {(wf.get('status') or {}).get('phase')} after {timeout} s")
        time.sleep(0.1)


def has_running_pod(service: WorkflowsService, name: str) -> bool:
    """True once a pod of the workflow runs (a just-created workflow has no status yet)."""
    wf = service.get_workflow(name).model_dump(by_alias=True, exclude_none=True, mode="json")
    nodes = (wf.get("status") or {}).get("nodes") or {}
    return any(n["type"] == "Pod" and n["phase"] == "Running" for n in nodes.values())


def pod_nodes(wf: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"]


def load_example(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())
