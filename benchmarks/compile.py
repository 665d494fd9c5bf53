"""compile_jobs_per_s: JobSpec -> the JSON body the runner POSTs, for a one-input/one-output job.

That is the runner's path: `compile_model(...)` handed to `ArgoClient.submit`, which Hera
serialises (the same call Hera makes, timed without the network). `compile_yaml_jobs_per_s` is the
other path, JobSpec -> YAML as `galaxy-argo compile` prints it for people and for `argo submit`;
no job goes through it. Prints `name: value` lines, medians of 5 rounds; the YAML dump alone is
timed in the same process so machine load shows in every figure alike.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from galaxy_argo.core._hera import models as m  # noqa: E402
from galaxy_argo.core.compile import compile_job, compile_model  # noqa: E402
from galaxy_argo.core.settings import ArgoSettings  # noqa: E402
from galaxy_argo.core.spec import JobSpec  # noqa: E402
from galaxy_argo.core.yamlio import dump_yaml  # noqa: E402

CASE = Path(__file__).resolve().parent.parent / "tests" / "golden" / "one-input-one-output.case.json"
ROUNDS = 5
JOBS = 300


def main() -> None:
    case = json.loads(CASE.read_text())
    settings = ArgoSettings.from_params(case["params"])
    specs = []
    for i in range(JOBS):
        data = dict(case["spec"], job_id=str(1000 + i))
        specs.append(JobSpec.from_dict(data))
    submit_rates, round_trip_rates, yaml_rates, dump_rates = [], [], [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        bodies = [request_body(compile_model(spec, settings)) for spec in specs]
        submit_rates.append(JOBS / (time.perf_counter() - start))
        start = time.perf_counter()
        for spec in specs:  # the runner's path until 2026-11-23: dict, then validated back
            request_body(m.Workflow.model_validate(compile_job(spec, settings).to_dict()))
        round_trip_rates.append(JOBS / (time.perf_counter() - start))
        start = time.perf_counter()
        dicts = [compile_job(spec, settings).to_dict() for spec in specs]
        texts = [dump_yaml(d) for d in dicts]
        yaml_rates.append(JOBS / (time.perf_counter() - start))
        start = time.perf_counter()
        for d in dicts:
            dump_yaml(d)
        dump_rates.append(JOBS / (time.perf_counter() - start))
        assert len(texts) == len(bodies) == JOBS
    rate = statistics.median(submit_rates)
    print(f"compile_jobs_per_s: {rate:.0f}")
    print(f"compile_vs_dict_round_trip: {rate / statistics.median(round_trip_rates):.2f}")
    print(f"compile_yaml_jobs_per_s: {statistics.median(yaml_rates):.0f}")
    print(f"compile_yaml_dump_only_jobs_per_s: {statistics.median(dump_rates):.0f}")


def request_body(workflow: m.Workflow) -> str:
    """What Hera's `WorkflowsService.create_workflow` sends for this workflow."""
    request = m.WorkflowCreateRequest(workflow=workflow)
    return request.model_dump_json(
        exclude_none=True, by_alias=True, exclude_unset=True, exclude_defaults=True
    )


if __name__ == "__main__":
    main()
