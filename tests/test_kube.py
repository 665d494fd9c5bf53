"""expand_nodes: the controller's compressed node status, as the Argo Server expands it."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from galaxy_argo.clients.argo import ArgoError
from galaxy_argo.clients.kube import expand_nodes


def compressed(nodes: dict[str, object]) -> str:
    # As Argo's util/file.CompressEncodeString: gzip, then standard base64.
    return base64.b64encode(gzip.compress(json.dumps(nodes).encode())).decode()


def test_compressed_nodes_are_expanded() -> None:
    nodes = {"wf": {"id": "wf", "type": "Pod", "phase": "Succeeded"}}
    workflow = {
        "metadata": {"name": "wf"},
        "status": {"phase": "Succeeded", "compressedNodes": compressed(nodes)},
    }
    assert expand_nodes(workflow)["status"] == {"phase": "Succeeded", "nodes": nodes}


def test_plain_nodes_are_left_alone() -> None:
    workflow = {"metadata": {"name": "wf"}, "status": {"nodes": {"a": {}}}}
    assert expand_nodes(workflow) == {"metadata": {"name": "wf"}, "status": {"nodes": {"a": {}}}}
    assert expand_nodes({"metadata": {"name": "wf"}}) == {"metadata": {"name": "wf"}}


def test_undecodable_nodes_name_the_workflow() -> None:
    workflow = {"metadata": {"name": "wf-9"}, "status": {"compressedNodes": "not base64 gzip"}}
    with pytest.raises(ArgoError, match="workflow wf-9: status.compressedNodes cannot be decoded"):
        expand_nodes(workflow)
