"""The leader's heatmap at 1,000,000 and 10,000,000 appeals (issue: maps).

On the bench database with the 10,000-grid demo city: appeals are topped up to each size by
INSERT … SELECT generate_series in the database (whatever is already there counts, and stays
for re-runs), then put in received_at order on disk as a live system appends them; the roll-up
is rebuilt when appeals were added, then refreshed as the hourly job does. Timed in-process
(Django test client: URL routing, DRF, the SQL, the response), median of warm runs, with the
bytes sent: the leader's page /maps/leader/ with the filters its form sends (level, 7/30/90
days, a level-1 and a level-2 category), and exactly the URLs that page's script then calls
(read from its map-config). Target: the heatmap in at most 2 MB and 1 s at 10,000,000.

For contrast, the heat cells straight from the appeals table (no roll-up), and what a plain
folium HeatMap of raw points costs at the sizes it can still render (HTML bytes, Python render
time, and Chromium's time to draw it when /usr/bin/chromium is there).

    .venv/bin/python -m tests.bench.bench_maps    # BENCH_SIZES=1000000,10000000 BENCH_RAW_SIZES=10000,100000
"""

import os
import statistics
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from tests.bench.common import ensure_city, header, setup_django, timed

GRIDS = int(os.environ.get("BENCH_GRIDS", 10_000))
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "1000000,10000000").split(",") if s]
RAW_SIZES = [int(s) for s in os.environ.get("BENCH_RAW_SIZES", "10000,100000").split(",") if s]
RUNS = int(os.environ.get("BENCH_RUNS", 5))
DAYS = 365  # synthetic appeals are spread over the last year
ROOT = Path(__file__).resolve().parents[2]


