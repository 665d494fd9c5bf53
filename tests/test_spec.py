"""JobSpec: JSON round-trip and validation errors that name the field and the rule."""

from __future__ import annotations

import dataclasses
import json

import pytest

from galaxy_argo.core.errors import SpecError
from galaxy_argo.core.spec import JobSpec, Resources, StagedFile, StagedKind
from tests.conftest import golden_cases

SHA = "a" * 64


def minimal(**overrides: object) -> dict:
    data: dict = {
        "job_id": "7",
        "tool_id": "cat1",
        "tool_version": "1.0",
        "command_line": "cat /galaxy/inputs/a > /galaxy/outputs/b",
        "key_prefix": "galaxy-argo/jobs/7",
        "inputs": [{"name": "in1", "pod_path": "/galaxy/inputs/a", "key": "k/a", "size": 1, "sha256": SHA}],
        "outputs": [{"name": "out1", "pod_path": "/galaxy/outputs/b", "key": "k/b"}],
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("name", sorted(golden_cases()))
def test_json_round_trip_is_exact(name: str) -> None:
    spec = JobSpec.from_dict(golden_cases()[name]["spec"])
    again = JobSpec.from_json(spec.to_json())
    assert again == spec
    assert again.to_json() == spec.to_json()


def test_defaults_and_types_after_parse() -> None:
    spec = JobSpec.from_dict(minimal())
    assert spec.inputs[0].kind is StagedKind.DATASET
    assert spec.resources == Resources()
    assert spec.image is None and spec.attempt == 0
    assert isinstance(spec.inputs, tuple)


def test_spec_is_frozen() -> None:
    spec = JobSpec.from_dict(minimal())
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.job_id = "8"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"job_id": "a b"}, "job_id 'a b'"),
        ({"job_id": ""}, "job_id ''"),
        ({"tool_id": ""}, "tool_id ''"),
        ({"command_line": "   "}, "command_line"),
        ({"command_line": "a\x00b"}, "NUL"),
        ({"key_prefix": "/abs"}, "key_prefix '/abs'"),
        ({"key_prefix": "a/../b"}, "'..'"),
        ({"key_prefix": "a/{{x}}"}, "braces"),
        ({"env": {"1BAD": "x"}}, "env '1BAD'"),
        (
            {"working_directory": "/tmp/x"},
            "working_directory '/tmp/x': expected an absolute path below /galaxy/",
        ),
        ({"resources": {"cores": 0}}, "resources.cores"),
        ({"resources": {"memory_mib": 0}}, "resources.memory_mib 0"),
        ({"resources": {"gpus": -1}}, "resources.gpus -1"),
        ({"resources": {"walltime_seconds": 0}}, "resources.walltime_seconds 0"),
        ({"resources": {"cpus": 2}}, "resources: unknown field(s) cpus"),
        ({"attempt": -1}, "attempt -1"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"version": 2}, "version 2"),
        ({"inputs": {}}, "inputs: expected a list"),
    ],
)
def test_bad_fields_are_named(overrides: dict, fragment: str) -> None:
    with pytest.raises(SpecError) as err:
        JobSpec.from_dict(minimal(**overrides))
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    ("staged", "fragment"),
    [
        ({"name": "In1"}, "inputs[0].name 'In1'"),
        ({"name": "job-directory"}, "reserved"),
        ({"pod_path": "/galaxy/inputs/../etc/passwd"}, "normalised"),
        ({"pod_path": "/galaxy/inputs/a b"}, "only letters"),
        ({"pod_path": "/galaxy/inputs/a$(x)"}, "only letters"),
        ({"pod_path": "/galaxy/.argo/x"}, "reserved for galaxy-argo"),
        ({"pod_path": "relative"}, "absolute path below /galaxy/"),
        ({"key": ""}, "inputs[0].key ''"),
        ({"key": "a//b"}, "empty"),
        ({"key": "a/b\n"}, "control characters"),
        ({"key": "k" * 1025}, "1024 bytes"),
        ({"sha256": "XYZ"}, "64 lower-case hex"),
        ({"sha256": None}, "needs size and sha256"),
        ({"size": -1}, "inputs[0].size -1"),
        ({"size": True}, "inputs[0].size True"),
        ({"kind": "blob"}, "inputs[0].kind 'blob': expected one of dataset, directory"),
        ({"extra": 1}, "inputs[0]: unknown field(s) extra"),
    ],
)
def test_bad_staged_files_are_named(staged: dict, fragment: str) -> None:
    data = minimal()
    data["inputs"][0].update(staged)
    with pytest.raises(SpecError) as err:
        JobSpec.from_dict(data)
    assert fragment in str(err.value)


