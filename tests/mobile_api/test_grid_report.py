"""网格上报 / 随手拍: a grid worker's report goes through the intake pipeline; fixed on the spot
(自处置) it is closed at once with its evidence; a replayed report never makes a twin."""

import uuid

import pytest
from django.utils import timezone

from gridgov.appeals.models import Appeal, AppealEvent, Attachment
from gridgov.areas import coords
from gridgov.audit.services import audit_verify
from gridgov.realtime import broadcast
from gridgov.realtime.models import OutboxEvent

from . import fieldwork
from .fieldwork import GARBAGE, REPORTS, STREET1, mp4_bytes, photo_bytes, task_url, token_client, upload

_field_settings, people = fieldwork._field_settings, fieldwork.people
pytestmark = pytest.mark.django_db
NEAR_REPORT = (116.4051, 39.9101)


def report(client, text=GARBAGE, at=STREET1, photos=None, after=None, key=None, **data):
    body = {"text": text, "lng": at[0], "lat": at[1], **data}
    if photos is None and after is None:
        photos = [upload(photo_bytes(taken_at=timezone.now(), gps=NEAR_REPORT))]
    body["photos"] = photos or []
    body["after_photos"] = after or []
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(REPORTS, body, format="multipart", **headers)


def test_a_report_goes_through_the_intake_pipeline(people):
    worker = people["worker1"]
    r = report(token_client(worker), address_text="甲一社区3号楼东侧")
    assert r.status_code == 201, r.content
    t = r.json()
    assert t["created"] is True and t["self_handled"] is None
    appeal = Appeal.objects.get(ticket_no=t["ticket_no"])
    assert appeal.channel == "grid_report" and appeal.reporter == worker
    assert appeal.grid_code == "110101001001001" and appeal.category.code == "010101"
    assert appeal.state == "dispatched" and appeal.department.code == "chengguan"  # routed like any appeal
    assert appeal.location["method"] == "position" and appeal.route["lead"] == "chengguan"
    assert [e.event for e in appeal.events.order_by("at", "pk")] == ["register", "locate", "dispatch", "evidence"]
    att = Attachment.objects.get(appeal=appeal)
    assert att.purpose == "before" and att.uploaded_by == worker and att.meta["thumbnail"]
    cmp = att.meta["compare"]
    assert cmp["reference"]["type"] == "report" and cmp["flags"] == [] and cmp["distance_to_appeal_m"] < 20
    # the reporter follows it as a task; the department that got it works it
    assert t["ticket_no"] in [x["ticket_no"] for x in token_client(worker).get(fieldwork.TASKS).json()["results"]]
    staff = token_client(people["chengguan"]).get(task_url(t["ticket_no"]))
    assert staff.status_code == 200 and staff.json()["actions"] == ["accept", "return"]
    # another grid's worker does not see it
    assert token_client(people["worker2"]).get(task_url(t["ticket_no"])).status_code == 404
    assert audit_verify() == []


def test_a_report_in_gcj02_lands_in_the_right_grid(people):
    gx, gy = coords.wgs84_to_gcj02(*STREET1)
    r = report(token_client(people["worker1"]), at=(float(gx), float(gy)), crs="gcj02")
    appeal = Appeal.objects.get(ticket_no=r.json()["ticket_no"])
    assert appeal.grid_code == "110101001001001" and appeal.position_input["crs"] == "gcj02"
    assert abs(appeal.position.x - STREET1[0]) < 1e-6 and abs(appeal.position.y - STREET1[1]) < 1e-6


def test_fixed_on_site_closes_at_once_with_its_evidence(people):
    worker = people["worker1"]
    before = upload(photo_bytes(seed=1, taken_at=timezone.now(), gps=NEAR_REPORT), "before.jpg")
    after = upload(photo_bytes(seed=2, taken_at=timezone.now(), gps=NEAR_REPORT), "after.jpg")
    r = report(token_client(worker), photos=[before], after=[after], fixed_on_site="true", note="已将垃圾清运干净")
    assert r.status_code == 201, r.content
    t = r.json()
    assert t["self_handled"] == {"closed": True, "state": "closed", "closure_type": "substantive"}
    appeal = Appeal.objects.get(ticket_no=t["ticket_no"])
    assert appeal.state == "closed" and appeal.closure_type == "substantive"
    assert appeal.route["self_handled"]["by"] == worker.username
    history = list(appeal.events.order_by("at", "pk"))
    assert [e.event for e in history] == ["register", "locate", "dispatch", "evidence", "accept", "resolve", "close"]
    assert all(e.actor == worker for e in history)
    assert history[4].data == {"self_handled": True} and history[5].note == "已将垃圾清运干净"
    assert sorted(Attachment.objects.filter(appeal=appeal).values_list("purpose", flat=True)) == ["after", "before"]
    assert t["state"] == "closed" and t["actions"] == []
    assert audit_verify() == []


def test_fixed_on_site_needs_the_evidence_the_category_requires(people, settings):
    w = token_client(people["worker1"])
    r = report(w, fixed_on_site="true")  # only a "before" photo
    assert r.status_code == 400 and r.json()["code"] == "evidence_missing" and r.json()["missing"] == ["after"]
    assert not Appeal.objects.exists() and not Attachment.objects.exists()  # nothing kept: the phone resends
    settings.CATEGORY_REQUIRED_EVIDENCE = {"010101": ("before", "after")}
    r = report(w, photos=[], after=[upload(photo_bytes(seed=5))], fixed_on_site="true")
    assert r.status_code == 400 and r.json()["missing"] == ["before"]
    assert not Appeal.objects.exists()


