"""`JobSpec` + `ArgoSettings` -> the Hera `Workflow` we submit for one Galaxy job. Pure: no I/O.

One pod, one ``containerSet`` template (https://argo-workflows.readthedocs.io/en/latest/container-set-template/):

    stage-in -> run -> [metadata] -> main (stage-out)

sharing an emptyDir at `POD_ROOT`. Argo's init container loads the inputs (key-only S3 artifacts
from the artifact repository; datasets with ``archive: none``, bundles as tgz) straight into that
volume, stage-in checks their sha256, ``run`` executes the tool, ``main`` writes the outputs
manifest and Argo's wait container saves the outputs: inputs and outputs of a containerSet can
only be loaded into and saved from ``main``'s volumes, so everything lives on the shared one.

The builders below (`stage_in_node`, `step_node`, `stage_out_node`, `job_template`, ...) take plain
strings so that `galaxy_argo.core.templates` can pass Argo ``{{inputs.parameters.*}}`` expressions
instead of values and build the reusable WorkflowTemplates from the same code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from galaxy_argo.core._hera import WorkflowsService
from galaxy_argo.core._hera import models as m
from galaxy_argo.core._hera import workflows as hw
from galaxy_argo.core.errors import CompileError
from galaxy_argo.core.naming import LABEL_PREFIX, label_value, user_hash, workflow_name
from galaxy_argo.core.settings import ArgoSettings, PodGCStrategy
from galaxy_argo.core.spec import POD_ROOT, JobSpec, StagedFile, StagedKind
from galaxy_argo.core.stage_scripts import (
    DISCARD_LIST,
    INPUTS_CHECKLIST,
    OUTPUTS_LIST,
    OUTPUTS_MANIFEST,
    STAGE_IN,
    STAGE_OUT,
    STEP_WRAPPER,
    returned_path,
)

__all__ = [
    "compile_model",
    "ENTRYPOINT",
    "INFRA_RETRY_EXPRESSION",
    "SHARED_VOLUME",
    "compile_job",
    "cpu_quantity",
    "job_template",
    "retry_strategy",
    "returned_keys",
    "run_resources",
    "stage_in_node",
    "stage_out_node",
    "step_node",
    "workflow_wide_spec",
]

#: Name of the job's one template (and the workflow's entrypoint).
ENTRYPOINT = "galaxy-job"
#: The annotation Argo names a template's nodes by in the UI.
DISPLAY_NAME = "workflows.argoproj.io/display-name"
#: The emptyDir all containers of the pod share, mounted at `POD_ROOT`.
SHARED_VOLUME = "galaxy"
#: Retry only what is not the tool's fault. Argo marks a deleted pod or a failed init/wait container
#: ``Error``; an evicted, preempted or node-shutdown pod is ``Failed`` with Kubernetes' message.
#: A tool's non-zero exit, an OOM kill and a deadline are ``Failed`` with other messages: not retried
#: (OOM and deadline go to Galaxy's resubmit rules instead).
INFRA_RETRY_EXPRESSION = (
    "lastRetry.status == 'Error' || (lastRetry.status == 'Failed' && lastRetry.message matches "
    "'(?i)(evict|low on resource|preempt|node shutdown|node is shutting down|pod was rejected|"
    "node .* (lost|not ready)|deleted)')"
)
_STAGE_RESOURCES = m.ResourceRequirements(
    requests={"cpu": m.Quantity("10m"), "memory": m.Quantity("32Mi")},
    limits={"memory": m.Quantity("256Mi")},
)
#: No container of a job gains privileges (setuid binaries, file capabilities: no_new_privs).
#: Capabilities and the user stay the image's: tool images often need root, and stage-out moves
#: what the tool wrote, whoever it ran as. `security_context` (pod level) can demand more.
_NO_ESCALATION = m.SecurityContext(allow_privilege_escalation=False)


def cpu_quantity(cores: float) -> str:
    """Kubernetes CPU quantity: whole cores as ``"2"``, fractions as millicores (``"500m"``)."""
    if float(cores).is_integer():
        return str(int(cores))
    return f"{round(cores * 1000)}m"


def run_resources(cpu: str, memory: str, gpus: str, settings: ArgoSettings) -> m.ResourceRequirements:
    """Requests and limits of the tool container; memory is limited so OOM is the pod's, not the node's."""
    requests: dict[str, m.Quantity] = {"cpu": m.Quantity(cpu), "memory": m.Quantity(memory)}
    limits: dict[str, m.Quantity] = {"memory": m.Quantity(memory)}
    if settings.ephemeral_storage:
        requests["ephemeral-storage"] = m.Quantity(settings.ephemeral_storage)
    if gpus not in ("", "0"):
        requests[settings.gpu_resource_name] = m.Quantity(gpus)
        limits[settings.gpu_resource_name] = m.Quantity(gpus)
    return m.ResourceRequirements(requests=requests, limits=limits)


def stage_in_node(settings: ArgoSettings) -> hw.ContainerNode:
    """Verify every input's size and sha256 before the tool sees it."""
    return hw.ContainerNode(
        name="stage-in",
        image=settings.stage_image,
        image_pull_policy=settings.image_pull_policy.value,
        command=["/bin/sh", "-c"],
        args=[STAGE_IN],
        resources=_STAGE_RESOURCES,
        security_context=_NO_ESCALATION,
    )


