"""`JobSpec`: a Galaxy-free description of one job, the contract between the runner and the compiler.

The runner (``galaxy_argo/galaxy/``) turns a Galaxy ``JobWrapper`` into a frozen `JobSpec` at
once; everything after that (compile, templates, tests, the CLI) reads only this. It round-trips
through JSON (``galaxy-argo compile JOBSPEC.json``) and validates on the way in, so a malformed
job fails here with the field named, not deep inside Argo.

Pod paths live under `POD_ROOT`, a volume shared by every container of the job's pod; names and
paths are restricted to characters that are safe unquoted in POSIX sh and in JSON, because the
stage containers are plain busybox scripts.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from galaxy_argo.core.errors import SpecError

__all__ = [
    "CONTROL_DIR",
    "POD_ROOT",
    "RESERVED_ARTIFACT_NAMES",
    "SPEC_VERSION",
    "JobSpec",
    "Resources",
    "StagedFile",
    "StagedKind",
]

#: Mount path of the pod-wide emptyDir every container shares; all staged paths live below it.
POD_ROOT = "/galaxy"
#: Where the stage containers keep their own files (exit code, manifests); not for job files.
CONTROL_DIR = f"{POD_ROOT}/.argo"
#: Version of the JSON form; bumped on incompatible changes so old files fail clearly.
SPEC_VERSION = 1
#: Artifact names the compiler uses for itself.
RESERVED_ARTIFACT_NAMES = frozenset(
    {"job-directory", "tool-directory", "outputs-manifest", "inputs-sha256", "outputs-list", "discard-list"}
)

_ARTIFACT_NAME = re.compile(r"^[a-z0-9][-a-z0-9_]{0,62}$")
_POD_PATH_CHARS = re.compile(r"^[A-Za-z0-9._/+@=,-]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ENDPOINT = re.compile(r"^https?://[^\s/]+$")
_JOB_ID = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,39}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_KEY_BYTES = 1024


class StagedKind(StrEnum):
    """How a staged path travels through S3."""

    #: One file, stored byte for byte (Argo ``archive: none``); sha256-verified in the pod.
    DATASET = "dataset"
    #: A directory, stored as a gzipped tarball that Argo unpacks at the pod path.
    DIRECTORY = "directory"
    #: Every object below a key prefix (an S3 "directory"), loaded file by file at the pod path;
    #: an input only, for reference data that lives in the bucket and is not the job's to verify.
    PREFIX = "prefix"


@dataclass(frozen=True)
class StagedFile:
    """One file or directory moved between Galaxy and the pod through the artifact repository."""

    #: Artifact name, unique in the job: lower-case letters, digits, ``-`` and ``_``.
    name: str
    #: Absolute path inside the pod, below `POD_ROOT`.
    pod_path: str
    #: Object key relative to the artifact repository's bucket.
    key: str
    kind: StagedKind = StagedKind.DATASET
    #: Size in bytes; required for input datasets.
    size: int | None = None
    #: Hex sha256 of the content; required for input datasets from the artifact repository,
    #: checked before the tool runs.
    sha256: str | None = None
    #: The bucket of Galaxy's own object store this object lives in (``object_store: direct``);
    #: ``None``: the artifact repository's. Such an input is read in place (verified by size, and
    #: by sha256 when Galaxy knows it); such an output is written by the job itself (Galaxy's
    #: extended set_metadata), so Argo saves no artifact for it.
    bucket: str | None = None

    def validate(self, where: str) -> None:
        """Raise `SpecError` naming ``where`` and the rule a field breaks."""
        if not _ARTIFACT_NAME.match(self.name):
            raise SpecError(
                f"{where}.name {self.name!r}: expected 1-63 of a-z, 0-9, '-', '_' "
                "starting with a letter or digit"
            )
        if self.name in RESERVED_ARTIFACT_NAMES:
            raise SpecError(f"{where}.name {self.name!r} is reserved for galaxy-argo's own use")
        _check_pod_path(self.pod_path, f"{where}.pod_path")
        _check_key(self.key, f"{where}.key")
        if self.size is not None and (
            isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0
        ):
            raise SpecError(f"{where}.size {self.size!r}: expected a whole number of bytes >= 0")
        if self.sha256 is not None and not _SHA256.match(self.sha256):
            raise SpecError(f"{where}.sha256 {self.sha256!r}: expected 64 lower-case hex digits")
        if self.bucket is not None and not _BUCKET.match(self.bucket):
            raise SpecError(
                f"{where}.bucket {self.bucket!r}: expected an S3 bucket name (3-63 of a-z, 0-9, '.', '-')"
            )


@dataclass(frozen=True)
class Resources:
    """What the tool's container asks the scheduler for."""

    #: CPU cores (fractions allowed, as Kubernetes allows ``500m``).
    cores: float = 1.0
    #: Memory limit in MiB; going over it ends the job as OOMKilled.
    memory_mib: int = 4096
    #: GPUs (whole devices).
    gpus: int = 0
    #: Wall-clock limit of the job's pod in seconds; ``None`` for no limit.
    walltime_seconds: int | None = None

    def validate(self) -> None:
        """Raise `SpecError` for values no scheduler could honour."""
        if isinstance(self.cores, bool) or not isinstance(self.cores, int | float):
            raise SpecError(f"resources.cores {self.cores!r}: expected a number > 0")
        if not 0.001 <= self.cores <= 4096:
            raise SpecError(f"resources.cores {self.cores!r}: expected a number from 0.001 to 4096")
        _check_whole(self.memory_mib, "resources.memory_mib", minimum=1)
        _check_whole(self.gpus, "resources.gpus", minimum=0)
        if self.walltime_seconds is not None:
            _check_whole(self.walltime_seconds, "resources.walltime_seconds", minimum=1)


