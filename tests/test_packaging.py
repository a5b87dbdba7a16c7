"""The package as it ships: no import cycle in it, every module importable on its own, only declared runtime
dependencies imported, and a non-editable install that builds and serves the demo county from any folder."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from .conftest import REPO

PACKAGE = REPO / "gis_service"
#: Modules that are not imported but run: alembic executes env.py, and ``python -m`` runs a __main__.
NOT_IMPORTED = {"gis_service.db.migrations.env", "gis_service.cli.__main__"}


def package_modules() -> dict[str, Path]:
    """Every module of gis_service by its dotted name (a package by its ``__init__.py``), in sorted order."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


class _Imports(ast.NodeVisitor):
    """The imports a module runs, at module level and inside functions alike (an import inside a function runs the
    first time it is called, and a cycle through it is a cycle all the same); not those under ``if TYPE_CHECKING:``,
    which never run."""

    def __init__(self, module: str, is_package: bool):
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[tuple[str, str | None, int]] = []  # (module, name imported from it, line)

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
                (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [(alias.name, None, node.lineno) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:  # relative: from the module's package, one level up per extra dot
            parts = self.package.split(".")
            parts = parts[:len(parts) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        self.found += [(base, alias.name, node.lineno) for alias in node.names]


def runtime_imports(module: str, path: Path) -> list[tuple[str, str | None, int]]:
    visitor = _Imports(module, path.name == "__init__.py")
    visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return visitor.found


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {module of gis_service it imports: line}. ``from a import b`` is an edge to ``a.b`` when that is
    a module, else to ``a``; ``import a.b.c`` to the deepest of ``a.b.c``, ``a.b``, ``a`` that is a module."""
    modules = package_modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        for target, name, line in runtime_imports(module, path):
            if not (target == "gis_service" or target.startswith("gis_service.")):
                continue
            full = f"{target}.{name}" if name else target
            resolved = full if full in modules else resolve(target if name else full)
            if resolved and resolved != module:
                edges.setdefault(resolved, line)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm): each holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_the_import_graph_finds_a_cycle_hidden_inside_a_function() -> None:
    """The checker itself: the shape the command line had (a sub-app importing the root back inside a function)."""
    graph = {"gis_service.cli": {"gis_service.analysis.cli": 23}, "gis_service.analysis.cli": {"gis_service.cli": 38},
             "gis_service.settings": {}}
    assert cycles(graph) == [["gis_service.analysis.cli", "gis_service.cli"]]
    source = "def f():\n    from gis_service.cli import database\n"
    assert [(t, n) for t, n, _ in _parsed(source, "gis_service.analysis.cli")] == [("gis_service.cli", "database")]
    checking = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gis_service.app import App\n"
    assert [t for t, _, _ in _parsed(checking, "gis_service.server")] == ["typing"]


def _parsed(source: str, module: str) -> list[tuple[str, str | None, int]]:
    visitor = _Imports(module, is_package=False)
    visitor.visit(ast.parse(source))
    return visitor.found


def test_no_import_cycle_anywhere_in_the_package() -> None:
    graph = import_graph()
    assert len(graph) > 100 and "gis_service.cli.serve" in graph["gis_service.cli"]
    found = cycles(graph)
    described = [" ; ".join(f"{a} -> {b} (line {graph[a][b]})" for a in component for b in graph[a]
                            if b in component) for component in found]
    assert not found, "import cycles:\n" + "\n".join(described)


def test_every_module_imports_on_its_own_in_a_fresh_interpreter() -> None:
    """A fresh interpreter imports the third-party packages, then forks once per module of gis_service: each child
    imports that one module and nothing of gis_service before it, so no import works only thanks to another one
    done first (one interpreter per module would cost a second each)."""
    modules = [name for name in package_modules() if name not in NOT_IMPORTED]
    third_party = sorted(third_party_imports())
    script = textwrap.dedent("""
        import importlib, json, os, sys, traceback
        modules, third_party = json.loads(sys.argv[1]), json.loads(sys.argv[2])
        for name in third_party:
            importlib.import_module(name)
        assert not [m for m in sys.modules if m.startswith("gis_service")]
        failures = {}
        for name in modules:
            read, write = os.pipe()
            child = os.fork()
            if child == 0:
                os.close(read)
                try:
                    importlib.import_module(name)
                    code = 0
                except BaseException:
                    os.write(write, traceback.format_exc().encode())
                    code = 1
                os._exit(code)
            os.close(write)
            with os.fdopen(read, "rb") as pipe:
                message = pipe.read().decode()
            _, status = os.waitpid(child, 0)
            if status != 0:
                failures[name] = message or f"status {status}"
        print(json.dumps(failures))
    """)
    done = subprocess.run([sys.executable, "-c", script, json.dumps(modules), json.dumps(third_party)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    failures = json.loads(done.stdout.splitlines()[-1])
    assert not failures, "\n".join(f"{name}:\n{message}" for name, message in failures.items())


def third_party_imports() -> dict[str, str]:
    """Top-level name of every package outside the standard library that gis_service imports at run time -> one
    module importing it."""
    found: dict[str, str] = {}
    for module, path in package_modules().items():
        for target, _, _ in runtime_imports(module, path):
            top = target.split(".")[0]
            if top and top != "gis_service" and top not in sys.stdlib_module_names:
                found.setdefault(top, module)
    return found


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_runtime_dependencies() -> set[str]:
    """The distributions pyproject.toml's ``[project] dependencies`` name (not the extras), canonical names."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_canonical(re.match(r"[A-Za-z0-9._-]+", requirement).group()) for requirement in project["dependencies"]}


def test_the_package_imports_only_its_declared_runtime_dependencies() -> None:
    """A package the service imports must be declared as a runtime dependency itself, not only arrive with another
    one or with the test extras (httpx and websockets once did, through the test harnesses that lived here)."""
    from importlib.metadata import packages_distributions

    provided_by = packages_distributions()
    declared = declared_runtime_dependencies()
    undeclared = {}
    for top, module in sorted(third_party_imports().items()):
        distributions = {_canonical(d) for d in provided_by.get(top, [])}
        if not distributions & declared:
            undeclared[top] = f"imported by {module}, provided by {sorted(distributions) or 'nothing installed'}"
    assert not undeclared, f"imports that are not runtime dependencies in pyproject.toml: {undeclared}"
    assert {"networkx", "httpx", "websockets"}.isdisjoint(declared)
