"""The Argo Server API contract, through Hera's own WorkflowsService over HTTP.

Any backend galaxy-argo talks to (the embedded server, a real Argo Server, a CRD backend later)
must pass this suite unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from hera.exceptions import AlreadyExists, BadRequest, NotFound, Unauthorized
from hera.workflows.models import (
    WorkflowCreateRequest,
    WorkflowLintRequest,
    WorkflowRetryRequest,
    WorkflowStopRequest,
    WorkflowTemplateCreateRequest,
    WorkflowTemplateUpdateRequest,
    WorkflowTerminateRequest,
)
from hera.workflows.service import WorkflowsService

from galaxy_argo.local.stack import StackInfo
from tests.conftest import wait_until
from tests.local.conftest import pod_nodes, submit, wait_for

pytestmark = pytest.mark.engine


def echo_workflow(
    name: str,
    message: str = "hello",
    labels: dict[str, str] | None = None,
    command: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "container": {
                        "image": "busybox",
                        "command": ["sh", "-c"],
                        "args": [command or f"echo {message}"],
                    },
                }
            ],
            **spec,
        },
    }


def raw(info: StackInfo, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {info.token}"}
    return requests.request(method, info.argo_server_url + path, headers=headers, timeout=30, **kwargs)


def test_create_get_and_409_on_an_existing_name(service: WorkflowsService) -> None:
    name = submit(service, echo_workflow("contract-create"))
    assert name == "contract-create"
    with pytest.raises(AlreadyExists):
        submit(service, echo_workflow("contract-create"))
    wf = wait_for(service, name)
    assert wf["status"]["phase"] == "Succeeded"
    assert wf["metadata"]["namespace"] == "galaxy" and wf["metadata"]["uid"]


def test_generate_name(service: WorkflowsService) -> None:
    document = echo_workflow("")
    document["metadata"] = {"generateName": "gen-"}
    name = submit(service, document)
    assert name.startswith("gen-") and len(name) == len("gen-") + 5


def test_list_by_label_with_fields_projection(service: WorkflowsService, info: StackInfo) -> None:
    for i in range(3):
        submit(service, echo_workflow(f"contract-list-{i}", labels={"suite": "list", "n": str(i)}))
    submit(service, echo_workflow("contract-list-other", labels={"suite": "other"}))
    listed = service.list_workflows(label_selector="suite=list")
    assert sorted(w.metadata.name for w in listed.items or []) == [f"contract-list-{i}" for i in range(3)]
    assert [
        w.metadata.name for w in service.list_workflows(label_selector="suite=list,n in (0,2)").items or []
    ] == ["contract-list-0", "contract-list-2"]
    assert [
        w.metadata.name for w in service.list_workflows(label_selector="suite,suite!=list,n").items or []
    ] == []
    # Fields projection as the runner polls: only what it reads comes back.
    fields = "items.metadata.name,items.metadata.labels,items.status.phase,items.spec.entrypoint"
    body = raw(
        info,
        "GET",
        "/api/v1/workflows/galaxy",
        params={"listOptions.labelSelector": "suite=list", "fields": fields},
    ).json()
    assert len(body["items"]) == 3
    for item in body["items"]:
        assert set(item) <= {"metadata", "status", "spec"}
        assert set(item["metadata"]) == {"name", "labels"}
        assert set(item.get("status", {})) <= {"phase"}
    projected = service.list_workflows(label_selector="suite=list", fields=fields)
    assert len(projected.items or []) == 3
    bad = raw(info, "GET", "/api/v1/workflows/galaxy", params={"listOptions.labelSelector": "a=(b"})
    assert bad.status_code == 400 and "unable to parse requirement" in bad.json()["message"]


def test_get_with_fields(service: WorkflowsService, info: StackInfo) -> None:
    name = submit(service, echo_workflow("contract-fields"))
    wait_for(service, name)
    body = raw(
        info, "GET", f"/api/v1/workflows/galaxy/{name}", params={"fields": "metadata.name,status.phase"}
    ).json()
    assert body == {"metadata": {"name": name}, "status": {"phase": "Succeeded"}}
    # A path that does not exist must not wipe out the paths before it.
    body = raw(
        info,
        "GET",
        f"/api/v1/workflows/galaxy/{name}",
        params={"fields": "status.phase,status.nosuchfield,status.progress"},
    ).json()
    assert body == {"status": {"phase": "Succeeded", "progress": "1/1"}}
    excluded = raw(info, "GET", f"/api/v1/workflows/galaxy/{name}", params={"fields": "-status.nodes"}).json()
    assert "nodes" not in excluded["status"] and excluded["status"]["phase"] == "Succeeded"


def test_the_list_says_whether_a_pod_runs_as_argos_conditions_do(
    service: WorkflowsService, info: StackInfo
) -> None:
    # Argo's podReconciliation upserts PodRunning (True while any pod runs) and, at the end,
    # Completed: the runner reads them from its node-less LIST instead of reading each workflow.
    name = submit(service, echo_workflow("contract-conditions", command="sleep 2", labels={"suite": "cond"}))

    def conditions() -> dict[str, str]:
        body = raw(
            info,
            "GET",
            "/api/v1/workflows/galaxy",
            params={"listOptions.labelSelector": "suite=cond", "fields": "items.status.conditions"},
        ).json()
        [item] = body["items"]
        return {c["type"]: c["status"] for c in item.get("status", {}).get("conditions", [])}

    wait_until(lambda: conditions().get("PodRunning") == "True", 30, "PodRunning=True in the LIST")
    assert "Completed" not in conditions()
    wait_for(service, name)
    assert conditions() == {"PodRunning": "False", "Completed": "True"}


def test_hera_quirk_fields_without_spec_fail_model_validation(service: WorkflowsService) -> None:
    # Hera 7.1.0 quirk 2: a projection that drops `spec` cannot be parsed into Hera's Workflow model;
    # keeping spec.entrypoint makes it work. The runner projects accordingly.
    name = submit(service, echo_workflow("contract-quirk2"))
    wait_for(service, name)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's ValidationError, whatever Hera wraps it in
        service.get_workflow(name, fields="metadata.name,status.phase")
    ok = service.get_workflow(name, fields="metadata.name,status.phase,spec.entrypoint")
    assert ok.status is not None and ok.status.phase == "Succeeded"


def test_delete_and_404(service: WorkflowsService) -> None:
    name = submit(service, echo_workflow("contract-delete", command="sleep 30"))
    service.delete_workflow(name)
    with pytest.raises(NotFound):
        service.get_workflow(name)
    with pytest.raises(NotFound):
        service.delete_workflow(name)


def running_pod(service: WorkflowsService, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        wf = service.get_workflow(name).model_dump(by_alias=True, exclude_none=True, mode="json")
        pods = pod_nodes(wf) if wf.get("status", {}).get("nodes") else []
        return wf if pods and pods[0]["phase"] == "Running" else None

    return wait_until(check, 60, f"{name} to run")  # type: ignore[no-any-return]


@pytest.mark.parametrize(("action", "strategy"), [("stop", "Stop"), ("terminate", "Terminate")])
def test_stop_and_terminate_a_running_workflow(service: WorkflowsService, action: str, strategy: str) -> None:
    document = echo_workflow(f"contract-{action}", command="sleep 300")
    document["spec"]["onExit"] = "bye"
    document["spec"]["templates"].append(
        {"name": "bye", "container": {"image": "busybox", "command": ["echo", "exit handler ran"]}}
    )
    name = submit(service, document)
    running_pod(service, name)
    if action == "stop":
        service.stop_workflow(name, WorkflowStopRequest(name=name, message="operator stop"))
    else:
        service.terminate_workflow(name, WorkflowTerminateRequest(name=name))
    wf = wait_for(service, name, timeout=30)
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == f"Stopped with strategy '{strategy}'"
    main = next(n for n in pod_nodes(wf) if n["displayName"] == name)
    assert main["phase"] == "Failed" and main["message"] == f"Stopped with strategy '{strategy}'"
    handler = [n for n in pod_nodes(wf) if n["name"].endswith(".onExit")]
    assert (len(handler) == 1 and handler[0]["phase"] == "Succeeded") is (action == "stop")


def test_retry_a_failed_workflow(service: WorkflowsService, stack: Any) -> None:
    # Fails while the marker file is absent; after `retry` the step runs again and succeeds.
    marker = stack.state_dir / "retry-marker"
    document = echo_workflow("contract-retry", command="test -f /marker/ok || exit 3")
    document["spec"]["volumes"] = [{"name": "m", "persistentVolumeClaim": {"claimName": "retry-marker"}}]
    document["spec"]["templates"][0]["container"]["volumeMounts"] = [{"name": "m", "mountPath": "/marker"}]
    name = submit(service, document)
    wf = wait_for(service, name)
    assert wf["status"]["phase"] == "Failed"
    assert pod_nodes(wf)[0]["message"] == "main: Error (exit code 3)"
    claim = stack.state_dir / "pods" / "galaxy" / name / "claims" / "retry-marker"
    assert claim.is_dir()
    (claim / "ok").write_text("")
    service.retry_workflow(name, WorkflowRetryRequest(name=name))
    wf = wait_for(service, name, phases=("Succeeded",), timeout=60)
    assert marker.parent.exists()
    with pytest.raises(BadRequest, match="only failed workflows can be retried"):
        service.retry_workflow(name, WorkflowRetryRequest(name=name))


def test_logs_stream_as_ndjson_and_hera_quirk_1(service: WorkflowsService, info: StackInfo) -> None:
    name = submit(service, echo_workflow("contract-logs", command="echo line-one; echo line-two"))
    wf = wait_for(service, name)
    pod = pod_nodes(wf)[0]["id"]
    response = raw(
        info, "GET", f"/api/v1/workflows/galaxy/{name}/log", params={"logOptions.container": "main"}
    )
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [entry["result"]["content"] for entry in lines] == ["line-one", "line-two"]
    assert all(entry["result"]["podName"] for entry in lines)
    pod_log = raw(
        info,
        "GET",
        f"/api/v1/workflows/galaxy/{name}/{lines[0]['result']['podName']}/log",
        params={"logOptions.container": "main"},
    )
    assert pod_log.text == response.text
    assert pod
    # Hera 7.1.0 quirk 1: its workflow_logs parses the stream with resp.json() and fails.
    with pytest.raises(Exception):  # noqa: B017 - json.JSONDecodeError from requests
        service.workflow_logs(name, container="main")


def test_lint_and_invalid_workflows_are_refused_with_the_schema_path(
    service: WorkflowsService, info: StackInfo
) -> None:
    good = echo_workflow("contract-lint")
    linted = service.lint_workflow(WorkflowLintRequest(workflow=good))
    assert linted.metadata.name == "contract-lint"
    # Hera's models drop unknown fields client-side, so a misspelt field is sent raw, as kubectl would.
    bad = echo_workflow("contract-invalid")
    bad["spec"]["templates"][0]["container"]["imagePullPolicyy"] = "Always"
    for path in ("/api/v1/workflows/galaxy", "/api/v1/workflows/galaxy/lint"):
        response = raw(info, "POST", path, json={"workflow": bad})
        assert response.status_code == 400
        assert response.json()["code"] == 3
        assert "is invalid at $.spec.templates[0].container" in response.json()["message"]
        assert "'imagePullPolicyy' was unexpected" in response.json()["message"]
    with pytest.raises(NotFound):
        service.get_workflow("contract-invalid")
    assert raw(info, "POST", "/api/v1/workflows/galaxy", data=b"{not json").status_code == 400


def test_unsupported_features_are_refused_with_the_reason(service: WorkflowsService) -> None:
    document = echo_workflow("contract-unsupported")
    document["spec"]["templates"].append({"name": "wait", "suspend": {}})
    with pytest.raises(
        BadRequest, match=r"spec.templates\[1\] \('wait'\): suspend templates are not supported"
    ):
        service.create_workflow(WorkflowCreateRequest(workflow=document))


def test_workflow_template_crud(service: WorkflowsService) -> None:
    template = {
        "metadata": {"name": "contract-wft"},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "container": {"image": "busybox", "command": ["echo", "v1"]}}],
        },
    }
    created = service.create_workflow_template(WorkflowTemplateCreateRequest(template=template))
    assert created.metadata.name == "contract-wft"
    with pytest.raises(AlreadyExists):
        service.create_workflow_template(WorkflowTemplateCreateRequest(template=template))
    names = [t.metadata.name for t in service.list_workflow_templates().items or []]
    assert "contract-wft" in names
    fetched = service.get_workflow_template("contract-wft")
    template["spec"]["templates"][0]["container"]["command"] = ["echo", "v2"]
    template["metadata"]["resourceVersion"] = fetched.metadata.resource_version
    updated = service.update_workflow_template(
        "contract-wft", WorkflowTemplateUpdateRequest(template=template)
    )
    assert updated.spec.templates[0].container.command == ["echo", "v2"]
    run = submit(
        service,
        {
            "metadata": {"name": "contract-from-wft"},
            "spec": {"workflowTemplateRef": {"name": "contract-wft"}},
        },
    )
    wf = wait_for(service, run)
    assert wf["status"]["phase"] == "Succeeded" and pod_nodes(wf)[0]["outputs"]["result"] == "v2"
    service.delete_workflow_template("contract-wft")
    with pytest.raises(NotFound):
        service.get_workflow_template("contract-wft")


def test_bad_token_is_401(info: StackInfo) -> None:
    service = WorkflowsService(host=info.argo_server_url, token="wrong", namespace="galaxy", verify_ssl=False)
    with pytest.raises(Unauthorized):
        service.list_workflows()
    anonymous = requests.get(info.argo_server_url + "/api/v1/workflows/galaxy", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == 16
