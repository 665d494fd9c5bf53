"""Artifact load and save for the embedded engine: what Argo's init and wait containers do.

Semantics follow Argo's executor (``workflow/executor/executor.go``):

- Load: an S3 key that is a "directory" (objects below ``key/``) is downloaded recursively;
  ``archive: none`` places the object as is; otherwise a gzipped tarball is unpacked, and a tarball
  with exactly one top-level entry becomes that entry at the path (Argo's own tgz format).
- Save: ``archive: none`` uploads a file as is, or a directory file by file below the key; the
  default archives the path as a tgz whose single top-level entry is the path's base name.
- Key-only S3 artifacts take bucket, endpoint and credentials from the artifact repository,
  resolved like ``artifactRepositoryRef`` (a ConfigMap key) with credentials from Secrets.

Tarballs are unpacked with Python's ``data`` filter: no absolute paths, ``..``, links out of the
destination or device files.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from galaxy_argo.core.errors import GalaxyArgoError

__all__ = ["ArtifactError", "ArtifactRepositories", "S3Location", "load_artifact", "save_artifact"]

_TRANSFER = TransferConfig(
    multipart_threshold=64 * 1024 * 1024, multipart_chunksize=64 * 1024 * 1024, max_concurrency=4
)


class ArtifactError(GalaxyArgoError):
    """An artifact could not be loaded or saved; the message names it and the cause."""


@dataclass(frozen=True)
class S3Location:
    """A fully resolved S3 object location with the credentials to reach it."""

    endpoint: str
    bucket: str
    key: str
    insecure: bool
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    #: ``useSDKCreds``: no keys given; the SDK's credential chain of the pod (here: the engine's).
    sdk_credentials: bool = False


@dataclass
class ArtifactRepositories:
    """Artifact repositories (``artifact-repositories`` ConfigMaps) and the Secrets they refer to."""

    #: ConfigMap name -> key -> ArtifactRepository document (``{"s3": {...}, "archiveLogs": ...}``).
    config_maps: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: (ConfigMap name, key) used when a workflow names none.
    default: tuple[str, str] = ("artifact-repositories", "default-v1")
    #: Secret name -> key -> value.
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    _clients: dict[tuple[str, str, bool], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def repository(self, ref: dict[str, Any] | None) -> dict[str, Any]:
        """The repository document for a workflow's ``artifactRepositoryRef`` (or the default)."""
        config_map = (ref or {}).get("configMap") or self.default[0]
        key = (ref or {}).get("key") or (self.default[1] if config_map == self.default[0] else "")
        repos = self.config_maps.get(config_map)
        if repos is None:
            raise ArtifactError(f'artifact repository ConfigMap "{config_map}" not found')
        if key not in repos:
            raise ArtifactError(f'artifact repository "{key}" not found in ConfigMap "{config_map}"')
        return repos[key]

    def _secret(self, selector: dict[str, Any] | None) -> str:
        if not selector:
            return ""
        try:
            return self.secrets[selector["name"]][selector["key"]]
        except KeyError:
            raise ArtifactError(
                f'secret "{selector.get("name")}" has no key "{selector.get("key")}"'
            ) from None

    def locate(self, s3: dict[str, Any], repository: dict[str, Any]) -> S3Location:
        """Fill what a key-only artifact leaves out from the repository, as Argo's Relocate does."""
        repo_s3 = repository.get("s3") or {}
        if s3.get("useSDKCreds"):
            # The artifact brings its own identity: the repository's keys are not for it.
            repo_s3 = {k: v for k, v in repo_s3.items() if k not in ("accessKeySecret", "secretKeySecret")}
        merged = {**repo_s3, **{k: v for k, v in s3.items() if v not in (None, "")}}
        if "key" not in s3:
            raise ArtifactError("S3 artifact without a key")
        if not merged.get("bucket") or not merged.get("endpoint"):
            raise ArtifactError("S3 artifact has no bucket or endpoint and the repository provides none")
        return S3Location(
            endpoint=merged["endpoint"],
            bucket=merged["bucket"],
            key=str(s3["key"]).lstrip("/"),
            insecure=bool(merged.get("insecure", False)),
            access_key=self._secret(merged.get("accessKeySecret")),
            secret_key=self._secret(merged.get("secretKeySecret")),
            region=merged.get("region") or "us-east-1",
            sdk_credentials=bool(merged.get("useSDKCreds")),
        )

    def client(self, loc: S3Location) -> Any:
        """A cached boto3 client for the location's endpoint and credentials."""
        cache_key = (loc.endpoint, loc.access_key, loc.insecure)
        with self._lock:
            if cache_key not in self._clients:
                scheme = "http" if loc.insecure else "https"
                self._clients[cache_key] = boto3.client(
                    "s3",
                    endpoint_url=f"{scheme}://{loc.endpoint}",
                    aws_access_key_id=loc.access_key or None,
                    aws_secret_access_key=loc.secret_key or None,
                    region_name=loc.region,
                    config=Config(
                        s3={"addressing_style": "path"},
                        retries={"mode": "standard", "max_attempts": 5},
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                    ),
                )
            return self._clients[cache_key]


def _describe(loc: S3Location) -> str:
    return f"s3://{loc.bucket}/{loc.key}"


