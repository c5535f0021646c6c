"""The events consumer through the whole ASGI stack (origin check, token/session auth,
routing) with WebsocketCommunicator, on the real PostGIS and Redis.

Async bodies run through async_to_sync from the test thread, so the consumer's database calls
come back to this thread's connection; the tests commit (transactional_db), as a server would.
"""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken

from gridgov.accounts.models import Role
from gridgov.asgi import application
from gridgov.realtime import broadcast, consumers
from mobile_api.v1.services import token_logout

pytestmark = pytest.mark.django_db(transaction=True)
PATH = "/ws/v1/events/"


def run(coro_fn):
    return async_to_sync(coro_fn)()


def token_for(user, **kw):
    return AuthToken.objects.create(user=user, **kw)[1]


def ws(token=None, query="", headers=None, protocols=None):
    subprotocols = protocols if protocols is not None else (["gridgov.v1", f"token.{token}"] if token else [])
    return WebsocketCommunicator(
        application, PATH + (f"?{query}" if query else ""), headers=headers or [], subprotocols=subprotocols
    )


async def open_ws(token, **kw):
    comm = ws(token, **kw)
    connected, subprotocol = await comm.connect()
    assert connected and subprotocol == "gridgov.v1"
    hello = await comm.receive_json_from(timeout=5)
    assert hello["type"] == "hello"
    return comm, hello


async def publish(group, type_="appeal.dispatched", payload=None):
    @database_sync_to_async
    def commit():
        with transaction.atomic():
            return broadcast.publish(group, type_, payload or {}).id

    return await commit()


async def events(comm, n, timeout=5):
    out = []
    for _ in range(n):
        out.append(await comm.receive_json_from(timeout=timeout))
    return out


@pytest.mark.parametrize("how", ["none", "bad", "expired", "inactive"])
def test_unauthenticated_is_closed_with_4401(make_user, how):
    user = make_user(Role.GRID_WORKER, grid_codes=["110101001001001"])
    token = {
        "none": None,
        "bad": "f" * 64,
        "expired": token_for(user, expiry=timezone.timedelta(seconds=-1)),
        "inactive": token_for(user),
    }[how]
    if how == "inactive":
        user.is_active = False
        user.save()

    async def body():
        comm = ws(token)
        connected, _ = await comm.connect()
        assert connected  # accepted, then closed: the 4401 reaches the client
        assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}

    run(body)


@pytest.mark.parametrize("query", ["token={token}", "last_id=0&token={token}", "token="])
def test_token_in_the_url_is_refused_with_4401(make_user, client, query):
    """A URL lands in access logs: a token there is never looked up, even beside a good
    subprotocol token or a session, so the client learns to use the subprotocol."""
    user = make_user(Role.OPERATOR)
    token = token_for(user)
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    query = query.format(token=token)

    async def body():
        for kw in ({}, {"token": token}, {"headers": [(b"cookie", cookie), (b"origin", b"http://127.0.0.1:8000")]}):
            comm = ws(query=query, **kw)
            connected, _ = await comm.connect()
            assert connected
            assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
        comm, hello = await open_ws(token)  # the subprotocol form still works
        assert hello["groups"] == [f"user.{user.pk}", "city"]
        await comm.disconnect()

    run(body)


def test_session_login_needs_an_allowed_origin(make_user, client):
    user = make_user(Role.STREET_OFFICE, area_code="110101001")
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def body():
        comm = ws(headers=[(b"cookie", cookie), (b"origin", b"http://127.0.0.1:8000")])
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from())["groups"] == [f"user.{user.pk}", "street.110101001"]
        await comm.disconnect()
        # another site's page cannot ride on the user's cookie
        comm = ws(headers=[(b"cookie", cookie), (b"origin", b"http://evil.example")])
        connected, _ = await comm.connect()
        assert not connected
        # without an Origin (not a browser) the cookie is ignored: tokens only
        comm = ws(headers=[(b"cookie", cookie)])
        await comm.connect()
        assert (await comm.receive_output())["code"] == 4401

    run(body)


def test_events_reach_their_groups_only(make_user):
    worker = make_user(Role.GRID_WORKER, grid_codes=["110101001001001"])
    street_b = make_user(Role.STREET_OFFICE, area_code="110101002")
    t_worker, t_street = token_for(worker), token_for(street_b)

    async def body():
        w, hello = await open_ws(t_worker)
        assert hello["groups"] == [f"user.{worker.pk}", "grid.110101001001001"]
        s, _ = await open_ws(t_street)
        to_street_b = await publish("street.110101002", "whistle.called", {"n": 1})
        to_other_street = await publish("street.110101001", "whistle.called", {"n": 2})
        to_worker = await publish(f"user.{worker.pk}", "appeal.dispatched", {"appeal": "A1"})
        to_grid = await publish("grid.110101001001001", "grid.notice", {})
        got = await comm_ids(s, 1)
        assert got == [to_street_b]
        assert await s.receive_nothing(0.5)  # not the other street's, not the worker's
        ev = await w.receive_json_from(timeout=5)
        assert ev == {
            "type": "event",
            "id": to_worker,
            "group": f"user.{worker.pk}",
            "event": "appeal.dispatched",
            "payload": {"appeal": "A1"},
            "created_at": ev["created_at"],
        }
        assert await comm_ids(w, 1) == [to_grid]
        assert await w.receive_nothing(0.5)
        assert to_other_street  # published, and nobody here watches it
        await w.disconnect()
        await s.disconnect()

    run(body)


