"""The galaxy-argo command: compile, templates, params; errors are one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from galaxy_argo.core.argo_schema import iter_errors
from galaxy_argo.core.settings import params_table_markdown
from galaxy_argo.core.yamlio import load_yaml
from tests.conftest import golden_cases


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "galaxy_argo.cli", *args]
    return subprocess.run(command, capture_output=True, text=True)


def write_spec(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(spec))
    return path


def test_compile_writes_valid_workflow_yaml(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, golden_cases()["one-input-one-output"]["spec"])
    out = tmp_path / "wf.yaml"
    result = cli("compile", str(spec), "-o", str(out), "-p", "namespace=team-a", "-p", "retry_limit=4")
    assert result.returncode == 0, result.stderr
    workflow = load_yaml(out.read_text())
    assert workflow["metadata"]["namespace"] == "team-a"
    assert workflow["spec"]["templates"][0]["retryStrategy"]["limit"] == "4"
    assert list(iter_errors(workflow)) == []


def test_compile_reads_a_destination_file(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, golden_cases()["one-input-one-output"]["spec"])
    destination = tmp_path / "dest.yaml"
    destination.write_text("runner: argo\nparams:\n  namespace: from-file\n  cores: '2'\n")
    result = cli("compile", str(spec), "--destination", str(destination))
    assert result.returncode == 0, result.stderr
    assert load_yaml(result.stdout)["metadata"]["namespace"] == "from-file"


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    bad_spec = write_spec(tmp_path, {"job_id": "1"})
    result = cli("compile", str(bad_spec))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("galaxy-argo: missing field(s): tool_id")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1

    spec = write_spec(tmp_path, golden_cases()["one-input-one-output"]["spec"])
    result = cli("compile", str(spec), "-p", "retry_limit=lots")
    assert result.returncode == 2
    assert "destination param 'retry_limit' = 'lots': expected a whole number from 0 to 20" in result.stderr

    result = cli("compile", str(tmp_path / "missing.json"))
    assert result.returncode == 2 and "missing.json" in result.stderr and "Traceback" not in result.stderr

    result = cli("compile", str(spec), "-p", "novalue")
    assert result.returncode == 2 and "--param 'novalue': expected NAME=VALUE" in result.stderr


def test_templates_render_and_params(tmp_path: Path) -> None:
    result = cli("templates", "render", str(tmp_path / "t"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "t" / "galaxy-tool-job.yaml").is_file()
    result = cli("params")
    assert result.returncode == 0 and result.stdout == params_table_markdown()
