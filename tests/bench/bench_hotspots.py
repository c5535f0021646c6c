"""Hotspot statistics, in two parts.

1. Lattice (no database): a 100 × 100 lattice (10,000 grids) with 1,000,000 appeals. Times,
   warm and as the median of several runs, our gi_star + FDR + classify (from neighbour lists,
   and from weights built once as a daily job over many windows would) against esda's
   G_Local(star=True, permutations=0) on the same counts and queen weights, and checks that
   the z-scores agree. Target for our side: well under 10 s.

2. Database: `hotspots_recompute` on the bench database (tests/bench/common.py) with the
   10,000-grid demo city (seed 7, loaded if missing, as the locate bench does) and 1,000,000
   appeals COPYed in once (source_system 'bench-hotspots', reused on later runs): counts in SQL
   for the 7- and 30-day windows and the 4 earlier windows of each, Gi* + FDR + trend for every
   category group, DBSCAN spots, stored as Hotspot rows. Warm, median of BENCH_RUNS; target
   ≤ 10 s. Beside it, esda's G_Local on the same counts and the same weights.

   The synthetic appeals lie in the 150 days before 2020-07-01 (BENCH_ANCHOR), so that other
   benchmarks' appeals in the same table (the maps bench adds recent ones) fall outside every
   window and the figures stay those of 1,000,000 appeals.

    .venv/bin/python -m tests.bench.bench_hotspots           # both parts
    BENCH_PARTS=db .venv/bin/python -m tests.bench.bench_hotspots
"""

import itertools
import os
import statistics
import time
import warnings

import numpy as np

from tests.bench.common import ensure_city, header, setup_django, timed

SIDE = int(os.environ.get("BENCH_SIDE", 100))
APPEALS = int(os.environ.get("BENCH_APPEALS", 1_000_000))
RUNS = int(os.environ.get("BENCH_RUNS", 7))


