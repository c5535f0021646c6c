"""ASGI entry point for Daphne: HTTP through Django, WebSockets through Channels."""

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
