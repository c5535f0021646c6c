"""A muster's check-in and evidence are field work like a task's (gridgov/fieldwork): the same
geofence settings (GEOFENCE_METRES, GEOFENCE_MODE) and the same inspection of files (type from
the bytes, decoded photos, per-kind limits, named by content)."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from gridgov.accounts.models import Department
from gridgov.whistles import services
from gridgov.whistles.models import MusterEvidence
from tests.mobile_api.fieldwork import mp4_bytes, photo_bytes

from .conftest import offset

pytestmark = pytest.mark.django_db


@pytest.fixture
def muster(gencity, make_user, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    street = gencity.streets[0]
    place = gencity.centres[next(c for c in gencity.codes if c.startswith(street))]
    water = make_user("department", department=Department.objects.get(code="zilaishui"))
    now = timezone.now()
    call = services.whistle_blow(
        actor=make_user("street_office", area_code=street),
        problem="供水管道漏水",
        street_code=street,
        lng=place[0],
        lat=place[1],
        department_codes=["zilaishui"],
        muster_deadline=now + timedelta(hours=1),
        now=now,
    )
    return {"muster": call.musters.get(), "user": water, "place": place}


def test_the_geofence_is_the_field_works_own(muster, settings):
    m, u = muster["muster"], muster["user"]
    settings.GEOFENCE_METRES, settings.GEOFENCE_MODE = 50.0, "refuse"
    at = offset(muster["place"], 100, 0)
    with pytest.raises(services.WhistleError) as refused:
        services.muster_check_in(muster_id=m.pk, actor=u, lng=at[0], lat=at[1])
    assert refused.value.code == "outside_geofence" and refused.value.extra["geofence_m"] == 50.0
    assert "超出50米报到范围" in str(refused.value) and 95 < refused.value.extra["distance_m"] < 105
    settings.GEOFENCE_MODE = "flag"
    m = services.muster_check_in(muster_id=m.pk, actor=u, lng=at[0], lat=at[1])
    assert m.state == "checked_in" and m.outside_geofence and 95 < m.check_in_distance_m < 105


def report(muster, *files):
    return services.muster_report(muster_id=muster["muster"].pk, actor=muster["user"], text="已处理", files=files)


def test_evidence_is_inspected_as_a_tasks_is(muster, settings):
    m, u = muster["muster"], muster["user"]
    near = offset(muster["place"], 10, 0)
    services.muster_check_in(muster_id=m.pk, actor=u, lng=near[0], lat=near[1])
    for content, name, code in [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "x.png", "file_corrupt"),  # a PNG header on garbage
        (b"MZ\x90\x00" + b"\x00" * 64, "x.png", "file_type"),  # a program calling itself a photo
        (b"GIF89a" + b"\x00" * 64, "x.gif", "file_type"),  # not on the field work's list
    ]:
        with pytest.raises(services.WhistleError) as bad:
            report(muster, SimpleUploadedFile(name, content, "image/png"))
        assert bad.value.code == code and name in str(bad.value)
    settings.EVIDENCE_MAX_VIDEO_BYTES = 2048
    with pytest.raises(services.WhistleError) as big:
        report(muster, SimpleUploadedFile("clip.mp4", mp4_bytes() + b"\x00" * 4096, "video/mp4"))
    assert big.value.code == "file_too_large" and big.value.extra["max_bytes"] == 2048
    assert not MusterEvidence.objects.exists()
    photo = photo_bytes(seed=5)
    m = report(muster, SimpleUploadedFile("IMG_1.png", photo, "image/png"))
    ev = MusterEvidence.objects.get(muster=m)
    assert (ev.content_type, ev.size, ev.name) == ("image/jpeg", len(photo), "IMG_1.png")
    assert ev.file.name.startswith("whistles/") and ev.file.name.endswith(f"{ev.sha256[:32]}.jpg")  # by content
