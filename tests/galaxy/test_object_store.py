"""Galaxy with its datasets in its own S3 object store (``dev up --object-store s3``), jobs on Argo.

The starting point of object-store-native jobs (issue #15): a Galaxy whose ``boto3`` object store
(``store_by: uuid``) lives in its own bucket on the stack's SeaweedFS, running jobs through the
Argo destination as it is today (staged: the Galaxy host moves the bytes). What is checked here is
what direct mode builds on: where Galaxy's objects are, and that jobs work with such a Galaxy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from galaxy_argo.clients.connections import s3_client
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.dev.environment import GALAXY_STORE_BUCKET, DevEnvironment, ObjectStoreKind
from tests.galaxy_env import output_ids, run_and_wait

pytestmark = pytest.mark.galaxy


@pytest.fixture(scope="module")
def s3_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevEnvironment]:
    with DevEnvironment(tmp_path_factory.mktemp("dev-s3"), object_store=ObjectStoreKind.S3) as env:
        yield env


@pytest.fixture(scope="module")
def store(s3_dev: DevEnvironment) -> Any:
    stack, _, _ = s3_dev.running()
    return s3_client(ArgoSettings.from_params(stack.info().destination_params()))


def uuid_key(uuid: str) -> str:
    """Galaxy's key for a dataset stored by uuid: three one-character folders, then the file."""
    return f"{uuid[0]}/{uuid[1]}/{uuid[2]}/dataset_{uuid}.dat"


def stored(store: Any, uuid: str) -> bytes:
    body: bytes = store.get_object(Bucket=GALAXY_STORE_BUCKET, Key=uuid_key(uuid))["Body"].read()
    return body


def test_a_second_dev_up_finds_galaxys_bucket_there(s3_dev: DevEnvironment, store: Any) -> None:
    stack, _, _ = s3_dev.running()
    assert stack.s3 is not None
    stack.s3.ensure_bucket(GALAXY_STORE_BUCKET)  # what a restart on the same work dir does
    assert GALAXY_STORE_BUCKET in {b["Name"] for b in store.list_buckets()["Buckets"]}


def test_uploads_land_in_galaxys_bucket_by_uuid(s3_dev: DevEnvironment, store: Any) -> None:
    _, _, api = s3_dev.running()
    history = api.create_history("object store")
    dataset = api.upload_text(history, "in the store\n", file_type="txt", name="input.txt")
    api.wait_for_dataset(history, dataset, timeout=120)
    assert stored(store, api.dataset(dataset)["uuid"]) == b"in the store\n"


def test_a_job_on_argo_reads_and_writes_galaxys_object_store(s3_dev: DevEnvironment, store: Any) -> None:
    stack, galaxy, api = s3_dev.running()
    history = api.create_history("object store job")
    dataset = api.upload_text(history, "hello\nstore\n", file_type="txt", name="input.txt")
    api.wait_for_dataset(history, dataset, timeout=120)

    reply, job = run_and_wait(api, history, "argo_upper", {"input": {"src": "hda", "id": dataset}})

    assert job["state"] == "ok", job
    assert job["external_id"].startswith("galaxy-"), job  # it ran on the Argo destination
    output = output_ids(reply)["output"]
    assert api.dataset_content(output) == b"HELLO\nSTORE\n"
    assert stored(store, api.dataset(output)["uuid"]) == b"HELLO\nSTORE\n"
    # the keys reach Galaxy through its environment, not its config: with extended metadata Galaxy
    # serializes the object store config into the job directory, which the runner ships to the pod
    assert stack.info().s3_secret_access_key not in galaxy.config_path.read_text()


def test_the_next_job_reads_the_previous_output(s3_dev: DevEnvironment) -> None:
    _, _, api = s3_dev.running()
    history = api.create_history("object store chain")
    dataset = api.upload_text(history, "chain\n", file_type="txt", name="input.txt")
    api.wait_for_dataset(history, dataset, timeout=120)
    first, _ = run_and_wait(api, history, "argo_upper", {"input": {"src": "hda", "id": dataset}})
    upper = output_ids(first)["output"]
    second, job = run_and_wait(api, history, "argo_upper", {"input": {"src": "hda", "id": upper}})
    assert job["state"] == "ok", job
    assert api.dataset_content(output_ids(second)["output"]) == b"CHAIN\n"
