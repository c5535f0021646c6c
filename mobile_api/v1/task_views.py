"""Tasks on phones: my tasks, one task, and the field actions (accept, return, check in, upload
evidence, complete), plus grid reports. Thin views: parse with an input serializer, ask
gridgov.appeals.field_tasks who may do what, call one service, render.

Every action answers in the appeals API's order: 404 when the ticket is not one of the caller's
tasks (a foreign ticket looks like a missing one), 403 without the right, 400 for bad input,
409 for a step the workflow does not allow now (out_of_order names what must come first,
illegal_transition lists what is allowed), 400 for a refusal the caller can fix (outside the
geofence, missing evidence). Every POST is idempotent (gridgov/idempotency/replay.py).
"""

from django.contrib.gis.geos import Polygon
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from gridgov import schema as doc
from gridgov.appeals import field_rules, field_tasks, grid_reports
from gridgov.appeals.access import unmasked_ids
from gridgov.appeals.models import Appeal
from gridgov.appeals.serializers import EVENT_LABELS
from gridgov.appeals.workflow import STATE_LABELS, IllegalTransition
from gridgov.areas import coords
from gridgov.fieldwork.evidence import inspect
from gridgov.idempotency.replay import idempotency_key, idempotent
from gridgov.parsers import StrictJSONParser
from mobile_api.v1 import task_serializers as s

# An action answers with the task, or with ticket_no and state when it left the caller's sight.
ACTED = {"anyOf": [s.TASK_DETAIL, s.TASK_GONE]}
ACTION_ERRORS = (400, 401, 403, 404, 409, 422)
EVIDENCE_ADDED = doc.obj(
    {"ticket_no": doc.STR, "created": doc.BOOL, "duplicate": doc.BOOL, "evidence": s.EVIDENCE},
    description="201 stored now; 200 the same file again (duplicate: true)",
)
REPORTED = doc.obj(
    {
        **s.TASK_DETAIL["properties"],
        "created": doc.BOOL,
        "self_handled": {"nullable": True, "description": "fixed_on_site: how it was closed"},
    },
    description="201 registered now; 200 the same report again",
)


class TaskPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def not_found():
    return Response(
        {"detail": "没有这个任务，或不是您的任务 / no such task of yours", "code": "not_found"},
        status=status.HTTP_404_NOT_FOUND,
    )


def _context(user, appeals, crs="wgs84"):
    return {"user": user, "crs": crs, "unmasked": unmasked_ids(user, appeals)}


def _parse(serializer_class, data):
    parsed = serializer_class(data=data)
    parsed.is_valid(raise_exception=True)
    return parsed.validated_data


class FieldRefusals:
    """The phone's wording of a refusal, which gridgov.api.exception_handler answers: a step the
    workflow does not allow is named with the task's state and the step as the phone shows them."""

    def refusal_detail(self, exc: Exception) -> str:
        if isinstance(exc, IllegalTransition):
            label = STATE_LABELS.get(exc.state, exc.state)
            event = s.FIELD_EVENT_LABELS.get(exc.event, EVENT_LABELS.get(exc.event, exc.event))
            return (
                f"任务当前状态为“{label}”，不能执行“{event}” / {exc.event!r} is not allowed while the "
                f"task is {exc.state!r}"
            )
        return str(exc)


def task_response(user, appeal, *, crs="wgs84", status_code=200, **extra):
    """The task as `user` may now see it (an action can take it out of the user's sight)."""
    try:
        appeal = field_tasks.task_for(user, appeal.ticket_no, detail=True)
    except Appeal.DoesNotExist:
        return Response({"ticket_no": appeal.ticket_no, "state": appeal.state, **extra}, status=status_code)
    data = s.TaskDetailOutput(appeal, context=_context(user, [appeal], crs)).data
    return Response({**data, **extra}, status=status_code)


def _forbid_non_field_staff(user):
    if not field_tasks.is_field_staff(user):
        raise PermissionDenied("任务仅供网格员和部门外勤人员 / tasks are for grid workers and department field staff")


# --- reads ------------------------------------------------------------------------------------


