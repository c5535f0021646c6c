"""Map data computed in PostGIS: counts and the three rates per area, heat cells, clustered
open appeals and vector tiles. Every function takes the viewer's jurisdiction (code prefixes,
None for the whole city, from gridgov.accounts.access) or the viewer itself, and never returns
a row outside it.

Counts come from three sources glued by UNION ALL, chosen per request by `plan_segments`:
whole weeks and single days from the roll-up (maps.models.AppealCount), and the days the
roll-up has not reached yet straight from the appeals table. The answer is the same whichever
mix is used (tests/maps/test_aggregates.py compares them); only the time differs.
"""

import json
import math
import time as _time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.gis.db.models import Collect
from django.contrib.gis.db.models.functions import Centroid, SnapToGrid
from django.contrib.gis.geos import Polygon
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from gridgov.appeals.access import appeals_visible_to
from gridgov.appeals.workflow import OPEN_STATES, STATE_LABELS
from gridgov.areacodes import LEVEL_LENGTH
from gridgov.areas.views import tolerance_for_zoom

from .models import AppealCount, RollupState

LEVEL_TABLE = {
    "district": "areas_district",
    "street": "areas_street",
    "community": "areas_community",
    "grid": "areas_grid",
}
RESPONSE_WINDOW = timedelta(hours=2)  # 响应率: accepted within two hours of dispatch
# The roll-up job recounts this many trailing days every run: time limits are at most 15
# (working) days, so the due / resolved counters of older days have settled by then.
REFRESH_DAYS = 35
COLOURS = ("red", "orange", "yellow", "none")
# Above this many open appeals in view, points are clustered in the database.
CLUSTER_ABOVE = 300
CLUSTER_PIXELS = 60
TILE_EXTENT = 4096
# Below this zoom a tile carries one feature per 8×8 tile-pixel cell (with its count), not
# one per appeal: a city-wide tile of 500,000 open appeals stays a few hundred kilobytes.
TILE_POINTS_FROM_ZOOM = 14
TILE_CELL = 8
# Grid tiles are drawn 256 pixels wide: 512 units is two per pixel (a retina screen's), and a
# city-wide zoom-11 tile of 2,500 grids a third of its size at 4096.
GRID_TILE_EXTENT = 512


def tz():
    return ZoneInfo(settings.TIME_ZONE)


# --- time windows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Local days [since, until) and a category code prefix ("" = every category)."""

    since: date
    until: date
    category: str = ""

    @classmethod
    def last_days(cls, days, category="", today=None):
        today = today or timezone.localdate()
        return cls(today - timedelta(days=days - 1), today + timedelta(days=1), category)


def monday(day):
    return day - timedelta(days=day.weekday())


def local_midnight(day):
    return datetime.combine(day, time.min, tzinfo=tz())


def plan_segments(since, until, rolled_through):
    """Split local days [since, until) into ("week", first, end), ("day", first, end) and
    ("live", first, end) segments: whole Monday–Sunday weeks and loose days up to
    `rolled_through` from the roll-up, everything after it from the appeals table."""
    segments = []
    rolled_end = since
    if rolled_through is not None:
        rolled_end = max(since, min(until, rolled_through + timedelta(days=1)))
    if rolled_end > since:
        first_week = since + timedelta(days=(7 - since.weekday()) % 7)
        weeks_end = monday(rolled_end)
        if first_week < weeks_end:
            if since < first_week:
                segments.append(("day", since, first_week))
            segments.append(("week", first_week, weeks_end))
            if weeks_end < rolled_end:
                segments.append(("day", weeks_end, rolled_end))
        else:
            segments.append(("day", since, rolled_end))
    if rolled_end < until:
        segments.append(("live", rolled_end, until))
    return segments


def rolled_through():
    return RollupState.objects.values_list("rolled_through", flat=True).first()


# --- SQL pieces ----------------------------------------------------------------------------------


