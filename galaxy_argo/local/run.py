"""``galaxy-argo local run``: submit one workflow file to a stack, stream progress, print the end.

Talks to the stack over its REST API (the same way any Argo client does), so it doubles as a
smoke test of the server.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.local.stack import StackInfo

__all__ = ["run_workflow_file"]

_DONE = ("Succeeded", "Failed", "Error")


def _call(info: StackInfo, method: str, path: str, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {info.token}"} if info.token else {}
    response = requests.request(
        method, f"{info.argo_server_url}{path}", headers=headers, timeout=30, **kwargs
    )
    if response.status_code >= 400:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise GalaxyArgoError(f"{method} {path}: HTTP {response.status_code}: {message}")
    return response.json()


def run_workflow_file(
    info: StackInfo, workflow: Path, templates: list[Path], timeout: float = 600, out: Any = sys.stdout
) -> str:
    """Register ``templates``, submit ``workflow``, print node changes and the final phase; return it."""
    ns = info.namespace
    for path in templates:
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "WorkflowTemplate":
                document.setdefault("metadata", {}).pop("namespace", None)
                _call(info, "POST", f"/api/v1/workflow-templates/{ns}", json={"template": document})
                print(f"registered WorkflowTemplate {document['metadata']['name']}", file=out)
    document = yaml.safe_load(workflow.read_text())
    if not isinstance(document, dict) or document.get("kind") != "Workflow":
        raise GalaxyArgoError(f"{workflow}: expected a Workflow")
    document.setdefault("metadata", {}).pop("namespace", None)
    created = _call(info, "POST", f"/api/v1/workflows/{ns}", json={"workflow": document})
    name = created["metadata"]["name"]
    print(f"submitted {name}", file=out)
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    wf = created
    while time.monotonic() < deadline:
        wf = _call(info, "GET", f"/api/v1/workflows/{ns}/{name}")
        status = wf.get("status") or {}
        for node in sorted((status.get("nodes") or {}).values(), key=lambda n: n.get("startedAt", "")):
            key = f"{node.get('phase')}:{node.get('message', '')}"
            if seen.get(node["id"]) != key:
                seen[node["id"]] = key
                message = f"  {node.get('message')}" if node.get("message") else ""
                print(
                    f"  {node.get('type', ''):9} {node.get('displayName', ''):30} "
                    f"{node.get('phase')}{message}",
                    file=out,
                )
        if status.get("phase") in _DONE:
            break
        time.sleep(0.2)
    status = wf.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase not in _DONE:
        print(f"timed out after {timeout:.0f} s", file=out)
    if status.get("message"):
        print(f"Message: {status['message']}", file=out)
    print(f"Phase: {phase}", file=out)
    return str(phase)
