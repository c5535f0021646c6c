"""The appeals API: intake (single, bulk, idempotent), scoped reads, and the action endpoints.
Every endpoint is also called by an outsider."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from gridgov.appeals.models import Appeal
from gridgov.appeals.services import appeal_register
from gridgov.audit.models import AuditEvent
from gridgov.audit.services import audit_verify

pytestmark = pytest.mark.django_db

GARBAGE = "小区门口垃圾桶满了好几天没人清运，味道很大"
GAS = "楼下闻到很浓的煤气味，怀疑燃气泄漏"
STREET1 = (116.405, 39.91)  # grid 110101001001001, 甲街道
STREET1_GRID2 = (116.415, 39.91)  # grid 110101001001002
STREET2 = (116.425, 39.91)  # grid 110101002001001, 乙街道: garbage goes to its street office
# A review date a ledger can keep (one ten centuries ahead is refused: tests/test_inputs.py).
REVIEW_AT = (timezone.now() + timedelta(days=90)).isoformat()


def reg(actor, at=STREET1, **data):
    data.setdefault("text", GARBAGE)
    if at is not None:
        data["lng"], data["lat"] = at
    return appeal_register(data=data, actor=actor)[0]


def url(appeal, action=""):
    return f"/api/v1/appeals/{appeal.ticket_no}" + (f"/{action}" if action else "")


@pytest.fixture
def people(city, catalogue, make_user):
    d = catalogue["departments"]
    return {
        "operator": make_user("operator"),
        "operator2": make_user("operator"),
        "hotline": make_user("hotline_center"),
        "chengguan": make_user("department", department=d["chengguan"]),
        "ranqi": make_user("department", department=d["ranqi"]),
        "gongan": make_user("department", department=d["gongan"]),
        "street1": make_user("street_office", area_code="110101001"),
        "street2": make_user("street_office", area_code="110101002"),
        "worker1": make_user("grid_worker", grid_codes=["110101001001001"]),
        "worker2": make_user("grid_worker", grid_codes=["110101001001002"]),
        "leader": make_user("leader", area_code="110101"),
        "other_leader": make_user("leader", area_code="110102"),
    }


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # These tests create a dozen users each; the production hasher costs ~1.5 s per user here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- intake ----------------------------------------------------------------------------------


def test_register_one_and_again(people, api):
    body = {
        "channel": "phone",
        "text": GARBAGE,
        "lng": STREET1[0],
        "lat": STREET1[1],
        "crs": "wgs84",
        "appellant_name": "张三",
        "appellant_phone": "13812345678",
        "source_system": "12345",
        "external_id": "BJ-0001",
        "address_text": "甲街道某小区北门",
    }
    res = api(people["operator"]).post("/api/v1/appeals", body, format="json")
    assert res.status_code == 201, res.json()
    data = res.json()
    assert data["created"] is True and data["state"] == "dispatched" and data["state_label"] == "已派单"
    assert data["grid_chain"]["grid"] == {"code": "110101001001001", "name": "甲一第1网格"}
    assert data["grid_chain"]["street"] == {"code": "110101001", "name": "甲街道"}
    assert data["grid_chain"]["district"]["name"] == "测试区" and data["grid_chain"]["community"]["name"] == "甲一社区"
    assert data["location"]["method"] == "position" and data["location"]["confidence"] == 1.0
    assert data["category"]["code"] == "010101" and data["category_guesses"][0]["code"] == "010101"
    assert data["department"] == {"code": "chengguan", "name": "城管委"}
    assert data["route"]["lead"] == "chengguan" and data["time_limit"] == "7d" and data["deadline"]
    assert data["warning_colour"] == "none" and data["risk"] == {"flags": [], "transfer": []}
    assert [e["event"] for e in data["events"]] == ["register", "locate", "dispatch"]
    assert data["assignments"][0]["department"]["code"] == "chengguan" and data["attachments"] == []
    assert data["appellant_phone"] == "13812345678"  # the operator took the call

    again = api(people["operator"]).post("/api/v1/appeals", body, format="json")
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["ticket_no"] == data["ticket_no"] and Appeal.objects.count() == 1


def test_register_reports_risk_and_duplicates(people, api):
    c = api(people["hotline"])
    first = c.post("/api/v1/appeals", {"text": GARBAGE, "lng": STREET1[0], "lat": STREET1[1]}, format="json").json()
    second = c.post(
        "/api/v1/appeals",
        {"text": "小区门口的垃圾桶满了没人来清运，臭味很大", "lng": 116.4051, "lat": 39.9101},
        format="json",
    ).json()
    assert second["duplicates"][0]["ticket_no"] == first["ticket_no"]
    gas = c.post("/api/v1/appeals", {"text": GAS, "lng": STREET1[0], "lat": STREET1[1]}, format="json").json()
    assert gas["risk"]["transfer"] == ["119"] and gas["time_limit"] == "2h" and gas["route"]["double_dispatch"]


@pytest.mark.parametrize("who", ["street1", "worker1", "chengguan", "leader"])
def test_only_the_hotline_registers(people, api, who):
    res = api(people[who]).post("/api/v1/appeals", {"text": GARBAGE}, format="json")
    assert res.status_code == 403 and Appeal.objects.count() == 0
    assert api(people[who]).post("/api/v1/appeals/bulk", [{"text": GARBAGE}], format="json").status_code == 403


def test_anonymous_is_refused(people, api):
    assert api().post("/api/v1/appeals", {"text": GARBAGE}, format="json").status_code in (401, 403)
    assert api().get("/api/v1/appeals").status_code in (401, 403)


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "text"),
        ({"text": "  "}, "text"),
        ({"text": GARBAGE, "lng": 116.4}, "lng"),
        ({"text": GARBAGE, "lng": 500, "lat": 39.9}, "lng"),
        ({"text": GARBAGE, "lng": 116.4, "lat": 39.9, "crs": "utm"}, "crs"),
        ({"text": GARBAGE, "category_code": "999999"}, "category_code"),
        ({"text": GARBAGE, "appellant_phone": "call me maybe"}, "appellant_phone"),
        ({"text": GARBAGE, "channel": "pigeon"}, "channel"),
        ({"text": GARBAGE, "received_at": "2999-01-01T00:00:00+08:00"}, "received_at"),
        # A sane window only: year 0001 made a 13-digit ticket number (#11).
        ({"text": GARBAGE, "received_at": "0001-01-01T00:00:00+08:00"}, "received_at"),
        ({"text": GARBAGE, "received_at": "1999-12-31T23:59:00+08:00"}, "received_at"),
        ({"text": GARBAGE, "received_at": 1700000000}, "received_at"),
        # JSON's types as they are: no coercion of numbers to text, booleans or text to numbers.
        ({"text": 123}, "text"),
        ({"text": GARBAGE, "lng": True, "lat": 39.91}, "lng"),
        ({"text": GARBAGE, "lng": "116.405", "lat": "39.91"}, "lng"),
        ({"text": GARBAGE, "appellant_phone": 13812345678}, "appellant_phone"),
        ({"text": GARBAGE, "external_id": 42, "source_system": "12345"}, "external_id"),
    ],
)
def test_register_validation(people, api, body, field):
    res = api(people["operator"]).post("/api/v1/appeals", body, format="json")
    assert res.status_code == 400 and field in res.json(), res.json()
    assert Appeal.objects.count() == 0


def test_bulk_keeps_good_items_and_reports_bad_ones(people, api):
    items = [
        {"text": GARBAGE, "lng": STREET1[0], "lat": STREET1[1], "source_system": "12345", "external_id": "A1"},
        {"lng": STREET1[0], "lat": STREET1[1], "source_system": "12345", "external_id": "A2"},  # no text
        {"text": GAS, "lng": STREET2[0], "lat": STREET2[1], "source_system": "12345", "external_id": "A3"},
        {"text": GARBAGE, "source_system": "12345", "external_id": "A1"},  # the same ticket again
        {"text": GARBAGE, "lng": 999, "lat": 39.9, "source_system": "12345", "external_id": "A5"},
        "not an object",
    ]
    res = api(people["operator"]).post("/api/v1/appeals/bulk", items, format="json")
    assert res.status_code == 200
    body = res.json()
    assert (body["count"], body["created"], body["existing"], body["failed"]) == (6, 2, 1, 3)
    r = body["results"]
    assert r[0]["created"] is True and r[0]["ticket_no"]
    assert r[1]["index"] == 1 and "text" in r[1]["errors"]
    assert r[2]["created"] is True
    assert r[3] == {"index": 3, "created": False, "ticket_no": r[0]["ticket_no"]}
    assert "lng" in r[4]["errors"] and "non_field_errors" in r[5]["errors"]
    assert Appeal.objects.count() == 2

    again = api(people["operator"]).post("/api/v1/appeals/bulk", items, format="json").json()
    assert (again["created"], again["existing"], again["failed"]) == (0, 3, 3)
    assert Appeal.objects.count() == 2


def test_bulk_limits(people, api):
    c = api(people["operator"])
    assert c.post("/api/v1/appeals/bulk", {"text": GARBAGE}, format="json").json()["code"] == "not_a_list"
    res = c.post("/api/v1/appeals/bulk", [{"text": "x"}] * 1001, format="json")
    assert res.status_code == 400 and res.json()["code"] == "too_many" and Appeal.objects.count() == 0


# --- reading: scope, filters, order -----------------------------------------------------------------


@pytest.fixture
def spread(people):
    """One appeal in each of three grids, and one that could not be located."""
    op = people["operator"]
    return {
        "s1g1": reg(op, STREET1),
        "s1g2": reg(op, STREET1_GRID2, text=GAS),
        "s2": reg(op, STREET2),
        "unlocated": reg(op, None, address_text="某某小区"),
    }


def tickets(res):
    assert res.status_code == 200, res.json()
    return {a["ticket_no"] for a in res.json()["results"]}


def test_lists_are_scoped(spread, people, api):
    t = {k: a.ticket_no for k, a in spread.items()}
    assert tickets(api(people["operator"]).get("/api/v1/appeals")) == set(t.values())
    assert tickets(api(people["leader"]).get("/api/v1/appeals")) == {t["s1g1"], t["s1g2"], t["s2"]}
    assert tickets(api(people["other_leader"]).get("/api/v1/appeals")) == set()
    assert tickets(api(people["street1"]).get("/api/v1/appeals")) == {t["s1g1"], t["s1g2"]}
    assert tickets(api(people["street2"]).get("/api/v1/appeals")) == {t["s2"]}
    assert tickets(api(people["worker1"]).get("/api/v1/appeals")) == {t["s1g1"]}
    assert tickets(api(people["worker2"]).get("/api/v1/appeals")) == {t["s1g2"]}
    assert tickets(api(people["chengguan"]).get("/api/v1/appeals")) == {t["s1g1"]}
    assert tickets(api(people["ranqi"]).get("/api/v1/appeals")) == {t["s1g2"]}
    assert tickets(api(people["gongan"]).get("/api/v1/appeals")) == {t["s1g2"]}  # assisting


@pytest.mark.parametrize(
    "outsider,key",
    [
        ("street2", "s1g1"),
        ("worker2", "s1g1"),
        ("ranqi", "s1g1"),
        ("chengguan", "s2"),
        ("other_leader", "s1g1"),
        ("street1", "unlocated"),
        ("worker1", "unlocated"),
    ],
)
def test_detail_outside_the_jurisdiction_is_404(spread, people, api, outsider, key):
    res = api(people[outsider]).get(url(spread[key]))
    assert res.status_code == 404 and res.json()["code"] == "not_found"


def test_grid_worker_sees_what_it_reported(spread, people, api):
    mine = reg(people["operator"], STREET2, reporter=people["worker1"], channel="grid_report")
    assert api(people["worker1"]).get(url(mine)).status_code == 200
    assert mine.ticket_no in tickets(api(people["worker1"]).get("/api/v1/appeals"))
    assert api(people["worker2"]).get(url(mine)).status_code == 404


def test_list_filters(spread, people, api):
    c = api(people["hotline"])
    t = {k: a.ticket_no for k, a in spread.items()}
    assert tickets(c.get("/api/v1/appeals?state=unlocated")) == {t["unlocated"]}
    assert tickets(c.get("/api/v1/appeals?state=dispatched,unlocated")) == set(t.values())
    assert tickets(c.get("/api/v1/appeals?grid=110101002")) == {t["s2"]}
    assert tickets(c.get("/api/v1/appeals?category=010102")) == {t["s1g2"]}
    assert tickets(c.get("/api/v1/appeals?category=01")) == set(t.values())  # unlocated, yet categorised
    assert tickets(c.get("/api/v1/appeals?in_bbox=116.40,39.90,116.42,39.92")) == {t["s1g1"], t["s1g2"]}
    Appeal.objects.filter(pk=spread["s2"].pk).update(received_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert t["s2"] not in tickets(c.get("/api/v1/appeals", {"since": since}))
    assert tickets(c.get("/api/v1/appeals", {"until": since})) == {t["s2"]}
    Appeal.objects.filter(pk=spread["s1g1"].pk).update(warning_colour="orange")
    assert tickets(c.get("/api/v1/appeals?colour=orange,red")) == {t["s1g1"]}
    for bad in ("state=lost", "colour=blue", "grid=12", "in_bbox=1,2,3", "since=yesterday"):
        assert c.get(f"/api/v1/appeals?{bad}").status_code == 400, bad


def test_list_order_is_colour_then_deadline(spread, people, api):
    now = timezone.now()
    for key, colour, hours in (("s1g1", "yellow", 5), ("s1g2", "red", 9), ("s2", "yellow", 1)):
        Appeal.objects.filter(pk=spread[key].pk).update(warning_colour=colour, deadline=now + timedelta(hours=hours))
    res = api(people["hotline"]).get("/api/v1/appeals").json()["results"]
    order = [a["ticket_no"] for a in res]
    assert order == [spread[k].ticket_no for k in ("s1g2", "s2", "s1g1", "unlocated")]


def test_list_runs_a_constant_number_of_queries(people, api, django_assert_num_queries):
    op = people["operator"]
    reg(op, STREET1)
    reg(op, STREET1, text="小区门口的垃圾桶满了没人来清运，臭味很大")  # proposes the first as duplicate
    c = api(people["hotline"])
    # count, page, area names, duplicate tickets
    with django_assert_num_queries(4):
        assert c.get("/api/v1/appeals").status_code == 200
    for at in (STREET1_GRID2, STREET2, STREET1):
        reg(op, at, text=GAS)
        reg(op, at, text="楼道堆物很多，影响通行")
    with django_assert_num_queries(4):
        assert len(c.get("/api/v1/appeals").json()["results"]) == 8
    chengguan = api(people["chengguan"])
    with django_assert_num_queries(4):
        assert chengguan.get("/api/v1/appeals").status_code == 200


def test_location_queue(spread, people, api):
    res = api(people["operator"]).get("/api/v1/appeals/queue/location")
    assert tickets(res) == {spread["unlocated"].ticket_no}
    for who in ("worker1", "street1", "leader", "chengguan"):
        assert api(people[who]).get("/api/v1/appeals/queue/location").status_code == 403


# --- actions ---------------------------------------------------------------------------------------


def test_bulk_reports_wrong_types_by_index_and_keeps_the_rest(people, api):
    items = [
        {"text": GARBAGE, "lng": STREET1[0], "lat": STREET1[1]},
        {"text": 123},
        {"text": GARBAGE, "lng": False, "lat": 39.91},
        {"text": GARBAGE, "received_at": "0001-01-01T00:00:00Z"},
    ]
    res = api(people["operator"]).post("/api/v1/appeals/bulk", items, format="json")
    body = res.json()
    assert res.status_code == 200 and (body["created"], body["failed"]) == (1, 3)
    assert [sorted(r.get("errors", {})) for r in body["results"]] == [[], ["text"], ["lng"], ["received_at"]]
    assert Appeal.objects.count() == 1
    assert api(people["street1"]).post("/api/v1/appeals/bulk", items, format="json").status_code == 403


def post(client, appeal, action, body=None):
    return client.post(url(appeal, action), body or {}, format="json")


def test_the_main_path_through_the_api(people, api):
    appeal = reg(people["operator"])
    unit, centre = api(people["chengguan"]), api(people["hotline"])
    assert post(unit, appeal, "accept").json()["state"] == "accepted"
    assert post(unit, appeal, "start").json()["state"] == "in_progress"
    res = post(unit, appeal, "resolve", {"closure_type": "substantive", "note": "已清运"})
    assert res.status_code == 200 and res.json()["state"] == "resolved" and res.json()["closure_type"] == "substantive"
    res = post(centre, appeal, "close", {"note": "回访满意"})
    assert res.status_code == 200 and res.json()["state"] == "closed"
    events = [e["event"] for e in res.json()["events"]]
    assert events == ["register", "locate", "dispatch", "accept", "start", "resolve", "close"]


@pytest.mark.parametrize(
    "action,body",
    [
        ("accept", {}),
        ("start", {}),
        ("resolve", {"closure_type": "substantive", "note": "x"}),
        ("return", {"reason": "x"}),
        ("suspend", {"reason": "x", "review_at": REVIEW_AT}),
        ("arbitrate", {"uphold": True, "department": "ranqi"}),
        ("merge", {"lead": "x"}),
        ("close", {}),
        ("locate", {"lng": 116.405, "lat": 39.91}),
        ("categorise", {"category_code": "010101"}),
    ],
)
def test_outsiders_get_404_and_others_without_the_right_403(people, api, action, body):
    appeal = reg(people["operator"], STREET1, text=GAS)  # lead ranqi, assisting gongan and 甲街道
    for outsider in ("street2", "worker2", "chengguan", "other_leader"):
        res = post(api(people[outsider]), appeal, action, body)
        assert res.status_code == 404, (outsider, action)
    for no_right in ("leader", "street1", "worker1", "gongan"):
        res = post(api(people[no_right]), appeal, action, body)
        assert res.status_code == 403, (no_right, action)
    unit_action = action in ("accept", "start", "resolve", "return", "suspend")
    res = post(api(people["hotline" if unit_action else "ranqi"]), appeal, action, body)
    assert res.status_code == 403, action
    appeal.refresh_from_db()
    assert appeal.state == "dispatched" and appeal.events.count() == 3


def test_illegal_transition_is_409(people, api):
    appeal = reg(people["operator"])
    unit = api(people["chengguan"])
    res = post(unit, appeal, "resolve", {"closure_type": "substantive", "note": "已清运"})
    assert res.status_code == 409
    body = res.json()
    assert body["code"] == "illegal_transition" and body["state"] == "dispatched" and "accept" in body["allowed"]
    assert "已派单" in body["detail"] and "not allowed" in body["detail"]
    assert post(unit, appeal, "accept").status_code == 200
    assert post(unit, appeal, "accept").status_code == 409
    assert post(api(people["hotline"]), appeal, "close").status_code == 409


def test_service_refusals_are_400_with_their_code(people, api):
    appeal = reg(people["operator"])
    unit = api(people["chengguan"])
    assert post(unit, appeal, "return", {"reason": " "}).json()["code"] == "reason_required"
    post(unit, appeal, "accept")
    res = post(unit, appeal, "resolve", {"closure_type": "magic", "note": "x"})
    assert res.status_code == 400 and res.json()["code"] == "closure_type"
    assert post(unit, appeal, "resolve", {"closure_type": "partial"}).json()["code"] == "note_required"
    post(unit, appeal, "start")
    res = post(unit, appeal, "suspend", {"reason": "", "review_at": REVIEW_AT})
    assert res.status_code == 400 and res.json()["code"] == "reason_required"
    res = post(unit, appeal, "suspend", {"reason": "需要立项改造", "review_at": "2000-01-01T00:00:00+08:00"})
    assert res.status_code == 400 and "review_at" in res.json()
    res = post(unit, appeal, "suspend", {"reason": "需要立项改造", "review_at": "2999-01-01T00:00:00+08:00"})
    assert res.status_code == 400 and "review_at" in res.json()
    res = post(
        unit, appeal, "suspend", {"reason": "需要立项改造管网", "plan": "明年汛期前完成", "review_at": REVIEW_AT}
    )
    assert res.status_code == 200 and res.json()["state"] == "suspended"
    assert res.json()["long_term"]["plan"] == "明年汛期前完成"


def test_return_then_uphold_reassigns(people, api):
    appeal = reg(people["operator"])
    res = post(api(people["chengguan"]), appeal, "return", {"reason": "燃气问题不归城管"})
    assert res.status_code == 200 and res.json()["state"] == "returned"
    centre = api(people["hotline"])
    assert (
        post(api(people["operator"]), appeal, "arbitrate", {"uphold": True, "department": "ranqi"}).status_code == 403
    )
    res = post(centre, appeal, "arbitrate", {"uphold": True, "department": "nobody"})
    assert res.status_code == 400 and res.json()["code"] == "unknown_department"
    res = post(centre, appeal, "arbitrate", {"uphold": True})
    assert res.status_code == 400 and res.json()["code"] == "department_required"
    res = post(centre, appeal, "arbitrate", {"uphold": True, "department": "ranqi", "note": "改派燃气集团"})
    assert res.status_code == 200 and res.json()["state"] == "dispatched"
    assert res.json()["department"]["code"] == "ranqi"
    active = [s["department"]["code"] for s in res.json()["assignments"] if s["active"]]
    assert active == ["ranqi"]
    # The unit that returned it no longer sees it; the new one does, and may accept it.
    assert api(people["chengguan"]).get(url(appeal)).status_code == 404
    assert post(api(people["ranqi"]), appeal, "accept").json()["state"] == "accepted"


def test_return_then_refuse_keeps_the_unit(people, api):
    appeal = reg(people["operator"])
    post(api(people["chengguan"]), appeal, "return", {"reason": "不归我们"})
    res = post(api(people["hotline"]), appeal, "arbitrate", {"uphold": False, "note": "属城管职责"})
    assert res.status_code == 200 and res.json()["state"] == "dispatched"
    assert res.json()["department"]["code"] == "chengguan"
    assert post(api(people["chengguan"]), appeal, "accept").status_code == 200


def test_merge(people, api):
    op = people["operator"]
    lead = reg(op)
    dup = reg(op, text="小区门口的垃圾桶满了没人来清运，臭味很大")
    centre = api(people["hotline"])
    assert post(centre, dup, "merge", {"lead": "nope"}).json()["code"] == "lead_not_found"
    assert post(centre, dup, "merge", {"lead": dup.ticket_no}).json()["code"] == "self_merge"
    assert post(api(op), dup, "merge", {"lead": lead.ticket_no}).status_code == 403
    res = post(centre, dup, "merge", {"lead": lead.ticket_no})
    assert res.status_code == 200 and res.json()["state"] == "merged"
    assert res.json()["lead_ticket_no"] == lead.ticket_no


def test_locate_from_the_queue(people, api):
    appeal = reg(people["operator"], None, address_text="甲街道某小区")
    c = api(people["operator"])
    res = post(c, appeal, "locate", {"lng": 116.6, "lat": 39.91})
    assert res.status_code == 400 and res.json()["code"] == "outside"
    res = post(c, appeal, "locate", {"lng": 116.405, "lat": 39.91, "crs": "lng"})
    assert res.status_code == 400 and "crs" in res.json()
    assert post(api(people["leader"]), appeal, "locate", {"lng": 116.405, "lat": 39.91}).status_code == 404
    res = post(c, appeal, "locate", {"lng": 116.405, "lat": 39.91})
    assert res.status_code == 200 and res.json()["state"] == "dispatched"
    assert res.json()["grid_chain"]["grid"]["code"] == "110101001001001"
    assert post(c, appeal, "locate", {"lng": 116.405, "lat": 39.91}).status_code == 409


def test_categorise_dispatches_an_appeal_waiting_for_a_category(people, api):
    appeal = reg(people["operator"], text="请问居住证怎么办理")  # no keyword matches any category
    assert appeal.state == "located" and appeal.category is None
    c = api(people["operator"])
    assert post(c, appeal, "categorise", {"category_code": "999999"}).status_code == 400
    assert post(api(people["street1"]), appeal, "categorise", {"category_code": "010101"}).status_code == 403
    res = post(c, appeal, "categorise", {"category_code": "010104"})
    assert res.status_code == 200 and res.json()["state"] == "dispatched"
    assert res.json()["category"]["code"] == "010104" and res.json()["category_confirmed"] is True
    assert res.json()["time_limit"] == "15d"
    assert [e["event"] for e in res.json()["events"]] == ["register", "locate", "categorise", "dispatch"]


def deadline_of(res):
    return datetime.fromisoformat(res.json()["deadline"])


def test_after_dispatch_only_the_centre_recategorises_and_that_reroutes(people, api):
    received = timezone.now() - timedelta(hours=3)
    appeal = reg(people["operator"], received_at=received)  # garbage: 城管委, 7 working days
    assert appeal.department.code == "chengguan" and appeal.time_limit == "7d"
    res = post(api(people["operator2"]), appeal, "categorise", {"category_code": "010102"})
    assert res.status_code == 403 and "热线中心" in res.json()["detail"]  # not the one who took the call
    for outsider in ("street2", "worker2", "ranqi"):
        assert post(api(people[outsider]), appeal, "categorise", {"category_code": "010102"}).status_code == 404
    appeal.refresh_from_db()
    assert appeal.category.code == "010101" and appeal.events.count() == 3

    # Found to be a gas leak: to 燃气集团, due 2 hours after the call, so red already.
    res = post(api(people["hotline"]), appeal, "categorise", {"category_code": "010102"})
    assert res.status_code == 200, res.json()
    body = res.json()
    assert body["state"] == "dispatched" and body["department"]["code"] == "ranqi" and body["time_limit"] == "2h"
    assert deadline_of(res) == received + timedelta(hours=2)
    assert body["warning_colour"] == "red" and body["route"]["lead"] == "ranqi"
    assert [s["department"]["code"] for s in body["assignments"] if s["active"]] == ["ranqi"]
    assert [e["event"] for e in body["events"]][3:] == ["recategorise", "colour_red"]
    recat = appeal.events.get(event="recategorise")
    assert recat.department.code == "ranqi" and recat.old_state == "dispatched"
    assert recat.data["old"] == "010101" and recat.data["new"] == "010102"
    audit = AuditEvent.objects.get(action="appeal.recategorise", object_id=str(appeal.pk))
    assert audit.data["lead"] == "ranqi" and audit_verify() == []
    # The old unit no longer holds it; the new one signs for it.
    assert api(people["chengguan"]).get(url(appeal)).status_code == 404
    assert post(api(people["ranqi"]), appeal, "accept").json()["state"] == "accepted"
    # The category it has is confirmed, and nothing moves.
    res = post(api(people["hotline"]), appeal, "categorise", {"category_code": "010102"})
    assert (
        res.status_code == 200
        and res.json()["state"] == "accepted"
        and res.json()["events"][-1]["event"] == "categorise"
    )
    assert res.json()["deadline"] == body["deadline"] and res.json()["department"]["code"] == "ranqi"


def test_the_operator_who_took_the_call_corrects_it_until_a_unit_acts(people, api):
    appeal = reg(people["operator"])  # guessed: garbage, 城管委
    op = api(people["operator"])
    res = post(op, appeal, "categorise", {"category_code": "010102"})
    assert res.status_code == 200 and res.json()["department"]["code"] == "ranqi"
    assert [e["event"] for e in res.json()["events"]] == ["register", "locate", "dispatch", "recategorise"]
    assert post(op, appeal, "categorise", {"category_code": "010101"}).json()["department"]["code"] == "chengguan"
    post(api(people["chengguan"]), appeal, "accept")
    res = post(op, appeal, "categorise", {"category_code": "010104"})
    assert res.status_code == 403 and "热线中心" in res.json()["detail"]
    assert post(api(people["hotline"]), appeal, "categorise", {"category_code": "010104"}).status_code == 200


def test_recategorising_work_in_progress_sends_it_back_to_be_signed(people, api):
    appeal = reg(people["operator"])
    unit = api(people["chengguan"])
    post(unit, appeal, "accept")
    post(unit, appeal, "start")
    res = post(api(people["hotline"]), appeal, "categorise", {"category_code": "010104"})  # noise: 城管委 too
    assert res.status_code == 200 and res.json()["state"] == "dispatched" and res.json()["time_limit"] == "15d"
    assert res.json()["department"]["code"] == "chengguan" and deadline_of(res) > appeal.deadline
    assert post(unit, appeal, "accept").json()["state"] == "accepted"


def test_suspended_or_resolved_appeals_keep_their_category(people, api):
    appeal = reg(people["operator"])
    unit, centre = api(people["chengguan"]), api(people["hotline"])
    post(unit, appeal, "accept")
    post(unit, appeal, "start")
    post(unit, appeal, "suspend", {"reason": "需要立项改造", "review_at": REVIEW_AT})
    res = post(centre, appeal, "categorise", {"category_code": "010104"})
    assert res.status_code == 409 and res.json()["state"] == "suspended", res.json()
    post(unit, appeal, "resolve", {"closure_type": "substantive", "note": "已清运"})
    res = post(centre, appeal, "categorise", {"category_code": "010104"})
    assert res.status_code == 409 and res.json()["code"] == "illegal_transition"
    appeal.refresh_from_db()
    assert appeal.category.code == "010101" and not appeal.events.filter(event="recategorise").exists()
