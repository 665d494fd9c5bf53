"""One test per Hera 7.1.0 quirk the code depends on (DESIGN.md, "Known Hera quirks")."""

from __future__ import annotations

import json
import subprocess
import sys

from galaxy_argo.core._hera import models as m
from galaxy_argo.core.yamlio import load_yaml
from tests.conftest import GOLDEN

SAMPLE = {"script": "line one\nline two\n", "flag": "y", "word": "no", "number": "2", "plain": "text"}


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout


def test_plain_hera_import_does_change_pyyaml_safe_dump() -> None:
    # The quirk itself: without our guard, importing Hera changes yaml.safe_dump in the process.
    code = f"""
import yaml
sample = {SAMPLE!r}
before = yaml.safe_dump(sample)
import hera.workflows
print(before != yaml.safe_dump(sample))
"""
    assert run_python(code).strip() == "True"


def test_importing_galaxy_argo_leaves_galaxys_yaml_alone() -> None:
    code = f"""
import yaml
sample = {SAMPLE!r}
before = (yaml.safe_dump(sample), yaml.dump(sample))
import galaxy_argo.core.compile, galaxy_argo.core.templates
import sys
assert "hera" in sys.modules
print(before == (yaml.safe_dump(sample), yaml.dump(sample)))
"""
    assert run_python(code).strip() == "True"


def test_our_yaml_is_the_same_with_or_without_hera_loaded() -> None:
    code = """
import json, sys
from galaxy_argo.core.yamlio import dump_yaml
{extra}
print(json.dumps([dump_yaml(json.loads(sys.argv[1])), "hera" in sys.modules]))
"""
    sample = json.dumps(SAMPLE)
    without = json.loads(
        subprocess.run(
            [sys.executable, "-c", code.format(extra=""), sample], capture_output=True, text=True, check=True
        ).stdout
    )
    with_hera = json.loads(
        subprocess.run(
            [sys.executable, "-c", code.format(extra="import hera.workflows"), sample],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert without[1] is False and with_hera[1] is True
    assert without[0] == with_hera[0]
    assert "script: |\n  line one\n" in without[0]
    assert "flag: 'y'" in without[0] and "number: '2'" in without[0]
    assert load_yaml(without[0]) == SAMPLE


def test_intorstring_fields_are_emitted_as_strings() -> None:
    # Hera happily emits an int where Kubernetes types IntOrString; Argo's schema.json refuses it.
    assert m.RetryStrategy(limit=m.IntOrString(2)).model_dump(by_alias=True, exclude_none=True) == {
        "limit": 2
    }
    workflow = load_yaml((GOLDEN / "walltime-scheduling.yaml").read_text())
    template = workflow["spec"]["templates"][0]
    assert template["retryStrategy"]["limit"] == "3"
    assert template["retryStrategy"]["backoff"]["factor"] == "2"
    assert template["activeDeadlineSeconds"] == "7200"
