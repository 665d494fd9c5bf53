"""A prepared Galaxy job -> what to upload, the `JobSpec`, and where each output comes back to.

`build_plan` runs in ``queue_job`` after Galaxy wrote the job directory with pod paths (see
`galaxy_argo.galaxy.compute_env`). It uploads inputs (content-addressed: a dataset already in the
bucket costs one HEAD), the tool directory (once per tool version and content), and the job
directory bundle, and returns a `JobPlan`. The plan is saved as JSON next to Galaxy's job files so
that `finish` works the same after a Galaxy restart as in the handler that submitted the job.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from galaxy.job_execution.compute_environment import dataset_path_to_extra_path
from galaxy.model import Dataset, MetadataFile
from galaxy.util.hash_util import HashFunctionNameEnum

from galaxy_argo.clients.staging import Stager, StagingError
from galaxy_argo.core.compile import returned_keys
from galaxy_argo.core.naming import workflow_name
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.core.spec import JobSpec, Resources, StagedFile, StagedKind
from galaxy_argo.galaxy.compute_env import (
    POD_INPUTS,
    POD_JOB,
    POD_REFERENCE,
    POD_TOOL,
    ArgoComputeEnvironment,
    input_pod_name,
    reference_root,
)
from galaxy_argo.galaxy.object_store import (
    InPlace,
    StoreError,
    backend_of,
    dataset_object,
    extra_files_prefix,
    metadata_file_object,
    object_size,
    refusal,
)

__all__ = [
    "PLAN_FILE",
    "DirectStore",
    "JobPlan",
    "OutputTarget",
    "artifact_name",
    "build_plan",
    "job_key_prefix",
    "reference_inputs",
]

#: Name of the saved plan in Galaxy's (local) job directory.
PLAN_FILE = "galaxy_argo_plan.json"
SHA256 = HashFunctionNameEnum.sha256.value
_NOT_NAME = re.compile(r"[^a-z0-9_-]+")


def artifact_name(prefix: str, text: str, taken: set[str]) -> str:
    """An Argo artifact name for ``text`` (a Galaxy output name), unique among ``taken``."""
    base = _NOT_NAME.sub("-", text.lower()).strip("-_") or "x"
    name = f"{prefix}{base}"[:56].rstrip("-_")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    taken.add(candidate)
    return candidate


def job_key_prefix(settings: ArgoSettings, name: str) -> str:
    """Prefix of one workflow's own objects: cleaned per the ``cleanup`` policy."""
    return f"{settings.key_prefix}/jobs/{name}"


@dataclass(frozen=True)
class OutputTarget:
    """One output artifact and the Galaxy (host) path it is downloaded to."""

    name: str
    key: str
    local_path: str
    #: Galaxy's ``Dataset`` id, to record the verified sha256 on it (``None`` in plans saved before).
    dataset_id: int | None = None
    #: ``object_store: direct``: the bucket of Galaxy's store the job writes the output to itself
    #: (``key`` is then Galaxy's key); empty: an artifact, downloaded to ``local_path``.
    bucket: str = ""


@dataclass
class JobPlan:
    """What the runner needs after submission, also after a Galaxy restart."""

    workflow_name: str
    key_prefix: str
    outputs: list[OutputTarget] = field(default_factory=list)
    #: Key the returned job directory bundle is saved to.
    job_directory_key: str = ""
    metadata_remote: bool = False
    memory: str = ""
    walltime: str = ""
    uploaded_bytes: int = 0
    reused_objects: int = 0
    #: Seconds from ``queue_job`` to the workflow submitted: prepare, stage-in uploads, compile, submit.
    submit_seconds: float = 0.0

    def save(self, job_directory: str) -> None:
        """Write the plan (atomically) into Galaxy's job directory."""
        path = Path(job_directory) / PLAN_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, job_directory: str) -> JobPlan | None:
        """The saved plan, or ``None`` if the job was never submitted from this job directory."""
        path = Path(job_directory) / PLAN_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        data["outputs"] = [OutputTarget(**o) for o in data.get("outputs", [])]
        return cls(**data)


def _is_plain_pod_path(path: str) -> bool:
    return path.startswith(POD_JOB + "/") and posixpath.normpath(path) == path and not set(path) & set("*?[]")


def _human_mib(mib: int) -> str:
    return f"{mib / 1024:g} GiB" if mib >= 1024 else f"{mib} MiB"


