"""ArgoJobRunner against a real Galaxy, the embedded engine over HTTP and the real S3 server."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from galaxy_argo.clients.argo import ArgoClient
from galaxy_argo.core.naming import LABEL_PREFIX
from galaxy_argo.dev.environment import DEMO_REFERENCE_PREFIX, DEMO_REFERENCE_ROOT, DevEnvironment
from galaxy_argo.dev.galaxy_api import GalaxyAPI
from galaxy_argo.local.stack import StackInfo
from tests.galaxy_env import UNPUSHED_PREFIX, output_ids, run_and_wait, wait_for_galaxy

pytestmark = pytest.mark.galaxy


def objects_under(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return list(listing.get("Contents", []))


def test_plain_tool_runs_as_a_named_labelled_workflow_and_cleans_its_objects(
    api: GalaxyAPI,
    history: str,
    text_dataset: Callable[..., str],
    argo: ArgoClient,
    s3: Any,
    stack_info: StackInfo,
) -> None:
    dataset = text_dataset("hello\nargo\n")
    reply, job = run_and_wait(api, history, "argo_upper", {"input": {"src": "hda", "id": dataset}})
    assert job["state"] == "ok", job
    assert api.dataset_content(output_ids(reply)["output"]) == b"HELLO\nARGO\n"
    # the sha256 the output was verified against is kept as Galaxy's DatasetHash, for later jobs
    hashes = api.dataset(output_ids(reply)["output"])["hashes"]
    assert [(h["hash_function"], h["hash_value"]) for h in hashes] == [
        ("SHA-256", hashlib.sha256(b"HELLO\nARGO\n").hexdigest())
    ]
    name = job["external_id"]
    assert name.startswith("galaxy-main-")
    workflow = argo.get(name)
    assert workflow is not None and workflow["status"]["phase"] == "Succeeded"
    labels = workflow["metadata"]["labels"]
    assert labels[f"{LABEL_PREFIX}/tool-id"] == "argo_upper"
    assert labels[f"{LABEL_PREFIX}/job-id"] == name.removeprefix("galaxy-main-")
    assert workflow["metadata"]["annotations"]["workflows.argoproj.io/title"].startswith(
        "Upper-case text · Galaxy job"
    )
    containers = {c["name"] for c in workflow["spec"]["templates"][0]["containerSet"]["containers"]}
    assert containers == {"stage-in", "run", "metadata", "main"}
    # the UI's graph: the pod named after the tool and job, its containers after the steps
    nodes = workflow["status"]["nodes"].values()
    job_label = name.removeprefix("galaxy-main-")
    assert {n["displayName"] for n in nodes if n["type"] == "Pod"} == {f"Upper-case text · job {job_label}"}
    assert {n["displayName"] for n in nodes if n["type"] == "Container"} == containers
    # Argo's numbers are job metrics next to Galaxy's own (the user is an admin: all are shown)
    metrics = {(m["plugin"], m["name"]): m["raw_value"] for m in api.job_metrics(job["id"])}
    assert metrics[("argo", "pod_attempts")] == "1.0000000"
    assert metrics[("argo", "node")] == os.uname().nodename
    # the pod name as operators meet it: the one the pod's logs come from
    assert {pod for pod, _ in argo.logs(name, container="run")} == {metrics[("argo", "pod_name")]}
    assert float(metrics[("argo", "tool_seconds")]) >= 0
    assert float(metrics[("argo", "uploaded_bytes")]) + float(metrics[("argo", "reused_objects")]) > 0
    assert float(metrics[("argo", "submit_seconds")]) > 0 and float(metrics[("argo", "collect_seconds")]) > 0
    assert ("argo", "poll_lag_seconds") in metrics and ("argo", "local_metadata_seconds") not in metrics
    assert ("core", "runtime_seconds") in metrics  # Galaxy's own, from the returned job directory
    # cleanup: onsuccess (default) removes the job's own objects once Galaxy has them; the runner
    # deletes them right after Galaxy's finish, which the API may already report as ok
    wait_for_galaxy(
        lambda: objects_under(s3, stack_info.bucket, f"galaxy-argo/jobs/{name}/") == [],
        30,
        "the job's objects to be deleted",
    )


def test_a_job_submitted_through_the_kubernetes_api(
    api: GalaxyAPI, history: str, text_dataset: Callable[..., str], argo: ArgoClient
) -> None:
    """`submission: kubernetes`: the Workflow resource created, watched and read without Argo's REST."""
    dataset = text_dataset("through\nkubernetes\n")
    reply, job = run_and_wait(api, history, "argo_upper_kube", {"input": {"src": "hda", "id": dataset}})
    assert job["state"] == "ok", job
    assert api.dataset_content(output_ids(reply)["output"]) == b"THROUGH\nKUBERNETES\n"
    workflow = argo.get(job["external_id"])  # the same workflow, seen through the Argo Server
    assert workflow is not None and workflow["status"]["phase"] == "Succeeded"
    assert workflow["metadata"]["labels"][f"{LABEL_PREFIX}/tool-id"] == "argo_upper_kube"
    metrics = {(m["plugin"], m["name"]): m["raw_value"] for m in api.job_metrics(job["id"])}
    assert metrics[("argo", "pod_attempts")] == "1.0000000"