def median_seconds(fn, runs):
    fn()  # warm: imports, caches, first allocations
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def simulated_counts(side, appeals, seed=7):
    """Appeals spread over the lattice by a smooth background plus three hotspots."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:side, 0:side] / side
    intensity = 1.0 + 0.5 * r  # denser towards the south
    for cr, cc, height in ((0.2, 0.3, 3.0), (0.7, 0.7, 2.0), (0.5, 0.1, 1.5)):
        intensity += height * np.exp(-((r - cr) ** 2 + (c - cc) ** 2) / (2 * 0.03**2))
    return rng.multinomial(appeals, (intensity / intensity.sum()).ravel())


def lattice():
    import esda
    import libpysal

    from gridgov.whistles.stats import BIN_NAMES, hotspots, weights_matrix

    n = SIDE * SIDE
    print(f"\n=== hotspots: {SIDE}×{SIDE} lattice, {n:,} units, {APPEALS:,} appeals, median of {RUNS} ===", flush=True)
    t0 = time.perf_counter()
    w = libpysal.weights.lat2W(SIDE, SIDE, rook=False)
    w.transform = "B"
    m = w.sparse.tocsr()
    neighbours = np.split(m.indices, m.indptr[1:-1])
    counts = simulated_counts(SIDE, APPEALS)
    print(f"  {'set-up (libpysal queen, multinomial counts)':<56} {time.perf_counter() - t0:8.3f} s")

    ours_lists = median_seconds(lambda: hotspots(counts, neighbours), RUNS)
    prebuilt = weights_matrix(neighbours)
    ours_prebuilt = median_seconds(lambda: hotspots(counts, prebuilt), RUNS)

    def run_esda():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return esda.G_Local(counts, w, transform="B", star=True, permutations=0)

    theirs = median_seconds(run_esda, max(3, RUNS // 2))

    result = hotspots(counts, neighbours)
    diff = np.abs(result.z - run_esda().Zs).max()
    bins = {BIN_NAMES[b]: int((result.bins == b).sum()) for b in sorted(BIN_NAMES, reverse=True)}
    for label, value in (
        ("ours: gi_star + FDR + classify, from neighbour lists", f"{ours_lists:8.4f} s"),
        ("ours: the same, weights built once", f"{ours_prebuilt:8.4f} s"),
        ("esda: G_Local(star=True, permutations=0), z only", f"{theirs:8.4f} s"),
        ("esda / ours (from lists)", f"{theirs / ours_lists:8.1f} ×"),
        ("max |z - esda z|", f"{diff:8.1e}"),
    ):
        print(f"  {label:<56} {value}")
    print(f"  bins: {bins}")


# --- 2. from the database ---------------------------------------------------------------------

GRIDS = int(os.environ.get("BENCH_GRIDS", 10_000))
DB_APPEALS = int(os.environ.get("BENCH_DB_APPEALS", 1_000_000))
DB_RUNS = int(os.environ.get("BENCH_DB_RUNS", 3))
ANCHOR = os.environ.get("BENCH_ANCHOR", "2020-07-01T00:00:00+08:00")
DAYS = 150  # the 30-day window and its 4 predecessors: every appeal is counted
SOURCE = "bench-hotspots"
# A few leaves in four level-2 groups, with their shares of the appeals.
LEAVES = {"010101": 0.30, "010102": 0.10, "010201": 0.15, "020104": 0.15, "020101": 0.10, "030103": 0.20}
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
    "grid_id",
    "grid_code",
    "location",
    "category_id",
    "classification",
    "time_limit",
    "risk",
    "duplicates",
    "route",
    "warning_colour",
    "state",
    "closure_type",
    "created_at",
    "updated_at",
)


def _grid_intensity(rows):
    """The lattice's smooth background and three hotspots, on the grids' positions."""
    x = np.array([r[2] for r in rows])
    y = np.array([r[3] for r in rows])
    nx, ny = (x - x.min()) / np.ptp(x), (y.max() - y) / np.ptp(y)
    intensity = 1.0 + 0.5 * ny
    for cy, cx, height in ((0.2, 0.3, 3.0), (0.7, 0.7, 2.0), (0.5, 0.1, 1.5)):
        intensity += height * np.exp(-((ny - cy) ** 2 + (nx - cx) ** 2) / (2 * 0.03**2))
    return x, y, intensity / intensity.sum()


def ensure_appeals(anchor):
    """1,000,000 appeals over the 10,000 grids in the DAYS before `anchor`, COPYed once; plus
    one building's 20 leaks in the last week, for DBSCAN to find."""
    import io
    from datetime import datetime

    from django.db import connection

    from gridgov.appeals.models import Category

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM appeals_appeal WHERE source_system = %s", [SOURCE])
        (have,) = cur.fetchone()
        if have == DB_APPEALS + 20:
            print(f"  appeals: reusing the {have:,} already in the bench database", flush=True)
            return have
        cur.execute("DELETE FROM appeals_appeal WHERE source_system = %s", [SOURCE])
        cur.execute("""SELECT column_name FROM information_schema.columns WHERE table_name = 'appeals_appeal'
                       AND is_nullable = 'NO' AND column_default IS NULL""")
        missing = sorted({r[0] for r in cur.fetchall()} - set(COLUMNS) - {"id"})
        if missing:
            raise SystemExit(f"appeals_appeal has required columns this bench does not fill: {missing}")
        cur.execute(
            "SELECT id, code, ST_X(p), ST_Y(p) FROM (SELECT id, code, ST_PointOnSurface(geom) p "
            "FROM areas_grid WHERE valid_to IS NULL) g ORDER BY code"
        )
        rows = cur.fetchall()
    cats = dict(Category.objects.filter(code__in=LEAVES).values_list("code", "pk"))
    leaf_codes = list(LEAVES)
    leaf_p = np.array([LEAVES[c] for c in leaf_codes])
    gx, gy, p = _grid_intensity(rows)
    rng = np.random.default_rng(7)
    n = DB_APPEALS
    g = rng.choice(len(rows), size=n, p=p)
    # ~60 m around the grid's inner point (grids here are ~200 m across)
    lng = gx[g] + rng.normal(0, 0.0007, n)
    lat = gy[g] + rng.normal(0, 0.00055, n)
    end = datetime.fromisoformat(anchor).timestamp()
    received = end - rng.random(n) * DAYS * 86400
    cat = rng.choice(len(leaf_codes), size=n, p=leaf_p / leaf_p.sum())
    # one building: 20 leaks of a water main within ~15 m, in the last week
    b = len(rows) // 2
    extra = [
        (
            b,
            gx[b] + rng.normal(0, 0.0001),
            gy[b] + rng.normal(0, 0.0001),
            end - rng.random() * 6 * 86400,
            leaf_codes.index("020104"),
        )
        for _ in range(20)
    ]
    with timed(f"COPY {n + 20:,} synthetic appeals (once)", n + 20, "rows"), connection.cursor() as cur:
        with cur.copy(f"COPY appeals_appeal ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            buf = io.StringIO()
            items = zip(g, lng, lat, received, cat, strict=True)
            for i, (gi, x, y, t, c) in enumerate(itertools.chain(items, extra)):
                ts = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(t))
                buf.write(
                    f"BH{i:010d}\t{SOURCE}\t\tphone\tcomplaint\t合成诉求\t\t\t\t{ts}\t"
                    f"SRID=4326;POINT({x:.7f} {y:.7f})\t{{}}\t{rows[gi][0]}\t{rows[gi][1]}\t{{}}\t"
                    f"{cats[leaf_codes[c]]}\t{{}}\t7d\t{{}}\t[]\t{{}}\tnone\tclosed\tsubstantive\t{ts}\t{ts}\n"
                )
                if i % 100_000 == 99_999:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        cur.execute("ANALYZE appeals_appeal")
    return n + 20


