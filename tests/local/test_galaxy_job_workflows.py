"""Compiled Galaxy job workflows and the reusable template, run for real on the embedded stack.

This is where the compiler's promises are checked end to end: inputs verified by sha256 before the
tool runs, outputs and the job directory returned with a manifest, a failing tool's files kept,
OOM and deadlines reported the way Kubernetes reports them and not retried.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hera.workflows.models import WorkflowCreateRequest, WorkflowTemplateCreateRequest
from hera.workflows.service import WorkflowsService

from galaxy_argo.core.compile import compile_job, returned_keys
from galaxy_argo.core.metrics import workflow_metrics
from galaxy_argo.core.outcome import OutcomeState, outcome_of
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.core.spec import JobSpec, Resources, StagedFile, StagedKind
from galaxy_argo.core.templates import build_templates
from galaxy_argo.local.stack import EmbeddedStack
from tests.local.conftest import pod_nodes, submit, wait_for

pytestmark = pytest.mark.engine


def put(stack: EmbeddedStack, key: str, data: bytes) -> None:
    assert stack.s3 is not None
    stack.s3.client().put_object(Bucket=stack.bucket, Key=key, Body=data)


def get(stack: EmbeddedStack, key: str) -> bytes:
    assert stack.s3 is not None
    return stack.s3.client().get_object(Bucket=stack.bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]


def job_bundle(files: dict[str, str]) -> bytes:
    """A job directory as Argo's tgz convention has it: one top-level entry."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in {"working/.keep": "", **files}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"job/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_job(
    stack: EmbeddedStack,
    job_id: str,
    command: str,
    content: bytes = b"hello galaxy\n",
    uploaded: bytes | None = None,
    **kwargs: Any,
) -> JobSpec:
    prefix = f"tests/jobs/{job_id}"
    digest = hashlib.sha256(content).hexdigest()
    put(stack, f"{prefix}/in/input1", content if uploaded is None else uploaded)
    put(stack, f"{prefix}/job.tgz", job_bundle({"tool_script.sh": command}))
    return JobSpec(
        job_id=job_id,
        tool_id="toolshed.example.org/repos/test/cat/cat/1.0",
        tool_version="1.0",
        command_line="sh /galaxy/job/tool_script.sh",
        key_prefix=prefix,
        image="debian:bookworm-slim",
        job_directory=StagedFile("job-directory", "/galaxy/job", f"{prefix}/job.tgz", StagedKind.DIRECTORY),
        inputs=(
            StagedFile(
                "input1",
                "/galaxy/inputs/dataset_1.dat",
                f"{prefix}/in/input1",
                size=len(content),
                sha256=digest,
            ),
        ),
        outputs=(StagedFile("out_file1", "/galaxy/outputs/dataset_2.dat", f"{prefix}/out/dataset_2.dat"),),
        **kwargs,
    ).validate()


def run_job(service: WorkflowsService, spec: JobSpec, **params: str) -> dict[str, Any]:
    settings = ArgoSettings.from_params({"namespace": "galaxy", **params})
    workflow = compile_job(spec, settings).to_dict()
    created = service.create_workflow(WorkflowCreateRequest(workflow=workflow))
    return wait_for(service, str(created.metadata.name), timeout=120)


def manifest(wf: dict[str, Any]) -> dict[str, Any]:
    pod = next(n for n in pod_nodes(wf))
    params = {p["name"]: p.get("value", "") for p in pod["outputs"].get("parameters", [])}
    return json.loads(params["outputs-manifest"])  # type: ignore[no-any-return]


def containers(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["displayName"]: n for n in wf["status"]["nodes"].values() if n["type"] == "Container"}


