"""/healthz: is the database, PostGIS and Redis answering? 200 when all are, 503 otherwise."""

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def healthz(request):
    report, ok = {}, True
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT version(), postgis_lib_version(), postgis_full_version()")
            pg, postgis, full = cur.fetchone()
        report["database"] = {"ok": True, "version": pg.split(",")[0]}
        report["postgis"] = {"ok": True, "version": postgis, "geos": "GEOS" in full, "proj": "PROJ" in full}
    except Exception as exc:  # any failure is the answer, not a 500
        ok = False
        report["database"] = {"ok": False, "error": str(exc)[:200]}
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        info = client.info("server")
        report["redis"] = {"ok": True, "version": info.get("redis_version")}
    except Exception as exc:
        ok = False
        report["redis"] = {"ok": False, "error": str(exc)[:200]}
    report["status"] = "ok" if ok else "error"
    return JsonResponse(report, status=200 if ok else 503)
