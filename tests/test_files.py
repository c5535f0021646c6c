"""Uploaded files behind the access check of what they belong to (gridgov/files.py): an appeal's
evidence and thumbnail reach its uploader, the unit on it, the street, the centre and the
district's leader, with the phone's knox token or the page's session; anyone outside the
appeal's scope gets 404, as for a missing file; nobody anonymous. A muster's evidence follows
the whistle call's scope. Behind nginx the view answers X-Accel-Redirect with no body."""

import io

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from PIL import Image

from gridgov.accounts.models import Department, Role
from gridgov.appeals.models import Attachment
from gridgov.whistles import services as whistle_services
from gridgov.whistles.models import MusterEvidence
from tests.mobile_api import fieldwork
from tests.mobile_api.fieldwork import STREET1, photo_bytes, task_url, token_client, upload

_field_settings, people, appeals = fieldwork._field_settings, fieldwork.people, fieldwork.appeals
pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4\n" + b"0" * 200


@pytest.fixture
def evidence(appeals, people):
    """Worker1 checked in on appeal A and uploaded a photo from the phone: what the phone got back."""
    a, w = appeals["A"], token_client(people["worker1"])
    assert w.post(task_url(a, "accept"), {}, format="json").status_code == 200
    assert w.post(task_url(a, "check-in"), {"lng": 116.405, "lat": 39.9105}, format="json").status_code == 200
    r = w.post(
        task_url(a, "evidence"), {"file": upload(photo_bytes(size=(800, 600))), "purpose": "after"}, format="multipart"
    )
    assert r.status_code == 201, r.content
    return r.json()["evidence"]


def session(user):
    c = Client()
    c.force_login(user)
    return c


def assert_served(r, content_type, body=None):
    assert r.status_code == 200, getattr(r, "content", r)
    assert r["Content-Type"] == content_type
    assert r["X-Content-Type-Options"] == "nosniff"
    assert "private" in r["Cache-Control"] and "public" not in r["Cache-Control"]
    if body is not None:
        assert b"".join(r.streaming_content) == body


def test_the_urls_the_apis_give_are_the_checked_view(evidence, appeals, people, make_user):
    assert evidence["url"] == f"/media/attachments/{evidence['id']}"
    assert evidence["thumbnail_url"] == f"/media/attachments/{evidence['id']}/thumbnail"
    centre = session(make_user(Role.HOTLINE_CENTER))
    detail = centre.get(f"/api/v1/appeals/{appeals['A'].ticket_no}").json()
    assert [(f["url"], f["thumbnail_url"]) for f in detail["attachments"]] == [
        (evidence["url"], evidence["thumbnail_url"])
    ]


def test_uploader_unit_street_centre_and_leader_get_the_file(evidence, appeals, people, make_user):
    att = Attachment.objects.get(pk=evidence["id"])
    with att.file.open("rb") as f:
        original = f.read()
    unit = next(
        u for u in people.values() if u.role == Role.DEPARTMENT and u.department_id == appeals["A"].department_id
    )
    readers = {
        "uploader (phone token)": token_client(people["worker1"]),
        "uploader (session)": session(people["worker1"]),
        "the unit": token_client(unit),
        "the street office": session(people["street1"]),
        "the centre": session(make_user(Role.HOTLINE_CENTER)),
        "the district's leader": session(people["leader"]),
    }
    for who, c in readers.items():
        r = c.get(evidence["url"])
        assert r.status_code == 200, who
        assert_served(r, "image/jpeg", original)
        assert r["Content-Disposition"].startswith("inline")
        thumb = c.get(evidence["thumbnail_url"])
        assert_served(thumb, "image/jpeg")
        assert Image.open(io.BytesIO(b"".join(thumb.streaming_content))).size == (320, 240), who


