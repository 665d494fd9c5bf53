"""What a sandbox is given and what it reports: container spec, result, image entry, mount, errors.

The engine resolves a container completely before it reaches the sandbox, so these frozen
dataclasses carry no ``{{...}}`` and no Kubernetes objects; the result mirrors Kubernetes'
``ContainerStateTerminated`` so the engine can copy it into a pod's status unchanged:
https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#ContainerStateTerminated
They live apart from the modules that use them (image map, memory limits, bwrap command line,
running containers) so that each of those imports only the vocabulary, not each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from galaxy_argo.core.errors import GalaxyArgoError


class SandboxError(GalaxyArgoError):
    """A container cannot be started: bwrap missing, a bad spec, an unusable cgroup or image tool."""


class ImageMapError(SandboxError, ValueError):
    """An image map document is malformed; the message names the pattern, the key and the form."""


class TerminatedReason(StrEnum):
    """Kubernetes ``ContainerStateTerminated.reason`` values a sandbox reports."""

    #: Exit code 0.
    COMPLETED = "Completed"
    #: Any other exit code, including a kill by the engine (137 for SIGKILL).
    ERROR = "Error"
    #: The memory limit was exceeded; exit code 137.
    OOM_KILLED = "OOMKilled"
    #: The sandbox could not run the command (not found, bad working directory); exit code 128.
    START_ERROR = "StartError"


@dataclass(frozen=True)
class Mount:
    """A host file or directory bound into the sandbox."""

    #: Host path (file or directory); it must exist.
    source: Path
    #: Absolute path inside the sandbox; missing parents are created on the sandbox's root.
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """One container, resolved by the engine: nothing here contains ``{{...}}`` any more."""

    #: Command and args. With ``use_entrypoint`` (or when empty) these are the args of the image's
    #: entrypoint, as Kubernetes runs ``args`` without ``command``.
    argv: list[str]
    env: dict[str, str]
    #: Inside the sandbox; None means "/". Created when missing, as container runtimes do.
    working_dir: str | None
    mounts: list[Mount]
    #: None means unlimited.
    memory_limit_bytes: int | None
    #: Host file receiving stdout (truncated at start).
    stdout_path: Path
    #: Host file receiving stderr; may equal ``stdout_path`` for one combined log.
    stderr_path: Path
    #: Container image reference, resolved through the `ImageMap`.
    image: str = ""
    #: Host file bound writable at /dev/termination-log, like Kubernetes' terminationMessagePath.
    termination_log: Path | None = None
    #: Keep the host's network namespace. Off by default, so a bare sandbox reaches nothing; the
    #: engine's pods ask for it, as Kubernetes' ``hostNetwork: true`` pods share the node's.
    network: bool = False
    #: The template gave ``args`` but no ``command``: prepend the image entrypoint to ``argv``.
    use_entrypoint: bool = False


@dataclass(frozen=True)
class ContainerResult:
    """How a container ended, as Kubernetes reports a terminated container."""

    exit_code: int
    #: A `TerminatedReason` value: "Completed", "Error", "OOMKilled" or "StartError".
    reason: str
    #: The termination log (stripped, at most 4 KiB), or bwrap's error for a StartError; else "".
    message: str
    #: UTC.
    started_at: datetime
    #: UTC.
    finished_at: datetime


@dataclass(frozen=True)
class ImageEntry:
    """What an image stands for on this host."""

    #: Used when the container gives no command (``argv == []`` or ``use_entrypoint``).
    entrypoint: list[str] = field(default_factory=list)
    #: Directories (inside the sandbox) put before the default PATH.
    path_prepend: list[str] = field(default_factory=list)
    #: Bound before the container's own mounts (which win on the same target).
    extra_mounts: list[Mount] = field(default_factory=list)
    #: Image environment; the container's env overrides it.
    env: dict[str, str] = field(default_factory=dict)
