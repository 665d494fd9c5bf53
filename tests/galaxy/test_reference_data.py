"""Which prefixes of reference data a job loads, decided against the real bucket."""

from __future__ import annotations

from typing import Any

import pytest

from galaxy_argo.clients.staging import Stager, StagingError
from galaxy_argo.core.spec import StagedKind
from galaxy_argo.galaxy.plan import reference_inputs
from galaxy_argo.local.stack import StackInfo

pytestmark = pytest.mark.galaxy

PREFIX = "tests/reference-units"
MAPPING = {"/data/genomes": f"{PREFIX}/genomes", "/data/genomes/special": f"{PREFIX}/special"}


@pytest.fixture(scope="module")
def stager(s3: Any, stack_info: StackInfo) -> Stager:
    for key in (
        "genomes/hg38/bwa/hg38.fa",
        "genomes/hg38/bwa/hg38.fa.bwt",
        "genomes/hg38/bowtie2/hg38.1.bt2",
        "genomes/hg38/bowtie2/hg38.rev.1.bt2",
        "genomes/hg38/kraken/db/hash.k2d",
        "genomes/hg38/len/hg38.len",
        "genomes/top.txt",
        "special/x/x.fa",
    ):
        s3.put_object(Bucket=stack_info.bucket, Key=f"{PREFIX}/{key}", Body=b"x")
    return Stager(s3, stack_info.bucket, "tests")


def loaded(stager: Stager, *paths: str) -> dict[str, str]:
    staged = reference_inputs(stager, list(paths), MAPPING, set())
    assert all(s.kind is StagedKind.PREFIX for s in staged)
    return {s.pod_path: s.key for s in staged}


def test_a_file_or_an_index_prefix_loads_its_directory(stager: Stager) -> None:
    assert loaded(stager, "/data/genomes/hg38/bwa/hg38.fa") == {
        "/galaxy/reference/data/genomes/hg38/bwa": f"{PREFIX}/genomes/hg38/bwa"
    }
    # bowtie2's .loc names the common prefix of the index files, which is no object at all
    assert loaded(stager, "/data/genomes/hg38/bowtie2/hg38") == {
        "/galaxy/reference/data/genomes/hg38/bowtie2": f"{PREFIX}/genomes/hg38/bowtie2"
    }


def test_a_directory_loads_itself(stager: Stager) -> None:
    assert loaded(stager, "/data/genomes/hg38/kraken/db") == {
        "/galaxy/reference/data/genomes/hg38/kraken/db": f"{PREFIX}/genomes/hg38/kraken/db"
    }


def test_directories_inside_another_loaded_one_are_not_loaded_twice(stager: Stager) -> None:
    assert loaded(
        stager,
        "/data/genomes/hg38/bwa/hg38.fa",
        "/data/genomes/hg38/bwa/hg38.fa.bwt",
        "/data/genomes/hg38",
        "/data/genomes/hg38/len/hg38.len",
    ) == {"/galaxy/reference/data/genomes/hg38": f"{PREFIX}/genomes/hg38"}


def test_the_longest_mapped_directory_wins_and_unmapped_paths_are_left_alone(stager: Stager) -> None:
    assert loaded(stager, "/data/genomes/special/x/x.fa", "/cvmfs/data.galaxyproject.org/x.fa") == {
        "/galaxy/reference/data/genomes/special/x": f"{PREFIX}/special/x"
    }


def test_a_file_at_the_top_loads_the_mapped_directory(stager: Stager) -> None:
    assert loaded(stager, "/data/genomes/top.txt") == {"/galaxy/reference/data/genomes": f"{PREFIX}/genomes"}


def test_missing_reference_data_names_the_path_and_where_it_was_looked_for(stager: Stager) -> None:
    with pytest.raises(StagingError) as err:
        loaded(stager, "/data/genomes/mm10/bwa/mm10.fa")
    assert str(err.value) == (
        "reference data /data/genomes/mm10/bwa/mm10.fa is not in the bucket "
        f"(nothing below s3://{stager.bucket}/{PREFIX}/genomes/mm10/bwa/)"
    )
