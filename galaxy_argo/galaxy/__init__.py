"""Galaxy side of galaxy-argo: the only package that imports Galaxy (runner, compute environment).

Importing this package imports nothing from Galaxy; `runner` and `compute_env` do.
"""
