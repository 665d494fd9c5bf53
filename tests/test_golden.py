"""Compiled workflows of representative jobs, compared with committed YAML (tests/golden/).

Regenerate with `make golden` (sets GALAXY_ARGO_REGENERATE_GOLDEN=1); refused under CI so a
drift can never be "fixed" by the run that should catch it.
"""

from __future__ import annotations

import os

import pytest

from galaxy_argo.core.compile import compile_job
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.core.spec import JobSpec
from galaxy_argo.core.yamlio import dump_yaml
from tests.conftest import GOLDEN, golden_cases

CASES = golden_cases()
REGENERATE = os.environ.get("GALAXY_ARGO_REGENERATE_GOLDEN") == "1"


def compiled_yaml(case: dict) -> str:
    spec = JobSpec.from_dict(case["spec"])
    return dump_yaml(compile_job(spec, ArgoSettings.from_params(case["params"])).to_dict())


def test_there_are_at_least_six_cases() -> None:
    assert len(CASES) >= 6


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    path = GOLDEN / f"{name}.yaml"
    text = compiled_yaml(CASES[name])
    if REGENERATE:
        if os.environ.get("CI"):
            pytest.fail("refusing to regenerate golden files under CI")
        path.write_text(text)
    assert path.exists(), f"{path} missing: run `make golden`"
    assert text == path.read_text(), (
        f"{name}: compiled workflow differs from {path}; run `make golden` if intended"
    )
