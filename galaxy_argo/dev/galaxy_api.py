"""A small client for the Galaxy API calls the tests, ``make demo`` and ``dev up`` make.

Only ``requests``; no bioblend, no Galaxy import. The calls are the ones Galaxy's own test
populators make (https://docs.galaxyproject.org/en/master/api_doc.html): ``POST /api/histories``,
``POST /api/tools/fetch`` to upload, ``POST /api/tools`` to run a tool, ``GET /api/jobs/{id}`` to
poll, ``GET /api/datasets/{id}/display`` to read an output.

Uploads run the ``__DATA_FETCH__`` tool, which a job configuration for this project routes to a
local runner; wait for an upload with `GalaxyAPI.wait_for_dataset`, which follows the dataset's
state whatever job produced it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from galaxy_argo.core.errors import GalaxyArgoError

__all__ = [
    "DATASET_DONE_STATES",
    "JOB_DONE_STATES",
    "GalaxyAPI",
    "GalaxyAPIError",
    "GalaxyDatasetError",
    "GalaxyTimeoutError",
]

#: Job states after which a job never changes again (what `GalaxyAPI.wait_for_job` waits for).
JOB_DONE_STATES = ("ok", "error", "deleted", "failed")
#: Dataset states after which a dataset never changes again without a new job.
DATASET_DONE_STATES = ("ok", "error", "failed_metadata", "discarded", "deferred", "paused", "deleted")
_POLL_SECONDS = 0.25
_REQUEST_TIMEOUT = 60.0
_BODY_LIMIT = 2000
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class GalaxyAPIError(GalaxyArgoError):
    """Galaxy answered an API call with an HTTP error, or could not be reached at all.

    Attributes:
        url: The URL called.
        status: The HTTP status, or ``None`` when no answer came.
        body: The start of the response body (Galaxy puts ``err_msg`` there).
    """

    def __init__(self, method: str, url: str, status: int | None, body: str) -> None:
        self.url = url
        self.status = status
        self.body = body
        what = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"Galaxy API {method} {url} failed: {what}: {body}")


class GalaxyTimeoutError(GalaxyArgoError, TimeoutError):
    """A job or dataset did not reach a final state before the deadline; the message has the last state."""


class GalaxyDatasetError(GalaxyArgoError):
    """A dataset ended in a state other than ``ok``; the message has Galaxy's ``misc_info``."""

    def __init__(self, dataset: Mapping[str, Any]) -> None:
        self.dataset = dict(dataset)
        super().__init__(
            f"dataset {dataset.get('id')} ({dataset.get('name')!r}) ended in state {dataset.get('state')!r}: "
            f"{dataset.get('misc_info') or dataset.get('misc_blurb') or 'no message from Galaxy'}"
        )


