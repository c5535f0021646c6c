"""The appeals API: register one or many, list and read (scoped and masked), and act.
Thin views: parse with an input serializer, ask access.py, call one service, render."""

import logging
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from gridgov import schema as doc
from gridgov.accounts.models import Department
from gridgov.appeals import access, services
from gridgov.appeals import serializers as s
from gridgov.appeals.intake import batch
from gridgov.appeals.models import Appeal
from gridgov.appeals.workflow import PRE_DISPATCH_STATES, STATE_LABELS, IllegalTransition
from gridgov.areas.locate import BadPoint

logger = logging.getLogger(__name__)


class AppealPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def detail_response(user, appeal, *, status_code=200, **extra):
    """The appeal as `user` may now see it (an action can take it out of the user's sight)."""
    try:
        appeal = access.appeal_for(user, appeal.ticket_no, detail=True)
    except Appeal.DoesNotExist:
        return Response({"ticket_no": appeal.ticket_no, "state": appeal.state, **extra}, status=status_code)
    data = s.AppealDetailOutput(appeal, context=access.output_context(user, [appeal])).data
    return Response({**data, **extra}, status=status_code)


REGISTERED = doc.obj(
    {**s.APPEAL_DETAIL["properties"], "created": doc.BOOL},
    description="201 registered now; 200 the same source_system + external_id seen before",
)
# An action answers with the appeal, or with ticket_no and state when it left the caller's sight.
ACTED = {"anyOf": [s.APPEAL_DETAIL, s.APPEAL_GONE]}
BULK_RESULT = doc.obj(
    {
        "count": doc.INT,
        "created": doc.INT,
        "existing": doc.INT,
        "failed": doc.INT,
        "results": doc.array(
            doc.obj(
                {"index": doc.INT, "created": doc.BOOL, "ticket_no": doc.STR, "errors": doc.FIELD_ERRORS},
                optional=("created", "ticket_no", "errors"),
            )
        ),
    },
    description="每条结果按序号 / one result per item, by index: created and ticket_no, or errors",
)


def _register_one(data, user):
    """One appeal as a batch of one (batch.appeal_register_many: the same decisions as
    appeal_register, in about half the statements and time)."""
    (outcome,) = batch.appeal_register_many([data], actor=user)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


class AppealListCreateApi(GenericAPIView):
    """GET /api/v1/appeals?state=&colour=&category=&grid=&since=&until=&in_bbox= — appeals in the
    caller's jurisdiction, red first, then by deadline; personal data masked per appeal.
    POST /api/v1/appeals — register one (operators, the hotline centre, admins). The same
    (source_system, external_id) again answers 200 with the existing appeal and created=false."""

    pagination_class = AppealPagination

    @extend_schema(
        operation_id="appeals_list",
        parameters=[s.AppealListQuery, *doc.PAGE_PARAMETERS],
        responses=doc.responses(doc.paged(s.APPEAL), 400, 401, 404),
    )
    def get(self, request):
        q = s.AppealListQuery(data=request.query_params)
        q.is_valid(raise_exception=True)
        page = self.paginate_queryset(access.appeal_list(request.user, **q.validated_data)) or []
        ctx = access.output_context(request.user, page)
        return self.get_paginated_response(s.AppealOutput(page, many=True, context=ctx).data)

    @extend_schema(
        operation_id="appeals_register",
        request=s.AppealRegisterInput,
        responses=doc.responses({201: REGISTERED, 200: REGISTERED}, 400, 401, 403),
    )
    def post(self, request):
        if not access.may_register(request.user):
            raise PermissionDenied(
                "只有坐席和热线中心可以登记诉求 / only operators and the hotline centre register appeals"
            )
        data = s.AppealRegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            appeal, created = _register_one(data.register_data(), request.user)
        except (services.AppealError, BadPoint) as exc:
            return Response({"detail": str(exc), "code": getattr(exc, "code", "bad_point")}, status=400)
        return detail_response(request.user, appeal, status_code=201 if created else 200, created=created)


