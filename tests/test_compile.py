"""The compiled workflow: shape, artifacts, resources, retries, labels; no secrets; deterministic."""

from __future__ import annotations

import json
import re

import pytest

from galaxy_argo.core._hera import models as m
from galaxy_argo.core.compile import INFRA_RETRY_EXPRESSION, compile_job, compile_model, cpu_quantity
from galaxy_argo.core.errors import CompileError, SettingsError
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.core.spec import JobSpec
from galaxy_argo.core.yamlio import dump_yaml
from tests.conftest import golden_cases

CASES = golden_cases()


def compiled(name: str, **params: str) -> dict:
    case = CASES[name]
    settings = ArgoSettings.from_params({**case["params"], **params})
    return compile_job(JobSpec.from_dict(case["spec"]), settings).to_dict()


def template(workflow: dict) -> dict:
    (only,) = workflow["spec"]["templates"]
    return only


def containers(workflow: dict) -> dict[str, dict]:
    return {c["name"]: c for c in template(workflow)["containerSet"]["containers"]}


def test_one_pod_stage_in_run_main_in_order() -> None:
    wf = compiled("one-input-one-output")
    assert wf["spec"]["entrypoint"] == template(wf)["name"]
    nodes = containers(wf)
    assert list(nodes) == ["stage-in", "run", "main"]
    assert "dependencies" not in nodes["stage-in"]
    assert nodes["run"]["dependencies"] == ["stage-in"]
    assert nodes["main"]["dependencies"] == ["run"]
    assert template(wf)["containerSet"]["volumeMounts"] == [{"mountPath": "/galaxy", "name": "galaxy"}]
    assert template(wf)["volumes"] == [{"emptyDir": {}, "name": "galaxy"}]


def test_metadata_step_sits_between_run_and_stage_out() -> None:
    nodes = containers(compiled("metadata-remote"))
    assert list(nodes) == ["stage-in", "run", "metadata", "main"]
    assert nodes["metadata"]["image"] == "quay.io/galaxyproject/galaxy-min:26.1"
    assert nodes["metadata"]["args"][0] == "python /galaxy/job/metadata/set.py"
    assert nodes["main"]["dependencies"] == ["metadata"]


def test_run_executes_the_command_line_in_the_tool_image_via_the_wrapper() -> None:
    spec = CASES["one-input-one-output"]["spec"]
    run = containers(compiled("one-input-one-output"))["run"]
    assert run["image"] == spec["image"]
    assert run["command"][:2] == ["/bin/sh", "-c"] and run["command"][3] == "run"
    assert run["args"] == [spec["command_line"], "/galaxy/job/working"]
    env = {e["name"]: e["value"] for e in run["env"]}
    assert env["GALAXY_SLOTS"] == "1" and env["GALAXY_MEMORY_MB"] == "4096"


def test_default_image_from_settings_when_the_tool_has_none() -> None:
    run = containers(compiled("default-image"))["run"]
    assert run["image"] == "quay.io/galaxyproject/galaxy-base:26.1"


def test_inputs_are_key_only_s3_artifacts_datasets_unarchived_bundles_tgz() -> None:
    wf = compiled("default-image")
    artifacts = {a["name"]: a for a in template(wf)["inputs"]["artifacts"]}
    spec = CASES["default-image"]["spec"]
    dataset = artifacts["input1"]
    assert dataset["s3"] == {"key": spec["inputs"][0]["key"]}  # key only: no bucket, endpoint or secret
    assert dataset["archive"] == {"none": {}}
    assert dataset["path"] == spec["inputs"][0]["pod_path"]
    for bundle in ("job-directory", "tool-directory"):
        assert set(artifacts[bundle]["s3"]) == {"key"}
        assert "archive" not in artifacts[bundle]  # Argo unpacks a tgz at the path
    checklist = artifacts["inputs-sha256"]["raw"]["data"]
    assert (
        checklist
        == f"{spec['inputs'][0]['sha256']} {spec['inputs'][0]['size']} {spec['inputs'][0]['pod_path']}\n"
    )
    assert artifacts["outputs-list"]["raw"]["data"] == "out_file1 file /galaxy/outputs/dataset_out_1.dat\n"


