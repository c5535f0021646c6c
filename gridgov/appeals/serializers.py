"""Appeals API: input serializers (what a caller may send) and output serializers (what a
viewer may read, masked per access.may_see_personal_data). The import command and the intake
page validate through AppealRegisterInput too, so one set of rules holds for every door."""

import re
from collections.abc import Mapping
from typing import Any

from django.contrib.gis.geos import Polygon
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from gridgov import inputs
from gridgov import schema as doc
from gridgov.appeals.masking import appellant_fields, event_note
from gridgov.appeals.models import Appeal, AppealEvent, Attachment, Category, Channel, Kind, TimeLimit, WarningColour
from gridgov.appeals.workflow import STATE_LABELS, ClosureType
from gridgov.areacodes import COMMUNITY_LENGTH, DISTRICT_LENGTH, STREET_LENGTH
from gridgov.areas.serializers import CRSField

PHONE_RE = re.compile(r"^\+?[\d\s\-()]{3,25}(?:(?:转|-|ext\.?)\s*\d{1,6})?$")
# Exports often hold two numbers in one cell: "13812345678，010-68123456".
PHONE_SEPARATORS = re.compile(r"\s*[,，;；/、]\s*")
BULK_MAX = 1000


# The file views (gridgov/files.py) serve these addresses after their access check; naming them by
# URL name keeps the serializers off the views' floor.
def attachment_url(att: Attachment) -> str:
    return reverse("files:attachment", args=[att.pk])


def thumbnail_url(att: Attachment) -> str | None:
    return reverse("files:thumbnail", args=[att.pk]) if (att.meta or {}).get("thumbnail") else None


EVENT_LABELS = {
    "register": "登记",
    "locate": "定位",
    "queue_for_location": "待人工定位",
    "dispatch": "派单",
    "accept": "签收",
    "start": "开始办理",
    "return": "退单",
    "reassign": "改派",
    "reject_return": "驳回退单",
    "resolve": "办结",
    "suspend": "挂账",
    "resume": "恢复办理",
    "close": "结案",
    "redo": "重办",
    "reopen": "重新打开",
    "merge": "并单",
    "close_with_lead": "随主单结案",
    "categorise": "确认分类",
    "recategorise": "改分类并改派",
    "colour_yellow": "黄色提醒",
    "colour_orange": "橙色督办",
    "colour_red": "红色提级",
    "colour_none": "预警解除",
}


# --- input ----------------------------------------------------------------------------------