def _is_tarball(path: Path) -> bool:
    try:
        with tarfile.open(path, "r:gz") as tar:
            return tar.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def _place(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_dir() and not dest.is_symlink():
        if src.is_dir():
            # Loading into an existing directory (e.g. a volume's mount point) merges, as a copy would.
            shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=True)
            shutil.rmtree(src)
            return
        shutil.rmtree(dest)
    os.replace(src, dest)


def _unpack(tgz: Path, dest: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            tar.extractall(scratch, filter="data")
        entries = list(scratch.iterdir())
        _place(entries[0] if len(entries) == 1 else scratch, dest)
    except (tarfile.TarError, OSError) as err:
        raise ArtifactError(f"cannot unpack archive into {dest}: {err}") from err
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def load_artifact(
    artifact: dict[str, Any], dest: Path, repos: ArtifactRepositories, repository: dict[str, Any]
) -> None:
    """Put ``artifact`` at host path ``dest`` (Argo's init container)."""
    name = artifact.get("name", "")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if "raw" in artifact:
        dest.write_text(str(artifact["raw"].get("data", "")))
        return
    if "s3" not in artifact:
        kinds = sorted(set(artifact) - {"name", "path", "archive", "mode", "optional", "from", "subPath"})
        raise ArtifactError(
            f"input artifact {name!r}: unsupported location {kinds or '(none)'}; "
            "the embedded engine loads raw and S3 artifacts"
        )
    loc = repos.locate(artifact["s3"], repository)
    client = repos.client(loc)
    try:
        if _is_directory(client, loc):
            _download_directory(client, loc, dest)
            return
        tmp = dest.parent / f".{dest.name}.download"
        client.download_file(loc.bucket, loc.key, str(tmp), Config=_TRANSFER)
    except (ClientError, BotoCoreError) as err:
        raise ArtifactError(f"input artifact {name!r}: cannot load {_describe(loc)}: {err}") from err
    if "none" not in (artifact.get("archive") or {}) and _is_tarball(tmp):
        try:
            _unpack(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        _place(tmp, dest)
    if artifact.get("mode") is not None and dest.is_file():
        dest.chmod(int(artifact["mode"]))


def _is_directory(client: Any, loc: S3Location) -> bool:
    try:
        client.head_object(Bucket=loc.bucket, Key=loc.key)
        return False
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    listing = client.list_objects_v2(Bucket=loc.bucket, Prefix=loc.key.rstrip("/") + "/", MaxKeys=1)
    if listing.get("KeyCount", 0) == 0:
        raise ArtifactError(f"{_describe(loc)} does not exist")
    return True


def _download_directory(client: Any, loc: S3Location, dest: Path) -> None:
    prefix = loc.key.rstrip("/") + "/"
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=dest.parent))
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                relative = obj["Key"][len(prefix) :]
                target = (scratch / relative).resolve()
                if not relative or not target.is_relative_to(scratch.resolve()):
                    raise ArtifactError(f"refusing object {obj['Key']!r}: it would land outside {dest}")
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(loc.bucket, obj["Key"], str(target), Config=_TRANSFER)
        _place(scratch, dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def save_artifact(
    artifact: dict[str, Any],
    src: Path,
    repos: ArtifactRepositories,
    repository: dict[str, Any],
    default_key: str,
) -> dict[str, Any] | None:
    """Upload host path ``src`` (Argo's wait container); the artifact as recorded in the node outputs.

    Returns ``None`` for an optional artifact whose path does not exist.
    """
    name = artifact.get("name", "")
    if not src.exists():
        if artifact.get("optional"):
            return None
        raise ArtifactError(f"output artifact {name!r}: {artifact.get('path')} does not exist")
    archive_none = "none" in (artifact.get("archive") or {})
    s3 = dict(artifact.get("s3") or {})
    if not s3.get("key"):
        s3["key"] = default_key if archive_none else f"{default_key}.tgz"
    loc = repos.locate(s3, repository)
    client = repos.client(loc)
    try:
        if archive_none and src.is_dir():
            for path in sorted(p for p in src.rglob("*") if p.is_file()):
                key = f"{loc.key.rstrip('/')}/{path.relative_to(src).as_posix()}"
                client.upload_file(str(path), loc.bucket, key, Config=_TRANSFER)
        elif archive_none:
            client.upload_file(str(src), loc.bucket, loc.key, Config=_TRANSFER)
        else:
            with tempfile.TemporaryDirectory(prefix="galaxy-argo-tgz-") as tmp:
                tgz = Path(tmp) / "artifact.tgz"
                with tarfile.open(tgz, "w:gz", compresslevel=6) as tar:
                    tar.add(src, arcname=src.name)
                client.upload_file(str(tgz), loc.bucket, loc.key, Config=_TRANSFER)
    except (ClientError, BotoCoreError, OSError) as err:
        raise ArtifactError(f"output artifact {name!r}: cannot save to {_describe(loc)}: {err}") from err
    recorded = {k: v for k, v in artifact.items() if k not in ("s3",)}
    recorded["s3"] = (
        {"key": loc.key} if "bucket" not in (artifact.get("s3") or {}) else {**artifact["s3"], "key": loc.key}
    )
    return recorded
