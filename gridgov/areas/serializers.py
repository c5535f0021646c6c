import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from .coords import CRS_ALIASES, UnknownCRS, normalise_crs


# Read case-insensitively; what the schema lists are the spellings in CRS_ALIASES.
@extend_schema_field({"type": "string", "enum": list(CRS_ALIASES)})
class CRSField(serializers.CharField):
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
    lng = serializers.FloatField(min_value=-180, max_value=180)
    lat = serializers.FloatField(min_value=-90, max_value=90)
    crs = CRSField(required=False, default="wgs84", help_text=", ".join(sorted(set(CRS_ALIASES))))
    at = serializers.DateTimeField(required=False, default=None, help_text="boundaries in force at this time")


@extend_schema_field({"type": "array", "items": {"type": "array", "items": {"type": "number"}, "minItems": 2,
                                                  "maxItems": 2}, "description": "[[lng, lat], ...]"})
class PointListField(serializers.ListField):
    """A list taken as it is: locate_many checks it as one array and names the first bad item
    (DRF's per-item validation would cost more than locating the points)."""

    def run_child_validation(self, data):
        return data


class LocateBulk(serializers.Serializer):
    MAX_POINTS = 100_000
    crs = CRSField(required=False, default="wgs84")
    at = serializers.DateTimeField(required=False, default=None)
    # Checked as one array in locate_many (per-item DRF fields cost more than the lookup).
    points = PointListField(min_length=1, max_length=MAX_POINTS, help_text="[[lng, lat], ...]")


class AreaQuery(serializers.Serializer):
    zoom = serializers.IntegerField(required=False, min_value=0, max_value=22, default=None)
    at = serializers.DateTimeField(required=False, default=None)
    parent = serializers.RegexField(r"^\d{6}(\d{3}){0,2}$", required=False, default="")


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
