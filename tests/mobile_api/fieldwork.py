"""Shared set-up for the field-work tests (tasks, evidence, idempotency, grid reports): people in
the test city, a few registered appeals, token clients, and files made with Pillow."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from knox.models import AuthToken
from PIL import Image
from rest_framework.test import APIClient

from gridgov.accounts.models import Role
from gridgov.appeals.services import appeal_register

STREET1 = (116.405, 39.91)  # grid 110101001001001, 甲街道
STREET1_GRID2 = (116.415, 39.91)  # grid 110101001001002
STREET2 = (116.425, 39.91)  # grid 110101002001001, 乙街道
CLUTTER = "楼道里堆物很多，影响通行，请尽快处理"  # 010103 楼道堆物: no rule → the locality (first receiver)
GARBAGE = "小区门口垃圾桶满了好几天没人清运，味道很大"
GAS = "楼下闻到很浓的煤气味，怀疑燃气泄漏"
TASKS = "/api/mobile/v1/tasks"
REPORTS = "/api/mobile/v1/reports"


def task_url(appeal, action=""):
    ticket = appeal if isinstance(appeal, str) else appeal.ticket_no
    return f"{TASKS}/{ticket}" + (f"/{action}" if action else "")


def token_client(user):
    """A client that authenticates like the phone: a real knox token."""
    _, token = AuthToken.objects.create(user=user)
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return c


def register(actor, text, at, **data):
    data.update(
        text=text,
        lng=at[0],
        lat=at[1],
        appellant_name=data.get("appellant_name", "张三丰"),
        appellant_phone=data.get("appellant_phone", "13812345678"),
    )
    return appeal_register(data=data, actor=actor)[0]


@pytest.fixture(autouse=True)
def _field_settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.GEOFENCE_METRES = 200.0
    settings.GEOFENCE_MODE = "refuse"
    settings.CATEGORY_GEOFENCE_METRES = {}
    settings.EVIDENCE_REQUIRED_DEFAULT = ("after",)
    settings.CATEGORY_REQUIRED_EVIDENCE = {}


@pytest.fixture
def people(city, catalogue, make_user):
    d = catalogue["departments"]
    return {
        "operator": make_user(Role.OPERATOR),
        "worker1": make_user(Role.GRID_WORKER, grid_codes=["110101001001001"]),
        "worker2": make_user(Role.GRID_WORKER, grid_codes=["110101001001002"]),
        "worker3": make_user(Role.GRID_WORKER, grid_codes=["110101002001001"]),
        "chengguan": make_user(Role.DEPARTMENT, department=d["chengguan"]),
        "ranqi": make_user(Role.DEPARTMENT, department=d["ranqi"]),
        "gongan": make_user(Role.DEPARTMENT, department=d["gongan"]),
        "jiedao1": make_user(Role.DEPARTMENT, department=d["jiedao-110101001"]),
        "street1": make_user(Role.STREET_OFFICE, area_code="110101001"),
        "leader": make_user(Role.LEADER, area_code="110101"),
    }


@pytest.fixture
def appeals(people):
    """A: clutter in grid 1 (the locality leads: worker1's task), B: clutter in grid 2 (worker2's),
    C: garbage in grid 1 (城管委 leads), D: garbage in street 2 (乙街道 leads by rule: worker3's),
    E: gas in grid 1 (燃气集团 leads, police and the locality assist)."""
    op = people["operator"]
    return {
        "A": register(op, CLUTTER, STREET1, category_code="010103"),
        "B": register(op, CLUTTER, STREET1_GRID2, category_code="010103"),
        "C": register(op, GARBAGE, STREET1, category_code="010101"),
        "D": register(op, GARBAGE, STREET2, category_code="010101"),
        "E": register(op, GAS, STREET1, category_code="010102"),
    }


# --- files ------------------------------------------------------------------------------------


def _rational(value):
    d = int(value)
    m = int((value - d) * 60)
    s = round(((value - d) * 60 - m) * 60, 4)
    return (float(d), float(m), float(s))


def photo_bytes(fmt="JPEG", size=(640, 480), colour=(40, 120, 200), taken_at=None, gps=None, seed=0):
    """An image made with Pillow; `taken_at` (aware) and `gps` (lng, lat) go into EXIF."""
    img = Image.new("RGB", size, colour)
    img.putpixel((seed % size[0], (seed // size[0]) % size[1]), (seed % 256, 0, 0))
    exif = Image.Exif()
    if taken_at is not None:
        local = timezone.localtime(taken_at)
        exif[0x0132] = local.strftime("%Y:%m:%d %H:%M:%S")
        exif[0x8769] = {
            0x9003: local.strftime("%Y:%m:%d %H:%M:%S"),
            0x9011: local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:],
        }
    if gps is not None:
        lng, lat = gps
        exif[0x8825] = {
            1: "N" if lat >= 0 else "S",
            2: _rational(abs(lat)),
            3: "E" if lng >= 0 else "W",
            4: _rational(abs(lng)),
        }
    buf = io.BytesIO()
    kw = {"exif": exif} if len(exif) else {}
    if fmt == "HEIF":
        kw["quality"] = 50
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def upload(content, name="photo.jpg", content_type="image/jpeg"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def mp4_bytes(brand=b"isom"):
    ftyp = b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x02\x00" + brand + b"mp41"
    return ftyp + b"\x00\x00\x00\x08free" + b"\x00" * 256


def local_now():
    return timezone.localtime(timezone.now())
