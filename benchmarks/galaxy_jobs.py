"""Galaxy start-up and per-job time through the Argo runner, against Galaxy's own local runner.

Prints `name: value` lines (issue #4): galaxy_startup_s and galaxy_restart_s of the real Galaxy
that `galaxy-argo dev up` starts; per-job seconds (submit over the API to `ok`, median of
BENCH_ROUNDS) for the same upper-casing tool on three environments of one Galaxy:

- ``job_argo_remote_metadata_s``: Argo destination, metadata set in the pod (the default);
- ``job_argo_local_metadata_s``: Argo destination, metadata set on the Galaxy host;
- ``job_local_runner_s``: Galaxy's LocalJobRunner (the baseline: it runs set_metadata too);

and the ratios ``argo_vs_local_runner`` / ``argo_local_metadata_vs_local_runner`` (same process,
same Galaxy, jobs interleaved, so machine noise hits all three alike).

Environment: BENCH_ROUNDS (default 5).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from galaxy_argo.galaxy.api import GalaxyAPI  # noqa: E402
from galaxy_argo.galaxy.dev import DEMO_TOOLS, DevEnvironment  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
#: The demo's upper-casing tool under two more ids, routed to the other environments.
VARIANTS = {"bench_upper_local_metadata": "argo_local_metadata", "bench_upper_local_runner": "local_env"}


def write_variants(directory: Path) -> None:
    source = (DEMO_TOOLS / "argo_upper.xml").read_text()
    for tool_id in VARIANTS:
        (directory / f"{tool_id}.xml").write_text(source.replace('id="argo_upper"', f'id="{tool_id}"', 1))


def job_seconds(api: GalaxyAPI, history: str, tool_id: str, dataset: str) -> float:
    began = time.monotonic()
    reply = api.run_tool(history, tool_id, {"input": {"src": "hda", "id": dataset}})
    job = api.wait_for_job(reply["jobs"][0]["id"], timeout=300)
    elapsed = time.monotonic() - began
    if job["state"] != "ok" or api.dataset_content(reply["outputs"][0]["id"]) != b"HELLO\n":
        raise SystemExit(f"{tool_id}: job {job['id']} ended {job['state']}; the benchmark is void")
    return elapsed


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="galaxy-argo-bench-"))
    extra = work / "tools"
    extra.mkdir()
    write_variants(extra)
    env = DevEnvironment(work / "dev", tool_dirs=[DEMO_TOOLS, extra], tool_environments=dict(VARIANTS))
    began = time.monotonic()
    with env:
        assert env.api is not None and env.galaxy is not None
        print(f"dev_up_s: {time.monotonic() - began:.1f}")
        print(f"galaxy_startup_s: {env.galaxy.startup_seconds:.1f}")
        api = env.api
        history = api.create_history("bench")
        dataset = api.upload_text(history, "hello\n")
        api.wait_for_dataset(history, dataset, timeout=180)
        tools = {
            "job_argo_remote_metadata_s": "argo_upper",
            "job_argo_local_metadata_s": "bench_upper_local_metadata",
            "job_local_runner_s": "bench_upper_local_runner",
        }
        times: dict[str, list[float]] = {name: [] for name in tools}
        for _ in range(ROUNDS):
            for name, tool_id in tools.items():
                times[name].append(job_seconds(api, history, tool_id, dataset))
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, value in medians.items():
            print(f"{name}: {value:.2f}")
        baseline = medians["job_local_runner_s"]
        print(f"argo_vs_local_runner: {medians['job_argo_remote_metadata_s'] / baseline:.2f}")
        print(f"argo_local_metadata_vs_local_runner: {medians['job_argo_local_metadata_s'] / baseline:.2f}")
        restart_began = time.monotonic()
        env.galaxy.restart()
        print(f"galaxy_restart_s: {time.monotonic() - restart_began:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
