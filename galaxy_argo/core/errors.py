"""The root of every galaxy-argo error, and the errors of the core.

Every exception class in the package derives from `GalaxyArgoError` (tests/test_errors.py checks
it), so ``except GalaxyArgoError`` catches anything galaxy-argo raises on purpose. The core's
errors live here; each other layer defines its own next to the code that raises them and the
table that translates library errors into them: the clients' `ArgoError` family
(`clients/argo.py`) and `StagingError` family (`clients/staging.py`), the dev harness's Galaxy
errors (`dev/galaxy_api.py`, `dev/galaxy_server.py`) and the engine's (`local/`).

Following s3fs' ``errors.py`` and Hera's exception table: each class says *what* failed, the
message says *why* and *what to do*, and callers chain the cause with ``raise ... from err``.
Nothing here does I/O; modules at the edges translate library errors into these.
"""

from __future__ import annotations

__all__ = [
    "CompileError",
    "GalaxyArgoError",
    "SettingsError",
    "SpecError",
]


class GalaxyArgoError(Exception):
    """Base class: catch this to handle any galaxy-argo failure."""


class SpecError(GalaxyArgoError, ValueError):
    """A `JobSpec` (or its JSON) is malformed; the message names the field and the rule."""


class SettingsError(GalaxyArgoError, ValueError):
    """A destination parameter has a bad value.

    The message names the parameter, the value given and the form expected, so an admin can fix
    the job configuration (or the TPV rule) without reading code.
    """

    def __init__(self, param: str, value: object, expected: str) -> None:
        """Keep the three parts apart so callers (doctor, tests) can read them."""
        self.param = param
        self.value = value
        self.expected = expected
        super().__init__(f"destination param {param!r} = {value!r}: expected {expected}")


class CompileError(GalaxyArgoError, ValueError):
    """A valid `JobSpec` cannot be turned into a workflow under the given settings."""
