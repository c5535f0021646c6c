"""Real-time delivery: a burst of dispatch events to 2,000 connected phones (issue: field work).

Prints, in one run:
  1. the send path after commit, three ways, without clients: one async_to_sync(group_send) per
     message (the naive loop), one async_to_sync call gathering group_sends, and the pipelined
     bulk send broadcast.py uses;
  2. 2,000 WebSocket clients (the `websockets` library) on BENCH_WS_SERVERS Daphne processes
     sharing one Redis; one transaction publishes one dispatch event to each client's user
     group; latency from the commit to each client's receipt, p50/p99/max, and the count lost.
     The clients run in BENCH_WS_CLIENT_PROCS processes of their own, as phones are not in the
     publishing process: sharing its interpreter lock, 2,000 sockets' reads would hold up the
     send they are timing. Commit and receipt times are both read from CLOCK_MONOTONIC, which
     is one clock for every process of the machine. Also printed: the CPU seconds each Daphne
     process spent from the commit to the last receipt, which other load on the machine does
     not inflate;
  3. the same burst on Channels' InMemoryChannelLayer in this one process (consumers driven by
     WebsocketCommunicator, no network, no Redis): the floor the Redis figures compare with.
     That layer walks every channel and group for expired entries on each send and receive,
     which makes a 2,000-consumer burst quadratic (p99 ~24 s); the reference runs that walk at
     most once a second, so it shows the consumers' own cost.
Targets: p99 ≤ 500 ms and nothing lost through Redis.

    python -m tests.bench.bench_realtime
    (BENCH_WS_CLIENTS=2000 BENCH_WS_SERVERS=2 BENCH_WS_CLIENT_PROCS=2
     BENCH_WS_LAYERS=redis,redis-pubsub,memory)
"""

import asyncio
import json
import multiprocessing
import os
import resource
import time

from channels.layers import InMemoryChannelLayer

from tests.bench.common import header, percentiles, setup_django, timed

CLIENTS = int(os.environ.get("BENCH_WS_CLIENTS", 2000))
SERVERS = int(os.environ.get("BENCH_WS_SERVERS", 2))
CLIENT_PROCS = int(os.environ.get("BENCH_WS_CLIENT_PROCS", 2))
LAYERS = os.environ.get("BENCH_WS_LAYERS", "redis,redis-pubsub,memory").split(",")
CONNECT_CONCURRENCY = 100
WAIT_S = 60.0
PREFIX = f"gridgov-bench-{os.getpid()}"


def now():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def raise_open_files():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, CLIENTS * 2 + 1000))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # Daphne children inherit it
    return want


class SweptInMemoryChannelLayer(InMemoryChannelLayer):
    """InMemoryChannelLayer with its expiry walk at most once a second (see 3. above)."""

    swept = 0.0

    def _clean_expired(self):
        if now() - self.swept >= 1.0:
            self.swept = now()
            super()._clean_expired()


def layer_settings(kind, prefix):
    """CHANNEL_LAYERS as settings.py builds them for CHANNEL_LAYER=kind, under this run's prefix."""
    from gridgov.settings import channel_layers

    layers = channel_layers(kind, prefix)
    if kind == "memory":
        layers["default"]["BACKEND"] = "tests.bench.bench_realtime.SweptInMemoryChannelLayer"
    return layers


def use_layer(kind, prefix):
    from django.test import override_settings

    return override_settings(CHANNEL_LAYERS=layer_settings(kind, prefix))


def bench_users(n):
    """n grid workers (bench-ws-0000…) with a fresh 2-hour knox token each: [(user, token)]."""
    from datetime import timedelta

    from django.contrib.auth.hashers import make_password
    from django.utils import timezone
    from knox.models import AuthToken, get_digest_token

    from gridgov.accounts.models import Role, User

    names = [f"bench-ws-{i:04d}" for i in range(n)]
    have = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    pw = make_password("bench-pw-1")
    User.objects.bulk_create([User(username=u, password=pw, role=Role.GRID_WORKER) for u in names if u not in have])
    users = list(User.objects.filter(username__in=names).order_by("username"))
    AuthToken.objects.filter(user__in=users).delete()
    expiry = timezone.now() + timedelta(hours=2)
    pairs, rows = [], []
    for u in users:
        digest, token = get_digest_token()
        rows.append(AuthToken(token_key=token[:15], digest=digest, user=u, expiry=expiry))
        pairs.append((u, token))
    AuthToken.objects.bulk_create(rows)
    return pairs