class AppealRegisterInput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, default=Channel.PHONE)
    kind = serializers.ChoiceField(choices=Kind.choices, required=False, allow_blank=True, default="")
    text = inputs.CharField(max_length=5000, trim_whitespace=True)
    address_text = inputs.CharField(max_length=300, required=False, allow_blank=True, default="")
    lng = inputs.FloatField(min_value=-180, max_value=180, required=False, allow_null=True, default=None)
    lat = inputs.FloatField(min_value=-90, max_value=90, required=False, allow_null=True, default=None)
    crs = CRSField(required=False, default="wgs84")
    appellant_name = inputs.CharField(max_length=50, required=False, allow_blank=True, default="")
    appellant_phone = inputs.CharField(max_length=30, required=False, allow_blank=True, default="")
    received_at = inputs.DateTimeField(required=False, allow_null=True, default=None)
    source_system = inputs.CharField(max_length=40, required=False, allow_blank=True, default="")
    external_id = inputs.CharField(max_length=64, required=False, allow_blank=True, default="")
    category_code = inputs.CharField(max_length=6, required=False, allow_blank=True, default="")

    def validate_appellant_phone(self, value):
        if value and not all(PHONE_RE.match(p) for p in PHONE_SEPARATORS.split(value.strip(" ,，;；/、"))):
            raise serializers.ValidationError("电话号码格式不正确 / not a phone number")
        return value

    def validate_category_code(self, value):
        if not value:
            return value
        leaves = self.context.get("leaf_codes")  # validate_many reads them once for the batch
        if leaves is None:
            leaves = set(Category.objects.filter(code=value, level=3, is_active=True).values_list("code", flat=True))
        if value not in leaves:
            raise serializers.ValidationError("没有这个三级分类 / no active leaf category with this code")
        return value

    @classmethod
    def validator(cls, *, text_input=False):
        """A function item -> (register data, None) or (None, errors) that validates many items
        with one serializer, as a ListSerializer does, the active leaf codes read once.
        `text_input`: the items' values are text (a CSV export), parsed rather than type-checked."""
        leaves = set(Category.objects.filter(level=3, is_active=True).values_list("code", flat=True))
        child = cls(context={"leaf_codes": leaves, "text_input": text_input})

        def validate(item):
            if not isinstance(item, dict):
                return None, {"non_field_errors": ["每一条应为对象 / each item must be an object"]}
            try:
                return cls.data_for_register(child.run_validation(item)), None
            except serializers.ValidationError as exc:
                return None, exc.detail

        return validate

    @classmethod
    def validate_many(cls, items):
        """Validate each item of a bulk request alone: [(index, register data)] of the valid ones
        and {index: errors} of the rest."""
        validate = cls.validator()
        valid, errors = [], {}
        for index, item in enumerate(items):
            data, problem = validate(item)
            if data is None:
                errors[index] = problem
            else:
                valid.append((index, data))
        return valid, errors

    def validate(self, attrs):
        if (attrs.get("lng") is None) != (attrs.get("lat") is None):
            raise serializers.ValidationError({"lng": "经度和纬度须同时填写 / send both lng and lat, or neither"})
        if attrs.get("source_system") and not attrs.get("external_id"):
            raise serializers.ValidationError(
                {"external_id": "有来源系统时须填写外部编号 / source_system needs external_id"}
            )
        return attrs

    def register_data(self, reporter=None):
        """What appeal_register takes."""
        return self.data_for_register(self.validated_data, reporter)

    @staticmethod
    def data_for_register(validated, reporter=None):
        data = {k: v for k, v in validated.items() if v not in (None, "")}
        if reporter is not None:
            data["reporter"] = reporter
        return data


class ReasonInput(serializers.Serializer):
    # Blank passes here so that the service answers with its own code (reason_required).
    reason = inputs.CharField(max_length=2000, required=False, allow_blank=True, default="")


class NoteInput(serializers.Serializer):
    note = inputs.CharField(max_length=2000, required=False, allow_blank=True, default="")


@extend_schema_field({"type": "string", "enum": [c for c, _ in ClosureType.CHOICES]})
class ClosureTypeField(inputs.CharField):
    """A CharField, so that the service answers an unknown type with its own code (closure_type)."""


class ResolveInput(serializers.Serializer):
    closure_type = ClosureTypeField(max_length=20, help_text=", ".join(dict(ClosureType.CHOICES)))
    note = inputs.CharField(max_length=5000, required=False, allow_blank=True, default="")


class ArbitrateInput(serializers.Serializer):
    uphold = inputs.BooleanField()
    department = inputs.SlugField(max_length=40, required=False, allow_blank=True, default="")
    note = inputs.CharField(max_length=2000, required=False, allow_blank=True, default="")


class MergeInput(serializers.Serializer):
    lead = inputs.CharField(max_length=20, help_text="ticket_no of the lead appeal")


class SuspendInput(serializers.Serializer):
    reason = inputs.CharField(max_length=2000, required=False, allow_blank=True, default="")
    review_at = inputs.DateTimeField(ahead=inputs.PLANNING_HORIZON)
    plan = inputs.CharField(max_length=5000, required=False, allow_blank=True, default="")

    def validate_review_at(self, value):
        if value <= timezone.now():
            raise serializers.ValidationError("复核时间须晚于当前时间 / review_at must be in the future")
        return value


class LocateInput(serializers.Serializer):
    lng = inputs.FloatField(min_value=-180, max_value=180)
    lat = inputs.FloatField(min_value=-90, max_value=90)
    crs = CRSField(required=False, default="wgs84")


