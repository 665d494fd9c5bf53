"""``make demo``: a Galaxy-shaped job compiled and run end to end on the embedded stack.

Starts SeaweedFS and the embedded Argo-compatible engine on loopback, stages a job the way the
runner will (input dataset, Galaxy job directory bundle), compiles its workflow, submits it
through Hera's ``WorkflowsService``, waits, and prints the workflow, its nodes and the output
read back from S3 with its sha256 checked against the manifest. It says plainly what is not built
yet: the Galaxy runner itself (issue #4).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from galaxy_argo._hera import WorkflowsService
from galaxy_argo._hera import models as m
from galaxy_argo.argo_schema import validate
from galaxy_argo.compile import compile_job
from galaxy_argo.local.stack import EmbeddedStack
from galaxy_argo.settings import ArgoSettings
from galaxy_argo.spec import JobSpec, Resources, StagedFile, StagedKind
from galaxy_argo.templates import build_templates
from galaxy_argo.yamlio import dump_yaml

__all__ = ["demo_spec", "main"]

INPUT = b"chr1\t100\t200\nchr2\t300\t400\n"
JOB_SCRIPT = (
    "cd /galaxy/job/working\n"
    "tr a-z A-Z < /galaxy/inputs/dataset_1.dat > /galaxy/outputs/dataset_2.dat\n"
    'echo "converted $(wc -l < /galaxy/inputs/dataset_1.dat) lines" > ../outputs/tool_stdout\n'
)


def demo_spec() -> JobSpec:
    """A one-input, one-output job with Galaxy's job directory as a bundle."""
    prefix = "galaxy-argo/demo/jobs/1"
    return JobSpec(
        job_id="1",
        tool_id="demo_upper",
        tool_version="1.0.0",
        tool_name="Upper-case a dataset",
        command_line="sh /galaxy/job/tool_script.sh",
        key_prefix=prefix,
        image="debian:bookworm-slim",
        job_directory=StagedFile("job-directory", "/galaxy/job", f"{prefix}/job.tgz", StagedKind.DIRECTORY),
        inputs=(
            StagedFile(
                "input1",
                "/galaxy/inputs/dataset_1.dat",
                f"{prefix}/in/dataset_1.dat",
                size=len(INPUT),
                sha256=hashlib.sha256(INPUT).hexdigest(),
            ),
        ),
        outputs=(StagedFile("out_file1", "/galaxy/outputs/dataset_2.dat", f"{prefix}/out/dataset_2.dat"),),
        resources=Resources(cores=1, memory_mib=256),
    ).validate()


def _job_bundle() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (
            ("job/tool_script.sh", JOB_SCRIPT.encode()),
            ("job/working/.keep", b""),
            ("job/outputs/.keep", b""),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def main() -> int:
    """Run the demo; exit 0 only when the job succeeded and its output checks out."""
    out = Path(tempfile.mkdtemp(prefix="galaxy-argo-demo-"))
    spec = demo_spec()
    workflow = compile_job(spec, ArgoSettings.from_params({"namespace": "galaxy"})).to_dict()
    validate(workflow)
    (out / "jobspec.json").write_text(spec.to_json())
    (out / "workflow.yaml").write_text(dump_yaml(workflow))
    for filename, template in build_templates().items():
        validate(template)
        (out / filename).write_text(dump_yaml(template))
    print(
        f"compiled job {spec.job_id} ({spec.tool_id}) -> workflow {workflow['metadata']['name']}, "
        "validated against Argo's CRD schema"
    )
    print("starting the embedded stack (SeaweedFS + Argo-compatible engine) ...")
    with EmbeddedStack(out / "state") as stack:
        info = stack.info()
        if stack.s3 is None or spec.job_directory is None:
            raise RuntimeError("the stack has no S3 server or the demo job no job directory")
        s3 = stack.s3.client()
        s3.put_object(Bucket=info.bucket, Key=spec.inputs[0].key, Body=INPUT)
        s3.put_object(Bucket=info.bucket, Key=spec.job_directory.key, Body=_job_bundle())
        service = WorkflowsService(host=info.argo_server_url, token=info.token, namespace=info.namespace)
        name = str(service.create_workflow(m.WorkflowCreateRequest(workflow=workflow)).metadata.name)
        deadline = time.monotonic() + 120
        while True:
            wf = service.get_workflow(name).model_dump(by_alias=True, exclude_none=True, mode="json")
            phase = (wf.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed", "Error") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        print(f"workflow {name}: {phase} {wf['status'].get('message', '')}")
        for node in wf["status"]["nodes"].values():
            print(f"  {node['type']:9} {node['displayName']:24} {node['phase']}  {node.get('message', '')}")
        ok = phase == "Succeeded"
        if ok:
            pod = next(n for n in wf["status"]["nodes"].values() if n["type"] == "Pod")
            manifest = json.loads(
                next(p["value"] for p in pod["outputs"]["parameters"] if p["name"] == "outputs-manifest")
            )
            data = s3.get_object(Bucket=info.bucket, Key=spec.outputs[0].key)["Body"].read()
            recorded = manifest["files"][0]["sha256"]
            ok = hashlib.sha256(data).hexdigest() == recorded and manifest["exit_code"] == 0
            print(f"output {spec.outputs[0].key}: {data!r}")
            print(f"  sha256 {recorded} {'matches' if ok else 'DOES NOT MATCH'} the outputs manifest")
    print(f"files: {out}/ (jobspec.json, workflow.yaml, WorkflowTemplates, state/ with pod logs)")
    print("not built yet: the Galaxy job runner (issue #4), so no Galaxy server takes part in this demo.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