def _grids_and_weights(rng):
    """Grid codes with a representative point each, and a skewed share of appeals: a smooth
    background times a few hotspots, as the hotspot bench simulates."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) p FROM areas_grid"
            " WHERE valid_to IS NULL) s ORDER BY code"
        )
        rows = cur.fetchall()
    codes = np.array([r[0] for r in rows])
    x = np.array([r[1] for r in rows])
    y = np.array([r[2] for r in rows])
    nx, ny = (x - x.min()) / np.ptp(x), (y - y.min()) / np.ptp(y)
    w = 1.0 + 0.5 * ny
    for cx, cy, h in ((0.3, 0.4, 6.0), (0.7, 0.6, 4.0), (0.5, 0.2, 3.0)):
        w += h * np.exp(-((nx - cx) ** 2 + (ny - cy) ** 2) / (2 * 0.04**2))
    w *= rng.gamma(2.0, 0.5, size=w.size)
    return codes, x, y, w / w.sum()


def _check_columns(cur, supplied):
    cur.execute("""SELECT column_name FROM information_schema.columns WHERE table_name = 'appeals_appeal'
                   AND is_nullable = 'NO' AND column_default IS NULL""")
    missing = sorted({r[0] for r in cur.fetchall()} - set(supplied))
    if missing:
        raise SystemExit(f"appeals_appeal has required columns this bench does not fill: {missing}")


COLUMNS = (
    "ticket_no",
    "source_system",
    "external_id",
    "channel",
    "kind",
    "text",
    "address_text",
    "appellant_name",
    "appellant_phone",
    "received_at",
    "position",
    "position_input",
    "grid_code",
    "location",
    "category_id",
    "classification",
    "time_limit",
    "risk",
    "duplicates",
    "route",
    "deadline",
    "warning_colour",
    "state",
    "closure_type",
    "created_at",
    "updated_at",
    "id",
)


def ensure_appeals(n):
    """Top the appeals table up to `n` rows, generated in the database (a million rows a
    statement: no Python formatting of ten million lines); returns the count."""
    from django.db import connection, transaction

    from gridgov.appeals.models import Category

    with connection.cursor() as cur:
        cur.execute("SELECT count(*), coalesce(max(id), 0) FROM appeals_appeal")
        have, max_id = cur.fetchone()
    if have >= n:
        print(f"  appeals already in the bench database: {have:,} (>= {n:,})", flush=True)
        return False
    add = n - have
    rng = np.random.default_rng(have + 12345)
    codes, gx, gy, p = _grids_and_weights(rng)
    cum = np.cumsum(p)
    cum[-1] = 1.0
    leaves = list(Category.objects.filter(level=3).values_list("pk", flat=True))
    with connection.cursor() as cur:
        _check_columns(cur, COLUMNS)
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bench_cells (cum float8 PRIMARY KEY, code varchar(15), x float8, y float8)"
        )
        cur.execute("TRUNCATE bench_cells")
        with cur.copy("COPY bench_cells (cum, code, x, y) FROM STDIN") as copy:
            for row in zip(cum.tolist(), codes.tolist(), gx.tolist(), gy.tolist()):
                copy.write_row(row)
        cur.execute("ANALYZE bench_cells")
        cur.execute("SELECT setseed(%s)", [((have % 1000) / 1000.0)])
    sql = f"""
    INSERT INTO appeals_appeal ({", ".join(COLUMNS)})
    SELECT 'BM' || lpad(g::text, 10, '0'), 'bench', 'bm-' || g, 'phone', 'complaint', '合成诉求', '', '', '',
           t.received, ST_SetSRID(ST_MakePoint(c.x + (t.r2 - 0.5) * 0.003, c.y + (t.r3 - 0.5) * 0.0024), 4326),
           '{{}}', c.code, '{{}}', (%s::bigint[])[1 + floor(t.r4 * %s)::int], '{{}}', '7d', '{{}}', '[]', '{{}}',
           t.received + interval '7 days',
           CASE WHEN t.open THEN (ARRAY['none', 'none', 'none', 'none', 'none', 'yellow', 'yellow', 'orange',
                                       'orange', 'red'])[1 + floor(t.r5 * 10)::int] ELSE 'none' END,
           CASE WHEN t.open THEN 'accepted' ELSE 'closed' END, '', t.received, t.received, g
    FROM generate_series(%s::bigint, %s::bigint) AS g
    CROSS JOIN LATERAL (
        SELECT r1, r2, r3, r4, r5, now() - age * interval '1 day' AS received, age < 15 * r6 AS open
        FROM (SELECT random() + g * 0 AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
                     random() AS r6, power(random(), 1.3) * {DAYS} AS age) u
    ) t
    CROSS JOIN LATERAL (SELECT code, x, y FROM bench_cells WHERE cum >= t.r1 ORDER BY cum LIMIT 1) c
    """
    with timed(f"insert {add:,} synthetic appeals ({have:,} there already)", add, "rows"):
        done = 0
        while done < add:
            k = min(1_000_000, add - done)
            first = max_id + done + 1
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(sql, [leaves or [None], len(leaves) or 1, first, first + k - 1])
            done += k
            print(f"    {have + done:,} rows", flush=True)
        with connection.cursor() as cur:
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('appeals_appeal', 'id'), (SELECT max(id) FROM appeals_appeal))"
            )
    cluster_by_time()
    return True


def cluster_by_time():
    """Put the appeals in the order of received_at on disk, as a live system appends them: the
    generator writes a year in random order, which would make every day's appeals (the maps'
    live tail) a read of one page per appeal."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'appeals_appeal'"
            " AND indexdef LIKE '%%btree (received_at)'"
        )
        (index,) = cur.fetchone()
        with timed("CLUSTER appeals_appeal by received_at, ANALYZE"):
            cur.execute(f'CLUSTER appeals_appeal USING "{index}"')
            cur.execute("ANALYZE appeals_appeal")


def leader():
    from gridgov.accounts.models import Role, User

    user, _ = User.objects.get_or_create(username="bench-city-leader", defaults={"role": Role.LEADER})
    return user


def measure(client, url, runs=RUNS):
    t0 = time.perf_counter()
    r = client.get(url)
    cold = time.perf_counter() - t0
    assert r.status_code == 200, (url, r.status_code, r.content[:300])
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = client.get(url)
        samples.append(time.perf_counter() - t0)
    return r, cold, statistics.median(samples)


def report_line(url, r, cold, warm):
    size = len(r.content)
    flag = "" if size <= 2 * 1024 * 1024 and warm <= 1.0 else "   <-- over 2 MB / 1 s"
    print(f"    {url:<72} {size:>11,} {cold:>7.3f} {warm:>7.3f}{flag}", flush=True)


