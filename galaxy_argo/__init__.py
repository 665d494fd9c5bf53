"""galaxy-argo: run Galaxy jobs as Argo Workflows, with data moving through S3.

The pure core (`spec`, `settings`, `compile`, `outcome`) works without Galaxy installed; the job
runner lives in ``galaxy_argo.galaxy`` and needs the ``galaxy`` extra.
"""

from __future__ import annotations

from galaxy_argo.errors import CompileError, GalaxyArgoError, SettingsError, SpecError
from galaxy_argo.settings import ArgoSettings
from galaxy_argo.spec import JobSpec, Resources, StagedFile, StagedKind

__version__ = "0.1.0"

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