class AppealBulkCreateApi(APIView):
    """POST /api/v1/appeals/bulk [ {...}, ... ] (at most 1000): each item is validated alone and
    the valid ones are registered together (batch.appeal_register_many: the same pipeline and
    history as one by one). Good items are kept, bad ones reported by index; idempotent per item."""

    @extend_schema(
        operation_id="appeals_register_bulk",
        request=s.AppealRegisterInput(many=True),
        responses=doc.responses(BULK_RESULT, 400, 401, 403),
    )
    def post(self, request):
        if not access.may_register(request.user):
            raise PermissionDenied(
                "只有坐席和热线中心可以登记诉求 / only operators and the hotline centre register appeals"
            )
        items = request.data
        if not isinstance(items, list):
            return Response(
                {"detail": "请求体应为诉求列表 / expected a JSON list of appeals", "code": "not_a_list"}, status=400
            )
        if len(items) > s.BULK_MAX:
            return Response(
                {"detail": f"每次最多{s.BULK_MAX}条 / at most {s.BULK_MAX} items per request", "code": "too_many"},
                status=400,
            )
        valid, errors = s.AppealRegisterInput.validate_many(items)
        results: list[Any] = [
            {"index": index, "errors": errors[index]} if index in errors else None for index in range(len(items))
        ]
        registered = batch.appeal_register_many([d for _, d in valid], actor=request.user)
        for (index, _data), outcome in zip(valid, registered, strict=True):
            results[index] = self.item_result(index, outcome)
        counts = {"created": 0, "existing": 0, "failed": 0}
        for result in results:
            counts["failed" if "errors" in result else "created" if result["created"] else "existing"] += 1
        return Response({"count": len(items), **counts, "results": results})

    @staticmethod
    def item_result(index, outcome):
        if isinstance(outcome, (services.AppealError, BadPoint)):
            return {"index": index, "errors": {"non_field_errors": [str(outcome)]}}
        if isinstance(outcome, Exception):  # logged where it happened; one broken item loses no other
            return {"index": index, "errors": {"non_field_errors": ["登记失败（服务器错误） / registration failed"]}}
        appeal, created = outcome
        return {"index": index, "created": created, "ticket_no": appeal.ticket_no}


class AppealDetailApi(APIView):
    """GET /api/v1/appeals/<ticket_no> — with events, assignments and attachments. 404 outside
    the caller's jurisdiction."""

    @extend_schema(
        operation_id="appeals_retrieve",
        parameters=[doc.TICKET_PARAMETER],
        responses=doc.responses(s.APPEAL_DETAIL, 401, 404),
    )
    def get(self, request, ticket_no):
        try:
            appeal = access.appeal_for(request.user, ticket_no, detail=True)
        except Appeal.DoesNotExist:
            return not_found()
        return Response(s.AppealDetailOutput(appeal, context=access.output_context(request.user, [appeal])).data)


class AppealLocationQueueApi(GenericAPIView):
    """GET /api/v1/appeals/queue/location — 人工定位队列, oldest first (operators and the centre)."""

    pagination_class = AppealPagination

    @extend_schema(
        operation_id="appeals_location_queue",
        parameters=doc.PAGE_PARAMETERS,
        responses=doc.responses(doc.paged(s.APPEAL), 401, 403, 404),
    )
    def get(self, request):
        if not access.may_register(request.user):
            raise PermissionDenied(
                "人工定位队列仅供坐席和热线中心 / the location queue is for operators and the centre"
            )
        page = self.paginate_queryset(access.location_queue(request.user)) or []
        ctx = access.output_context(request.user, page)
        return self.get_paginated_response(s.AppealOutput(page, many=True, context=ctx).data)


# --- actions ----------------------------------------------------------------------------------


def not_found():
    return Response(
        {"detail": "没有这个工单，或不在您的辖区 / no such appeal in your jurisdiction", "code": "not_found"},
        status=404,
    )


class AppealActionApi(APIView):
    """POST /api/v1/appeals/<ticket_no>/<action>. Subclasses name the action, the input and
    the service call; this class answers 404 outside the jurisdiction, 403 without the right,
    409 for a step the workflow does not allow now, 400 for a request the service refuses."""

    action = ""
    input_serializer: type[BaseSerializer] = s.NoteInput

    def perform(self, appeal, data, user):
        raise NotImplementedError

    def get_serializer_class(self):  # for the schema
        return self.input_serializer

    def forbidden(self, appeal):
        return f"您无权对该工单执行“{self.action}” / you may not {self.action} this appeal"

    def refusal_detail(self, exc: Exception) -> str:
        """The message of a refusal (gridgov.api.exception_handler): a step the workflow does
        not allow is named with the appeal's state and the step as the web shows them."""
        if isinstance(exc, IllegalTransition):
            label = STATE_LABELS.get(exc.state, exc.state)
            return (
                f"工单当前状态为“{label}”，不能执行“{s.EVENT_LABELS.get(exc.event, exc.event)}” / {exc.event!r} "
                f"is not allowed while the appeal is {exc.state!r}"
            )
        return str(exc)

    @extend_schema(parameters=[doc.TICKET_PARAMETER], responses=doc.responses(ACTED, 400, 401, 403, 404, 409))
    def post(self, request, ticket_no):
        try:
            appeal = access.appeal_for(request.user, ticket_no)
        except Appeal.DoesNotExist:
            return not_found()
        if not access.may_act(request.user, appeal, self.action):
            raise PermissionDenied(self.forbidden(appeal))
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        # A refusal (IllegalTransition 409, AppealError or BadPoint 400) is answered by
        # gridgov.api.exception_handler, worded by refusal_detail.
        appeal = self.perform(appeal, data.validated_data, request.user)
        return detail_response(request.user, appeal)


