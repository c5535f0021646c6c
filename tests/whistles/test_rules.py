"""The whistle suggestion rules fire once per problem and reach the street live; the monthly
topic ranks category × street per district."""

from datetime import datetime, timedelta

import pytest
from django.test import override_settings

from gridgov.realtime.models import OutboxEvent
from gridgov.whistles import compute, rules
from gridgov.whistles.models import Hotspot, WhistleEvent, WhistleSuggestion

from .conftest import NOW, TZ, cluster, make_appeals, offset, spread

pytestmark = pytest.mark.django_db
WEEK = timedelta(days=7)


def planted(gencity, rng):
    hot = gencity.far_apart(1)[0]
    make_appeals(
        spread(gencity, rng, 1.5, "010101", NOW - 4 * WEEK, NOW)
        + cluster(gencity, hot, 25, 8, "010101", NOW - WEEK, NOW, rng)
    )
    return hot


def test_significant_hotspot_suggests_a_whistle_once(gencity, rng):
    hot = planted(gencity, rng)
    compute.hotspots_recompute(window_days=(7, 30), categories=["0101"], now=NOW, dbscan=False)
    assert Hotspot.objects.filter(grid_code=hot).count() == 2  # the 7-day and the 30-day hotspot

    made = rules.suggestions_make(NOW)

    # One problem, one suggestion: the hot grids around the cluster and the 7-day hotspots of
    # the same grids share its appeals, so they join it instead of adding their own.
    mine = [s for s in made if hot in {a["grid_code"] for a in s.evidence["area"]}]
    assert len(mine) == 1
    s = mine[0]
    h = s.hotspot
    assert h.grid_code == hot and h.window_days == 30  # the broadest window, centred on the hottest grid
    assert s.street_code == hot[:9] and s.rule == "hotspot" and s.state == "pending"
    area = {a["grid_code"] for a in s.evidence["area"]}
    hot_around = set(
        Hotspot.objects.filter(
            window_days=30, category_key="0101", active=True, street_code=hot[:9], grid_code__in=gencity.neighbours[hot]
        ).values_list("grid_code", flat=True)
    )
    assert hot_around and area >= {hot} | hot_around
    assert set(s.appeal_ids) >= set(h.appeal_ids) and len(s.appeal_ids) >= 25 + 8 * len(hot_around)
    ev = s.evidence
    assert ev["appeal_ids"] == s.appeal_ids and ev["confidence"] >= 0.95 and ev["trend"] in ("new", "intensifying")
    w, so, e, n = ev["bbox"]
    for code in area:
        lng, lat = gencity.centres[code]
        assert w <= lng <= e and so <= lat <= n
    assert WhistleEvent.objects.filter(object_type="suggestion", object_id=s.pk, event="suggest").exists()
    pushed = OutboxEvent.objects.filter(group=f"street.{hot[:9]}", type="whistle.suggestion")
    assert pushed.count() == len([x for x in made if x.street_code == hot[:9]])
    assert any(p.payload["id"] == s.pk and p.payload["appeal_ids"] == s.appeal_ids for p in pushed)

    # Again, and after another recompute: nothing new.
    assert rules.suggestions_make(NOW) == []
    compute.hotspots_recompute(window_days=(7, 30), categories=["0101"], now=NOW + timedelta(hours=1), dbscan=False)
    assert rules.suggestions_make(NOW + timedelta(hours=1)) == []
    assert WhistleSuggestion.objects.filter(hotspot__grid_code=hot).count() == 1


@override_settings(WHISTLE_RULE_MIN_BIN=3, WHISTLE_RULE_MIN_GRID_APPEALS=100)
def test_thresholds_come_from_settings(gencity, rng):
    planted(gencity, rng)
    compute.hotspots_recompute(window_days=(7,), categories=["0101"], now=NOW, dbscan=False)
    assert rules.suggestions_make(NOW) == []


def test_dismissed_or_cooled_hotspots_suggest_nothing(gencity, rng):
    hot = planted(gencity, rng)
    compute.hotspots_recompute(window_days=(7,), categories=["0101"], now=NOW, dbscan=False)
    Hotspot.objects.filter(grid_code=hot).update(state="dismissed", dismiss_reason="已纳入老旧小区改造")
    Hotspot.objects.exclude(grid_code=hot).update(active=False)
    assert rules.suggestions_make(NOW) == []


def leaks_at_one_building(gencity, rng):
    grid = gencity.codes[30]
    building = gencity.centres[grid]
    leaks = make_appeals(
        [(grid, offset(building, 3 * i, -2 * i), "020104", NOW - timedelta(days=i % 6, hours=1)) for i in range(6)]
    )
    make_appeals(spread(gencity, rng, 1.0, "020104", NOW - WEEK, NOW))
    return grid, leaks


