"""Input and output of the phone API. Inputs validate, outputs describe; views only glue."""

import json

from rest_framework import serializers
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from gridgov import inputs
from gridgov.accounts.access import jurisdiction
from gridgov.areacodes import street_code_of
from gridgov.areas.models import Grid, parent_code
from gridgov.realtime.broadcast import groups_for


class LoginInput(serializers.Serializer):
    username = inputs.CharField(max_length=150, trim_whitespace=True)
    password = inputs.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})


class DepartmentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class ProfileOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    display_name = serializers.SerializerMethodField()
    role = serializers.CharField()
    role_display = serializers.CharField(source="get_role_display")
    jurisdiction = serializers.SerializerMethodField(help_text="area-code prefixes; null = the whole city")
    department = DepartmentOutput(allow_null=True)
    realtime_groups = serializers.SerializerMethodField(help_text="groups /ws/v1/events/ joins")

    def get_display_name(self, user) -> str:
        return user.get_full_name() or user.username

    def get_jurisdiction(self, user) -> list[str] | None:
        return jurisdiction(user)

    def get_realtime_groups(self, user) -> list[str]:
        return groups_for(user)


class LoginOutput(serializers.Serializer):
    token = serializers.CharField()
    expiry = serializers.DateTimeField()
    user = ProfileOutput()


class GridFeature(GeoFeatureModelSerializer):
    street_code = serializers.SerializerMethodField()
    community_code = serializers.SerializerMethodField()
    geom = serializers.SerializerMethodField()

    class Meta:
        model = Grid
        geo_field = "geom"
        id_field = False  # the code is the identity, in properties
        fields = ["code", "name", "version", "valid_from", "community_code", "street_code"]

    def get_community_code(self, grid) -> str:
        return parent_code(grid.code)

    def get_street_code(self, grid) -> str:
        return street_code_of(grid.code)

    def get_geom(self, grid) -> dict:
        # Serialised by PostGIS (views annotate geom_json): no GEOS round trip per grid.
        return json.loads(grid.geom_json)
