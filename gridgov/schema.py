"""What the OpenAPI schema (drf-spectacular, /api/schema/) shares across the APIs: the error
answers, the Idempotency-Key header, GeoJSON and the small JSON-Schema builders the views'
@extend_schema use for answers built as dicts. The views keep their decorators; this module
only keeps them short and the same everywhere."""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

# --- JSON Schema builders (for answers built as dicts, not by serializers) -------------------

STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
DATETIME = {"type": "string", "format": "date-time"}
ANY_OBJECT = {"type": "object", "additionalProperties": True}
LNGLAT = {"type": "array", "items": NUM, "minItems": 2, "maxItems": 2, "description": "[lng, lat]"}


def nullable(schema):
    return {**schema, "nullable": True}


def array(items):
    return {"type": "array", "items": items}


def obj(properties, *, optional=(), description=None):
    """An object with these properties, all present unless named in `optional`; further keys
    are allowed (answers gain fields, clients ignore what they do not know)."""
    schema = {"type": "object", "properties": properties}
    required = [k for k in properties if k not in optional]
    if required:  # OpenAPI 3.0: a `required` list is never empty
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def code_name(nullable_=True):
    schema = obj({"code": STR, "name": STR})
    return nullable(schema) if nullable_ else schema


# --- GeoJSON (RFC 7946) ----------------------------------------------------------------------

GEOMETRY = {
    "type": "object",
    "description": "GeoJSON geometry (WGS-84 unless the operation says otherwise)",
    "properties": {
        "type": {
            "type": "string",
            "enum": [
                "Point",
                "MultiPoint",
                "LineString",
                "MultiLineString",
                "Polygon",
                "MultiPolygon",
                "GeometryCollection",
            ],
        },
        "coordinates": {"type": "array"},
    },
    "required": ["type"],
}


class AreaFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "gridgov.whistles.serializers.AreaField"
    priority = 1  # before rest_framework_gis's GeometryField extension, which needs a model field

    def map_serializer_field(self, auto_schema, direction):
        return {**GEOMETRY, "description": "GeoJSON Polygon / MultiPolygon (WGS-84)"}


def feature(properties, *, geometry=GEOMETRY, id_=True):
    props = {"type": {"type": "string", "enum": ["Feature"]}, "geometry": nullable(geometry), "properties": properties}
    if id_:
        props["id"] = {"oneOf": [INT, STR]}
    return obj(props, optional=("id",))


def feature_collection(properties, *, geometry=GEOMETRY, extra=None, id_=True):
    return obj(
        {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": array(feature(properties, geometry=geometry, id_=id_)),
            **(extra or {}),
        }
    )


def paged_features(properties, *, geometry=GEOMETRY, id_=True):
    """A feature of a ListAPIView paged by rest_framework_gis's GeoJsonPagination: drf-spectacular
    wraps it into the FeatureCollection with count, next and previous, and adds page and
    page_size."""
    return feature(properties, geometry=geometry, id_=id_)


def paged(items):
    """DRF's PageNumberPagination."""
    return obj(
        {
            "count": INT,
            "next": nullable({"type": "string", "format": "uri"}),
            "previous": nullable({"type": "string", "format": "uri"}),
            "results": array(items),
        }
    )


PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="1, 2, ..."),
    OpenApiParameter("page_size", int, description="per page (capped by the operation)"),
]

# --- errors ------------------------------------------------------------------------------------


class ErrorOutput(serializers.Serializer):
    """Every refusal (gridgov.api.exception_handler and the views' own): a bilingual message
    and a code to branch on, with the code's extras (illegal_transition: state, allowed;
    outside_geofence: distance_m, geofence_m; out_of_order: required_first, state;
    evidence_missing: missing, required; idempotency_key_reused: method, path)."""

    detail = serializers.CharField()
    code = serializers.CharField()


ERROR = obj({"detail": STR, "code": STR}, description="错误 / error: {detail, code, ...the code's extras}")
# DRF's ValidationError from an input serializer: {field: [messages]} (nested for lists and
# objects), or {"non_field_errors": [...]}.
FIELD_ERRORS = {
    "type": "object",
    "description": "字段错误 / field errors: {field: [messages]}",
    "additionalProperties": {"anyOf": [array(STR), ANY_OBJECT, STR]},
}
BAD_REQUEST = {"anyOf": [ERROR, FIELD_ERRORS]}

_DESCRIPTIONS = {
    400: "输入有误 / bad input: the error shape ({detail, code, ...}) or field errors ({field: [messages]})",
    401: "未登录或令牌无效 / not authenticated (or the token expired)",
    403: "无权 / not allowed for this user",
    404: "不存在或不在您的范围 / no such object in your sight",
    409: "当前状态不允许此操作 / the workflow does not allow this step now (state, allowed)",
    422: "幂等键已用于另一个请求 / this Idempotency-Key was used for a different request",
    429: "请求过于频繁 / throttled (Retry-After)",
}


def errors(*codes):
    """{status: OpenApiResponse} for these error statuses: 400 the error shape or field errors,
    the others the error shape."""
    out = {}
    for code in codes:
        schema = BAD_REQUEST if code == 400 else ErrorOutput
        out[code] = OpenApiResponse(schema, description=_DESCRIPTIONS[code])
    return out


def responses(ok, *codes, status=200):
    """A view's answers: `ok` under `status` (or a dict of successes) and the error statuses."""
    # A dict keyed by status codes is several successes; any other dict is a raw JSON Schema.
    several = isinstance(ok, dict) and ok and all(isinstance(k, int) for k in ok)
    found = dict(ok) if several else {status: ok}
    return {**found, **errors(*codes)}


# --- path parameters --------------------------------------------------------------------------

# Django's <int:pk> matches digits only, <str:...> anything but a slash; a path the URL
# patterns do not match is Django's own 404 page, not an answer of the API.
ID_PARAMETER = OpenApiParameter("id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH)
TICKET_NO_PATTERN = r"^[0-9A-Za-z-]{1,20}$"
TICKET_PARAMETER = OpenApiParameter(
    "ticket_no",
    {"type": "string", "pattern": TICKET_NO_PATTERN},
    OpenApiParameter.PATH,
    description="工单编号 / ticket number",
)


# --- the phone API's Idempotency-Key ------------------------------------------------------------

# gridgov/idempotency/replay.py accepts 1–255 visible ASCII characters (33–126).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    pattern=IDEMPOTENCY_KEY_PATTERN,
    description="任意唯一值（建议UUID）：同一用户同一键的重复请求返回首次结果，不会重复执行 / a unique value (a UUID) "
    "per action, 1–255 visible ASCII characters: a retry with the same key gets the first answer back "
    "(header Idempotent-Replayed: true) and changes nothing; the same key with a different body is "
    "refused (422), a malformed key 400 bad_idempotency_key. A `client_id` UUID field in the body works "
    "the same way.",
)