def step_node(
    name: str,
    image: str,
    command_line: str,
    working_directory: str,
    env: Mapping[str, str],
    resources: m.ResourceRequirements | None,
    settings: ArgoSettings,
    dependencies: Sequence[str],
    secret_env: Mapping[str, tuple[str, str]] | None = None,
) -> hw.ContainerNode:
    """A container running ``command_line`` under the step wrapper (records the exit code).

    ``secret_env``: variable -> (Secret name, key), read by Kubernetes from the Secret at start.
    """
    variables: list[Any] = [hw.Env(name=k, value=v) for k, v in sorted(env.items())]
    variables += [
        hw.SecretEnv(name=k, secret_name=name, secret_key=key)
        for k, (name, key) in sorted((secret_env or {}).items())
    ]
    return hw.ContainerNode(
        name=name,
        image=image,
        image_pull_policy=settings.image_pull_policy.value,
        command=["/bin/sh", "-c", STEP_WRAPPER, name],
        args=[command_line, working_directory],
        env=variables or None,
        resources=resources or _STAGE_RESOURCES,
        security_context=_NO_ESCALATION,
        dependencies=list(dependencies),
    )


def stage_out_node(settings: ArgoSettings, dependencies: Sequence[str]) -> hw.ContainerNode:
    """``main``: hash the outputs, write the manifest, exit with the tool's code."""
    return hw.ContainerNode(
        name="main",
        image=settings.stage_image,
        image_pull_policy=settings.image_pull_policy.value,
        command=["/bin/sh", "-c"],
        args=[STAGE_OUT],
        resources=_STAGE_RESOURCES,
        security_context=_NO_ESCALATION,
        dependencies=list(dependencies),
    )


def retry_strategy(limit: int) -> m.RetryStrategy | None:
    """Retry infrastructure failures ``limit`` times with backoff; ``None`` when ``limit`` is 0."""
    if limit <= 0:
        return None
    return m.RetryStrategy(
        limit=m.IntOrString(str(limit)),
        retry_policy="Always",
        expression=INFRA_RETRY_EXPRESSION,
        backoff=m.Backoff(duration="30s", factor=m.IntOrString("2"), max_duration="30m"),
    )


class _JobPod(hw.ContainerSet):
    """Hera's ContainerSet plus the template's own ``annotations``.

    Hera's ``annotations`` become the pod's metadata; Argo reads a node's
    ``workflows.argoproj.io/display-name`` from the template's own field, which Hera 7.1 does
    not expose.
    """

    def __init__(self, *, node_annotations: dict[str, str] | None = None, **fields: Any) -> None:
        """Hera's fields, plus the template's ``annotations``."""
        super().__init__(**fields)
        self._node_annotations = node_annotations

    def _build_template(self) -> m.Template:
        template = super()._build_template()
        if self._node_annotations:
            template.annotations = dict(self._node_annotations)
        return template


