"""The ``galaxy-argo`` command: `main` (its subcommands) and `doctor` (operator checks).

The top layer: it may use every other package and is the only one that wires them together for
people at a terminal.
"""

from __future__ import annotations

from galaxy_argo.cli.main import main

__all__ = ["main"]
