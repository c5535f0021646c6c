"""/healthz: is the database, PostGIS and Redis answering? 200 when all are, 503 otherwise.

Anyone (a load balancer, a monitor) gets "ok" / "down" per component; versions and error texts
tell an attacker which known holes to try, so only staff see them."""

from typing import Any

import redis
from django.conf import settings
from django.db import connection, transaction
from django.http import JsonResponse

from gridgov.accounts.models import Role


def _is_staff(user):
    return bool(
        user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser or user.role == Role.ADMIN)
    )


def _error(exc):
    return {"error": str(exc)[:200]}


def _probe():
    """{component: (up, details)}."""
    out = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT version()")
            out["database"] = (True, {"version": cur.fetchone()[0].split(",")[0]})
            try:
                # A savepoint, so that a missing extension does not abort a surrounding transaction.
                with transaction.atomic():
                    cur.execute("SELECT postgis_lib_version(), postgis_full_version()")
                    postgis, full = cur.fetchone()
                out["postgis"] = (True, {"version": postgis, "geos": "GEOS" in full, "proj": "PROJ" in full})
            except Exception as exc:  # noqa: BLE001 — any failure is the answer, not a 500
                out["postgis"] = (False, _error(exc))
    except Exception as exc:  # noqa: BLE001
        out["database"] = out["postgis"] = (False, _error(exc))
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        try:
            out["redis"] = (True, {"version": client.info("server").get("redis_version")})
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        out["redis"] = (False, _error(exc))
    return out


def healthz(request):
    probe = _probe()
    ok = all(up for up, _details in probe.values())
    report: dict[str, Any] = {name: "ok" if up else "down" for name, (up, _details) in probe.items()}
    report["status"] = "ok" if ok else "down"
    if _is_staff(request.user):
        report["details"] = {name: details for name, (_up, details) in probe.items()}
    return JsonResponse(report, status=200 if ok else 503)
