"""Supervising a local server subprocess: port probes, HTTP probes, log tails, orphan reaping.

SeaweedFS (`galaxy_argo.local.s3`) and Galaxy (`galaxy_argo.dev.galaxy_server`) are started the
same way: on 127.0.0.1, output appended to a log, a pid file beside it so that a server orphaned
by a SIGKILLed parent (which skips ``atexit``) is stopped on the next start. The pieces they share
live here, so both fail, probe and clean up alike.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

__all__ = ["HOST", "http_status", "kept_secrets", "log_tail", "port_bindable", "stop_orphan"]

#: Every server this project starts listens here only.
HOST = "127.0.0.1"


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
