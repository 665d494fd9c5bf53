"""ArgoClient against the embedded server: submit/adopt, one-LIST polling, stop, delete, logs, errors."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from galaxy_argo.argo import ArgoAuthError, ArgoClient, ArgoConflict, ArgoError, ArgoUnavailable
from galaxy_argo.compile import compile_job
from galaxy_argo.local.stack import StackInfo
from galaxy_argo.settings import ArgoSettings
from galaxy_argo.spec import JobSpec
from tests.conftest import golden_cases, wait_until


@pytest.fixture()
def client(info: StackInfo) -> ArgoClient:
    return ArgoClient(info.argo_server_url, info.token, info.namespace)


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


def test_submit_then_adopt_the_same_job_and_refuse_another(client: ArgoClient) -> None:
    workflow = job_workflow("501")
    assert client.submit(workflow) == ("galaxy-clienttest-501", False)
    assert client.submit(workflow) == ("galaxy-clienttest-501", True)  # a crashed handler finds it again
    impostor = job_workflow("501")
    impostor["metadata"]["labels"]["galaxy-argo.galaxyproject.org/job-id"] = "999"
    with pytest.raises(ArgoConflict, match="belongs to another job"):
        client.submit(impostor)


def test_poll_is_one_list_with_light_fields(client: ArgoClient) -> None:
    for job in ("601", "602"):
        client.submit(job_workflow(job, instance="polltest"))
    calls: list[str] = []
    client.session.hooks["response"].append(lambda r, *a, **k: calls.append(r.request.method))
    seen = client.poll("galaxy-argo.galaxyproject.org/instance=polltest")
    assert calls == ["GET"]
    assert sorted(seen) == ["galaxy-polltest-601", "galaxy-polltest-602"]
    for item in seen.values():
        assert set(item) <= {"metadata", "status"}
        assert "nodes" not in item.get("status", {})
    finished = wait_until(
        lambda: all(
            w.get("status", {}).get("phase") in ("Succeeded", "Failed", "Error")
            for w in client.poll("galaxy-argo.galaxyproject.org/instance=polltest").values()
        ),
        120,
        "jobs to end",
    )
    assert finished


def test_get_stop_delete_and_logs(client: ArgoClient) -> None:
    assert client.get("no-such-workflow") is None
    name, _ = client.submit(job_workflow("701", command="echo from-the-tool; sleep 300"))

    def tool_running() -> bool:
        nodes = ((client.get(name) or {}).get("status") or {}).get("nodes") or {}
        return any(n["displayName"] == "run" and n["phase"] == "Running" for n in nodes.values())

    wait_until(tool_running, 60, "the tool to run")
    assert client.stop(name, "user deleted the job")
    done = wait_until(
        lambda: (client.get(name) or {}).get("status", {}).get("phase") == "Failed", 60, "stopped"
    )
    assert done
    lines = [line for _, line in client.logs(name, container="run")]
    assert "from-the-tool" in lines
    assert client.delete(name)
    assert client.get(name) is None and not client.delete(name) and not client.stop(name)
    assert list(client.logs(name)) == []


def test_bad_token_names_the_param_and_hides_the_token(info: StackInfo) -> None:
    client = ArgoClient(info.argo_server_url, "SECRET-TOKEN-MARKER", info.namespace)
    with pytest.raises(ArgoAuthError) as err:
        client.poll("a=b")
    assert "argo_token" in str(err.value) and "MARKER" not in str(err.value)
    with pytest.raises(ArgoAuthError, match="argo_token"):
        client.submit(job_workflow("801"))


def test_unreachable_server_is_temporary(info: StackInfo) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ArgoClient(f"http://127.0.0.1:{port}", info.token, timeout=2)
    with pytest.raises(ArgoUnavailable, match="is unreachable .*the runner retries"):
        client.poll("a=b")
    with pytest.raises(ArgoUnavailable):
        client.submit(job_workflow("802"))


def test_invalid_workflow_is_refused_with_argos_reason(client: ArgoClient) -> None:
    workflow = job_workflow("803")
    workflow["spec"]["templates"][0]["retryStrategy"]["limit"] = "x"
    with pytest.raises(
        ArgoError, match="refused submitting workflow galaxy-clienttest-803: .*retryStrategy.limit"
    ):
        client.submit(workflow)
    assert "token" not in repr(client).lower()
