"""``make demo``: a real Galaxy runs tool jobs through the Argo runner on the embedded stack.

Starts what ``galaxy-argo dev up --object-store s3`` starts (SeaweedFS, the embedded
Argo-compatible engine and a real Galaxy 26.1 whose datasets live in its own S3 object store and
whose tools run on the ``argo`` destination with ``object_store: direct``), uploads a dataset,
runs three tools through the Argo destination (one plain, one calling a script from its tool
directory, one reading a genome from a data table whose data is only in S3), and prints for each
job its state, its output, the bytes of S3 traffic the Galaxy host moved for it, its workflow and
the workflow's node phases. Exits 0 only if every job ended ``ok`` with the expected output.

The Galaxy host's S3 traffic (Galaxy's object store and the runner's artifact bucket) goes
through a `CountingProxy`; the pods reach SeaweedFS directly, so in direct mode the bytes the host
moves for a job are its job directory and requests, not its datasets.

This module never imports Galaxy: Galaxy runs as its own process.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from galaxy_argo.clients.argo import ArgoClient
from galaxy_argo.dev.counting_proxy import ByteCounts, CountingProxy
from galaxy_argo.dev.environment import GALAXY_STORE_BUCKET, DevEnvironment, ObjectStoreKind

__all__ = ["main"]

INPUT = "chr1\t100\t200\nchr2\t300\t400\n"
#: How the demo tools' jobs run: the default environment of ``dev up --object-store s3``.
MODE = "argo_env, object_store: direct"
#: Seconds without S3 traffic from the Galaxy host before its counters are read.
QUIET_S = 1.5
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


def _moved(counts: ByteCounts) -> str:
    return (
        f"Galaxy host moved {counts.total} bytes of S3 traffic "
        f"({counts.sent} sent, {counts.received} received)"
    )


def _host_proxy(env: DevEnvironment) -> CountingProxy:
    if env.host_s3 is None:
        raise SystemExit("the dev environment started without its counting proxy")
    return env.host_s3


def main() -> int:
    """Run the demo; exit 0 only when every job succeeded with the expected output."""
    work = Path(tempfile.mkdtemp(prefix="galaxy-argo-demo-"))
    print(f"starting SeaweedFS, the embedded Argo engine and Galaxy in {work} (about 30 s) ...", flush=True)
    started = time.monotonic()
    ok = True
    with DevEnvironment(work, object_store=ObjectStoreKind.S3, host_s3_proxy=True) as env:
        stack, galaxy, api = env.running()
        proxy = _host_proxy(env)
        info = stack.info()
        argo = ArgoClient(info.argo_server_url, token=info.token, namespace=info.namespace)
        print(
            f"Galaxy {galaxy.url} up in {time.monotonic() - started:.0f} s; Argo API {info.argo_server_url}\n"
            f"Galaxy keeps its datasets in s3://{GALAXY_STORE_BUCKET} on {info.s3_endpoint_url}; "
            f"its S3 traffic goes through a counting proxy at {proxy.url}, the pods' does not"
        )
        history = api.create_history("galaxy-argo demo")
        before = proxy.settled(QUIET_S)
        dataset = api.upload_text(history, INPUT, file_type="txt", name="regions.txt")
        api.wait_for_dataset(history, dataset, timeout=180)
        uploaded = proxy.settled(QUIET_S) - before
        print(f"uploaded dataset {dataset} ({len(INPUT)} bytes) on Galaxy's local runner: {_moved(uploaded)}")
        for tool_id, (params, expected) in CASES.items():
            inputs = {k: {"src": "hda", "id": dataset} if v == "DATASET" else v for k, v in params.items()}
            before = proxy.settled(QUIET_S)
            began = time.monotonic()
            reply = api.run_tool(history, tool_id, inputs)
            job = api.wait_for_job(reply["jobs"][0]["id"], timeout=300)
            elapsed = time.monotonic() - began
            moved = proxy.settled(QUIET_S) - before
            output = api.dataset_content(reply["outputs"][0]["id"]).decode(errors="replace")
            right = job["state"] == "ok" and output == expected
            ok = ok and right
            print(
                f"\njob {job['id']} ({tool_id}, {MODE}): {job['state']} in {elapsed:.1f} s, "
                f"exit code {job.get('exit_code')}, output {'as expected' if right else 'WRONG'}:"
            )
            print("  " + output.rstrip("\n").replace("\n", "\n  "))
            print(f"  {_moved(moved)} for this job")
            if job.get("tool_stderr"):
                print(f"  tool stderr: {job['tool_stderr'].strip()}")
            _print_workflow(argo, job.get("external_id") or "")
        print(f"\nGalaxy log: {galaxy.log_path}")
        print(f"pod logs and volumes: {info.state_dir}/pods/ (failed pods are kept)")
        print("for an interactive Galaxy on the same stack: galaxy-argo dev up --object-store s3")
    print("\ndemo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
