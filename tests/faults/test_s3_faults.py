"""S3 faults at the Stager, on a real SeaweedFS: killed mid-transfer, throttled, disk full.

Each case: the failure is reported for what it is (`StagingUnavailable` when retrying can mend
it, `StagingError` when not), nothing partial is ever used or left at the destination, and the
transfer succeeds once the server is back.
"""

from __future__ import annotations

import gc
import hashlib
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from galaxy_argo.clients.progress import LoggedProgress
from galaxy_argo.clients.staging import Download, Stager, StagingError, StagingUnavailable
from galaxy_argo.local.s3 import SeaweedS3
from tests.faults.conftest import big_file, kill, proxied
from tests.faults.proxy import FaultProxy

pytestmark = pytest.mark.engine


class KillAt:
    """A progress factory that kills the server once ``threshold`` bytes of a transfer moved."""

    def __init__(self, server: SeaweedS3, threshold: int) -> None:
        self.server = server
        self.threshold = threshold
        self.killed = threading.Event()

    def __call__(self, what: str, total: int) -> LoggedProgress:
        progress = LoggedProgress(what, total, interval=3600)
        original = progress.__call__

        def counting(amount: int) -> None:
            original(amount)
            if progress.done >= self.threshold and not self.killed.is_set():
                self.killed.set()
                kill(self.server)

        return _Wrapped(progress, counting)


class _Wrapped:
    def __init__(self, progress: LoggedProgress, call: Callable[[int], None]) -> None:
        self._progress, self._call = progress, call

    def __call__(self, amount: int) -> None:
        self._call(amount)

    def close(self) -> None:
        self._progress.close()


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def test_server_killed_during_stage_in_then_restarted(
    stager: Stager, seaweed: SeaweedS3, tmp_path: Path
) -> None:
    source = big_file(tmp_path / "input.dat", 160)
    digest = sha256_of(source)
    killer = KillAt(seaweed, 40 * 1024 * 1024)
    stager.progress = killer
    try:
        with pytest.raises(StagingUnavailable, match=f"cannot upload {source}"):
            stager.stage_file(source)
    finally:
        seaweed.start()  # same directory, same ports: the server comes back
    assert killer.killed.is_set()
    # nothing a job could read was left under the content address
    head = stager.existing(stager.content_key(digest))
    assert head is None or head["ContentLength"] != source.stat().st_size
    stager.progress = LoggedProgress
    upload = stager.stage_file(source)
    assert upload.uploaded and upload.key == stager.content_key(digest)
    back = tmp_path / "back.dat"
    stager.fetch(Download(upload.key, back, upload.size, digest))
    assert sha256_of(back) == digest


def test_a_short_object_under_the_content_key_is_never_reused(stager: Stager, tmp_path: Path) -> None:
    """Whatever a crash left there (an old server, another tool), size decides: it is replaced."""
    source = big_file(tmp_path / "input.dat", 2)
    digest = sha256_of(source)
    key = stager.content_key(digest)
    stager.client.put_object(Bucket=stager.bucket, Key=key, Body=source.read_bytes()[:1000])
    upload = stager.stage_file(source)
    assert upload.uploaded
    body = stager.client.get_object(Bucket=stager.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == digest


def test_server_killed_during_stage_out_then_restarted(
    stager: Stager, seaweed: SeaweedS3, tmp_path: Path
) -> None:
    source = big_file(tmp_path / "output.dat", 160)
    upload = stager.stage_file(source)
    dest_dir = tmp_path / "galaxy"
    dest = dest_dir / "dataset_1.dat"
    killer = KillAt(seaweed, 40 * 1024 * 1024)
    stager.progress = killer
    try:
        with pytest.raises(StagingUnavailable, match="cannot download"):
            stager.fetch(Download(upload.key, dest, upload.size, upload.sha256))
    finally:
        seaweed.start()
    assert killer.killed.is_set()
    assert not dest.exists() and list(dest_dir.iterdir()) == []  # no short file, no .partial
    stager.progress = LoggedProgress
    stager.fetch(Download(upload.key, dest, upload.size, upload.sha256))
    assert sha256_of(dest) == upload.sha256


def test_throttling_is_ridden_out(proxied_stager: Stager, proxy: FaultProxy, tmp_path: Path) -> None:
    """503 SlowDown on several requests in a row: the runner's S3 client retries and backs off."""
    source = big_file(tmp_path / "input.dat", 3)
    proxy.fail_next(4)
    upload = proxied_stager.stage_file(source)
    assert proxy.errors_served == 4 and upload.uploaded
    dest = tmp_path / "back.dat"
    proxy.fail_next(4)
    proxied_stager.fetch(Download(upload.key, dest, upload.size, upload.sha256))
    assert proxy.errors_served == 8 and sha256_of(dest) == upload.sha256


def test_throttling_that_does_not_end_is_reported_as_temporary(
    proxied_stager: Stager, proxy: FaultProxy, tmp_path: Path
) -> None:
    source = big_file(tmp_path / "input.dat", 1)
    proxy.fail_next(1000)
    with pytest.raises(StagingUnavailable, match=r"\(503\).*reached max retries: 10"):
        proxied_stager.stage_file(source)


def test_an_unreachable_endpoint_is_temporary_and_a_refusal_is_not(
    proxy: FaultProxy, seaweed: SeaweedS3, tmp_path: Path
) -> None:
    stager = proxied(proxy, seaweed, "faults/unreachable", s3_max_attempts="2")
    source = big_file(tmp_path / "input.dat", 1)
    proxy.down.set()
    with pytest.raises(StagingUnavailable, match="cannot reach the S3 endpoint"):
        stager.existing("any/key")
    proxy.down.clear()
    proxy.fail_next(1, status=403, code="AccessDenied")
    with pytest.raises(StagingError, match=r"\(403\)") as refused:
        stager.stage_file(source)
    assert not isinstance(refused.value, StagingUnavailable)
    assert proxy.errors_served == 1  # a refusal is not retried
    stager.client.close()


@pytest.fixture()
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: writing more fails with ENOSPC, as a full Galaxy disk does."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


# botocore leaves the socket of a download s3transfer abandoned (ENOSPC) for the garbage collector.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_disk_full_while_downloading_leaves_nothing_half_written(
    stager: Stager, tmp_path: Path, full_disk: Path
) -> None:
    upload = stager.stage_file(big_file(tmp_path / "output.dat", 12))
    dest = full_disk / "dataset_7.dat"
    with pytest.raises(StagingError, match="No space left on device") as err:
        stager.fetch(Download(upload.key, dest, upload.size, upload.sha256))
    assert not isinstance(err.value, StagingUnavailable)  # no retry mends a full disk
    assert list(full_disk.iterdir()) == []
    stager.client.close()
    gc.collect()  # that socket's ResourceWarning now, under this test's filter