def test_several_inputs_and_outputs(api: GalaxyAPI, history: str, text_dataset: Callable[..., str]) -> None:
    first = text_dataset("a\nb\n")
    second = text_dataset("c\n")
    reply, job = run_and_wait(
        api,
        history,
        "argo_multi",
        {"first": {"src": "hda", "id": first}, "second": {"src": "hda", "id": second}},
    )
    assert job["state"] == "ok", job
    outputs = output_ids(reply)
    assert len(outputs) == 2
    contents = {name: api.dataset_content(i) for name, i in outputs.items()}
    assert any(b"a\nb\nc\n" == c for c in contents.values()), contents


def test_from_work_dir_output(api: GalaxyAPI, history: str, text_dataset: Callable[..., str]) -> None:
    dataset = text_dataset("x\ny\nz\n")
    reply, job = run_and_wait(api, history, "argo_from_work_dir", {"input": {"src": "hda", "id": dataset}})
    assert job["state"] == "ok", job
    content = api.dataset_content(next(iter(output_ids(reply).values())))
    assert content.strip(), "from_work_dir output came back empty"


def test_discovered_datasets_come_back(api: GalaxyAPI, history: str) -> None:
    reply, job = run_and_wait(api, history, "argo_discover", {"count": 3})
    assert job["state"] == "ok", job
    collection = reply["output_collections"][0]["id"]
    elements = wait_for_galaxy(
        lambda: api.get(f"/api/dataset_collections/{collection}")["elements"],
        60,
        "the discovered collection's elements",
    )
    names = sorted(e["element_identifier"] for e in elements)
    assert names == ["part_1", "part_2", "part_3"]
    first = elements[0]["object"]["id"]
    assert api.dataset_content(first).startswith(b"part ")


def test_tool_directory_script(api: GalaxyAPI, history: str, text_dataset: Callable[..., str]) -> None:
    dataset = text_dataset("one\ntwo\n")
    reply, job = run_and_wait(api, history, "argo_script", {"input": {"src": "hda", "id": dataset}})
    assert job["state"] == "ok", job
    assert api.dataset_content(next(iter(output_ids(reply).values()))).strip()


def test_reference_data_is_loaded_from_the_bucket(api: GalaxyAPI, history: str, argo: ArgoClient) -> None:
    # The .loc file names /galaxy-argo-demo/reference/...: Galaxy's host does not have it; the
    # destination's reference_data maps it to the prefix DevEnvironment pushed the genomes to.
    assert not Path(DEMO_REFERENCE_ROOT).exists()
    reply, job = run_and_wait(api, history, "argo_reference", {"genome": "tiny"})
    assert job["state"] == "ok", job
    assert api.dataset_content(output_ids(reply)["output"]) == b"sequences\t3\nchrA\t14\nchrB\t10\nchrC\t2\n"
    workflow = argo.get(job["external_id"])
    assert workflow is not None
    loaded = {
        a["path"]: a["s3"]["key"]
        for a in workflow["spec"]["templates"][0]["inputs"]["artifacts"]
        if a["path"].startswith("/galaxy/reference/")
    }
    # The genome's directory only: not the other genome, not the whole reference tree.
    assert loaded == {f"/galaxy/reference{DEMO_REFERENCE_ROOT}/tiny/seq": f"{DEMO_REFERENCE_PREFIX}/tiny/seq"}


def test_reference_data_missing_from_the_bucket_says_where(api: GalaxyAPI, history: str) -> None:
    reply, job = run_and_wait(api, history, "argo_reference_unpushed", {"genome": "tiny"})
    assert job["state"] == "error"
    assert job.get("external_id") is None  # nothing was submitted
    path = f"{DEMO_REFERENCE_ROOT}/tiny/seq/tiny.fa"
    message = (
        f"could not submit the job to Argo: reference data {path} is not in the bucket "
        f"(nothing below s3://galaxy-argo/{UNPUSHED_PREFIX}/tiny/seq/)"
    )
    assert len(message) > 255  # more than Galaxy keeps: shortened, and whole in stderr
    seen = what_the_user_sees(api, reply)
    assert seen.endswith(" ... (full text in stderr)") and len(seen) <= 255
    assert message.startswith(seen.removesuffix(" ... (full text in stderr)"))
    assert f"galaxy-argo: {message}" in job["tool_stderr"]


