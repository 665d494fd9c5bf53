"""Validate Workflows and WorkflowTemplates against Argo's own CRD schema, strictly.

The package carries the ``openAPIV3Schema`` of Argo's full CRDs (v4.1.2, ``manifests/base/crds/
full``) as gzipped JSON under ``galaxy_argo/schemas/``, copied verbatim by `extract_crd_schemas` and
checked against ``../shared/argo/crds`` by a test. At load we make it strict: every object the CRD
lists ``properties`` for forbids any other property (a typo like ``activeDeadlineSecond`` fails
here instead of being silently dropped by the API server's pruning), except where the CRD says
``x-kubernetes-preserve-unknown-fields``. The embedded engine refuses invalid workflows with the
path of the first error, as Argo's server does.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from galaxy_argo.core.errors import GalaxyArgoError

__all__ = [
    "KINDS",
    "SchemaError",
    "extract_crd_schemas",
    "iter_errors",
    "validate",
]

#: Kind -> CRD file it is defined in.
KINDS = {
    "Workflow": "argoproj.io_workflows.yaml",
    "WorkflowTemplate": "argoproj.io_workflowtemplates.yaml",
    "ClusterWorkflowTemplate": "argoproj.io_clusterworkflowtemplates.yaml",
}


class SchemaError(GalaxyArgoError, ValueError):
    """A resource does not validate; ``path`` is the JSON path of the first error."""

    def __init__(self, kind: str, name: str, path: str, message: str) -> None:
        """Keep the parts apart for the engine's 400 answer."""
        self.kind, self.name, self.path, self.detail = kind, name, path, message
        super().__init__(f"{kind} {name or '(unnamed)'} is invalid at {path}: {message}")


def _schema_file(kind: str) -> str:
    return f"{kind.lower()}.schema.json.gz"


def extract_crd_schemas(crd_dir: Path, out_dir: Path) -> list[Path]:
    """Copy each CRD's ``openAPIV3Schema`` to ``out_dir`` (used to refresh the bundled copy)."""
    from galaxy_argo.core.yamlio import load_yaml

    written = []
    for kind, filename in KINDS.items():
        crd = load_yaml((crd_dir / filename).read_text())
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        target = out_dir / _schema_file(kind)
        payload = json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()
        target.write_bytes(gzip.compress(payload, mtime=0))
        written.append(target)
    return written


def bundled_schema(kind: str) -> dict[str, Any]:
    """The CRD ``openAPIV3Schema`` for ``kind`` as shipped in the package, unmodified."""
    if kind not in KINDS:
        raise SchemaError(kind, "", "kind", f"unknown kind; expected one of {', '.join(KINDS)}")
    data = resources.files("galaxy_argo.core").joinpath("schemas", _schema_file(kind)).read_bytes()
    return json.loads(gzip.decompress(data))


def strict(schema: Any) -> Any:
    """Copy of ``schema`` forbidding properties the CRD does not list, where it lists some.

    Walks only the keywords that hold sub-schemas, so a *field* named ``properties`` or ``items``
    is never mistaken for a keyword.
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: strict(sub) for name, sub in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for keyword in ("items", "additionalProperties", "not"):
        if isinstance(out.get(keyword), dict):
            out[keyword] = strict(out[keyword])
    for keyword in ("anyOf", "allOf", "oneOf"):
        if isinstance(out.get(keyword), list):
            out[keyword] = [strict(sub) for sub in out[keyword]]
    return out


@cache
def _validator(kind: str) -> jsonschema.protocols.Validator:
    schema = strict(bundled_schema(kind))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def iter_errors(resource: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Every schema error of ``resource`` as ``(json path, message)``, most specific first."""
    kind = str(resource.get("kind", ""))
    if kind not in KINDS:
        yield "kind", f"{kind!r} is not one of {', '.join(KINDS)}"
        return
    if resource.get("apiVersion") != "argoproj.io/v1alpha1":
        yield "apiVersion", f"{resource.get('apiVersion')!r} is not 'argoproj.io/v1alpha1'"
    for error in sorted(
        _validator(kind).iter_errors(resource), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        leaf = _deepest(error)
        yield leaf.json_path, leaf.message


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    # For anyOf/oneOf failures the useful message is in the deepest sub-error.
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def validate(resource: Mapping[str, Any]) -> None:
    """Raise `SchemaError` for the first error of ``resource`` against its strict CRD schema."""
    for path, message in iter_errors(resource):
        name = str((resource.get("metadata") or {}).get("name", ""))
        raise SchemaError(str(resource.get("kind", "")), name, path, message)
