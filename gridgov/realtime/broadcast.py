"""The only writer to the channel layer.

`publish(group, type, payload)` writes an OutboxEvent in the caller's transaction and sends it
to the Channels group only after that transaction commits (as zulip does): a rolled-back change
announces nothing, and a client never hears of a row it cannot read yet. Every event of one
transaction leaves in one batch after the commit, in id order within each group.

Call `publish` as the last step of a service, after `audit_record`: the first publish of a
transaction takes the outbox lock (below) and holds it to the commit, so taking the audit
head's row lock after it, while another transaction does the opposite, would deadlock.

Group names: `user.<id>`, `grid.<code>`, `community.<code>`, `street.<code>`,
`district.<code>`, `department.<id>`, `city`. A change inside an area usually goes to every
level that watches it: `publish_many([(g, type, payload) for g in area_groups(grid_code)])`.
"""

import asyncio
import json
import logging
import re
import time
from collections import defaultdict
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, transaction

from gridgov.accounts.access import jurisdiction
from gridgov.accounts.models import Role
from gridgov.bulk import copy_insert, reserve_ids

from .models import OutboxEvent

logger = logging.getLogger(__name__)

# Channels' own rule for group names (letters, digits, '-', '_', '.'; under 100 characters).
GROUP_RE = re.compile(r"^[A-Za-z0-9\-_.]{1,99}$")
# Transaction-level advisory lock that makes outbox ids follow commit order (see models.py).
OUTBOX_LOCK_KEY = 0x67726964_6F757478  # "gridoutx"
# Groups sent to at the same time after one commit; messages within a group stay in order.
SEND_CONCURRENCY = 32
AREA_LEVELS = {6: "district", 9: "street", 12: "community", 15: "grid"}
MESSAGE_TYPE = "outbox.event"  # -> EventsConsumer.outbox_event
REVOKE_TYPE = "session.revoke"  # -> EventsConsumer.session_revoke


# --- group names ------------------------------------------------------------------------------
def user_group(user_id):
    return f"user.{int(user_id)}"


def department_group(department_id):
    return f"department.{int(department_id)}"


def _area(level, code, length):
    code = str(code)
    if len(code) != length or not code.isdigit():
        raise ValueError(f"{level} code must be {length} digits, got {code!r}")
    return f"{level}.{code}"


def grid_group(code):
    return _area("grid", code, 15)


def community_group(code):
    return _area("community", code, 12)


def street_group(code):
    return _area("street", code, 9)


def district_group(code):
    return _area("district", code, 6)


def city_group():
    return "city"


def area_group(code):
    """The group of an area, by the length of its code."""
    level = AREA_LEVELS.get(len(str(code)))
    if level is None:
        raise ValueError(f"not an area code: {code!r}")
    return _area(level, code, len(str(code)))


def area_groups(code):
    """The area's group and those of every enclosing area, up to the city: who watches it."""
    code = str(code)
    return [area_group(code[:n]) for n in sorted(AREA_LEVELS, reverse=True) if n <= len(code)] + [city_group()]


