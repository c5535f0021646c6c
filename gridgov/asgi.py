"""ASGI entry point for Daphne: HTTP through Django, WebSockets through Channels."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridgov.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from gridgov.realtime.auth import RealtimeAuthStack  # noqa: E402
from gridgov.realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": RealtimeAuthStack(URLRouter(websocket_urlpatterns))}
)

# A Daphne process holds ~150,000 objects after start-up (Django, DRF, GDAL bindings) and ~150
# more per open WebSocket; full collections walked them all (0.5-0.9 s each on a busy 2-core
# machine), and with 1,000 sockets a process spent 0.44 s of CPU on a burst of 1,000 events
# instead of 0.15 s (tests/bench/bench_realtime.py). Start-up objects live as long as the
# process, so they leave the collector's view; a larger first generation lets the short-lived
# objects of a burst die young instead of being promoted towards full collections.
gc.collect()
gc.freeze()
gc.set_threshold(50_000, *gc.get_threshold()[1:])
