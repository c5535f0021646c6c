import json
from itertools import chain

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from gridgov import inputs

from .coords import CRS_ALIASES, UnknownCRS, normalise_crs


# Read case-insensitively; what the schema lists are the spellings in CRS_ALIASES.
@extend_schema_field({"type": "string", "enum": list(CRS_ALIASES)})
class CRSField(inputs.CharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            key = normalise_crs(value)
        except UnknownCRS as exc:
            raise serializers.ValidationError(str(exc)) from None
        if key not in ("wgs84", "gcj02", "bd09"):
            raise serializers.ValidationError("只支持 wgs84 / gcj02 / bd09 / only wgs84, gcj02, bd09")
        return key


class LocateQuery(serializers.Serializer):
    lng = inputs.FloatField(min_value=-180, max_value=180)
    lat = inputs.FloatField(min_value=-90, max_value=90)
    crs = CRSField(required=False, default="wgs84", help_text=", ".join(sorted(set(CRS_ALIASES))))
    at = inputs.DateTimeField(required=False, default=None, help_text="boundaries in force at this time")


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "description": "[[lng, lat], ...]",
    }
)
class PointListField(serializers.ListField):
    """A list taken as it is: locate_many checks it as one array and names the first bad item
    (DRF's per-item validation would cost more than locating the points). Only its numbers'
    types are checked here, as inputs.FloatField would (numpy reads "116.4" and true as numbers):
    ~8 ms for 100,000 points."""

    def run_child_validation(self, data):
        try:
            types = set(map(type, chain.from_iterable(data)))
        except TypeError:  # an item that is not a pair: locate_many names it
            return data
        if types <= {int, float}:
            return data
        for i, point in enumerate(data):
            if not all(type(v) in (int, float) for v in point):
                raise serializers.ValidationError(
                    f"第 {i + 1} 个点的经纬度须为数字 / point #{i}: lng and lat must be numbers", code="invalid"
                )
        return data


class LocateBulk(serializers.Serializer):
    MAX_POINTS = 100_000
    crs = CRSField(required=False, default="wgs84")
    at = inputs.DateTimeField(required=False, default=None)
    # Checked as one array in locate_many (per-item DRF fields cost more than the lookup).
    points = PointListField(min_length=1, max_length=MAX_POINTS, help_text="[[lng, lat], ...]")


class AreaQuery(serializers.Serializer):
    zoom = inputs.IntegerField(required=False, min_value=0, max_value=22, default=None)
    at = inputs.DateTimeField(required=False, default=None)
    parent = inputs.RegexField(r"^\d{6}(\d{3}){0,2}$", required=False, default="")  # type: ignore[assignment]


def area_serializer(model_cls):
    class AreaFeature(GeoFeatureModelSerializer):
        level = serializers.SerializerMethodField()
        geom = serializers.SerializerMethodField()

        class Meta:
            model = model_cls
            geo_field = "geom"
            fields = ["id", "code", "name", "version", "valid_from", "valid_to", "level"]

        def get_level(self, obj):
            return model_cls.LEVEL

        def get_geom(self, obj):
            # The view annotates geom_json (simplified for the zoom, in PostGIS).
            return json.loads(obj.geom_json)

    AreaFeature.__name__ = f"{model_cls.__name__}Feature"
    return AreaFeature
