"""Galaxy with its datasets in its own S3 object store, jobs on Argo reading and writing it in place.

``dev up --object-store mixed``: Galaxy's ``distributed`` object store with a ``boto3`` backend
``s3`` (``store_by: uuid``, bucket ``galaxy-store`` on the stack's SeaweedFS; where new datasets
go) and a ``disk`` backend (chosen per history). The default destination is in ``object_store:
direct`` (issue #15): pods load inputs from Galaxy's own objects and the pod's extended
``set_metadata`` writes outputs there; the Galaxy host moves the job directory and metadata only.
A dataset on the disk backend is staged as before.

Every job is started at once by the `ran` fixture (the engine runs four pods at a time), then
each test reads its job's results. The host's share is checked where it shows: Galaxy's object
store cache on the host (a dataset the host read is there, with its bytes) and the runner's
uploads (the job directory alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from galaxy_argo.clients.argo import ArgoClient
from galaxy_argo.clients.connections import s3_client
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.dev.counting_proxy import ByteCounts, CountingProxy
from galaxy_argo.dev.environment import DEMO_TOOLS, GALAXY_STORE_BUCKET, DevEnvironment, ObjectStoreKind
from galaxy_argo.dev.galaxy_api import GalaxyAPI
from tests.galaxy_env import output_ids, run_and_wait, wait_for_galaxy

#: The `ran` fixture runs every job of the module at once, in the first test's setup.
pytestmark = [pytest.mark.galaxy, pytest.mark.timeout(900)]

#: A pod identity that may read Galaxy's bucket but not write it.
READER_SECRET = "galaxy-store-reader"
#: Reads a composite dataset's extra files: the next job reads them in place too.
COMPOSITE_READ_TOOL = """<tool id="argo_composite_read" name="Read files" version="0.1.0" profile="22.05">
    <requirements><container type="docker">debian:bookworm-slim</container></requirements>
    <command><![CDATA[
cat '$report.extra_files_path/data.txt' '$report.extra_files_path/sub/nested.txt' > '$output'
    ]]></command>
    <inputs><param name="report" type="data" format="html"/></inputs>
    <outputs><data name="output" format="txt"/></outputs>
</tool>
"""


#: Reads an input's metadata file (its BAM index) and writes a BAM, whose index the pod makes.
BAM_TOOL = """<tool id="argo_bam_copy" name="Copy a BAM" version="0.1.0" profile="22.05">
    <requirements><container type="docker">debian:bookworm-slim</container></requirements>
    <command><![CDATA[
cp '$input' '$output' && wc -c < '${input.metadata.bam_index}' > '$index_bytes'
    ]]></command>
    <inputs><param name="input" type="data" format="bam"/></inputs>
    <outputs>
        <data name="output" format="bam"/>
        <data name="index_bytes" format="txt"/>
    </outputs>
