"""The embedded engine's node bookkeeping: the node table of one reconcile and the walk's context.

Argo keeps a workflow's progress in ``status.nodes`` (``NodeStatus``, see
https://argo-workflows.readthedocs.io/en/latest/fields/#nodestatus): one node per template
invocation, named by its path from the root, with an id hashed from that name, a ``boundaryID``
naming the steps/DAG/retry node it runs inside, and ``children`` linking the tree. Every reconcile
re-walks the templates and finds the nodes of earlier walks here by name (`Walk.by_name`), so a
walk is idempotent: a node that exists is looked at, one that does not is created.

Every function of the walk takes one `Context`: where in the tree its node goes (boundary,
parent), which templates a step's ``template:`` names, the variables in scope, and the `Walk`
(this reconcile's state and the `Cluster`, what the engine lends the walk: stored templates and
pods). The walk recurses through `Context.execute`, so the steps, DAG and retry modules need not
import the dispatcher that calls them (`galaxy_argo.local.controller.reconcile.execute`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.local.artifacts import ArtifactRepositories
from galaxy_argo.local.pods import PodRequest
from galaxy_argo.local.sandbox import ImageMap
from galaxy_argo.local.store import ObjectStore, now_iso

__all__ = [
    "FAILED",
    "FULFILLED",
    "LOST_POD",
    "Cluster",
    "Context",
    "EngineError",
    "Executor",
    "Walk",
    "finish_node",
    "finish_pod",
    "node_id",
    "parse_time",
]

#: Phases after which a node changes no more.
FULFILLED = frozenset({"Succeeded", "Failed", "Error", "Skipped", "Omitted"})
#: Phases that fail the node's parent unless something handles them.
FAILED = frozenset({"Failed", "Error"})
#: The message of a pod that vanished (deleted, or running when the engine stopped), as Argo's.
LOST_POD = "pod deleted"


class EngineError(GalaxyArgoError):
    """A workflow cannot be run by the embedded engine (the message names the reason)."""


def node_id(workflow_name: str, node_name: str) -> str:
    """Argo's node id: the workflow name for the root, else ``<workflow>-<fnv32a(node name)>``."""
    if node_name == workflow_name:
        return workflow_name
    value = 0x811C9DC5
    for byte in node_name.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{workflow_name}-{value}"


def parse_time(text: str | None) -> float:
    """Seconds since the epoch of a status timestamp (``2024-01-02T03:04:05Z``); now if empty."""
    if not text:
        return time.time()
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def finish_node(node: dict[str, Any], phase: str, message: str = "") -> None:
    """Give ``node`` its final ``phase`` (and ``message``), stamping ``finishedAt``."""
    node["phase"] = phase
    node.setdefault("startedAt", now_iso())
    node["finishedAt"] = now_iso()
    if message:
        node["message"] = message
    elif "message" in node and phase == "Succeeded":
        node.pop("message")


def finish_pod(nodes: dict[str, dict[str, Any]], pod: dict[str, Any], phase: str, message: str) -> None:
    """Finish a pod node that will report nothing more, with its unfinished Container nodes."""
    finish_node(pod, phase, message)
    for node in nodes.values():
        if node.get("boundaryID") == pod["id"] and node.get("type") == "Container":
            if node.get("phase") not in FULFILLED:
                finish_node(node, phase, "container deleted" if message == LOST_POD else message)


class Cluster(Protocol):
    """What the engine lends a walk: stored templates, artifact repositories and pods."""

    store: ObjectStore

    @property
    def repos(self) -> ArtifactRepositories:
        """The artifact repositories (ConfigMaps and Secrets) pods load from and save to."""
        ...

    @property
    def image_map(self) -> ImageMap:
        """What runs for each container image."""
        ...

    def workflow_dir(self, namespace: str, name: str) -> Path:
        """The directory of one workflow's pods, claims and logs."""
        ...

    def launch(self, namespace: str, workflow: str, nid: str, request: PodRequest) -> None:
        """Start the pod of node ``nid`` (it waits for a free slot as on a full cluster)."""
        ...

    def launched_pods(self) -> set[str]:
        """Node ids of the pods launched whose results no walk has applied yet."""
        ...

    def cancel_pods(self, workflow_name: str, message: str) -> None:
        """Kill the workflow's pods; their nodes end with ``message``."""
        ...


class Executor(Protocol):
    """The walk's dispatcher (`controller.reconcile.execute`), as `Walk.execute` holds it."""

    def __call__(
        self,
        ctx: Context,
        name: str,
        template: dict[str, Any],
        arguments: dict[str, Any],
        in_retry: bool = False,
    ) -> dict[str, Any] | None:
        """Run (or look at) the node ``name`` for ``template``; ``None`` while it cannot start yet."""
        ...


