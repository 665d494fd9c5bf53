"""`ArgoClient`: the runner's one door to an Argo Server (submit, poll, stop, delete, logs).

Submission goes through Hera's ``WorkflowsService``. A 409 on submit is how a crashed handler
finds its own workflow again (deterministic names, galaxy#6246): the existing workflow is adopted
when its labels say it is the same job, refused otherwise. Polling is one LIST per cycle with a
label selector and a ``fields`` projection, parsed as plain JSON (no Hera models: at 10,000
watched jobs that parsing would dominate). Logs are read with plain HTTP because Hera 7.1's
``workflow_logs`` cannot parse Argo's newline-delimited JSON (DESIGN.md quirk 1).

Errors are translated in one place (`_translate`): unreachable or 5xx -> `ArgoUnavailable`
(temporary: the runner keeps the job and tries again), 401/403 -> `ArgoAuthError` naming the
param to fix, other 4xx -> `ArgoError` with Argo's own message. Tokens never appear in messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from hera import exceptions as hera_exceptions

from galaxy_argo.core._hera import WorkflowsService
from galaxy_argo.core._hera import models as m
from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.core.naming import LABEL_PREFIX

__all__ = [
    "LIGHT_FIELDS",
    "adopt",
    "refused_error",
    "ArgoAuthError",
    "ArgoClient",
    "ArgoConflict",
    "ArgoError",
    "ArgoUnavailable",
    "Workflows",
]

#: What a poll cycle needs of every watched workflow; nodes only for those that changed.
LIGHT_FIELDS = ",".join(
    f"items.{f}"
    for f in (
        "metadata.name",
        "metadata.labels",
        "status.phase",
        "status.message",
        "status.startedAt",
        "status.finishedAt",
        "status.progress",
        "status.conditions",
    )
)
_IDENTITY = (f"{LABEL_PREFIX}/instance", f"{LABEL_PREFIX}/job-id", f"{LABEL_PREFIX}/attempt")


def adopt(name: str, mine: Mapping[str, str], existing: Mapping[str, Any] | None, namespace: str) -> None:
    """Accept the workflow a create found already there only if it is this job's (galaxy#6246).

    Raises:
        ArgoConflict: It cannot be read back, or its identity labels are another job's.
    """
    if existing is None:
        raise ArgoConflict(f"workflow {name} was reported to exist but cannot be read back")
    theirs = existing["metadata"].get("labels") or {}
    if any(mine.get(label) != theirs.get(label) for label in _IDENTITY):
        raise ArgoConflict(
            f"a workflow named {name} exists in namespace {namespace!r} but belongs to another job "
            f"(labels {', '.join(f'{k}={theirs.get(k)}' for k in _IDENTITY)}): "
            "is another Galaxy using the same instance name?"
        )


def refused_error(
    where: str, status: int | None, action: str, message: str, namespace: str, credentials: tuple[str, str]
) -> ArgoError:
    """The error for an HTTP answer ``status`` to ``action``, the same for every backend.

    ``credentials`` names what was refused on a 401 and the param to check, e.g. ("the token",
    "the destination param argo_token").
    """
    if status == 401:
        what, param = credentials
        return ArgoAuthError(f"{where} refused {what} ({action}): check {param}")
    if status == 403:
        return ArgoAuthError(
            f"{where} forbids {action} in namespace {namespace!r}: check the namespace param "
            "and the runner's Role (workflows create/get/list/watch/delete/patch)"
        )
    if status is not None and status >= 500:
        return ArgoUnavailable(f"{where} failed ({action}): {message}; the runner retries")
    return ArgoError(f"{where} refused {action}: {message}")


class ArgoError(GalaxyArgoError):
    """The Argo Server refused a request; the message carries Argo's reason."""


class ArgoUnavailable(ArgoError):
    """The Argo Server cannot be reached or failed (temporary: try again later)."""


class ArgoAuthError(ArgoError):
    """The Argo Server refused the token or the namespace (permanent until the config is fixed)."""


