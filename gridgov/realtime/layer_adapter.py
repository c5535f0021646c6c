"""The one place that reaches into channels_redis's private internals: a burst of messages sent
pipelined instead of one group_send (four round trips to Redis) per message.

A burst pipelines the same steps as RedisChannelLayer.group_send: one round trip reads every
group's members, one more delivers every message, with the same Lua script and capacity rule,
and scores that keep the messages in order for each receiving process. The pub/sub layer gets
its PUBLISHes pipelined the same way; other layers get None, and broadcast falls back to plain
group_send.

Written against channels-redis CHANNELS_REDIS_VERSION (pinned in requirements.txt). What it
relies on is listed in INTERNALS; tests/realtime/test_layer_adapter.py fails when an upgrade
renames or reshapes any of it, or when the pinned version changes: read the library's
group_send and pub/sub publish again before raising the version here.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

logger = logging.getLogger("gridgov.realtime.broadcast")

CHANNELS_REDIS_VERSION = "4.3.0"
# (class, attribute) -> the signature used here, or None for a plain attribute set in __init__.
INTERNALS = {
    ("channels_redis.core.RedisChannelLayer", "consistent_hash"): "(self, value)",
    ("channels_redis.core.RedisChannelLayer", "connection"): "(self, index)",
    ("channels_redis.core.RedisChannelLayer", "_group_key"): "(self, group)",
    ("channels_redis.core.RedisChannelLayer", "_map_channel_keys_to_connection"): "(self, channel_names, message)",
    ("channels_redis.core.RedisChannelLayer", "group_expiry"): None,
    ("channels_redis.core.RedisChannelLayer", "expiry"): None,
    ("channels_redis.pubsub.RedisPubSubChannelLayer", "_get_layer"): "(self)",
    ("channels_redis.pubsub.RedisPubSubChannelLayer", "serialize"): "(self, message)",
    ("channels_redis.pubsub.RedisPubSubLoopLayer", "_get_group_channel_name"): "(self, group)",
    ("channels_redis.pubsub.RedisPubSubLoopLayer", "_get_shard"): "(self, channel_or_group_name)",
    ("channels_redis.pubsub.RedisSingleShardConnection", "_ensure_redis"): "(self)",
    ("channels_redis.pubsub.RedisSingleShardConnection", "_lock"): None,
    ("channels_redis.pubsub.RedisSingleShardConnection", "_redis"): None,
}
PIPELINE_CHUNK = 1000
Pairs = Sequence[tuple[str, dict]]


def bulk_sender(layer: object) -> Callable[[object, Pairs], Awaitable[None]] | None:
    """The pipelined sender for `layer`, or None when it has none (send with group_send)."""
    if isinstance(layer, RedisChannelLayer) and hasattr(layer, "_map_channel_keys_to_connection"):
        return _bulk_group_send
    if isinstance(layer, RedisPubSubChannelLayer):
        return _pubsub_bulk_publish
    return None


# The Lua of RedisChannelLayer.group_send (the test compares it), run per burst with the same
# capacity rule: a channel at its capacity drops the message.
GROUP_SEND_LUA = """
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
        sha = await connection.script_load(GROUP_SEND_LUA)  # per flush: survives a Redis restart
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
    by_shard: dict[int, tuple[Any, list[tuple[str, bytes]]]] = {}
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


def _chunks(seq: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
