"""``galaxy-argo dev up``: the embedded stack plus a real Galaxy whose tools run on Argo.

One `DevEnvironment` is what ``dev up``, ``make demo`` and the Galaxy test suite start: SeaweedFS
and the embedded Argo-compatible engine on loopback, then Galaxy (SQLite, its own data directory)
with a job config whose default environment is the Argo runner. Uploads stay on Galaxy's local
runner (they need Galaxy's own Python). The metadata image is mapped to this Python environment,
which has Galaxy's packages, so ``metadata: remote`` really runs ``set_metadata`` in the pod.

This module starts Galaxy as a subprocess and never imports Galaxy itself.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from galaxy_argo.clients.connections import resolve_embedded, s3_client
from galaxy_argo.clients.staging import Stager
from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.dev.counting_proxy import CountingProxy
from galaxy_argo.dev.galaxy_api import GalaxyAPI
from galaxy_argo.dev.galaxy_server import DEMO_TOOLS, GalaxyServer, tool_files
from galaxy_argo.local.sandbox import ImageEntry, ImageMap, Mount
from galaxy_argo.local.stack import EmbeddedStack, StackInfo

__all__ = [
    "DEMO_REFERENCE",
    "DEMO_REFERENCE_PREFIX",
    "DEMO_REFERENCE_ROOT",
    "DEMO_TOOLS",
    "STACK_S3_SECRET",
    "DevEnvironment",
    "demo_data_tables_xml",
    "direct_params",
    "dev_job_config",
    "metadata_image_map",
    "tool_ids",
]

#: Tools that run on Galaxy's local runner: they need Galaxy's Python (uploads).
LOCAL_TOOLS = ("__DATA_FETCH__", "upload1", "__SET_METADATA__")
#: Demo genomes, pushed to the bucket at start; the Galaxy host reads them only from there.
DEMO_REFERENCE = Path(__file__).resolve().parent / "demo_reference"
#: Directory the demo ``.loc`` file names; it does not exist on the Galaxy host.
DEMO_REFERENCE_ROOT = "/galaxy-argo-demo/reference"
#: Where the demo genomes live in the bucket.
DEMO_REFERENCE_PREFIX = f"{ArgoSettings().key_prefix}/reference/demo"


#: Bucket of Galaxy's own object store in ``--object-store s3`` (the runner's bucket is another).
GALAXY_STORE_BUCKET = "galaxy-store"


#: The stack's Secret with its S3 keys (``accesskey``, ``secretkey``), as the artifact repository uses.
STACK_S3_SECRET = "galaxy-argo-s3"


class ObjectStoreKind(StrEnum):
    """Where the dev Galaxy keeps its datasets."""

    #: Galaxy's default disk store under its data directory.
    DISK = "disk"
    #: Galaxy's ``boto3`` object store (``store_by: uuid``) in its own bucket on the stack's SeaweedFS,
    #: as production Galaxy servers keep datasets in S3.
    S3 = "s3"
    #: Galaxy's ``distributed`` store: that S3 store as backend ``s3``, where new datasets go, and
    #: a disk backend ``disk`` a history can choose (``preferred_object_store_id``).
    MIXED = "mixed"


def galaxy_mixed_object_store(config: dict[str, Any], files_dir: Path) -> dict[str, Any]:
    """`galaxy_s3_object_store`'s ``config`` as backend ``s3`` of a distributed store, beside ``disk``.

    The disk backend has weight 0: Galaxy never picks it at random, only for a history that
    prefers it, so which store a dataset lands in is up to the caller.
    """
    s3 = config["object_store_config"]
    backends = [
        {"id": "s3", "name": "S3", "weight": 1, "allow_selection": True, **s3},
        {
            "id": "disk",
            "name": "Disk",
            "type": "disk",
            "weight": 0,
            "allow_selection": True,
            "store_by": "uuid",
            "files_dir": str(files_dir),
        },
    ]
    return {**config, "object_store_config": {"type": "distributed", "backends": backends}}


def galaxy_s3_object_store(
    info: StackInfo, cache_dir: Path, endpoint: str = "", cache_gb: float = 1
) -> tuple[dict[str, Any], dict[str, str]]:
    """``galaxy.yml`` keys for a ``boto3`` object store on the stack's S3, and the Galaxy process's env.

    The keys reach Galaxy through the environment (``auth: {}`` leaves boto3 its credential chain),
    not the config: with ``metadata_strategy: extended`` Galaxy serializes its object store config
    into each job's ``metadata/object_store_conf.json``, so keys written in the config would travel
    with the job directory. ``endpoint``: the URL Galaxy reaches the store at (empty: the stack's
    S3), e.g. a `CountingProxy` in front of it; ``cache_gb``: the size of Galaxy's cache, in GB
    (Galaxy refuses to pull a dataset larger than 90% of it; 0 or less: unbounded).
    """
    config = {
        "object_store_store_by": "uuid",
        "object_store_config": {
            "type": "boto3",
            "store_by": "uuid",
            "auth": {},
            "bucket": {"name": GALAXY_STORE_BUCKET},
            "connection": {"endpoint_url": endpoint or info.s3_endpoint_url, "region": "us-east-1"},
            "cache": {"path": str(cache_dir), "size": cache_gb, "cache_updated_data": True},
        },
    }
    env = {"AWS_ACCESS_KEY_ID": info.s3_access_key_id, "AWS_SECRET_ACCESS_KEY": info.s3_secret_access_key}
    return config, env


def demo_data_tables_xml() -> str:
    """``tool_data_table_conf.xml`` with the demo tools' data table (``argo_demo_fasta``)."""
    loc = DEMO_TOOLS / "tool-data" / "argo_demo_fasta.loc"
    return (
        "<tables>\n"
        '  <table name="argo_demo_fasta" comment_char="#">\n'
        "    <columns>value, name, path</columns>\n"
        f"    <file path={quoteattr(str(loc))} />\n"
        "  </table>\n"
        "</tables>\n"
    )


