"""The one place Hera is imported from, so that its global PyYAML hook does not leak.

Hera registers its own ``str`` representer on PyYAML's ``SafeRepresenter`` and ``Dumper`` at
import (``hera/_yaml.py``; DESIGN.md, Hera quirk 4). In a Galaxy process that changes what
Galaxy's own ``yaml.safe_dump`` writes. We import Hera here and put PyYAML's representers back
exactly as they were; our YAML goes through `galaxy_argo.core.yamlio`, which owns its dumper.
"""

from __future__ import annotations

from typing import Any

import yaml
import yaml.representer

_CLASSES: tuple[type[Any], ...] = (
    yaml.representer.BaseRepresenter,
    yaml.representer.SafeRepresenter,
    yaml.representer.Representer,
    yaml.SafeDumper,
    yaml.Dumper,
)
_BEFORE = {cls: cls.__dict__.get("yaml_representers") for cls in _CLASSES}
_SNAPSHOT = {cls: dict(table) for cls, table in _BEFORE.items() if table is not None}

import hera.workflows  # noqa: E402
import hera.workflows.models  # noqa: E402,F401
import hera.workflows.service  # noqa: E402


def _restore_pyyaml() -> None:
    for cls in _CLASSES:
        if cls in _SNAPSHOT:
            table = cls.__dict__["yaml_representers"]
            table.clear()
            table.update(_SNAPSHOT[cls])
        elif "yaml_representers" in cls.__dict__:
            delattr(cls, "yaml_representers")  # Hera gave the class a table: inherit again


_restore_pyyaml()

workflows = hera.workflows
models = hera.workflows.models
WorkflowsService = hera.workflows.service.WorkflowsService

__all__ = ["WorkflowsService", "models", "workflows"]
