"""galaxy-argo: run Galaxy jobs as Argo Workflows, with data moving through S3.

The folders are the layers: `core` (pure: job spec, settings, compiler, outcome), `clients`
(Argo Server, Kubernetes API, S3), `galaxy` (the job runner, the only package that imports
Galaxy), `dev` (a real Galaxy on the embedded stack), `local` (the embedded engine) and `cli`
(the ``galaxy-argo`` command). tests/test_layers.py enforces who may import whom.
"""

from __future__ import annotations

from galaxy_argo.core import __version__
from galaxy_argo.core.errors import CompileError, GalaxyArgoError, SettingsError, SpecError
from galaxy_argo.core.settings import ArgoSettings
from galaxy_argo.core.spec import JobSpec, Resources, StagedFile, StagedKind

__all__ = [
    "ArgoSettings",
    "CompileError",
    "GalaxyArgoError",
    "JobSpec",
    "Resources",
    "SettingsError",
    "SpecError",
    "StagedFile",
    "StagedKind",
    "__version__",
]
