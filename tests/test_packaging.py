"""The package as it ships: no import cycle in it, every module importable on its own, only declared runtime
dependencies imported, and a non-editable install that builds and serves the demo county from any folder."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from .harness.devserver import free_port
from .helpers import REPO, open_map

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
    """A fresh interpreter imports the third-party modules the package uses, then forks once per module of
    gis_service: each child imports that one module and nothing of gis_service before it, so no import works only
    thanks to another one done first (one interpreter per module would cost seconds each)."""
    modules = [name for name in package_modules() if name not in NOT_IMPORTED]
    third_party = sorted({module for modules_ in third_party_imports().values() for module in modules_})
    script = textwrap.dedent("""
        import importlib, json, os, sys, traceback
        modules, third_party = json.loads(sys.argv[1]), json.loads(sys.argv[2])
        for name in third_party:
            try:
                importlib.import_module(name)
            except ImportError:  # ``from a import b`` where b is a name, not a module
                pass
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


def third_party_imports() -> dict[str, dict[str, str]]:
    """Top-level name of every package outside the standard library that gis_service imports at run time -> the
    modules imported from it (``a.b`` and, for ``from a.b import c``, ``a.b.c``) -> one module of gis_service
    importing each."""
    found: dict[str, dict[str, str]] = {}
    for module, path in package_modules().items():
        for target, name, _ in runtime_imports(module, path):
            top = target.split(".")[0]
            if top and top != "gis_service" and top not in sys.stdlib_module_names:
                for imported in (target, f"{target}.{name}") if name else (target,):
                    found.setdefault(top, {}).setdefault(imported, module)
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
    for top, imported in sorted(third_party_imports().items()):
        distributions = {_canonical(d) for d in provided_by.get(top, [])}
        if not distributions & declared:
            undeclared[top] = (f"imported by {sorted(set(imported.values()))}, provided by "
                               f"{sorted(distributions) or 'nothing installed'}")
    assert not undeclared, f"imports that are not runtime dependencies in pyproject.toml: {undeclared}"
    # websockets is a runtime dependency since maps are printed by headless Chromium (gis_service/maps/printing.py)
    assert {"networkx", "httpx"}.isdisjoint(declared)


# -- a non-editable install ----------------------------------------------------------------------------------------

#: Run inside the new virtualenv: where gis_service was imported from, every module of it that failed to import,
#: and which test-only packages are importable there.
IMPORT_EVERYTHING = textwrap.dedent("""
    import importlib, importlib.util, json, pathlib, traceback
    import gis_service
    root = pathlib.Path(gis_service.__file__).parent
    failures = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name in NOT_IMPORTED:
            continue
        try:
            importlib.import_module(name)
        except Exception:
            failures[name] = traceback.format_exc()
    test_only = [name for name in ("httpx", "networkx", "pytest") if importlib.util.find_spec(name)]
    print(json.dumps({"imported_from": str(root), "failures": failures, "test_only": test_only}))
""")


def _pins(lock: Path) -> set[str]:
    return {_canonical(line.split("==")[0]) + "==" + line.split("==")[1].strip()
            for line in lock.read_text(encoding="utf-8").splitlines() if "==" in line and not line.startswith("#")}


