"""The clients: everything that talks to the Argo Server, the Kubernetes API or S3.

`argo` (Argo Server through Hera), `kube` (the Workflow resources through the Kubernetes API),
`staging` (S3 transfers through s3transfer: dedup uploads, verified downloads, safe archives),
`connections` (one pooled client set per destination) and `progress` (transfer progress
reporting). They build on the core and know nothing of Galaxy, so the command line and other
tools use them as they are.
"""
