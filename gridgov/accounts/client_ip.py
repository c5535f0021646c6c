"""The one answer to "which client sent this request?", for every throttle, lockout and log.

X-Forwarded-For is written by whoever sends the request, so it is read only when the peer
(REMOTE_ADDR) is one of TRUSTED_PROXIES, and then from the right: each trusted proxy appends the
address it received the request from, so the first address from the right that is not a trusted
proxy is the client, and whatever stands left of it was written by the client and is ignored.
With TRUSTED_PROXIES empty (the default) the peer is the client.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def trusted_networks(proxies):
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _address(text):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_ip(request):
    """The client's IP address as a string, or None when the server does not know its peer
    (a test request, a Unix socket). Works on Django and DRF requests."""
    peer = _address(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return None
    networks = trusted_networks(tuple(settings.TRUSTED_PROXIES))
    client = peer
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    while hops and any(client in net for net in networks):
        address = _address(hops.pop())
        if address is None:  # not written by a proxy of ours: the last trusted hop is what we know
            break
        client = address
    return str(client)