def prefix_condition(column, prefixes):
    """SQL (and params) keeping rows whose `column` starts with one of `prefixes`; None = all.
    A range rather than LIKE: the database collation is not "C", so LIKE 'x%' cannot use a
    btree index, a range can (':' sorts right after '9')."""
    if prefixes is None:
        return "TRUE", []
    if not prefixes:
        return "FALSE", []
    parts, params = [], []
    for p in prefixes:
        parts.append(f"({column} >= %s AND {column} < %s)")
        params += [p, p + ":"]
    return "(" + " OR ".join(parts) + ")", params


def facts_sql(*, with_rates):
    """One row per located appeal received in [%(start)s, %(end)s): its local day, grid,
    category code and the rate counters. Params: start, end, now, tz."""
    if with_rates:
        rates = """,
           (ev.dispatched_at IS NOT NULL)::int AS dispatched,
           (ev.accepted_at IS NOT NULL AND ev.accepted_at <= ev.dispatched_at + %(response)s)::int AS responded,
           (a.deadline <= %(now)s AND a.state <> 'merged')::int AS due,
           (a.deadline <= %(now)s AND a.state IN ('resolved', 'closed'))::int AS resolved
    FROM appeals_appeal a
    LEFT JOIN appeals_category c ON c.id = a.category_id
    LEFT JOIN LATERAL (
        SELECT min(e.at) FILTER (WHERE e.event = 'dispatch') AS dispatched_at,
               min(e.at) FILTER (WHERE e.event = 'accept') AS accepted_at
        FROM appeals_appealevent e
        WHERE e.appeal_id = a.id AND e.event IN ('dispatch', 'accept')
    ) ev ON TRUE"""
    else:
        rates = """,
           0 AS dispatched, 0 AS responded, 0 AS due, 0 AS resolved
    FROM appeals_appeal a
    LEFT JOIN appeals_category c ON c.id = a.category_id"""
    return f"""
    SELECT (a.received_at AT TIME ZONE %(tz)s)::date AS day, a.grid_code, coalesce(c.code, '') AS cat,
           1 AS appeals{rates}
    WHERE a.grid_code <> '' AND a.received_at >= %(start)s AND a.received_at < %(end)s"""


def _named(sql, params):
    """Turn %(name)s placeholders into positional ones (psycopg takes one style per query)."""
    out, values = [], []
    i = 0
    while True:
        j = sql.find("%(", i)
        if j < 0:
            out.append(sql[i:])
            break
        k = sql.index(")s", j)
        out.append(sql[i:j] + "%s")
        values.append(params[sql[j + 2 : k]])
        i = k + 2
    return "".join(out), values


def counts_sql(window, prefixes, *, with_rates=True, bucket=False, now=None):
    """SQL selecting (grid_code, bucket, appeals, dispatched, responded, due, resolved) rows for
    `window` inside `prefixes`, from whichever sources plan_segments picks. `bucket` is the
    Monday of the row's week when asked for, else NULL. Returns (sql, params)."""
    now = now or timezone.now()
    cat = window.category or ""
    parts, params = [], []
    # Week rows exist per category prefix down to level 2, day rows for every category only
    # (see maps.models): a leaf filter, and a prefix filter's loose days, count the appeals.
    rolled = None if len(cat) > 4 else rolled_through()
    for kind, first, end in plan_segments(window.since, window.until, rolled):
        if kind == "day" and cat:
            kind = "live"
        if kind in ("week", "day"):
            scope, scope_params = prefix_condition("grid_code", prefixes)
            week = "period" if kind == "week" else "date_trunc('week', period)::date"
            parts.append(
                f"SELECT grid_code, {week if bucket else 'NULL::date'} AS bucket, appeals, dispatched, responded,"
                f" due, resolved FROM maps_appealcount WHERE category = %s AND kind = %s AND period >= %s"
                f" AND period < %s AND {scope}"
            )
            params += [cat, kind, first, end, *scope_params]
        else:
            scope, scope_params = prefix_condition("a.grid_code", prefixes)
            inner, inner_params = _named(
                facts_sql(with_rates=with_rates),
                {
                    "tz": settings.TIME_ZONE,
                    "start": local_midnight(first),
                    "end": local_midnight(end),
                    "now": now,
                    "response": RESPONSE_WINDOW,
                },
            )
            cat_sql, cat_params = "", []
            if cat:
                cat_sql, cat_params = " AND left(c.code, %s) = %s", [len(cat), cat]
            week = "date_trunc('week', day)::date" if bucket else "NULL::date"
            parts.append(
                f"SELECT grid_code, {week} AS bucket, appeals, dispatched, responded, due, resolved FROM ("
                f"{inner} AND {scope}{cat_sql}) live"
            )
            params += [*inner_params, *scope_params, *cat_params]
    if not parts:
        return (
            "SELECT NULL::varchar AS grid_code, NULL::date AS bucket, 0 AS appeals, 0 AS dispatched,"
            " 0 AS responded, 0 AS due, 0 AS resolved WHERE FALSE"
        ), []
    return "\nUNION ALL\n".join(parts), params


