"""Interpreter features Argo's examples do not cover: script, withParam, when, legacy dependencies,
parallelism, retry expressions, onExit with workflow.status, podSpecPatch memory, display names."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hera.workflows.service import WorkflowsService

from tests.local.conftest import pod_nodes, submit, wait_for

pytestmark = pytest.mark.engine


def workflow(name: str, templates: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"entrypoint": templates[0]["name"], "templates": templates, **spec},
    }


def echo(name: str = "echo") -> dict[str, Any]:
    return {
        "name": name,
        "inputs": {"parameters": [{"name": "msg"}]},
        "container": {"image": "busybox", "command": ["echo", "{{inputs.parameters.msg}}"]},
    }


def test_script_with_param_and_when(service: WorkflowsService) -> None:
    templates = [
        {
            "name": "main",
            "steps": [
                [{"name": "gen", "template": "gen"}],
                [
                    {
                        "name": "each",
                        "template": "echo",
                        "withParam": "{{steps.gen.outputs.result}}",
                        "arguments": {"parameters": [{"name": "msg", "value": "{{item.n}}-{{item.s}}"}]},
                    }
                ],
                [
                    {
                        "name": "skipped",
                        "template": "echo",
                        "when": "{{steps.gen.status}} != Succeeded",
                        "arguments": {"parameters": [{"name": "msg", "value": "never"}]},
                    },
                    {
                        "name": "ran",
                        "template": "echo",
                        "when": "'{{workflow.name}}' == 'features-script'",
                        "arguments": {"parameters": [{"name": "msg", "value": "yes"}]},
                    },
                ],
            ],
        },
        {
            "name": "gen",
            "script": {
                "image": "python:3.12",
                "command": ["python"],
                "source": "import json\nprint(json.dumps([{'n': i, 's': 'x'} for i in range(3)]))",
            },
        },
        echo(),
    ]
    name = submit(service, workflow("features-script", templates))
    wf = wait_for(service, name)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    results = sorted(n["outputs"]["result"] for n in pod_nodes(wf) if n["templateName"] == "echo")
    assert results == ["0-x", "1-x", "2-x", "yes"]
    skipped = [n for n in wf["status"]["nodes"].values() if n["type"] == "Skipped"]
    assert len(skipped) == 1 and skipped[0]["message"] == "when 'Succeeded != Succeeded' evaluated false"


def test_legacy_dependencies_and_depends_on_failure(service: WorkflowsService) -> None:
    templates = [
        {
            "name": "main",
            "dag": {
                "tasks": [
                    {"name": "a", "template": "fail"},
                    {
                        "name": "b",
                        "template": "echo",
                        "depends": "a.Failed",
                        "arguments": {"parameters": [{"name": "msg", "value": "handled"}]},
                    },
                    {
                        "name": "c",
                        "template": "echo",
                        "dependencies": ["b"],
                        "arguments": {
                            "parameters": [{"name": "msg", "value": "{{tasks.b.outputs.result}}!"}]
                        },
                    },
                    {
                        "name": "d",
                        "template": "echo",
                        "depends": "a.Succeeded",
                        "arguments": {"parameters": [{"name": "msg", "value": "omitted"}]},
                    },
                ]
            },
        },
        {"name": "fail", "container": {"image": "busybox", "command": ["sh", "-c", "exit 2"]}},
        echo(),
    ]
    name = submit(service, workflow("features-dag", templates))
    wf = wait_for(service, name)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    by_display = {n["displayName"]: n for n in wf["status"]["nodes"].values()}
    assert by_display["a"]["phase"] == "Failed"
    assert by_display["c"]["outputs"]["result"] == "handled!"
    assert by_display["d"]["phase"] == "Omitted"


def test_workflow_parallelism_limits_running_pods(service: WorkflowsService) -> None:
    templates = [
        {"name": "main", "steps": [[{"name": "s", "template": "nap", "withItems": [1, 2, 3]}]]},
        {"name": "nap", "container": {"image": "busybox", "command": ["sh", "-c", "sleep 1"]}},
    ]
    name = submit(service, workflow("features-parallelism", templates, parallelism=1))
    wf = wait_for(service, name)
    assert wf["status"]["phase"] == "Succeeded"
    spans = sorted((n["startedAt"], n["finishedAt"]) for n in pod_nodes(wf))
    assert len(spans) == 3
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, spans


def test_retry_expression_decides(service: WorkflowsService) -> None:
    retry = {"limit": "3", "retryPolicy": "Always", "expression": "asInt(lastRetry.exitCode) == 2"}
    templates = [
        {
            "name": "main",
            "retryStrategy": retry,
            "container": {"image": "busybox", "command": ["sh", "-c", "exit {{workflow.parameters.code}}"]},
        }
    ]
    for code, attempts in (("2", 4), ("3", 1)):
        document = workflow(
            f"features-retry-{code}", templates, arguments={"parameters": [{"name": "code", "value": code}]}
        )
        wf = wait_for(service, submit(service, document))
        assert wf["status"]["phase"] == "Failed"
        assert len(pod_nodes(wf)) == attempts
        retry_node = wf["status"]["nodes"][wf["metadata"]["name"]]
        assert retry_node["type"] == "Retry" and retry_node["message"] == f"main: Error (exit code {code})"


def test_on_exit_sees_the_workflow_status(service: WorkflowsService) -> None:
    templates = [
        {"name": "main", "container": {"image": "busybox", "command": ["sh", "-c", "exit 1"]}},
        {
            "name": "report",
            "container": {"image": "busybox", "command": ["echo", "status={{workflow.status}}"]},
        },
    ]
    wf = wait_for(service, submit(service, workflow("features-onexit", templates, onExit="report")))
    assert wf["status"]["phase"] == "Failed"
    handler = next(n for n in pod_nodes(wf) if n["name"].endswith(".onExit"))
    assert handler["outputs"]["result"] == "status=Failed"


def test_pod_spec_patch_sets_the_memory_limit(service: WorkflowsService) -> None:
    limits = {"limits": {"memory": "{{workflow.parameters.mem}}"}}
    patch = json.dumps({"containers": [{"name": "main", "resources": limits}]})
    templates = [
        {
            "name": "main",
            "podSpecPatch": patch,
            "container": {
                "image": "python:3.12",
                "command": ["python", "-c", "b = bytearray(200 * 1024 * 1024)"],
            },
        }
    ]
    for memory, phase in (("64Mi", "Failed"), ("1Gi", "Succeeded")):
        document = workflow(
            f"features-patch-{memory.lower()}",
            templates,
            arguments={"parameters": [{"name": "mem", "value": memory}]},
        )
        wf = wait_for(service, submit(service, document))
        assert wf["status"]["phase"] == phase
        if phase == "Failed":
            assert pod_nodes(wf)[0]["message"] == "main: OOMKilled (exit code 137)"


def test_display_name_from_the_templates_annotations(service: WorkflowsService) -> None:
    """As Argo: `templates[].annotations` names the node; the pod's `metadata` does not."""
    named = {**echo("named"), "annotations": {"workflows.argoproj.io/display-name": "Say hello"}}
    pod_only = {**echo("pod-only"), "metadata": {"annotations": {"workflows.argoproj.io/display-name": "x"}}}
    arguments = {"parameters": [{"name": "msg", "value": "hi"}]}
    steps = {
        "name": "both",
        "steps": [
            [
                {"name": "a", "template": "named", "arguments": arguments},
                {"name": "b", "template": "pod-only", "arguments": arguments},
            ]
        ],
    }
    wf = wait_for(service, submit(service, workflow("features-display-name", [steps, named, pod_only])))
    assert wf["status"]["phase"] == "Succeeded"
    assert sorted(n["displayName"] for n in pod_nodes(wf)) == ["Say hello", "b"]