class CategoriseInput(serializers.Serializer):
    category_code = inputs.CharField(max_length=6, error_messages={"blank": "请选择分类 / choose a category"})

    def validate_category_code(self, value):
        if not Category.objects.filter(code=value, level=3, is_active=True).exists():
            raise serializers.ValidationError("没有这个三级分类 / no active leaf category with this code")
        return value


class BBoxField(inputs.CharField):
    def to_internal_value(self, data):
        parts = str(data).split(",")
        try:
            x0, y0, x1, y1 = (float(p) for p in parts)
        except ValueError:
            raise serializers.ValidationError(
                "in_bbox 应为 minx,miny,maxx,maxy / expected minx,miny,maxx,maxy"
            ) from None
        if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
            raise serializers.ValidationError("in_bbox 范围无效 / empty or out-of-range box")
        return Polygon.from_bbox((x0, y0, x1, y1))


class CSVChoiceField(inputs.CharField):
    """'dispatched,accepted' → ['dispatched', 'accepted'], each checked against `choices`."""

    def __init__(self, *, choices, **kw):
        self.valid = set(choices)
        super().__init__(**kw)

    def to_internal_value(self, data):
        values = [v.strip() for v in super().to_internal_value(data).split(",") if v.strip()]
        bad = [v for v in values if v not in self.valid]
        if bad:
            raise serializers.ValidationError(f"无效取值 / invalid value(s): {', '.join(bad)}")
        return values


class AppealListQuery(serializers.Serializer):
    state = CSVChoiceField(
        choices=STATE_LABELS, required=False, help_text="comma-separated, of: " + ", ".join(STATE_LABELS)
    )
    colour = CSVChoiceField(
        choices=WarningColour.values,
        required=False,
        help_text="comma-separated, of: " + ", ".join(WarningColour.values),
    )
    category = inputs.RegexField(r"^\d{2}(\d{2}){0,2}$", required=False, help_text="category code or prefix")
    grid = inputs.RegexField(r"^\d{6}(\d{3}){0,3}$", required=False, help_text="area code prefix")
    # Bounds of a filter, not times of the record: `until` may lie ahead ("till tomorrow").
    since = inputs.DateTimeField(required=False, ahead=inputs.PLANNING_HORIZON)
    until = inputs.DateTimeField(required=False, ahead=inputs.PLANNING_HORIZON)
    in_bbox = BBoxField(required=False, help_text="minx,miny,maxx,maxy (WGS-84)")


# --- output ---------------------------------------------------------------------------------


def _code_name(obj):
    return {"code": obj.code, "name": obj.name} if obj is not None else None


def appeal_heading(a: Appeal, *, unmasked: bool) -> dict[str, Any]:
    """What every API shows of an appeal first, the web's appeal and the phone's task alike:
    ticket, state, channel, kind, then the text and the appellant, masked unless `unmasked`."""
    return {
        "ticket_no": a.ticket_no,
        "state": a.state,
        "state_label": str(STATE_LABELS.get(a.state, a.state)),
        "channel": a.channel,
        "channel_label": a.get_channel_display(),
        "kind": a.kind,
        "kind_label": a.get_kind_display(),
        **appellant_fields(a, unmasked=unmasked),
        "address_text": a.address_text,
    }


def history_item(
    e: AppealEvent, a: Appeal, *, unmasked: bool, labels: Mapping[str, str] = EVENT_LABELS
) -> dict[str, Any]:
    """One row of an appeal's history, its note masked unless `unmasked`; `labels` name the
    events (the phone names some field steps its own way)."""
    return {
        "at": serializers.DateTimeField().to_representation(e.at),
        "event": e.event,
        "event_label": labels.get(e.event, e.event),
        "old_state": e.old_state,
        "new_state": e.new_state,
        "new_state_label": str(STATE_LABELS.get(e.new_state, e.new_state)),
        "actor": e.actor.username if e.actor is not None else "",
        "department": e.department.code if e.department is not None else "",
        "note": event_note(e.note, a, unmasked=unmasked),
    }


