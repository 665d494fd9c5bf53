"""Memory limits of sandboxes: a child cgroup (v2 or v1) of our own, else an RSS watchdog.

Kubernetes ends a container over its memory limit with exit code 137 and reason ``OOMKilled``;
sandboxes must do the same, on hosts where we may or may not own a writable cgroup. So
`memory_enforcement` decides once per process, and logs why: a cgroup v2 or v1 child of our own
cgroup when one can be made and limited (the kernel's OOM killer enforces the limit exactly, and
the whole container is then killed like ``memory.oom.group``), else a watchdog that sums the RSS
of the sandbox's processes every tick (best effort). ``GALAXY_ARGO_MEMORY_ENFORCEMENT`` forces one.
We only ever create children of the cgroup we already run in, never touch the machine's root tree.
https://docs.kernel.org/admin-guide/cgroup-v2.html#memory-interface-files
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import re
import signal
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from galaxy_argo.local.sandbox.model import ContainerSpec, SandboxError
from galaxy_argo.local.sandbox.processes import descendants, memory_bytes, process_children, send_signal

log = logging.getLogger(__name__)

#: Environment variable forcing the memory mechanism: auto, cgroup-v1, cgroup-v2 or watchdog.
MEMORY_ENFORCEMENT_ENV = "GALAXY_ARGO_MEMORY_ENFORCEMENT"

_CGROUP_PREFIX = "galaxy-argo-"


class MemoryEnforcement(StrEnum):
    """How memory limits are enforced; compares equal to its string value."""

    #: A child of our cgroup v1 memory controller; the kernel OOM killer ends the container.
    CGROUP_V1 = "cgroup-v1"
    #: A child of our cgroup v2 group with the memory controller; ``memory.oom.group`` kills all.
    CGROUP_V2 = "cgroup-v2"
    #: No writable cgroup: a thread sums the RSS of the sandbox's processes and kills over the limit.
    WATCHDOG = "watchdog"


@dataclass(frozen=True)
class _CgroupProbe:
    """Where to create child cgroups of one kind, or why we cannot."""

    base: Path | None
    why_not: str = ""


def _mountinfo() -> list[tuple[str, str, str, list[str]]]:
    """(mount root, mount point, fs type, super options) of every mount."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) >= 5 and len(tail) >= 3:
            root, point = (re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f) for f in fields[3:5])
            mounts.append((root, point, tail[0], tail[2].split(",")))
    return mounts


