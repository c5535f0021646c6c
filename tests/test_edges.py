"""Every gridgov app is always installed: no code asks whether one is, or guards its import."""

import ast
from pathlib import Path

from django.conf import settings

ROOTS = ("gridgov", "maps", "mobile_api")


def _sources():
    base = Path(settings.BASE_DIR)
    for root in ROOTS:
        for path in sorted((base / root).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path.relative_to(base), ast.parse(path.read_text(encoding="utf-8"))


def test_no_code_asks_whether_an_own_app_is_installed():
    found = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "is_installed"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith(("gridgov", "maps", "mobile_api"))
            ):
                found.append(f"{path}:{node.lineno}")
    assert found == []


def test_no_import_error_guard_around_a_required_package():
    """`except ImportError` would hide a missing pinned dependency (or an own module) behind a
    silent fallback."""
    found = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers
            ):
                found.append(f"{path}:{node.lineno}")
    assert found == []
