"""Bubblewrap sandboxes: the "pods" of the embedded engine, one process tree per Argo container.

The engine hands over a fully resolved `ContainerSpec`; `start` runs it under ``bwrap`` the way a
container runtime would and `RunningContainer.wait` reports a `ContainerResult` shaped like a
Kubernetes ``ContainerStateTerminated`` (exit code, reason, termination message, times):
https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#ContainerStateTerminated

The sandbox (https://github.com/containers/bubblewrap) is a ``--tmpfs /`` root with the host's
top-level system directories bound read-only, fresh ``/dev``, ``/proc`` and ``/tmp``, the container's
mounts, new PID/IPC/UTS namespaces (and a network namespace with only ``lo``, unless the spec
asks for the host's network) and Docker's default capabilities; the root is remounted read-only
after the mount points are made, so a write outside ``/tmp`` and the mounts fails.

Memory limits end an over-limit container with exit code 137 and reason ``OOMKilled`` as Kubernetes
does. `memory_enforcement` picks, once per process, a cgroup v2 or v1 child of our own cgroup (the
kernel's OOM killer, then the whole container is killed like ``memory.oom.group``) or, when neither
is writable, a watchdog that sums the RSS of the sandbox's processes every 50 ms.

An `ImageMap` says what runs for an image: by default the host's own programs, plus built-in
stand-ins for ``argoproj/argosay`` (Argo's test image,
https://github.com/argoproj/argo-workflows/tree/main/test/e2e/images/argosay/v2) and ``busybox``.

One module per concern, each importing only those before it: `model` (specs, results, errors),
`processes` (the /proc table), `bwrap` (the command line), `images` (the image map, with the
standalone `argosay` program it ships), `memory` (limits) and `containers` (start, watch, reap).
This package re-exports what the rest of galaxy-argo uses; import from here, not the modules.
"""

from __future__ import annotations

from galaxy_argo.local.sandbox.bwrap import DEFAULT_PATH
from galaxy_argo.local.sandbox.containers import RunningContainer, start
from galaxy_argo.local.sandbox.images import ImageMap
from galaxy_argo.local.sandbox.memory import MEMORY_ENFORCEMENT_ENV, MemoryEnforcement, memory_enforcement
from galaxy_argo.local.sandbox.model import (
    ContainerResult,
    ContainerSpec,
    ImageEntry,
    ImageMapError,
    Mount,
    SandboxError,
    TerminatedReason,
)

__all__ = [
    "DEFAULT_PATH",
    "MEMORY_ENFORCEMENT_ENV",
    "ContainerResult",
    "ContainerSpec",
    "ImageEntry",
    "ImageMap",
    "ImageMapError",
    "MemoryEnforcement",
    "Mount",
    "RunningContainer",
    "SandboxError",
    "TerminatedReason",
    "memory_enforcement",
    "start",
]