class TaskListApi(GenericAPIView):
    """GET /api/mobile/v1/tasks?state=&in_bbox=&crs= — my tasks (default: to do), red first, then
    by deadline; personal data masked unless my unit leads the appeal."""

    pagination_class = TaskPagination

    @extend_schema(
        operation_id="mobile_tasks_list",
        parameters=[s.TaskListQuery, *doc.PAGE_PARAMETERS],
        responses=doc.responses(doc.paged(s.TASK), 400, 401, 403, 404),
        tags=["mobile-tasks"],
    )
    def get(self, request):
        _forbid_non_field_staff(request.user)
        q = _parse(s.TaskListQuery, request.query_params)
        bbox = q.get("in_bbox")
        if bbox is not None and q["crs"] != "wgs84":
            # The box's corners in WGS-84 (over a few kilometres the offset barely changes).
            x, y = coords.to_wgs84([c[0] for c in bbox.coords[0]], [c[1] for c in bbox.coords[0]], q["crs"])
            bbox = Polygon.from_bbox((float(x.min()), float(y.min()), float(x.max()), float(y.max())))
        page = self.paginate_queryset(field_tasks.task_list(request.user, state=q.get("state"), in_bbox=bbox))
        ctx = _context(request.user, page, q["crs"])
        return self.get_paginated_response(s.TaskOutput(page, many=True, context=ctx).data)


class TaskDetailApi(APIView):
    """GET /api/mobile/v1/tasks/<ticket_no>?crs=gcj02 — position (WGS-84, and in crs), masked
    appellant data, history, check-ins, evidence with thumbnails, what completion still needs,
    and the actions allowed now."""

    @extend_schema(
        operation_id="mobile_tasks_retrieve",
        parameters=[doc.TICKET_PARAMETER, s.TaskDetailQuery],
        responses=doc.responses(s.TASK_DETAIL, 400, 401, 404),
        tags=["mobile-tasks"],
    )
    def get(self, request, ticket_no):
        q = _parse(s.TaskDetailQuery, request.query_params)
        try:
            appeal = field_tasks.task_for(request.user, ticket_no, detail=True)
        except Appeal.DoesNotExist:
            return not_found()
        return Response(s.TaskDetailOutput(appeal, context=_context(request.user, [appeal], q["crs"])).data)


# --- actions ----------------------------------------------------------------------------------


class TaskActionApi(FieldRefusals, APIView):
    """POST /api/mobile/v1/tasks/<ticket_no>/<action>. Subclasses name the action, the input
    and the service call; the answer is the task after the action."""

    action = ""
    input_serializer = s.AcceptInput
    parser_classes = [StrictJSONParser, FormParser, MultiPartParser]

    def get_serializer_class(self):  # for the schema
        return self.input_serializer

    def perform(self, appeal, data, request):
        raise NotImplementedError

    def respond(self, request, appeal, result):
        return task_response(request.user, result)

    @extend_schema(
        responses=doc.responses(ACTED, *ACTION_ERRORS),
        parameters=[doc.TICKET_PARAMETER, doc.IDEMPOTENCY_PARAMETER],
        tags=["mobile-tasks"],
    )
    @idempotent
    def post(self, request, ticket_no):
        try:
            appeal = field_tasks.task_for(request.user, ticket_no)
        except Appeal.DoesNotExist:
            return not_found()
        if not field_tasks.may_work(request.user, appeal, self.action):
            zh, en = field_tasks.ACTION_LABELS[self.action]
            raise PermissionDenied(f"您无权对该任务执行“{zh}” / you may not {en} on this task")
        data = _parse(self.input_serializer, request.data)
        result = self.perform(appeal, data, request)
        return self.respond(request, appeal, result)


class TaskAcceptApi(TaskActionApi):
    """签收. {note?}"""

    action = "accept"

    def perform(self, appeal, data, request):
        return field_tasks.task_accept(appeal_id=appeal.pk, actor=request.user, note=data["note"])


class TaskReturnApi(TaskActionApi):
    """退单: not ours. {reason} (required)."""

    action = "return"
    input_serializer = s.ReturnInput

    def perform(self, appeal, data, request):
        return field_tasks.task_return(appeal_id=appeal.pk, actor=request.user, reason=data["reason"])


