"""Supervising a local server subprocess: port probes, HTTP probes, log tails, orphan reaping.

SeaweedFS (`galaxy_argo.local.s3`) and Galaxy (`galaxy_argo.dev.galaxy_server`) are started the
same way, by one `ServerProcess` each: on 127.0.0.1, output appended to a log, a pid file beside
it so that a server orphaned by a SIGKILLed parent (which skips ``atexit``) is stopped on the next
start, a start retried when another process takes a port between our probe and the server's
bind, a wait for readiness that fails at once (with the log's tail) when the server exits, and a
stop by SIGTERM, then SIGKILL. Each launcher says only what to run and how to tell it is ready;
the lifecycle lives here, so both fail, probe and clean up alike, and `ServerLauncher` gives both
the same ``pid``, ``running``, ``log_path``, ``stop`` and ``with`` support.
"""

from __future__ import annotations

import atexit
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from galaxy_argo.core.errors import GalaxyArgoError

__all__ = [
    "HOST",
    "ServerLauncher",
    "ServerProcess",
    "http_status",
    "kept_secrets",
    "log_tail",
    "port_bindable",
    "runs_with",
    "stop_orphan",
    "write_private_json",
]

log = logging.getLogger(__name__)

#: Every server this project starts listens here only.
HOST = "127.0.0.1"
#: Starts of one server, when each finds that another process took a port meanwhile.
_START_ATTEMPTS = 3


def port_bindable(port: int) -> bool:
    """Whether a listener could bind ``HOST:port`` now, probed with SO_REUSEADDR as Go and uvicorn bind.

    With SO_REUSEADDR, TIME_WAIT leftovers of a previous run do not count as taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def http_status(port: int, path: str, timeout: float) -> int | None:
    """Status of ``GET http://HOST:port<path>``, or ``None`` when nothing answers.

    Uses http.client, which never goes through a proxy from the environment.
    """
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    return response.status


def log_tail(path: Path, offset: int, lines: int, secrets: Iterable[str]) -> str:
    """The last non-blank ``lines`` written to ``path`` after ``offset``, with ``secrets`` redacted."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError as err:
        return f"(log unreadable: {err})"
    kept = [line for line in text.splitlines() if line.strip()]
    tail = "\n".join(kept[-lines:]) or "(empty)"
    for secret in secrets:
        if secret:
            tail = tail.replace(secret, "<redacted>")
    return tail


def stop_orphan(
    pid_file: Path,
    is_ours: Callable[[int], bool],
    grace_seconds: float,
    group: bool = False,
) -> int | None:
    """Stop the server recorded in ``pid_file`` if it still runs and ``is_ours(pid)`` says so.

    SIGTERM, then SIGKILL after ``grace_seconds``; ``group`` signals its whole process group.
    Returns the pid stopped (its pid file removed), or ``None`` when there was none to stop.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        if not is_ours(pid):
            return None
    except OSError:  # gone meanwhile, or /proc unreadable
        return None
    send = os.killpg if group else os.kill
    alive = Path(f"/proc/{pid}")
    try:
        send(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while alive.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive.exists() or group:  # a group may hold children of the server
            send(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)
    return pid


def runs_with(pid: int, signature: Iterable[str]) -> bool:
    """Whether each of ``signature`` is an argument or an environment entry (``KEY=value``) of ``pid``.

    Raises:
        OSError: ``pid`` is gone, or not ours to read.
    """
    proc = Path(f"/proc/{pid}")
    items = {*(proc / "cmdline").read_bytes().split(b"\0"), *(proc / "environ").read_bytes().split(b"\0")}
    return all(mark.encode() in items for mark in signature)


def kept_secrets(path: Path, make: Callable[[], Mapping[str, str]]) -> dict[str, str]:
    """Secrets saved in ``path`` (JSON, mode 600), made by ``make`` on first use and then kept.

    A server restarted on the same state keeps its keys, so clients and stored ids stay valid.
    The file is created exclusively: never written over, never readable by others.
    """
    if path.exists():
        saved: dict[str, str] = json.loads(path.read_text())
        return saved
    made = dict(make())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(made, handle)
    return made


def write_private_json(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON, never readable by others, never seen half-written.

    The text goes to a new mode-600 file beside it, which is then renamed over ``path``.
    """
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.unlink(missing_ok=True)
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(scratch, path)


