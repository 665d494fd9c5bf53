"""The Argo Server REST API subset Hera's ``WorkflowsService`` uses, served by the embedded engine.

Paths, bodies and errors follow Argo's ``swagger.json`` (v4.1.2) and its gRPC-gateway error shape
``{"code": <gRPC code>, "message": ...}``: 409 for an existing name, 404 for a missing object,
400 with the JSON path of the first schema error for an invalid workflow, 401 for a missing or
wrong bearer token when the server has one. Logs stream as newline-delimited JSON like Argo's
``/log`` endpoints. See https://argo-workflows.readthedocs.io/en/latest/rest-api/.

The same port also answers the Kubernetes API paths of the Workflow resources
(`galaxy_argo.local.kube_api`), for ``submission: kubernetes``.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import socket
import string
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.core.fields import item_fields, project_fields
from galaxy_argo.local import kube_api
from galaxy_argo.local.controller.admission import refusal
from galaxy_argo.local.controller.engine import Engine, EngineError
from galaxy_argo.local.selectors import LabelSelectorError, match_labels
from galaxy_argo.local.store import AlreadyExists, NotFound, ObjectStore

__all__ = ["ArgoAPIServer", "LabelSelectorError", "match_labels"]

log = logging.getLogger(__name__)

_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 500: 13, 501: 12}
_NAME_CHARS = string.ascii_lowercase + string.digits


class _HTTPError(GalaxyArgoError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ArgoAPIServer:
    """HTTP front of an `Engine` on a loopback port; ``start``/``stop`` or a ``with`` block."""

    def __init__(
        self, engine: Engine, store: ObjectStore, host: str = "127.0.0.1", port: int = 0, token: str = ""
    ) -> None:
        """Bind the socket now (port 0 picks a free one), serve after `start`."""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the embedded server listens on loopback only, not {host!r}")
        self.engine, self.store, self.token = engine, store, token
        handler = type("Handler", (_Handler,), {"api": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        #: Client connections being served (keep-alive ones outlive `serve_forever`).
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:2746``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ArgoAPIServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="argo-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket, and cut open client connections (as a dead server's)."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.connections_lock:
            open_connections = list(self.connections)
        for connection in open_connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler

    def __enter__(self) -> ArgoAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- resources -------------------------------------------------------------------------------

    def prepare(self, kind: str, namespace: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        """The object in ``body[key]`` made ready to store: namespaced, named, validated like Argo does."""
        obj = body.get(key)
        if not isinstance(obj, dict):
            raise _HTTPError(400, f"request body must hold a {key!r} object")
        obj.setdefault("apiVersion", "argoproj.io/v1alpha1")
        obj.setdefault("kind", {"workflows": "Workflow", "workflowtemplates": "WorkflowTemplate"}[kind])
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace") not in (None, "", namespace):
            raise _HTTPError(
                400,
                f"the namespace of the provided object ({meta['namespace']}) does not "
                f"match the namespace sent on the request ({namespace})",
            )
        meta["namespace"] = namespace
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _HTTPError(400, "metadata.name or metadata.generateName is required")
            meta["name"] = meta["generateName"] + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        obj.pop("status", None)
        problem = refusal(obj)
        if problem:
            raise _HTTPError(400, problem)
        return obj


class _Handler(BaseHTTPRequestHandler):
    api: ArgoAPIServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed ACK
    # turns every response into a 40 ms wait (measured: 1,000 GETs took 44 s).
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.api.connections_lock:
            self.api.connections.add(self.connection)

    def finish(self) -> None:
        with self.api.connections_lock:
            self.api.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        log.debug("%s " + format, self.address_string(), *args)

    # plumbing

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            data = json.loads(self.rfile.read(length))
        except json.JSONDecodeError as err:
            raise _HTTPError(400, f"request body is not JSON: {err}") from err
        if not isinstance(data, dict):
            raise _HTTPError(400, "request body must be a JSON object")
        return data

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, lines: Iterator[dict[str, Any]]) -> None:
        body = b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        if not self.api.token:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.removeprefix("Bearer ").strip(), self.api.token)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        # Argo's REST answers errors as gRPC-gateway JSON, the Kubernetes API as a Status.
        kube = kube_api.is_kube_path(parts)

        def fail(status: int, message: str) -> None:
            body = (
                kube_api.status(status, message)
                if kube
                else {"code": _GRPC.get(status, 2), "message": message}
            )
            self._send(status, body)

        try:
            if not self._authorised():
                raise _HTTPError(
                    401, "token not valid: the embedded Argo Server needs 'Authorization: Bearer <token>'"
                )
            route = _ROUTES.get((method, self._shape(parts)))
            if route is None:
                raise _HTTPError(404, f"no route for {method} {url.path}")
            route(self, parts, query)
        except (_HTTPError, kube_api.KubeError) as err:
            fail(err.status if isinstance(err, _HTTPError) else err.code, err.message)
        except NotFound as err:
            fail(404, str(err))
        except AlreadyExists as err:
            fail(409, str(err))
        except (EngineError, LabelSelectorError) as err:
            fail(400, str(err))
        except Exception as err:  # noqa: BLE001 - answer like a server, log the trace
            log.exception("request %s %s failed", method, self.path)
            fail(500, f"internal error: {err}")

    @staticmethod
    def _shape(parts: list[str]) -> str:
        """The route key: ``workflows/ns/name/stop`` and so on, from the URL path segments."""
        kube = kube_api.shape(parts)
        if kube is not None:
            return kube
        if len(parts) < 3 or parts[:2] != ["api", "v1"]:
            return "/".join(parts)
        resource, rest = parts[2], parts[3:]
        if resource == "workflows":
            if len(rest) == 2 and rest[1] == "lint":
                return "workflows/ns/lint"
            shape = {1: "ns", 2: "ns/name", 4: "ns/name/pod/log"}.get(len(rest))
            if len(rest) == 3:
                shape = f"ns/name/{rest[2]}"
            return f"workflows/{shape}"
        if resource == "workflow-templates":
            if len(rest) == 2 and rest[1] == "lint":
                return "workflow-templates/ns/lint"
            return "workflow-templates/" + {1: "ns", 2: "ns/name"}.get(len(rest), "?")
        return "/".join(parts[:3])

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    # routes

    def version(self, parts: list[str], query: dict[str, str]) -> None:
        self._send(200, {"version": "v4.1.2", "platform": "galaxy-argo embedded engine"})

    def create_workflow(self, parts: list[str], query: dict[str, str]) -> None:
        body = self._body()
        wf = self.api.prepare("workflows", parts[3], body, "workflow")
        if body.get("serverDryRun"):
            self._send(200, wf)
            return
        created = self.api.store.create("workflows", wf)
        self.api.engine.enqueue(parts[3], created["metadata"]["name"])
        self._send(200, created)

    def lint_workflow(self, parts: list[str], query: dict[str, str]) -> None:
        self._send(200, self.api.prepare("workflows", parts[3], self._body(), "workflow"))

    def list_workflows(self, parts: list[str], query: dict[str, str]) -> None:
        self._list("workflows", parts[3], query)

    def _list(self, kind: str, namespace: str, query: dict[str, str]) -> None:
        selector = query.get("listOptions.labelSelector", "")
        fields = query.get("fields", "")
        per_item = item_fields(fields)
        if per_item:
            items, version = self.api.store.labelled(
                kind, namespace, selector, lambda obj: project_fields(obj, per_item)
            )
        else:
            items, version = self.api.store.labelled(kind, namespace, selector)
            if fields:
                items = []  # fields that name nothing of the items
        payload: dict[str, Any] = {"metadata": {"resourceVersion": str(version)}, "items": items}
        if fields and not any(f.lstrip("-").startswith("metadata") for f in fields.split(",")):
            payload = {k: v for k, v in payload.items() if k == "items"} | {"metadata": {}}
        self._send(200, payload)

    def get_workflow(self, parts: list[str], query: dict[str, str]) -> None:
        obj = self.api.store.get("workflows", parts[3], parts[4])
        self._send(200, project_fields(obj, query["fields"]) if query.get("fields") else obj)

    def delete_workflow(self, parts: list[str], query: dict[str, str]) -> None:
        self.api.store.get("workflows", parts[3], parts[4])
        self.api.engine.delete(parts[3], parts[4])
        self._send(200, {})

    def workflow_action(self, parts: list[str], query: dict[str, str]) -> None:
        namespace, name, action = parts[3], parts[4], parts[5]
        body = self._body()
        engine = self.api.engine
        if action == "stop":
            wf = engine.shutdown(namespace, name, "Stop", str(body.get("message") or ""))
        elif action == "terminate":
            wf = engine.shutdown(namespace, name, "Terminate")
        elif action == "retry":
            wf = engine.retry(namespace, name)
        else:
            raise _HTTPError(501, f"workflow action {action!r} is not supported by the embedded engine")
        self._send(200, wf)

    def workflow_log(self, parts: list[str], query: dict[str, str]) -> None:
        namespace, name = parts[3], parts[4]
        pod = parts[5] if len(parts) == 7 else query.get("podName", "")
        self.api.store.get("workflows", namespace, name)
        container = query.get("logOptions.container", "main")
        grep = query.get("grep", "")
        files = self.api.engine.log_files(namespace, name)

        def lines() -> Iterator[dict[str, Any]]:
            for pod_name, containers in files.items():
                if pod and pod_name != pod:
                    continue
                for path in containers.get(container, []):
                    for line in path.read_text(errors="replace").splitlines():
                        if grep and grep not in line:
                            continue
                        yield {"result": {"content": line, "podName": pod_name}}

        self._stream(lines())

    # workflow templates

    def create_template(self, parts: list[str], query: dict[str, str]) -> None:
        kind, namespace = "workflowtemplates", parts[3]
        obj = self.api.prepare(kind, namespace, self._body(), "template")
        self._send(200, self.api.store.create(kind, obj))

    def lint_template(self, parts: list[str], query: dict[str, str]) -> None:
        self._send(200, self.api.prepare("workflowtemplates", parts[3], self._body(), "template"))

    def list_templates(self, parts: list[str], query: dict[str, str]) -> None:
        self._list("workflowtemplates", parts[3], query)

    def get_template(self, parts: list[str], query: dict[str, str]) -> None:
        name = parts[-1]
        self._send(200, self.api.store.get("workflowtemplates", parts[3], name))

    def update_template(self, parts: list[str], query: dict[str, str]) -> None:
        kind, namespace, name = "workflowtemplates", parts[3], parts[-1]
        current = self.api.store.get(kind, namespace, name)
        obj = self.api.prepare(kind, namespace, self._body(), "template")
        if obj["metadata"]["name"] != name:
            raise _HTTPError(
                400, f"template name {obj['metadata']['name']!r} does not match the URL ({name!r})"
            )
        obj["metadata"]["uid"] = current["metadata"].get("uid")
        obj["metadata"]["creationTimestamp"] = current["metadata"].get("creationTimestamp")
        self._send(200, self.api.store.replace(kind, obj))

    def delete_template(self, parts: list[str], query: dict[str, str]) -> None:
        self.api.store.delete("workflowtemplates", parts[3], parts[-1])
        self._send(200, {})


_Route = Callable[[_Handler, list[str], dict[str, str]], None]
_ROUTES: dict[tuple[str, str], _Route] = {
    ("GET", "api/v1/version"): _Handler.version,
    ("POST", "workflows/ns"): _Handler.create_workflow,
    ("POST", "workflows/ns/lint"): _Handler.lint_workflow,
    ("GET", "workflows/ns"): _Handler.list_workflows,
    ("GET", "workflows/ns/name"): _Handler.get_workflow,
    ("DELETE", "workflows/ns/name"): _Handler.delete_workflow,
    ("PUT", "workflows/ns/name/stop"): _Handler.workflow_action,
    ("PUT", "workflows/ns/name/terminate"): _Handler.workflow_action,
    ("PUT", "workflows/ns/name/retry"): _Handler.workflow_action,
    ("PUT", "workflows/ns/name/resubmit"): _Handler.workflow_action,
    ("PUT", "workflows/ns/name/suspend"): _Handler.workflow_action,
    ("PUT", "workflows/ns/name/resume"): _Handler.workflow_action,
    ("GET", "workflows/ns/name/log"): _Handler.workflow_log,
    ("GET", "workflows/ns/name/pod/log"): _Handler.workflow_log,
}
_ROUTES.update(
    {
        ("POST", "workflow-templates/ns"): _Handler.create_template,
        ("POST", "workflow-templates/ns/lint"): _Handler.lint_template,
        ("GET", "workflow-templates/ns"): _Handler.list_templates,
        ("GET", "workflow-templates/ns/name"): _Handler.get_template,
        ("PUT", "workflow-templates/ns/name"): _Handler.update_template,
        ("DELETE", "workflow-templates/ns/name"): _Handler.delete_template,
    }
)
_ROUTES.update(kube_api.ROUTES)
