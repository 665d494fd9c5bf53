"""Persistent object store of the embedded engine: workflows and templates as JSON files.

Plays the part etcd plays for Argo: every object lives in memory for fast LIST/GET (the runner
polls thousands of workflows with one call) and is written through, atomically, to
``<state dir>/objects/<kind>/<namespace>/<name>.json`` so that killing the server loses nothing.
A global ``resourceVersion`` counter, persisted with each object, orders changes as the
Kubernetes API does.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from galaxy_argo.core.errors import GalaxyArgoError
from galaxy_argo.local.selectors import match_labels

__all__ = ["KINDS", "AlreadyExists", "NotFound", "ObjectStore", "now_iso"]

#: Kinds the store keeps, by their REST plural.
KINDS = ("workflows", "workflowtemplates", "clusterworkflowtemplates")


class NotFound(GalaxyArgoError, KeyError):
    """No object of that kind, namespace and name (HTTP 404)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class AlreadyExists(GalaxyArgoError, ValueError):
    """An object of that kind, namespace and name exists already (HTTP 409)."""


def now_iso() -> str:
    """UTC time as Kubernetes writes it (RFC 3339, seconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(namespace: str, name: str) -> tuple[str, str]:
    return (namespace, name)


class ObjectStore:
    """Thread-safe in-memory objects, written through to JSON files."""

    def __init__(self, state_dir: Path) -> None:
        """Load every object found under ``state_dir``."""
        self.root = state_dir / "objects"
        self._lock = threading.RLock()
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._version = 0
        self._load()

    def _load(self) -> None:
        for kind in KINDS:
            for path in sorted((self.root / kind).glob("*/*.json")):
                obj = json.loads(path.read_text())
                meta = obj["metadata"]
                self._objects[kind][_key(meta.get("namespace", ""), meta["name"])] = obj
                self._version = max(self._version, int(meta.get("resourceVersion", "0")))

    def _path(self, kind: str, namespace: str, name: str) -> Path:
        return self.root / kind / (namespace or "_cluster") / f"{name}.json"

    def _write(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        path = self._path(kind, meta.get("namespace", ""), meta["name"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(obj, separators=(",", ":")))
        os.replace(tmp, path)

    def _bump(self, obj: dict[str, Any]) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)

    def create(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object; fills uid, creationTimestamp and resourceVersion like the API server."""
        with self._lock:
            meta = obj.setdefault("metadata", {})
            key = _key(meta.get("namespace", ""), meta["name"])
            if key in self._objects[kind]:
                raise AlreadyExists(f'{kind} "{meta["name"]}" already exists')
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_iso())
            self._bump(obj)
            self._objects[kind][key] = obj
            self._write(kind, obj)
            return copy.deepcopy(obj)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """A deep copy of the object, or `NotFound`."""
        with self._lock:
            obj = self._objects[kind].get(_key(namespace, name))
            if obj is None:
                raise NotFound(f'{kind} "{name}" not found')
            return copy.deepcopy(obj)

    def locked(self) -> threading.RLock:
        """The store's lock, for read-only iteration without copies (LIST of thousands)."""
        return self._lock

    def items(self, kind: str, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """Stored objects (no copies: callers hold `locked` and must not modify them)."""
        for (ns, _), obj in self._objects[kind].items():
            if namespace in (None, "", ns):
                yield obj

    def labelled(
        self, kind: str, namespace: str, selector: str, view: Callable[[dict[str, Any]], Any] = copy.deepcopy
    ) -> tuple[list[Any], int]:
        """A LIST: ``view`` of each object matching the label ``selector``, and the resourceVersion.

        Both come from one consistent read; ``view`` copies or projects and must not modify.
        """
        with self._lock:
            items = [
                view(obj)
                for obj in self.items(kind, namespace)
                if match_labels(selector, obj["metadata"].get("labels") or {})
            ]
            return items, self._version

    def replace(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace an existing object wholesale; `NotFound` if it was deleted meanwhile."""
        with self._lock:
            meta = obj["metadata"]
            key = _key(meta.get("namespace", ""), meta["name"])
            if key not in self._objects[kind]:
                raise NotFound(f'{kind} "{meta["name"]}" not found')
            self._bump(obj)
            self._objects[kind][key] = obj
            self._write(kind, obj)
            return copy.deepcopy(obj)

    def delete(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """Remove the object and its file; `NotFound` if absent."""
        with self._lock:
            obj = self._objects[kind].pop(_key(namespace, name), None)
            if obj is None:
                raise NotFound(f'{kind} "{name}" not found')
            self._path(kind, namespace, name).unlink(missing_ok=True)
        return obj

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion handed out."""
        return self._version
