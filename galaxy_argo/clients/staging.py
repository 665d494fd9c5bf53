"""S3 transfers on the Galaxy side: upload inputs once, return outputs verified, unpack bundles safely.

- Uploads go through s3transfer (``upload_file``) with a tuned `TransferConfig`. An input whose
  object already exists with the same size and sha256 is not uploaded again: one HEAD request.
  Inputs are content-addressed (``<prefix>/objects/sha256/<aa>/<sha256>``) so the same dataset
  used by many jobs is stored once. A file's sha256 is computed once per (path, size, mtime).
- Downloads land in a temporary file next to the destination and replace it only after size
  and sha256 match the outputs manifest, so Galaxy never sees a short or corrupt output. The
  sha256 is computed while the bytes arrive, not by reading the file again.
  Failures are collected and reported together (Pulsar's ``DownloadExceptionTracker`` pattern).
- Bundles (the job directory, the tool directory) are gzipped tarballs with one top-level entry,
  the format Argo's executor unpacks at an artifact path. Unpacking refuses absolute paths, ``..``,
  links leaving the destination and device files, and names every offending member.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.exceptions import Boto3Error, RetriesExceededError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from s3transfer.exceptions import RetriesExceededError as S3TransferRetriesExceededError

from galaxy_argo.clients.progress import LoggedProgress, Progress, ProgressFactory
from galaxy_argo.core.errors import GalaxyArgoError

__all__ = [
    "DEFAULT_TRANSFER",
    "Download",
    "Sha256Cache",
    "Stager",
    "StagingError",
    "StagingUnavailable",
    "Upload",
    "is_transient",
    "s3_failure",
    "make_bundle",
    "safe_extract",
]

log = logging.getLogger(__name__)

#: Measured on SeaweedFS here (benchmarks/staging.py): 64 MiB parts, modest concurrency, and
#: 1 MiB writes (s3transfer's 256 KiB default spends its CPU queueing small writes).
DEFAULT_TRANSFER = TransferConfig(
    multipart_threshold=64 * 1024 * 1024,
    multipart_chunksize=64 * 1024 * 1024,
    max_concurrency=4,
    io_chunksize=1024 * 1024,
    use_threads=True,
)
_CHUNK = 8 * 1024 * 1024


class StagingError(GalaxyArgoError):
    """A transfer or a check failed; the message names every object and file concerned."""


class StagingUnavailable(StagingError):
    """The S3 endpoint could not be reached or answered 5xx / SlowDown: worth trying again later."""


#: What boto3 and s3transfer raise for a failed request (S3UploadFailedError wraps a ClientError;
#: s3transfer's RetriesExceededError a streaming error that outlived its retries).
_S3_ERRORS = (ClientError, BotoCoreError, Boto3Error, S3TransferRetriesExceededError)
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError", "Throttling", "ThrottlingException"}
)


def is_transient(err: BaseException) -> bool:
    """Whether ``err``, or what it wraps, says the endpoint may work again.

    Yes for a lost connection, a timeout, a response cut short, 5xx or throttling; no for a 4xx, a
    missing key or a local disk error.
    """
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(
            seen, HTTPClientError | BotoConnectionError | IncompleteReadError | ResponseStreamingError
        ):
            return True
        if isinstance(seen, S3TransferRetriesExceededError | RetriesExceededError):
            return True
        if isinstance(seen, ClientError):
            status = int(seen.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            return status >= 500 or seen.response.get("Error", {}).get("Code") in _TRANSIENT_CODES
        seen = seen.__cause__ or seen.__context__
    return False


def s3_failure(message: str, err: BaseException) -> StagingError:
    """``message: err`` as `StagingUnavailable` when the failure may pass, else `StagingError`."""
    kind = StagingUnavailable if is_transient(err) else StagingError
    return kind(f"{message}: {err}")


class Sha256Cache:
    """sha256 of files, computed once per (path, size, mtime): a 50 GiB reference is hashed once."""

    def __init__(self) -> None:
        """An empty cache; thread-safe."""
        self._cache: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()
        self.computed = 0

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int]:
        stat = path.stat()
        return str(path.resolve()), stat.st_size, stat.st_mtime_ns

    def sha256(self, path: Path) -> str:
        """Hex sha256 of ``path``'s content."""
        key = self._key(path)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        with self._lock:
            self._cache[key] = digest
            self.computed += 1
        return digest

    def known(self, path: Path) -> str | None:
        """The digest of ``path`` as it is now, if one was computed or remembered; never reads it."""
        key = self._key(path)
        with self._lock:
            return self._cache.get(key)

    def remember(self, path: Path, sha256: str) -> None:
        """Record a digest computed elsewhere (while downloading, or one Galaxy already keeps)."""
        key = self._key(path)
        with self._lock:
            self._cache[key] = sha256


