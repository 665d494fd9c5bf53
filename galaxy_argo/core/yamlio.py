"""YAML out and in for Kubernetes objects, with a dumper of our own.

Our dumper does not depend on whatever representers other libraries registered globally (Hera
does, see `galaxy_argo.core._hera`). Multi-line strings (scripts, command lines) are written as
``|`` blocks so they read well in the Argo UI and in diffs, and the YAML 1.1 booleans that PyYAML
leaves bare (``y``, ``n``, ...) are quoted because Kubernetes' YAML parser would read them as
booleans.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["dump_yaml", "dump_yaml_all", "load_yaml"]

_YAML11_BOOLS = frozenset(
    {
        "y",
        "Y",
        "n",
        "N",
        "yes",
        "Yes",
        "YES",
        "no",
        "No",
        "NO",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
    }
)


# libyaml's emitter when PyYAML was built with it: 5-10x faster, the same output for our data.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _KubeDumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """SafeDumper with our own ``str`` representer and no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        # Block style cannot hold trailing spaces on a line or some control characters; PyYAML
        # falls back to quoting in that case by itself.
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    if data in _YAML11_BOOLS:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="'")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_KubeDumper.add_representer(str, _represent_str)


def dump_yaml(obj: Any) -> str:
    """One YAML document, keys in the order given (Argo's field order reads best)."""
    return yaml.dump(
        obj, Dumper=_KubeDumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )


def dump_yaml_all(objs: list[Any]) -> str:
    """Several documents separated by ``---``, as ``kubectl apply -f`` reads them."""
    return yaml.dump_all(
        objs,
        Dumper=_KubeDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
        explicit_start=True,
    )


def load_yaml(text: str) -> Any:
    """Parse one document with the C loader when PyYAML has it (CRDs are megabytes)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader
