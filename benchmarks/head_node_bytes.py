"""Bytes the Galaxy host moves for one job, ``object_store: direct`` against staged (issue #15).

One Galaxy (``dev up --object-store s3``: its datasets in a ``boto3`` object store on the stack's
SeaweedFS) runs the same job, ``argo_copy`` (``cat input > output``: it reads all of a dataset
of ``BENCH_BYTES`` and writes as much), on three environments:

- ``direct``: the Argo destination with ``object_store: direct`` (``argo_env``): the pod reads the
  input at Galaxy's own key and its extended ``set_metadata`` writes the output there;
- ``staged``: the Argo destination as before (``argo_staged``): the host pulls the input from the
  object store, uploads it to the artifact bucket, downloads the output and pushes it to the store;
- ``local_runner``: Galaxy's LocalJobRunner with the same object store (the host reads the input
  through its cache and pushes the output), for scale.

Every S3 request of the Galaxy host (Galaxy's object store and the runner's artifact bucket) goes
through a counting TCP proxy on loopback (`galaxy_argo.dev.counting_proxy`), while the pods and the
engine reach SeaweedFS directly (``object_store_endpoint``): ``head_node_bytes_per_job_<mode>``
is what crossed that proxy, both ways, from just before the job was submitted until its state was
``ok`` and the counters had stopped moving (Galaxy's finish included). Each job reads its own,
new input, made by ``argo_make_bytes`` in direct mode (in the pod, from /dev/urandom: the host
never moves it, nor holds it in its cache), so no job finds another's bytes in Galaxy's cache.

Prints ``name: value`` lines (medians over BENCH_ROUNDS rounds, the three modes interleaved):
``bench_bytes``; per mode ``head_node_bytes_per_job_<mode>`` with its ``_sent`` (host to S3) and
``_received`` (S3 to host) parts, ``job_seconds_<mode>`` (submit to ``ok``) and
``host_cache_pulls_<mode>`` (Galaxy's "Pulling key" log lines during the job: objects the host
pulled into its cache, an empty output placeholder included); ``direct_vs_staged_ratio`` (wall
time, direct / staged) and ``direct_vs_staged_bytes``. Targets (issue #15): direct <= 1 MiB,
ratio <= 0.5. Every output is checked byte for byte against its input, read straight from
SeaweedFS after the jobs ran.

The proxy costs the host-side paths some CPU (about 1 GB/s through it on one core); the direct
job sends no dataset bytes through it. Disk: about 10 times BENCH_BYTES a round (SeaweedFS,
Galaxy's cache, pod volumes), under a temporary directory removed at the end.

Environment: GALAXY_ARGO_BENCH_BYTES (default 1 GiB; 67108864 for a quick run), BENCH_ROUNDS
(default 1), GALAXY_ARGO_BENCH_KEEP=1 keeps the temporary directory (Galaxy's log, the pods').
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from galaxy_argo.clients.connections import s3_client  # noqa: E402
from galaxy_argo.core.settings import ArgoSettings  # noqa: E402
from galaxy_argo.dev.counting_proxy import ByteCounts  # noqa: E402
from galaxy_argo.dev.environment import (  # noqa: E402
    DEMO_TOOLS,
    GALAXY_STORE_BUCKET,
    DevEnvironment,
    ObjectStoreKind,
)
from galaxy_argo.dev.galaxy_api import GalaxyAPI  # noqa: E402

BENCH_BYTES = int(os.environ.get("GALAXY_ARGO_BENCH_BYTES", str(1 << 30)))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
KEEP = os.environ.get("GALAXY_ARGO_BENCH_KEEP") == "1"
#: The copying tool under more ids, routed to the other environments.
VARIANTS = {"bench_copy_staged": "argo_staged", "bench_copy_local_runner": "local_env"}
#: mode -> the tool id that runs the job there.
MODES = {"direct": "argo_copy", "staged": "bench_copy_staged", "local_runner": "bench_copy_local_runner"}
#: Seconds without a byte through the proxy before a snapshot is taken.
QUIET_S = 3.0
JOB_TIMEOUT_S = 3600.0


def write_variants(directory: Path) -> None:
    source = (DEMO_TOOLS / "argo_copy.xml").read_text()
    for tool_id in VARIANTS:
        (directory / f"{tool_id}.xml").write_text(source.replace('id="argo_copy"', f'id="{tool_id}"', 1))


def run(api: GalaxyAPI, history: str, tool_id: str, inputs: dict[str, Any]) -> tuple[str, float]:
    """Run ``tool_id`` to ``ok``: its output's id and the seconds from submission to ``ok``."""
    began = time.monotonic()
    reply = api.run_tool(history, tool_id, inputs)
    job = api.wait_for_job(reply["jobs"][0]["id"], timeout=JOB_TIMEOUT_S)
    elapsed = time.monotonic() - began
    if job["state"] != "ok":
        stderr = job.get("stderr")
        raise SystemExit(f"{tool_id}: job {job['id']} ended {job['state']} ({stderr}); the benchmark is void")
    return str(reply["outputs"][0]["id"]), elapsed


