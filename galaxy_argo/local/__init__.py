"""The embedded Argo-compatible engine: SeaweedFS, workflow interpreter, bubblewrap pods, REST server."""