@dataclass
class Walk:
    """State of one reconcile of one workflow: the workflow, its node table, the engine it runs on."""

    wf: dict[str, Any]
    #: The workflow's spec merged with its workflowTemplateRef's.
    spec: dict[str, Any]
    #: ``workflow.*`` variables.
    global_scope: dict[str, Any]
    #: Node name -> node, for every node of ``wf["status"]["nodes"]``.
    by_name: dict[str, dict[str, Any]]
    cluster: Cluster
    #: Runs one template's node; steps, DAGs and retries recurse through it (`Context.execute`).
    execute: Executor
    running_pods: int = 0
    requeue_in: float | None = None
    #: False while the workflow shuts down (stop, terminate, deadline): only exit handlers start pods.
    new_pods: bool = True

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        """``status.nodes``: node id -> node."""
        return self.wf["status"]["nodes"]

    @property
    def name(self) -> str:
        """The workflow's name."""
        return str(self.wf["metadata"]["name"])

    @property
    def namespace(self) -> str:
        """The workflow's namespace."""
        return str(self.wf["metadata"].get("namespace", ""))

    def soon(self, seconds: float) -> None:
        """Ask for another reconcile in ``seconds`` (the earliest of all asks wins)."""
        self.requeue_in = seconds if self.requeue_in is None else min(self.requeue_in, seconds)

    def add_node(
        self,
        name: str,
        node_type: str,
        template: dict[str, Any] | None,
        boundary: str | None,
        parent: dict[str, Any] | None,
        display: str | None = None,
        phase: str = "Running",
    ) -> dict[str, Any]:
        """The node called ``name``: the existing one, or a new one under ``parent`` in ``boundary``."""
        existing = self.by_name.get(name)
        if existing is not None:
            return existing
        nid = node_id(self.name, name)
        node: dict[str, Any] = {
            "id": nid,
            "name": name,
            "displayName": display or name.rsplit(".", 1)[-1],
            "type": node_type,
            "phase": phase,
            "startedAt": now_iso(),
        }
        if template is not None:
            node["templateName"] = template.get("name", "")
            if template.get("_templateRef"):
                node["templateRef"] = template["_templateRef"]
            # Argo reads it from the template's own `annotations` (not `metadata`, the pod's).
            display_name = (template.get("annotations") or {}).get("workflows.argoproj.io/display-name")
            if display_name:
                node["displayName"] = display_name
        if boundary:
            node["boundaryID"] = boundary
        self.nodes[nid] = node
        self.by_name[name] = node
        if parent is not None:
            children = parent.setdefault("children", [])
            if nid not in children:
                children.append(nid)
        return node


@dataclass(frozen=True)
class Context:
    """Where in the tree a template runs and what it sees: what every function of the walk takes."""

    walk: Walk
    #: Template name -> template for a step's ``template:`` (the workflow's, or a WorkflowTemplate's).
    templates: dict[str, dict[str, Any]]
    #: Id of the steps, DAG or retry node the next node runs inside (its ``boundaryID``).
    boundary: str | None = None
    #: The node the next node becomes a child of.
    parent: dict[str, Any] | None = None
    #: Variables for ``{{...}}``: ``workflow.*``, ``inputs.*``, ``steps.*``/``tasks.*``, ``item``.
    scope: dict[str, Any] = field(default_factory=dict)

    def execute(
        self, name: str, template: dict[str, Any], arguments: dict[str, Any], in_retry: bool = False
    ) -> dict[str, Any] | None:
        """Run (or look at) the node ``name`` for ``template`` here; ``None`` while it cannot start yet.

        ``in_retry``: the node is an attempt of a Retry node (its retryStrategy is not applied again).
        """
        return self.walk.execute(self, name, template, arguments, in_retry)

    def add_node(
        self,
        name: str,
        node_type: str,
        template: dict[str, Any] | None,
        display: str | None = None,
        phase: str = "Running",
    ) -> dict[str, Any]:
        """The node called ``name`` here (created under `parent`, inside `boundary`, if new)."""
        return self.walk.add_node(name, node_type, template, self.boundary, self.parent, display, phase)

    def inside(self, node: dict[str, Any]) -> Context:
        """This context for the children of ``node``: inside its boundary, under it."""
        return replace(self, boundary=node["id"], parent=node)

    def under(self, parent: dict[str, Any]) -> Context:
        """This context with ``parent`` as the parent of the next nodes (same boundary)."""
        return replace(self, parent=parent)

    def seeing(self, scope: dict[str, Any]) -> Context:
        """This context with ``scope`` as the variables (the dict itself, not a copy)."""
        return replace(self, scope=scope)
