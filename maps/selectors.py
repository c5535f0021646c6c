"""Reads for the map pages that are not aggregates: hotspots, whistle suggestions and calls,
a department's tasks, a grid worker's grids, the hotline's queue. Each returns GeoJSON
(dicts, WGS-84) scoped by the same access functions as the REST API, so a page never shows
what the API would refuse. Small numbers only (tens to hundreds of rows): dense layers go
through maps.aggregates.

Hotspots, suggestions and calls come from gridgov.whistles.
"""

import json
from datetime import datetime, timedelta

from django.contrib.gis.db.models.functions import AsGeoJSON, PointOnSurface
from django.db.models import Q
from django.utils import timezone

from gridgov.accounts.access import jurisdiction, sees_by_department, staff_department_id
from gridgov.appeals.access import appeals_visible_to
from gridgov.appeals.models import Category
from gridgov.appeals.workflow import OPEN_STATES, STATE_LABELS, State
from gridgov.areas.models import LEVELS
from gridgov.areas.views import SimplifyPreserveTopology, tolerance_for_zoom
from gridgov.whistles.access import calls_visible_to, hotspots_visible_to, suggestions_visible_to
from gridgov.whistles.workflow import CALL_OPEN, HOTSPOT_OPEN, LABELS

from .aggregates import LEVEL_LENGTH

# Hex colours for the colour names used in properties; static/js/map-page.js has the same table.
PALETTE = {
    "red": "#d7301f",
    "orange": "#f16913",
    "yellow": "#e3b505",
    "none": "#2b8cbe",
    "green": "#31a354",
    "gray": "#8c8c8c",
    "purple": "#756bb1",
}
COLOUR_LABELS = {"red": "红色提级", "orange": "橙色督办", "yellow": "黄色提醒", "none": "正常"}
DEADLINE_LABELS = {
    "red": "已超期",
    "orange": "24小时内到期",
    "yellow": "3天内到期",
    "green": "3天以上",
    "gray": "无时限",
}
# What the hotline centre still has to do: place it on the map, or send it to a unit.
WAITING_STATES = (State.LOCATED, State.RETURNED)


def feature(fid, lng, lat, **props):
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Point", "coordinates": [round(lng, 6), round(lat, 6)]},
        "properties": props,
    }


def collection(features, **extra):
    return {"type": "FeatureCollection", "features": list(features), **extra}


def area_scope(user) -> list[str] | None:
    """Code prefixes for area data (counts, heat, outlines): the jurisdiction, except for
    department staff, whose sight is the appeals addressed to them, not an area ([])."""
    if sees_by_department(user):
        return []
    return jurisdiction(user)


def outlines(level, prefixes, *, zoom=None, codes=None):
    """Current areas of `level` inside `prefixes` (or exactly `codes`) as a FeatureCollection,
    simplified for `zoom`."""
    model = LEVELS[level]
    qs = model.objects.current()
    if codes is not None:
        qs = qs.filter(code__in=sorted(codes))
    elif prefixes is not None:
        keep = [p for p in prefixes if len(p) <= LEVEL_LENGTH[level]]
        if not keep:
            return collection([])
        cond = Q()
        for p in keep:
            cond |= Q(code__startswith=p)
        qs = qs.filter(cond)
    tol = tolerance_for_zoom(zoom)
    geom = SimplifyPreserveTopology("geom", tol) if tol else "geom"
    rows = qs.annotate(gj=AsGeoJSON(geom, precision=6)).values_list("code", "name", "gj").order_by("code")
    return collection(
        {"type": "Feature", "id": code, "geometry": json.loads(gj), "properties": {"code": code, "name": name}}
        for code, name, gj in rows
    )


# --- hotspots, suggestions, calls -------------------------------------------------------------------


def _category_names(keys):
    codes = {c for key in keys for c in (key or "").split(",") if c}
    return dict(Category.objects.filter(code__in=sorted(codes)).values_list("code", "name"))


def _category_label(key, names):
    if not key:
        return "全部类别"
    return "、".join(names.get(c, c) for c in key.split(","))


def hotspots(user, *, window_days=None):
    """Open, still significant hotspots the user may see, at a point on each one's area, with
    their statistics (count, z, p, confidence, trend) for the popup."""
    qs = hotspots_visible_to(user).filter(active=True, state__in=sorted(HOTSPOT_OPEN))
    if window_days:
        qs = qs.filter(window_days=window_days)
    rows = list(qs.annotate(p=PointOnSurface("geom")).defer("geom", "appeal_ids").order_by("-computed_at", "-pk")[:500])
    names = _category_names(h.category_key for h in rows)
    out = []
    for h in rows:
        s = h.statistics or {}
        category = _category_label(h.category_key, names)
        confidence = s.get("confidence")
        out.append(
            feature(
                f"h{h.pk}",
                h.p.x,
                h.p.y,
                kind="hotspot",
                id=h.pk,
                hotspot_kind=h.kind,
                grid_code=h.grid_code,
                street_code=h.street_code,
                category=category,
                window_days=h.window_days,
                count=s.get("count"),
                z=s.get("z"),
                p=s.get("p"),
                confidence=confidence,
                trend=s.get("trend", ""),
                state=h.state,
                state_label=str(LABELS["hotspot"].get(h.state, h.state)),
                color="purple" if h.kind == "dbscan" else "red",
                label=f"热点 · {category} · 近{h.window_days}天{s.get('count', '?')}件"
                + (f" · 置信度{round(100 * confidence)}%" if confidence else ""),
            )
        )
    return collection(out)


