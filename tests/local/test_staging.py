"""Galaxy-side staging against the real SeaweedFS: dedup, verified downloads, safe bundles."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from galaxy_argo.clients.staging import Download, Sha256Cache, Stager, StagingError, make_bundle, safe_extract
from galaxy_argo.local.stack import EmbeddedStack

pytestmark = pytest.mark.engine


@pytest.fixture()
def stager(stack: EmbeddedStack, request: pytest.FixtureRequest) -> Stager:
    assert stack.s3 is not None
    return Stager(stack.s3.client(), stack.bucket, f"tests/staging/{request.node.name}")


def counting(stager: Stager) -> list[str]:
    calls: list[str] = []
    stager.client.meta.events.register("before-send.s3.*", lambda request, **_: calls.append(request.method))
    return calls


def test_upload_once_then_skip_with_one_request(stager: Stager, tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_bytes(b"x" * 100_000)
    first = stager.stage_file(path)
    assert first.uploaded and first.key == stager.content_key(hashlib.sha256(b"x" * 100_000).hexdigest())
    calls = counting(stager)
    again = stager.stage_file(path)
    assert not again.uploaded and again.key == first.key
    assert calls == ["HEAD"]
    assert stager.hashes.computed == 1  # hashed once per (path, size, mtime)


def test_a_known_sha256_finds_the_object_without_reading_the_file(stager: Stager, tmp_path: Path) -> None:
    """Galaxy's DatasetHash: one HEAD and no hashing when the content object is there already."""
    content = os.urandom(50_000)
    digest = hashlib.sha256(content).hexdigest()
    (tmp_path / "first").write_bytes(content)
    stager.stage_file(tmp_path / "first")
    fresh = Stager(stager.client, stager.bucket, stager.key_prefix)
    path = tmp_path / "second"
    path.write_bytes(content)
    calls = counting(fresh)
    found = fresh.stage_file(path, sha256=digest)
    assert (found.key, found.uploaded, found.sha256) == (stager.content_key(digest), False, digest)
    assert calls == ["HEAD"] and fresh.hashes.computed == 0


def test_a_wrong_known_sha256_is_never_uploaded_under(stager: Stager, tmp_path: Path) -> None:
    """A stale hint misses; the file is hashed and stored under its real digest."""
    path = tmp_path / "data"
    path.write_bytes(os.urandom(20_000))
    wrong = hashlib.sha256(b"something else").hexdigest()
    upload = stager.stage_file(path, sha256=wrong)
    real = hashlib.sha256(path.read_bytes()).hexdigest()
    assert upload.uploaded and upload.key == stager.content_key(real) and upload.sha256 == real
    assert stager.existing(stager.content_key(wrong)) is None


