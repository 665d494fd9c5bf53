"""The layers, defined once (STYLE.md 13): which packages exist, what each holds, who may import whom.

Every rule follows imports transitively through the package (a core module that imports a helper
that imports boto3 imports boto3), and every module named here must exist: a module that moves
or disappears fails the test instead of being skipped. Lazy imports inside functions count.
README's layout table is generated from the same data and the packages' docstrings.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "galaxy_argo"

#: Every module of the package, by layer. A new module is added here, in its layer, on purpose.
LAYERS: dict[str, set[str]] = {
    "core": {
        "__init__",
        "_hera",
        "argo_schema",
        "compile",
        "errors",
        "fields",
        "metrics",
        "naming",
        "outcome",
        "settings",
        "spec",
        "stage_scripts",
        "templates",
        "yamlio",
    },
    "clients": {"__init__", "argo", "connections", "kube", "progress", "staging"},
    "galaxy": {"__init__", "compute_env", "metadata", "object_store", "plan", "runner"},
    "dev": {"__init__", "counting_proxy", "demo", "environment", "galaxy_api", "galaxy_server"},
    "local": {
        "__init__",
        "artifacts",
        "container_env",
        "kube_api",
        "pods",
        "process",
        "run",
        "s3",
        "selectors",
        "server",
        "stack",
        "store",
        "controller",
        "controller.admission",
        "controller.engine",
        "controller.nodes",
        "controller.pod_nodes",
        "controller.reconcile",
        "controller.retries",
        "controller.scope",
        "controller.steps_and_dags",
        "expressions",
        "expressions.depends",
        "expressions.errors",
        "expressions.evaluation",
        "expressions.syntax",
        "expressions.tags",
        "expressions.values",
        "sandbox",
        "sandbox.argosay",
        "sandbox.bwrap",
        "sandbox.containers",
        "sandbox.images",
        "sandbox.memory",
        "sandbox.model",
        "sandbox.processes",
    },
    "cli": {"__init__", "__main__", "doctor", "main"},
}

#: Which layers a layer may import (itself always). The root package re-exports the core only.
MAY_IMPORT: dict[str, set[str]] = {
    "": {"core"},
    "core": set(),
    "clients": {"core"},
    "galaxy": {"core", "clients"},
    "dev": {"core", "clients", "local"},
    "local": {"core"},
    "cli": {"core", "clients", "dev", "local"},
}

#: The core's job model: the engine runs any workflow and never reaches these.
JOB_MODEL = {
    "core.spec",
    "core.settings",
    "core.compile",
    "core.templates",
    "core.stage_scripts",
    "core.outcome",
}

#: Libraries that do network or process I/O; the core imports none of them, even indirectly.
IO_LIBRARIES = {
    "boto3",
    "botocore",
    "s3transfer",
    "requests",
    "urllib3",
    "kubernetes",
    "socket",
    "http",
    "subprocess",
    "galaxy",
    "sqlalchemy",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


@cache
def imports() -> dict[str, set[str]]:
    """Module (relative to galaxy_argo, "" for the root) -> absolute names it imports anywhere."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                assert node.level == 0, f"{path}: relative import of {node.module}"
                names.add(node.module)
                # `from galaxy_argo.core import yamlio` imports the module galaxy_argo.core.yamlio
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[_module_name(path)] = names
    return found


def internal(names: set[str]) -> set[str]:
    """The package's own modules among imported names, relative to galaxy_argo."""
    mods = imports()
    out = set()
    for name in names:
        if name == "galaxy_argo":
            out.add("")
        elif name.startswith("galaxy_argo."):
            rel = name.removeprefix("galaxy_argo.")
            if rel in mods:
                out.add(rel)
    return out


@cache
def reachable(module: str) -> frozenset[str]:
    """Every module of the package that importing `module` may import, itself included."""
    seen = {module}
    todo = [module]
    while todo:
        for dep in internal(imports()[todo.pop()]):
            # importing a.b.c runs a/__init__ and a/b/__init__ too
            parts = dep.split(".")
            for i in range(1, len(parts) + 1):
                chain = ".".join(parts[:i])
                if chain in imports() and chain not in seen:
                    seen.add(chain)
                    todo.append(chain)
    seen.add("")
    return frozenset(seen)


def layer_of(module: str) -> str:
    return module.split(".")[0] if module else ""


def test_every_named_module_exists_and_every_module_is_named() -> None:
    actual = {(layer_of(m), ".".join(m.split(".")[1:]) or "__init__") for m in imports() if m}
    declared = {(layer, name) for layer, names in LAYERS.items() for name in names}
    assert actual - declared == set(), "modules in no layer: add them to LAYERS"
    assert declared - actual == set(), "modules named in LAYERS that do not exist"


