"""Bubblewrap sandboxes: the "pods" of the embedded engine, one process tree per Argo container.

The engine hands over a fully resolved `ContainerSpec`; `start` runs it under ``bwrap`` the way a
container runtime would and `RunningContainer.wait` reports a `ContainerResult` shaped like a
Kubernetes ``ContainerStateTerminated`` (exit code, reason, termination message, times):
https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#ContainerStateTerminated

The sandbox (https://github.com/containers/bubblewrap) is a ``--tmpfs /`` root with the host's
top-level system directories bound read-only, fresh ``/dev``, ``/proc`` and ``/tmp``, the container's
mounts, new PID/IPC/UTS/network namespaces and Docker's default capabilities; the root is remounted
read-only after the mount points are made, so a write outside ``/tmp`` and the mounts fails.

Memory limits end an over-limit container with exit code 137 and reason ``OOMKilled`` as Kubernetes
does. `memory_enforcement` picks, once per process, a cgroup v2 or v1 child of our own cgroup (the
kernel's OOM killer, then the whole container is killed like ``memory.oom.group``) or, when neither
is writable, a watchdog that sums the RSS of the sandbox's processes every 50 ms.

An `ImageMap` says what runs for an image: by default the host's own programs, plus built-in
stand-ins for ``argoproj/argosay`` (Argo's test image,
https://github.com/argoproj/argo-workflows/tree/main/test/e2e/images/argosay/v2) and ``busybox``.
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import hashlib
import logging
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import yaml

from galaxy_argo.core.errors import GalaxyArgoError

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

log = logging.getLogger(__name__)

#: PATH inside a sandbox unless the container's env (or its image) sets one; Docker's default.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Environment variable forcing the memory mechanism: auto, cgroup-v1, cgroup-v2 or watchdog.
MEMORY_ENFORCEMENT_ENV = "GALAXY_ARGO_MEMORY_ENFORCEMENT"

# Host directories bound read-only; /root, /home, /work, /tmp, /var, /proc, /sys, /dev stay out.
_HOST_DIRS = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin", "/etc", "/opt")
# Docker's (and containerd's) default capability set: what a Kubernetes container gets as root.
_CAPS = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
)
_TERMINATION_LOG = "/dev/termination-log"
_MESSAGE_LIMIT = 4096  # Kubernetes keeps at most 4 KiB of a termination message
_TICK = 0.05  # seconds between limit checks of a running container
_TOOLS_TARGET = "/.galaxy-argo"  # where built-in image tools are bound inside a sandbox
_CGROUP_PREFIX = "galaxy-argo-"


class SandboxError(GalaxyArgoError):
    """A container cannot be started: bwrap missing, a bad spec, an unusable cgroup or image tool."""


class ImageMapError(SandboxError, ValueError):
    """An image map document is malformed; the message names the pattern, the key and the form."""


class MemoryEnforcement(StrEnum):
    """How memory limits are enforced; compares equal to its string value."""

    #: A child of our cgroup v1 memory controller; the kernel OOM killer ends the container.
    CGROUP_V1 = "cgroup-v1"
    #: A child of our cgroup v2 group with the memory controller; ``memory.oom.group`` kills all.
    CGROUP_V2 = "cgroup-v2"
    #: No writable cgroup: a thread sums the RSS of the sandbox's processes and kills over the limit.
    WATCHDOG = "watchdog"


class TerminatedReason(StrEnum):
    """Kubernetes ``ContainerStateTerminated.reason`` values this module reports."""

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
    #: Keep the host's network. Pods never need it (the engine moves artifacts), so off by default.
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


# ---------------------------------------------------------------------------------------------
# Image map


_ARGOSAY = r'''#!/usr/bin/env python3
"""argosay v2 (Argo Workflows' test image) for galaxy-argo sandboxes; generated, do not edit."""
import os
import re
import sys
import time

USAGE = ("usage: argosay [assert_contains file string|assert_equals file string|cat [file...]"
         "|echo [string] [file]|sleep duration|exit [code]]")
UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0,
         "m": 60.0, "h": 3600.0}
