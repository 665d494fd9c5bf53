"""Odd and long file names a tool writes come back intact, and nothing in them is executed."""

from __future__ import annotations

import pytest

from galaxy_argo.dev.environment import DevEnvironment
from galaxy_argo.dev.galaxy_api import GalaxyAPI
from tests.galaxy_env import ODD_NAMES, run_and_wait, wait_for_galaxy

pytestmark = pytest.mark.galaxy


def test_odd_and_long_names_are_discovered_verbatim(
    api: GalaxyAPI, history: str, dev: DevEnvironment
) -> None:
    reply, job = run_and_wait(api, history, "argo_odd_names", {})
    assert job["state"] == "ok", job
    collection = reply["output_collections"][0]["id"]
    elements = wait_for_galaxy(
        lambda: api.get(f"/api/dataset_collections/{collection}")["elements"], 60, "the discovered elements"
    )
    found = {e["element_identifier"]: api.dataset_content(e["object"]["id"]).decode() for e in elements}
    assert found == {name: name for name in ODD_NAMES}
    assert dev.stack is not None
    assert not list(dev.stack.state_dir.rglob("pwned"))  # the shell syntax in a name never ran
