#!/usr/bin/env python3
"""argosay v2, the test tool of Argo's example image, as a standalone program run in sandboxes.

Argo's examples and e2e tests run ``argoproj/argosay:v2``, a small Go program:
https://github.com/argoproj/argo-workflows/tree/main/test/e2e/images/argosay/v2
There are no images here, so the image map copies this file, byte for byte, into a tools
directory bound into the sandbox as ``argosay``, where the host's ``python3`` runs it. It
therefore imports only the standard library, never ``galaxy_argo`` (the sandbox shows ``/usr``,
not our virtualenv), defines no exception class of ours, and does what the Go tool does: the
same commands and messages, Go's duration syntax, and exit status 2 with ``panic: ...`` on
stderr for every error, as a Go panic ends.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from typing import NoReturn

USAGE = ("usage: argosay [assert_contains file string|assert_equals file string|cat [file...]"
         "|echo [string] [file]|sleep duration|exit [code]]")
UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0,
         "m": 60.0, "h": 3600.0}
PART = re.compile("([0-9]*(?:[.][0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
#: Exit status of a Go program ended by an unrecovered panic, which is how argosay reports errors.
PANIC_STATUS = 2


def panic(message: str) -> NoReturn:
    """End the program as the Go tool's ``panic(err)`` does: ``panic: message`` on stderr, status 2."""
    sys.stderr.write(f"panic: {message}\n")
    raise SystemExit(PANIC_STATUS)


def duration(text: str) -> float:
    """Seconds in a Go duration such as 1s, 500ms, 1h2m, 1.5s (time.ParseDuration)."""
    rest = text[1:] if text[:1] in ("+", "-") else text
    sign = -1.0 if text.startswith("-") else 1.0
    if rest == "0":
        return 0.0
    if not rest:
        panic(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    while pos < len(rest):
        match = PART.match(rest, pos)
        if match is None or match.group(1) in ("", "."):
            panic(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def read(path: str) -> bytes:
    """The bytes of ``path``; a panic with Go's ``open`` message if it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        panic(f"open {path}: {(err.strerror or str(err)).lower()}")


def echo(args: list[str]) -> int:
    """``echo``: "hello argo", or the string, on stdout; or the string into a file (parents made)."""
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
        panic("usage: argosay echo [string] [file]")
    return 0


def cat(args: list[str]) -> int:
    """``cat``: the files' bytes, one after the other, on stdout."""
    for path in args:
        sys.stdout.buffer.write(read(path))
    sys.stdout.flush()
    return 0


def exit_(args: list[str]) -> int:
    """``exit``: the given status (0 without one)."""
    if len(args) != 1:
        return 0
    try:
        return int(args[0])
    except ValueError:
        panic(f'strconv.Atoi: parsing "{args[0]}": invalid syntax')


def sleep(args: list[str]) -> int:
    """``sleep``: wait for a Go duration (a negative one returns at once)."""
    if len(args) != 1:
        panic("usage: argosay sleep duration")
    time.sleep(max(duration(args[0]), 0.0))
    return 0


def assert_contains(args: list[str]) -> int:
    """``assert_contains``: panic unless the file contains the string."""
    if len(args) != 2:
        panic("usage: assert_contains data string")
    data = read(args[0]).decode("utf-8", "replace")
    if args[1] not in data:
        panic(f'expected "{args[0]}" to contain "{args[1]}", but was "{data}"')
    return 0


def assert_equals(args: list[str]) -> int:
    """``assert_equals``: panic unless the file holds the string (a final newline is ignored)."""
    if len(args) != 2:
        panic("usage: assert_equals data string")
    data = read(args[0]).decode("utf-8", "replace")
    if data != args[1] and not (data.endswith("\n") and data[:-1] == args[1]):
        panic(f'expected "{args[0]}" to equal "{args[1]}", but was "{data}"')
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "assert_contains": assert_contains, "assert_equals": assert_equals, "cat": cat,
    "echo": echo, "exit": exit_, "sleep": sleep,
}


def main(argv: list[str]) -> int:
    """Run one command (``echo`` without arguments); its exit status, or a panic on any error."""
    args = argv or ["echo"]
    command = COMMANDS.get(args[0])
    if command is None:
        panic(USAGE)
    try:
        return command(args[1:])
    except OSError as err:
        panic(str(err))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
