"""A container's environment as the kubelet builds it: plain values and Secret references.

Kubernetes resolves ``env[].valueFrom.secretKeyRef`` and ``envFrom[].secretRef`` on the node when
it creates the container (kubelet's ``makeEnvironmentVariables`` in ``pkg/kubelet/kubelet_pods.go``).
The engine does the same from its Secrets, so a pod that talks to S3 itself (Galaxy's set-metadata
writing outputs into Galaxy's object store) gets its keys as it would on a cluster, while the
workflow, its status and the engine's logs only ever hold the reference, never the value.

A Secret or key that is missing and not ``optional`` means the container is never created: the
kubelet leaves it waiting with reason ``CreateContainerConfigError`` and the message of the failed
lookup, ``secret "NAME" not found`` (its Secret manager's NotFound error for resource "secret") or
``couldn't find key KEY in Secret NAMESPACE/NAME``. `ContainerConfigError` carries exactly that
message; Argo copies ``REASON: MESSAGE`` onto the Pod node, which stays Pending
(``getPendingReason`` in Argo's ``workflow/controller/operator.go``).

Kubelet's order is kept: ``envFrom`` sources first (a later one wins), then ``env`` entries
(which win over ``envFrom``). Secret keys that are no valid variable name are skipped with a
warning naming them, as the kubelet skips them with an event. Not done: ``$(VAR)`` expansion, and
``fieldRef``/``resourceFieldRef``/``configMapKeyRef``/``configMapRef``, which the engine refuses at
submission (`galaxy_argo.local.controller.admission`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from galaxy_argo.core.errors import GalaxyArgoError

__all__ = [
    "CREATE_CONTAINER_CONFIG_ERROR",
    "ENV_SOURCES",
    "VALUE_FROM_SOURCES",
    "ContainerConfigError",
    "UnsupportedEnvError",
    "container_environment",
]

log = logging.getLogger(__name__)

#: Kubelet's waiting reason for a container whose configuration (here: its Secrets) is incomplete.
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
#: ``env[].valueFrom`` kinds the engine resolves.
VALUE_FROM_SOURCES = ("secretKeyRef",)
#: ``envFrom[]`` kinds the engine resolves.
ENV_SOURCES = ("secretRef",)


class ContainerConfigError(GalaxyArgoError):
    """The kubelet would not create the container; the message is the kubelet's, word for word."""


class UnsupportedEnvError(GalaxyArgoError):
    """An env source the engine does not resolve (admission refuses these; a pod spec patch may not)."""


def _valid_name(name: str) -> bool:
    """Kubernetes' relaxed variable names: printable ASCII but ``=``, not empty."""
    return bool(name) and all(" " <= c <= "~" and c != "=" for c in name)


def _optional(ref: Mapping[str, Any]) -> bool:
    return bool(ref.get("optional"))


def _secret(secrets: Mapping[str, Mapping[str, str]], name: str, optional: bool) -> Mapping[str, str] | None:
    """The Secret's data; None for a missing optional one. Raises kubelet's NotFound otherwise."""
    found = secrets.get(name)
    if found is None and not optional:
        raise ContainerConfigError(f'secret "{name}" not found')
    return found


def _from_secret(
    source: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]], namespace: str
) -> dict[str, str]:
    """The variables of one ``envFrom[].secretRef``: every key, with the source's prefix."""
    ref = source["secretRef"] or {}
    name = str(ref.get("name") or "")
    data = _secret(secrets, name, _optional(ref))
    if data is None:
        return {}
    prefix = str(source.get("prefix") or "")
    found: dict[str, str] = {}
    skipped = []
    for key, value in data.items():
        if _valid_name(prefix + key):
            found[prefix + key] = value
        else:
            skipped.append(prefix + key)
    if skipped:  # names only: the values stay out of the log
        log.warning(
            "keys %s from the envFrom secret %s/%s were skipped: not valid environment variable names",
            sorted(skipped),
            namespace,
            name,
        )
    return found


def _value_from(
    var: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]], namespace: str
) -> str | None:
    """The value of one ``env[].valueFrom``; None when an optional Secret or key is missing."""
    value_from = var["valueFrom"] or {}
    kinds = sorted(k for k in value_from if value_from[k] is not None)
    if kinds != ["secretKeyRef"]:
        raise UnsupportedEnvError(
            f'env "{var.get("name")}": valueFrom {", ".join(kinds) or "(empty)"} is not supported by the '
            f"embedded engine (supported: value, valueFrom.{', valueFrom.'.join(VALUE_FROM_SOURCES)})"
        )
    ref = value_from["secretKeyRef"]
    name, key, optional = str(ref.get("name") or ""), str(ref.get("key") or ""), _optional(ref)
    data = _secret(secrets, name, optional)
    if data is None:
        return None
    if key not in data:
        if optional:
            return None
        raise ContainerConfigError(f"couldn't find key {key} in Secret {namespace}/{name}")
    return data[key]


def container_environment(
    container: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]], namespace: str
) -> dict[str, str]:
    """The variables of ``container`` (``env`` and ``envFrom``), Secret references resolved.

    Args:
        container: The container document, ``{{...}}`` already substituted.
        secrets: Secret name -> key -> value, as the engine holds them.
        namespace: The pod's namespace, which the kubelet's messages name.

    Raises:
        ContainerConfigError: A Secret or key is missing and not optional (kubelet's message).
        UnsupportedEnvError: A source other than `VALUE_FROM_SOURCES` / `ENV_SOURCES`.
    """
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kinds = sorted(k for k in source if k != "prefix" and source[k] is not None)
        if kinds != ["secretRef"]:
            raise UnsupportedEnvError(
                f"envFrom {', '.join(kinds) or '(empty)'} is not supported by the embedded engine "
                f"(supported: {', '.join(ENV_SOURCES)})"
            )
        env.update(_from_secret(source, secrets, namespace))
    for var in container.get("env") or []:
        if "name" not in var:
            continue
        if var.get("valueFrom") is None:
            env[var["name"]] = str(var.get("value", ""))
            continue
        value = _value_from(var, secrets, namespace)
        if value is not None:
            env[var["name"]] = value
    return env