@contextmanager
def _cursor():
    """A cursor with JIT off: PostgreSQL's cost model sends these aggregates to the JIT compiler,
    which then spends seconds compiling what runs in a fraction of one."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL jit = off")
        yield cur


def _fetch_json(sql, params):
    """The one JSON value `sql` selects, as text: cast in the database, so psycopg does not parse
    a megabyte into Python objects for it to be serialised again."""
    with _cursor() as cur:
        cur.execute(f"SELECT ({sql})::text", params)
        return cur.fetchone()[0]


# --- counts and rates per area -----------------------------------------------------------------


def area_levels_for(prefixes):
    """Levels a jurisdiction can be drawn at: its own level and the ones below it."""
    if prefixes is None:
        return list(LEVEL_LENGTH)
    if not prefixes:
        return []
    shortest = min(len(p) for p in prefixes)
    return [level for level, n in LEVEL_LENGTH.items() if n >= shortest]


GRID_SUMS = """SELECT grid_code, sum(appeals)::int AS appeals, sum(dispatched)::int AS dispatched,
       sum(responded)::int AS responded, sum(due)::int AS due, sum(resolved)::int AS resolved
FROM counts GROUP BY 1"""


def _areas_select(source, prefixes, *, level, zoom, parent, counts_only, geometry=True, bbox=None, codes=None):
    """The SELECT of area_counts_geojson over `source`, a relation of (grid_code, appeals,
    dispatched, responded, due, resolved) rows: the window's counts, or their sums per grid.
    Returns (sql, params)."""
    n = LEVEL_LENGTH[level]
    area_scope, area_params = prefix_condition("ar.code", prefixes)
    parent_scope, parent_params = prefix_condition("ar.code", [parent] if parent else None)
    box_scope, box_params = ("ar.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)", list(bbox)) if bbox else ("TRUE", [])
    code_scope, code_params = ("ar.code = ANY(%s)", [list(codes)]) if codes else ("TRUE", [])
    tol = tolerance_for_zoom(zoom)
    geom = "ST_SimplifyPreserveTopology(ar.geom, %s)" if tol else "ar.geom"
    geom_params = [tol] if tol else []
    # About the simplification tolerance (a quarter pixel): 1e-4 degrees is 11 m, a quarter pixel at zoom 12.
    precision = 6 if zoom is None or zoom > 14 else 5 if zoom > 12 else 4
    geojson = f"ST_AsGeoJSON({geom}, {precision})::json"
    if not geometry:
        geojson, geom_params = "NULL::json", []
    feature = f"""json_build_object(
            'type', 'Feature', 'id', ar.code,
            'geometry', {geojson},
            'properties', json_build_object(
                'code', ar.code, 'name', ar.name, 'level', %s,
                'count', coalesce(agg.appeals, 0),
                'dispatched', coalesce(agg.dispatched, 0), 'responded', coalesce(agg.responded, 0),
                'due', coalesce(agg.due, 0), 'resolved', coalesce(agg.resolved, 0),
                'response_rate', CASE WHEN agg.dispatched > 0 THEN round(agg.responded::numeric / agg.dispatched, 4) END,
                'resolution_rate', CASE WHEN agg.due > 0 THEN round(agg.resolved::numeric / agg.due, 4) END
            ))"""
    feature_params = [*geom_params, level]
    if counts_only:
        feature = """json_build_object('type', 'Feature', 'id', ar.code, 'geometry', NULL,
            'properties', json_build_object('code', ar.code, 'count', coalesce(agg.appeals, 0)))"""
        feature_params = []
    sql = f"""
    WITH agg AS (
        SELECT left(grid_code, %s) AS code, sum(appeals)::int AS appeals, sum(dispatched)::int AS dispatched,
               sum(responded)::int AS responded, sum(due)::int AS due, sum(resolved)::int AS resolved
        FROM {source} GROUP BY 1
    )
    SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(f ORDER BY code), '[]'::json))
    FROM (
        SELECT ar.code, {feature} AS f
        FROM {LEVEL_TABLE[level]} ar LEFT JOIN agg ON agg.code = ar.code
        WHERE ar.valid_to IS NULL AND {area_scope} AND {parent_scope} AND {box_scope} AND {code_scope}
    ) s
    """
    return sql, [n, *feature_params, *area_params, *parent_params, *box_params, *code_params]


def area_counts_geojson(
    window, prefixes, *, level="grid", zoom=None, parent="", counts_only=False, bbox=None, codes=None
):
    """A FeatureCollection (JSON text, built by PostGIS) of the current areas of `level` inside
    `prefixes` (and `parent`), with per area: count, dispatched, responded, due, resolved,
    response_rate and resolution_rate (null where nothing was dispatched / due). Geometry is
    simplified to about a quarter pixel at `zoom`. `counts_only`: no geometry and only code and
    count, what a page needs to recolour areas it has drawn (10,000 grids: about 1.3 MB, not 5).
    `bbox` (west, south, east, north): only the areas whose box overlaps it (the map's view).
    `codes`: only these areas (the grids that live events named)."""
    counts, params = counts_sql(window, prefixes, with_rates=not counts_only)
    areas, area_params = _areas_select(
        "counts", prefixes, level=level, zoom=zoom, parent=parent, counts_only=counts_only, bbox=bbox, codes=codes
    )
    return _fetch_json(f"WITH counts AS ({counts}) SELECT ({areas})", [*params, *area_params])


TOTALS_SELECT = """SELECT coalesce(sum(appeals), 0)::int, coalesce(sum(dispatched), 0)::int,
    coalesce(sum(responded), 0)::int, coalesce(sum(due), 0)::int, coalesce(sum(resolved), 0)::int FROM {source}"""


def _totals_dict(appeals, dispatched, responded, due, resolved):
    return {
        "count": appeals,
        "dispatched": dispatched,
        "responded": responded,
        "due": due,
        "resolved": resolved,
        "response_rate": round(responded / dispatched, 4) if dispatched else None,
        "resolution_rate": round(resolved / due, 4) if due else None,
    }


def totals(window, prefixes):
    """The jurisdiction's own figures for the window: one dict."""
    counts, params = counts_sql(window, prefixes)
    with _cursor() as cur:
        cur.execute(f"WITH counts AS ({counts}) " + TOTALS_SELECT.format(source="counts"), params)
        return _totals_dict(*cur.fetchone())


# --- heat cells --------------------------------------------------------------------------------


HEAT_SELECT = """
    WITH agg AS (SELECT grid_code AS code, sum(appeals)::int AS n FROM {source} GROUP BY 1)
    SELECT json_build_object(
        'cells', coalesce(json_agg(json_build_array(round(ST_Y(p)::numeric, 5), round(ST_X(p)::numeric, 5), n)
                                   ORDER BY code), '[]'::json),
        'total', coalesce(sum(n), 0), 'max', coalesce(max(n), 0))
    FROM (SELECT agg.code, agg.n, ST_PointOnSurface(g.geom) AS p
          FROM agg JOIN areas_grid g ON g.code = agg.code AND g.valid_to IS NULL) s
    """


def heat_cells_json(window, prefixes):
    """Heat cells, one per grid with appeals, at the grid's point on surface:
    {"cells": [[lat, lng, count], ...], "total": n, "max": m} as JSON text. Ten thousand grids
    make about 250 KB whatever the number of appeals behind them."""
    counts, params = counts_sql(window, prefixes, with_rates=False)
    return _fetch_json(f"WITH counts AS ({counts}) SELECT ({HEAT_SELECT.format(source='counts')})", params)


def leader_data(window, prefixes, *, level="grid", zoom=None, geometry=True):
    """What the leader's page shows, from one statement: the window's counts are read once and
    summed per grid once, then drawn three ways. Returns (areas JSON text as area_counts_geojson,
    heat JSON text as heat_cells_json, totals dict as totals); the same answers as those three,
    in about the time of one of them. `geometry=False`: the areas without their geometry (the
    page draws them from vector tiles)."""
    counts, params = counts_sql(window, prefixes)
    areas, area_params = _areas_select(
        "grids", prefixes, level=level, zoom=zoom, parent="", counts_only=False, geometry=geometry
    )
    sql = f"""
    WITH counts AS ({counts}),
    grids AS MATERIALIZED ({GRID_SUMS})
    SELECT ({areas})::text, ({HEAT_SELECT.format(source="grids")})::text, t.*
    FROM ({TOTALS_SELECT.format(source="grids")}) t
    """
    with _cursor() as cur:
        cur.execute(sql, [*params, *area_params])
        areas_text, heat_text, *sums = cur.fetchone()
    return areas_text, heat_text, _totals_dict(*sums)


def weekly_series_json(weeks, prefixes, category="", today=None):
    """The slider's data: appeals per grid per week for the last `weeks` weeks (the current one
    included, partial): {"periods": [Monday, ...], "cells": [[lat, lng, [n per week]], ...]}.
    A plain list per cell: 10,000 grids × 13 weeks as objects were twice the bytes."""
    today = today or timezone.localdate()
    first = monday(today) - timedelta(weeks=weeks - 1)
    window = Window(first, today + timedelta(days=1), category)
    counts, params = counts_sql(window, prefixes, with_rates=False, bucket=True)
    mondays = [first + timedelta(weeks=i) for i in range(weeks)]
    # One group per grid with a column per week: grouping by (grid, week) and filling the
    # gaps sorted some 130,000 rows by grid code in the database's collation, most of the time.
    week_sums = ", ".join(["coalesce(sum(appeals) FILTER (WHERE bucket = %s), 0)"] * weeks)
    sql = f"""
    WITH counts AS ({counts}),
    per_grid AS (SELECT grid_code AS code, json_build_array({week_sums}) AS weeks FROM counts GROUP BY 1)
    SELECT coalesce(json_agg(json_build_array(round(ST_Y(p)::numeric, 5), round(ST_X(p)::numeric, 5), weeks)
                             ORDER BY code), '[]'::json)
    FROM (SELECT per_grid.code, per_grid.weeks, ST_PointOnSurface(g.geom) AS p
          FROM per_grid JOIN areas_grid g ON g.code = per_grid.code AND g.valid_to IS NULL) s
    """
    cells = _fetch_json(sql, [*params, *mondays])
    periods = [m.isoformat() for m in mondays]
    return '{"periods": ' + json.dumps(periods) + ', "cells": ' + cells + "}"


# --- open appeals as points ---------------------------------------------------------------------


def open_appeals(user, *, states=None, colours=None, grid="", bbox=None):
    """The open appeals `user` may see that have a position, filtered."""
    qs = appeals_visible_to(user).filter(position__isnull=False)
    qs = qs.filter(state__in=sorted(states or OPEN_STATES))
    if colours:
        qs = qs.filter(warning_colour__in=colours)
    if grid:
        qs = qs.filter(grid_code__startswith=grid)
    if bbox is not None:
        qs = qs.filter(position__bboverlaps=bbox)
    return qs


def cluster_size_for_zoom(zoom):
    """Degrees of longitude covered by CLUSTER_PIXELS screen pixels at this zoom."""
    return 360.0 / (256 * 2 ** max(0, min(int(zoom), 22))) * CLUSTER_PIXELS


def open_appeal_points(user, *, zoom=13, states=None, colours=None, grid="", bbox=None, cluster_above=CLUSTER_ABOVE):
    """Open appeals by warning colour as GeoJSON Point features (dict). Up to `cluster_above`
    of them one feature each; above that, one feature per cell of about CLUSTER_PIXELS
    screen pixels at `zoom`, grouped in the database, with its count per colour and the worst
    colour as its own. No personal data: ticket, category, state, colour and deadline."""
    qs = open_appeals(user, states=states, colours=colours, grid=grid, bbox=bbox)
    rows = list(
        qs.order_by("received_at", "pk").values(
            "pk",
            "ticket_no",
            "position",
            "warning_colour",
            "state",
            "deadline",
            "grid_code",
            "category__name",
            "department__name",
        )[: cluster_above + 1]
    )
    if len(rows) <= cluster_above:
        features = [
            {
                "type": "Feature",
                "id": f"a{r['pk']}",
                "geometry": {"type": "Point", "coordinates": [round(r["position"].x, 6), round(r["position"].y, 6)]},
                "properties": {
                    "kind": "appeal",
                    "ticket_no": r["ticket_no"],
                    "colour": r["warning_colour"],
                    "state": r["state"],
                    "deadline": r["deadline"].isoformat() if r["deadline"] else None,
                    "grid_code": r["grid_code"],
                    "category": r["category__name"] or "",
                    "department": r["department__name"] or "",
                    "count": 1,
                    "color": r["warning_colour"],
                    "label": f"{r['ticket_no']} · {r['category__name'] or '未分类'} · "
                    f"{STATE_LABELS.get(r['state'], r['state'])}",
                },
            }
            for r in rows
        ]
        return {"type": "FeatureCollection", "clustered": False, "features": features}
    size = cluster_size_for_zoom(zoom)
    cells = (
        qs.order_by()
        .annotate(cell=SnapToGrid("position", size))
        .values("cell")
        .annotate(
            n=Count("pk"),
            centre=Centroid(Collect("position")),
            **{c: Count("pk", filter=Q(warning_colour=c)) for c in COLOURS},
        )
        .values("n", "centre", *COLOURS)
    )
    features = []
    for i, c in enumerate(sorted(cells, key=lambda c: (c["centre"].x, c["centre"].y))):
        worst = next((colour for colour in COLOURS if c[colour]), "none")
        features.append(
            {
                "type": "Feature",
                "id": f"c{i}",
                "geometry": {"type": "Point", "coordinates": [round(c["centre"].x, 6), round(c["centre"].y, 6)]},
                "properties": {
                    "kind": "cluster",
                    "count": c["n"],
                    "colour": worst,
                    "color": worst,
                    **{k: c[k] for k in COLOURS},
                    "label": f"{c['n']}件（红{c['red']} 橙{c['orange']} 黄{c['yellow']} 正常{c['none']}）",
                },
            }
        )
    return {"type": "FeatureCollection", "clustered": True, "features": features}


# --- vector tiles ------------------------------------------------------------------------------


def tile_bounds(z, x, y):
    """(west, south, east, north) in degrees of web-mercator tile z/x/y."""
    n = 2**z

    def lat(yy):
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * yy / n))))

    return x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y)


