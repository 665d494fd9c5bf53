"""workflow_templates/ is generated from the compiler's builders and does not drift."""

from __future__ import annotations

from pathlib import Path

from galaxy_argo.core.templates import GENERATED_HEADER, TOOL_JOB_TEMPLATE, build_templates, render_templates
from galaxy_argo.core.yamlio import load_yaml
from tests.conftest import ROOT

COMMITTED = ROOT / "workflow_templates"


def test_committed_templates_match_the_builders(tmp_path: Path) -> None:
    rendered = {p.name: p.read_text() for p in render_templates(tmp_path)}
    committed = {p.name: p.read_text() for p in COMMITTED.glob("*.yaml")}
    assert committed == rendered, "workflow_templates/ drifted: run `make templates`"
    for text in committed.values():
        assert text.startswith(GENERATED_HEADER)


def test_tool_job_template_parameters_and_pod() -> None:
    template = load_yaml((COMMITTED / f"{TOOL_JOB_TEMPLATE}.yaml").read_text())
    assert template["kind"] == "WorkflowTemplate" and template["metadata"]["name"] == TOOL_JOB_TEMPLATE
    arguments = {p["name"]: p for p in template["spec"]["arguments"]["parameters"]}
    assert set(arguments) == {
        "image",
        "command",
        "inputs-key",
        "outputs-key",
        "inputs-sha256",
        "cores",
        "memory",
    }
    for required in ("image", "command", "inputs-key", "outputs-key"):
        assert "value" not in arguments[required]  # `argo submit` must be given -p for these
    assert arguments["memory"]["value"] == "1Gi"
    (pod,) = template["spec"]["templates"]
    assert [c["name"] for c in pod["containerSet"]["containers"]] == ["stage-in", "run", "main"]
    run = pod["containerSet"]["containers"][1]
    assert run["image"] == "{{inputs.parameters.image}}"
    assert run["args"][0] == "{{inputs.parameters.command}}"
    inputs = {a["name"]: a for a in pod["inputs"]["artifacts"]}
    assert inputs["inputs"]["s3"] == {"key": "{{inputs.parameters.inputs-key}}"}
    assert inputs["inputs-sha256"]["raw"]["data"] == "{{inputs.parameters.inputs-sha256}}"
    (outputs,) = pod["outputs"]["artifacts"]
    assert outputs["s3"] == {"key": "{{inputs.parameters.outputs-key}}"} and outputs["archive"] == {
        "none": {}
    }
    assert "{{inputs.parameters.memory}}" in pod["podSpecPatch"]


def test_templates_share_the_job_builders() -> None:
    # Same stage scripts as compiled Galaxy jobs: the template is not a hand-kept copy.
    from galaxy_argo.core.stage_scripts import STAGE_IN, STAGE_OUT

    (template,) = build_templates().values()
    containers = template["spec"]["templates"][0]["containerSet"]["containers"]
    assert containers[0]["args"] == [STAGE_IN]
    assert containers[2]["args"] == [STAGE_OUT]