class ServerProcess:
    """One server subprocess: spawned, supervised until ready, stopped; its orphan reaped.

    The log is ``log_path`` (appended, one ``==>`` header line a run); the pid file sits beside it
    (``<log stem>.pid``), written on spawn and removed on stop. Errors are the launcher's own
    classes, ``port_taken`` for a port another process took (the start is then retried), ``error``
    for everything else; their messages end with the log's tail, ``secrets`` redacted.
    """

    def __init__(
        self,
        name: str,
        log_path: Path,
        *,
        signature: Iterable[str],
        error: type[GalaxyArgoError],
        port_taken: type[GalaxyArgoError],
        port_taken_marks: Iterable[str],
        tail_lines: int,
        poll_seconds: float,
        stop_grace: float,
        secrets: Iterable[str] = (),
        own_group: bool = False,
        after_stop: Callable[[], None] | None = None,
    ) -> None:
        """Remember how to run and recognise the server; nothing starts before `start`.

        Args:
            name: What the server is called in messages ("SeaweedFS", "Galaxy").
            log_path: The server's stdout and stderr, appended across runs.
            signature: Arguments and environment entries that together make a process this
                server (`runs_with`): an orphan in the pid file is stopped only if it has them all.
            error: Raised when the server cannot run, exits early or is not ready in time.
            port_taken: Raised instead of ``error`` when the server exited and its log of this
                run holds one of ``port_taken_marks``; a subclass of ``error``.
            port_taken_marks: Log lines that mean a port was taken between probe and bind.
            tail_lines: How many of the log's last lines a message shows.
            poll_seconds: Pause between two readiness probes.
            stop_grace: Seconds between SIGTERM and SIGKILL, on stop and for an orphan.
            secrets: Texts redacted from the log tails in messages.
            own_group: Run the server in a new session and signal its whole process group, so
                whatever it started goes with it; else it shares the caller's group, so a
                Ctrl-C reaches it too.
            after_stop: Called once the stopped process is gone (to remove what it leaves).
        """
        self.name = name
        self.log_path = log_path
        self.pid_path = log_path.with_suffix(".pid")
        self._signature = tuple(signature)
        self._error = error
        self._port_taken = port_taken
        self._port_taken_marks = tuple(port_taken_marks)
        self._secrets = tuple(secrets)
        self._tail_lines = tail_lines
        self._poll_seconds = poll_seconds
        self._stop_grace = stop_grace
        self._own_group = own_group
        self._after_stop = after_stop
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        """Process id of the server (its process group id with ``own_group``), None unless it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive (not whether it answers)."""
        return self.pid is not None

    def start(self, attempt: Callable[[int], None], retry: bool = True) -> None:
        """Stop an orphan of ours, then call ``attempt(1)``, ``attempt(2)``, ... until one returns.

        ``attempt(n)`` prepares the run (ports, configuration), calls `spawn` and then `wait`.
        When it raises ``port_taken`` the process is stopped and, with ``retry``, the next attempt
        made (it picks new ports), up to three; any other error stops the process and is raised.
        """
        self._reap_orphan()
        attempts = _START_ATTEMPTS if retry else 1
        for number in range(1, attempts + 1):
            try:
                attempt(number)
                return
            except self._port_taken:
                self.stop()
                if number == attempts:
                    raise
            except BaseException:
                self.stop()
                raise

    def spawn(self, argv: list[str], *, cwd: Path, env: Mapping[str, str], program: str, hint: str) -> None:
        """Run ``argv`` with its output appended to the log, stopped at interpreter exit.

        Raises:
            error: ``argv[0]`` cannot be run: "could not run <program>: <why>; <hint>".
        """
        with open(self.log_path, "ab") as log_file:
            self._log_offset = log_file.tell()
            log_file.write(f"\n==> {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
            log_file.flush()
            try:
                self._process = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=self._own_group,
                )
            except OSError as err:
                raise self._error(f"could not run {program}: {err.strerror or err}; {hint}") from err
        atexit.register(self.stop)
        self.pid_path.write_text(f"{self._process.pid}\n")

    def wait(
        self,
        deadline: float,
        probe: Callable[[], str | None],
        *,
        until: str,
        failure: Callable[[str], str],
        hint: str = "",
        retry_on: tuple[type[Exception], ...] = (),
    ) -> None:
        """Call ``probe`` until it returns ``None`` (ready), as long as the process runs.

        ``probe`` returns or raises (one of ``retry_on``) why it is not ready yet; an empty text
        means "not ready, nothing new", and the last reason is kept for the message.

        Raises:
            port_taken: The process exited and its log of this run shows a port taken.
            error: The process exited ("<name> exited with code N before <until>."), or at the
                deadline: ``failure(last reason)``, ``hint``, then the log's tail.
        """
        last_error = "no answer yet"
        while True:
            self._raise_if_exited(until)
            try:
                error = probe()
            except retry_on as err:
                error = str(err)
            if error is None:
                return
            last_error = error or last_error
            if time.monotonic() >= deadline:
                raise self._error(
                    f"{failure(last_error)}; {hint}see the last lines of {self.log_path}:\n{self.tail()}"
                )
            time.sleep(self._poll_seconds)

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM, SIGKILL after ``grace`` seconds (default ``stop_grace``), reap. Safe to repeat.

        With ``own_group``, whatever the server left in its process group is killed too. The pid
        file is removed, then ``after_stop`` runs.
        """
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        grace = self._stop_grace if grace is None else grace
        if process.poll() is None:
            self._signal(process, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                name, pid = self.name, process.pid
                log.warning("%s (pid %d) ignored SIGTERM for %.0f s; killing it", name, pid, grace)
                self._signal(process, signal.SIGKILL)
                process.wait()
        if self._own_group:
            self._signal(process, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)
        if self._after_stop is not None:
            self._after_stop()

    def tail(self) -> str:
        """The last lines the server wrote to its log in this run, secrets redacted."""
        return log_tail(self.log_path, self._log_offset, self._tail_lines, self._secrets)

    def log_contains(self, text: str) -> bool:
        """Whether the server wrote ``text`` to its log in this run."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_offset)
                return text.encode() in handle.read()
        except OSError:
            return False

    def _raise_if_exited(self, until: str) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            return
        code = None if process is None else process.returncode
        # A bind error may be followed by many shutdown lines: search the whole run, not the tail.
        taken = any(self.log_contains(mark) for mark in self._port_taken_marks)
        raise (self._port_taken if taken else self._error)(
            f"{self.name} exited with code {code} before {until}. "
            f"Last lines of {self.log_path}:\n{self.tail()}"
        )

    def _reap_orphan(self) -> None:
        """Stop a server of ours left running by a parent that was killed (SIGKILL skips atexit)."""
        pid = stop_orphan(
            self.pid_path, lambda pid: runs_with(pid, self._signature), self._stop_grace, self._own_group
        )
        if pid is not None:
            where = self.log_path.parent
            log.warning("stopped %s pid %d left behind on %s by a killed process", self.name, pid, where)

    def _signal(self, process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
        if not self._own_group:
            process.send_signal(signum)
            return
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass


class ServerLauncher(ABC):
    """What every launcher shows of its `ServerProcess`: pid, log, `stop`, and ``with`` support.

    A subclass sets ``_server`` and implements `start`; ``with launcher:`` starts and stops it.
    """

    _server: ServerProcess

    @abstractmethod
    def start(self) -> object:
        """Start the server and wait until it is ready."""

    def stop(self) -> None:
        """Stop the server: SIGTERM, SIGKILL after a grace period, then reap it. Safe to repeat."""
        self._server.stop()

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr, appended across runs."""
        return self._server.log_path

    @property
    def pid(self) -> int | None:
        """Process id of the running server, None when stopped."""
        return self._server.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive (not whether it answers)."""
        return self._server.running

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
