"""Names and label values Kubernetes accepts, derived deterministically from Galaxy's values.

The workflow name is a pure function of (instance, job id, attempt): a Galaxy handler that dies
after submitting and before saving the external id finds the same name again and adopts the
workflow instead of running the job twice (galaxy#6246). Label values are sanitised, never
rejected: tool ids such as ``toolshed.g2.bx.psu.edu/repos/iuc/bwa/bwa/0.7.17`` must still label.
See https://kubernetes.io/docs/concepts/overview/working-with-objects/names/.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "LABEL_PREFIX",
    "argo_pod_name",
    "label_value",
    "user_hash",
    "workflow_name",
]

#: Prefix of every label and annotation galaxy-argo sets.
LABEL_PREFIX = "galaxy-argo.galaxyproject.org"

#: The files an embedded stack writes into its state directory for clients (``local serve`` writes
#: them, `clients.connections.resolve_embedded` reads them): endpoints and credentials, and a
#: kubeconfig for ``submission: kubernetes``.
EMBEDDED_SERVER_INFO = "server.json"
EMBEDDED_KUBECONFIG = "kubeconfig.yaml"

_LABEL_MAX = 63
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_NAME_CHAR = re.compile(r"[^a-z0-9-]+")


def workflow_name(instance: str, job_id: str, attempt: int = 0) -> str:
    """``galaxy-<instance>-<job id>[-r<attempt>]``, a DNS-1123 label (<= 63 characters).

    A job id that does not fit (or is not name-safe) is replaced by a short hash, keeping the
    name deterministic.
    """
    job_part = _NOT_NAME_CHAR.sub("-", job_id.lower()).strip("-")
    suffix = f"-r{attempt}" if attempt else ""
    name = f"galaxy-{instance}-{job_part}{suffix}"
    if not job_part or job_part != job_id or len(name) > _LABEL_MAX:
        digest = hashlib.sha256(job_id.encode()).hexdigest()[:10]
        name = f"galaxy-{instance}-{job_part[:20].strip('-')}-{digest}{suffix}".replace("--", "-")
    return name[:_LABEL_MAX].rstrip("-")


def label_value(text: str) -> str:
    """A valid label value carrying as much of ``text`` as fits.

    Runs of characters labels cannot hold become ``_``; a value longer than 63 characters keeps its
    tail (the informative end of a Tool Shed id) and a hash of the whole, so distinct ids stay
    distinct.
    """
    cleaned = _NOT_LABEL_CHAR.sub("_", text).strip("._-")
    if len(cleaned) > _LABEL_MAX or cleaned != text:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        if len(cleaned) > _LABEL_MAX - 9:
            cleaned = cleaned[-(_LABEL_MAX - 9) :].lstrip("._-")
        cleaned = f"{cleaned}.{digest}" if cleaned else digest
    return cleaned


def user_hash(user: str, instance: str) -> str:
    """Label-safe pseudonym of a Galaxy user: operators can group by user without seeing who."""
    if not user:
        return ""
    return hashlib.sha256(f"{instance}\0{user}".encode()).hexdigest()[:16]


def argo_pod_name(workflow: str, template: str, node_id: str) -> str:
    """The name of the pod Argo (pod names v2) runs for a node.

    The workflow's name for the root node, else ``<workflow>-<template>-<hash>``, the hash being
    the node id's (fnv32a of the node name); operators find the pod with it in ``kubectl``.
    """
    if node_id == workflow:
        return workflow
    suffix = node_id.rsplit("-", 1)[-1]
    prefix = f"{workflow}-{template}"
    return f"{prefix[: 253 - len(suffix) - 1]}-{suffix}"
