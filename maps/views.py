"""Map pages, one per role, all built with maps.builders and rendered offline.

Each view reads aggregated or small data (maps.aggregates, maps.selectors, scoped to the
viewer), builds a folium map, and renders its header, body and script into a template with a
Chinese side panel. static/js/map-page.js finds the map's layers by the names passed in
`config`, adds popups and actions, and refreshes the layers from /maps/api/ when
static/js/live.js hears an event on the WebSocket (the page works without it).
"""

import math
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.gis.db.models import Extent
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from gridgov.accounts.access import jurisdiction
from gridgov.accounts.models import Role
from gridgov.appeals.access import appeals_visible_to
from gridgov.appeals.models import Category
from gridgov.appeals.workflow import State
from gridgov.areas.models import LEVELS
from gridgov.basemaps import get_basemap

from . import aggregates, builders, offline, selectors
from .aggregates import LEVEL_LENGTH, Window

WINDOWS = (7, 30, 90)
LEVEL_LABELS = {"district": "区", "street": "街道", "community": "社区", "grid": "网格"}
PAGES = {
    "street": {Role.STREET_OFFICE},
    "department": {Role.DEPARTMENT},
    "leader": {Role.LEADER, Role.HOTLINE_CENTER},
    "worker": {Role.GRID_WORKER},
    "hotline": {Role.OPERATOR, Role.HOTLINE_CENTER},
}
HOME = {
    Role.STREET_OFFICE: "street",
    Role.DEPARTMENT: "department",
    Role.LEADER: "leader",
    Role.GRID_WORKER: "worker",
    Role.OPERATOR: "hotline",
    Role.HOTLINE_CENTER: "hotline",
    Role.ADMIN: "leader",
}
SATISFACTION_NOTE = "满意率：平台尚无回访评分数据，暂不计算。"


def _allow(request, page):
    user = request.user
    if not (user.is_superuser or user.role == Role.ADMIN or user.role in PAGES[page]):
        raise PermissionDenied("本页面不适用于您的角色")


@login_required
def index(request):
    user = request.user
    page = "leader" if user.is_superuser else HOME.get(user.role)
    if page is None:
        raise PermissionDenied("没有适用于您角色的地图")
    return redirect(f"maps:{page}")


# --- helpers ------------------------------------------------------------------------------------


def _int_choice(raw, choices, default):
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return default
    return value if value in choices else default


def _category(raw):
    raw = (raw or "").strip()
    return raw if raw.isdigit() and len(raw) in (2, 4, 6) else ""


def category_options():
    return list(
        Category.objects.filter(level__in=[1, 2], is_active=True).order_by("code").values("code", "name", "level")
    )


def scope_grids(prefixes, *, codes=None):
    """(number of current grids, their extent (w, s, e, n) or None) in the jurisdiction."""
    qs = LEVELS["grid"].objects.current()
    if codes is not None:
        qs = qs.filter(code__in=sorted(codes))
    elif prefixes is not None:
        cond = Q()
        for p in prefixes:
            cond |= Q(code__startswith=p)
        qs = qs.filter(cond) if prefixes else qs.none()
    found = qs.aggregate(e=Extent("geom"), n=Count("pk"))
    return found["n"], found["e"]


def zoom_for(prefixes, *, codes=None, width_px=900, height_px=640, extent=None):
    """The web-mercator zoom at which the jurisdiction's areas fill the map: used to simplify
    geometry and size clusters before the browser has fitted the map."""
    if extent is None:
        extent = scope_grids(prefixes, codes=codes)[1]
    if not extent:
        return 12
    w, s, e, n = extent
    span_x = max(e - w, 1e-6)
    span_y = max((n - s) / max(math.cos(math.radians((n + s) / 2)), 0.2), 1e-6)
    zoom = min(math.log2(360 * width_px / 256 / span_x), math.log2(360 * height_px / 256 / span_y))
    return max(3, min(17, int(math.floor(zoom))))


def _strip_bootstrap(m):
    """Our pages have their own stylesheet; Bootstrap's would restyle the whole page and no
    layer here needs it (awesome-markers' glyph font is kept)."""
    m.default_js = [(k, v) for k, v in m.default_js if k != "bootstrap"]
    m.default_css = [(k, v) for k, v in m.default_css if k != "bootstrap_css"]
    return m


