"""`galaxy-argo doctor`: check a destination end to end and say what to fix, one line per check.

The checks run in the order a failure would hide the next (params, server, token, permissions,
bucket, images, then a probe workflow). The probe is the one that matters most in practice: a
one-container workflow saves an artifact through the namespace's artifact repository, and the
doctor reads it back with Galaxy's own S3 settings, proving the cluster writes where Galaxy reads.
Nothing here imports Galaxy; `destinations_in_job_config` reads Galaxy's job configuration as YAML.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from galaxy_argo.clients.argo import ArgoAuthError, ArgoError, Workflows
from galaxy_argo.clients.connections import resolve_embedded, s3_client, workflows_client
from galaxy_argo.core._hera import models as m
from galaxy_argo.core._hera import workflows as hw
from galaxy_argo.core.compile import workflow_wide_spec
from galaxy_argo.core.errors import GalaxyArgoError, SettingsError
from galaxy_argo.core.naming import LABEL_PREFIX
from galaxy_argo.core.settings import ArgoSettings, MetadataMode, Submission
from galaxy_argo.core.templates import TOOL_JOB_TEMPLATE

__all__ = ["RUNNER_LOAD", "Check", "destinations_in_job_config", "image_problem", "run_checks"]

RUNNER_LOAD = "galaxy_argo.galaxy.runner:ArgoJobRunner"
PROBE_LABEL = f"{LABEL_PREFIX}/doctor"
_RBAC = "manifests/base/runner-rbac.yaml"
_TOKEN_FIX = f"argo_token: a token of ServiceAccount galaxy-argo-runner ({_RBAC})"

# distribution/reference's grammar: [host[:port]/]path[:tag][@digest], path components lower case.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_IMAGE = re.compile(
    rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*(?P<tag>:[\w][\w.-]{{0,127}})?"
    r"(?P<digest>@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is ok, warn, FAIL or skip; ``fix`` says what to change."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        """Whether this check makes the destination unusable."""
        return self.status == "FAIL"

    def line(self) -> str:
        """``status  name  detail`` and, when there is one, the fix on the next line."""
        text = f"{self.status:<5} {self.name:<20} {self.detail}"
        return f"{text}\n      fix: {self.fix}" if self.fix else text


def image_problem(reference: str) -> str | None:
    """Why ``reference`` is not a usable container image reference, or ``None``."""
    if not reference:
        return "is empty"
    match = _IMAGE.match(reference)
    if match is None:
        return "is not an image reference ([registry/]name[:tag][@digest], lower-case name)"
    if not match.group("tag") and not match.group("digest"):
        return "has no tag: every pull may get a different image (:latest)"
    return None


def destinations_in_job_config(job_config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Environment id -> params of every environment of Galaxy's job config that runs on us."""
    runners = job_config.get("runners") or {}
    ours = {rid for rid, r in runners.items() if isinstance(r, Mapping) and r.get("load") == RUNNER_LOAD}
    environments = (job_config.get("execution") or {}).get("environments") or {}
    return {
        eid: {k: v for k, v in env.items() if k != "runner"}
        for eid, env in environments.items()
        if isinstance(env, Mapping) and env.get("runner") in ours
    }


def probe_workflow(settings: ArgoSettings, probe_id: str) -> dict[str, Any]:
    """One container in ``stage_image`` saving a small artifact through the artifact repository.

    It runs under the destination's own scheduling (service account, node selector, artifact
    repository ref ...), so it meets the same conditions as a job's pod.
    """
    probe = hw.Container(
        name="probe",
        image=settings.stage_image,
        image_pull_policy=settings.image_pull_policy.value,
        command=["sh", "-c", f"echo {probe_id} > /tmp/probe"],
        resources=m.ResourceRequirements(limits={"cpu": m.Quantity("100m"), "memory": m.Quantity("32Mi")}),
        outputs=[
            m.Artifact(
                name="probe",
                path="/tmp/probe",
                s3=m.S3Artifact(key=f"{settings.key_prefix}/doctor/{probe_id}/from-cluster"),
                archive=m.ArchiveStrategy(none=m.NoneStrategy()),
            )
        ],
    )
    spec = {**workflow_wide_spec(settings), "entrypoint": "probe"}
    return hw.Workflow(
        api_version="argoproj.io/v1alpha1",
        kind="Workflow",
        name=f"galaxy-doctor-{probe_id}",
        namespace=settings.namespace,
        labels={"app.kubernetes.io/managed-by": "galaxy-argo", PROBE_LABEL: "probe"},
        annotations={
            "workflows.argoproj.io/title": "galaxy-argo doctor probe",
            "workflows.argoproj.io/description": "Checks the artifact repository is the bucket Galaxy reads.",
        },
        templates=[probe],
        **spec,
    ).to_dict()


