"""Argo workflow status -> `JobOutcome`: what happened to a Galaxy job, in one line. Pure.

The runner polls workflows and needs three things from each: is it still queued or running, did
it end well, and if not, why, in words a Galaxy user understands ("the tool used more memory than
its limit"), plus a state Galaxy's resubmit rules act on (OOM -> ``memory_limit_reached``,
deadline -> ``walltime_reached``). Messages are matched in one table (`_RULES`), in the order
Argo's own messages make unambiguous. A phase or node type we do not know is an error naming the
value and the known ones (STYLE.md 5), never a silent default.

Argo's status fields: https://argo-workflows.readthedocs.io/en/latest/fields/#workflowstatus
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.core.metrics import seconds_between

__all__ = [
    "NODE_TYPES",
    "PHASES",
    "JobOutcome",
    "OutcomeError",
    "OutcomeState",
    "deleted_outcome",
    "outcome_of",
    "workflow_condition",
]

#: Workflow and node phases Argo v4 reports.
PHASES = ("", "Pending", "Running", "Succeeded", "Failed", "Error", "Skipped", "Omitted")
#: Node types Argo v4 reports.
NODE_TYPES = (
    "Pod",
    "Container",
    "Steps",
    "StepGroup",
    "DAG",
    "TaskGroup",
    "Retry",
    "Skipped",
    "Suspend",
    "HTTP",
    "Plugin",
)
_MANIFEST_PARAMETER = "outputs-manifest"


class OutcomeError(GalaxyArgoError, ValueError):
    """The workflow status holds a value this version does not know; the message lists the known ones."""


class OutcomeState(StrEnum):
    """Where a job stands, as the runner acts on it."""

    #: Accepted, no pod running yet (scheduling, pulling images).
    QUEUED = "queued"
    #: A pod of the job is running.
    RUNNING = "running"
    #: The tool ran and exited 0; collect outputs.
    SUCCEEDED = "succeeded"
    #: The tool exited non-zero; its outputs and stderr still come back.
    TOOL_FAILED = "tool_failed"
    #: Setting metadata on the cluster failed.
    METADATA_FAILED = "metadata_failed"
    #: Killed for exceeding its memory limit (Galaxy: MEMORY_LIMIT_REACHED).
    OOM = "oom"
    #: Ran past its walltime (Galaxy: WALLTIME_REACHED).
    WALLTIME = "walltime"
    #: An input arrived different from what was staged (size or sha256).
    BAD_INPUT = "bad_input"
    #: The container image could not be pulled.
    IMAGE_PULL = "image_pull"
    #: A container could not be created: a Secret (or a key in it) its env names is missing.
    CONTAINER_CONFIG = "container_config"
    #: Evicted, preempted or its node went away, after the retries Argo was allowed.
    EVICTED = "evicted"
    #: Stopped or terminated in Argo.
    STOPPED = "stopped"
    #: The workflow no longer exists in Argo.
    DELETED = "deleted"
    #: Anything else Argo reports as Error/Failed (lost pod, artifact repository trouble).
    INFRASTRUCTURE = "infrastructure"

    @property
    def finished(self) -> bool:
        """True once nothing more will happen in Argo."""
        return self not in (OutcomeState.QUEUED, OutcomeState.RUNNING)

    @property
    def leaves_workflow_running(self) -> bool:
        """Argo keeps the workflow Running, its pod Pending for ever: the runner must stop it.

        Neither Argo nor the kubelet gives up on an image that cannot be pulled or a Secret that
        is missing; both retry until the pod is deleted.
        """
        return self in (OutcomeState.IMAGE_PULL, OutcomeState.CONTAINER_CONFIG)


@dataclass(frozen=True)
class JobOutcome:
    """The job as the runner sees it."""

    state: OutcomeState
    #: One line for the Galaxy user; empty while queued/running without trouble.
    reason: str = ""
    #: The tool's exit code from the outputs manifest, when the tool ran.
    exit_code: int | None = None
    #: The outputs manifest stage-out wrote (``None`` if the pod never got that far).
    manifest: Mapping[str, Any] | None = None
    #: Galaxy job metrics: runtime_seconds, cpu_seconds, memory_mib_seconds, retries, node, pod.
    metrics: Mapping[str, Any] = field(default_factory=dict)
    #: Argo's own phase and message, for logs and operators.
    phase: str = ""
    message: str = ""


_IMAGE_PULL = re.compile(r"(ImagePullBackOff|ErrImagePull|InvalidImageName|ErrImageNeverPull)[: ]*(.*)")
_IMAGE_PULL_REASON = "the container image could not be pulled: {detail}"
# Kubelet's waiting reason when a container's env names a missing Secret or key; Argo shows
# "CreateContainerConfigError: secret \"NAME\" not found" (or "couldn't find key KEY in Secret
# NAMESPACE/NAME") on the Pending pod node. The detail names the Secret and never holds a value.
_CONTAINER_CONFIG = re.compile(r"CreateContainerConfigError[: ]*(.*)")
_CONTAINER_CONFIG_REASON = (
    "the job's pod cannot create its containers: {detail} (CreateContainerConfigError); the Secret "
    "and key must exist in the workflow's namespace"
)
#: Messages of Pending pods that will not start by themselves (`OutcomeState.leaves_workflow_running`):
#: pattern, state, reason template, and the group that is the detail (None: the whole message).
_NEVER_STARTS: tuple[tuple[re.Pattern[str], OutcomeState, str, int | None], ...] = (
    (_IMAGE_PULL, OutcomeState.IMAGE_PULL, _IMAGE_PULL_REASON, None),
    (_CONTAINER_CONFIG, OutcomeState.CONTAINER_CONFIG, _CONTAINER_CONFIG_REASON, 1),
)

# (pattern on the failing node's message, state, reason template). First match wins.
_RULES: tuple[tuple[re.Pattern[str], OutcomeState, str], ...] = (
    (
        re.compile(r"OOMKilled"),
        OutcomeState.OOM,
        "the tool used more memory than its limit{limit} and was killed (OOMKilled)",
    ),
    (
        re.compile(r"longer than the specified deadline|exceeded its deadline|DeadlineExceeded"),
        OutcomeState.WALLTIME,
        "the job ran longer than its walltime limit{walltime} and was stopped",
    ),
    (
        re.compile(r"Stopped with strategy '(Stop|Terminate)'"),
        OutcomeState.STOPPED,
        "the workflow was stopped in Argo ({detail})",
    ),
    (re.compile(r"stage-in: .*?: (.*)"), OutcomeState.BAD_INPUT, "an input did not arrive intact: {detail}"),
    (
        re.compile(r"tool exited with code (\d+)"),
        OutcomeState.TOOL_FAILED,
        "the tool exited with code {detail}",
    ),
    (
        re.compile(r"metadata step exited with code (\d+)"),
        OutcomeState.METADATA_FAILED,
        "setting output metadata failed (exit code {detail})",
    ),
    (_IMAGE_PULL, OutcomeState.IMAGE_PULL, _IMAGE_PULL_REASON),
    (_CONTAINER_CONFIG, OutcomeState.CONTAINER_CONFIG, _CONTAINER_CONFIG_REASON),
    (
        re.compile(r"(?i)(evict\w*|low on resource|preempt\w*|node shutdown|imminent node shutdown).*"),
        OutcomeState.EVICTED,
        "the pod was evicted from its node and retries ran out: {text}",
    ),
    (
        re.compile(r"pod deleted"),
        OutcomeState.INFRASTRUCTURE,
        "the job's pod was deleted or lost and retries ran out",
    ),
)


def _check_phase(phase: Any, where: str) -> str:
    if phase is None:
        return ""
    if phase not in PHASES:
        raise OutcomeError(
            f"{where} phase {phase!r} is not one Argo reports: {', '.join(p or '(empty)' for p in PHASES)}"
        )
    return str(phase)


def _parse_manifest(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for param in (node.get("outputs") or {}).get("parameters") or []:
        if param.get("name") == _MANIFEST_PARAMETER and param.get("value"):
            try:
                manifest = json.loads(param["value"])
            except (TypeError, json.JSONDecodeError) as err:
                raise OutcomeError(f"outputs manifest of {node.get('name')} is not JSON: {err}") from err
            if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
                raise OutcomeError(f"outputs manifest of {node.get('name')} lacks a files list")
            return manifest
    return None


def _pods(nodes: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    pods = []
    for node in nodes.values():
        node_type = node.get("type")
        if node_type not in NODE_TYPES:
            raise OutcomeError(
                f"node {node.get('name')!r} has type {node_type!r}; known: {', '.join(NODE_TYPES)}"
            )
        _check_phase(node.get("phase"), f"node {node.get('name')!r}")
        if node_type == "Pod":
            pods.append(node)
    return sorted(pods, key=lambda n: (n.get("startedAt") or "", n.get("name") or ""))


def _metrics(status: Mapping[str, Any], pods: list[Mapping[str, Any]]) -> dict[str, Any]:
    if not pods:
        return {}
    last = pods[-1]
    metrics: dict[str, Any] = {"retries": len(pods) - 1, "pod": last.get("id", "")}
    runtime = seconds_between(last.get("startedAt"), last.get("finishedAt"))
    if runtime is not None:
        metrics["runtime_seconds"] = runtime
    if last.get("hostNodeName"):
        metrics["node"] = last["hostNodeName"]
    durations = status.get("resourcesDuration") or {}
    if "cpu" in durations:
        metrics["cpu_seconds"] = durations["cpu"]
    if "memory" in durations:
        metrics["memory_100mi_seconds"] = durations["memory"]
    return metrics


def workflow_condition(status: Mapping[str, Any], kind: str) -> str | None:
    """The status (``"True"``/``"False"``) of one of Argo's workflow conditions, if reported."""
    for condition in status.get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return str(condition.get("status"))
    return None


