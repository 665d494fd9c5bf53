"""The embedded default, assembled: SeaweedFS + object store + engine + Argo REST server.

``galaxy-argo local serve`` and ``local run``, the test fixtures and ``dev up`` all start it the
same way. Everything lives under one state directory, so stopping and starting again on the same
directory keeps every workflow, template, object and credential:

    <state>/credentials.json   S3 keys and the API token (mode 600), made on first start
    <state>/s3-identities.json keys of the extra S3 identities (mode 600), made when first declared
    <state>/seaweedfs/         SeaweedFS data
    <state>/objects/           workflows and templates (galaxy_argo.local.store)
    <state>/pods/              pod volumes and logs
    <state>/server.json        where the running server and S3 listen (for clients)
    <state>/kubeconfig.yaml    the same server as a Kubernetes API (submission: kubernetes)

Extra S3 identities (``s3_identities``: Secret name -> SeaweedFS actions) stand for the
credentials a pod may be given on a cluster: each is a Secret the engine's pods can name in
``secretKeyRef``, with keys that only allow its actions.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from galaxy_argo.core.naming import EMBEDDED_KUBECONFIG, EMBEDDED_SERVER_INFO
from galaxy_argo.core.yamlio import dump_yaml
from galaxy_argo.local.artifacts import ArtifactRepositories
from galaxy_argo.local.controller.engine import Engine, EngineConfig
from galaxy_argo.local.process import kept_secrets, write_private_json
from galaxy_argo.local.s3 import S3Identity, SeaweedS3
from galaxy_argo.local.sandbox import ImageMap
from galaxy_argo.local.server import ArgoAPIServer
from galaxy_argo.local.store import ObjectStore

__all__ = ["KUBECONFIG", "EmbeddedStack", "StackInfo", "kubeconfig"]

#: ConfigMap and key of the default artifact repository, as in Argo's examples.
DEFAULT_REPOSITORY = ("artifact-repositories", "default-v1")


@dataclass
class StackInfo:
    """How clients reach a running stack (written to ``server.json``)."""

    argo_server_url: str
    token: str
    namespace: str
    s3_endpoint_url: str
    s3_access_key_id: str
    s3_secret_access_key: str
    bucket: str
    state_dir: str

    def destination_params(self) -> dict[str, str]:
        """Galaxy destination params for a runner using this stack."""
        return {
            "argo_server_url": self.argo_server_url,
            "argo_token": self.token,
            "namespace": self.namespace,
            "s3_endpoint_url": self.s3_endpoint_url,
            "s3_access_key_id": self.s3_access_key_id,
            "s3_secret_access_key": self.s3_secret_access_key,
            "bucket": self.bucket,
        }


#: For ``submission: kubernetes``: the server also answers the Workflow resources' API paths.
KUBECONFIG = EMBEDDED_KUBECONFIG  # where `clients.connections.resolve_embedded` looks for it


def kubeconfig(info: StackInfo) -> str:
    """A kubeconfig for the stack's server, as the ``kubernetes`` client reads one."""
    user: dict[str, Any] = {"token": info.token} if info.token else {}
    return dump_yaml(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "galaxy-argo-embedded", "cluster": {"server": info.argo_server_url}}],
            "users": [{"name": "galaxy-argo", "user": user}],
            "contexts": [
                {
                    "name": "galaxy-argo-embedded",
                    "context": {
                        "cluster": "galaxy-argo-embedded",
                        "user": "galaxy-argo",
                        "namespace": info.namespace,
                    },
                }
            ],
            "current-context": "galaxy-argo-embedded",
        }
    )


def _credentials(state_dir: Path) -> dict[str, str]:
    return kept_secrets(
        state_dir / "credentials.json",
        lambda: {
            "access_key": "GA" + secrets.token_hex(9).upper(),
            "secret_key": secrets.token_urlsafe(30),
            "token": secrets.token_urlsafe(24),
        },
    )


