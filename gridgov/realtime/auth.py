"""WebSocket authentication: the REST API's knox token, or the Django session of the web pages.

A phone sends its token as a subprotocol (`Sec-WebSocket-Protocol: gridgov.v1, token.<token>`:
browsers and most WebSocket libraries cannot set an Authorization header). A `?token=` in the URL
is refused (4401) and never looked up: URLs land in access logs and proxies' logs, where a token
would be a way in for anyone who reads them. The token is checked by knox itself (`TokenAuthentication.authenticate_credentials`:
same hashing, expiry and inactive-user rules as the REST API). A bad or expired token gives an
anonymous user, never a fallback to the session, so the consumer closes with 4401.

Origins: browsers always send `Origin` on a WebSocket, and only browsers carry session cookies
to another site, so a connection with an Origin must come from an allowed host (cross-site
WebSocket hijacking), while one without (a phone app) is let through and may only use a token.
"""

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator
from django.contrib.auth.models import AnonymousUser
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

TOKEN_SUBPROTOCOL_PREFIX = "token."
SUBPROTOCOL = "gridgov.v1"


def token_from_scope(scope):
    """The token offered as a `token.<token>` subprotocol; None if none."""
    for proto in scope.get("subprotocols") or []:
        if proto.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return proto[len(TOKEN_SUBPROTOCOL_PREFIX) :]
    return None


def token_in_url(scope):
    return "token" in parse_qs(scope.get("query_string", b"").decode("latin1"), keep_blank_values=True)


def has_origin(scope):
    return any(name == b"origin" for name, _ in scope.get("headers", []))


@database_sync_to_async
def authenticate_token(token):
    """(user, AuthToken) from knox, or (None, None)."""
    if not token or len(token) > 200:
        return None, None
    try:
        return TokenAuthentication().authenticate_credentials(token.encode())
    except (AuthenticationFailed, UnicodeError):
        return None, None


class RealtimeAuthMiddleware:
    """Sets scope["user"], and scope["auth_token"] (knox AuthToken, or None for a session)."""

    def __init__(self, inner):
        self.inner = inner
        self.session_stack = AuthMiddlewareStack(inner)

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        if token_in_url(scope):
            scope["user"], scope["auth_token"] = AnonymousUser(), None
            return await self.inner(scope, receive, send)
        token = token_from_scope(scope)
        if token is not None:
            user, auth_token = await authenticate_token(token)
            scope["user"] = user or AnonymousUser()
            scope["auth_token"] = auth_token
            return await self.inner(scope, receive, send)
        scope["auth_token"] = None
        if has_origin(scope):
            return await self.session_stack(scope, receive, send)
        scope["user"] = AnonymousUser()
        return await self.inner(scope, receive, send)


class _BrowserOriginValidator(OriginValidator):
    def valid_origin(self, parsed_origin):
        return parsed_origin is None or super().valid_origin(parsed_origin)


def RealtimeAuthStack(inner):
    """What asgi.py wraps the WebSocket router in: origin check, then token or session."""
    allowed = AllowedHostsOriginValidator(inner).allowed_origins  # ALLOWED_HOSTS, as Channels reads it
    return _BrowserOriginValidator(RealtimeAuthMiddleware(inner), allowed)