def outcome_of(workflow: Mapping[str, Any], *, memory_limit: str = "", walltime: str = "") -> JobOutcome:
    """Classify a workflow (the JSON the Argo Server returns, or a ``fields`` projection of it).

    ``memory_limit`` and ``walltime`` (as people read them, e.g. ``"4 GiB"``) only decorate the
    reason line.
    """
    status = workflow.get("status") or {}
    phase = _check_phase(status.get("phase"), "workflow")
    message = str(status.get("message") or "")
    pods = _pods(status.get("nodes") or {})
    last = pods[-1] if pods else None
    manifest = _parse_manifest(last) if last is not None else None
    exit_code = manifest.get("exit_code") if manifest else None
    metrics = _metrics(status, pods)
    base = JobOutcome(
        OutcomeState.QUEUED,
        manifest=manifest,
        metrics=metrics,
        phase=phase,
        message=message,
        exit_code=exit_code if isinstance(exit_code, int) else None,
    )
    waiting = last is None or last.get("phase") == "Pending"
    if phase == "Running" and waiting and workflow_condition(status, "PodRunning") == "True":
        # A LIST projected without nodes: Argo's condition says a pod of the workflow runs.
        return replace(base, state=OutcomeState.RUNNING)
    if phase in ("", "Pending") or (phase == "Running" and waiting):
        pending = str(last.get("message") or "") if last is not None else ""
        for pattern, state, template, group in _NEVER_STARTS:
            match = pattern.search(pending)
            if match:  # Argo leaves such pods Pending for ever: finished for us, stopped by the runner
                detail = (match.group(group) if group is not None else "") or pending
                return replace(base, state=state, reason=template.format(detail=detail))
        return replace(base, reason=pending)
    if phase == "Running":
        return replace(base, state=OutcomeState.RUNNING)
    if phase == "Succeeded":
        return replace(base, state=OutcomeState.SUCCEEDED)
    failing = str(last.get("message") or "") if last is not None else ""
    for text in (failing, message):
        for pattern, state, template in _RULES:
            match = pattern.search(text)
            if match:
                detail = match.group(match.lastindex or 0) if match.lastindex else match.group(0)
                reason = template.format(
                    text=text,
                    detail=detail.strip() or text,
                    limit=f" ({memory_limit})" if memory_limit else "",
                    walltime=f" ({walltime})" if walltime else "",
                )
                return replace(base, state=state, reason=reason)
    reason = f"Argo reports {phase}: {failing or message or 'no message'}"
    return replace(base, state=OutcomeState.INFRASTRUCTURE, reason=reason)


def deleted_outcome(name: str) -> JobOutcome:
    """The workflow is gone from Argo (deleted by an operator or by its TTL before Galaxy saw it end)."""
    return JobOutcome(
        OutcomeState.DELETED, f"the workflow {name} was deleted in Argo before the job finished"
    )