def test_a_galaxy_job_runs_and_returns_outputs_manifest_and_job_directory(
    stack: EmbeddedStack, service: WorkflowsService
) -> None:
    spec = make_job(
        stack,
        "101",
        "cd /galaxy/job/working && tr a-z A-Z < /galaxy/inputs/dataset_1.dat "
        "> /galaxy/outputs/dataset_2.dat && echo done > log.txt",
    )
    wf = run_job(service, spec)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert wf["metadata"]["name"] == "galaxy-main-101"
    assert outcome_of(wf).state is OutcomeState.SUCCEEDED and outcome_of(wf).exit_code == 0
    result = manifest(wf)
    assert result["exit_code"] == 0 and result["missing"] == []
    (out,) = result["files"]
    data = get(stack, spec.outputs[0].key)
    assert data == b"HELLO GALAXY\n"
    assert out == {
        "name": "out_file1",
        "path": "/galaxy/outputs/dataset_2.dat",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert json.loads(get(stack, returned_keys(spec)["outputs-manifest"])) == result
    with tarfile.open(fileobj=io.BytesIO(get(stack, returned_keys(spec)["job-directory"]))) as tar:
        names = tar.getnames()
        assert "job/working/log.txt" in names and "job/tool_script.sh" in names
    assert get(stack, spec.inputs[0].key) == b"hello galaxy\n"
    metrics = workflow_metrics(wf)
    assert metrics["pod_attempts"] == 1 and metrics["node"] == os.uname().nodename
    assert {"stage_in_seconds", "tool_seconds", "stage_out_seconds", "queued_seconds"} <= set(metrics)
    assert metrics["resources_duration_cpu"] >= 1


def test_reference_data_prefix_is_loaded_as_a_directory(
    stack: EmbeddedStack, service: WorkflowsService
) -> None:
    # As Argo's S3 driver does: a key with objects below it is a directory, loaded recursively.
    for key, data in {
        "tests/reference/hg/seq/hg.fa": b">chr1\nACGT\n",
        "tests/reference/hg/seq/hg.fa.fai": b"chr1\t4\t6\t4\t5\n",
        "tests/reference/hg/seq/sub/notes.txt": b"nested\n",
        "tests/reference/hg/other/unused.txt": b"not loaded\n",
    }.items():
        put(stack, key, data)
    pod = "/galaxy/reference/data/hg/seq"
    base = make_job(
        stack,
        "106",
        f"cat {pod}/hg.fa.fai {pod}/sub/notes.txt > /galaxy/outputs/dataset_2.dat && "
        f"ls /galaxy/reference/data/hg >> /galaxy/outputs/dataset_2.dat",
    )
    reference = StagedFile("ref-seq", pod, "tests/reference/hg/seq", StagedKind.PREFIX)
    spec = dataclasses.replace(base, inputs=(*base.inputs, reference)).validate()
    wf = run_job(service, spec)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert get(stack, spec.outputs[0].key) == b"chr1\t4\t6\t4\t5\nnested\nseq\n"


def test_a_corrupt_input_stops_the_job_before_the_tool_runs(
    stack: EmbeddedStack, service: WorkflowsService
) -> None:
    spec = make_job(stack, "102", "touch /galaxy/job/working/tool-ran", uploaded=b"hello galaxY\n")
    wf = run_job(service, spec)
    assert wf["status"]["phase"] == "Failed"
    message = pod_nodes(wf)[0]["message"]
    assert message.startswith("stage-in: Error (exit code 1): input /galaxy/inputs/dataset_1.dat has sha256 ")
    assert containers(wf)["run"]["phase"] in ("Failed", "Error")  # never started: dependency failed
    assert len(pod_nodes(wf)) == 1  # bad input is not an infrastructure failure: no retry
    outcome = outcome_of(wf)
    assert outcome.state is OutcomeState.BAD_INPUT
    assert outcome.reason.startswith(
        "an input did not arrive intact: input /galaxy/inputs/dataset_1.dat has sha256"
    )


def test_a_failing_tool_keeps_its_files_and_exit_code(
    stack: EmbeddedStack, service: WorkflowsService
) -> None:
    spec = make_job(
        stack,
        "103",
        "echo partial > /galaxy/outputs/dataset_2.dat; "
        "echo 'tool error' > /galaxy/job/working/stderr.txt; exit 3",
    )
    wf = run_job(service, spec)
    assert wf["status"]["phase"] == "Failed"
    assert pod_nodes(wf)[0]["message"] == "main: Error (exit code 3): tool exited with code 3"
    assert len(pod_nodes(wf)) == 1  # the tool's own failure is never retried
    result = manifest(wf)
    assert result["exit_code"] == 3
    assert (outcome_of(wf).state, outcome_of(wf).reason, outcome_of(wf).exit_code) == (
        OutcomeState.TOOL_FAILED,
        "the tool exited with code 3",
        3,
    )
    assert get(stack, spec.outputs[0].key) == b"partial\n"
    with tarfile.open(fileobj=io.BytesIO(get(stack, returned_keys(spec)["job-directory"]))) as tar:
        stderr = tar.extractfile("job/working/stderr.txt")
        assert stderr is not None and stderr.read() == b"tool error\n"


def test_over_the_memory_limit_is_oomkilled_and_not_retried(
    stack: EmbeddedStack, service: WorkflowsService
) -> None:
    spec = make_job(
        stack,
        "104",
        "python3 -c 'b = bytearray(400 * 1024 * 1024); print(len(b))'",
        resources=Resources(cores=1, memory_mib=64),
    )
    wf = run_job(service, spec)
    assert wf["status"]["phase"] == "Failed"
    assert pod_nodes(wf)[0]["message"] == "run: OOMKilled (exit code 137)"
    assert containers(wf)["run"]["phase"] == "Failed"
    assert len(pod_nodes(wf)) == 1
    assert outcome_of(wf, memory_limit="64 MiB").reason == (
        "the tool used more memory than its limit (64 MiB) and was killed (OOMKilled)"
    )


def test_walltime_is_the_pod_deadline(stack: EmbeddedStack, service: WorkflowsService) -> None:
    spec = make_job(stack, "105", "sleep 60", resources=Resources(walltime_seconds=2))
    wf = run_job(service, spec)
    assert wf["status"]["phase"] == "Failed"
    assert pod_nodes(wf)[0]["message"] == "Pod was active on the node longer than the specified deadline"
    assert len(pod_nodes(wf)) == 1
    assert outcome_of(wf).state is OutcomeState.WALLTIME


def test_reusable_template_runs_with_argo_submit_from_semantics(
    stack: EmbeddedStack, service: WorkflowsService
) -> None:
    (template,) = build_templates().values()
    service.create_workflow_template(WorkflowTemplateCreateRequest(template=template))
    put(stack, "team/reads/a.txt", b"one\ntwo\n")
    put(stack, "team/reads/sub/b.txt", b"three\n")
    checklist = (
        f"{hashlib.sha256(b'one' + bytes([10]) + b'two' + bytes([10])).hexdigest()} 8 /galaxy/inputs/a.txt\n"
    )
    # What `argo submit --from workflowtemplate/galaxy-tool-job -p ...` creates:
    name = submit(
        service,
        {
            "metadata": {"generateName": "galaxy-tool-job-"},
            "spec": {
                "workflowTemplateRef": {"name": "galaxy-tool-job"},
                "arguments": {
                    "parameters": [
                        {"name": "image", "value": "debian:bookworm-slim"},
                        {
                            "name": "command",
                            "value": "cat /galaxy/inputs/a.txt /galaxy/inputs/sub/b.txt | wc -l > count.txt",
                        },
                        {"name": "inputs-key", "value": "team/reads"},
                        {"name": "outputs-key", "value": "team/counts"},
                        {"name": "inputs-sha256", "value": checklist},
                        {"name": "memory", "value": "256Mi"},
                    ]
                },
            },
        },
    )
    wf = wait_for(service, name)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert get(stack, "team/counts/count.txt").strip() == b"3"
    result = manifest(wf)
    assert [f["name"] for f in result["files"]] == ["outputs/count.txt"]


@pytest.fixture(scope="module", autouse=True)
def _state_dir_is_not_polluted(stack: EmbeddedStack) -> None:
    assert Path(stack.state_dir).is_dir()
