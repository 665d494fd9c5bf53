"""Pods that talk to S3 themselves: the host's network, env from Secrets, identities limited by bucket.

What an object-store-native Galaxy job needs from the engine, on the session's stack: its pods
share the host's network (as ``hostNetwork`` pods), take credentials from a Secret through
``secretKeyRef``, and a missing Secret leaves the pod Pending with the kubelet's
``CreateContainerConfigError``, which Argo shows on the node and `outcome_of` classifies. Secret
values never reach the workflow, its stored files or the logs.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from hera.exceptions import BadRequest
from hera.workflows.models import WorkflowCreateRequest, WorkflowStopRequest
from hera.workflows.service import WorkflowsService

from galaxy_argo.core.outcome import OutcomeState, outcome_of, workflow_condition
from galaxy_argo.local.stack import EmbeddedStack
from tests.conftest import wait_until
from tests.local.conftest import READER_SECRET, STORE_BUCKET, VENV_IMAGE, pod_nodes, submit, wait_for

pytestmark = pytest.mark.engine


def one_pod(name: str, template: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", **template}]},
    }


def secret_ref(name: str, key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": name, "key": key}}


def reader_keys(stack: EmbeddedStack) -> dict[str, str]:
    assert stack.s3 is not None
    return stack.s3.secrets()[READER_SECRET]


def workflow_json(service: WorkflowsService, name: str) -> dict[str, Any]:
    return service.get_workflow(name).model_dump(by_alias=True, exclude_none=True, mode="json")


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_pod_reaches_a_listener_on_the_hosts_loopback(service: WorkflowsService) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(60)
        port = listener.getsockname()[1]
        source = (
            "import socket\n"
            f"with socket.create_connection(('127.0.0.1', {port}), timeout=30) as s:\n"
            "    s.sendall(b'hello from the pod\\n')\n"
            "    print(s.makefile().readline().strip())\n"
        )
        name = submit(
            service,
            one_pod(
                "pods-host-network",
                {"script": {"image": "python:3.12", "command": ["python"], "source": source}},
            ),
        )
        connection, _ = listener.accept()  # the pod connecting is the synchronisation
        with connection:
            connection.settimeout(30)
            received = connection.makefile().readline()
            connection.sendall(b"hello from the host\n")
    wf = wait_for(service, name)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert received == "hello from the pod\n"
    assert pod_nodes(wf)[0]["outputs"]["result"] == "hello from the host"


def test_secret_env_reaches_the_container_and_never_the_status_or_the_logs(
    service: WorkflowsService, stack: EmbeddedStack, caplog: pytest.LogCaptureFixture
) -> None:
    keys = reader_keys(stack)
    container = {
        "image": "busybox",
        "command": ["sh", "-c"],
        # the pod proves it has the secret key without printing it
        "args": ['echo "$AWS_ACCESS_KEY_ID $S3_accesskey"; [ "$AWS_SECRET_ACCESS_KEY" = "$S3_secretkey" ]'],
        "env": [
            {"name": "AWS_ACCESS_KEY_ID", "valueFrom": secret_ref(READER_SECRET, "accesskey")},
            {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": secret_ref(READER_SECRET, "secretkey")},
        ],
        "envFrom": [{"secretRef": {"name": READER_SECRET}, "prefix": "S3_"}],
    }
    with caplog.at_level(logging.DEBUG):
        name = submit(service, one_pod("pods-secret-env", {"container": container}))
        wf = wait_for(service, name)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert pod_nodes(wf)[0]["outputs"]["result"] == f"{keys['accesskey']} {keys['accesskey']}"
    secret = keys["secretkey"]
    assert secret not in json.dumps(wf) and secret not in caplog.text
    for stored in ("objects", "pods"):
        assert files_holding(stack.state_dir / stored, secret.encode()) == []


def test_a_pod_with_a_read_only_identity_gets_but_cannot_put(
    service: WorkflowsService, stack: EmbeddedStack
) -> None:
    # The pod runs this environment's Python with boto3, as Galaxy's set-metadata would, and talks to
    # SeaweedFS itself at the address the engine uses, with the keys of the read-only Secret.
    assert stack.s3 is not None
    stack.s3.client().put_object(Bucket=STORE_BUCKET, Key="000/dataset_1.dat", Body=b"in the store\n")
    source = f"""
import json, os
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1",
                  config=Config(s3={{"addressing_style": "path"}}, retries={{"total_max_attempts": 1}}))
got = s3.get_object(Bucket="{STORE_BUCKET}", Key="000/dataset_1.dat")["Body"].read().decode()
try:
    s3.put_object(Bucket="{STORE_BUCKET}", Key="000/dataset_2.dat", Body=b"from the pod")
    put = "allowed"
except ClientError as err:
    put = err.response["Error"]["Code"]
