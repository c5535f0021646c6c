"""The whistles API end to end: hotspots on the map, a suggestion confirmed, two departments
mustering (one late and escalated), check-ins inside and outside the geofence, reports,
closing with the appeals resolved, evaluations both ways; and outsiders who see nothing."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gridgov.accounts.models import Department
from gridgov.appeals.models import Appeal
from gridgov.whistles import compute, rules, services
from gridgov.whistles.models import Hotspot, Muster, WhistleSuggestion
from tests.mobile_api.fieldwork import photo_bytes

from .conftest import cluster, make_appeals, offset, spread

pytestmark = pytest.mark.django_db
API = "/api/v1/whistles"
PNG = photo_bytes("PNG", size=(8, 8))  # a real one: evidence is decoded (gridgov/fieldwork)


@pytest.fixture
def world(gencity, make_user, rng):
    now = timezone.now()
    d1, d2 = gencity.districts
    s1, s2 = [s for s in gencity.streets if s.startswith(d1)][:2]
    s_far = next(s for s in gencity.streets if s.startswith(d2))
    grid = next(c for c in gencity.codes if c.startswith(s1) and len(gencity.neighbours[c]) >= 4)
    building = gencity.centres[grid]
    dept = {
        c: Department.objects.get(code=c)
        for c in ("zilaishui", "chengguanwei", f"chengguan-{d1}", f"chengguan-{d2}", f"jiedao-{s1}")
    }
    users = {
        "street": make_user("street_office", area_code=s1, department=dept[f"jiedao-{s1}"]),
        "other_street": make_user("street_office", area_code=s2),
        "far_street": make_user("street_office", area_code=s_far),
        "water": make_user("department", department=dept["zilaishui"]),
        "city": make_user("department", department=dept["chengguanwei"]),
        "district_unit": make_user("department", department=dept[f"chengguan-{d1}"]),  # same district, not summoned
        "other_district_unit": make_user("department", department=dept[f"chengguan-{d2}"]),
        "leader": make_user("leader", area_code=d1),
        "other_leader": make_user("leader", area_code=d2),
        "hotline": make_user("hotline_center"),
    }
    # A week of water-main leaks at one building over a scattered background, plus a hot grid
    # of overflowing bins in the far district.
    leaks = make_appeals(
        [(grid, offset(building, 4 * i, 3 * i), "020104", now - timedelta(days=i % 5, hours=1)) for i in range(7)]
    )
    far_grid = next(c for c in gencity.codes if c.startswith(s_far) and len(gencity.neighbours[c]) >= 4)
    elsewhere = [c for c in gencity.codes if c != grid]  # the building's spot holds its leaks only
    make_appeals(
        spread(gencity, rng, 1.0, "020104", now - timedelta(days=7), now, grids=elsewhere)
        + spread(gencity, rng, 1.0, "010101", now - timedelta(days=7), now)
        + cluster(gencity, far_grid, 25, 8, "010101", now - timedelta(days=7), now, rng)
    )
    compute.hotspots_recompute(window_days=(7,), categories=["0101", "0201"], now=now)
    rules.suggestions_make(now)
    return {
        "users": users,
        "dept": dept,
        "grid": grid,
        "building": building,
        "leaks": leaks,
        "s1": s1,
        "far_grid": far_grid,
        "now": now,
    }


def features(response):
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["type"] == "FeatureCollection"
    return body["features"]


def test_hotspot_map_is_scoped_and_filtered(world, api):
    u = world["users"]
    mine = features(api(u["street"]).get(f"{API}/hotspots"))
    assert mine and all(f["properties"]["street_code"] == world["s1"] for f in mine)
    assert any(
        f["properties"]["kind"] == "dbscan" and f["properties"]["appeal_ids"] == sorted(a.pk for a in world["leaks"])
        for f in mine
    )
    assert mine[0]["geometry"]["type"] == "MultiPolygon"
    everyone = features(api(u["hotline"]).get(f"{API}/hotspots"))
    assert len(everyone) > len(mine)
    assert any(f["properties"]["grid_code"] == world["far_grid"] for f in everyone)
    assert not any(
        f["properties"]["street_code"] == world["s1"] for f in features(api(u["other_street"]).get(f"{API}/hotspots"))
    )
    assert features(api(u["other_leader"]).get(f"{API}/hotspots")) == [
        f for f in everyone if f["properties"]["street_code"][:6] == u["other_leader"].area_code
    ]
    assert features(api(u["water"]).get(f"{API}/hotspots")) == []  # not linked to any call yet
    assert api().get(f"{API}/hotspots").status_code in (401, 403)

    only = features(
        api(u["hotline"]).get(
            f"{API}/hotspots", {"kind": "grid_gi", "category": "0101", "window": 7, "state": "new,acknowledged"}
        )
    )
    assert only and all(f["properties"]["category_key"] == "0101" for f in only)
    assert features(api(u["hotline"]).get(f"{API}/hotspots", {"window": 30})) == []
    assert api(u["hotline"]).get(f"{API}/hotspots", {"state": "bogus"}).status_code == 400

    # The list costs the same number of queries however many hotspots there are.
    with CaptureQueriesContext(connection) as few:
        api(u["street"]).get(f"{API}/hotspots")
    with CaptureQueriesContext(connection) as many:
        api(u["hotline"]).get(f"{API}/hotspots")
    assert len(few) == len(many)

    # Acknowledge and dismiss: the street office decides; outsiders get 404, leaders 403.
    spot = (
        next(f for f in mine if f["properties"]["kind"] == "grid_gi")
        if any(f["properties"]["kind"] == "grid_gi" for f in mine)
        else mine[0]
    )
    url = f"{API}/hotspots/{spot['id']}"
    assert api(u["other_street"]).post(f"{url}/acknowledge").status_code == 404
    assert api(u["leader"]).post(f"{url}/acknowledge").status_code == 403
    r = api(u["street"]).post(f"{url}/acknowledge", {"note": "已关注"}, format="json")
    assert r.status_code == 200 and r.json()["properties"]["state"] == "acknowledged"
    assert api(u["street"]).post(f"{url}/acknowledge").status_code == 409
    assert api(u["street"]).post(f"{url}/dismiss", {"reason": ""}, format="json").status_code == 400


def test_the_whole_whistle_through_the_api(world, api, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    u, now = world["users"], world["now"]
    street, water, city = api(u["street"]), api(u["water"]), api(u["city"])

    # The street's suggestion, with its evidence; outsiders do not see it.
    listed = street.get(f"{API}/suggestions", {"state": "pending"}).json()
    s = next(x for x in listed if set(x["appeal_ids"]) >= {a.pk for a in world["leaks"]})
    assert s["evidence"]["bbox"] and s["evidence"]["appeal_ids"] == s["appeal_ids"]
    for outsider in ("other_street", "water", "other_district_unit", "other_leader"):
        assert api(u[outsider]).get(f"{API}/suggestions/{s['id']}").status_code == 404
        assert all(x["id"] != s["id"] for x in api(u[outsider]).get(f"{API}/suggestions").json())
    proposal = street.get(f"{API}/suggestions/{s['id']}/proposal").json()["departments"]
    assert proposal[0]["department"] == "zilaishui" and proposal[0]["role"] == "lead"

    # Blow: the street edits the proposal (adds city management).
    lng, lat = world["building"]
    body = {
        "problem": "单元楼供水管道一周内反复漏水",
        "departments": ["zilaishui", "chengguanwei"],
        "lng": lng,
        "lat": lat,
        "muster_deadline": (now + timedelta(hours=1)).isoformat(),
    }
    assert api(u["other_street"]).post(f"{API}/suggestions/{s['id']}/confirm", body, format="json").status_code == 404
    assert api(u["leader"]).post(f"{API}/suggestions/{s['id']}/confirm", body, format="json").status_code == 403
    r = street.post(f"{API}/suggestions/{s['id']}/confirm", body, format="json")
    assert r.status_code == 201, r.content
    call = r.json()
    cid = call["id"]
    assert call["state"] == "blown" and [m["department"] for m in call["musters"]] == ["chengguanwei", "zilaishui"]
    assert call["proposal"]["added"] == ["chengguanwei"]
    assert street.post(f"{API}/suggestions/{s['id']}/confirm", body, format="json").status_code == 409
    mw = next(m["id"] for m in call["musters"] if m["department"] == "zilaishui")
    mc = next(m["id"] for m in call["musters"] if m["department"] == "chengguanwei")

    # Who sees the call: the street, its district's leader, the hotline and the summoned units.
    for insider in ("street", "leader", "hotline", "water", "city"):
        assert api(u[insider]).get(f"{API}/calls/{cid}").status_code == 200, insider
    for outsider in ("other_street", "far_street", "other_leader", "district_unit", "other_district_unit"):
        assert api(u[outsider]).get(f"{API}/calls/{cid}").status_code == 404, outsider
        assert api(u[outsider]).get(f"{API}/calls").json() == [], outsider
        assert api(u[outsider]).post(f"{API}/musters/{mw}/acknowledge").status_code == 404, outsider
    assert [c["id"] for c in water.get(f"{API}/calls").json()] == [cid]
    # A summoned unit now sees the hotspot its call came from, and only that one.
    assert [f["id"] for f in features(water.get(f"{API}/hotspots", {"active": "all"}))] == [call["hotspot"]]

    # Mustering: each unit answers for itself only.
    assert city.post(f"{API}/musters/{mw}/acknowledge").status_code == 403
    assert street.post(f"{API}/musters/{mw}/acknowledge").status_code == 403
    r = water.post(f"{API}/musters/{mw}/acknowledge", {"note": "已出发"}, format="json")
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    far = offset(world["building"], 0, 500)
    r = water.post(f"{API}/musters/{mw}/check-in", {"lng": far[0], "lat": far[1]}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "outside_geofence"
    assert 490 < r.json()["distance_m"] < 510 and r.json()["geofence_m"] == 200
    near = offset(world["building"], 30, -20)
    r = water.post(f"{API}/musters/{mw}/check-in", {"lng": near[0], "lat": near[1], "crs": "wgs84"}, format="json")
    assert r.status_code == 200 and r.json()["state"] == "checked_in" and r.json()["check_in_distance_m"] < 40
    assert water.post(f"{API}/musters/{mw}/check-in", {"lng": 999, "lat": 0}, format="json").status_code == 400

    # City management does not come by the deadline: escalated to the district.
    assert services.muster_sweep(now=now + timedelta(hours=2))["escalated"] == 1
    detail = api(u["leader"]).get(f"{API}/calls/{cid}").json()
    late = next(m for m in detail["musters"] if m["id"] == mc)
    assert late["late"] and late["escalated"] and late["state"] == "summoned"
    r = city.post(f"{API}/musters/{mc}/check-in", {"lng": near[0], "lat": near[1]}, format="json")
    assert r.status_code == 200 and r.json()["late"] and r.json()["escalated"]

    # Reports, with a photo.
    r = water.post(
        f"{API}/musters/{mw}/report",
        {"text": "更换破损管段，已恢复供水", "files": [SimpleUploadedFile("after.png", PNG, "image/png")]},
        format="multipart",
    )
    assert r.status_code == 200, r.content
    assert r.json()["state"] == "reported" and r.json()["evidence"][0]["content_type"] == "image/png"
    assert city.post(f"{API}/musters/{mc}/report", {"text": ""}, format="json").status_code == 400
    assert city.post(f"{API}/musters/{mc}/report", {"text": "清理现场"}, format="json").status_code == 200

    # Close: the linked appeals, in whatever state, are resolved through the appeals' door.
    Appeal.objects.filter(pk=world["leaks"][0].pk).update(state="dispatched", department=world["dept"]["zilaishui"])
    Appeal.objects.filter(pk=world["leaks"][1].pk).update(state="accepted", department=world["dept"]["zilaishui"])
    assert water.post(f"{API}/calls/{cid}/close", {"note": "已修复"}, format="json").status_code == 403
    assert api(u["other_street"]).post(f"{API}/calls/{cid}/close", {"note": "x"}, format="json").status_code == 404
    assert street.post(f"{API}/calls/{cid}/close", {}, format="json").status_code == 400
    r = street.post(f"{API}/calls/{cid}/close", {"note": "联合处置完毕，管道已更换"}, format="json")
    assert r.status_code == 200 and r.json()["state"] == "closed"
    result = r.json()["close_result"]
    assert {x["appeal"] for x in result["resolved"]} == {world["leaks"][0].pk, world["leaks"][1].pk}
    assert {x["appeal"] for x in result["skipped"]} == {a.pk for a in world["leaks"][2:]}  # never dispatched
    assert {a["state"] for a in r.json()["appeals"] if a["id"] in (world["leaks"][0].pk, world["leaks"][1].pk)} == {
        "resolved"
    }
    assert street.post(f"{API}/calls/{cid}/cancel", {"reason": "x"}, format="json").status_code == 409

    # Two-way evaluation.
    rate = {"timeliness": 5, "action": 4, "result": 5, "comment": "响应及时"}
    assert water.post(f"{API}/musters/{mw}/evaluation", rate, format="json").status_code == 403
    assert street.post(f"{API}/musters/{mw}/evaluation", rate, format="json").status_code == 201
    assert street.post(f"{API}/musters/{mw}/evaluation", rate, format="json").status_code == 400
    assert street.post(f"{API}/musters/{mc}/evaluation", {**rate, "timeliness": 9}, format="json").status_code == 400
    assert street.post(f"{API}/musters/{mc}/evaluation", {**rate, "timeliness": 1}, format="json").status_code == 201
    assert water.post(f"{API}/calls/{cid}/evaluation", {"justified": True}, format="json").status_code == 201
    assert street.post(f"{API}/calls/{cid}/evaluation", {"justified": True}, format="json").status_code == 403
    assert (
        api(u["other_district_unit"])
        .post(f"{API}/calls/{cid}/evaluation", {"justified": False}, format="json")
        .status_code
        == 404
    )
    detail = street.get(f"{API}/calls/{cid}").json()
    assert sorted((e["direction"], e["department"]) for e in detail["evaluations"]) == [
        ("department_to_street", "zilaishui"),
        ("street_to_department", "chengguanwei"),
        ("street_to_department", "zilaishui"),
    ]
    events = [(e["object_type"], e["event"]) for e in detail["events"]]
    # (the sweep ran "two hours later", so its row sorts last)
    assert events[0] == ("call", "blow") and {("muster", "escalate"), ("call", "close")} <= set(events)
    assert WhistleSuggestion.objects.get(pk=s["id"]).state == "confirmed"
    assert Hotspot.objects.get(pk=call["hotspot"]).state == "whistled"


def test_blowing_by_hand_with_the_proposal(world, api):
    u = world["users"]
    street = api(u["street"])
    ids = ",".join(str(a.pk) for a in world["leaks"][:3])
    r = street.get(f"{API}/calls/proposal", {"appeals": ids})
    assert r.status_code == 200 and r.json()["departments"][0]["department"] == "zilaishui"
    assert api(u["water"]).get(f"{API}/calls/proposal", {"appeals": ids, "street": world["s1"]}).status_code == 403
    lng, lat = world["building"]
    body = {"problem": "井盖缺失", "appeal_ids": [a.pk for a in world["leaks"][:3]], "lng": lng, "lat": lat}
    assert (
        api(u["other_street"]).post(f"{API}/calls", {**body, "street_code": world["s1"]}, format="json").status_code
        == 403
    )
    r = street.post(f"{API}/calls", body, format="json")
    assert r.status_code == 201, r.content
    assert [m["department"] for m in r.json()["musters"]] == ["zilaishui"]  # the proposal, as is
    assert Muster.objects.filter(call_id=r.json()["id"]).count() == 1
    # Appeals of another street cannot be pulled into this street's call.
    far = Appeal.objects.filter(grid_code=world["far_grid"]).values_list("pk", flat=True)[:1]
    r = street.post(f"{API}/calls", {**body, "appeal_ids": list(far)}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "appeal_outside_street"


def test_monthly_topic_for_district_leaders(world, api):
    u = world["users"]
    d1 = world["s1"][:6]
    month = timezone.localtime(world["now"]).strftime("%Y-%m")
    r = api(u["leader"]).get(f"{API}/monthly-topic", {"district": d1, "month": month})
    assert r.status_code == 200 and r.json()["topic"]["count"] > 0
    assert api(u["other_leader"]).get(f"{API}/monthly-topic", {"district": d1, "month": month}).status_code == 404
    assert api(u["street"]).get(f"{API}/monthly-topic", {"district": d1, "month": month}).status_code == 404
    assert api(u["hotline"]).get(f"{API}/monthly-topic", {"district": d1, "month": "2026-13"}).status_code == 400
    # The topic reads the month before and the start of the month after: years 0 and 9999 are
    # refused, not a server error (#11).
    for month in ("0000-01", "9999-12"):
        r = api(u["hotline"]).get(f"{API}/monthly-topic", {"district": d1, "month": month})
        assert r.status_code == 400 and "month" in r.json(), month


def test_a_call_area_must_be_a_valid_polygon(gencity, make_user, api):
    """The area importer's rule (gridgov.areas.importer.polygon_repair): a self-intersecting area
    is repaired when that keeps its area within 1 %, refused otherwise (#11)."""
    from gridgov.whistles.models import WhistleCall

    s1, s2 = gencity.streets[:2]
    street = api(make_user("street_office", area_code=s1))
    lng, lat = next(gencity.centres[c] for c in gencity.codes if c.startswith(s1))
    d = 0.001
    bow_tie = [[lng - d, lat - d], [lng + d, lat + d], [lng + d, lat - d], [lng - d, lat + d], [lng - d, lat - d]]
    body = {
        "problem": "井盖缺失",
        "departments": ["zilaishui"],
        "lng": lng,
        "lat": lat,
        "area": {"type": "Polygon", "coordinates": [bow_tie]},
    }
    r = street.post(f"{API}/calls", body, format="json")
    assert r.status_code == 400 and "自相交" in r.json()["area"][0], r.json()
    # A square with a sliver crossing at one corner: repaired, well inside 1 % of its area.
    square = [
        [lng - d, lat - d],
        [lng + d, lat - d],
        [lng + d, lat + d],
        [lng - d, lat + d],
        [lng - d + 1e-6, lat - d - 1e-6],
        [lng - d, lat - d],
    ]
    outsider = api(make_user("street_office", area_code=s2))
    good = {**body, "area": {"type": "Polygon", "coordinates": [square]}, "street_code": s1}
    assert outsider.post(f"{API}/calls", good, format="json").status_code == 403
    assert WhistleCall.objects.count() == 0
    r = street.post(f"{API}/calls", good, format="json")
    assert r.status_code == 201, r.content
    call = WhistleCall.objects.get(pk=r.json()["id"])
    assert call.area.valid and abs(call.area.area - (2 * d) ** 2) / (2 * d) ** 2 < 0.01
