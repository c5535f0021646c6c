"""From appeals in the database to Hotspot rows.

    grid_counts(window, categories)          {grid code: appeals} for one window (SQL GROUP BY)
    window_counts(end, days, periods, groups) counts[group, period, grid] in one scan
    dbscan_spots(window, eps_m, min_points)   sub-grid clusters, ST_ClusterDBSCAN in metres
    hotspots_recompute(window_days, categories, now)   all of it, stored

Counting stays in PostgreSQL: one scan of the appeals for every window length, category group
and earlier window the trend needs. Gi*, FDR and the trend run in numpy on the grids in code
order (stats.py, neighbours.py), with the weights cached per boundary revision. Merged appeals
are not counted: their lead stands for them. Storing is incremental: an open hotspot of the same
grid (or, for DBSCAN, sharing appeals), category group and window length is updated in place,
one that is no longer significant is kept with active=False, and only new ones are inserted
(1M appeals over 10,000 grids: about 5 s warm, tests/bench/bench_hotspots.py).
"""

import json
import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from gridgov.appeals.models import Category
from gridgov.areacodes import street_code_of
from gridgov.areas.locate import areas_revision
from gridgov.areas.models import Grid
from gridgov.audit.services import audit_record

from . import stats
from .models import Hotspot, WhistleEvent
from .neighbours import grid_neighbours
from .workflow import HOTSPOT_OPEN

logger = logging.getLogger(__name__)

# Serialises recomputes (beat, the command, a manual run): two at once would race on the
# one-open-hotspot-per-grid constraint.
RECOMPUTE_LOCK_KEY = 0x67726964_686F7473  # "gridhots"
CONFIDENCE = {3: 0.99, 2: 0.95, 1: 0.90, 0: 0.0, -1: 0.90, -2: 0.95, -3: 0.99}


# --- category groups ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryGroup:
    """Appeals whose category code starts with one of `prefixes`; no prefixes = every appeal,
    uncategorised ones included. `key` ('' / '0101' / '020101,020104') identifies the group."""

    prefixes: tuple[str, ...]

    @property
    def key(self):
        return ",".join(self.prefixes)

    def matches(self, code):
        return not self.prefixes or (code is not None and code.startswith(self.prefixes))


def category_group(spec):
    """'' or None → every category; '0101' → a level-1/2 prefix or a leaf; '020101,020104' or
    ['020101', '020104'] → a group of codes."""
    if isinstance(spec, CategoryGroup):
        return spec
    parts = spec.split(",") if isinstance(spec, str) else list(spec or [])
    prefixes = sorted({str(p).strip() for p in parts if str(p).strip()})
    for p in prefixes:
        if not (p.isdigit() and len(p) in (2, 4, 6)):
            raise ValueError(f"not a category code or prefix: {p!r} (2, 4 or 6 digits)")
    # A prefix inside another makes the narrower one redundant ('01' covers '0101').
    prefixes = [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]
    return CategoryGroup(tuple(prefixes))


def _category_codes():
    return dict(Category.objects.values_list("pk", "code"))


def _category_ids(group, codes=None):
    """Ids of the categories in `group`, or None for every appeal (no filter)."""
    if not group.prefixes:
        return None
    codes = _category_codes() if codes is None else codes
    return sorted(pk for pk, code in codes.items() if group.matches(code))


# --- the grids and their weights, cached per boundary revision ---------------------------------


@dataclass(frozen=True)
class GridWeights:
    revision: int
    ids: list  # current grid ids in code order
    codes: list  # their codes, same order
    weights: object  # stats.weights_matrix: queen contiguity plus self
    utm_srid: int  # a metric projection for the city (DBSCAN)


_weights_lock = threading.Lock()
_weights = None


