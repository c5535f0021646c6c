"""Input and output serializers of the whistles API. Inputs parse and validate only; outputs
render rows the selectors already scoped."""

import json

import shapely
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.urls import reverse
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework_gis.fields import GeometryField
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from gridgov import inputs
from gridgov.areas.importer import polygon_repair

from .models import Evaluation, Hotspot, Muster, MusterEvidence, WhistleCall, WhistleEvent, WhistleSuggestion
from .workflow import LABELS, states

# Four models have a `state`: named enums for the schema (SPECTACULAR_SETTINGS, ENUM_NAME_OVERRIDES).
HOTSPOT_STATES, SUGGESTION_STATES, CALL_STATES, MUSTER_STATES = (
    list(LABELS[kind].items()) for kind in ("hotspot", "suggestion", "call", "muster")
)

# --- inputs ---------------------------------------------------------------------------------------


class AreaField(GeometryField):
    """A GeoJSON Polygon or MultiPolygon (gridgov/schema.py describes it: rest_framework_gis's
    own schema extension needs a model field behind the serializer field)."""


class CsvListField(serializers.ListField):
    """A list from a comma-separated query parameter (state=new,acknowledged)."""

    def to_internal_value(self, data):
        # A query string gives a list of strings (state=a,b or state=a&state=b, or both).
        parts = [data] if isinstance(data, str) else data
        if isinstance(parts, list | tuple) and all(isinstance(p, str) for p in parts):
            data = [x for p in parts for x in (y.strip() for y in p.split(",")) if x]
        return super().to_internal_value(data)


class HotspotListQuery(serializers.Serializer):
    window = inputs.IntegerField(required=False, min_value=1)
    category = inputs.RegexField(r"^\d{2,6}(,\d{2,6})*$", required=False)
    state = CsvListField(child=serializers.ChoiceField(choices=states("hotspot")), required=False)
    kind = serializers.ChoiceField(choices=Hotspot.Kind.choices, required=False)
    active = serializers.ChoiceField(choices=["true", "false", "all"], required=False, default="true")
    street = inputs.RegexField(r"^\d{9}$", required=False)
    limit = inputs.IntegerField(required=False, min_value=1, max_value=5000, default=1000)


class StateQuery(serializers.Serializer):
    state = CsvListField(child=inputs.CharField(max_length=15), required=False)


@extend_schema_serializer(component_name="WhistleReasonInput")
class ReasonInput(serializers.Serializer):
    reason = inputs.CharField(max_length=2000, trim_whitespace=True)


@extend_schema_serializer(component_name="WhistleNoteInput")
class NoteInput(serializers.Serializer):
    note = inputs.CharField(max_length=4000, required=False, allow_blank=True, default="")


class CloseInput(serializers.Serializer):
    note = inputs.CharField(max_length=4000, trim_whitespace=True)


class CallPlanInput(serializers.Serializer):
    """What a street may set when it blows (by hand or confirming a suggestion)."""

    problem = inputs.CharField(max_length=4000, required=False, allow_blank=True, default="")
    lng = inputs.FloatField(required=False)
    lat = inputs.FloatField(required=False)
    crs = inputs.CharField(max_length=20, required=False, default="wgs84")
    area = AreaField(required=False, allow_null=True)
    address_text = inputs.CharField(max_length=300, required=False, allow_blank=True, default="")
    departments = serializers.ListField(child=inputs.CharField(max_length=40), required=False, allow_empty=False)
    muster_deadline = inputs.DateTimeField(required=False, ahead=inputs.PLANNING_HORIZON)
    meeting_at = inputs.DateTimeField(required=False, ahead=inputs.PLANNING_HORIZON)

    def validate(self, data):
        if ("lng" in data) != ("lat" in data):
            raise serializers.ValidationError("lng 与 lat 须同时给出 / give both lng and lat")
        area = data.get("area")
        if area is not None:
            if isinstance(area, Polygon):
                area = MultiPolygon(area, srid=4326)
            if not isinstance(area, MultiPolygon):
                raise serializers.ValidationError({"area": "须为多边形 / must be a polygon"})
            area.srid = 4326
            if not area.valid:
                area = self.repaired(area)
            data["area"] = area
        return data

    @staticmethod
    def repaired(area):
        """The import's rule for a boundary holds for a call's area too (a self-intersecting
        ring cannot be measured against or drawn): repaired when the repair keeps its area
        within 1 %, refused otherwise."""
        fixed, reason, _change = polygon_repair(shapely.from_wkb(bytes(area.wkb)))
        if fixed is None:
            raise serializers.ValidationError(
                {
                    "area": f"区域多边形无效（如边线自相交），无法修复 / the polygon is "
                    f"invalid and cannot be repaired: {reason}"
                }
            )
        return GEOSGeometry(memoryview(fixed.wkb), srid=4326)

    def blow_kwargs(self):
        d = self.validated_data
        out = {
            "problem": d["problem"],
            "crs": d["crs"],
            "address_text": d["address_text"],
            "area": d.get("area"),
            "lng": d.get("lng"),
            "lat": d.get("lat"),
            "muster_deadline": d.get("muster_deadline"),
            "meeting_at": d.get("meeting_at"),
        }
        if "departments" in d:
            out["department_codes"] = d["departments"]
        return out


