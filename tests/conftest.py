"""Shared fixtures: paths to the project and to ../shared, and the golden cases."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
GOLDEN = ROOT / "tests" / "golden"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout; CI has it there. Missing is a failure, not a skip."""
    if not (SHARED / "argo" / "crds").is_dir():
        pytest.fail(f"{SHARED} with argo/crds is required beside the checkout (CI provides it)")
    return SHARED


def golden_cases() -> dict[str, dict[str, Any]]:
    """Case name -> {"params": destination params, "spec": job spec dict}."""
    return {
        path.name.removesuffix(".case.json"): json.loads(path.read_text())
        for path in sorted(GOLDEN.glob("*.case.json"))
    }


def wait_until(
    predicate: Callable[[], Any], timeout: float = 60, what: str = "condition", interval: float = 0.05
) -> Any:
    """Poll ``predicate`` until truthy and return that value; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for servers a test starts in a subprocess)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(state_dir: Path, port: int, *extra: str) -> list[str]:
    """``galaxy-argo local serve``: the embedded stack in its own process, on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "galaxy_argo.cli",
        "local",
        "serve",
        "--state-dir",
        str(state_dir),
        "--port",
        str(port),
        *extra,
    ]


# The real Galaxy + embedded stack of the session, for every directory that needs one (imported
# last: galaxy_env uses the helpers above).
from tests.galaxy_env import (  # noqa: E402, F401
    api,
    argo,
    dev,
    history,
    s3,
    s3_proxy,
    stack_info,
    text_dataset,
)
