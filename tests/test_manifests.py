"""manifests/ renders with kustomize and every resource validates against its published schema.

Built-in kinds against Kubernetes' OpenAPI schemas (`kubernetes-validate`, strict), Argo's kinds
against the bundled CRD schema (strict), and the Argo configuration kept inside ConfigMaps
(artifact repository, UI links and columns) against Argo's swagger definitions (strict).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from galaxy_argo.core.argo_schema import strict, validate
from galaxy_argo.core.naming import LABEL_PREFIX
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.core.templates import build_templates
from galaxy_argo.core.yamlio import dump_yaml, load_yaml
from tests.conftest import ROOT, SHARED

MANIFESTS = ROOT / "manifests"
KUSTOMIZATIONS = ["base", "overlays/example", "overlays/aws-irsa"]
ARGO_V1 = "io.argoproj.workflow.v1alpha1"


def kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is required to render manifests/ (kubectl kustomize)")
    done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@cache
def swagger_validator(definition: str) -> jsonschema.Draft4Validator:
    definitions = json.loads((SHARED / "argo" / "swagger.json").read_text())["definitions"]
    strict_definitions = {name: strict(schema) for name, schema in definitions.items()}
    schema = {"$ref": f"#/definitions/{definition}", "definitions": strict_definitions}
    return jsonschema.Draft4Validator(schema)


def check_swagger(definition: str, value: Any) -> None:
    validator = swagger_validator(definition)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]
    assert not errors, f"{definition}: {errors}"


def by_kind(resources: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


@pytest.mark.parametrize("where", KUSTOMIZATIONS)
def test_every_resource_validates(where: str) -> None:
    resources = kustomize(MANIFESTS / where)
    version = kubernetes_validate.latest_version()
    kinds = set()
    for resource in resources:
        kinds.add(resource["kind"])
        if resource["apiVersion"].startswith("argoproj.io/"):
            validate(resource)
        else:
            kubernetes_validate.validate(resource, version, strict=True)
        if resource["kind"] == "ConfigMap" and resource["metadata"]["name"] == "artifact-repositories":
            for text in resource["data"].values():
                check_swagger(f"{ARGO_V1}.ArtifactRepository", load_yaml(text))
        assert resource["metadata"].get("namespace", "galaxy") == "galaxy"
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "WorkflowTemplate"} <= kinds


def test_a_schema_violation_is_caught() -> None:
    """The checks above can fail: a misspelt field is refused by each validator."""
    role = by_kind(kustomize(MANIFESTS / "base"))[("Role", "galaxy-argo-runner")]
    bad = {**role, "rules": [{**role["rules"][0], "verb": ["get"]}]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)
    with pytest.raises(AssertionError):
        check_swagger(f"{ARGO_V1}.ArtifactRepository", {"s3": {"bucket": "b", "endpont": "typo"}})


def test_rbac_is_least_privilege_and_namespaced() -> None:
    resources = by_kind(kustomize(MANIFESTS / "base"))
    assert not any(kind.startswith("Cluster") for kind, _ in resources)
    runner = resources[("Role", "galaxy-argo-runner")]["rules"]
    assert runner == [
        {
            "apiGroups": ["argoproj.io"],
            "resources": ["workflows"],
            "verbs": ["create", "get", "list", "watch", "delete", "patch"],
        },
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtemplates"], "verbs": ["get", "list"]},
    ]
    executor = resources[("Role", "galaxy-argo-executor")]["rules"]
    assert executor == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    ]
    bindings = {
        name: (b["roleRef"]["name"], [s["name"] for s in b["subjects"]])
        for (kind, name), b in resources.items()
        if kind == "RoleBinding"
    }
    assert bindings == {
        "galaxy-argo-runner": ("galaxy-argo-runner", ["galaxy-argo-runner"]),
        "galaxy-argo-executor": ("galaxy-argo-executor", ["galaxy-argo-workflow"]),
    }
    token = resources[("Secret", "galaxy-argo-runner.service-account-token")]
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == "galaxy-argo-runner"


def test_the_default_artifact_repository_is_the_runners_bucket_with_existing_credentials() -> None:
    settings = ArgoSettings()
    for where in ("base", "overlays/example"):
        resources = by_kind(kustomize(MANIFESTS / where))
        config = resources[("ConfigMap", "artifact-repositories")]
        default = config["metadata"]["annotations"]["workflows.argoproj.io/default-artifact-repository"]
        s3 = load_yaml(config["data"][default])["s3"]
        assert s3["bucket"] == settings.bucket
        for selector in (s3["accessKeySecret"], s3["secretKeySecret"]):
            secret = resources[("Secret", selector["name"])]
            assert selector["key"] in (secret.get("data") or {}) | (secret.get("stringData") or {})
    irsa = by_kind(kustomize(MANIFESTS / "overlays/aws-irsa"))
    assert ("Secret", "galaxy-argo-s3") not in irsa
    config = irsa[("ConfigMap", "artifact-repositories")]
    assert load_yaml(config["data"]["galaxy-argo"])["s3"]["useSDKCreds"] is True
    account = irsa[("ServiceAccount", "galaxy-argo-workflow")]
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]


def test_the_base_ships_the_workflow_templates_as_generated() -> None:
    shipped = [r for r in kustomize(MANIFESTS / "base") if r["kind"] == "WorkflowTemplate"]
    generated = list(build_templates().values())
    assert [t["metadata"]["name"] for t in shipped] == [t["metadata"]["name"] for t in generated]
    for ours, theirs in zip(shipped, generated, strict=True):
        assert ours["metadata"]["labels"].pop("app.kubernetes.io/part-of") == "galaxy-argo"
        assert ours["metadata"].pop("namespace") == "galaxy"
        assert ours == theirs, "manifests/base/workflowtemplates.yaml drifted: run `make templates`"


def test_argo_ui_component_patches_the_controller_configmap(tmp_path: Path) -> None:
    """Applied with Argo's install: links from a workflow to its Galaxy job, and list columns."""
    controller_config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "workflow-controller-configmap", "namespace": "argo"},
        "data": {"parallelism": "10"},
    }
    (tmp_path / "argo-install.yaml").write_text(dump_yaml(controller_config))
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["argo-install.yaml"],
        "components": [os.path.relpath(MANIFESTS / "components" / "argo-ui", tmp_path)],
    }
    (tmp_path / "kustomization.yaml").write_text(dump_yaml(kustomization))
    (config,) = kustomize(tmp_path)
    kubernetes_validate.validate(config, kubernetes_validate.latest_version(), strict=True)
    assert config["data"]["parallelism"] == "10"  # the site's own keys are kept
    links = load_yaml(config["data"]["links"])
    columns = load_yaml(config["data"]["columns"])
    for link in links:
        check_swagger(f"{ARGO_V1}.Link", link)
    for column in columns:
        check_swagger(f"{ARGO_V1}.Column", column)
    (job_link,) = links
    assert job_link["url"] == f"${{workflow.metadata.annotations.{LABEL_PREFIX}/job-url}}"
    # every column names a label the compiler puts on each workflow
    from tests.test_compile import compiled

    workflow_labels = compiled("one-input-one-output")["metadata"]["labels"]
    assert {c["key"] for c in columns} <= set(workflow_labels)