</tool>
"""


def write_bam(path: Path) -> Path:
    """A small coordinate-sorted BAM: Galaxy indexes it when it sets its metadata (``bam_index``)."""
    import pysam  # Galaxy's own dependency, in the same environment

    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"LN": 1000, "SN": "chr1"}]}
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for i in range(20):
            read = pysam.AlignedSegment()
            read.query_name, read.flag, read.reference_id = f"read{i}", 0, 0
            read.reference_start, read.mapping_quality, read.cigartuples = 10 * i, 30, [(0, 10)]
            read.query_sequence = "ACGTACGTAC"
            read.query_qualities = pysam.qualitystring_to_array("IIIIIIIIII")
            out.write(read)
    return path


@pytest.fixture(scope="module")
def s3_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevEnvironment]:
    tools = tmp_path_factory.mktemp("tools-s3")
    (tools / "argo_composite_read.xml").write_text(COMPOSITE_READ_TOOL)
    (tools / "argo_bam_copy.xml").write_text(BAM_TOOL)
    copy = (DEMO_TOOLS / "argo_copy.xml").read_text()
    (tools / "argo_copy_staged.xml").write_text(copy.replace('id="argo_copy"', 'id="argo_copy_staged"', 1))
    with DevEnvironment(
        tmp_path_factory.mktemp("dev-s3"),
        tool_dirs=[DEMO_TOOLS, tools],
        object_store=ObjectStoreKind.MIXED,
        s3_identities={READER_SECRET: [f"Read:{GALAXY_STORE_BUCKET}", f"List:{GALAXY_STORE_BUCKET}"]},
        extra_environments={"argo_read_only": {"object_store_secret": READER_SECRET}},
        tool_environments={"argo_script": "argo_read_only", "argo_copy_staged": "argo_staged"},
        # The Galaxy host's S3 traffic (its object store, the runner's transfers) is counted;
        # the pods and the engine reach SeaweedFS directly.
        host_s3_proxy=True,
    ) as env:
        yield env


@pytest.fixture(scope="module")
def store(s3_dev: DevEnvironment) -> Any:
    stack, _, _ = s3_dev.running()
    return s3_client(ArgoSettings.from_params(stack.info().destination_params()))


@pytest.fixture(scope="module")
def argo(s3_dev: DevEnvironment) -> ArgoClient:
    info = s3_dev.running()[0].info()
    return ArgoClient(info.argo_server_url, token=info.token, namespace=info.namespace)


@pytest.fixture(scope="module")
def api(s3_dev: DevEnvironment) -> GalaxyAPI:
    return s3_dev.running()[2]


def uuid_key(uuid: str) -> str:
    """Galaxy's key for a dataset stored by uuid: three one-character folders, then the file."""
    return f"{uuid[0]}/{uuid[1]}/{uuid[2]}/dataset_{uuid}.dat"


def stored(store: Any, uuid: str) -> bytes:
    body: bytes = store.get_object(Bucket=GALAXY_STORE_BUCKET, Key=uuid_key(uuid))["Body"].read()
    return body


def host_cache(s3_dev: DevEnvironment, uuid: str) -> Path:
    """Where Galaxy's cache on the host would hold the dataset."""
    return s3_dev.work_dir / "galaxy" / "object_store_cache" / uuid_key(uuid)


def upload(api: GalaxyAPI, history: str, text: str, s3_dev: DevEnvironment) -> tuple[str, str]:
    """An uploaded dataset (id, uuid), evicted from the host's cache as an old dataset would be."""
    dataset = api.upload_text(history, text, file_type="txt", name="input.txt")
    api.wait_for_dataset(history, dataset, timeout=120)
    uuid = api.dataset(dataset)["uuid"]
    host_cache(s3_dev, uuid).unlink(missing_ok=True)
    return dataset, uuid


def input_buckets(argo: ArgoClient, workflow: str) -> set[str]:
    template = (argo.get(workflow) or {})["spec"]["templates"][0]
    return {a["s3"].get("bucket", "") for a in template["inputs"]["artifacts"] if "s3" in a}


def what_was_said(api: GalaxyAPI, reply: dict[str, Any], job: dict[str, Any]) -> str:
    """The failure as the user sees it: the output's message and the job's stderr."""
    return f"{api.dataset(next(iter(output_ids(reply).values())))['misc_info']}\n{job.get('tool_stderr')}"


def hda(dataset: str) -> dict[str, str]:
    return {"src": "hda", "id": dataset}


