"""Layer contracts (STYLE.md 13): who may import Galaxy, Hera, boto3 and requests."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "galaxy_argo"
PURE_CORE = [
    "spec",
    "settings",
    "naming",
    "stage_scripts",
    "compile",
    "templates",
    "outcome",
    "metrics",
    "fields",
    "errors",
    "yamlio",
]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules() -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE)): imported_modules(p) for p in PACKAGE.rglob("*.py")}


def test_only_the_galaxy_subpackage_imports_galaxy() -> None:
    for name, imports in modules().items():
        if not name.startswith("galaxy/"):
            assert not {i for i in imports if i == "galaxy" or i.startswith("galaxy.")}, name


def test_pure_core_does_no_network_io() -> None:
    mods = modules()
    for core in PURE_CORE:
        imports = mods.get(f"{core}.py")
        if imports is None:
            continue
        forbidden = {
            i
            for i in imports
            if i.split(".")[0]
            in {"boto3", "botocore", "requests", "urllib3", "socket", "http", "kubernetes", "subprocess"}
        }
        assert not forbidden, f"{core}.py imports {forbidden}"


def test_hera_is_imported_only_through_the_guard() -> None:
    for name, imports in modules().items():
        if name in ("_hera.py", "argo.py"):
            continue
        assert not {i for i in imports if i == "hera" or i.startswith("hera.")}, name


def test_core_imports_without_galaxy_installed() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['galaxy'] = None\n"
        "import galaxy_argo.compile, galaxy_argo.templates, galaxy_argo.cli\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr
