"""Evidence from the field: the type read from the bytes (a file that lies about its type is
refused), per-kind size limits, SHA-256 and one copy per appeal, EXIF time and GPS compared with
the check-in, thumbnails."""

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from gridgov.appeals.models import AppealEvent, Attachment
from gridgov.audit.models import AuditEvent

from . import fieldwork
from .fieldwork import STREET1, mp4_bytes, photo_bytes, task_url, token_client, upload

_field_settings, people, appeals = fieldwork._field_settings, fieldwork.people, fieldwork.appeals
pytestmark = pytest.mark.django_db


@pytest.fixture
def on_site(appeals, people):
    """Appeal A accepted by worker1, who checked in ~55 m from it."""
    a, w = appeals["A"], token_client(people["worker1"])
    assert w.post(task_url(a, "accept"), {}, format="json").status_code == 200
    r = w.post(task_url(a, "check-in"), {"lng": 116.405, "lat": 39.9105}, format="json")
    assert r.status_code == 200, r.content
    return a, w


def post_file(client, appeal, content, name="photo.jpg", content_type="image/jpeg", purpose="after", **headers):
    return client.post(
        task_url(appeal, "evidence"),
        {"file": upload(content, name, content_type), "purpose": purpose},
        format="multipart",
        **headers,
    )


# --- what a file really is (the sniffer itself: tests/fieldwork/test_evidence.py) -------------------


def test_a_png_named_jpg_is_stored_as_png(on_site):
    a, w = on_site
    png = photo_bytes("PNG")
    r = post_file(w, a, png, name="IMG_0001.jpg", content_type="image/jpeg")
    assert r.status_code == 201, r.content
    ev = r.json()["evidence"]
    assert ev["content_type"] == "image/png" and ev["kind"] == "photo"
    att = Attachment.objects.get(pk=ev["id"])
    assert att.file.name.endswith(".png") and "IMG_0001" not in att.file.name  # named by content
    assert att.meta["name"] == "IMG_0001.jpg" and att.meta["declared_type"] == "image/jpeg"


@pytest.mark.parametrize(
    "content,name,content_type",
    [
        (b"just some text, not a photo at all\n" * 10, "photo.jpg", "image/jpeg"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200, "clip.mp4", "video/mp4"),
        (b"%PDF-1.4\n" + b"x" * 100, "scan.jpg", "image/jpeg"),
        (b"<html><script>alert(1)</script></html>", "voice.m4a", "audio/mp4"),
    ],
)
def test_a_file_that_lies_about_its_type_is_refused(on_site, content, name, content_type):
    a, w = on_site
    r = post_file(w, a, content, name=name, content_type=content_type)
    assert r.status_code == 400 and r.json()["code"] == "file_type", r.content
    assert name in r.json()["detail"]
    assert not Attachment.objects.exists()


def test_a_jpeg_header_on_garbage_is_refused(on_site):
    a, w = on_site
    truncated = photo_bytes()[:300]
    r = post_file(w, a, truncated)
    assert r.status_code == 400 and r.json()["code"] == "file_corrupt"
    r = post_file(w, a, b"\xff\xd8\xff\xe0" + b"\x00" * 500)
    assert r.status_code == 400 and r.json()["code"] == "file_corrupt"
    assert not Attachment.objects.exists()


def test_videos_and_audio_are_accepted_by_their_bytes(on_site):
    a, w = on_site
    r = post_file(w, a, mp4_bytes(), name="clip.bin", content_type="application/octet-stream", purpose="during")
    assert r.status_code == 201 and r.json()["evidence"]["content_type"] == "video/mp4"
    assert r.json()["evidence"]["thumbnail_url"] is None
    r = post_file(w, a, mp4_bytes(b"qt  "), name="clip.mov", content_type="video/quicktime", purpose="during")
    assert r.json()["evidence"]["content_type"] == "video/quicktime"
    r = post_file(w, a, mp4_bytes(b"M4A "), name="note.m4a", content_type="audio/mp4", purpose="during")
    assert (r.json()["evidence"]["kind"], r.json()["evidence"]["content_type"]) == ("audio", "audio/mp4")
    r = post_file(w, a, b"#!AMR\n" + b"\x3c" * 300, name="note.amr", content_type="audio/amr", purpose="during")
    assert r.json()["evidence"]["content_type"] == "audio/amr"
    r = post_file(w, a, b"ID3\x04\x00" + b"\x00" * 300, name="note.mp3", content_type="audio/mpeg", purpose="during")
    assert r.json()["evidence"]["content_type"] == "audio/mpeg"
    assert Attachment.objects.filter(appeal=a).count() == 5
    # audio and video are not photos: the category's "after" photo is still missing
    assert w.get(task_url(a)).json()["progress"]["missing_evidence"] == ["after"]


