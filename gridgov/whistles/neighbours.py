"""Which grids neighbour which, asked of PostGIS: the weights behind Gi*.

Only current boundaries count (valid_to IS NULL): a hotspot is computed on the grids as they
are now. Both queries return one row per current grid, ordered by grid code (west→east,
north→south), with the ids of its neighbours, and let the GiST index on geom find the
candidates: ST_Intersects and ST_DWithin on geometry add the index-aware bounding-box test
themselves, evaluated per outer grid as a parameterised index scan.
"""

import math
import re

import numpy as np

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")

# A degree of latitude or longitude is never shorter than cos(60°) × 111,320 m ≈ 55,660 m
# south of 60° N (all of China is south of 54° N). Dividing by a rounder, smaller figure
# gives a planar bound in degrees that every pair within `metres` passes, with slack.
MIN_METRES_PER_DEGREE = 50_000


def _table(grid_table):
    if not _IDENTIFIER.match(grid_table):
        raise ValueError(f"not a table name: {grid_table!r}")
    return ".".join(f'"{part}"' for part in grid_table.split("."))


def _neighbours_sql(grid_table, condition):
    t = _table(grid_table)
    return f"""
SELECT a.id,
       ARRAY(
           SELECT b.id
           FROM {t} b
           WHERE b.valid_to IS NULL AND b.id <> a.id AND {condition}
           ORDER BY b.id
       )
FROM {t} a
WHERE a.valid_to IS NULL
ORDER BY a.code, a.id
"""


def queen_neighbours_sql(grid_table="areas_grid"):
    """Queen contiguity: grids whose boundaries share at least one point, a single vertex
    included. ST_Intersects rather than ST_Touches: two grids that overlap by a digitising
    sliver do not "touch" (their interiors meet), yet they are plainly neighbours. A gap,
    even of centimetres, separates them; bridge gaps with `distance_band_sql`."""
    return _neighbours_sql(grid_table, "ST_Intersects(a.geom, b.geom)")


def distance_band_sql(metres, grid_table="areas_grid"):
    """Grids whose boundaries come within `metres` of each other (geodesic, on the WGS-84
    spheroid). Every queen neighbour is included (distance 0), and small gaps between grids
    (a road left out of both) are bridged. Distances are between boundaries, not centroids
    as ArcGIS's and libpysal's fixed distance bands measure: with centroids a large rural
    grid would lose its neighbours and become an island.

    The first ST_DWithin, in degrees on the geometry, lets the GiST index find candidates;
    the second, on geography, is the exact test."""
    metres = float(metres)
    if not math.isfinite(metres) or metres < 0:
        raise ValueError(f"distance must be a non-negative number of metres, not {metres!r}")
    degrees = metres / MIN_METRES_PER_DEGREE
    return _neighbours_sql(
        grid_table,
        f"ST_DWithin(a.geom, b.geom, {degrees!r}) AND ST_DWithin(a.geom::geography, b.geom::geography, {metres!r})",
    )


def grid_neighbours(connection, grid_table="areas_grid", *, metres=None):
    """Run the queen query (or the distance band, when `metres` is given) for current grids.

    Returns (ids, neighbours): the grid primary keys in code order, and for each position i
    an int array of positions (not ids) of i's neighbours, empty for an island; ready for
    `stats.gi_star`. Counts must then be given in the same order as ids."""
    sql = queen_neighbours_sql(grid_table) if metres is None else distance_band_sql(metres, grid_table)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    ids = [row[0] for row in rows]
    position = {pk: i for i, pk in enumerate(ids)}
    neighbours = [np.array([position[pk] for pk in row[1]], dtype=np.int64) for row in rows]
    return ids, neighbours
