"""The whistles API under /api/v1/whistles/. Thin views: parse with an input serializer, find
the object in the caller's sight (404 outside it), ask access.py (403), call one service,
render. 409 for a step the workflow does not allow now, 400 for a request a service refuses.
"""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from gridgov import schema as doc
from gridgov.accounts.models import Role
from gridgov.appeals.models import Appeal
from gridgov.idempotency.replay import idempotent

from . import access, rules, services
from . import serializers as s
from .models import Evaluation, Muster, MusterEvidence, WhistleEvent

PROPOSAL = doc.obj(
    {
        "street_code": doc.STR,
        "departments": doc.array(
            doc.obj(
                {
                    "department": doc.STR,
                    "department_id": doc.INT,
                    "name": doc.STR,
                    "role": doc.STR,
                    "categories": doc.array(doc.STR),
                    "rules": doc.array(
                        doc.obj(
                            {
                                "category": doc.STR,
                                "rule_id": doc.nullable(doc.INT),
                                "area_code": doc.STR,
                                "role": doc.STR,
                                "default": doc.BOOL,
                            }
                        )
                    ),
                }
            )
        ),
    },
    description="建议召集的部门及依据 / the departments the catalogue proposes, and why",
)
_RANK = doc.obj(
    {
        "rank": doc.INT,
        "street_code": doc.STR,
        "street_name": doc.STR,
        "category_code": doc.STR,
        "category_name": doc.STR,
        "count": doc.INT,
        "previous_month": doc.INT,
    }
)
MONTHLY_TOPIC = doc.obj(
    {
        "district_code": doc.STR,
        "district_name": doc.STR,
        "month": doc.STR,
        "level": doc.INT,
        "topic": doc.nullable(_RANK),
        "ranking": doc.array(_RANK),
    }
)
MUSTER_REPORT = doc.obj(
    {"text": {**doc.STR, "maxLength": 8000}, "files": doc.array({"type": "string", "format": "binary"})},
    optional=("files",),
)
# What an action on an object can answer besides its success.
ACTION_ERRORS = (400, 401, 403, 404, 409)
# A muster is answered from a phone, with the phone API's Idempotency-Key (gridgov/idempotency).
MUSTER_ERRORS = (*ACTION_ERRORS, 422)


def _parse(serializer_class, data):
    ser = serializer_class(data=data)
    ser.is_valid(raise_exception=True)
    return ser


def _forbid(message):
    raise PermissionDenied(message)


# --- hotspots -------------------------------------------------------------------------------------


def _hotspot(user, pk):
    return get_object_or_404(access.hotspots_visible_to(user).select_related("suggestion"), pk=pk)


@extend_schema_view(
    get=extend_schema(
        operation_id="whistles_hotspots_list",
        parameters=[s.HotspotListQuery],
        responses=doc.responses(s.HotspotFeature(many=True), 400, 401),
    )
)
class HotspotListApi(APIView):
    """GET /api/v1/whistles/hotspots?window=&category=&state=&kind=&active=&street=&limit= — a
    GeoJSON FeatureCollection of the hotspots in the caller's sight, strongest first.
    active=true (default) shows those the last recompute still found significant."""

    def get(self, request):
        q = _parse(s.HotspotListQuery, request.query_params).validated_data
        qs = access.hotspots_visible_to(request.user).select_related("suggestion")
        if "window" in q:
            qs = qs.filter(window_days=q["window"])
        if "category" in q:
            qs = qs.filter(category_key__startswith=q["category"])
        if q.get("state"):
            qs = qs.filter(state__in=q["state"])
        if "kind" in q:
            qs = qs.filter(kind=q["kind"])
        if q["active"] != "all":
            qs = qs.filter(active=q["active"] == "true")
        if "street" in q:
            qs = qs.filter(street_code=q["street"])
        rows = list(qs.order_by("-computed_at", "id")[: q["limit"]])
        rows.sort(key=lambda h: (-(h.statistics.get("z") or h.statistics.get("count") or 0), h.pk))
        return Response(s.HotspotFeature(rows, many=True).data)