def page_config(html):
    """The config the leader's page hands to static/js/map-page.js (json_script "map-config")."""
    import json
    import re

    found = re.search(r'<script id="map-config" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def leader_pages():
    """The leader page as a leader opens it, and with the filters its form sends: each level,
    the time ranges it offers (7, 30, 90 days), a level-1 and a level-2 category."""
    from maps.views import category_options

    options = category_options()
    l1 = next((c["code"] for c in options if c["level"] == 1), "")
    l2 = next((c["code"] for c in options if c["level"] == 2), "")
    return [
        "/maps/leader/",
        "/maps/leader/?days=90&level=grid",
        f"/maps/leader/?days=30&category={l1}&level=street",
        f"/maps/leader/?days=7&category={l2}&level=community",
        "/maps/leader/?days=7&level=grid",
    ]


def grid_tile_urls(template):
    """The grid tiles a 900×640 map fitted to the city asks for (the zoom maps.views picks)."""
    import math

    from maps.views import scope_grids, zoom_for

    w, s, e, n = scope_grids(None)[1]
    z = zoom_for(None, extent=(w, s, e, n))

    def xy(lng, lat):
        k = 2**z
        return int((lng + 180) / 360 * k), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * k)

    (x0, y0), (x1, y1) = xy(w, n), xy(e, s)
    return z, [
        template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
        for x in range(x0, x1 + 1)
        for y in range(y0, y1 + 1)
    ]


def report_tiles(client, template):
    """The page's grid tiles, one after another (a browser fetches them six at a time)."""
    z, urls = grid_tile_urls(template)
    size = cold = warm = 0
    for url in urls:
        r, c, w = measure(client, url, runs=2)
        size, cold, warm = size + len(r.content), cold + c, warm + w
    label = f"  grid tiles: {len(urls)} at z{z}, summed: {template.split('?')[1]}"
    print(f"    {label:<72} {size:>11,} {cold:>7.3f} {warm:>7.3f}", flush=True)


def live_grid_urls(api):
    """The tiled page's live refresh (api.grid_tiles, as map-page.js sends it): the grids that
    events named since the last refresh (here 20, a busy 800 ms), and after a reconnect every
    grid in the view, at the view fitted to the city and a quarter of its width and height (two
    zooms in, centred)."""
    if not api.get("grid_tiles"):
        return []
    from gridgov.areas.models import Grid
    from maps.views import scope_grids

    codes = list(Grid.objects.filter(valid_to__isnull=True).order_by("?").values_list("code", flat=True)[:20])
    w, s, e, n = scope_grids(None)[1]
    cx, cy, dx, dy = (w + e) / 2, (s + n) / 2, (e - w) / 8, (n - s) / 8
    views = {
        "grid_tiles, reconnect, fitted view": (w, s, e, n),
        "grid_tiles, reconnect, 2 zooms in": (cx - dx, cy - dy, cx + dx, cy + dy),
    }
    return [("grid_tiles, 20 grids named by events", api["grid_tiles"] + "&codes=" + ",".join(codes))] + [
        (k, api["grid_tiles"] + "&bbox=" + ",".join(f"{v:.5f}" for v in box)) for k, box in views.items()
    ]


def report_pages(client):
    """Each page, then the endpoints its script calls: on load the week series (and the grid
    tiles of the view when the page draws its grids from tiles); the choropleth (or, tiled, the
    grid counts of the view) and the range's heat cells on every appeal.changed / reload event
    (the slider reuses the embedded heat)."""
    print(f"    {'page / endpoint (as the page calls it)':<72} {'bytes':>11} {'cold s':>7} {'warm s':>7}")
    seen = {}  # in page order
    for page in leader_pages():
        r, cold, warm = measure(client, page)
        report_line(page, r, cold, warm)
        config = page_config(r.content.decode())
        api = config["api"]
        if config.get("grid_tiles"):
            report_tiles(client, config["grid_tiles"])
        for role, url in [(r, api.get(r)) for r in ("series", "heat", "choropleth")] + live_grid_urls(api):
            if not url:
                continue
            if url in seen:
                print(f"      {role}: {url} (above)")
                continue
            seen[url] = True
            r, cold, warm = measure(client, url)
            report_line(f"  {role}: {url}", r, cold, warm)
    return seen