def test_outsiders_get_404_and_anonymous_401(evidence, people, make_user):
    outsiders = {
        "a worker of another street": token_client(people["worker3"]),
        "a worker of another grid": token_client(people["worker2"]),
        "another street's office": session(make_user(Role.STREET_OFFICE, area_code="110101002")),
        "a department not on it": token_client(people["ranqi"]),
        "another district's leader": session(make_user(Role.LEADER, area_code="110102")),
    }
    for who, c in outsiders.items():
        for url in (evidence["url"], evidence["thumbnail_url"], "/media/attachments/999999"):
            assert c.get(url).status_code == 404, (who, url)
    assert Client().get(evidence["url"]).status_code == 401
    assert Client().get(evidence["thumbnail_url"]).status_code == 401
    # The file's own path under MEDIA_URL serves nothing to anyone.
    name = Attachment.objects.get(pk=evidence["id"]).file.name
    assert token_client(people["worker1"]).get(f"/media/{name}").status_code == 404


def test_behind_nginx_the_answer_is_an_internal_redirect_without_body(evidence, people, settings):
    settings.MEDIA_ACCEL_REDIRECT_PREFIX = "/_protected_media/"
    name = Attachment.objects.get(pk=evidence["id"]).file.name
    r = token_client(people["worker1"]).get(evidence["url"])
    assert r.status_code == 200 and r["X-Accel-Redirect"] == f"/_protected_media/{name}"
    assert r.content == b"" and r["Content-Type"] == "image/jpeg" and "private" in r["Cache-Control"]
    assert r["X-Content-Type-Options"] == "nosniff"
    assert token_client(people["worker3"]).get(evidence["url"]).status_code == 404


@pytest.fixture
def muster_evidence(people, make_user, settings):
    """A whistle call of 甲街道 with the water company summoned, and a PDF on its muster."""
    water = Department.objects.create(code="shuiwu", name="自来水集团", kind=Department.Kind.UTILITY)
    street = make_user(
        Role.STREET_OFFICE, area_code="110101001", department=Department.objects.get(code="jiedao-110101001")
    )
    call = whistle_services.whistle_blow(
        actor=street,
        problem="甲街道积水问题",
        street_code="110101001",
        lng=STREET1[0],
        lat=STREET1[1],
        department_codes=["shuiwu"],
    )
    muster = call.musters.get()
    ev = MusterEvidence(
        muster=muster, name="处置报告.pdf", content_type="application/pdf", size=len(PDF), sha256="a" * 64
    )
    ev.file.save("report.pdf", ContentFile(PDF), save=True)
    staff = make_user(Role.DEPARTMENT, department=water)
    return {"evidence": ev, "street": street, "water": staff, "call": call}


def test_muster_evidence_follows_the_call(muster_evidence, people, make_user, api):
    m = muster_evidence
    url = f"/media/muster-evidence/{m['evidence'].pk}"
    detail = api(m["street"]).get(f"/api/v1/whistles/calls/{m['call'].pk}").json()
    assert [e["url"] for mu in detail["musters"] for e in mu["evidence"]] == [url]
    for who, user in {
        "the summoned department": m["water"],
        "the street office": m["street"],
        "the centre": make_user(Role.HOTLINE_CENTER),
        "the leader": people["leader"],
    }.items():
        r = token_client(user).get(url)
        assert r.status_code == 200, who
        assert_served(r, "application/pdf", PDF)
    for who, user in {
        "a department not summoned": people["ranqi"],
        "a worker of another street": people["worker3"],
        "another street's office": make_user(Role.STREET_OFFICE, area_code="110101002"),
    }.items():
        assert token_client(user).get(url).status_code == 404, who
    assert Client().get(url).status_code == 401


def test_a_stored_type_a_browser_would_run_is_only_offered_as_a_download(evidence, people):
    Attachment.objects.filter(pk=evidence["id"]).update(content_type="text/html")
    r = token_client(people["worker1"]).get(evidence["url"])
    assert r["Content-Type"] == "application/octet-stream" and r["Content-Disposition"].startswith("attachment")
