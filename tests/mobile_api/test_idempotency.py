"""Every POST is safe to retry: the first answer is stored and replayed for the same user and
key, another body under the same key is refused, and a phone replaying its queue never makes
twins — with a key, with a client_id, or (for files) with neither."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from gridgov.appeals.models import AppealEvent, Attachment
from gridgov.idempotency.models import IdempotencyRecord, idempotency_purge

from . import fieldwork
from .fieldwork import photo_bytes, task_url, token_client, upload

_field_settings, people, appeals = fieldwork._field_settings, fieldwork.people, fieldwork.appeals
pytestmark = pytest.mark.django_db


@pytest.fixture
def on_site(appeals, people):
    a, w = appeals["A"], token_client(people["worker1"])
    assert w.post(task_url(a, "accept"), {}, format="json").status_code == 200
    assert w.post(task_url(a, "check-in"), {"lng": 116.405, "lat": 39.9105}, format="json").status_code == 200
    return a, w


def send_photo(client, appeal, content, key=None, **data):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        task_url(appeal, "evidence"),
        {"file": upload(content), "purpose": "after", **data},
        format="multipart",
        **headers,
    )


def test_the_same_upload_three_times_with_a_key_and_without_makes_one_attachment(on_site):
    a, w = on_site
    content, key = photo_bytes(seed=11), str(uuid.uuid4())
    answers = [send_photo(w, a, content, key) for _ in range(3)]
    assert [r.status_code for r in answers] == [201, 201, 201]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    assert answers[0].get("Idempotent-Replayed") is None
    assert answers[1]["Idempotent-Replayed"] == answers[2]["Idempotent-Replayed"] == "true"
    without = [send_photo(w, a, content) for _ in range(3)]  # no key: the SHA-256 still finds it
    assert [r.status_code for r in without] == [200, 200, 200]
    assert {r.json()["evidence"]["id"] for r in without} == {answers[0].json()["evidence"]["id"]}
    assert Attachment.objects.filter(appeal=a).count() == 1
    assert AppealEvent.objects.filter(appeal=a, event="evidence").count() == 1
    assert IdempotencyRecord.objects.filter(key=key).count() == 1


def test_the_same_key_with_another_body_is_refused(on_site, appeals):
    a, w = on_site
    key = "offline-queue-item-42"
    assert send_photo(w, a, photo_bytes(seed=1), key).status_code == 201
    r = send_photo(w, a, photo_bytes(seed=2), key)  # another photo
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"
    r = send_photo(w, a, photo_bytes(seed=1), key, purpose="before")  # another field
    assert r.status_code == 422
    r = w.post(task_url(a, "complete"), {"note": "done"}, format="json", HTTP_IDEMPOTENCY_KEY=key)  # another path
    assert r.status_code == 422 and r.json()["path"].endswith("/evidence")
    assert Attachment.objects.count() == 1


def test_a_file_renamed_by_the_phone_is_the_same_request(on_site):
    a, w = on_site
    content, key = photo_bytes(seed=3), str(uuid.uuid4())
    first = w.post(
        task_url(a, "evidence"),
        {"file": upload(content, "IMG_1.jpg"), "purpose": "after"},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    again = w.post(
        task_url(a, "evidence"),
        {"file": upload(content, "retry-IMG_1.jpg"), "purpose": "after"},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    assert first.status_code == again.status_code == 201 and again["Idempotent-Replayed"] == "true"


def test_keys_belong_to_one_user(appeals, people):
    key = "same-key"
    w1, w2 = token_client(people["worker1"]), token_client(people["worker2"])
    assert w1.post(task_url(appeals["A"], "accept"), {}, format="json", HTTP_IDEMPOTENCY_KEY=key).status_code == 200
    r = w2.post(task_url(appeals["B"], "accept"), {}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert r.status_code == 200 and r.json()["ticket_no"] == appeals["B"].ticket_no and "Idempotent-Replayed" not in r
    assert IdempotencyRecord.objects.filter(key=key).count() == 2


def test_an_action_retried_with_its_key_happens_once(appeals, people):
    a, w = appeals["A"], token_client(people["worker1"])
    key = str(uuid.uuid4())
    first = w.post(task_url(a, "accept"), {"note": "收到"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    again = w.post(task_url(a, "accept"), {"note": "收到"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert AppealEvent.objects.filter(appeal=a, event="accept").count() == 1
    # without the key the retry is answered by the workflow: already accepted, nothing changes
    assert w.post(task_url(a, "accept"), {"note": "收到"}, format="json").status_code == 409
    assert AppealEvent.objects.filter(appeal=a, event="accept").count() == 1


def test_a_client_id_field_works_like_the_header(appeals, people):
    a, w = appeals["A"], token_client(people["worker1"])
    cid = str(uuid.uuid4())
    first = w.post(task_url(a, "accept"), {"client_id": cid}, format="json")
    again = w.post(task_url(a, "accept"), {"client_id": cid.upper()}, format="json")  # the same UUID
    assert first.status_code == 200 and again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert IdempotencyRecord.objects.get().key == cid


def test_refusals_are_not_stored(appeals, people):
    """A check-in queued before the accept reached the server is refused (409) and retried
    with the same key after the accept: it then happens."""
    a, w = appeals["A"], token_client(people["worker1"])
    key = str(uuid.uuid4())
    body = {"lng": 116.405, "lat": 39.9105}
    r = w.post(task_url(a, "check-in"), body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert r.status_code == 409 and not IdempotencyRecord.objects.exists()
    w.post(task_url(a, "accept"), {}, format="json")
    r = w.post(task_url(a, "check-in"), body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert r.status_code == 200 and r.json()["state"] == "in_progress"
    assert IdempotencyRecord.objects.get(key=key).status == 200
    # bad input is not stored either
    other = str(uuid.uuid4())
    assert w.post(task_url(a, "check-in"), {"lng": 999}, format="json", HTTP_IDEMPOTENCY_KEY=other).status_code == 400
    assert not IdempotencyRecord.objects.filter(key=other).exists()


def test_a_refused_check_in_with_a_key_keeps_the_attempt(appeals, people):
    """The refusal is answered inside the key's transaction (gridgov.api.exception_handler via
    the view): the refused attempt the service recorded stays, the key is not stored."""
    a, w = appeals["A"], token_client(people["worker1"])
    w.post(task_url(a, "accept"), {}, format="json")
    key = str(uuid.uuid4())
    r = w.post(task_url(a, "check-in"), {"lng": 116.41, "lat": 39.91}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert r.status_code == 400 and r.json()["code"] == "outside_geofence" and r.json()["distance_m"] > 400
    assert AppealEvent.objects.filter(appeal=a, event="check_in_refused").count() == 1
    assert not IdempotencyRecord.objects.filter(key=key).exists()
    outsider = token_client(people["worker2"])
    assert outsider.post(task_url(a, "check-in"), {"lng": 116.405, "lat": 39.9105}, format="json").status_code == 404


@pytest.mark.parametrize(
    "headers,data",
    [
        ({"HTTP_IDEMPOTENCY_KEY": "x" * 256}, {}),
        ({"HTTP_IDEMPOTENCY_KEY": "键"}, {}),
        ({"HTTP_IDEMPOTENCY_KEY": "has space"}, {}),
        ({}, {"client_id": "not-a-uuid"}),
    ],
)
def test_bad_keys_are_refused(appeals, people, headers, data):
    a, w = appeals["A"], token_client(people["worker1"])
    r = w.post(task_url(a, "accept"), data, format="json", **headers)
    assert r.status_code == 400 and r.json()["code"] == "bad_idempotency_key"
    assert AppealEvent.objects.filter(appeal=a, event="accept").count() == 0


def test_old_records_are_purged(appeals, people, settings):
    a, w = appeals["A"], token_client(people["worker1"])
    w.post(task_url(a, "accept"), {}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    w.post(task_url(appeals["A"], "return"), {"reason": "不是我们的"}, format="json", HTTP_IDEMPOTENCY_KEY="new")
    IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(days=8))
    settings.IDEMPOTENCY_KEEP_DAYS = 7
    assert idempotency_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_make_one_attachment(people_committed):
    """Two deliveries of one queued upload at the same moment: the second waits on the key's
    unique index, then replays the first answer."""
    a, worker = people_committed
    content, key = photo_bytes(seed=21), str(uuid.uuid4())
    barrier, answers = threading.Barrier(2), []

    def deliver():
        try:
            c = token_client(worker)
            barrier.wait()
            answers.append(send_photo(c, a, content, key))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in answers) == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert sum(r.get("Idempotent-Replayed") == "true" for r in answers) == 1
    assert Attachment.objects.filter(appeal=a).count() == 1
    assert IdempotencyRecord.objects.filter(key=key).count() == 1


@pytest.fixture
def people_committed(transactional_db, city, catalogue, make_user, settings, tmp_path):
    from gridgov.accounts.models import Role

    from .fieldwork import CLUTTER, STREET1, register

    operator = make_user(Role.OPERATOR)
    worker = make_user(Role.GRID_WORKER, grid_codes=["110101001001001"])
    a = register(operator, CLUTTER, STREET1, category_code="010103")
    w = token_client(worker)
    assert w.post(task_url(a, "accept"), {}, format="json").status_code == 200
    assert w.post(task_url(a, "check-in"), {"lng": 116.405, "lat": 39.9105}, format="json").status_code == 200
    return a, worker
