"""Map data endpoints under /maps/api/ and /maps/tiles/. Thin: parse the query, scope by the
viewer's jurisdiction, call maps.aggregates or maps.selectors, send what PostGIS built.

Outsiders: a `parent` outside the viewer's jurisdiction is 404 (as if it did not exist);
a viewer with no area jurisdiction (department staff) gets 403 on area data.
"""

import html
import json
from datetime import timedelta

from django.contrib.gis.geos import Polygon
from django.http import Http404, HttpResponse, JsonResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.views import APIView

from gridgov import schema as doc
from gridgov.accounts.models import Role
from gridgov.appeals.models import WarningColour
from gridgov.appeals.workflow import OPEN_STATES
from gridgov.areas.coords import wgs84_to_gcj02

from . import aggregates, selectors
from .aggregates import LEVEL_LENGTH, Window

WINDOW_DAYS = (7, 30, 90)
MAX_RANGE_DAYS = 731


def narrow(prefixes, parent):
    """The viewer's prefixes narrowed to `parent`; Http404 when `parent` is outside them."""
    if not parent:
        return prefixes
    if prefixes is None:
        return [parent]
    if any(parent.startswith(p) for p in prefixes):
        return [parent]
    inside = [p for p in prefixes if p.startswith(parent)]
    if inside:
        return inside
    raise Http404("不在辖区内 / not in your jurisdiction")


class WindowQuery(serializers.Serializer):
    days = serializers.IntegerField(required=False, min_value=1, max_value=MAX_RANGE_DAYS)
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)  # inclusive, as a person says "to the 31st"
    category = serializers.RegexField(r"^(\d{2}){0,3}$", required=False, allow_blank=True, default="")
    parent = serializers.RegexField(r"^\d{6}(\d{3}){0,3}$", required=False, allow_blank=True, default="")

    def validate(self, data):
        since, until = data.get("since"), data.get("until")
        if since or until:
            if not (since and until):
                raise serializers.ValidationError("since 与 until 须同时给出 / give both since and until")
            if until < since:
                raise serializers.ValidationError("until 早于 since / until is before since")
            if (until - since).days >= MAX_RANGE_DAYS:
                raise serializers.ValidationError(f"时间范围不超过{MAX_RANGE_DAYS}天 / at most {MAX_RANGE_DAYS} days")
            data["window"] = Window(since, until + timedelta(days=1), data["category"])
        else:
            data["window"] = Window.last_days(data.get("days") or 30, data["category"])
        return data


class SeriesQuery(serializers.Serializer):
    weeks = serializers.IntegerField(required=False, min_value=1, max_value=53, default=13)
    category = serializers.RegexField(r"^(\d{2}){0,3}$", required=False, allow_blank=True, default="")
    parent = serializers.RegexField(r"^\d{6}(\d{3}){0,3}$", required=False, allow_blank=True, default="")


class BboxQuery(serializers.Serializer):
    bbox = serializers.RegexField(
        r"^-?[\d.]+,-?[\d.]+,-?[\d.]+,-?[\d.]+$", required=False, allow_blank=True, default=""
    )

    def validate_bbox(self, value):
        if not value:
            return None
        try:  # the pattern lets "4.0." and "." through
            w, s, e, n = (float(v) for v in value.split(","))
        except ValueError:
            w = s = e = n = None
        if w is None or not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
            raise serializers.ValidationError("bbox 须为 west,south,east,north / expected west,south,east,north")
        poly = Polygon.from_bbox((w, s, e, n))
        poly.srid = 4326
        return poly


class PointsQuery(BboxQuery):
    zoom = serializers.IntegerField(required=False, min_value=0, max_value=22, default=13)
    colour = serializers.MultipleChoiceField(choices=WarningColour.values, required=False)
    state = serializers.MultipleChoiceField(choices=sorted(OPEN_STATES), required=False)
    grid = serializers.RegexField(r"^\d{6,15}$", required=False, allow_blank=True, default="")
    crs = serializers.ChoiceField(choices=["wgs84", "gcj02"], required=False, default="wgs84")


class AreaQuery(BboxQuery, WindowQuery):
    level = serializers.ChoiceField(choices=list(LEVEL_LENGTH), default="grid")
    zoom = serializers.IntegerField(required=False, min_value=0, max_value=22, allow_null=True, default=None)
    counts_only = serializers.BooleanField(required=False, default=False)
    # The areas that live events named (a page recolouring what changed), at most 500.
    codes = serializers.RegexField(r"^\d{6,15}(,\d{6,15}){0,499}$", required=False, allow_blank=True, default="")