@extend_schema_view(
    get=extend_schema(parameters=[doc.ID_PARAMETER], responses=doc.responses(s.HotspotFeature, 401, 404))
)
class HotspotDetailApi(APIView):
    def get(self, request, pk):
        return Response(s.HotspotFeature(_hotspot(request.user, pk)).data)


class HotspotActionApi(APIView):
    input_serializer: type[BaseSerializer] = s.NoteInput

    def perform(self, hotspot, data, user):
        raise NotImplementedError

    def post(self, request, pk):
        hotspot = _hotspot(request.user, pk)
        if not access.may_decide_hotspot(request.user, hotspot):
            _forbid("只有所在街道可以处理热点 / only the street office decides on its hotspots")
        data = _parse(self.input_serializer, request.data).validated_data
        hotspot = self.perform(hotspot, data, request.user)
        return Response(s.HotspotFeature(_hotspot(request.user, hotspot.pk)).data)


@extend_schema_view(
    post=extend_schema(
        parameters=[doc.ID_PARAMETER], request=s.NoteInput, responses=doc.responses(s.HotspotFeature, *ACTION_ERRORS)
    )
)
class HotspotAcknowledgeApi(HotspotActionApi):
    def perform(self, hotspot, data, user):
        return services.hotspot_acknowledge(hotspot_id=hotspot.pk, actor=user, note=data["note"])


@extend_schema_view(
    post=extend_schema(
        parameters=[doc.ID_PARAMETER], request=s.ReasonInput, responses=doc.responses(s.HotspotFeature, *ACTION_ERRORS)
    )
)
class HotspotDismissApi(HotspotActionApi):
    input_serializer: type[BaseSerializer] = s.ReasonInput

    def perform(self, hotspot, data, user):
        return services.hotspot_dismiss(hotspot_id=hotspot.pk, actor=user, reason=data["reason"])


# --- suggestions ----------------------------------------------------------------------------------


def _suggestions(user):
    return access.suggestions_visible_to(user).select_related("call")


@extend_schema_view(
    get=extend_schema(
        operation_id="whistles_suggestions_list",
        parameters=[s.StateQuery],
        responses=doc.responses(s.SuggestionOutput(many=True), 400, 401),
    )
)
class SuggestionListApi(APIView):
    """GET /api/v1/whistles/suggestions?state=pending — the street's whistle suggestions."""

    def get(self, request):
        q = _parse(s.StateQuery, request.query_params).validated_data
        qs = _suggestions(request.user)
        if q.get("state"):
            qs = qs.filter(state__in=q["state"])
        return Response(s.SuggestionOutput(qs.order_by("-created_at", "-id")[:500], many=True).data)


@extend_schema_view(
    get=extend_schema(parameters=[doc.ID_PARAMETER], responses=doc.responses(s.SuggestionOutput, 401, 404))
)
class SuggestionDetailApi(APIView):
    def get(self, request, pk):
        return Response(s.SuggestionOutput(get_object_or_404(_suggestions(request.user), pk=pk)).data)


@extend_schema_view(get=extend_schema(parameters=[doc.ID_PARAMETER], responses=doc.responses(PROPOSAL, 401, 404)))
class SuggestionProposalApi(APIView):
    """GET /api/v1/whistles/suggestions/<id>/proposal — the departments the catalogue proposes
    to summon, and why; the street edits the list before confirming."""

    def get(self, request, pk):
        suggestion = get_object_or_404(_suggestions(request.user), pk=pk)
        appeals = list(Appeal.objects.filter(pk__in=suggestion.appeal_ids).select_related("category"))
        own = getattr(request.user, "department_id", None)
        return Response(
            {
                "street_code": suggestion.street_code,
                "departments": services.whistle_proposal(
                    street_code=suggestion.street_code,
                    appeals=appeals,
                    category_codes=[c for c in suggestion.category_key.split(",") if c],
                    exclude_department_ids={own} if own else (),
                ),
            }
        )


