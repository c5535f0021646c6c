"""The OpenAPI schema (drf-spectacular, /api/schema/) agrees with the answers (#11).

The schema is generated without a warning, and schemathesis sends every operation a bounded
number of requests built from it (derandomized, so every run sends the same ones) on a small
demo city, as a suitable role of each API family, and checks each answer against it: no
server error, a documented status and content type, a body of the documented shape. Where
the generated path names a ticket or an object, the same request goes once more with a real
one, so that the answers of found objects are checked too. Everything runs in the test
database's transactions and is rolled back."""

import json
from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase
from hypothesis import settings as given_settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 12
NEGATIVE_EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_schema_generates_without_warnings(tmp_path):
    """`manage.py spectacular --validate --fail-on-warn`: every view described, the schema valid."""
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stderr=StringIO())
    assert out.stat().st_size > 0


def test_the_schema_names_what_the_issue_found_missing():
    """#11: the phone's grids are a paged FeatureCollection of `features`; required parameters,
    enums, the Idempotency-Key pattern and the error answers are in the schema."""
    import re

    from rest_framework.test import APIRequestFactory

    from gridgov.idempotency.replay import BadKey, idempotency_key

    doc = SchemaGenerator().get_schema(request=None, public=True)
    paths = doc["paths"]
    grids = paths["/api/mobile/v1/me/grids"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    grids = doc["components"]["schemas"][grids["$ref"].rsplit("/", 1)[1]] if "$ref" in grids else grids
    assert "features" in grids["required"] and "results" not in grids["properties"]
    assert grids["properties"]["features"]["items"]["properties"]["type"]["enum"] == ["Feature"]
    locate = {p["name"]: p for p in paths["/api/v1/locate"]["get"]["parameters"]}
    assert locate["lng"]["required"] and locate["lat"]["required"] and "wgs84" in locate["crs"]["schema"]["enum"]
    level = {p["name"]: p for p in paths["/api/v1/areas/{level}/"]["get"]["parameters"]}["level"]
    assert set(level["schema"]["enum"]) == {"district", "street", "community", "grid"}
    accept = paths["/api/mobile/v1/tasks/{ticket_no}/accept"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "422"} <= set(accept["responses"])
    key = next(p for p in accept["parameters"] if p["name"] == "Idempotency-Key")
    pattern = re.compile(key["schema"]["pattern"])
    factory = APIRequestFactory()
    for value in ("3f2b", "a" * 255, "a" * 256, "a b", "键", "x\x7f"):
        try:
            accepted = idempotency_key(factory.post("/", HTTP_IDEMPOTENCY_KEY=value)) is not None
        except BadKey:
            accepted = False
        assert bool(pattern.match(value)) == accepted, value


def _schema(mode=GenerationMode.POSITIVE, max_examples=MAX_EXAMPLES):
    raw = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    loaded = schemathesis.openapi.from_dict(raw)
    # Fuzzed and from the schema's examples; schemathesis's coverage phase (every boundary and
    # invalid value of every parameter) is not bounded by max_examples.
    loaded.config.generation.update(modes=[mode], max_examples=max_examples, deterministic=True)
    loaded.config.phases.update(phases=["examples", "fuzzing"])
    return loaded


schema = _schema()
# Requests the schema says are wrong (bad types, missing or out-of-range values, wrong bodies):
# each must be refused with a 4xx, never a server error.
negative = _schema(GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)


@pytest.fixture(scope="module")
def app():
    """Django's WSGI handler, serving requests in the test's transaction: as with the test
    client, the request signals do not recycle the database connection (that would close it
    inside the transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def small_city(django_db_setup, django_db_blocker):
    """A 60-grid demo city with its users and a week of history, for the module; rolled back
    at its end. Tokens: the hotline centre for /api/v1/ and the maps, a grid worker for the
    phone API."""
    from knox.models import AuthToken

    from fixtures.democity import load_city, plan_city
    from fixtures.demohistory import load_history
    from gridgov.accounts.models import Department, Role, User
    from gridgov.appeals import field_tasks
    from gridgov.appeals.models import Appeal
    from gridgov.appeals.routing.selectors import locality_department_code
    from gridgov.whistles.services import whistle_blow

    with django_db_blocker.unblock(), transaction.atomic():
        # The history ends at a fixed moment, so every run has the same appeals and tasks.
        now = datetime(2026, 11, 18, 16, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
        load_city(plan_city(grids=60, seed=3), when=now - timedelta(days=120))
        load_history(days=7, per_day=60, seed=5, now=now, hotspots=0, clusters=0)
        hotline = User.objects.get(username="hotline")
        worker = User.objects.filter(role=Role.GRID_WORKER).order_by("username").first()
        # The worker's task: the latest appeal in its first grid, dispatched to the locality (the
        # street office), which a grid worker works; its actions get past 403 to the workflow.
        task = Appeal.objects.filter(grid_code=worker.grid_codes[0]).order_by("-received_at", "-pk").first()
        assert task is not None, "no appeal in the worker's grid: found-task answers would go unchecked"
        Appeal.objects.filter(pk=task.pk).update(
            state="dispatched", department=Department.objects.get(code=locality_department_code(task.grid_code))
        )
        assert field_tasks.may_work(worker, Appeal.objects.get(pk=task.pk), "accept")
        street_code = worker.grid_codes[0][:9]
        street = User.objects.get(role=Role.STREET_OFFICE, area_code=street_code)
        appeal_ids = list(
            Appeal.objects.filter(grid_code__startswith=street_code, position__isnull=False).values_list(
                "pk", flat=True
            )[:3]
        )
        call = whistle_blow(actor=street, problem="井盖破损，多次反映", street_code=street_code, appeal_ids=appeal_ids)
        yield {
            "tokens": {"hotline": AuthToken.objects.create(hotline)[1], "worker": AuthToken.objects.create(worker)[1]},
            "tickets": {
                "worker": task.ticket_no,
                "hotline": Appeal.objects.filter(state="dispatched").order_by("pk").first().ticket_no,
            },
            "ids": {
                "/api/v1/whistles/calls/": call.pk,
                "/api/v1/whistles/musters/": call.musters.order_by("pk").first().pk,
            },
        }
        transaction.set_rollback(True)


def _who(path):
    return "worker" if path.startswith("/api/mobile/") else "hotline"


def _call(case, app, city):
    headers = {}
    if case.path != "/api/mobile/v1/login":
        headers["Authorization"] = f"Token {city['tokens'][_who(case.path)]}"
    response = case.call(app=app, headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)


@schema.parametrize()
@given_settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_answers_agree_with_the_schema(case, app, small_city, db, settings):
    # Login attempts are counted in a cache of their own, not in the shared Redis.
    settings.CACHES = {**settings.CACHES, "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    _call(case, app, small_city)
    params = case.path_parameters or {}
    if "ticket_no" in params:
        params["ticket_no"] = small_city["tickets"][_who(case.path)]
        _call(case, app, small_city)
    elif "id" in params:
        found = [pk for prefix, pk in small_city["ids"].items() if case.path.startswith(prefix)]
        if found:
            params["id"] = found[0]
            _call(case, app, small_city)


@negative.parametrize()
@given_settings(
    max_examples=NEGATIVE_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_wrong_requests_are_refused_not_server_errors(case, app, small_city, db, settings):
    settings.CACHES = {**settings.CACHES, "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    headers = {}
    if case.path != "/api/mobile/v1/login":
        headers["Authorization"] = f"Token {small_city['tokens'][_who(case.path)]}"
    response = case.call(app=app, headers=headers)
    case.validate_response(response, checks=[not_a_server_error], headers=headers)
    assert response.status_code < 500
