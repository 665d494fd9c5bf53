"""No credential in any workflow, log or message, after the real jobs of this session (including
those that waited through outages and failed on purpose): the S3 keys and the Argo token of the
stack are searched for, verbatim, in everything an operator or a user can read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from galaxy_argo.clients.argo import ArgoClient
from galaxy_argo.core.naming import LABEL_PREFIX
from galaxy_argo.dev.environment import DevEnvironment
from galaxy_argo.dev.galaxy_api import GalaxyAPI
from galaxy_argo.local.stack import StackInfo
from tests.galaxy_env import run_and_wait

pytestmark = pytest.mark.galaxy


def secrets_of(info: StackInfo) -> dict[str, str]:
    found = {"argo token": info.token, "S3 secret key": info.s3_secret_access_key}
    assert all(len(value) >= 16 for value in found.values())  # long enough not to match by chance
    return found


def readable_texts(
    dev: DevEnvironment, argo: ArgoClient, api: GalaxyAPI, history: str
) -> Iterator[tuple[str, str]]:
    """(where, text) of what operators and users see: handler log, workflows, pod logs, job details."""
    assert dev.galaxy is not None and dev.stack is not None
    yield "Galaxy's log", dev.galaxy.log_path.read_text(errors="replace")
    names = list(argo.poll(f"{LABEL_PREFIX}/instance=main", fields="items.metadata.name"))
    assert names, "no workflow ran before this test"
    for name in names:
        workflow = argo.get(name)
        yield f"workflow {name}", repr(workflow)
        for container in ("stage-in", "run", "metadata", "main"):
            yield (
                f"logs of {name}/{container}",
                "\n".join(line for _, line in argo.logs(name, container=container)),
            )
    for item in api.history_contents(history):
        yield f"dataset {item['id']}", repr(api.dataset(item["id"]))
    state_dir = Path(dev.stack.state_dir)
    for path in sorted((state_dir / "objects").rglob("*.json")):
        yield f"stored {path.relative_to(state_dir)}", path.read_text(errors="replace")


def test_no_credential_anywhere_readable(
    dev: DevEnvironment,
    argo: ArgoClient,
    api: GalaxyAPI,
    history: str,
    stack_info: StackInfo,
    text_dataset: Callable[..., str],
) -> None:
    # jobs of its own, whatever ran before: one that succeeds, one whose tool fails
    dataset = text_dataset("secret-free\n")
    _, ok = run_and_wait(api, history, "argo_upper", {"input": {"src": "hda", "id": dataset}})
    _, failed = run_and_wait(api, history, "argo_fail", {})
    assert (ok["state"], failed["state"]) == ("ok", "error")
    leaks = [
        f"{what} in {where}"
        for where, text in readable_texts(dev, argo, api, history)
        for what, secret in secrets_of(stack_info).items()
        if secret in text
    ]
    assert leaks == []
