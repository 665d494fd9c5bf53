"""`ArgoSettings` -> the clients one destination uses: its `Workflows` backend and a `Stager`.

The backend is an `ArgoClient` (Argo Server, through Hera) or, with ``submission: kubernetes``, a
`KubernetesClient` (the Workflow resources). Destinations that point at the same cluster,
namespace and bucket share one `Connection` (`ConnectionPool`): one HTTP session, one boto3 client
and its connection pool, one sha256 cache, and one LIST per poll cycle however many destinations
TPV invents.

An empty ``argo_server_url`` (``kubeconfig`` with ``submission: kubernetes``) means the embedded
stack: its ``server.json`` and ``kubeconfig.yaml`` (written by ``galaxy-argo local serve`` /
``dev up`` under ``embedded_state_dir``) supply the endpoints, the token, the S3 endpoint and
keys, unless the destination sets them itself.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from galaxy_argo.clients.argo import ArgoClient, Workflows
from galaxy_argo.clients.staging import Stager
from galaxy_argo.core.errors import SettingsError
from galaxy_argo.core.naming import EMBEDDED_KUBECONFIG, EMBEDDED_SERVER_INFO, LABEL_PREFIX
from galaxy_argo.core.settings import ArgoSettings, Submission

__all__ = [
    "Connection",
    "ConnectionPool",
    "resolve_embedded",
    "s3_client",
    "workflows_client",
]

#: The kubeconfig the embedded stack writes into its state directory (`local.stack` uses this).
_EMBEDDED_KEYS = {
    "argo_server_url": "argo_server_url",
    "argo_token": "token",
    "s3_endpoint_url": "s3_endpoint_url",
    "s3_access_key_id": "s3_access_key_id",
    "s3_secret_access_key": "s3_secret_access_key",
}


def resolve_embedded(settings: ArgoSettings) -> ArgoSettings:
    """Fill the connection params of a destination that names no cluster from ``server.json``.

    Raises:
        SettingsError: No embedded stack's ``server.json`` is where ``embedded_state_dir`` says.
    """
    kubernetes = settings.submission is Submission.KUBERNETES
    param = "kubeconfig" if kubernetes else "argo_server_url"
    if getattr(settings, param):
        return settings
    state_dir = Path(settings.embedded_state_dir).expanduser()
    path = state_dir / EMBEDDED_SERVER_INFO
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SettingsError(
            param,
            "",
            f"{'a kubeconfig' if kubernetes else 'an Argo Server URL'}; it is empty and no embedded stack "
            f"was found ({path}: {err}); start one with `galaxy-argo local serve --state-dir "
            f"{settings.embedded_state_dir}` or set {param}",
        ) from None
    values = {param: info[key] for param, key in _EMBEDDED_KEYS.items() if not getattr(settings, param)}
    if kubernetes:
        values = {k: v for k, v in values.items() if not k.startswith("argo_")}
        values["kubeconfig"] = str(state_dir / EMBEDDED_KUBECONFIG)
    return replace(settings, **values)


def workflows_client(settings: ArgoSettings, timeout: float = 30.0) -> Workflows:
    """The destination's backend (``settings`` resolved with `resolve_embedded`)."""
    if settings.submission is Submission.KUBERNETES:
        from galaxy_argo.clients.kube import KubernetesClient

        return KubernetesClient(
            settings.kubeconfig, settings.kube_context, namespace=settings.namespace, timeout=timeout
        )
    return ArgoClient(
        settings.argo_server_url,
        token=settings.argo_token,
        namespace=settings.namespace,
        verify_tls=settings.argo_verify_tls,
        timeout=timeout,
    )


def s3_client(settings: ArgoSettings) -> Any:
    """A boto3 S3 client for the destination's endpoint: path-style, standard retries, no proxy."""
    config = Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        # adaptive: standard retries plus a client-side rate limit that backs off on SlowDown
        retries={"mode": "adaptive", "max_attempts": settings.s3_max_attempts},
        max_pool_connections=32,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        proxies={},
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.s3_region or "us-east-1",
        aws_access_key_id=settings.s3_access_key_id or None,
        aws_secret_access_key=settings.s3_secret_access_key or None,
        config=config,
    )


@dataclass
class Connection:
    """The clients of one (cluster, namespace, S3 endpoint, bucket)."""

    argo: Workflows
    stager: Stager
    #: Label selector matching every workflow this Galaxy instance submits here.
    selector: str


class ConnectionPool:
    """One `Connection` per distinct endpoint set, created on first use; thread-safe."""

    def __init__(self) -> None:
        """An empty pool."""
        self._lock = threading.Lock()
        self._connections: dict[tuple[str, ...], Connection] = {}

    @staticmethod
    def key(settings: ArgoSettings) -> tuple[str, ...]:
        """What makes two destinations share clients (credentials included: never mixed)."""
        return (
            settings.submission.value,
            settings.kubeconfig,
            settings.kube_context,
            settings.argo_server_url,
            settings.argo_token,
            str(settings.argo_verify_tls),
            settings.namespace,
            settings.instance,
            settings.s3_endpoint_url,
            settings.s3_region,
            settings.s3_access_key_id,
            settings.s3_secret_access_key,
            str(settings.s3_max_attempts),
            settings.bucket,
            settings.key_prefix,
        )

    def get(self, settings: ArgoSettings) -> Connection:
        """The connection for ``settings`` (already resolved with `resolve_embedded`)."""
        key = self.key(settings)
        with self._lock:
            connection = self._connections.get(key)
            if connection is None:
                connection = Connection(
                    argo=workflows_client(settings),
                    stager=Stager(s3_client(settings), settings.bucket, settings.key_prefix),
                    selector=f"{LABEL_PREFIX}/instance={settings.instance}",
                )
                self._connections[key] = connection
            return connection

    def close(self) -> None:
        """Close the HTTP sessions (boto3 clients close with the process)."""
        with self._lock:
            for connection in self._connections.values():
                connection.argo.close()
            self._connections.clear()