@dataclass(frozen=True)
class JobSpec:
    """Everything the compiler needs to know about one Galaxy job, and nothing about Galaxy.

    The runner fills it from a ``JobWrapper``; tests and ``galaxy-argo compile`` read it from JSON.
    """

    #: Galaxy's job id (decoded), part of the workflow name.
    job_id: str
    tool_id: str
    tool_version: str
    #: Shell command line the ``run`` container executes (Galaxy writes it with pod paths).
    command_line: str
    #: Prefix of the job's own objects (outputs, returned job directory) in the bucket.
    key_prefix: str
    #: Human tool name for the Argo UI title; defaults to the tool id.
    tool_name: str = ""
    #: Container image for the tool; ``None`` takes the destination's ``default_image``.
    image: str | None = None
    #: Directory the tool starts in (a pod path).
    working_directory: str = f"{POD_ROOT}/job/working"
    env: Mapping[str, str] = field(default_factory=dict)
    #: Galaxy's job directory (scripts, configs, working dir) as a bundle, returned after the run.
    job_directory: StagedFile | None = None
    #: The tool's directory (wrapper scripts) as a bundle.
    tool_directory: StagedFile | None = None
    inputs: tuple[StagedFile, ...] = ()
    outputs: tuple[StagedFile, ...] = ()
    resources: Resources = field(default_factory=Resources)
    #: Command that sets output metadata on the cluster; ``None`` when Galaxy does it.
    metadata_command: str | None = None
    #: Resubmission count; later attempts get their own workflow name.
    attempt: int = 0
    #: Galaxy user name; only a hash of it reaches the workflow.
    user: str = ""
    history_id: str = ""
    #: Link to the job in Galaxy, shown in the Argo UI.
    job_url: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    #: Bucket of Galaxy's object store -> its S3 endpoint as pods reach it (``http(s)://host:port``);
    #: one entry for every ``bucket`` a staged file names.
    store_endpoints: Mapping[str, str] = field(default_factory=dict)
    #: Pod paths (shell globs) stage-out deletes before Argo saves the job directory: what the job
    #: already wrote to Galaxy's object store itself, so it does not travel back to Galaxy twice.
    discard: tuple[str, ...] = ()
    #: Pod paths below `discard` that are kept all the same (Galaxy reads them at finish).
    keep: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Freeze the mappings so a spec cannot change after it was validated."""
        object.__setattr__(self, "env", dict(self.env))
        object.__setattr__(self, "labels", dict(self.labels))
        object.__setattr__(self, "annotations", dict(self.annotations))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "store_endpoints", dict(self.store_endpoints))
        object.__setattr__(self, "discard", tuple(self.discard))
        object.__setattr__(self, "keep", tuple(self.keep))

    def validate(self) -> JobSpec:
        """Check every field; return ``self`` so callers can chain, raise `SpecError` otherwise."""
        if not isinstance(self.job_id, str) or not _JOB_ID.match(self.job_id):
            raise SpecError(f"job_id {self.job_id!r}: expected 1-40 of letters, digits, '-', '_', '.'")
        for name in ("tool_id", "tool_version", "command_line"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise SpecError(f"{name} {value!r}: expected a non-empty string")
        if "\x00" in self.command_line:
            raise SpecError("command_line contains a NUL byte")
        _check_key(self.key_prefix, "key_prefix")
        if self.image is not None and (not isinstance(self.image, str) or not self.image.strip()):
            raise SpecError(f"image {self.image!r}: expected an image reference or null")
        _check_pod_path(self.working_directory, "working_directory")
        for key, value in self.env.items():
            if not _ENV_NAME.match(key) or not isinstance(value, str):
                raise SpecError(f"env {key!r}: expected NAME=string with NAME like [A-Za-z_][A-Za-z0-9_]*")
        self.resources.validate()
        _check_whole(self.attempt, "attempt", minimum=0)
        if self.metadata_command is not None and not self.metadata_command.strip():
            raise SpecError("metadata_command: expected a command line or null")
        for label, value in {**self.labels, **self.annotations}.items():
            if not isinstance(label, str) or not isinstance(value, str):
                raise SpecError(f"labels/annotations {label!r}: keys and values must be strings")
        self._validate_staged()
        self._validate_stores()
        return self

    def _validate_stores(self) -> None:
        for bucket, endpoint in self.store_endpoints.items():
            if not isinstance(bucket, str) or not _BUCKET.match(bucket):
                raise SpecError(f"store_endpoints: {bucket!r} is not an S3 bucket name")
            if not isinstance(endpoint, str) or not _ENDPOINT.match(endpoint):
                raise SpecError(
                    f"store_endpoints[{bucket!r}] {endpoint!r}: expected http(s)://host[:port] with no path"
                )
        for where, staged_file in [("inputs", f) for f in self.inputs] + [
            ("outputs", f) for f in self.outputs
        ]:
            if staged_file.bucket is not None and staged_file.bucket not in self.store_endpoints:
                raise SpecError(
                    f"{where} ({staged_file.name}): bucket {staged_file.bucket!r} "
                    "has no entry in store_endpoints"
                )
        for name in ("discard", "keep"):
            for path in getattr(self, name):
                _check_pod_path(path.replace("*", "x").replace("?", "x"), name)

    def _validate_staged(self) -> None:
        staged: list[tuple[str, StagedFile]] = []
        if self.job_directory is not None:
            staged.append(("job_directory", self.job_directory))
        if self.tool_directory is not None:
            staged.append(("tool_directory", self.tool_directory))
        staged += [(f"inputs[{i}]", f) for i, f in enumerate(self.inputs)]
        staged += [(f"outputs[{i}]", f) for i, f in enumerate(self.outputs)]
        seen_names: dict[str, str] = {}
        seen_paths: dict[str, str] = {}
        for where, staged_file in staged:
            if not isinstance(staged_file, StagedFile):
                raise SpecError(f"{where}: expected a staged file, got {type(staged_file).__name__}")
            if where.endswith("directory"):
                if staged_file.kind is not StagedKind.DIRECTORY:
                    raise SpecError(f"{where}.kind: expected 'directory'")
                # Bundles get fixed artifact names; their own name is free text for the runner.
                _check_pod_path(staged_file.pod_path, f"{where}.pod_path")
                _check_key(staged_file.key, f"{where}.key")
            else:
                staged_file.validate(where)
                if staged_file.name in seen_names:
                    raise SpecError(
                        f"{where}.name {staged_file.name!r} is also used by {seen_names[staged_file.name]}"
                    )
                seen_names[staged_file.name] = where
            if staged_file.pod_path in seen_paths:
                raise SpecError(
                    f"{where}.pod_path {staged_file.pod_path!r} is also used by "
                    f"{seen_paths[staged_file.pod_path]}"
                )
            seen_paths[staged_file.pod_path] = where
        for i, staged_file in enumerate(self.outputs):
            if staged_file.kind is StagedKind.PREFIX:
                raise SpecError(f"outputs[{i}] ({staged_file.name}): kind 'prefix' is for inputs only")
        for i, staged_file in enumerate(self.inputs):
            if staged_file.kind is StagedKind.DATASET and (
                staged_file.size is None or (staged_file.sha256 is None and staged_file.bucket is None)
            ):
                raise SpecError(
                    f"inputs[{i}] ({staged_file.name}): an input dataset needs size and sha256 "
                    "(size alone for one read in place from Galaxy's store) so the pod can verify what it got"
                )

    # -- JSON --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, with a ``version`` field for forward compatibility."""
        out: dict[str, Any] = {"version": SPEC_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, StagedFile):
                value = _staged_to_dict(value)
            elif isinstance(value, tuple):
                value = [v if isinstance(v, str) else _staged_to_dict(v) for v in value]
            elif isinstance(value, Resources):
                value = {rf.name: getattr(value, rf.name) for rf in fields(Resources)}
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out

    def to_json(self) -> str:
        """Indented, key-sorted JSON: stable across runs, readable in a diff."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSpec:
        """Build and validate a spec; unknown or missing fields are named in the error."""
        if not isinstance(data, Mapping):
            raise SpecError(f"job spec: expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("version", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise SpecError(
                f"version {version!r}: this galaxy-argo reads job specs of version {SPEC_VERSION}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        required = [f.name for f in fields(cls) if f.default is f.default_factory is _MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise SpecError(f"missing field(s): {', '.join(missing)}")
        kwargs: dict[str, Any] = dict(data)
        for name in ("job_directory", "tool_directory"):
            if kwargs.get(name) is not None:
                kwargs[name] = _staged_from_dict(kwargs[name], name)
        for name in ("inputs", "outputs"):
            items = kwargs.get(name, [])
            if not isinstance(items, list):
                raise SpecError(f"{name}: expected a list")
            kwargs[name] = tuple(_staged_from_dict(item, f"{name}[{i}]") for i, item in enumerate(items))
        if "resources" in kwargs:
            kwargs["resources"] = _resources_from_dict(kwargs["resources"])
        for name in ("env", "labels", "annotations", "store_endpoints"):
            if name in kwargs and not isinstance(kwargs[name], Mapping):
                raise SpecError(f"{name}: expected an object of strings")
        for name in ("discard", "keep"):
            if name in kwargs:
                if not isinstance(kwargs[name], list) or not all(isinstance(p, str) for p in kwargs[name]):
                    raise SpecError(f"{name}: expected a list of pod paths")
                kwargs[name] = tuple(kwargs[name])
        return cls(**kwargs).validate()

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        """Parse JSON text; a syntax error is reported with its line and column."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"job spec is not valid JSON: {err}") from err
        return cls.from_dict(data)