print(json.dumps({{"got": got, "put": put, "key_id": os.environ["AWS_ACCESS_KEY_ID"]}}))
"""
    script = {
        "image": VENV_IMAGE,
        "command": ["python"],
        "source": source,
        "env": [
            {"name": "S3_ENDPOINT", "value": stack.s3.endpoint_url},
            {"name": "AWS_ACCESS_KEY_ID", "valueFrom": secret_ref(READER_SECRET, "accesskey")},
            {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": secret_ref(READER_SECRET, "secretkey")},
        ],
    }
    name = submit(service, one_pod("pods-read-only-identity", {"script": script}))
    wf = wait_for(service, name, timeout=180)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    result = json.loads(pod_nodes(wf)[0]["outputs"]["result"])
    assert result == {
        "got": "in the store\n",
        "put": "AccessDenied",
        "key_id": reader_keys(stack)["accesskey"],
    }


def test_the_read_only_identity_from_the_host(stack: EmbeddedStack) -> None:
    assert stack.s3 is not None
    admin = stack.s3.client()
    admin.put_object(Bucket=STORE_BUCKET, Key="000/dataset_3.dat", Body=b"three")
    keys = reader_keys(stack)
    reader = boto3.session.Session().client(
        "s3",
        endpoint_url=stack.s3.endpoint_url,
        aws_access_key_id=keys["accesskey"],
        aws_secret_access_key=keys["secretkey"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}, proxies={}),
    )
    assert reader.get_object(Bucket=STORE_BUCKET, Key="000/dataset_3.dat")["Body"].read() == b"three"
    listed = reader.list_objects_v2(Bucket=STORE_BUCKET, Prefix="000/")
    assert "000/dataset_3.dat" in [o["Key"] for o in listed["Contents"]]
    for attempt in (
        lambda: reader.put_object(Bucket=STORE_BUCKET, Key="000/dataset_4.dat", Body=b"x"),
        lambda: reader.delete_object(Bucket=STORE_BUCKET, Key="000/dataset_3.dat"),
        lambda: reader.list_objects_v2(Bucket=stack.bucket),  # the artifact bucket is not its
    ):
        with pytest.raises(ClientError) as info:
            attempt()
        assert info.value.response["Error"]["Code"] == "AccessDenied"
    assert admin.get_object(Bucket=STORE_BUCKET, Key="000/dataset_3.dat")["Body"].read() == b"three"


@pytest.mark.parametrize(
    ("secret", "key", "message"),
    [
        ("galaxy-store-keys", "accesskey", 'secret "galaxy-store-keys" not found'),
        (READER_SECRET, "nokey", f"couldn't find key nokey in Secret galaxy/{READER_SECRET}"),
    ],
)
def test_a_missing_secret_leaves_the_pod_pending_as_argo_shows_it(
    service: WorkflowsService, secret: str, key: str, message: str
) -> None:
    # Kubelet never creates the container (CreateContainerConfigError: MESSAGE); Argo 4.1's
    # getPendingReason copies that onto the Pod node, which stays Pending in a Running workflow.
    name = f"pods-missing-{key}"
    container = {
        "image": "busybox",
        "command": ["echo", "never runs"],
        "env": [{"name": "AWS_ACCESS_KEY_ID", "valueFrom": secret_ref(secret, key)}],
    }
    submit(service, one_pod(name, {"container": container}))
    expected = f"CreateContainerConfigError: {message}"

    def pending() -> dict[str, Any] | None:
        wf = workflow_json(service, name)
        pods = pod_nodes(wf) if (wf.get("status") or {}).get("nodes") else []
        return wf if pods and pods[0].get("message") == expected else None

    wf = wait_until(pending, 30, f"{name}'s pod to wait with {expected!r}")
    assert (wf["status"]["phase"], pod_nodes(wf)[0]["phase"]) == ("Running", "Pending")
    assert workflow_condition(wf["status"], "PodRunning") == "False"
    outcome = outcome_of(wf)
    assert outcome.state is OutcomeState.CONTAINER_CONFIG and outcome.state.leaves_workflow_running
    assert outcome.reason == (
        f"the job's pod cannot create its containers: {message} (CreateContainerConfigError); "
        "the Secret and key must exist in the workflow's namespace"
    )
    # what the runner does with such a workflow: stop it
    service.stop_workflow(name, WorkflowStopRequest(name=name))
    wf = wait_for(service, name, timeout=30)
    pod = pod_nodes(wf)[0]
    assert (wf["status"]["phase"], pod["phase"], pod["message"]) == (
        "Failed",
        "Failed",
        "Stopped with strategy 'Stop'",
    )
    assert "result" not in pod.get("outputs", {})


def test_env_sources_other_than_secrets_are_refused_at_submission(service: WorkflowsService) -> None:
    container = {
        "image": "busybox",
        "command": ["true"],
        "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    }
    with pytest.raises(BadRequest, match=r"container.env\[0\] \(POD\): valueFrom.fieldRef is not supported"):
        service.create_workflow(
            WorkflowCreateRequest(
                workflow={
                    **one_pod("pods-fieldref", {"container": container}),
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Workflow",
                }
            )
        )
