"""Every package the app imports is in requirements.txt with a floor that .ci/check-floors installs and checks.

The floors themselves are checked by .ci/check-floors (a throwaway environment with each floor installed, the page
tests run there): this test keeps that check complete. A package imported by the code but missing from
requirements.txt installs nowhere on a fresh machine (ui/cache.py imported pyarrow while only Streamlit brought it in);
a line the script cannot read as `name>=version` is a floor nobody checks.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = {"gan_core", "ui", "app_pages", "benchmarks", "support", "dashboard"}  # the project's own top-level modules
# optional backends: imported lazily by the module named, and installed by requirements-dev.txt (with a floor), never by
# requirements.txt: the default install does without them
OPTIONAL = {"ray": "gan_core/runs/ray_driver.py"}


def _check_floors_module():
    """.ci/check-floors loaded as a module (it has no .py suffix, so the loader is named explicitly)."""
    path = ROOT / ".ci" / "check-floors"
    loader = importlib.machinery.SourceFileLoader("check_floors", str(path))
    spec = importlib.util.spec_from_loader("check_floors", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _imported_top_level() -> dict[str, str]:
    """{third-party top-level module: a file importing it} over the app's code, lazy imports included."""
    files = [p for pkg in ("gan_core", "ui", "app_pages") for p in (ROOT / pkg).rglob("*.py")] + [ROOT / "dashboard.py"]
    found: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def _required(file: str = "requirements.txt") -> set[str]:
    """The distribution names a requirements file lists (extras dropped), lower-cased."""
    names = set()
    for line in (ROOT / file).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(line.split(">")[0].split("<")[0].split("=")[0].split("~")[0].split("!")[0].split("[")[0]
                      .strip().lower())
    return names


def test_every_package_the_app_imports_is_in_requirements() -> None:
    imported = _imported_top_level()
    # The scan must see the app's known dependencies, or an empty scan would pass.
    assert {"streamlit", "torch", "numpy", "pandas", "plotly", "pyarrow", "PIL", "sklearn"} <= imported.keys()
    distributions = importlib.metadata.packages_distributions()
    required = _required()
    missing = []
    for module, where in sorted(imported.items()):
        if OPTIONAL.get(module) == where:
            continue  # test_optional_packages_are_dev_requirements_only
        dists = [d.lower() for d in distributions.get(module, [])]
        assert dists, f"{module} (imported by {where}) is not installed, so its distribution is unknown"
        if not set(dists) & required:
            missing.append(f"{module} ({'/'.join(dists)}, imported by {where})")
    assert not missing, "not in requirements.txt: " + ", ".join(missing)


def test_every_requirement_has_a_floor_the_script_checks() -> None:
    script = _check_floors_module()
    checked = script.floors(ROOT / "requirements.txt")
    assert {"streamlit", "numpy", "pandas", "plotly", "scikit-learn", "pyarrow"} <= checked.keys()
    unchecked = _required() - checked.keys() - script.FROM_ENVIRONMENT
    assert not unchecked, f"requirements.txt lines .ci/check-floors does not read as name>=version: {sorted(unchecked)}"


def test_every_floor_says_what_needs_it() -> None:
    bare = [
        line for line in (ROOT / "requirements.txt").read_text().splitlines()
        if ">=" in line and "#" not in line and line.split(">=")[0].strip().lower() not in {"torch", "torchvision"}
    ]
    assert not bare, f"a floor without a comment naming the API that needs it: {bare}"


def test_the_script_tests_exist() -> None:
    missing = [t for t in _check_floors_module().TESTS if not (ROOT / t).is_file()]
    assert not missing, f".ci/check-floors names test files that do not exist: {missing}"


def test_optional_packages_are_dev_requirements_only() -> None:
    imported = _imported_top_level()
    assert OPTIONAL.keys() <= imported.keys(), "an optional package no longer imported: drop it from OPTIONAL"
    dev_lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    for module in OPTIONAL:
        assert module not in _required(), f"{module} is optional: requirements-dev.txt, not requirements.txt"
        assert any(line.lower().startswith(module) and ">=" in line for line in dev_lines), (
            f"{module} has no floor (name>=version) in requirements-dev.txt")
