"""The embedded engine's controller: interprets Argo Workflows the way Argo's operator does.

Like Argo's workflow controller (``workflow/controller/controller.go``), the `Engine` owns the
threads: workers that reconcile one workflow at a time from a deduplicated queue, a ticker that
requeues workflows waiting on a backoff or a deadline and collects expired ones, and one thread per
pod (`galaxy_argo.local.pods.run_pod`, at most ``max_pods`` running at once). It answers the API's
operations (stop, terminate, retry, delete, logs) and keeps the pods' reports until the next
reconcile of their workflow applies them. What one reconcile does is in
`galaxy_argo.local.controller.reconcile` and the walkers it calls (`steps_and_dags`, `retries`,
`pod_nodes`);
what a submission is refused for is in `galaxy_argo.local.controller.admission`.

Because all state is in the stored workflow, a restarted engine continues where it stopped: pods
that were running when it died are reported lost (``Error``, "pod deleted"), exactly as Argo
reports a deleted pod, and the retryStrategy applies.

Supported: container, script, containerSet, steps (``when``, ``withItems``, ``withParam``, exit
hooks), dag (``depends``, ``dependencies``), inputs/outputs parameters and artifacts,
``templateRef``, ``workflowTemplateRef``, retryStrategy (limit, retryPolicy, expression, backoff),
activeDeadlineSeconds (workflow and template), onExit, parallelism (workflow), stop/terminate/
retry, podGC and ttlStrategy. Anything else is refused at submission with the field named.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from galaxy_argo.local.artifacts import ArtifactRepositories
from galaxy_argo.local.controller.nodes import (
    FAILED,
    FULFILLED,
    LOST_POD,
    EngineError,
    Walk,
    finish_pod,
    node_id,
    parse_time,
)
from galaxy_argo.local.controller.pod_nodes import apply_result, container_nodes
from galaxy_argo.local.controller.reconcile import begin, operate, shutdown_message
from galaxy_argo.local.pods import PodRequest, PodResult, run_pod
from galaxy_argo.local.sandbox import ImageMap
from galaxy_argo.local.store import NotFound, ObjectStore, now_iso

__all__ = ["Engine", "EngineConfig", "EngineError", "node_id"]

log = logging.getLogger(__name__)


@dataclass
class _PodHandle:
    request: PodRequest
    thread: threading.Thread
    started: bool = False
    #: Why the pod's containers cannot be created yet (``CreateContainerConfigError: ...``).
    waiting: str = ""
    result: PodResult | None = None


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
            handle.request.cancel_message.append(LOST_POD)
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
                    finish_pod(nodes, node, "Error", LOST_POD)
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
        self.cancel_pods(name, shutdown_message(strategy))
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
        self.cancel_pods(name, LOST_POD)
        with self.lock(namespace, name):
            self.store.delete("workflows", namespace, name)
        shutil.rmtree(self.workflow_dir(namespace, name), ignore_errors=True)

    def log_files(self, namespace: str, name: str) -> dict[str, dict[str, list[Path]]]:
        """Pod name -> container -> [stdout, stderr] log files of a workflow."""
        out: dict[str, dict[str, list[Path]]] = {}
        root = self.workflow_dir(namespace, name) / "logs"
        for path in sorted(root.glob("*/*")):
            container, _, stream = path.name.rpartition(".")
            out.setdefault(path.parent.name, {}).setdefault(container, []).append(path)
        return out

    # -- reconcile ------------------------------------------------------------------------------

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
            walk = begin(wf, self)
            if walk is not None:
                self._apply_pod_events(walk)
                operate(walk)
                if walk.requeue_in is not None:
                    self._requeue_at[(namespace, name)] = time.monotonic() + walk.requeue_in
            if status.get("phase") in FULFILLED:
                self._pod_gc(wf)
            if json.dumps(wf, sort_keys=True) != before:
                with contextlib.suppress(NotFound):
                    self.store.replace("workflows", wf)

    # -- what a walk asks of the engine (`galaxy_argo.local.controller.nodes.Cluster`) ---------------------

    @property
    def repos(self) -> ArtifactRepositories:
        """The artifact repositories (ConfigMaps and Secrets) pods load from and save to."""
        return self.config.repos

    @property
    def image_map(self) -> ImageMap:
        """What runs for each container image."""
        return self.config.image_map

    def workflow_dir(self, namespace: str, name: str) -> Path:
        """The directory of one workflow's pods, claims and logs."""
        return self.config.state_dir / "pods" / (namespace or "_") / name

    def launch(self, namespace: str, workflow: str, nid: str, request: PodRequest) -> None:
        """Start the pod of node ``nid`` in a thread; it waits for a free slot as on a full cluster."""

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
                    result = run_pod(
                        request,
                        on_started=lambda: self._pod_started(namespace, workflow, nid),
                        on_waiting=lambda reason: self._pod_waiting(namespace, workflow, nid, reason),
                    )
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

    def launched_pods(self) -> set[str]:
        """Node ids of the pods launched whose results no walk has applied yet."""
        with self._pods_lock:
            return set(self._pods)

    def cancel_pods(self, workflow_name: str, message: str) -> None:
        """Kill the workflow's pods; their nodes end with ``message``."""
        with self._pods_lock:
            handles = [h for h in self._pods.values() if h.request.workflow_name == workflow_name]
        for handle in handles:
            handle.request.cancel_message.append(message)
            handle.request.cancel.set()

    # -- pods -----------------------------------------------------------------------------------

    def _link_logs(self, request: PodRequest, result: PodResult) -> None:
        target = self.workflow_dir(request.namespace, request.workflow_name) / "logs" / request.pod_name
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

    def _pod_waiting(self, namespace: str, workflow: str, nid: str, reason: str) -> None:
        with self._pods_lock:
            handle = self._pods.get(nid)
            if handle is not None:
                handle.waiting = reason
        self.enqueue(namespace, workflow)

    def _apply_pod_events(self, walk: Walk) -> None:
        """Record on the walk's nodes what its pods reported since the last walk; lost pods fail."""
        with self._pods_lock:
            mine = {nid: h for nid, h in self._pods.items() if nid in walk.nodes}
        for nid, handle in mine.items():
            node = walk.nodes[nid]
            if handle.result is not None:
                apply_result(walk, node, handle.result, handle.request)
                with self._pods_lock:
                    self._pods.pop(nid, None)
            elif handle.started and node.get("phase") == "Pending":
                node["phase"] = "Running"
                if handle.waiting and node.get("message") == handle.waiting:
                    node.pop("message")  # as Argo clears an unchanged Pending message
                for child in container_nodes(walk, node, handle.request.template).values():
                    child["phase"] = "Running"
            elif handle.waiting and node.get("phase") == "Pending":
                # Argo's getPendingReason: the first waiting container's "REASON: MESSAGE".
                node["message"] = handle.waiting
        for node in walk.nodes.values():
            if (
                node.get("type") == "Pod"
                and node.get("phase") in ("Pending", "Running")
                and node["id"] not in mine
                and not node.get("message", "").startswith("Unschedulable")
                and node["id"] not in self._pods
            ):
                finish_pod(walk.nodes, node, "Error", LOST_POD)

    # -- garbage collection ---------------------------------------------------------------------

    def _pod_gc(self, wf: dict[str, Any]) -> None:
        strategy = ((wf["spec"].get("podGC") or {}).get("strategy")) or ""
        phase = wf["status"].get("phase")
        if strategy in ("OnPodCompletion", "OnWorkflowCompletion") or (
            strategy in ("OnPodSuccess", "OnWorkflowSuccess") and phase == "Succeeded"
        ):
            shutil.rmtree(
                self.workflow_dir(wf["metadata"].get("namespace", ""), wf["metadata"]["name"]) / "pods",
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
                if seconds is not None and now > parse_time(status.get("finishedAt")) + float(seconds):
                    expired.append((wf["metadata"].get("namespace", ""), wf["metadata"]["name"]))
        for ns, name in expired:
            with contextlib.suppress(NotFound):
                self.delete(ns, name)