_MISSING = fields(JobSpec)[0].default  # dataclasses.MISSING, without importing a private name


def _staged_to_dict(staged_file: StagedFile) -> dict[str, Any]:
    return {
        "name": staged_file.name,
        "pod_path": staged_file.pod_path,
        "key": staged_file.key,
        "kind": staged_file.kind.value,
        "size": staged_file.size,
        "sha256": staged_file.sha256,
        **({"bucket": staged_file.bucket} if staged_file.bucket is not None else {}),
    }


def _staged_from_dict(data: Any, where: str) -> StagedFile:
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected an object")
    known = {f.name for f in fields(StagedFile)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for required in ("name", "pod_path", "key"):
        if not isinstance(data.get(required), str):
            raise SpecError(f"{where}.{required}: expected a string")
    try:
        kind = StagedKind(data.get("kind", StagedKind.DATASET.value))
    except ValueError as err:
        valid = ", ".join(k.value for k in StagedKind)
        raise SpecError(f"{where}.kind {data.get('kind')!r}: expected one of {valid}") from err
    return StagedFile(
        name=data["name"],
        pod_path=data["pod_path"],
        key=data["key"],
        kind=kind,
        size=data.get("size"),
        sha256=data.get("sha256"),
        bucket=data.get("bucket"),
    )


def _resources_from_dict(data: Any) -> Resources:
    if not isinstance(data, Mapping):
        raise SpecError("resources: expected an object")
    known = {f.name for f in fields(Resources)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"resources: unknown field(s) {', '.join(unknown)}")
    return Resources(**data)


def _check_whole(value: Any, where: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{where} {value!r}: expected a whole number >= {minimum}")


def _check_pod_path(path: Any, where: str) -> None:
    if not isinstance(path, str) or not path.startswith(POD_ROOT + "/"):
        raise SpecError(f"{where} {path!r}: expected an absolute path below {POD_ROOT}/")
    if posixpath.normpath(path) != path or "/../" in path + "/":
        raise SpecError(f"{where} {path!r}: expected a normalised path (no '..', '//', trailing '/')")
    if not _POD_PATH_CHARS.match(path):
        raise SpecError(f"{where} {path!r}: only letters, digits and ._/+@=,- are allowed in pod paths")
    if path == CONTROL_DIR or path.startswith(CONTROL_DIR + "/"):
        raise SpecError(f"{where} {path!r}: {CONTROL_DIR} is reserved for galaxy-argo")


def _check_key(key: Any, where: str) -> None:
    if not isinstance(key, str) or not key or key.startswith("/") or key.endswith("/"):
        raise SpecError(f"{where} {key!r}: expected an object key without leading or trailing '/'")
    if len(key.encode()) > _MAX_KEY_BYTES:
        raise SpecError(f"{where}: object keys are limited to {_MAX_KEY_BYTES} bytes")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise SpecError(f"{where} {key!r}: empty, '.' or '..' segments are not allowed")
    if any(ord(c) < 32 or c in "{}" for c in key):
        raise SpecError(f"{where} {key!r}: control characters and braces are not allowed")