def test_fixed_on_site_without_a_category_goes_to_the_locality_first(people):
    r = report(
        token_client(people["worker1"]),
        text="这里有个问题，已经现场处理好了",
        photos=[],
        after=[upload(photo_bytes(seed=6))],
        fixed_on_site="true",
    )
    assert r.status_code == 201, r.content
    appeal = Appeal.objects.get(ticket_no=r.json()["ticket_no"])
    assert appeal.category is None and appeal.state == "closed"
    assert appeal.department.code == "jiedao-110101001"  # 属地兜底: the street office, as first receiver
    assert appeal.assignments.get().role == "first_receiver"
    # located but not categorised, it waited for dispatch until the worker's closing walk
    assert [e.event for e in appeal.events.order_by("at", "pk")] == [
        "register",
        "locate",
        "evidence",
        "dispatch",
        "accept",
        "resolve",
        "close",
    ]


def test_fixed_on_site_outside_every_grid_stays_in_the_location_queue(people):
    r = report(
        token_client(people["worker1"]),
        at=(116.50, 39.95),
        photos=[],
        after=[upload(photo_bytes(seed=7))],
        fixed_on_site="true",
    )
    assert r.status_code == 201, r.content
    t = r.json()
    assert t["self_handled"]["closed"] is False and t["self_handled"]["state"] == "unlocated"
    appeal = Appeal.objects.get(ticket_no=t["ticket_no"])
    assert appeal.state == "unlocated" and appeal.reporter == people["worker1"]
    assert Attachment.objects.filter(appeal=appeal).count() == 1


def test_a_report_replayed_never_makes_a_twin(people):
    w = token_client(people["worker1"])
    content = photo_bytes(seed=8)
    key = str(uuid.uuid4())
    first = report(w, photos=[upload(content)], key=key)
    again = report(w, photos=[upload(content, "renamed.jpg")], key=key)
    assert first.status_code == again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    assert Appeal.objects.count() == 1 and Attachment.objects.count() == 1
    # a client_id in the form instead of the header
    cid = str(uuid.uuid4())
    one = report(w, photos=[upload(content)], client_id=cid)
    two = report(w, photos=[upload(content)], client_id=cid)
    assert one.json()["ticket_no"] == two.json()["ticket_no"] and Appeal.objects.count() == 2
    # the key is also the report's external id: even with the stored answer gone, no twin
    from gridgov.idempotency.models import IdempotencyRecord

    IdempotencyRecord.objects.all().delete()
    three = report(w, photos=[upload(content)], key=key)
    assert three.status_code == 200 and three.json()["created"] is False
    assert three.json()["ticket_no"] == first.json()["ticket_no"] and Appeal.objects.count() == 2
    appeal = Appeal.objects.get(ticket_no=first.json()["ticket_no"])
    assert appeal.source_system == "mobile" and appeal.external_id == f"u{people['worker1'].pk}-{key}"


def test_the_same_photo_twice_in_one_report_is_stored_once(people):
    content = photo_bytes(seed=9)
    r = report(token_client(people["worker1"]), photos=[upload(content, "a.jpg"), upload(content, "b.jpg")])
    assert r.status_code == 201 and Attachment.objects.count() == 1


@pytest.mark.parametrize("who", ["chengguan", "street1", "leader", "operator"])
def test_only_grid_workers_report(people, who):
    r = report(token_client(people[who]))
    assert r.status_code == 403 and not Appeal.objects.exists()


def test_bad_reports_are_refused(people):
    w = token_client(people["worker1"])
    r = report(w, photos=[], after=[])
    assert r.status_code == 400 and "photos" in r.json()
    r = report(w, photos=[upload(mp4_bytes(), "clip.mp4", "video/mp4")])
    assert r.status_code == 400 and r.json()["code"] == "photos_only"
    r = report(w, photos=[upload(b"not an image", "x.jpg")])
    assert r.status_code == 400 and r.json()["code"] == "file_type"
    r = report(w, category_code="999999")
    assert r.status_code == 400 and "category_code" in r.json()
    r = report(w, text="")
    assert r.status_code == 400 and "text" in r.json()
    assert not Appeal.objects.exists()


def test_a_report_is_announced_to_the_grid_and_the_reporter(people, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(broadcast, "send_messages", sent.extend)
    worker = people["worker1"]
    with django_capture_on_commit_callbacks(execute=True):
        r = report(token_client(worker), fixed_on_site="true", photos=[], after=[upload(photo_bytes(seed=10))])
    ticket = r.json()["ticket_no"]
    rows = OutboxEvent.objects.filter(payload__ticket_no=ticket)
    pairs = {(e.group, e.payload["event"]) for e in rows}
    assert ("grid.110101001001001", "dispatch") in pairs and (f"user.{worker.pk}", "register") in pairs
    assert ("city", "close") in pairs and ("street.110101001", "dispatch") in pairs
    assert {m["event"]["id"] for _, m in sent} == set(rows.values_list("id", flat=True))
    final = rows.filter(group=f"user.{worker.pk}").get()
    assert final.payload["state"] == "closed"
    assert AppealEvent.objects.filter(appeal__ticket_no=ticket, event="close").exists()
