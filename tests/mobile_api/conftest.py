import pytest


@pytest.fixture(autouse=True)
def throttle_cache(settings):
    """A fresh in-process throttle count per test (the real one is in Redis, shared by every
    process: tests/mobile_api/test_auth.py::test_login_throttle_is_shared_through_redis)."""
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"throttle-{id(settings)}",
        },
    }
