"""maps.aggregates on real PostGIS: the counts and rates per area are the same whether they
come from the roll-up, the appeals table or a mix of both; everything stays inside the
jurisdiction it is asked for."""

import json
from datetime import date, timedelta

import pytest
from django.utils import timezone

from maps import aggregates
from maps.aggregates import Window, plan_segments
from maps.models import AppealCount

from .conftest import JIA, JIA_GRIDS, YI, YI_GRIDS, make_appeal

pytestmark = pytest.mark.django_db


# --- plan_segments: pure ---------------------------------------------------------------------------

MON = date(2025, 3, 3)  # a Monday


def test_plan_without_rollup_is_all_live():
    assert plan_segments(MON, MON + timedelta(days=30), None) == [("live", MON, MON + timedelta(days=30))]


def test_plan_uses_whole_weeks_days_and_live_tail():
    since = MON + timedelta(days=2)  # Wednesday
    until = MON + timedelta(days=30)
    rolled = MON + timedelta(days=24)  # a Thursday
    assert plan_segments(since, until, rolled) == [
        ("day", since, MON + timedelta(days=7)),
        ("week", MON + timedelta(days=7), MON + timedelta(days=21)),
        ("day", MON + timedelta(days=21), MON + timedelta(days=25)),
        ("live", MON + timedelta(days=25), until),
    ]


def test_plan_short_window_inside_one_week_is_days():
    assert plan_segments(MON + timedelta(days=1), MON + timedelta(days=4), MON + timedelta(days=10)) == [
        ("day", MON + timedelta(days=1), MON + timedelta(days=4))
    ]


def test_plan_window_entirely_after_rollup():
    assert plan_segments(MON, MON + timedelta(days=3), MON - timedelta(days=5)) == [
        ("live", MON, MON + timedelta(days=3))
    ]


def test_plan_segments_cover_the_window_exactly():
    for offset in range(7):
        for length in (1, 6, 7, 8, 30, 90):
            for rolled_off in (-3, 0, 5, 40, 200):
                since = MON + timedelta(days=offset)
                until = since + timedelta(days=length)
                segs = plan_segments(since, until, since + timedelta(days=rolled_off))
                assert segs[0][1] == since and segs[-1][2] == until
                for (_, _, end), (_, start, _) in zip(segs, segs[1:]):
                    assert end == start
                for kind, first, end in segs:
                    assert first < end
                    if kind == "week":
                        assert first.weekday() == 0 and (end - first).days % 7 == 0


# --- counts and rates --------------------------------------------------------------------------------


def by_code(text):
    return {f["properties"]["code"]: f["properties"] for f in json.loads(text)["features"]}


def test_grid_counts_of_a_street(mapdata):
    areas = by_code(aggregates.area_counts_geojson(Window.last_days(30), [JIA], level="grid"))
    assert set(areas) == set(JIA_GRIDS)  # the other street's grids are not even listed
    assert areas[JIA_GRIDS[0]]["count"] == 5 and areas[JIA_GRIDS[1]]["count"] == 2
    assert areas[JIA_GRIDS[0]]["name"] == "甲一第1网格"


def test_rates(mapdata):
    areas = by_code(aggregates.area_counts_geojson(Window.last_days(30), [JIA], level="grid"))
    g = areas[JIA_GRIDS[0]]
    # days 0, 1, 3, 9, 20 ago: accepted within 2 h on even days (0, 20) → 2 of 5
    assert (g["dispatched"], g["responded"]) == (5, 2)
    assert g["response_rate"] == pytest.approx(0.4)
    # due (deadline 7 days after receipt, passed): days 9 and 20; closed: day 20 only (>= 15)
    assert (g["due"], g["resolved"]) == (2, 1)
    assert g["resolution_rate"] == pytest.approx(0.5)


def test_rates_are_null_without_data(mapdata):
    areas = by_code(aggregates.area_counts_geojson(Window.last_days(7), [YI], level="grid"))
    g = areas[YI_GRIDS[1]]  # its appeals are 12 and 25 days old
    assert g["count"] == 0 and g["response_rate"] is None and g["resolution_rate"] is None


def test_levels_and_category_prefix(mapdata):
    w = Window.last_days(30, category="0101")
    streets = by_code(aggregates.area_counts_geojson(w, None, level="street"))
    # 甲 in 30 days: 010101 ×3 (0, 1, 20), 010102 ×2 (3, 2); 乙: 010101 ×4
    assert streets[JIA]["count"] == 5 and streets[YI]["count"] == 4
    leaf = by_code(aggregates.area_counts_geojson(Window.last_days(30, category="010102"), None, level="street"))
    assert leaf[JIA]["count"] == 2 and leaf[YI]["count"] == 0
    scoped = by_code(aggregates.area_counts_geojson(Window.last_days(30, category="0101"), [YI], level="grid"))
    assert sum(p["count"] for p in scoped.values()) == 4 and set(scoped) == set(YI_GRIDS)
    district = by_code(aggregates.area_counts_geojson(Window.last_days(90), None, level="district"))
    assert district["110101"]["count"] == 13


