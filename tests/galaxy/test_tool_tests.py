"""Galaxy's own tool test client passes every demo tool's <tests>, with the jobs run through Argo."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from galaxy_argo.clients.argo import ArgoClient
from galaxy_argo.core.naming import LABEL_PREFIX, label_value
from galaxy_argo.dev.environment import DEMO_TOOLS, DevEnvironment, tool_ids

#: One test runs every demo tool's tests through Galaxy (four at a time): longer than the default limit.
pytestmark = [pytest.mark.galaxy, pytest.mark.timeout(900)]


def run_tool_tests(dev: DevEnvironment, tool_id: str, out_dir: Path) -> tuple[str, int, str]:
    assert dev.galaxy is not None
    report = out_dir / f"{tool_id}.json"
    command = [
        str(Path(sys.executable).with_name("galaxy-tool-test")),
        "-u", dev.galaxy.url,
        "-k", dev.api_key,
        "-t", tool_id,
        "--test-data", str(DEMO_TOOLS / "test-data"),
        "-j", str(report),
        "--history-per-test-case",
        "--with-reference-data",  # else tests of tools reading data tables are skipped
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    return tool_id, result.returncode, result.stdout[-3000:] + result.stderr[-3000:]


def test_galaxy_tool_test_passes_the_demo_tools_through_argo(
    dev: DevEnvironment, argo: ArgoClient, tmp_path: Path
) -> None:
    tools = tool_ids([DEMO_TOOLS])
    assert len(tools) >= 9
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda t: run_tool_tests(dev, t, tmp_path), tools))
    failed = [f"{tool}: exit {code}\n{log}" for tool, code, log in results if code != 0]
    assert not failed, "\n\n".join(failed)
    for tool in tools:
        report = json.loads((tmp_path / f"{tool}.json").read_text())
        statuses = [test["data"]["status"] for test in report["tests"]]
        assert statuses and set(statuses) == {"success"}, (tool, statuses)
        # each tool's test jobs ran as Argo workflows, not on Galaxy's local runner
        ran = argo.poll(f"{LABEL_PREFIX}/tool-id={label_value(tool)}")
        assert ran, f"no Argo workflow for {tool}"