def test_explicit_key_reuploads_when_content_changes(stager: Stager, tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_bytes(b"one")
    assert stager.stage_file(path, "k/obj").uploaded
    assert not stager.stage_file(path, "k/obj").uploaded
    path.write_bytes(b"two!")
    os.utime(path, ns=(1, 1))
    assert stager.stage_file(path, "k/obj").uploaded
    assert stager.client.get_object(Bucket=stager.bucket, Key="k/obj")["Body"].read() == b"two!"


def test_download_verifies_size_and_sha256_and_never_leaves_partials(stager: Stager, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.write_bytes(b"payload")
    upload = stager.stage_file(source, "k/payload")
    good = tmp_path / "out" / "good"
    stager.fetch(Download(upload.key, good, upload.size, upload.sha256))
    assert good.read_bytes() == b"payload"
    bad = tmp_path / "out" / "bad"
    bad.write_bytes(b"old content stays")
    with pytest.raises(StagingError) as err:
        stager.fetch_all(
            [
                Download(upload.key, bad, upload.size, "0" * 64),
                Download("k/missing", tmp_path / "out" / "missing"),
                Download(upload.key, tmp_path / "out" / "short", upload.size + 1, upload.sha256),
            ]
        )
    text = str(err.value)
    assert text.startswith("3 transfer(s) failed")
    assert "has sha256" in text and "k/missing" in text and "has 7 bytes, the manifest says 8" in text
    assert bad.read_bytes() == b"old content stays"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bad", "good"]


def test_parallel_ranged_download_is_hashed_in_order_while_it_arrives(stager: Stager, tmp_path: Path) -> None:
    # 1 MiB ranges, 4 at a time: most writes land ahead of the hashed stretch and are read back.
    from boto3.s3.transfer import TransferConfig

    mib = 1024 * 1024
    ranged = Stager(
        stager.client,
        stager.bucket,
        stager.key_prefix,
        transfer=TransferConfig(
            multipart_threshold=5 * mib, multipart_chunksize=mib, max_concurrency=4, io_chunksize=64 * 1024
        ),
    )
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(9 * mib + 12345))
    upload = stager.stage_file(source)
    dest = tmp_path / "out" / "big.bin"
    ranged.fetch(Download(upload.key, dest, upload.size, upload.sha256))
    assert dest.read_bytes() == source.read_bytes()
    assert ranged.hashes.sha256(dest) == upload.sha256 and ranged.hashes.computed == 0  # remembered
    with pytest.raises(StagingError, match="has sha256 .*, the manifest says 0000"):
        ranged.fetch(Download(upload.key, tmp_path / "out" / "again.bin", upload.size, "0" * 64))
    assert not (tmp_path / "out" / "again.bin").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["big.bin"]  # no partial left behind


def test_bundles_round_trip_with_one_top_level_entry(stager: Stager, tmp_path: Path) -> None:
    job = tmp_path / "job"
    (job / "working").mkdir(parents=True)
    (job / "working" / "a.txt").write_text("a")
    (job / "tool_script.sh").write_text("echo hi")
    upload = stager.stage_bundle(job, "k/job.tgz", "job")
    raw = stager.client.get_object(Bucket=stager.bucket, Key=upload.key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        assert {n.split("/")[0] for n in tar.getnames()} == {"job"}
    back = tmp_path / "back"
    written = stager.fetch_bundle(upload.key, back)
    assert (back / "working" / "a.txt").read_text() == "a"
    assert sorted(p.relative_to(back).as_posix() for p in written) == ["tool_script.sh", "working/a.txt"]


def hostile(tmp_path: Path, build: Any) -> Path:
    archive = tmp_path / "hostile.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        build(tar)
    return archive


def add(
    tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"x"
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ([("job/../../etc/evil", tarfile.REGTYPE, "")], "absolute or '..' path"),
        ([("/etc/evil", tarfile.REGTYPE, "")], "absolute or '..' path"),
        ([("job/link", tarfile.SYMTYPE, "/etc/passwd")], "symlink to '/etc/passwd' points outside"),
        ([("job/link", tarfile.SYMTYPE, "../../../etc/passwd")], "points outside"),
        ([("job/hard", tarfile.LNKTYPE, "/etc/passwd")], "hard link to '/etc/passwd' points outside"),
        ([("job/dev", tarfile.CHRTYPE, "")], "device or fifo"),
        ([("job/fifo", tarfile.FIFOTYPE, "")], "device or fifo"),
    ],
)
def test_hostile_archives_are_refused_and_nothing_is_written(
    tmp_path: Path, members: list[tuple[str, bytes, str]], problem: str
) -> None:
    archive = hostile(tmp_path, lambda tar: [add(tar, n, k, link) for n, k, link in members])
    dest = tmp_path / "dest"
    with pytest.raises(StagingError, match=problem):
        safe_extract(archive, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path.parent / "etc").exists()


def test_corrupt_and_oddly_shaped_archives(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tgz"
    garbage.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(StagingError, match="not a readable gzipped tar archive"):
        safe_extract(garbage, tmp_path / "d1")
    two_tops = hostile(tmp_path, lambda tar: [add(tar, "a/x"), add(tar, "b/y")])
    with pytest.raises(StagingError, match="expected one top-level directory, found \\['a', 'b'\\]"):
        safe_extract(two_tops, tmp_path / "d2")
    inside = hostile(tmp_path, lambda tar: [add(tar, "job/x"), add(tar, "job/l", tarfile.SYMTYPE, "x")])
    written = safe_extract(inside, tmp_path / "d3")
    assert (tmp_path / "d3" / "l").is_symlink() and len(written) == 2


def test_delete_prefix(stager: Stager, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("z")
    for i in range(3):
        stager.stage_file(path, f"{stager.key_prefix}/job/{i}")
    assert stager.delete_prefix(f"{stager.key_prefix}/job") == 3
    assert stager.delete_prefix(f"{stager.key_prefix}/job") == 0


def test_push_directory_uploads_a_tree_once_and_lists_it_as_a_directory(
    stager: Stager, tmp_path: Path
) -> None:
    tree = tmp_path / "hg38"
    (tree / "bwa").mkdir(parents=True)
    (tree / "bwa" / "hg38.fa").write_text(">chr1\nACGT\n")
    (tree / "bwa" / "hg38.fa.bwt").write_bytes(b"\x00\x01")
    (tree / "len").mkdir()
    (tree / "len" / "hg38.len").write_text("chr1\t4\n")
    prefix = f"{stager.key_prefix}/reference/hg38"
    first = stager.push_directory(tree, prefix)
    assert sorted(u.key.removeprefix(prefix + "/") for u in first) == [
        "bwa/hg38.fa",
        "bwa/hg38.fa.bwt",
        "len/hg38.len",
    ]
    assert all(u.uploaded for u in first)
    calls = counting(stager)
    again = stager.push_directory(tree, prefix)
    assert not any(u.uploaded for u in again) and calls == ["HEAD"] * 3
    assert stager.has_objects_below(f"{prefix}/bwa") and stager.has_objects_below(prefix)
    assert not stager.has_objects_below(f"{prefix}/bwa/hg38.fa")  # an object, not a directory
    assert not stager.has_objects_below(f"{prefix}/bowtie2")
    with pytest.raises(StagingError, match="is not a directory"):
        stager.push_directory(tree / "bwa" / "hg38.fa", prefix)


def test_reference_push_command_uploads_to_the_destinations_bucket(
    stack: EmbeddedStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from galaxy_argo.cli.main import main

    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "tiny.fa").write_text(">a\nAC\n")
    params = [f"-p{k}={v}" for k, v in stack.info().destination_params().items()]
    assert main(["reference", "push", str(tmp_path), "tests/cli-reference/tiny", *params]) == 0
    assert "1 file(s) uploaded (6 bytes), 0 already there" in capsys.readouterr().out
    assert main(["reference", "push", str(tmp_path), "tests/cli-reference/tiny", *params]) == 0
    assert "0 file(s) uploaded (0 bytes), 1 already there" in capsys.readouterr().out
    assert stack.s3 is not None
    body = stack.s3.client().get_object(Bucket=stack.bucket, Key="tests/cli-reference/tiny/seq/tiny.fa")[
        "Body"
    ]
    assert body.read() == b">a\nAC\n"
    assert main(["reference", "push", str(tmp_path), "../escape", *params]) == 2
    assert "key prefix '../escape': expected an object key prefix" in capsys.readouterr().err


def test_sha256_cache_notices_changes(tmp_path: Path) -> None:
    cache = Sha256Cache()
    path = tmp_path / "f"
    path.write_text("a")
    first = cache.sha256(path)
    assert cache.sha256(path) == first and cache.computed == 1
    path.write_text("bb")
    assert cache.sha256(path) == hashlib.sha256(b"bb").hexdigest() and cache.computed == 2


def test_make_bundle_is_readable_by_safe_extract(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "f").write_text("f")
    make_bundle(tmp_path / "d", tmp_path / "b.tgz", "top")
    safe_extract(tmp_path / "b.tgz", tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "f").read_text() == "f"


def test_unreachable_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="a",
        aws_secret_access_key="b",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    path = tmp_path / "f"
    path.write_text("x")
    with pytest.raises(StagingError, match="cannot reach the S3 endpoint"):
        Stager(client, "bucket", "p").stage_file(path)


def test_transfers_report_progress(stager: Stager, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """s3transfer's callbacks reach the progress of each upload and download, every byte counted."""
    from functools import partial

    from galaxy_argo.clients.progress import LoggedProgress

    reporting = Stager(
        stager.client, stager.bucket, stager.key_prefix, progress=partial(LoggedProgress, interval=0)
    )
    source = tmp_path / "three-mib"
    source.write_bytes(os.urandom(3 * 1024**2))
    with caplog.at_level(logging.INFO, logger="galaxy_argo.clients.progress"):
        upload = reporting.stage_file(source)
        reporting.fetch(Download(upload.key, tmp_path / "back", upload.size, upload.sha256))
    closing = [m for m in caplog.messages if " in " in m and "MB/s)" in m]
    assert [m.split(":")[0] for m in closing] == [
        f"uploading {source} to s3",
        "downloading s3",
    ]
    assert all(": 3.00 MiB in " in m for m in closing)
