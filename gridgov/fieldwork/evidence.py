"""Evidence files as the phone sends them: what they really are, what they say about
themselves, and how that compares with the check-in. The callers store them: an appeal task's
Attachment (gridgov/appeals/field_tasks.py), a muster's MusterEvidence (gridgov/whistles).

The type comes from the first bytes (magic numbers), never from the file name or the content
type the client declares: a PNG named .jpg is a PNG, a text file named .jpg or a program
renamed .mp4 is refused. Each use says which kinds it takes (a task: photo, video, audio; a
muster's report also a PDF). Photos are also decoded (a JPEG header on garbage is refused),
their EXIF capture time and GPS position read (HEIC through pillow-heif), and a JPEG thumbnail
made. Limits: EVIDENCE_MAX_<KIND>_BYTES, EVIDENCE_THUMBNAIL_PX, EVIDENCE_TIME_TOLERANCE_MINUTES.
"""

import hashlib
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pillow_heif
from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.Image import Exif

from gridgov.errors import DomainError
from gridgov.fieldwork.geofence import LngLat, geodesic

pillow_heif.register_heif_opener()
logger = logging.getLogger(__name__)

PHOTO, VIDEO, AUDIO, DOCUMENT = "photo", "video", "audio", "document"
# What an appeal task takes; a muster's report (what a department did on site) also a PDF.
TASK_KINDS = frozenset({PHOTO, VIDEO, AUDIO})
MUSTER_KINDS = frozenset({PHOTO, VIDEO, DOCUMENT})
# The order and words of a refusal's list of what is accepted.
_KIND_WORDS = {
    PHOTO: "photo (JPEG, PNG, HEIC)",
    VIDEO: "video (MP4, MOV)",
    AUDIO: "audio (AAC, M4A, MP3, AMR)",
    DOCUMENT: "PDF document",
}
HEAD_BYTES = 64

# ISO base media (MP4 / MOV / HEIC / M4A) brands, from the ftyp box.
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_GENERIC = {b"mif1", b"msf1"}  # HEIF; HEIC only when a compatible brand says HEVC
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_MOV_BRANDS = {b"qt  "}
_MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso3",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"mp71",
    b"avc1",
    b"M4V ",
    b"M4VH",
    b"M4VP",
    b"dash",
    b"3gp4",
    b"3gp5",
    b"3gp6",
    b"3g2a",
    b"3g2b",
    b"MSNV",
    b"XAVC",
    b"f4v ",
    b"mmp4",
    b"NDAS",
}
# QuickTime files written before the ftyp box was standard start with one of these atoms.
_MOV_ATOMS = {b"moov", b"mdat", b"wide"}