def _layer_names(m):
    """{layer title: JS variable} for every named layer of the map."""
    names = {}
    for child in m._children.values():
        title = getattr(child, "layer_name", None)
        if title:
            names[title] = child.get_name()
    return names


def _url(name, *args):
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _actions():
    """Write endpoints the map's buttons post to (gridgov.whistles, gridgov.appeals), looked up
    by name: a button whose API is not routed is not offered. "/0/" stands for the id."""
    return {
        "whistle_blow": _url("whistles:calls"),
        "suggestion_confirm": _url("whistles:suggestion-confirm", 0),
        "muster_acknowledge": _url("whistles:muster-acknowledge", 0),
        "appeal_accept": _url("appeal-accept", "TICKET"),
    }


def _render(request, template, *, page, m, config, context):
    _strip_bootstrap(m)
    parts = offline.render_parts(m)
    config = {
        "page": page,
        "map": m.get_name(),
        "layers": _layer_names(m),
        "ws": "/ws/v1/events/",
        "csrf": get_token(request),
        "colors": builders.POINT_COLORS,
        "choropleth_colors": list(builders.CHOROPLETH_COLORS),
        "no_data_color": builders.NO_DATA_COLOR,
        "crs": get_basemap().crs,
        "actions": _actions(),
        **config,
    }
    return render(
        request,
        template,
        {
            "map": parts,
            "config": config,
            "page": page,
            "satisfaction_note": SATISFACTION_NOTE,
            "basemap": settings.MAP_BASEMAP,
            **context,
        },
    )


def _values(areas):
    return {f["properties"]["code"]: f["properties"]["count"] for f in areas["features"]}


def _drawn(areas):
    """The areas as the map draws them: the tooltip shows name, code and count, so the rates'
    counters stay out of the page (10,000 grids: over a megabyte less)."""
    keep = ("code", "name", "count")
    return {
        "type": "FeatureCollection",
        "features": [{**f, "properties": {k: f["properties"][k] for k in keep}} for f in areas["features"]],
    }


def _rates_rows(areas, limit=50):
    rows = [f["properties"] for f in areas["features"]]
    rows.sort(key=lambda p: (-p["count"], p["code"]))
    return rows[:limit]


def _query(**params):
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


# --- pages --------------------------------------------------------------------------------------


@login_required
def street(request):
    """街道: its grids shaded by appeal density, hotspots, open appeals by colour, whistle
    suggestions and calls; 吹哨 from a hotspot's popup."""
    _allow(request, "street")
    user = request.user
    prefixes = selectors.area_scope(user)
    days = _int_choice(request.GET.get("days"), WINDOWS, 30)
    category = _category(request.GET.get("category"))
    window = Window.last_days(days, category)
    zoom = zoom_for(prefixes)
    areas = orjson.loads(aggregates.area_counts_geojson(window, prefixes, level="grid", zoom=zoom))
    appeals = aggregates.open_appeal_points(user, zoom=zoom)
    hotspots = selectors.hotspots(user)
    suggestions = selectors.suggestions(user)
    calls = selectors.calls(user)
    layers = [
        builders.points_layer(appeals, name="未办结诉求"),
        builders.points_layer(hotspots, name="热点"),
        builders.points_layer(suggestions, name="吹哨建议"),
        builders.points_layer(calls, name="吹哨"),
    ]
    m = builders.choropleth_map(
        areas,
        _values(areas),
        caption=f"近{days}天诉求量（件）",
        layers=layers,
        name="网格诉求密度",
        vmin=0,
        vmax=_scale(areas)["vmax"],
    )
    q = _query(days=days, category=category, level="grid", counts_only=1)
    config = {
        "roles": {
            "网格诉求密度": "choropleth",
            "未办结诉求": "appeals",
            "热点": "hotspots",
            "吹哨建议": "suggestions",
            "吹哨": "calls",
        },
        "api": {
            "choropleth": f"/maps/api/areas?{q}",
            "appeals": f"/maps/api/appeals?zoom={zoom}",
            "hotspots": "/maps/api/hotspots",
            "suggestions": "/maps/api/suggestions",
            "calls": "/maps/api/calls",
        },
        "choropleth": _scale(areas),
        "can_whistle": user.role == Role.STREET_OFFICE or user.is_superuser or user.role == Role.ADMIN,
        "street_code": user.area_code if user.role == Role.STREET_OFFICE else "",
    }
    context = {
        "title": "街道热点地图",
        "days": days,
        "windows": WINDOWS,
        "category": category,
        "categories": category_options(),
        "totals": aggregates.totals(window, prefixes),
        "rows": _rates_rows(areas, 20),
        "hotspot_count": len(hotspots["features"]),
        "suggestion_count": len(suggestions["features"]),
        "call_count": len(calls["features"]),
        "appeal_layer": appeals,
    }
    return _render(request, "maps/street.html", page="street", m=m, config=config, context=context)


