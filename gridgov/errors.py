"""The refusals a service raises, in the one shape every API answers them in.

A `DomainError` carries a `code` (what clients branch on) and `extra` (what the answer adds
beside the message); `status_code` is the HTTP answer: 400 for a request the caller can fix,
409 (`Conflict`) for a step the state of things does not allow now. gridgov.api's exception
handler turns any of them into `{"detail", "code", **extra}`: the views raise, never answer
these themselves. Nothing here imports Django, so every floor may use it.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "error"
    extra: Mapping[str, Any] = MappingProxyType({})


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
