"""compile_jobs_per_s: JobSpec -> Hera Workflow -> YAML, for a typical one-input/one-output job.

Prints `name: value` lines. Besides the absolute rate (target >= 1,000 jobs/s) it prints the share
of serialisation alone, measured in the same process, so a change of machine load shows up in
both figures alike. Medians of 5 rounds.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from galaxy_argo.compile import compile_job  # noqa: E402
from galaxy_argo.settings import ArgoSettings  # noqa: E402
from galaxy_argo.spec import JobSpec  # noqa: E402
from galaxy_argo.yamlio import dump_yaml  # noqa: E402

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
    compile_rates, dump_rates = [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        dicts = [compile_job(spec, settings).to_dict() for spec in specs]
        texts = [dump_yaml(d) for d in dicts]
        compile_rates.append(JOBS / (time.perf_counter() - start))
        start = time.perf_counter()
        for d in dicts:
            dump_yaml(d)
        dump_rates.append(JOBS / (time.perf_counter() - start))
        assert len(texts) == JOBS
    rate = statistics.median(compile_rates)
    print(f"compile_jobs_per_s: {rate:.0f}")
    print(f"compile_yaml_dump_only_jobs_per_s: {statistics.median(dump_rates):.0f}")
    print(f"compile_serialise_share: {rate / statistics.median(dump_rates):.2f}")


if __name__ == "__main__":
    main()