class BlowInput(CallPlanInput):
    problem = inputs.CharField(max_length=4000, trim_whitespace=True)
    street_code = inputs.RegexField(r"^\d{9}$", required=False)
    appeal_ids = serializers.ListField(child=inputs.IntegerField(min_value=1), required=False, default=list)
    hotspot = inputs.IntegerField(required=False, min_value=1)


class ProposalQuery(serializers.Serializer):
    street = inputs.RegexField(r"^\d{9}$", required=False)
    appeals = CsvListField(child=inputs.IntegerField(min_value=1), required=False, default=list)
    categories = CsvListField(child=inputs.RegexField(r"^\d{2,6}$"), required=False, default=list)


@extend_schema_serializer(component_name="MusterCheckInInput")
class CheckInInput(serializers.Serializer):
    lng = inputs.FloatField()
    lat = inputs.FloatField()
    crs = inputs.CharField(max_length=20, required=False, default="wgs84")


class ReportInput(serializers.Serializer):
    text = inputs.CharField(max_length=8000, trim_whitespace=True)


class RateDepartmentInput(serializers.Serializer):
    timeliness = inputs.IntegerField(min_value=1, max_value=5)
    action = inputs.IntegerField(min_value=1, max_value=5)
    result = inputs.IntegerField(min_value=1, max_value=5)
    comment = inputs.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RateStreetInput(serializers.Serializer):
    justified = inputs.BooleanField()
    comment = inputs.CharField(max_length=2000, required=False, allow_blank=True, default="")


class MonthlyTopicQuery(serializers.Serializer):
    district = inputs.RegexField(r"^\d{6}$")
    month = inputs.RegexField(r"^\d{4}-(0[1-9]|1[0-2])$", help_text="YYYY-MM, years 1901–9998")
    level = serializers.ChoiceField(choices=[1, 2, 3], required=False, default=3)

    def validate_month(self, value):
        # The topic reads the month before and ends at the start of the month after.
        if not 1900 < int(value[:4]) < 9999:
            raise serializers.ValidationError("月份超出范围（1901–9998年）/ month out of range (years 1901–9998)")
        return value


# --- outputs --------------------------------------------------------------------------------------


def _label(kind, state):
    return str(LABELS[kind].get(state, state))


class HotspotFeature(GeoFeatureModelSerializer):
    state_label = serializers.SerializerMethodField()
    appeal_count = serializers.SerializerMethodField()
    suggestion = serializers.SerializerMethodField()

    class Meta:
        model = Hotspot
        geo_field = "geom"
        fields = [
            "id",
            "kind",
            "window_days",
            "window_start",
            "window_end",
            "category_key",
            "category_codes",
            "grid_code",
            "street_code",
            "statistics",
            "appeal_ids",
            "appeal_count",
            "active",
            "state",
            "state_label",
            "dismiss_reason",
            "first_seen_at",
            "computed_at",
            "suggestion",
        ]

    def get_state_label(self, obj) -> str:
        return _label("hotspot", obj.state)

    def get_appeal_count(self, obj) -> int:
        return len(obj.appeal_ids)

    def get_suggestion(self, obj) -> int | None:
        try:
            return obj.suggestion.pk
        except WhistleSuggestion.DoesNotExist:
            return None


