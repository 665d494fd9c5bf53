"""Destination parameters -> typed `ArgoSettings`: defaults, validation and help in one place.

As in Snakemake's executor-plugin settings, each field carries its help text and its parser in
``field(metadata=...)``; the README's parameter table is generated from this class
(`params_table_markdown`) and a test fails when the two drift.

Galaxy hands a destination's params over as strings when they come from TPV or from XML job
configs, and as YAML scalars from a YAML job config; every parser accepts both. A bad value raises
`SettingsError` naming the parameter, the value and the expected form. A param this module does not
know is ignored (Galaxy's own generic params share the dict), unless it is a near-miss of one of
ours, which is almost certainly a typo and raises with the suggestion.
"""

from __future__ import annotations

import difflib
import json
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from enum import Enum, StrEnum
from typing import Any

import yaml

from galaxy_argo.core.errors import SettingsError

__all__ = [
    "ArgoSettings",
    "CleanupPolicy",
    "ImagePullPolicy",
    "MetadataMode",
    "ObjectStoreMode",
    "PodGCStrategy",
    "Submission",
    "params_table_markdown",
    "parse_key_prefix",
    "parse_memory_mib",
]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
_RESOURCE_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_MEMORY_UNITS_MIB = {
    "": 1 / (1024 * 1024),
    "k": 1000 / 1024**2,
    "K": 1000 / 1024**2,
    "Ki": 1 / 1024,
    "M": 1000**2 / 1024**2,
    "Mi": 1,
    "G": 1000**3 / 1024**2,
    "Gi": 1024,
    "T": 1000**4 / 1024**2,
    "Ti": 1024**2,
}
_REDACTED = "<redacted>"
#: Characters a host directory of reference data may have: its pod path is made from it.
_PATH_CHARS = re.compile(r"^[A-Za-z0-9._/+@-]+$")


class MetadataMode(StrEnum):
    """Where Galaxy's output metadata (``metadata/set.py``) is computed."""

    #: In the job's pod, in `ArgoSettings.metadata_image`; nothing heavy runs on the Galaxy host.
    REMOTE = "remote"
    #: On the Galaxy host after the outputs are downloaded (simplest; costs Galaxy CPU).
    LOCAL = "local"


class ObjectStoreMode(StrEnum):
    """How a job's datasets travel between Galaxy's object store and the pod."""

    #: Default: the Galaxy host uploads inputs to the artifact bucket and downloads outputs.
    STAGED = "staged"
    #: Pods read inputs from Galaxy's own S3 object store and write outputs into it; the Galaxy
    #: host moves metadata and the job directory only (needs ``metadata_strategy: extended``).
    DIRECT = "direct"


class CleanupPolicy(StrEnum):
    """When the job's objects in S3 are deleted after Galaxy has collected them."""

    #: Always, success or failure.
    ALWAYS = "always"
    #: Only after a successful job; failed jobs keep their objects for debugging.
    ONSUCCESS = "onsuccess"
    #: Never; an S3 lifecycle rule is expected to expire them.
    NEVER = "never"


class ImagePullPolicy(StrEnum):
    """Kubernetes ``imagePullPolicy`` for the job's containers."""

    ALWAYS = "Always"
    #: Default: pull only when the node lacks the image.
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class Submission(StrEnum):
    """How workflows reach the cluster."""

    #: Default: the Argo Server's REST API, through Hera (and its token).
    ARGO_SERVER = "argo-server"
    #: The ``argoproj.io/v1alpha1`` Workflow resources of the Kubernetes API, for clusters that run
    #: Argo's controller but no Argo Server.
    KUBERNETES = "kubernetes"


class PodGCStrategy(StrEnum):
    """Argo's ``spec.podGC.strategy``: when finished pods are deleted."""

    ON_POD_COMPLETION = "OnPodCompletion"
    #: Default: failed pods stay for ``kubectl describe`` until the workflow's TTL.
    ON_POD_SUCCESS = "OnPodSuccess"
    ON_WORKFLOW_COMPLETION = "OnWorkflowCompletion"
    ON_WORKFLOW_SUCCESS = "OnWorkflowSuccess"
    #: Never delete pods (debugging only).
    NONE = "none"