PART = re.compile("([0-9]*(?:[.][0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


class Fail(Exception):
    pass


def duration(text):
    """Seconds in a Go duration such as 1s, 500ms, 1h2m, 1.5s (time.ParseDuration)."""
    rest = text[1:] if text[:1] in ("+", "-") else text
    sign = -1.0 if text.startswith("-") else 1.0
    if rest == "0":
        return 0.0
    if not rest:
        raise Fail('time: invalid duration "%s"' % text)
    total, pos = 0.0, 0
    while pos < len(rest):
        match = PART.match(rest, pos)
        if match is None or match.group(1) in ("", "."):
            raise Fail('time: invalid duration "%s"' % text)
        total += float(match.group(1)) * UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise Fail("open %s: %s" % (path, (err.strerror or str(err)).lower()))


def echo(args):
    if len(args) == 0:
        print("hello argo", flush=True)
    elif len(args) == 1:
        print(args[0], flush=True)
    elif len(args) == 2:
        parent = os.path.dirname(args[1])
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(args[1], "w") as handle:
            handle.write(args[0])
    else:
        raise Fail("usage: argosay echo [string] [file]")
    return 0


def cat(args):
    for path in args:
        sys.stdout.buffer.write(read(path))
    sys.stdout.flush()
    return 0


def exit_(args):
    if len(args) != 1:
        return 0
    try:
        return int(args[0])
    except ValueError:
        raise Fail('strconv.Atoi: parsing "%s": invalid syntax' % args[0])


def sleep(args):
    if len(args) != 1:
        raise Fail("usage: argosay sleep duration")
    time.sleep(max(duration(args[0]), 0.0))
    return 0


def assert_contains(args):
    if len(args) != 2:
        raise Fail("usage: assert_contains data string")
    data = read(args[0]).decode("utf-8", "replace")
    if args[1] not in data:
        raise Fail('expected "%s" to contain "%s", but was "%s"' % (args[0], args[1], data))
    return 0


def assert_equals(args):
    if len(args) != 2:
        raise Fail("usage: assert_equals data string")
    data = read(args[0]).decode("utf-8", "replace")
    if data != args[1] and not (data.endswith("\n") and data[:-1] == args[1]):
        raise Fail('expected "%s" to equal "%s", but was "%s"' % (args[0], args[1], data))
    return 0


COMMANDS = {"assert_contains": assert_contains, "assert_equals": assert_equals, "cat": cat,
            "echo": echo, "exit": exit_, "sleep": sleep}


def main(argv):
    args = argv or ["echo"]
    command = COMMANDS.get(args[0])
    try:
        if command is None:
            raise Fail(USAGE)
        return command(args[1:])
    except (Fail, OSError) as err:
        sys.stderr.write("panic: %s\n" % err)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''

# Built-in images: pattern -> kind. User entries are matched first and can override them.
_BUILTIN_PATTERNS = {
    "argoproj/argosay": "argosay",
    "argoproj/argosay:*": "argosay",
    "argoproj/argosay@*": "argosay",
    "busybox": "busybox",
    "busybox:*": "busybox",
    "busybox@*": "busybox",
    "python": "python",
    "python:*": "python",
    "python@*": "python",
}
_REGISTRY_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")
_ENTRY_KEYS = ("entrypoint", "path_prepend", "extra_mounts", "env")
_MOUNT_KEYS = ("source", "target", "read_only")


def _image_names(image: str) -> list[str]:
    """The reference as given and without Docker Hub's implicit registry and ``library/``."""
    names = [image]
    short = image
    for prefix in _REGISTRY_PREFIXES:
        if short.startswith(prefix):
            short = short[len(prefix) :]
    if short.startswith("library/"):
        short = short[len("library/") :]
    if short != image:
        names.append(short)
    return names


class ImageMap:
    """Maps an image reference to how it runs here; unmatched images run the host's programs.

    Patterns are `fnmatch` globs tried in order against the reference (and the reference without
    ``docker.io/`` and ``library/``); the admin's entries come before the built-in ones for
    ``argoproj/argosay:*``, ``busybox:*`` and ``python:*``. An admin can, say, map a Galaxy tool
    image to a host virtualenv::

        "quay.io/galaxy/*":
          path_prepend: [/opt/galaxy/venv/bin]
          extra_mounts: [{source: /opt/galaxy/venv, target: /opt/galaxy/venv, read_only: true}]
          env: {GALAXY_VIRTUAL_ENV: /opt/galaxy/venv}
    """

    def __init__(
        self,
        entries: Mapping[str, ImageEntry] | None = None,
        *,
        builtins: bool = True,
        tools_dir: Path | None = None,
    ) -> None:
        """Keep the entries in order; built-in tools are written to ``tools_dir`` on first use.

        Args:
            entries: Pattern -> entry, tried in order before the built-ins.
            builtins: Add the ``argosay`` and ``busybox`` stand-ins.
            tools_dir: Host directory for generated tools (default: a per-user dir in the temp dir).
        """
        self.entries: dict[str, ImageEntry] = dict(entries or {})
        self.builtins = builtins
        self.tools_dir = tools_dir
        self._lock = threading.Lock()
        self._built: dict[str, ImageEntry] = {}

    @classmethod
    def from_mapping(cls, data: Any, **kwargs: Any) -> ImageMap:
        """Build from a parsed document ``{pattern: {entrypoint, path_prepend, extra_mounts, env}}``.

        Raises:
            ImageMapError: A pattern or key is malformed; the message names it and the form expected.
        """
        if not isinstance(data, Mapping):
            raise ImageMapError(f"image map: expected a mapping of image pattern -> entry, got {data!r}")
        entries = {str(pattern): _entry_from(str(pattern), value) for pattern, value in data.items()}
        return cls(entries, **kwargs)

    @classmethod
    def load(cls, path: Path, **kwargs: Any) -> ImageMap:
        """Read a YAML (or JSON) image map file; see `from_mapping` for the form.

        Raises:
            ImageMapError: The file cannot be read or parsed, or is malformed.
        """
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ImageMapError(f"image map {path}: cannot read it ({err}); fix it or its path") from err
        try:
            return cls.from_mapping(data, **kwargs)
        except ImageMapError as err:
            raise ImageMapError(f"image map {path}: {err}") from err

    def resolve(self, image: str) -> ImageEntry:
        """The entry for ``image``: the first matching pattern, else the host as is.

        Raises:
            SandboxError: A built-in image's tool cannot be provided (e.g. busybox is not installed).
        """
        names = _image_names(image)
        for pattern, entry in self.entries.items():
            if any(fnmatch.fnmatchcase(name, pattern) for name in names):
                return entry
        if self.builtins:
            for pattern, kind in _BUILTIN_PATTERNS.items():
                if any(fnmatch.fnmatchcase(name, pattern) for name in names):
                    return self._builtin(kind, image)
        return ImageEntry()

    def _builtin(self, kind: str, image: str) -> ImageEntry:
        with self._lock:
            if kind not in self._built:
                root = self.tools_dir or _default_tools_dir()
                builders = {"argosay": _argosay_entry, "python": _python_entry}
                self._built[kind] = builders[kind](root) if kind in builders else _busybox_entry(root, image)
            return self._built[kind]


def _entry_from(pattern: str, value: Any) -> ImageEntry:
    where = f"image map entry {pattern!r}"
    if value is None:
        return ImageEntry()
    if not isinstance(value, Mapping):
        raise ImageMapError(f"{where}: expected a mapping with keys {', '.join(_ENTRY_KEYS)}, got {value!r}")
    unknown = sorted(set(map(str, value)) - set(_ENTRY_KEYS))
    if unknown:
        valid = ", ".join(_ENTRY_KEYS)
        raise ImageMapError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {valid}")
    entrypoint = _str_list(value.get("entrypoint"), f"{where}: entrypoint")
    path_prepend = _str_list(value.get("path_prepend"), f"{where}: path_prepend")
    for directory in path_prepend:
        if not directory.startswith("/"):
            raise ImageMapError(f"{where}: path_prepend entry {directory!r} must be an absolute sandbox path")
    env = value.get("env") or {}
    if not isinstance(env, Mapping) or any(isinstance(v, Mapping | list) for v in env.values()):
        raise ImageMapError(f"{where}: env must map names to scalar values, got {env!r}")
    mounts = value.get("extra_mounts") or []
    if not isinstance(mounts, list):
        raise ImageMapError(f"{where}: extra_mounts must be a list of {{source, target, read_only}}")
    return ImageEntry(
        entrypoint=entrypoint,
        path_prepend=path_prepend,
        extra_mounts=[_mount_from(where, m) for m in mounts],
        env={str(k): str(v) for k, v in env.items()},
    )


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ImageMapError(f"{where}: expected a list of strings, got {value!r}")
    return [str(v) for v in value]


def _mount_from(where: str, value: Any) -> Mount:
    if not isinstance(value, Mapping) or "source" not in value or "target" not in value:
        raise ImageMapError(f"{where}: extra_mounts item {value!r}: expected {{source, target, read_only}}")
    unknown = sorted(set(map(str, value)) - set(_MOUNT_KEYS))
    if unknown:
        raise ImageMapError(
            f"{where}: extra_mounts item has unknown key(s) {', '.join(unknown)}; "
            f"valid keys: {', '.join(_MOUNT_KEYS)}"
        )
    target = str(value["target"])
    if not target.startswith("/"):
        raise ImageMapError(f"{where}: extra_mounts target {target!r} must be an absolute sandbox path")
    read_only = value.get("read_only", False)
    if not isinstance(read_only, bool):
        raise ImageMapError(f"{where}: extra_mounts read_only must be true or false, got {read_only!r}")
    return Mount(Path(str(value["source"])), target, read_only)


def _default_tools_dir() -> Path:
    """Per-user directory for generated tools; refuses one another user could have planted."""
    root = Path(tempfile.gettempdir()) / f"galaxy-argo-sandbox-{os.getuid()}"
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        owner = root.stat().st_uid
    except OSError as err:
        raise SandboxError(f"cannot create the sandbox tools directory {root}: {err}") from err
    if owner != os.getuid():
        raise SandboxError(f"{root} belongs to uid {owner}, not us: remove it or set ImageMap(tools_dir=)")
    return root


def _tool_dir(root: Path, name: str, key: str, populate: Callable[[Path], None]) -> Path:
    """A content-addressed directory ``root/name-key``, written once and renamed into place.

    Concurrent writers each build a private copy; the first rename wins and the others discard
    theirs, so a sandbox never binds a half-written directory.
    """
    final = root / f"{name}-{key}"
    if final.is_dir():
        return final
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        populate(work)
        work.chmod(0o755)
    except OSError as err:
        raise SandboxError(f"cannot write the {name} tools to {root}: {err}") from err
    try:
        work.rename(final)
    except OSError as err:  # another process won the race (final exists), or a real failure
        shutil.rmtree(work, ignore_errors=True)
        if not final.is_dir():
            raise SandboxError(f"cannot write the {name} tools to {final}: {err}") from err
    return final


def _argosay_entry(root: Path) -> ImageEntry:
    def populate(work: Path) -> None:
        script = work / "argosay"
        script.write_text(_ARGOSAY)
        script.chmod(0o755)

    key = hashlib.sha256(_ARGOSAY.encode()).hexdigest()[:16]
    host = _tool_dir(root, "argosay", key, populate)
    target = f"{_TOOLS_TARGET}/argosay"
    return ImageEntry(
        entrypoint=["argosay"], path_prepend=[target], extra_mounts=[Mount(host, target, read_only=True)]
    )


def _python_entry(root: Path) -> ImageEntry:
    """``python:*`` images: the host's system Python 3 answers to ``python`` and ``python3``."""
    found = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if found is None:
        raise SandboxError("python images run on the host's python3, which is not installed in /usr")
    binary = Path(found).resolve()

    def populate(work: Path) -> None:
        for name in ("python", "python3"):
            (work / name).symlink_to(binary)

    key = hashlib.sha256(str(binary).encode()).hexdigest()[:16]
    host = _tool_dir(root, "python", key, populate)
    target = f"{_TOOLS_TARGET}/python"
    return ImageEntry(
        entrypoint=["python3"], path_prepend=[target], extra_mounts=[Mount(host, target, read_only=True)]
    )


def _busybox_entry(root: Path, image: str) -> ImageEntry:
    found = shutil.which("busybox")
    if found is None:
        raise SandboxError(
            f"image {image!r} runs on the host's busybox, which is not installed: install "
            "busybox or map the image to something else in the image map"
        )
    binary = Path(found).resolve()
    info = binary.stat()
    try:
        listing = subprocess.run(
            [str(binary), "--list"], capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise SandboxError(f"{binary} --list failed ({err}): is it a multi-call busybox?") from err
    applets = sorted({a for a in listing.stdout.split() if "/" not in a} - {"busybox"})

    def populate(work: Path) -> None:
        for applet in applets:
            (work / applet).symlink_to(binary)

    key = hashlib.sha256(f"{binary}:{info.st_size}:{info.st_mtime_ns}:{applets}".encode()).hexdigest()[:16]
    host = _tool_dir(root, "busybox", key, populate)
    target = f"{_TOOLS_TARGET}/busybox"
    mounts = [Mount(host, target, read_only=True)]
    if not any(_is_under(str(binary), d) for d in _HOST_DIRS):
        mounts.append(Mount(binary, str(binary), read_only=True))  # the symlinks point at it: make it visible
    return ImageEntry(entrypoint=["sh"], path_prepend=[target], extra_mounts=mounts)


@functools.cache
def _default_image_map() -> ImageMap:
    return ImageMap()


# ---------------------------------------------------------------------------------------------
# Memory enforcement


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


class _Limit:
    """No memory limit: nothing to set up, check or clean."""

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


class _CgroupLimit(_Limit):
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
                _signal(pid, signal.SIGKILL)
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


class _WatchdogLimit(_Limit):
    """Sums the RSS of the sandbox's process tree; over the limit, the container is killed.

    Best effort: a process that allocates and exits between two checks (50 ms) escapes, and
    memory shared between processes is counted once per process.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def exceeded(self, pid: int) -> bool:
        total = 0
        for member, _ in _descendants(pid, _process_children()):
            rss, peak = _memory_bytes(member)
            total += rss
            if peak > self.limit or total > self.limit:
                return True
        return False


def _limit_for(spec: ContainerSpec, enforcement: MemoryEnforcement | str | None) -> _Limit:
    if spec.memory_limit_bytes is None:
        return _Limit()
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


# ---------------------------------------------------------------------------------------------
# Process table (shared by the watchdog and kill)

_table_lock = threading.Lock()
_table: tuple[float, dict[int, list[int]]] = (0.0, {})


def _process_children(fresh: bool = False) -> dict[int, list[int]]:
    """Parent pid -> child pids of every process, re-read at most every half tick unless ``fresh``.

    Shared by all containers, so twenty watchdogs cost one scan of /proc per tick.
    """
    global _table
    with _table_lock:
        taken, children = _table
        if not fresh and time.monotonic() - taken < _TICK / 2:
            return children
        children = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    stat = handle.read()
                ppid = int(stat.rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
        _table = (time.monotonic(), children)
        return children


def _descendants(root: int, children: dict[int, list[int]]) -> list[tuple[int, int]]:
    """(pid, depth) of ``root`` and everything below it; depth 0 is ``root``."""
    found, todo = [], [(root, 0)]
    while todo:
        pid, depth = todo.pop()
        found.append((pid, depth))
        todo.extend((child, depth + 1) for child in children.get(pid, []))
    return found


def _memory_bytes(pid: int) -> tuple[int, int]:
    """(current, peak) resident set size of ``pid``; (0, 0) once it is gone."""
    rss = peak = 0
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return rss, peak


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------------------------
# Running


@functools.cache
def _bwrap() -> str:
    found = shutil.which("bwrap") or ("/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None)
    if found is None:
        raise SandboxError("bubblewrap (bwrap) is not installed: install the `bubblewrap` package")
    return found


def _is_under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _check_target(target: str, what: str) -> str:
    if not target.startswith("/") or os.path.normpath(target) in ("/", "//"):
        raise SandboxError(f"{what} {target!r} must be an absolute path below / inside the sandbox")
    return os.path.normpath(target)


def _missing_parent(path: str, mounted: list[str]) -> str | None:
    """The host directory to open up so ``path`` can be created, or None if nothing is needed.

    bwrap makes missing mount points and directories on the tmpfs root or inside bind mounts, but
    not inside the read-only binds of host directories: there (``/etc/config``, ``/opt/app``) the
    nearest existing ancestor must be replaced by a tmpfs holding binds of its entries.
    """
    if any(_is_under(path, m) for m in mounted if m != path) or os.path.lexists(path):
        return None
    if not any(_is_under(path, d) for d in _HOST_DIRS):
        return None  # on the tmpfs root
    ancestor = os.path.dirname(path)
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    real = os.path.realpath(ancestor)
    if not os.path.isdir(real) or not any(_is_under(real, d) for d in _HOST_DIRS):
        raise SandboxError(
            f"cannot make {path} in the sandbox: {ancestor} is not a host directory the sandbox shows; "
            "use another path"
        )
    return real


def _host_args(expanded: list[str]) -> list[str]:
    """Bind the host's system directories read-only; open up ``expanded`` ones (see `_missing_parent`)."""
    args: list[str] = []
    for directory in _HOST_DIRS:
        if os.path.islink(directory):  # /bin -> usr/bin on merged-/usr systems: keep the layout
            args += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            args += ["--ro-bind", directory, directory]
    for directory in sorted(expanded, key=lambda d: d.count("/")):
        args += ["--tmpfs", directory]
        for child in sorted(os.listdir(directory)):
            path = os.path.join(directory, child)
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            else:
                args += ["--ro-bind", path, path]
    return args


def _mount_args(mounts: list[Mount]) -> tuple[list[str], list[str]]:
    """Bind arguments (parents before children, so a child lands on its parent) and the targets."""
    targets = sorted(
        ((_check_target(m.target, "mount target"), m) for m in mounts), key=lambda t: t[0].count("/")
    )
    args: list[str] = []
    for target, mount in targets:
        if not os.path.exists(mount.source):
            raise SandboxError(f"mount source {mount.source} (for {target}) does not exist on the host")
        args += ["--ro-bind" if mount.read_only else "--bind", str(mount.source), target]
    return args, [t for t, _ in targets]


def _environment(spec: ContainerSpec, entry: ImageEntry) -> dict[str, str]:
    """Docker's defaults, then the image's env (PATH with its prepends), then the container's."""
    env = {"PATH": ":".join([*entry.path_prepend, DEFAULT_PATH]), "HOME": "/tmp"}
    env.update(entry.env)
    env.update(spec.env)
    for name in env:
        if not name or "=" in name or "\0" in name:
            raise SandboxError(f"environment variable name {name!r} must be a non-empty name without '='")
    return env


def _command(spec: ContainerSpec, entry: ImageEntry) -> list[str]:
    if spec.use_entrypoint or not spec.argv:
        argv = [*entry.entrypoint, *spec.argv]
    else:
        argv = list(spec.argv)
    if not argv:
        raise SandboxError(
            f"container of image {spec.image!r} has no command and the image map gives no "
            "entrypoint: set `command` in the template or add an entrypoint for the image"
        )
    return argv


def _bwrap_argv(spec: ContainerSpec, entry: ImageEntry, argv: list[str], env: dict[str, str]) -> list[str]:
    """The bwrap command line; order matters (later mounts land on top of earlier ones)."""
    args = [_bwrap(), "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--new-session"]
    if not spec.network:
        args.append("--unshare-net")
    mounts = [*entry.extra_mounts, *spec.mounts]
    if spec.termination_log is not None:
        mounts.append(Mount(spec.termination_log, _TERMINATION_LOG))
    mount_args, targets = _mount_args(mounts)
    workdir = "/"
    if spec.working_dir not in (None, "", "/"):
        workdir = _check_target(str(spec.working_dir), "working directory")
    needed = [*targets, workdir] if workdir != "/" else targets
    expanded = sorted({d for d in (_missing_parent(p, targets) for p in needed) if d is not None})
    args += ["--tmpfs", "/", *_host_args(expanded), "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    args += mount_args
    if workdir != "/" and not any(_is_under(workdir, d) for d in ("/proc", "/dev")):
        args += ["--dir", workdir]  # container runtimes create a missing workingDir
    for directory in ["/", *expanded]:  # after every mount point and directory has been made
        args += ["--remount-ro", directory]
    args += ["--chdir", workdir]
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]
        for cap in _CAPS:
            args += ["--cap-add", f"CAP_{cap}"]
    args.append("--clearenv")
    for name, value in env.items():
        args += ["--setenv", name, value]
    return [*args, "--", *argv]


def _read_message(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as handle:
            return handle.read(_MESSAGE_LIMIT).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _bwrap_failure(stderr_path: Path) -> str:
    """The error of bwrap itself (``bwrap: execvp x: No such file or directory``) ending stderr."""
    try:
        with open(stderr_path, "rb") as handle:
            handle.seek(max(handle.seek(0, os.SEEK_END) - 1024, 0))
            tail = handle.read().decode("utf-8", "replace").rstrip("\n").rsplit("\n", 1)[-1]
    except OSError:
        return ""
    return tail if tail.startswith("bwrap: ") else ""


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class RunningContainer:
    """A started sandbox; a monitor thread reaps it, enforces the memory limit and builds the result."""

    def __init__(
        self, proc: subprocess.Popen[bytes], spec: ContainerSpec, limit: _Limit, started: datetime
    ) -> None:
        """Take over a spawned (and placed) sandbox and start monitoring it."""
        self.pid = proc.pid
        self.spec = spec
        self._proc = proc
        self._limit = limit
        self._started = started
        self._lock = threading.Lock()  # held while signalling, so the pid is never reaped under us
        self._reaped = False
        self._oom = False
        self._done = threading.Event()
        self._result: ContainerResult | None = None
        self._thread = threading.Thread(target=self._monitor, name=f"sandbox-{self.pid}", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> ContainerResult | None:
        """The result once the container has ended; None if still running after ``timeout`` seconds."""
        self._done.wait(timeout)
        return self._result

    def poll(self) -> ContainerResult | None:
        """The result if the container has ended, else None; never blocks."""
        return self._result

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the container; SIGKILL ends the whole sandbox process tree.

        Other signals go to the container's main process (as Kubernetes sends SIGTERM to PID 1),
        which may handle them; the engine follows up with SIGKILL after its grace period.
        """
        with self._lock:
            if self._reaped:
                return
            tree = _descendants(self.pid, _process_children(fresh=True))
            if sig == signal.SIGKILL:
                targets = [self.pid, *(pid for pid, _ in tree[1:]), *self._limit.pids()]
            else:  # outer bwrap -> bwrap as PID 1 of the namespace -> the command
                targets = [pid for pid, depth in tree if depth == 2] or [self.pid]
            for pid in targets:
                _signal(pid, sig)

    def _exited(self) -> bool:
        try:  # WNOWAIT: look without reaping, so kill() can trust the pid until we hold the lock
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def _monitor(self) -> None:
        pidfd = _pidfd(self.pid)
        try:
            while not self._exited():
                if pidfd is not None:
                    select.select([pidfd], [], [], _TICK)
                else:
                    time.sleep(_TICK)
                if not self._exited() and self._limit.exceeded(self.pid):
                    self._oom = True
                    self.kill(signal.SIGKILL)  # the whole container, as memory.oom.group does
        except Exception:  # never leave wait() hanging: reap below whatever happened
            log.exception("monitoring sandbox pid %s failed", self.pid)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        with self._lock:
            returncode = self._proc.wait()
            self._reaped = True
        finished = datetime.now(UTC)
        exit_code = 128 - returncode if returncode < 0 else returncode
        try:
            oom = self._oom or self._limit.oom_killed(exit_code)
        finally:
            self._limit.close()
        message = _read_message(self.spec.termination_log)
        if oom:
            exit_code, reason = 137, TerminatedReason.OOM_KILLED
        elif exit_code == 0:
            reason = TerminatedReason.COMPLETED
        elif exit_code == 1 and (failure := _bwrap_failure(self.spec.stderr_path)):
            exit_code, reason, message = 128, TerminatedReason.START_ERROR, failure
        else:
            reason = TerminatedReason.ERROR
        self._result = ContainerResult(exit_code, str(reason), message, self._started, finished)
        self._done.set()


class _Spawner:
    """Forks every sandbox from one thread that lives as long as the process.

    ``--die-with-parent`` is ``PR_SET_PDEATHSIG``, which fires when the *thread* that forked
    bwrap ends: a sandbox started from a short-lived worker thread (a pool's, say) would be
    SIGKILLed with it. Forking from this thread ties sandboxes to the process instead.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._requests: queue.SimpleQueue[tuple[Future[subprocess.Popen[bytes]], dict[str, Any]]]
        self._requests = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="sandbox-spawner", daemon=True).start()

    def popen(self, **kwargs: Any) -> subprocess.Popen[bytes]:
        """``subprocess.Popen(**kwargs)``, run on the spawner thread."""
        future: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((future, kwargs))
        return future.result()

    def _serve(self) -> None:
        while True:
            future, kwargs = self._requests.get()
            try:
                future.set_result(subprocess.Popen(**kwargs))
            except BaseException as err:  # handed to the caller, who raises it
                future.set_exception(err)


_spawner_lock = threading.Lock()
_spawner: _Spawner | None = None


def _popen(**kwargs: Any) -> subprocess.Popen[bytes]:
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner.pid != os.getpid():  # none yet, or we are a forked child
            _spawner = _Spawner()
        spawner = _spawner
    return spawner.popen(**kwargs)


def _open_logs(spec: ContainerSpec) -> tuple[IO[bytes], IO[bytes]]:
    try:
        for path in (spec.stdout_path, spec.stderr_path):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        stdout = open(spec.stdout_path, "wb")  # handed to Popen, closed by start()
        if Path(spec.stderr_path).resolve() == Path(spec.stdout_path).resolve():
            return stdout, stdout
        try:
            return stdout, open(spec.stderr_path, "wb")
        except OSError:
            stdout.close()
            raise
    except OSError as err:
        paths = f"{spec.stdout_path} / {spec.stderr_path}"
        raise SandboxError(f"cannot open the container logs {paths}: {err}") from err


def start(
    spec: ContainerSpec,
    image_map: ImageMap | None = None,
    *,
    enforcement: MemoryEnforcement | str | None = None,
) -> RunningContainer:
    """Start ``spec`` in a bubblewrap sandbox and return at once.

    Args:
        spec: The resolved container.
        image_map: How images run; None uses the default map (host, argosay, busybox).
        enforcement: Force a memory mechanism for this container (tests, admins); None uses
            `memory_enforcement()`.

    Raises:
        SandboxError: bwrap is missing, the spec is invalid (relative mount target, missing mount
            source, no command), the image's tools or the memory limit cannot be set up. Failures
            of the command itself (not found, non-zero exit) are reported in the result instead.
    """
    entry = (image_map or _default_image_map()).resolve(spec.image)
    argv = _command(spec, entry)
    env = _environment(spec, entry)
    if spec.termination_log is not None:
        try:
            spec.termination_log.parent.mkdir(parents=True, exist_ok=True)
            spec.termination_log.write_bytes(b"")  # a fresh file per container, as Kubernetes gives
        except OSError as err:
            raise SandboxError(f"cannot create the termination log {spec.termination_log}: {err}") from err
    command = _bwrap_argv(spec, entry, argv, env)
    limit = _limit_for(spec, enforcement)
    if limit.gated:  # wait on stdin until the pid is in its cgroup, so nothing runs unlimited
        command = ["/bin/sh", "-c", 'read -r _ && exec "$@" </dev/null', "galaxy-argo-gate", *command]
    try:
        stdout, stderr = _open_logs(spec)
    except SandboxError:
        limit.close()
        raise
    started = datetime.now(UTC)
    try:
        proc = _popen(
            args=command,
            stdin=subprocess.PIPE if limit.gated else subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as err:
        limit.close()
        raise SandboxError(f"cannot start {command[0]}: {err}") from err
    finally:
        stdout.close()
        if stderr is not stdout:
            stderr.close()
    if limit.gated:
        try:
            limit.attach(proc.pid)
        except SandboxError:
            proc.kill()
            proc.wait()
            limit.close()
            raise
        if proc.stdin is not None:
            try:
                proc.stdin.write(b"go\n")
                proc.stdin.close()
            except BrokenPipeError:  # the gate died: the monitor reports its exit status
                pass
    log.debug("sandbox pid %s: %s", proc.pid, argv)
    return RunningContainer(proc, spec, limit, started)