def job_template(
    nodes: Sequence[hw.ContainerNode],
    input_artifacts: Sequence[m.Artifact],
    output_artifacts: Sequence[m.Artifact],
    settings: ArgoSettings,
    deadline_seconds: str | None,
    input_parameters: Sequence[m.Parameter] = (),
    pod_spec_patch: str | None = None,
    display_name: str | None = None,
) -> hw.ContainerSet:
    """The job's one pod: the containerSet over the shared volume, with artifacts and retries."""
    return _JobPod(
        node_annotations={DISPLAY_NAME: display_name} if display_name else None,
        name=ENTRYPOINT,
        containers=list(nodes),
        volume_mounts=[m.VolumeMount(name=SHARED_VOLUME, mount_path=POD_ROOT)],
        volumes=[hw.EmptyDirVolume(name=SHARED_VOLUME)],
        inputs=[*input_parameters, *input_artifacts],
        outputs=[
            *output_artifacts,
            m.Parameter(
                name="outputs-manifest",
                value_from=m.ValueFrom(path=OUTPUTS_MANIFEST, default=""),
                description="JSON manifest stage-out wrote: exit code, each output's size and sha256",
            ),
        ],
        retry_strategy=retry_strategy(settings.retry_limit),
        active_deadline_seconds=deadline_seconds or None,
        pod_spec_patch=pod_spec_patch,
    )


def workflow_wide_spec(settings: ArgoSettings) -> dict[str, Any]:
    """Spec fields every workflow and template of this destination shares (scheduling, lifetime)."""
    spec: dict[str, Any] = {
        "entrypoint": ENTRYPOINT,
        "ttl_strategy": m.TTLStrategy(
            seconds_after_success=settings.ttl_after_success,
            seconds_after_failure=settings.ttl_after_failure,
        ),
    }
    if settings.pod_gc is not PodGCStrategy.NONE:
        spec["pod_gc"] = m.PodGC(strategy=settings.pod_gc.value)
    if settings.artifact_repository_ref:
        config_map, _, key = settings.artifact_repository_ref.rpartition("/")
        spec["artifact_repository_ref"] = m.ArtifactRepositoryRef(
            config_map=config_map or "artifact-repositories", key=key
        )
    if settings.node_selector:
        spec["node_selector"] = dict(settings.node_selector)
    if settings.tolerations:
        spec["tolerations"] = [m.Toleration.model_validate(t) for t in settings.tolerations]
    if settings.affinity:
        spec["affinity"] = m.Affinity.model_validate(settings.affinity)
    if settings.service_account:
        # The job's containers get no API token; Argo's own init/wait containers get the
        # executor's (what they need to report results), as Argo requires when it is off.
        spec["service_account_name"] = settings.service_account
        spec["automount_service_account_token"] = False
        spec["executor"] = m.ExecutorConfig(service_account_name=settings.service_account)
    if settings.security_context:
        spec["security_context"] = m.PodSecurityContext.model_validate(settings.security_context)
    if settings.priority_class:
        spec["pod_priority_class_name"] = settings.priority_class
    if settings.pod_spec_patch:
        spec["pod_spec_patch"] = json.dumps(settings.pod_spec_patch, sort_keys=True)
    return spec


def returned_keys(spec: JobSpec) -> dict[str, str]:
    """Object keys stage-out writes for the job: the returned job directory and the manifest."""
    return {
        "job-directory": f"{spec.key_prefix}/returned/job-directory.tgz",
        "outputs-manifest": f"{spec.key_prefix}/returned/outputs.json",
    }


# Hera gives every Workflow without one a fresh WorkflowsService (and a requests.Session): a
# twentieth of compile time. Compiled workflows are submitted by `galaxy_argo.clients.argo`, never by Hera.
_NEVER_USED_SERVICE = WorkflowsService(host="http://127.0.0.1:0")