async def comm_ids(comm, n):
    return [e["id"] for e in await events(comm, n)]


def test_resume_replays_missed_events_in_order(make_user):
    user = make_user(Role.GRID_WORKER, grid_codes=["110101001001001"])
    token = token_for(user)

    async def body():
        ids = [
            await publish(g, "e", {"i": i})
            for i, g in enumerate(
                [
                    f"user.{user.pk}",
                    "grid.110101001001001",
                    "street.110101002",
                    f"user.{user.pk}",
                    "grid.110101001001001",
                ]
            )
        ]
        mine = [ids[0], ids[1], ids[3], ids[4]]
        comm, _ = await open_ws(token)
        await comm.send_json_to({"type": "resume", "last_id": ids[0]})
        got = await events(comm, 4)
        assert [e["id"] for e in got[:3]] == mine[1:]
        assert got[3] == {"type": "resumed", "last_id": ids[4], "count": 3, "complete": True}
        # live again afterwards
        new = await publish(f"user.{user.pk}")
        assert await comm_ids(comm, 1) == [new]
        await comm.disconnect()
        # at connect, with ?last_id=
        comm, _ = await open_ws(token, query=f"last_id={ids[3]}")
        got = await events(comm, 3)
        assert [e.get("id") for e in got[:2]] == [ids[4], new] and got[2]["type"] == "resumed"
        await comm.disconnect()

    run(body)


def test_resume_never_sends_an_event_twice(make_user):
    user = make_user(Role.OPERATOR)
    token = token_for(user)

    async def body():
        first = await publish("city")
        comm, _ = await open_ws(token)
        live = await publish("city")
        assert await comm_ids(comm, 1) == [live]
        await comm.send_json_to({"type": "resume", "last_id": first - 1})
        got = await events(comm, 2)
        assert got[0]["id"] == first and got[1]["type"] == "resumed" and got[1]["last_id"] == live
        assert await comm.receive_nothing(0.3)
        await comm.disconnect()

    run(body)


def test_live_events_during_a_replay_are_held_and_not_lost(make_user, monkeypatch):
    """An event that commits after the replay read the outbox arrives live while the replay is
    still sending: it is held, sent after the replay, once."""
    user = make_user(Role.OPERATOR)
    token = token_for(user)
    original = consumers.outbox_after
    late = []

    def outbox_after_then_commit(groups, after_id, limit):
        rows = original(groups, after_id, limit)
        if not late:
            with transaction.atomic():
                late.append(broadcast.publish("city", "late", {}).id)
        return rows

    monkeypatch.setattr(consumers, "outbox_after", outbox_after_then_commit)

    async def body():
        before = [await publish("city") for _ in range(3)]
        comm, _ = await open_ws(token)
        await comm.send_json_to({"type": "resume", "last_id": 0})
        got = await events(comm, 5)
        assert [e.get("id") for e in got[:3]] == before
        assert got[3]["type"] == "resumed"
        assert got[4]["id"] == late[0]
        assert await comm.receive_nothing(0.5)
        await comm.disconnect()

    run(body)


def test_resume_long_gone_is_marked_incomplete(make_user, settings):
    settings.REALTIME_REPLAY_MAX = 100
    user = make_user(Role.OPERATOR)
    token = token_for(user)

    async def body():
        @database_sync_to_async
        def burst():
            with transaction.atomic():
                return [e.id for e in broadcast.publish_many([("city", "e", {})] * 150)]

        comm, _ = await open_ws(token)
        ids = await burst()
        assert [e["id"] for e in await events(comm, 150)] == ids  # live
        await comm.send_json_to({"type": "resume", "last_id": ids[0] - 1})
        resumed = await comm.receive_json_from()
        assert resumed["type"] == "resumed" and resumed["count"] == 0  # all sent already on this connection
        assert await comm.receive_nothing(0.3)
        await comm.disconnect()
        comm, _ = await open_ws(token, query=f"last_id={ids[0] - 1}")
        got = await events(comm, 101)
        assert [e["id"] for e in got[:100]] == ids[:100]
        assert got[100] == {"type": "resumed", "last_id": ids[99], "count": 100, "complete": False}
        await comm.disconnect()

    run(body)


