"""Locate throughput on a 10,000-grid city with 1,000,000 points (issue: foundation).

Prints, in one run on the same data: re-locating 1,000,000 stored points in PostGIS (grid-
driven join, and the point-driven join on a sample for contrast), shapely's STRtree in-process,
locate_many, the bulk HTTP API, and single-point locate latency (function and HTTP API).
Targets: DB re-locate ≥ STRtree; bulk API ≥ 50,000 points/s; single API p50 ≤ 5 ms.
"""

import os
import time

import numpy as np

from tests.bench.common import ensure_city, header, percentiles, setup_django, timed

GRIDS = int(os.environ.get("BENCH_GRIDS", 10_000))
POINTS = int(os.environ.get("BENCH_POINTS", 1_000_000))


def ensure_points(conn, lng, lat):
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('bench_points') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("SELECT count(*) FROM bench_points")
            if cur.fetchone()[0] == len(lng):
                return
            cur.execute("DROP TABLE bench_points")
        with timed(f"store {len(lng):,} points (COPY + GiST index)"):
            cur.execute("CREATE TABLE bench_points (id bigint PRIMARY KEY, geom geometry(Point, 4326))")
            with cur.copy("COPY bench_points (id, geom) FROM STDIN") as copy:
                for i in range(len(lng)):
                    copy.write_row((i, f"SRID=4326;POINT({lng[i]:.7f} {lat[i]:.7f})"))
            cur.execute("CREATE INDEX bench_points_geom ON bench_points USING gist (geom)")
            cur.execute("CLUSTER bench_points USING bench_points_geom")
            cur.execute("ANALYZE bench_points")


def main():
    setup_django()
    from django.db import connection
    from django.test import Client

    from gridgov.accounts.models import Role, User
    from gridgov.areas.locate import _GridIndex, areas_revision, locate, locate_many, relocate_sql

    header(f"locate: {GRIDS:,} grids, {POINTS:,} points")
    n_grids = ensure_city(GRIDS)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom) e FROM areas_grid WHERE valid_to IS NULL) x"
        )
        x0, y0, x1, y1 = cur.fetchone()
    rng = np.random.default_rng(42)
    lng = rng.uniform(x0, x1, POINTS)
    lat = rng.uniform(y0, y1, POINTS)
    ensure_points(connection, lng, lat)
    print(f"  city: {n_grids:,} current grids, extent {x0:.3f},{y0:.3f} – {x1:.3f},{y1:.3f}")

    # 1. In PostGIS, driven by the grids.
    sql, params = relocate_sql("bench_points")
    with connection.cursor() as cur:
        cur.execute(sql.replace("SELECT DISTINCT", "SELECT count(*) FROM (SELECT DISTINCT", 1) + ") x", params)  # warm
        runs = []
        for _ in range(2):
            t0 = time.perf_counter()
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS relocated (point_id bigint, grid_id bigint)")
            cur.execute("TRUNCATE relocated")
            cur.execute(f"INSERT INTO relocated {sql}", params)
            runs.append(time.perf_counter() - t0)
        cur.execute("SELECT count(*) FROM relocated")
        db_found = cur.fetchone()[0]
    db_s = min(runs)
    db_rate = POINTS / db_s
    print(
        f"  {'PostGIS re-locate, grid-driven (best of 2, stored)':<58} {db_s:8.3f} s  {db_rate:,.0f} points/s"
        f"  ({db_found:,} in grids)"
    )

    # 2. Point-driven, on a sample, for contrast.
    sample = min(POINTS, 100_000)
    with connection.cursor() as cur:
        t0 = time.perf_counter()
        cur.execute(
            "SELECT count(g) FROM (SELECT (SELECT g.id FROM areas_grid g WHERE g.valid_to IS NULL AND "
            "ST_Covers(g.geom, p.geom) ORDER BY g.code LIMIT 1) g FROM bench_points p WHERE p.id < %s) x",
            [sample],
        )
        cur.fetchone()
        dt = time.perf_counter() - t0
    print(f"  {f'PostGIS point-driven (sample of {sample:,})':<58} {dt:8.3f} s  {sample / dt:,.0f} points/s")

    # 3. shapely STRtree in-process on the same points.
    with timed("STRtree: load grids + build tree"):
        index = _GridIndex(areas_revision())
    t0 = time.perf_counter()
    hit = index.query(lng, lat)
    tree_s = time.perf_counter() - t0
    tree_rate = POINTS / tree_s
    print(
        f"  {'STRtree query covered_by (in-process)':<58} {tree_s:8.3f} s  {tree_rate:,.0f} points/s"
        f"  ({int((hit >= 0).sum()):,} in grids)"
    )
    print(f"  ==> PostGIS / STRtree throughput ratio: {db_rate / tree_rate:.2f}  (target ≥ 1.0)")

    pts = np.column_stack([lng, lat])
    with timed(f"locate_many (index cached, {POINTS:,} points)", POINTS, "points"):
        locate_many(pts[:POINTS])

    # 4. HTTP APIs through the whole Django stack (in-process client: no network in the figure).
    user, _ = User.objects.get_or_create(username="bench-operator", defaults={"role": Role.OPERATOR})
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    batch = 10_000
    client.post("/api/v1/locate/bulk", {"points": pts[:batch].tolist()}, content_type="application/json")
    n_req = max(1, min(20, POINTS // batch))  # every request a full batch of distinct points
    t0 = time.perf_counter()
    for k in range(n_req):
        chunk = pts[k * batch : (k + 1) * batch].tolist()
        r = client.post("/api/v1/locate/bulk", {"points": chunk}, content_type="application/json")
        assert r.status_code == 200, r.content[:300]
    dt = time.perf_counter() - t0
    print(
        f"  {f'bulk API: {n_req} requests x {batch:,} points':<58} {dt:8.3f} s  {n_req * batch / dt:,.0f} points/s"
        "  (target ≥ 50,000)"
    )

    samples_fn, samples_api = [], []
    for i in range(2000):
        t0 = time.perf_counter()
        locate(float(lng[i]), float(lat[i]))
        samples_fn.append(time.perf_counter() - t0)
    for i in range(2000):
        t0 = time.perf_counter()
        r = client.get("/api/v1/locate", {"lng": lng[i], "lat": lat[i]})
        samples_api.append(time.perf_counter() - t0)
    for label, s in (("locate() function", samples_fn), ("single API GET /api/v1/locate", samples_api)):
        p = percentiles(s)
        print(
            f"  {label:<58} p50 {p['p50']:.2f} ms  p90 {p['p90']:.2f} ms  p99 {p['p99']:.2f} ms"
            + ("  (target p50 ≤ 5 ms)" if "API" in label else "")
        )


if __name__ == "__main__":
    main()
