import pytest

from gridgov.accounts.models import Role
from gridgov.areas import coords

pytestmark = pytest.mark.django_db


def test_locate_requires_login(city, api):
    assert api().get("/api/v1/locate", {"lng": 116.405, "lat": 39.91}).status_code in (401, 403)
    assert api().post("/api/v1/locate/bulk", {"points": [[116.405, 39.91]]}, format="json").status_code in (401, 403)


def test_locate_gcj02_over_http(city, api, make_user):
    user = make_user(Role.OPERATOR)
    glng, glat = coords.wgs84_to_gcj02(116.405, 39.91)
    r = api(user).get("/api/v1/locate", {"lng": glng, "lat": glat, "crs": "gcj02"})
    assert r.status_code == 200, r.content
    assert r.json()["grid_code"] == "110101001001001" and r.json()["in_jurisdiction"] is True


def test_locate_outside_and_bad_input(city, api, make_user):
    c = api(make_user(Role.OPERATOR))
    r = c.get("/api/v1/locate", {"lng": 116.6, "lat": 39.91})
    assert r.status_code == 200 and r.json()["match"] == "outside"
    r = c.get("/api/v1/locate", {"lng": "x", "lat": 39.91})
    assert r.status_code == 400 and "lng" in r.json()
    r = c.get("/api/v1/locate", {"lng": 116.4, "lat": 39.91, "crs": "mars"})
    assert r.status_code == 400 and "crs" in r.json()


@pytest.mark.parametrize("at", ["9999-01-01T00:00:00+08:00", "0001-01-01T00:00:00Z", "1999-12-31T00:00:00+08:00"])
def test_every_at_outside_a_sane_window_is_refused(city, api, make_user, at):
    """The same rule for every `at=` (#11): one locate, bulk locate, and the areas' GeoJSON."""
    for user in (make_user(Role.OPERATOR), make_user(Role.STREET_OFFICE, area_code="110101002")):  # and an outsider
        c = api(user)
        r = c.get("/api/v1/locate", {"lng": 116.405, "lat": 39.91, "at": at})
        assert r.status_code == 400 and "at" in r.json(), r.json()
        r = c.post("/api/v1/locate/bulk", {"points": [[116.405, 39.91]], "at": at}, format="json")
        assert r.status_code == 400 and "at" in r.json()
        assert c.get("/api/v1/areas/grid/", {"at": at}).status_code == 400
    assert api().get("/api/v1/locate", {"lng": 116.405, "lat": 39.91, "at": at}).status_code in (401, 403)
    r = api(make_user(Role.OPERATOR)).get(
        "/api/v1/locate", {"lng": 116.405, "lat": 39.91, "at": "2020-01-01T00:00:00+08:00"}
    )
    assert r.status_code == 200


def test_bulk_locate_takes_json_types_as_they_are(city, api, make_user):
    c = api(make_user(Role.OPERATOR))
    for body in (
        {"points": [[116.405, 39.91]], "crs": 4326},
        {"points": [[116.405, 39.91]], "at": 20200101},
        {"points": [[116.405, 39.91], [True, 39.91]]},
        {"points": [["116.405", "39.91"]]},
    ):
        r = c.post("/api/v1/locate/bulk", body, format="json")
        assert r.status_code == 400, body
    # A query string is text: numbers arrive as strings there and are read as numbers.
    assert c.get("/api/v1/locate", {"lng": "116.405", "lat": "39.91"}).json()["grid_code"] == "110101001001001"


def test_bulk_locate_answers_in_order(city, api, make_user):
    r = api(make_user(Role.OPERATOR)).post(
        "/api/v1/locate/bulk", {"points": [[116.405, 39.91], [116.6, 39.9], [116.425, 39.91]]}, format="json"
    )
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x.get("grid_code") for x in res] == ["110101001001001", None, "110101002001001"]
    assert res[1]["match"] == "outside"
    r = api(make_user(Role.OPERATOR)).post("/api/v1/locate/bulk", {"points": [[1]]}, format="json")
    assert r.status_code == 400


def test_outsider_sees_locate_answer_flagged_not_in_jurisdiction(city, api, make_user):
    other_street = make_user(Role.STREET_OFFICE, area_code="110101002")
    r = api(other_street).get("/api/v1/locate", {"lng": 116.405, "lat": 39.91})
    assert r.json()["in_jurisdiction"] is False


def test_area_geojson_scoped_to_the_viewer(city, api, make_user):
    street_a = make_user(Role.STREET_OFFICE, area_code="110101001")
    r = api(street_a).get("/api/v1/areas/grid/")
    assert r.status_code == 200
    codes = [f["properties"]["code"] for f in r.json()["features"]]
    assert codes == ["110101001001001", "110101001001002"]
    # the street sees its own outline and its district's, not the sibling street
    codes = [f["properties"]["code"] for f in api(street_a).get("/api/v1/areas/street/").json()["features"]]
    assert codes == ["110101001"]
    assert [f["properties"]["code"] for f in api(street_a).get("/api/v1/areas/district/").json()["features"]] == [
        "110101"
    ]
    worker = make_user(Role.GRID_WORKER, grid_codes=["110101002002001"])
    codes = [f["properties"]["code"] for f in api(worker).get("/api/v1/areas/grid/").json()["features"]]
    assert codes == ["110101002002001"]
    assert api().get("/api/v1/areas/grid/").status_code in (401, 403)
    assert api(make_user(Role.GRID_WORKER)).get("/api/v1/areas/grid/").json()["features"] == []


def test_area_geojson_bbox_and_zoom(city, api, make_user):
    c = api(make_user(Role.LEADER))
    r = c.get("/api/v1/areas/grid/", {"in_bbox": "116.40,39.90,116.415,39.905"})
    assert [f["properties"]["code"] for f in r.json()["features"]] == ["110101001001001", "110101001001002"]
    f = c.get("/api/v1/areas/grid/", {"zoom": 10}).json()["features"][0]
    assert f["geometry"]["type"] in ("MultiPolygon", "Polygon")
    assert c.get("/api/v1/areas/parish/").status_code == 404
    assert c.get("/api/v1/areas/grid/", {"zoom": 99}).status_code == 400


def test_bulk_locate_flags_jurisdiction_per_point_and_refuses_bad_json(city, api, make_user):
    street = make_user(Role.STREET_OFFICE, area_code="110101001")
    r = api(street).post(
        "/api/v1/locate/bulk", {"points": [[116.405, 39.91], [116.425, 39.91], [116.6, 39.9]]}, format="json"
    )
    assert [x.get("in_jurisdiction") for x in r.json()["results"]] == [True, False, None]
    r = api(street).post("/api/v1/locate/bulk", "{not json", content_type="application/json")
    assert r.status_code == 400 and "JSON" in r.json()["detail"]
