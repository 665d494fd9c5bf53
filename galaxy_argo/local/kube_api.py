"""The Kubernetes API paths of Argo's resources, served by the embedded server next to Argo's REST.

Only what `galaxy_argo.clients.kube.KubernetesClient` uses, with the Kubernetes semantics it relies on:
``argoproj.io/v1alpha1`` discovery; create (``dryRun=All`` too), get, list by ``labelSelector``
(whole objects, no ``fields``), merge-patch of ``spec.shutdown`` (what the Argo Server itself
does to stop or terminate), delete, the WorkflowTemplate list, and pod logs. Errors are
``Status`` objects. The handler is the embedded server's request handler (``api``, ``_send``,
``_body``, ``headers``), passed in so this module does not import the server.
"""

from __future__ import annotations

import json
from typing import Any

from galaxy_argo.core.errors import GalaxyArgoError

__all__ = ["ROUTES", "KubeError", "is_kube_path", "shape", "status"]

GROUP_VERSION = "argoproj.io/v1alpha1"
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    409: "AlreadyExists",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
}
_SHUTDOWN = ("Stop", "Terminate")


class KubeError(GalaxyArgoError):
    """An error answered as a Kubernetes ``Status``."""

    def __init__(self, code: int, message: str) -> None:
        """``code`` is the HTTP status; the reason follows from it."""
        super().__init__(message)
        self.code = code
        self.message = message


def status(code: int, message: str) -> dict[str, Any]:
    """A Kubernetes ``Status`` body."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": _REASONS.get(code, "Unknown") if code >= 400 else "",
        "code": code,
    }


def is_kube_path(parts: list[str]) -> bool:
    """Whether the URL path segments are the Kubernetes API's (errors then go out as ``Status``)."""
    return parts[:1] == ["apis"] or parts[:3] == ["api", "v1", "namespaces"]


def shape(parts: list[str]) -> str | None:
    """The route key of a Kubernetes path, or ``None``."""
    if parts[:3] == ["apis", "argoproj.io", "v1alpha1"]:
        rest = parts[3:]
        if not rest:
            return "kube:discovery"
        if len(rest) in (3, 4) and rest[0] == "namespaces" and rest[2] in ("workflows", "workflowtemplates"):
            return f"kube:{rest[2]}" + ("/name" if len(rest) == 4 else "")
    if (
        len(parts) == 7
        and parts[:3] == ["api", "v1", "namespaces"]
        and parts[4] == "pods"
        and parts[6] == "log"
    ):
        return "kube:pods/log"
    return None


def discovery(handler: Any, parts: list[str], query: dict[str, str]) -> None:
    verbs = ["create", "delete", "get", "list", "patch", "watch"]
    resources = [
        {"name": plural, "singularName": plural[:-1], "namespaced": True, "kind": kind, "verbs": verbs}
        for plural, kind in (("workflows", "Workflow"), ("workflowtemplates", "WorkflowTemplate"))
    ]
    handler._send(
        200,
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": GROUP_VERSION,
            "resources": resources,
        },
    )


def _list(handler: Any, plural: str, namespace: str, selector: str) -> None:
    items, version = handler.api.store.labelled(plural, namespace, selector)
    kind = {"workflows": "WorkflowList", "workflowtemplates": "WorkflowTemplateList"}[plural]
    handler._send(
        200,
        {
            "apiVersion": GROUP_VERSION,
            "kind": kind,
            "metadata": {"resourceVersion": str(version)},
            "items": items,
        },
    )


def list_workflows(handler: Any, parts: list[str], query: dict[str, str]) -> None:
    _list(handler, "workflows", parts[4], query.get("labelSelector", ""))


def list_templates(handler: Any, parts: list[str], query: dict[str, str]) -> None:
    _list(handler, "workflowtemplates", parts[4], query.get("labelSelector", ""))


def create_workflow(handler: Any, parts: list[str], query: dict[str, str]) -> None:
    namespace = parts[4]
    workflow = handler.api.prepare("workflows", namespace, {"workflow": handler._body()}, "workflow")
    if query.get("dryRun") == "All":
        handler._send(201, workflow)
        return
    created = handler.api.store.create("workflows", workflow)
    handler.api.engine.enqueue(namespace, created["metadata"]["name"])
    handler._send(201, created)


def get_workflow(handler: Any, parts: list[str], query: dict[str, str]) -> None:
    handler._send(200, handler.api.store.get("workflows", parts[4], parts[6]))


def patch_workflow(handler: Any, parts: list[str], query: dict[str, str]) -> None:
    """Only ``{"spec": {"shutdown": "Stop"|"Terminate"}}``, as a merge patch."""
    namespace, name = parts[4], parts[6]
    content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
    if content_type != "application/merge-patch+json":
        raise KubeError(415, f"the embedded server takes merge patches only, not {content_type or 'none'}")
    patch = handler._body()
    strategy = (patch.get("spec") or {}).get("shutdown") if set(patch) == {"spec"} else None
    if set(patch.get("spec") or {}) != {"shutdown"} or strategy not in _SHUTDOWN:
        raise KubeError(
            422,
            f"the embedded server patches only spec.shutdown (Stop or Terminate), not {json.dumps(patch)}",
        )
    handler.api.store.get("workflows", namespace, name)  # 404 first
    handler._send(200, handler.api.engine.shutdown(namespace, name, strategy))


def delete_workflow(handler: Any, parts: list[str], query: dict[str, str]) -> None:
    namespace, name = parts[4], parts[6]
    handler.api.store.get("workflows", namespace, name)
    handler.api.engine.delete(namespace, name)
    handler._send(200, status(200, f"workflow {name} deleted"))


def pod_log(handler: Any, parts: list[str], query: dict[str, str]) -> None:
    """The container's log as plain text; the pod is found among the namespace's workflows."""
    namespace, pod = parts[3], parts[5]
    container = query.get("container", "main")
    engine = handler.api.engine
    for workflow in list(handler.api.store.items("workflows", namespace)):
        name = workflow["metadata"]["name"]
        if not pod.startswith(name):
            continue
        files = engine.log_files(namespace, name).get(pod)
        if files is None:
            continue
        text = "".join(path.read_text(errors="replace") for path in files.get(container, []))
        data = text.encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        return
    raise KubeError(404, f'pods "{pod}" not found')


ROUTES = {
    ("GET", "kube:discovery"): discovery,
    ("GET", "kube:workflows"): list_workflows,
    ("POST", "kube:workflows"): create_workflow,
    ("GET", "kube:workflows/name"): get_workflow,
    ("PATCH", "kube:workflows/name"): patch_workflow,
    ("DELETE", "kube:workflows/name"): delete_workflow,
    ("GET", "kube:workflowtemplates"): list_templates,
    ("GET", "kube:pods/log"): pod_log,
}