class AppealAcceptApi(AppealActionApi):
    action = "accept"

    def perform(self, appeal, data, user):
        return services.appeal_accept(appeal_id=appeal.pk, actor=user, note=data["note"])


class AppealStartApi(AppealActionApi):
    action = "start"

    def perform(self, appeal, data, user):
        return services.appeal_start(appeal_id=appeal.pk, actor=user, note=data["note"])


class AppealResolveApi(AppealActionApi):
    action = "resolve"
    input_serializer = s.ResolveInput

    def perform(self, appeal, data, user):
        return services.appeal_resolve(
            appeal_id=appeal.pk, actor=user, closure_type=data["closure_type"], note=data["note"]
        )


class AppealReturnApi(AppealActionApi):
    action = "return"
    input_serializer = s.ReasonInput

    def perform(self, appeal, data, user):
        return services.appeal_return(appeal_id=appeal.pk, actor=user, reason=data["reason"])


class AppealArbitrateApi(AppealActionApi):
    action = "arbitrate"
    input_serializer = s.ArbitrateInput

    def perform(self, appeal, data, user):
        department = None
        if data["department"]:
            department = Department.objects.filter(code=data["department"]).first()
            if department is None:
                raise services.AppealError("unknown_department", "没有这个承办单位 / no such department")
        return services.appeal_arbitrate(
            appeal_id=appeal.pk, actor=user, uphold=data["uphold"], department=department, note=data["note"]
        )


class AppealMergeApi(AppealActionApi):
    action = "merge"
    input_serializer = s.MergeInput

    def perform(self, appeal, data, user):
        lead = access.appeals_visible_to(user).filter(ticket_no=data["lead"]).first()
        if lead is None:
            raise services.AppealError("lead_not_found", "找不到主单 / no such lead appeal")
        return services.appeal_merge(appeal_id=appeal.pk, lead_id=lead.pk, actor=user)


class AppealCloseApi(AppealActionApi):
    action = "close"

    def perform(self, appeal, data, user):
        return services.appeal_close(appeal_id=appeal.pk, actor=user, note=data["note"])


class AppealSuspendApi(AppealActionApi):
    action = "suspend"
    input_serializer = s.SuspendInput

    def perform(self, appeal, data, user):
        return services.appeal_suspend(
            appeal_id=appeal.pk, actor=user, reason=data["reason"], review_at=data["review_at"], plan=data["plan"]
        )


class AppealLocateApi(AppealActionApi):
    action = "locate"
    input_serializer = s.LocateInput

    def perform(self, appeal, data, user):
        return services.appeal_locate_manually(
            appeal_id=appeal.pk, lng=data["lng"], lat=data["lat"], crs=data["crs"], actor=user
        )


class AppealCategoriseApi(AppealActionApi):
    """Before dispatch: operators and the centre. After dispatch: the centre (and the operator
    who registered it, until a unit acts); the new category re-routes the appeal
    (services.appeal_categorise says how)."""

    action = "categorise"
    input_serializer = s.CategoriseInput

    def forbidden(self, appeal):
        if appeal.state not in PRE_DISPATCH_STATES:
            return (
                "工单已派单，改分类会改派承办单位，须由热线中心操作（登记坐席仅可在承办单位签收前更正） / the appeal "
                "is dispatched: re-categorising re-routes it, which is the hotline centre's decision (the "
                "operator who registered it may correct it until a unit acts on it)"
            )
        return super().forbidden(appeal)

    def perform(self, appeal, data, user):
        return services.appeal_categorise(appeal_id=appeal.pk, category_code=data["category_code"], actor=user)


ACTIONS = {
    view.action: view
    for view in (
        AppealAcceptApi,
        AppealStartApi,
        AppealResolveApi,
        AppealReturnApi,
        AppealArbitrateApi,
        AppealMergeApi,
        AppealCloseApi,
        AppealSuspendApi,
        AppealLocateApi,
        AppealCategoriseApi,
    )
}
