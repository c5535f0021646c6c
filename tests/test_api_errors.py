"""One answer to a service's refusal (#12): gridgov.api.exception_handler turns every
gridgov.errors.DomainError into `{"detail", "code", **extra}` with its status, 409 for a step
the workflow does not allow. The views of the three APIs raise; none answers these itself
(tests/appeals/test_api.py, tests/mobile_api/test_tasks.py and tests/whistles/ check each
API's 409 end to end)."""

import pytest
from rest_framework.permissions import AllowAny
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from gridgov.appeals import workflow as appeal_workflow
from gridgov.appeals.api import AppealActionApi
from gridgov.appeals.field_tasks import OutOfOrder
from gridgov.appeals.services import AppealError
from gridgov.areas.locate import BadPoint
from gridgov.errors import Conflict, DomainError
from gridgov.fieldwork.evidence import EvidenceRefused
from gridgov.whistles import workflow as whistle_workflow
from gridgov.whistles.services import WhistleError
from mobile_api.v1.task_views import FieldRefusals


def answer(exc, *bases):
    """What a DRF view of the given bases answers when its service raises `exc`."""

    class Raises(*bases, APIView):
        permission_classes = [AllowAny]
        authentication_classes = []

        def post(self, request):
            raise exc

    return Raises.as_view()(APIRequestFactory().post("/x", {}, format="json"))


def test_illegal_transitions_of_appeals_and_whistles_get_one_409_shape():
    appeal = answer(appeal_workflow.IllegalTransition("dispatched", "resolve"))
    call = answer(whistle_workflow.IllegalTransition("call", "closed", "close"))
    for res in (appeal, call):
        assert res.status_code == 409
        assert set(res.data) == {"detail", "code", "state", "allowed"} and res.data["code"] == "illegal_transition"
    assert appeal.data["state"] == "dispatched" and appeal.data["allowed"] == appeal_workflow.allowed_events(
        "dispatched"
    )
    assert call.data["state"] == "closed" and call.data["allowed"] == whistle_workflow.allowed_events("call", "closed")


def test_each_api_words_the_409_for_its_callers():
    exc = appeal_workflow.IllegalTransition("dispatched", "resolve")
    web = answer(exc, AppealActionApi)
    phone = answer(exc, FieldRefusals)
    assert web.status_code == phone.status_code == 409
    assert web.data["detail"].startswith("工单当前状态为“已派单”") and "appeal is 'dispatched'" in web.data["detail"]
    assert phone.data["detail"].startswith("任务当前状态为“已派单”") and "task is 'dispatched'" in phone.data["detail"]
    assert {k: v for k, v in web.data.items() if k != "detail"} == {
        k: v for k, v in phone.data.items() if k != "detail"
    }


@pytest.mark.parametrize(
    "exc,status,body",
    [
        (AppealError("unknown_department", "没有这个承办单位"), 400, {"code": "unknown_department"}),
        (WhistleError("too_far", "距离过远", distance_m=812), 400, {"code": "too_far", "distance_m": 812}),
        (EvidenceRefused("bad_file", "文件类型不支持"), 400, {"code": "bad_file"}),
        (BadPoint("坐标无效"), 400, {"code": "bad_point"}),
        (OutOfOrder("check_in", "accept", "dispatched"), 409, {"code": "out_of_order", "required_first": "accept"}),
    ],
)
def test_refusals_with_a_code_share_the_shape(exc, status, body):
    res = answer(exc)
    assert res.status_code == status
    assert res.data["detail"] == str(exc) and body.items() <= res.data.items()


def test_any_domain_error_is_answered_and_other_errors_are_not_swallowed():
    class Busy(Conflict):
        code = "busy"

    res = answer(Busy("正在处理 / busy"))
    assert res.status_code == 409 and res.data == {"detail": "正在处理 / busy", "code": "busy"}
    assert answer(DomainError("x")).status_code == 400
    with pytest.raises(ZeroDivisionError):
        answer(ZeroDivisionError())
