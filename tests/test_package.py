"""The package's shape: one `tubelet` namespace, layers that only point down, imports
at the top of modules except for the heavy optional libraries."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("schemas", "engine", "annotators", "pipelines", "preview", "evaluation", "release", "review", "cli")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_files() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py"))


def _function_level_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Imports inside a def (at any depth); a module's top level, ``if`` and ``try`` blocks excluded."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return found


def _modules(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    return {"." if node.level else (node.module or "")}


def _listed(module: str, heavy: set[str]) -> bool:
    """``module`` or a package it is in is on the list (``pyarrow.dataset`` allows itself, not ``pyarrow``)."""
    parts = module.split(".")
    return any(".".join(parts[:i]) in heavy for i in range(1, len(parts) + 1))


def test_src_tubelet_links_every_layer():
    for layer in LAYERS:
        link = ROOT / "src" / "tubelet" / layer
        assert link.is_symlink() and link.resolve() == ROOT / layer, layer


def test_function_level_imports_are_only_heavy_optional_libraries():
    """Everything is imported at the top of its module, except the libraries pyproject
    lists as banned at module level (ruff TID253 enforces the other direction)."""
    heavy = set(PYPROJECT["tool"]["ruff"]["lint"]["flake8-tidy-imports"]["banned-module-level-imports"])
    offenders = []
    for path in _package_files():
        for node in _function_level_imports(ast.parse(path.read_text(), str(path))):
            if not all(_listed(module, heavy) for module in _modules(node)):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "import these at the top of the module:\n" + "\n".join(offenders)


def _lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (the `lint` extra)")
    return subprocess.run(
        [str(exe), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_layer_contract_holds():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_the_layer_contract_catches_an_upward_import(tmp_path):
    """The project's own contract, on a copy of the layout where schemas imports engine."""
    package = tmp_path / "tree" / "tubelet"
    for layer in LAYERS:
        (package / layer).mkdir(parents=True)
        (package / layer / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "engine" / "stage.py").write_text("from tubelet.schemas import records\n")
    (package / "schemas" / "records.py").write_text("X = 1\n")
    (package / "schemas" / "geometry.py").write_text("from tubelet.engine.stage import records  # upward\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = _lint_imports(tmp_path, pythonpath=tmp_path / "tree")
    assert result.returncode != 0
    assert "tubelet.schemas is not allowed to import tubelet.engine" in result.stdout
    assert "tubelet.schemas.geometry -> tubelet.engine.stage" in result.stdout


def test_the_wheel_holds_only_the_tubelet_package(tmp_path):
    """`pip install .` puts `tubelet` (and its dist-info) in site-packages, nothing else."""
    source = tmp_path / "source"  # a copy: a build leaves a build/ folder in its source
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for name in ("src", *LAYERS):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*argv, str(source)], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("tubelet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"tubelet", _dist_info(names)}, tops
    for layer in LAYERS:
        assert f"tubelet/{layer}/__init__.py" in names, layer
    assert "tubelet/__main__.py" in names
    entry_points = zipfile.ZipFile(wheel).read(f"{_dist_info(names)}/entry_points.txt").decode()
    assert "tubelet = tubelet.cli.main:main" in entry_points


def _dist_info(names: list[str]) -> str:
    [info] = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
    return info


def test_python_dash_m_tubelet_and_version():
    for argv in (
        [sys.executable, "-m", "tubelet", "--version"],
        [str(Path(sys.executable).with_name("tubelet")), "--version"],
    ):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
        assert out.startswith("tubelet ") and out.split()[1][0].isdigit(), out
