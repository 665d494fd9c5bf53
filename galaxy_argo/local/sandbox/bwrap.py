"""The bubblewrap command line of one container: host binds, mounts, environment, namespaces.

A sandbox (https://github.com/containers/bubblewrap) is a ``--tmpfs /`` root with the host's
top-level system directories bound read-only, fresh ``/dev``, ``/proc`` and ``/tmp``, the container's
mounts, new PID/IPC/UTS namespaces (a new network namespace too unless ``ContainerSpec.network``)
and Docker's default capabilities; the root is remounted read-only after the mount points are
made, so a write outside ``/tmp`` and the mounts fails. That is what a container runtime gives a
Kubernetes container, as far as a job can tell, without images: the host's own programs stand in
for the image's. Building the argv is pure (it only looks at the host's directories), so the rules
about mount order and missing parents live here, apart from the process handling in `containers`.
"""

from __future__ import annotations

import functools
import os
import shutil

from galaxy_argo.local.sandbox.model import ContainerSpec, ImageEntry, Mount, SandboxError

#: PATH inside a sandbox unless the container's env (or its image) sets one; Docker's default.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Host directories bound read-only; /root, /home, /work, /tmp, /var, /proc, /sys, /dev stay out.
HOST_DIRS = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin", "/etc", "/opt")

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


@functools.cache
def _bwrap() -> str:
    found = shutil.which("bwrap") or ("/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None)
    if found is None:
        raise SandboxError("bubblewrap (bwrap) is not installed: install the `bubblewrap` package")
    return found


def is_under(path: str, directory: str) -> bool:
    """``path`` is ``directory`` or inside it, by name (no symlinks resolved)."""
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
    if any(is_under(path, m) for m in mounted if m != path) or os.path.lexists(path):
        return None
    if not any(is_under(path, d) for d in HOST_DIRS):
        return None  # on the tmpfs root
    ancestor = os.path.dirname(path)
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    real = os.path.realpath(ancestor)
    if not os.path.isdir(real) or not any(is_under(real, d) for d in HOST_DIRS):
        raise SandboxError(
            f"cannot make {path} in the sandbox: {ancestor} is not a host directory the sandbox shows; "
            "use another path"
        )
    return real


def _host_args(expanded: list[str]) -> list[str]:
    """Bind the host's system directories read-only; open up ``expanded`` ones (see `_missing_parent`)."""
    args: list[str] = []
    for directory in HOST_DIRS:
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


def container_environment(spec: ContainerSpec, entry: ImageEntry) -> dict[str, str]:
    """Docker's defaults, then the image's env (PATH with its prepends), then the container's."""
    env = {"PATH": ":".join([*entry.path_prepend, DEFAULT_PATH]), "HOME": "/tmp"}
    env.update(entry.env)
    env.update(spec.env)
    for name in env:
        if not name or "=" in name or "\0" in name:
            raise SandboxError(f"environment variable name {name!r} must be a non-empty name without '='")
    return env


def container_command(spec: ContainerSpec, entry: ImageEntry) -> list[str]:
    """What runs: the container's command, or the image's entrypoint followed by its args."""
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


def bwrap_argv(spec: ContainerSpec, entry: ImageEntry, argv: list[str], env: dict[str, str]) -> list[str]:
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
    if workdir != "/" and not any(is_under(workdir, d) for d in ("/proc", "/dev")):
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