class TaskCheckInApi(TaskActionApi):
    """到达现场. {lng, lat, crs, accuracy_m?, client_at?}: beyond the geofence refused (400,
    code outside_geofence, distance_m, geofence_m) or accepted and flagged, per GEOFENCE_MODE.
    Before the accept: 409 out_of_order."""

    action = "check_in"
    input_serializer = s.CheckInInput

    def perform(self, appeal, data, request):
        return field_tasks.task_check_in(
            appeal_id=appeal.pk,
            actor=request.user,
            lng=data["lng"],
            lat=data["lat"],
            crs=data["crs"],
            accuracy_m=data["accuracy_m"],
            client_at=data["client_at"],
        )

    def respond(self, request, appeal, result):
        appeal, event = result
        return task_response(request.user, appeal, check_in=s.check_in_item(event))


@extend_schema_view(
    post=extend_schema(
        responses=doc.responses({201: EVIDENCE_ADDED, 200: EVIDENCE_ADDED}, *ACTION_ERRORS),
        parameters=[doc.TICKET_PARAMETER, doc.IDEMPOTENCY_PARAMETER],
        tags=["mobile-tasks"],
    )
)
class TaskEvidenceApi(TaskActionApi):
    """multipart {file, purpose (before/during/after)} → 201 with the evidence; the same file again
    → 200 with the original (duplicate: true). The type is read from the bytes: anything but a
    JPEG/PNG/HEIC photo, MP4/MOV video or AAC/M4A/MP3/AMR audio is refused (400 file_type)."""

    action = "evidence"
    input_serializer = s.EvidenceInput
    parser_classes = [MultiPartParser, FormParser]

    def perform(self, appeal, data, request):
        file = inspect(data["file"])
        return field_tasks.evidence_add(appeal_id=appeal.pk, actor=request.user, file=file, purpose=data["purpose"])

    def respond(self, request, appeal, result):
        att, created = result
        return Response(
            {
                "ticket_no": appeal.ticket_no,
                "created": created,
                "duplicate": not created,
                "evidence": s.evidence_item(att),
            },
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class TaskCompleteApi(TaskActionApi):
    """办结. {note, closure_type (substantive/partial)}: after a check-in, with the photos the
    category requires (400 evidence_missing lists them)."""

    action = "complete"
    input_serializer = s.CompleteInput

    def perform(self, appeal, data, request):
        return field_tasks.task_complete(
            appeal_id=appeal.pk, actor=request.user, note=data["note"], closure_type=data["closure_type"]
        )


ACTIONS = {
    "accept": TaskAcceptApi,
    "return": TaskReturnApi,
    "check-in": TaskCheckInApi,
    "evidence": TaskEvidenceApi,
    "complete": TaskCompleteApi,
}


# --- grid reports -----------------------------------------------------------------------------


class GridReportApi(FieldRefusals, APIView):
    """POST /api/mobile/v1/reports — 网格上报/随手拍 (grid workers): multipart {text, lng, lat, crs,
    category_code?, kind?, address_text?, fixed_on_site, note?, photos[], after_photos[]}.
    Registered through the intake pipeline (channel grid_report); fixed_on_site closes it at once
    (answer field self_handled). 201 with the task; the same Idempotency-Key or client_id again
    gives the first answer back, never a second appeal."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="mobile_reports_create",
        request=s.GridReportInput,
        responses=doc.responses({201: REPORTED, 200: REPORTED}, 400, 401, 403, 409, 422),
        parameters=[doc.IDEMPOTENCY_PARAMETER],
        tags=["mobile-tasks"],
    )
    @idempotent
    def post(self, request):
        if not grid_reports.may_report(request.user):
            raise PermissionDenied("只有网格员可以网格上报 / only grid workers file grid reports")
        data = _parse(s.GridReportInput, request.data)
        photos = [inspect(f) for f in data["photos"]]
        after = [inspect(f) for f in data["after_photos"]]
        if any(f.kind != field_rules.PHOTO for f in [*photos, *after]):
            return Response(
                {"detail": "网格上报只接受照片 / a grid report takes photos only", "code": "photos_only"},
                status=400,
            )
        appeal, created, outcome = grid_reports.grid_report(
            actor=request.user,
            text=data["text"],
            lng=data["lng"],
            lat=data["lat"],
            crs=data["crs"],
            photos=photos,
            after_photos=after,
            category_code=data["category_code"],
            kind=data["kind"],
            address_text=data["address_text"],
            fixed_on_site=data["fixed_on_site"],
            note=data["note"],
            client_key=idempotency_key(request) or "",
        )
        return task_response(
            request.user, appeal, status_code=201 if created else 200, created=created, self_handled=outcome
        )
