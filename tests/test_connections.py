"""Destination settings -> clients: the embedded stack's server.json, and sharing per endpoint set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from galaxy_argo.clients.argo import ArgoClient
from galaxy_argo.clients.connections import ConnectionPool, resolve_embedded, workflows_client
from galaxy_argo.clients.kube import KubernetesClient
from galaxy_argo.core.errors import SettingsError
from galaxy_argo.core.naming import EMBEDDED_KUBECONFIG
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.local.stack import KUBECONFIG, StackInfo, kubeconfig


def write_server_json(state_dir: Path) -> None:
    """What a running embedded stack writes for its clients."""
    info = {
        "argo_server_url": "http://127.0.0.1:1234",
        "token": "tok",
        "s3_endpoint_url": "http://127.0.0.1:5678",
        "s3_access_key_id": "AK",
        "s3_secret_access_key": "SK",
    }
    (state_dir / "server.json").write_text(json.dumps(info))


def test_empty_server_url_without_an_embedded_stack_names_the_param_and_the_fix(tmp_path: Path) -> None:
    settings = ArgoSettings.from_params({"embedded_state_dir": str(tmp_path / "nowhere")})
    with pytest.raises(SettingsError) as err:
        resolve_embedded(settings)
    message = str(err.value)
    assert "argo_server_url" in message
    assert str(tmp_path / "nowhere" / "server.json") in message
    assert "galaxy-argo local serve" in message


def test_embedded_stack_fills_only_what_the_destination_left_empty(tmp_path: Path) -> None:
    write_server_json(tmp_path)
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


def test_kubernetes_submission_takes_the_embedded_kubeconfig(tmp_path: Path) -> None:
    write_server_json(tmp_path)
    settings = ArgoSettings.from_params({"embedded_state_dir": str(tmp_path), "submission": "kubernetes"})
    resolved = resolve_embedded(settings)
    assert resolved.kubeconfig == str(tmp_path / EMBEDDED_KUBECONFIG) == str(tmp_path / KUBECONFIG)
    assert resolved.argo_server_url == "" and resolved.argo_token == ""  # not the backend's business
    assert resolved.s3_endpoint_url == "http://127.0.0.1:5678"
    missing = ArgoSettings.from_params(
        {"embedded_state_dir": str(tmp_path / "no"), "submission": "kubernetes"}
    )
    with pytest.raises(SettingsError, match="'kubeconfig'.*a kubeconfig"):
        resolve_embedded(missing)


def test_the_backend_follows_the_submission_param(tmp_path: Path) -> None:
    info = StackInfo(
        "http://127.0.0.1:1", "tok", "galaxy", "http://127.0.0.1:2", "a", "s", "b", str(tmp_path)
    )
    (tmp_path / "kubeconfig.yaml").write_text(kubeconfig(info))
    server = workflows_client(ArgoSettings.from_params({"argo_server_url": "http://127.0.0.1:1"}))
    kube = workflows_client(
        ArgoSettings.from_params(
            {"submission": "kubernetes", "kubeconfig": str(tmp_path / "kubeconfig.yaml")}
        )
    )
    assert isinstance(server, ArgoClient) and isinstance(kube, KubernetesClient)
    assert kube.server == "http://127.0.0.1:1"
    pool = ConnectionPool()
    try:
        common = {"argo_server_url": "http://127.0.0.1:1", "kubeconfig": str(tmp_path / "kubeconfig.yaml")}
        by_server = pool.get(ArgoSettings.from_params(common))
        by_kube = pool.get(ArgoSettings.from_params({**common, "submission": "kubernetes"}))
        assert by_server is not by_kube and isinstance(by_kube.argo, KubernetesClient)
    finally:
        pool.close()
