"""The keyword floor's per-process cache of leaf categories follows every change to them."""

import ast
import inspect

import pytest

from gridgov.appeals.intake import classifier, guesses, pipeline
from gridgov.appeals.models import Category

pytestmark = pytest.mark.django_db

TEXT = "小区门口的共享单车乱停乱放"


def codes(text):
    return [g.code for g in guesses.keyword_guesses(text)]


def test_editing_a_keyword_without_changing_the_count_refreshes_the_cache(catalogue):
    n = Category.objects.filter(level=3, is_active=True).count()
    assert codes(TEXT) == []  # warms the cache
    # An operator edits a keyword: the number of active leaves stays the same.
    Category.objects.filter(code="010101").update(keywords=["垃圾", "共享单车"])
    assert Category.objects.filter(level=3, is_active=True).count() == n
    assert codes(TEXT) == ["010101"]
    assert [g.code for g in pipeline.classify_step(TEXT, model=lambda text, k: [])] == ["010101"]


def test_renaming_or_swapping_leaves_refreshes_the_cache(catalogue):
    assert codes("燃气味道很重") != ["010101"]
    leaf = catalogue["categories"]["010101"]
    leaf.name = "燃气味道"
    leaf.save(update_fields=["name"])
    assert "010101" in codes("燃气味道很重")
    # One leaf retired, another activated in the same step: the count is the same again.
    other = Category.objects.create(
        level=3,
        code="010199",
        name="共享单车乱停",
        parent=leaf.parent,
        time_limit="7d",
        keywords=["单车"],
        is_active=False,
    )
    assert codes(TEXT) == []
    Category.objects.filter(code="010101").update(is_active=False)
    Category.objects.filter(pk=other.pk).update(is_active=True)
    assert codes(TEXT) == ["010199"]


def test_the_classifier_does_not_import_the_pipeline():
    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(classifier))):
        if isinstance(node, ast.ImportFrom):
            imported |= {node.module or ""} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    assert "gridgov.appeals.intake.pipeline" not in imported
