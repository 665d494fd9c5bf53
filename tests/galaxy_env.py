"""One real Galaxy 26.1.2 + embedded stack per session (`DevEnvironment`), always stopped.

Its fixtures are imported by the root conftest, so tests/galaxy and tests/faults share the one
Galaxy (started when the first test needs it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from galaxy_argo.clients.argo import ArgoClient
from galaxy_argo.clients.connections import s3_client
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.dev.environment import DEMO_REFERENCE_ROOT, DEMO_TOOLS, DevEnvironment
from galaxy_argo.dev.galaxy_api import GalaxyAPI
from galaxy_argo.local.stack import StackInfo
from tests.conftest import wait_until
from tests.faults.proxy import FaultProxy

#: A tool routed to an environment whose params hold a typo, to see what the user is told.
MISCONFIGURED_TOOL = """<tool id="argo_misconfigured" name="Misconfigured" version="0.1.0" profile="22.05">
    <command>echo never > '$output'</command>
    <inputs/>
    <outputs><data name="output" format="txt"/></outputs>
</tool>
"""


#: Files with odd and long names, discovered into a collection: spaces, quotes, Unicode, a
#: leading dash, shell syntax, and a 200-character name. They travel back in the job directory.
ODD_NAMES = ["with space", "quote's", "ünïcödé-名前", "-leading-dash", "$(touch pwned)", "x" * 200]
ODD_NAMES_TOOL = """<tool id="argo_odd_names" name="Odd names" version="0.1.0" profile="22.05">
    <requirements><container type="docker">debian:bookworm-slim</container></requirements>
    <command><![CDATA[
__COMMAND__
    ]]></command>
    <inputs/>
    <outputs>
        <collection name="parts" type="list">
            <discover_datasets pattern="__name_and_ext__" directory="out"/>
        </collection>
    </outputs>
</tool>
"""


#: The demo reference tool again, on a destination whose reference_data prefix was never pushed;
#: long, so the failure message is longer than the 255 characters Galaxy keeps of it.
UNPUSHED_PREFIX = "galaxy-argo/reference/never-pushed/" + "/".join(["a-rather-deep-directory"] * 4)


@pytest.fixture(scope="session")
def s3_proxy() -> Iterator[FaultProxy]:
    """Between Galaxy and S3 for the `argo_proxied` environment; points at SeaweedFS once it runs."""
    with FaultProxy(upstream_port=0) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory, s3_proxy: FaultProxy) -> Iterator[DevEnvironment]:
    extra_tools = tmp_path_factory.mktemp("extra-tools")
    # argo_sleep again, on a destination whose Galaxy-side S3 traffic goes through the fault proxy
    sleep_tool = (DEMO_TOOLS / "argo_sleep.xml").read_text()
    (extra_tools / "argo_sleep_proxied.xml").write_text(
        sleep_tool.replace('id="argo_sleep"', 'id="argo_sleep_proxied"', 1)
    )
    (extra_tools / "argo_misconfigured.xml").write_text(MISCONFIGURED_TOOL)
    # argo_upper again, on a destination that submits through the Kubernetes API (Workflow resources)
    upper_tool = (DEMO_TOOLS / "argo_upper.xml").read_text()
    (extra_tools / "argo_upper_kube.xml").write_text(
        upper_tool.replace('id="argo_upper"', 'id="argo_upper_kube"', 1)
    )
    # hex, so neither Galaxy's Cheetah nor the shell sees the names
    # (one line: Galaxy joins a command's lines)
    hex_names = json.dumps(ODD_NAMES).encode().hex()
    command = (
        "mkdir out && python3 -c 'import json; "
        f'[open(f"out/{{n}}.txt", "w").write(n) for n in json.loads(bytes.fromhex("{hex_names}"))]\''
    )
    (extra_tools / "argo_odd_names.xml").write_text(ODD_NAMES_TOOL.replace("__COMMAND__", command))
    reference_tool = (DEMO_TOOLS / "argo_reference.xml").read_text()
    (extra_tools / "argo_reference_unpushed.xml").write_text(
        reference_tool.replace('id="argo_reference"', 'id="argo_reference_unpushed"', 1)
    )
    env = DevEnvironment(
        tmp_path_factory.mktemp("dev"),
        tool_dirs=[DEMO_TOOLS, extra_tools],
        extra_environments={
            "argo_typo": {"memory": "lots"},
            "argo_unpushed": {"reference_data": f"{DEMO_REFERENCE_ROOT}={UNPUSHED_PREFIX}"},
            "argo_kube": {"submission": "kubernetes"},
            "argo_proxied": {"s3_endpoint_url": s3_proxy.url, "s3_max_attempts": 2},
        },
        tool_environments={
            "argo_misconfigured": "argo_typo",
            "argo_reference_unpushed": "argo_unpushed",
            "argo_upper_kube": "argo_kube",
            "argo_sleep_proxied": "argo_proxied",
        },
    )
    env.start()
    try:
        assert env.stack is not None and env.stack.s3 is not None
        s3_proxy.upstream_port = env.stack.s3.port
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="session")
def api(dev: DevEnvironment) -> GalaxyAPI:
    assert dev.api is not None
    return dev.api


@pytest.fixture(scope="session")
def stack_info(dev: DevEnvironment) -> StackInfo:
    assert dev.stack is not None
    return dev.stack.info()


@pytest.fixture(scope="session")
def argo(stack_info: StackInfo) -> ArgoClient:
    return ArgoClient(stack_info.argo_server_url, token=stack_info.token, namespace=stack_info.namespace)


@pytest.fixture(scope="session")
def s3(stack_info: StackInfo) -> Any:
    return s3_client(ArgoSettings.from_params(stack_info.destination_params()))


@pytest.fixture(scope="session")
def history(api: GalaxyAPI) -> str:
    return api.create_history("galaxy-argo tests")


@pytest.fixture(scope="session")
def text_dataset(api: GalaxyAPI, history: str) -> Callable[[str], str]:
    """Upload text (runs on Galaxy's local runner) and return the dataset id once it is ok."""

    def upload(text: str, file_type: str = "txt") -> str:
        dataset = api.upload_text(history, text, file_type=file_type, name="input.txt")
        api.wait_for_dataset(history, dataset, timeout=120)
        return dataset

    return upload


def output_ids(reply: dict[str, Any]) -> dict[str, str]:
    """Output name -> dataset id, from Galaxy's reply to running a tool."""
    return {o["output_name"]: o["id"] for o in reply["outputs"]}


def run_and_wait(
    api: GalaxyAPI, history: str, tool_id: str, inputs: dict[str, Any], timeout: float = 180
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run a tool; return (Galaxy's run reply, the finished job's full details)."""
    reply = api.run_tool(history, tool_id, inputs)
    job = api.wait_for_job(reply["jobs"][0]["id"], timeout=timeout)
    return reply, job


def wait_for_galaxy(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """`wait_until` at a pace suited to Galaxy's API (each poll is a database query)."""
    return wait_until(condition, timeout, what, interval=0.2)