def test_twenty_inputs_each_checked() -> None:
    wf = compiled("twenty-inputs")
    artifacts = {a["name"]: a for a in template(wf)["inputs"]["artifacts"]}
    assert sum(1 for name in artifacts if re.fullmatch(r"input\d+", name)) == 20
    assert len(artifacts["inputs-sha256"]["raw"]["data"].splitlines()) == 20


def test_outputs_optional_unarchived_and_manifest_returned() -> None:
    wf = compiled("metadata-remote")
    outputs = {a["name"]: a for a in template(wf)["outputs"]["artifacts"]}
    assert outputs["out_file1"]["archive"] == {"none": {}} and outputs["out_file1"]["optional"] is True
    assert "archive" not in outputs["out-extra"]  # a directory output goes back as tgz
    assert outputs["job-directory"]["s3"]["key"] == "galaxy-argo/jobs/5/returned/job-directory.tgz"
    assert outputs["outputs-manifest"]["path"] == "/galaxy/.argo/outputs.json"
    (param,) = template(wf)["outputs"]["parameters"]
    assert param["name"] == "outputs-manifest"
    assert param["valueFrom"] == {"default": "", "path": "/galaxy/.argo/outputs.json"}
    listed = template(wf)["inputs"]["artifacts"][-1]["raw"]["data"].splitlines()
    assert "out-extra dir /galaxy/outputs/dataset_out_2_files" in listed


def test_resources_on_run_tiny_on_stage_containers() -> None:
    nodes = containers(compiled("twenty-inputs"))
    assert nodes["run"]["resources"] == {
        "limits": {"memory": "16384Mi"},
        "requests": {"cpu": "4", "memory": "16384Mi"},
    }
    for stage in ("stage-in", "main"):
        assert nodes[stage]["resources"]["requests"] == {"cpu": "10m", "memory": "32Mi"}