def appeals_tile(user, z, x, y, *, states=None, colours=None):
    """An MVT tile (bytes) of the open appeals `user` may see, layer "appeals". From zoom
    TILE_POINTS_FROM_ZOOM one point per appeal (ticket_no, colour, state); below it one point
    per TILE_CELL-pixel cell with its count and worst colour."""
    west, south, east, north = tile_bounds(z, x, y)
    # A 64-pixel margin, as ST_AsMVTGeom's buffer, so symbols on a tile edge are not cut.
    mx, my = (east - west) * 64 / TILE_EXTENT, (north - south) * 64 / TILE_EXTENT
    bbox = Polygon.from_bbox((west - mx, max(south - my, -85.06), east + mx, min(north + my, 85.06)))
    bbox.srid = 4326
    qs = open_appeals(user, states=states, colours=colours, bbox=bbox).order_by()
    inner, params = qs.values("ticket_no", "warning_colour", "state", "position").query.sql_with_params()
    mvt_geom = f"ST_AsMVTGeom(ST_Transform(q.position, 3857), ST_TileEnvelope(%s, %s, %s), {TILE_EXTENT}, 64, TRUE)"
    severity = "CASE q.warning_colour WHEN 'red' THEN 3 WHEN 'orange' THEN 2 WHEN 'yellow' THEN 1 ELSE 0 END"
    if z >= TILE_POINTS_FROM_ZOOM:
        sql = f"""
        SELECT ST_AsMVT(t, 'appeals', {TILE_EXTENT}, 'geom') FROM (
            SELECT {mvt_geom} AS geom, q.ticket_no, q.warning_colour AS colour, q.state, 1 AS count
            FROM ({inner}) q
        ) t WHERE t.geom IS NOT NULL"""
    else:
        sql = f"""
        SELECT ST_AsMVT(t, 'appeals', {TILE_EXTENT}, 'geom') FROM (
            SELECT ST_Centroid(ST_Collect(g.geom)) AS geom, count(*)::int AS count,
                   (ARRAY['none', 'yellow', 'orange', 'red'])[max(g.severity) + 1] AS colour
            FROM (SELECT {mvt_geom} AS geom, {severity} AS severity FROM ({inner}) q) g
            WHERE g.geom IS NOT NULL
            GROUP BY ST_SnapToGrid(g.geom, {TILE_CELL}, {TILE_CELL})
        ) t"""
    with connection.cursor() as cur:
        # The envelope's placeholders come before the inner query's in both statements.
        cur.execute(sql, [z, x, y, *params])
        value = cur.fetchone()[0]
    return bytes(value or b"")