def burst(pairs, marks):
    """One transaction, one dispatch event per user; marks['commit'] is set by the first
    on_commit callback, just before broadcast's batch goes out."""
    from django.db import connection, transaction

    from gridgov.realtime import broadcast

    try:
        t0 = now()
        with transaction.atomic():
            transaction.on_commit(lambda: marks.__setitem__("commit", now()))
            rows = broadcast.publish_many(
                [
                    (
                        broadcast.user_group(u.pk),
                        "appeal.dispatched",
                        {"appeal": f"BENCH-{i}", "grid": "110101001001001"},
                    )
                    for i, (u, _) in enumerate(pairs)
                ]
            )
            marks["inserted"] = now() - t0
        marks["sent"] = now()
        return [r.id for r in rows]
    finally:
        connection.close()


def report(label, ids, received, marks):
    lat = [received[i] - marks["commit"] for i in ids if i in received]
    lost = len(ids) - len(lat)
    nan = float("nan")
    p = percentiles(lat) if len(lat) > 1 else {"p50": nan, "p99": nan, "max": nan}
    row = {
        "label": label,
        "events": len(ids),
        "lost": lost,
        "insert_ms": marks["inserted"] * 1000,
        "send_ms": (marks["sent"] - marks["commit"]) * 1000,
        "first": min(lat) * 1000 if lat else nan,
        **p,
    }
    print(
        f"  {label:<28} insert {row['insert_ms']:6.0f} ms  send {row['send_ms']:6.0f} ms  "
        f"first {row['first']:6.0f} ms  p50 {p['p50']:6.0f} ms  p99 {p['p99']:6.0f} ms  max {p['max']:6.0f} ms  "
        f"lost {lost}",
        flush=True,
    )
    return row


# --- 1. the send path ---------------------------------------------------------------------------
def bench_send_paths():
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from gridgov.realtime import broadcast

    header(f"send path after commit: {CLIENTS:,} messages, Redis channel layer, no WebSocket clients")
    override = use_layer("redis", f"{PREFIX}-send")
    override.enable()
    layer = get_channel_layer()
    msg = {
        "type": "outbox.event",
        "event": {
            "id": 1,
            "group": "user.1",
            "event": "appeal.dispatched",
            "payload": {"appeal": "BENCH"},
            "created_at": "2026-01-01T00:00:00",
        },
    }

    async def setup():
        await layer.flush()
        for i in range(CLIENTS):
            await layer.group_add(f"user.{i}", await layer.new_channel())
        await layer.group_add("street.110101001", await layer.new_channel())

    distinct = [(f"user.{i}", msg) for i in range(CLIENTS)]
    one = [("street.110101001", msg)] * CLIENTS
    naive_n = min(200, CLIENTS)
    rows = []
    for name, pairs in (("one group each", distinct), ("all to one group", one)):
        async_to_sync(setup)()
        t = time.perf_counter()
        for g, m in pairs[:naive_n]:
            async_to_sync(layer.group_send)(g, m)
        naive = (time.perf_counter() - t) * len(pairs) / naive_n
        async_to_sync(setup)()
        t = time.perf_counter()
        async_to_sync(broadcast._send_all)(pairs, bulk=False)
        gathered = time.perf_counter() - t
        async_to_sync(setup)()
        t = time.perf_counter()
        broadcast.send_messages(pairs)
        piped = time.perf_counter() - t
        rows.append((name, naive, gathered, piped))
    print(f"  {'':<22} {'naive loop*':>12} {'one call, gathered':>19} {'one call, pipelined':>20}")
    for name, naive, gathered, piped in rows:
        print(f"  {name:<22} {naive * 1000:9.0f} ms {gathered * 1000:16.0f} ms {piped * 1000:17.0f} ms")
    print(f"  * measured on the first {naive_n} messages, scaled to {CLIENTS:,}")
    async_to_sync(layer.flush)()
    override.disable()


