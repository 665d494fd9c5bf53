"""The embedded engine: an Argo-compatible workflow engine and a real S3 server on loopback.

`server` (the Argo Server REST API and the Workflow resources' Kubernetes API), `engine` (the
workflow interpreter), `expressions` (Argo's template and expression dialects), `pods` and
`sandbox` (pods as bubblewrap sandboxes), `artifacts`, `store` (persisted objects), `s3`
(SeaweedFS), `process` (launching and reaping servers), `stack` and `run` (``local serve`` and
``local run``). It runs any workflow in its subset, knows nothing of Galaxy or the core's job
model, and is what teams using ``workflow_templates/`` run locally.
"""
