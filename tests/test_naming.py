"""Names and labels: always valid for Kubernetes, deterministic, distinct for distinct inputs."""

from __future__ import annotations

import random
import re
import string

import pytest

from galaxy_argo.core.naming import label_value, user_hash, workflow_name

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_plain_names() -> None:
    assert workflow_name("main", "42") == "galaxy-main-42"
    assert workflow_name("main", "42", attempt=2) == "galaxy-main-42-r2"
    assert workflow_name("usegalaxy-eu", "1234567890") == "galaxy-usegalaxy-eu-1234567890"


def random_texts(n: int, alphabet: str, max_len: int) -> list[str]:
    rng = random.Random(1234)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, max_len))) for _ in range(n)]


@pytest.mark.parametrize(
    "job_id", ["A/B", "x" * 200, "--", "Ünïcode", "1.2.3", *random_texts(200, string.printable, 80)]
)
def test_workflow_names_are_dns_labels_and_deterministic(job_id: str) -> None:
    for attempt in (0, 3):
        name = workflow_name("an-instance-of-20ch", job_id, attempt)
        assert DNS_LABEL.match(name), name
        assert len(name) <= 63
        assert name == workflow_name("an-instance-of-20ch", job_id, attempt)


def test_distinct_job_ids_give_distinct_names() -> None:
    ids = ["a/b", "a_b", "A-B", "a-b", "x" * 100, "x" * 101]
    names = {workflow_name("main", i) for i in ids}
    assert len(names) == len(ids)


@pytest.mark.parametrize(
    "text",
    [
        "cat1",
        "toolshed.g2.bx.psu.edu/repos/iuc/bwa_mem2/bwa_mem2/2.2.1+galaxy1",
        "__DATA_FETCH__",
        "x" * 300,
        " spaced tool ",
        "",
        *random_texts(300, string.printable, 120),
    ],
)
def test_label_values_are_valid(text: str) -> None:
    value = label_value(text)
    assert LABEL_VALUE.match(value), value
    assert len(value) <= 63


def test_label_values_keep_clean_text_and_separate_similar_ids() -> None:
    assert label_value("cat1") == "cat1"
    shed = "toolshed.g2.bx.psu.edu/repos/iuc/bwa_mem2/bwa_mem2/2.2.1+galaxy1"
    # Too long for a label: the informative tail is kept, with a hash of the whole id.
    assert re.match(r"^.*bwa_mem2_2\.2\.1_galaxy1\.[0-9a-f]{8}$", label_value(shed))
    long_a, long_b = "t/" + "a" * 100, "u/" + "a" * 100
    assert label_value(long_a) != label_value(long_b)


def test_user_hash_is_stable_pseudonymous_and_per_instance() -> None:
    assert user_hash("alice@example.org", "main") == user_hash("alice@example.org", "main")
    assert user_hash("alice@example.org", "main") != user_hash("alice@example.org", "other")
    assert "alice" not in user_hash("alice@example.org", "main")
    assert LABEL_VALUE.match(user_hash("alice@example.org", "main"))
    assert user_hash("", "main") == ""