@dataclass(frozen=True)
class Upload:
    """An object put (or found already) in the bucket."""

    key: str
    size: int
    sha256: str
    #: False when an identical object was already there and nothing was sent.
    uploaded: bool


@dataclass(frozen=True)
class Download:
    """An object to fetch and the size and sha256 it must have."""

    key: str
    dest: Path
    size: int | None = None
    sha256: str | None = None


class _HashingFile:
    """Seekable write target for s3transfer that hashes the file in order while it is written.

    s3transfer fetches ranges in parallel and writes each at its offset (one IO thread). Once the
    bytes from the start are complete up to some offset, that stretch is read back from the page
    cache and hashed, while the network threads go on; nothing is buffered in memory. (A
    non-seekable target would make s3transfer deliver in order itself, but with large parts its
    in-memory window deadlocks.)
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.digest = hashlib.sha256()
        self.hashed = 0
        self._position = 0
        self._written: dict[int, int] = {}  # start -> end of stretches past `hashed`

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._position = os.lseek(self.fd, offset, whence)
        return self._position

    def tell(self) -> int:
        return self._position

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        start = self._position
        while view:
            sent = os.pwrite(self.fd, view, self._position)
            self._position += sent
            view = view[sent:]
        if start == self.hashed:
            self.digest.update(data)  # in order: hash the bytes in hand, no read back
            self.hashed = self._position
        else:
            self._written[start] = self._position
        while self.hashed in self._written:
            end = self._written.pop(self.hashed)
            while self.hashed < end:
                chunk = os.pread(self.fd, min(_CHUNK, end - self.hashed), self.hashed)
                if not chunk:
                    raise OSError(f"short read at offset {self.hashed} of a file being downloaded")
                self.digest.update(chunk)  # releases the GIL: the transfer threads keep receiving
                self.hashed += len(chunk)
        return len(data)


def _sha256_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def make_bundle(directory: Path, out: Path, top: str, files: Iterable[Path] | None = None) -> None:
    """Gzipped tarball of ``directory`` under the single top-level entry ``top`` (Argo's tgz format).

    With ``files``, only those (paths below ``directory``) are included.
    """
    with tarfile.open(out, "w:gz", compresslevel=1) as tar:
        if files is None:
            tar.add(directory, arcname=top)
            return
        tar.add(directory, arcname=top, recursive=False)
        for path in files:
            tar.add(path, arcname=f"{top}/{path.relative_to(directory)}", recursive=False)


def _check_member(member: tarfile.TarInfo, root: Path) -> str:
    """Why ``member`` must not be extracted under ``root``, or ``""``."""
    name = member.name
    if name.startswith("/") or any(part == ".." for part in Path(name).parts):
        return f"{name!r}: absolute or '..' path"
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        return f"{name!r}: lands outside the destination"
    if member.isdev() or member.isfifo():
        return f"{name!r}: device or fifo"
    if member.issym():
        link = (target.parent / member.linkname).resolve()
        if member.linkname.startswith("/") or not link.is_relative_to(root):
            return f"{name!r}: symlink to {member.linkname!r} points outside"
    if member.islnk():
        link = (root / member.linkname).resolve()
        if member.linkname.startswith("/") or not link.is_relative_to(root):
            return f"{name!r}: hard link to {member.linkname!r} points outside"
    return ""


def safe_extract(archive: Path, dest: Path, strip_top: bool = True) -> list[Path]:
    """Unpack ``archive`` into ``dest`` (created if missing); return the files written.

    With ``strip_top`` the single top-level entry is removed (``job/working/x`` lands at
    ``dest/working/x``). Every member is checked before anything is written.
    """
    dest.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    root = scratch.resolve()
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                problems = [p for p in (_check_member(m, root) for m in members) if p]
                if problems:
                    raise StagingError(f"refusing to unpack {archive.name}: " + "; ".join(problems[:10]))
                tar.extractall(scratch, members=members, filter="data")
        except (tarfile.TarError, EOFError, OSError) as err:
            raise StagingError(f"{archive.name} is not a readable gzipped tar archive: {err}") from err
        source = scratch
        if strip_top:
            entries = list(scratch.iterdir())
            if len(entries) != 1 or not entries[0].is_dir():
                raise StagingError(
                    f"{archive.name}: expected one top-level directory, found "
                    f"{sorted(e.name for e in entries)}"
                )
            source = entries[0]
        written = []
        for path in sorted(source.rglob("*")):
            target = dest / path.relative_to(source)
            if path.is_dir() and not path.is_symlink():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(path, target)
            written.append(target)
        return written
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Stager:
    """Moves files between Galaxy's disk and one bucket."""

    client: Any
    bucket: str
    key_prefix: str
    transfer: TransferConfig = DEFAULT_TRANSFER
    hashes: Sha256Cache = field(default_factory=Sha256Cache)
    #: How a transfer reports progress: log lines in the runner, a bar in the CLI.
    progress: ProgressFactory = LoggedProgress

    @contextmanager
    def _progress(self, what: str, total: int) -> Iterator[Progress]:
        progress = self.progress(what, total)
        try:
            yield progress
        finally:
            progress.close()

    def content_key(self, sha256: str) -> str:
        """Where content with this sha256 lives: one object however many jobs use it."""
        return f"{self.key_prefix}/objects/sha256/{sha256[:2]}/{sha256}"

    def _describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def existing(self, key: str) -> dict[str, Any] | None:
        """HEAD of ``key``; ``None`` if absent."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise s3_failure(f"cannot look up {self._describe(key)}", err) from err
        except _S3_ERRORS as err:
            raise s3_failure(f"cannot reach the S3 endpoint for {self._describe(key)}", err) from err

    def stage_file(self, path: Path, key: str | None = None, sha256: str | None = None) -> Upload:
        """Upload ``path`` unless an identical object exists; content-addressed without ``key``.

        ``sha256`` is a digest the caller already holds (Galaxy's ``DatasetHash``): when the
        content-addressed object of that digest and size exists, it is used without reading the
        file, one request. It is only a hint for finding: nothing is uploaded under a digest this
        process did not compute, so a stale hint cannot put wrong content under a content key.
        """
        size = path.stat().st_size
        if sha256 is not None and key is None:
            hinted = self.content_key(sha256)
            head = self.existing(hinted)
            if head is not None and head.get("ContentLength") == size:
                return Upload(hinted, size, sha256, uploaded=False)
        digest = self.hashes.sha256(path)
        key = key or self.content_key(digest)
        head = self.existing(key)
        if (
            head is not None
            and head.get("ContentLength") == size
            and ((head.get("Metadata") or {}).get("sha256") == digest or key == self.content_key(digest))
        ):
            return Upload(key, size, digest, uploaded=False)
        return self._put(path, key, size, digest, shown=path)

    def _put(self, path: Path, key: str, size: int, digest: str, shown: Path) -> Upload:
        """Upload ``path`` (named ``shown`` in messages) with its sha256 as metadata."""
        extra: dict[str, Any] = {"Metadata": {"sha256": digest}}
        if size < self.transfer.multipart_threshold:
            extra["ChecksumSHA256"] = _sha256_b64(digest)  # the server verifies what it stores
        try:
            with self._progress(f"uploading {shown} to {self._describe(key)}", size) as progress:
                self.client.upload_file(
                    str(path), self.bucket, key, ExtraArgs=extra, Config=self.transfer, Callback=progress
                )
        except (*_S3_ERRORS, OSError) as err:
            raise s3_failure(f"cannot upload {shown} to {self._describe(key)}", err) from err
        return Upload(key, size, digest, uploaded=True)

    def has_objects_below(self, prefix: str) -> bool:
        """Whether any object has a key below ``prefix/`` (an S3 "directory", as Argo loads it)."""
        try:
            listing = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=prefix.rstrip("/") + "/", MaxKeys=1
            )
        except _S3_ERRORS as err:
            raise s3_failure(f"cannot list {self._describe(prefix)}/", err) from err
        return bool(listing.get("KeyCount") or listing.get("Contents"))

    def push_directory(self, directory: Path, prefix: str) -> list[Upload]:
        """Upload every file below ``directory`` to ``prefix/<relative path>``, skipping identical ones.

        This is how reference data gets into the bucket (``galaxy-argo reference push``); symbolic
        links are followed, as a copy would, so a ``.loc`` tree of links uploads their targets.
        """
        if not directory.is_dir():
            raise StagingError(f"{directory} is not a directory")
        uploads = []
        for root, dirs, names in os.walk(directory, followlinks=True):
            dirs.sort()
            for name in sorted(names):
                path = Path(root) / name
                relative = path.relative_to(directory).as_posix()
                uploads.append(self.stage_file(path, f"{prefix.rstrip('/')}/{relative}"))
        return uploads

    def stage_bundle(
        self, directory: Path, key: str, top: str, files: Iterable[Path] | None = None
    ) -> Upload:
        """Upload ``directory`` (or just ``files`` in it) as a tgz with top-level entry ``top``."""
        with tempfile.TemporaryDirectory(prefix="galaxy-argo-bundle-") as tmp:
            archive = Path(tmp) / "bundle.tgz"
            make_bundle(directory, archive, top, files)
            with archive.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            return self._put(archive, key, archive.stat().st_size, digest, shown=directory)

    def fetch(self, item: Download) -> None:
        """Download one object, verify it, then move it into place (never a partial file at ``dest``).

        The sha256 is computed while the bytes arrive (`_HashingFile`), not by a second pass.
        """
        item.dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{item.dest.name}.", suffix=".partial", dir=item.dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w+b", buffering=0) as handle:
                target = _HashingFile(handle.fileno())
                what = f"downloading {self._describe(item.key)} to {item.dest}"
                try:
                    with self._progress(what, item.size or 0) as progress:
                        self.client.download_fileobj(
                            self.bucket, item.key, target, Config=self.transfer, Callback=progress
                        )
                except (*_S3_ERRORS, OSError) as err:
                    raise s3_failure(
                        f"cannot download {self._describe(item.key)} to {item.dest}", err
                    ) from err
                size = os.fstat(handle.fileno()).st_size
            if target.hashed != size:
                raise StagingError(f"{self._describe(item.key)} arrived with a gap at byte {target.hashed}")
            if item.size is not None and size != item.size:
                raise StagingError(
                    f"{self._describe(item.key)} has {size} bytes, the manifest says {item.size}"
                )
            digest = target.digest.hexdigest()
            if item.sha256 is not None and digest != item.sha256:
                raise StagingError(
                    f"{self._describe(item.key)} has sha256 {digest}, the manifest says {item.sha256}"
                )
            os.replace(tmp, item.dest)
            self.hashes.remember(item.dest, digest)
        finally:
            tmp.unlink(missing_ok=True)

    def fetch_all(self, items: Iterable[Download]) -> None:
        """Fetch every item, then raise one error listing all that failed.

        `StagingUnavailable` only if every failure may pass; one wrong size or digest makes it a
        `StagingError`, which no retry mends.
        """
        failures: list[StagingError] = []
        for item in items:
            try:
                self.fetch(item)
            except StagingError as err:
                failures.append(err)
        if failures:
            transient = all(isinstance(err, StagingUnavailable) for err in failures)
            kind = StagingUnavailable if transient else StagingError
            raise kind(f"{len(failures)} transfer(s) failed: " + "; ".join(map(str, failures)))

    def fetch_bundle(self, key: str, dest: Path) -> list[Path]:
        """Download a tgz bundle and unpack it into ``dest`` safely (top-level entry stripped)."""
        with tempfile.TemporaryDirectory(
            prefix="galaxy-argo-bundle-", dir=dest.parent if dest.parent.exists() else None
        ) as tmp:
            archive = Path(tmp) / "bundle.tgz"
            self.fetch(Download(key, archive))
            return safe_extract(archive, dest)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object below ``prefix/``; return how many."""
        deleted = 0
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix.rstrip("/") + "/"):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                    deleted += len(keys)
        except _S3_ERRORS as err:
            raise s3_failure(f"cannot delete {self._describe(prefix)}/", err) from err
        return deleted