def test_size_limits_per_kind(on_site, settings):
    a, w = on_site
    settings.EVIDENCE_MAX_VIDEO_BYTES = 2048
    big = mp4_bytes() + b"\x00" * 4096
    r = post_file(w, a, big, name="clip.mp4", content_type="video/mp4")
    assert r.status_code == 400 and r.json()["code"] == "file_too_large" and r.json()["max_bytes"] == 2048
    # the same size is fine for a photo, whose limit is its own
    photo = photo_bytes(size=(200, 200))
    assert len(photo) < settings.EVIDENCE_MAX_PHOTO_BYTES
    assert post_file(w, a, photo).status_code == 201
    settings.EVIDENCE_MAX_PHOTO_BYTES = 1024
    r = post_file(w, a, photo_bytes(size=(300, 300), seed=5))
    assert r.status_code == 400 and r.json()["code"] == "file_too_large"


# --- one copy -----------------------------------------------------------------------------------


def test_the_same_file_twice_is_stored_once(on_site):
    a, w = on_site
    content = photo_bytes(seed=7)
    first = post_file(w, a, content, name="a.jpg")
    assert first.status_code == 201 and first.json()["created"] is True
    again = post_file(w, a, content, name="renamed-by-the-phone.jpg", purpose="before")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["evidence"]["id"] == first.json()["evidence"]["id"]
    assert again.json()["evidence"]["purpose"] == "after"  # the original, as it was stored
    assert Attachment.objects.filter(appeal=a).count() == 1
    assert AppealEvent.objects.filter(appeal=a, event="evidence").count() == 1
    assert Attachment.objects.get().sha256 == hashlib.sha256(content).hexdigest()


def test_the_same_file_on_another_appeal_is_its_own_evidence(on_site, appeals, people):
    a, w = on_site
    content = photo_bytes(seed=8)
    assert post_file(w, a, content).status_code == 201
    c, staff = appeals["C"], token_client(people["chengguan"])
    staff.post(task_url(c, "accept"), {}, format="json")
    staff.post(task_url(c, "check-in"), {"lng": STREET1[0], "lat": STREET1[1]}, format="json")
    assert post_file(staff, c, content).status_code == 201
    assert Attachment.objects.count() == 2


# --- EXIF and thumbnails ------------------------------------------------------------------------


