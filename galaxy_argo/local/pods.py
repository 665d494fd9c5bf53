"""One pod of the embedded engine: volumes, init (load artifacts), containers, wait (save outputs).

The engine hands over a template whose ``{{...}}`` tags are already substituted; this module
turns it into bubblewrap sandboxes (`galaxy_argo.local.sandbox`) on host directories and reports a
`PodResult` shaped like what Argo's controller reads from a pod: a phase, Kubernetes' terminated
reasons per container, the main container's exit code and the outputs the wait container saved.

Containers get their own writable directories for paths that are not on a volume (``/tmp`` and
the parent directories of their input/output paths), standing in for a container's writable
root filesystem, so an output written to ``/tmp/x`` can be saved after the container exited.

Pods share the host's network namespace, as ``hostNetwork: true`` pods share their node's: a
pod reaches the stack's S3 at the same ``127.0.0.1`` address the engine's artifact code uses, so a
container that talks to S3 itself (Galaxy's set-metadata) needs no other endpoint. Unlike a
cluster, pods get no address of their own; per-pod network namespaces with user-mode networking
(``slirp4netns``) are future work, for interactive tools that serve ports.

Environments are resolved like the kubelet's (`galaxy_argo.local.container_env`), after init and
before any container starts: while a Secret or key is missing the pod stays Pending with
``CreateContainerConfigError: <kubelet's message>`` (reported through ``on_waiting``) and is
retried until it appears, the pod is cancelled or its deadline passes. On a cluster the pod's
other containers would start meanwhile; here none does, which a job cannot tell apart (its
steps wait on each other anyway).
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.local.artifacts import ArtifactError, ArtifactRepositories, load_artifact, save_artifact
from galaxy_argo.local.container_env import (
    CREATE_CONTAINER_CONFIG_ERROR,
    ContainerConfigError,
    UnsupportedEnvError,
    container_environment,
)
from galaxy_argo.local.sandbox import ContainerSpec, ImageMap, Mount, SandboxError, TerminatedReason, start

__all__ = ["PodError", "PodRequest", "PodResult", "run_pod"]

_RESULT_LIMIT = 256 * 1024
_DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
#: Seconds between attempts to create containers whose Secret is missing. The kubelet's pod workers
#: retry a failed sync after 10 s; sooner here, as a lookup costs nothing.
_CONFIG_RETRY_SECONDS = 1.0
_QUANTITY = re.compile(r"^([0-9.]+)([A-Za-z]*)$")
_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "m": 0.001,
}


class PodError(GalaxyArgoError):
    """The pod cannot be set up (unsupported volume, bad quantity); the node ends in Error."""


@dataclass
class PodRequest:
    """Everything a pod needs, resolved by the engine."""

    namespace: str
    workflow_name: str
    pod_name: str
    template: dict[str, Any]
    pod_dir: Path
    repository: dict[str, Any]
    repos: ArtifactRepositories
    image_map: ImageMap
    #: Volumes of the workflow spec and the template (name -> volume document).
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Host directories standing in for volumeClaimTemplates / PVCs, by volume name.
    claim_dirs: dict[str, Path] = field(default_factory=dict)
    pod_spec_patches: list[str] = field(default_factory=list)
    #: Set by the engine to stop the pod (workflow stopped, terminated or past its deadline).
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_message: list[str] = field(default_factory=list)

    @property
    def cancel_reason(self) -> str:
        """Why the pod was cancelled (stop, terminate, deletion), as its node message says."""
        return self.cancel_message[0] if self.cancel_message else "Stopped"


@dataclass
class ContainerOutcome:
    """A container's terminated state, as Kubernetes reports it."""

    name: str
    exit_code: int
    reason: str
    message: str
    started_at: str
    finished_at: str


@dataclass
class PodResult:
    """What the controller records for the pod's node."""

    phase: str
    message: str
    exit_code: int | None
    containers: list[ContainerOutcome]
    outputs: dict[str, Any]
    started_at: str
    finished_at: str
    log_files: dict[str, Path]


