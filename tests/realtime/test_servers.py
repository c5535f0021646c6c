"""Through real servers: two Daphne processes of gridgov.asgi on one Redis, real WebSocket
clients (the `websockets` library) and real HTTP. Events are published from this process through
broadcast.publish, i.e. through Redis, exactly as a Celery worker or another web process would."""

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import transaction
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gridgov.accounts.models import Role
from gridgov.realtime import broadcast

from .conftest import PREFIX
from .daphne import DaphneUnavailable, daphne_servers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker):
    # No server pings during the tests: the idle test must be really idle.
    env = {"CHANNEL_PREFIX": PREFIX, "REALTIME_HEARTBEAT": "600", "DJANGO_DEBUG": "1", "LOG_LEVEL": "WARNING"}
    cm = daphne_servers(2, env)
    try:
        ports = cm.__enter__()
    except DaphneUnavailable as exc:
        pytest.skip(f"daphne cannot start at all: {exc}")
    try:
        yield ports
    finally:
        cm.__exit__(None, None, None)


def http(port, method, path, data=None, token=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=json.dumps(data).encode() if data is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Token {token}"} if token else {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            body = r.read()
            return r.status, json.loads(body) if body else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


async def ws_open(port, token):
    conn = await connect(
        f"ws://127.0.0.1:{port}/ws/v1/events/",
        subprotocols=["gridgov.v1", f"token.{token}"],
        ping_interval=None,
        proxy=None,
        open_timeout=20,
        max_queue=None,
    )
    hello = json.loads(await asyncio.wait_for(conn.recv(), 20))
    assert hello["type"] == "hello", hello
    return conn


async def recv_event(conn, timeout=20):
    while True:
        frame = json.loads(await asyncio.wait_for(conn.recv(), timeout))
        if frame["type"] == "event":
            return frame


@database_sync_to_async
def publish(group, type_="appeal.dispatched", payload=None):
    with transaction.atomic():
        return broadcast.publish(group, type_, payload or {}).id


def login(port, user):
    status, body = http(port, "POST", "/api/mobile/v1/login", {"username": user.username, "password": "pw-123456"})
    assert status == 200, body
    return body["token"]


def test_token_from_server_a_works_on_server_b_for_rest_and_websocket(servers, make_user):
    a, b = servers
    worker = make_user(Role.GRID_WORKER, grid_codes=["110101001001001"])
    token = login(a, worker)
    status, me = http(b, "GET", "/api/mobile/v1/me", token=token)
    assert status == 200 and me["username"] == worker.username
    assert http(b, "GET", "/api/mobile/v1/me")[0] == 401

    async def body():
        on_a, on_b = await ws_open(a, token), await ws_open(b, token)
        ev = await publish(f"user.{worker.pk}", "appeal.dispatched", {"appeal": "A-1"})
        got_a, got_b = await recv_event(on_a), await recv_event(on_b)
        assert got_a["id"] == got_b["id"] == ev and got_b["payload"] == {"appeal": "A-1"}
        # another street's event reaches neither
        await publish("street.110101002")
        for conn in (on_a, on_b):
            with pytest.raises(TimeoutError):
                await recv_event(conn, timeout=1.0)
        # logout on B closes the socket opened with that token on A
        assert http(b, "POST", "/api/mobile/v1/logout", token=token)[0] == 204
        with pytest.raises(ConnectionClosed) as closed:
            await recv_event(on_a, timeout=10)
        assert closed.value.rcvd.code == 4401
        await on_b.close()

    async_to_sync(body)()
    assert http(a, "GET", "/api/mobile/v1/me", token=token)[0] == 401


def test_unauthenticated_websocket_is_closed_with_4401(servers):
    async def body():
        conn = await connect(
            f"ws://127.0.0.1:{servers[0]}/ws/v1/events/",
            subprotocols=["gridgov.v1", "token.nope"],
            ping_interval=None,
            proxy=None,
            open_timeout=20,
        )
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(conn.recv(), 20)
        assert closed.value.rcvd.code == 4401

    async_to_sync(body)()


def test_idle_websocket_still_receives(servers, make_user):
    """Longer than redis-py's 5 s default socket timeout, with no traffic at all."""
    user = make_user(Role.OPERATOR)
    token = login(servers[1], user)

    async def body():
        conn = await ws_open(servers[1], token)
        await asyncio.sleep(8.5)
        ev = await publish("city", "after.idle")
        got = await recv_event(conn, timeout=10)
        assert got["id"] == ev
        await conn.close()

    async_to_sync(body)()


def test_burst_of_2000_events_arrives_complete_and_in_order(servers, make_user):
    user = make_user(Role.GRID_WORKER, grid_codes=["110101001001001"])
    token = login(servers[0], user)

    async def body():
        conn = await ws_open(servers[0], token)

        @database_sync_to_async
        def burst():
            with transaction.atomic():
                rows = broadcast.publish_many([(f"user.{user.pk}", "appeal.dispatched", {"n": i}) for i in range(2000)])
            return [r.id for r in rows]

        t0 = time.perf_counter()
        ids = await burst()
        got = [(await recv_event(conn, timeout=30))["id"] for _ in range(len(ids))]
        elapsed = time.perf_counter() - t0
        assert got == ids, f"{len(set(ids) - set(got))} lost"
        with pytest.raises(TimeoutError):
            await recv_event(conn, timeout=0.5)
        await conn.close()
        return elapsed

    elapsed = async_to_sync(body)()
    print(f"2000-event burst delivered in {elapsed:.2f} s")


def test_token_in_the_url_is_refused_through_daphne(servers, make_user):
    token = login(servers[0], make_user(Role.OPERATOR))

    async def body():
        conn = await connect(
            f"ws://127.0.0.1:{servers[0]}/ws/v1/events/?token={token}", ping_interval=None, proxy=None, open_timeout=20
        )
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(conn.recv(), 20)
        assert closed.value.rcvd.code == 4401

    async_to_sync(body)()


def test_phone_lockout_answers_429_json_through_daphne(servers, make_user):
    """Under Daphne axes' middleware runs its async path (which passes its arguments differently)."""
    user = make_user(Role.GRID_WORKER, username=f"lockout-{time.time_ns()}")  # the throttle's Redis count is not reset
    answers = [
        http(servers[0], "POST", "/api/mobile/v1/login", {"username": user.username, "password": "wrong"})
        for _ in range(10)
    ]  # LOGIN_LOCKOUT_FAILURES
    assert [s for s, _ in answers] == [400] * 9 + [429], answers
    assert answers[-1][1]["code"] == "locked_out" and user.username in answers[-1][1]["detail"]