class ArgoConflict(ArgoError):
    """A workflow of that name exists and belongs to another job."""


class Workflows(Protocol):
    """What the runner and the doctor need of a cluster; `ArgoClient` and `KubernetesClient` are it.

    Errors are `ArgoError`s: `ArgoUnavailable` for what may pass, `ArgoAuthError` for
    configuration, `ArgoConflict` for a name taken by another job.
    """

    namespace: str
    requests_sent: int

    def submit(self, workflow: m.Workflow | Mapping[str, Any]) -> tuple[str, bool]:
        """Create; (name, adopted)."""

    def get(self, name: str, fields: str = "") -> dict[str, Any] | None:
        """The workflow, or ``None``."""

    def poll(self, label_selector: str, fields: str = ...) -> dict[str, dict[str, Any]]:
        """Name -> projected workflow, in one request."""

    def stop(self, name: str, message: str = "") -> bool:
        """Stop; ``False`` if gone."""

    def terminate(self, name: str) -> bool:
        """Terminate; ``False`` if gone."""

    def delete(self, name: str) -> bool:
        """Delete; ``False`` if gone."""

    def logs(self, name: str, container: str = "main", pod: str = "") -> Iterator[tuple[str, str]]:
        """(pod, line)."""

    def version(self) -> dict[str, Any]:
        """What answers."""

    def dry_run(self, workflow: Mapping[str, Any]) -> None:
        """Create without storing."""

    def template_names(self) -> list[str]:
        """WorkflowTemplates in the namespace."""

    def close(self) -> None:
        """Release connections."""