def bench_size(n):
    from django.test import Client

    from maps import aggregates

    header(f"maps: leader heatmap at {n:,} appeals, {GRIDS:,} grids")
    added = ensure_appeals(n)
    if added or aggregates.rolled_through() is None:
        with timed("roll-up rebuild (every day, counts and rates)"):
            summary = aggregates.rollup_refresh(full=True)
        print(f"    day rows {summary['day_rows']:,}, week rows {summary['week_rows']:,}", flush=True)
    else:
        print("  roll-up already built on these appeals (a re-run): not rebuilt", flush=True)
    with timed("roll-up hourly refresh (the trailing 35 days)"):
        summary = aggregates.rollup_refresh()
    print(f"    day rows {summary['day_rows']:,}, week rows {summary['week_rows']:,}", flush=True)
    client = Client()
    client.force_login(leader())
    print("  the leader's page and what it fetches, with the roll-up (as served)")
    urls = report_pages(client)
    # The same answers from the appeals table alone, as if the roll-up had never run.
    print("  without the roll-up (appeals table only), for contrast")
    real = aggregates.rolled_through
    aggregates.rolled_through = lambda: None
    try:
        for url in [u for u in urls if "/heat?" in u][:2]:  # the default page's 90 days, then 30 days of "01"
            r, cold, warm = measure(client, url, runs=1)
            report_line(url, r, cold, warm)
    finally:
        aggregates.rolled_through = real


def serve_static(html_dir):
    """A throwaway HTTP server on 127.0.0.1:19xxx: the map HTML, and /static/ from the repo."""
    root = Path(html_dir)
    static = ROOT / "static"

    class Handler(SimpleHTTPRequestHandler):
        def translate_path(self, path):
            path = path.split("?", 1)[0]
            if path.startswith("/static/"):
                return str(static / path[len("/static/") :])
            return str(root / path.lstrip("/"))

        def log_message(self, *args):
            pass

    from tests.realtime.daphne import free_port

    server = ThreadingHTTPServer(("127.0.0.1", free_port(19000, 19999)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def browser_draw_seconds(url):
    """Seconds from navigation to the heat layer drawn (Leaflet.heat paints on load)."""
    if not Path("/usr/bin/chromium").exists():
        return None
    try:
        from tests.maps.browser import chromium
    except ImportError:
        return None
    with chromium() as context:
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(url, wait_until="load", timeout=300_000)
        page.wait_for_function("document.querySelector('canvas.leaflet-heatmap-layer') !== null", timeout=300_000)
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        return time.perf_counter() - t0


def bench_raw_folium():
    """What the aggregation avoids: raw points in a folium HeatMap."""
    from django.db import connection

    from maps import builders, offline

    header("contrast: a plain folium HeatMap of raw appeal points")
    print(f"    {'points':>10} {'HTML bytes':>14} {'render s':>9} {'browser s':>10}")
    tmp = tempfile.mkdtemp(prefix="gridgov-bench-maps-")
    server = serve_static(tmp)
    try:
        for k in RAW_SIZES:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT ST_X(position), ST_Y(position) FROM appeals_appeal WHERE position IS NOT NULL LIMIT %s", [k]
                )
                pts = cur.fetchall()
            t0 = time.perf_counter()
            layer = builders.heatmap_layer(pts)
            m = builders.grid_map({"type": "FeatureCollection", "features": []}, layers=[layer])
            html = m.get_root().render()
            render_s = time.perf_counter() - t0
            offline.assert_offline(html)
            name = f"raw-{k}.html"
            (Path(tmp) / name).write_text(html)
            draw = browser_draw_seconds(f"http://127.0.0.1:{server.server_port}/{name}")
            draw_s = "n/a" if draw is None else f"{draw:.2f}"
            print(f"    {len(pts):>10,} {len(html.encode()):>14,} {render_s:>9.2f} {draw_s:>10}", flush=True)
    finally:
        server.shutdown()


def main():
    setup_django()
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop in this thread
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    header(f"maps bench: {GRIDS:,} grids, sizes {', '.join(f'{n:,}' for n in SIZES)}")
    print(f"  grids in the city: {ensure_city(GRIDS):,}", flush=True)
    for n in SIZES:
        bench_size(n)
    bench_raw_folium()


if __name__ == "__main__":
    main()