def _iso(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_quantity(text: str | int | float) -> float:
    """A Kubernetes quantity (``512Mi``, ``1G``, ``500m``) as a number."""
    match = _QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _UNITS:
        raise PodError(f"bad quantity {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _merge(base: Any, patch: Any) -> Any:
    """Strategic-merge subset: maps merge, lists of named items merge by name, others replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base.get(key), value) if key in base else value
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        merged = {item["name"]: item for item in base}
        for item in patch:
            merged[item["name"]] = _merge(merged.get(item["name"], {}), item)
        return list(merged.values())
    return patch


def _containers(template: dict[str, Any], patches: list[str]) -> list[dict[str, Any]]:
    """The pod's containers in start order (dependencies first), pod spec patches applied."""
    if "containerSet" in template:
        shared = template["containerSet"].get("volumeMounts", [])
        containers = [
            {**c, "volumeMounts": shared + c.get("volumeMounts", [])}
            for c in template["containerSet"]["containers"]
        ]
    elif "script" in template:
        script = dict(template["script"])
        containers = [{**script, "name": "main", "_source": script.pop("source", "")}]
    elif "container" in template:
        containers = [{**template["container"], "name": "main"}]
    else:
        raise PodError("template is neither container, script nor containerSet")
    pod = {"containers": containers}
    for patch in patches:
        try:
            pod = _merge(pod, json.loads(patch))
        except json.JSONDecodeError as err:
            raise PodError(f"podSpecPatch is not valid JSON: {err}") from err
    ordered: list[dict[str, Any]] = []
    pending = list(pod["containers"])
    while pending:
        ready = [c for c in pending if set(c.get("dependencies") or []) <= {o["name"] for o in ordered}]
        if not ready:
            raise PodError(
                f"containerSet dependencies form a cycle or name unknown containers: "
                f"{[c['name'] for c in pending]}"
            )
        ordered.extend(ready)
        pending = [c for c in pending if c not in ready]
    return ordered


class _Layout:
    """Host directories of one pod and the mapping from pod paths to them."""

    def __init__(self, request: PodRequest, containers: list[dict[str, Any]]) -> None:
        self.root = request.pod_dir
        self.volume_dirs: dict[str, Path] = {}
        for name, volume in request.volumes.items():
            self.volume_dirs[name] = self._volume_dir(name, volume, request)
        self.mounts: dict[str, list[tuple[str, Path, bool]]] = {}
        for container in containers:
            entries = []
            for mount in container.get("volumeMounts") or []:
                if mount["name"] not in self.volume_dirs:
                    raise PodError(f'container {container["name"]}: volume "{mount["name"]}" is not defined')
                source = self.volume_dirs[mount["name"]]
                if mount.get("subPath"):
                    source = source / mount["subPath"]
                    source.mkdir(parents=True, exist_ok=True)
                entries.append((posixpath.normpath(mount["mountPath"]), source, bool(mount.get("readOnly"))))
            self.mounts[container["name"]] = entries

    def _volume_dir(self, name: str, volume: dict[str, Any], request: PodRequest) -> Path:
        if name in request.claim_dirs:
            path = request.claim_dirs[name]
        elif "emptyDir" in volume:
            path = self.root / "volumes" / name
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            path = request.pod_dir.parents[1] / "claims" / claim
        else:
            kinds = sorted(set(volume) - {"name"})
            raise PodError(
                f'volume "{name}" of kind {kinds}: the embedded engine supports emptyDir and '
                "persistentVolumeClaim / volumeClaimTemplates"
            )
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fs(self, container: str) -> Path:
        return self.root / "fs" / container

    def host_path(self, container: str, pod_path: str) -> Path:
        """Where ``pod_path`` of ``container`` lives on the host."""
        pod_path = posixpath.normpath(pod_path)
        best: tuple[str, Path] | None = None
        for target, source, _ in self.mounts.get(container, []):
            if (pod_path == target or pod_path.startswith(target.rstrip("/") + "/")) and (
                best is None or len(target) > len(best[0])
            ):
                best = (target, source)
        if best is not None:
            return best[1] / posixpath.relpath(pod_path, best[0])
        return self.fs(container) / pod_path.lstrip("/")

    def on_volume(self, container: str, pod_path: str) -> bool:
        return any(
            pod_path == t or pod_path.startswith(t.rstrip("/") + "/")
            for t, _, _ in self.mounts.get(container, [])
        )

    def sandbox_mounts(self, container: str, capture_dirs: set[str]) -> list[Mount]:
        """Volume mounts plus writable capture directories for /tmp and artifact/parameter paths."""
        mounts: list[Mount] = []
        for target in sorted(capture_dirs, key=len):
            host = self.fs(container) / target.lstrip("/")
            host.mkdir(parents=True, exist_ok=True)
            mounts.append(Mount(host, target))
        for target, source, read_only in sorted(self.mounts.get(container, []), key=lambda m: len(m[0])):
            mounts.append(Mount(source, target, read_only))
        return mounts


def _capture_dirs(layout: _Layout, container: str, paths: list[str]) -> set[str]:
    dirs = {"/tmp"}
    for path in paths:
        if not layout.on_volume(container, path):
            parent = posixpath.dirname(posixpath.normpath(path))
            if parent not in ("/", "") and not any(parent.startswith(d + "/") for d in dirs):
                dirs = {d for d in dirs if not d.startswith(parent + "/")} | {parent}
    return dirs


def run_pod(
    request: PodRequest,
    on_started: Callable[[], None] | None = None,
    on_waiting: Callable[[str], None] | None = None,
) -> PodResult:
    """Run the pod to completion (or cancellation); never raises for the pod's own failures.

    ``on_started`` is called once the containers are created (the pod runs), ``on_waiting`` with
    the Pending reason each time it changes while they cannot be (a Secret missing).
    """
    started = _iso()
    logs: dict[str, Path] = {}
    template = request.template
    try:
        containers = _containers(template, request.pod_spec_patches)
        layout = _Layout(request, containers)
    except PodError as err:
        return PodResult("Error", str(err), None, [], {}, started, _iso(), logs)
    main = "main" if any(c["name"] == "main" for c in containers) else containers[-1]["name"]
    inputs = (template.get("inputs") or {}).get("artifacts") or []
    outputs = template.get("outputs") or {}
    out_paths = [a["path"] for a in outputs.get("artifacts") or [] if a.get("path")]
    out_paths += [
        p["valueFrom"]["path"]
        for p in outputs.get("parameters") or []
        if (p.get("valueFrom") or {}).get("path")
    ]
    main_paths = [a["path"] for a in inputs if a.get("path")] + out_paths

    # init: load input artifacts where main sees them
    for artifact in inputs:
        try:
            load_artifact(
                artifact, layout.host_path(main, artifact["path"]), request.repos, request.repository
            )
        except (ArtifactError, OSError, KeyError) as err:
            return PodResult(
                "Error", f"init: failed to load artifacts: {err}", None, [], {}, started, _iso(), logs
            )

    deadline_s = template.get("activeDeadlineSeconds")
    deadline = time.monotonic() + float(deadline_s) if deadline_s not in (None, "") else None
    environments = _environments(request, containers, deadline, on_waiting)
    if isinstance(environments, PodResult):
        return PodResult(environments.phase, environments.message, None, [], {}, started, _iso(), logs)
    if on_started:
        on_started()
    outcomes: list[ContainerOutcome] = []
    failed: set[str] = set()
    stop_reason = ""
    for container in containers:
        name = container["name"]
        blocked = [d for d in container.get("dependencies") or [] if d in failed]
        if blocked or stop_reason:
            now = _iso()
            reason_text = stop_reason or f'dependency "{blocked[0]}" exited with non-zero code'
            outcomes.append(ContainerOutcome(name, 64 if blocked else 143, "Error", reason_text, now, now))
            failed.add(name)
            continue
        outcome, stop_reason = _run_container(
            request, layout, container, environments[name], main, main_paths, deadline, logs
        )
        outcomes.append(outcome)
        if outcome.exit_code != 0:
            failed.add(name)

    # wait: outputs of main, attempted whatever the exit code (as Argo's wait container does)
    main_outcome = next(o for o in outcomes if o.name == main)
    result_outputs: dict[str, Any] = {}
    save_error = ""
    try:
        result_outputs = _collect_outputs(request, layout, main, outputs, logs, template)
    except (ArtifactError, PodError, OSError) as err:
        save_error = f"failed to save outputs: {err}"
    result_outputs["exitCode"] = str(main_outcome.exit_code)

    bad = [o for o in outcomes if o.exit_code != 0]
    if stop_reason:
        phase, message = "Failed", stop_reason
    elif save_error:
        phase, message = "Error", save_error
    elif bad:
        phase = "Failed"
        first = next((o for o in bad if o.reason == "OOMKilled"), bad[0])
        message = f"{first.name}: {first.reason} (exit code {first.exit_code})"
        if first.message:
            message += f": {first.message}"
    else:
        phase, message = "Succeeded", ""
    return PodResult(phase, message, main_outcome.exit_code, outcomes, result_outputs, started, _iso(), logs)


def _environments(
    request: PodRequest,
    containers: list[dict[str, Any]],
    deadline: float | None,
    on_waiting: Callable[[str], None] | None,
) -> dict[str, dict[str, str]] | PodResult:
    """Each container's environment, waiting while a Secret is missing; or how the pod ended.

    The reason reported is the first failing container's in name order, as Argo takes the first
    waiting one of the kubelet's container statuses, which are sorted by name.
    """
    reported = ""
    while True:
        try:
            return {
                c["name"]: container_environment(c, request.repos.secrets, request.namespace)
                for c in sorted(containers, key=lambda c: str(c["name"]))
            }
        except UnsupportedEnvError as err:
            return PodResult("Error", str(err), None, [], {}, "", "", {})
        except ContainerConfigError as err:
            waiting = f"{CREATE_CONTAINER_CONFIG_ERROR}: {err}"
        if waiting != reported and on_waiting is not None:
            on_waiting(waiting)
        reported = waiting
        timeout = _CONFIG_RETRY_SECONDS
        if deadline is not None:
            timeout = max(0.0, min(timeout, deadline - time.monotonic()))
        if request.cancel.wait(timeout):
            return PodResult("Failed", request.cancel_reason, None, [], {}, "", "", {})
        if deadline is not None and time.monotonic() >= deadline:
            return PodResult("Failed", _DEADLINE_MESSAGE, None, [], {}, "", "", {})


def _run_container(
    request: PodRequest,
    layout: _Layout,
    container: dict[str, Any],
    env: dict[str, str],
    main: str,
    main_paths: list[str],
    deadline: float | None,
    logs: dict[str, Path],
) -> tuple[ContainerOutcome, str]:
    name = container["name"]
    capture = _capture_dirs(layout, name, main_paths if name == main else [])
    mounts = layout.sandbox_mounts(name, capture)
    log_dir = request.pod_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = log_dir / f"{name}.out", log_dir / f"{name}.err"
    logs[name] = stdout
    argv = [str(a) for a in (container.get("command") or [])] + [
        str(a) for a in (container.get("args") or [])
    ]
    if "_source" in container:
        script = request.pod_dir / "scripts" / name
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(container["_source"])
        mounts.append(Mount(script, f"/argo/staging/{name}-script", read_only=True))
        argv = [str(a) for a in (container.get("command") or ["sh"])] + [f"/argo/staging/{name}-script"]
    limits = (container.get("resources") or {}).get("limits") or {}
    memory = int(parse_quantity(limits["memory"])) if "memory" in limits else None
    termination = request.pod_dir / "termination" / name
    termination.parent.mkdir(parents=True, exist_ok=True)
    spec = ContainerSpec(
        argv=argv,
        env=env,
        working_dir=container.get("workingDir"),
        mounts=mounts,
        memory_limit_bytes=memory,
        stdout_path=stdout,
        stderr_path=stderr,
        image=str(container.get("image", "")),
        termination_log=termination,
        # No ``command``: the image's entrypoint runs with ``args`` (the image map knows it).
        use_entrypoint=not container.get("command") and "_source" not in container,
        network=True,  # the host's, as a hostNetwork pod (module docstring)
    )
    try:
        running = start(spec, request.image_map)
    except (SandboxError, OSError) as err:
        # As Kubernetes' StartError: the container never ran. A cancelled pod whose directory a
        # delete removed meanwhile ends as cancelled, not as a crash of the pod's thread.
        now = _iso()
        stop_reason = request.cancel_reason if request.cancel.is_set() else ""
        return ContainerOutcome(name, 128, TerminatedReason.START_ERROR, str(err), now, now), stop_reason
    stop_reason = ""
    while True:
        result = running.wait(timeout=0.2)
        if result is not None:
            break
        if request.cancel.is_set():
            stop_reason = request.cancel_reason
            running.kill(signal.SIGKILL)
        elif deadline is not None and time.monotonic() > deadline:
            stop_reason = _DEADLINE_MESSAGE
            running.kill(signal.SIGKILL)
    outcome = ContainerOutcome(
        name,
        result.exit_code,
        result.reason,
        result.message,
        _iso(result.started_at),
        _iso(result.finished_at),
    )
    return outcome, stop_reason


def _collect_outputs(
    request: PodRequest,
    layout: _Layout,
    main: str,
    outputs: dict[str, Any],
    logs: dict[str, Path],
    template: dict[str, Any],
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    parameters = []
    for param in outputs.get("parameters") or []:
        value_from = param.get("valueFrom") or {}
        if "path" in value_from:
            host = layout.host_path(main, value_from["path"])
            if host.is_file():
                value = host.read_text(errors="replace")
            elif "default" in value_from:
                value = str(value_from["default"])
            else:
                raise PodError(f"output parameter {param['name']!r}: {value_from['path']} does not exist")
            parameters.append(
                {"name": param["name"], "value": value.strip() if value.endswith("\n") else value}
            )
        elif "value" in param:
            parameters.append({"name": param["name"], "value": str(param["value"])})
        elif "default" in value_from:
            parameters.append({"name": param["name"], "value": str(value_from["default"])})
    if parameters:
        result["parameters"] = parameters
    artifacts = []
    for artifact in outputs.get("artifacts") or []:
        default_key = f"{request.workflow_name}/{request.pod_name}/{artifact['name']}"
        saved = save_artifact(
            artifact, layout.host_path(main, artifact["path"]), request.repos, request.repository, default_key
        )
        if saved is not None:
            artifacts.append(saved)
    if artifacts:
        result["artifacts"] = artifacts
    if ("script" in template or "container" in template) and main in logs and logs[main].exists():
        with logs[main].open("rb") as handle:
            text = handle.read(_RESULT_LIMIT).decode(errors="replace")
        result["result"] = text[:-1] if text.endswith("\n") else text
    return result


def remove_pod_dir(pod_dir: Path) -> None:
    """Delete a finished pod's files (pod GC)."""
    shutil.rmtree(pod_dir, ignore_errors=True)
