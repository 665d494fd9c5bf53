"""Image map: which host programs stand in for a container image (host, argosay, busybox, python).

There are no container images here: a sandbox runs the host's own programs. An `ImageMap` says,
per image reference, what to add to the host for it (an entrypoint, PATH directories, read-only
mounts, environment), so workflows written for real images still run. Unmatched images get the
host as is; built-in entries provide ``argoproj/argosay`` (Argo's test image,
https://github.com/argoproj/argo-workflows/tree/main/test/e2e/images/argosay/v2, re-implemented
in `galaxy_argo.local.sandbox.argosay`), ``busybox`` (the host's busybox applets) and ``python``
(the host's python3). Their tools are written once to content-addressed directories under a
per-user temp directory and bound read-only into the sandboxes.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from galaxy_argo.local.sandbox.bwrap import HOST_DIRS, is_under
from galaxy_argo.local.sandbox.model import ImageEntry, ImageMapError, Mount, SandboxError

_TOOLS_TARGET = "/.galaxy-argo"  # where built-in image tools are bound inside a sandbox

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
    """``argoproj/argosay`` images: our `argosay` module, copied byte for byte as an executable."""
    try:
        program = resources.files("galaxy_argo.local.sandbox").joinpath("argosay.py").read_bytes()
    except OSError as err:
        raise SandboxError(f"cannot read the argosay program shipped with galaxy-argo: {err}") from err

    def populate(work: Path) -> None:
        script = work / "argosay"
        script.write_bytes(program)
        script.chmod(0o755)

    key = hashlib.sha256(program).hexdigest()[:16]
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
    if not any(is_under(str(binary), d) for d in HOST_DIRS):
        mounts.append(Mount(binary, str(binary), read_only=True))  # the symlinks point at it: make it visible
    return ImageEntry(entrypoint=["sh"], path_prepend=[target], extra_mounts=mounts)


@functools.cache
def default_image_map() -> ImageMap:
    """The map used when `start` is given none: the host, argosay, busybox and python built-ins."""
    return ImageMap()