def test_duplicate_names_and_paths_are_refused() -> None:
    data = minimal()
    data["outputs"].append({"name": "in1", "pod_path": "/galaxy/outputs/c", "key": "k/c"})
    with pytest.raises(SpecError, match="outputs\\[1\\].name 'in1' is also used by inputs\\[0\\]"):
        JobSpec.from_dict(data)
    data = minimal()
    data["outputs"].append({"name": "out2", "pod_path": "/galaxy/inputs/a", "key": "k/c"})
    with pytest.raises(SpecError, match="pod_path '/galaxy/inputs/a' is also used by inputs\\[0\\]"):
        JobSpec.from_dict(data)


def test_bundles_must_be_directories() -> None:
    data = minimal(job_directory={"name": "j", "pod_path": "/galaxy/job", "key": "k/j.tgz"})
    with pytest.raises(SpecError, match="job_directory.kind: expected 'directory'"):
        JobSpec.from_dict(data)


def test_input_directories_need_no_checksum() -> None:
    data = minimal()
    data["inputs"].append(
        {"name": "extra", "pod_path": "/galaxy/inputs/a_files", "key": "k/x.tgz", "kind": "directory"}
    )
    spec = JobSpec.from_dict(data)
    assert spec.inputs[1].kind is StagedKind.DIRECTORY


def test_reference_prefixes_are_inputs_only_and_need_no_checksum() -> None:
    data = minimal()
    data["inputs"].append(
        {
            "name": "ref-seq",
            "pod_path": "/galaxy/reference/data/hg38/seq",
            "key": "refs/hg38/seq",
            "kind": "prefix",
        }
    )
    spec = JobSpec.from_dict(data)
    assert spec.inputs[1].kind is StagedKind.PREFIX
    assert JobSpec.from_json(spec.to_json()) == spec
    data["outputs"][0]["kind"] = "prefix"
    with pytest.raises(SpecError, match=r"outputs\[0\] \(out1\): kind 'prefix' is for inputs only"):
        JobSpec.from_dict(data)


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(SpecError, match="not valid JSON: .*line 1 column"):
        JobSpec.from_json("{nope")
    with pytest.raises(SpecError, match="expected a JSON object, got list"):
        JobSpec.from_json("[]")
    with pytest.raises(SpecError, match="missing field\\(s\\): job_id, tool_id"):
        JobSpec.from_json(json.dumps({"tool_version": "1"}))


def test_validate_catches_objects_built_in_python() -> None:
    spec = JobSpec(
        job_id="1",
        tool_id="t",
        tool_version="1",
        command_line="true",
        key_prefix="p",
        inputs=(StagedFile("x", "/galaxy/x", "k"),),
    )
    with pytest.raises(SpecError, match="needs size and sha256"):
        spec.validate()


# -- object_store: direct ----------------------------------------------------------------------------

IN_PLACE = {
    "name": "in-x",
    "pod_path": "/galaxy/inputs/dataset_x.dat",
    "key": "1/3/5/dataset_135e.dat",
    "bucket": "galaxy-store",
    "size": 3,
}


def test_an_input_read_in_place_needs_its_size_but_not_its_sha256() -> None:
    spec = JobSpec.from_dict(
        minimal(inputs=[IN_PLACE], store_endpoints={"galaxy-store": "http://s3.svc:8333"})
    )
    assert spec.inputs[0].bucket == "galaxy-store" and spec.inputs[0].sha256 is None
    with pytest.raises(SpecError, match="needs size"):
        JobSpec.from_dict(
            minimal(
                inputs=[{**IN_PLACE, "size": None}], store_endpoints={"galaxy-store": "http://s3.svc:8333"}
            )
        )
    with pytest.raises(SpecError, match="needs size and sha256"):
        JobSpec.from_dict(minimal(inputs=[{k: v for k, v in IN_PLACE.items() if k != "bucket"}]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"inputs": [IN_PLACE]}, "bucket 'galaxy-store' has no entry in store_endpoints"),
        ({"store_endpoints": {"galaxy-store": "s3.svc:8333"}}, r"expected http\(s\)://host\[:port\]"),
        ({"store_endpoints": {"galaxy-store": "http://s3.svc/path"}}, "with no path"),
        ({"store_endpoints": {"Not_A_Bucket": "http://s3.svc"}}, "is not an S3 bucket name"),
        ({"inputs": [{**IN_PLACE, "bucket": "UPPER"}]}, "expected an S3 bucket name"),
        ({"discard": ["/etc/passwd"]}, "expected an absolute path below /galaxy/"),
        ({"keep": ["/galaxy/job/../x"]}, "normalised"),
        ({"discard": "/galaxy/job/working"}, "discard: expected a list of pod paths"),
    ],
)
def test_bad_object_store_fields_are_named(overrides: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        JobSpec.from_dict(minimal(**overrides))


def test_discard_globs_are_pod_paths() -> None:
    spec = JobSpec.from_dict(
        minimal(discard=["/galaxy/job/outputs/dataset_*"], keep=["/galaxy/job/working/x"])
    )
    assert spec.discard == ("/galaxy/job/outputs/dataset_*",)
    assert JobSpec.from_dict(spec.to_dict()) == spec
