"""The fault suite's own S3 server (it gets killed and throttled here, so not the session's)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from galaxy_argo.clients.connections import s3_client
from galaxy_argo.clients.staging import Stager
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.local.s3 import SeaweedS3
from tests.faults.proxy import FaultProxy

ACCESS_KEY = "GAFAULTSACCESSKEY"
SECRET_KEY = "faults-secret-key-0123456789abcdef"


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3(tmp_path_factory.mktemp("faults-s3"), access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def kill(server: SeaweedS3) -> None:
    """SIGKILL, as a crashed or OOM-killed server; `stop` then only reaps it."""
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)
    server.stop()


def production_settings(endpoint: str, server: SeaweedS3, **params: str) -> ArgoSettings:
    """The destination params an admin would give for this endpoint (production retry config)."""
    return ArgoSettings.from_params(
        {
            "s3_endpoint_url": endpoint,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            "bucket": server.bucket,
            **params,
        }
    )


def proxied(proxy: FaultProxy, server: SeaweedS3, prefix: str, **params: str) -> Stager:
    """A Stager with the runner's own S3 client configuration, talking through the proxy."""
    return Stager(s3_client(production_settings(proxy.url, server, **params)), server.bucket, prefix)


@pytest.fixture()
def proxy(seaweed: SeaweedS3) -> Iterator[FaultProxy]:
    with FaultProxy(seaweed.port) as running:
        yield running


@pytest.fixture()
def proxied_stager(proxy: FaultProxy, seaweed: SeaweedS3, request: pytest.FixtureRequest) -> Iterator[Stager]:
    """The runner's S3 configuration (10 attempts, adaptive backoff) through the proxy."""
    stager = proxied(proxy, seaweed, f"faults/{request.node.name}")
    yield stager
    stager.client.close()


@pytest.fixture()
def stager(seaweed: SeaweedS3, request: pytest.FixtureRequest) -> Stager:
    """Straight to SeaweedFS, few retries: a killed server is reported in seconds."""
    client = seaweed.client(
        retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=10
    )
    return Stager(client, seaweed.bucket, f"faults/{request.node.name}")


def big_file(path: Path, mib: int) -> Path:
    with path.open("wb") as handle:
        for _ in range(mib):
            handle.write(os.urandom(1024 * 1024))
    return path
