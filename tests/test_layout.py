"""The layout's rules, checked on the source: no import cycles (between modules, and between packages), an engine that
never imports the UI or the repository around it, benchmarks that never import the tests, modules that stay small. Read
from the files with `ast`, so a lazy import inside a function or one under TYPE_CHECKING counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gan_core", "ui", "app_pages", "benchmarks", "support")
# A top-level folder and what it must never import. The engine stays UI-free (no streamlit, plotly or the dashboard's
# own modules) and knows nothing of the repository around it. Tests may import benchmarks (to test them), never the
# other way: what both need to start a server lives in support/, which belongs to neither.
FORBIDDEN = {
    "gan_core": {"streamlit", "plotly", "ui", "app_pages", "benchmarks", "support", "tests"},
    "benchmarks": {"tests"},
    "support": {"tests", "benchmarks", "ui", "app_pages"},
}
MAX_LINES = 450  # the house rule: split a file by idea when it passes ~400 lines


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")] + [ROOT / "dashboard.py"]
    return {_module_name(p): p for p in files if p.is_file()}


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in the file: `from a.b import c` is a.b.c when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in known}


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {name: _imports(path, known) - {name} for name, path in sources.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def _package(module: str) -> str:
    """The package a module belongs to, for the package-level graph: gan_core's subpackages (gan_core.lessons, ...)
    and its top-level modules (gan_core.config, ...) each on their own, every other folder as one (ui, benchmarks)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "gan_core" else parts[0]


def _package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for module, imported in graph.items():
        package = _package(module)
        packages.setdefault(package, set()).update({_package(name) for name in imported} - {package})
    return packages


def _top_level_imports(path: Path) -> set[str]:
    """The first part of every absolute import in `path`: `from tests.server import x` is tests."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_a_loop_between_packages_is_found_where_modules_make_none():
    """lessons.a → evaluation.b and evaluation.c → lessons.d: no module imports itself back, yet the packages loop."""
    modules = {"gan_core.lessons.a": {"gan_core.evaluation.b"}, "gan_core.evaluation.b": set(),
               "gan_core.evaluation.c": {"gan_core.lessons.d"}, "gan_core.lessons.d": set()}
    assert _cycle(modules) is None
    assert _cycle(_package_graph(modules)) == ["gan_core.evaluation", "gan_core.lessons", "gan_core.evaluation"]


def test_no_import_cycles_between_packages():
    """gan_core's subpackages (train, runs, evaluation, sweeps, lessons) and the top-level folders import each other in
    one direction only: a page's maths in lessons/ may use evaluation/, never evaluation/ lessons/."""
    cycle = _cycle(_package_graph(_graph()))
    assert cycle is None, "import cycle between packages: " + " → ".join(cycle or [])


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_a_folder_imports_none_of_its_forbidden_folders(folder):
    offenders = {str(p.relative_to(ROOT)): sorted(found) for p in (ROOT / folder).rglob("*.py")
                 if (found := _top_level_imports(p) & FORBIDDEN[folder])}
    assert not offenders, f"{folder}/ must not import {sorted(FORBIDDEN[folder])}: {offenders}"


def test_the_forbidden_imports_check_sees_a_lazy_import(tmp_path):
    source = tmp_path / "bench.py"
    source.write_text("def main():\n    from tests.server import local_server  # noqa: PLC0415\n    import numpy\n")
    assert _top_level_imports(source) == {"tests", "numpy"}


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_stay_small(package):
    big = {str(p.relative_to(ROOT)): n for p in (ROOT / package).rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"split these by idea (~400 lines a file): {big}"
