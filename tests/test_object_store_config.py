"""The object store config a pod reads (`pod_object_store_config`), from Galaxy's own serialization.

Galaxy's boto3 store, built by Galaxy from a config holding keys, serializes them in plain text
(``to_dict``, what ``metadata/object_store_conf.json`` holds); the pod's copy must hold none,
point at the pod's endpoint and cache, and keep only the backends a pod can reach.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from galaxy.objectstore import build_object_store_from_config
from galaxy.util.bunch import Bunch

from galaxy_argo.galaxy.object_store import POD_STORE_CACHE, StoreError, pod_object_store_config

ACCESS, SECRET = "AKIA-MARKER", "SECRET-MARKER-0123456789"


def boto3_backend(tmp: Path, **extra: Any) -> dict[str, Any]:
    return {
        "type": "boto3",
        "store_by": "uuid",
        "auth": {"access_key": ACCESS, "secret_key": SECRET},
        "bucket": {"name": "galaxy-store"},
        # No server is asked: the bucket check is skipped below, keys are never sent.
        "connection": {"endpoint_url": "http://127.0.0.1:9", "region": "us-east-1"},
        "cache": {"path": str(tmp / "host-cache"), "size": 10, "cache_updated_data": True},
        "extra_dirs": [
            {"type": "job_work", "path": str(tmp / "jobs")},
            {"type": "temp", "path": str(tmp / "t")},
        ],
        **extra,
    }


def serialized(config: dict[str, Any], tmp: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What Galaxy writes into a job's metadata/object_store_conf.json for ``config``."""
    from galaxy.objectstore import s3_boto3

    monkeypatch.setattr(s3_boto3.S3ObjectStore, "_configure_connection", lambda self: None)
    app_config = Bunch(
        object_store_check_old_style=False,
        file_path=str(tmp / "files"),
        jobs_directory=str(tmp / "jobs"),
        new_file_path=str(tmp / "tmp"),
        umask=0o077,
        gid=None,
        object_store_cache_path=str(tmp / "cache"),
        object_store_cache_size=-1,
        object_store_store_by="uuid",
        enable_quotas=False,
    )
    store = build_object_store_from_config(app_config, config_dict=config, disable_process_management=True)
    data: dict[str, Any] = json.loads(json.dumps(store.to_dict()))
    return data


def test_galaxys_serialized_keys_and_host_paths_are_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = serialized(boto3_backend(tmp_path), tmp_path, monkeypatch)
    assert SECRET in json.dumps(original)  # what Galaxy would ship with the job

    pod = pod_object_store_config(original, "http://seaweedfs.galaxy.svc:8333")

    text = json.dumps(pod)
    assert SECRET not in text and ACCESS not in text and str(tmp_path) not in text
    assert pod["auth"] == {}
    assert pod["connection"]["endpoint_url"] == "http://seaweedfs.galaxy.svc:8333"
    assert pod["cache"] == {"path": POD_STORE_CACHE, "size": 10, "cache_updated_data": False}
    assert pod["bucket"] == original["bucket"] and pod["store_by"] == "uuid"


def test_an_empty_endpoint_keeps_galaxys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pod = pod_object_store_config(serialized(boto3_backend(tmp_path), tmp_path, monkeypatch), "")
    assert pod["connection"]["endpoint_url"] == "http://127.0.0.1:9"


def test_a_distributed_store_keeps_its_s3_backends_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "type": "distributed",
        "backends": [
            {"id": "s3main", "weight": 1, **boto3_backend(tmp_path)},
            {"id": "disk", "weight": 1, "type": "disk", "files_dir": str(tmp_path / "disk")},
        ],
    }
    pod = pod_object_store_config(serialized(config, tmp_path, monkeypatch), "")
    assert [b["id"] for b in pod["backends"]] == ["s3main"]
    assert SECRET not in json.dumps(pod) and str(tmp_path) not in json.dumps(pod)


def test_a_credential_in_an_unknown_place_refuses_the_job() -> None:
    with pytest.raises(StoreError, match=r"still holds credentials at backends\[0\]\.vault\.password"):
        pod_object_store_config(
            {"type": "distributed", "backends": [{"type": "boto3", "vault": {"password": "x"}}]}, ""
        )
