"""Polling cost at N watched jobs: one LIST per cycle vs one GET per job (what Galaxy's k8s runner does).

Prints `name: value` lines (issue #5):

- ``poll_requests_per_cycle_<N>`` and ``poll_seconds_<N>`` (median wall time of one LIST) at
  N = 100, 1,000, 10,000 watched workflows;
- ``poll_cpu_ratio``: client CPU of one labelled, field-projected LIST of the largest N / client
  CPU of N single GETs (time.thread_time in the polling thread, so the in-process server's work
  is not counted);
- ``poll_list_kib_per_1000``: Python memory (tracemalloc) of one cycle's LIST result, as the
  runner holds it during a cycle (name -> projected workflow), per 1,000 workflows, at the
  largest N;
- ``poll_state_kib_per_job``: Python memory (tracemalloc) the runner keeps per watched job
  between cycles. The states are made by the runner's own code: `ArgoJobRunner.recover`, which
  builds the `ArgoJobState` a running job has (its `ArgoSettings`, the shared `Connection`, the
  `JobPlan` loaded from the job directory, as `_submit` saved it), put in ``watched`` as
  Galaxy's monitor thread does, plus the `ArgoComputeEnvironment` ``queue_job`` keeps on a job
  it submitted. Not counted: what Galaxy holds per job anyway (its job wrapper, job row and
  destination, made before tracing), what all jobs share (the connection, made by a warm-up
  job), and the container description Galaxy's container resolution returns (none here: the
  tool has no container requirement, so the job runs in ``default_image``);
- ``poll_state_vs_galaxy_state``: that against Galaxy's own ``AsynchronousJobState`` for the
  same jobs (what any of Galaxy's asynchronous runners keeps at least), measured the same way.

How the workflows are held: they are written straight into the embedded server's object store
(status Running, a few nodes each, as a job looks mid-run) and the engine is never started, so
no pod runs; the server answers LIST and GET exactly as it does for live workflows.

Environment: BENCH_POLL_MAX (default 10000), BENCH_ROUNDS (default 5), BENCH_STATE_JOBS
(default 1000).
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from galaxy import model  # noqa: E402
from galaxy.jobs import JobDestination  # noqa: E402
from galaxy.jobs.runners import AsynchronousJobState  # noqa: E402

from galaxy_argo.clients.argo import ArgoClient  # noqa: E402
from galaxy_argo.galaxy.compute_env import ArgoComputeEnvironment  # noqa: E402
from galaxy_argo.galaxy.plan import JobPlan, OutputTarget  # noqa: E402
from galaxy_argo.galaxy.runner import ArgoJobRunner  # noqa: E402
from galaxy_argo.local.controller.engine import Engine, EngineConfig  # noqa: E402
from galaxy_argo.local.server import ArgoAPIServer  # noqa: E402
from galaxy_argo.local.store import ObjectStore  # noqa: E402

MAX = int(os.environ.get("BENCH_POLL_MAX", "10000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
STATE_JOBS = int(os.environ.get("BENCH_STATE_JOBS", "1000"))
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


def cpu(action: Any) -> tuple[float, float]:
    start_cpu, start_wall = time.thread_time(), time.perf_counter()
    action()
    return time.thread_time() - start_cpu, time.perf_counter() - start_wall


# -- what the runner keeps per watched job ----------------------------------------------------------


class Tool:
    """The tool attributes a job state reads (no tool directory, no container requirement)."""

    old_id = "argo_upper"
    tool_dir = None


class JobWrapper:
    """Galaxy's job wrapper, as far as `ArgoJobRunner.recover` and `ArgoComputeEnvironment` ask."""

    user = None
    tool = Tool()
    job_io: Any = None  # Galaxy's JobIO: nothing here asks it anything
    home_target = tmp_target = None

    def __init__(self, app: Any, job: model.Job, destination: JobDestination, working_directory: str) -> None:
        self.app = app
        self.job = job
        self.job_destination = destination
        self.working_directory = working_directory

    def get_id_tag(self) -> str:
        return str(self.job.id)

    def get_job(self) -> model.Job:
        return self.job

    def default_compute_environment(self) -> Any:
        from galaxy.job_execution.compute_environment import SharedComputeEnvironment

        return SharedComputeEnvironment(self.job_io, self.job)