def compile_job(spec: JobSpec, settings: ArgoSettings) -> hw.Workflow:
    """Build the workflow for one job. Deterministic: the same inputs give the same workflow."""
    spec.validate()
    image = spec.image or settings.default_image
    if not image:
        raise CompileError(f"job {spec.job_id}: the tool has no container and no default_image is set")
    resources = spec.resources
    memory = f"{resources.memory_mib}Mi"
    env = {
        "GALAXY_SLOTS": str(max(1, int(resources.cores))),
        "GALAXY_MEMORY_MB": str(resources.memory_mib),
        **spec.env,
    }
    nodes = [stage_in_node(settings)]
    nodes.append(
        step_node(
            "run",
            image,
            spec.command_line,
            spec.working_directory,
            env,
            run_resources(cpu_quantity(resources.cores), memory, str(resources.gpus), settings),
            settings,
            ["stage-in"],
        )
    )
    last = "run"
    if spec.metadata_command:
        nodes.append(
            step_node(
                "metadata",
                settings.metadata_image,
                spec.metadata_command,
                spec.working_directory,
                {"GALAXY_SLOTS": "1"},
                # Galaxy's set_metadata imports most of Galaxy: far beyond the stage containers' limit.
                run_resources("100m", f"{settings.metadata_memory}Mi", "0", settings),
                settings,
                ["run"],
                # Galaxy's extended set_metadata writes outputs into Galaxy's object store itself.
                secret_env=_store_credentials(settings) if any(f.bucket for f in spec.outputs) else None,
            )
        )
        last = "metadata"
    nodes.append(stage_out_node(settings, [last]))

    keys = returned_keys(spec)
    outputs = [_output_artifact(f) for f in spec.outputs if f.bucket is None]
    if spec.job_directory is not None:
        outputs.append(
            m.Artifact(
                name="job-directory",
                path=spec.job_directory.pod_path,
                s3=m.S3Artifact(key=keys["job-directory"]),
                optional=True,
            )
        )
    outputs.append(
        m.Artifact(
            name="outputs-manifest",
            path=OUTPUTS_MANIFEST,
            s3=m.S3Artifact(key=keys["outputs-manifest"]),
            archive=m.ArchiveStrategy(none=m.NoneStrategy()),
            optional=True,
        )
    )
    template = job_template(
        nodes,
        _input_artifacts(spec, settings),
        outputs,
        settings,
        str(resources.walltime_seconds) if resources.walltime_seconds else None,
        display_name=f"{spec.tool_name or spec.tool_id} · job {spec.job_id}",
    )
    return hw.Workflow(
        api_version="argoproj.io/v1alpha1",
        kind="Workflow",
        name=workflow_name(settings.instance, spec.job_id, spec.attempt),
        namespace=settings.namespace,
        labels=_labels(spec, settings),
        annotations=_annotations(spec, settings),
        pod_metadata=m.Metadata(labels=_identity_labels(spec, settings)),
        templates=[template],
        workflows_service=_NEVER_USED_SERVICE,
        **workflow_wide_spec(settings),
    )


def compile_model(spec: JobSpec, settings: ArgoSettings) -> m.Workflow:
    """The job's workflow as the Argo model the runner submits: no dict and validation round trip."""
    return cast(m.Workflow, compile_job(spec, settings).build())


def _store_credentials(settings: ArgoSettings) -> dict[str, tuple[str, str]]:
    """The pod's keys for Galaxy's object store, from `ArgoSettings.object_store_secret`.

    None without a Secret: boto3 in the pod then finds the pod's own cloud identity.
    """
    secret = settings.object_store_secret
    if not secret:
        return {}
    return {"AWS_ACCESS_KEY_ID": (secret, "accesskey"), "AWS_SECRET_ACCESS_KEY": (secret, "secretkey")}


def _s3(staged: StagedFile, spec: JobSpec, settings: ArgoSettings) -> m.S3Artifact:
    """Key-only for the artifact repository; the full location for an object in Galaxy's store."""
    if staged.bucket is None:
        return m.S3Artifact(key=staged.key)
    scheme, _, endpoint = spec.store_endpoints[staged.bucket].partition("://")
    secret = settings.object_store_secret
    return m.S3Artifact(
        bucket=staged.bucket,
        key=staged.key,
        endpoint=endpoint,
        insecure=scheme == "http",
        access_key_secret=m.SecretKeySelector(name=secret, key="accesskey") if secret else None,
        secret_key_secret=m.SecretKeySelector(name=secret, key="secretkey") if secret else None,
        use_sdk_creds=None if secret else True,
    )


