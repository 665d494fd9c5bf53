"""Galaxy's own S3 object store seen from a pod, for ``object_store: direct``.

When Galaxy keeps a dataset in a ``boto3`` object store with ``store_by: uuid``, its object's key
follows from the dataset alone (``a/b/c/dataset_<uuid>.dat``; extra files below
``..._files/``; metadata files below ``_metadata_files/``), computed by Galaxy's own
``construct_path`` with no request and no byte read on the Galaxy host. The pod then loads the
object as an Argo S3 artifact and the job's extended ``set_metadata`` writes outputs back with the
object store config Galaxy serialized into the job directory, which `pod_object_store_config`
rewrites first: no credentials (the pod has its own, from a Secret or its cloud identity), the
endpoint pods reach, and a cache on the pod's volume, never the host's.

Datasets elsewhere (a disk backend, a store keyed by id, a user's own store) are staged as
before; `refusal` says why, for the job's log.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.core.spec import POD_ROOT
from galaxy_argo.galaxy.compute_env import POD_JOB

__all__ = [
    "POD_STORE_CACHE",
    "InPlace",
    "StoreError",
    "backend_of",
    "dataset_object",
    "extra_files_prefix",
    "metadata_file_object",
    "object_size",
    "pod_object_store_config",
    "refusal",
]

#: The pod's object store cache: on the pod's volume, outside the job directory that returns to
#: Galaxy. Never the host's cache path (a shared cache makes Galaxy record 0-byte outputs).
POD_STORE_CACHE = f"{POD_ROOT}/object-store-cache"
#: Object store types whose datasets a pod reads and writes in place.
_DIRECT_TYPES = frozenset({"boto3"})
#: Keys that hold credentials in a serialized object store config; the pod's copy has none.
_SECRET_KEYS = frozenset({"access_key", "secret_key", "session_token", "password", "token"})
#: Galaxy's extra directories (job working dirs, temp files) as pod paths, for every store.
_POD_EXTRA_DIRS = (
    {"type": "job_work", "path": f"{POD_ROOT}/jobs"},
    {"type": "temp", "path": f"{POD_JOB}/tmp"},
)


class StoreError(GalaxyArgoError):
    """Galaxy's object store cannot be used in place for this job; the message says why."""


@dataclass(frozen=True)
class InPlace:
    """An object in Galaxy's store, as the pod reaches it."""

    bucket: str
    key: str
    #: ``http(s)://host:port`` as pods reach the store.
    endpoint: str


def backend_of(object_store: Any, object_store_id: str | None) -> Any:
    """The concrete store a dataset with ``object_store_id`` lives in (the store itself if not nested)."""
    if object_store_id is not None:
        backend = object_store.get_concrete_store_by_object_store_id(object_store_id)
        if backend is not None:
            return backend
    return object_store


def refusal(backend: Any) -> str | None:
    """Why a pod cannot use ``backend``'s objects in place; ``None`` when it can."""
    kind = getattr(backend, "store_type", None) or type(backend).__name__
    if kind not in _DIRECT_TYPES:
        return f"its object store is of type {kind!r}, not an S3 (boto3) store"
    if getattr(backend, "store_by", None) != "uuid":
        return f"its object store keeps objects by {getattr(backend, 'store_by', None)!r}, not by uuid"
    if not getattr(backend, "bucket", None):
        return "its object store names no bucket"
    return None


def _endpoint(backend: Any, override: str) -> str:
    if override:
        return override
    url = getattr(backend, "endpoint_url", None)
    if url:
        return str(url).rstrip("/")
    region = getattr(backend, "region", None)
    return f"https://s3.{region}.amazonaws.com" if region else "https://s3.amazonaws.com"


def dataset_object(backend: Any, dataset: Any, endpoint: str) -> InPlace:
    """Where Galaxy keeps ``dataset`` (a ``model.Dataset``): Galaxy's own key, no request made."""
    return InPlace(str(backend.bucket), str(backend.construct_path(dataset)), _endpoint(backend, endpoint))