def direct_params() -> dict[str, Any]:
    """Destination params for ``object_store: direct`` on the stack: Galaxy's store is on its S3.

    The pods' keys come from the stack's Secret; pods share the host's network, so they reach the
    store at Galaxy's own endpoint (`ArgoSettings.object_store_endpoint` stays empty).
    """
    return {"object_store": "direct", "metadata_strategy": "extended", "object_store_secret": STACK_S3_SECRET}


def dev_job_config(
    state_dir: Path,
    tool_ids: list[str] | None = None,
    extra_params: dict[str, Any] | None = None,
    extra_environments: dict[str, dict[str, Any]] | None = None,
    tool_environments: dict[str, str] | None = None,
    object_store_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Galaxy job config: every tool on ``argo_env`` except uploads; OOM resubmits to more memory.

    Environments: ``argo_env`` (default, remote metadata), ``argo_local_metadata``, ``argo_small``
    (256 MiB, resubmitted to ``argo_big`` after an OOM), ``argo_big`` (2 GiB) and ``argo_staged``
    (always staged). ``object_store_params`` (`direct_params`) apply to all but the last two and
    ``argo_local_metadata``.
    """
    common: dict[str, Any] = {
        "runner": "argo",
        "docker_enabled": True,
        "docker_default_container_id": "debian:bookworm-slim",
        "outputs_to_working_directory": True,
        "metadata_strategy": "directory",
        "embedded_state_dir": str(state_dir),
        "cores": 1,
        "memory": "1Gi",
        "retry_limit": 1,
        # As TPV or an XML job config would give it: a string.
        "reference_data": f"{DEMO_REFERENCE_ROOT}={DEMO_REFERENCE_PREFIX}",
        **(extra_params or {}),
    }
    staged = dict(common)
    common = {**common, **(object_store_params or {})}
    environments: dict[str, dict[str, Any]] = {
        "local_env": {"runner": "local"},
        "argo_env": dict(common),
        "argo_staged": staged,
        "argo_local_metadata": {**staged, "metadata": "local"},
        "argo_small": {
            **common,
            "memory": "256Mi",
            "resubmit": [{"condition": "memory_limit_reached", "environment": "argo_big"}],
        },
        "argo_big": {**common, "memory": "2Gi"},
    }
    for name, params in (extra_environments or {}).items():
        environments[name] = {**common, **params}
    routed = dict(tool_environments or {})
    tools = [{"id": tool_id, "environment": "local_env"} for tool_id in LOCAL_TOOLS]
    tools.append({"id": "argo_memory", "environment": "argo_small"})
    tools.append({"id": "cat1", "environment": "argo_local_metadata"})
    tools += [{"id": tool_id, "environment": routed.pop(tool_id, "argo_env")} for tool_id in tool_ids or []]
    tools += [{"id": tool_id, "environment": environment} for tool_id, environment in routed.items()]
    return {
        "runners": {
            "local": {"load": "galaxy.jobs.runners.local:LocalJobRunner", "workers": 2},
            "argo": {"load": "galaxy_argo.galaxy.runner:ArgoJobRunner", "workers": 4, "poll_interval": 0.5},
        },
        "execution": {"default": "argo_env", "environments": environments},
        "tools": tools,
    }


def metadata_image_map() -> ImageMap:
    """Map the metadata image to this Python environment (it has Galaxy's packages).

    The virtualenv and the interpreter it was made from are bound read-only into the sandbox.
    """
    image = ArgoSettings().metadata_image
    prefix = str(Path(sys.prefix).resolve())
    mounts = [Mount(Path(prefix), prefix, read_only=True)]
    base = str(Path(sys.base_prefix).resolve())
    if base != prefix:
        mounts.append(Mount(Path(base), base, read_only=True))
    entry = ImageEntry(path_prepend=[f"{prefix}/bin"], extra_mounts=mounts, env={"VIRTUAL_ENV": prefix})
    return ImageMap({image: entry, image.rsplit(":", 1)[0] + ":*": entry})


@dataclass
class DevEnvironment:
    """Embedded stack + Galaxy; `start` / `stop` or ``with``."""

    work_dir: Path
    tool_dirs: list[Path] = field(default_factory=lambda: [DEMO_TOOLS])
    port: int = 0
    max_pods: int = 4
    extra_params: dict[str, Any] = field(default_factory=dict)
    #: More environments (name -> params over the common Argo ones) and tool id -> environment.
    extra_environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    tool_environments: dict[str, str] = field(default_factory=dict)
    #: Where Galaxy keeps its datasets (``dev up --object-store``).
    object_store: ObjectStoreKind = ObjectStoreKind.DISK
    #: Extra S3 identities of the stack, each a Secret pods can name (`EmbeddedStack.s3_identities`).
    s3_identities: dict[str, list[str]] = field(default_factory=dict)
    #: Count what the Galaxy host moves over S3: its object store and the runner's artifact
    #: transfers (``s3_endpoint_url``) go through a `CountingProxy` (`host_s3`), while the pods and
    #: the engine reach S3 directly (``object_store_endpoint``). Set ``extra_params`` win.
    host_s3_proxy: bool = False
    #: Size of Galaxy's object store cache in GB with ``object_store=S3`` (0 or less: unbounded).
    object_store_cache_gb: float = 1
    stack: EmbeddedStack | None = field(default=None, init=False)
    #: With ``host_s3_proxy``: the proxy between the Galaxy host and S3, its counters.
    host_s3: CountingProxy | None = field(default=None, init=False)
    galaxy: GalaxyServer | None = field(default=None, init=False)
    api: GalaxyAPI | None = field(default=None, init=False)
    api_key: str = field(default="", init=False)

    @property
    def state_dir(self) -> Path:
        """The embedded stack's state directory."""
        return self.work_dir / "stack"

    def start(self) -> DevEnvironment:
        """Start the stack, then Galaxy, then make a user with an API key."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.stack = EmbeddedStack(
                self.state_dir,
                max_pods=self.max_pods,
                image_map=metadata_image_map(),
                s3_identities=self.s3_identities,
            ).start()
            self._push_demo_reference()
            ids = tool_ids(self.tool_dirs)
            extra_config: dict[str, Any] = {}
            env: dict[str, str] = {}
            object_store_params: dict[str, Any] = {}
            extra_params = dict(self.extra_params)
            galaxy_s3_endpoint = ""
            if self.host_s3_proxy:
                galaxy_s3_endpoint = self._start_host_s3_proxy()
                direct = self.stack.info().s3_endpoint_url
                extra_params = {
                    "s3_endpoint_url": galaxy_s3_endpoint,
                    "object_store_endpoint": direct,
                    **extra_params,
                }
            if self.object_store in (ObjectStoreKind.S3, ObjectStoreKind.MIXED):
                if self.stack.s3 is None:
                    raise GalaxyArgoError("the embedded stack started without its S3 server")
                self.stack.s3.ensure_bucket(GALAXY_STORE_BUCKET)  # there already after a restart
                cache = self.work_dir / "galaxy" / "object_store_cache"
                extra_config, env = galaxy_s3_object_store(
                    self.stack.info(), cache, galaxy_s3_endpoint, self.object_store_cache_gb
                )
                object_store_params = direct_params()
                if self.object_store is ObjectStoreKind.MIXED:
                    extra_config = galaxy_mixed_object_store(
                        extra_config, self.work_dir / "galaxy" / "disk_store"
                    )
            self.galaxy = GalaxyServer(
                work_dir=self.work_dir / "galaxy",
                job_config=dev_job_config(
                    self.state_dir,
                    ids,
                    extra_params,
                    self.extra_environments,
                    self.tool_environments,
                    object_store_params,
                ),
                tool_dirs=list(self.tool_dirs),
                port=self.port,
                data_tables_xml=demo_data_tables_xml(),
                extra_config=extra_config,
                env=env,
            ).start()
            _, self.api_key = self.galaxy.create_user()
            self.api = GalaxyAPI(self.galaxy.url, self.api_key)
        except BaseException:
            self.stop()
            raise
        return self

    def running(self) -> tuple[EmbeddedStack, GalaxyServer, GalaxyAPI]:
        """The started stack, Galaxy and API client.

        Raises:
            GalaxyArgoError: `start` has not run, or `stop` has.
        """
        if self.stack is None or self.galaxy is None or self.api is None:
            raise GalaxyArgoError("the dev environment is not running: start() it first")
        return self.stack, self.galaxy, self.api

    def _start_host_s3_proxy(self) -> str:
        """Start `host_s3` in front of the stack's S3; its endpoint URL."""
        if self.stack is None:
            raise GalaxyArgoError("the embedded stack is not running: start() the dev environment")
        direct = urlsplit(self.stack.info().s3_endpoint_url)
        if direct.hostname is None or direct.port is None:
            raise GalaxyArgoError(f"the stack's S3 endpoint {direct.geturl()} names no host and port")
        self.host_s3 = CountingProxy((direct.hostname, direct.port)).start()
        return self.host_s3.url

    def _stack_settings(self) -> ArgoSettings:
        """The default destination on this stack: its endpoints, keys and bucket."""
        return resolve_embedded(ArgoSettings(embedded_state_dir=str(self.state_dir)))

    def _push_demo_reference(self) -> None:
        """Put the demo genomes in the bucket, as an admin would with ``galaxy-argo reference push``."""
        settings = self._stack_settings()
        Stager(s3_client(settings), settings.bucket, settings.key_prefix).push_directory(
            DEMO_REFERENCE, DEMO_REFERENCE_PREFIX
        )

    def stop(self) -> None:
        """Stop Galaxy, then the stack; idempotent."""
        if self.galaxy is not None:
            self.galaxy.stop()
        if self.stack is not None:
            self.stack.stop()
            self.stack = None
        if self.host_s3 is not None:
            self.host_s3.stop()
            self.host_s3 = None

    def __enter__(self) -> DevEnvironment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tool_ids(tool_dirs: list[Path]) -> list[str]:
    """Ids of the tools (``<tool id=...>`` XML files) directly in ``tool_dirs``."""
    return [tool_id for tool_id in tool_files(tool_dirs).values() if tool_id]
