"""The contract of a `Workflows` backend, run against both on the embedded server: `ArgoClient`
(Argo Server REST through Hera) and `KubernetesClient` (the Workflow resources through the
``kubernetes`` client). submit/adopt, one-LIST polling, stop, delete, logs, errors."""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from galaxy_argo.clients.argo import (
    ArgoAuthError,
    ArgoClient,
    ArgoConflict,
    ArgoError,
    ArgoUnavailable,
    Workflows,
)
from galaxy_argo.clients.kube import KubernetesClient
from galaxy_argo.core.compile import compile_job, compile_model
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.core.spec import JobSpec
from galaxy_argo.local.controller.engine import node_id
from galaxy_argo.local.stack import StackInfo, kubeconfig
from tests.conftest import golden_cases, wait_until

pytestmark = pytest.mark.engine

BACKENDS = ["argo-server", "kubernetes"]


@dataclass
class Backend:
    """A backend to test, what it is configured by, and how to make one with other credentials."""

    kind: str
    info: StackInfo
    tmp_path: Path

    @property
    def instance(self) -> str:
        """Workflow names differ per backend: both run on the same embedded server."""
        return "clienttest" if self.kind == "argo-server" else "kubetest"

    @property
    def credentials_param(self) -> str:
        return "argo_token" if self.kind == "argo-server" else "kubeconfig"

    def client(self, url: str = "", token: str | None = None, timeout: float = 30) -> Workflows:
        info = replace(self.info, argo_server_url=url or self.info.argo_server_url)
        info = replace(info, token=self.info.token if token is None else token)
        if self.kind == "argo-server":
            return ArgoClient(info.argo_server_url, info.token, info.namespace, timeout=timeout)
        path = self.tmp_path / f"kubeconfig-{len(list(self.tmp_path.iterdir()))}.yaml"
        path.write_text(kubeconfig(info))
        return KubernetesClient(str(path), namespace=info.namespace, timeout=timeout)

    def workflow(self, job_id: str, command: str = "true", instance: str = "") -> dict[str, Any]:
        return job_workflow(job_id, instance or self.instance, command)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, info: StackInfo, tmp_path: Path) -> Backend:
    return Backend(request.param, info, tmp_path)


@pytest.fixture()
def client(backend: Backend) -> Workflows:
    return backend.client()


def node_hash(workflow: str, node_name: str) -> str:
    return node_id(workflow, node_name).rsplit("-", 1)[-1]


def job_workflow(job_id: str, instance: str = "clienttest", command: str = "true") -> dict[str, Any]:
    data = dict(
        golden_cases()["one-input-one-output"]["spec"],
        job_id=job_id,
        inputs=[],
        command_line=command,
        job_directory=None,
        working_directory="/galaxy/outputs",
    )
    settings = ArgoSettings.from_params({"namespace": "galaxy", "instance": instance})
    return compile_job(JobSpec.from_dict(data), settings).to_dict()  # type: ignore[no-any-return]


def test_submit_then_adopt_the_same_job_and_refuse_another(client: Workflows, backend: Backend) -> None:
    workflow = backend.workflow("501")
    name = f"galaxy-{backend.instance}-501"
    assert client.submit(workflow) == (name, False)
    assert client.submit(workflow) == (name, True)  # a crashed handler finds it again
    impostor = backend.workflow("501")
    impostor["metadata"]["labels"]["galaxy-argo.galaxyproject.org/job-id"] = "999"
    with pytest.raises(ArgoConflict, match="belongs to another job"):
        client.submit(impostor)


def test_the_runner_submits_built_models(client: Workflows, backend: Backend) -> None:
    data = dict(golden_cases()["one-input-one-output"]["spec"], job_id="502", inputs=[], job_directory=None)
    settings = ArgoSettings.from_params({"namespace": "galaxy", "instance": backend.instance})
    model = compile_model(JobSpec.from_dict(data), settings)
    assert client.submit(model) == (f"galaxy-{backend.instance}-502", False)
    stored = client.get(f"galaxy-{backend.instance}-502")
    assert stored is not None and stored["spec"]["templates"][0]["name"] == "galaxy-job"