def _utm_srid(lng):
    # WGS-84 / UTM north: scale 0.9996–1.001 across a zone, so eps in metres is eps in metres
    # to 0.1 %; EPSG:3857 would stretch it by 1/cos(lat), 30 % at Beijing's latitude.
    return 32600 + int((lng + 180) // 6) % 60 + 1


def grid_weights():
    """Grid codes and Gi* weights of the current grids, rebuilt when boundaries change."""
    global _weights
    rev = areas_revision()
    with _weights_lock:
        if _weights is None or _weights.revision != rev:
            ids, nbrs = grid_neighbours(connection)
            code_of = dict(Grid.objects.filter(pk__in=ids).values_list("pk", "code"))
            with connection.cursor() as cur:
                cur.execute("SELECT ST_X(ST_Centroid(ST_Extent(geom))) FROM areas_grid WHERE valid_to IS NULL")
                (lng,) = cur.fetchone()
            _weights = GridWeights(
                rev,
                ids,
                [code_of[pk] for pk in ids],
                stats.weights_matrix(nbrs),
                _utm_srid(lng if lng is not None else 116.4),
            )
        return _weights


# --- counting -------------------------------------------------------------------------------------

_BASE_WHERE = "a.state <> 'merged' AND a.grid_code <> '' AND a.received_at >= %s AND a.received_at < %s"


def grid_counts(window, categories=None):
    """{grid code: appeals received in [start, end)} for one category group, merged appeals
    excluded; grids without appeals are absent."""
    start, end = window
    ids = _category_ids(category_group(categories))
    sql = f"SELECT a.grid_code, count(*) FROM appeals_appeal a WHERE {_BASE_WHERE}"
    params = [start, end]
    if ids is not None:
        sql += " AND a.category_id = ANY(%s)"
        params.append(ids)
    with connection.cursor() as cur:
        cur.execute(sql + " GROUP BY a.grid_code", params)
        return dict(cur.fetchall())


@dataclass(frozen=True)
class PeriodCounts:
    """Appeals per grid, category and window, for several window lengths, from one scan:
    row r has `n[r]` appeals of category id `cat[r]` (0: none) in grid position `pos[r]`, in
    window `k[days][r]` of that length (0 = the latest, -1 = older than its `periods`)."""

    lengths: tuple
    periods: int
    grids: int
    pos: np.ndarray
    cat: np.ndarray
    k: dict
    n: np.ndarray

    def _in_group(self, group, category_codes):
        cat_ids, index = np.unique(self.cat, return_inverse=True)
        member = np.array([group.matches(category_codes.get(int(c))) for c in cat_ids], dtype=bool)
        return member[index] if len(cat_ids) else np.zeros(0, dtype=bool)

    def counts(self, days, groups, category_codes):
        """counts[g, k, i] for windows of `days`."""
        n, periods = self.grids, self.periods
        out = np.zeros((len(groups), periods, n), dtype=np.float64)
        k = self.k[days]
        for g, group in enumerate(groups):
            keep = self._in_group(group, category_codes) & (k >= 0)
            flat = k[keep] * n + self.pos[keep]
            out[g] = np.bincount(flat, weights=self.n[keep], minlength=periods * n).reshape(periods, n)
        return out

    def groups_present(self, days, level, category_codes):
        """Category groups of `level` (the first 2 × level digits) with appeals in any of the
        windows of `days`."""
        cats = np.unique(self.cat[self.k[days] >= 0])
        prefixes = {category_codes[int(c)][: 2 * level] for c in cats if int(c) in category_codes}
        return [CategoryGroup((p,)) for p in sorted(prefixes)]


def period_counts(end, lengths, periods, codes, category_ids=None):
    """One scan of the appeals received in the `periods` windows of the longest length before
    `end`, grouped by grid, category and window of every length (see PeriodCounts).
    `category_ids` limits the scan to those categories (None: every appeal)."""
    lengths = tuple(sorted(set(lengths)))
    start = end - timedelta(days=max(lengths) * periods)
    # Lengths are whole days (ints), safe to write into the SQL.
    ks = ", ".join(
        f"CASE WHEN age < {int(d) * periods * 86400} THEN floor(age / {int(d) * 86400})::int ELSE -1 END AS k{j}"
        for j, d in enumerate(lengths)
    )
    kcols = ", ".join(f"k{j}" for j in range(len(lengths)))
    where, extra = "", []
    if category_ids is not None:
        where, extra = " AND a.category_id = ANY(%s)", [sorted(category_ids)]
    # One pass: the age is computed once per appeal (OFFSET 0 keeps the subquery from being
    # flattened into a date_part call per window length); date_part, not extract, which returns
    # numeric and divides several times slower. Grid codes are numbered here rather than by
    # joining an unnest() of them: the planner guesses 10 rows for unnest and, joined before
    # the aggregate, probed the appeals once per grid (12 s instead of 1 s at 1M appeals).
    # The groups come back as one comma-separated string per column: a few hundred thousand
    # rows as Python tuples cost more than the query itself.
    cols = ["grid_code", "cat", *(f"k{j}" for j in range(len(lengths))), "n"]
    sql = f"""
SELECT {", ".join(f"string_agg({c}::text, ',')" for c in cols)}
FROM (SELECT grid_code, cat, {ks}, count(*) AS n
      FROM (SELECT a.grid_code, coalesce(a.category_id, 0) AS cat, date_part('epoch', %s - a.received_at) AS age
            FROM appeals_appeal a WHERE {_BASE_WHERE}{where} OFFSET 0) a
      GROUP BY grid_code, cat, {kcols}) c"""
    with connection.cursor() as cur:
        cur.execute(sql, [end, start, end, *extra])
        fetched = cur.fetchone()
    if fetched[0] is None:
        rows = np.zeros((0, len(cols)), dtype=np.int64)
    else:
        grid_codes = np.array(fetched[0].split(","))
        given = np.asarray(codes, dtype=grid_codes.dtype)
        order = np.argsort(given, kind="stable")
        at = np.searchsorted(given[order], grid_codes).clip(0, max(len(given) - 1, 0))
        known = (given[order][at] == grid_codes) if len(given) else np.zeros(len(grid_codes), dtype=bool)
        pos = order[at] if len(given) else at
        rows = np.column_stack([pos, *(np.array(col.split(","), dtype=np.int64) for col in fetched[1:])])
        rows = rows[known]  # appeals in grids that are no longer current
    return PeriodCounts(
        lengths=lengths,
        periods=periods,
        grids=len(codes),
        pos=rows[:, 0],
        cat=rows[:, 1],
        k={d: rows[:, 2 + j] for j, d in enumerate(lengths)},
        n=rows[:, -1],
    )


def window_counts(end, days, periods, groups, codes, category_codes=None):
    """counts[g, k, i]: appeals of groups[g] in grid codes[i] during window k, where window 0 is
    [end - days, end) and window k the k-th equal-length window before it."""
    category_codes = _category_codes() if category_codes is None else category_codes
    filters = [_category_ids(g, category_codes) for g in groups]
    ids = None if any(f is None for f in filters) else {pk for f in filters for pk in f}
    return period_counts(end, (days,), periods, codes, ids).counts(days, groups, category_codes)


def default_groups(start, end, level=None):
    """Every category group of `level` (1 or 2: the first 2 or 4 digits; 3: leaves) that has
    appeals in [start, end)."""
    level = level or settings.WHISTLE_CATEGORY_LEVEL
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT DISTINCT left(c.code, %s) FROM appeals_appeal a JOIN appeals_category c "
            f"ON c.id = a.category_id WHERE {_BASE_WHERE} ORDER BY 1",
            [2 * level, start, end],
        )
        return [CategoryGroup((p,)) for (p,) in cur.fetchall()]


