"""Start and stop a real Galaxy server as a subprocess: API only, SQLite, no client build.

Used by the integration tests, ``make demo`` and ``dev up``. It follows the checked recipe in
``GALAXY.md``: ``uvicorn --factory galaxy.webapps.galaxy.fast_factory:factory`` with
``GALAXY_CONFIG_FILE`` pointing at a minimal ``galaxy.yml``
(https://docs.galaxyproject.org/en/master/admin/config.html). Galaxy is never imported here, so
this module loads anywhere; only the interpreter given as ``python`` needs ``galaxy-app``.

Everything lives under ``work_dir``, so a restart on the same directory keeps the database,
the datasets and the encoded ids::

    <work_dir>/galaxy.yml             written on every start
    <work_dir>/job_conf.yml           ``job_config`` as YAML
    <work_dir>/tool_conf.xml          every tool XML found in ``tool_dirs``, plus ``cat1``
    <work_dir>/secrets.json           id_secret and the bootstrap admin key (mode 600), made once
    <work_dir>/data/                  Galaxy's data_dir (datasets, job directories, universe.sqlite)
    <work_dir>/galaxy.log             uvicorn and Galaxy output, appended
    <work_dir>/galaxy.pid             the running server (a killed parent's orphan is stopped on start)
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import yaml

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.dev.galaxy_api import GalaxyAPI, GalaxyAPIError
from galaxy_argo.local.process import (
    HOST,
    ServerLauncher,
    ServerProcess,
    http_status,
    kept_secrets,
    port_bindable,
)

__all__ = ["DEMO_TOOLS", "GalaxyServer", "GalaxyServerError", "bundled_tool", "tool_files"]

log = logging.getLogger(__name__)

#: The demo tools shipped with this package (``argo_upper``, ``argo_fail``, ...).
DEMO_TOOLS = Path(__file__).resolve().parent / "demo_tools"
#: The repository root: put on the Galaxy process's PYTHONPATH so ``galaxy_argo`` imports there.
_REPO_ROOT = Path(__file__).resolve().parents[2]
_FACTORY = "galaxy.webapps.galaxy.fast_factory:factory"
_CAT1 = ("tools", "bundled", "filters", "catWrapper.xml")
_PORT_CONFLICT = ("address already in use", "Errno 98")


class GalaxyServerError(GalaxyArgoError):
    """The Galaxy subprocess could not be configured, started or reached; the message says why."""


class _PortTaken(GalaxyServerError):
    """uvicorn could not bind the port our probe found free (another process took it meanwhile)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def bundled_tool(python: str = sys.executable, parts: tuple[str, ...] = _CAT1) -> Path:
    """Path of a tool shipped inside the ``galaxy`` package of ``python`` (default: ``cat1``).

    Galaxy is located with `importlib.util.find_spec`, which does not import it; for another
    interpreter the same lookup runs in that interpreter.

    Raises:
        GalaxyServerError: ``galaxy`` is not installed for ``python``, or the file is missing.
    """
    # Compare unresolved paths: venv interpreters are symlinks to one shared base interpreter.
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        spec = importlib.util.find_spec("galaxy")
        roots = list(spec.submodule_search_locations or []) if spec is not None else []
    else:
        code = (
            "import importlib.util, json; s = importlib.util.find_spec('galaxy'); "
            "print(json.dumps(list(s.submodule_search_locations or []) if s else []))"
        )
        try:
            result = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
        except OSError as err:
            raise GalaxyServerError(
                f"could not run {python!r}: {err.strerror or err}; pass python= the interpreter of a venv "
                "with galaxy-argo[galaxy] installed"
            ) from err
        roots = json.loads(result.stdout) if result.returncode == 0 else []
    for root in roots:
        path = Path(root).joinpath(*parts)
        if path.is_file():
            return path
    raise GalaxyServerError(
        f"{'/'.join(parts)} not found in the galaxy package of {python} (searched {roots or 'nothing'}); "
        "install galaxy-argo[galaxy] (galaxy-app and galaxy-web-apps) into that interpreter's venv"
    )


def tool_files(tool_dirs: list[Path]) -> dict[Path, str]:
    """Tool file -> tool id for every ``*.xml`` directly in ``tool_dirs`` whose root is ``<tool>``."""
    found: dict[Path, str] = {}
    for directory in tool_dirs:
        if not directory.is_dir():
            raise GalaxyServerError(f"tool directory {directory} does not exist")
        for path in sorted(directory.glob("*.xml")):
            try:
                root = ET.parse(path).getroot()
            except ET.ParseError as err:
                raise GalaxyServerError(f"tool file {path} is not well-formed XML: {err}") from err
            if root.tag == "tool":
                found[path.resolve()] = root.get("id", "")
    return found