def suggestions(user):
    """Pending whistle suggestions (吹哨建议) the user may see, at the centre of their evidence."""
    rows = list(suggestions_visible_to(user).filter(state="pending").order_by("-created_at", "-pk")[:200])
    names = _category_names(s.category_key for s in rows)
    out = []
    for s in rows:
        e = s.evidence or {}
        bbox = e.get("bbox")
        centroid = e.get("centroid")
        if centroid and len(centroid) == 2:
            lng, lat = centroid
        elif bbox and len(bbox) == 4:
            lng, lat = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
        else:
            continue
        out.append(
            feature(
                f"s{s.pk}",
                lng,
                lat,
                kind="suggestion",
                id=s.pk,
                hotspot=s.hotspot_id,
                rule=s.rule,
                category=_category_label(s.category_key, names),
                count=e.get("count"),
                summary=e.get("summary", ""),
                color="orange",
                label=f"吹哨建议 · {e.get('summary') or _category_label(s.category_key, names)}",
            )
        )
    return collection(out)


def calls(user, *, include_closed_days=7):
    """Whistle calls the user may see: open ones and those closed in the last few days, with
    their musters; for department staff, the own muster (id and state) to answer from the map."""
    since = timezone.now() - timedelta(days=include_closed_days)
    qs = calls_visible_to(user).filter(state__in=sorted(CALL_OPEN)) | calls_visible_to(user).filter(
        closed_at__gte=since
    )
    rows = list(qs.distinct().prefetch_related("musters__department").order_by("-blown_at", "-pk")[:300])
    own_department = staff_department_id(user)
    now = timezone.now()
    out = []
    for c in rows:
        musters = sorted(c.musters.all(), key=lambda m: m.department.code)
        mine = next((m for m in musters if own_department and m.department_id == own_department), None)
        open_ = c.state in CALL_OPEN
        late = open_ and c.muster_deadline <= now and any(m.state in ("summoned", "acknowledged") for m in musters)
        out.append(
            feature(
                f"w{c.pk}",
                c.place.x,
                c.place.y,
                kind="call",
                id=c.pk,
                street_code=c.street_code,
                problem=c.problem,
                state=c.state,
                state_label=str(LABELS["call"].get(c.state, c.state)),
                open=open_,
                muster_deadline=c.muster_deadline.isoformat(),
                blown_at=c.blown_at.isoformat(),
                muster_deadline_local=timezone.localtime(c.muster_deadline).strftime("%m-%d %H:%M"),
                musters=[
                    {
                        "id": m.pk,
                        "department": m.department.name,
                        "state": m.state,
                        "state_label": str(LABELS["muster"].get(m.state, m.state)),
                        "late": m.late,
                    }
                    for m in musters
                ],
                my_muster=mine.pk if mine else None,
                my_muster_state=mine.state if mine else None,
                color="red" if late else ("orange" if open_ else "gray"),
                label=f"吹哨 · {c.problem[:40]} · {LABELS['call'].get(c.state, c.state)}",
            )
        )
    return collection(out)


# --- appeals as tasks ---------------------------------------------------------------------------------


def deadline_colour(deadline, now):
    if deadline is None:
        return "gray"
    left = deadline - now
    if left <= timedelta(0):
        return "red"
    if left <= timedelta(hours=24):
        return "orange"
    if left <= timedelta(days=3):
        return "yellow"
    return "green"


def _appeal_features(qs, now, *, colour_by):
    rows = (
        qs.filter(position__isnull=False)
        .select_related("category", "department")
        .order_by("deadline", "received_at", "pk")[:500]
    )
    out = []
    for a in rows:
        colour = deadline_colour(a.deadline, now) if colour_by == "deadline" else a.warning_colour
        category = a.category.name if a.category_id else "未分类"
        out.append(
            feature(
                f"a{a.pk}",
                a.position.x,
                a.position.y,
                kind="appeal",
                ticket_no=a.ticket_no,
                state=a.state,
                state_label=str(STATE_LABELS.get(a.state, a.state)),
                colour=a.warning_colour,
                category=category,
                grid_code=a.grid_code,
                deadline=a.deadline.isoformat() if a.deadline else None,
                deadline_local=timezone.localtime(a.deadline).strftime("%m-%d %H:%M") if a.deadline else "",
                department=a.department.name if a.department_id else "",
                color=colour,
                count=1,
                label=f"{a.ticket_no} · {category} · {STATE_LABELS.get(a.state, a.state)}"
                + (f" · {DEADLINE_LABELS[colour]}" if colour_by == "deadline" else ""),
            )
        )
    return out


def department_tasks(user, now: datetime | None = None) -> dict:
    """Open appeals addressed to the user's department, coloured by how near the deadline is."""
    now = now or timezone.now()
    qs = appeals_visible_to(user).filter(state__in=sorted(OPEN_STATES))
    if staff_department_id(user) is not None:
        qs = qs.filter(department_id=staff_department_id(user))
    return collection(_appeal_features(qs, now, colour_by="deadline"))


def worker_tasks(user, now=None):
    """Open appeals in the grid worker's grids, coloured by deadline."""
    now = now or timezone.now()
    grids = sorted(set(user.grid_codes or []))
    qs = appeals_visible_to(user).filter(state__in=sorted(OPEN_STATES), grid_code__in=grids)
    return collection(_appeal_features(qs, now, colour_by="deadline"))


def hotline_queue(user):
    """What waits for the hotline centre: located but not dispatched (or returned) appeals on the
    map by warning colour, and the count of those still without a position (人工定位)."""
    qs = appeals_visible_to(user).filter(state__in=WAITING_STATES)
    unlocated = appeals_visible_to(user).filter(state=State.UNLOCATED).count()
    return collection(_appeal_features(qs, timezone.now(), colour_by="warning"), unlocated=unlocated)