# --- 2. through Daphne and Redis ------------------------------------------------------------------
async def connect_all(ports, tokens, received, errors, first=0):
    """Connect one client per token (client i to ports[i % n]); each client's events go into
    `received` as id -> receipt time."""
    from websockets.asyncio.client import connect

    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    conns = []

    async def reader(conn):
        try:
            async for raw in conn:
                frame = json.loads(raw)
                if frame.get("type") == "event":
                    received.setdefault(frame["id"], now())
        except Exception as exc:  # a dropped client is counted as losses, and reported
            errors.append(repr(exc))

    async def one(i, token):
        async with gate:
            for attempt in range(3):
                try:
                    conn = await connect(
                        f"ws://127.0.0.1:{ports[i % len(ports)]}/ws/v1/events/",
                        subprotocols=["gridgov.v1", f"token.{token}"],
                        ping_interval=None,
                        proxy=None,
                        open_timeout=60,
                        max_queue=None,
                        compression=None,
                    )
                    hello = json.loads(await asyncio.wait_for(conn.recv(), 60))
                    assert hello["type"] == "hello", hello
                    break
                except Exception as exc:
                    if attempt == 2:
                        errors.append(f"connect: {exc!r}")
                        return
                    await asyncio.sleep(0.5)
            conns.append(conn)
            asyncio.get_running_loop().create_task(reader(conn))

    await asyncio.gather(*(one(first + i, token) for i, token in enumerate(tokens)))
    return conns


