"""`make lint` keeps the layers: the import contracts in pyproject.toml hold, and a layer-breaking import fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("switchyard", "controlplane", "extproc")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy_of_the_tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "_data"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_import_contract(tmp_path: Path) -> None:
    result = _lint_imports(_copy_of_the_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_ext_proc_importing_the_control_plane_breaks_the_layers(tmp_path: Path) -> None:
    tree = _copy_of_the_tree(tmp_path)
    with (tree / "extproc" / "sigv4.py").open("a") as module:
        module.write("\nfrom controlplane import translate  # noqa: E402,F401\n")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "extproc is not allowed to import controlplane" in result.stdout
    assert "extproc.sigv4 -> controlplane.translate" in result.stdout


def test_the_foundation_importing_the_cli_breaks_the_layers(tmp_path: Path) -> None:
    tree = _copy_of_the_tree(tmp_path)
    with (tree / "switchyard" / "contract.py").open("a") as module:
        module.write("\nfrom switchyard.cli import main  # noqa: E402,F401\n")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "switchyard.contract -> switchyard.cli.main" in result.stdout


def test_a_module_outside_every_layer_is_refused(tmp_path: Path) -> None:
    tree = _copy_of_the_tree(tmp_path)
    (tree / "switchyard" / "helpers.py").write_text('"""Placed in no layer."""\n')
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "switchyard.helpers" in result.stdout
