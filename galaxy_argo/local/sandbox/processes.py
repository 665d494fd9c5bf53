"""The host's process table, read from /proc: a sandbox's process tree, its memory, its signals.

A sandbox is a tree of host processes (outer bwrap, bwrap as the namespace's PID 1, the command
and whatever it starts). Killing a container and the memory watchdog both need that tree, and
with twenty containers running a scan of /proc per container per tick would dominate, so one
table of parent -> children is shared by every container and re-read at most every half tick.
Processes vanish between reads; every reader here treats a process gone as an empty answer.
"""

from __future__ import annotations

import os
import threading
import time

#: Seconds between limit checks of a running container.
TICK = 0.05

_table_lock = threading.Lock()
_table: tuple[float, dict[int, list[int]]] = (0.0, {})


def process_children(fresh: bool = False) -> dict[int, list[int]]:
    """Parent pid -> child pids of every process, re-read at most every half tick unless ``fresh``.

    Shared by all containers, so twenty watchdogs cost one scan of /proc per tick.
    """
    global _table
    with _table_lock:
        taken, children = _table
        if not fresh and time.monotonic() - taken < TICK / 2:
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


def descendants(root: int, children: dict[int, list[int]]) -> list[tuple[int, int]]:
    """(pid, depth) of ``root`` and everything below it; depth 0 is ``root``."""
    found, todo = [], [(root, 0)]
    while todo:
        pid, depth = todo.pop()
        found.append((pid, depth))
        todo.extend((child, depth + 1) for child in children.get(pid, []))
    return found


def memory_bytes(pid: int) -> tuple[int, int]:
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


def send_signal(pid: int, sig: int) -> None:
    """``os.kill`` that ignores a process already gone (or no longer ours to signal)."""
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
