"""The pure core: a Galaxy job described as data and compiled into an Argo Workflow, without I/O.

`spec` (the job), `settings` (destination params), `naming`, `compile` (job -> Hera model),
`templates` (the reusable WorkflowTemplates), `stage_scripts` (the POSIX sh the stage containers
run), `outcome` (Argo status -> job outcome), `metrics`, `fields`, `yamlio`, `argo_schema` (strict
validation against Argo's bundled CRD schema), `errors` and `_hera` (the one place Hera is
imported). Nothing here talks to a network, a server or Galaxy, so it compiles and renders
templates anywhere; tests/test_layers.py holds it to that.
"""

from __future__ import annotations

__version__ = "0.1.0"
