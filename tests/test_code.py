"""Code tests: lint clean, and the layering DESIGN.md asks for (service/ knows nothing of Prefect)."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


SERVICE_MODULES = sorted((ROOT / "service").rglob("*.py"))


@pytest.mark.parametrize("path", SERVICE_MODULES, ids=lambda p: str(p.relative_to(ROOT / "service")))
def test_service_module_does_not_import_prefect(path: Path) -> None:
    # the command line (service/cli/) alone may start flows, and only from inside its commands
    modules = imported_modules(path)
    assert "prefect" not in modules
    if path.parent.name != "cli":
        assert "flows" not in modules


def test_service_modules_stay_small() -> None:
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in SERVICE_MODULES}
    assert {name: size for name, size in sizes.items() if size > 300} == {}


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff")
    assert ruff, "ruff is installed by the [test] extra"
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


FLOW_MODULES = sorted((ROOT / "flows").glob("*.py"))


def full_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


@pytest.mark.parametrize("path", FLOW_MODULES, ids=lambda p: p.name)
def test_flow_module_returns_data_and_prints_nothing(path: Path) -> None:
    # Flows return data and the CLI prints it: no Typer, no console output, no demo workspace in a flow.
    modules = full_imports(path)
    assert not {"typer", "service.demo"} & modules
    assert not [name for name in modules if name.startswith("service.cli")]


def test_service_concerns_with_three_modules_are_packages() -> None:
    # DESIGN.md's layout: the drift check, the local stack, the API and the CLI each live in their folder.
    for package in ("drift", "stack", "api", "cli"):
        assert (ROOT / "service" / package / "__init__.py").is_file(), package
    flat = {path.stem for path in (ROOT / "service").glob("*.py")}
    assert not flat & {"drift_stats", "drift_evidently", "stack_commands", "processes", "postgres", "console"}
