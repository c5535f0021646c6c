"""Contiguity from the real PostGIS, checked against libpysal on the same polygons."""

import warnings

import esda
import libpysal
import numpy as np
import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.db import connection

from gridgov.areas.models import Grid
from gridgov.areas.services import areas_replace
from gridgov.whistles.neighbours import distance_band_sql, grid_neighbours, queen_neighbours_sql
from gridgov.whistles.stats import gi_star

from .geometry import voronoi_cells

pytestmark = pytest.mark.django_db

STEP = 0.01  # degrees: about 850 m east-west and 1,110 m north-south here
W0, S0 = 116.40, 39.90


def code(n):
    return f"110101001001{n:03d}"


def cell(row, col):
    # rounded, so that 116.40 + 0.01 is the same double as the literal 116.41 used below
    w, s = round(W0 + col * STEP, 6), round(S0 + row * STEP, 6)
    return shapely.box(w, s, round(w + STEP, 6), round(s + STEP, 6))


LATTICE = {code(1 + 3 * r + c): cell(r, c) for r in range(3) for c in range(3)}
GAP = code(10)  # east of the bottom-right cell, ~17 m away: the testcity gap
ISLAND = code(11)  # ~5 km east of everything
EXTRA = {
    GAP: shapely.box(116.4302, 39.90, 116.44, 39.91),
    ISLAND: shapely.box(116.50, 39.90, 116.51, 39.91),
}


def save(polygons, name="网格"):
    rows = [(c, f"{name}{c[-3:]}", GEOSGeometry(shapely.to_wkb(p, hex=True), srid=4326)) for c, p in polygons.items()]
    areas_replace(Grid, rows, source="tests/whistles", crs="wgs84", actor="tests")


def by_code(**kw):
    """{code: set of neighbour codes} for the current grids."""
    ids, nbrs = grid_neighbours(connection, **kw)
    codes = dict(Grid.objects.filter(pk__in=ids).values_list("pk", "code"))
    ordered = [codes[pk] for pk in ids]
    assert ordered == sorted(ordered)
    return {ordered[i]: {ordered[j] for j in nb} for i, nb in enumerate(nbrs)}


def libpysal_queen(polygons):
    codes = list(polygons)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands and disconnected components are intended
        w = libpysal.weights.Queen.from_iterable([polygons[c] for c in codes])
    return {codes[i]: {codes[j] for j in w.neighbors[i]} for i in range(len(codes))}


@pytest.fixture
def lattice():
    save({**LATTICE, **EXTRA})


def test_queen_matches_libpysal_and_includes_corners(lattice):
    got = by_code()
    assert got == libpysal_queen({**LATTICE, **EXTRA})
    assert got[code(5)] == {code(n) for n in range(1, 10)} - {code(5)}  # the centre: all 8
    assert got[code(1)] == {code(2), code(4), code(5)}  # code(5) by a single shared corner
    assert got[GAP] == set() and got[ISLAND] == set()


def test_only_current_versions_count(lattice):
    # closing the gap makes the gap grid a neighbour; the old version must not linger
    save({GAP: shapely.box(116.43, 39.90, 116.44, 39.91)})
    save({code(5): LATTICE[code(5)]}, name="改名网格")  # same shape, new name: a new version
    assert Grid.objects.filter(code__in=[GAP, code(5)]).count() == 4
    ids, _ = grid_neighbours(connection)
    assert len(ids) == 11 and set(ids) == set(Grid.objects.current().values_list("pk", flat=True))
    got = by_code()
    assert got[GAP] == {code(3), code(6)}
    assert len(got[code(5)]) == 8


def test_overlapping_grids_are_neighbours(lattice):
    # a digitising sliver: ST_Touches would say no, ST_Intersects says yes
    sliver = code(12)
    save({sliver: shapely.box(116.40, 39.89, 116.41, 39.9001)})
    got = by_code()
    assert got[sliver] == {code(1), code(2)}
    assert sliver in got[code(1)] and sliver in got[code(2)]


def test_distance_band_bridges_gaps_and_contains_queen(lattice):
    queen = by_code()
    assert by_code(metres=1) == queen
    assert by_code(metres=10)[GAP] == set()
    near = by_code(metres=20)
    assert near[GAP] == {code(3), code(6)}  # 17 m across the gap; code(6) at the corner
    assert near[ISLAND] == set()
    far = by_code(metres=6000)
    assert ISLAND in far[GAP] and ISLAND not in far[code(1)]  # ~5.1 km vs ~7.7 km
    assert all(queen[c] <= far[c] for c in queen)


def test_queries_use_the_gist_index():
    # enough grids, with statistics, for the planner to choose as it would in a city
    save({code(1 + 20 * r + c): cell(r, c) for r in range(20) for c in range(20)})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE areas_grid")
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'areas_grid' AND indexdef ILIKE '%USING gist (geom)%'"
        )
        (index,) = cursor.fetchone()
        for sql in (queen_neighbours_sql(), distance_band_sql(500)):
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert index in plan, plan


def test_table_name_is_checked():
    with pytest.raises(ValueError):
        queen_neighbours_sql("areas_grid; DROP TABLE areas_grid")
    with pytest.raises(ValueError):
        distance_band_sql(-5)
    assert '"public"."areas_grid"' in queen_neighbours_sql("public.areas_grid")


@pytest.mark.parametrize("seed", [11, 12])
def test_voronoi_grids_queen_and_gi_star_match_libpysal_and_esda(seed):
    cells, points = voronoi_cells(120, seed, bounds=(116.30, 39.85, 116.40, 39.95))
    polygons = {code(i + 1): c for i, c in enumerate(cells)}
    save(polygons)
    got = by_code()
    assert got == libpysal_queen(polygons)

    # Gi* on the database's neighbours against esda on libpysal's Queen of the same polygons
    ids, nbrs = grid_neighbours(connection)
    rng = np.random.default_rng(seed)
    y = rng.poisson(np.where(np.hypot(*(points - [116.33, 39.92]).T) < 0.02, 20.0, 6.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = libpysal.weights.Queen.from_iterable(cells)
        w.transform = "B"
        for transform in "BR":
            theirs = esda.G_Local(y, w, transform=transform, star=True, permutations=0)
            assert np.abs(gi_star(y, nbrs, transform=transform).z - theirs.Zs).max() < 1e-6
