"""No dependency is declared that no code imports: for every ``pyproject.toml`` of the workspace,
each distribution in ``[project].dependencies`` is imported by that package's code.

Distribution names map to import names through the installed metadata
(``importlib.metadata.packages_distributions``) and, for the workspace's own packages, through
the package folders under their ``src``. A module imported by name (a string constant equal to
its import name, e.g. the CLI's service table) counts as imported. The one dependency used as a
command rather than imported, the ASGI server a service image runs, is listed below and checked
against the Dockerfile. Development tools (``[dependency-groups]``) are run, not imported, and
are out of scope."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The workspace root declares the packages its tests and benchmarks exercise.
ROOT_CODE = ("tests", "bench")
# Declared to be run as a command, not imported: name → where the command is run. uvloop and
# httptools are the event loop and HTTP parser the image's uvicorn command line selects.
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
COMMANDS = {"uvicorn": DOCKERFILE, "uvloop": DOCKERFILE, "httptools": DOCKERFILE}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert match, spec
    return normalise(match.group(1))


def pyprojects() -> list[Path]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members = root["tool"]["uv"]["workspace"]["members"]
    found = [ROOT / "pyproject.toml"]
    for pattern in members:
        found += sorted(p / "pyproject.toml" for p in ROOT.glob(pattern) if p.is_dir())
    return [p for p in found if p.exists()]


def code_folders(pyproject: Path) -> list[Path]:
    if pyproject.parent == ROOT:
        return [ROOT / name for name in ROOT_CODE]
    return [pyproject.parent / "src"]


def import_names() -> dict[str, set[str]]:
    """Distribution (normalised) → the top-level names it can be imported as."""
    names: dict[str, set[str]] = defaultdict(set)
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            names[normalise(distribution)].add(module)
    for pyproject in pyprojects()[1:]:  # the workspace's own packages
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        src = pyproject.parent / "src"
        for folder in src.iterdir() if src.is_dir() else ():
            if (folder / "__init__.py").exists():
                names[normalise(project["name"])].add(folder.name)
    return names


def imported_by(folders: list[Path]) -> set[str]:
    """Top-level modules the code imports, plus string constants that may name a module."""
    seen: set[str] = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            if ".venv" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    seen.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    seen.add(node.module.split(".")[0])
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    seen.add(node.value)  # only identifiers can match an import name
    return seen


CASES = [
    pytest.param(p, id=str(p.parent.relative_to(ROOT)) if p.parent != ROOT else "workspace")
    for p in pyprojects()
]


@pytest.mark.parametrize("pyproject", CASES)
def test_every_declared_dependency_is_imported(pyproject: Path) -> None:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    declared = [requirement_name(spec) for spec in project.get("dependencies", [])]
    names = import_names()
    used = imported_by(code_folders(pyproject))
    unused = []
    for distribution in declared:
        if distribution in COMMANDS:
            assert distribution in COMMANDS[distribution].read_text(encoding="utf-8")
            continue
        modules = names.get(distribution)
        assert modules, f"{distribution} is declared but not installed: run uv sync"
        if not modules & used:
            unused.append(f"{distribution} (import {' / '.join(sorted(modules))})")
    assert not unused, f"{pyproject.relative_to(ROOT)} declares, and nothing imports: {unused}"


def test_every_workspace_package_is_checked() -> None:
    checked = {p.parent.relative_to(ROOT).as_posix() for p in pyprojects()}
    assert {".", "libs/taskflow-core", "services/tasks", "services/cli"} <= checked
