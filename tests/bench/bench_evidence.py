"""Evidence uploads through the phone API (issue: field work).

In-process Django test client, multipart, knox token, the full middleware and view stack:
BENCH_EVIDENCE_N (500) distinct ~200 KB JPEGs (1600×1200, with EXIF time and GPS) uploaded to
50 tasks that a grid worker has accepted and checked in on. Prints, in one run:
  1. inspection alone (sniff, SHA-256, EXIF, 320 px thumbnail), no database: the Pillow floor;
  2. first uploads, each with its own Idempotency-Key: uploads/s, MB/s, latency p50/p90/p99;
  3. the same requests replayed with the same keys (a phone's offline queue sent twice);
  4. the same files again without a key (the SHA-256 finds the original);
and checks that the database holds exactly one Attachment per photo.

    python -m tests.bench.bench_evidence          (BENCH_EVIDENCE_N=500)
"""

import io
import os
import shutil
import tempfile
import time
import uuid

import numpy as np

from tests.bench.common import header, percentiles, setup_django, timed

N = int(os.environ.get("BENCH_EVIDENCE_N", 500))
TASKS = 50
DATABASE = os.environ.get("GRIDGOV_BENCH_EVIDENCE_DB", "gridgov_bench_evidence")


def make_photos(n, seed=7):
    """n distinct JPEGs of ~200 KB: one noisy 1600×1200 picture, a different 16×16 block in each."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = 1200, 1600
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 / w), (y * 255 / h), ((x + y) * 127 / (w + h))], axis=-1)
    base = np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x8769] = {0x9003: time.strftime("%Y:%m:%d %H:%M:%S"), 0x9011: "+08:00"}
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 36.0), 3: "E", 4: (116.0, 24.0, 18.0)}
    out = []
    for i in range(n):
        img = base.copy()
        r, c = divmod(i, w // 16)
        img[(r * 16) % h : (r * 16) % h + 16, c * 16 : c * 16 + 16] = (i * 37) % 256
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=85, exif=exif)
        out.append(buf.getvalue())
    return out


def build_world():
    """The test city, a small catalogue, a grid worker with a token, and TASKS appeals in the
    worker's grid, accepted and checked in (through the services)."""
    from django.core.management import call_command
    from knox.models import AuthToken

    from fixtures.testcity import build_test_city
    from gridgov.accounts.models import Department, Role, User
    from gridgov.appeals import field_tasks
    from gridgov.appeals.models import Category
    from gridgov.appeals.services import appeal_register

    call_command("flush", interactive=False, verbosity=0)  # this benchmark's own database
    build_test_city()
    Department.objects.create(
        code="jiedao-110101001", name="甲街道办事处", district_code="110101", street_code="110101001"
    )
    l1 = Category.objects.create(level=1, code="01", name="城市管理")
    l2 = Category.objects.create(level=2, code="0101", name="环境卫生", parent=l1)
    Category.objects.create(level=3, code="010103", name="楼道堆物", parent=l2, time_limit="7d", keywords=["楼道"])
    operator = User.objects.create_user("bench-operator", password="bench-pw-1", role=Role.OPERATOR)
    worker = User.objects.create_user(
        "bench-worker", password="bench-pw-1", role=Role.GRID_WORKER, grid_codes=["110101001001001"]
    )
    rng = np.random.default_rng(3)
    appeals = []
    for i in range(TASKS):
        lng, lat = 116.401 + rng.random() * 0.008, 39.901 + rng.random() * 0.018
        appeal, _ = appeal_register(
            data={"text": f"楼道堆物第{i}处，影响通行", "lng": lng, "lat": lat, "category_code": "010103"},
            actor=operator,
        )
        field_tasks.task_accept(appeal_id=appeal.pk, actor=worker)
        field_tasks.task_check_in(appeal_id=appeal.pk, actor=worker, lng=lng, lat=lat + 0.0002)
        appeals.append(appeal)
    _, token = AuthToken.objects.create(user=worker)
    return worker, token, appeals


def upload_all(client, token, appeals, photos, keys):
    from django.core.files.uploadedfile import SimpleUploadedFile

    latencies, statuses = [], {}
    for i, content in enumerate(photos):
        appeal = appeals[i % len(appeals)]
        headers = {"HTTP_AUTHORIZATION": f"Token {token}"}
        if keys is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = keys[i]
        t0 = time.perf_counter()
        r = client.post(
            f"/api/mobile/v1/tasks/{appeal.ticket_no}/evidence",
            {"file": SimpleUploadedFile(f"IMG_{i:04d}.jpg", content, "image/jpeg"), "purpose": "after"},
            **headers,
        )
        latencies.append(time.perf_counter() - t0)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    return latencies, statuses


def report(label, latencies, statuses, total_bytes):
    total = sum(latencies)
    p = percentiles(latencies)
    print(
        f"  {label:<34} {len(latencies) / total:7.1f} uploads/s  {total_bytes / total / 1e6:6.1f} MB/s   "
        f"p50 {p['p50']:6.1f} ms  p90 {p['p90']:6.1f} ms  p99 {p['p99']:6.1f} ms  max {p['max']:6.1f} ms   "
        f"status {dict(sorted(statuses.items()))}",
        flush=True,
    )


def main():
    media = tempfile.mkdtemp(prefix="gridgov-bench-media-")
    os.environ["MEDIA_ROOT"] = media
    try:
        setup_django(DATABASE)
        from django.conf import settings
        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.test import Client
        from django.test.utils import setup_test_environment

        from gridgov.appeals.models import Attachment
        from gridgov.fieldwork.evidence import inspect

        setup_test_environment()  # 'testserver' allowed; the in-process client needs it
        settings.DEBUG = False  # no query log growing over thousands of requests
        header(f"evidence uploads: {N} photos through POST /api/mobile/v1/tasks/<ticket>/evidence")
        with timed(f"generate {N} distinct JPEGs (1600x1200, EXIF)", N, "photos"):
            photos = make_photos(N)
        total_bytes = sum(map(len, photos))
        print(f"  photo size: mean {total_bytes / N / 1024:.0f} KB, total {total_bytes / 1e6:.1f} MB")
        with timed(f"set up: test city, {TASKS} tasks accepted and checked in"):
            _worker, token, appeals = build_world()

        with timed("1. inspect only (sniff, SHA-256, EXIF, thumbnail)", N, "photos"):
            for i, content in enumerate(photos):
                inspect(SimpleUploadedFile(f"x{i}.jpg", content, "image/jpeg"))

        client = Client()
        keys = [str(uuid.uuid4()) for _ in photos]
        lat, st = upload_all(client, token, appeals, photos, keys)
        report("2. first upload, with keys", lat, st, total_bytes)
        stored = Attachment.objects.count()
        lat, st = upload_all(client, token, appeals, photos, keys)
        report("3. replayed, same keys", lat, st, total_bytes)
        lat, st = upload_all(client, token, appeals, photos, None)
        report("4. again without a key (SHA-256)", lat, st, total_bytes)
        after = Attachment.objects.count()
        thumbs = sum(1 for a in Attachment.objects.only("meta") if a.meta.get("thumbnail"))
        print(
            f"  attachments stored: {stored} after the first pass, {after} after all three "
            f"({'no twins' if stored == after == N else 'TWINS OR LOSSES'}); thumbnails: {thumbs}"
        )
    finally:
        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