def _input_artifacts(spec: JobSpec, settings: ArgoSettings) -> list[m.Artifact]:
    artifacts: list[m.Artifact] = []
    for name, bundle in (("job-directory", spec.job_directory), ("tool-directory", spec.tool_directory)):
        if bundle is not None:
            artifacts.append(m.Artifact(name=name, path=bundle.pod_path, s3=m.S3Artifact(key=bundle.key)))
    for staged in spec.inputs:
        artifacts.append(
            m.Artifact(
                name=staged.name,
                path=staged.pod_path,
                s3=_s3(staged, spec, settings),
                archive=_archive(staged),
            )
        )
    checklist = "".join(
        f"{f.sha256 or '-'} {f.size} {f.pod_path}\n" for f in spec.inputs if f.kind is StagedKind.DATASET
    )
    artifacts.append(
        m.Artifact(name="inputs-sha256", path=INPUTS_CHECKLIST, raw=m.RawArtifact(data=checklist))
    )
    expected = "".join(
        f"{f.name} {'dir' if f.kind is StagedKind.DIRECTORY else 'file'} {f.pod_path}\n" for f in spec.outputs
    )
    artifacts.append(m.Artifact(name="outputs-list", path=OUTPUTS_LIST, raw=m.RawArtifact(data=expected)))
    if spec.discard:
        lines = [f"keep {path}\n" for path in spec.keep] + [f"discard {path}\n" for path in spec.discard]
        artifacts.append(
            m.Artifact(name="discard-list", path=DISCARD_LIST, raw=m.RawArtifact(data="".join(lines)))
        )
    return artifacts


def _output_artifact(staged: StagedFile) -> m.Artifact:
    # Optional: a tool may legitimately not write an output; the manifest says which exist and
    # the runner decides, rather than Argo failing the node before the manifest is saved. Saved
    # from where stage-out moved it, so it is not also inside the job-directory tarball.
    return m.Artifact(
        name=staged.name,
        path=returned_path(staged.name),
        s3=m.S3Artifact(key=staged.key),
        archive=_archive(staged),
        optional=True,
    )


def _archive(staged: StagedFile) -> m.ArchiveStrategy | None:
    if staged.kind is StagedKind.DIRECTORY:
        return None  # bundles: Argo's default tar+gzip, unpacked at the path on load
    # A dataset as is; a prefix object by object (a single object under its own key as is).
    return m.ArchiveStrategy(none=m.NoneStrategy())


def _identity_labels(spec: JobSpec, settings: ArgoSettings) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/managed-by": "galaxy-argo",
        f"{LABEL_PREFIX}/instance": settings.instance,
        f"{LABEL_PREFIX}/job-id": label_value(spec.job_id),
    }
    return labels


def _labels(spec: JobSpec, settings: ArgoSettings) -> dict[str, str]:
    labels = {key: label_value(value) for key, value in spec.labels.items()}
    labels.update(_identity_labels(spec, settings))
    labels[f"{LABEL_PREFIX}/tool-id"] = label_value(spec.tool_id)
    labels[f"{LABEL_PREFIX}/attempt"] = str(spec.attempt)
    if spec.user:
        labels[f"{LABEL_PREFIX}/user"] = user_hash(spec.user, settings.instance)
    return labels


def _annotations(spec: JobSpec, settings: ArgoSettings) -> dict[str, str]:
    tool = spec.tool_name or spec.tool_id
    lines = [
        f"**Galaxy tool** `{spec.tool_id}` version `{spec.tool_version}`",
        "",
        f"- Galaxy job: [{spec.job_id}]({spec.job_url})" if spec.job_url else f"- Galaxy job: {spec.job_id}",
    ]
    if spec.history_id:
        lines.append(f"- History: `{spec.history_id}`")
    if spec.attempt:
        lines.append(f"- Resubmission: {spec.attempt}")
    annotations = dict(spec.annotations)
    annotations.update(
        {
            "workflows.argoproj.io/title": f"{tool} · Galaxy job {spec.job_id}",
            "workflows.argoproj.io/description": "\n".join(lines) + "\n",
            f"{LABEL_PREFIX}/tool-id": spec.tool_id,
            f"{LABEL_PREFIX}/tool-version": spec.tool_version,
        }
    )
    if spec.job_url:
        annotations[f"{LABEL_PREFIX}/job-url"] = spec.job_url
    if settings.galaxy_url:
        annotations[f"{LABEL_PREFIX}/galaxy-url"] = settings.galaxy_url
    return annotations
