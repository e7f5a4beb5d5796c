"""Layers point one way: the import-linter contracts in pyproject.toml hold, and they catch a
new wrong-way import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env={"PYTHONPATH": str(tree)},
                          capture_output=True, text=True, timeout=120)


def test_no_import_points_the_wrong_way():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_server_module_importing_the_builders_breaks_the_contract(tmp_path):
    for package in ("cytoatlas", "builders", "services"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    compiler = tmp_path / "cytoatlas" / "serving" / "compiler.py"
    compiler.write_text(compiler.read_text() + "\nfrom builders import engine  # wrong way\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cytoatlas.serving.compiler -> builders.engine" in result.stdout
