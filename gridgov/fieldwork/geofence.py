"""Geofenced check-in: where a phone says it is, how far that is from the place of the work
on the WGS-84 spheroid, and whether that counts as on site (GEOFENCE_METRES, GEOFENCE_MODE).

The caller names the place (an appeal's position or grid, a whistle call's place or area) and
keeps the record; this module decides, so a task and a muster can never measure differently.
"""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models import F, FloatField, Func, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from gridgov.areas import coords
from gridgov.areas.locate import check_lnglat

MODES = ("refuse", "flag")
_POINT = "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography"


def _geography() -> GeometryField:
    return GeometryField(srid=4326, geography=True)


LngLat = tuple[float, float]


@dataclass(frozen=True)
class Position:
    """A phone's position as it was sent (any of wgs84 / gcj02 / bd09) and in WGS-84."""

    lng: float
    lat: float
    crs: str
    wgs84: LngLat

    @property
    def point(self) -> Point:
        return Point(*self.wgs84, srid=4326)

    def as_sent(self) -> dict:
        return {"lng": self.lng, "lat": self.lat, "crs": self.crs}


def position(lng: object, lat: object, crs: str | None = "wgs84") -> Position:
    """Check and convert what a phone sent; BadPoint / UnknownCRS for what is not a position."""
    x, y = check_lnglat(lng, lat)
    name = coords.normalise_crs(crs)
    wlng, wlat = (float(v) for v in coords.to_wgs84(x, y, name))
    return Position(lng=x, lat=y, crs=name, wgs84=(wlng, wlat))


def distances(queryset: QuerySet, at: Position, *fields: str) -> list[float | None]:
    """Metres on the spheroid from `at` to each geometry field (joins allowed, e.g. "grid__geom")
    of the one row of `queryset`: 0 inside a polygon, None where the field is empty."""
    names = [f"_fence_d{i}" for i in range(len(fields))]
    here = RawSQL(_POINT, at.wgs84, output_field=_geography())
    row = (
        queryset.annotate(
            **{
                name: Func(Cast(F(field), _geography()), here, function="ST_Distance", output_field=FloatField())
                for name, field in zip(names, fields)
            }
        )
        .values_list(*names)
        .get()
    )
    return [None if d is None else float(d) for d in row]


def geodesic(pairs: list[tuple[LngLat | None, LngLat | None]]) -> list[float | None]:
    """Metres on the spheroid (to 0.1 m) for each ((lng, lat), (lng, lat)) WGS-84 pair, in one
    query; None where a side is None."""
    todo = [(i, a, b) for i, (a, b) in enumerate(pairs) if a is not None and b is not None]
    out: list[float | None] = [None] * len(pairs)
    if not todo:
        return out
    cols = ", ".join(f"ST_Distance({_POINT}, {_POINT})" for _ in todo)
    params = [float(v) for _, a, b in todo for v in (*a, *b)]
    with connection.cursor() as cur:
        cur.execute(f"SELECT {cols}", params)
        row = cur.fetchone()
    for (i, _, _), d in zip(todo, row):
        out[i] = round(float(d), 1)
    return out


@dataclass(frozen=True)
class Decision:
    """The geofence's answer to one check-in: how far, the fence, and what the mode makes of it.
    `distance_m` None: there was nothing to measure to (neither refused nor flagged)."""

    distance_m: float | None
    geofence_m: float
    mode: str

    @property
    def inside(self) -> bool | None:
        return None if self.distance_m is None else self.distance_m <= self.geofence_m

    @property
    def refused(self) -> bool:
        return self.inside is False and self.mode == "refuse"

    @property
    def flagged(self) -> bool:
        return self.inside is False and self.mode == "flag"

    def refusal(self, place_zh: str, place_en: str, act_zh: str) -> tuple[str, dict]:
        """(message, extras) of the 400 answer to a refused check-in, e.g. ("诉求位置",
        "the appeal's position", "签到")."""
        d, fence = self.distance_m or 0.0, self.geofence_m
        message = (
            f"距{place_zh}{d:.0f}米，超出{fence:.0f}米{act_zh}范围 / {d:.0f} m from {place_en}, "
            f"beyond the {fence:.0f} m geofence"
        )
        return message, {"distance_m": round(d, 1), "geofence_m": fence}


def decide(distance_m: float | None, geofence_m: float | None = None, mode: str | None = None) -> Decision:
    """The geofence decision: within `geofence_m` (default GEOFENCE_METRES) a check-in counts as
    on site; farther, GEOFENCE_MODE=refuse refuses it and flag accepts it flagged."""
    mode = settings.GEOFENCE_MODE if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"geofence mode {mode!r}: expected refuse or flag")
    fence = float(settings.GEOFENCE_METRES if geofence_m is None else geofence_m)
    return Decision(distance_m=distance_m, geofence_m=fence, mode=mode)
