"""Running containers: `start` a sandbox, watch its memory, kill it, reap it, report how it ended.

The engine hands over a fully resolved `ContainerSpec`; `start` runs it under ``bwrap`` the way a
container runtime would and returns at once, and `RunningContainer.wait` reports a
`ContainerResult` shaped like a Kubernetes ``ContainerStateTerminated`` (exit code, reason,
termination message, times):
https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#ContainerStateTerminated
This is the one module that starts, signals and reaps sandboxes: one spawner thread forks every
sandbox (so ``--die-with-parent`` ties it to our process, not to a passing thread), and one
monitor thread per container checks its memory limit and turns its exit into a result.

bwrap reads its arguments from a memfd (``--args FD``) rather than its command line: they hold
the container's environment, Secret values included, and ``/proc/PID/cmdline`` is readable by
every user of the host, while an open file of the process is not.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import signal
import subprocess
import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from galaxy_argo.local.sandbox.bwrap import bwrap_argv, container_command, container_environment
from galaxy_argo.local.sandbox.images import ImageMap, default_image_map
from galaxy_argo.local.sandbox.memory import Limit, MemoryEnforcement, limit_for
from galaxy_argo.local.sandbox.model import ContainerResult, ContainerSpec, SandboxError, TerminatedReason
from galaxy_argo.local.sandbox.processes import TICK, descendants, process_children, send_signal

log = logging.getLogger(__name__)

_MESSAGE_LIMIT = 4096  # Kubernetes keeps at most 4 KiB of a termination message


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
        self, proc: subprocess.Popen[bytes], spec: ContainerSpec, limit: Limit, started: datetime
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
            tree = descendants(self.pid, process_children(fresh=True))
            if sig == signal.SIGKILL:
                targets = [self.pid, *(pid for pid, _ in tree[1:]), *self._limit.pids()]
            else:  # outer bwrap -> bwrap as PID 1 of the namespace -> the command
                targets = [pid for pid, depth in tree if depth == 2] or [self.pid]
            for pid in targets:
                send_signal(pid, sig)

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
                    select.select([pidfd], [], [], TICK)
                else:
                    time.sleep(TICK)
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


def _arguments_file(command: list[str], argv: list[str]) -> tuple[list[str], int]:
    """``bwrap --args FD -- ARGV...`` and the (inheritable) memfd holding bwrap's options.

    ``command`` is `bwrap_argv`'s, ending in ``--`` and ``argv``; bwrap wants the command itself on
    its command line, so only the options (the environment among them) move to the memfd.
    """
    if command[len(command) - len(argv) - 1 :] != ["--", *argv]:
        raise SandboxError(f"bwrap's command line does not end in -- and the command {argv!r}")
    options = command[1 : len(command) - len(argv) - 1]
    fd = os.memfd_create("bwrap-args", 0)
    try:
        data = memoryview(b"".join(os.fsencode(arg) + b"\0" for arg in options))
        while data:
            data = data[os.write(fd, data) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return [command[0], "--args", str(fd), "--", *argv], fd


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
    entry = (image_map or default_image_map()).resolve(spec.image)
    argv = container_command(spec, entry)
    env = container_environment(spec, entry)
    if spec.termination_log is not None:
        try:
            spec.termination_log.parent.mkdir(parents=True, exist_ok=True)
            spec.termination_log.write_bytes(b"")  # a fresh file per container, as Kubernetes gives
        except OSError as err:
            raise SandboxError(f"cannot create the termination log {spec.termination_log}: {err}") from err
    try:
        command, args_fd = _arguments_file(bwrap_argv(spec, entry, argv, env), argv)
    except OSError as err:
        raise SandboxError(f"cannot hand bwrap its arguments: {err}") from err
    try:
        limit = limit_for(spec, enforcement)
    except BaseException:
        os.close(args_fd)
        raise
    if limit.gated:  # wait on stdin until the pid is in its cgroup, so nothing runs unlimited
        command = ["/bin/sh", "-c", 'read -r _ && exec "$@" </dev/null', "galaxy-argo-gate", *command]
    try:
        stdout, stderr = _open_logs(spec)
    except SandboxError:
        os.close(args_fd)
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
            pass_fds=(args_fd,),
        )
    except OSError as err:
        limit.close()
        raise SandboxError(f"cannot start {command[0]}: {err}") from err
    finally:
        os.close(args_fd)  # the child has its own copy
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