@dataclass(frozen=True)
class DirectStore:
    """``object_store: direct`` for one job: Galaxy's object store and what pods reach it by."""

    #: Galaxy's ``app.object_store``.
    object_store: Any
    #: `ArgoSettings.object_store_endpoint` (empty: each backend's own endpoint).
    endpoint: str
    #: Whether outputs are written in place (else only inputs are read in place).
    outputs: bool
    #: Where each input went and why, for the job's log.
    notes: list[str] = field(default_factory=list)

    def locate(self, dataset: Any) -> tuple[Any, str | None]:
        """The backend of ``dataset`` (a ``model.Dataset``) and why it is not usable in place, if so."""
        backend = backend_of(self.object_store, getattr(dataset, "object_store_id", None))
        reason = refusal(backend)
        if reason is None and getattr(dataset, "external_filename", None):
            reason = "it is a linked file outside the object store"
        return backend, reason


def known_sha256(dataset: Any) -> str | None:
    """The SHA-256 Galaxy keeps for a dataset's file (``DatasetHash``), if it has one."""
    for recorded in getattr(dataset, "hashes", None) or ():
        if recorded.hash_function == SHA256 and not recorded.extra_files_path and recorded.hash_value:
            return str(recorded.hash_value).lower()
    return None


@dataclass(frozen=True)
class _InPlaceInput:
    """An input the pod reads from Galaxy's store: a dataset or metadata file, or an extra-files prefix."""

    place: InPlace
    pod_path: str
    kind: StagedKind
    size: int | None = None
    sha256: str | None = None


def _in_place_inputs(
    dataset: Any, pod: str, backend: Any, direct: DirectStore
) -> tuple[list[_InPlaceInput], list[Any]]:
    """Galaxy's own objects of one input (an HDA), and the metadata files to stage instead.

    One LIST for its extra files and one HEAD per metadata file: Galaxy may keep a metadata file
    it made on the host (an upload's BAM index) only in its cache, leaving the object empty. Such
    a file is staged from the host, which reads it anyway for the command template.
    """
    inner = dataset.dataset
    size = inner.file_size if inner.file_size is not None else inner.get_size()
    found = [
        _InPlaceInput(
            dataset_object(backend, inner, direct.endpoint),
            pod,
            StagedKind.DATASET,
            int(size or 0),
            known_sha256(inner),
        )
    ]
    staged: list[Any] = []
    for value in dataset.metadata.values():
        if isinstance(value, MetadataFile) and value.uuid is not None:
            place = metadata_file_object(backend, value, direct.endpoint)
            size = object_size(backend, place.key)
            if not size:
                where = f"s3://{place.bucket}/{place.key}"
                direct.notes.append(f"a metadata file of input {_name(dataset)} is staged: {where} is empty")
                staged.append(value)
                continue
            meta_pod = posixpath.join(POD_INPUTS, "metadata", posixpath.basename(place.key))
            found.append(_InPlaceInput(place, meta_pod, StagedKind.DATASET, size))
    extra = extra_files_prefix(backend, inner, direct.endpoint)
    if extra is not None:
        found.append(_InPlaceInput(extra, dataset_path_to_extra_path(pod), StagedKind.PREFIX))
    return found, staged


def _metadata_files(metadata_files: list[Any], seen: set[str]) -> list[tuple[str, str, str | None]]:
    """Input metadata files staged from the host: (host path, pod path, None), each once."""
    files: list[tuple[str, str, str | None]] = []
    for value in metadata_files:
        meta_local = value.get_file_name()
        if meta_local and meta_local not in seen and os.path.exists(meta_local):
            seen.add(meta_local)
            files.append(
                (meta_local, posixpath.join(POD_INPUTS, "metadata", os.path.basename(meta_local)), None)
            )
    return files


def _name(dataset: Any) -> str:
    """How the job's log names an input: Galaxy's dataset id and its uuid."""
    return f"{dataset.dataset.id} ({dataset.dataset.uuid})"


def _job_inputs(
    job_wrapper: Any, ce: ArgoComputeEnvironment, direct: DirectStore | None = None
) -> tuple[list[tuple[str, str, str | None]], list[tuple[str, str]], list[_InPlaceInput]]:
    """The input files and the extra-files directories of the job.

    Files (datasets, their metadata files) as (host path, pod path, sha256 Galaxy knows or None),
    directories as (host path, pod path), and with ``direct`` the objects read in place. One pass
    over the job's input datasets: each is read from Galaxy's database once. A dataset read in
    place is never asked for its file name, which would download it into Galaxy's cache.
    """
    files: list[tuple[str, str, str | None]] = []
    directories: list[tuple[str, str]] = []
    in_place: list[_InPlaceInput] = []
    seen: set[str] = set()
    for dataset in job_wrapper.job_io.get_input_datasets(ce.materialized_objects):
        pod = posixpath.join(POD_INPUTS, input_pod_name(dataset))
        if direct is not None:
            backend, reason = direct.locate(dataset.dataset)
            if reason is None:
                if pod not in seen:
                    seen.add(pod)
                    objects, metadata_files = _in_place_inputs(dataset, pod, backend, direct)
                    in_place += objects
                    files += _metadata_files(metadata_files, seen)
                    direct.notes.append(f"input dataset {_name(dataset)} is read in place")
                continue
            direct.notes.append(f"input dataset {_name(dataset)} is staged: {reason}")
        local = dataset.get_file_name()
        if local not in seen:
            seen.add(local)
            files.append((local, pod, known_sha256(dataset.dataset)))
        files += _metadata_files(
            [value for value in dataset.metadata.values() if isinstance(value, MetadataFile)], seen
        )
        inner = dataset.dataset
        if inner is not None and inner.extra_files_path_exists():
            directories.append((inner.extra_files_path, dataset_path_to_extra_path(pod)))
    return files, directories, in_place