def test_rollup_gives_the_same_answers(mapdata):
    def snapshot():
        out = {}
        for days in (7, 30, 90):
            for cat in ("", "01", "0101", "020101"):
                for level, scope in (("grid", [JIA]), ("community", None), ("street", [YI]), ("district", None)):
                    text = aggregates.area_counts_geojson(Window.last_days(days, cat), scope, level=level)
                    out[(days, cat, level)] = {
                        c: {k: p[k] for k in ("count", "dispatched", "responded", "due", "resolved")}
                        for c, p in by_code(text).items()
                    }
        return out

    live = snapshot()
    summary = aggregates.rollup_refresh()
    assert summary["rolled_through"] == timezone.localdate() - timedelta(days=1)
    # Weeks per category prefix down to level 2; days for every category only (maps.models).
    assert set(AppealCount.objects.filter(kind="week").values_list("category", flat=True)) == {
        "",
        "01",
        "0101",
        "02",
        "0201",
    }
    assert set(AppealCount.objects.filter(kind="day").values_list("category", flat=True)) == {""}
    assert snapshot() == live
    # A partial refresh after new appeals: the tail comes from the appeals table.
    make_appeal(JIA_GRIDS[1], received_at=timezone.now() - timedelta(minutes=5))
    assert (
        by_code(aggregates.area_counts_geojson(Window.last_days(7), [JIA], level="grid"))[JIA_GRIDS[1]]["count"]
        == live[(7, "", "grid")][JIA_GRIDS[1]]["count"] + 1
    )
    aggregates.rollup_clear()
    assert not AppealCount.objects.exists()


def test_rollup_catches_up_after_a_long_gap(mapdata):
    today = timezone.localdate()
    aggregates.rollup_refresh(today=today - timedelta(days=50))
    rows_then = AppealCount.objects.count()
    aggregates.rollup_refresh(today=today)
    assert AppealCount.objects.count() > rows_then
    areas = by_code(aggregates.area_counts_geojson(Window.last_days(90), None, level="street"))
    assert areas[JIA]["count"] == 9 and areas[YI]["count"] == 4


def test_totals(mapdata):
    t = aggregates.totals(Window.last_days(30), [YI])
    # 乙: 4 appeals; all dispatched, 3 accepted within 2 h; due: 12 and 25 days old, resolved: 25
    assert t == {
        "count": 4,
        "dispatched": 4,
        "responded": 3,
        "due": 2,
        "resolved": 1,
        "response_rate": 0.75,
        "resolution_rate": 0.5,
    }


def test_leader_data_equals_the_separate_functions(mapdata):
    def check():
        for days in (7, 30, 90):
            for cat in ("", "01", "0101", "020101"):
                for level, scope in (("grid", [JIA]), ("community", None), ("street", [YI]), ("district", None)):
                    w = Window.last_days(days, cat)
                    areas, heat, totals = aggregates.leader_data(w, scope, level=level, zoom=14)
                    assert json.loads(areas) == json.loads(
                        aggregates.area_counts_geojson(w, scope, level=level, zoom=14)
                    )
                    assert json.loads(heat) == json.loads(aggregates.heat_cells_json(w, scope))
                    assert totals == aggregates.totals(w, scope)
                    bare = json.loads(aggregates.leader_data(w, scope, level=level, geometry=False)[0])
                    assert bare == {
                        **json.loads(areas),
                        "features": [{**f, "geometry": None} for f in json.loads(areas)["features"]],
                    }
        assert json.loads(aggregates.leader_data(Window.last_days(90), None, level="grid")[1])["total"] == 13

    check()
    aggregates.rollup_refresh()
    check()


# --- heat cells and the weekly series ------------------------------------------------------------------


def test_heat_cells(mapdata):
    heat = json.loads(aggregates.heat_cells_json(Window.last_days(30), [JIA]))
    assert heat["total"] == 7 and heat["max"] == 5
    assert len(heat["cells"]) == 2
    for lat, lng, n in heat["cells"]:
        assert 116.40 <= lng <= 116.42 and 39.90 <= lat <= 39.92 and n > 0


def test_weekly_series_adds_up(mapdata):
    series = json.loads(aggregates.weekly_series_json(13, None))
    assert len(series["periods"]) == 13
    assert date.fromisoformat(series["periods"][-1]) == aggregates.monday(timezone.localdate())
    assert all(len(weeks) == 13 for _, _, weeks in series["cells"])
    total = sum(n for _, _, weeks in series["cells"] for n in weeks)
    first = date.fromisoformat(series["periods"][0])
    window = Window(first, timezone.localdate() + timedelta(days=1))
    assert total == aggregates.totals(window, None)["count"]
    aggregates.rollup_refresh()
    assert json.loads(aggregates.weekly_series_json(13, None)) == series


# --- open appeals, clusters and tiles ------------------------------------------------------------------


