"""The Galaxy job runner: the only package that imports Galaxy, and only what Galaxy loads.

`runner` (`ArgoJobRunner`, named in Galaxy's job configuration), `compute_env` (the pod-side
paths Galaxy writes its command line with) and `plan` (a Galaxy job turned into the core's
`JobSpec` and what to stage). Importing this package imports nothing from Galaxy; its modules do.
"""