@extend_schema_view(
    post=extend_schema(
        parameters=[doc.ID_PARAMETER],
        request=s.CallPlanInput,
        responses=doc.responses(s.CallDetailOutput, *ACTION_ERRORS, status=201),
    )
)
class SuggestionConfirmApi(APIView):
    """POST /api/v1/whistles/suggestions/<id>/confirm {problem?, departments?, lng?, lat?, crs?,
    muster_deadline?, meeting_at?} — blow the whistle on it. 201 with the call."""

    def post(self, request, pk):
        suggestion = get_object_or_404(_suggestions(request.user), pk=pk)
        if not access.is_street_office_of(request.user, suggestion.street_code):
            _forbid("只有所在街道可以吹哨 / only the street office blows the whistle")
        data = _parse(s.CallPlanInput, request.data)
        call = services.suggestion_confirm(suggestion_id=suggestion.pk, actor=request.user, **data.blow_kwargs())
        return Response(s.CallDetailOutput(_call(request.user, call.pk)).data, status=201)


@extend_schema_view(
    post=extend_schema(
        parameters=[doc.ID_PARAMETER],
        request=s.ReasonInput,
        responses=doc.responses(s.SuggestionOutput, *ACTION_ERRORS),
    )
)
class SuggestionDismissApi(APIView):
    def post(self, request, pk):
        suggestion = get_object_or_404(_suggestions(request.user), pk=pk)
        if not access.is_street_office_of(request.user, suggestion.street_code):
            _forbid("只有所在街道可以处理吹哨建议 / only the street office decides on its suggestions")
        data = _parse(s.ReasonInput, request.data).validated_data
        suggestion = services.suggestion_dismiss(suggestion_id=suggestion.pk, actor=request.user, reason=data["reason"])
        return Response(s.SuggestionOutput(get_object_or_404(_suggestions(request.user), pk=suggestion.pk)).data)


# --- calls ----------------------------------------------------------------------------------------


def _call(user, pk):
    qs = access.calls_visible_to(user).prefetch_related(
        Prefetch(
            "musters",
            queryset=Muster.objects.select_related("department")
            .prefetch_related(Prefetch("evidence", queryset=MusterEvidence.objects.order_by("uploaded_at", "pk")))
            .order_by("department__code"),
        ),
        Prefetch(
            "evaluations",
            queryset=Evaluation.objects.select_related("department", "by").order_by("direction", "department__code"),
        ),
        Prefetch("events", queryset=WhistleEvent.objects.select_related("actor").order_by("at", "pk")),
        Prefetch("appeals", queryset=Appeal.objects.select_related("category").order_by("pk")),
    )
    return get_object_or_404(qs, pk=pk)


def _street_of(user, street_code):
    street_code = street_code or (user.area_code if getattr(user, "role", "") == Role.STREET_OFFICE else "")
    if not access.is_street_office_of(user, street_code):
        _forbid("只有街道可以吹哨 / only a street office blows the whistle, in its own street")
    return street_code


@extend_schema_view(
    get=extend_schema(
        operation_id="whistles_calls_list",
        parameters=[s.StateQuery],
        responses=doc.responses(s.CallOutput(many=True), 400, 401),
    ),
    post=extend_schema(
        operation_id="whistles_calls_create",
        request=s.BlowInput,
        responses=doc.responses(s.CallDetailOutput, 400, 401, 403, 404, status=201),
    ),
)
class CallListCreateApi(APIView):
    """GET /api/v1/whistles/calls?state= — calls in the caller's sight (a department: those it
    was summoned to). POST — blow by hand {problem, appeal_ids?, hotspot?, departments?, lng?,
    lat?, crs?, area?, muster_deadline?, meeting_at?}; without departments the catalogue's
    proposal is summoned. 201 with the call."""

    def get(self, request):
        q = _parse(s.StateQuery, request.query_params).validated_data
        qs = access.calls_visible_to(request.user).prefetch_related(
            Prefetch("musters", queryset=Muster.objects.select_related("department").order_by("department__code"))
        )
        if q.get("state"):
            qs = qs.filter(state__in=q["state"])
        return Response(s.CallOutput(qs.order_by("-blown_at", "-id")[:500], many=True).data)

    def post(self, request):
        data = _parse(s.BlowInput, request.data)
        street_code = _street_of(request.user, data.validated_data.get("street_code"))
        hotspot_id = data.validated_data.get("hotspot")
        if hotspot_id is not None:
            _hotspot(request.user, hotspot_id)
        call = services.whistle_blow(
            actor=request.user,
            street_code=street_code,
            hotspot_id=hotspot_id,
            appeal_ids=data.validated_data["appeal_ids"] or None,
            **data.blow_kwargs(),
        )
        return Response(s.CallDetailOutput(_call(request.user, call.pk)).data, status=201)