def test_gpu_requested_as_the_vendor_resource() -> None:
    run = containers(compiled("gpu"))["run"]
    assert run["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert run["resources"]["requests"]["nvidia.com/gpu"] == "1"
    amd = containers(compiled("gpu", gpu_resource_name="amd.com/gpu"))["run"]
    assert (
        amd["resources"]["limits"]["amd.com/gpu"] == "1"
        and "nvidia.com/gpu" not in amd["resources"]["limits"]
    )


@pytest.mark.parametrize(("cores", "quantity"), [(1, "1"), (4.0, "4"), (0.5, "500m"), (1.25, "1250m")])
def test_cpu_quantities(cores: float, quantity: str) -> None:
    assert cpu_quantity(cores) == quantity


def test_retry_infrastructure_only_with_string_limit() -> None:
    retry = template(compiled("walltime-scheduling"))["retryStrategy"]
    assert retry["limit"] == "3"  # IntOrString: a string, as Argo's schema.json requires
    assert retry["retryPolicy"] == "Always"
    assert retry["expression"] == INFRA_RETRY_EXPRESSION
    assert "retryStrategy" not in template(compiled("one-input-one-output", retry_limit="0"))


@pytest.mark.parametrize(
    ("status", "message", "retried"),
    [
        ("Error", "pod deleted", True),
        ("Failed", "The node was low on resource: memory.", True),
        ("Failed", "Pod was evicted", True),
        ("Failed", "Pod was terminated in response to imminent node shutdown.", True),
        ("Failed", "main: Error (exit code 1): tool exited with code 1", False),
        ("Failed", "run: OOMKilled (exit code 137)", False),
        ("Failed", "Pod was active on the node longer than the specified deadline", False),
        ("Failed", "Preempted by a higher priority pod", True),
    ],
)
def test_retry_expression_semantics(status: str, message: str, retried: bool) -> None:
    # Evaluate the expr-lang expression's two clauses with Python's re (Go RE2 syntax used is common).
    pattern = re.search(r"matches '(.*)'\)$", INFRA_RETRY_EXPRESSION)
    assert pattern
    regex = pattern.group(1)
    decision = status == "Error" or (status == "Failed" and re.search(regex, message) is not None)
    assert decision is retried


def test_walltime_scheduling_and_pod_spec() -> None:
    wf = compiled("walltime-scheduling")
    spec = wf["spec"]
    assert template(wf)["activeDeadlineSeconds"] == "7200"
    assert spec["nodeSelector"] == {"topology.kubernetes.io/zone": "eu-west-1a", "galaxy.org/pool": "batch"}
    assert spec["tolerations"] == [{"effect": "NoSchedule", "key": "galaxy.org/batch", "operator": "Exists"}]
    assert spec["podPriorityClassName"] == "galaxy-batch"
    assert spec["serviceAccountName"] == "galaxy-job"
    assert spec["securityContext"] == {"fsGroup": 1000, "runAsNonRoot": True, "runAsUser": 1000}
    assert spec["artifactRepositoryRef"] == {"configMap": "artifact-repositories", "key": "galaxy"}
    assert json.loads(spec["podSpecPatch"])["containers"][0]["name"] == "run"
    assert containers(wf)["run"]["resources"]["requests"]["ephemeral-storage"] == "20Gi"
    assert containers(wf)["run"]["resources"]["requests"]["cpu"] == "500m"
    assert spec["ttlStrategy"] == {"secondsAfterFailure": 604800, "secondsAfterSuccess": 3600}
    assert spec["podGC"] == {"strategy": "OnPodSuccess"}
    assert "podGC" not in compiled("one-input-one-output", pod_gc="none")["spec"]


def test_containers_cannot_escalate_and_only_argos_containers_get_a_token() -> None:
    for case in CASES:
        for container in containers(compiled(case)).values():
            assert container["securityContext"] == {"allowPrivilegeEscalation": False}, (
                case,
                container["name"],
            )
    with_account = compiled("walltime-scheduling")["spec"]
    assert with_account["automountServiceAccountToken"] is False
    assert with_account["executor"] == {"serviceAccountName": "galaxy-job"}  # init/wait report results
    without = compiled("one-input-one-output")["spec"]
    assert "automountServiceAccountToken" not in without and "executor" not in without


def test_name_labels_and_annotations_for_operators() -> None:
    wf = compiled("gpu")
    meta = wf["metadata"]
    assert meta["name"] == "galaxy-main-3" and meta["namespace"] == "galaxy"
    labels = meta["labels"]
    assert labels["galaxy-argo.galaxyproject.org/instance"] == "main"
    assert labels["galaxy-argo.galaxyproject.org/job-id"] == "3"
    assert labels["galaxy-argo.galaxyproject.org/tool-id"].endswith(
        "alphafold_2.3.2_galaxy1." + labels["galaxy-argo.galaxyproject.org/tool-id"].rsplit(".", 1)[1]
    )
    assert re.fullmatch(r"[0-9a-f]{16}", labels["galaxy-argo.galaxyproject.org/user"])
    assert "alice" not in dump_yaml(wf)  # the user name never reaches the workflow
    annotations = meta["annotations"]
    assert annotations["workflows.argoproj.io/title"] == "AlphaFold 2 · Galaxy job 3"
    assert "[3](https://galaxy.example.org/jobs/3/view)" in annotations["workflows.argoproj.io/description"]
    assert "History: `f2db41e1fa331b3e`" in annotations["workflows.argoproj.io/description"]
    assert wf["spec"]["podMetadata"]["labels"]["galaxy-argo.galaxyproject.org/job-id"] == "3"


def test_resubmission_gets_its_own_name() -> None:
    assert compiled("walltime-scheduling")["metadata"]["name"] == "galaxy-main-6-r1"


def test_compile_is_deterministic() -> None:
    assert dump_yaml(compiled("twenty-inputs")) == dump_yaml(compiled("twenty-inputs"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_runner_submits_the_same_body_as_the_golden_yaml_describes(name: str) -> None:
    """The runner hands Hera the built model; the body must equal the one from the dict (the YAML)."""
    case = CASES[name]
    settings = ArgoSettings.from_params(case["params"])
    workflow = compile_job(JobSpec.from_dict(case["spec"]), settings)

    def body(model: m.Workflow) -> dict:
        request = m.WorkflowCreateRequest(workflow=model)
        return json.loads(request.model_dump_json(exclude_none=True, by_alias=True, exclude_unset=True))

    submitted = body(compile_model(JobSpec.from_dict(case["spec"]), settings))
    assert submitted == body(m.Workflow.model_validate(workflow.to_dict()))
    assert submitted["workflow"] == workflow.to_dict()


def test_no_credentials_in_the_workflow() -> None:
    settings = {
        "argo_token": "ARGO-TOKEN-MARKER",
        "s3_access_key_id": "AKIA-MARKER",
        "s3_secret_access_key": "S3-SECRET-MARKER",
    }
    for name in CASES:
        text = dump_yaml(compiled(name, **settings))
        assert "MARKER" not in text
        if name == "object-store-direct":
            # References to the Secret holding the pods' keys for Galaxy's store, never keys.
            assert set(re.findall(r"name: (galaxy-store-keys)", text)) == {"galaxy-store-keys"}
            continue
        assert "accessKeySecret" not in text and "secretKeySecret" not in text


def test_missing_default_image_is_a_compile_error() -> None:
    spec = JobSpec.from_dict(CASES["default-image"]["spec"])
    settings = ArgoSettings()
    object.__setattr__(settings, "default_image", "")
    with pytest.raises(CompileError, match="job 4: the tool has no container and no default_image"):
        compile_job(spec, settings)


# -- object_store: direct ----------------------------------------------------------------------------


def _direct(params: dict[str, str]) -> dict:
    case = CASES["object-store-direct"]
    spec = JobSpec.from_dict(case["spec"])
    return compile_job(spec, ArgoSettings.from_params({**case["params"], **params})).to_dict()


def test_in_place_objects_name_their_bucket_endpoint_and_secret_and_outputs_get_no_artifact() -> None:
    workflow = _direct({})
    template = workflow["spec"]["templates"][0]
    by_name = {a["name"]: a for a in template["inputs"]["artifacts"]}
    s3 = by_name["in-dataset_135ee48a4f51470cae2fce8bd78799e6"]["s3"]
    assert s3["bucket"] == "galaxy-store" and s3["endpoint"] == "seaweedfs.galaxy.svc:8333"
    assert s3["insecure"] is True
    assert s3["accessKeySecret"] == {"name": "galaxy-store-keys", "key": "accesskey"}
    assert by_name["in-dataset_9"]["s3"] == {"key": CASES["object-store-direct"]["spec"]["inputs"][3]["key"]}
    saved = {a["name"] for a in template["outputs"]["artifacts"]}
    assert saved == {"job-directory", "outputs-manifest"}  # set_metadata wrote the output itself
    metadata = next(c for c in template["containerSet"]["containers"] if c["name"] == "metadata")
    assert {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in metadata["env"] if "valueFrom" in e
    } == {
        "AWS_ACCESS_KEY_ID": "galaxy-store-keys",
        "AWS_SECRET_ACCESS_KEY": "galaxy-store-keys",
    }
    run = next(c for c in template["containerSet"]["containers"] if c["name"] == "run")
    assert all("valueFrom" not in e for e in run.get("env", [])), "the tool never sees the store's keys"
    assert "inputs.sha256" in str(template) and "- 1073741824 /galaxy/inputs/" in str(template)


def test_without_a_secret_pods_use_their_cloud_identity() -> None:
    workflow = _direct({"object_store_secret": ""})
    template = workflow["spec"]["templates"][0]
    s3 = next(a["s3"] for a in template["inputs"]["artifacts"] if a["name"].startswith("in-dataset_135"))
    assert s3.get("useSDKCreds") is True and "accessKeySecret" not in s3
    metadata = next(c for c in template["containerSet"]["containers"] if c["name"] == "metadata")
    assert all("valueFrom" not in e for e in metadata.get("env", []))


def test_direct_mode_needs_remote_metadata() -> None:
    with pytest.raises(SettingsError, match="`remote` with `object_store: direct`"):
        ArgoSettings.from_params({"object_store": "direct", "metadata": "local"})