def grids_tile(window, prefixes, z, x, y):
    """An MVT tile (bytes) of the current grids inside `prefixes` that cross tile z/x/y, layer
    "grids", with code, name and count (appeals in `window`): the leader's grid choropleth when
    the scope has too many grids to embed in the page. Only the tile's grids are counted."""
    counts, params = counts_sql(window, prefixes, with_rates=False)
    scope, scope_params = prefix_condition("g.code", prefixes)
    sql = f"""
    WITH tile AS MATERIALIZED (
        SELECT g.code, g.name, ST_AsMVTGeom(ST_Transform(g.geom, 3857), ST_TileEnvelope(%s, %s, %s),
                                            {GRID_TILE_EXTENT}, 8, TRUE) AS geom
        FROM areas_grid g
        WHERE g.valid_to IS NULL AND {scope}
          AND g.geom && ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => 8.0 / {GRID_TILE_EXTENT}), 4326)
    ),
    counts AS ({counts}),
    agg AS (SELECT grid_code AS code, sum(appeals)::int AS n FROM counts
            WHERE grid_code IN (SELECT code FROM tile) GROUP BY 1)
    SELECT ST_AsMVT(t, 'grids', {GRID_TILE_EXTENT}, 'geom') FROM (
        SELECT tile.geom, tile.code, tile.name, coalesce(agg.n, 0) AS count
        FROM tile LEFT JOIN agg ON agg.code = tile.code WHERE tile.geom IS NOT NULL
    ) t"""
    with _cursor() as cur:
        cur.execute(sql, [z, x, y, *scope_params, z, x, y, *params])
        value = cur.fetchone()[0]
    return bytes(value or b"")


