"""What the embedded engine refuses a Workflow or WorkflowTemplate for: the CRD schema, then its subset.

Argo's server validates a submission against the CRD's schema and answers 400 with the first
error; the embedded engine does the same, then refuses at once, with the field named, anything in
the schema it does not run (a ``suspend`` template, a ``git`` artifact, ``synchronization``...)
rather than accepting a workflow that would fail later or, worse, run differently (an env
``fieldRef`` or ``configMapKeyRef`` would be empty: the engine has Secrets, no ConfigMaps or
downward API). The server asks `refusal` for both checks; the walk uses the template kinds listed
here for its own message.
"""

from __future__ import annotations

import re
from typing import Any

from galaxy_argo.core.argo_schema import SchemaError, validate
from galaxy_argo.local.container_env import ENV_SOURCES, VALUE_FROM_SOURCES

__all__ = ["SUPPORTED_TEMPLATE_KINDS", "UNSUPPORTED_TEMPLATE_KINDS", "refusal", "unsupported_features"]

#: Template kinds the engine runs.
SUPPORTED_TEMPLATE_KINDS = ("container", "script", "containerSet", "steps", "dag")
#: Template kinds Argo has and the engine does not run.
UNSUPPORTED_TEMPLATE_KINDS = ("resource", "suspend", "http", "plugin", "data")
_ARTIFACT_LOCATIONS = ("s3", "raw")
_OTHER_LOCATIONS = ("git", "http", "gcs", "hdfs", "oss", "azure", "artifactory", "huggingFace", "plugin")
_VOLUME_KINDS = ("emptyDir", "persistentVolumeClaim")


def refusal(resource: dict[str, Any]) -> str:
    """Why ``resource`` is refused (its first schema error, else an unsupported feature), or ``""``."""
    try:
        validate(resource)
    except SchemaError as err:
        return str(err)
    return unsupported_features(resource)


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
        if not any(k in template for k in SUPPORTED_TEMPLATE_KINDS):
            kinds = [k for k in UNSUPPORTED_TEMPLATE_KINDS if k in template] or ["(none)"]
            return (
                f"{where}: {', '.join(kinds)} templates are not supported by the embedded engine "
                f"(supported: {', '.join(SUPPORTED_TEMPLATE_KINDS)})"
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
        problem = _unsupported_artifact(where, template) or _unsupported_env(where, template)
        if problem:
            return problem
    return ""


def _unsupported_env(where: str, template: dict[str, Any]) -> str:
    """The first ``env[].valueFrom`` or ``envFrom[]`` source the engine cannot resolve (Secrets only)."""
    containers = [(kind, template.get(kind)) for kind in ("container", "script")]
    containers += [
        (f"containerSet.containers[{i}]", c)
        for i, c in enumerate((template.get("containerSet") or {}).get("containers") or [])
    ]
    for path, container in containers:
        for j, var in enumerate((container or {}).get("env") or []):
            kinds = [k for k, v in (var.get("valueFrom") or {}).items() if v is not None]
            other = [k for k in kinds if k not in VALUE_FROM_SOURCES]
            if other:
                supported = ", ".join(f"valueFrom.{kind}" for kind in VALUE_FROM_SOURCES)
                return (
                    f"{where}.{path}.env[{j}] ({var.get('name')}): valueFrom.{other[0]} is not supported by "
                    f"the embedded engine (supported: value, {supported})"
                )
        for j, source in enumerate((container or {}).get("envFrom") or []):
            other = [k for k, v in source.items() if k != "prefix" and v is not None and k not in ENV_SOURCES]
            if other:
                return (
                    f"{where}.{path}.envFrom[{j}]: {other[0]} is not supported by the embedded engine "
                    f"(supported: {', '.join(ENV_SOURCES)})"
                )
    return ""


def _unsupported_artifact(where: str, template: dict[str, Any]) -> str:
    """The first artifact of ``template`` (inputs, outputs, arguments) in a location not supported."""
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
