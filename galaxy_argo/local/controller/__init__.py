"""The embedded engine's workflow controller: what Argo's workflow-controller does, for one process.

`engine` (the `Engine`: threads, queue, API operations, pods, garbage collection), `admission`
(what a submission is refused for: the CRD schema, then the engine's subset), `reconcile` (one
walk of one workflow from its entrypoint and onExit), the walkers it calls (`steps_and_dags`,
`retries`, `pod_nodes`) and what they share (`nodes`: the node table and the walk's context;
`scope`: the variables a template sees). Pods themselves run in `galaxy_argo.local.pods`.
"""
