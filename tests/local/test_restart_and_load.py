"""Restart survival, concurrency, and the `galaxy-argo local` commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from hera.workflows.service import WorkflowsService

from galaxy_argo.local.stack import EmbeddedStack
from tests.conftest import SHARED, free_port, serve_command, wait_until
from tests.local.conftest import has_running_pod, pod_nodes, submit, wait_for

pytestmark = pytest.mark.engine


def sleeper(name: str, seconds: int, retry: bool) -> dict[str, Any]:
    template: dict[str, Any] = {
        "name": "main",
        "container": {
            "image": "busybox",
            "command": ["sh", "-c"],
            "args": [f"sleep {seconds}; echo finished"],
        },
    }
    if retry:
        template["retryStrategy"] = {"limit": "2", "retryPolicy": "Always", "backoff": {"duration": "1s"}}
    return {"metadata": {"name": name}, "spec": {"entrypoint": "main", "templates": [template]}}


def service_for(stack: EmbeddedStack) -> WorkflowsService:
    info = stack.info()
    return WorkflowsService(host=info.argo_server_url, token=info.token, namespace=info.namespace)


def test_engine_restart_keeps_workflows_and_reports_lost_pods(tmp_path: Path) -> None:
    first = EmbeddedStack(tmp_path, max_pods=4).start()
    try:
        service = service_for(first)
        done = submit(service, sleeper("before-restart", 0, retry=False))
        wait_for(service, done)
        submit(service, sleeper("with-retry", 2, retry=True))
        submit(service, sleeper("without-retry", 30, retry=False))

        wait_until(
            lambda: all(has_running_pod(service, n) for n in ("with-retry", "without-retry")),
            60,
            "pods to run",
        )
    finally:
        first.stop()  # the server dies mid-run; its pods go with it

    second = EmbeddedStack(tmp_path, max_pods=4).start()
    try:
        service = service_for(second)
        assert wait_for(service, "before-restart")["status"]["phase"] == "Succeeded"
        retried = wait_for(service, "with-retry", timeout=60)
        assert retried["status"]["phase"] == "Succeeded"
        attempts = sorted(pod_nodes(retried), key=lambda n: n["name"])
        assert attempts[0]["phase"] == "Error" and attempts[0]["message"] == "pod deleted"
        assert attempts[-1]["phase"] == "Succeeded"
        lost = wait_for(service, "without-retry", timeout=30)
        assert lost["status"]["phase"] == "Error"
        assert pod_nodes(lost)[0]["message"] == "pod deleted"
    finally:
        second.stop()


def test_fifty_concurrent_workflows_all_finish(service: WorkflowsService) -> None:
    names = [
        submit(
            service,
            {
                "metadata": {"name": f"load-{i:02d}", "labels": {"suite": "load"}},
                "spec": {
                    "entrypoint": "main",
                    "templates": [
                        {
                            "name": "main",
                            "container": {"image": "busybox", "command": ["sh", "-c"], "args": [f"echo {i}"]},
                        }
                    ],
                },
            },
        )
        for i in range(50)
    ]

    def all_done() -> list[Any] | None:
        items = service.list_workflows(label_selector="suite=load").items or []
        phases = [w.status.phase if w.status else None for w in items]
        return (
            phases
            if len(phases) == 50 and all(p in ("Succeeded", "Failed", "Error") for p in phases)
            else None
        )

    phases = wait_until(all_done, 300, "50 workflows to finish")
    assert phases == ["Succeeded"] * 50
    results = {service.get_workflow(n).status.nodes[n].outputs.result for n in names}  # type: ignore[union-attr]
    assert results == {str(i) for i in range(50)}


def cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "galaxy_argo.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def test_local_run_prints_progress_and_the_phase_last(tmp_path: Path) -> None:
    result = cli(
        "local", "run", "--state-dir", str(tmp_path), str(SHARED / "argo" / "examples" / "dag-diamond.yaml")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "Phase: Succeeded"
    assert any("Pod" in line and " D " in f" {line} " for line in lines)
    failing = tmp_path / "fail.yaml"
    failing.write_text(
        json.dumps(
            sleeper("x", 0, False) | {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow"}
        ).replace("sleep 0", "exit 4")
    )
    result = cli("local", "run", "--state-dir", str(tmp_path / "2"), str(failing))
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1] == "Phase: Failed"


def test_local_serve_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(serve_command(tmp_path, port), stdout=subprocess.DEVNULL)
    try:
        server_json = tmp_path / "server.json"
        wait_until(server_json.exists, 60, "server.json")
        info = json.loads(server_json.read_text())
        assert info["argo_server_url"] == f"http://127.0.0.1:{port}"
        assert oct(server_json.stat().st_mode & 0o777) == "0o600"
        response = requests.get(
            f"{info['argo_server_url']}/api/v1/workflows/galaxy",
            headers={"Authorization": f"Bearer {info['token']}"},
            timeout=10,
        )
        assert response.status_code == 200 and response.json()["items"] == []
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    weed = tmp_path / "seaweedfs" / "weed.log"
    assert weed.exists()
    children = subprocess.run(["pgrep", "-f", f"weed mini -dir={tmp_path}"], capture_output=True, text=True)
    assert children.stdout.strip() == ""
    assert os.path.exists(tmp_path / "credentials.json")


def test_server_killed_with_sigkill_mid_run_recovers(tmp_path: Path) -> None:
    command = serve_command(tmp_path, free_port())
    with (tmp_path / "serve.log").open("ab") as log:
        first = subprocess.Popen(command, stdout=log, stderr=log)
        try:
            wait_until((tmp_path / "server.json").exists, 60, "server.json")
            info = json.loads((tmp_path / "server.json").read_text())
            service = WorkflowsService(host=info["argo_server_url"], token=info["token"], namespace="galaxy")
            name = submit(service, sleeper("killed-mid-run", 3, retry=True))
            wait_until(lambda: has_running_pod(service, name), 60, "the pod to run")
        finally:
            first.kill()  # no atexit, no cleanup: pods and SeaweedFS are left as a crash leaves them
            first.wait(timeout=30)
        (tmp_path / "server.json").unlink()
        second = subprocess.Popen(command, stdout=log, stderr=log)
        try:
            wait_until((tmp_path / "server.json").exists, 60, "server.json after restart")
            wf = wait_for(service, name, timeout=90)
            assert wf["status"]["phase"] == "Succeeded", (tmp_path / "serve.log").read_text()[-3000:]
            attempts = sorted(pod_nodes(wf), key=lambda n: n["name"])
            assert attempts[0]["message"] == "pod deleted" and attempts[-1]["phase"] == "Succeeded"
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0, (tmp_path / "serve.log").read_text()[-3000:]
    leftovers = subprocess.run(["pgrep", "-f", f"-dir={tmp_path}"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
