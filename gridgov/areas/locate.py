"""Point → grid chain.

`locate()` answers one point from the database. `locate_many()` answers many from an
in-process STRtree of the grids in force (rebuilt when an import changes the boundaries),
and falls back to the database for points in gaps. Both follow the same rules:

* `covers`, so a point on a boundary belongs to a grid; on a shared edge or vertex the
  grid with the lowest code wins, so the answer never depends on scan order;
* a point in a gap takes the nearest grid within LOCATE_GAP_TOLERANCE_M, flagged `nearest`;
* anything else is `outside` (never an error).
"""

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from django.conf import settings
from django.db import connection

from gridgov.areacodes import (
    COMMUNITY_LENGTH,
    DISTRICT_LENGTH,
    STREET_LENGTH,
    community_code_of,
    district_code_of,
    street_code_of,
)
from gridgov.errors import DomainError

from .coords import in_china, to_wgs84
from .models import ImportRun

INSIDE = "inside"
NEAREST = "nearest"
OUTSIDE = "outside"

M_PER_DEG_LAT = 111_320.0


class BadPoint(DomainError, ValueError):
    code = "bad_point"


@dataclass(frozen=True)
class GridChain:
    grid_id: int
    grid_code: str
    grid_name: str
    grid_version: int
    community_code: str
    community_name: str
    street_code: str
    street_name: str
    district_code: str
    district_name: str
    match: str = INSIDE
    distance_m: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def check_lnglat(lng: Any, lat: Any) -> tuple[float, float]:
    try:
        lng, lat = float(lng), float(lat)
    except (TypeError, ValueError):
        raise BadPoint("经纬度必须是数字 / lng and lat must be numbers") from None
    if not (math.isfinite(lng) and math.isfinite(lat)) or not (-180 <= lng <= 180 and -90 <= lat <= 90):
        raise BadPoint(f"经纬度超出范围 / lng={lng}, lat={lat} out of range")
    return lng, lat


def _validity(alias: str, at: datetime | None) -> tuple[str, list[datetime]]:
    if at is None:
        return f"{alias}.valid_to IS NULL", []
    return f"{alias}.valid_from <= %s AND ({alias}.valid_to IS NULL OR {alias}.valid_to > %s)", [at, at]


def _chain_sql(at: datetime | None) -> tuple[str, list[datetime]]:
    """SELECT of a grid row with its parents' codes and names in force at `at`."""
    parts, params = [], []
    for table, length in (
        ("areas_community", COMMUNITY_LENGTH),
        ("areas_street", STREET_LENGTH),
        ("areas_district", DISTRICT_LENGTH),
    ):
        cond, p = _validity("p", at)
        parts.append(f"(SELECT p.name FROM {table} p WHERE p.code = left(g.code, {length}) AND {cond} LIMIT 1)")
        params += p
    return "g.id, g.code, g.name, g.version, " + ", ".join(parts), params


def _row_to_chain(row: Sequence[Any], match: str, distance: float) -> GridChain:
    gid, code, name, version, cname, sname, dname = row
    return GridChain(
        grid_id=gid,
        grid_code=code,
        grid_name=name,
        grid_version=version,
        community_code=community_code_of(code),
        community_name=cname or "",
        street_code=street_code_of(code),
        street_name=sname or "",
        district_code=district_code_of(code),
        district_name=dname or "",
        match=match,
        distance_m=round(float(distance), 1),
    )


def _box_degrees(tolerance_m: float, lat: float) -> float:
    """`tolerance_m` as a box prefilter in degrees at latitude `lat`, generous: a degree of
    longitude shrinks with latitude. The exact distance is then measured on the spheroid."""
    return tolerance_m / (M_PER_DEG_LAT * max(math.cos(math.radians(lat)), 0.01)) * 1.5


def locate_wgs84(
    lng: float, lat: float, at: datetime | None = None, tolerance_m: float | None = None
) -> GridChain | None:
    """Locate a WGS-84 point; None when it is outside every grid and beyond the tolerance."""
    if tolerance_m is None:
        tolerance_m = settings.LOCATE_GAP_TOLERANCE_M
    cols, cparams = _chain_sql(at)
    valid, vparams = _validity("g", at)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT {cols} FROM areas_grid g "
            f"WHERE ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) AND {valid} "
            "ORDER BY g.code LIMIT 1",
            [*cparams, lng, lat, *vparams],
        )
        row = cur.fetchone()
        if row:
            return _row_to_chain(row, INSIDE, 0.0)
    if tolerance_m <= 0:
        return None
    return _nearest_in_db(np.array([lng]), np.array([lat]), at, tolerance_m)[0]