def member_ids(window, codes, category_codes=None):
    """{grid code: {category id: [appeal ids]}} in `window` for the given grids: one query for
    every category group of a window, split by group in Python (group_members)."""
    if not codes:
        return {}
    with connection.cursor() as cur:
        # grid_code = ANY(big array) is hashed (PostgreSQL 14+), so a scan of the window checks
        # each appeal once whichever way the planner goes.
        cur.execute(
            f"SELECT a.grid_code, coalesce(a.category_id, 0), array_agg(a.id) FROM appeals_appeal a "
            f"WHERE {_BASE_WHERE} AND a.grid_code = ANY(%s) GROUP BY 1, 2",
            [*window, sorted(codes)],
        )
        out: dict[Any, Any] = {}
        for code, cat, ids in cur.fetchall():
            out.setdefault(code, {})[cat] = ids
    return out


def group_members(members, group, code, category_codes):
    ids = [i for cat, lst in members.get(code, {}).items() if group.matches(category_codes.get(cat)) for i in lst]
    return sorted(ids)


# --- DBSCAN -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spot:
    category_code: str
    appeal_ids: list
    grid_codes: list
    geom: GEOSGeometry  # a MultiPolygon from the database
    centroid: tuple
    radius_m: float


def dbscan_spots(window, eps_m, min_points, categories=None, srid=None):
    """Clusters of appeals of one leaf category: ST_ClusterDBSCAN in a UTM projection (metres),
    so `eps_m` is metres on the ground. A cluster has at least one appeal with `min_points`
    appeals (itself included) within `eps_m`: "N appeals within R metres"."""
    group = category_group(categories)
    codes = _category_codes()
    ids = _category_ids(group, codes)
    srid = srid or grid_weights().utm_srid
    where, params = "", [srid, float(eps_m), int(min_points), *window]
    if ids is not None:
        where = " AND a.category_id = ANY(%s)"
        params.append(ids)
    sql = f"""
WITH pts AS (
    SELECT a.id, a.grid_code, a.category_id, a.position,
           ST_ClusterDBSCAN(ST_Transform(a.position, %s), eps => %s, minpoints => %s)
               OVER (PARTITION BY a.category_id) AS cid
    FROM appeals_appeal a
    WHERE {_BASE_WHERE} AND a.position IS NOT NULL AND a.category_id IS NOT NULL{where}
), spots AS (
    SELECT category_id, array_agg(id ORDER BY id) AS ids, array_agg(grid_code ORDER BY id) AS grids,
           ST_Collect(position) AS pts, ST_Centroid(ST_Collect(position)) AS c
    FROM pts WHERE cid IS NOT NULL GROUP BY category_id, cid
)
SELECT category_id, ids, grids, ST_X(c), ST_Y(c),
       (SELECT max(ST_Distance(d.geom::geography, c::geography)) FROM ST_Dump(pts) d),
       ST_AsBinary(ST_Multi(ST_Buffer(ST_ConvexHull(pts)::geography, %s, 'quad_segs=4')::geometry))
FROM spots ORDER BY category_id, ids[1]"""
    # The hull is padded by half of eps so that one building's spot is an area on the map.
    params.append(max(float(eps_m) / 2, 5.0))
    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    return [
        Spot(codes[cat], list(ids), list(grids), GEOSGeometry(memoryview(wkb), srid=4326), (x, y), float(radius or 0.0))
        for cat, ids, grids, x, y, radius, wkb in rows
    ]


