"""The map data endpoints: scoped to the viewer, outsiders refused (404 for another street's
area, 403 for a role without an area), the heavy one in a fixed number of queries."""

import json

import pytest

from maps import aggregates

from .conftest import JIA, JIA_GRIDS, YI, YI_GRIDS
from .test_aggregates import mvt_properties, tile_for

pytestmark = pytest.mark.django_db

AREA_ENDPOINTS = ["/maps/api/areas", "/maps/api/heat", "/maps/api/heat/weekly", "/maps/api/totals"]


def get(api, user, url, **params):
    return api(user).get(url, params)


def codes(response):
    return {f["properties"]["code"] for f in response.json()["features"]}


def test_anonymous_is_refused(api, mapdata):
    for url in [*AREA_ENDPOINTS, "/maps/api/appeals", "/maps/api/calls", "/maps/tiles/appeals/14/1,/1.mvt"]:
        if "tiles" in url:
            continue
        assert api().get(url).status_code in (401, 403), url
    z, x, y = tile_for(116.425, 39.91, 14)
    assert api().get(f"/maps/tiles/appeals/{z}/{x}/{y}.mvt").status_code in (401, 403)


def test_street_sees_its_grids_with_counts(api, mapdata, users):
    r = get(api, users["jia"], "/maps/api/areas", level="grid", days=30, zoom=15)
    assert r.status_code == 200 and r["Content-Type"].startswith("application/json")
    assert codes(r) == set(JIA_GRIDS)
    body = r.content.decode()
    assert "乙" not in body and YI not in body


def test_outsider_asking_for_another_street_gets_404(api, mapdata, users):
    for url in AREA_ENDPOINTS:
        r = get(api, users["jia"], url, parent=YI)
        assert r.status_code == 404, url
    r = get(api, users["jia"], "/maps/api/areas", parent=YI_GRIDS[0], level="grid")
    assert r.status_code == 404


def test_street_cannot_ask_for_the_district_level(api, mapdata, users):
    assert get(api, users["jia"], "/maps/api/areas", level="district").status_code == 404
    assert get(api, users["jia"], "/maps/api/areas", level="street").status_code == 200


def test_department_has_no_area_data(api, mapdata, users):
    for url in AREA_ENDPOINTS:
        assert get(api, users["dept"], url).status_code == 403, url


def test_leader_drills_down(api, mapdata, users):
    r = get(api, users["leader"], "/maps/api/areas", level="street", days=90)
    assert codes(r) == {JIA, YI}
    r = get(api, users["leader"], "/maps/api/areas", level="grid", days=90, parent=YI)
    assert codes(r) == set(YI_GRIDS)
    outsider = get(api, users["leader"], "/maps/api/areas", level="grid", parent="110102")
    assert outsider.status_code == 404


def test_bad_parameters_are_400(api, mapdata, users):
    for params in (
        {"category": "1"},
        {"level": "planet"},
        {"since": "2025-01-01"},
        {"since": "2025-02-01", "until": "2025-01-01"},
        {"days": 0},
        {"zoom": 40},
    ):
        assert get(api, users["city"], "/maps/api/areas", **params).status_code == 400, params


def test_heat_payload(api, mapdata, users):
    r = get(api, users["city"], "/maps/api/heat", days=90)
    data = r.json()
    assert data["total"] == 13 and len(data["cells"]) == 4
    outsider = get(api, users["yi"], "/maps/api/heat", days=90).json()
    assert outsider["total"] == 4 and len(outsider["cells"]) == 2


def test_weekly_series(api, mapdata, users):
    data = get(api, users["leader"], "/maps/api/heat/weekly", weeks=13).json()
    assert len(data["periods"]) == 13 and len(data["cells"]) == 4


def test_area_counts_in_constant_queries(api, mapdata, users, django_assert_num_queries):
    aggregates.rollup_refresh()
    client = api(users["city"])
    # The roll-up state, then one statement (its savepoint, SET LOCAL jit = off, the release).
    with django_assert_num_queries(5):
        r = client.get("/maps/api/areas", {"level": "grid", "days": 90})
    assert len(r.json()["features"]) == 4


def test_counts_only_is_what_the_page_recolours_with(api, mapdata, users):
    full = {
        f["properties"]["code"]: f
        for f in get(api, users["jia"], "/maps/api/areas", level="grid", days=30).json()["features"]
    }
    r = get(api, users["jia"], "/maps/api/areas", level="grid", days=30, counts_only=1)
    slim = r.json()["features"]
    assert {f["properties"]["code"] for f in slim} == set(JIA_GRIDS)  # not 乙's grids
    for f in slim:
        assert f["geometry"] is None and set(f["properties"]) == {"code", "count"}
        assert f["properties"]["count"] == full[f["properties"]["code"]]["properties"]["count"]
    assert sum(f["properties"]["count"] for f in slim) == 7
    assert get(api, users["jia"], "/maps/api/areas", level="grid", counts_only=1, parent=YI).status_code == 404


def test_counts_for_a_view_only(api, mapdata, users):
    """bbox: the grids whose box overlaps the view (the leader's tiled grids in view), still
    inside the viewer's jurisdiction."""
    view = "116.421,39.9,116.429,39.92"  # 乙's first grid only
    r = get(api, users["city"], "/maps/api/areas", level="grid", days=30, counts_only=1, bbox=view)
    assert [f["properties"]["code"] for f in r.json()["features"]] == [YI_GRIDS[0]]
    r = get(api, users["jia"], "/maps/api/areas", level="grid", days=30, counts_only=1, bbox=view)
    assert r.json()["features"] == []  # 甲's office: nothing of 乙 in any view
    assert get(api, users["city"], "/maps/api/areas", counts_only=1, bbox="1,2,0,3").status_code == 400
    # Digits and dots that are no number: refused, not a server error (#11).
    for box in ("116.4,39.9.,116.43,39.92", ".,39.9,116.43,39.92"):
        r = get(api, users["city"], "/maps/api/areas", counts_only=1, bbox=box)
        assert r.status_code == 400 and "bbox" in r.json(), box
        assert get(api, users["centre"], "/maps/api/appeals", bbox=box).status_code == 400


