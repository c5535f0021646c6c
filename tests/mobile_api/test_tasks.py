"""My tasks on the phone: scoping, order, detail, the field actions and their order, the geofence,
completion with evidence, outsiders on every endpoint, token auth, real-time events, schema."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from gridgov.appeals import field_tasks
from gridgov.appeals.models import Appeal, AppealEvent
from gridgov.areas import coords
from gridgov.audit.models import AuditEvent
from gridgov.audit.services import audit_verify
from gridgov.realtime import broadcast
from gridgov.realtime.models import OutboxEvent

from . import fieldwork
from .fieldwork import CLUTTER, REPORTS, STREET1, TASKS, photo_bytes, register, task_url, token_client, upload

# The shared fixtures (fieldwork.py), bound here so that pytest finds them.
_field_settings, people, appeals = fieldwork._field_settings, fieldwork.people, fieldwork.appeals

pytestmark = pytest.mark.django_db
NEAR = (116.405, 39.9105)  # ~55 m north of STREET1
FAR = (116.41, 39.91)  # ~427 m east of STREET1


def tickets(response):
    assert response.status_code == 200, response.content
    return [t["ticket_no"] for t in response.json()["results"]]


def accept(client, appeal):
    r = client.post(task_url(appeal, "accept"), {}, format="json")
    assert r.status_code == 200, r.content
    return r.json()


def check_in(client, appeal, at=NEAR, crs="wgs84", **extra):
    return client.post(task_url(appeal, "check-in"), {"lng": at[0], "lat": at[1], "crs": crs, **extra}, format="json")


def add_photo(client, appeal, purpose="after", **kw):
    return client.post(
        task_url(appeal, "evidence"), {"file": upload(photo_bytes(**kw)), "purpose": purpose}, format="multipart"
    )


# --- auth and scope ---------------------------------------------------------------------------


def test_token_auth_is_required(appeals, people):
    anon = APIClient()
    a = appeals["A"]
    assert anon.get(TASKS).status_code == 401
    assert anon.get(task_url(a)).status_code == 401
    for action in ("accept", "return", "check-in", "evidence", "complete"):
        assert anon.post(task_url(a, action), {}, format="json").status_code == 401, action
    assert anon.post(REPORTS, {}, format="multipart").status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.get(TASKS).status_code == 401
    assert tickets(token_client(people["worker1"]).get(TASKS)) == [a.ticket_no]


def test_a_grid_worker_never_sees_another_grids_task(appeals, people):
    a, b, c, d = (appeals[k] for k in "ABCD")
    w1, w2, w3 = (token_client(people[k]) for k in ("worker1", "worker2", "worker3"))
    assert tickets(w1.get(TASKS)) == [a.ticket_no]
    assert tickets(w2.get(TASKS)) == [b.ticket_no]
    assert tickets(w3.get(TASKS)) == [d.ticket_no]  # garbage in street 2 is its street office's: a task
    assert w1.get(task_url(b)).status_code == 404 and w2.get(task_url(a)).status_code == 404
    # 城管委 leads C in worker1's grid: worker1 may read the appeal, but it is not worker1's task
    assert w1.get(f"/api/v1/appeals/{c.ticket_no}").status_code == 200
    assert w1.get(task_url(c)).status_code == 404


def test_a_department_never_sees_another_departments_task(appeals, people):
    chengguan, ranqi = token_client(people["chengguan"]), token_client(people["ranqi"])
    assert tickets(chengguan.get(TASKS)) == [appeals["C"].ticket_no]
    assert tickets(ranqi.get(TASKS)) == [appeals["E"].ticket_no]
    assert chengguan.get(task_url(appeals["E"])).status_code == 404
    assert ranqi.get(task_url(appeals["C"])).status_code == 404
    # 甲街道's office leads A and B (both in its street) and assists on E (the gas risk)
    assert sorted(tickets(token_client(people["jiedao1"]).get(TASKS))) == sorted(appeals[k].ticket_no for k in "ABE")


@pytest.mark.parametrize("who", ["leader", "operator", "street1"])
def test_tasks_are_for_field_staff(appeals, people, who):
    c = token_client(people[who])
    assert c.get(TASKS).status_code == 403
    assert c.get(task_url(appeals["A"])).status_code == 404
    assert c.post(task_url(appeals["A"], "accept"), {}, format="json").status_code == 404


def test_list_order_filters_and_queries(appeals, people, django_assert_num_queries):
    worker = people["worker1"]
    worker.grid_codes = ["110101001001001", "110101001001002"]
    worker.save()
    a, b = appeals["A"], appeals["B"]
    c2 = register(people["operator"], CLUTTER, (116.416, 39.911), category_code="010103")  # grid 2, due first
    now = timezone.now()
    Appeal.objects.filter(pk=a.pk).update(warning_colour="none", deadline=now + timedelta(days=1))
    Appeal.objects.filter(pk=b.pk).update(warning_colour="red", deadline=now + timedelta(days=3))
    Appeal.objects.filter(pk=c2.pk).update(warning_colour="none", deadline=now + timedelta(hours=2))
    c = token_client(worker)
    with django_assert_num_queries(4):  # knox's two (token, expiry sweep), count, page
        r = c.get(TASKS)
    assert tickets(r) == [b.ticket_no, c2.ticket_no, a.ticket_no]  # red first, then the nearest deadline
    assert [t.ticket_no for t in field_tasks.task_list(worker)] == tickets(r)
    # in_bbox (WGS-84): grid 1 only; in GCJ-02 the same place is ~500 m off, and converted back
    assert tickets(c.get(TASKS, {"in_bbox": "116.40,39.90,116.41,39.92"})) == [a.ticket_no]
    gx, gy = coords.wgs84_to_gcj02([116.401, 116.409], [39.905, 39.915])
    box = f"{gx[0]:.6f},{gy[0]:.6f},{gx[1]:.6f},{gy[1]:.6f}"
    assert tickets(c.get(TASKS, {"in_bbox": box, "crs": "gcj02"})) == [a.ticket_no]
    assert tickets(c.get(TASKS, {"state": "resolved,closed"})) == []
    assert c.get(TASKS, {"state": "bogus"}).status_code == 400
    assert c.get(TASKS, {"in_bbox": "1,2,3"}).status_code == 400
    item = c.get(TASKS).json()["results"][0]
    assert item["position"] == {"wgs84": [116.415, 39.91]} and item["personal_data_masked"] is True
    gcj = c.get(TASKS, {"crs": "gcj02"}).json()["results"][0]["position"]
    assert set(gcj) == {"wgs84", "gcj02"} and gcj["gcj02"] != gcj["wgs84"]


def test_task_detail(appeals, people):
    a = appeals["A"]
    r = token_client(people["worker1"]).get(task_url(a), {"crs": "gcj02"})
    assert r.status_code == 200, r.content
    t = r.json()
    gx, gy = coords.wgs84_to_gcj02(*STREET1)
    assert t["location"]["position"]["wgs84"] == list(STREET1)
    assert t["location"]["position"]["gcj02"] == [round(float(gx), 7), round(float(gy), 7)]
    assert t["location"]["grid"] == {"code": "110101001001001", "name": "甲一第1网格"}
    # a grid worker works from the masked appeal; the lead unit sees the appellant
    assert t["appellant_name"] == "张**" and t["appellant_phone"] == "138****5678" and t["personal_data_masked"]
    assert [h["event"] for h in t["history"]] == ["register", "locate", "dispatch"]
    assert t["department"]["code"] == "jiedao-110101001" and t["actions"] == ["accept", "return"]
    assert t["progress"] == {
        "checked_in": False,
        "last_check_in": None,
        "required_evidence": ["after"],
        "missing_evidence": ["after"],
    }
    assert t["geofence_m"] == 200.0 and t["evidence"] == [] and t["check_ins"] == []
    lead = token_client(people["jiedao1"]).get(task_url(a)).json()
    assert lead["appellant_phone"] == "13812345678" and lead["personal_data_masked"] is False
    assert token_client(people["worker1"]).get(task_url(a), {"crs": "utm"}).status_code == 400
    assert token_client(people["worker1"]).get(task_url("20990101999")).status_code == 404


# --- the actions ------------------------------------------------------------------------------


def test_field_work_from_accept_to_completion(appeals, people):
    a, w = appeals["A"], token_client(people["worker1"])
    assert accept(w, a)["state"] == "accepted"
    r = check_in(w, a, accuracy_m=8)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["state"] == "in_progress"  # the first check-in starts the work
    ci = body["check_in"]
    assert 50 < ci["distance_m"] < 60 and ci["inside"] is True and ci["flagged"] is False
    assert ci["geofence_m"] == 200.0 and ci["reference"] == "position" and ci["accuracy_m"] == 8
    ev = AppealEvent.objects.get(appeal=a, event="check_in")
    assert ev.old_state == ev.new_state == "accepted" and ev.actor == people["worker1"]
    assert ev.data["wgs84"] == list(NEAR) and ev.data["inside"] is True
    assert AuditEvent.objects.filter(action="appeal.check_in", object_id=str(a.pk)).exists()
    assert body["progress"]["checked_in"] is True and body["actions"] == ["check_in", "evidence", "complete"]

    assert add_photo(w, a, purpose="after").status_code == 201
    r = w.post(task_url(a, "complete"), {"note": "已清理楼道堆物"}, format="json")
    assert r.status_code == 200, r.content
    done = r.json()
    assert done["state"] == "resolved" and done["closure_type"] == "substantive" and done["actions"] == []
    assert [h["event"] for h in done["history"]] == [
        "register",
        "locate",
        "dispatch",
        "accept",
        "check_in",
        "start",
        "evidence",
        "resolve",
    ]
    assert audit_verify() == []


def test_task_detail_queries_do_not_grow_with_history(appeals, people, django_assert_num_queries):
    a, w = appeals["A"], token_client(people["worker1"])
    accept(w, a)
    check_in(w, a)
    for seed in range(3):
        add_photo(w, a, purpose="during", seed=seed)
    with django_assert_num_queries(5):  # knox's two, the task, its history, its evidence
        r = w.get(task_url(a), {"crs": "gcj02"})
    assert len(r.json()["evidence"]) == 3 and len(r.json()["history"]) == 9


def test_a_department_works_its_own_task(appeals, people):
    c, staff = appeals["C"], token_client(people["chengguan"])
    accept(staff, c)
    assert check_in(staff, c).status_code == 200
    assert add_photo(staff, c).status_code == 201
    r = staff.post(task_url(c, "complete"), {"note": "已清运", "closure_type": "partial"}, format="json")
    assert r.status_code == 200 and r.json()["closure_type"] == "partial"
    assert (
        staff.post(task_url(c, "complete"), {"note": "x", "closure_type": "procedural"}, format="json").status_code
        == 400
    )


def test_out_of_order_actions_get_a_clear_409(appeals, people):
    a, w = appeals["A"], token_client(people["worker1"])
    r = check_in(w, a)
    assert r.status_code == 409
    assert r.json()["code"] == "out_of_order" and r.json()["required_first"] == "accept"
    assert "签收" in r.json()["detail"] and "accept the task before" in r.json()["detail"]
    r = add_photo(w, a)
    assert r.status_code == 409 and r.json()["required_first"] == "accept"
    r = w.post(task_url(a, "complete"), {"note": "done"}, format="json")
    assert r.status_code == 409 and r.json()["required_first"] == "accept"
    accept(w, a)
    r = w.post(task_url(a, "complete"), {"note": "done"}, format="json")
    assert r.status_code == 409 and r.json()["required_first"] == "check_in" and r.json()["state"] == "accepted"
    assert "现场签到" in r.json()["detail"]
    again = w.post(task_url(a, "accept"), {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"
    check_in(w, a)
    add_photo(w, a)
    w.post(task_url(a, "complete"), {"note": "done"}, format="json")
    late = check_in(w, a)
    assert (
        late.status_code == 409 and late.json()["code"] == "illegal_transition" and late.json()["state"] == "resolved"
    )
    assert Appeal.objects.get(pk=a.pk).state == "resolved"


def test_bad_input_is_a_400_before_the_state_is_looked_at(appeals, people):
    a, w = appeals["A"], token_client(people["worker1"])
    assert w.post(task_url(a, "check-in"), {"lng": 500, "lat": 39.9}, format="json").status_code == 400
    assert w.post(task_url(a, "check-in"), {"lng": 116.4, "lat": 39.9, "crs": "utm"}, format="json").status_code == 400
    r = w.post(task_url(a, "complete"), {"note": ""}, format="json")
    assert r.status_code == 400 and "note" in r.json()
    r = w.post(task_url(a, "evidence"), {"purpose": "selfie", "file": upload(photo_bytes())}, format="multipart")
    assert r.status_code == 400 and "purpose" in r.json()


def test_complete_requires_the_evidence_the_category_needs(appeals, people, settings):
    a, w = appeals["A"], token_client(people["worker1"])
    accept(w, a)
    check_in(w, a)
    r = w.post(task_url(a, "complete"), {"note": "done"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "evidence_missing"
    assert r.json()["missing"] == ["after"] and "处置后" in r.json()["detail"]
    settings.CATEGORY_REQUIRED_EVIDENCE = {"0101": ("before", "after")}  # a prefix: every 0101xx category
    assert add_photo(w, a, purpose="after").status_code == 201
    r = w.post(task_url(a, "complete"), {"note": "done"}, format="json")
    assert r.status_code == 400 and r.json()["missing"] == ["before"] and r.json()["required"] == ["before", "after"]
    assert w.get(task_url(a)).json()["progress"]["missing_evidence"] == ["before"]
    assert add_photo(w, a, purpose="during", seed=1).status_code == 201  # not what is missing
    assert w.post(task_url(a, "complete"), {"note": "done"}, format="json").status_code == 400
    assert add_photo(w, a, purpose="before", seed=2).status_code == 201
    assert w.post(task_url(a, "complete"), {"note": "done"}, format="json").status_code == 200


def test_a_category_may_need_no_photo(appeals, people, settings):
    settings.CATEGORY_REQUIRED_EVIDENCE = {"010103": ()}
    a, w = appeals["A"], token_client(people["worker1"])
    accept(w, a)
    check_in(w, a)
    assert w.post(task_url(a, "complete"), {"note": "已劝离"}, format="json").status_code == 200


def test_return_needs_a_reason(appeals, people):
    a, w = appeals["A"], token_client(people["worker1"])
    r = w.post(task_url(a, "return"), {"reason": " "}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "reason_required"
    r = w.post(task_url(a, "return"), {"reason": "不属于本街道"}, format="json")
    assert r.status_code == 200 and r.json()["state"] == "returned"


# --- geofence ---------------------------------------------------------------------------------


def test_check_in_outside_the_geofence_is_refused_with_the_distance(appeals, people):
    a, w = appeals["A"], token_client(people["worker1"])
    accept(w, a)
    r = check_in(w, a, at=FAR)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "outside_geofence" and 420 < body["distance_m"] < 435 and body["geofence_m"] == 200.0
    assert "米" in body["detail"] and "geofence" in body["detail"]
    assert Appeal.objects.get(pk=a.pk).state == "accepted"
    assert not AppealEvent.objects.filter(appeal=a, event="check_in").exists()
    refused = AppealEvent.objects.get(appeal=a, event="check_in_refused")  # the attempt is kept
    assert refused.data["inside"] is False and refused.data["distance_m"] == body["distance_m"]
    assert w.post(task_url(a, "complete"), {"note": "x"}, format="json").json()["required_first"] == "check_in"


@pytest.mark.parametrize(
    "extra,field",
    [
        ({"lng": True}, "lng"),
        ({"lat": "39.9105"}, "lat"),
        ({"accuracy_m": "8"}, "accuracy_m"),
        ({"crs": 4326}, "crs"),
        ({"client_at": "0001-01-01T00:00:00Z"}, "client_at"),
        ({"client_at": "9999-01-01T00:00:00+08:00"}, "client_at"),
    ],
)
def test_check_in_takes_json_types_and_sane_times_only(appeals, people, extra, field):
    a, w = appeals["A"], token_client(people["worker1"])
    accept(w, a)
    body = {"lng": NEAR[0], "lat": NEAR[1], **extra}
    r = w.post(task_url(a, "check-in"), body, format="json")
    assert r.status_code == 400 and field in r.json(), r.json()
    assert not AppealEvent.objects.filter(appeal=a, event__startswith="check_in").exists()
    assert token_client(people["worker2"]).post(task_url(a, "check-in"), body, format="json").status_code == 404
    # A form is text: the same check-in sent as a multipart form is read as numbers.
    r = w.post(task_url(a, "check-in"), {"lng": str(NEAR[0]), "lat": str(NEAR[1])}, format="multipart")
    assert r.status_code == 200, r.json()


def test_check_in_outside_the_geofence_is_flagged_in_flag_mode(appeals, people, settings):
    settings.GEOFENCE_MODE = "flag"
    a, w = appeals["A"], token_client(people["worker1"])
    accept(w, a)
    r = check_in(w, a, at=FAR)
    assert r.status_code == 200
    ci = r.json()["check_in"]
    assert ci["inside"] is False and ci["flagged"] is True and 420 < ci["distance_m"] < 435
    assert r.json()["state"] == "in_progress"
    assert AppealEvent.objects.get(appeal=a, event="check_in").data["flagged"] is True


def test_geofence_per_category(appeals, people, settings):
    settings.CATEGORY_GEOFENCE_METRES = {"010103": 30.0, "01": 1000.0}  # the longest prefix wins
    a, w = appeals["A"], token_client(people["worker1"])
    accept(w, a)
    r = check_in(w, a, at=NEAR)
    assert r.status_code == 400 and r.json()["geofence_m"] == 30.0
    c, staff = appeals["C"], token_client(people["chengguan"])  # 010101: the "01" prefix, 1 km
    accept(staff, c)
    assert check_in(staff, c, at=FAR).status_code == 200


def test_check_in_in_gcj02_is_converted(appeals, people):
    a, w = appeals["A"], token_client(people["worker1"])
    accept(w, a)
    gx, gy = coords.wgs84_to_gcj02(*STREET1)
    gcj = (float(gx), float(gy))
    raw = check_in(w, a, at=gcj, crs="wgs84")  # the AMap numbers taken for GPS: hundreds of metres off
    assert raw.status_code == 400 and raw.json()["distance_m"] > 200
    r = check_in(w, a, at=gcj, crs="gcj02")
    assert r.status_code == 200 and r.json()["check_in"]["distance_m"] < 1
    assert r.json()["check_in"]["crs"] == "gcj02"


# --- outsiders --------------------------------------------------------------------------------


def test_outsiders_on_every_endpoint(appeals, people):
    a, e = appeals["A"], appeals["E"]
    for who in ("worker2", "worker3", "chengguan", "ranqi"):  # another grid, another street, other units
        c = token_client(people[who])
        assert c.get(task_url(a)).status_code == 404, who
        for action, body in (
            ("accept", {}),
            ("return", {"reason": "x"}),
            ("check-in", {"lng": 116.405, "lat": 39.91}),
            ("complete", {"note": "x"}),
        ):
            assert c.post(task_url(a, action), body, format="json").status_code == 404, (who, action)
        assert (
            c.post(
                task_url(a, "evidence"), {"file": upload(photo_bytes()), "purpose": "after"}, format="multipart"
            ).status_code
            == 404
        )
    # an assisting unit sees the task but may not act on it (the lead does)
    police = token_client(people["gongan"])
    assert police.get(task_url(e)).status_code == 200 and police.get(task_url(e)).json()["actions"] == []
    for action in ("accept", "return", "check-in", "complete"):
        assert (
            police.post(
                task_url(e, action), {"lng": 116.405, "lat": 39.91, "reason": "x", "note": "x"}, format="json"
            ).status_code
            == 403
        ), action
    assert (
        police.post(
            task_url(e, "evidence"), {"file": upload(photo_bytes()), "purpose": "after"}, format="multipart"
        ).status_code
        == 403
    )
    assert Appeal.objects.get(pk=a.pk).state == "dispatched" and Appeal.objects.get(pk=e.pk).state == "dispatched"
    assert not AppealEvent.objects.filter(event__in=["check_in", "evidence", "accept"]).exists()


# --- real time --------------------------------------------------------------------------------


def test_task_changes_publish_realtime_events_after_commit(people, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(broadcast, "send_messages", sent.extend)
    # Registered inside a capture: its after-commit batch runs here, so the next change starts
    # a batch of its own (in a test everything is one transaction).
    with django_capture_on_commit_callbacks(execute=True):
        a = register(people["operator"], CLUTTER, STREET1, category_code="010103")
    w = token_client(people["worker1"])
    sent.clear()
    before = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with django_capture_on_commit_callbacks(execute=True):
        accept(w, a)
        assert sent == []  # nothing leaves before the commit
    rows = list(OutboxEvent.objects.filter(id__gt=before, payload__ticket_no=a.ticket_no))
    groups = {r.group for r in rows if r.payload["event"] == "accept"}
    jiedao = people["jiedao1"].department_id
    assert {f"department.{jiedao}", "street.110101001", "city", "grid.110101001001001"} <= groups
    assert all(r.type == "appeal.changed" for r in rows)
    assert {m["event"]["id"] for _, m in sent} == {r.id for r in rows}

    before = max(r.id for r in rows)
    with django_capture_on_commit_callbacks(execute=True):
        check_in(w, a)
    events = {(r.group, r.payload["event"]) for r in OutboxEvent.objects.filter(id__gt=before)}
    assert ("grid.110101001001001", "start") in events and ("city", "start") in events
    assert (f"department.{jiedao}", "start") in events
    before = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first()
    with django_capture_on_commit_callbacks(execute=True):
        add_photo(w, a)
    events = {(r.group, r.payload["event"]) for r in OutboxEvent.objects.filter(id__gt=before)}
    assert ("grid.110101001001001", "evidence") in events and (f"department.{jiedao}", "evidence") in events


def test_a_refused_action_publishes_nothing(appeals, people, django_capture_on_commit_callbacks):
    a, w = appeals["A"], token_client(people["worker1"])
    before = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first()
    with django_capture_on_commit_callbacks(execute=True):
        assert check_in(w, a).status_code == 409
    assert not OutboxEvent.objects.filter(id__gt=before).exists()


# --- schema -----------------------------------------------------------------------------------


def test_the_schema_documents_the_mobile_endpoints(people):
    r = token_client(people["worker1"]).get("/api/schema/", {"format": "json"})
    assert r.status_code == 200
    schema = r.json()
    paths = schema["paths"]
    for path in (
        "/api/mobile/v1/tasks",
        "/api/mobile/v1/tasks/{ticket_no}",
        "/api/mobile/v1/reports",
        *(f"/api/mobile/v1/tasks/{{ticket_no}}/{a}" for a in ("accept", "return", "check-in", "evidence", "complete")),
    ):
        assert path in paths, path
    post = paths["/api/mobile/v1/tasks/{ticket_no}/evidence"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in post["parameters"])
    assert {"200", "201", "400", "404", "409", "422"} <= set(post["responses"])
    report = schema["components"]["schemas"]["GridReportInput"]["properties"]
    assert report["photos"]["items"]["format"] == "binary" and "fixed_on_site" in report
    listing = {p["name"] for p in paths["/api/mobile/v1/tasks"]["get"]["parameters"]}
    assert {"state", "in_bbox", "crs", "page"} <= listing