def run_checks(
    params: Mapping[str, Any], probe: bool = True, probe_timeout: float = 120.0
) -> Iterator[Check]:
    """Yield each check's result as it completes (a slow probe does not hold back the rest)."""
    try:
        settings = ArgoSettings.from_params(params)
    except SettingsError as err:
        yield Check("params", "FAIL", str(err), f"correct {err.param!r} in the destination (or TPV rule)")
        return
    yield Check(
        "params",
        "ok",
        f"namespace {settings.namespace}, bucket {settings.bucket}, instance {settings.instance}",
    )
    try:
        resolved = resolve_embedded(settings)
    except SettingsError as err:
        yield Check("embedded-stack", "FAIL", err.expected, f"set {err.param}, or start the embedded stack")
        return
    if resolved is not settings:  # the destination names no cluster: the embedded stack's
        kubernetes = settings.submission is Submission.KUBERNETES
        where = resolved.kubeconfig if kubernetes else resolved.argo_server_url
        yield Check("embedded-stack", "ok", f"{resolved.embedded_state_dir}: {where}")
        settings = resolved
    try:
        argo = workflows_client(settings, timeout=15)
    except ArgoError as err:
        yield Check("kubeconfig", "FAIL", str(err), "kubeconfig: a readable kubeconfig file, or `in-cluster`")
        return
    try:
        yield from _argo_checks(argo, settings)
        stager_client = s3_client(settings)
        bucket_ok = yield from _bucket_check(stager_client, settings)
        yield from _image_checks(settings)
        if not probe:
            yield Check("artifact-repository", "skip", "probe workflow not run (--no-probe)")
        elif not bucket_ok:
            yield Check("artifact-repository", "skip", "the bucket check failed")
        else:
            yield _probe_check(argo, stager_client, settings, probe_timeout)
    except _Stop:
        return
    finally:
        argo.close()


class _Stop(GalaxyArgoError):
    """A check failed that every later one depends on."""


def _argo_checks(argo: Workflows, settings: ArgoSettings) -> Iterator[Check]:
    kubernetes = settings.submission is Submission.KUBERNETES
    if kubernetes:
        server, where = "kubernetes-api", f"the Kubernetes API of {settings.kubeconfig}"
        unreachable_fix = "the kubeconfig's server and credentials; Argo's CRDs installed in the cluster"
        auth_fix = "kubeconfig: credentials of ServiceAccount galaxy-argo-runner"
    else:
        server, where = "argo-server", settings.argo_server_url
        unreachable_fix = (
            "check argo_server_url (scheme, host, port 2746), that the Argo Server runs, and argo_verify_tls"
        )
        auth_fix = _TOKEN_FIX
    try:
        version = argo.version()
    except ArgoAuthError as err:
        yield Check(server, "FAIL", str(err), auth_fix)
        raise _Stop from None
    except ArgoError as err:
        yield Check(server, "FAIL", str(err), unreachable_fix)
        raise _Stop from None
    answer = str(version.get("version", "?"))
    yield Check(server, "ok", f"{where} answers: {answer if kubernetes else 'Argo ' + answer}")
    namespace = settings.namespace
    try:
        argo.poll(f"{LABEL_PREFIX}/instance={settings.instance}")
    except ArgoAuthError as err:
        role_fix = f"the runner's Role and RoleBinding in {namespace} ({_RBAC})"
        refused = "refused the token" in str(err) or "refused the credentials" in str(err)
        yield Check("list-workflows", "FAIL", str(err), auth_fix if refused else role_fix)
        raise _Stop from None
    except ArgoError as err:
        yield Check("list-workflows", "FAIL", str(err))
        raise _Stop from None
    yield Check("list-workflows", "ok", f"the token may list workflows in namespace {namespace}")
    try:
        argo.dry_run(probe_workflow(settings, "dry-run"))
    except ArgoError as err:
        yield Check(
            "create-workflows", "FAIL", str(err), f"the runner's Role needs workflows create ({_RBAC})"
        )
        raise _Stop from None
    yield Check("create-workflows", "ok", f"the token may create workflows in {namespace} (server dry run)")
    try:
        names = argo.template_names()
    except ArgoError as err:
        yield Check("workflow-templates", "warn", str(err), f"optional: workflowtemplates get/list ({_RBAC})")
        return
    if TOOL_JOB_TEMPLATE in names:
        yield Check("workflow-templates", "ok", f"{TOOL_JOB_TEMPLATE} is installed in {namespace}")
    else:
        yield Check(
            "workflow-templates",
            "warn",
            f"{TOOL_JOB_TEMPLATE} is not installed in {namespace} (Galaxy jobs do not need it)",
            "for `argo submit --from workflowtemplate/...`: kubectl apply -k manifests/overlays/<yours>",
        )