def _own_cgroup(v2: bool) -> str | None:
    """Our cgroup path in the memory (v1) or unified (v2) hierarchy, from /proc/self/cgroup."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if v2 and hierarchy == "0" and controllers == "":
            return path
        if not v2 and hierarchy != "0" and "memory" in controllers.split(","):
            return path
    return None


def _host_cgroup_dir(v2: bool) -> Path | None:
    path = _own_cgroup(v2)
    if path is None:
        return None
    for root, point, fstype, options in _mountinfo():
        if (fstype == "cgroup2") if v2 else (fstype == "cgroup" and "memory" in options):
            if path == root or path.startswith(root.rstrip("/") + "/"):
                return Path(point) / os.path.relpath(path, root)
    return None


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


@functools.cache
def _probe_cgroup(kind: MemoryEnforcement) -> _CgroupProbe:
    """Find our cgroup for ``kind`` and prove we can make a limited child there (then remove it)."""
    v2 = kind is MemoryEnforcement.CGROUP_V2
    try:
        base = _host_cgroup_dir(v2)
        if base is None:
            return _CgroupProbe(None, "no memory controller for us in /proc/self/cgroup and mountinfo")
        if v2:
            if "memory" not in (base / "cgroup.controllers").read_text().split():
                return _CgroupProbe(None, f"{base}/cgroup.controllers lacks memory")
            if "memory" not in (base / "cgroup.subtree_control").read_text().split():
                if _own_cgroup(v2) == "/":  # the whole machine's tree: not ours to reconfigure
                    return _CgroupProbe(None, f"memory is not enabled in {base}/cgroup.subtree_control")
                _write(base / "cgroup.subtree_control", "+memory")  # our own subtree only
        probe = base / f"{_CGROUP_PREFIX}probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        try:
            _write(probe / ("memory.max" if v2 else "memory.limit_in_bytes"), str(64 * 2**20))
        finally:
            probe.rmdir()
    except OSError as err:
        return _CgroupProbe(None, str(err))
    _remove_stale_cgroups(base)
    return _CgroupProbe(base)


def _remove_stale_cgroups(base: Path) -> None:
    """Remove empty children left by a process of ours that died before cleaning up."""
    for child in base.glob(f"{_CGROUP_PREFIX}*"):
        owner = child.name.removeprefix(_CGROUP_PREFIX).removeprefix("probe-").split("-")[0]
        if owner.isdigit() and int(owner) != os.getpid() and not Path(f"/proc/{owner}").exists():
            try:
                child.rmdir()
            except OSError:
                pass


def _parse_enforcement(value: str) -> MemoryEnforcement:
    try:
        return MemoryEnforcement(value.strip().lower())
    except ValueError as err:
        valid = ", ".join(["auto", *(m.value for m in MemoryEnforcement)])
        raise SandboxError(f"unknown memory enforcement {value!r}; valid: {valid}") from err


def _usable(kind: MemoryEnforcement) -> MemoryEnforcement:
    if kind is not MemoryEnforcement.WATCHDOG:
        probe = _probe_cgroup(kind)
        if probe.base is None:
            raise SandboxError(
                f"memory enforcement {kind} was asked for but is unusable here: {probe.why_not}; "
                f"use watchdog, or unset {MEMORY_ENFORCEMENT_ENV}"
            )
    return kind


@functools.cache
def memory_enforcement() -> MemoryEnforcement:
    """The mechanism enforcing memory limits in this process, chosen once and logged.

    cgroup v2 or v1 when a child of our own cgroup can be made and limited (the kernel enforces
    the limit exactly), else the RSS watchdog. ``GALAXY_ARGO_MEMORY_ENFORCEMENT`` forces one.

    Raises:
        SandboxError: The environment variable names an unknown or unusable mechanism.
    """
    forced = os.environ.get(MEMORY_ENFORCEMENT_ENV, "").strip()
    if forced and forced.lower() != "auto":
        chosen = _usable(_parse_enforcement(forced))
        log.info("sandbox memory limits: %s (forced by %s)", chosen, MEMORY_ENFORCEMENT_ENV)
        return chosen
    reasons = []
    for kind in (MemoryEnforcement.CGROUP_V2, MemoryEnforcement.CGROUP_V1):
        probe = _probe_cgroup(kind)
        if probe.base is not None:
            log.info("sandbox memory limits: %s under %s", kind, probe.base)
            return kind
        reasons.append(f"{kind}: {probe.why_not}")
    log.info("sandbox memory limits: watchdog (no usable cgroup: %s)", "; ".join(reasons))
    return MemoryEnforcement.WATCHDOG


class Limit:
    """A container's memory limit as `RunningContainer` drives it; this base is no limit at all.

    Nothing to set up, check or clean: what a container without ``memory_limit_bytes`` gets.
    """

    #: Start the sandbox behind a gate until `attach` has placed it (cgroups only).
    gated = False

    def attach(self, pid: int) -> None:
        """Place the freshly spawned process; it has not run the sandbox yet when gated."""

    def exceeded(self, pid: int) -> bool:
        """True when the running container must be killed as OOMKilled."""
        return False

    def oom_killed(self, exit_code: int) -> bool:
        """After exit: was the container killed for memory?"""
        return False

    def pids(self) -> list[int]:
        """Every host pid known to belong to the container."""
        return []

    def close(self) -> None:
        """Release what `__init__` created."""


class _CgroupLimit(Limit):
    """A child cgroup with the limit; the kernel's OOM killer enforces it."""

    gated = True

    def __init__(self, kind: MemoryEnforcement, base: Path, limit: int) -> None:
        self.v2 = kind is MemoryEnforcement.CGROUP_V2
        self.path = base / f"{_CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            self.path.mkdir()
        except OSError as err:
            raise SandboxError(f"cannot create cgroup {self.path} for a memory limit: {err}") from err
        try:
            if self.v2:
                _write(self.path / "memory.max", str(limit))
                self._write_optional("memory.swap.max", "0")  # swap must not dodge the limit
                self._write_optional("memory.oom.group", "1")  # kill the whole container, as kubelet
            else:
                _write(self.path / "memory.limit_in_bytes", str(limit))
                self._write_optional("memory.memsw.limit_in_bytes", str(limit))
        except OSError as err:
            self.close()
            raise SandboxError(f"cannot set a {limit}-byte memory limit on {self.path}: {err}") from err

    def _write_optional(self, name: str, value: str) -> None:
        if (self.path / name).exists():
            _write(self.path / name, value)

    def attach(self, pid: int) -> None:
        try:
            _write(self.path / "cgroup.procs", str(pid))
        except OSError as err:
            raise SandboxError(f"cannot move pid {pid} into {self.path}: {err}") from err

    def _oom_kills(self) -> int | None:
        name = "memory.events" if self.v2 else "memory.oom_control"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            return None
        return None

    def exceeded(self, pid: int) -> bool:
        return bool(self._oom_kills())  # the kernel killed one process: the container ends

    def oom_killed(self, exit_code: int) -> bool:
        kills = self._oom_kills()
        if kills is not None:
            return kills > 0
        try:  # kernels before 4.13 have no oom_kill counter: a SIGKILL after hitting the limit
            return exit_code == 137 and int((self.path / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError):
            return False

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def close(self) -> None:
        if self.v2 and (self.path / "cgroup.kill").exists():
            try:
                _write(self.path / "cgroup.kill", "1")
            except OSError:
                pass
        deadline = time.monotonic() + 5.0
        while True:
            for pid in self.pids():
                send_signal(pid, signal.SIGKILL)
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as err:
                if err.errno != errno.EBUSY or time.monotonic() > deadline:
                    log.warning("cannot remove cgroup %s (%s); remove it by hand once empty", self.path, err)
                    return
            time.sleep(0.01)


class _WatchdogLimit(Limit):
    """Sums the RSS of the sandbox's process tree; over the limit, the container is killed.

    Best effort: a process that allocates and exits between two checks (50 ms) escapes, and
    memory shared between processes is counted once per process.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def exceeded(self, pid: int) -> bool:
        total = 0
        for member, _ in descendants(pid, process_children()):
            rss, peak = memory_bytes(member)
            total += rss
            if peak > self.limit or total > self.limit:
                return True
        return False


def limit_for(spec: ContainerSpec, enforcement: MemoryEnforcement | str | None) -> Limit:
    """The limit for ``spec``, set up (a cgroup made) but not attached to any process yet.

    Raises:
        SandboxError: The limit is not positive, or the forced mechanism is unknown or unusable.
    """
    if spec.memory_limit_bytes is None:
        return Limit()
    if spec.memory_limit_bytes <= 0:
        raise SandboxError(f"memory limit {spec.memory_limit_bytes} must be a positive number of bytes")
    if enforcement is None:
        kind = memory_enforcement()
    else:
        kind = _usable(_parse_enforcement(str(enforcement)))
    if kind is MemoryEnforcement.WATCHDOG:
        return _WatchdogLimit(spec.memory_limit_bytes)
    base = _probe_cgroup(kind).base
    if base is None:  # _usable or memory_enforcement checked; keeps the type checker honest
        raise SandboxError(f"memory enforcement {kind} is unusable here")
    return _CgroupLimit(kind, base, spec.memory_limit_bytes)
