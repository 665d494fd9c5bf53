"""The variables a template sees in the embedded engine: inputs, outputs of steps and tasks, items.

Argo resolves ``{{inputs.parameters.x}}``, ``{{steps.a.outputs.result}}``, ``{{tasks.b.status}}``
and ``{{item}}`` from a scope built as the walk goes down the tree (see
https://argo-workflows.readthedocs.io/en/latest/variables/). Here a scope is a plain dict from the
variable's name to its value; these functions build and extend it, apart from the walk so each rule
(which inputs are required, how a fanned-out step's outputs aggregate, how an item is labelled in
the node name) is written once. They do no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from galaxy_argo.local.controller.nodes import EngineError
from galaxy_argo.local.expressions import substitute, substitute_obj

__all__ = [
    "artifact_source",
    "expand",
    "fan_in_parameters",
    "inputs_scope",
    "record_outputs",
    "template_outputs",
]

#: Artifact locations a template's input may name itself (no argument needed).
_ARTIFACT_SOURCES = ("s3", "raw", "http", "git", "artifactory", "gcs", "hdfs", "oss", "azure")


def inputs_scope(
    template: dict[str, Any], arguments: dict[str, Any], scope: dict[str, Any]
) -> dict[str, Any]:
    """The scope inside ``template`` called with ``arguments``: its inputs resolved, and items kept.

    The caller's ``inputs.*``, ``steps.*`` and ``tasks.*`` are dropped. ``_inputs_parameters`` and
    ``_inputs_artifacts`` hold the resolved inputs for the node's ``inputs`` field and the pod.

    Raises:
        EngineError: An input without a value or default was not supplied, or an artifact's
            ``from`` names no artifact.
    """
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
            source = artifact_source(supplied, scope)
            merged.update({k: v for k, v in source.items() if k not in ("name", "path")})
        elif not any(k in artifact for k in _ARTIFACT_SOURCES):
            if artifact.get("optional"):
                continue
            raise EngineError(f"inputs.artifacts.{artifact['name']} was not supplied")
        artifacts.append(merged)
        if merged.get("path"):
            local[f"inputs.artifacts.{artifact['name']}.path"] = merged["path"]
    local["_inputs_artifacts"] = artifacts
    return local


def artifact_source(supplied: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    """Where an artifact argument or output comes from: the artifact its ``from`` names, or its own location.

    Raises:
        EngineError: ``from`` names no artifact in ``scope``.
    """
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


def expand(step: dict[str, Any], scope: dict[str, Any], base: str) -> list[tuple[str, dict[str, Any]]]:
    """A step's or task's children: (node name, item variables) per ``withItems``/``withParam`` item.

    Without either, one child named ``base`` with no item; with them, ``base(<index>:<item>)`` as
    Argo names them.

    Raises:
        EngineError: ``withParam`` is not JSON, or either does not give a list.
        ExpressionError: A tag in them does not resolve.
    """
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


def record_outputs(scope: dict[str, Any], prefix: str, node: dict[str, Any]) -> None:
    """Put a finished step's or task's outputs and status in ``scope`` as ``<prefix>.outputs...``."""
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


def fan_in_parameters(results: list[dict[str, Any]]) -> str:
    """Argo's aggregate of a fanned-out step's output parameters: a JSON list of name -> value maps."""
    return json.dumps(
        [
            {p["name"]: p.get("value") for p in (r.get("outputs") or {}).get("parameters") or []}
            for r in results
        ]
    )


def template_outputs(template: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    """The outputs of a finished steps or DAG template: its ``valueFrom.parameter`` and ``from`` outputs.

    Raises:
        EngineError: An output artifact's ``from`` names no artifact.
        ExpressionError: A parameter's source does not resolve.
    """
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
            artifacts.append({**artifact_source(artifact, scope), "name": artifact["name"]})
    if artifacts:
        outputs["artifacts"] = artifacts
    return outputs