@extend_schema_view(get=extend_schema(parameters=[s.ProposalQuery], responses=doc.responses(PROPOSAL, 400, 401, 403)))
class CallProposalApi(APIView):
    """GET /api/v1/whistles/calls/proposal?street=&appeals=1,2&categories=020104 — departments
    to summon for these appeals (or categories), before blowing by hand."""

    def get(self, request):
        q = _parse(s.ProposalQuery, request.query_params).validated_data
        street_code = _street_of(request.user, q.get("street"))
        appeals = list(
            Appeal.objects.filter(pk__in=q["appeals"], grid_code__startswith=street_code).select_related("category")
        )
        own = getattr(request.user, "department_id", None)
        return Response(
            {
                "street_code": street_code,
                "departments": services.whistle_proposal(
                    street_code=street_code,
                    appeals=appeals,
                    category_codes=q["categories"],
                    exclude_department_ids={own} if own else (),
                ),
            }
        )


@extend_schema_view(
    get=extend_schema(parameters=[doc.ID_PARAMETER], responses=doc.responses(s.CallDetailOutput, 401, 404))
)
class CallDetailApi(APIView):
    """GET /api/v1/whistles/calls/<id> — with musters, evidence, appeals, evaluations, history."""

    def get(self, request, pk):
        return Response(s.CallDetailOutput(_call(request.user, pk)).data)


class CallActionApi(APIView):
    input_serializer: type[BaseSerializer] = s.ReasonInput

    def perform(self, call, data, user):
        raise NotImplementedError

    def post(self, request, pk):
        call = get_object_or_404(access.calls_visible_to(request.user), pk=pk)
        if not access.is_street_office_of(request.user, call.street_code):
            _forbid("只有吹哨的街道可以办结或撤销 / only the street that blew the whistle may do this")
        data = _parse(self.input_serializer, request.data).validated_data
        self.perform(call, data, request.user)
        return Response(s.CallDetailOutput(_call(request.user, pk)).data)


@extend_schema_view(
    post=extend_schema(
        parameters=[doc.ID_PARAMETER], request=s.CloseInput, responses=doc.responses(s.CallDetailOutput, *ACTION_ERRORS)
    )
)
class CallCloseApi(CallActionApi):
    """POST .../calls/<id>/close {note}: solved; every linked appeal is resolved (实质办结)."""

    input_serializer = s.CloseInput

    def perform(self, call, data, user):
        return services.whistle_close(call_id=call.pk, actor=user, note=data["note"])


@extend_schema_view(
    post=extend_schema(
        parameters=[doc.ID_PARAMETER],
        request=s.ReasonInput,
        responses=doc.responses(s.CallDetailOutput, *ACTION_ERRORS),
    )
)
class CallCancelApi(CallActionApi):
    def perform(self, call, data, user):
        return services.whistle_cancel(call_id=call.pk, actor=user, reason=data["reason"])


@extend_schema_view(
    post=extend_schema(
        parameters=[doc.ID_PARAMETER],
        request=s.RateStreetInput,
        responses=doc.responses(s.EvaluationOutput, *ACTION_ERRORS, status=201),
    )
)
class CallEvaluationApi(APIView):
    """POST .../calls/<id>/evaluation {justified, comment} — a summoned department rates the
    street's call once it is over."""

    def post(self, request, pk):
        call = _call(request.user, pk)
        muster = access.muster_of(request.user, call)
        if muster is None or not access.may_answer(request.user, muster):
            _forbid("只有被召集的部门可以评价街道 / only a summoned department rates the call")
        data = _parse(s.RateStreetInput, request.data).validated_data
        ev = services.evaluation_rate_street(call_id=call.pk, actor=request.user, **data)
        return Response(s.EvaluationOutput(ev).data, status=201)


# --- musters --------------------------------------------------------------------------------------


def _muster(user, pk):
    muster = (
        Muster.objects.select_related("call", "department")
        .filter(pk=pk, call__in=access.calls_visible_to(user))
        .first()
    )
    if muster is None:
        raise NotFound("没有这个报到，或不在您的范围 / no such muster in your sight")
    return muster


