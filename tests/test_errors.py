"""Every exception class galaxy-argo defines derives from `GalaxyArgoError` (core/errors.py says so)."""

from __future__ import annotations

import ast
import importlib
import inspect

from galaxy_argo.core.errors import GalaxyArgoError
from tests.test_layers import PACKAGE, imports


def test_every_exception_class_is_a_galaxy_argo_error() -> None:
    checked = []
    for module in imports():
        if module.startswith("galaxy."):
            continue  # needs Galaxy; its runner defines no exception classes (checked below)
        if module.endswith("__main__"):
            continue
        mod = importlib.import_module(f"galaxy_argo.{module}" if module else "galaxy_argo")
        for name, value in vars(mod).items():
            defined_here = inspect.isclass(value) and value.__module__ == mod.__name__
            if defined_here and issubclass(value, BaseException):
                assert issubclass(value, GalaxyArgoError), f"{mod.__name__}.{name} is not a GalaxyArgoError"
                checked.append(name)
    assert {"ArgoError", "StagingError", "EngineError", "SandboxError", "LabelSelectorError"} <= set(checked)


def test_the_runner_package_defines_no_exception_of_its_own() -> None:
    for path in (PACKAGE / "galaxy").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b) for b in node.bases}
                assert not bases & {"Exception", "BaseException", "ValueError", "RuntimeError"}, (
                    f"{path.name}: {node.name} derives from {bases}, not GalaxyArgoError"
                )


def test_no_assert_is_a_runtime_check_in_the_package() -> None:
    """Asserts vanish under ``python -O`` (STYLE.md 4): the package raises, or types, instead."""
    for path in PACKAGE.rglob("*.py"):
        asserts = [n.lineno for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Assert)]
        assert not asserts, f"{path.relative_to(PACKAGE)}: assert on lines {asserts}"
