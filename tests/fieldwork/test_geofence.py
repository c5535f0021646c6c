"""The geofence, whatever is checked in to: a phone's position in any of its coordinate systems,
distances on the spheroid to points and polygons of any row, and the decision (inside / how far
/ refuse or flag) with its answer. Tasks and musters use it through their own APIs
(tests/mobile_api/test_tasks.py, tests/whistles/test_api.py)."""

import ast
import math
from pathlib import Path

import pytest

from gridgov.areas import coords
from gridgov.areas.coords import UnknownCRS
from gridgov.areas.locate import BadPoint
from gridgov.areas.models import Grid
from gridgov.fieldwork import geofence

M_PER_DEG_LAT = 111_000  # near 40° N, within 0.1 %
GRID = "110101001001001"  # 116.40–116.41 E, 39.90–39.92 N (fixtures/testcity.py)


def test_a_position_is_checked_and_kept_as_sent_and_in_wgs84():
    at = geofence.position("116.405", 39.91, "GCJ-02")
    assert (at.lng, at.lat, at.crs) == (116.405, 39.91, "gcj02") and at.as_sent() == {
        "lng": 116.405,
        "lat": 39.91,
        "crs": "gcj02",
    }
    assert at.wgs84 == pytest.approx(tuple(float(v) for v in coords.to_wgs84(116.405, 39.91, "gcj02")))
    assert at.wgs84 != (116.405, 39.91)  # GCJ-02 is offset by hundreds of metres in China
    assert (at.point.x, at.point.y, at.point.srid) == (*at.wgs84, 4326)
    assert geofence.position(116.405, 39.91, None).crs == "wgs84"
    with pytest.raises(BadPoint):
        geofence.position(999, 0)
    with pytest.raises(BadPoint):
        geofence.position("east", 39.91)
    with pytest.raises(UnknownCRS):
        geofence.position(116.405, 39.91, "mars")


@pytest.mark.parametrize(
    "distance,mode,inside,refused,flagged",
    [
        (150.0, "refuse", True, False, False),
        (200.0, "refuse", True, False, False),  # the fence itself counts as inside
        (200.1, "refuse", False, True, False),
        (450.0, "flag", False, False, True),
        (None, "refuse", None, False, False),  # nothing to measure to: neither
    ],
)
def test_the_decision(distance, mode, inside, refused, flagged):
    d = geofence.decide(distance, 200.0, mode)
    assert (d.inside, d.refused, d.flagged) == (inside, refused, flagged)


def test_the_decision_reads_the_settings_by_default(settings):
    settings.GEOFENCE_METRES, settings.GEOFENCE_MODE = 50.0, "flag"
    d = geofence.decide(60.0)
    assert (d.geofence_m, d.mode, d.flagged) == (50.0, "flag", True)
    with pytest.raises(ValueError):
        geofence.decide(60.0, mode="strict")


def test_a_refusal_says_how_far_and_the_fence():
    message, extra = geofence.decide(433.27, 200.0, "refuse").refusal("集合地点", "the place", "报到")
    assert message == "距集合地点433米，超出200米报到范围 / 433 m from the place, beyond the 200 m geofence"
    assert extra == {"distance_m": 433.3, "geofence_m": 200.0}


@pytest.mark.django_db
def test_distances_to_a_polygon_are_zero_inside_and_on_the_spheroid_outside(city):
    grid = Grid.objects.current().filter(code=GRID)
    inside = geofence.position(116.405, 39.91)
    assert geofence.distances(grid, inside, "geom") == [0.0]
    north = geofence.position(116.405, 39.92 + 1000 / M_PER_DEG_LAT)  # ~1 km north of its edge
    [d] = geofence.distances(grid, north, "geom")
    assert 995 < d < 1005
    # The same row's point and polygon at once (a task's position and grid, a call's place and area).
    assert geofence.distances(grid, north, "geom", "geom") == [d, d]


@pytest.mark.django_db
def test_geodesic_pairs_in_one_query():
    east = 116.405 + 100 / (M_PER_DEG_LAT * math.cos(math.radians(39.91)))
    out = geofence.geodesic([((116.405, 39.91), (east, 39.91)), ((116.405, 39.91), None), (None, None)])
    assert 99.5 < out[0] < 100.5 and out[1:] == [None, None]
    assert geofence.geodesic([]) == []


def test_the_field_work_floor_imports_neither_appeals_nor_whistles():
    """gridgov/fieldwork is below both of its users: an import of either would be a circle."""
    root = Path(geofence.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(("gridgov.appeals", "gridgov.whistles", "mobile_api")), (path, name)
