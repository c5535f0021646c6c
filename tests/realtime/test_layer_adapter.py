"""layer_adapter reaches into channels_redis's private internals. These tests fail loudly when an
upgrade of channels-redis moves what it relies on: read the library's group_send and pub/sub
publish again, adjust the adapter, then raise CHANNELS_REDIS_VERSION."""

import importlib
import inspect
import re
from importlib.metadata import version
from pathlib import Path

import pytest
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

from gridgov.realtime import layer_adapter

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"


def test_installed_and_pinned_channels_redis_is_the_one_the_adapter_was_written_for():
    assert version("channels-redis") == layer_adapter.CHANNELS_REDIS_VERSION
    pins = re.findall(r"^channels-redis==(\S+)", REQUIREMENTS.read_text(), re.M)
    assert pins == [layer_adapter.CHANNELS_REDIS_VERSION]


def _instance_attributes(cls):
    """Attributes __init__ sets on self (self.x = ...), read from its source."""
    return set(re.findall(r"self\.(\w+)\s*=", inspect.getsource(cls.__init__)))


@pytest.mark.parametrize(("where", "expected"), sorted(layer_adapter.INTERNALS.items()), ids=lambda v: str(v))
def test_every_internal_the_adapter_uses_is_there_with_its_signature(where, expected):
    path, name = where
    module, cls_name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), cls_name)
    if expected is None:
        assert name in _instance_attributes(cls) or hasattr(cls, name), f"{path}.{name} is gone"
    else:
        member = getattr(cls, name, None)
        assert callable(member), f"{path}.{name} is gone"
        assert str(inspect.signature(member)) == expected, f"{path}.{name} changed its signature"


def test_the_lua_script_is_the_library_group_sends():
    def squash(text):
        return " ".join(text.split())

    assert squash(layer_adapter.GROUP_SEND_LUA) in squash(inspect.getsource(RedisChannelLayer.group_send))


def test_bulk_sender_per_layer():
    assert layer_adapter.bulk_sender(RedisChannelLayer(hosts=["redis://127.0.0.1:1"])) is not None
    assert layer_adapter.bulk_sender(RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:1"])) is not None
    assert layer_adapter.bulk_sender(InMemoryChannelLayer()) is None