def galaxy_jobs(
    app: Any, params: dict[str, str], root: Path, count: int
) -> list[tuple[model.Job, JobWrapper]]:
    """``count`` running jobs as Galaxy holds them, each with the plan `_submit` saved for it."""
    jobs = []
    for i in range(count):
        job = model.Job()
        job.id, job.tool_id, job.state = 10_000 + i, "argo_upper", model.Job.states.RUNNING
        name = f"galaxy-bench-{job.id}"
        job.job_runner_external_id = name
        directory = root / str(job.id)
        directory.mkdir(parents=True)
        prefix = f"galaxy-argo/jobs/{name}"
        JobPlan(
            workflow_name=name,
            key_prefix=prefix,
            outputs=[OutputTarget("out-1", f"{prefix}/out/out-1", f"{directory}/outputs/dataset_{i}.dat", i)],
            job_directory_key=f"{prefix}/returned/job-directory.tgz",
            metadata_remote=True,
            memory="4 GiB",
            uploaded_bytes=1024,
            submit_seconds=0.5,
        ).save(str(directory))
        destination = JobDestination(id="argo_env", runner="argo", params=dict(params))
        jobs.append((job, JobWrapper(app, job, destination, str(directory))))
    return jobs


def traced_bytes(action: Any) -> int:
    """Python memory still allocated after ``action()``, of what it allocated (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    action()
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return after - before


def state_per_job(server_url: str, root: Path) -> tuple[float, float]:
    """Bytes per watched job: `ArgoJobRunner`'s job state, and Galaxy's plain AsynchronousJobState."""
    app = SimpleNamespace(
        config=SimpleNamespace(redact_email_in_job_name=True, job_runner_monitor_sleep=1.0),
        model=SimpleNamespace(context=None),
    )
    params = {
        "argo_server_url": server_url,
        "namespace": "galaxy",
        "instance": "bench",
        "s3_endpoint_url": "http://127.0.0.1:9",
        "s3_access_key_id": "bench",
        "s3_secret_access_key": "bench-secret",
    }
    runner = ArgoJobRunner(app, 1)
    warm_up, *jobs = galaxy_jobs(app, params, root / "argo", STATE_JOBS + 1)

    def watch(pairs: list[tuple[model.Job, JobWrapper]]) -> None:
        for job, wrapper in pairs:
            runner.recover(job, wrapper)
        while not runner.monitor_queue.empty():  # what Galaxy's monitor thread does first each cycle
            ajs = runner.monitor_queue.get_nowait()
            # queue_job keeps the compute environment on the state of a job it submitted (for retries)
            ajs.compute_environment = ArgoComputeEnvironment(ajs.job_wrapper, ajs.settings.reference_data)
            runner.watched.append(ajs)

    watch([warm_up])  # the shared connection and first-use caches: not per job
    argo = traced_bytes(lambda: watch(jobs)) / len(jobs)
    if len(runner.watched) != len(jobs) + 1 or any(ajs.plan is None for ajs in runner.watched):
        raise SystemExit("the runner did not watch every job with its plan; the benchmark is void")

    plain: list[AsynchronousJobState] = []
    baseline_jobs = galaxy_jobs(app, params, root / "galaxy", STATE_JOBS)

    def watch_plain() -> None:
        for job, wrapper in baseline_jobs:
            plain.append(
                AsynchronousJobState(
                    job_wrapper=wrapper,  # type: ignore[arg-type]
                    job_destination=wrapper.job_destination,
                    files_dir=wrapper.working_directory,
                    job_id=job.job_runner_external_id,
                )
            )

    galaxy = traced_bytes(watch_plain) / len(baseline_jobs)
    runner.connections.close()
    return argo, galaxy


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
            held: list[Any] = []  # one cycle's LIST result, while it is measured
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
                size = traced_bytes(lambda: held.append(client.poll(SELECTOR)))
                held.clear()
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
            print(f"poll_list_kib_per_1000: {results[top]['kib_per_1000']:.0f}  (N={top})")
            argo, galaxy = state_per_job(server.url, Path(tmp) / "jobs")
            print(f"poll_state_kib_per_job: {argo / 1024:.2f}  ({STATE_JOBS} jobs)")
            print(f"poll_state_vs_galaxy_state: {argo / galaxy:.2f}  (Galaxy's AsynchronousJobState: "
                  f"{galaxy / 1024:.2f} KiB per job)")


if __name__ == "__main__":
    main()