def test_rolled_back_publish_sends_nothing(make_user):
    user = make_user(Role.OPERATOR)
    token = token_for(user)

    async def body():
        comm, _ = await open_ws(token)

        @database_sync_to_async
        def rolled_back():
            try:
                with transaction.atomic():
                    broadcast.publish("city", "never", {})
                    raise RuntimeError
            except RuntimeError:
                pass

        await rolled_back()
        assert await comm.receive_nothing(1.0)
        await comm.disconnect()

    run(body)


def test_publish_is_sent_only_after_commit(make_user):
    user = make_user(Role.OPERATOR)
    token = token_for(user)

    async def body():
        comm, _ = await open_ws(token)

        @database_sync_to_async
        def publish_and_look():
            with transaction.atomic():
                ev = broadcast.publish("city", "later", {})
                # the consumer runs meanwhile on the event loop: nothing may arrive yet
                assert async_to_sync(comm.receive_nothing)(0.7)
            return ev.id

        ev_id = await publish_and_look()
        assert await comm_ids(comm, 1) == [ev_id]
        await comm.disconnect()

    run(body)


def test_heartbeat_and_client_ping(make_user, settings):
    settings.REALTIME_HEARTBEAT = 0.3
    user = make_user(Role.OPERATOR)
    token = token_for(user)

    async def body():
        comm, hello = await open_ws(token)
        assert hello["heartbeat"] == 0.3
        assert await comm.receive_json_from(timeout=3) == {"type": "ping"}
        await comm.send_json_to({"type": "ping"})
        frames = [await comm.receive_json_from(timeout=3) for _ in range(2)]
        assert {"type": "pong"} in frames
        await comm.send_to(text_data="not json")
        frames = [await comm.receive_json_from(timeout=3) for _ in range(2)]
        assert any(f.get("code") == "bad_frame" for f in frames)
        await comm.disconnect()

    run(body)


def test_logout_closes_the_tokens_websocket(make_user):
    user = make_user(Role.GRID_WORKER, grid_codes=["110101001001001"])
    keep_token, drop_token = token_for(user), token_for(user)

    async def body():
        keep, _ = await open_ws(keep_token)
        drop, _ = await open_ws(drop_token)

        @database_sync_to_async
        def logout():
            auth = AuthToken.objects.get(token_key=drop_token[:15])
            token_logout(user=user, auth_token=auth)

        await logout()
        assert (await drop.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}
        ev = await publish(f"user.{user.pk}")
        assert await comm_ids(keep, 1) == [ev]
        await keep.disconnect()

    run(body)


def test_token_expiry_closes_the_websocket(make_user):
    user = make_user(Role.OPERATOR)
    token = token_for(user, expiry=timezone.timedelta(seconds=1.5))

    async def body():
        comm, _ = await open_ws(token)
        assert (await comm.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}

    run(body)


def test_bad_frames_get_errors(make_user):
    token = token_for(make_user(Role.OPERATOR))

    async def body():
        comm, _ = await open_ws(token)
        for frame, code in (
            ({"type": "resume", "last_id": -1}, "bad_last_id"),
            ({"type": "resume", "last_id": "7"}, "bad_last_id"),
            ({"type": "subscribe", "group": "city"}, "unknown_type"),
        ):
            await comm.send_to(text_data=json.dumps(frame))
            assert (await comm.receive_json_from())["code"] == code
        await comm.disconnect()

    run(body)


def test_sweep_sends_what_the_channel_layer_lost(make_user, settings, monkeypatch):
    settings.REALTIME_HEARTBEAT = 0.3
    monkeypatch.setattr(consumers, "SWEEP_GRACE_S", 0.0)
    user = make_user(Role.OPERATOR)
    token = token_for(user)

    async def body():
        comm, _ = await open_ws(token)
        monkeypatch.setattr(broadcast, "send_messages", lambda pairs: None)  # the layer drops it
        lost = await publish("city", "lost.live")
        frames = [await comm.receive_json_from(timeout=5) for _ in range(3)]
        assert [f["id"] for f in frames if f["type"] == "event"] == [lost]
        await comm.disconnect()

    run(body)


def test_events_committed_before_the_groups_were_joined_are_swept(make_user, settings, monkeypatch):
    """The sweep starts from the last outbox id read at connect, before joining the groups."""
    settings.REALTIME_HEARTBEAT = 0.3
    monkeypatch.setattr(consumers, "SWEEP_GRACE_S", 0.0)
    user = make_user(Role.OPERATOR)
    token = token_for(user)
    original = consumers.connect_state
    early = []

    def connect_state_then_commit(u):
        state = original(u)
        with transaction.atomic():
            early.append(broadcast.publish("city", "between", {}).id)
        return state

    monkeypatch.setattr(consumers, "connect_state", connect_state_then_commit)

    async def body():
        comm, _ = await open_ws(token)
        frames = [await comm.receive_json_from(timeout=5) for _ in range(3)]
        assert [f["id"] for f in frames if f["type"] == "event"] == early
        await comm.disconnect()

    run(body)