RATES = {
    "count": doc.INT,
    "dispatched": doc.INT,
    "responded": doc.INT,
    "due": doc.INT,
    "resolved": doc.INT,
    "response_rate": doc.nullable(doc.NUM),
    "resolution_rate": doc.nullable(doc.NUM),
}
AREA_COUNTS = doc.feature_collection(
    doc.obj(
        {"code": doc.STR, "name": doc.STR, "level": doc.STR, **RATES},
        optional=("name", "level", *(k for k in RATES if k != "count")),
    ),
    geometry={**doc.GEOMETRY, "description": "Polygon / MultiPolygon, null with counts_only"},
)
HEAT = doc.obj(
    {"cells": doc.array(doc.array(doc.NUM)), "total": doc.INT, "max": doc.INT},
    description="cells: [[lat, lng, count], ...] per grid",
)
HEAT_SERIES = doc.obj(
    {"periods": doc.array(doc.STR), "cells": doc.array(doc.array({}))},
    description="periods: the weeks' Mondays; cells: [[lat, lng, [count per week]], ...]",
)
LAYER = doc.feature_collection(doc.obj({"label": doc.STR}, optional=("label",)), extra={"clustered": doc.BOOL})
LAYER["required"] = ["type", "features"]  # clustered: the appeals layer only
# Vector tiles: binary protobuf, not JSON.
TILE = {
    (200, "application/vnd.mapbox-vector-tile"): OpenApiResponse(
        {"type": "string", "format": "binary"}, description="Mapbox vector tile"
    )
}
TILE_PARAMETERS = [
    OpenApiParameter(
        n, {"type": "integer", "minimum": 0, "maximum": 2**22 - 1 if n != "z" else 22}, OpenApiParameter.PATH
    )
    for n in ("z", "x", "y")
]
# Each answer's errors: 400 bad query, 401, 403 no area jurisdiction, 404 parent outside it.
MAP_ERRORS = (400, 401, 403, 404)


def _parse(serializer_class, request):
    q = serializer_class(data=request.query_params)
    q.is_valid(raise_exception=True)
    return q.validated_data


def area_prefixes(request, parent=""):
    prefixes = selectors.area_scope(request.user)
    if prefixes == []:
        raise PermissionDenied("没有地区辖区 / no area jurisdiction")
    return narrow(prefixes, parent)


def json_text(text):
    return HttpResponse(text, content_type="application/json; charset=utf-8")


def to_crs(fc, crs):
    """Point features for a GCJ-02 basemap (AMap): shifted as maps.builders shifts its layers."""
    if crs != "gcj02":
        return fc
    for f in fc["features"]:
        lng, lat = f["geometry"]["coordinates"][:2]
        x, y = wgs84_to_gcj02(lng, lat)
        f["geometry"]["coordinates"] = [round(float(x), 6), round(float(y), 6)]
    return fc


def escaped(fc):
    """Labels go into folium's tooltip as HTML: escape them as the builders do."""
    for f in fc["features"]:
        props = f["properties"]
        if isinstance(props.get("label"), str):
            props["label"] = html.escape(props["label"])
    return fc


@extend_schema_view(
    get=extend_schema(
        operation_id="maps_areas", parameters=[AreaQuery], responses=doc.responses(AREA_COUNTS, *MAP_ERRORS)
    )
)
class AreaCountsApi(APIView):
    """GET /maps/api/areas?level=grid&days=30&category=01&zoom=13&parent=&counts_only=&bbox=&codes= — current
    areas of the level inside the viewer's jurisdiction with appeal counts and the rates
    (GeoJSON); with counts_only=1 only each area's code and count, no geometry (page refresh);
    with bbox=w,s,e,n only the areas in that view (the leader's tiled grids); with codes=a,b,… only
    those areas (what live events named)."""

    def get(self, request):
        q = _parse(AreaQuery, request)
        prefixes = area_prefixes(request, q["parent"])
        if q["level"] not in aggregates.area_levels_for(selectors.area_scope(request.user)):
            raise Http404("该层级不在辖区内 / level above your jurisdiction")
        return json_text(
            aggregates.area_counts_geojson(
                q["window"],
                prefixes,
                level=q["level"],
                zoom=q["zoom"],
                counts_only=q["counts_only"],
                bbox=q["bbox"].extent if q["bbox"] else None,
                codes=q["codes"].split(",") if q["codes"] else None,
            )
        )


@extend_schema_view(
    get=extend_schema(operation_id="maps_heat", parameters=[WindowQuery], responses=doc.responses(HEAT, *MAP_ERRORS))
)
class HeatApi(APIView):
    """GET /maps/api/heat?days=90&category=&parent= — heat cells per grid:
    {"cells": [[lat, lng, count], ...], "total", "max"}."""

    def get(self, request):
        q = _parse(WindowQuery, request)
        return json_text(aggregates.heat_cells_json(q["window"], area_prefixes(request, q["parent"])))


@extend_schema_view(
    get=extend_schema(
        operation_id="maps_heat_weekly", parameters=[SeriesQuery], responses=doc.responses(HEAT_SERIES, *MAP_ERRORS)
    )
)
class HeatSeriesApi(APIView):
    """GET /maps/api/heat/weekly?weeks=13&category= — per-week heat cells for the time slider."""

    def get(self, request):
        q = _parse(SeriesQuery, request)
        prefixes = area_prefixes(request, q["parent"])
        return json_text(aggregates.weekly_series_json(q["weeks"], prefixes, q["category"]))