class EvidenceRefused(DomainError, ValueError):
    """A file refused for a reason the phone can show: a code, a bilingual message, extras."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        self.code, self.extra = code, extra
        super().__init__(message)


# Magic numbers at the start of a file: looked for before the ISO media boxes (first group) and
# after them (second), in this order.
_FIRST = (
    (b"%PDF-", (DOCUMENT, "application/pdf", ".pdf")),
    (b"\xff\xd8\xff", (PHOTO, "image/jpeg", ".jpg")),
    (b"\x89PNG\r\n\x1a\n", (PHOTO, "image/png", ".png")),
)
_AFTER_BOXES = (
    (b"#!AMR-WB\n", (AUDIO, "audio/amr-wb", ".awb")),
    (b"#!AMR\n", (AUDIO, "audio/amr", ".amr")),
    (b"ID3", (AUDIO, "audio/mpeg", ".mp3")),
)


def _iso_media(head: bytes) -> tuple[str, str, str] | None:
    size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
    if major in _HEIC_BRANDS or (major in _HEIF_GENERIC and compatible & _HEIC_BRANDS):
        return PHOTO, "image/heic", ".heic"
    for brands, found in (
        (_AUDIO_BRANDS, (AUDIO, "audio/mp4", ".m4a")),
        (_MOV_BRANDS, (VIDEO, "video/quicktime", ".mov")),
        (_MP4_BRANDS, (VIDEO, "video/mp4", ".mp4")),
    ):
        if major in brands:
            return found
    return None  # AVIF, JPEG 2000, CR3 raw ...: not on the list


def sniff(head: bytes) -> tuple[str, str, str] | None:
    """(kind, content type, extension) from the first bytes of a file, or None."""
    for magic, found in _FIRST:
        if head.startswith(magic):
            return found
    if head[4:8] == b"ftyp":
        return _iso_media(head)
    if head[4:8] in _MOV_ATOMS:
        return VIDEO, "video/quicktime", ".mov"
    for magic, found in _AFTER_BOXES:
        if head.startswith(magic):
            return found
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:  # ADTS sync word, layer 00: raw AAC
            return AUDIO, "audio/aac", ".aac"
        if head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 3:  # MPEG audio frame sync, layer I–III
            return AUDIO, "audio/mpeg", ".mp3"
    return None


def max_bytes(kind: str) -> int:
    return {
        PHOTO: settings.EVIDENCE_MAX_PHOTO_BYTES,
        VIDEO: settings.EVIDENCE_MAX_VIDEO_BYTES,
        AUDIO: settings.EVIDENCE_MAX_AUDIO_BYTES,
        DOCUMENT: settings.EVIDENCE_MAX_DOCUMENT_BYTES,
    }[kind]


def file_sha256(upload: Any) -> str:
    """SHA-256 of an uploaded file, computed once per upload object (the idempotency
    fingerprint and the evidence store both need it)."""
    digest = getattr(upload, "_gridgov_sha256", None)
    if digest is None:
        h = hashlib.sha256()
        upload.seek(0)
        for chunk in upload.chunks():
            h.update(chunk)
        upload.seek(0)
        digest = upload._gridgov_sha256 = h.hexdigest()
    return digest


@dataclass
class EvidenceFile:
    """An uploaded file that passed inspection. `meta` goes to Attachment.meta."""

    upload: Any  # django UploadedFile
    kind: str
    content_type: str
    ext: str
    size: int
    sha256: str
    meta: dict = field(default_factory=dict)
    taken_at: datetime | None = None  # EXIF capture time, aware
    gps: tuple | None = None  # EXIF (lng, lat), WGS-84
    thumbnail: bytes | None = None  # JPEG, photos only

    @property
    def storage_name(self) -> str:
        # Named by content, not by the client: no path tricks, no misleading extensions.
        return f"{self.sha256[:32]}{self.ext}"


def _accepted_words(kinds: Iterable[str]) -> str:
    words = [w for k, w in _KIND_WORDS.items() if k in kinds]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def inspect(upload: Any, kinds: Iterable[str] = TASK_KINDS) -> EvidenceFile:
    """Check one uploaded file against the `kinds` this use takes; EvidenceFile, or
    EvidenceRefused with a code the phone can show."""
    name = getattr(upload, "name", "") or ""
    upload.seek(0)
    head = upload.read(HEAD_BYTES)
    upload.seek(0)
    found = sniff(head)
    if found is None or found[0] not in kinds:
        raise EvidenceRefused(
            "file_type",
            f"不支持的文件类型：{name} / {name}: not a supported {_accepted_words(kinds)} file",
            name=name,
        )
    kind, content_type, ext = found
    limit = max_bytes(kind)
    if upload.size > limit:
        raise EvidenceRefused(
            "file_too_large",
            f"文件过大：{name} 超过 {limit // 1048576} MB / {name} is larger than {limit} bytes",
            name=name,
            max_bytes=limit,
            size=upload.size,
        )
    if upload.size == 0:
        raise EvidenceRefused("file_empty", f"空文件：{name} / {name} is empty", name=name)
    ev = EvidenceFile(
        upload=upload,
        kind=kind,
        content_type=content_type,
        ext=ext,
        size=upload.size,
        sha256=file_sha256(upload),
        meta={"name": name[:200], "declared_type": (getattr(upload, "content_type", "") or "")[:100]},
    )
    if kind == PHOTO:
        _read_photo(ev)
    return ev


# --- photos -----------------------------------------------------------------------------------

_IFD_EXIF, _IFD_GPS = 0x8769, 0x8825
_DATETIME, _DATETIME_ORIGINAL, _OFFSET_ORIGINAL = 0x0132, 0x9003, 0x9011
_GPS_LAT_REF, _GPS_LAT, _GPS_LNG_REF, _GPS_LNG, _GPS_TIME, _GPS_DATE = 1, 2, 3, 4, 7, 29
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)


def _open(upload: Any) -> Image.Image:
    upload.seek(0)
    return Image.open(upload)


def _read_photo(ev: EvidenceFile) -> None:
    """Size, EXIF and the thumbnail in one pass; decoding the pixels (scaled) is also what
    catches a JPEG header on garbage or a truncated file."""
    px = settings.EVIDENCE_THUMBNAIL_PX
    try:
        with _open(ev.upload) as img:
            ev.meta.update(width=img.width, height=img.height, format=img.format)
            exif = img.getexif()
            if img.format == "JPEG":
                # DCT scaling while decoding: a 12-megapixel photo decodes at 1/8 size. Asked for
                # the thumbnail's own box (320×240 for 4:3), not px×px, or a 4:3 photo decodes
                # at twice the scale it needs.
                scale = px / max(img.width, img.height)
                img.draft("RGB", (max(1, round(img.width * scale)), max(1, round(img.height * scale))))
            thumb = ImageOps.exif_transpose(img)
            thumb.thumbnail((px, px))
            ev.thumbnail = _jpeg(thumb)
    except _IMAGE_ERRORS as exc:
        raise EvidenceRefused(
            "file_corrupt",
            f"照片无法读取：{ev.meta['name']} / {ev.meta['name']}: not a readable image ({exc.__class__.__name__})",
            name=ev.meta["name"],
        ) from None
    finally:
        ev.upload.seek(0)
    ev.taken_at, source = exif_time(exif)
    ev.gps = exif_gps(exif)
    ev.meta["exif"] = {
        "taken_at": ev.taken_at.isoformat() if ev.taken_at else None,
        "taken_at_source": source,
        "gps": [round(ev.gps[0], 7), round(ev.gps[1], 7)] if ev.gps else None,
    }


def _jpeg(img: Image.Image) -> bytes:
    if img.mode in ("RGBA", "LA", "P", "PA"):
        img = img.convert("RGBA")
        flat = Image.new("RGB", img.size, (255, 255, 255))
        flat.paste(img, mask=img.getchannel("A"))
        img = flat
    elif img.mode != "RGB":
        img = img.convert("RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


def _parse_exif_time(text: object) -> datetime | None:
    try:
        return datetime.strptime(str(text).strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except (TypeError, ValueError):
        return None


def exif_time(exif: Exif | None) -> tuple[datetime | None, str | None]:
    """(aware capture time, how its zone was known) or (None, None).

    DateTimeOriginal carries no zone. With OffsetTimeOriginal it is exact ("offset"); else the
    GPS date and time, which are UTC ("gps"); else it is read as the city's local time
    (TIME_ZONE, "local"), which is what a phone set to China time writes."""
    sub = exif.get_ifd(_IFD_EXIF) if exif else {}
    local = _parse_exif_time(sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)) if exif else None
    offset = str(sub.get(_OFFSET_ORIGINAL) or "").strip().rstrip("\x00")
    if local is not None and len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        try:
            return datetime.fromisoformat(local.isoformat() + offset), "offset"
        except ValueError:
            pass
    gps = exif.get_ifd(_IFD_GPS) if exif else {}
    stamp, date = gps.get(_GPS_TIME), gps.get(_GPS_DATE)
    if stamp and date:
        try:
            h, m, s = (float(v) for v in stamp)
            day = datetime.strptime(str(date).strip().rstrip("\x00"), "%Y:%m:%d")
            utc = day.replace(hour=int(h), minute=int(m), second=int(s), tzinfo=UTC)
            if local is None or abs((local.replace(tzinfo=ZoneInfo(settings.TIME_ZONE)) - utc).total_seconds()) > 60:
                # No local time, or one that disagrees with the satellite clock: trust the latter.
                return utc, "gps"
        except (TypeError, ValueError, ZeroDivisionError):
            pass
    if local is not None:
        return local.replace(tzinfo=ZoneInfo(settings.TIME_ZONE)), "local"
    return None, None


def _degrees(value: Any) -> float:
    d, m, s = (float(v) for v in value)
    return d + m / 60 + s / 3600


def exif_gps(exif: Exif | None) -> LngLat | None:
    """(lng, lat) from EXIF GPS, or None. Phone cameras write WGS-84 (GPSMapDatum), not GCJ-02."""
    if not exif:
        return None
    gps = exif.get_ifd(_IFD_GPS)
    try:
        lat, lng = _degrees(gps[_GPS_LAT]), _degrees(gps[_GPS_LNG])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if str(gps.get(_GPS_LAT_REF, "N")).strip().upper().startswith("S"):
        lat = -lat
    if str(gps.get(_GPS_LNG_REF, "E")).strip().upper().startswith("W"):
        lng = -lng
    if not (-90 <= lat <= 90 and -180 <= lng <= 180) or (lat == 0 and lng == 0):
        return None
    return lng, lat


# --- compared with the check-in -----------------------------------------------------------------


def compare(file: EvidenceFile, reference: dict | None, place: LngLat | None, geofence_m: float) -> dict:
    """EXIF time and GPS against the reference ({type, event, at, wgs84}: a check-in, or a
    report's own position and time) and the place of the work. Flags, never refusals: many apps
    strip EXIF, and the reviewer weighs what is left."""
    out: dict = {
        "reference": None,
        "time_diff_s": None,
        "distance_to_reference_m": None,
        "distance_to_appeal_m": None,
        "geofence_m": geofence_m,
        "flags": [],
    }
    if reference is not None:
        out["reference"] = {
            "type": reference["type"],
            "event": reference["event"],
            "at": reference["at"].isoformat(),
            "wgs84": reference["wgs84"],
        }
    if file.kind != PHOTO:
        return out
    flags = out["flags"]
    if file.taken_at is None:
        flags.append("no_exif_time")
    elif reference is not None:
        out["time_diff_s"] = round((file.taken_at - reference["at"]).total_seconds())
        if abs(out["time_diff_s"]) > settings.EVIDENCE_TIME_TOLERANCE_MINUTES * 60:
            flags.append("time_far")
    if file.gps is None:
        flags.append("no_exif_gps")
    else:
        to_ref, to_place = geodesic([(file.gps, reference["wgs84"] if reference else None), (file.gps, place)])
        out["distance_to_reference_m"], out["distance_to_appeal_m"] = to_ref, to_place
        far = to_place if to_place is not None else to_ref
        if far is not None and far > geofence_m:
            flags.append("gps_far")
    return out