def _scale(areas):
    """Counts are shaded from zero: an area with no appeals is the palest, not "no data"."""
    hi = max((f["properties"]["count"] for f in areas["features"]), default=0)
    return {"vmin": 0, "vmax": max(hi, 1), "property": "count"}


@login_required
def department(request):
    """部门: whistle calls and tasks addressed to the department, coloured by deadline; 报到 and
    签收 from the map."""
    _allow(request, "department")
    user = request.user
    tasks = selectors.department_tasks(user)
    calls = selectors.calls(user)
    prefixes = jurisdiction(user)
    level = "street" if prefixes is None or all(len(p) <= 6 for p in prefixes) else "grid"
    base = selectors.outlines(level, prefixes, zoom=zoom_for(prefixes) if prefixes is not None else 11)
    m = builders.grid_map(
        base,
        layers=[builders.points_layer(tasks, name="待办诉求"), builders.points_layer(calls, name="吹哨召集")],
        name="辖区",
    )
    config = {
        "roles": {"待办诉求": "tasks", "吹哨召集": "calls"},
        "api": {"tasks": "/maps/api/tasks", "calls": "/maps/api/calls"},
        "can_answer": user.role == Role.DEPARTMENT,
    }
    legend = [(c, selectors.DEADLINE_LABELS[c]) for c in ("red", "orange", "yellow", "green", "gray")]
    context = {
        "title": "部门任务地图",
        "tasks": [f["properties"] for f in tasks["features"]],
        "calls": [f["properties"] for f in calls["features"]],
        "legend": legend,
    }
    return _render(request, "maps/department.html", page="department", m=m, config=config, context=context)


@login_required
def leader(request):
    """领导: heatmap and choropleth at district / street / community / grid level, time range and
    category filters, a weekly time slider, the rates per area."""
    _allow(request, "leader")
    user = request.user
    prefixes = selectors.area_scope(user)
    levels = aggregates.area_levels_for(prefixes)
    if not levels:
        raise PermissionDenied("没有地区辖区")
    default_level = levels[0] if len(levels) == 1 else levels[1] if prefixes is not None else levels[0]
    level = request.GET.get("level") if request.GET.get("level") in levels else default_level
    days = _int_choice(request.GET.get("days"), WINDOWS, 90)
    category = _category(request.GET.get("category"))
    window = Window.last_days(days, category)
    n_grids, extent = scope_grids(prefixes)
    zoom = zoom_for(prefixes, extent=extent)
    # Too many grids to embed (10,000: 4.5 MB): the page draws them from vector tiles, coloured
    # in the browser by the same scale; tiles are WGS-84, so not over a GCJ-02 basemap.
    tiled = level == "grid" and n_grids > settings.MAP_GRID_TILES_ABOVE and get_basemap().crs == "wgs84"
    areas_text, heat_text, totals = aggregates.leader_data(window, prefixes, level=level, zoom=zoom, geometry=not tiled)
    # orjson: these are the page's largest inputs (1,000 community outlines: 0.16 s with json)
    areas, heat = orjson.loads(areas_text), orjson.loads(heat_text)
    heat_layer = builders.heatmap_layer([(lng, lat, n) for lat, lng, n in heat["cells"]], name="热力图")
    drawn = {"type": "FeatureCollection", "features": []} if tiled else _drawn(areas)
    m = builders.choropleth_map(
        drawn,
        _values(areas),
        caption=f"近{days}天诉求量（件）",
        layers=[heat_layer],
        name="诉求分布",
        vmin=0,
        vmax=_scale(areas)["vmax"],
    )
    if tiled and extent:
        w, s, e, n = extent
        m.fit_bounds([[s, w], [n, e]])
    q = _query(days=days, category=category, level=level, counts_only=1)
    config = {
        "roles": {"热力图": "heat"} if tiled else {"诉求分布": "choropleth", "热力图": "heat"},
        "api": {
            # The counts that recolour the areas on an event: the embedded choropleth's, or the
            # tiled grids' (map-page.js adds the view's bbox and restyles the tiles' features).
            "grid_tiles" if tiled else "choropleth": f"/maps/api/areas?{q}",
            "heat": f"/maps/api/heat?{_query(days=days, category=category)}",
            "series": f"/maps/api/heat/weekly?{_query(weeks=13, category=category)}",
        },
        "choropleth": _scale(areas),
        "grid_tiles": f"/maps/tiles/grids/{{z}}/{{x}}/{{y}}.mvt?{_query(days=days, category=category)}"
        if tiled
        else None,
    }
    context = {
        "title": "领导驾驶舱地图",
        "days": days,
        "windows": WINDOWS,
        "category": category,
        "categories": category_options(),
        "level": level,
        "levels": [(lv, LEVEL_LABELS[lv]) for lv in levels],
        "totals": totals,
        "rows": _rates_rows(areas, 100),
        "heat_total": heat["total"],
        "level_label": LEVEL_LABELS[level],
    }
    return _render(request, "maps/leader.html", page="leader", m=m, config=config, context=context)