# -- parsers: value (str from TPV/XML, or a YAML scalar) -> typed value; ValueError(expected form) --


def _text(value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("a string")
    return str(value).strip()


def _optional_text(value: Any) -> str:
    return "" if value is None else _text(value)


def _url(value: Any) -> str:
    text = _optional_text(value)
    if text and not re.match(r"^https?://[^\s/]+(/\S*)?$", text):
        raise ValueError("an http:// or https:// URL, e.g. https://argo.example.org:2746")
    return text.rstrip("/")


def _dns_label(value: Any) -> str:
    text = _text(value)
    if len(text) > 63 or not _DNS_LABEL.match(text):
        raise ValueError("a DNS-1123 label: 1-63 of a-z, 0-9 and '-', starting and ending alphanumeric")
    return text


def _optional_dns_label(value: Any) -> str:
    return "" if value in (None, "") else _dns_label(value)


def _instance(value: Any) -> str:
    text = _dns_label(value)
    if len(text) > 20:
        raise ValueError("a DNS-1123 label of at most 20 characters (it prefixes every workflow name)")
    return text


def _optional_dns_subdomain(value: Any) -> str:
    text = _optional_text(value)
    if text and (len(text) > 253 or not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", text)):
        raise ValueError(
            "a Kubernetes object name (lower-case letters, digits, '-', '.'), e.g. galaxy-store-keys"
        )
    return text


def _bucket(value: Any) -> str:
    text = _text(value)
    if not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", text):
        raise ValueError("an S3 bucket name: 3-63 of a-z, 0-9, '.', '-'")
    return text


def parse_key_prefix(value: Any) -> str:
    """An object key prefix without leading or trailing ``/``; no empty, ``.`` or ``..`` parts."""
    text = _text(value).strip("/")
    if not text or any(part in ("", ".", "..") for part in text.split("/")) or "{" in text:
        raise ValueError("an object key prefix such as galaxy-argo/main (no empty, '.' or '..' parts)")
    return text


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError("true or false")


def _whole(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    expected = (
        f"a whole number from {minimum} to {maximum}"
        if maximum is not None
        else (f"a whole number >= {minimum}")
    )

    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(expected)
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(expected) from None
        if number < minimum or (maximum is not None and number > maximum):
            raise ValueError(expected)
        return number

    return parse


def _cores(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a number of cores > 0, e.g. 2 or 0.5")
    text = str(value).strip()
    try:
        number = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise ValueError("a number of cores > 0, e.g. 2, 0.5 or 500m") from None
    if not 0.001 <= number <= 4096:
        raise ValueError("a number of cores from 0.001 to 4096")
    return number


def parse_memory_mib(value: Any) -> int:
    """Memory as TPV gives it (a number of GiB, e.g. ``7.6``) or a Kubernetes quantity (``8Gi``)."""
    if isinstance(value, bool):
        raise ValueError("memory as GiB (e.g. 4 or 7.5) or a Kubernetes quantity (e.g. 8Gi, 512Mi)")
    text = str(value).strip()
    match = re.match(r"^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$", text)
    if not match:
        raise ValueError("memory as GiB (e.g. 4 or 7.5) or a Kubernetes quantity (e.g. 8Gi, 512Mi)")
    number, unit = float(match.group(1)), match.group(2)
    if unit == "":
        mib = number * 1024  # a bare number is GiB, as TPV's ``mem`` is
    elif unit in _MEMORY_UNITS_MIB:
        mib = number * _MEMORY_UNITS_MIB[unit]
    elif unit in ("GB", "gb", "g"):
        mib = number * 1024
    elif unit in ("MB", "mb"):
        mib = number
    else:
        raise ValueError("memory with a unit of Ki, Mi, Gi, Ti, k, M, G, T (or a bare number of GiB)")
    if mib < 1 or mib > 64 * 1024 * 1024:
        raise ValueError("memory from 1Mi to 64Ti")
    return int(round(mib))


def _optional_memory_mib(value: Any) -> int | None:
    return None if value in (None, "") else parse_memory_mib(value)


def _walltime(value: Any) -> int | None:
    """Seconds, or ``[D-]HH:MM:SS`` as Slurm and Galaxy's ``walltime`` params write it."""
    if value in (None, "", 0, "0"):
        return None
    text = str(value).strip()
    if re.match(r"^[0-9]+$", text):
        return int(text)
    match = re.match(r"^(?:([0-9]+)-)?([0-9]+):([0-5][0-9]):([0-5][0-9])$", text)
    if not match:
        raise ValueError("seconds (e.g. 3600) or [D-]HH:MM:SS (e.g. 1-12:00:00)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _quantity(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    if text and not _QUANTITY.match(text):
        raise ValueError("a Kubernetes quantity such as 10Gi or 500Mi")
    return text


def _resource_name(value: Any) -> str:
    text = _text(value)
    if not _RESOURCE_NAME.match(text):
        raise ValueError("an extended resource name such as nvidia.com/gpu or amd.com/gpu")
    return text


def _enum(kind: type[Enum]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        text = "" if value is None else str(value).strip()
        for member in kind:
            if text == member.value or text.lower() == str(member.value).lower():
                return member
        raise ValueError("one of " + ", ".join(str(m.value) for m in kind))

    return parse


def _structured(value: Any, expected: str) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            try:
                return yaml.safe_load(text)
            except yaml.YAMLError:
                raise ValueError(expected) from None
    return value


def _mapping(expected: str, values_are_strings: bool = False) -> Callable[[Any], dict[str, Any]]:
    def parse(value: Any) -> dict[str, Any]:
        if value is None or value == "":
            return {}
        if isinstance(value, str) and "=" in value and not value.strip().startswith("{"):
            pairs = [p.strip() for p in value.split(",") if p.strip()]
            if all("=" in p for p in pairs):
                value = dict(p.split("=", 1) for p in pairs)
        parsed = _structured(value, expected)
        if parsed is None:
            return {}
        if not isinstance(parsed, Mapping) or not all(isinstance(k, str) for k in parsed):
            raise ValueError(expected)
        if values_are_strings:
            if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in parsed.values()):
                raise ValueError(expected)
            return {k.strip(): str(v).strip() for k, v in parsed.items()}
        return dict(parsed)

    return parse


def _mapping_list(expected: str) -> Callable[[Any], list[dict[str, Any]]]:
    def parse(value: Any) -> list[dict[str, Any]]:
        parsed = _structured(value, expected) if value not in (None, "") else []
        if parsed is None:
            return []
        if not isinstance(parsed, list) or not all(isinstance(item, Mapping) for item in parsed):
            raise ValueError(expected)
        return [dict(item) for item in parsed]

    return parse


def _reference_data(value: Any) -> dict[str, str]:
    """``/host/dir=key/prefix,...`` or a mapping: host directories of reference data -> key prefixes."""
    expected = "`/host/dir=key/prefix` pairs separated by commas, or a JSON/YAML mapping of them"
    mapping = _mapping(expected, values_are_strings=True)(value)
    parsed: dict[str, str] = {}
    for host, key in mapping.items():
        normal = posixpath.normpath(host)
        if not host.startswith("/") or normal == "/" or host != normal and host != normal + "/":
            raise ValueError(f"{expected}; {host!r} is not an absolute, normalised directory below /")
        if not _PATH_CHARS.match(normal):
            raise ValueError(f"{expected}; {host!r} has characters other than A-Z a-z 0-9 . _ / + @ -")
        try:
            parsed[normal] = parse_key_prefix(key)
        except ValueError as err:
            raise ValueError(f"{expected}; for {host!r}: {err}") from None
    return parsed


def _artifact_repository_ref(value: Any) -> str:
    text = _optional_text(value)
    if text and not re.match(r"^([a-z0-9][-a-z0-9.]*/)?[-._a-zA-Z0-9]+$", text):
        raise ValueError("KEY or CONFIGMAP/KEY, e.g. artifact-repositories/galaxy (empty: namespace default)")
    return text


def _setting(
    default: Any, parse: Callable[[Any], Any], help: str, secret: bool = False, shown: str = ""
) -> Any:
    """Declare one destination param: its default, its parser and the help shown in the README."""
    metadata = {"help": help, "parse": parse, "secret": secret, "shown": shown}
    if isinstance(default, dict | list):

        def factory() -> Any:
            return type(default)(default)

        return field(default_factory=factory, metadata=metadata, repr=not secret)
    return field(default=default, metadata=metadata, repr=not secret)


@dataclass(frozen=True)
class ArgoSettings:
    """Every destination parameter of the Argo runner, typed, with its default and help."""

    # -- Argo Server and namespace --
    submission: Submission = _setting(
        Submission.ARGO_SERVER,
        _enum(Submission),
        "How workflows are submitted and watched: `argo-server` (REST, through Hera) or `kubernetes` "
        "(the Workflow custom resources, for a cluster with Argo's controller but no Argo Server).",
    )
    kubeconfig: str = _setting(
        "",
        _optional_text,
        "With `submission: kubernetes`: a kubeconfig file, or `in-cluster` for the pod's service "
        "account; empty: the embedded stack.",
    )
    kube_context: str = _setting("", _optional_text, "Context of `kubeconfig` (empty: its current one).")
    argo_server_url: str = _setting(
        "", _url, "Argo Server base URL, e.g. `https://argo.example.org:2746`; empty: the embedded engine."
    )
    argo_token: str = _setting(
        "",
        _optional_text,
        "Bearer token for the Argo Server (`Bearer ` is added if missing); never logged.",
        secret=True,
    )
    argo_verify_tls: bool = _setting(True, _bool, "Verify the Argo Server's TLS certificate.")
    embedded_state_dir: str = _setting(
        ".galaxy-argo/local",
        _text,
        "With an empty `argo_server_url` (or `kubeconfig`): state directory of the embedded stack "
        "(`galaxy-argo local serve --state-dir`) whose `server.json` gives the endpoints and credentials.",
    )
    namespace: str = _setting("galaxy", _dns_label, "Kubernetes namespace the workflows run in.")
    instance: str = _setting(
        "main",
        _instance,
        "Short name of this Galaxy (DNS label, <= 20 chars); prefixes workflow names and labels.",
    )
    galaxy_url: str = _setting("", _url, "Public URL of Galaxy, for links from the Argo UI to the job.")
    # -- object store --
    s3_endpoint_url: str = _setting(
        "", _url, "S3 endpoint as Galaxy reaches it (empty: AWS); the cluster uses the artifact repository's."
    )
    s3_region: str = _setting("", _optional_text, "S3 region name (empty: the SDK default).")
    s3_access_key_id: str = _setting(
        "",
        _optional_text,
        "S3 access key for Galaxy's transfers (empty: the SDK's credential chain).",
        secret=True,
    )
    s3_secret_access_key: str = _setting("", _optional_text, "S3 secret key; never logged.", secret=True)
    s3_max_attempts: int = _setting(
        10,
        _whole(1, 50),
        "Attempts per S3 request (boto3 adaptive retries: backs off on SlowDown and 5xx) before a "
        "transfer counts as failed; the job then waits for `outage_window`.",
    )
    bucket: str = _setting("galaxy-argo", _bucket, "Bucket of the Argo artifact repository the jobs use.")
    key_prefix: str = _setting("galaxy-argo", parse_key_prefix, "Prefix of every object this runner writes.")
    artifact_repository_ref: str = _setting(
        "",
        _artifact_repository_ref,
        "Argo artifact repository as `KEY` or `CONFIGMAP/KEY` (default ConfigMap `artifact-repositories`); "
        "empty: the namespace default.",
    )
    outage_window: int = _setting(
        1800,
        _whole(0),
        "Seconds a job waits, retrying with backoff, for an unreachable Argo Server or S3 endpoint "
        "(submission, collection of results) before it fails; 0: fail at once.",
    )
    cleanup: CleanupPolicy = _setting(
        CleanupPolicy.ONSUCCESS,
        _enum(CleanupPolicy),
        "When to delete a job's objects: `always`, `onsuccess`, `never`.",
    )
    reference_data: dict[str, str] = _setting(
        {},
        _reference_data,
        "Reference data (`.loc` file paths) kept in the bucket: `/host/dir=key/prefix,...`. A data-table "
        "path below a host dir is loaded into the pod from the objects below the prefix; other paths "
        "stay as they are (e.g. CVMFS mounted on the nodes).",
    )
    # -- Galaxy's own object store (direct mode) --
    object_store: ObjectStoreMode = _setting(
        ObjectStoreMode.STAGED,
        _enum(ObjectStoreMode),
        "`staged`: the Galaxy host uploads inputs and downloads outputs through the artifact bucket. "
        "`direct`: for datasets in Galaxy's S3 object store (`boto3`, `store_by: uuid`), pods read "
        "inputs and write outputs in place and the host moves metadata only; needs "
        "`metadata_strategy: extended` and `metadata: remote`. Other datasets are staged.",
    )
    object_store_endpoint: str = _setting(
        "",
        _url,
        "`direct`: S3 endpoint of Galaxy's object store as pods reach it (e.g. an in-cluster "
        "service); empty: the object store's own `endpoint_url`.",
    )
    object_store_secret: str = _setting(
        "",
        _optional_dns_subdomain,
        "`direct`: Kubernetes Secret (keys `accesskey`, `secretkey`) with the pods' credentials for "
        "Galaxy's object store; empty: the pod's own cloud identity (IRSA, workload identity).",
    )
    # -- images --
    default_image: str = _setting(
        "debian:bookworm-slim", _text, "Image for tools without a container requirement."
    )
    stage_image: str = _setting(
        "busybox:1.37", _text, "Small POSIX-sh image for the stage-in / stage-out containers."
    )
    image_pull_policy: ImagePullPolicy = _setting(
        ImagePullPolicy.IF_NOT_PRESENT,
        _enum(ImagePullPolicy),
        "Kubernetes imagePullPolicy: `Always`, `IfNotPresent` or `Never`.",
    )
    metadata: MetadataMode = _setting(
        MetadataMode.REMOTE,
        _enum(MetadataMode),
        "Where output metadata is set: `remote` (in the pod) or `local` (on the Galaxy host).",
    )
    metadata_image: str = _setting(
        "quay.io/galaxyproject/galaxy-min:26.1",
        _text,
        "Image with Galaxy's packages for `metadata: remote`.",
    )
    metadata_memory: int = _setting(
        1024,
        parse_memory_mib,
        "Memory limit of the metadata container (`metadata: remote`), in GiB or as a quantity.",
        shown="1Gi",
    )
    # -- resources (TPV sets these per job) --
    cores: float = _setting(1.0, _cores, "CPU cores requested for the tool (TPV: `{cores}`).")
    memory: int = _setting(
        4096,
        parse_memory_mib,
        "Memory limit of the tool, in GiB (TPV: `{mem}`) or as a quantity (`8Gi`); MiB internally.",
        shown="4Gi",
    )
    gpus: int = _setting(0, _whole(0, 64), "GPUs for the tool (TPV: `{gpus}`).")
    gpu_resource_name: str = _setting(
        "nvidia.com/gpu", _resource_name, "Extended resource name GPUs are requested as."
    )
    walltime: int | None = _setting(
        None, _walltime, "Wall-clock limit of the job's pod: seconds or `[D-]HH:MM:SS`; empty: none."
    )
    ephemeral_storage: str = _setting(
        "", _quantity, "Ephemeral storage requested for the job's pod, e.g. `20Gi`; empty: none."
    )
    # -- retries, lifetime --
    retry_limit: int = _setting(
        2,
        _whole(0, 20),
        "Retries after infrastructure failures (eviction, node loss); never for tool errors.",
    )
    ttl_after_success: int = _setting(
        3600, _whole(0), "Seconds a succeeded workflow is kept before Argo deletes it."
    )
    ttl_after_failure: int = _setting(
        7 * 24 * 3600, _whole(0), "Seconds a failed workflow is kept (for operators to inspect)."
    )
    pod_gc: PodGCStrategy = _setting(
        PodGCStrategy.ON_POD_SUCCESS,
        _enum(PodGCStrategy),
        "Argo podGC strategy (`OnPodSuccess`, `OnPodCompletion`, ..., `none`).",
    )
    # -- scheduling and pod spec --
    node_selector: dict[str, str] = _setting(
        {},
        _mapping("`k=v,k2=v2` or a JSON/YAML mapping of strings", values_are_strings=True),
        "Node selector for the job's pod.",
    )
    tolerations: list[dict[str, Any]] = _setting(
        [], _mapping_list("a JSON/YAML list of Kubernetes tolerations"), "Tolerations for the job's pod."
    )
    affinity: dict[str, Any] = _setting(
        {}, _mapping("a JSON/YAML Kubernetes affinity mapping"), "Affinity of the job's pod."
    )
    service_account: str = _setting(
        "", _optional_dns_label, "Service account of the job's pod (empty: the namespace default)."
    )
    security_context: dict[str, Any] = _setting(
        {}, _mapping("a JSON/YAML Kubernetes PodSecurityContext mapping"), "Pod security context."
    )
    priority_class: str = _setting("", _optional_text, "PriorityClass of the job's pod.")
    pod_spec_patch: dict[str, Any] = _setting(
        {},
        _mapping("a JSON/YAML pod spec fragment"),
        "Pod spec fragment merged last by Argo (`podSpecPatch`), for anything not covered above.",
    )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ArgoSettings:
        """Parse a destination's params; raise `SettingsError` naming the first bad one."""
        values: dict[str, Any] = {}
        known = {f.name: f for f in fields(cls)}
        for name, raw in params.items():
            f = known.get(name)
            if f is None:
                close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.85)
                if close:
                    raise SettingsError(name, raw, f"a known param; did you mean {close[0]!r}?")
                continue  # one of Galaxy's own destination params
            try:
                values[name] = f.metadata["parse"](raw)
            except ValueError as err:
                shown = _REDACTED if f.metadata["secret"] else raw
                raise SettingsError(name, shown, str(err)) from None
        settings = cls(**values)
        if settings.object_store is ObjectStoreMode.DIRECT and settings.metadata is not MetadataMode.REMOTE:
            # Outputs reach Galaxy's store only through the pod's extended set_metadata.
            raise SettingsError("metadata", settings.metadata.value, "`remote` with `object_store: direct`")
        return settings

    def with_params(self, params: Mapping[str, Any]) -> ArgoSettings:
        """Copy with some params overridden, each parsed as in `from_params`."""
        parsed = ArgoSettings.from_params(params)
        return replace(self, **{name: getattr(parsed, name) for name in params if name in _FIELD_NAMES})

    def secrets(self) -> list[str]:
        """The non-empty secret values, for scrubbing from anything shown to a person."""
        return [getattr(self, f.name) for f in fields(self) if f.metadata["secret"] and getattr(self, f.name)]


_FIELD_NAMES = frozenset(f.name for f in fields(ArgoSettings))


def _shown_default(f: Any) -> str:
    if f.metadata["shown"]:
        return str(f.metadata["shown"])
    value = f.default_factory() if f.default is MISSING else f.default
    if isinstance(value, Enum):
        value = value.value
    if value in ("", None, {}, []):
        return "(empty)"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def params_table_markdown() -> str:
    """The README's table of destination params, generated from `ArgoSettings`."""
    lines = ["| param | default | meaning |", "| --- | --- | --- |"]
    for f in fields(ArgoSettings):
        help_text = f.metadata["help"].replace("|", "\\|")
        lines.append(f"| `{f.name}` | `{_shown_default(f)}` | {help_text} |")
    return "\n".join(lines) + "\n"
