"""The embedded engine's controller: interprets Argo Workflows the way Argo's operator does.

Like ``workflow/controller/operator.go``, every reconcile re-walks the workflow's template tree
from the entrypoint; ``status.nodes`` is the memory between walks. A walk creates the nodes that
can start, launches pods (threads running `galaxy_argo.local.pods.run_pod`), and records the
results the pods reported since the last walk. Because all state is in the stored workflow, a
restarted engine continues where it stopped: pods that were running when it died are reported
lost (``Error``, "pod deleted"), exactly as Argo reports a deleted pod, and the retryStrategy
applies.

Supported: container, script, containerSet, steps (``when``, ``withItems``, ``withParam``, exit
hooks), dag (``depends``, ``dependencies``), inputs/outputs parameters and artifacts,
``templateRef``, ``workflowTemplateRef``, retryStrategy (limit, retryPolicy, expression, backoff),
activeDeadlineSeconds (workflow and template), onExit, parallelism (workflow), stop/terminate/
retry, podGC and ttlStrategy. Anything else is refused at submission with the field named.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.core.naming import argo_pod_name
from galaxy_argo.local.artifacts import ArtifactError, ArtifactRepositories
from galaxy_argo.local.expressions import (
    ExpressionError,
    dependencies_to_depends,
    depends_ready,
    evaluate,
    evaluate_depends,
    evaluate_when,
    substitute,
    substitute_obj,
)
from galaxy_argo.local.pods import PodRequest, PodResult, parse_quantity, run_pod
from galaxy_argo.local.sandbox import ImageMap
from galaxy_argo.local.store import NotFound, ObjectStore, now_iso

__all__ = ["Engine", "EngineError", "node_id"]

log = logging.getLogger(__name__)

FULFILLED = frozenset({"Succeeded", "Failed", "Error", "Skipped", "Omitted"})
FAILED = frozenset({"Failed", "Error"})
_LOST_POD = "pod deleted"
_DEADLINE = "Step exceeded its deadline"
_UNSUPPORTED_TEMPLATE_KINDS = ("resource", "suspend", "http", "plugin", "data")
_NODE_LABELS = {
    "kubernetes.io/os": "linux",
    "beta.kubernetes.io/os": "linux",
    "kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
    "beta.kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(
        os.uname().machine, os.uname().machine
    ),
}


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


def _parse_time(text: str | None) -> float:
    if not text:
        return time.time()
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _fan_in_parameters(results: list[dict[str, Any]]) -> str:
    """Argo's aggregate of a fanned-out step's output parameters: a JSON list of name -> value maps."""
    return json.dumps(
        [
            {p["name"]: p.get("value") for p in (r.get("outputs") or {}).get("parameters") or []}
            for r in results
        ]
    )


def _duration_seconds(text: Any) -> float:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) or a number of seconds."""
    if text in (None, ""):
        return 0.0
    if isinstance(text, int | float) or re.fullmatch(r"[0-9.]+", str(text)):
        return float(text)
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ms|h|m|s)", str(text)):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


@dataclass
class _Walk:
    """State of one reconcile of one workflow."""

    wf: dict[str, Any]
    spec: dict[str, Any]
    global_scope: dict[str, Any]
    by_name: dict[str, dict[str, Any]]
    running_pods: int = 0
    requeue_in: float | None = None
    #: False while the workflow shuts down (stop, terminate, deadline): only exit handlers start pods.
    new_pods: bool = True

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        return self.wf["status"]["nodes"]

    def soon(self, seconds: float) -> None:
        self.requeue_in = seconds if self.requeue_in is None else min(self.requeue_in, seconds)


@dataclass
class _PodHandle:
    request: PodRequest
    thread: threading.Thread
    started: bool = False
    result: PodResult | None = None


def _any_pod_running(nodes: dict[str, Any]) -> bool:
    return any(n.get("type") == "Pod" and n.get("phase") == "Running" for n in nodes.values())


def _upsert_condition(status: dict[str, Any], kind: str, true: bool) -> None:
    """Argo's ``Conditions.UpsertCondition``: one entry per type, others kept.

    ``PodRunning`` is set on every pod reconciliation of a running workflow (True while any of
    its pods runs), ``Completed`` when it ends: clients read them from a LIST without the nodes.
    """
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    conditions.append({"type": kind, "status": "True" if true else "False"})
    status["conditions"] = conditions


@dataclass
class EngineConfig:
    """How the embedded engine runs pods."""

    state_dir: Path
    repos: ArtifactRepositories = field(default_factory=ArtifactRepositories)
    image_map: ImageMap = field(default_factory=ImageMap)
    #: Pods running at once; more wait in Pending as on a full cluster.
    max_pods: int = 4
    #: Seconds between periodic reconciles of running workflows (backoff, deadlines).
    tick_seconds: float = 0.5