@login_required
def worker(request):
    """网格员 (phone): my grids, my tasks, my position (shown by the browser, never stored)."""
    _allow(request, "worker")
    user = request.user
    codes = sorted(set(user.grid_codes or []))
    grids = (
        selectors.outlines("grid", None, codes=codes)
        if user.role == Role.GRID_WORKER
        else selectors.outlines("grid", jurisdiction(user), zoom=12)
    )
    tasks = selectors.worker_tasks(user) if user.role == Role.GRID_WORKER else selectors.collection([])
    m = builders.grid_map(
        grids, layers=[builders.points_layer(tasks, name="我的任务")], highlight_codes=codes, name="我的网格"
    )
    config = {
        "roles": {"我的任务": "tasks", "我的网格": "grids"},
        "api": {"tasks": "/maps/api/tasks"},
        "geolocate": True,
    }
    context = {
        "title": "我的网格",
        "grids": [f["properties"] for f in grids["features"]],
        "tasks": [
            {**f["properties"], "lnglat": "{:.6f},{:.6f}".format(*f["geometry"]["coordinates"])}
            for f in tasks["features"]
        ],
    }
    return _render(request, "maps/worker.html", page="worker", m=m, config=config, context=context)


@login_required
def hotline(request):
    """热线中心 / 坐席: appeals waiting for location or dispatch over the whole city, by colour."""
    _allow(request, "hotline")
    user = request.user
    queue = selectors.hotline_queue(user)
    prefixes = jurisdiction(user)
    streets = selectors.outlines("street", prefixes, zoom=11)
    m = builders.grid_map(streets, layers=[builders.points_layer(queue, name="待派单诉求")], name="街道")
    unlocated = (
        appeals_visible_to(user)
        .filter(state=State.UNLOCATED)
        .order_by("received_at", "pk")
        .values("ticket_no", "received_at", "address_text")[:30]
    )
    config = {
        "roles": {"待派单诉求": "queue"},
        "api": {"queue": "/maps/api/queue"},
        "tiles": "/maps/tiles/appeals/{z}/{x}/{y}.mvt" if get_basemap().crs == "wgs84" else None,
    }
    context = {
        "title": "热线派单地图",
        "queue": [f["properties"] for f in queue["features"]],
        "unlocated_count": queue["unlocated"],
        "unlocated": list(unlocated),
        "now": timezone.now(),
    }
    return _render(request, "maps/hotline.html", page="hotline", m=m, config=config, context=context)


__all__ = ["LEVEL_LENGTH", "department", "hotline", "index", "leader", "street", "worker"]
