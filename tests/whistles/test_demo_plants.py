"""The demo history against the hotspot computation (issue #5): every hotspot that
fixtures/demohistory.py plants is reported hot at its grid, in its category group and window,
and its street office gets a whistle suggestion; a planted building, shop or market is also a
sub-grid DBSCAN spot; and a demo history with no hotspot planted gives no more significant
grids than the FDR rate allows.

The city has 300 grids and the demo's volume (0.7 appeals a grid and day) for three weeks."""

import math
from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction

from fixtures.democity import load_city, plan_city
from fixtures.demohistory import load_history
from gridgov.whistles import compute, rules, stats
from gridgov.whistles.models import Hotspot, WhistleSuggestion

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 18, 16, 30, tzinfo=TZ)
GRIDS, DAYS = 300, 21
FDR_RATE = 0.10  # the loosest level, 90 %
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo_city(django_db_setup, django_db_blocker):
    """The demo city at 300 grids for the module, rolled back at its end; each test draws its
    own history inside its own transaction."""
    with django_db_blocker.unblock(), transaction.atomic():
        load_city(plan_city(grids=GRIDS, seed=3), when=NOW - timedelta(days=120))
        yield
        transaction.set_rollback(True)


def metres(a, b):
    dx = (a[0] - b[0]) * 111_320 * math.cos(math.radians(a[1]))
    return math.hypot(dx, (a[1] - b[1]) * 110_574)


def test_every_planted_hotspot_is_found(demo_city):
    summary = load_history(days=DAYS, seed=5, now=NOW)
    plants = summary["hotspots"]
    assert len(plants) == 4
    compute.hotspots_recompute(now=NOW)
    rules.suggestions_make(NOW)
    pending = list(WhistleSuggestion.objects.filter(state="pending"))
    level = settings.WHISTLE_CATEGORY_LEVEL
    for h in plants:
        since = datetime.fromisoformat(h["since"])
        days = h["window_days"]
        assert days in settings.WHISTLE_WINDOWS and since >= NOW - timedelta(days=days), h  # the window holds it
        hot = Hotspot.objects.get(
            kind=Hotspot.Kind.GRID_GI,
            grid_code=h["grid_code"],
            window_days=days,
            category_key=compute.category_group(h["category"][: 2 * level]).key,
        )
        s = hot.statistics
        assert hot.active and s["bin"] >= settings.WHISTLE_RULE_MIN_BIN, (h, s)
        assert s["count"] >= 0.8 * h["count"], (h, s)  # the planted appeals are counted in their grid
        assert rules.rule_for(hot) == WhistleSuggestion.Rule.HOTSPOT
        # Its street office is told, once, with the plant's appeals as evidence.
        assert any(x.street_code == h["street_code"] and set(hot.appeal_ids) <= set(x.appeal_ids) for x in pending), h
        if h["spot"]:
            spots = Hotspot.objects.filter(
                kind=Hotspot.Kind.DBSCAN, category_key=h["category"], active=True, grid_code=h["grid_code"]
            )
            near = [x for x in spots if metres(x.statistics["centroid"], (h["lng"], h["lat"])) < 60]
            assert near and max(x.statistics["count"] for x in near) >= settings.WHISTLE_RULE_N, (h, list(spots))
    assert any(h["spot"] for h in plants)  # the DBSCAN check above ran


def test_no_plant_no_hotspot_beyond_the_fdr_rate(demo_city):
    summary = load_history(days=DAYS, seed=6, now=NOW, hotspots=0, clusters=0)
    assert summary["hotspots"] == summary["clusters"] == []
    compute.hotspots_recompute(now=NOW, dbscan=False)
    hot = Hotspot.objects.filter(kind=Hotspot.Kind.GRID_GI, active=True)
    stored = {(h.category_key, h.window_days) for h in hot}
    w = compute.grid_weights()
    families, flagged, flagged_normal = 0, set(), set()
    for days in settings.WHISTLE_WINDOWS:
        groups = compute.default_groups(NOW - timedelta(days=days), NOW)
        counts = compute.window_counts(NOW, days, 1, groups, w.codes)[:, 0]
        for group, y in zip(groups, counts, strict=True):
            families += 1
            lag = w.weights @ y
            for pvalues, found in ((stats.COUNT, flagged), (stats.NORMAL, flagged_normal)):
                bins = stats.hotspots(y, w.weights, pvalues=pvalues).bins
                if ((bins > 0) & (lag >= settings.WHISTLE_HOTSPOT_MIN_COUNT)).any():
                    found.add((group.key, days))
    assert families > 40 and stored == flagged  # what was stored is what is checked here
    # With no hotspot, Benjamini-Hochberg at 10 % flags anything at all in a family (a category
    # group in a window) with a chance of at most 10 %.
    assert len(flagged) <= FDR_RATE * families, sorted(flagged)
    # The normal tail of Gi*'s z on these sparse counts flags far more: what this test guards.
    assert len(flagged_normal) >= 3 * max(len(flagged), 1), (len(flagged_normal), len(flagged))
    # The same bound at the whistle rule's level (95 %): families in which a street office
    # would be told of a hotspot.
    alpha = dict(stats.LEVELS)[settings.WHISTLE_RULE_MIN_BIN]
    told = {(h.category_key, h.window_days) for h in hot if rules.rule_for(h) is not None}
    assert len(told) <= alpha * families, sorted(told)


def test_load_demo_history_shows_the_plants(demo_city):
    """What `make run` does (load_demo_history): the hotspots are computed at once, and each
    planted one is reported found."""
    out = StringIO()
    call_command("load_demo_history", "--days", "10", "--seed", "2", stdout=out)
    text = out.getvalue()
    plants = [line for line in text.splitlines() if "检出 / found:" in line]
    assert len(plants) == 4 and all("hot_99" in line or "hot_95" in line for line in plants), text
    assert Hotspot.objects.filter(active=True).exists() and WhistleSuggestion.objects.exists()