def client_process(ports, tokens, first, pipe):
    """A process of bench clients: connects, says how many, then, told how long to wait after
    the burst, sends back {event id: receipt time} once each client has its event, and the CPU
    seconds it spent since connecting."""

    async def run():
        received, errors = {}, []
        conns = await connect_all(ports, tokens, received, errors, first)
        cpu = time.process_time()
        pipe.send((len(conns), errors))
        timeout = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        deadline = now() + timeout
        while now() < deadline and len(received) < len(conns):
            await asyncio.sleep(0.02)
        pipe.send((received, errors, time.process_time() - cpu))
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)

    asyncio.run(run())


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def bench_redis(pairs, kind):
    from tests.realtime.daphne import daphne_servers

    header(
        f"{len(pairs):,} WebSocket clients in {CLIENT_PROCS} process(es) on {SERVERS} Daphne process(es), "
        f"CHANNEL_LAYER={kind}"
    )
    env = {
        "CHANNEL_PREFIX": PREFIX,
        "CHANNEL_LAYER": kind,
        "REALTIME_HEARTBEAT": "600",
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "1",
    }
    pids, clients = [], []
    ctx = multiprocessing.get_context("spawn")  # no inherited Django state or database connections
    tokens = [token for _, token in pairs]
    share = -(-len(tokens) // CLIENT_PROCS)
    with (
        use_layer(kind, PREFIX),
        daphne_servers(SERVERS, env, args=("-v", "0", "--websocket_connect_timeout", "60"), pids=pids) as ports,
    ):
        try:
            with timed(f"connect {len(pairs):,} clients"):
                for first in range(0, len(tokens), share):
                    mine, theirs = ctx.Pipe()
                    proc = ctx.Process(
                        target=client_process, args=(ports, tokens[first : first + share], first, theirs)
                    )
                    proc.start()
                    clients.append((proc, mine))
                hellos = [pipe.recv() for _, pipe in clients]
            errors = [e for _, errs in hellos for e in errs]
            print(
                f"  connected {sum(n for n, _ in hellos):,} of {len(pairs):,}"
                + (f"; first error: {errors[0]}" if errors else "")
            )
            time.sleep(1.0)
            marks = {}
            cpu0 = [cpu_seconds(pid) for pid in pids]
            ids = burst(pairs, marks)  # this thread stands for a web request's or a Celery task's
            for _, pipe in clients:
                pipe.send(max(WAIT_S - (now() - marks["commit"]), 0))
            received, client_cpu = {}, []
            for _, pipe in clients:
                got, errs, cpu = pipe.recv()
                received.update(got)
                errors += errs
                client_cpu.append(cpu)
            cpu1 = [cpu_seconds(pid) for pid in pids]
        finally:
            for proc, _ in clients:
                proc.join(30)
                if proc.is_alive():
                    proc.kill()
        row = report(f"{kind}, {SERVERS} Daphne", ids, received, marks)
        print(
            "  CPU from the burst to the last receipt: Daphne "
            + ", ".join(f"{b - a:.2f} s" for a, b in zip(cpu0, cpu1, strict=True))
            + "; client processes "
            + ", ".join(f"{c:.2f} s" for c in client_cpu)
            + f"; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        row["dropped_clients"] = len(errors)
        return row, ids


async def wait_for(ids, received, timeout):
    deadline = now() + timeout
    want = set(ids)
    while now() < deadline and not want <= received.keys():
        await asyncio.sleep(0.05)


# --- 3. in one process, InMemoryChannelLayer -----------------------------------------------------------
def bench_memory(pairs):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from gridgov.asgi import application

    header(f"{len(pairs):,} consumers in this process, InMemoryChannelLayer (reference)")

    async def run():
        received, marks = {}, {}
        comms = []
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(token):
            async with gate:
                comm = WebsocketCommunicator(
                    application, "/ws/v1/events/", subprotocols=["gridgov.v1", f"token.{token}"]
                )
                ok, _ = await comm.connect(timeout=60)
                assert ok
                await comm.receive_json_from(timeout=60)  # hello
                comms.append(comm)

        with timed(f"connect {len(pairs):,} consumers"):
            await asyncio.gather(*(one(token) for _, token in pairs))

        async def reader(comm):
            while True:
                frame = await comm.receive_json_from(timeout=WAIT_S + 30)
                if frame.get("type") == "event":
                    received.setdefault(frame["id"], now())

        readers = [asyncio.create_task(reader(c)) for c in comms]
        # thread_sensitive=False: a thread whose async_to_sync finds this loop (in-memory groups
        # only exist here).
        ids = await sync_to_async(burst, thread_sensitive=False)(pairs, marks)
        await wait_for(ids, received, WAIT_S)
        row = report("InMemory, 1 process", ids, received, marks)
        for r in readers:
            r.cancel()
        await asyncio.gather(*(c.disconnect() for c in comms), return_exceptions=True)
        return row, ids

    from django.test import override_settings

    with use_layer("memory", PREFIX), override_settings(REALTIME_HEARTBEAT=600):
        return asyncio.run(run())


def main():
    setup_django()
    from gridgov.realtime.models import OutboxEvent

    limit = raise_open_files()
    print(f"open-file limit {limit:,}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    bench_send_paths()
    with timed(f"{CLIENTS:,} users and knox tokens"):
        pairs = bench_users(CLIENTS)
    published, rows = [], []
    try:
        for kind in LAYERS:
            row, ids = bench_memory(pairs) if kind == "memory" else bench_redis(pairs, kind)
            rows.append(row)
            published += ids
    finally:
        OutboxEvent.objects.filter(id__in=published).delete()
        _flush_prefix()
    header(f"side by side: one transaction, one event per client, commit → received (lost = not in {WAIT_S:.0f} s)")
    print(f"  {'':<12}" + "".join(f"{r['label']:>24}" for r in rows))
    for key, unit in (
        ("events", ""),
        ("lost", ""),
        ("insert_ms", " ms"),
        ("send_ms", " ms"),
        ("first", " ms"),
        ("p50", " ms"),
        ("p99", " ms"),
        ("max", " ms"),
    ):
        print(f"  {key:<12}" + "".join(f"{r[key]:>21.0f}{unit:<3}" for r in rows))
    for r in rows:
        if r["label"].startswith("InMemory"):
            continue
        ok = r["p99"] <= 500 and r["lost"] == 0
        print(f"  target p99 ≤ 500 ms, none lost — {r['label']}: {'met' if ok else 'NOT met'}")


def _flush_prefix():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{PREFIX}*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    client.close()


if __name__ == "__main__":
    main()
