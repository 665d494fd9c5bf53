"""Galaxy start-up and per-job time through the Argo runner, against Galaxy's own local runner.

Prints `name: value` lines (issue #4): dev_up_s (the whole `galaxy-argo dev up` stack: S3,
engine, Galaxy), galaxy_startup_s and galaxy_restart_s of the real Galaxy it starts; per-job
seconds (submit over the API to `ok`, median of BENCH_ROUNDS) for the same upper-casing tool on
three environments of one Galaxy:

- ``job_argo_remote_metadata_s``: Argo destination, metadata set in the pod (the default);
- ``job_argo_local_metadata_s``: Argo destination, metadata set on the Galaxy host;
- ``job_local_runner_s``: Galaxy's LocalJobRunner (the baseline: it runs set_metadata too);

and the ratios ``argo_vs_local_runner`` / ``argo_local_metadata_vs_local_runner`` (same process,
same Galaxy, jobs interleaved, so machine noise hits all three alike).

``job_overhead_ratio`` (issue #5, target <= 1.5): the Argo job with metadata on the Galaxy side
minus the tool's own run time (``job_overhead_argo_local_metadata_s``), over the same for the
local runner (``job_overhead_local_runner_s``). The tool's own time (``tool_own_s``) is
Galaxy's ``core`` ``runtime_seconds`` of the Argo jobs (measured around the tool alone in the
pod; on the local runner the same metric also covers ``set_metadata``, so it is not used there).
``overhead_<part>_s`` break the Argo job down from its job metrics (plugin ``argo``): submit
(prepare, uploads, compile, submit), queued (the engine starting the pod), stage_in, tool,
stage_out (container times, whole seconds as Argo records them), poll_lag (workflow ended ->
runner saw it), collect (downloads, verification), local_metadata (``set_metadata`` on the
Galaxy host) and galaxy_rest (Galaxy's queueing and its own ``finish``, and the API's view).

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

from galaxy_argo.dev.environment import DEMO_TOOLS, DevEnvironment  # noqa: E402
from galaxy_argo.dev.galaxy_api import GalaxyAPI  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
#: The demo's upper-casing tool under two more ids, routed to the other environments.
VARIANTS = {"bench_upper_local_metadata": "argo_local_metadata", "bench_upper_local_runner": "local_env"}


def write_variants(directory: Path) -> None:
    source = (DEMO_TOOLS / "argo_upper.xml").read_text()
    for tool_id in VARIANTS:
        (directory / f"{tool_id}.xml").write_text(source.replace('id="argo_upper"', f'id="{tool_id}"', 1))


#: A 1 KiB input, as the issue's trivial tool has.
TEXT = ("galaxy argo " * 100)[:1023] + "\n"
PARTS = ("submit", "queued", "stage_in", "tool", "stage_out", "poll_lag", "collect", "local_metadata")


def run_job(api: GalaxyAPI, history: str, tool_id: str, dataset: str) -> tuple[float, dict[str, float]]:
    """Seconds from submission to ``ok``, and the job's numeric metrics (``plugin.name``)."""
    began = time.monotonic()
    reply = api.run_tool(history, tool_id, {"input": {"src": "hda", "id": dataset}})
    job = api.wait_for_job(reply["jobs"][0]["id"], timeout=300)
    elapsed = time.monotonic() - began
    if job["state"] != "ok" or api.dataset_content(reply["outputs"][0]["id"]) != TEXT.upper().encode():
        raise SystemExit(f"{tool_id}: job {job['id']} ended {job['state']}; the benchmark is void")
    metrics = {}
    for metric in api.job_metrics(job["id"]):
        try:
            metrics[f"{metric['plugin']}.{metric['name']}"] = float(metric["raw_value"])
        except ValueError:
            pass  # text metrics (the node's name)
    return elapsed, metrics


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
        dataset = api.upload_text(history, TEXT)
        api.wait_for_dataset(history, dataset, timeout=180)
        tools = {
            "job_argo_remote_metadata_s": "argo_upper",
            "job_argo_local_metadata_s": "bench_upper_local_metadata",
            "job_local_runner_s": "bench_upper_local_runner",
        }
        times: dict[str, list[float]] = {name: [] for name in tools}
        runtimes: list[float] = []
        parts: dict[str, list[float]] = {part: [] for part in (*PARTS, "galaxy_rest")}
        for _ in range(ROUNDS):
            for name, tool_id in tools.items():
                elapsed, metrics = run_job(api, history, tool_id, dataset)
                times[name].append(elapsed)
                if name != "job_local_runner_s":
                    runtimes.append(metrics["core.runtime_seconds"])
                if name == "job_argo_local_metadata_s":
                    known = {part: metrics.get(f"argo.{part}_seconds", 0.0) for part in PARTS}
                    for part, value in known.items():
                        parts[part].append(value)
                    parts["galaxy_rest"].append(elapsed - sum(known.values()))
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, value in medians.items():
            print(f"{name}: {value:.2f}")
        baseline = medians["job_local_runner_s"]
        print(f"argo_vs_local_runner: {medians['job_argo_remote_metadata_s'] / baseline:.2f}")
        print(f"argo_local_metadata_vs_local_runner: {medians['job_argo_local_metadata_s'] / baseline:.2f}")
        tool_own = statistics.median(runtimes)
        print(f"tool_own_s: {tool_own:.2f}")
        overhead = {name: value - tool_own for name, value in medians.items()}
        print(f"job_overhead_argo_local_metadata_s: {overhead['job_argo_local_metadata_s']:.2f}")
        print(f"job_overhead_local_runner_s: {overhead['job_local_runner_s']:.2f}")
        ratio = overhead["job_argo_local_metadata_s"] / overhead["job_local_runner_s"]
        print(f"job_overhead_ratio: {ratio:.2f}")
        for part, values in parts.items():
            print(f"overhead_{part}_s: {statistics.median(values):.2f}")
        restart_began = time.monotonic()
        env.galaxy.restart()
        print(f"galaxy_restart_s: {time.monotonic() - restart_began:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
