"""Uploaded files (field evidence and its thumbnails, muster evidence), served only to those who
may see what they belong to: an appeal's files to whoever appeals_visible_to lets see the appeal,
a muster's to whoever calls_visible_to lets see the whistle call. Nobody reaches MEDIA_ROOT
directly; a file outside the user's sight answers 404, like a missing one.

Phones authenticate with their knox token, pages with the session. In development the file is
streamed from here; behind nginx (MEDIA_ACCEL_REDIRECT_PREFIX set) this view only decides, and
nginx sends the bytes from an `internal` location (deploy/nginx.conf)."""

from pathlib import PurePosixPath
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import path
from django.utils.cache import patch_cache_control
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from gridgov import schema as doc
from gridgov.appeals.access import appeals_visible_to
from gridgov.appeals.models import Attachment
from gridgov.whistles.access import calls_visible_to
from gridgov.whistles.models import MusterEvidence

# What a browser may show in place; anything else is offered as a download, so a stored type
# that a browser would run (HTML, SVG) never runs on our origin.
INLINE_TYPES = ("image/jpeg", "image/png", "image/heic", "image/heif", "image/webp", "application/pdf")
INLINE_PREFIXES = ("video/", "audio/")


def serve(name, content_type, filename):
    """The stored file `name` as a response: streamed, or handed to nginx."""
    if not name or not default_storage.exists(name):
        raise Http404
    inline = content_type in INLINE_TYPES or content_type.startswith(INLINE_PREFIXES)
    if not inline:
        content_type = "application/octet-stream"
    disposition = f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(filename)}"
    prefix = settings.MEDIA_ACCEL_REDIRECT_PREFIX
    if prefix:
        response: HttpResponseBase = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = prefix + quote(name)
    else:
        response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    # The browser of the person allowed may keep it; no proxy or CDN may hand it to anyone else.
    patch_cache_control(response, private=True, max_age=3600)
    return response


def _basename(name):
    return PurePosixPath(name).name


FILE_SCHEMA = extend_schema(
    parameters=[doc.ID_PARAMETER], responses={(200, "*/*"): OpenApiTypes.BINARY, **doc.errors(401, 403, 404)}
)


class AttachmentFileApi(APIView):
    """GET /media/attachments/<id> — an appeal's file."""

    @FILE_SCHEMA
    def get(self, request, pk):
        att = _attachment(request.user, pk)
        return serve(att.file.name, att.content_type, _basename(att.file.name))


class AttachmentThumbnailApi(APIView):
    """GET /media/attachments/<id>/thumbnail — the JPEG thumbnail of a photo."""

    @FILE_SCHEMA
    def get(self, request, pk):
        att = _attachment(request.user, pk)
        name = (att.meta or {}).get("thumbnail")
        return serve(name, "image/jpeg", _basename(name or ""))


class MusterEvidenceFileApi(APIView):
    """GET /media/muster-evidence/<id> — a department's report evidence on a whistle call."""

    @FILE_SCHEMA
    def get(self, request, pk):
        ev = (
            MusterEvidence.objects.select_related("muster")
            .filter(pk=pk, muster__call__in=calls_visible_to(request.user))
            .first()
        )
        if ev is None:
            raise Http404
        return serve(ev.file.name, ev.content_type, ev.name or _basename(ev.file.name))


def _attachment(user, pk):
    att = Attachment.objects.filter(pk=pk, appeal__in=appeals_visible_to(user)).first()
    if att is None:
        raise Http404
    return att


app_name = "files"
urlpatterns = [
    path("attachments/<int:pk>", AttachmentFileApi.as_view(), name="attachment"),
    path("attachments/<int:pk>/thumbnail", AttachmentThumbnailApi.as_view(), name="thumbnail"),
    path("muster-evidence/<int:pk>", MusterEvidenceFileApi.as_view(), name="muster-evidence"),
]