@dataclass
class Ran:
    """Each job the module runs: name -> (Galaxy's reply to running the tool, the finished job)."""

    jobs: dict[str, tuple[dict[str, Any], dict[str, Any]]]
    #: Input name -> (dataset id, uuid).
    inputs: dict[str, tuple[str, str]]
    history: str

    def ok(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        reply, job = self.jobs[name]
        assert job["state"] == "ok", (name, job)
        return reply, job

    def output(self, name: str, output: str) -> str:
        return output_ids(self.ok(name)[0])[output]


@pytest.fixture(scope="module")
def ran(s3_dev: DevEnvironment, api: GalaxyAPI, store: Any) -> Ran:
    """Upload the inputs, break two of them on purpose, and run every job of the module at once."""
    history = api.create_history("direct")
    texts = {"plain": "hello\nstore\n", "a": "a\nb\n", "c": "c\n", "chain": "chain\n", "staged": "staged\n"}
    texts.update({"corrupt": "twelve bytes", "gone": "gone\n"})
    inputs = {name: upload(api, history, text, s3_dev) for name, text in texts.items()}
    bam = api.upload_file(history, write_bam(s3_dev.work_dir / "reads.bam"), file_type="bam")
    api.wait_for_dataset(history, bam, timeout=120)
    inputs["bam"] = (bam, api.dataset(bam)["uuid"])
    on_disk = api.create_history("on the disk backend")
    api.prefer_object_store(on_disk, "disk")
    inputs["disk"] = upload(api, on_disk, "on disk\n", s3_dev)
    store.put_object(Bucket=GALAXY_STORE_BUCKET, Key=uuid_key(inputs["corrupt"][1]), Body=b"short")
    store.delete_object(Bucket=GALAXY_STORE_BUCKET, Key=uuid_key(inputs["gone"][1]))
    ids = {name: hda(dataset) for name, (dataset, _) in inputs.items()}
    first_wave = {
        "plain": ("argo_upper", {"input": ids["plain"]}),
        "multi": ("argo_multi", {"first": ids["a"], "second": ids["c"]}),
        "mixed": ("argo_multi", {"first": ids["disk"], "second": ids["c"]}),
        "from_work_dir": ("argo_from_work_dir", {"input": ids["a"]}),
        "discover": ("argo_discover", {"count": 3}),
        "composite": ("argo_composite", {"input": ids["c"]}),
        "chain-1": ("argo_upper", {"input": ids["chain"]}),
        "staged": ("cat1", {"input1": ids["staged"]}),
        "corrupt": ("argo_upper", {"input": ids["corrupt"]}),
        "gone": ("argo_upper", {"input": ids["gone"]}),
        "read-only": ("argo_script", {"input": ids["a"]}),
        "stopped": ("argo_sleep", {"seconds": 300}),
        "bam": ("argo_bam_copy", {"input": ids["bam"]}),
    }
    jobs = run_all(api, history, first_wave, stop="stopped")
    second_wave = {
        "chain-2": ("argo_upper", {"input": hda(output_ids(jobs["chain-1"][0])["output"])}),
        "composite-read": (
            "argo_composite_read",
            {"report": hda(output_ids(jobs["composite"][0])["report"])},
        ),
    }
    jobs.update(run_all(api, history, second_wave))
    return Ran(jobs, inputs, history)


def run_all(
    api: GalaxyAPI, history: str, runs: dict[str, tuple[str, dict[str, Any]]], stop: str = ""
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Run the tools at once and wait for every job; the ``stop`` job is stopped once it runs."""
    replies = {name: api.run_tool(history, tool, inputs) for name, (tool, inputs) in runs.items()}
    if stop:
        job_id = replies[stop]["jobs"][0]["id"]
        wait_for_galaxy(lambda: api.job(job_id, full=False)["state"] == "running", 300, f"job {stop} running")
        api.cancel_job(job_id)
    with ThreadPoolExecutor(max_workers=len(replies)) as pool:
        finished = pool.map(
            lambda reply: api.wait_for_job(reply["jobs"][0]["id"], timeout=600), replies.values()
        )
        return {name: (replies[name], job) for name, job in zip(replies, finished, strict=True)}


def handler_log(s3_dev: DevEnvironment) -> str:
    return s3_dev.running()[1].log_path.read_text(errors="replace")


def metrics(api: GalaxyAPI, job_id: str) -> dict[str, Any]:
    return {m["name"]: m["raw_value"] for m in api.job_metrics(job_id)}


def test_a_second_dev_up_finds_galaxys_bucket_there(s3_dev: DevEnvironment, store: Any) -> None:
    stack, _, _ = s3_dev.running()
    assert stack.s3 is not None
    stack.s3.ensure_bucket(GALAXY_STORE_BUCKET)  # what a restart on the same work dir does
    assert GALAXY_STORE_BUCKET in {b["Name"] for b in store.list_buckets()["Buckets"]}


def test_a_direct_job_moves_no_dataset_bytes_through_the_galaxy_host(
    s3_dev: DevEnvironment, api: GalaxyAPI, store: Any, argo: ArgoClient, ran: Ran
) -> None:
    stack, galaxy, _ = s3_dev.running()
    reply, job = ran.ok("plain")
    assert input_buckets(argo, job["external_id"]) == {"", GALAXY_STORE_BUCKET}  # bundles + the input
    output = output_ids(reply)["output"]
    out_uuid = api.dataset(output)["uuid"]
    # the pod wrote the output; the host's cache holds at most the empty placeholder of job setup
    assert stored(store, out_uuid) == b"HELLO\nSTORE\n"
    assert not host_cache(s3_dev, ran.inputs["plain"][1]).exists(), "the host read the input"
    placeholder = host_cache(s3_dev, out_uuid)
    assert not placeholder.exists() or placeholder.stat().st_size == 0, "the host read the output"
    # nothing but the job directory went up, and no output artifact was written
    assert int(float(metrics(api, job["id"])["uploaded_bytes"])) < 200_000
    prefix = f"galaxy-argo/jobs/{job['external_id']}/"
    artifacts = store.list_objects_v2(Bucket=stack.info().bucket, Prefix=prefix)
    assert not [o["Key"] for o in artifacts.get("Contents", []) if "/out/" in o["Key"]]
    assert api.dataset_content(output) == b"HELLO\nSTORE\n"
    # the keys reach Galaxy through its environment, never its config or the workflow
    secret = stack.info().s3_secret_access_key
    assert secret not in galaxy.config_path.read_text()
    assert secret not in str(argo.get(job["external_id"]))


def test_several_inputs_and_outputs_and_from_work_dir(api: GalaxyAPI, ran: Ran) -> None:
    multi = {name: api.dataset_content(i) for name, i in output_ids(ran.ok("multi")[0]).items()}
    assert multi == {"joined": b"a\nb\nc\n", "counts": b"first\t2\nsecond\t1\n"}
    assert api.dataset_content(ran.output("from_work_dir", "output")) == b"b\na\n"


def test_discovered_datasets_and_a_collection_land_in_galaxys_store(api: GalaxyAPI, ran: Ran) -> None:
    reply, _ = ran.ok("discover")
    collection = reply["output_collections"][0]["id"]
    elements = wait_for_galaxy(
        lambda: api.get(f"/api/dataset_collections/{collection}")["elements"], 60, "the collection's elements"
    )
    assert sorted(e["element_identifier"] for e in elements) == ["part_1", "part_2", "part_3"]
    assert api.dataset_content(elements[0]["object"]["id"]).startswith(b"part ")
    beside = [d for d in api.history_contents(ran.history) if str(d.get("name")).endswith("listing (table)")]
    assert beside, "the dataset discovered beside an output is missing"
    assert api.dataset_content(beside[0]["id"]) == b"a\tb\n1\t2\n"


def test_a_composite_output_and_the_next_job_reading_its_extra_files_in_place(
    api: GalaxyAPI, store: Any, ran: Ran
) -> None:
    report = ran.output("composite", "report")
    assert b"data.txt" in api.dataset_content(report)
    uuid = api.dataset(report)["uuid"]
    prefix = uuid_key(uuid).removesuffix(".dat") + "_files/"
    listed = store.list_objects_v2(Bucket=GALAXY_STORE_BUCKET, Prefix=prefix).get("Contents", [])
    assert sorted(o["Key"].removeprefix(prefix) for o in listed) == ["data.txt", "sub/nested.txt"]
    assert api.dataset_content(ran.output("composite-read", "output")) == b"c\nnested\n"


def test_the_next_job_reads_the_previous_output_in_place(
    s3_dev: DevEnvironment, api: GalaxyAPI, ran: Ran
) -> None:
    first = ran.output("chain-1", "output")
    assert api.dataset_content(ran.output("chain-2", "output")) == b"CHAIN\n"
    cached = host_cache(s3_dev, api.dataset(first)["uuid"])
    assert not cached.exists() or cached.stat().st_size == 0, "the host read the first job's output"


def test_metadata_files_of_inputs_and_outputs(
    s3_dev: DevEnvironment, api: GalaxyAPI, store: Any, ran: Ran
) -> None:
    """A BAM input's index, and the index the pod makes for its BAM output.

    Galaxy, setting an upload's metadata on the host, leaves the index's object in its store empty
    and its bytes in its cache only: that index is staged from the host, and the log says so. The
    output's index, made by set_metadata in the pod, reaches the store with its bytes.
    """
    reply, _ = ran.ok("bam")
    assert int(api.dataset_content(output_ids(reply)["index_bytes"]).strip()) > 0
    log, uuid = handler_log(s3_dev), ran.inputs["bam"][1]
    assert f"({uuid}) is read in place" in log  # the BAM itself
    assert f"({uuid}) is staged: s3://{GALAXY_STORE_BUCKET}/_metadata_files/" in log  # its empty index object
    output = output_ids(reply)["output"]
    index = api.request("GET", f"/api/datasets/{output}/metadata_file", params={"metadata_file": "bam_index"})
    assert index.content[:4] == b"BAI\x01", "the output's BAM index is not Galaxy's bam_index"
    listed = store.list_objects_v2(Bucket=GALAXY_STORE_BUCKET, Prefix="_metadata_files/").get("Contents", [])
    assert any(o["Size"] == len(index.content) for o in listed), "the index the pod made is not in the store"


def test_a_staged_destination_still_works_with_the_same_store(api: GalaxyAPI, ran: Ran) -> None:
    assert api.dataset_content(ran.output("staged", "out_file1")) == b"staged\n"


def test_an_input_on_the_disk_backend_is_staged_and_the_log_says_why(
    s3_dev: DevEnvironment, api: GalaxyAPI, ran: Ran
) -> None:
    outputs = {name: api.dataset_content(i) for name, i in output_ids(ran.ok("mixed")[0]).items()}
    assert outputs["joined"] == b"on disk\nc\n"
    log = handler_log(s3_dev)
    disk_uuid, s3_uuid = ran.inputs["disk"][1], ran.inputs["c"][1]
    assert f"({disk_uuid}) is staged: its object store is of type 'disk', not an S3 (boto3) store" in log
    assert f"({s3_uuid}) is read in place" in log


def test_an_input_whose_object_changed_size_fails_before_the_tool_runs(
    api: GalaxyAPI, store: Any, ran: Ran
) -> None:
    reply, job = ran.jobs["corrupt"]
    assert job["state"] == "error", job
    text = what_was_said(api, reply, job)
    assert "has 5 bytes, expected 12" in text, text
    assert stored(store, ran.inputs["corrupt"][1]) == b"short"  # nothing was overwritten


def test_an_input_whose_object_is_gone_fails_naming_it(api: GalaxyAPI, ran: Ran) -> None:
    reply, job = ran.jobs["gone"]
    assert job["state"] == "error", job
    text = what_was_said(api, reply, job)
    assert uuid_key(ran.inputs["gone"][1]) in text, text


def test_a_pod_that_may_not_write_galaxys_bucket_fails_the_job_naming_bucket_and_permission(
    api: GalaxyAPI, ran: Ran
) -> None:
    """argo_script runs with the read-only identity: set_metadata's upload of its output is refused."""
    reply, job = ran.jobs["read-only"]
    assert job["state"] == "error", job
    text = what_was_said(api, reply, job)
    assert f"bucket {GALAXY_STORE_BUCKET}" in text and "s3:PutObject" in text and READER_SECRET in text, text
    for output in output_ids(reply).values():
        assert api.dataset(output)["state"] == "error"


def test_a_job_stopped_while_it_runs_leaves_no_dataset_ok_and_no_content(
    api: GalaxyAPI, store: Any, ran: Ran
) -> None:
    reply, job = ran.jobs["stopped"]
    assert job["state"] in ("deleted", "deleting", "stopped"), job
    output = output_ids(reply)["output"]
    assert api.dataset(output)["state"] != "ok"
    uuid = api.dataset(output)["uuid"]
    objects = store.list_objects_v2(Bucket=GALAXY_STORE_BUCKET, Prefix=uuid_key(uuid)).get("Contents", [])
    assert [o["Size"] for o in objects] in ([], [0]), (
        "a stopped job's output has content"
    )  # job setup's empty object


# -- bytes through the Galaxy host, counted (what `make bench` measures at 1 GiB) -----------------

SIZE = 4 * 1024 * 1024
#: What a direct job may move through the host: its job directory and requests (issue #15).
DIRECT_BUDGET = 1024 * 1024


@pytest.fixture(scope="module")
def counted(s3_dev: DevEnvironment, ran: Ran) -> DevEnvironment:
    """The module's Galaxy once every job of `ran` has ended: the proxy then counts one job alone."""
    return s3_dev


def proxy_of(env: DevEnvironment) -> CountingProxy:
    assert env.host_s3 is not None
    return env.host_s3


def copy_job(env: DevEnvironment, tool_id: str) -> tuple[str, str, ByteCounts]:
    """A new input made in the pod, copied by ``tool_id``: (input id, output id, host bytes of the copy)."""
    _, _, api = env.running()
    proxy = proxy_of(env)
    history = api.create_history(tool_id)
    made, job = run_and_wait(api, history, "argo_make_bytes", {"size": SIZE})
    assert job["state"] == "ok", job
    source = output_ids(made)["output"]
    before = proxy.settled(1.5)
    copied, job = run_and_wait(api, history, tool_id, {"input": {"src": "hda", "id": source}})
    moved = proxy.settled(1.5) - before
    assert job["state"] == "ok", job
    return source, output_ids(copied)["output"], moved


def cached_bytes(env: DevEnvironment, uuid: str) -> int:
    """Bytes of a dataset in Galaxy's own cache on the host (0 if absent)."""
    cache = env.work_dir / "galaxy" / "object_store_cache"
    path = cache / uuid[0] / uuid[1] / uuid[2] / f"dataset_{uuid}.dat"
    return path.stat().st_size if path.exists() else 0


def test_the_host_moves_no_dataset_bytes_in_direct_mode(counted: DevEnvironment) -> None:
    _, _, api = counted.running()
    source, output, moved = copy_job(counted, "argo_copy")
    assert 0 < moved.total <= DIRECT_BUDGET, moved
    # nothing of either dataset in the host's cache (Galaxy may leave an empty placeholder)
    assert cached_bytes(counted, api.dataset(source)["uuid"]) == 0
    assert cached_bytes(counted, api.dataset(output)["uuid"]) == 0
    assert api.dataset(output)["file_size"] == SIZE
    # read back through Galaxy (which pulls both now, after the count): the copy is its input
    assert api.dataset_content(output) == api.dataset_content(source)


def test_staged_mode_moves_each_dataset_through_the_host(counted: DevEnvironment) -> None:
    _, _, api = counted.running()
    source, output, moved = copy_job(counted, "argo_copy_staged")
    # input: pulled from Galaxy's store, uploaded to the bucket; output: downloaded, pushed back
    assert moved.sent >= 2 * SIZE and moved.received >= 2 * SIZE, moved
    assert api.dataset_content(output) == api.dataset_content(source)
