"""broadcast.py: group names, the outbox rows, and sending only after commit."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from gridgov.accounts.models import Department, Role
from gridgov.realtime import broadcast, layer_adapter
from gridgov.realtime.models import OutboxEvent, outbox_purge
from gridgov.settings import channel_layers


def test_group_names():
    assert broadcast.user_group(7) == "user.7"
    assert broadcast.street_group("110101001") == "street.110101001"
    assert broadcast.department_group(3) == "department.3"
    assert broadcast.district_group("110101") == "district.110101"
    assert broadcast.city_group() == "city"
    assert broadcast.grid_group("110101001001002") == "grid.110101001001002"
    assert broadcast.area_groups("110101001001002") == [
        "grid.110101001001002",
        "community.110101001001",
        "street.110101001",
        "district.110101",
        "city",
    ]
    with pytest.raises(ValueError):
        broadcast.street_group("1101")
    with pytest.raises(ValueError):
        broadcast.publish("bad group!", "x")


@pytest.mark.django_db
def test_groups_for_each_role(make_user):
    worker = make_user(Role.GRID_WORKER, grid_codes=["110101001001002", "110101001001001"])
    assert broadcast.groups_for(worker) == [f"user.{worker.pk}", "grid.110101001001001", "grid.110101001001002"]
    street = make_user(Role.STREET_OFFICE, area_code="110101002")
    assert broadcast.groups_for(street) == [f"user.{street.pk}", "street.110101002"]
    dept = make_user(Role.DEPARTMENT)
    assert broadcast.groups_for(dept) == [f"user.{dept.pk}", f"department.{dept.department_id}"]
    district_dept = make_user(
        Role.DEPARTMENT, department=Department.objects.create(code="water", name="水务", district_code="110101")
    )
    assert broadcast.groups_for(district_dept) == [
        f"user.{district_dept.pk}",
        f"department.{district_dept.department_id}",
    ]
    leader = make_user(Role.LEADER, area_code="110101")
    assert broadcast.groups_for(leader) == [f"user.{leader.pk}", "district.110101"]
    mayor = make_user(Role.LEADER)
    assert broadcast.groups_for(mayor) == [f"user.{mayor.pk}", "city"]
    for role in (Role.OPERATOR, Role.HOTLINE_CENTER, Role.ADMIN):
        u = make_user(role)
        assert broadcast.groups_for(u) == [f"user.{u.pk}", "city"]
    idle = make_user(Role.GRID_WORKER)
    assert broadcast.groups_for(idle) == [f"user.{idle.pk}"]
    worker.is_active = False
    assert broadcast.groups_for(worker) == []


class Recorder:
    """Captures what would go to the channel layer."""

    def __init__(self, monkeypatch):
        self.sent = []
        monkeypatch.setattr(broadcast, "send_messages", self.sent.extend)

    @property
    def ids(self):
        return [m["event"]["id"] for _, m in self.sent]


@pytest.mark.django_db
def test_publish_writes_the_outbox_and_sends_only_after_commit(monkeypatch, django_capture_on_commit_callbacks):
    rec = Recorder(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        a = broadcast.publish("street.110101001", "appeal.dispatched", {"appeal": 1, "at": timezone.now()})
        b, c = broadcast.publish_many([("user.5", "appeal.dispatched", {"appeal": 2}), ("city", "x", None)])
        assert rec.sent == []  # nothing before the commit
    assert len(callbacks) == 1  # one batch per transaction, not one callback per event
    assert a.id < b.id < c.id
    assert rec.ids == [a.id, b.id, c.id]
    group, message = rec.sent[0]
    assert group == "street.110101001" and message["type"] == "outbox.event"
    row = OutboxEvent.objects.get(pk=a.id)
    assert message["event"] == row.as_frame()  # the live event equals the replayed one
    assert message["event"]["payload"]["appeal"] == 1 and isinstance(message["event"]["payload"]["at"], str)


@pytest.mark.django_db(transaction=True)
def test_rolled_back_transaction_sends_nothing(monkeypatch):
    rec = Recorder(monkeypatch)
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            broadcast.publish("user.1", "x")
            raise RuntimeError
    assert rec.sent == [] and not OutboxEvent.objects.exists()
    # the next transaction starts a batch of its own
    with transaction.atomic():
        ev = broadcast.publish("user.1", "y")
    assert rec.ids == [ev.id]


@pytest.mark.django_db(transaction=True)
def test_rolled_back_savepoint_sends_only_what_was_committed(monkeypatch):
    rec = Recorder(monkeypatch)
    with transaction.atomic():
        kept = broadcast.publish("user.1", "kept")
        try:
            with transaction.atomic():
                broadcast.publish("user.1", "lost")
                raise RuntimeError
        except RuntimeError:
            pass
        with transaction.atomic():
            inner_kept = broadcast.publish("user.1", "inner-kept")
    assert rec.ids == [kept.id, inner_kept.id]
    # a batch started inside a savepoint that is rolled back leaves no trace either
    rec.sent.clear()
    with transaction.atomic():
        try:
            with transaction.atomic():
                broadcast.publish("user.1", "lost")
                raise RuntimeError
        except RuntimeError:
            pass
        after = broadcast.publish("user.1", "after")
    assert rec.ids == [after.id]


@pytest.mark.django_db(transaction=True)
def test_publish_outside_a_transaction_sends_at_once(monkeypatch):
    rec = Recorder(monkeypatch)
    ev = broadcast.publish("user.1", "x")
    assert rec.ids == [ev.id]


@pytest.mark.django_db(transaction=True)
def test_ids_follow_commit_order():
    """The first publish of a transaction takes the outbox lock until commit, so a transaction
    that publishes later cannot commit a smaller id after a larger one became visible."""
    import threading

    from django.db import connection

    started, release = threading.Event(), threading.Event()
    ids = {}

    def slow():
        with transaction.atomic():
            ids["slow"] = broadcast.publish("user.1", "slow").id
            started.set()
            release.wait(5)
        connection.close()

    t = threading.Thread(target=slow)
    t.start()
    started.wait(5)

    def fast():
        with transaction.atomic():
            ids["fast"] = broadcast.publish("user.1", "fast").id
        connection.close()

    t2 = threading.Thread(target=fast)
    t2.start()
    t2.join(0.5)
    assert t2.is_alive(), "the second publisher waits for the first to commit"
    release.set()
    t.join(5)
    t2.join(5)
    assert ids["slow"] < ids["fast"]


@pytest.mark.parametrize("kind", ["redis", "redis-pubsub"])
def test_real_redis_delivery_keeps_order_for_a_burst(channel_prefix, settings, kind):
    """The pipelined paths on the real Redis: every message arrives, in order, in one group and
    across groups."""
    settings.CHANNEL_LAYERS = channel_layers(kind, channel_prefix)  # as settings.py's CHANNEL_LAYER=kind
    layer = get_channel_layer()
    assert layer_adapter.bulk_sender(layer) is not None

    async def scenario():
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("street.110101001", a)
        await layer.group_add("user.1", a)
        await layer.group_add("street.110101002", b)
        await asyncio.sleep(0.3)  # pub/sub: SUBSCRIBE goes out on another connection than PUBLISH
        pairs = []
        for i in range(300):
            group = ("street.110101001", "user.1", "street.110101002")[i % 3]
            pairs.append((group, {"type": "outbox.event", "event": {"id": i}}))
        await broadcast._send_all(pairs)
        got_a = [(await asyncio.wait_for(layer.receive(a), 10))["event"]["id"] for _ in range(200)]
        got_b = [(await asyncio.wait_for(layer.receive(b), 10))["event"]["id"] for _ in range(100)]
        await layer.group_discard("street.110101001", a)
        await layer.group_discard("user.1", a)
        await layer.group_discard("street.110101002", b)
        return got_a, got_b

    got_a, got_b = async_to_sync(scenario)()
    assert got_a == [i for i in range(300) if i % 3 != 2]
    assert got_b == [i for i in range(300) if i % 3 == 2]


def config_of(layer):
    return layer._kwargs if hasattr(layer, "_kwargs") else {"hosts": layer.hosts, "prefix": layer.prefix}


@pytest.mark.parametrize("kind", ["redis", "redis-pubsub"])
def test_publishing_has_its_own_timeouts_and_the_consumers_none(channel_prefix, settings, kind):
    """Publishes go through a twin of the default layer with REDIS_REQUEST_TIMEOUT on connect and
    read (a hung Redis must not hold a request: tests/realtime/test_redis_faults.py); the
    consumers' layer keeps none. The twin follows the settings, prefix included."""
    settings.CHANNEL_LAYERS = channel_layers(kind, channel_prefix)
    settings.REDIS_REQUEST_TIMEOUT = 1.5
    publisher = broadcast.publisher_layer()
    assert publisher is not get_channel_layer() and type(publisher) is type(get_channel_layer())
    assert broadcast.publisher_layer() is publisher  # built once per configuration
    (host,) = config_of(publisher)["hosts"]
    assert host["socket_timeout"] == host["socket_connect_timeout"] == 1.5
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["socket_timeout"] is None
    settings.CHANNEL_LAYERS = channel_layers(kind, channel_prefix + "-other")
    other = broadcast.publisher_layer()
    assert other is not publisher
    assert config_of(other)["prefix"] == channel_prefix + "-other"
    settings.CHANNEL_LAYERS = channel_layers("memory")
    assert broadcast.publisher_layer() is get_channel_layer()  # in-process events stay in process


def test_send_failure_is_logged_not_raised(monkeypatch, caplog):
    async def boom(pairs, bulk=True):
        raise ConnectionError("redis down")

    monkeypatch.setattr(broadcast, "_send_all", boom)
    broadcast.send_messages([("user.1", {"type": "outbox.event", "event": {"id": 1}})])
    assert "clients catch up on resume" in caplog.text


@pytest.mark.django_db
def test_purge_removes_only_old_events(settings):
    settings.REALTIME_OUTBOX_DAYS = 7
    old = broadcast.publish_many([("user.1", "old", {})] * 3)
    OutboxEvent.objects.filter(id__in=[e.id for e in old]).update(created_at=timezone.now() - timedelta(days=8))
    new = broadcast.publish("user.1", "new")
    assert outbox_purge(batch=2) == 3
    assert list(OutboxEvent.objects.values_list("id", flat=True)) == [new.id]
    OutboxEvent.objects.update(created_at=timezone.now() - timedelta(days=3))
    call_command("purge_outbox", "--days", "2")
    assert not OutboxEvent.objects.exists()
