"""Destination settings -> clients: the embedded stack's server.json, and sharing per endpoint set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from galaxy_argo.connections import ConnectionPool, resolve_embedded
from galaxy_argo.errors import SettingsError
from galaxy_argo.settings import ArgoSettings


def test_empty_server_url_without_an_embedded_stack_names_the_param_and_the_fix(tmp_path: Path) -> None:
    settings = ArgoSettings.from_params({"embedded_state_dir": str(tmp_path / "nowhere")})
    with pytest.raises(SettingsError) as err:
        resolve_embedded(settings)
    message = str(err.value)
    assert "argo_server_url" in message
    assert str(tmp_path / "nowhere" / "server.json") in message
    assert "galaxy-argo local serve" in message


def test_embedded_stack_fills_only_what_the_destination_left_empty(tmp_path: Path) -> None:
    (tmp_path / "server.json").write_text(
        json.dumps(
            {
                "argo_server_url": "http://127.0.0.1:1234",
                "token": "tok",
                "s3_endpoint_url": "http://127.0.0.1:5678",
                "s3_access_key_id": "AK",
                "s3_secret_access_key": "SK",
            }
        )
    )
    settings = ArgoSettings.from_params({"embedded_state_dir": str(tmp_path), "s3_access_key_id": "MINE"})
    resolved = resolve_embedded(settings)
    assert resolved.argo_server_url == "http://127.0.0.1:1234"
    assert resolved.argo_token == "tok"
    assert resolved.s3_access_key_id == "MINE"
    assert resolved.s3_secret_access_key == "SK"
    explicit = ArgoSettings.from_params({"argo_server_url": "https://argo.example.org"})
    assert resolve_embedded(explicit) is explicit


def test_destinations_on_the_same_endpoints_share_one_connection() -> None:
    pool = ConnectionPool()
    base = {"argo_server_url": "http://127.0.0.1:1", "s3_endpoint_url": "http://127.0.0.1:2"}
    small = ArgoSettings.from_params({**base, "memory": "1Gi"})
    big = ArgoSettings.from_params({**base, "memory": "32Gi", "cores": 8})
    other = ArgoSettings.from_params({**base, "namespace": "other"})
    try:
        assert pool.get(small) is pool.get(big)
        assert pool.get(other) is not pool.get(small)
        assert pool.get(small).selector == "galaxy-argo.galaxyproject.org/instance=main"
    finally:
        pool.close()