# --- the roll-up -------------------------------------------------------------------------------


def rollup_refresh(*, since=None, today=None, now=None, full=False):
    """Recount AppealCount from the appeals table for local days [since, today), and move
    RollupState.rolled_through to yesterday. `since` defaults to REFRESH_DAYS before today
    (and never after the old rolled_through, so a job that was down for longer catches up),
    to the first appeal on the first run or with `full` (after a bulk import of old appeals,
    which the trailing window would not see). Day rows are recounted from `since`, week rows for
    every week that overlaps it (from its Monday). One transaction: readers see the old rows
    or the new ones, never a mix. Returns a summary dict."""
    t0 = _time.perf_counter()
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    with transaction.atomic():
        state, _ = RollupState.objects.select_for_update().get_or_create(pk=1)
        if since is None:
            if state.rolled_through is None or full:
                with connection.cursor() as cur:
                    cur.execute(
                        "SELECT (min(received_at) AT TIME ZONE %s)::date FROM appeals_appeal", [settings.TIME_ZONE]
                    )
                    since = cur.fetchone()[0] or today
            else:
                since = min(today - timedelta(days=REFRESH_DAYS), state.rolled_through + timedelta(days=1))
        since = monday(min(since, today))
        facts, params = _named(
            facts_sql(with_rates=True),
            {
                "tz": settings.TIME_ZONE,
                "start": local_midnight(since),
                "end": local_midnight(today),
                "now": now,
                "response": RESPONSE_WINDOW,
            },
        )
        with connection.cursor() as cur:
            cur.execute("SET LOCAL jit = off")
            cur.execute("SET LOCAL work_mem = '256MB'")  # one job an hour: sort the groups in memory
            cur.execute("DELETE FROM maps_appealcount WHERE period >= %s", [since])
            cur.execute(
                f"""
                INSERT INTO maps_appealcount (kind, period, grid_code, category, appeals, dispatched, responded, due,
                                              resolved)
                SELECT 'day', f.day, f.grid_code, '', sum(f.appeals), sum(f.dispatched), sum(f.responded),
                       sum(f.due), sum(f.resolved)
                FROM ({facts}) f GROUP BY f.day, f.grid_code ORDER BY f.day, f.grid_code
                """,
                params,
            )
            days = cur.rowcount
            # Each appeal once per prefix of its category: "", level 1, level 2 (an appeal filed
            # under a level-1 or level-2 category has fewer prefixes). Written in the order a
            # city-wide read takes them (category, week, grid): the 10,000 rows of one week and
            # prefix then sit on a hundred pages, not on ten thousand among the other prefixes'.
            cur.execute(
                f"""
                INSERT INTO maps_appealcount (kind, period, grid_code, category, appeals, dispatched, responded, due,
                                              resolved)
                SELECT 'week', date_trunc('week', f.day)::date, f.grid_code, k.cat, sum(f.appeals), sum(f.dispatched),
                       sum(f.responded), sum(f.due), sum(f.resolved)
                FROM ({facts}) f
                CROSS JOIN LATERAL unnest(CASE WHEN length(f.cat) >= 4 THEN ARRAY['', left(f.cat, 2), left(f.cat, 4)]
                                               WHEN f.cat <> '' THEN ARRAY['', f.cat] ELSE ARRAY[''] END) AS k(cat)
                GROUP BY 2, 3, 4 ORDER BY 4, 2, 3
                """,
                params,
            )
            weeks = cur.rowcount
        state.rolled_through = today - timedelta(days=1)
        state.refreshed_at = now
        state.seconds = _time.perf_counter() - t0
        state.save()
    with connection.cursor() as cur:
        cur.execute("ANALYZE maps_appealcount")
    return {
        "since": since,
        "rolled_through": state.rolled_through,
        "day_rows": days,
        "week_rows": weeks,
        "seconds": round(_time.perf_counter() - t0, 3),
    }


def rollup_clear():
    """Forget the roll-up: every count is then read from the appeals table (tests, rebuilds)."""
    with transaction.atomic():
        AppealCount.objects.all().delete()
        RollupState.objects.all().delete()