# --- storing ------------------------------------------------------------------------------------


def _float(x):
    x = float(x)
    return round(x, 6) if math.isfinite(x) else 0.0


def _reusable(kind, days, key, now):
    """Rows a recompute updates instead of adding one: open ones, and ones whistled or dismissed
    within the last window (a dismissed hotspot does not come back as new the next hour)."""
    recent = now - timedelta(days=days)
    return list(
        Hotspot.objects.filter(kind=kind, window_days=days, category_key=key)
        .filter(Q(state__in=HOTSPOT_OPEN) | Q(state_changed_at__gte=recent))
        .order_by("state_changed_at", "id")
    )


def _store_grid_hotspots(
    days, group, window, result, counts_now, lags, trend, weights, category_codes, members, now, summary
):
    n_min = settings.WHISTLE_HOTSPOT_MIN_COUNT
    # Gi* calls a lone appeal in an empty city highly significant; a hot spot needs appeals.
    hot = np.flatnonzero((result.bins > 0) & (lags >= n_min))
    hot_codes = [weights.codes[i] for i in hot]
    position = {c: i for i, c in enumerate(weights.codes)}
    existing = {}
    for h in _reusable(Hotspot.Kind.GRID_GI, days, group.key, now):
        # An open row wins over a recently closed one for the same grid.
        if h.grid_code not in existing or h.state in HOTSPOT_OPEN:
            existing[h.grid_code] = h

    def figures(i):
        b = int(result.bins[i])
        return {
            "count": int(counts_now[i]),
            "neighbourhood_count": int(lags[i]),
            "z": _float(result.z[i]),
            "p": _float(result.p[i]),
            "bin": b,
            "bin_name": stats.BIN_NAMES[b],
            "confidence": CONFIDENCE[b],
            "trend": str(trend[i]),
        }

    new, changed = [], []
    for code in hot_codes:
        i = position[code]
        h = existing.pop(code, None)
        values = {
            "statistics": figures(i),
            "appeal_ids": group_members(members, group, code, category_codes),
            "window_start": window[0],
            "window_end": window[1],
            "active": True,
            "computed_at": now,
        }
        if h is None:
            new.append(
                Hotspot(
                    kind=Hotspot.Kind.GRID_GI,
                    window_days=days,
                    category_key=group.key,
                    category_codes=list(group.prefixes),
                    grid_code=code,
                    street_code=street_code_of(code),
                    first_seen_at=now,
                    **values,
                )
            )
        else:
            for f, v in values.items():
                setattr(h, f, v)
            changed.append(h)
    for code, h in existing.items():  # no longer significant: keep the row, with today's figures
        if h.active and code in position:
            h.statistics, h.active, h.computed_at = figures(position[code]), False, now
            changed.append(h)
            summary["cooled"] += 1
    if new:
        geoms = dict(Grid.objects.current().filter(code__in=[h.grid_code for h in new]).values_list("code", "geom"))
        for h in new:
            h.geom = geoms[h.grid_code]
    return new, changed


