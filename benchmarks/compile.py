"""compile_jobs_per_s: JobSpec -> the JSON body the runner POSTs, for a one-input/one-output job.

That is the runner's path (`ArgoJobRunner._submit`): `compile_model(spec, settings)` handed to
`ArgoClient.submit`, which wraps it in a ``WorkflowCreateRequest`` and lets Hera's
``WorkflowsService.create_workflow`` serialise it. Hera calls the request's deprecated
``.json(...)``, which pydantic 2 hands to ``model_dump_json`` with the same arguments; the
benchmark calls that directly (no deprecation warning per job) and checks first that the body is
the one Hera sends. Only the network is left out.

Prints `name: value` lines, medians of 5 rounds of 300 jobs (tests/golden/one-input-one-output):

- ``compile_jobs_per_s``: the runner's path above;
- ``compile_vs_dict_round_trip``: that over the runner's path until 2026-11-23 (the workflow built
  as a dict, then validated back into Hera's model before the same serialisation);
- ``compile_yaml_jobs_per_s``: JobSpec -> YAML as `galaxy-argo compile` prints it (for people and
  for `argo submit`; no Galaxy job goes through it);
- ``compile_yaml_dump_only_jobs_per_s``: the YAML dump of those dicts alone, timed in the same
  process so machine load shows in every figure alike.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings
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
    check_body_is_heras(specs[0], settings)
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


def check_body_is_heras(spec: JobSpec, settings: ArgoSettings) -> None:
    """The timed body must be the one Hera's ``create_workflow`` sends (its ``req.json(...)``)."""
    request = m.WorkflowCreateRequest(workflow=compile_model(spec, settings))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hera = request.json(exclude_none=True, by_alias=True, exclude_unset=True, exclude_defaults=True)
    if request_body(compile_model(spec, settings)) != hera:
        raise SystemExit("the timed request body differs from Hera's; the benchmark is void")


def request_body(workflow: m.Workflow) -> str:
    """What Hera's `WorkflowsService.create_workflow` sends for this workflow."""
    request = m.WorkflowCreateRequest(workflow=workflow)
    return request.model_dump_json(
        exclude_none=True, by_alias=True, exclude_unset=True, exclude_defaults=True
    )


if __name__ == "__main__":
    main()