@dataclass
class ArgoClient:
    """One Argo Server and namespace."""

    base_url: str
    token: str = ""
    namespace: str = "galaxy"
    verify_tls: bool = True
    timeout: float = 30.0
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    #: HTTP requests sent (Hera's and ours share the session), for tests and benchmarks.
    requests_sent: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        """Prepare the Hera service and the raw session with the same credentials."""
        self.session.hooks["response"].append(self._count)
        token = self.token.strip()
        self._auth = (token if token.lower().startswith("bearer ") else f"Bearer {token}") if token else ""
        self.session.headers.update({"Authorization": self._auth} if self._auth else {})
        self.session.trust_env = False  # never send loopback or cluster traffic through a proxy
        self._service = WorkflowsService(
            host=self.base_url,
            token=token or None,
            namespace=self.namespace,
            verify_ssl=self.verify_tls,
            session=self.session,
        )

    def __repr__(self) -> str:
        return f"ArgoClient({self.base_url!r}, namespace={self.namespace!r})"

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.requests_sent += 1

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    # -- errors ---------------------------------------------------------------------------------

    def _translate(self, err: Exception, action: str) -> ArgoError:
        where = f"Argo Server at {self.base_url}"
        text = str(err).replace(self.token, "<token>") if self.token else str(err)
        if isinstance(err, requests.ConnectionError | requests.Timeout):
            return ArgoUnavailable(
                f"{where} is unreachable ({action}): {type(err).__name__}; the runner retries"
            )
        status = getattr(getattr(err, "response", None), "status_code", None)
        if isinstance(err, hera_exceptions.Unauthorized):
            status = 401
        elif isinstance(err, hera_exceptions.Forbidden):
            status = 403
        elif isinstance(err, hera_exceptions.InternalServerError):
            status = 500
        refused = "the token", "the destination param argo_token"
        return refused_error(where, status, action, text, self.namespace, refused)

    def _raw(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(
                method, f"{self.base_url}{path}", timeout=self.timeout, verify=self.verify_tls, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout) as err:
            raise self._translate(err, f"{method} {path}") from None
        if response.status_code >= 400 and response.status_code != 404:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text[:500]
            error = requests.HTTPError(message, response=response)
            raise self._translate(error, f"{method} {path}") from None
        return response

    # -- operations -----------------------------------------------------------------------------

    def submit(self, workflow: m.Workflow | Mapping[str, Any]) -> tuple[str, bool]:
        """Create the workflow; return (name, adopted). Adopts an existing one of the same job.

        The runner passes the model Hera built, so the body is not validated a second time (a fifth
        of the compile-to-request cost); a mapping (a YAML file, a test) is validated here.
        """
        model = workflow if isinstance(workflow, m.Workflow) else m.Workflow.model_validate(dict(workflow))
        name = str(model.metadata.name)
        try:
            created = self._service.create_workflow(m.WorkflowCreateRequest(workflow=model))
            return str(created.metadata.name), False
        except hera_exceptions.AlreadyExists:
            pass
        except (hera_exceptions.HeraException, requests.RequestException) as err:
            raise self._translate(err, f"submitting workflow {name}") from None
        adopt(name, model.metadata.labels or {}, self.get(name), self.namespace)
        return name, True

    def version(self) -> dict[str, Any]:
        """The server's ``/api/v1/version`` (no namespace, no permission needed beyond the token)."""
        return dict(self._raw("GET", "/api/v1/version").json())

    def dry_run(self, workflow: Mapping[str, Any]) -> None:
        """Ask the server to create ``workflow`` without storing it: checks the body and the Role."""
        self._raw(
            "POST",
            f"/api/v1/workflows/{self.namespace}",
            json={"namespace": self.namespace, "workflow": workflow, "serverDryRun": True},
        )

    def template_names(self) -> list[str]:
        """Names of the WorkflowTemplates in the namespace."""
        response = self._raw("GET", f"/api/v1/workflow-templates/{self.namespace}")
        return [item["metadata"]["name"] for item in response.json().get("items") or []]

    def get(self, name: str, fields: str = "") -> dict[str, Any] | None:
        """The workflow as JSON, or ``None`` when it does not exist."""
        params = {"fields": fields} if fields else None
        response = self._raw("GET", f"/api/v1/workflows/{self.namespace}/{name}", params=params)
        if response.status_code == 404:
            return None
        return response.json()

    def poll(self, label_selector: str, fields: str = LIGHT_FIELDS) -> dict[str, dict[str, Any]]:
        """Every workflow matching the selector, projected: one LIST request."""
        response = self._raw(
            "GET",
            f"/api/v1/workflows/{self.namespace}",
            params={"listOptions.labelSelector": label_selector, "fields": fields},
        )
        if response.status_code == 404:
            raise ArgoAuthError(
                f"namespace {self.namespace!r} not found at {self.base_url}: check the namespace param"
            )
        items = response.json().get("items") or []
        return {item["metadata"]["name"]: item for item in items}

    def stop(self, name: str, message: str = "") -> bool:
        """Stop (exit handlers still run); ``False`` if the workflow no longer exists."""
        response = self._raw(
            "PUT",
            f"/api/v1/workflows/{self.namespace}/{name}/stop",
            json={"name": name, "namespace": self.namespace, "message": message},
        )
        return response.status_code != 404

    def terminate(self, name: str) -> bool:
        """Terminate at once; ``False`` if the workflow no longer exists."""
        response = self._raw(
            "PUT",
            f"/api/v1/workflows/{self.namespace}/{name}/terminate",
            json={"name": name, "namespace": self.namespace},
        )
        return response.status_code != 404

    def delete(self, name: str) -> bool:
        """Delete; ``False`` if it was already gone."""
        return self._raw("DELETE", f"/api/v1/workflows/{self.namespace}/{name}").status_code != 404

    def logs(self, name: str, container: str = "main", pod: str = "") -> Iterator[tuple[str, str]]:
        """(pod name, line) of a workflow's logs, from Argo's newline-delimited JSON stream."""
        params = {"logOptions.container": container}
        if pod:
            params["podName"] = pod
        response = self._raw("GET", f"/api/v1/workflows/{self.namespace}/{name}/log", params=params)
        if response.status_code == 404:
            return
        for line in response.text.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line).get("result") or {}
            yield str(entry.get("podName", "")), str(entry.get("content", ""))