class GalaxyAPI:
    """Calls Galaxy at ``url`` as the user whose API key is ``key``.

    Args:
        url: Galaxy's base URL, e.g. ``http://127.0.0.1:8080``.
        key: An API key (a user's, or the ``bootstrap_admin_api_key`` for admin calls).
        timeout: Seconds each HTTP request may take.
    """

    def __init__(self, url: str, key: str, timeout: float = _REQUEST_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["x-api-key"] = key
        # A proxy from the environment must not intercept calls to a Galaxy on this machine.
        if urlsplit(self.url).hostname in _LOOPBACK:
            self._session.trust_env = False

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def __enter__(self) -> GalaxyAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP --

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call ``path`` (starting with ``/api/``) and return the response.

        Raises:
            GalaxyAPIError: The status was 400 or above, or Galaxy could not be reached.
        """
        url = f"{self.url}{path}"
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self._session.request(method, url, **kwargs)
        except requests.RequestException as err:
            raise GalaxyAPIError(method, url, None, str(err)) from err
        if response.status_code >= 400:
            raise GalaxyAPIError(method, url, response.status_code, response.text[:_BODY_LIMIT])
        return response

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query ``params``; return the decoded JSON."""
        return self.request("GET", path, params=params or None).json()

    def post(self, path: str, payload: Mapping[str, Any] | None = None) -> Any:
        """POST ``payload`` as JSON to ``path``; return the decoded JSON."""
        return self.request("POST", path, json=dict(payload or {})).json()

    # -- users (admin key) --

    def version(self) -> dict[str, Any]:
        """``GET /api/version``: Galaxy's version (needs no key)."""
        result: dict[str, Any] = self.get("/api/version")
        return result

    def find_user(self, email: str) -> str | None:
        """The id of the user with this email, or ``None`` (admin key needed to see other users)."""
        for user in self.get("/api/users", f_email=email):
            if user.get("email") == email:
                return str(user["id"])
        return None

    def create_user(self, email: str, username: str, password: str) -> str:
        """Create a local user (admin key needed); return its id."""
        user = self.post("/api/users", {"email": email, "username": username, "password": password})
        return str(user["id"])

    def create_api_key(self, user_id: str) -> str:
        """Make a new API key for the user (replacing any earlier one) and return it."""
        key = self.post(f"/api/users/{user_id}/api_key")
        return str(key)

    # -- histories and uploads --

    def create_history(self, name: str = "galaxy-argo") -> str:
        """Create a history; return its id."""
        return str(self.post("/api/histories", {"name": name})["id"])

    def prefer_object_store(self, history_id: str, object_store_id: str) -> None:
        """New datasets of the history go to backend ``object_store_id`` of a distributed store."""
        payload = {"preferred_object_store_id": object_store_id}
        self.request("PUT", f"/api/histories/{history_id}", json=payload)

    def history_contents(self, history_id: str) -> list[dict[str, Any]]:
        """Every dataset and collection in the history, oldest first."""
        result: list[dict[str, Any]] = self.get(f"/api/histories/{history_id}/contents")
        return result

    def upload_text(
        self, history_id: str, text: str, file_type: str = "txt", name: str = "pasted.txt"
    ) -> str:
        """Upload ``text`` as a new dataset; return the dataset id at once (see `wait_for_dataset`)."""
        element = {"src": "pasted", "paste_content": text, "ext": file_type, "name": name}
        return self._fetch(history_id, element)

    def upload_file(
        self, history_id: str, path: str | Path, file_type: str = "auto", name: str | None = None
    ) -> str:
        """Upload a local file as a new dataset; return the dataset id at once (see `wait_for_dataset`)."""
        path = Path(path)
        element = {"src": "files", "ext": file_type, "name": name or path.name}
        with path.open("rb") as handle:
            return self._fetch(history_id, element, {"files_0|file_data": (path.name, handle)})

    def _fetch(self, history_id: str, element: dict[str, Any], files: dict[str, Any] | None = None) -> str:
        targets = [{"destination": {"type": "hdas"}, "elements": [element]}]
        if files is None:
            reply = self.post("/api/tools/fetch", {"history_id": history_id, "targets": targets})
        else:
            form = {"history_id": history_id, "targets": json.dumps(targets)}
            reply = self.request("POST", "/api/tools/fetch", data=form, files=files).json()
        outputs = reply.get("outputs") or []
        if len(outputs) != 1:
            got = json.dumps(reply)[:500]
            raise GalaxyAPIError(
                "POST", f"{self.url}/api/tools/fetch", 200, f"expected one output, got {got}"
            )
        return str(outputs[0]["id"])

    # -- datasets --

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        """``GET /api/datasets/{id}``: the dataset's details (state, extension, misc_info, ...)."""
        result: dict[str, Any] = self.get(f"/api/datasets/{dataset_id}")
        return result

    def dataset_content(self, dataset_id: str) -> bytes:
        """The dataset's bytes, as stored."""
        return self.request("GET", f"/api/datasets/{dataset_id}/display", params={"preview": "false"}).content

    def wait_for_dataset(
        self, history_id: str, dataset_id: str, timeout: float = 120, *, require_ok: bool = True
    ) -> dict[str, Any]:
        """Poll the dataset until it reaches one of `DATASET_DONE_STATES`; return its details.

        Raises:
            GalaxyDatasetError: ``require_ok`` and the final state is not ``ok``.
            GalaxyTimeoutError: No final state before ``timeout`` seconds.
        """
        path = f"/api/histories/{history_id}/contents/{dataset_id}"
        deadline = time.monotonic() + timeout
        while True:
            details: dict[str, Any] = self.get(path)
            if details.get("state") in DATASET_DONE_STATES:
                if require_ok and details["state"] != "ok":
                    raise GalaxyDatasetError(details)
                return details
            if time.monotonic() >= deadline:
                raise GalaxyTimeoutError(
                    f"dataset {dataset_id} still {details.get('state')!r} after {timeout:.0f} s at {self.url}"
                )
            time.sleep(_POLL_SECONDS)

    # -- tools and jobs --

    @staticmethod
    def hda(dataset_id: str) -> dict[str, str]:
        """A tool input value naming a history dataset: ``{"src": "hda", "id": ...}``."""
        return {"src": "hda", "id": dataset_id}

    def run_tool(self, history_id: str, tool_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/tools``: run a tool; return Galaxy's reply (``jobs``, ``outputs``, ...)."""
        result: dict[str, Any] = self.post(
            "/api/tools", {"history_id": history_id, "tool_id": tool_id, "inputs": dict(inputs)}
        )
        return result

    def job(self, job_id: str, full: bool = True) -> dict[str, Any]:
        """``GET /api/jobs/{id}``; ``full`` adds stdout, stderr, exit code and command line."""
        result: dict[str, Any] = self.get(f"/api/jobs/{job_id}", full=str(full).lower())
        return result

    def job_metrics(self, job_id: str) -> list[dict[str, Any]]:
        """``GET /api/jobs/{id}/metrics``: the collected job metrics (runtime, cores, ...)."""
        result: list[dict[str, Any]] = self.get(f"/api/jobs/{job_id}/metrics")
        return result

    def wait_for_job(
        self, job_id: str, timeout: float = 300, states_done: Iterable[str] = JOB_DONE_STATES
    ) -> dict[str, Any]:
        """Poll the job until its state is in ``states_done``; return the full job details.

        A failed job is returned, not raised: callers check ``state``, ``exit_code`` and ``stderr``.

        Raises:
            GalaxyTimeoutError: The job was in none of ``states_done`` at the deadline.
        """
        done = frozenset(states_done)
        deadline = time.monotonic() + timeout
        while True:
            details = self.job(job_id, full=True)
            if details.get("state") in done:
                return details
            if time.monotonic() >= deadline:
                raise GalaxyTimeoutError(
                    f"job {job_id} ({details.get('tool_id')}) still {details.get('state')!r} after "
                    f"{timeout:.0f} s at {self.url}; waited for one of {sorted(done)}"
                )
            time.sleep(_POLL_SECONDS)

    def cancel_job(self, job_id: str) -> bool:
        """``DELETE /api/jobs/{id}``: ask Galaxy to stop the job; return Galaxy's answer."""
        return bool(self.request("DELETE", f"/api/jobs/{job_id}").json())