def groups_for(user):
    """The groups a WebSocket of this user joins, from the same jurisdiction the REST views use.

    Everyone has their own `user.<id>`. Grid workers add one `grid.<code>` per grid; street
    offices their street; department staff their department (what is dispatched to it, not the
    whole area it serves); leaders their district, or the city; operators, the hotline centre and
    administrators the city.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    groups = [user_group(user.pk)]
    if user.role == Role.DEPARTMENT and not user.is_superuser:
        if user.department_id:
            groups.append(department_group(user.department_id))
        return groups
    prefixes = jurisdiction(user)
    if prefixes is None:
        groups.append(city_group())
    else:
        groups.extend(area_group(p) for p in prefixes if len(p) in AREA_LEVELS)
    return groups


# --- publishing ---------------------------------------------------------------------------------
class _Batch:
    """The events of one transaction, sent by one on_commit callback.

    One callback per transaction (not one per event) so that a burst leaves in one go. The
    callback is registered at the savepoint level of the first publish; an event published
    deeper (inside a savepoint the callback does not belong to) might be rolled back while the
    callback survives, so such batches check which rows still exist before sending.
    """

    __slots__ = ("using", "sids", "events", "verify", "done")

    def __init__(self, using, sids):
        self.using, self.sids, self.events, self.verify, self.done = using, sids, [], False, False

    def __call__(self):
        self.done = True
        events = self.events
        if self.verify:
            alive = set(
                OutboxEvent.objects.using(self.using).filter(id__in=[e.id for e in events]).values_list("id", flat=True)
            )
            events = [e for e in events if e.id in alive]
        send_messages([(e.group, {"type": MESSAGE_TYPE, "event": e.as_frame()}) for e in events])


def _batch_for(connection, using):
    sids = {s for s in connection.savepoint_ids if s}
    batch = getattr(connection, "_realtime_batch", None)
    # Django keeps no transaction id; a batch belongs to the running transaction exactly while its
    # callback is still queued (a rollback drops the queue, a savepoint rollback its own entries).
    if batch is not None and not batch.done and any(f is batch for _, f, _ in connection.run_on_commit):
        if not sids <= batch.sids:
            batch.verify = True
        return batch
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [OUTBOX_LOCK_KEY])
    batch = _Batch(using, sids)
    transaction.on_commit(batch, using=using)
    connection._realtime_batch = batch
    return batch


def _check_group(group):
    if not isinstance(group, str) or not GROUP_RE.match(group):
        raise ValueError(f"invalid group name {group!r}")
    return group


def publish(group, type, payload=None, *, using=None):
    """Record one event for `group` in the current transaction; it goes out after commit."""
    return publish_many([(group, type, payload)], using=using)[0]


def publish_many(events, *, using=None):
    """Record several (group, type, payload) events with one INSERT; they go out after commit
    with the rest of the transaction's events. Returns the OutboxEvent rows (with ids)."""
    using = using or DEFAULT_DB_ALIAS
    rows = []
    for group, type_, payload in events:
        # Stored and sent as the same JSON, so a replayed event equals the live one.
        payload = json.loads(json.dumps(payload or {}, cls=DjangoJSONEncoder, ensure_ascii=False))
        rows.append(OutboxEvent(group=_check_group(group), type=str(type_), payload=payload))
    if not rows:
        return rows
    with transaction.atomic(using=using, savepoint=False):
        connection = transaction.get_connection(using)
        batch = _batch_for(connection, using)  # the lock first, so the ids follow commit order
        if len(rows) == 1:
            rows[0].save(using=using)
        else:
            for row, pk in zip(rows, reserve_ids(OutboxEvent, len(rows), using=using), strict=True):
                row.id = pk
            copy_insert(rows, using=using)
        batch.events.extend(rows)
    return rows


def session_revoke(user_id, token_keys=None, *, using=None):
    """After commit, close the user's WebSockets opened with these knox tokens (token_key, the
    first 15 characters), or with any token when None. A control message, not an event: it is
    not stored and not replayed."""
    message = {"type": REVOKE_TYPE, "token_keys": None if token_keys is None else list(token_keys)}
    transaction.on_commit(lambda: send_messages([(user_group(user_id), message)]), using=using or DEFAULT_DB_ALIAS)


# --- sending ------------------------------------------------------------------------------------
# channels_redis's group_send costs four round trips to Redis per message (trim the group, read
# its members, trim each channel, one Lua call). A burst pipelines the same steps instead: one
# round trip reads every group's members, one more delivers every message, with the same Lua
# script and capacity rule, and scores that keep the messages in order for each receiving
# process. It relies on RedisChannelLayer internals (channels-redis is pinned in requirements.txt;
# tests/realtime exercise this path on a real Redis); the pub/sub layer gets its PUBLISHes
# pipelined the same way, other layers plain group_send.
_GROUP_SEND_LUA = """
    local over_capacity = 0
    local current_time = ARGV[#ARGV - 1]
    local expiry = ARGV[#ARGV]
    for i=1,#KEYS do
        if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
            redis.call('ZADD', KEYS[i], current_time, ARGV[i])
            redis.call('EXPIRE', KEYS[i], expiry)
        else
            over_capacity = over_capacity + 1
        end
    end
    return over_capacity
"""
PIPELINE_CHUNK = 1000


def _bulk_sender(layer):
    try:
        from channels_redis.core import RedisChannelLayer
        from channels_redis.pubsub import RedisPubSubChannelLayer
    except ImportError:  # pragma: no cover
        return None
    if isinstance(layer, RedisChannelLayer) and hasattr(layer, "_map_channel_keys_to_connection"):
        return _bulk_group_send
    if isinstance(layer, RedisPubSubChannelLayer):
        return _pubsub_bulk_publish
    return None