class MusterActionApi(APIView):
    """POST .../musters/<id>/<action>: only staff of the summoned department."""

    input_serializer: type[BaseSerializer] = s.NoteInput

    def perform(self, muster, data, request):
        raise NotImplementedError

    # Phones answer musters and replay their offline queues: the same key again gets the first
    # answer back and changes nothing, as the phone API's task actions do.
    @idempotent
    def post(self, request, pk):
        muster = _muster(request.user, pk)
        if not access.may_answer(request.user, muster):
            _forbid("只有被召集部门的人员可以报到 / only staff of the summoned department answer it")
        data = _parse(self.input_serializer, request.data).validated_data
        muster = self.perform(muster, data, request)
        muster = Muster.objects.select_related("department").prefetch_related("evidence").get(pk=muster.pk)
        return Response(s.MusterOutput(muster).data)


@extend_schema_view(
    post=extend_schema(
        parameters=[doc.ID_PARAMETER, doc.IDEMPOTENCY_PARAMETER],
        request=s.NoteInput,
        responses=doc.responses(s.MusterOutput, *MUSTER_ERRORS),
    )
)
class MusterAcknowledgeApi(MusterActionApi):
    def perform(self, muster, data, request):
        return services.muster_acknowledge(muster_id=muster.pk, actor=request.user, note=data["note"])


@extend_schema_view(
    post=extend_schema(
        parameters=[doc.ID_PARAMETER, doc.IDEMPOTENCY_PARAMETER],
        request=s.CheckInInput,
        responses=doc.responses(s.MusterOutput, *MUSTER_ERRORS),
    )
)
class MusterCheckInApi(MusterActionApi):
    """{lng, lat, crs}: refused beyond the geofence (400, code outside_geofence, distance_m)."""

    input_serializer = s.CheckInInput

    def perform(self, muster, data, request):
        return services.muster_check_in(muster_id=muster.pk, actor=request.user, **data)


@extend_schema_view(
    post=extend_schema(
        parameters=[doc.ID_PARAMETER, doc.IDEMPOTENCY_PARAMETER],
        request={"multipart/form-data": MUSTER_REPORT},
        responses=doc.responses(s.MusterOutput, *MUSTER_ERRORS),
    )
)
class MusterReportApi(MusterActionApi):
    """multipart {text, files...}: what was done, with photos, videos or PDFs."""

    input_serializer = s.ReportInput

    def perform(self, muster, data, request):
        return services.muster_report(
            muster_id=muster.pk, actor=request.user, text=data["text"], files=request.FILES.getlist("files")
        )


@extend_schema_view(
    post=extend_schema(
        parameters=[doc.ID_PARAMETER],
        request=s.RateDepartmentInput,
        responses=doc.responses(s.EvaluationOutput, *ACTION_ERRORS, status=201),
    )
)
class MusterEvaluationApi(APIView):
    """POST .../musters/<id>/evaluation {timeliness, action, result, comment} — the street rates
    the department once the call is over."""

    def post(self, request, pk):
        muster = _muster(request.user, pk)
        if not access.is_street_office_of(request.user, muster.call.street_code):
            _forbid("只有吹哨的街道可以评价部门 / only the street that blew the whistle rates departments")
        data = _parse(s.RateDepartmentInput, request.data).validated_data
        ev = services.evaluation_rate_department(muster_id=muster.pk, actor=request.user, **data)
        return Response(s.EvaluationOutput(ev).data, status=201)


# --- monthly topic --------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(parameters=[s.MonthlyTopicQuery], responses=doc.responses(MONTHLY_TOPIC, 400, 401, 404))
)
class MonthlyTopicApi(APIView):
    """GET /api/v1/whistles/monthly-topic?district=110101&month=2026-05&level=3 — 每月一题."""

    def get(self, request):
        q = _parse(s.MonthlyTopicQuery, request.query_params).validated_data
        if not access.may_read_district(request.user, q["district"]):
            raise NotFound("不在您的辖区 / not in your jurisdiction")
        return Response(rules.monthly_topic(q["district"], q["month"], level=int(q["level"])))