def object_sha256(store: Any, uuid: str) -> tuple[int, str]:
    """Size and sha256 of a dataset's object in Galaxy's bucket, read from SeaweedFS directly."""
    key = f"{uuid[0]}/{uuid[1]}/{uuid[2]}/dataset_{uuid}.dat"
    digest = hashlib.sha256()
    size = 0
    for chunk in store.get_object(Bucket=GALAXY_STORE_BUCKET, Key=key)["Body"].iter_chunks(8 << 20):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def cache_pulls(log: Path, offset: int) -> int:
    """Galaxy's "Pulling key" lines (a dataset pulled into the host's cache) written after ``offset``."""
    with log.open("rb") as f:
        f.seek(offset)
        return sum(b"Pulling key" in line for line in f)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="galaxy-argo-bench-bytes-"))
    try:
        return measure(work)
    finally:
        if KEEP:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def measure(work: Path) -> int:
    extra = work / "tools"
    extra.mkdir()
    write_variants(extra)
    env = DevEnvironment(
        work / "dev",
        tool_dirs=[DEMO_TOOLS, extra],
        tool_environments=dict(VARIANTS),
        object_store=ObjectStoreKind.S3,
        host_s3_proxy=True,
        # room in Galaxy's cache for the staged and local-runner jobs' input and output
        object_store_cache_gb=4 * BENCH_BYTES / 1e9 + 1,
    )
    with env:
        stack, galaxy, api = env.running()
        proxy = env.host_s3
        if proxy is None:
            raise SystemExit("the dev environment started without its host S3 proxy")
        print(f"bench_bytes: {BENCH_BYTES}")
        history = api.create_history("head node bytes")
        results: dict[str, list[tuple[ByteCounts, float, int]]] = {mode: [] for mode in MODES}
        pairs: list[tuple[str, str, str]] = []
        for _ in range(ROUNDS):
            for mode, tool_id in MODES.items():
                source, _ = run(api, history, "argo_make_bytes", {"size": BENCH_BYTES})
                before = proxy.settled(QUIET_S)
                log_offset = galaxy.log_path.stat().st_size
                output, seconds = run(api, history, tool_id, {"input": {"src": "hda", "id": source}})
                moved = proxy.settled(QUIET_S) - before
                results[mode].append((moved, seconds, cache_pulls(galaxy.log_path, log_offset)))
                pairs.append((mode, source, output))
        store = s3_client(ArgoSettings.from_params(stack.info().destination_params()))
        for mode, source, output in pairs:
            expected = object_sha256(store, api.dataset(source)["uuid"])
            got = object_sha256(store, api.dataset(output)["uuid"])
            if expected[0] != BENCH_BYTES or got != expected:
                raise SystemExit(f"{mode}: output {got} is not its input {expected}; the benchmark is void")
        wall: dict[str, float] = {}
        total: dict[str, float] = {}
        for mode, runs in results.items():
            total[mode] = statistics.median(moved.total for moved, _, _ in runs)
            sent = statistics.median(moved.sent for moved, _, _ in runs)
            received = statistics.median(moved.received for moved, _, _ in runs)
            wall[mode] = statistics.median(elapsed for _, elapsed, _ in runs)
            print(f"head_node_bytes_per_job_{mode}: {total[mode]:.0f}")
            print(f"head_node_bytes_sent_{mode}: {sent:.0f}")
            print(f"head_node_bytes_received_{mode}: {received:.0f}")
            print(f"job_seconds_{mode}: {wall[mode]:.2f}")
            print(f"host_cache_pulls_{mode}: {statistics.median(pulls for _, _, pulls in runs):.0f}")
        print(f"direct_vs_staged_ratio: {wall['direct'] / wall['staged']:.2f}")
        print(f"direct_vs_staged_bytes: {total['direct'] / max(total['staged'], 1):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