def extra_files_prefix(backend: Any, dataset: Any, endpoint: str) -> InPlace | None:
    """The prefix of ``dataset``'s extra files, or ``None`` when it has none (one LIST)."""
    extra_dir = dataset._extra_files_rel_path
    if not backend.exists(dataset, dir_only=True, extra_dir=extra_dir):
        return None
    key = str(backend.construct_path(dataset, dir_only=True, extra_dir=extra_dir)).rstrip("/")
    return InPlace(str(backend.bucket), key, _endpoint(backend, endpoint))


def metadata_file_object(backend: Any, metadata_file: Any, endpoint: str) -> InPlace:
    """Where Galaxy keeps an input's metadata file (``MetadataFile.get_file_name``'s key)."""
    alt_name = f"metadata_{metadata_file.uuid}.dat"
    key = backend.construct_path(
        metadata_file, extra_dir="_metadata_files", extra_dir_at_root=True, alt_name=alt_name
    )
    return InPlace(str(backend.bucket), str(key), _endpoint(backend, endpoint))


def object_size(backend: Any, key: str) -> int | None:
    """The size of ``key`` in ``backend``'s bucket (one HEAD with Galaxy's own client); None if absent."""
    client = getattr(backend, "_client", None)
    if client is None:
        raise StoreError(f"object store {type(backend).__name__} has no S3 client to check {key}")
    try:
        return int(client.head_object(Bucket=backend.bucket, Key=key)["ContentLength"])
    except Exception as err:  # botocore's ClientError and connection errors alike
        code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return None
        raise StoreError(f"cannot check s3://{backend.bucket}/{key}: {err}") from err


def pod_object_store_config(config: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """Galaxy's serialized object store config (``metadata/object_store_conf.json``) for the pod.

    Every credential is dropped (``auth: {}`` makes Galaxy's boto3 store use the pod's own
    credential chain), S3 backends get ``endpoint`` (when set) and the pod's cache, backends the
    pod cannot reach (disk) are left out of a distributed store, and host paths become pod paths.
    Raises `StoreError` if a credential is left anywhere.
    """
    pod = copy.deepcopy(config)
    _rewrite_store(pod, endpoint)
    leaked = _secret_paths(pod)
    if leaked:
        raise StoreError(f"the object store config still holds credentials at {', '.join(leaked)}")
    return pod


def _rewrite_store(store: dict[str, Any], endpoint: str) -> None:
    if isinstance(store.get("config"), dict):
        store["config"] = _pod_app_config(store["config"])
    if store.get("type") in _DIRECT_TYPES:
        store["auth"] = {}
        if endpoint:
            store.setdefault("connection", {})["endpoint_url"] = endpoint
        cache = store.get("cache") or {}
        store["cache"] = {"path": POD_STORE_CACHE, "size": cache.get("size", -1), "cache_updated_data": False}
        store["extra_dirs"] = [dict(d) for d in _POD_EXTRA_DIRS]
        return
    backends = store.get("backends")
    if isinstance(backends, list):
        kept = [
            b for b in backends if isinstance(b, dict) and b.get("type") in _DIRECT_TYPES | {"distributed"}
        ]
        for backend in kept:
            _rewrite_store(backend, endpoint)
        store["backends"] = kept
    if "extra_dirs" in store:
        store["extra_dirs"] = [dict(d) for d in _POD_EXTRA_DIRS]
    for key in ("files_dir", "path"):
        if isinstance(store.get(key), str):
            store[key] = f"{POD_ROOT}/files"


def _pod_app_config(config: dict[str, Any]) -> dict[str, Any]:
    """The app paths Galaxy serializes with its store, as pod paths (nothing of the host's)."""
    pod_paths = {
        "file_path": f"{POD_ROOT}/files",
        "jobs_directory": f"{POD_ROOT}/jobs",
        "new_file_path": f"{POD_JOB}/tmp",
        "object_store_cache_path": POD_STORE_CACHE,
    }
    return {key: pod_paths.get(key, value) for key, value in config.items()}


def _secret_paths(node: Any, where: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if key in _SECRET_KEYS and value not in (None, "", {}):
                found.append(here)
            else:
                found += _secret_paths(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _secret_paths(value, f"{where}[{i}]")
    return found