def database():
    from datetime import datetime, timedelta

    import esda
    import libpysal

    setup_django()
    from django.db import connection

    from gridgov.whistles import compute
    from gridgov.whistles.models import Hotspot
    from gridgov.whistles.stats import hotspots

    header(f"hotspots from the database: {GRIDS:,} grids, {DB_APPEALS:,} appeals, median of {DB_RUNS}")
    n_grids = ensure_city(GRIDS)
    anchor = datetime.fromisoformat(ANCHOR)
    ensure_appeals(ANCHOR)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM appeals_appeal WHERE received_at >= %s AND received_at < %s",
            [anchor - timedelta(days=DAYS), anchor],
        )
        (in_windows,) = cur.fetchone()
    print(f"  city: {n_grids:,} current grids; appeals in the windows: {in_windows:,}", flush=True)

    with timed("queen weights from PostGIS (once per boundary revision)"):
        w = compute.grid_weights()

    first = compute.hotspots_recompute(now=anchor, actor="bench")  # warm, and the rows exist after it
    samples, summary = [], first
    for _ in range(DB_RUNS):
        t0 = time.perf_counter()
        summary = compute.hotspots_recompute(now=anchor, actor="bench")
        samples.append(time.perf_counter() - t0)
    ours = statistics.median(samples)
    gi_calls = 2 * summary["groups"] * 5
    print(f"  {'hotspots_recompute, warm (7 + 30 days, 5 windows each)':<56} {ours:8.3f} s  (target ≤ 10 s)")
    print(f"    steps of the last run: {summary['seconds']}")
    print(
        f"    groups {summary['groups']}, Gi* runs {gi_calls}, hot grids {summary['hot']}, "
        f"DBSCAN spots {summary['spots']}; first run created {first['created']}, later runs created "
        f"{summary['created']} and updated {summary['updated']}"
    )
    print(
        f"    stored: {Hotspot.objects.filter(kind='grid_gi', active=True).count():,} active grid hotspots, "
        f"{Hotspot.objects.filter(kind='dbscan', active=True).count():,} active DBSCAN spots"
    )
    biggest = (
        Hotspot.objects.filter(kind="dbscan", active=True, category_key="020104").order_by("-statistics__count").first()
    )
    if biggest is not None:
        print(
            f"    the planted building (20 leaks, 020104): largest 020104 spot holds {biggest.statistics['count']} "
            f"appeals within {biggest.statistics['radius_m']} m"
        )

    # esda on the same counts (all appeals of the current 30-day window) and the same weights.
    counts = compute.window_counts(anchor, 30, 1, [compute.category_group("")], w.codes)[0, 0]
    m = w.weights.tocsr()
    nbrs = {i: [int(j) for j in m.indices[m.indptr[i] : m.indptr[i + 1]] if j != i] for i in range(len(w.codes))}
    lw = libpysal.weights.W(nbrs, silence_warnings=True)
    lw.transform = "B"

    def run_esda():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return esda.G_Local(counts, lw, transform="B", star=True, permutations=0)

    ours_gi = median_seconds(lambda: hotspots(counts, w.weights), RUNS)
    theirs = median_seconds(run_esda, max(3, RUNS // 2))
    diff = np.abs(hotspots(counts, w.weights).z - run_esda().Zs).max()
    for label, value in (
        (f"ours: Gi* + FDR + classify, {int(counts.sum()):,} appeals", f"{ours_gi:8.4f} s"),
        ("esda: G_Local(star=True, permutations=0), same W", f"{theirs:8.4f} s"),
        ("esda / ours", f"{theirs / ours_gi:8.1f} ×"),
        (
            f"recompute with esda in place of ours (est., {gi_calls} runs)",
            f"{ours - summary['seconds']['gi'] + gi_calls * theirs:8.3f} s",
        ),
        ("max |z - esda z|", f"{diff:8.1e}"),
    ):
        print(f"  {label:<56} {value}")


def main():
    parts = os.environ.get("BENCH_PARTS", "lattice,db").split(",")
    if "lattice" in parts:
        lattice()
    if "db" in parts:
        database()


if __name__ == "__main__":
    main()
