"""gridgov/parsers.py: every JSON body is read by one parser, so a malformed body is a 400 with
a Chinese message on every endpoint, never a 500 (#11). Callers without the right are still
refused first, before their body is read."""

import pytest
from rest_framework.test import APIClient

from gridgov.appeals.models import Appeal
from gridgov.parsers import JSON_MAX_DEPTH, json_depth_exceeds

from .mobile_api.fieldwork import STREET1, register, task_url, token_client

pytestmark = pytest.mark.django_db

DEEP = b"[" * 1000 + b"]" * 1000  # 2 KB; Python's json module recurses ~1,000 deep and fails
BODIES = {
    "deep": (DEEP, "嵌套超过"),
    "deep_object": (b'{"a":' * 600 + b"1" + b"}" * 600, "嵌套超过"),
    "just_too_deep": (b"[" * (JSON_MAX_DEPTH + 1) + b"]" * (JSON_MAX_DEPTH + 1), "嵌套超过"),
    "orjson_limit": (b"[" * 2000 + b"]" * 2000, "嵌套超过"),
    "not_utf8": (b'{"username": "\xff\xfe", "password": "x"}', "UTF-8"),
    "lone_surrogate": (b'{"username": "\\ud800", "password": "x"}', "UTF-8"),
    "truncated": (b'{"username": "a", "pass', "不是有效的 JSON"),
    "nan": (b'{"lng": NaN, "lat": 39.9}', "不是有效的 JSON"),
}


@pytest.fixture
def people(city, catalogue, make_user):
    d = catalogue["departments"]
    return {
        "operator": make_user("operator"),
        "street1": make_user("street_office", area_code="110101001", department=d["jiedao-110101001"]),
        "worker1": make_user("grid_worker", grid_codes=["110101001001001"]),
        "worker2": make_user("grid_worker", grid_codes=["110101002001001"]),
        "leader": make_user("leader", area_code="110101"),
    }


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle-test-api"},
    }


def raw_post(client, url, body):
    return client.generic("POST", url, body, content_type="application/json")


def assert_refused(res, words):
    assert res.status_code == 400, res.content[:300]
    data = res.json()
    assert data["code"] == "parse_error" and words in data["detail"], data


@pytest.mark.parametrize("name", sorted(BODIES))
def test_a_malformed_body_is_a_400_on_every_kind_of_endpoint(people, name):
    body, words = BODIES[name]
    a = register(people["operator"], "楼道里堆物很多，影响通行，请尽快处理", STREET1)
    endpoints = [
        (APIClient(), "/api/mobile/v1/login"),  # anonymous
        (token_client(people["operator"]), "/api/v1/appeals"),
        (token_client(people["operator"]), "/api/v1/appeals/bulk"),
        (token_client(people["operator"]), "/api/v1/locate/bulk"),
        (token_client(people["worker1"]), task_url(a, "check-in")),
        (token_client(people["street1"]), "/api/v1/whistles/calls"),
    ]
    for client, url in endpoints:
        assert_refused(raw_post(client, url, body), words)
    assert Appeal.objects.count() == 1


def test_callers_without_the_right_are_refused_before_the_body_is_read(people):
    a = register(people["operator"], "楼道里堆物很多，影响通行，请尽快处理", STREET1)
    assert raw_post(APIClient(), "/api/v1/appeals", DEEP).status_code in (401, 403)
    assert raw_post(APIClient(), task_url(a, "check-in"), DEEP).status_code == 401
    # An outsider's phone: the body is refused as a body, and nothing of the task is told.
    res = raw_post(token_client(people["worker2"]), task_url(a, "check-in"), DEEP)
    assert res.status_code == 400 and a.ticket_no not in res.content.decode()
    good = token_client(people["worker2"]).post(
        task_url(a, "check-in"), {"lng": STREET1[0], "lat": STREET1[1]}, format="json"
    )
    assert good.status_code == 404


def test_well_formed_bodies_still_pass(people):
    c = token_client(people["operator"])
    nested_geojson = {"crs": "wgs84", "points": [[116.405, 39.91]], "note": '[[[[[[{{{{ \\" ]]'}
    res = c.post("/api/v1/locate/bulk", nested_geojson, format="json")
    assert res.status_code == 200 and res.json()["results"][0]["grid_code"] == "110101001001001"


def test_depth_is_read_from_brackets_outside_strings():
    four = b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "b": [[1, 2], {"c": []}]}'
    assert not json_depth_exceeds(four, 4) and json_depth_exceeds(four, 3)
    assert json_depth_exceeds(b'{"a": [[1]]}', 2)
    assert not json_depth_exceeds(b'{"a": [[1]]}', 3)
    assert not json_depth_exceeds(b'["\\"[[[[", {}]', 2)