async def _bulk_group_send(layer, pairs):
    now = time.time()
    groups = list(dict.fromkeys(group for group, _ in pairs))
    members = {}
    by_shard = defaultdict(list)
    for group in groups:
        by_shard[layer.consistent_hash(group)].append(group)
    for index, shard_groups in by_shard.items():
        for chunk in _chunks(shard_groups, PIPELINE_CHUNK):
            pipe = layer.connection(index).pipeline(transaction=False)
            for group in chunk:
                key = layer._group_key(group)
                pipe.zremrangebyscore(key, min=0, max=int(now) - layer.group_expiry)
                pipe.zrange(key, 0, -1)
            answers = await pipe.execute()
            for group, channels in zip(chunk, answers[1::2], strict=True):
                members[group] = [c.decode("utf8") for c in channels]

    calls = defaultdict(list)  # shard index -> [(keys, args)] in publish order
    stale_keys = defaultdict(set)
    for i, (group, message) in enumerate(pairs):
        if not members[group]:
            continue
        shard_keys, key_message, key_capacity = layer._map_channel_keys_to_connection(members[group], message)
        # A microsecond apart: the receiving process pops the lowest score first, so this keeps
        # publish order even across groups (ties would be broken by random message bytes).
        score = now + i * 1e-6
        for index, keys in shard_keys.items():
            calls[index].append(
                (keys, [key_message[k] for k in keys] + [key_capacity[k] for k in keys] + [score, layer.expiry])
            )
            stale_keys[index].update(keys)
    over = 0
    for index, shard_calls in calls.items():
        connection = layer.connection(index)
        pipe = connection.pipeline(transaction=False)
        for key in stale_keys[index]:
            pipe.zremrangebyscore(key, min=0, max=int(now) - int(layer.expiry))
        await pipe.execute()
        sha = await connection.script_load(_GROUP_SEND_LUA)  # per flush: survives a Redis restart
        for chunk in _chunks(shard_calls, PIPELINE_CHUNK):
            pipe = connection.pipeline(transaction=False)
            for keys, args in chunk:
                pipe.evalsha(sha, len(keys), *keys, *args)
            over += sum(await pipe.execute())
    if over:
        logger.warning("realtime: %d message(s) dropped, receiving channels over capacity (CHANNEL_CAPACITY)", over)


async def _pubsub_bulk_publish(layer, pairs):
    """RedisPubSubChannelLayer publishes one message per round trip under a lock; this sends the
    same PUBLISH commands pipelined, in order, on the same connection."""
    loop_layer = layer._get_layer()
    by_shard: dict[Any, Any] = {}
    for group, message in pairs:
        channel = loop_layer._get_group_channel_name(group)
        shard = loop_layer._get_shard(channel)
        by_shard.setdefault(id(shard), (shard, []))[1].append((channel, layer.serialize(message)))
    for shard, items in by_shard.values():
        async with shard._lock:
            shard._ensure_redis()
            for chunk in _chunks(items, PIPELINE_CHUNK):
                pipe = shard._redis.pipeline(transaction=False)
                for channel, data in chunk:
                    pipe.publish(channel, data)
                await pipe.execute()


def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


async def _group_send_each(layer, pairs):
    by_group = defaultdict(list)
    for group, message in pairs:
        by_group[group].append(message)
    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def one_group(group, messages):
        async with gate:
            for message in messages:
                await layer.group_send(group, message)

    results = await asyncio.gather(*(one_group(g, m) for g, m in by_group.items()), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]


async def _send_all(pairs, bulk=True):
    layer = get_channel_layer()
    if layer is None:
        return
    sender = _bulk_sender(layer) if bulk and len(pairs) > 1 else None
    if sender is not None:
        await sender(layer, pairs)
    else:
        await _group_send_each(layer, pairs)


def send_messages(pairs):
    """Send (group, message) pairs in one trip to the event loop.

    One async_to_sync call for the whole batch: from a plain thread every call builds an event
    loop and a Redis connection pool of its own, so one call per message is the slowest way
    there is (figures in tests/bench/bench_realtime.py). Failures are logged, never raised: the
    change is committed and the outbox holds the event, so clients get it on their next resume.
    """
    if not pairs:
        return
    try:
        async_to_sync(_send_all)(pairs)
    except Exception:
        logger.exception("realtime: %d message(s) not delivered live; clients catch up on resume", len(pairs))
