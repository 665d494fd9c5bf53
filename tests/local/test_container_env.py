"""A container's env as the kubelet builds it from the engine's Secrets, with the kubelet's own messages."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from galaxy_argo.local.container_env import ContainerConfigError, UnsupportedEnvError, container_environment

SECRETS = {"store": {"accesskey": "AKIDSTORE", "secretkey": "s3cr3t-value", "bad=key": "x"}}


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return container_environment(container, SECRETS, "galaxy")


def key_ref(name: str, key: str, **extra: Any) -> dict[str, Any]:
    return {"valueFrom": {"secretKeyRef": {"name": name, "key": key, **extra}}}


def test_values_and_secret_key_refs() -> None:
    container = {
        "env": [
            {"name": "PLAIN", "value": "x"},
            {"name": "EMPTY"},
            {"name": "AWS_ACCESS_KEY_ID", **key_ref("store", "accesskey")},
        ]
    }
    assert env_of(container) == {"PLAIN": "x", "EMPTY": "", "AWS_ACCESS_KEY_ID": "AKIDSTORE"}


def test_env_from_a_secret_with_prefix_and_env_wins(caplog: pytest.LogCaptureFixture) -> None:
    container = {
        "envFrom": [{"secretRef": {"name": "store"}, "prefix": "S3_"}],
        "env": [{"name": "S3_accesskey", "value": "overridden"}],
    }
    with caplog.at_level(logging.WARNING):
        env = env_of(container)
    assert env == {"S3_accesskey": "overridden", "S3_secretkey": "s3cr3t-value"}
    # kubelet skips keys that are no variable name, and says which; never a value
    assert "S3_bad=key" in caplog.text and "s3cr3t-value" not in caplog.text


@pytest.mark.parametrize(
    ("container", "message"),
    [
        ({"env": [{"name": "A", **key_ref("nope", "accesskey")}]}, 'secret "nope" not found'),
        (
            {"env": [{"name": "A", **key_ref("store", "nokey")}]},
            "couldn't find key nokey in Secret galaxy/store",
        ),
        ({"envFrom": [{"secretRef": {"name": "nope"}}]}, 'secret "nope" not found'),
    ],
)
def test_a_missing_secret_or_key_is_kubelets_config_error(container: dict[str, Any], message: str) -> None:
    with pytest.raises(ContainerConfigError) as info:
        env_of(container)
    assert str(info.value) == message


def test_optional_references_are_skipped() -> None:
    container = {
        "envFrom": [{"secretRef": {"name": "nope", "optional": True}}],
        "env": [
            {"name": "A", **key_ref("nope", "accesskey", optional=True)},
            {"name": "B", **key_ref("store", "nokey", optional=True)},
            {"name": "C", **key_ref("store", "accesskey", optional=True)},
        ],
    }
    assert env_of(container) == {"C": "AKIDSTORE"}


@pytest.mark.parametrize(
    ("container", "match"),
    [
        (
            {"env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
            r'env "POD": valueFrom fieldRef is not supported .*\(supported: value, valueFrom.secretKeyRef\)',
        ),
        (
            {"envFrom": [{"configMapRef": {"name": "cm"}}]},
            r"envFrom configMapRef is not supported .*\(supported: secretRef\)",
        ),
    ],
)
def test_other_sources_are_unsupported(container: dict[str, Any], match: str) -> None:
    with pytest.raises(UnsupportedEnvError, match=match):
        env_of(container)