def test_open_points_are_scoped_and_cluster_when_dense(mapdata, users):
    fc = aggregates.open_appeal_points(users["yi"])
    tickets = {f["properties"]["ticket_no"] for f in fc["features"]}
    assert tickets == {"YI000000", "YI000004", "YI000012"}  # the resolved one is not open
    assert not fc["clustered"]
    clustered = aggregates.open_appeal_points(users["centre"], zoom=10, cluster_above=2)
    assert clustered["clustered"]
    props = [f["properties"] for f in clustered["features"]]
    assert sum(p["count"] for p in props) == 8  # every open appeal in the city (5 + 3), counted once
    assert all("ticket_no" not in p for p in props)
    assert {p["colour"] for p in props} <= {"red", "orange", "yellow", "none"}


def tile_for(lng, lat, z):
    import math

    n = 2**z
    x = int((lng + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def test_vector_tile_is_scoped(mapdata, users):
    z, x, y = tile_for(116.425, 39.91, 14)
    mine = aggregates.appeals_tile(users["yi"], z, x, y)
    assert b"YI000000" in mine  # MVT keeps string values as they are
    assert b"appeals" in mine
    outsider = aggregates.appeals_tile(users["jia"], z, x, y)
    assert b"YI000000" not in outsider
    low = aggregates.appeals_tile(users["centre"], *tile_for(116.42, 39.91, 10))
    assert low and b"YI000000" not in low  # counted cells below zoom 14, no tickets


def _varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def _fields(buf):
    """(field number, value) pairs of a protobuf message: ints for varints, bytes otherwise."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            value, i = buf[i : i + 8], i + 8
        yield key >> 3, value


def mvt_properties(data):
    """{layer name: [properties of each feature]} of an MVT tile (string and integer values)."""
    out = {}
    for field, layer in _fields(data):
        if field != 3:
            continue
        name, keys, values, features = "", [], [], []
        for f, v in _fields(layer):
            if f == 1:
                name = v.decode()
            elif f == 3:
                keys.append(v.decode())
            elif f == 4:
                kind, raw = next(_fields(v))
                values.append(raw.decode() if kind == 1 else raw - (1 << 64) if kind == 4 and raw >= 1 << 63 else raw)
            elif f == 2:
                features.append(v)
        props = []
        for feature in features:
            tags = next((v for f, v in _fields(feature) if f == 2), b"")
            ints, i = [], 0
            while i < len(tags):
                t, i = _varint(tags, i)
                ints.append(t)
            props.append({keys[k]: values[v] for k, v in zip(ints[::2], ints[1::2])})
        out[name] = props
    return out


def test_grids_tile_counts_and_scope(mapdata):
    z, x, y = tile_for(116.415, 39.91, 12)
    w = Window.last_days(30)
    city = {p["code"]: p for p in mvt_properties(aggregates.grids_tile(w, None, z, x, y))["grids"]}
    assert set(city) >= {*JIA_GRIDS, *YI_GRIDS}
    counts = {c: p["count"] for c, p in by_code(aggregates.area_counts_geojson(w, None, level="grid")).items()}
    assert {c: p["count"] for c, p in city.items()} == {c: counts[c] for c in city}
    assert city[JIA_GRIDS[0]]["count"] == 5 and city[JIA_GRIDS[0]]["name"] == "甲一第1网格"
    jia = mvt_properties(aggregates.grids_tile(w, [JIA], z, x, y))["grids"]
    assert {p["code"] for p in jia} == set(JIA_GRIDS)  # not a grid of the other street
    leaf = {
        p["code"]: p["count"]
        for p in mvt_properties(aggregates.grids_tile(Window.last_days(30, "010102"), [JIA], z, x, y))["grids"]
    }
    assert sum(leaf.values()) == 2
    aggregates.rollup_refresh()
    assert {p["code"]: p for p in mvt_properties(aggregates.grids_tile(w, None, z, x, y))["grids"]} == city
    assert aggregates.grids_tile(w, [JIA], *tile_for(100.0, 30.0, 12)) == b""  # a tile without its grids


def test_rollup_task_is_on_the_beat_and_keeps_up(mapdata):
    from gridgov.celery import app
    from maps import tasks

    app.loader.import_default_modules()  # what a worker / beat does at start: autodiscovery
    app.finalize(auto=True)
    entry = app.conf.beat_schedule["maps-rollup-refresh"]
    assert entry["task"] == "maps.tasks.rollup_refresh" and entry["schedule"] == tasks.REFRESH_SECONDS
    summary = tasks.refresh_rollup()
    assert summary["rolled_through"] == str(timezone.localdate() - timedelta(days=1))
    before = aggregates.totals(Window.last_days(7), [JIA])["count"]
    make_appeal(JIA_GRIDS[0], received_at=timezone.now() - timedelta(minutes=1))  # after the job ran
    assert aggregates.totals(Window.last_days(7), [JIA])["count"] == before + 1