def _store_dbscan(days, window, eps_m, min_points, categories, now, summary):
    spots = dbscan_spots(window, eps_m, min_points, categories)
    by_key: dict[Any, Any] = {}
    for s in spots:
        by_key.setdefault(s.category_code, []).append(s)
    new, changed = [], []
    keys = set(by_key) | set(
        Hotspot.objects.filter(
            kind=Hotspot.Kind.DBSCAN, window_days=days, active=True, state__in=HOTSPOT_OPEN
        ).values_list("category_key", flat=True)
    )
    group = category_group(categories)
    for key in sorted(keys):
        if not group.matches(key):
            continue
        existing = _reusable(Hotspot.Kind.DBSCAN, days, key, now)
        for s in by_key.get(key, []):
            ids = set(s.appeal_ids)
            # The same spot as before: the existing row sharing most appeals with it.
            best = max(existing, key=lambda h: len(ids & set(h.appeal_ids)), default=None)
            if best is not None and not ids & set(best.appeal_ids):
                best = None
            street = Counter(street_code_of(g) for g in s.grid_codes).most_common()
            street_code = min(c for c, k in street if k == street[0][1])
            grids = Counter(g for g in s.grid_codes if g.startswith(street_code)).most_common()
            grid_code = min(c for c, k in grids if k == grids[0][1])
            figures = {
                "count": len(s.appeal_ids),
                "radius_m": round(s.radius_m, 1),
                "eps_m": float(eps_m),
                "min_points": int(min_points),
                "centroid": [round(s.centroid[0], 7), round(s.centroid[1], 7)],
                "trend": "" if best is None else _count_trend(best.statistics.get("count", 0), len(ids)),
            }
            values = {
                "statistics": figures,
                "appeal_ids": s.appeal_ids,
                "geom": s.geom,
                "window_start": window[0],
                "window_end": window[1],
                "active": True,
                "computed_at": now,
                "grid_code": grid_code,
                "street_code": street_code,
            }
            if best is None:
                new.append(
                    Hotspot(
                        kind=Hotspot.Kind.DBSCAN,
                        window_days=days,
                        category_key=key,
                        category_codes=[key],
                        first_seen_at=now,
                        **values,
                    )
                )
            else:
                existing.remove(best)
                for f, v in values.items():
                    setattr(best, f, v)
                changed.append(best)
        for h in existing:
            if h.active:
                h.active, h.computed_at = False, now
                changed.append(h)
                summary["cooled"] += 1
    return new, changed


def _count_trend(before, now):
    return stats.INTENSIFYING if now > before else stats.PERSISTENT if now == before else stats.DIMINISHING


_UPDATE_SQL = """
UPDATE whistles_hotspot h
SET statistics = v.statistics::jsonb, appeal_ids = v.appeal_ids::bigint[], window_start = v.window_start,
    window_end = v.window_end, active = v.active, computed_at = v.computed_at, grid_code = v.grid_code,
    street_code = v.street_code, geom = coalesce(ST_GeomFromEWKT(v.geom), h.geom)
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::boolean[],
            %s::timestamptz[], %s::text[], %s::text[], %s::text[])
     AS v(id, statistics, appeal_ids, window_start, window_end, active, computed_at, grid_code, street_code, geom)
WHERE h.id = v.id"""


def _bulk_save(rows, geom_changed, batch=2000):
    """UPDATE ... FROM unnest(arrays): Django's bulk_update writes a CASE per field and row,
    which took over 10 s for 1,500 hotspots; this takes a fraction of a second."""
    with connection.cursor() as cur:
        for i in range(0, len(rows), batch):
            part = rows[i : i + batch]
            cur.execute(
                _UPDATE_SQL,
                [
                    [h.pk for h in part],
                    [json.dumps(h.statistics, cls=DjangoJSONEncoder) for h in part],
                    ["{" + ",".join(map(str, h.appeal_ids)) + "}" for h in part],
                    [h.window_start for h in part],
                    [h.window_end for h in part],
                    [h.active for h in part],
                    [h.computed_at for h in part],
                    [h.grid_code for h in part],
                    [h.street_code for h in part],
                    [h.geom.ewkt if h.pk in geom_changed else None for h in part],
                ],
            )


