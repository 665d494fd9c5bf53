"""The embedded engine: an Argo-compatible workflow engine and a real S3 server on loopback.

`server` and `kube_api` (the Argo Server REST API and the Workflow resources' Kubernetes API, with
`selectors`), `store` (persisted objects), `controller/` (the workflow controller: admission,
reconcile, steps and DAGs, retries), `expressions/` (Argo's template and expression dialects),
`pods` and `artifacts` (what Argo's executor does in a pod), `sandbox/` (containers as bubblewrap
sandboxes), `s3` (SeaweedFS), `process` (launching and reaping servers), `stack` and `run`
(``local serve`` and ``local run``). It runs any workflow in its subset, knows nothing of Galaxy
or the core's job model, and is what teams using ``workflow_templates/`` run locally.
"""
