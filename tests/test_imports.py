"""Imports flow one way, with no circles: read statically from the source with ``ast``.

The layering (README, docs/architecture.md): ``binfeat`` (the command) -> benchmarks -> jobs -> extract,
and dags -> airflow_ops -> the Airflow provider. Every import counts, including those inside
functions (lazy imports keep start-up fast but are still dependencies) and under ``TYPE_CHECKING``.
A dynamic import whose module name is computed at run time would hide an edge from this test, so
it is an error too, unless it is listed in ``DYNAMIC_IMPORTS_ALLOWED`` with the reason it never
names a project module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("binfeat", "benchmarks", "jobs", "extract", "airflow_ops", "dags")

# What each package must not import (a prefix matches the module and its submodules).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "extract": ("jobs", "benchmarks", "airflow_ops", "dags", "binfeat", "pyspark", "boto3", "botocore", "airflow"),
    "jobs": ("benchmarks", "airflow_ops", "dags", "binfeat", "airflow"),
    "benchmarks": ("airflow_ops", "dags", "binfeat"),
    "airflow_ops": ("dags", "benchmarks", "binfeat"),
    "binfeat": ("dags", "airflow_ops"),
}
# dags declare tasks: of the project's packages they import airflow_ops only
ONLY_PROJECT_IMPORTS: dict[str, tuple[str, ...]] = {"dags": ("airflow_ops",)}

# Known violations that other work in progress removes. Each entry is (importer, imported); a
# dynamic import is (importer, "<dynamic:CALL>"). Every test here skips exactly these. Empty this list
# as the fixes land (test_known_exceptions_are_still_real fails once an entry no longer exists).
KNOWN_EXCEPTIONS: list[tuple[str, str]] = [
]

# (module, call): dynamic imports whose argument is computed, and why none of them names a project module.
DYNAMIC_IMPORTS_ALLOWED: dict[tuple[str, str], str] = {
    ("extract.worker", "importlib.import_module"): "ExtractOptions.worker_preload: the caller's own parser modules",
    ("jobs.warmup", "importlib.import_module"): "BINFEAT_TEST_WORKER_PLUGIN: a test's fault-injection module",
    ("jobs.corpus.extraction", "import_module"): "BINFEAT_CONTRACT_PLUGIN: a test's contract (a bumped version)",
    ("benchmarks.machine", "__import__"): "versions of third-party packages (pyspark, numpy, ...) for the report",
}
_DYNAMIC_CALLS = {"__import__", "importlib.import_module", "import_module", "importlib.__import__",
                  "runpy.run_module", "run_module"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            if "__pycache__" not in path.parts:
                out[_module_name(path)] = path
    return out


SOURCES = _sources()


def _resolve(name: str) -> str:
    """The project module an imported name is (``pkg.mod.attr`` -> ``pkg.mod``), or the name itself."""
    while name and name not in SOURCES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in ``module``'s source, wherever it stands."""
    path = SOURCES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _resolve(alias.name), node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - node.level + 1]
                base = ".".join(p for p in [*base_parts, node.module or ""] if p)
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield (_resolve(full) if full in SOURCES else _resolve(base)), node.lineno
        elif isinstance(node, ast.Call) and _dotted(node.func) in _DYNAMIC_CALLS:
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield _resolve(arg.value), node.lineno
            else:
                yield f"<dynamic:{_dotted(node.func)}>", node.lineno


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in SOURCES}
    for module in SOURCES:
        for target, _ in imports_of(module):
            if target in SOURCES and target != module and (module, target) not in KNOWN_EXCEPTIONS:
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_scan_sees_every_package_and_lazy_imports():
    assert {m.split(".")[0] for m in SOURCES} == set(PACKAGES)
    # a function-level import is an edge: binfeat's dispatch imports the job only when chosen
    assert "jobs.extract_cli" in {t for t, _ in imports_of("binfeat.cli")}


def test_no_import_cycles():
    assert _cycles(_edges()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layering(package):
    bad = []
    for module in (m for m in SOURCES if m.split(".")[0] == package):
        for target, line in imports_of(module):
            if (module, target) in KNOWN_EXCEPTIONS:
                continue
            if any(target == f or target.startswith(f + ".") for f in FORBIDDEN[package]):
                bad.append(f"{SOURCES[module].relative_to(REPO)}:{line} imports {target}")
    assert bad == []


@pytest.mark.parametrize("package", sorted(ONLY_PROJECT_IMPORTS))
def test_dags_import_only_airflow_ops(package):
    allowed = ONLY_PROJECT_IMPORTS[package]
    bad = []
    for module in (m for m in SOURCES if m.split(".")[0] == package):
        for target, line in imports_of(module):
            top = target.split(".")[0]
            if (module, target) in KNOWN_EXCEPTIONS or top not in PACKAGES or top in allowed:
                continue
            bad.append(f"{SOURCES[module].relative_to(REPO)}:{line} imports {target}")
    assert bad == []


def test_no_dynamic_import_hides_an_edge():
    bad = []
    for module in SOURCES:
        for target, line in imports_of(module):
            if target.startswith("<dynamic:"):
                call = target[len("<dynamic:") : -1]
                if (module, call) not in DYNAMIC_IMPORTS_ALLOWED and (module, target) not in KNOWN_EXCEPTIONS:
                    bad.append(f"{SOURCES[module].relative_to(REPO)}:{line} {call}(<computed name>)")
    assert bad == []


def test_known_exceptions_are_still_real():
    """An exception whose import is gone must leave the list (so the list only ever shrinks)."""
    present = {(m, t) for m in SOURCES for t, _ in imports_of(m)}
    assert [e for e in KNOWN_EXCEPTIONS if e not in present] == []


IMPORT_EACH = """
import importlib, sys
names, sys.argv = sys.argv[1:], [sys.argv[0]]
bad = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        bad.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(bad))
"""


def test_every_module_imports_and_every_imported_name_exists():
    """A static graph cannot see a name that no longer exists (``from m import gone``): import every
    module for real, in a fresh interpreter (the DAG files too: they declare, they do no work)."""
    import os
    import subprocess
    import sys

    modules = [m for m in sorted(_sources()) if not m.endswith("__main__")]  # those run when imported
    proc = subprocess.run([sys.executable, "-c", IMPORT_EACH, *modules], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "", proc.stdout
