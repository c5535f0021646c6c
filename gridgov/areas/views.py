"""Area endpoints: locate one point, locate many, GeoJSON per level. Thin: parse, call, render."""

from typing import Any

from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.db.models.functions import AsGeoJSON
from django.db.models import Func
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_gis.filters import InBBoxFilter

from gridgov import schema as doc
from gridgov.accounts.access import code_checker, code_in_jurisdiction, scope_codes
from gridgov.api import BulkJSONRenderer, GeoJsonPagination

from . import serializers as s
from .locate import BadPoint, locate, locate_many
from .models import LEVELS

LOCATED = doc.obj(
    {
        "match": {"type": "string", "enum": ["inside", "nearest", "outside"]},
        "grid_id": doc.INT,
        "grid_code": doc.STR,
        "grid_name": doc.nullable(doc.STR),
        "grid_version": doc.INT,
        "community_code": doc.STR,
        "community_name": doc.nullable(doc.STR),
        "street_code": doc.STR,
        "street_name": doc.nullable(doc.STR),
        "district_code": doc.STR,
        "district_name": doc.nullable(doc.STR),
        "distance_m": doc.NUM,
        "in_jurisdiction": doc.BOOL,
        "grid": {"nullable": True, "description": "null when outside"},
        "message": doc.STR,
    },
    optional=(
        "grid_id",
        "grid_code",
        "grid_name",
        "grid_version",
        "community_code",
        "community_name",
        "street_code",
        "street_name",
        "district_code",
        "district_name",
        "distance_m",
        "in_jurisdiction",
        "grid",
        "message",
    ),
    description="inside / nearest: the grid chain and in_jurisdiction; outside: grid null and a message",
)


def located_answer(user, chain):
    if chain is None:
        return {
            "match": "outside",
            "grid": None,
            "message": "该位置不在本市任何网格内 / the point is outside every grid of the city",
        }
    data = chain.as_dict()
    data["in_jurisdiction"] = code_in_jurisdiction(user, chain.grid_code)
    return data


class LocateApi(APIView):
    """GET /api/v1/locate?lng=&lat=&crs=gcj02 → the grid chain (or 'outside')."""

    @extend_schema(operation_id="locate", parameters=[s.LocateQuery], responses=doc.responses(LOCATED, 400, 401))
    def get(self, request):
        q = s.LocateQuery(data=request.query_params)
        q.is_valid(raise_exception=True)
        try:
            chain = locate(
                q.validated_data["lng"], q.validated_data["lat"], q.validated_data["crs"], at=q.validated_data["at"]
            )
        except BadPoint as exc:
            return Response({"detail": str(exc), "code": "bad_point"}, status=400)
        return Response(located_answer(request.user, chain))


class LocateBulkApi(APIView):
    """POST /api/v1/locate/bulk {"crs": "gcj02", "points": [[lng, lat], ...]} → answers in order."""

    renderer_classes = [BulkJSONRenderer]

    @extend_schema(
        operation_id="locate_bulk",
        request=s.LocateBulk,
        responses=doc.responses(doc.obj({"count": doc.INT, "results": doc.array(LOCATED)}), 400, 401),
    )
    def post(self, request):
        q = s.LocateBulk(data=request.data)
        q.is_valid(raise_exception=True)
        try:
            chains = locate_many(q.validated_data["points"], q.validated_data["crs"], at=q.validated_data["at"])
        except BadPoint as exc:
            return Response({"detail": str(exc), "code": "bad_point"}, status=400)
        mine = code_checker(request.user)  # the jurisdiction asked once, not once per point
        outside = located_answer(request.user, None)
        answers: dict[Any, Any] = {}  # one answer dict per chain object, shared by the points it answers
        results = []
        for c in chains:
            if c is None:
                results.append(outside)
                continue
            a = answers.get(id(c))
            if a is None:
                a = answers[id(c)] = {**vars(c), "in_jurisdiction": mine(c.grid_code)}
            results.append(a)
        return Response({"count": len(results), "results": results})


class SimplifyPreserveTopology(Func):
    function = "ST_SimplifyPreserveTopology"
    output_field = GeometryField(srid=4326)


def tolerance_for_zoom(zoom):
    """Degrees that are about a quarter of a screen pixel at this web-mercator zoom."""
    if zoom is None:
        return 0.0
    return 360.0 / (256 * 2**zoom) / 4


class AreaPagination(GeoJsonPagination):
    page_size = 1000
    page_size_query_param = "page_size"
    max_page_size = 5000


class AreaGeoJsonApi(generics.ListAPIView):
    """GET /api/v1/areas/<level>/?in_bbox=minx,miny,maxx,maxy&zoom=13&parent=110101001&at=..."""

    filter_backends = [InBBoxFilter]
    bbox_filter_field = "geom"
    bbox_filter_include_overlapping = True
    pagination_class = AreaPagination

    @extend_schema(
        operation_id="areas_list",
        parameters=[
            OpenApiParameter("level", str, OpenApiParameter.PATH, enum=list(LEVELS)),
            s.AreaQuery,
            OpenApiParameter("in_bbox", str, description="minx,miny,maxx,maxy (WGS-84): areas overlapping it"),
        ],
        responses=doc.responses(
            doc.paged_features(
                doc.obj(
                    {
                        "code": doc.STR,
                        "name": doc.STR,
                        "version": doc.INT,
                        "valid_from": doc.DATETIME,
                        "valid_to": doc.nullable(doc.DATETIME),
                        "level": doc.STR,
                    }
                )
            ),
            400,
            401,
            404,
        ),
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_model(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, without a URL
            return LEVELS["grid"]
        model = LEVELS.get(self.kwargs["level"])
        if model is None:
            raise Http404("unknown level")
        return model

    def get_serializer_class(self):
        return s.area_serializer(self.get_model())

    def get_queryset(self):
        model = self.get_model()
        q = s.AreaQuery(data=self.request.query_params)
        q.is_valid(raise_exception=True)
        qs = scope_codes(model.objects.at(q.validated_data["at"]), self.request.user, with_ancestors=True)
        if q.validated_data["parent"]:
            qs = qs.filter(code__startswith=q.validated_data["parent"])
        tol = tolerance_for_zoom(q.validated_data["zoom"])
        geom = SimplifyPreserveTopology("geom", tol) if tol else "geom"
        return qs.annotate(geom_json=AsGeoJSON(geom, precision=6)).defer("geom").order_by("code")
