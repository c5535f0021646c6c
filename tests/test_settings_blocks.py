"""settings.py keeps one headed block per app, and each app's Celery beat entries in its block."""

import ast
import re
from pathlib import Path

from django.conf import settings

SETTINGS = Path(settings.BASE_DIR) / "gridgov" / "settings.py"
BAR = "# " + "=" * 94
APP_BLOCK = re.compile(r"^# ((?:gridgov\.)?\w+): ")


def _blocks():
    """{app label of a block: its lines}, from the headers between two bars."""
    lines = SETTINGS.read_text(encoding="utf-8").splitlines()
    blocks, current = {}, None
    for i, line in enumerate(lines):
        if line == BAR and i + 2 < len(lines) and lines[i + 2] == BAR:
            m = APP_BLOCK.match(lines[i + 1])
            current = m.group(1) if m else "project"
            assert current not in blocks, f"two blocks for {current}"
            blocks[current] = []
        elif current is not None:
            blocks[current].append(line)
    return blocks


def test_one_block_per_app_in_floor_order():
    assert list(_blocks()) == [
        "project",
        "gridgov.accounts",
        "gridgov.areas",
        "gridgov.appeals",
        "gridgov.realtime",
        "gridgov.whistles",
        "gridgov.idempotency",
        "mobile_api",
        "maps",
    ]


def test_every_beat_entry_sits_in_the_block_of_the_app_whose_task_it_runs():
    placed = {}
    for app, lines in _blocks().items():
        text = "\n".join(lines)
        for name, body in re.findall(r'CELERY_BEAT_SCHEDULE\["([^"]+)"\] = \{(.*?)\}', text, re.S):
            task = re.search(r'"task": "([^"]+)"', body).group(1)
            assert task.startswith(app + "."), f"beat entry {name} ({task}) is in the {app} block"
            placed[name] = task
    assert placed == {name: entry["task"] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}


def test_the_readme_lists_every_environment_variable_settings_py_reads():
    """Each os.environ / env_* read in settings.py has a row (name | meaning | default) in the
    README's settings table."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        is_environ_get = called == "get" and isinstance(func, ast.Attribute) and ast.unparse(func.value) == "os.environ"
        if is_environ_get or called.startswith("env_"):
            names.add(node.args[0].value)
    readme = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Settings (environment)", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([A-Z0-9_]+)` \|(.+)\|$", section, re.M)}
    assert len(names) > 60
    assert sorted(names - set(rows)) == []
    assert all(row.count("|") >= 1 and row.split("|")[-1].strip() for row in rows.values())
