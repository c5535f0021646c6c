"""The operator's intake page (坐席登记): register an appeal, then see what the pipeline decided
and confirm the category or merge a duplicate. Thin: a form, one service call, a template."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from gridgov.appeals import access, services
from gridgov.appeals.forms import IntakeForm, category_choices, chinese
from gridgov.appeals.models import Appeal
from gridgov.appeals.serializers import AppealDetailOutput, CategoriseInput
from gridgov.appeals.workflow import IllegalTransition
from gridgov.areas.locate import BadPoint
from gridgov.basemaps import get_basemap

TRANSFER_LABELS = {"110": "110 报警", "119": "119 火警", "120": "120 急救"}
RISK_LABELS = {
    "threat": "扬言（暴力或自伤）",
    "fire": "火情",
    "gas_leak": "燃气泄漏",
    "collapse": "坍塌",
    "medical": "急症",
    "trapped": "被困",
}


def _intake_user(request):
    if not access.may_register(request.user):
        raise PermissionDenied("只有坐席和热线中心可以登记诉求")


def map_config() -> dict:
    """Tiles for the position picker, from the same basemap setting as every other map. AMap
    tiles are GCJ-02, so a click there is a GCJ-02 position; grid outlines (WGS-84) are drawn
    only on WGS-84 basemaps, where they line up."""
    base = get_basemap()
    return {
        "crs": base.crs,
        "tiles": [
            {"url": t.url, "attribution": t.attribution, "subdomains": t.subdomains, "maxZoom": t.max_zoom}
            for t in base.tiles
        ],
        "gridsUrl": "/api/v1/areas/grid/?zoom=15&page_size=5000" if base.crs == "wgs84" else "",
    }


@login_required
def intake(request):
    _intake_user(request)
    form = IntakeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            appeal, _created = services.appeal_register(data=form.register_data, actor=request.user)
        except (services.AppealError, BadPoint) as exc:
            form.add_error(None, chinese(exc))
        else:
            messages.success(request, f"已登记，工单编号 {appeal.ticket_no}")
            return redirect("appeals:intake-result", ticket_no=appeal.ticket_no)
    return render(request, "appeals/intake.html", {"form": form, "map_config": json.dumps(map_config())})


def _appeal(request, ticket_no, detail=False):
    try:
        return access.appeal_for(request.user, ticket_no, detail=detail)
    except Appeal.DoesNotExist:
        raise Http404("没有这个工单") from None


@login_required
def intake_result(request, ticket_no):
    _intake_user(request)
    appeal = _appeal(request, ticket_no, detail=True)
    data = AppealDetailOutput(appeal, context=access.output_context(request.user, [appeal])).data
    dup_ids = [d["candidate_id"] for d in data["duplicates"]]
    candidates = {a.pk: a for a in access.appeals_visible_to(request.user).filter(pk__in=dup_ids)}
    duplicates = [{**d, "appeal": candidates.get(d["candidate_id"])} for d in data["duplicates"]]
    risks = [
        {
            **f,
            "label": RISK_LABELS.get(f["flag"], f["flag"]),
            "transfer_label": TRANSFER_LABELS.get(f["transfer"], f["transfer"]),
        }
        for f in data["risk"]["flags"]
    ]
    return render(
        request,
        "appeals/intake_result.html",
        {
            "appeal": appeal,
            "a": data,
            "risks": risks,
            "duplicates": duplicates,
            "category_groups": [c for c in category_choices("") if isinstance(c[1], list)],
            "may_merge": access.may_act(request.user, appeal, "merge"),
            "may_categorise": access.may_act(request.user, appeal, "categorise"),
        },
    )


@login_required
@require_POST
def intake_categorise(request, ticket_no):
    _intake_user(request)
    appeal = _appeal(request, ticket_no)
    if not access.may_act(request.user, appeal, "categorise"):
        raise PermissionDenied("您无权修改分类")
    # A category picked from the full list wins over a ticked suggestion.
    code = request.POST.get("other") or request.POST.get("guess") or request.POST.get("category_code", "")
    data = CategoriseInput(data={"category_code": code})
    if not data.is_valid():
        messages.error(request, chinese(data.errors["category_code"][0]))
    else:
        try:
            services.appeal_categorise(
                appeal_id=appeal.pk, category_code=data.validated_data["category_code"], actor=request.user
            )
        except (services.AppealError, IllegalTransition) as exc:
            messages.error(request, chinese(exc))
        else:
            messages.success(request, "分类已确认")
    return redirect("appeals:intake-result", ticket_no=ticket_no)


@login_required
@require_POST
def intake_merge(request, ticket_no):
    _intake_user(request)
    appeal = _appeal(request, ticket_no)
    if not access.may_act(request.user, appeal, "merge"):
        raise PermissionDenied("并单由热线中心操作")
    lead = access.appeals_visible_to(request.user).filter(ticket_no=request.POST.get("lead", "")).first()
    if lead is None:
        messages.error(request, "找不到主单")
        return redirect("appeals:intake-result", ticket_no=ticket_no)
    try:
        services.appeal_merge(appeal_id=appeal.pk, lead_id=lead.pk, actor=request.user)
    except (services.AppealError, IllegalTransition) as exc:
        messages.error(request, chinese(exc))
    else:
        messages.success(request, f"已并入主单 {lead.ticket_no}")
    return redirect("appeals:intake-result", ticket_no=ticket_no)
