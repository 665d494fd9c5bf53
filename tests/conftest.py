"""Shared fixtures: paths to the project and to ../shared, and the golden cases."""

from __future__ import annotations

import json
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
