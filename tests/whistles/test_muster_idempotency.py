"""Musters are answered from phones that retry and replay their offline queues: acknowledge,
check-in and report take the phone API's Idempotency-Key (gridgov/idempotency/replay.py). The
same key again answers what the first request answered and makes nothing twice; the key is the
user's own (another user's same key is theirs, never a replay of someone else's answer)."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from gridgov.accounts.models import Department
from gridgov.audit.models import AuditEvent
from gridgov.idempotency.models import IdempotencyRecord
from gridgov.whistles import services
from gridgov.whistles.models import MusterEvidence, WhistleEvent
from tests.mobile_api.fieldwork import photo_bytes

from .conftest import offset

pytestmark = pytest.mark.django_db
API = "/api/v1/whistles"
REPLAYED = "Idempotent-Replayed"


@pytest.fixture
def call(gencity, make_user):
    street = gencity.streets[0]
    grid = next(c for c in gencity.codes if c.startswith(street))
    place = gencity.centres[grid]
    d = {c: Department.objects.get(code=c) for c in ("zilaishui", "chengguanwei", f"jiedao-{street}")}
    users = {
        "street": make_user("street_office", area_code=street, department=d[f"jiedao-{street}"]),
        "water": make_user("department", department=d["zilaishui"]),
        "water2": make_user("department", department=d["zilaishui"]),  # a colleague on another phone
        "city": make_user("department", department=d["chengguanwei"]),
        "outsider": make_user(
            "department", department=Department.objects.exclude(pk__in=[x.pk for x in d.values()])[0]
        ),
    }
    now = timezone.now()
    c = services.whistle_blow(
        actor=users["street"],
        problem="楼内供水管道反复漏水",
        street_code=street,
        lng=place[0],
        lat=place[1],
        department_codes=["zilaishui", "chengguanwei"],
        muster_deadline=now + timedelta(hours=1),
        now=now,
    )
    musters = {m.department.code: m for m in c.musters.select_related("department")}
    return {"users": users, "place": place, "water": musters["zilaishui"], "city": musters["chengguanwei"]}


def events(muster, event):
    return WhistleEvent.objects.filter(object_type="muster", object_id=muster.pk, event=event).count()


def test_a_repeated_acknowledge_answers_the_same_and_acknowledges_once(call, api):
    water, url = api(call["users"]["water"]), f"{API}/musters/{call['water'].pk}/acknowledge"
    first = water.post(url, {"note": "已出发"}, format="json", HTTP_IDEMPOTENCY_KEY="ack-1")
    assert first.status_code == 200 and first.json()["state"] == "acknowledged" and REPLAYED not in first
    again = water.post(url, {"note": "已出发"}, format="json", HTTP_IDEMPOTENCY_KEY="ack-1")
    assert again.status_code == 200 and again.json() == first.json() and again[REPLAYED] == "true"
    assert events(call["water"], "acknowledge") == 1
    assert AuditEvent.objects.filter(action="whistles.muster.acknowledge").count() == 1
    # Without a key a repeat is a new request, which the workflow refuses.
    assert water.post(url, {"note": "已出发"}, format="json").status_code == 409
    # The same key for something else: refused, not replayed.
    r = water.post(url, {"note": "另一件事"}, format="json", HTTP_IDEMPOTENCY_KEY="ack-1")
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    assert water.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="has space").status_code == 400


def test_someone_elses_key_is_never_their_answer(call, api):
    u, url = call["users"], f"{API}/musters/{call['water'].pk}/acknowledge"
    assert api(u["water"]).post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 200
    # Another summoned department with the same key on the water company's muster: 403, as without a key.
    r = api(u["city"]).post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert r.status_code == 403 and REPLAYED not in r
    # An outsider (a department not summoned): the muster is not in its sight.
    r = api(u["outsider"]).post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert r.status_code == 404 and REPLAYED not in r
    # A colleague with the same key runs its own request: the muster is acknowledged already (409).
    r = api(u["water2"]).post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert r.status_code == 409 and REPLAYED not in r
    # The city's own muster with the same key is its own first request.
    r = api(u["city"]).post(f"{API}/musters/{call['city'].pk}/acknowledge", {}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert r.status_code == 200 and r.json()["id"] == call["city"].pk and REPLAYED not in r
    assert sorted(IdempotencyRecord.objects.values_list("user__username", flat=True)) == sorted(
        [u["water"].username, u["city"].username]
    )


def test_a_repeated_check_in_checks_in_once_and_a_refusal_is_answered_afresh(call, api, settings):
    settings.GEOFENCE_METRES, settings.GEOFENCE_MODE = 200.0, "refuse"
    water, url = api(call["users"]["water"]), f"{API}/musters/{call['water'].pk}/check-in"
    far = offset(call["place"], 500, 0)
    r = water.post(url, {"lng": far[0], "lat": far[1]}, format="json", HTTP_IDEMPOTENCY_KEY="in-1")
    assert r.status_code == 400 and r.json()["code"] == "outside_geofence"
    assert events(call["water"], "check_in_refused") == 1  # the attempt is on the record
    near = offset(call["place"], 30, 0)
    first = water.post(url, {"lng": near[0], "lat": near[1]}, format="json", HTTP_IDEMPOTENCY_KEY="in-1")
    assert first.status_code == 200 and first.json()["state"] == "checked_in"
    again = water.post(url, {"lng": near[0], "lat": near[1]}, format="json", HTTP_IDEMPOTENCY_KEY="in-1")
    assert again.status_code == 200 and again.json() == first.json() and again[REPLAYED] == "true"
    assert events(call["water"], "check_in") == 1
    r = api(call["users"]["outsider"]).post(
        url, {"lng": near[0], "lat": near[1]}, format="json", HTTP_IDEMPOTENCY_KEY="in-1"
    )
    assert r.status_code == 404


def test_a_repeated_report_stores_its_evidence_once(call, api, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    water, m = api(call["users"]["water"]), call["water"]
    near = offset(call["place"], 10, 0)
    assert (
        water.post(f"{API}/musters/{m.pk}/check-in", {"lng": near[0], "lat": near[1]}, format="json").status_code == 200
    )
    photo, pdf = photo_bytes(seed=11), b"%PDF-1.4\n" + b"0" * 200

    def report(key_field=None, **headers):
        body = {
            "text": "更换破损管段，已恢复供水",
            "files": [
                SimpleUploadedFile("after.jpg", photo, "image/jpeg"),
                SimpleUploadedFile("记录.pdf", pdf, "application/pdf"),
            ],
        }
        if key_field:
            body["client_id"] = key_field
        return water.post(f"{API}/musters/{m.pk}/report", body, format="multipart", **headers)

    first = report(HTTP_IDEMPOTENCY_KEY="rep-1")
    assert first.status_code == 200, first.content
    assert [e["content_type"] for e in first.json()["evidence"]] == ["image/jpeg", "application/pdf"]
    again = report(HTTP_IDEMPOTENCY_KEY="rep-1")
    assert again.status_code == 200 and again.json() == first.json() and again[REPLAYED] == "true"
    assert MusterEvidence.objects.filter(muster=m).count() == 2 and events(m, "report") == 1
    # The client_id field of a queued form works as the header does.
    city, cm = api(call["users"]["city"]), call["city"]
    assert (
        city.post(f"{API}/musters/{cm.pk}/check-in", {"lng": near[0], "lat": near[1]}, format="json").status_code == 200
    )
    key = "6f1c2c1e-8a0b-4c47-9d55-3b3f2f0c9a11"
    body = {"text": "更换井盖", "client_id": key}
    first = city.post(f"{API}/musters/{cm.pk}/report", body, format="multipart")
    again = city.post(f"{API}/musters/{cm.pk}/report", body, format="multipart")
    assert first.status_code == again.status_code == 200 and again[REPLAYED] == "true" and events(cm, "report") == 1
    r = api(call["users"]["outsider"]).post(f"{API}/musters/{cm.pk}/report", body, format="multipart")
    assert r.status_code == 404


def test_the_schema_documents_the_key_on_the_muster_endpoints():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for action in ("acknowledge", "check-in", "report"):
        op = paths[f"/api/v1/whistles/musters/{{id}}/{action}"]["post"]
        assert "Idempotency-Key" in [p["name"] for p in op["parameters"]], action
        assert "422" in op["responses"], action
    evaluation = paths["/api/v1/whistles/musters/{id}/evaluation"]["post"]  # the street's, on the web
    assert "Idempotency-Key" not in [p["name"] for p in evaluation.get("parameters", [])]