def _secrets(work_dir: Path) -> dict[str, str]:
    """The id_secret and bootstrap admin key of this work_dir, made once and kept (mode 600).

    Keeping ``id_secret`` keeps every encoded id valid across restarts on the same database.
    """
    return kept_secrets(
        work_dir / "secrets.json",
        lambda: {"id_secret": secrets.token_hex(16), "admin_key": secrets.token_hex(16)},
    )


@dataclass
class GalaxyServer(ServerLauncher):
    """A Galaxy web server and job handler in one subprocess, listening on 127.0.0.1 only.

    Use ``with GalaxyServer(...) as galaxy:`` or `start` / `stop`. ``job_config`` is the job
    configuration mapping (``runners``, ``execution``, ``tools``) written as ``job_conf.yml``.
    """

    work_dir: Path
    job_config: dict[str, Any]
    tool_dirs: list[Path]
    #: 0 picks a free port on the first start; later starts reuse it.
    port: int = 0
    #: Interpreter of a venv with galaxy-app and galaxy-web-apps installed.
    python: str = sys.executable
    #: Extra keys under ``galaxy:``, merged last (they win).
    extra_config: dict[str, Any] = field(default_factory=dict)
    #: Extra environment variables for the Galaxy process.
    env: dict[str, str] = field(default_factory=dict)
    #: ``tool_data_table_conf.xml`` content: the data tables (``.loc`` files) tools can read.
    data_tables_xml: str = "<tables/>\n"
    #: Email of the admin user `create_user` makes by default.
    admin_email: str = "demo@example.org"
    #: Seconds the last `start` took until ``/api/version`` answered.
    startup_seconds: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir).resolve()
        self.tool_dirs = [Path(d).resolve() for d in self.tool_dirs]
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._keys = _secrets(self.work_dir)
        self._server = ServerProcess(
            "Galaxy",
            self.work_dir / "galaxy.log",  # uvicorn's and Galaxy's output; galaxy.pid beside it
            # Galaxy's factory on this very galaxy.yml: two servers on one SQLite database would fight.
            signature=(_FACTORY, f"GALAXY_CONFIG_FILE={self.config_path}"),
            error=GalaxyServerError,
            port_taken=_PortTaken,
            port_taken_marks=_PORT_CONFLICT,
            secrets=self._keys.values(),
            tail_lines=40,
            poll_seconds=0.25,
            stop_grace=60.0,
            own_group=True,  # a new session: stopping it stops whatever Galaxy started
        )

    # -- properties --

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8080`` (the port is known after `start`)."""
        return f"http://{HOST}:{self.port}"

    @property
    def admin_key(self) -> str:
        """The ``bootstrap_admin_api_key``: admin calls (creating users) without a user."""
        return self._keys["admin_key"]

    @property
    def config_path(self) -> Path:
        """The ``galaxy.yml`` this server runs with."""
        return self.work_dir / "galaxy.yml"

    @property
    def data_dir(self) -> Path:
        """Galaxy's ``data_dir``: datasets, job directories and the SQLite database."""
        return self.work_dir / "data"

    # -- lifecycle --

    def start(self, timeout: float = 180) -> GalaxyServer:
        """Write the configuration, launch Galaxy and wait until ``GET /api/version`` answers.

        Args:
            timeout: Seconds to wait for the API, over all attempts.

        Returns:
            This server, for ``galaxy = GalaxyServer(...).start()``.

        Raises:
            GalaxyServerError: The process exited early or did not answer in time; the message ends
                with the last lines of ``galaxy.log``.
        """
        if self.running:
            raise GalaxyServerError(f"Galaxy is already running at {self.url} (pid {self.pid})")
        began = time.monotonic()
        deadline = began + timeout
        pick_port = self.port == 0

        def attempt(number: int) -> None:
            if number > 1:
                log.info("port %d taken meanwhile; retrying Galaxy on a new port", self.port)
            if pick_port:
                self.port = _free_port()
            self._write_config()
            self._check_port_free()
            self._server.spawn(
                self._command(),
                cwd=self.work_dir,
                env=self._environment(),
                program=repr(self.python),
                hint="pass python= the interpreter of a venv with galaxy-argo[galaxy] installed",
            )
            self._wait_ready(deadline)

        self._server.start(attempt, retry=pick_port)  # a port given is kept
        self.startup_seconds = time.monotonic() - began
        log.info("Galaxy at %s (pid %s) answered after %.1f s", self.url, self.pid, self.startup_seconds)
        return self

    def stop(self, timeout: float = 60) -> None:
        """Stop Galaxy's process group: SIGTERM, SIGKILL after ``timeout`` seconds. Safe to repeat."""
        self._server.stop(timeout)

    def restart(self, timeout: float = 180) -> None:
        """Stop and start again on the same port, work_dir and database."""
        self.stop()
        self.start(timeout)

    # -- API helpers --

    def api(self, key: str | None = None) -> GalaxyAPI:
        """A client for this server, with ``key`` or else the bootstrap admin key."""
        return GalaxyAPI(self.url, key or self.admin_key)

    def create_user(
        self,
        email: str | None = None,
        username: str = "demo",
        password: str = "galaxy-argo-demo",
    ) -> tuple[str, str]:
        """Create a user (or find it, on a reused database) and give it a new API key.

        Args:
            email: Defaults to `admin_email`, which ``galaxy.yml`` lists in ``admin_users``.
            username: Public name (lower case letters, digits, ``.``, ``_``, ``-``).
            password: At least six characters.

        Returns:
            ``(user_id, api_key)``.
        """
        email = email or self.admin_email
        with self.api() as admin:
            try:
                user_id = admin.create_user(email, username, password)
            except GalaxyAPIError as err:
                existing = admin.find_user(email) if err.status == 400 else None
                if existing is None:
                    raise
                user_id = existing
            return user_id, admin.create_api_key(user_id)

    # -- internals --

    def galaxy_config(self) -> dict[str, Any]:
        """The ``galaxy:`` section written to ``galaxy.yml`` (``extra_config`` merged last)."""
        work = self.work_dir
        config: dict[str, Any] = {
            "data_dir": str(self.data_dir),
            "database_connection": f"sqlite:///{self.data_dir / 'universe.sqlite'}?isolation_level=IMMEDIATE",
            "database_auto_migrate": True,
            "tool_config_file": str(work / "tool_conf.xml"),
            "job_config_file": str(work / "job_conf.yml"),
            "tool_data_table_config_path": str(work / "tool_data_table_conf.xml"),
            "data_manager_config_file": str(work / "data_manager_conf.xml"),
            "bootstrap_admin_api_key": self.admin_key,
            "admin_users": self.admin_email,
            "id_secret": self._keys["id_secret"],
            "galaxy_infrastructure_url": self.url,
            "conda_auto_init": False,
            "conda_auto_install": False,
            "watch_tools": False,
            "enable_celery_tasks": False,
            "check_migrate_tools": False,
            "allow_local_account_creation": True,
            "require_login": False,
            "involucro_auto_init": False,
            "enable_mulled_containers": False,
            "job_runner_monitor_sleep": 0.5,
            "outputs_to_working_directory": True,
            "metadata_strategy": "directory",
        }
        config.update(self.extra_config)
        return config

    def _write_config(self) -> None:
        work = self.work_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tools = [bundled_tool(self.python), *tool_files(self.tool_dirs)]
        lines = ['<toolbox monitor="false">', '  <section id="galaxy_argo" name="galaxy-argo">']
        lines += [f"    <tool file={quoteattr(str(path))} />" for path in tools]
        lines += ["  </section>", "</toolbox>", ""]
        (work / "tool_conf.xml").write_text("\n".join(lines))
        (work / "tool_data_table_conf.xml").write_text(self.data_tables_xml)
        (work / "data_manager_conf.xml").write_text("<data_managers/>\n")
        (work / "job_conf.yml").write_text(yaml.safe_dump(self.job_config, sort_keys=False))
        document = {"gravity": {"process_manager": "none"}, "galaxy": self.galaxy_config()}
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        os.chmod(self.config_path, 0o600)  # holds id_secret and the admin key

    def _check_port_free(self) -> None:
        """Fail at once on a taken port: uvicorn would find out only after building the whole app."""
        if not port_bindable(self.port):
            raise _PortTaken(
                f"cannot start Galaxy on {self.url}: the port is taken; "
                "stop what listens there or pass port=0 to pick a free one"
            )

    def _environment(self) -> dict[str, str]:
        env = {**os.environ, **self.env}
        pythonpath = [str(_REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(pythonpath))
        env["GALAXY_CONFIG_FILE"] = str(self.config_path)
        return env

    def _command(self) -> list[str]:
        return [
            self.python, "-m", "uvicorn", "--factory", _FACTORY, "--host", HOST, "--port", str(self.port),
        ]  # fmt: skip

    def _wait_ready(self, deadline: float) -> None:
        """Poll ``GET /api/version`` until it answers 200, the process exits, or the deadline passes."""
        pid = self.pid

        def probe() -> str | None:
            # uvicorn binds only after Galaxy has built the whole app (about 20 s), so until our own
            # process says it listens, an answer may come from another server holding the port.
            answers = http_status(self.port, "/api/version", timeout=5.0) == 200
            return None if answers and self._server.log_contains(f"Uvicorn running on {self.url}") else ""

        self._server.wait(
            deadline,
            probe,
            until=f"{self.url}/api/version answered",
            failure=lambda _: (
                f"Galaxy at {self.url} did not answer /api/version in time (pid {pid} still running)"
            ),
            hint="the machine may be overloaded, or ",
        )
