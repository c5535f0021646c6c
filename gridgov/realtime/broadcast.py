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
from collections import defaultdict
from typing import Any

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils.module_loading import import_string
from redis.exceptions import RedisError

from gridgov.accounts.access import jurisdiction, sees_by_department
from gridgov.areacodes import COMMUNITY_LENGTH, DISTRICT_LENGTH, GRID_LENGTH, LEVEL_OF_LENGTH, STREET_LENGTH
from gridgov.bulk import copy_insert, reserve_ids

from . import layer_adapter
from .models import OutboxEvent

logger = logging.getLogger(__name__)

# Channels' own rule for group names (letters, digits, '-', '_', '.'; under 100 characters).
GROUP_RE = re.compile(r"^[A-Za-z0-9\-_.]{1,99}$")
# Transaction-level advisory lock that makes outbox ids follow commit order (see models.py).
OUTBOX_LOCK_KEY = 0x67726964_6F757478  # "gridoutx"
# Groups sent to at the same time after one commit; messages within a group stay in order.
SEND_CONCURRENCY = 32
AREA_LEVELS = LEVEL_OF_LENGTH
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
    return _area("grid", code, GRID_LENGTH)


def community_group(code):
    return _area("community", code, COMMUNITY_LENGTH)


def street_group(code):
    return _area("street", code, STREET_LENGTH)


def district_group(code):
    return _area("district", code, DISTRICT_LENGTH)


def city_group():
    return "city"


def area_group(code):
    """The group of an area, by the length of its code."""
    level = AREA_LEVELS.get(len(str(code)))
    if level is None:
        raise ValueError(f"not an area code: {code!r}")
    return _area(level, code, len(str(code)))


def area_groups(code: str) -> list[str]:
    """The area's group and those of every enclosing area, up to the city: who watches it."""
    code = str(code)
    return [area_group(code[:n]) for n in sorted(AREA_LEVELS, reverse=True) if n <= len(code)] + [city_group()]


def groups_for(user) -> list[str]:
    """The groups a WebSocket of this user joins, from the same jurisdiction the REST views use.

    Everyone has their own `user.<id>`. Grid workers add one `grid.<code>` per grid; street
    offices their street; department staff their department (what is dispatched to it, not the
    whole area it serves); leaders their district, or the city; operators, the hotline centre and
    administrators the city.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    groups = [user_group(user.pk)]
    if sees_by_department(user):
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
# A burst goes pipelined where the layer allows (layer_adapter, the one user of channels_redis's
# internals); otherwise one group_send per message.


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


_publisher: tuple[str, Any] | None = None


def publisher_layer() -> Any:
    """The default channel layer's twin for sending, with REDIS_REQUEST_TIMEOUT on every connect
    and reply: the layer itself keeps no socket timeout (its consumers sit idle on their
    subscriptions), so a hung Redis would hold the request that publishes for as long as it
    hangs. Same backend, hosts and prefix as the default, so the consumers hear the same thing;
    built again whenever CHANNEL_LAYERS changes. A layer without Redis hosts (in memory) is the
    default itself, since its events never leave the process."""
    global _publisher
    default = settings.CHANNEL_LAYERS.get(DEFAULT_CHANNEL_LAYER)
    hosts = (default or {}).get("CONFIG", {}).get("hosts")
    if not hosts or not all(isinstance(h, dict) for h in hosts):
        return get_channel_layer()
    timeout = settings.REDIS_REQUEST_TIMEOUT
    key = repr((default, timeout))
    if _publisher is None or _publisher[0] != key:
        config = dict(default.get("CONFIG", {}))
        config["hosts"] = [{**h, "socket_timeout": timeout, "socket_connect_timeout": timeout} for h in hosts]
        _publisher = (key, import_string(default["BACKEND"])(**config))
    return _publisher[1]


async def _send_all(pairs, bulk=True):
    layer = publisher_layer()
    if layer is None:
        return
    sender = layer_adapter.bulk_sender(layer) if bulk and len(pairs) > 1 else None
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
    except (OSError, RedisError) as exc:  # refused, hung past REDIS_REQUEST_TIMEOUT, or gone
        logger.warning(
            "realtime: %d message(s) not delivered live (%s: %s); clients catch up on resume",
            len(pairs),
            type(exc).__name__,
            exc,
        )
    except Exception:
        logger.exception("realtime: %d message(s) not delivered live; clients catch up on resume", len(pairs))
