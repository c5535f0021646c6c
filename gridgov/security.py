"""Security headers that depend on the request or on other settings: the Content-Security-Policy
(django-csp, with what a static setting cannot say) and the Permissions-Policy."""

from functools import cache
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from django.conf import settings

from gridgov.basemaps import basemap_name, get_basemap


def tile_origins(basemap: str | None = None) -> list[str]:
    """The origins the basemap's tiles come from (every {s} subdomain spelled out), for img-src."""
    return list(_tile_origins(basemap_name(basemap), settings.TIANDITU_KEY))


@cache
def _tile_origins(name: str, tianditu_key: str) -> tuple[str, ...]:
    # Asked on every response: worked out once per basemap (and key), not per request.
    origins = []
    for tile in get_basemap(name, tianditu_key=tianditu_key).tiles:
        for sub in tile.subdomains if "{s}" in tile.url else "":
            origins.append(_origin(tile.url.replace("{s}", sub)))
        if "{s}" not in tile.url:
            origins.append(_origin(tile.url))
    return tuple(dict.fromkeys(origins))


def _origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp, plus the basemap's tile hosts in img-src and the WebSocket of this very host in
    connect-src: 'self' covers ws(s):// only in CSP Level 3 browsers, and the host is the one the
    request came to (ALLOWED_HOSTS has already vetted it)."""

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        host = request.get_host()
        ours = {
            "connect-src": [f"ws://{host}", f"wss://{host}"] if not request.is_secure() else [f"wss://{host}"],
            "img-src": tile_origins(),
        }
        update = dict(parts.update or {})
        for directive, sources in ours.items():
            extra = update.get(directive) or []
            update[directive] = [*([extra] if isinstance(extra, str) else extra), *sources]
        parts.update = update
        return parts


class PermissionsPolicyMiddleware:
    """Permissions-Policy from settings.PERMISSIONS_POLICY ({feature: [allowlist]}; [] = off)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.header = ", ".join(
            f"{feature}=({' '.join(allow)})" for feature, allow in settings.PERMISSIONS_POLICY.items()
        )

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", self.header)
        return response
