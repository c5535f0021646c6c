"""Evidence files, whoever sends them: the type read from the bytes, which kinds each use takes,
per-kind limits, SHA-256, EXIF time and position, thumbnails, and the comparison with a
check-in. The phone's upload of them is tested in tests/mobile_api/test_evidence.py."""

import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from gridgov.fieldwork import evidence
from gridgov.fieldwork.evidence import (
    DOCUMENT,
    MUSTER_KINDS,
    PHOTO,
    TASK_KINDS,
    EvidenceRefused,
    compare,
    file_sha256,
    inspect,
    sniff,
)
from tests.mobile_api.fieldwork import mp4_bytes, photo_bytes

PDF = b"%PDF-1.4\n" + b"0" * 200
HERE = (116.405, 39.91)


# --- what a file really is ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head,expected",
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", ("photo", "image/jpeg")),
        (b"\x89PNG\r\n\x1a\n\x00\x00", ("photo", "image/png")),
        (b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heic", ("photo", "image/heic")),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", ("photo", "image/heic")),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41", ("video", "video/mp4")),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ", ("video", "video/quicktime")),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", ("video", "video/quicktime")),
        (b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A isom", ("audio", "audio/mp4")),
        (b"\xff\xf1\x50\x80\x02\x1f\xfc", ("audio", "audio/aac")),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", ("audio", "audio/mpeg")),
        (b"\xff\xfb\x90\x64\x00", ("audio", "audio/mpeg")),
        (b"#!AMR\n\x3c", ("audio", "audio/amr")),
        (b"#!AMR-WB\n\x04", ("audio", "audio/amr-wb")),
        (b"MZ\x90\x00\x03\x00\x00\x00", None),  # a Windows program
        (b"\x7fELF\x02\x01\x01", None),
        (b"%PDF-1.7\n", ("document", "application/pdf")),
        (b"GIF89a\x01\x00", None),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", None),  # AVIF: not on the list
        (b"hello, this is text", None),
        (b"", None),
    ],
)
def test_sniff_reads_the_magic_bytes(head, expected):
    found = sniff(head)
    assert (found[:2] if found else None) == expected


def upload(content, name="file.bin", content_type="application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def test_each_use_takes_its_own_kinds():
    """A task takes photos, videos and audio; a muster's report photos, videos and PDFs."""
    with pytest.raises(EvidenceRefused) as refused:
        inspect(upload(PDF, "报告.pdf"), TASK_KINDS)
    assert refused.value.code == "file_type" and "报告.pdf" in str(refused.value)
    assert "audio (AAC, M4A, MP3, AMR)" in str(refused.value) and "PDF" not in str(refused.value).split("/")[-1]
    doc = inspect(upload(PDF, "报告.pdf"), MUSTER_KINDS)
    assert (doc.kind, doc.content_type, doc.storage_name[-4:]) == (DOCUMENT, "application/pdf", ".pdf")
    assert doc.thumbnail is None and doc.meta["name"] == "报告.pdf"
    with pytest.raises(EvidenceRefused) as refused:
        inspect(upload(b"#!AMR\n" + b"\x3c" * 300, "note.amr"), MUSTER_KINDS)
    assert refused.value.code == "file_type" and "PDF document" in str(refused.value)
    assert inspect(upload(mp4_bytes()), MUSTER_KINDS).content_type == "video/mp4"


def test_a_png_header_on_garbage_is_refused_for_every_use():
    for kinds in (TASK_KINDS, MUSTER_KINDS):
        with pytest.raises(EvidenceRefused) as refused:
            inspect(upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "x.png"), kinds)
        assert refused.value.code == "file_corrupt"


def test_limits_are_per_kind_the_document_one_included(settings):
    settings.EVIDENCE_MAX_DOCUMENT_BYTES = 1024
    with pytest.raises(EvidenceRefused) as refused:
        inspect(upload(PDF + b"0" * 1024, "big.pdf"), MUSTER_KINDS)
    assert refused.value.code == "file_too_large" and refused.value.extra["max_bytes"] == 1024
    assert inspect(upload(PDF, "small.pdf"), MUSTER_KINDS).size == len(PDF)
    with pytest.raises(EvidenceRefused) as refused:
        inspect(upload(b"", "empty.jpg"), TASK_KINDS)
    assert refused.value.code == "file_type"  # no bytes, no type


def test_sha256_is_of_the_content_and_computed_once_per_upload():
    content = photo_bytes(seed=4)
    f = upload(content, "a.jpg")
    first = file_sha256(f)
    assert first == hashlib.sha256(content).hexdigest()
    f.file = io.BytesIO(b"changed underneath")  # the cached digest is what inspection and replay share
    assert file_sha256(f) == first


def test_a_photo_is_read_once_exif_time_position_and_thumbnail(settings):
    settings.EVIDENCE_THUMBNAIL_PX = 64
    at = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
    ev = inspect(upload(photo_bytes(size=(640, 480), taken_at=at, gps=(116.4051, 39.9101)), "p.jpg"))
    assert ev.kind == PHOTO and ev.taken_at == at and ev.meta["exif"]["taken_at_source"] == "offset"
    assert ev.gps == pytest.approx((116.4051, 39.9101), abs=1e-6)
    thumb = Image.open(io.BytesIO(ev.thumbnail))
    assert thumb.format == "JPEG" and max(thumb.size) == 64 and (ev.meta["width"], ev.meta["height"]) == (640, 480)


def test_no_exif_means_no_time_and_no_position():
    ev = inspect(upload(photo_bytes("PNG", size=(32, 32)), "p.png"))
    assert (ev.taken_at, ev.gps) == (None, None) and ev.meta["exif"]["taken_at_source"] is None
    assert evidence.exif_gps(None) is None and evidence.exif_time(None) == (None, None)


@pytest.mark.django_db
def test_compare_flags_time_and_distance_never_refuses(settings):
    settings.EVIDENCE_TIME_TOLERANCE_MINUTES = 120
    at = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
    reference = {"type": "check_in", "event": 7, "at": at, "wgs84": [116.405, 39.9105]}
    near = inspect(upload(photo_bytes(taken_at=at + timedelta(minutes=5), gps=(116.4051, 39.9101)), "n.jpg"))
    out = compare(near, reference, HERE, 200.0)
    assert out["flags"] == [] and out["time_diff_s"] == 300 and out["reference"]["event"] == 7
    assert 40 < out["distance_to_reference_m"] < 50 and 10 < out["distance_to_appeal_m"] < 16
    far = inspect(upload(photo_bytes(taken_at=at - timedelta(days=3), gps=(116.43, 39.92), seed=2), "f.jpg"))
    assert compare(far, reference, HERE, 200.0)["flags"] == ["time_far", "gps_far"]
    # Without a place of its own, the distance to the reference decides.
    assert compare(far, reference, None, 200.0)["flags"] == ["time_far", "gps_far"]
    bare = inspect(upload(photo_bytes(seed=3), "b.jpg"))
    assert compare(bare, reference, HERE, 200.0)["flags"] == ["no_exif_time", "no_exif_gps"]
    video = inspect(upload(mp4_bytes(), "v.mp4"))
    assert compare(video, None, HERE, 200.0) == {
        "reference": None,
        "time_diff_s": None,
        "distance_to_reference_m": None,
        "distance_to_appeal_m": None,
        "geofence_m": 200.0,
        "flags": [],
    }