def _bucket_check(client: Any, settings: ArgoSettings) -> Generator[Check, None, bool]:
    """Put, read back and delete a small object under the key prefix, from this host."""
    key = f"{settings.key_prefix}/doctor/{uuid.uuid4().hex[:12]}/from-galaxy"
    where = f"s3://{settings.bucket}/{settings.key_prefix}/"
    body = b"galaxy-argo doctor\n"
    try:
        client.head_bucket(Bucket=settings.bucket)  # first: some servers create a bucket on a put
        client.put_object(Bucket=settings.bucket, Key=key, Body=body)
        read = client.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
        client.delete_object(Bucket=settings.bucket, Key=key)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "?")
        code = {"404": "NoSuchBucket", "403": "AccessDenied"}.get(code, code)  # HEAD has no body
        fixes = {
            "NoSuchBucket": f"create bucket {settings.bucket!r} or correct the bucket param",
            "AccessDenied": "grant Galaxy's S3 credentials read/write/delete below the key prefix",
            "InvalidAccessKeyId": "s3_access_key_id / s3_secret_access_key",
            "SignatureDoesNotMatch": "s3_secret_access_key",
        }
        yield Check("bucket", "FAIL", f"{where}: {code}: {err}", fixes.get(code, "the s3_* params"))
        return False
    except BotoCoreError as err:
        yield Check("bucket", "FAIL", f"{where}: {err}", "s3_endpoint_url (reachable from the Galaxy host?)")
        return False
    if read != body:
        yield Check("bucket", "FAIL", f"{where}: an object read back differs from what was written")
        return False
    yield Check("bucket", "ok", f"{where} is writable, readable and deletable from this host")
    return True


def _image_checks(settings: ArgoSettings) -> Iterator[Check]:
    images = {"default_image": settings.default_image, "stage_image": settings.stage_image}
    if settings.metadata is MetadataMode.REMOTE:
        images["metadata_image"] = settings.metadata_image
    for param, reference in images.items():
        problem = image_problem(reference)
        if problem is None:
            yield Check(param, "ok", reference)
        else:
            status = "warn" if problem.startswith("has no tag") else "FAIL"
            yield Check(param, status, f"{reference!r} {problem}", f"set {param} to e.g. registry/name:tag")


def _probe_check(argo: Workflows, client: Any, settings: ArgoSettings, timeout: float) -> Check:
    name = "artifact-repository"
    probe_id = uuid.uuid4().hex[:12]
    workflow = probe_workflow(settings, probe_id)
    key = workflow["spec"]["templates"][0]["outputs"]["artifacts"][0]["s3"]["key"]
    repository = settings.artifact_repository_ref or "the namespace's default"
    fix = (
        f"the artifact repository ({repository}; ConfigMap artifact-repositories, "
        "manifests/base/artifact-repositories.yaml) must be the bucket Galaxy uses: "
        f"s3://{settings.bucket} at {settings.s3_endpoint_url or 'AWS'}"
    )
    try:
        wf_name, _ = argo.submit(workflow)
    except ArgoError as err:
        return Check(name, "FAIL", f"the probe workflow was refused: {err}", fix)
    try:
        phase, message = _wait(lambda: argo.get(wf_name, fields="status.phase,status.message"), timeout)
        if phase != "Succeeded":
            detail = f"probe workflow {wf_name} {phase or 'did not finish'}: {message or 'no message'}"
            return Check(name, "FAIL", detail, fix)
        try:
            text = client.get_object(Bucket=settings.bucket, Key=key)["Body"].read().decode().strip()
        except (ClientError, BotoCoreError) as err:
            detail = f"the probe saved its artifact; Galaxy finds no s3://{settings.bucket}/{key} ({err})"
            return Check(name, "FAIL", detail, fix)
        if text != probe_id:
            return Check(name, "FAIL", f"s3://{settings.bucket}/{key} holds something else", fix)
        return Check(name, "ok", f"a pod saved s3://{settings.bucket}/{key} and Galaxy read it back")
    finally:
        try:
            argo.delete(wf_name)
            client.delete_object(Bucket=settings.bucket, Key=key)
        except (GalaxyArgoError, ClientError, BotoCoreError):
            pass  # best effort: the probe is labelled and has a TTL


def _wait(read: Callable[[], dict[str, Any] | None], timeout: float) -> tuple[str, str]:
    """Poll the probe's phase until it ends or ``timeout`` passes: (phase, message)."""
    deadline = time.monotonic() + timeout
    phase, message = "", ""
    while time.monotonic() < deadline:
        status = (read() or {}).get("status") or {}
        phase, message = str(status.get("phase") or ""), str(status.get("message") or "")
        if phase in ("Succeeded", "Failed", "Error"):
            return phase, message
        time.sleep(0.5)
    return phase, f"still {phase or 'pending'} after {timeout:.0f} s: {message or 'pods cannot start?'}"