def test_each_layer_imports_only_the_layers_below_it() -> None:
    for module in imports():
        layer = layer_of(module)
        allowed = MAY_IMPORT[layer] | {layer, ""}
        crossing = {dep for dep in reachable(module) if layer_of(dep) not in allowed}
        assert not crossing, f"galaxy_argo.{module} ({layer or 'root'}) reaches {sorted(crossing)}"


def test_only_the_runner_package_reaches_galaxy() -> None:
    for module in imports():
        if layer_of(module) == "galaxy":
            continue
        reached = {
            f"{dep} -> {name}"
            for dep in reachable(module)
            for name in imports()[dep]
            if name.split(".")[0] in ("galaxy", "sqlalchemy")
        }
        assert not reached, f"galaxy_argo.{module} reaches Galaxy: {sorted(reached)}"


def test_the_core_does_no_io() -> None:
    for module in imports():
        if layer_of(module) != "core":
            continue
        io = {
            f"{dep} -> {name}"
            for dep in reachable(module)
            for name in imports()[dep]
            if name.split(".")[0] in IO_LIBRARIES
        }
        assert not io, f"galaxy_argo.{module} does I/O: {sorted(io)}"


def test_the_engine_never_reaches_the_job_model() -> None:
    for module in imports():
        if layer_of(module) == "local":
            model = reachable(module) & JOB_MODEL
            assert not model, f"galaxy_argo.{module} reaches {sorted(model)}"


def test_hera_is_imported_only_through_the_shim_and_the_argo_client() -> None:
    for module, names in imports().items():
        if module in ("core._hera", "clients.argo"):
            continue
        assert not {n for n in names if n.split(".")[0] == "hera"}, module


def test_the_rules_catch_an_indirect_import() -> None:
    """The transitive walk is what the rules rest on: a core helper importing boto3 must fail."""
    imports()[""]  # fill the cache
    original = dict(imports())
    try:
        imports()["core.naming"] = original["core.naming"] | {"galaxy_argo.clients.staging"}
        reachable.cache_clear()
        with pytest.raises(AssertionError, match=r"reaches .*clients\.staging"):
            test_each_layer_imports_only_the_layers_below_it()
        with pytest.raises(AssertionError, match="boto3"):
            test_the_core_does_no_io()
    finally:
        imports()["core.naming"] = original["core.naming"]
        reachable.cache_clear()


def test_core_and_command_import_without_galaxy_installed() -> None:
    code = (
        "import sys; sys.modules['galaxy'] = None\n"
        "import galaxy_argo.core.compile, galaxy_argo.core.templates, galaxy_argo.cli.main\n"
        "import galaxy_argo.clients.connections, galaxy_argo.local.stack, galaxy_argo.dev.environment\n"
        "print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "ok", result.stderr


# -- README's layout table ------------------------------------------------------------------------

LAYOUT_BEGIN = "<!-- layout: generated from the packages' docstrings by tests/test_layers.py -->"
LAYOUT_END = "<!-- /layout -->"


def _first_paragraph(docstring: str) -> str:
    return " ".join(docstring.strip().split("\n\n")[0].split())


def _module_summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(doc.strip().split("\n")[0].split())


def layout_table() -> str:
    """README's table: each package (its docstring's first paragraph), then each module's first line."""
    rows = ["| where | what it is |", "| --- | --- |"]
    for layer in LAYERS:
        init = PACKAGE / layer / "__init__.py"
        summary = _first_paragraph(ast.get_docstring(ast.parse(init.read_text())) or "")
        rows.append(f"| **`galaxy_argo/{layer}/`** | **{summary}** |")
        for name in sorted(LAYERS[layer] - {"__init__", "__main__"}):
            path = PACKAGE / layer / f"{name.replace('.', '/')}.py"
            if not path.exists():
                path = PACKAGE / layer / name.replace(".", "/") / "__init__.py"
            rows.append(
                f"| `{name.replace('.', '/')}{'.py' if path.name != '__init__.py' else '/'}` "
                f"| {_module_summary(path)} |"
            )
    return "\n".join(row.replace("\\|", "|") for row in rows)


def test_every_package_and_module_says_what_it_is() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert _module_summary(path), f"{path.relative_to(ROOT)} has no docstring"


def test_no_module_is_over_800_lines() -> None:
    """A module past 800 lines has more than one job (the brief's limit): split it by job."""
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 800
    }
    assert not long, long


def test_readme_layout_table_matches_the_packages() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"{LAYOUT_BEGIN}\n{layout_table()}\n{LAYOUT_END}"
    pattern = re.compile(re.escape(LAYOUT_BEGIN) + r".*?" + re.escape(LAYOUT_END), re.S)
    if os.environ.get("GALAXY_ARGO_REGENERATE_README") and not os.environ.get("CI"):
        readme.write_text(pattern.sub(lambda _: block, text))
        text = readme.read_text()
    assert pattern.search(text), f"README has no layout block ({LAYOUT_BEGIN} ... {LAYOUT_END})"
    assert block in text, "README's layout table is stale: run `make readme`"