# The grid rule needs more than the building's six appeals here, so the proximity rule speaks.
@override_settings(WHISTLE_RULE_N=5, WHISTLE_RULE_RADIUS_M=50.0, WHISTLE_RULE_DAYS=7, WHISTLE_RULE_MIN_GRID_APPEALS=50)
def test_n_appeals_within_r_metres_in_d_days_suggest_once(gencity, rng):
    grid, leaks = leaks_at_one_building(gencity, rng)
    compute.hotspots_recompute(window_days=(7,), categories=["02"], now=NOW)

    made = rules.suggestions_make(NOW)
    assert len(made) == 1
    s = made[0]
    assert s.rule == "proximity" and s.street_code == grid[:9] and s.category_key == "020104"
    assert sorted(s.appeal_ids) == sorted(a.pk for a in leaks)
    assert s.evidence["thresholds"] == {"n": 5, "radius_m": 50.0, "days": 7}
    assert s.evidence["radius_m"] < 50
    assert rules.suggestions_make(NOW) == []

    # Four are not enough.
    WhistleSuggestion.objects.all().delete()
    Hotspot.objects.all().delete()
    from gridgov.appeals.models import Appeal

    Appeal.objects.filter(pk__in=[a.pk for a in leaks[:2]]).delete()
    compute.hotspots_recompute(window_days=(7,), categories=["02"], now=NOW)
    assert rules.suggestions_make(NOW) == []


def test_a_building_inside_a_hot_grid_is_one_suggestion(gencity, rng):
    """With both rules met by the same appeals, the street hears of the problem once."""
    grid, leaks = leaks_at_one_building(gencity, rng)
    make_appeals(cluster(gencity, grid, 12, 4, "020104", NOW - WEEK, NOW, rng))
    compute.hotspots_recompute(window_days=(7, 30), categories=["0201"], now=NOW)
    kinds = set(Hotspot.objects.filter(active=True, grid_code=grid).values_list("kind", flat=True))
    assert kinds == {"grid_gi", "dbscan"}
    made = rules.suggestions_make(NOW)
    about_leaks = [s for s in made if set(s.appeal_ids) & {a.pk for a in leaks}]
    assert len(about_leaks) == 1 and about_leaks[0].rule == "hotspot"


def test_monthly_topic_is_the_top_category_by_street_of_the_district(gencity):
    d1, d2 = gencity.districts
    s_a, s_b = [s for s in gencity.streets if s.startswith(d1)][:2]
    g_a = next(c for c in gencity.codes if c.startswith(s_a))
    g_b = next(c for c in gencity.codes if c.startswith(s_b))
    g_other = next(c for c in gencity.codes if c.startswith(d2))
    may = datetime(2026, 5, 10, 9, tzinfo=TZ)
    april = datetime(2026, 4, 10, 9, tzinfo=TZ)
    items = (
        [(g_a, gencity.centres[g_a], "020501", may)] * 9  # 供暖不热 in street A
        + [(g_a, gencity.centres[g_a], "020501", april)] * 6
        + [(g_b, gencity.centres[g_b], "010101", may)] * 7
        + [(g_other, gencity.centres[g_other], "010101", may)] * 30  # another district
        # the last instant of April and the first of June (local time) stay out of May
        + [(g_b, gencity.centres[g_b], "010101", datetime(2026, 4, 30, 23, 59, tzinfo=TZ))] * 5
        + [(g_b, gencity.centres[g_b], "010101", datetime(2026, 6, 1, 0, 0, tzinfo=TZ))] * 5
    )
    make_appeals(items)

    topic = rules.monthly_topic(d1, "2026-05")
    assert topic["month"] == "2026-05" and topic["district_code"] == d1
    assert topic["topic"]["street_code"] == s_a and topic["topic"]["category_code"] == "020501"
    assert topic["topic"]["count"] == 9 and topic["topic"]["previous_month"] == 6
    assert topic["topic"]["category_name"] == "供暖不热" and topic["topic"]["street_name"]
    assert [(r["street_code"], r["category_code"], r["count"]) for r in topic["ranking"]] == [
        (s_a, "020501", 9),
        (s_b, "010101", 7),
    ]
    level1 = rules.monthly_topic(d1, "2026-05", level=1)
    assert level1["topic"]["category_code"] == "02" and level1["topic"]["category_name"] == "水电气热"
    assert rules.monthly_topic(d1, "2026-07")["topic"] is None


def test_command_task_and_beat_schedule(gencity, rng, settings):
    import json
    from io import StringIO

    from django.core.management import call_command

    from gridgov.whistles import tasks

    hot = planted(gencity, rng)
    out = StringIO()
    call_command("recompute_hotspots", "--window", "7", "--category", "0101", "--now", NOW.isoformat(), stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["created"] >= 1 and summary["suggestions"] == WhistleSuggestion.objects.count() >= 1
    assert WhistleSuggestion.objects.filter(street_code=hot[:9]).count() == 1  # neighbouring streets get theirs
    assert Hotspot.objects.filter(grid_code=hot, window_days=7).exists()
    out = StringIO()
    call_command("sweep_musters", stdout=out)
    assert json.loads(out.getvalue()) == {"checked": 0, "escalated": 0}
    assert tasks.sweep_musters() == {"checked": 0, "escalated": 0}
    assert tasks.recompute_hotspots()["suggestions"] == 0  # nothing recent: the planted week is over
    names = {e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"gridgov.whistles.tasks.recompute_hotspots", "gridgov.whistles.tasks.sweep_musters"} <= names
