"""Idempotent POSTs for phones that retry and replay offline queues: the phone API's task
actions and grid reports (mobile_api/v1) and the musters they answer whistles with
(gridgov/whistles/api.py).

A POST may carry an `Idempotency-Key` header (any 1–255 visible ASCII characters, a UUID by
preference) or, where a header is awkward (a queued multipart form), a `client_id` field holding
a UUID. The first successful answer (status and body) is stored for that user and key and
replayed, with `Idempotent-Replayed: true`, to every later request with the same key; the same
key with another method, path or body is refused with 422. Refusals (4xx) are not stored: they
changed nothing, so a retry is answered afresh (a check-in refused before the accept arrived
succeeds once it has). Without a key a request runs as usual; evidence uploads and grid
reports still never make twins (the file's SHA-256 and the report's external id do that).

The record is inserted as the first statement of the request's transaction. A second request
with the same key that arrives while the first is running waits on the unique index; when the
first commits it replays, and when the first failed it runs itself.
"""

import functools
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from gridgov.errors import DomainError
from gridgov.fieldwork.evidence import file_sha256
from gridgov.idempotency.models import IdempotencyRecord

HEADER = "Idempotency-Key"
CLIENT_ID_FIELD = "client_id"
REPLAYED_HEADER = "Idempotent-Replayed"


class BadKey(ValueError):
    pass


def _field(data: Any, name: str) -> Any:
    if hasattr(data, "getlist"):
        values = data.getlist(name)
        return values[-1] if values else None
    return data.get(name) if isinstance(data, dict) else None


def idempotency_key(request: Request) -> str | None:
    """The request's key: the header, else the client_id field (a UUID); None without either."""
    raw = request.headers.get(HEADER)
    if raw is not None:
        key = raw.strip()
        if not (1 <= len(key) <= 255 and all(33 <= ord(c) <= 126 for c in key)):
            raise BadKey(f"{HEADER} 须为1–255个可见ASCII字符 / {HEADER} must be 1–255 visible ASCII characters")
        return key
    client_id = _field(request.data, CLIENT_ID_FIELD)
    if client_id in (None, ""):
        return None
    try:
        return str(uuid.UUID(str(client_id)))
    except ValueError:
        raise BadKey(f"{CLIENT_ID_FIELD} 须为UUID / {CLIENT_ID_FIELD} must be a UUID") from None


def _canonical(value: Any) -> Any:
    if isinstance(value, UploadedFile):
        return {"file_sha256": file_sha256(value), "size": value.size}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def request_fingerprint(request: Request) -> str:
    """SHA-256 over method, path, query and body (without client_id); files count by their
    content, not their name (a phone's retry may name the same photo differently)."""
    data = request.data
    if hasattr(data, "lists"):
        body = {k: _canonical(v) for k, v in sorted(data.lists())}
    else:
        body = _canonical(data)
    if isinstance(body, dict):
        body.pop(CLIENT_ID_FIELD, None)  # the key itself, however the client spells the UUID
    payload = [request.method, request.path, sorted(request.query_params.lists()), body]
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response, status=record.status)
    response[REPLAYED_HEADER] = "true"
    return response


def idempotent(method: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate an APIView's post(): runs after authentication, so request.user is known."""

    @functools.wraps(method)
    def wrapper(self, request, *args, **kwargs):
        try:
            key = idempotency_key(request)
        except BadKey as exc:
            return Response({"detail": str(exc), "code": "bad_idempotency_key"}, status=400)
        if key is None:
            return method(self, request, *args, **kwargs)
        fingerprint = request_fingerprint(request)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        user=request.user,
                        key=key,
                        method=request.method,
                        path=request.path[:500],
                        request_hash=fingerprint,
                    )
            except IntegrityError:
                stored = IdempotencyRecord.objects.get(user=request.user, key=key)
                if stored.request_hash != fingerprint:
                    return Response(
                        {
                            "detail": "该幂等键已用于另一个请求 / this idempotency key was used for a different "
                            "request",
                            "code": "idempotency_key_reused",
                            "method": stored.method,
                            "path": stored.path,
                        },
                        status=422,
                    )
                return _replay(stored)
            try:
                response = method(self, request, *args, **kwargs)
            except DomainError as exc:
                # Answered here, inside the transaction, so that what the refusing service
                # recorded (a refused check-in) is kept, as when the view answered it itself.
                response = self.handle_exception(exc)
            if 200 <= response.status_code < 300:
                # What the client received, byte for byte as JSON: the replay must equal it.
                body = None if response.data is None else json.loads(JSONRenderer().render(response.data))
                record.status, record.response = response.status_code, body
                record.save(update_fields=["status", "response"])
            else:
                record.delete()
        return response

    return wrapper
