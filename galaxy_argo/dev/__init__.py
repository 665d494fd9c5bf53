"""The development harness: a real Galaxy on the embedded stack, for ``make demo``, ``dev up`` and tests.

`galaxy_server` (start and stop Galaxy as a subprocess), `galaxy_api` (the few Galaxy API calls
the harness makes), `environment` (the embedded stack plus Galaxy, configured for the Argo
runner), `demo` (``make demo``) and the demo tools and reference data. Galaxy runs as its own
process: nothing here imports it.
"""