def locate(
    lng: float, lat: float, crs: str = "wgs84", at: datetime | None = None, tolerance_m: float | None = None
) -> GridChain | None:
    """Locate a point given in `crs` (wgs84 / gcj02 / bd09)."""
    lng, lat = check_lnglat(lng, lat)
    if not in_china(lng, lat):
        return None
    wlng, wlat = to_wgs84(lng, lat, crs)
    return locate_wgs84(float(wlng), float(wlat), at=at, tolerance_m=tolerance_m)


# --- many points: an in-process index of the grids in force --------------------------------


class _GridIndex:
    def __init__(self, revision: int | None, at: datetime | None = None) -> None:
        self.revision = revision
        cols, cparams = _chain_sql(at)
        valid, vparams = _validity("g", at)
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT {cols}, ST_AsBinary(g.geom) FROM areas_grid g WHERE {valid} ORDER BY g.code",
                [*cparams, *vparams],
            )
            rows = cur.fetchall()
        # Rows sorted by code, so the lowest tree index among several hits is the lowest code.
        self.chains = [_row_to_chain(r[:-1], INSIDE, 0.0) for r in rows]
        geoms = shapely.from_wkb([bytes(r[-1]) for r in rows]) if rows else np.array([], dtype=object)
        shapely.prepare(geoms)
        self.tree = shapely.STRtree(geoms)
        self.bounds = shapely.total_bounds(geoms) if rows else None

    def near_any(self, lng: np.ndarray, lat: np.ndarray, tolerance_m: float) -> np.ndarray:
        """True for points within (a generous degree bound of) tolerance of some grid: only those
        can be in a gap, the rest are outside without asking the database."""
        near = np.zeros(len(lng), dtype=bool)
        if self.bounds is None or len(lng) == 0 or tolerance_m <= 0:
            return near
        deg = _box_degrees(tolerance_m, max(abs(self.bounds[1]), abs(self.bounds[3])))
        inp, _ = self.tree.query(shapely.points(lng, lat), predicate="dwithin", distance=deg)
        near[inp] = True
        return near

    def query(self, lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index into self.chains for each point, -1 where no grid covers it."""
        pts = shapely.points(lng, lat)
        hit = np.full(len(pts), -1, dtype=np.int64)
        if not self.chains or len(pts) == 0:
            return hit
        inp, tree_idx = self.tree.query(pts, predicate="covered_by")
        if len(inp):
            # Smallest tree index per input point: sort by (input, tree) and keep the firsts.
            order = np.lexsort((tree_idx, inp))
            inp, tree_idx = inp[order], tree_idx[order]
            first = np.ones(len(inp), dtype=bool)
            first[1:] = inp[1:] != inp[:-1]
            hit[inp[first]] = tree_idx[first]
        return hit


_index_lock = threading.Lock()
_index: _GridIndex | None = None


def areas_revision() -> int:
    """Changes whenever a boundary import (or the demo generator) changes the grids."""
    return ImportRun.objects.order_by("-id").values_list("id", flat=True).first() or 0


def grid_index(at: datetime | None = None) -> _GridIndex:
    global _index
    if at is not None:
        return _GridIndex(revision=None, at=at)
    rev = areas_revision()
    with _index_lock:
        if _index is None or _index.revision != rev:
            _index = _GridIndex(rev)
        return _index


def as_lnglat_array(points: Any) -> np.ndarray:
    """[[lng, lat], ...] → an (n, 2) float array, or BadPoint naming the first bad item."""
    try:
        arr = np.asarray(points, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError
    except (TypeError, ValueError):
        for i, p in enumerate(points):
            if not isinstance(p, (list, tuple)) or len(p) != 2:
                raise BadPoint(f"第 {i + 1} 个点应为 [经度, 纬度] / point #{i} must be [lng, lat]") from None
            try:
                check_lnglat(*p)
            except BadPoint as exc:
                raise BadPoint(f"第 {i + 1} 个点 / point #{i}: {exc}") from None
        raise BadPoint("points must be [[lng, lat], ...]") from None
    bad = ~(np.isfinite(arr).all(axis=1) & (np.abs(arr[:, 0]) <= 180) & (np.abs(arr[:, 1]) <= 90))
    if bad.any():
        i = int(np.argmax(bad))
        raise BadPoint(f"第 {i + 1} 个点超出范围 / point #{i} out of range: {arr[i].tolist()}")
    return arr


def locate_many(
    points: Any, crs: str = "wgs84", at: datetime | None = None, tolerance_m: float | None = None
) -> list[GridChain | None]:
    """Locate a sequence of (lng, lat) pairs in `crs`. Returns a list of GridChain or None, in
    input order. Raises BadPoint naming the first malformed item."""
    arr = as_lnglat_array(points)
    n = len(arr)
    lng, lat = arr[:, 0], arr[:, 1]
    china = in_china(lng, lat)
    wlng, wlat = to_wgs84(lng, lat, crs)
    if tolerance_m is None:
        tolerance_m = settings.LOCATE_GAP_TOLERANCE_M
    index = grid_index(at)
    hit = index.query(wlng, wlat)
    missed = np.flatnonzero((hit < 0) & china)
    near = missed[index.near_any(wlng[missed], wlat[missed], tolerance_m)]
    gaps = _nearest_in_db(wlng[near], wlat[near], at, tolerance_m)
    chains = index.chains
    out: list[GridChain | None] = [None] * n
    inside = np.flatnonzero((hit >= 0) & china)
    for i, h in zip(inside.tolist(), hit[inside].tolist()):
        out[i] = chains[h]
    for i, chain in zip(near.tolist(), gaps):
        out[i] = chain
    return out


def _nearest_in_db(lng: np.ndarray, lat: np.ndarray, at: datetime | None, tolerance_m: float) -> list[GridChain | None]:
    """For points in no grid: the nearest grid within tolerance by the exact spheroid
    distance (None beyond it), one query for all of them (locate_wgs84 asks for one point,
    locate_many for the gap points of a batch)."""
    if len(lng) == 0:
        return []
    cols, cparams = _chain_sql(at)
    valid, vparams = _validity("g", at)
    deg = _box_degrees(tolerance_m, float(np.abs(lat).max()))
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT q.i, n.* FROM (SELECT i, ST_SetSRID(ST_MakePoint(x, y), 4326) AS p "
            f"FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS u(x, y, i)) q "
            f"CROSS JOIN LATERAL (SELECT {cols}, ST_Distance(g.geom::geography, q.p::geography) AS d "
            f"FROM areas_grid g WHERE g.geom && ST_Expand(q.p, %s) AND {valid} ORDER BY d, g.code LIMIT 1) n",
            [lng.tolist(), lat.tolist(), *cparams, deg, *vparams],
        )
        rows = cur.fetchall()
    found: list[GridChain | None] = [None] * len(lng)
    for row in rows:
        if row[-1] <= tolerance_m:
            found[row[0] - 1] = _row_to_chain(row[1:-1], NEAREST, row[-1])
    return found


# --- many stored points: driven by the grids --------------------------------------------


def relocate_sql(
    points_table: str, id_col: str = "id", geom_col: str = "geom", at: datetime | None = None
) -> tuple[str, list[datetime]]:
    """SQL (and params) yielding (point id, grid id) for every stored point covered by a grid
    in force at `at`, lowest grid code first for points on shared edges.

    The join is driven by the grids: for each grid, the GiST-indexed points it covers. PostGIS
    then reuses one prepared polygon for consecutive calls with the same grid, which measured
    about 6x faster than probing the grid index once per point."""
    valid, params = _validity("g", at)
    sql = (
        f"SELECT DISTINCT ON (p.{id_col}) p.{id_col} AS point_id, g.id AS grid_id "
        f"FROM (SELECT id, code, geom FROM areas_grid g WHERE {valid} ORDER BY code) g "
        f"CROSS JOIN LATERAL (SELECT {id_col} FROM {points_table} pt WHERE ST_Covers(g.geom, pt.{geom_col})) p "
        f"ORDER BY p.{id_col}, g.code"
    )
    return sql, params