def _tool_files(tool: Any) -> list[Path]:
    tool_dir = Path(tool.tool_dir)
    required = getattr(tool, "required_files", None)
    if required is not None:
        return sorted(tool_dir / rel for rel in required.find_required_files(str(tool_dir)))
    skip = {"test-data", "tool-data", ".hg", ".git", "__pycache__"}
    files: list[Path] = []
    for root, dirs, names in os.walk(tool_dir):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        files.extend(Path(root) / n for n in sorted(names))
    return files


def _stage_tool_directory(stager: Stager, tool: Any, settings: ArgoSettings) -> StagedFile | None:
    """The tool directory as a bundle keyed by its content listing: uploaded once per change."""
    if tool.tool_dir is None:
        return None
    tool_dir = Path(tool.tool_dir)
    files = [f for f in _tool_files(tool) if f.is_file()]
    listing = hashlib.sha256()
    for f in files:
        st = f.stat()
        listing.update(f"{f.relative_to(tool_dir)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    key = f"{settings.key_prefix}/tools/{listing.hexdigest()}.tgz"
    if stager.existing(key) is None:
        stager.stage_bundle(tool_dir, key, "tool", files)
    return StagedFile("tool-directory", POD_TOOL, key, StagedKind.DIRECTORY)


def reference_inputs(
    stager: Stager, paths: list[str], reference_data: dict[str, str], taken: set[str]
) -> list[StagedFile]:
    """One prefix artifact per directory of reference data the job reads.

    A ``.loc`` path names a directory (loaded whole), a file, or the common prefix of an index's
    files (``hg38`` for ``hg38.1.bt2``, ...); for the last two the file's directory is loaded, as
    indexes are siblings. Whether a path is a directory is asked of the bucket, not of Galaxy's
    disk: the Galaxy host need not have the data at all. Directories inside another one loaded
    for the same job are not loaded twice.
    """
    units: set[tuple[str, str]] = set()
    for path in paths:
        root = reference_root(path, reference_data)
        if root is None:
            continue
        relative = posixpath.relpath(path, root) if path != root else ""
        key_root = reference_data[root]
        keys = {
            candidate: posixpath.join(key_root, candidate) if candidate else key_root
            for candidate in ([relative, posixpath.dirname(relative)] if relative else [""])
        }
        found = next((c for c, key in keys.items() if stager.has_objects_below(key)), None)
        if found is None:
            # Short: Galaxy keeps 255 characters of a failure message.
            raise StagingError(
                f"reference data {path} is not in the bucket "
                f"(nothing below s3://{stager.bucket}/{list(keys.values())[-1]}/)"
            )
        units.add((root, found))
    staged: list[StagedFile] = []
    for root, unit in sorted(units):
        if any(
            other_root == root and other != unit and (other == "" or unit.startswith(other + "/"))
            for other_root, other in units
        ):
            continue  # loaded with the directory it is in
        host = posixpath.join(root, unit) if unit else root
        key = posixpath.join(reference_data[root], unit) if unit else reference_data[root]
        name = artifact_name("ref-", posixpath.basename(host), taken)
        staged.append(StagedFile(name, POD_REFERENCE + host, key, StagedKind.PREFIX))
    return staged


def build_plan(
    job_wrapper: Any,
    ce: ArgoComputeEnvironment,
    settings: ArgoSettings,
    stager: Stager,
    *,
    command_line: str,
    image: str | None,
    attempt: int,
    metadata_command: str | None,
    job_url: str = "",
    direct: DirectStore | None = None,
    work_dir_outputs: dict[str, str] | None = None,
) -> tuple[JobSpec, JobPlan]:
    """Upload what the job reads and describe it; the job directory must be complete already.

    ``direct``: read inputs in Galaxy's S3 store in place and (``direct.outputs``) let the job
    write its outputs there; ``work_dir_outputs`` maps an output's host path to the pod path of
    its ``from_work_dir`` source, where a job writing in place leaves it.
    """
    job = job_wrapper.get_job()
    name = workflow_name(settings.instance, str(job.id), attempt)
    prefix = job_key_prefix(settings, name)
    plan = JobPlan(
        workflow_name=name,
        key_prefix=prefix,
        metadata_remote=metadata_command is not None,
        memory=_human_mib(settings.memory),
        walltime=f"{settings.walltime} s" if settings.walltime else "",
    )
    inputs: list[StagedFile] = []
    taken: set[str] = set()
    input_files, input_directories, in_place = _job_inputs(job_wrapper, ce, direct)
    store_endpoints: dict[str, str] = {}
    for item in in_place:
        store_endpoints[item.place.bucket] = item.place.endpoint
        stem = posixpath.basename(item.pod_path).removesuffix(".dat")
        inputs.append(
            StagedFile(
                artifact_name("in-", stem, taken),
                item.pod_path,
                item.place.key,
                item.kind,
                size=item.size,
                sha256=item.sha256,
                bucket=item.place.bucket,
            )
        )
    for local, pod, sha256 in input_files:
        upload = stager.stage_file(Path(local), sha256=sha256)
        plan.uploaded_bytes += upload.size if upload.uploaded else 0
        plan.reused_objects += 0 if upload.uploaded else 1
        inputs.append(
            StagedFile(
                artifact_name("in-", os.path.basename(pod).removesuffix(".dat"), taken),
                pod,
                upload.key,
                size=upload.size,
                sha256=upload.sha256,
            )
        )
    for local, pod in input_directories:
        staged_name = artifact_name("in-", os.path.basename(pod), taken)
        upload = stager.stage_bundle(Path(local), f"{prefix}/in/{staged_name}.tgz", top=os.path.basename(pod))
        plan.uploaded_bytes += upload.size
        inputs.append(StagedFile(staged_name, pod, upload.key, StagedKind.DIRECTORY))

    inputs += reference_inputs(stager, sorted(ce.reference_paths), settings.reference_data, taken)

    outputs: list[StagedFile] = []
    discard: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    for dataset_path in job_wrapper.job_io.get_output_fnames():
        local = str(dataset_path)
        out_name = artifact_name("out-", os.path.basename(local).removesuffix(".dat"), taken)
        pod_path = posixpath.join(POD_JOB, "outputs", os.path.basename(local))
        if direct is not None and direct.outputs:
            dataset = job_wrapper.sa_session.get(Dataset, dataset_path.dataset_id)
            backend, reason = direct.locate(dataset)
            if reason is not None:
                raise StoreError(f"output {os.path.basename(local)} cannot be written in place: {reason}")
            place = dataset_object(backend, dataset, direct.endpoint)
            store_endpoints[place.bucket] = place.endpoint
            source = (work_dir_outputs or {}).get(local, pod_path)
            if source != pod_path and not _is_plain_pod_path(source):
                continue  # a glob: the pod's set_metadata resolves it; nothing to check by path
            outputs.append(StagedFile(out_name, source, place.key, bucket=place.bucket))
            plan.outputs.append(
                OutputTarget(out_name, place.key, local, dataset_path.dataset_id, place.bucket)
            )
            continue
        key = f"{prefix}/out/{out_name}"
        outputs.append(StagedFile(out_name, pod_path, key))
        plan.outputs.append(OutputTarget(out_name, key, local, dataset_path.dataset_id))
    if direct is not None and direct.outputs:
        # What the job wrote to Galaxy's store itself stays out of the returned job directory.
        discard = (f"{POD_JOB}/working", f"{POD_JOB}/outputs/dataset_*")
        keep = (posixpath.join(POD_JOB, "working", job_wrapper.tool.provided_metadata_file),)

    tool = job_wrapper.tool
    tool_directory = _stage_tool_directory(stager, tool, settings)
    job_bundle = stager.stage_bundle(
        Path(job_wrapper.working_directory), f"{prefix}/in/job-directory.tgz", "job"
    )
    plan.uploaded_bytes += job_bundle.size
    user = job.user
    spec = JobSpec(
        job_id=str(job.id),
        tool_id=str(job.tool_id),
        tool_version=str(job.tool_version or tool.version),
        tool_name=str(getattr(tool, "name", "") or ""),
        command_line=command_line,
        key_prefix=prefix,
        image=image,
        working_directory=POD_JOB,
        job_directory=StagedFile("job-directory", POD_JOB, job_bundle.key, StagedKind.DIRECTORY),
        tool_directory=tool_directory,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        resources=Resources(
            cores=settings.cores,
            memory_mib=settings.memory,
            gpus=settings.gpus,
            walltime_seconds=settings.walltime,
        ),
        metadata_command=metadata_command,
        attempt=attempt,
        user=str(getattr(user, "username", "") or getattr(user, "email", "") or ""),
        history_id=str(job.history_id or ""),
        job_url=job_url,
        store_endpoints=store_endpoints,
        discard=discard,
        keep=keep,
    ).validate()
    plan.job_directory_key = returned_keys(spec)["job-directory"]
    return spec, plan
