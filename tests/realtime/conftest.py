import copy
import os

import pytest
from django.conf import settings as django_settings

from fixtures.testcity import build_test_city

# One Redis key prefix per test session: several developers' runs share one Redis, and the
# Daphne processes started by these tests must use the same prefix as this process.
PREFIX = f"gridgov-test-{os.getpid()}"


@pytest.fixture(autouse=True)
def channel_prefix(settings):
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["prefix"] = PREFIX
    settings.CHANNEL_LAYERS = layers
    return PREFIX


@pytest.fixture(scope="session", autouse=True)
def _clean_redis_prefix():
    yield
    import redis

    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{PREFIX}*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    client.close()


@pytest.fixture
def tcity(transactional_db):
    """The test city, committed (WebSocket consumers and Daphne read from other connections)."""
    build_test_city()
