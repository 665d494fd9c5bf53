"""Faults around real Galaxy jobs: the Argo Server away at submission and while polling, S3 away
while the results come back. Each time the job waits (Galaxy shows it queued or running), then
ends ok once the endpoint is back, with one workflow and its real output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from galaxy_argo.clients.argo import ArgoClient
from galaxy_argo.core.naming import LABEL_PREFIX
from galaxy_argo.dev.environment import DevEnvironment
from galaxy_argo.dev.galaxy_api import GalaxyAPI
from galaxy_argo.local.server import ArgoAPIServer
from galaxy_argo.local.stack import EmbeddedStack
from tests.faults.proxy import FaultProxy
from tests.galaxy_env import wait_for_galaxy

pytestmark = pytest.mark.galaxy


@contextmanager
def argo_server_down(stack: EmbeddedStack) -> Iterator[None]:
    """The Argo Server gone (connections cut, port closed); the controller keeps running pods."""
    old = stack.server
    assert old is not None and stack.engine is not None and stack.store is not None
    port, token = old.port, old.token
    old.stop()
    try:
        yield
    finally:
        stack.server = ArgoAPIServer(stack.engine, stack.store, port=port, token=token).start()


class HandlerLog:
    """What Galaxy's handler logged since this object was made."""

    def __init__(self, dev: DevEnvironment) -> None:
        assert dev.galaxy is not None
        self.path: Path = dev.galaxy.log_path
        self.offset = self.path.stat().st_size

    def says(self, text: str) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            return text.encode() in handle.read()


def state(api: GalaxyAPI, job_id: str) -> str:
    return str(api.job(job_id, full=False)["state"])


def one_workflow_for(argo: ArgoClient, job: dict[str, object]) -> None:
    name = str(job["external_id"])
    job_label = name.rsplit("-", 1)[-1]
    listed = argo.poll(f"{LABEL_PREFIX}/instance=main,{LABEL_PREFIX}/job-id={job_label}")
    assert list(listed) == [name]


def test_argo_server_down_at_submission(
    api: GalaxyAPI, history: str, dev: DevEnvironment, argo: ArgoClient
) -> None:
    assert dev.stack is not None
    log = HandlerLog(dev)
    with argo_server_down(dev.stack):
        job_id = api.run_tool(history, "argo_sleep", {"seconds": 0})["jobs"][0]["id"]
        wait_for_galaxy(
            lambda: log.says("submission waits for an endpoint"), 90, "the runner to wait for Argo"
        )
        assert state(api, job_id) == "queued"
    job = api.wait_for_job(job_id, timeout=180)
    assert job["state"] == "ok", job
    one_workflow_for(argo, job)


def test_argo_server_down_while_polling(
    api: GalaxyAPI, history: str, dev: DevEnvironment, argo: ArgoClient
) -> None:
    assert dev.stack is not None
    reply = api.run_tool(history, "argo_sleep", {"seconds": 5})
    job_id = reply["jobs"][0]["id"]
    wait_for_galaxy(lambda: state(api, job_id) == "running", 120, "the job to run")
    log = HandlerLog(dev)
    with argo_server_down(dev.stack):
        wait_for_galaxy(lambda: log.says("polling Argo failed, keeping"), 60, "a poll to fail")
        assert state(api, job_id) == "running"
    job = api.wait_for_job(job_id, timeout=180)
    assert job["state"] == "ok", job
    assert api.dataset_content(reply["outputs"][0]["id"]) == b"slept\n"
    one_workflow_for(argo, job)


def test_s3_down_while_results_come_back(
    api: GalaxyAPI, history: str, dev: DevEnvironment, s3_proxy: FaultProxy
) -> None:
    """The pod saved its outputs; Galaxy cannot fetch them for a while: it waits, never ends short."""
    reply = api.run_tool(history, "argo_sleep_proxied", {"seconds": 3})
    job_id = reply["jobs"][0]["id"]
    wait_for_galaxy(lambda: state(api, job_id) == "running", 120, "the job to run")
    log = HandlerLog(dev)
    s3_proxy.down.set()
    try:
        wait_for_galaxy(
            lambda: log.says("collecting results waits for an endpoint"), 120, "a collection retry"
        )
        assert state(api, job_id) == "running"
    finally:
        s3_proxy.down.clear()
    job = api.wait_for_job(job_id, timeout=180)
    assert job["state"] == "ok", job
    assert api.dataset_content(reply["outputs"][0]["id"]) == b"slept\n"


def test_embedded_engine_restarted_mid_run(
    api: GalaxyAPI, history: str, dev: DevEnvironment, argo: ArgoClient
) -> None:
    """Server, controller and S3 restarted on the same state and ports while the tool runs, as
    Argo after a controller restart: the lost pod is an infrastructure failure, retried once."""
    stack = dev.stack
    assert stack is not None and stack.server is not None
    reply = api.run_tool(history, "argo_sleep", {"seconds": 6})
    job_id = reply["jobs"][0]["id"]
    wait_for_galaxy(lambda: state(api, job_id) == "running", 120, "the job to run")
    port = stack.server.port
    stack.stop()  # the pod dies with the engine
    stack.port = port
    stack.start()
    job = api.wait_for_job(job_id, timeout=180)
    assert job["state"] == "ok", job
    assert api.dataset_content(reply["outputs"][0]["id"]) == b"slept\n"
    workflow = argo.get(str(job["external_id"]))
    assert workflow is not None
    pods = sorted(
        (n for n in workflow["status"]["nodes"].values() if n["type"] == "Pod"), key=lambda n: n["name"]
    )
    assert [(p["phase"], p.get("message")) for p in pods][0] == ("Error", "pod deleted")
    assert pods[-1]["phase"] == "Succeeded" and len(pods) == 2