class AppealOutput(serializers.Serializer):
    """One appeal as a viewer may see it. Context: `user`, `unmasked` (set of appeal ids the
    user may see personal data of), `area_names` {code: name}, `tickets` {id: ticket_no}."""

    def _unmasked(self, appeal):
        return appeal.pk in self.context.get("unmasked", ())

    def to_representation(self, a):
        unmasked = self._unmasked(a)
        names = self.context.get("area_names", {})
        tickets = self.context.get("tickets", {})
        guesses = (a.classification or {}).get("guesses", [])
        loc = a.location or {}
        chain = None
        if a.grid_code:
            chain = {
                "grid": {"code": a.grid_code, "name": a.grid.name if a.grid_id else names.get(a.grid_code, "")},
                **{
                    level: {"code": a.grid_code[:n], "name": names.get(a.grid_code[:n], "")}
                    for level, n in (
                        ("community", COMMUNITY_LENGTH),
                        ("street", STREET_LENGTH),
                        ("district", DISTRICT_LENGTH),
                    )
                },
            }
        return {
            **appeal_heading(a, unmasked=unmasked),
            "received_at": serializers.DateTimeField().to_representation(a.received_at),
            "source_system": a.source_system,
            "external_id": a.external_id,
            "position": [a.position.x, a.position.y] if a.position else None,
            "grid_chain": chain,
            "location": {
                "method": loc.get("method", ""),
                "confidence": loc.get("confidence"),
                "match": loc.get("match", ""),
                "outside": bool(loc.get("outside")),
            },
            "category": _code_name(a.category),
            "category_guesses": guesses[:3],
            "category_confirmed": bool((a.classification or {}).get("confirmed_by")),
            "time_limit": a.time_limit,
            "time_limit_label": str(TimeLimit(a.time_limit).label) if a.time_limit else "",
            "deadline": serializers.DateTimeField().to_representation(a.deadline) if a.deadline else None,
            "warning_colour": a.warning_colour,
            "warning_colour_label": a.get_warning_colour_display(),
            "department": _code_name(a.department),
            "route": a.route or {},
            "risk": {"flags": (a.risk or {}).get("flags", []), "transfer": (a.risk or {}).get("transfer", [])},
            "duplicates": [{**d, "ticket_no": tickets.get(d.get("candidate_id"), "")} for d in (a.duplicates or [])],
            "lead_ticket_no": tickets.get(a.lead_appeal_id, "") if a.lead_appeal_id else "",
            "closure_type": a.closure_type,
            "updated_at": serializers.DateTimeField().to_representation(a.updated_at),
        }


# What every API shows of an appeal first (appeal_heading): the web's appeal, the phone's task.
HEADING = {
    "ticket_no": doc.STR,
    "state": {"type": "string", "enum": list(STATE_LABELS)},
    "state_label": doc.STR,
    "channel": doc.STR,
    "channel_label": doc.STR,
    "kind": doc.STR,
    "kind_label": doc.STR,
    "text": doc.STR,
    "address_text": doc.STR,
    "appellant_name": doc.STR,
    "appellant_phone": doc.STR,
    "personal_data_masked": doc.BOOL,
}
# A history row (history_item), but for its time, which the phone's schema lets be null.
HISTORY_ITEM = {
    "event": doc.STR,
    "event_label": doc.STR,
    "old_state": doc.STR,
    "new_state": doc.STR,
    "new_state_label": doc.STR,
    "actor": doc.STR,
    "department": doc.STR,
    "note": doc.STR,
}
_CHAIN_LEVEL = doc.obj({"code": doc.STR, "name": doc.STR})
APPEAL = doc.obj(
    {
        **HEADING,
        "received_at": doc.DATETIME,
        "source_system": doc.STR,
        "external_id": doc.STR,
        "position": doc.nullable(doc.LNGLAT),
        "grid_chain": doc.nullable(doc.obj({lvl: _CHAIN_LEVEL for lvl in ("grid", "community", "street", "district")})),
        "location": doc.obj(
            {"method": doc.STR, "confidence": doc.nullable(doc.NUM), "match": doc.STR, "outside": doc.BOOL}
        ),
        "category": doc.code_name(),
        "category_guesses": doc.array(doc.ANY_OBJECT),
        "category_confirmed": doc.BOOL,
        "time_limit": doc.STR,
        "time_limit_label": doc.STR,
        "deadline": doc.nullable(doc.DATETIME),
        "warning_colour": {"type": "string", "enum": list(WarningColour.values)},
        "warning_colour_label": doc.STR,
        "department": doc.code_name(),
        "route": doc.ANY_OBJECT,
        "risk": doc.obj(
            {
                "flags": doc.array(
                    doc.obj(
                        {
                            "flag": doc.STR,
                            "words": doc.array(doc.STR),
                            "transfer": doc.STR,
                            "transfers": doc.array(doc.STR),
                        }
                    )
                ),
                "transfer": doc.array(doc.STR),
            },
            description="扬言等风险 / risk flags and the lines to transfer to",
        ),
        "duplicates": doc.array(doc.ANY_OBJECT),
        "lead_ticket_no": doc.STR,
        "closure_type": doc.STR,
        "updated_at": doc.DATETIME,
    },
    description="诉求（个人信息按权限脱敏）/ an appeal, personal data masked per viewer",
)