def _identities(state_dir: Path, declared: dict[str, list[str]]) -> list[S3Identity]:
    """The declared identities with their keys: kept in ``s3-identities.json``, made for new names.

    Keys stay the same across restarts (a pod's Secret, a test's client stay valid); the file is
    rewritten (mode 600, then renamed into place) only when a new name needs keys.
    """
    path = state_dir / "s3-identities.json"
    try:
        keys: dict[str, dict[str, str]] = json.loads(path.read_text())
    except FileNotFoundError:
        keys = {}
    missing = [name for name in declared if name not in keys]
    for name in missing:
        access_key = "GI" + secrets.token_hex(9).upper()
        keys[name] = {"access_key": access_key, "secret_key": secrets.token_urlsafe(30)}
    if missing:
        write_private_json(path, keys)
    return [
        S3Identity(name, tuple(actions), keys[name]["access_key"], keys[name]["secret_key"])
        for name, actions in declared.items()
    ]


@dataclass
class EmbeddedStack:
    """Start with `start` (or ``with``), stop with `stop`; all on 127.0.0.1."""

    state_dir: Path
    port: int = 0
    namespace: str = "galaxy"
    bucket: str = "galaxy-argo"
    max_pods: int = 4
    require_token: bool = True
    #: Extra ``artifact-repositories``-style ConfigMaps: name -> key -> repository document.
    extra_repositories: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    image_map: ImageMap | None = None
    #: Extra S3 identities, each also a Secret of the engine: Secret name -> SeaweedFS actions,
    #: e.g. ``{"galaxy-store-reader": ["Read:galaxy-store", "List:galaxy-store"]}``.
    s3_identities: dict[str, list[str]] = field(default_factory=dict)
    s3: SeaweedS3 | None = field(default=None, init=False)
    engine: Engine | None = field(default=None, init=False)
    server: ArgoAPIServer | None = field(default=None, init=False)
    store: ObjectStore | None = field(default=None, init=False)

    def start(self) -> EmbeddedStack:
        """Start SeaweedFS, recover stored workflows and serve the REST API."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        creds = _credentials(self.state_dir)
        self.s3 = SeaweedS3(
            self.state_dir,
            access_key=creds["access_key"],
            secret_key=creds["secret_key"],
            bucket=self.bucket,
            identities=_identities(self.state_dir, self.s3_identities),
        )
        try:
            self.s3.start()
            repos = ArtifactRepositories(
                config_maps={DEFAULT_REPOSITORY[0]: {DEFAULT_REPOSITORY[1]: self.s3.artifact_repository()}},
                default=DEFAULT_REPOSITORY,
                secrets=self.s3.secrets(),
            )
            for name, entries in self.extra_repositories.items():
                repos.config_maps.setdefault(name, {}).update(entries)
            self.store = ObjectStore(self.state_dir)
            config = EngineConfig(self.state_dir, repos, self.image_map or ImageMap(), max_pods=self.max_pods)
            self.engine = Engine(self.store, config)
            self.engine.start()
            self.server = ArgoAPIServer(
                self.engine, self.store, port=self.port, token=creds["token"] if self.require_token else ""
            ).start()
        except BaseException:
            self.stop()
            raise
        info = self.info()
        for name, text in (
            (EMBEDDED_SERVER_INFO, json.dumps(info.__dict__, indent=2)),
            (KUBECONFIG, kubeconfig(info)),
        ):
            (self.state_dir / name).write_text(text)
            os.chmod(self.state_dir / name, 0o600)
        return self

    def info(self) -> StackInfo:
        """Where the running stack listens, with its credentials."""
        if self.server is None or self.s3 is None:
            raise RuntimeError("the stack is not running")
        creds = _credentials(self.state_dir)
        return StackInfo(
            argo_server_url=self.server.url,
            token=creds["token"] if self.require_token else "",
            namespace=self.namespace,
            s3_endpoint_url=self.s3.endpoint_url,
            s3_access_key_id=creds["access_key"],
            s3_secret_access_key=creds["secret_key"],
            bucket=self.bucket,
            state_dir=str(self.state_dir),
        )

    def stop(self) -> None:
        """Stop the server, the engine (running pods are reported lost next time) and SeaweedFS."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.engine is not None:
            self.engine.stop()
            self.engine = None
        if self.s3 is not None:
            self.s3.stop()
            self.s3 = None

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
