"""`galaxy-argo doctor` against the embedded stack: every check passing, and each failing for its cause."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from galaxy_argo.cli.doctor import (
    Check,
    destinations_in_job_config,
    image_problem,
    probe_workflow,
    run_checks,
)
from galaxy_argo.cli.main import main
from galaxy_argo.core.argo_schema import validate
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.core.yamlio import dump_yaml
from galaxy_argo.local.stack import EmbeddedStack, StackInfo
from tests.conftest import free_port

pytestmark = pytest.mark.engine


def checks(params: dict[str, Any], **kwargs: Any) -> dict[str, Check]:
    return {c.name: c for c in run_checks(params, probe_timeout=60, **kwargs)}


def statuses(found: dict[str, Check]) -> dict[str, str]:
    return {name: c.status for name, c in found.items()}


def test_a_working_destination_passes_every_check(
    info: StackInfo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    destination = tmp_path / "destination.yml"
    destination.write_text(dump_yaml(info.destination_params()))
    assert main(["doctor", "--destination", str(destination)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[1]: line.split()[0] for line in out.splitlines() if line[:4] in ("ok  ", "warn")}
    assert lines == {
        "params": "ok",
        "argo-server": "ok",
        "list-workflows": "ok",
        "create-workflows": "ok",
        "workflow-templates": "warn",  # the tool-job template is not installed in this namespace
        "bucket": "ok",
        "default_image": "ok",
        "stage_image": "ok",
        "metadata_image": "ok",
        "artifact-repository": "ok",
    }
    assert out.rstrip().endswith("doctor: all checks passed")
    assert "Argo v4.1.2" in out and "a pod saved s3://" in out
    for secret in (info.token, info.s3_secret_access_key, info.s3_access_key_id):
        assert secret not in out


def test_the_probe_leaves_nothing_behind(info: StackInfo, stack: EmbeddedStack) -> None:
    found = checks(info.destination_params())
    assert found["artifact-repository"].status == "ok"
    assert stack.s3 is not None
    client = stack.s3.client()
    listing = client.list_objects_v2(Bucket=info.bucket, Prefix="galaxy-argo/doctor/")
    assert listing.get("KeyCount", 0) == 0
    from galaxy_argo.clients.argo import ArgoClient

    argo = ArgoClient(info.argo_server_url, token=info.token, namespace=info.namespace)
    assert argo.poll("galaxy-argo.galaxyproject.org/doctor") == {}


def test_bad_params_name_the_param(info: StackInfo) -> None:
    found = checks({**info.destination_params(), "memory": "lots"})
    assert statuses(found) == {"params": "FAIL"}
    assert "'memory'" in found["params"].detail and "memory" in found["params"].fix


def test_unreachable_server_stops_at_the_server(info: StackInfo) -> None:
    found = checks({**info.destination_params(), "argo_server_url": f"http://127.0.0.1:{free_port()}"})
    assert statuses(found) == {"params": "ok", "argo-server": "FAIL"}
    assert "unreachable" in found["argo-server"].detail and "argo_server_url" in found["argo-server"].fix


def test_a_bad_token_says_which_service_account(info: StackInfo) -> None:
    found = checks({**info.destination_params(), "argo_token": "not-the-token"})
    assert found["argo-server"].status == "FAIL"
    assert "refused the token" in found["argo-server"].detail
    assert "galaxy-argo-runner" in found["argo-server"].fix
    assert "not-the-token" not in found["argo-server"].line()


def test_a_missing_bucket(info: StackInfo) -> None:
    found = checks({**info.destination_params(), "bucket": "no-such-bucket"})
    assert found["bucket"].status == "FAIL" and "NoSuchBucket" in found["bucket"].detail
    assert "no-such-bucket" in found["bucket"].fix
    assert found["artifact-repository"].status == "skip"


def test_a_bucket_that_is_not_the_artifact_repository(info: StackInfo, stack: EmbeddedStack) -> None:
    """Galaxy can write its bucket, but the cluster saves artifacts elsewhere: only the probe sees it."""
    assert stack.s3 is not None
    client = stack.s3.client()
    client.create_bucket(Bucket="galaxy-elsewhere")
    found = checks({**info.destination_params(), "bucket": "galaxy-elsewhere"})
    assert found["bucket"].status == "ok"
    probe = found["artifact-repository"]
    assert probe.status == "FAIL" and "Galaxy finds no s3://galaxy-elsewhere/" in probe.detail
    assert "s3://galaxy-elsewhere" in probe.fix


def test_a_missing_artifact_repository_ref(info: StackInfo) -> None:
    found = checks({**info.destination_params(), "artifact_repository_ref": "no-such-key"})
    probe = found["artifact-repository"]
    assert probe.status == "FAIL" and "no-such-key" in probe.detail + probe.fix


def test_kubernetes_submission_passes_every_check(info: StackInfo) -> None:
    """The Workflow resources through the kubeconfig the embedded stack writes (found by itself)."""
    params = {
        **info.destination_params(),
        "argo_server_url": "",
        "argo_token": "",
        "submission": "kubernetes",
        "embedded_state_dir": info.state_dir,
    }
    found = checks(params)
    assert found["embedded-stack"].detail.endswith("kubeconfig.yaml")
    assert found["kubernetes-api"].status == "ok" and "argoproj.io/v1alpha1" in found["kubernetes-api"].detail
    assert {name: c.status for name, c in found.items() if c.status != "ok"} == {"workflow-templates": "warn"}


def test_a_kubeconfig_that_cannot_be_read(info: StackInfo, tmp_path: Path) -> None:
    params = {
        **info.destination_params(),
        "submission": "kubernetes",
        "kubeconfig": str(tmp_path / "nope.yaml"),
    }
    found = checks(params)
    assert found["kubeconfig"].status == "FAIL" and "nope.yaml" in found["kubeconfig"].detail


def test_no_probe_skips_it(info: StackInfo) -> None:
    assert checks(info.destination_params(), probe=False)["artifact-repository"].status == "skip"


def test_no_embedded_stack(tmp_path: Path) -> None:
    found = checks({"embedded_state_dir": str(tmp_path / "none")})
    assert statuses(found) == {"params": "ok", "embedded-stack": "FAIL"}
    assert "galaxy-argo local serve" in found["embedded-stack"].detail


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("busybox:1.37", None),
        ("quay.io/galaxyproject/galaxy-min:26.1", None),
        ("localhost:5000/a/b@sha256:" + "a" * 64, None),
        ("busybox", "has no tag"),
        ("Busybox:1", "is not an image reference"),
        ("busy box:1", "is not an image reference"),
        ("", "is empty"),
    ],
)
def test_image_references(reference: str, problem: str | None) -> None:
    found = image_problem(reference)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))


def test_untagged_and_malformed_images_in_the_report(info: StackInfo) -> None:
    found = checks({**info.destination_params(), "default_image": "debian", "metadata_image": "Not An Image"})
    assert found["default_image"].status == "warn" and found["metadata_image"].status == "FAIL"


def test_the_probe_workflow_validates_against_argos_schema() -> None:
    settings = ArgoSettings.from_params({"service_account": "galaxy-argo-workflow", "node_selector": "a=b"})
    workflow = probe_workflow(settings, "abc123")
    validate(workflow)
    assert workflow["spec"]["serviceAccountName"] == "galaxy-argo-workflow"


def test_environments_from_galaxys_job_config(info: StackInfo, tmp_path: Path) -> None:
    job_config = {
        "runners": {
            "local": {"load": "galaxy.jobs.runners.local:LocalJobRunner"},
            "argo": {"load": "galaxy_argo.galaxy.runner:ArgoJobRunner"},
        },
        "execution": {
            "default": "big",
            "environments": {
                "local_env": {"runner": "local"},
                "big": {"runner": "argo", **info.destination_params(), "memory": "8"},
                "small": {"runner": "argo", **info.destination_params(), "memory": "oops"},
            },
        },
    }
    assert set(destinations_in_job_config(job_config)) == {"big", "small"}
    path = tmp_path / "job_conf.yml"
    path.write_text(dump_yaml(job_config))
    assert main(["doctor", "--job-config", str(path), "--environment", "small", "--no-probe"]) == 1
    assert main(["doctor", "--job-config", str(path), "--environment", "big", "--no-probe"]) == 0
    assert main(["doctor", "--job-config", str(path)]) == 2  # two Argo environments: say which
    assert main(["doctor", "--job-config", str(path), "--environment", "local_env"]) == 2
