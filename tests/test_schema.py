"""Everything we emit validates against Argo's CRD schema (strict) and Argo's schema.json."""

from __future__ import annotations

import copy
import gzip
import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from galaxy_argo.core import argo_schema
from galaxy_argo.core.argo_schema import KINDS, SchemaError, iter_errors, strict, validate
from galaxy_argo.core.yamlio import load_yaml
from tests.conftest import GOLDEN, ROOT, SHARED

GOLDEN_FILES = sorted(GOLDEN.glob("*.yaml"))
TEMPLATE_FILES = sorted((ROOT / "workflow_templates").glob("*.yaml"))


@cache
def schema_json_validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SHARED / "argo" / "schema.json").read_text())
    root = {
        "$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}",
        "definitions": schema["definitions"],
    }
    return jsonschema.Draft202012Validator(root)


def test_bundled_schemas_are_argos_crds_verbatim(shared_dir: Path) -> None:
    for kind, filename in KINDS.items():
        crd = load_yaml((shared_dir / "argo" / "crds" / filename).read_text())
        expected = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert argo_schema.bundled_schema(kind) == expected, f"{kind}: run `galaxy-argo schemas refresh`"


def test_there_is_something_to_validate(shared_dir: Path) -> None:
    assert len(GOLDEN_FILES) >= 6 and TEMPLATE_FILES
    assert len(EXAMPLES) >= 15, "Argo's examples are missing from ../shared/argo/examples"


@pytest.mark.parametrize("path", GOLDEN_FILES + TEMPLATE_FILES, ids=lambda p: p.name)
def test_emitted_resources_validate_strictly(path: Path, shared_dir: Path) -> None:
    resource = load_yaml(path.read_text())
    assert list(iter_errors(resource)) == []
    errors = [
        f"{e.json_path}: {e.message}" for e in schema_json_validator(resource["kind"]).iter_errors(resource)
    ]
    assert errors == []


def test_strictness_catches_a_misspelt_field() -> None:
    resource = load_yaml(GOLDEN_FILES[0].read_text())
    broken = copy.deepcopy(resource)
    broken["spec"]["templates"][0]["activeDeadlineSecond"] = "10"
    with pytest.raises(SchemaError) as err:
        validate(broken)
    assert err.value.path == "$.spec.templates[0]"
    assert "'activeDeadlineSecond' was unexpected" in err.value.detail
    broken = copy.deepcopy(resource)
    broken["spec"]["templates"][0]["containerSet"]["containers"][1]["resources"]["limits"]["memory"] = "lots"
    with pytest.raises(SchemaError, match=r"containers\[1\]\.resources\.limits\.memory"):
        validate(broken)


def test_intorstring_as_integer_is_refused_by_schema_json() -> None:
    resource = load_yaml((GOLDEN / "walltime-scheduling.yaml").read_text())
    resource["spec"]["templates"][0]["retryStrategy"]["limit"] = 3
    errors = [e.message for e in schema_json_validator("Workflow").iter_errors(resource)]
    assert errors == ["3 is not of type 'string'"]


def test_preserve_unknown_fields_stay_open() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
            "properties": {"type": "object", "properties": {"x": {"type": "string"}}},
        },
    }
    out = strict(schema)
    assert out["additionalProperties"] is False
    assert out["properties"]["a"]["additionalProperties"] is False
    assert "additionalProperties" not in out["properties"]["free"]
    assert out["properties"]["properties"]["additionalProperties"] is False  # a field named "properties"


def test_unknown_kind_and_version_are_reported() -> None:
    assert list(iter_errors({"kind": "Pod"})) == [
        ("kind", "'Pod' is not one of Workflow, WorkflowTemplate, ClusterWorkflowTemplate")
    ]
    errors = list(iter_errors({"kind": "Workflow", "apiVersion": "v1", "metadata": {}, "spec": {}}))
    assert errors[0] == ("apiVersion", "'v1' is not 'argoproj.io/v1alpha1'")


EXAMPLES = sorted((SHARED / "argo" / "examples").rglob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(SHARED / "argo" / "examples")))
def test_argos_own_examples_validate(path: Path) -> None:
    # The validator must accept what Argo itself ships, or it would refuse valid user workflows.
    for document in load_yaml_all(path):
        if document and document.get("kind") in KINDS:
            assert list(iter_errors(document)) == []


def load_yaml_all(path: Path) -> list:
    import yaml

    return list(yaml.safe_load_all(path.read_text()))


def test_bundled_files_are_gzip_json() -> None:
    for kind in KINDS:
        data = (ROOT / "galaxy_argo" / "core" / "schemas" / f"{kind.lower()}.schema.json.gz").read_bytes()
        assert isinstance(json.loads(gzip.decompress(data)), dict)
