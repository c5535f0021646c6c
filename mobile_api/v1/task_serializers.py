"""Tasks on phones: what a caller may send (inputs) and what it may read (outputs, masked per
access.may_see_personal_data). Outputs take a context: `user`, `unmasked` (appeal ids whose
personal data the user may see) and `crs` (a second coordinate system for positions)."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gridgov import inputs
from gridgov import schema as doc
from gridgov.appeals import field_rules, field_tasks
from gridgov.appeals.models import Category, Kind
from gridgov.appeals.serializers import (
    EVENT_LABELS,
    HEADING,
    HISTORY_ITEM,
    BBoxField,
    CSVChoiceField,
    appeal_heading,
    attachment_url,
    history_item,
    thumbnail_url,
)
from gridgov.appeals.workflow import STATE_LABELS, ClosureType
from gridgov.areas import coords
from gridgov.areas.serializers import CRSField

FIELD_EVENT_LABELS = {
    **EVENT_LABELS,
    "check_in": "现场签到",
    "check_in_refused": "签到被拒（超出范围）",
    "evidence": "上传证据",
    "ledger_close": "挂账销账",
}
CLIENT_ID_HELP = "客户端生成的UUID，作用同 Idempotency-Key / a client-made UUID, same effect as Idempotency-Key"


# --- input ----------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.BINARY)
class UploadField(serializers.FileField):
    """A file part of a multipart form (documented as binary, not as a URL)."""


class TaskListQuery(serializers.Serializer):
    state = CSVChoiceField(
        choices=STATE_LABELS,
        required=False,
        help_text="comma-separated; default: dispatched,accepted,in_progress,suspended",
    )
    in_bbox = BBoxField(required=False, help_text="minx,miny,maxx,maxy, in `crs`")
    crs = CRSField(
        required=False, default="wgs84", help_text="wgs84 / gcj02 / bd09: of in_bbox, and positions are given in it too"
    )


class TaskDetailQuery(serializers.Serializer):
    crs = CRSField(required=False, default="wgs84", help_text="also give positions in gcj02 or bd09")


class _Idempotent(serializers.Serializer):
    client_id = inputs.UUIDField(required=False, help_text=CLIENT_ID_HELP)


class AcceptInput(_Idempotent):
    note = inputs.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ReturnInput(_Idempotent):
    # Blank passes here so that the service answers with its own code (reason_required).
    reason = inputs.CharField(max_length=2000, required=False, allow_blank=True, default="")


class CheckInInput(_Idempotent):
    lng = inputs.FloatField(min_value=-180, max_value=180)
    lat = inputs.FloatField(min_value=-90, max_value=90)
    crs = CRSField(required=False, default="wgs84", help_text="wgs84 (GPS) / gcj02 (AMap, Tencent) / bd09 (Baidu)")
    accuracy_m = inputs.FloatField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        help_text="the phone's reported accuracy, kept on the record",
    )
    client_at = inputs.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="when the check-in happened (a queued offline check-in)",
    )


class EvidenceInput(_Idempotent):
    file = UploadField(
        help_text="photo JPEG/PNG/HEIC, video MP4/MOV, audio AAC/M4A/MP3/AMR; the type is read from the bytes"
    )
    purpose = serializers.ChoiceField(choices=[(p, field_rules.PURPOSE_LABELS[p]) for p in settings.EVIDENCE_PURPOSES])


class CompleteInput(_Idempotent):
    note = inputs.CharField(
        max_length=5000,
        help_text="办理结果 / what was done",
        error_messages={"blank": "请填写办理结果 / describe what was done"},
    )
    closure_type = serializers.ChoiceField(
        choices=[c for c in ClosureType.CHOICES if c[0] in field_tasks.FIELD_CLOSURES],
        required=False,
        default=ClosureType.SUBSTANTIVE,
    )


class GridReportInput(_Idempotent):
    text = inputs.CharField(max_length=5000)
    lng = inputs.FloatField(min_value=-180, max_value=180)
    lat = inputs.FloatField(min_value=-90, max_value=90)
    crs = CRSField(required=False, default="wgs84")
    address_text = inputs.CharField(max_length=300, required=False, allow_blank=True, default="")
    category_code = inputs.CharField(max_length=6, required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=Kind.choices, required=False, allow_blank=True, default="")
    fixed_on_site = inputs.BooleanField(required=False, default=False, help_text="自处置: fixed on the spot")
    note = inputs.CharField(
        max_length=5000,
        required=False,
        allow_blank=True,
        default="",
        help_text="what was done, when fixed_on_site (default: the text)",
    )
    photos = serializers.ListField(
        child=UploadField(),
        required=False,
        default=list,
        max_length=9,
        help_text="the problem as found (purpose before)",
    )
    after_photos = serializers.ListField(
        child=UploadField(), required=False, default=list, max_length=9, help_text="after fixing it (purpose after)"
    )

    def validate_category_code(self, value):
        if value and not Category.objects.filter(code=value, level=3, is_active=True).exists():
            raise serializers.ValidationError("没有这个三级分类 / no active leaf category with this code")
        return value

    def validate(self, attrs):
        if not attrs["photos"] and not attrs["after_photos"]:
            raise serializers.ValidationError({"photos": "至少上传一张照片 / at least one photo"})
        return attrs


# --- output ---------------------------------------------------------------------------------


_dt = serializers.DateTimeField()


def _time(value):
    return _dt.to_representation(value) if value else None


def position(point, crs):
    """{"wgs84": [lng, lat]} and, when asked, the same point in gcj02 / bd09."""
    if point is None:
        return None
    out = {"wgs84": [round(point.x, 7), round(point.y, 7)]}
    if crs and crs != "wgs84":
        x, y = coords.from_wgs84(point.x, point.y, crs)
        out[crs] = [round(float(x), 7), round(float(y), 7)]
    return out


def _code_name(obj):
    return {"code": obj.code, "name": obj.name} if obj is not None else None


def evidence_item(att):
    meta = att.meta or {}
    compare = meta.get("compare") or {}
    return {
        "id": att.pk,
        "kind": att.kind,
        "content_type": att.content_type,
        "size": att.size,
        "sha256": att.sha256,
        "purpose": att.purpose,
        "purpose_label": field_rules.PURPOSE_LABELS.get(att.purpose, att.purpose),
        "url": attachment_url(att),
        "thumbnail_url": thumbnail_url(att),
        "uploaded_at": _time(att.uploaded_at),
        "uploaded_by": att.uploaded_by.username if att.uploaded_by_id and att.uploaded_by else None,
        "width": meta.get("width"),
        "height": meta.get("height"),
        "exif": meta.get("exif"),
        "compare": {
            k: compare.get(k)
            for k in ("reference", "time_diff_s", "distance_to_reference_m", "distance_to_appeal_m", "flags")
        },
    }


_CHECK_IN_KEYS = (
    "crs",
    "wgs84",
    "accuracy_m",
    "client_at",
    "reference",
    "distance_m",
    "geofence_m",
    "inside",
    "flagged",
)


def check_in_item(ev):
    return {
        "id": ev.pk,
        "at": _time(ev.at),
        "actor": ev.actor.username if ev.actor_id and ev.actor else None,
        **{k: ev.data.get(k) for k in _CHECK_IN_KEYS},
    }


class TaskOutput(serializers.BaseSerializer):
    """One task on the list."""

    def to_representation(self, a):
        unmasked = a.pk in self.context.get("unmasked", ())
        return {
            **appeal_heading(a, unmasked=unmasked),
            "position": position(a.position, self.context.get("crs")),
            "grid": {"code": a.grid_code, "name": a.grid.name if a.grid_id else ""} if a.grid_code else None,
            "category": _code_name(a.category),
            "department": _code_name(a.department),
            "time_limit": a.time_limit,
            "deadline": _time(a.deadline),
            "warning_colour": a.warning_colour,
            "warning_colour_label": a.get_warning_colour_display(),
            "received_at": _time(a.received_at),
            "updated_at": _time(a.updated_at),
        }


POSITION = doc.nullable(
    doc.obj(
        {"wgs84": doc.LNGLAT, "gcj02": doc.LNGLAT, "bd09": doc.LNGLAT},
        optional=("gcj02", "bd09"),
        description="WGS-84, and the same point in the query's crs when it is not wgs84",
    )
)
TASK = doc.obj(
    {
        **HEADING,
        "position": POSITION,
        "grid": doc.code_name(),
        "category": doc.code_name(),
        "department": doc.code_name(),
        "time_limit": doc.STR,
        "deadline": doc.nullable(doc.DATETIME),
        "warning_colour": doc.STR,
        "warning_colour_label": doc.STR,
        "received_at": doc.nullable(doc.DATETIME),
        "updated_at": doc.nullable(doc.DATETIME),
    },
    description="任务（个人信息按权限脱敏）/ a task, personal data masked unless the caller's unit leads it",
)
EVIDENCE = doc.obj(
    {
        "id": doc.INT,
        "kind": doc.STR,
        "content_type": doc.STR,
        "size": doc.INT,
        "sha256": doc.STR,
        "purpose": doc.STR,
        "purpose_label": doc.STR,
        "url": doc.STR,
        "thumbnail_url": doc.nullable(doc.STR),
        "uploaded_at": doc.nullable(doc.DATETIME),
        "uploaded_by": doc.nullable(doc.STR),
        "width": doc.nullable(doc.INT),
        "height": doc.nullable(doc.INT),
        "exif": doc.nullable(doc.ANY_OBJECT),
        "compare": doc.ANY_OBJECT,
    }
)
CHECK_IN = doc.obj(
    {
        "id": doc.INT,
        "at": doc.nullable(doc.DATETIME),
        "actor": doc.nullable(doc.STR),
        **{k: {"nullable": True} for k in _CHECK_IN_KEYS},
    }
)
TASK_DETAIL = doc.obj(
    {
        **TASK["properties"],
        "location": doc.obj(
            {"position": POSITION, "address_text": doc.STR, "method": doc.STR, "grid": doc.code_name()}
        ),
        "history": doc.array(doc.obj({"at": doc.nullable(doc.DATETIME), **HISTORY_ITEM})),
        "check_ins": doc.array(CHECK_IN),
        "evidence": doc.array(EVIDENCE),
        "geofence_m": doc.NUM,
        "progress": doc.obj(
            {
                "checked_in": doc.BOOL,
                "last_check_in": doc.nullable(CHECK_IN),
                "required_evidence": doc.array(doc.STR),
                "missing_evidence": doc.array(doc.STR),
            }
        ),
        "closure_type": doc.STR,
        "actions": doc.array(doc.STR),
    },
    description="任务详情 / a task with its history, check-ins, evidence, progress and the actions allowed now",
)
# What an action answers when it took the task out of the caller's sight.
TASK_GONE = doc.obj({"ticket_no": doc.STR, "state": doc.STR})


class TaskDetailOutput(TaskOutput):
    """A task with its history, check-ins, evidence (thumbnails), what completion still needs
    and the actions the caller may take now (events and attachments prefetched)."""

    def to_representation(self, a):
        data = super().to_representation(a)
        user = self.context["user"]
        unmasked = data["personal_data_masked"] is False
        events = list(a.events.all())
        attachments = list(a.attachments.all())
        started, check_in = field_rules.round_progress(events)
        required = field_rules.required_evidence(a)
        missing = field_rules.missing_evidence(
            required, [(f.kind, f.purpose, f.uploaded_at) for f in attachments], started
        )
        data["location"] = {
            "position": data["position"],
            "address_text": a.address_text,
            "method": (a.location or {}).get("method", ""),
            "grid": data["grid"],
        }
        data["history"] = [history_item(e, a, unmasked=unmasked, labels=FIELD_EVENT_LABELS) for e in events]
        data["check_ins"] = [check_in_item(e) for e in events if e.event == "check_in"]
        data["evidence"] = [evidence_item(f) for f in attachments]
        data["geofence_m"] = field_rules.geofence_metres(a)
        data["progress"] = {
            "checked_in": check_in is not None and a.state in field_tasks.ON_SITE_STATES,
            "last_check_in": check_in_item(check_in) if check_in is not None else None,
            "required_evidence": list(required),
            "missing_evidence": missing,
        }
        data["closure_type"] = a.closure_type
        data["actions"] = field_tasks.allowed_actions(user, a)
        return data
