"""The floors in .importlinter hold, and an arrow pointing up breaks them: lint-imports runs on a
copy of the tree with one import added, as `make lint` and CI run it on the real one."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gridgov", "maps", "mobile_api", "fixtures")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root):
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / ".importlinter")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tmp_path


def add_import(tree, module, line):
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_the_tree_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_domain_importing_the_map_pages_breaks_the_floors(tree):
    add_import(tree, "gridgov/appeals/services.py", "import maps.builders")
    result = lint_imports(tree)
    assert result.returncode == 1
    assert "gridgov.appeals is not allowed to import maps" in result.stdout
    assert "gridgov.appeals.services -> maps.builders" in result.stdout


def test_the_domain_importing_another_packages_api_is_refused(tree):
    add_import(tree, "gridgov/whistles/services.py", "from gridgov.appeals import api")
    result = lint_imports(tree)
    assert result.returncode == 1
    assert "The domain never imports pages" in result.stdout
    assert "gridgov.whistles.services -> gridgov.appeals.api" in result.stdout


def test_geography_importing_appeals_is_refused(tree):
    add_import(tree, "gridgov/areas/locate.py", "from gridgov.appeals import workflow")
    result = lint_imports(tree)
    assert result.returncode == 1
    assert "gridgov.areas is not allowed to import gridgov.appeals" in result.stdout


def test_the_lowest_floor_importing_the_domain_is_refused(tree):
    add_import(tree, "gridgov/audit/services.py", "from gridgov.accounts import access")
    result = lint_imports(tree)
    assert result.returncode == 1
    assert "gridgov.audit is not allowed to import gridgov.accounts" in result.stdout


def test_a_circle_between_siblings_is_refused(tree):
    add_import(tree, "gridgov/appeals/workflow.py", "from gridgov.appeals import notices")
    result = lint_imports(tree)
    assert result.returncode == 1
    assert "No cycles are allowed in gridgov.appeals" in result.stdout