class AppealDetailOutput(AppealOutput):
    """The appeal with its history, units and files (events, assignments, attachments and
    long_term prefetched by access.appeal_for)."""

    def to_representation(self, a):
        data = super().to_representation(a)
        unmasked = self._unmasked(a)
        dt = serializers.DateTimeField()
        data["events"] = [history_item(e, a, unmasked=unmasked) for e in a.events.all()]
        data["assignments"] = [
            {
                "department": _code_name(s.department),
                "role": s.role,
                "role_label": s.get_role_display(),
                "assigned_at": dt.to_representation(s.assigned_at),
                "ended_at": dt.to_representation(s.ended_at) if s.ended_at else None,
                "active": s.ended_at is None,
            }
            for s in a.assignments.all()
        ]
        data["attachments"] = [
            {
                "id": f.pk,
                "kind": f.kind,
                "content_type": f.content_type,
                "size": f.size,
                "url": attachment_url(f),
                "thumbnail_url": thumbnail_url(f),
                "purpose": f.purpose,
                "uploaded_at": dt.to_representation(f.uploaded_at),
            }
            for f in a.attachments.all()
        ]
        lt = getattr(a, "long_term", None)  # select_related; absent means no ledger row
        data["long_term"] = (
            None
            if lt is None
            else {
                "reason": lt.reason,
                "plan": lt.plan,
                "review_at": dt.to_representation(lt.review_at),
                "closed_at": dt.to_representation(lt.closed_at) if lt.closed_at else None,
            }
        )
        return data


APPEAL_DETAIL = doc.obj(
    {
        **APPEAL["properties"],
        "events": doc.array(doc.obj({"at": doc.DATETIME, **HISTORY_ITEM})),
        "assignments": doc.array(
            doc.obj(
                {
                    "department": doc.code_name(),
                    "role": doc.STR,
                    "role_label": doc.STR,
                    "assigned_at": doc.DATETIME,
                    "ended_at": doc.nullable(doc.DATETIME),
                    "active": doc.BOOL,
                }
            )
        ),
        "attachments": doc.array(
            doc.obj(
                {
                    "id": doc.INT,
                    "kind": doc.STR,
                    "content_type": doc.STR,
                    "size": doc.INT,
                    "url": doc.STR,
                    "purpose": doc.STR,
                    "uploaded_at": doc.DATETIME,
                }
            )
        ),
        "long_term": doc.nullable(
            doc.obj(
                {"reason": doc.STR, "plan": doc.STR, "review_at": doc.DATETIME, "closed_at": doc.nullable(doc.DATETIME)}
            )
        ),
    },
    description="诉求详情 / an appeal with its history, units, files and ledger row",
)
# What an action answers when it took the appeal out of the caller's sight.
APPEAL_GONE = doc.obj({"ticket_no": doc.STR, "state": doc.STR})