@extend_schema_view(
    get=extend_schema(
        operation_id="maps_totals", parameters=[WindowQuery], responses=doc.responses(doc.obj(RATES), *MAP_ERRORS)
    )
)
class TotalsApi(APIView):
    """GET /maps/api/totals?days=30&category=&parent= — the jurisdiction's count and rates."""

    def get(self, request):
        q = _parse(WindowQuery, request)
        return JsonResponse(aggregates.totals(q["window"], area_prefixes(request, q["parent"])))


@extend_schema_view(
    get=extend_schema(operation_id="maps_appeals", parameters=[PointsQuery], responses=doc.responses(LAYER, 400, 401))
)
class OpenAppealsApi(APIView):
    """GET /maps/api/appeals?zoom=13&bbox=w,s,e,n&colour=red&state=dispatched — open appeals the
    viewer may see as points, clustered in the database when there are many."""

    def get(self, request):
        q = _parse(PointsQuery, request)
        fc = aggregates.open_appeal_points(
            request.user, zoom=q["zoom"], states=q.get("state"), colours=q.get("colour"), grid=q["grid"], bbox=q["bbox"]
        )
        return JsonResponse(escaped(to_crs(fc, q["crs"])))


@extend_schema_view(
    get=extend_schema(
        operation_id="maps_tiles_appeals", parameters=TILE_PARAMETERS, responses={**TILE, **doc.errors(401, 404)}
    )
)
class AppealTileApi(APIView):
    """GET /maps/tiles/appeals/<z>/<x>/<y>.mvt — open appeals as a Mapbox vector tile (layer
    "appeals"): points from zoom 14, counted cells below."""

    def get(self, request, z, x, y):
        if z > 22 or not (0 <= x < 2**z and 0 <= y < 2**z):
            raise Http404("no such tile")
        data = aggregates.appeals_tile(request.user, z, x, y)
        response = HttpResponse(data, content_type="application/vnd.mapbox-vector-tile")
        response["Cache-Control"] = "private, max-age=30"
        return response


@extend_schema_view(
    get=extend_schema(
        operation_id="maps_tiles_grids",
        parameters=[*TILE_PARAMETERS, WindowQuery],
        responses={**TILE, **doc.errors(*MAP_ERRORS)},
    )
)
class GridTileApi(APIView):
    """GET /maps/tiles/grids/<z>/<x>/<y>.mvt?days=90&category=&parent= — the viewer's current
    grids crossing the tile as a Mapbox vector tile (layer "grids": code, name, count of appeals
    in the window): the leader's grid choropleth over a scope too large to embed."""

    def get(self, request, z, x, y):
        if z > 22 or not (0 <= x < 2**z and 0 <= y < 2**z):
            raise Http404("no such tile")
        q = _parse(WindowQuery, request)
        prefixes = area_prefixes(request, q["parent"])
        data = aggregates.grids_tile(q["window"], prefixes, z, x, y)
        response = HttpResponse(data, content_type="application/vnd.mapbox-vector-tile")
        response["Cache-Control"] = "private, max-age=60"
        return response


@extend_schema_view(get=extend_schema(parameters=[PointsQuery], responses=doc.responses(LAYER, 400, 401, 403)))
class LayerApi(APIView):
    """GET /maps/api/<layer> for the small layers: hotspots, suggestions, calls, tasks, queue."""

    layer = None
    roles = None  # None: anyone signed in (the selector scopes)

    def get(self, request):
        user = request.user
        if self.roles is not None and not (user.is_superuser or user.role in self.roles):
            raise PermissionDenied("本角色没有此图层 / not a layer for your role")
        q = _parse(PointsQuery, request)
        fc = self.features(user)
        return JsonResponse(escaped(to_crs(fc, q["crs"])))

    def features(self, user):
        raise NotImplementedError


class HotspotsApi(LayerApi):
    def features(self, user):
        return selectors.hotspots(user)


class SuggestionsApi(LayerApi):
    def features(self, user):
        return selectors.suggestions(user)


class CallsApi(LayerApi):
    def features(self, user):
        return selectors.calls(user)


class TasksApi(LayerApi):
    roles = {Role.DEPARTMENT, Role.GRID_WORKER, Role.ADMIN}

    def features(self, user):
        if user.role == Role.GRID_WORKER:
            return selectors.worker_tasks(user)
        return selectors.department_tasks(user)


class QueueApi(LayerApi):
    roles = {Role.OPERATOR, Role.HOTLINE_CENTER, Role.ADMIN}

    def features(self, user):
        return selectors.hotline_queue(user)


def dumps(value):
    return json.dumps(value, ensure_ascii=False, default=str)