def hotspots_recompute(window_days=None, categories=None, now=None, *, dbscan=True, actor="system"):
    """Recompute Gi* hotspots for every window length and category group, and DBSCAN spots over
    the rule's D days; store them. `categories`: None for every group of WHISTLE_CATEGORY_LEVEL
    that has appeals, or a list of group specs (see category_group). Returns a summary with
    the time each step took (seconds: weights, counts, gi, store, dbscan, total)."""
    now = now or timezone.now()
    window_days = tuple(sorted(set(window_days or settings.WHISTLE_WINDOWS)))
    periods = settings.WHISTLE_TREND_WINDOWS + 1
    summary: dict[str, Any] = {"created": 0, "updated": 0, "cooled": 0, "groups": 0, "hot": 0, "spots": 0}
    took = dict.fromkeys(("weights", "counts", "gi", "store", "dbscan"), 0.0)
    t_start = t = time.perf_counter()

    def lap(step):
        nonlocal t
        now_t = time.perf_counter()
        took[step] += now_t - t
        t = now_t

    weights = grid_weights()
    category_codes = _category_codes()
    lap("weights")
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [RECOMPUTE_LOCK_KEY])
        new_all, changed_all = [], []
        fixed = None if categories is None else [category_group(c) for c in categories]
        ids = None
        if fixed and all(g.prefixes for g in fixed):
            ids = {pk for g in fixed for pk in _category_ids(g, category_codes)}
        scan = period_counts(now, window_days, periods, weights.codes, ids) if weights.codes else None
        lap("counts")
        for days in window_days if scan is not None else ():
            window = (now - timedelta(days=days), now)
            assert scan is not None
            groups = fixed or scan.groups_present(days, settings.WHISTLE_CATEGORY_LEVEL, category_codes)
            summary["groups"] = max(summary["groups"], len(groups))
            if not groups:
                continue
            counts = scan.counts(days, groups, category_codes)
            lap("counts")
            found = []
            for g in range(len(groups)):
                results = [stats.hotspots(counts[g, k], weights.weights) for k in range(periods)]
                current, previous = results[0], results[:0:-1]  # previous: oldest first
                lags = weights.weights @ counts[g, 0]
                found.append((current, stats.trend(current, previous), lags))
            lap("gi")
            hot_codes = {
                weights.codes[i]
                for current, _t, lags in found
                for i in np.flatnonzero((current.bins > 0) & (lags >= settings.WHISTLE_HOTSPOT_MIN_COUNT))
            }
            members = member_ids(window, hot_codes)
            for g, group in enumerate(groups):
                current, trend, lags = found[g]
                new, changed = _store_grid_hotspots(
                    days,
                    group,
                    window,
                    current,
                    counts[g, 0],
                    lags,
                    trend,
                    weights,
                    category_codes,
                    members,
                    now,
                    summary,
                )
                summary["hot"] += int(((current.bins > 0) & (lags >= settings.WHISTLE_HOTSPOT_MIN_COUNT)).sum())
                new_all += new
                changed_all += changed
            lap("store")
        if dbscan:
            days = settings.WHISTLE_RULE_DAYS
            spot_categories = (
                None if categories is None else [p for c in categories for p in category_group(c).prefixes]
            )
            new, changed = _store_dbscan(
                days,
                (now - timedelta(days=days), now),
                settings.WHISTLE_RULE_RADIUS_M,
                settings.WHISTLE_RULE_N,
                spot_categories or None,
                now,
                summary,
            )
            summary["spots"] = len(new) + sum(1 for h in changed if h.active)
            new_all += new
            changed_all += changed
            lap("dbscan")
        Hotspot.objects.bulk_create(new_all, batch_size=1000)
        _bulk_save(changed_all, {h.pk for h in changed_all if h.kind == Hotspot.Kind.DBSCAN})
        WhistleEvent.objects.bulk_create(
            [
                WhistleEvent(
                    object_type="hotspot",
                    object_id=h.pk,
                    at=now,
                    event="detect",
                    new_state=h.state,
                    data={
                        "kind": h.kind,
                        "grid_code": h.grid_code,
                        "category": h.category_key,
                        "window_days": h.window_days,
                        **h.statistics,
                    },
                )
                for h in new_all
            ],
            batch_size=1000,
        )
        summary["created"], summary["updated"] = len(new_all), len(changed_all) - summary["cooled"]
        audit_record(
            actor=actor,
            action="whistles.hotspots_recompute",
            object_type="whistles.hotspot",
            data={
                "at": now,
                "windows": list(window_days),
                "categories": categories,
                **summary,
                "new_ids": [h.pk for h in new_all][:200],
            },
        )
        lap("store")
    summary["seconds"] = {k: round(v, 3) for k, v in took.items()} | {"total": round(t - t_start, 3)}
    return summary
