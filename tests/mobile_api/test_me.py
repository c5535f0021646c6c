"""Who am I, and my grids: scoped by the same access rules as every other view."""

import pytest
from rest_framework.test import APIClient

from gridgov.accounts.models import Department, Role

pytestmark = pytest.mark.django_db
ME, GRIDS = "/api/mobile/v1/me", "/api/mobile/v1/me/grids"


def as_user(user):
    c = APIClient()
    c.force_authenticate(user)
    return c


def test_me_requires_login():
    assert APIClient().get(ME).status_code == 401
    assert APIClient().get(GRIDS).status_code == 401


def test_profile_of_each_kind_of_user(make_user):
    worker = make_user(
        Role.GRID_WORKER, grid_codes=["110101001001002", "110101001001001"], first_name="小明", last_name="王"
    )
    r = as_user(worker).get(ME).json()
    assert r["username"] == worker.username and r["display_name"] == "小明 王" and r["role"] == "grid_worker"
    assert r["role_display"] == "网格员" and r["department"] is None
    assert r["jurisdiction"] == ["110101001001001", "110101001001002"]
    assert r["realtime_groups"] == [f"user.{worker.pk}", "grid.110101001001001", "grid.110101001001002"]

    dept = Department.objects.create(code="water", name="水务局", district_code="110101")
    staff = make_user(Role.DEPARTMENT, department=dept)
    r = as_user(staff).get(ME).json()
    assert r["department"] == {"id": dept.pk, "code": "water", "name": "水务局"} and r["jurisdiction"] == ["110101"]
    assert r["display_name"] == staff.username

    leader = make_user(Role.LEADER)
    assert as_user(leader).get(ME).json()["jurisdiction"] is None  # the whole city


def codes(response):
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["type"] == "FeatureCollection"
    return [f["properties"]["code"] for f in body["features"]]


def test_my_grids_are_scoped(city, make_user, django_assert_max_num_queries):
    worker = make_user(Role.GRID_WORKER, grid_codes=["110101002002001"])
    with django_assert_max_num_queries(2):  # count + page
        r = as_user(worker).get(GRIDS)
    assert codes(r) == ["110101002002001"]
    feature = r.json()["features"][0]
    assert feature["geometry"]["type"] == "MultiPolygon" and feature["properties"]["name"] == "乙二第1网格"
    assert feature["properties"]["street_code"] == "110101002"
    assert feature["properties"]["community_code"] == "110101002002"
    # outsiders: another street's office sees its own grids, never the worker's
    street_a = make_user(Role.STREET_OFFICE, area_code="110101001")
    assert codes(as_user(street_a).get(GRIDS)) == ["110101001001001", "110101001001002"]
    # a worker without grids sees none; the hotline centre every grid
    assert codes(as_user(make_user(Role.GRID_WORKER)).get(GRIDS)) == []
    assert len(codes(as_user(make_user(Role.HOTLINE_CENTER)).get(GRIDS))) == 4


def test_my_grids_are_current_versions_only(city, make_user):
    from django.contrib.gis.geos import MultiPolygon, Polygon

    from gridgov.areas.models import Grid
    from gridgov.areas.services import areas_replace

    changed = MultiPolygon(Polygon.from_bbox((116.40, 39.90, 116.4099, 39.92)))
    rows = [(g.code, g.name, changed if g.code == "110101001001001" else g.geom) for g in Grid.objects.current()]
    areas_replace(Grid, rows, source="test", crs="wgs84", actor="tests")
    assert Grid.objects.filter(code="110101001001001").count() == 2
    worker = make_user(Role.GRID_WORKER, grid_codes=["110101001001001"])
    r = as_user(worker).get(GRIDS).json()
    assert [f["properties"]["version"] for f in r["features"]] == [2]