def test_exif_time_and_gps_are_compared_with_the_check_in(on_site):
    a, w = on_site
    check_in_at = AppealEvent.objects.get(appeal=a, event="check_in").at
    content = photo_bytes(taken_at=check_in_at + timedelta(minutes=5), gps=(116.4051, 39.9101))
    r = post_file(w, a, content)
    assert r.status_code == 201, r.content
    ev = r.json()["evidence"]
    assert ev["exif"]["taken_at_source"] == "offset" and ev["exif"]["gps"] == [116.4051, 39.9101]
    cmp = ev["compare"]
    assert 299 <= cmp["time_diff_s"] <= 301
    assert cmp["reference"]["type"] == "check_in"
    assert 40 < cmp["distance_to_reference_m"] < 50  # from the check-in point, ~55 m north of the appeal
    assert 10 < cmp["distance_to_appeal_m"] < 16
    assert cmp["flags"] == []
    stored = Attachment.objects.get(pk=ev["id"]).meta
    assert stored["compare"]["time_diff_s"] == cmp["time_diff_s"] and stored["width"] == 640

    # three days old and 2 km away: flagged, not refused
    far = photo_bytes(taken_at=check_in_at - timedelta(days=3), gps=(116.43, 39.92), seed=3)
    r = post_file(w, a, far, purpose="during")
    assert r.status_code == 201
    cmp = r.json()["evidence"]["compare"]
    assert cmp["time_diff_s"] < -3 * 86400 + 60 and cmp["distance_to_appeal_m"] > 2000
    assert cmp["flags"] == ["time_far", "gps_far"]
    flagged = AppealEvent.objects.filter(appeal=a, event="evidence").order_by("-at", "-pk").first()
    assert flagged.data["flags"] == ["time_far", "gps_far"]
    assert AuditEvent.objects.filter(action="appeal.evidence", object_id=str(a.pk)).count() == 2

    # no EXIF at all (a screenshot, an app that strips it)
    r = post_file(w, a, photo_bytes(seed=4), purpose="before")
    assert r.json()["evidence"]["compare"]["flags"] == ["no_exif_time", "no_exif_gps"]


def test_exif_time_without_an_offset_is_local_time(on_site):
    a, w = on_site
    now = timezone.localtime(timezone.now())
    img = Image.new("RGB", (320, 240), (1, 2, 3))
    exif = Image.Exif()
    exif[0x8769] = {0x9003: now.strftime("%Y:%m:%d %H:%M:%S")}  # no OffsetTimeOriginal
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    ev = post_file(w, a, buf.getvalue()).json()["evidence"]
    assert ev["exif"]["taken_at_source"] == "local" and ev["exif"]["taken_at"].endswith("+08:00")
    assert abs(ev["compare"]["time_diff_s"]) < 120


def test_heic_photos_are_read_with_pillow_heif(on_site):
    a, w = on_site
    check_in_at = AppealEvent.objects.get(appeal=a, event="check_in").at
    heic = photo_bytes("HEIF", taken_at=check_in_at, gps=(116.405, 39.9105))
    r = post_file(w, a, heic, name="IMG_0002.HEIC", content_type="application/octet-stream")
    assert r.status_code == 201, r.content
    ev = r.json()["evidence"]
    assert ev["content_type"] == "image/heic" and ev["kind"] == "photo"
    assert abs(ev["compare"]["time_diff_s"]) <= 1 and ev["compare"]["distance_to_reference_m"] < 1
    assert ev["thumbnail_url"]


def test_photos_get_a_jpeg_thumbnail(on_site, settings):
    a, w = on_site
    r = post_file(w, a, photo_bytes(size=(1600, 1200), seed=9))
    ev = r.json()["evidence"]
    assert ev["thumbnail_url"].startswith(settings.MEDIA_URL) and ev["width"] == 1600
    name = Attachment.objects.get(pk=ev["id"]).meta["thumbnail"]
    with default_storage.open(name) as f:
        thumb = Image.open(io.BytesIO(f.read()))
        assert thumb.format == "JPEG" and max(thumb.size) == 320 and thumb.size == (320, 240)
    detail = w.get(task_url(a)).json()
    assert [e["thumbnail_url"] for e in detail["evidence"]] == [ev["thumbnail_url"]]
    assert detail["evidence"][0]["uploaded_by"] == detail["check_ins"][0]["actor"]
    assert [h["event"] for h in detail["history"]][-1] == "evidence"
    # an RGBA PNG thumbnails onto white
    png = io.BytesIO()
    Image.new("RGBA", (400, 100), (255, 0, 0, 0)).save(png, "PNG")
    r = post_file(w, a, png.getvalue(), name="x.png", content_type="image/png", purpose="before")
    name = Attachment.objects.get(pk=r.json()["evidence"]["id"]).meta["thumbnail"]
    with default_storage.open(name) as f:
        thumb = Image.open(io.BytesIO(f.read()))
        assert thumb.size == (320, 80) and thumb.getpixel((10, 10)) in ((255, 255, 255), (254, 254, 254))