class SuggestionOutput(serializers.ModelSerializer):
    state_label = serializers.SerializerMethodField()
    call = serializers.SerializerMethodField()

    class Meta:
        model = WhistleSuggestion
        fields = [
            "id",
            "street_code",
            "rule",
            "hotspot",
            "category_key",
            "appeal_ids",
            "evidence",
            "state",
            "state_label",
            "reason",
            "decided_at",
            "created_at",
            "call",
        ]

    def get_state_label(self, obj) -> str:
        return _label("suggestion", obj.state)

    def get_call(self, obj) -> int | None:
        try:
            return obj.call.pk
        except WhistleCall.DoesNotExist:
            return None


def _lnglat(point):
    return None if point is None else [round(point.x, 7), round(point.y, 7)]


class MusterSummary(serializers.ModelSerializer):
    department = serializers.CharField(source="department.code")
    department_name = serializers.CharField(source="department.name")
    state_label = serializers.SerializerMethodField()

    class Meta:
        model = Muster
        fields = ["id", "department", "department_name", "state", "state_label", "late", "escalated"]

    def get_state_label(self, obj) -> str:
        return _label("muster", obj.state)


class EvidenceOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = MusterEvidence
        fields = ["id", "name", "content_type", "size", "sha256", "uploaded_at", "url"]

    def get_url(self, obj) -> str | None:
        return muster_evidence_url(obj)


def muster_evidence_url(ev: MusterEvidence) -> str | None:
    """The address gridgov/files.py serves the evidence at, after its access check."""
    return reverse("files:muster-evidence", args=[ev.pk]) if ev.file else None


class MusterOutput(MusterSummary):
    check_in_position = serializers.SerializerMethodField()
    evidence = EvidenceOutput(many=True, read_only=True)

    class Meta(MusterSummary.Meta):
        fields = [
            *MusterSummary.Meta.fields,
            "escalated_at",
            "summoned_at",
            "acknowledged_at",
            "checked_in_at",
            "check_in_position",
            "check_in_input",
            "check_in_distance_m",
            "outside_geofence",
            "report",
            "reported_at",
            "evidence",
        ]

    def get_check_in_position(self, obj) -> list[float] | None:
        return _lnglat(obj.check_in_position)


class EvaluationOutput(serializers.ModelSerializer):
    department = serializers.CharField(source="department.code")
    by = serializers.CharField(source="by.username")

    class Meta:
        model = Evaluation
        fields = [
            "id",
            "direction",
            "department",
            "muster",
            "timeliness",
            "action",
            "result",
            "justified",
            "comment",
            "by",
            "at",
        ]


class EventOutput(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = WhistleEvent
        fields = ["id", "object_type", "object_id", "event", "old_state", "new_state", "at", "actor", "note", "data"]

    def get_actor(self, obj) -> str:
        return obj.actor.username if obj.actor_id else "system"


class CallOutput(serializers.ModelSerializer):
    place = serializers.SerializerMethodField()
    state_label = serializers.SerializerMethodField()
    musters = MusterSummary(many=True, read_only=True)

    class Meta:
        model = WhistleCall
        fields = [
            "id",
            "street_code",
            "problem",
            "place",
            "address_text",
            "state",
            "state_label",
            "muster_deadline",
            "meeting_at",
            "blown_at",
            "closed_at",
            "hotspot",
            "suggestion",
            "musters",
        ]

    def get_place(self, obj) -> list[float] | None:
        return _lnglat(obj.place)

    def get_state_label(self, obj) -> str:
        return _label("call", obj.state)


class CallDetailOutput(CallOutput):
    area = serializers.SerializerMethodField()
    appeals = serializers.SerializerMethodField()
    musters = MusterOutput(many=True, read_only=True)
    evaluations = EvaluationOutput(many=True, read_only=True)
    events = EventOutput(many=True, read_only=True)

    class Meta(CallOutput.Meta):
        fields = [
            *CallOutput.Meta.fields,
            "area",
            "appeals",
            "proposal",
            "close_note",
            "close_result",
            "cancel_reason",
            "evaluations",
            "events",
        ]

    def get_area(self, obj) -> dict | None:
        return None if obj.area is None else json.loads(obj.area.geojson)

    def get_appeals(self, obj) -> list[dict]:
        # Ticket, state and place only: the appeal itself (text, appellant) is read, masked as
        # the reader's role requires, through the appeals API.
        return [
            {
                "id": a.pk,
                "ticket_no": a.ticket_no,
                "state": a.state,
                "grid_code": a.grid_code,
                "category": a.category.code if a.category_id else "",
                "closure_type": a.closure_type,
            }
            for a in obj.appeals.all()
        ]