def test_counts_for_named_areas_only(api, mapdata, users):
    """codes: the grids that live events named, still inside the viewer's jurisdiction."""
    r = get(api, users["city"], "/maps/api/areas", level="grid", days=30, counts_only=1, codes=YI_GRIDS[0])
    assert [f["properties"]["code"] for f in r.json()["features"]] == [YI_GRIDS[0]]
    r = get(api, users["jia"], "/maps/api/areas", level="grid", days=30, counts_only=1, codes=YI_GRIDS[0])
    assert r.json()["features"] == []  # 甲's office: nothing of 乙 by name either
    assert get(api, users["city"], "/maps/api/areas", counts_only=1, codes="12,x").status_code == 400


def test_open_appeals_endpoint(api, mapdata, users):
    r = get(api, users["jia"], "/maps/api/appeals", zoom=15)
    tickets = {f["properties"]["ticket_no"] for f in r.json()["features"]}
    assert tickets and not any(t.startswith("YI") for t in tickets)
    r = get(api, users["yi"], "/maps/api/appeals", colour="orange")
    assert {f["properties"]["ticket_no"] for f in r.json()["features"]} == {"YI000004"}
    r = get(api, users["jia"], "/maps/api/appeals", grid=YI_GRIDS[0])
    assert r.json()["features"] == []
    r = get(api, users["centre"], "/maps/api/appeals", bbox="116.42,39.9,116.44,39.92")
    assert {f["properties"]["ticket_no"][:2] for f in r.json()["features"]} == {"YI"}


def test_open_appeals_for_gcj02_basemap(api, mapdata, users):
    plain = get(api, users["yi"], "/maps/api/appeals").json()["features"]
    shifted = get(api, users["yi"], "/maps/api/appeals", crs="gcj02").json()["features"]
    (lng0, lat0), (lng1, lat1) = plain[0]["geometry"]["coordinates"], shifted[0]["geometry"]["coordinates"]
    assert 0.001 < abs(lng1 - lng0) + abs(lat1 - lat0) < 0.02


def test_labels_are_escaped(api, mapdata, users, cats):
    cats["010101"].name = "<img src=x onerror=alert(1)>"
    cats["010101"].save()
    r = get(api, users["yi"], "/maps/api/appeals")
    body = r.content.decode()
    labels = [f["properties"]["label"] for f in json.loads(body)["features"]]
    assert labels and all("<img" not in label for label in labels)


def test_tiles(api, mapdata, users):
    z, x, y = tile_for(116.425, 39.91, 14)
    r = api(users["yi"]).get(f"/maps/tiles/appeals/{z}/{x}/{y}.mvt")
    assert r.status_code == 200 and r["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert b"YI000000" in r.content
    outsider = api(users["jia"]).get(f"/maps/tiles/appeals/{z}/{x}/{y}.mvt")
    assert outsider.status_code == 200 and b"YI" not in outsider.content
    assert api(users["yi"]).get("/maps/tiles/appeals/3/9/9.mvt").status_code == 404


def test_grid_tiles_are_scoped(api, mapdata, users):
    z, x, y = tile_for(116.415, 39.91, 12)
    r = api(users["yi"]).get(f"/maps/tiles/grids/{z}/{x}/{y}.mvt?days=90&category=01")
    assert r.status_code == 200 and r["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert {p["code"] for p in mvt_properties(r.content)["grids"]} == set(YI_GRIDS)
    outsider = api(users["jia"]).get(f"/maps/tiles/grids/{z}/{x}/{y}.mvt?days=90")
    assert outsider.status_code == 200 and not any(code.encode() in outsider.content for code in YI_GRIDS)
    assert api(users["jia"]).get(f"/maps/tiles/grids/{z}/{x}/{y}.mvt?parent={YI}").status_code == 404
    assert api(users["dept"]).get(f"/maps/tiles/grids/{z}/{x}/{y}.mvt").status_code == 403
    assert api(users["yi"]).get("/maps/tiles/grids/3/9/9.mvt").status_code == 404


def test_tasks_and_queue_by_role(api, mapdata, users):
    r = get(api, users["dept"], "/maps/api/tasks")
    assert r.status_code == 200
    feats = r.json()["features"]
    assert feats and {f["properties"]["color"] for f in feats} <= {"red", "orange", "yellow", "green", "gray"}
    assert get(api, users["water"], "/maps/api/tasks").json()["features"] == []  # nothing addressed to it
    assert get(api, users["jia"], "/maps/api/tasks").status_code == 403
    worker = get(api, users["worker"], "/maps/api/tasks").json()["features"]
    assert worker and {f["properties"]["grid_code"] for f in worker} == {JIA_GRIDS[0]}
    assert get(api, users["dept"], "/maps/api/queue").status_code == 403
    assert get(api, users["centre"], "/maps/api/queue").status_code == 200


def test_whistle_layers_are_scoped(api, mapdata, users):
    for url in ("/maps/api/hotspots", "/maps/api/suggestions", "/maps/api/calls"):
        assert get(api, users["jia"], url).status_code == 200