class Engine:
    """Runs stored workflows to completion in background threads."""

    def __init__(self, store: ObjectStore, config: EngineConfig) -> None:
        """Prepare (call `start` to run)."""
        self.store = store
        self.config = config
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self._queued: set[tuple[str, str]] = set()
        self._queued_lock = threading.Lock()
        self._wf_locks: dict[tuple[str, str], threading.Lock] = {}
        self._pods: dict[str, _PodHandle] = {}  # node id -> handle
        self._pods_lock = threading.Lock()
        self._slots = threading.Semaphore(config.max_pods)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._requeue_at: dict[tuple[str, str], float] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, workers: int = 2) -> None:
        """Recover running workflows (lost pods) and start the controller threads."""
        self._recover()
        for i in range(workers):
            thread = threading.Thread(target=self._worker, name=f"engine-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        ticker = threading.Thread(target=self._ticker, name="engine-ticker", daemon=True)
        ticker.start()
        self._threads.append(ticker)

    def stop(self) -> None:
        """Stop the controller and kill running pods (they are reported lost on the next start)."""
        self._stopping.set()
        with self._pods_lock:
            handles = list(self._pods.values())
        for handle in handles:
            handle.request.cancel_message.append(_LOST_POD)
            handle.request.cancel.set()
        for handle in handles:
            handle.thread.join(timeout=10)
        for thread in self._threads:
            thread.join(timeout=5)

    def add_pod_capacity(self, pods: int) -> None:
        """Let ``pods`` more pods run at once, as a cluster that gained nodes: pending pods start.

        An engine created with ``max_pods=0`` is a cluster with no free node yet, where workflows
        are accepted and wait (tests use it to hold hundreds of jobs in flight).
        """
        for _ in range(pods):
            self._slots.release()

    def _recover(self) -> None:
        with self.store.locked():
            running = [
                (wf["metadata"].get("namespace", ""), wf["metadata"]["name"])
                for wf in self.store.items("workflows")
                if (wf.get("status") or {}).get("phase") in (None, "", "Pending", "Running")
            ]
        for ns, name in running:
            wf = self.store.get("workflows", ns, name)
            changed = False
            nodes = (wf.get("status") or {}).get("nodes", {})
            for node in list(nodes.values()):
                if node.get("type") == "Pod" and node.get("phase") in ("Pending", "Running"):
                    self._finish_pod(nodes, node, "Error", _LOST_POD)
                    changed = True
            if changed:
                self.store.replace("workflows", wf)
            self.enqueue(ns, name)

    def enqueue(self, namespace: str, name: str) -> None:
        """Ask for a reconcile of one workflow (deduplicated)."""
        key = (namespace, name)
        with self._queued_lock:
            if key in self._queued:
                return
            self._queued.add(key)
        self._queue.put(key)

    def _worker(self) -> None:
        while not self._stopping.is_set():
            try:
                key = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            with self._queued_lock:
                self._queued.discard(key)
            try:
                self.reconcile(*key)
            except Exception:  # noqa: BLE001 - one bad workflow must not stop the controller
                log.exception("reconcile of %s/%s failed", *key)

    def _ticker(self) -> None:
        while not self._stopping.wait(self.config.tick_seconds):
            now = time.monotonic()
            for key, due in list(self._requeue_at.items()):
                if due <= now:
                    self._requeue_at.pop(key, None)
                    self.enqueue(*key)
            self._collect_garbage()

    def lock(self, namespace: str, name: str) -> threading.Lock:
        """The lock serialising reconciles and API changes of one workflow."""
        return self._wf_locks.setdefault((namespace, name), threading.Lock())

    # -- API operations -------------------------------------------------------------------------

    def shutdown(self, namespace: str, name: str, strategy: str, message: str = "") -> dict[str, Any]:
        """``Stop`` (exit handlers still run) or ``Terminate`` a workflow, as ``argo stop|terminate``."""
        with self.lock(namespace, name):
            wf = self.store.get("workflows", namespace, name)
            wf["spec"]["shutdown"] = strategy
            if message:
                wf.setdefault("metadata", {}).setdefault("annotations", {})[
                    "galaxy-argo.galaxyproject.org/stop-message"
                ] = message
            wf = self.store.replace("workflows", wf)
        self._cancel_pods(name, f"Stopped with strategy '{strategy}'")
        self.enqueue(namespace, name)
        return wf

    def retry(self, namespace: str, name: str) -> dict[str, Any]:
        """Reset failed nodes of a finished workflow and run it again (``argo retry``)."""
        with self.lock(namespace, name):
            wf = self.store.get("workflows", namespace, name)
            status = wf.get("status") or {}
            if status.get("phase") not in ("Failed", "Error"):
                raise EngineError(
                    f"workflow {name} is {status.get('phase') or 'not finished'}: only failed "
                    "workflows can be retried"
                )
            nodes = status.get("nodes", {})
            failed = {
                nid
                for nid, n in nodes.items()
                if n.get("phase") in FAILED | {"Omitted", "Skipped"} and n.get("type") != "Skipped"
            }
            onexit = {nid for nid, n in nodes.items() if n.get("name", "").endswith(".onExit")}
            removed = failed | onexit
            keep = {nid: n for nid, n in nodes.items() if nid not in removed}
            for node in keep.values():
                node["children"] = [c for c in node.get("children", []) if c not in removed]
                if node.get("phase") not in ("Succeeded", "Skipped"):
                    node["phase"] = "Running"
                    node.pop("finishedAt", None)
                    node.pop("message", None)
            status["nodes"] = keep
            status["phase"] = "Running"
            for key in ("finishedAt", "message"):
                status.pop(key, None)
            wf["spec"].pop("shutdown", None)
            wf["metadata"].setdefault("labels", {}).pop("workflows.argoproj.io/completed", None)
            wf = self.store.replace("workflows", wf)
        self.enqueue(namespace, name)
        return wf

    def delete(self, namespace: str, name: str) -> None:
        """Kill the workflow's pods and remove it with its files."""
        self._cancel_pods(name, _LOST_POD)
        with self.lock(namespace, name):
            self.store.delete("workflows", namespace, name)
        shutil.rmtree(self._workflow_dir(namespace, name), ignore_errors=True)

    def _cancel_pods(self, workflow_name: str, message: str) -> None:
        with self._pods_lock:
            handles = [h for h in self._pods.values() if h.request.workflow_name == workflow_name]
        for handle in handles:
            handle.request.cancel_message.append(message)
            handle.request.cancel.set()

    def log_files(self, namespace: str, name: str) -> dict[str, dict[str, list[Path]]]:
        """Pod name -> container -> [stdout, stderr] log files of a workflow."""
        out: dict[str, dict[str, list[Path]]] = {}
        root = self._workflow_dir(namespace, name) / "logs"
        for path in sorted(root.glob("*/*")):
            container, _, stream = path.name.rpartition(".")
            out.setdefault(path.parent.name, {}).setdefault(container, []).append(path)
        return out

    # -- reconcile ------------------------------------------------------------------------------

    def _workflow_dir(self, namespace: str, name: str) -> Path:
        return self.config.state_dir / "pods" / (namespace or "_") / name

    def reconcile(self, namespace: str, name: str) -> None:
        """One operator pass over one workflow."""
        with self.lock(namespace, name):
            if self._stopping.is_set():
                return
            try:
                wf = self.store.get("workflows", namespace, name)
            except NotFound:
                return
            status = wf.setdefault("status", {})
            if status.get("phase") in FULFILLED:
                return
            before = json.dumps(wf, sort_keys=True)
            walk = self._begin(wf)
            if walk is not None:
                self._operate(walk)
                _upsert_condition(status, "PodRunning", _any_pod_running(walk.nodes))
                if walk.requeue_in is not None:
                    self._requeue_at[(namespace, name)] = time.monotonic() + walk.requeue_in
            if json.dumps(wf, sort_keys=True) != before:
                with contextlib.suppress(NotFound):
                    self.store.replace("workflows", wf)

    def _begin(self, wf: dict[str, Any]) -> _Walk | None:
        status = wf["status"]
        status.setdefault("nodes", {})
        try:
            spec = self._effective_spec(wf)
        except (EngineError, NotFound, ExpressionError) as err:
            self._finish_workflow(wf, "Error", str(err))
            return None
        if not status.get("phase"):
            status["phase"] = "Running"
            status["startedAt"] = now_iso()
            status["progress"] = "0/0"
            ref = spec.get("artifactRepositoryRef")
            status["artifactRepositoryRef"] = {
                "configMap": (ref or {}).get("configMap", self.config.repos.default[0]),
                "key": (ref or {}).get("key", self.config.repos.default[1]),
                "namespace": wf["metadata"].get("namespace", ""),
                **({} if ref else {"default": True}),
            }
        global_scope: dict[str, Any] = {
            "workflow.name": wf["metadata"]["name"],
            "workflow.namespace": wf["metadata"].get("namespace", ""),
            "workflow.uid": wf["metadata"].get("uid", ""),
            "workflow.serviceAccountName": spec.get("serviceAccountName", "default"),
            "workflow.creationTimestamp": wf["metadata"].get("creationTimestamp", ""),
        }
        for param in (spec.get("arguments") or {}).get("parameters") or []:
            global_scope[f"workflow.parameters.{param['name']}"] = param.get("value", "")
        for key, value in (wf["metadata"].get("labels") or {}).items():
            global_scope[f"workflow.labels.{key}"] = value
        for key, value in (wf["metadata"].get("annotations") or {}).items():
            global_scope[f"workflow.annotations.{key}"] = value
        by_name = {n["name"]: n for n in status["nodes"].values()}
        return _Walk(wf, spec, global_scope, by_name)

    def _effective_spec(self, wf: dict[str, Any]) -> dict[str, Any]:
        spec = wf["spec"]
        ref = spec.get("workflowTemplateRef")
        if not ref:
            return spec
        stored = wf["status"].get("storedWorkflowTemplateSpec")
        if stored is None:
            kind = "clusterworkflowtemplates" if ref.get("clusterScope") else "workflowtemplates"
            ns = "" if ref.get("clusterScope") else wf["metadata"].get("namespace", "")
            template = self.store.get(kind, ns, ref["name"])
            stored = copy.deepcopy(template["spec"])
            wf["status"]["storedWorkflowTemplateSpec"] = stored
        merged = {**stored, **{k: v for k, v in spec.items() if k != "workflowTemplateRef"}}
        args = {p["name"]: p for p in (stored.get("arguments") or {}).get("parameters") or []}
        for p in (spec.get("arguments") or {}).get("parameters") or []:
            args[p["name"]] = {**args.get(p["name"], {}), **p}
        merged["arguments"] = {
            **(stored.get("arguments") or {}),
            **(spec.get("arguments") or {}),
            "parameters": list(args.values()),
        }
        merged["templates"] = stored.get("templates", []) + spec.get("templates", [])
        return merged

    def _operate(self, walk: _Walk) -> None:
        wf, spec = walk.wf, walk.spec
        name = wf["metadata"]["name"]
        self._apply_pod_events(walk)
        walk.running_pods = sum(
            1
            for n in walk.nodes.values()
            if n.get("type") == "Pod" and n.get("phase") in ("Pending", "Running")
        )
        shutdown = spec.get("shutdown")
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and time.time() > _parse_time(wf["status"].get("startedAt")) + float(
            deadline
        ):
            self._fail_unfinished(walk, _DEADLINE)
            self._cancel_pods(name, _DEADLINE)
            shutdown = shutdown or "Deadline"
        elif deadline is not None:
            walk.soon(max(0.1, _parse_time(wf["status"].get("startedAt")) + float(deadline) - time.time()))
        if shutdown in ("Stop", "Terminate"):
            self._fail_unfinished(walk, f"Stopped with strategy '{shutdown}'")
        entry = spec.get("entrypoint")
        templates = {t["name"]: t for t in spec.get("templates", [])}
        if entry not in templates:
            self._finish_workflow(wf, "Error", f"entrypoint template {entry!r} not found")
            return
        walk.new_pods = not shutdown
        root = self._execute(
            walk,
            name,
            templates[entry],
            templates,
            spec.get("arguments") or {},
            None,
            None,
            dict(walk.global_scope),
        )
        unfinished = root is not None and root.get("phase") not in FULFILLED
        if shutdown and unfinished and not self._pods_alive(walk):
            # Shutting down and nothing runs any more: what never started never will.
            stopped = _DEADLINE if shutdown == "Deadline" else f"Stopped with strategy '{shutdown}'"
            for node in walk.nodes.values():
                if node.get("phase") not in FULFILLED:
                    self._finish_node(node, "Failed", stopped)
        if root is None or root.get("phase") not in FULFILLED:
            self._update_progress(walk)
            return
        final_phase, message = root["phase"], root.get("message", "")
        if shutdown in ("Stop", "Terminate", "Deadline"):
            final_phase = "Failed"
            message = _DEADLINE if shutdown == "Deadline" else f"Stopped with strategy '{shutdown}'"
        on_exit = spec.get("onExit")
        if on_exit and shutdown != "Terminate":
            scope = {
                **walk.global_scope,
                "workflow.status": final_phase,
                "workflow.failures": json.dumps(self._failures(walk)),
            }
            if on_exit not in templates:
                self._finish_workflow(wf, "Error", f"onExit template {on_exit!r} not found")
                return
            walk.new_pods = True
            handler = self._execute(
                walk, f"{name}.onExit", templates[on_exit], templates, {}, None, None, scope
            )
            if handler is None or handler.get("phase") not in FULFILLED:
                self._update_progress(walk)
                return
            if handler["phase"] in FAILED and final_phase == "Succeeded":
                final_phase, message = "Failed", f"exit handler failed: {handler.get('message', '')}"
        self._update_progress(walk)
        self._finish_workflow(wf, final_phase, message)

    def _pods_alive(self, walk: _Walk) -> bool:
        with self._pods_lock:
            return any(nid in walk.nodes for nid in self._pods)

    def _failures(self, walk: _Walk) -> list[dict[str, Any]]:
        return [
            {
                "displayName": n.get("displayName"),
                "message": n.get("message", ""),
                "templateName": n.get("templateName"),
                "phase": n.get("phase"),
                "podName": n.get("id"),
                "finishedAt": n.get("finishedAt"),
            }
            for n in walk.nodes.values()
            if n.get("type") == "Pod" and n.get("phase") in FAILED
        ]

    def _finish_workflow(self, wf: dict[str, Any], phase: str, message: str) -> None:
        status = wf["status"]
        status["phase"] = phase
        status.setdefault("startedAt", now_iso())
        status["finishedAt"] = now_iso()
        if message:
            status["message"] = message
        _upsert_condition(status, "Completed", True)
        wf["metadata"].setdefault("labels", {})["workflows.argoproj.io/completed"] = "true"
        wf["metadata"]["labels"]["workflows.argoproj.io/phase"] = phase
        totals = {"cpu": 0, "memory": 0}
        for node in status.get("nodes", {}).values():
            if node.get("type") == "Pod":
                for key in totals:
                    totals[key] += int((node.get("resourcesDuration") or {}).get(key, 0))
        status["resourcesDuration"] = totals
        self._pod_gc(wf)

    def _update_progress(self, walk: _Walk) -> None:
        pods = [n for n in walk.nodes.values() if n.get("type") == "Pod"]
        done = sum(1 for n in pods if n.get("phase") == "Succeeded")
        walk.wf["status"]["progress"] = f"{done}/{len(pods)}"
        walk.wf["metadata"].setdefault("labels", {})["workflows.argoproj.io/phase"] = walk.wf["status"][
            "phase"
        ]

    def _fail_unfinished(self, walk: _Walk, message: str) -> None:
        for node in walk.nodes.values():
            if node.get("type") == "Pod" and node.get("phase") in ("Pending", "Running"):
                if node["id"] not in self._pods:
                    self._finish_pod(walk.nodes, node, "Failed", message)

    @classmethod
    def _finish_pod(
        cls, nodes: dict[str, dict[str, Any]], pod: dict[str, Any], phase: str, message: str
    ) -> None:
        """Finish a pod node that will report nothing more, with its unfinished Container nodes."""
        cls._finish_node(pod, phase, message)
        for node in nodes.values():
            if node.get("boundaryID") == pod["id"] and node.get("type") == "Container":
                if node.get("phase") not in FULFILLED:
                    cls._finish_node(node, phase, "container deleted" if message == _LOST_POD else message)

    @staticmethod
    def _finish_node(node: dict[str, Any], phase: str, message: str = "") -> None:
        node["phase"] = phase
        node.setdefault("startedAt", now_iso())
        node["finishedAt"] = now_iso()
        if message:
            node["message"] = message
        elif "message" in node and phase == "Succeeded":
            node.pop("message")

    # -- nodes ----------------------------------------------------------------------------------

    def _node(
        self,
        walk: _Walk,
        name: str,
        node_type: str,
        template: dict[str, Any] | None,
        boundary: str | None,
        parent: dict[str, Any] | None,
        display: str | None = None,
        phase: str = "Running",
    ) -> dict[str, Any]:
        existing = walk.by_name.get(name)
        if existing is not None:
            return existing
        wf_name = walk.wf["metadata"]["name"]
        nid = node_id(wf_name, name)
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
        walk.nodes[nid] = node
        walk.by_name[name] = node
        if parent is not None:
            children = parent.setdefault("children", [])
            if nid not in children:
                children.append(nid)
        return node

    def _resolve(
        self, walk: _Walk, step: dict[str, Any], templates: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The template a step/task names, and the template scope it runs in."""
        ref = step.get("templateRef")
        if ref:
            kind = "clusterworkflowtemplates" if ref.get("clusterScope") else "workflowtemplates"
            ns = "" if ref.get("clusterScope") else walk.wf["metadata"].get("namespace", "")
            try:
                owner = self.store.get(kind, ns, ref["name"])
            except NotFound as err:
                raise EngineError(f'templateRef: WorkflowTemplate "{ref["name"]}" not found') from err
            scope = {t["name"]: t for t in owner["spec"].get("templates", [])}
            if ref.get("template") not in scope:
                raise EngineError(
                    f'templateRef: template "{ref.get("template")}" not found in '
                    f'WorkflowTemplate "{ref["name"]}"'
                )
            template = dict(scope[ref["template"]])
            template["_templateRef"] = {"name": ref["name"], "template": ref["template"]}
            return template, scope
        name = step.get("template")
        if name not in templates:
            raise EngineError(f"template {name!r} not found")
        return templates[name], templates

    def _execute(
        self,
        walk: _Walk,
        name: str,
        template: dict[str, Any],
        templates: dict[str, dict[str, Any]],
        arguments: dict[str, Any],
        boundary: str | None,
        parent: dict[str, Any] | None,
        scope: dict[str, Any],
        in_retry: bool = False,
    ) -> dict[str, Any] | None:
        """Run (or look at) the node ``name`` for ``template``; ``None`` while it cannot start yet."""
        existing = walk.by_name.get(name)
        if existing is not None and existing.get("phase") in FULFILLED:
            return existing
        if template.get("retryStrategy") and not in_retry:
            return self._execute_retry(walk, name, template, templates, arguments, boundary, parent, scope)
        try:
            local = self._inputs_scope(walk, template, arguments, scope)
        except (EngineError, ExpressionError) as err:
            node = self._node(walk, name, "Pod", template, boundary, parent, phase="Error")
            self._finish_node(node, "Error", str(err))
            return node
        if "steps" in template:
            return self._execute_steps(walk, name, template, templates, boundary, parent, local)
        if "dag" in template:
            return self._execute_dag(walk, name, template, templates, boundary, parent, local)
        if any(k in template for k in ("container", "script", "containerSet")):
            return self._execute_pod(walk, name, template, boundary, parent, local)
        kinds = [k for k in _UNSUPPORTED_TEMPLATE_KINDS if k in template]
        node = self._node(walk, name, "Pod", template, boundary, parent, phase="Error")
        self._finish_node(
            node,
            "Error",
            f"template {template.get('name')!r}: {kinds or 'this'} templates are not "
            "supported by the embedded engine",
        )
        return node

    def _inputs_scope(
        self, walk: _Walk, template: dict[str, Any], arguments: dict[str, Any], scope: dict[str, Any]
    ) -> dict[str, Any]:
        local = {k: v for k, v in scope.items() if not k.startswith(("inputs.", "steps.", "tasks.", "item"))}
        local.update({k: v for k, v in scope.items() if k.startswith("item")})
        given = {p["name"]: p for p in arguments.get("parameters") or []}
        params = []
        for param in (template.get("inputs") or {}).get("parameters") or []:
            if param["name"] in given and "value" in given[param["name"]]:
                value = given[param["name"]]["value"]
            elif "value" in param:
                value = param["value"]
            elif "default" in param:
                value = param["default"]
            else:
                raise EngineError(f"inputs.parameters.{param['name']} was not supplied")
            value = substitute(str(value), local, strict=False) if isinstance(value, str) else value
            local[f"inputs.parameters.{param['name']}"] = value
            params.append(
                {"name": param["name"], "value": value if isinstance(value, str) else json.dumps(value)}
            )
        local["_inputs_parameters"] = params
        given_artifacts = {a["name"]: a for a in arguments.get("artifacts") or []}
        artifacts = []
        for artifact in (template.get("inputs") or {}).get("artifacts") or []:
            supplied = given_artifacts.get(artifact["name"])
            merged = dict(artifact)
            if supplied is not None:
                source = self._artifact_source(supplied, scope)
                merged.update({k: v for k, v in source.items() if k not in ("name", "path")})
            elif not any(
                k in artifact
                for k in ("s3", "raw", "http", "git", "artifactory", "gcs", "hdfs", "oss", "azure")
            ):
                if artifact.get("optional"):
                    continue
                raise EngineError(f"inputs.artifacts.{artifact['name']} was not supplied")
            artifacts.append(merged)
            if merged.get("path"):
                local[f"inputs.artifacts.{artifact['name']}.path"] = merged["path"]
        local["_inputs_artifacts"] = artifacts
        return local

    @staticmethod
    def _artifact_source(supplied: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
        ref = supplied.get("from")
        if ref:
            key = ref.strip()
            if key.startswith("{{") and key.endswith("}}"):
                key = key[2:-2].strip()
            found = scope.get(key)
            if not isinstance(found, dict):
                raise EngineError(f"artifact from {ref!r}: no such artifact")
            return {k: v for k, v in found.items() if k not in ("name", "path")}
        return substitute_obj(supplied, scope, strict=False)

    # -- retries --------------------------------------------------------------------------------

    def _execute_retry(
        self,
        walk: _Walk,
        name: str,
        template: dict[str, Any],
        templates: dict[str, dict[str, Any]],
        arguments: dict[str, Any],
        boundary: str | None,
        parent: dict[str, Any] | None,
        scope: dict[str, Any],
    ) -> dict[str, Any] | None:
        strategy = template["retryStrategy"]
        retry_node = walk.by_name.get(name) or self._node(walk, name, "Retry", template, boundary, parent)
        children = [walk.nodes[c] for c in retry_node.get("children", []) if c in walk.nodes]
        if children and children[-1].get("phase") not in FULFILLED:
            child = self._execute(
                walk,
                children[-1]["name"],
                template,
                templates,
                arguments,
                boundary,
                retry_node,
                {**scope, "retries": len(children) - 1},
                in_retry=True,
            )
            if child is None or child.get("phase") not in FULFILLED:
                retry_node["phase"] = "Running"
                return retry_node
            children[-1] = child
        if children:
            last = children[-1]
            if last["phase"] == "Succeeded":
                retry_node["outputs"] = copy.deepcopy(last.get("outputs", {}))
                self._finish_node(retry_node, "Succeeded")
                return retry_node
            try:
                retry = self._should_retry(strategy, last, len(children), retry_node)
            except (EngineError, ExpressionError) as err:
                self._finish_node(retry_node, "Error", str(err))
                return retry_node
            if not retry:
                retry_node["outputs"] = copy.deepcopy(last.get("outputs", {}))
                self._finish_node(retry_node, last["phase"], last.get("message", ""))
                return retry_node
            wait = self._backoff(strategy, len(children))
            remaining = _parse_time(last.get("finishedAt")) + wait - time.time()
            if remaining > 0:
                walk.soon(remaining)
                return retry_node
        attempt = len(children)
        self._execute(
            walk,
            f"{name}({attempt})",
            template,
            templates,
            arguments,
            retry_node["id"],
            retry_node,
            {**scope, "retries": attempt},
            in_retry=True,
        )
        return retry_node

    @staticmethod
    def _backoff(strategy: dict[str, Any], attempts: int) -> float:
        backoff = strategy.get("backoff") or {}
        base = _duration_seconds(backoff.get("duration"))
        factor = float(backoff.get("factor") or 1)
        return base * factor ** max(0, attempts - 1)

    def _should_retry(
        self, strategy: dict[str, Any], last: dict[str, Any], attempts: int, retry_node: dict[str, Any]
    ) -> bool:
        limit = strategy.get("limit")
        try:
            if limit is not None and attempts > int(str(limit)):
                return False
        except ValueError as err:
            raise EngineError(f"retryStrategy.limit {limit!r} is not a whole number") from err
        policy = strategy.get("retryPolicy") or "OnFailure"
        phase = last.get("phase")
        allowed = {
            "Always": phase in FAILED,
            "OnFailure": phase == "Failed",
            "OnError": phase == "Error",
            "OnTransientError": phase == "Error",
        }.get(policy)
        if allowed is None:
            raise EngineError(
                f"retryPolicy {policy!r}: expected Always, OnFailure, OnError or OnTransientError"
            )
        if not allowed:
            return False
        max_duration = _duration_seconds((strategy.get("backoff") or {}).get("maxDuration"))
        if max_duration and time.time() - _parse_time(retry_node.get("startedAt")) > max_duration:
            return False
        expression = strategy.get("expression")
        if expression:
            env = {
                "lastRetry": {
                    "exitCode": str((last.get("outputs") or {}).get("exitCode", "-1")),
                    "status": phase,
                    "duration": str(
                        int(_parse_time(last.get("finishedAt")) - _parse_time(last.get("startedAt")))
                    ),
                    "message": last.get("message", ""),
                }
            }
            return bool(evaluate(expression, env))
        return True

    # -- steps and dags -------------------------------------------------------------------------

    def _expansions(
        self, step: dict[str, Any], scope: dict[str, Any], base: str
    ) -> list[tuple[str, dict[str, Any]]]:
        items: list[Any] | None = None
        if "withItems" in step:
            items = substitute_obj(step["withItems"], scope, strict=True)
        elif "withParam" in step:
            raw = substitute(str(step["withParam"]), scope, strict=True)
            try:
                items = json.loads(raw)
            except json.JSONDecodeError as err:
                raise EngineError(f"withParam value is not a JSON list: {raw[:200]!r}") from err
        if items is None:
            return [(base, {})]
        if not isinstance(items, list):
            raise EngineError("withItems/withParam must give a list")
        out = []
        for index, item in enumerate(items):
            label = (
                json.dumps(item, separators=(",", ":"), sort_keys=True)
                if isinstance(item, dict | list)
                else (str(item).lower() if isinstance(item, bool) else str(item))
            )
            item_scope: dict[str, Any] = {"item": item}
            if isinstance(item, dict):
                for key, value in item.items():
                    item_scope[f"item.{key}"] = value
            out.append((f"{base}({index}:{label})", item_scope))
        return out

    def _record_outputs(self, scope: dict[str, Any], prefix: str, node: dict[str, Any]) -> None:
        outputs = node.get("outputs") or {}
        for param in outputs.get("parameters") or []:
            scope[f"{prefix}.outputs.parameters.{param['name']}"] = param.get("value", "")
        for artifact in outputs.get("artifacts") or []:
            scope[f"{prefix}.outputs.artifacts.{artifact['name']}"] = artifact
        if "result" in outputs:
            scope[f"{prefix}.outputs.result"] = outputs["result"]
        if "exitCode" in outputs:
            scope[f"{prefix}.exitCode"] = outputs["exitCode"]
        scope[f"{prefix}.status"] = node.get("phase", "")
        scope[f"{prefix}.id"] = node.get("id", "")
        scope[f"{prefix}.startedAt"] = node.get("startedAt", "")
        scope[f"{prefix}.finishedAt"] = node.get("finishedAt", "")

    def _run_child(
        self,
        walk: _Walk,
        step: dict[str, Any],
        child_name: str,
        child_scope: dict[str, Any],
        templates: dict[str, dict[str, Any]],
        boundary: str,
        parent: dict[str, Any],
    ) -> dict[str, Any] | None:
        existing = walk.by_name.get(child_name)
        if existing is not None and existing.get("phase") in FULFILLED:
            return existing
        when = step.get("when")
        if when:
            condition = substitute(str(when), child_scope, strict=True)
            if not evaluate_when(condition):
                node = self._node(walk, child_name, "Skipped", None, boundary, parent, phase="Skipped")
                self._finish_node(node, "Skipped", f"when '{condition}' evaluated false")
                return node
        arguments = substitute_obj(
            {k: v for k, v in (step.get("arguments") or {}).items() if k != "artifacts"},
            child_scope,
            strict=True,
        )
        arguments["artifacts"] = [
            a if "from" in a else substitute_obj(a, child_scope, strict=True)
            for a in (step.get("arguments") or {}).get("artifacts") or []
        ]
        template, scope_templates = self._resolve(walk, step, templates)
        return self._execute(
            walk, child_name, template, scope_templates, arguments, boundary, parent, child_scope
        )

    def _run_hook(
        self,
        walk: _Walk,
        step: dict[str, Any],
        child: dict[str, Any],
        scope: dict[str, Any],
        templates: dict[str, dict[str, Any]],
        boundary: str,
        parent: dict[str, Any],
    ) -> bool:
        """Run a step's exit hook after it finished; ``True`` once the hook is done (or absent)."""
        hook = ((step.get("hooks") or {}).get("exit")) or (
            step.get("onExit") and {"template": step["onExit"]}
        )
        if not hook:
            return True
        hook_scope = {**scope, "status": child.get("phase", "")}
        node = self._run_child(walk, hook, f"{child['name']}.onExit", hook_scope, templates, boundary, parent)
        return node is not None and node.get("phase") in FULFILLED

    def _execute_steps(
        self,
        walk: _Walk,
        name: str,
        template: dict[str, Any],
        templates: dict[str, dict[str, Any]],
        boundary: str | None,
        parent: dict[str, Any] | None,
        scope: dict[str, Any],
    ) -> dict[str, Any]:
        node = self._node(walk, name, "Steps", template, boundary, parent)
        local = dict(scope)
        try:
            for index, group in enumerate(template["steps"] or []):
                group_node = self._node(
                    walk, f"{name}[{index}]", "StepGroup", None, node["id"], node, display=f"[{index}]"
                )
                done, failed = True, []
                for step in group:
                    results = []
                    for child_name, item_scope in self._expansions(
                        step, local, f"{name}[{index}].{step['name']}"
                    ):
                        child = self._run_child(
                            walk, step, child_name, {**local, **item_scope}, templates, node["id"], group_node
                        )
                        if child is None or child.get("phase") not in FULFILLED:
                            done = False
                            continue
                        if not self._run_hook(walk, step, child, local, templates, node["id"], group_node):
                            done = False
                        results.append(child)
                        if child["phase"] in FAILED and not (step.get("continueOn") or {}).get(
                            "failed" if child["phase"] == "Failed" else "error"
                        ):
                            failed.append(child)
                    if len(results) == 1 and "withItems" not in step and "withParam" not in step:
                        self._record_outputs(local, f"steps.{step['name']}", results[0])
                    elif results:
                        local[f"steps.{step['name']}.outputs.parameters"] = _fan_in_parameters(results)
                if not done:
                    return node
                if failed:
                    self._finish_node(group_node, "Failed", f"child '{failed[0]['id']}' failed")
                    self._finish_node(node, "Failed", f"child '{failed[0]['id']}' failed")
                    return node
                self._finish_node(group_node, "Succeeded")
        except (EngineError, ExpressionError, ArtifactError) as err:
            self._finish_node(node, "Error", str(err))
            return node
        node["outputs"] = self._template_outputs(template, local)
        self._finish_node(node, "Succeeded")
        return node

    def _execute_dag(
        self,
        walk: _Walk,
        name: str,
        template: dict[str, Any],
        templates: dict[str, dict[str, Any]],
        boundary: str | None,
        parent: dict[str, Any] | None,
        scope: dict[str, Any],
    ) -> dict[str, Any]:
        node = self._node(walk, name, "DAG", template, boundary, parent)
        tasks = template["dag"].get("tasks") or []
        local = dict(scope)
        phases: dict[str, str] = {}
        handled: set[str] = set()
        try:
            for _ in range(len(tasks) + 1):
                progress = False
                for task in tasks:
                    if task["name"] in phases and phases[task["name"]] in FULFILLED:
                        continue
                    expression = task.get("depends") or dependencies_to_depends(
                        task.get("dependencies") or []
                    )
                    if expression:
                        mentioned = {t["name"]: phases.get(t["name"], "Pending") for t in tasks}
                        if not depends_ready(expression, mentioned):
                            continue
                        handled.update(
                            re.findall(
                                r"([A-Za-z0-9_-]+)\.(?:Failed|Errored|AnySucceeded|AllFailed)", expression
                            )
                        )
                        if not evaluate_depends(expression, mentioned):
                            omitted = self._node(
                                walk,
                                f"{name}.{task['name']}",
                                "Skipped",
                                None,
                                node["id"],
                                node,
                                phase="Omitted",
                            )
                            self._finish_node(omitted, "Omitted", "omitted: depends condition not met")
                            phases[task["name"]] = "Omitted"
                            progress = True
                            continue
                    phase = self._run_task(walk, task, name, local, templates, node)
                    if phase is not None:
                        phases[task["name"]] = phase
                        progress = progress or phase in FULFILLED
                if not progress:
                    break
        except (EngineError, ExpressionError, ArtifactError) as err:
            self._finish_node(node, "Error", str(err))
            return node
        if len([t for t in tasks if phases.get(t["name"]) in FULFILLED]) < len(tasks):
            return node
        failed = [t["name"] for t in tasks if phases.get(t["name"]) in FAILED and t["name"] not in handled]
        if failed:
            self._finish_node(node, "Failed", f"task '{name}.{failed[0]}' failed")
            return node
        node["outputs"] = self._template_outputs(template, local)
        self._finish_node(node, "Succeeded")
        return node

    def _run_task(
        self,
        walk: _Walk,
        task: dict[str, Any],
        dag_name: str,
        local: dict[str, Any],
        templates: dict[str, dict[str, Any]],
        dag_node: dict[str, Any],
    ) -> str | None:
        base = f"{dag_name}.{task['name']}"
        expansions = self._expansions(task, local, base)
        if len(expansions) == 1 and expansions[0][0] == base:
            child = self._run_child(walk, task, base, local, templates, dag_node["id"], dag_node)
            if child is None:
                return None
            if child.get("phase") in FULFILLED:
                if not self._run_hook(walk, task, child, local, templates, dag_node["id"], dag_node):
                    return "Running"
                self._record_outputs(local, f"tasks.{task['name']}", child)
            return str(child.get("phase"))
        group = self._node(walk, base, "TaskGroup", None, dag_node["id"], dag_node)
        results, done = [], True
        for child_name, item_scope in expansions:
            child = self._run_child(
                walk, task, child_name, {**local, **item_scope}, templates, dag_node["id"], group
            )
            if child is None or child.get("phase") not in FULFILLED:
                done = False
            else:
                results.append(child)
        if not done:
            return "Running"
        phase = "Failed" if any(r["phase"] in FAILED for r in results) else "Succeeded"
        self._finish_node(group, phase)
        local[f"tasks.{task['name']}.outputs.parameters"] = _fan_in_parameters(results)
        return phase

    def _template_outputs(self, template: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        params = []
        for param in (template.get("outputs") or {}).get("parameters") or []:
            source = (param.get("valueFrom") or {}).get("parameter")
            if source:
                params.append({"name": param["name"], "value": str(substitute(source, scope, strict=True))})
        if params:
            outputs["parameters"] = params
        artifacts = []
        for artifact in (template.get("outputs") or {}).get("artifacts") or []:
            if artifact.get("from"):
                artifacts.append({**self._artifact_source(artifact, scope), "name": artifact["name"]})
        if artifacts:
            outputs["artifacts"] = artifacts
        return outputs

    # -- pods -----------------------------------------------------------------------------------

    def _schedulable(self, walk: _Walk, template: dict[str, Any]) -> str:
        """Why the pod cannot be scheduled on our one node, or ``""``."""
        selector = {**(walk.spec.get("nodeSelector") or {}), **(template.get("nodeSelector") or {})}
        for key, value in selector.items():
            if key in _NODE_LABELS and _NODE_LABELS[key] != str(value):
                return (
                    "Unschedulable: 0/1 nodes are available: 1 node(s) didn't match Pod's node "
                    "affinity/selector."
                )
        return ""

    def _execute_pod(
        self,
        walk: _Walk,
        name: str,
        template: dict[str, Any],
        boundary: str | None,
        parent: dict[str, Any] | None,
        scope: dict[str, Any],
    ) -> dict[str, Any] | None:
        existing = walk.by_name.get(name)
        if existing is not None:
            return existing
        if not walk.new_pods:
            return None
        parallelism = walk.spec.get("parallelism")
        if parallelism and walk.running_pods >= int(parallelism):
            return None
        wf_name = walk.wf["metadata"]["name"]
        nid = node_id(wf_name, name)
        pod_name = argo_pod_name(wf_name, template.get("name", ""), nid)
        node = self._node(walk, name, "Pod", template, boundary, parent, phase="Pending")
        inputs: dict[str, Any] = {}
        if scope.get("_inputs_parameters"):
            inputs["parameters"] = scope["_inputs_parameters"]
        if scope.get("_inputs_artifacts"):
            inputs["artifacts"] = scope["_inputs_artifacts"]
        if inputs:
            node["inputs"] = inputs
        body = {k: v for k, v in template.items() if k not in ("inputs", "_templateRef")}
        try:
            resolved = substitute_obj(body, {**scope, "pod.name": pod_name, "node.name": name}, strict=True)
            resolved["inputs"] = {
                "artifacts": substitute_obj(inputs.get("artifacts", []), scope, strict=False)
            }
            unschedulable = self._schedulable(walk, resolved)
            repository = self.config.repos.repository(walk.spec.get("artifactRepositoryRef"))
        except (ExpressionError, EngineError, ArtifactError) as err:
            self._finish_node(node, "Error", str(err))
            return node
        if unschedulable:
            node["message"] = unschedulable
            return node
        volumes = {v["name"]: v for v in (walk.spec.get("volumes") or []) + (resolved.get("volumes") or [])}
        claims: dict[str, Path] = {}
        wf_dir = self._workflow_dir(walk.wf["metadata"].get("namespace", ""), wf_name)
        for claim in walk.spec.get("volumeClaimTemplates") or []:
            claim_name = claim["metadata"]["name"]
            volumes.setdefault(
                claim_name, {"name": claim_name, "persistentVolumeClaim": {"claimName": claim_name}}
            )
            claims[claim_name] = wf_dir / "claims" / claim_name
        patches = [p for p in (walk.spec.get("podSpecPatch"), resolved.get("podSpecPatch")) if p]
        request = PodRequest(
            namespace=walk.wf["metadata"].get("namespace", ""),
            workflow_name=wf_name,
            pod_name=pod_name,
            template=resolved,
            pod_dir=wf_dir / "pods" / pod_name,
            repository=repository,
            repos=self.config.repos,
            image_map=self.config.image_map,
            volumes=volumes,
            claim_dirs=claims,
            pod_spec_patches=patches,
        )
        self._container_nodes(walk, node, resolved)
        self._launch(walk.wf["metadata"].get("namespace", ""), wf_name, nid, request)
        walk.running_pods += 1
        return node

    def _launch(self, namespace: str, workflow: str, nid: str, request: PodRequest) -> None:
        def run() -> None:
            with self._slots:
                if request.cancel.is_set():
                    result = PodResult(
                        "Failed",
                        request.cancel_reason,
                        None,
                        [],
                        {},
                        now_iso(),
                        now_iso(),
                        {},
                    )
                else:
                    result = run_pod(request, on_started=lambda: self._pod_started(namespace, workflow, nid))
            if self._stopping.is_set():
                return  # the engine stops: the pod is lost, as a controller restart reports it
            handle.result = result
            self._link_logs(request, result)
            self.enqueue(namespace, workflow)

        handle = _PodHandle(
            request, threading.Thread(target=run, name=f"pod-{request.pod_name}", daemon=True)
        )
        with self._pods_lock:
            self._pods[nid] = handle
        handle.thread.start()

    def _link_logs(self, request: PodRequest, result: PodResult) -> None:
        target = self._workflow_dir(request.namespace, request.workflow_name) / "logs" / request.pod_name
        target.mkdir(parents=True, exist_ok=True)
        for container in result.log_files:
            for stream in ("out", "err"):
                source = request.pod_dir / "logs" / f"{container}.{stream}"
                if source.exists():
                    shutil.copyfile(source, target / f"{container}.{stream}")

    def _pod_started(self, namespace: str, workflow: str, nid: str) -> None:
        with self._pods_lock:
            handle = self._pods.get(nid)
            if handle is not None:
                handle.started = True
        self.enqueue(namespace, workflow)

    def _apply_pod_events(self, walk: _Walk) -> None:
        with self._pods_lock:
            mine = {nid: h for nid, h in self._pods.items() if nid in walk.nodes}
        for nid, handle in mine.items():
            node = walk.nodes[nid]
            if handle.result is not None:
                self._apply_result(walk, node, handle.result, handle.request)
                with self._pods_lock:
                    self._pods.pop(nid, None)
            elif handle.started and node.get("phase") == "Pending":
                node["phase"] = "Running"
                for child in self._container_nodes(walk, node, handle.request.template).values():
                    child["phase"] = "Running"
        for node in walk.nodes.values():
            if (
                node.get("type") == "Pod"
                and node.get("phase") in ("Pending", "Running")
                and node["id"] not in mine
                and not node.get("message", "").startswith("Unschedulable")
                and node["id"] not in self._pods
            ):
                self._finish_pod(walk.nodes, node, "Error", _LOST_POD)

    def _container_nodes(self, walk: _Walk, pod: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
        """Argo's ``Container`` nodes of a containerSet pod: children of the pod or of their dependency."""
        if "containerSet" not in template:
            return {}
        nodes: dict[str, Any] = {}
        containers = template["containerSet"].get("containers") or []
        for container in containers:
            nodes[container["name"]] = self._node(
                walk,
                f"{pod['name']}.{container['name']}",
                "Container",
                None,
                pod["id"],
                None,
                display=container["name"],
                phase=pod.get("phase", "Pending"),
            )
        for container in containers:
            parents = [nodes[d] for d in container.get("dependencies") or [] if d in nodes] or [pod]
            for parent in parents:
                children = parent.setdefault("children", [])
                if nodes[container["name"]]["id"] not in children:
                    children.append(nodes[container["name"]]["id"])
        return nodes

    def _apply_result(
        self, walk: _Walk, node: dict[str, Any], result: PodResult, request: PodRequest
    ) -> None:
        for outcome in result.containers:
            child = self._container_nodes(walk, node, request.template).get(outcome.name)
            if child is None:
                continue
            child["startedAt"] = outcome.started_at
            phase = (
                "Succeeded" if outcome.exit_code == 0 else ("Error" if outcome.exit_code == 64 else "Failed")
            )
            message = "" if outcome.exit_code == 0 else f"{outcome.reason} (exit code {outcome.exit_code})"
            if message and outcome.message:
                message += f": {outcome.message}"
            self._finish_node(child, phase, message)
            child["finishedAt"] = outcome.finished_at
            child["outputs"] = {"exitCode": str(outcome.exit_code)}
        for child in self._container_nodes(walk, node, request.template).values():
            if child.get("phase") not in FULFILLED:  # never started: the pod failed before it
                self._finish_node(child, "Error" if result.phase == "Error" else "Failed", result.message)
        node["outputs"] = result.outputs
        node["hostNodeName"] = os.uname().nodename
        node["startedAt"] = result.started_at
        self._finish_node(node, result.phase, result.message)
        node["finishedAt"] = result.finished_at
        node["resourcesDuration"] = self._resources_duration(request.template, result)

    @staticmethod
    def _resources_duration(template: dict[str, Any], result: PodResult) -> dict[str, int]:
        """Argo's resourcesDuration: seconds x requested cores, and x requested memory in 100Mi units."""
        seconds = max(1.0, _parse_time(result.finished_at) - _parse_time(result.started_at))
        cpu, memory = 0.0, 0.0
        containers: Iterable[dict[str, Any]] = (
            template["containerSet"]["containers"]
            if "containerSet" in template
            else [template.get("container") or template.get("script") or {}]
        )
        for container in containers:
            requests = (container.get("resources") or {}).get("requests") or {}
            cpu += parse_quantity(requests.get("cpu", "100m"))
            memory += parse_quantity(requests.get("memory", "100Mi"))
        return {"cpu": math.ceil(seconds * cpu), "memory": math.ceil(seconds * memory / (100 * 2**20))}

    # -- garbage collection ---------------------------------------------------------------------

    def _pod_gc(self, wf: dict[str, Any]) -> None:
        strategy = ((wf["spec"].get("podGC") or {}).get("strategy")) or ""
        phase = wf["status"].get("phase")
        if strategy in ("OnPodCompletion", "OnWorkflowCompletion") or (
            strategy in ("OnPodSuccess", "OnWorkflowSuccess") and phase == "Succeeded"
        ):
            shutil.rmtree(
                self._workflow_dir(wf["metadata"].get("namespace", ""), wf["metadata"]["name"]) / "pods",
                ignore_errors=True,
            )

    def _collect_garbage(self) -> None:
        now = time.time()
        expired = []
        with self.store.locked():
            for wf in self.store.items("workflows"):
                status = wf.get("status") or {}
                ttl = wf["spec"].get("ttlStrategy") or {}
                if status.get("phase") not in FULFILLED or not ttl:
                    continue
                seconds = ttl.get(
                    "secondsAfterSuccess" if status["phase"] == "Succeeded" else "secondsAfterFailure",
                    ttl.get("secondsAfterCompletion"),
                )
                if seconds is not None and now > _parse_time(status.get("finishedAt")) + float(seconds):
                    expired.append((wf["metadata"].get("namespace", ""), wf["metadata"]["name"]))
        for ns, name in expired:
            with contextlib.suppress(NotFound):
                self.delete(ns, name)


_TEMPLATE_KINDS = ("container", "script", "containerSet", "steps", "dag")
_ARTIFACT_LOCATIONS = ("s3", "raw")
_OTHER_LOCATIONS = ("git", "http", "gcs", "hdfs", "oss", "azure", "artifactory", "huggingFace", "plugin")
_VOLUME_KINDS = ("emptyDir", "persistentVolumeClaim")


def unsupported_features(resource: dict[str, Any]) -> str:
    """Why the embedded engine cannot run ``resource`` (a clear sentence with the field), or ``""``."""
    spec = resource.get("spec") or {}
    for field_name in ("synchronization", "suspend", "hooks", "volumeClaimGC", "artifactGC"):
        if spec.get(field_name) not in (None, {}, False):
            return f"spec.{field_name}: not supported by the embedded engine"
    for i, volume in enumerate(spec.get("volumes") or []):
        if not any(k in volume for k in _VOLUME_KINDS):
            return (
                f"spec.volumes[{i}] ({volume.get('name')}): only emptyDir and persistentVolumeClaim volumes "
                "are supported by the embedded engine"
            )
    for i, template in enumerate(spec.get("templates") or []):
        where = f"spec.templates[{i}] ({template.get('name')!r})"
        if not any(k in template for k in _TEMPLATE_KINDS):
            kinds = [k for k in _UNSUPPORTED_TEMPLATE_KINDS if k in template] or ["(none)"]
            return (
                f"{where}: {', '.join(kinds)} templates are not supported by the embedded engine "
                f"(supported: {', '.join(_TEMPLATE_KINDS)})"
            )
        limit = (template.get("retryStrategy") or {}).get("limit")
        if limit is not None and not re.fullmatch(r"[0-9]+|\{\{.*\}\}", str(limit).strip()):
            return f"{where}.retryStrategy.limit {limit!r}: expected a whole number"
        for field_name in ("synchronization", "memoize", "daemon", "sidecars", "initContainers"):
            if template.get(field_name) not in (None, {}, [], False):
                return f"{where}.{field_name}: not supported by the embedded engine"
        for j, volume in enumerate(template.get("volumes") or []):
            if not any(k in volume for k in _VOLUME_KINDS):
                return f"{where}.volumes[{j}]: only emptyDir and persistentVolumeClaim volumes are supported"
        artifact_lists = [
            ("inputs.artifacts", (template.get("inputs") or {}).get("artifacts")),
            ("outputs.artifacts", (template.get("outputs") or {}).get("artifacts")),
        ]
        for group in template.get("steps") or []:
            for step in group:
                artifact_lists.append(
                    (
                        f"steps.{step.get('name')}.arguments.artifacts",
                        (step.get("arguments") or {}).get("artifacts"),
                    )
                )
        for task in (template.get("dag") or {}).get("tasks") or []:
            artifact_lists.append(
                (
                    f"dag.tasks.{task.get('name')}.arguments.artifacts",
                    (task.get("arguments") or {}).get("artifacts"),
                )
            )
        for path, artifacts in artifact_lists:
            for artifact in artifacts or []:
                other = [k for k in _OTHER_LOCATIONS if k in artifact]
                if other:
                    return (
                        f"{where}.{path} ({artifact.get('name')}): {other[0]} artifacts are not supported by "
                        f"the embedded engine (supported: {', '.join(_ARTIFACT_LOCATIONS)}, key-only S3)"
                    )
    return ""
