"""``make demo``: a real Galaxy runs tool jobs through the Argo runner on the embedded stack.

Starts what ``galaxy-argo dev up`` starts (SeaweedFS, the embedded Argo-compatible engine and a
real Galaxy 26.1 whose tools run on the ``argo`` destination), uploads a dataset, runs three tools
through the Argo destination (one plain, one calling a script from its tool directory, one reading
a genome from a data table whose data is only in S3), and
prints for each job its state, its output, its workflow and the workflow's node phases. Exits 0
only if every job ended ``ok`` with the expected output.

This module never imports Galaxy: Galaxy runs as its own process.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from galaxy_argo.clients.argo import ArgoClient
from galaxy_argo.dev.environment import DevEnvironment

__all__ = ["main"]

INPUT = "chr1\t100\t200\nchr2\t300\t400\n"
#: tool id -> (its parameters, with ``{"input": DATASET}`` standing for the uploaded INPUT; expected output)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "argo_upper": ({"input": "DATASET"}, "CHR1\t100\t200\nCHR2\t300\t400\n"),
    "argo_script": ({"input": "DATASET"}, "1: chr1\t100\t200\n2: chr2\t300\t400\n"),
    "argo_reference": ({"genome": "tiny"}, "sequences\t3\nchrA\t14\nchrB\t10\nchrC\t2\n"),
}


def _print_workflow(argo: ArgoClient, name: str) -> None:
    workflow = argo.get(name) or {}
    status = workflow.get("status") or {}
    title = (workflow.get("metadata") or {}).get("annotations", {}).get("workflows.argoproj.io/title", "")
    print(f"  workflow {name}: {status.get('phase')}  ({title})")
    for node in sorted((status.get("nodes") or {}).values(), key=lambda n: n.get("startedAt") or ""):
        message = node.get("message", "")
        print(f"    {node['type']:9} {node['displayName']:28} {node['phase']:9} {message}")


def main() -> int:
    """Run the demo; exit 0 only when every job succeeded with the expected output."""
    work = Path(tempfile.mkdtemp(prefix="galaxy-argo-demo-"))
    print(f"starting SeaweedFS, the embedded Argo engine and Galaxy in {work} (about 30 s) ...", flush=True)
    started = time.monotonic()
    ok = True
    with DevEnvironment(work) as env:
        stack, galaxy, api = env.running()
        info = stack.info()
        argo = ArgoClient(info.argo_server_url, token=info.token, namespace=info.namespace)
        print(
            f"Galaxy {galaxy.url} up in {time.monotonic() - started:.0f} s; "
            f"Argo API {info.argo_server_url}"
        )
        history = api.create_history("galaxy-argo demo")
        dataset = api.upload_text(history, INPUT, file_type="txt", name="regions.txt")
        api.wait_for_dataset(history, dataset, timeout=180)
        print(f"uploaded dataset {dataset} ({len(INPUT)} bytes) on Galaxy's local runner")
        for tool_id, (params, expected) in CASES.items():
            began = time.monotonic()
            inputs = {k: {"src": "hda", "id": dataset} if v == "DATASET" else v for k, v in params.items()}
            reply = api.run_tool(history, tool_id, inputs)
            job = api.wait_for_job(reply["jobs"][0]["id"], timeout=300)
            output = api.dataset_content(reply["outputs"][0]["id"]).decode(errors="replace")
            right = job["state"] == "ok" and output == expected
            ok = ok and right
            print(
                f"\njob {job['id']} ({tool_id}): {job['state']} in {time.monotonic() - began:.1f} s, "
                f"exit code {job.get('exit_code')}, output {'as expected' if right else 'WRONG'}:"
            )
            print("  " + output.rstrip("\n").replace("\n", "\n  "))
            if job.get("tool_stderr"):
                print(f"  tool stderr: {job['tool_stderr'].strip()}")
            _print_workflow(argo, job.get("external_id") or "")
        print(f"\nGalaxy log: {galaxy.log_path}")
        print(f"pod logs and volumes: {info.state_dir}/pods/ (failed pods are kept)")
        print("for an interactive Galaxy on the same stack: galaxy-argo dev up")
    print("\ndemo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