def test_poll_is_one_list_with_light_fields(client: Workflows, backend: Backend) -> None:
    instance = f"poll{backend.instance}"
    for job in ("601", "602"):
        client.submit(backend.workflow(job, instance=instance))
    before = client.requests_sent
    seen = client.poll(f"galaxy-argo.galaxyproject.org/instance={instance}")
    assert client.requests_sent - before == 1
    assert sorted(seen) == [f"galaxy-{instance}-601", f"galaxy-{instance}-602"]
    for item in seen.values():
        assert set(item) <= {"metadata", "status"}
        assert "nodes" not in item.get("status", {})
        assert set(item["metadata"]) <= {"name", "labels"}
    finished = wait_until(
        lambda: all(
            w.get("status", {}).get("phase") in ("Succeeded", "Failed", "Error")
            for w in client.poll(f"galaxy-argo.galaxyproject.org/instance={instance}").values()
        ),
        120,
        "jobs to end",
    )
    assert finished


def test_get_stop_delete_and_logs(client: Workflows, backend: Backend) -> None:
    assert client.get("no-such-workflow") is None
    name, _ = client.submit(backend.workflow("701", command="echo from-the-tool; sleep 300"))

    def tool_running() -> bool:
        nodes = ((client.get(name) or {}).get("status") or {}).get("nodes") or {}
        return any(n["displayName"] == "run" and n["phase"] == "Running" for n in nodes.values())

    wait_until(tool_running, 60, "the tool to run")
    assert client.get(name, fields="status.phase") == {"status": {"phase": "Running"}}
    assert client.stop(name, "user deleted the job")
    done = wait_until(
        lambda: (client.get(name) or {}).get("status", {}).get("phase") == "Failed", 60, "stopped"
    )
    assert done
    logged = list(client.logs(name, container="run"))
    assert "from-the-tool" in [line for _, line in logged]
    assert {pod for pod, _ in logged} == {f"{name}-galaxy-job-{node_hash(name, f'{name}(0)')}"}
    assert client.delete(name)
    assert client.get(name) is None and not client.delete(name) and not client.stop(name)
    assert not client.terminate(name)
    assert list(client.logs(name)) == []


def test_terminate(client: Workflows, backend: Backend) -> None:
    name, _ = client.submit(backend.workflow("702", command="sleep 300"))
    wait_until(
        lambda: (client.get(name, fields="status.phase") or {}).get("status", {}).get("phase") == "Running",
        60,
        "running",
    )
    assert client.terminate(name)
    assert wait_until(
        lambda: (client.get(name) or {}).get("status", {}).get("phase") == "Failed", 60, "terminated"
    )


def test_bad_credentials_name_the_param_and_hide_the_token(backend: Backend) -> None:
    client = backend.client(token="SECRET-TOKEN-MARKER")
    with pytest.raises(ArgoAuthError) as err:
        client.poll("a=b")
    assert backend.credentials_param in str(err.value) and "MARKER" not in str(err.value)
    with pytest.raises(ArgoAuthError, match=backend.credentials_param):
        client.submit(backend.workflow("801"))


def test_unreachable_server_is_temporary(backend: Backend) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = backend.client(url=f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(ArgoUnavailable, match="is unreachable .*the runner retries"):
        client.poll("a=b")
    with pytest.raises(ArgoUnavailable):
        client.submit(backend.workflow("802"))


def test_invalid_workflow_is_refused_with_argos_reason(client: Workflows, backend: Backend) -> None:
    workflow = backend.workflow("803")
    workflow["spec"]["templates"][0]["retryStrategy"]["limit"] = "x"
    with pytest.raises(
        ArgoError, match=f"refused submitting workflow galaxy-{backend.instance}-803: .*retryStrategy.limit"
    ):
        client.submit(workflow)
    assert "token" not in repr(client).lower()


def test_server_dry_run_and_templates(client: Workflows, backend: Backend) -> None:
    workflow = backend.workflow("804")
    client.dry_run(workflow)
    assert client.get(f"galaxy-{backend.instance}-804") is None  # nothing stored
    assert isinstance(client.template_names(), list)
    assert client.version()["version"]


def test_a_bad_kubeconfig_names_itself(tmp_path: Path) -> None:
    with pytest.raises(ArgoAuthError, match="kubeconfig .*missing.yaml"):
        KubernetesClient(str(tmp_path / "missing.yaml"))
