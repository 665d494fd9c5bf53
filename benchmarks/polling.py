"""Polling cost at N watched jobs: one LIST per cycle vs one GET per job (what Galaxy's k8s runner does).

Prints `name: value` lines (issue #5): poll_requests_per_cycle at N = 100, 1,000, 10,000;
poll_cpu_ratio = client CPU of one labelled, field-projected LIST of N workflows / client CPU of
N single GETs (measured with time.thread_time in the polling thread, so the in-process server's
work is not counted); poll_seconds at each N; poll_kib_per_1000 = Python memory (tracemalloc)
held by one cycle's result per 1,000 jobs; poll_rss_mib_per_1000 = growth of this process's
resident memory while it holds, per 1,000 watched jobs, what the runner holds: one cycle's LIST
result and one saved `JobPlan` per job (the runner's own per-job record).

How the workflows are held: they are written straight into the embedded server's object store
(status Running, a few nodes each, as a job looks mid-run) and the engine is never started, so
no pod runs; the server answers LIST and GET exactly as it does for live workflows.

Environment: BENCH_POLL_MAX (default 10000), BENCH_ROUNDS (default 5).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from galaxy_argo.clients.argo import ArgoClient  # noqa: E402
from galaxy_argo.galaxy.plan import JobPlan, OutputTarget  # noqa: E402
from galaxy_argo.local.engine import Engine, EngineConfig  # noqa: E402
from galaxy_argo.local.server import ArgoAPIServer  # noqa: E402
from galaxy_argo.local.store import ObjectStore  # noqa: E402

MAX = int(os.environ.get("BENCH_POLL_MAX", "10000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SELECTOR = "galaxy-argo.galaxyproject.org/instance=bench"


def workflow(i: int) -> dict[str, Any]:
    name = f"galaxy-bench-{i}"
    nodes = {
        f"{name}-{k}": {
            "id": f"{name}-{k}",
            "name": f"{name}.{c}",
            "displayName": c,
            "type": t,
            "phase": "Running",
            "startedAt": "2026-01-01T00:00:00Z",
        }
        for k, (c, t) in enumerate(
            [("pod", "Pod"), ("stage-in", "Container"), ("run", "Container"), ("main", "Container")]
        )
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": "galaxy",
            "labels": {
                "galaxy-argo.galaxyproject.org/instance": "bench",
                "galaxy-argo.galaxyproject.org/job-id": str(i),
            },
        },
        "spec": {
            "entrypoint": "galaxy-job",
            "templates": [{"name": "galaxy-job", "container": {"image": "x"}}],
        },
        "status": {
            "phase": "Running",
            "startedAt": "2026-01-01T00:00:00Z",
            "progress": "0/1",
            "nodes": nodes,
        },
    }


def rss_mib() -> float:
    """Resident memory of this process (``VmRSS``), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS in /proc/self/status")


def cpu(action: Any) -> tuple[float, float]:
    start_cpu, start_wall = time.thread_time(), time.perf_counter()
    action()
    return time.thread_time() - start_cpu, time.perf_counter() - start_wall


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="galaxy-argo-poll-") as tmp:
        store = ObjectStore(Path(tmp))
        engine = Engine(store, EngineConfig(Path(tmp)))  # never started: workflows are held, not run
        with ArgoAPIServer(engine, store) as server:
            client = ArgoClient(server.url, namespace="galaxy")
            calls: list[str] = []
            client.session.hooks["response"].append(lambda r, *a, **k: calls.append(r.request.method))
            created = 0
            results: dict[int, dict[str, float]] = {}
            for n in (100, 1_000, 10_000):
                if n > MAX:
                    break
                for i in range(created, n):
                    store.create("workflows", workflow(i))
                created = n
                calls.clear()
                seen = client.poll(SELECTOR)
                if len(seen) != n:
                    raise SystemExit(f"poll saw {len(seen)} workflows, expected {n}")
                requests_per_cycle = len(calls)
                list_runs = [cpu(lambda: client.poll(SELECTOR)) for _ in range(ROUNDS)]
                tracemalloc.start()
                held = client.poll(SELECTOR)
                size, _ = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                del held
                results[n] = {
                    "requests": requests_per_cycle,
                    "cpu": statistics.median(c for c, _ in list_runs),
                    "wall": statistics.median(w for _, w in list_runs),
                    "kib_per_1000": size / 1024 / (n / 1000),
                }
                print(f"poll_requests_per_cycle_{n}: {requests_per_cycle}")
                print(f"poll_seconds_{n}: {results[n]['wall']:.3f}")
            top = max(results)
            names = [f"galaxy-bench-{i}" for i in range(top)]
            get_cpu, get_wall = cpu(
                lambda: [client.get(name, fields="metadata.name,status.phase") for name in names]
            )
            print(
                f"poll_cpu_ratio: {results[top]['cpu'] / get_cpu:.4f}  (N={top}: LIST "
                f"{results[top]['cpu']:.3f} s CPU vs {top} GETs {get_cpu:.2f} s CPU, {get_wall:.1f} s wall)"
            )
            print(f"poll_kib_per_1000: {results[top]['kib_per_1000']:.0f}")
            before = rss_mib()
            held_list = client.poll(SELECTOR)
            plans = [
                JobPlan(
                    workflow_name=name,
                    key_prefix=f"galaxy-argo/jobs/{name}",
                    outputs=[
                        OutputTarget("out-1", f"galaxy-argo/jobs/{name}/out/out-1", f"/data/{name}.dat")
                    ],
                    job_directory_key=f"galaxy-argo/jobs/{name}/returned/job-directory.tgz",
                    memory="4 GiB",
                )
                for name in names
            ]
            grown = rss_mib() - before
            print(f"poll_rss_mib_per_1000: {grown / (top / 1000):.2f}")
            del held_list, plans


if __name__ == "__main__":
    main()