def test_tool_failure_shows_exit_code_and_stderr(api: GalaxyAPI, history: str) -> None:
    _, job = run_and_wait(api, history, "argo_fail", {})
    assert job["state"] == "error"
    assert job["exit_code"] == 1
    assert "something went wrong" in job["tool_stderr"]


def test_same_input_twice_is_uploaded_once(
    api: GalaxyAPI, history: str, text_dataset: Callable[..., str], s3: Any, stack_info: StackInfo
) -> None:
    text = "uploaded once\n"
    dataset = text_dataset(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    key = f"galaxy-argo/objects/sha256/{digest[:2]}/{digest}"
    _, job = run_and_wait(api, history, "argo_upper", {"input": {"src": "hda", "id": dataset}})
    assert job["state"] == "ok"
    first = s3.head_object(Bucket=stack_info.bucket, Key=key)
    _, job = run_and_wait(api, history, "argo_upper", {"input": {"src": "hda", "id": dataset}})
    assert job["state"] == "ok"
    second = s3.head_object(Bucket=stack_info.bucket, Key=key)
    assert second["LastModified"] == first["LastModified"]
    assert second["ETag"] == first["ETag"]


def test_local_metadata_on_a_bundled_tool(
    api: GalaxyAPI, history: str, text_dataset: Callable[..., str], argo: ArgoClient
) -> None:
    dataset = text_dataset("chr1\t1\t2\n", file_type="tabular")
    reply, job = run_and_wait(api, history, "cat1", {"input1": {"src": "hda", "id": dataset}})
    assert job["state"] == "ok", job
    workflow = argo.get(job["external_id"])
    assert workflow is not None
    containers = {c["name"] for c in workflow["spec"]["templates"][0]["containerSet"]["containers"]}
    assert "metadata" not in containers  # metadata: local on this environment
    out = api.dataset(next(iter(output_ids(reply).values())))
    assert out["extension"] == "tabular" and out["metadata_columns"] == 3
    names = {m["name"] for m in api.job_metrics(job["id"]) if m["plugin"] == "argo"}
    assert "local_metadata_seconds" in names and "metadata_seconds" not in names


def test_oom_is_resubmitted_to_more_memory_and_succeeds(
    api: GalaxyAPI, history: str, argo: ArgoClient
) -> None:
    _, job = run_and_wait(api, history, "argo_memory", {"mib": 400}, timeout=240)
    assert job["state"] == "ok", job
    assert job["external_id"].endswith("-r1"), job["external_id"]
    first = argo.get(job["external_id"].removesuffix("-r1"))
    assert first is not None and first["status"]["phase"] == "Failed"
    assert "OOMKilled" in str(first["status"])
    # the metrics are the attempt that succeeded, once
    names = [m["name"] for m in api.job_metrics(job["id"]) if m["plugin"] == "argo"]
    assert names.count("tool_seconds") == 1


def what_the_user_sees(api: GalaxyAPI, reply: dict[str, Any]) -> str:
    """The output dataset's message in the history (Galaxy puts the job's failure reason there)."""
    return str(api.dataset(next(iter(output_ids(reply).values())))["misc_info"])


def test_oom_beyond_the_biggest_destination_says_why(api: GalaxyAPI, history: str) -> None:
    reply, job = run_and_wait(api, history, "argo_memory", {"mib": 2600}, timeout=240)
    assert job["state"] == "error"
    assert job["external_id"].endswith("-r1")  # resubmitted once, then out of destinations
    assert what_the_user_sees(api, reply) == (
        "The job failed in Argo: the tool used more memory than its limit (2 GiB) and was killed (OOMKilled)"
    )
    # a failed job keeps Argo's numbers too
    metrics = {m["name"]: m["raw_value"] for m in api.job_metrics(job["id"]) if m["plugin"] == "argo"}
    assert metrics["pod_attempts"] == "1.0000000" and "tool_seconds" in metrics


def running_job(api: GalaxyAPI, job_id: str) -> dict[str, Any] | None:
    job = api.job(job_id)
    return job if job["state"] == "running" else None


def stopped_workflow(argo: ArgoClient, name: str) -> dict[str, Any] | None:
    workflow = argo.get(name)
    return workflow if workflow and workflow["status"].get("phase") in ("Failed", "Error") else None


def test_user_stops_the_job(
    api: GalaxyAPI, history: str, argo: ArgoClient, s3: Any, stack_info: StackInfo
) -> None:
    reply = api.run_tool(history, "argo_sleep", {"seconds": 120})
    job_id = reply["jobs"][0]["id"]
    job = wait_for_galaxy(lambda: running_job(api, job_id), 120, "the job to run")
    name = job["external_id"]
    api.cancel_job(job_id)
    workflow = wait_for_galaxy(lambda: stopped_workflow(argo, name), 60, "the workflow to stop")
    assert "Stopped with strategy 'Stop'" in str(workflow["status"])
    wait_for_galaxy(
        lambda: objects_under(s3, stack_info.bucket, f"galaxy-argo/jobs/{name}/") == [],
        30,
        "the job's objects to be deleted",
    )
    assert api.job(job_id)["state"] in ("deleted", "deleting", "stopped")


def test_operator_deletes_the_workflow(api: GalaxyAPI, history: str, argo: ArgoClient) -> None:
    reply = api.run_tool(history, "argo_sleep", {"seconds": 120})
    job_id = reply["jobs"][0]["id"]
    job = wait_for_galaxy(lambda: running_job(api, job_id), 120, "the job to run")
    name = job["external_id"]
    assert argo.delete(name)
    job = api.wait_for_job(job_id, timeout=60)
    assert job["state"] == "error"
    assert what_the_user_sees(api, reply) == (
        f"The job failed in Argo: the workflow {name} was deleted in Argo before the job finished"
    )


def test_operator_stops_the_workflow(api: GalaxyAPI, history: str, argo: ArgoClient) -> None:
    """`argo stop` by an operator (not Galaxy): the job fails, saying so; the tool is not retried."""
    reply = api.run_tool(history, "argo_sleep", {"seconds": 120})
    job_id = reply["jobs"][0]["id"]
    job = wait_for_galaxy(lambda: running_job(api, job_id), 120, "the job to run")
    name = job["external_id"]
    assert argo.stop(name, "node drained by the operator")
    job = api.wait_for_job(job_id, timeout=90)
    assert job["state"] == "error"
    seen = what_the_user_sees(api, reply)
    assert seen.startswith("The job failed in Argo: the workflow was stopped in Argo ("), seen
    assert job["external_id"] == name  # not resubmitted


def test_galaxy_restart_mid_job(api: GalaxyAPI, history: str, dev: DevEnvironment) -> None:
    reply = api.run_tool(history, "argo_sleep", {"seconds": 15})
    job_id = reply["jobs"][0]["id"]
    wait_for_galaxy(lambda: running_job(api, job_id), 120, "the job to run")
    assert dev.galaxy is not None
    dev.galaxy.restart()
    job = api.wait_for_job(job_id, timeout=180)
    assert job["state"] == "ok", job
    assert api.dataset_content(output_ids(reply)["output"]) == b"slept\n"


def test_handler_died_after_submitting_before_saving_the_external_id(
    api: GalaxyAPI, history: str, dev: DevEnvironment, argo: ArgoClient
) -> None:
    # galaxy#6246: the workflow exists in Argo, Galaxy's database never learnt its name. Galaxy
    # queues such a job again at start-up; the same deterministic name adopts the running
    # workflow instead of running the tool twice.
    reply = api.run_tool(history, "argo_sleep", {"seconds": 15})
    job_id = reply["jobs"][0]["id"]
    name = wait_for_galaxy(lambda: running_job(api, job_id), 120, "the job to run")["external_id"]
    created = argo.get(name)["metadata"]["creationTimestamp"]  # type: ignore[index]
    assert dev.galaxy is not None
    dev.galaxy.stop()
    database = dev.galaxy.data_dir / "universe.sqlite"
    with closing(sqlite3.connect(database)) as db, db:
        changed = db.execute(
            "UPDATE job SET job_runner_external_id = NULL, state = 'queued' WHERE id = ?",
            (int(name.removeprefix("galaxy-main-")),),
        ).rowcount
    assert changed == 1
    dev.galaxy.start()
    job = api.wait_for_job(job_id, timeout=180)
    assert job["state"] == "ok", job
    assert job["external_id"] == name
    assert api.dataset_content(output_ids(reply)["output"]) == b"slept\n"
    workflows = argo.poll(f"{LABEL_PREFIX}/job-id={name.removeprefix('galaxy-main-')}")
    assert list(workflows) == [name]  # one workflow, the first one: the tool ran once
    assert argo.get(name)["metadata"]["creationTimestamp"] == created  # type: ignore[index]
    assert f"adopted existing workflow {name}" in dev.galaxy.log_path.read_text()


def test_bad_destination_param_fails_the_job_naming_it(api: GalaxyAPI, history: str) -> None:
    reply, job = run_and_wait(api, history, "argo_misconfigured", {})
    assert job["state"] == "error"
    assert job.get("external_id") is None  # nothing was submitted
    seen = what_the_user_sees(api, reply)
    assert seen == (
        "Argo destination 'argo_typo' is misconfigured: destination param 'memory' = 'lots': expected "
        "memory as GiB (e.g. 4 or 7.5) or a Kubernetes quantity (e.g. 8Gi, 512Mi)"
    )
