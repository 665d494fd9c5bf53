"""Workflows as Kubernetes custom resources, for clusters with Argo's controller but no Argo Server.

Same operations and errors as `galaxy_argo.clients.argo.ArgoClient`, through the ``kubernetes`` client's
``CustomObjectsApi`` on ``argoproj.io/v1alpha1``:

- stop and terminate are what the Argo Server does itself: a merge patch of ``spec.shutdown``;
- the Kubernetes API has no ``fields`` projection, so LIST returns whole workflows; they are
  projected here to the same fields, so the runner holds what it holds with the Argo Server;
- the controller may store a big ``status.nodes`` gzipped and base64-encoded in
  ``status.compressedNodes`` (the Argo Server expands it for its clients); `expand_nodes` does here;
- logs come from the pods, whose names follow Argo's (`galaxy_argo.core.metrics.pod_name`).
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from galaxy_argo.clients.argo import (
    LIGHT_FIELDS,
    ArgoAuthError,
    ArgoError,
    ArgoUnavailable,
    adopt,
    refused_error,
)
from galaxy_argo.core._hera import models as m
from galaxy_argo.core.fields import item_fields, project_fields
from galaxy_argo.core.metrics import pod_name as pod_name_of
from galaxy_argo.core.metrics import pod_nodes

__all__ = ["IN_CLUSTER", "KubernetesClient", "expand_nodes"]

#: The ``kubeconfig`` value meaning "the service account of the pod Galaxy runs in".
IN_CLUSTER = "in-cluster"
GROUP, VERSION = "argoproj.io", "v1alpha1"


def expand_nodes(workflow: dict[str, Any]) -> dict[str, Any]:
    """Move ``status.compressedNodes`` (gzip + base64 JSON, as the controller writes) to ``nodes``.

    Raises:
        ArgoError: The compressed nodes cannot be decoded.
    """
    status = workflow.get("status") or {}
    packed = status.get("compressedNodes")
    if packed and not status.get("nodes"):
        try:
            status["nodes"] = json.loads(gzip.decompress(base64.b64decode(packed)))
        except (ValueError, OSError) as err:
            name = (workflow.get("metadata") or {}).get("name")
            raise ArgoError(f"workflow {name}: status.compressedNodes cannot be decoded: {err}") from None
        del status["compressedNodes"]
    return workflow


@dataclass
class KubernetesClient:
    """One Kubernetes API server (from a kubeconfig, or in-cluster) and namespace."""

    kubeconfig: str
    context: str = ""
    namespace: str = "galaxy"
    timeout: float = 30.0
    #: HTTP requests sent, for tests and benchmarks that count them.
    requests_sent: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        """Load the configuration now, so a bad kubeconfig fails at start with its path."""
        configuration = k8s.Configuration()
        try:
            if self.kubeconfig == IN_CLUSTER:
                k8s_config.load_incluster_config(client_configuration=configuration)
            else:
                k8s_config.load_kube_config(
                    config_file=self.kubeconfig,
                    context=self.context or None,
                    client_configuration=configuration,
                )
        except (ConfigException, OSError, ValueError, TypeError) as err:
            raise ArgoAuthError(
                f"kubeconfig {self.kubeconfig!r}: {err}: check the kubeconfig param"
            ) from None
        configuration.retries = False  # the runner retries on its own schedule
        configuration.proxy = None  # never send cluster traffic through an environment proxy
        self.server = configuration.host
        self._api_client = k8s.ApiClient(configuration)
        self._objects = k8s.CustomObjectsApi(self._api_client)
        self._core = k8s.CoreV1Api(self._api_client)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KubernetesClient({self.server!r}, namespace={self.namespace!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._api_client.close()

    # -- errors ---------------------------------------------------------------------------------

    def _call(
        self, action: str, method: Any, *args: Any, none_on: tuple[int, ...] = (404,), **kwargs: Any
    ) -> Any:
        """One API request, its errors translated like the Argo Server's; ``none_on`` give ``None``."""
        with self._lock:
            self.requests_sent += 1
        try:
            return method(*args, _request_timeout=self.timeout, **kwargs)
        except k8s.ApiException as err:
            if err.status in none_on:
                return None
            raise self._translate(err, action) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise ArgoUnavailable(
                f"Kubernetes API at {self.server} is unreachable ({action}): {type(err).__name__}; "
                "the runner retries"
            ) from None

    def _translate(self, err: k8s.ApiException, action: str) -> ArgoError:
        where = f"Kubernetes API at {self.server}"
        try:
            message = json.loads(err.body or "{}").get("message") or err.reason
        except ValueError:
            message = err.reason
        refused = "the credentials", "the kubeconfig param"
        return refused_error(where, err.status, action, str(message), self.namespace, refused)

    def _path(self, plural: str = "workflows") -> tuple[str, str, str, str]:
        return GROUP, VERSION, self.namespace, plural

    # -- operations -----------------------------------------------------------------------------

    def submit(self, workflow: m.Workflow | Mapping[str, Any]) -> tuple[str, bool]:
        """Create the workflow resource; return (name, adopted), as `ArgoClient.submit`."""
        body = _body(workflow)
        name = str(body["metadata"]["name"])
        create = self._objects.create_namespaced_custom_object
        if self._call(f"submitting workflow {name}", create, *self._path(), body, none_on=(409,)) is not None:
            return name, False
        adopt(name, body["metadata"].get("labels") or {}, self.get(name), self.namespace)
        return name, True

    def version(self) -> dict[str, Any]:
        """Whether the API serves Argo's Workflow resource (the CRDs are installed)."""
        resources = self._call(
            "reading the argoproj.io/v1alpha1 API", self._objects.get_api_resources, GROUP, VERSION
        )
        names = {r.name for r in (resources.resources if resources else [])}
        if "workflows" not in names:
            raise ArgoError(
                f"Kubernetes API at {self.server} has no argoproj.io/v1alpha1 workflows: install Argo"
            )
        return {"version": "argoproj.io/v1alpha1 (Kubernetes API)"}

    def dry_run(self, workflow: Mapping[str, Any]) -> None:
        """Server-side dry run of a create: checks the body and the Role."""
        self._call(
            "creating a workflow (dry run)",
            self._objects.create_namespaced_custom_object,
            *self._path(),
            _body(workflow),
            dry_run="All",
        )

    def template_names(self) -> list[str]:
        """Names of the WorkflowTemplates in the namespace."""
        listed = self._call(
            "listing workflow templates",
            self._objects.list_namespaced_custom_object,
            *self._path("workflowtemplates"),
        )
        return [item["metadata"]["name"] for item in (listed or {}).get("items") or []]

    def get(self, name: str, fields: str = "") -> dict[str, Any] | None:
        """The workflow with its nodes expanded (projected to ``fields`` if given), or ``None``."""
        found = self._call(
            f"reading workflow {name}", self._objects.get_namespaced_custom_object, *self._path(), name
        )
        if found is None:
            return None
        workflow = expand_nodes(dict(found))
        return project_fields(workflow, fields) if fields else workflow

    def poll(self, label_selector: str, fields: str = LIGHT_FIELDS) -> dict[str, dict[str, Any]]:
        """Every workflow matching the selector: one LIST, projected here to ``fields``' items."""
        listed = self._call(
            "listing workflows",
            self._objects.list_namespaced_custom_object,
            *self._path(),
            label_selector=label_selector,
        )
        if listed is None:
            raise ArgoAuthError(
                f"namespace {self.namespace!r} not found at {self.server}: check the namespace param"
            )
        per_item = item_fields(fields)
        items = listed.get("items") or []
        return {
            item["metadata"]["name"]: project_fields(item, per_item) if per_item else expand_nodes(item)
            for item in items
        }

    def _shutdown(self, name: str, strategy: str) -> bool:
        patched = self._call(
            f"setting spec.shutdown={strategy} on workflow {name}",
            self._objects.patch_namespaced_custom_object,
            *self._path(),
            name,
            {"spec": {"shutdown": strategy}},
        )
        return patched is not None

    def stop(self, name: str, message: str = "") -> bool:
        """``spec.shutdown: Stop`` (exit handlers run); ``False`` if the workflow is gone.

        The Kubernetes API has nowhere to put the Argo Server's stop message; Galaxy keeps its own.
        """
        return self._shutdown(name, "Stop")

    def terminate(self, name: str) -> bool:
        """``spec.shutdown: Terminate``; ``False`` if the workflow is gone."""
        return self._shutdown(name, "Terminate")

    def delete(self, name: str) -> bool:
        """Delete; ``False`` if it was already gone."""
        deleted = self._call(
            f"deleting workflow {name}", self._objects.delete_namespaced_custom_object, *self._path(), name
        )
        return deleted is not None

    def logs(self, name: str, container: str = "main", pod: str = "") -> Iterator[tuple[str, str]]:
        """(pod name, line) of the workflow's pods' logs, read from each pod."""
        workflow = self.get(name)
        if workflow is None:
            return
        for node in pod_nodes(workflow):
            pod_name = pod_name_of(workflow, node)
            if pod_name is None or (pod and pod_name != pod):
                continue
            text = self._call(
                f"reading the logs of pod {pod_name}",
                self._core.read_namespaced_pod_log,
                pod_name,
                self.namespace,
                container=container,
            )
            for line in (text or "").splitlines():
                yield pod_name, line


def _body(workflow: m.Workflow | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(workflow, m.Workflow):
        return dict(workflow.model_dump(by_alias=True, exclude_none=True, mode="json"))
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workflow", **dict(workflow)}