def _run(command: list[str], *, cwd: Path, env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_a_wheel_in_a_fresh_virtualenv_builds_and_serves_the_demo_county_from_any_folder() -> None:
    """``pip install .`` (not editable) with requirements.lock alone, into a new virtualenv: it installs only the
    locked runtime dependencies, every module imports, and from a folder outside the repository ``gis-service demo
    build`` writes the real Xiushan divisions and ``gis-service serve`` loads and serves the demo county, maps
    included: the source data and map recipes come from the installed package."""
    # Not under pytest's tmp_path: as root the cluster runs as postgres, which must be able to enter the folder.
    folder = Path(tempfile.mkdtemp(prefix="gis-install-test-"))
    folder.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIS_", "PYTHON", "VIRTUAL_ENV"))}
    env["GIS_DATA_DIR"] = str(folder / "data")
    elsewhere = folder / "elsewhere"  # the working folder of every command: no .env, no repository
    elsewhere.mkdir()
    server = None
    try:
        # the repository's files as git sees them, so that no build/ left by another build can slip into the wheel
        source = folder / "source"
        listed = _run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO, env=env,
                      timeout_s=60).stdout
        for name in filter(None, listed.split("\0")):
            if (REPO / name).is_file():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, source / name)
        venv = folder / "venv"
        _run([sys.executable, "-m", "venv", str(venv)], cwd=elsewhere, env=env, timeout_s=120)
        _run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
              "-c", str(REPO / "requirements.lock"), str(source)], cwd=elsewhere, env=env, timeout_s=900)

        frozen = _run([str(venv / "bin" / "pip"), "freeze", "--exclude", "gis-service"], cwd=elsewhere, env=env,
                      timeout_s=120).stdout
        installed = {_canonical(line.split("==")[0]) + "==" + line.split("==")[1] for line in frozen.splitlines()
                     if "==" in line}
        assert installed == _pins(REPO / "requirements.lock"), "requirements.lock is not the runtime closure"

        imported = json.loads(_run([str(venv / "bin" / "python"), "-c",
                                    f"NOT_IMPORTED = {sorted(NOT_IMPORTED)!r}\n{IMPORT_EVERYTHING}"],
                                   cwd=elsewhere, env=env, timeout_s=300).stdout.splitlines()[-1])
        assert Path(imported["imported_from"]).is_relative_to(venv)
        assert imported["test_only"] == []
        assert not imported["failures"], "\n".join(f"{k}:\n{v}" for k, v in imported["failures"].items())

        gis_service = str(venv / "bin" / "gis-service")
        _run([gis_service, "demo", "build", "--out", "demo"], cwd=elsewhere, env=env, timeout_s=300)
        divisions = json.loads((elsewhere / "demo" / "admin_divisions.geojson").read_text(encoding="utf-8"))
        levels = [f["properties"]["level"] for f in divisions["features"]]
        assert levels.count("village") == 268  # the real NBS villages of layers/xiushan
        county = next(f["properties"] for f in divisions["features"] if f["properties"]["level"] == "county")
        assert county["name"] == "秀山土家族苗族自治县"

        port = free_port()
        log = folder / "serve.log"  # a file, not a pipe nobody reads while it serves
        with log.open("w") as messages:
            server = subprocess.Popen([gis_service, "serve", "--port", str(port)], cwd=elsewhere, env=env,
                                      stdout=messages, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        health = _wait_for_health(server, base, log, timeout_s=600)
        assert health["layers"]["settlements"] > 0 and health["layers"]["roads"] > 0
        villages = httpx.get(f"{base}/collections/admin_divisions/items", params={"level": "village", "limit": 1},
                             timeout=60).json()
        assert villages["numberMatched"] == 268
        with httpx.Client(base_url=base, timeout=300) as client:
            overview = open_map(client, "/maps/overview")
        assert overview.status_code == 200 and "秀山县民政设施总览" in overview.text  # maps/overview.toml's title
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=90) == 0
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        if (venv_cli := folder / "venv" / "bin" / "gis-service").exists():
            subprocess.run([str(venv_cli), "db", "stop"], cwd=folder, env=env, capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_health(server: subprocess.Popen, base: str, log: Path, *, timeout_s: float) -> dict:
    """``/health`` once it answers 200; fails with serve's messages if serve exits first or never answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"serve exited with {server.returncode}: {log.read_text()[-3000:]}")
        try:
            answer = httpx.get(f"{base}/health", timeout=5)
            if answer.status_code == 200:
                return answer.json()
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"serve did not answer /health within {timeout_s:.0f} s: {log.read_text()[-3000:]}")
