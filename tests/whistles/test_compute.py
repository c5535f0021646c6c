"""Counting in SQL, Gi* over the generated city's grids, trend across windows, DBSCAN spots,
and storing them as Hotspot rows: a planted cluster is found, a null history is not."""

from datetime import timedelta

import numpy as np
import pytest
from django.test import override_settings

from gridgov.appeals.models import Appeal
from gridgov.audit.services import audit_verify
from gridgov.whistles import compute, stats
from gridgov.whistles.models import Hotspot, WhistleEvent

from .conftest import NOW, cluster, make_appeals, offset, spread

pytestmark = pytest.mark.django_db
WEEK = timedelta(days=7)


def test_grid_counts_group_by_grid_and_leave_out_merged_and_other_categories(gencity, rng):
    a, b = gencity.codes[10], gencity.codes[40]
    made = make_appeals(
        [(a, gencity.centres[a], "010101", NOW - timedelta(days=1))] * 3
        + [(b, gencity.centres[b], "010102", NOW - timedelta(days=2))] * 2
        + [(b, gencity.centres[b], "020101", NOW - timedelta(days=2))]  # another group
        + [(b, gencity.centres[b], "010101", NOW - timedelta(days=9))]
    )  # before the window
    Appeal.objects.filter(pk=made[1].pk).update(state="merged", lead_appeal_id=made[0].pk)
    window = (NOW - WEEK, NOW)
    assert compute.grid_counts(window, "0101") == {a: 2, b: 2}
    assert compute.grid_counts(window, "01") == {a: 2, b: 2}
    assert compute.grid_counts(window, ["010101"]) == {a: 2}
    assert compute.grid_counts(window, None) == {a: 2, b: 3}
    assert compute.grid_counts((NOW - 2 * WEEK, NOW), "010101,010102") == {a: 2, b: 3}


def test_window_counts_agree_with_grid_counts(gencity, rng):
    items = spread(gencity, rng, 2.0, "010101", NOW - 5 * WEEK, NOW)
    items += spread(gencity, rng, 1.0, "020101", NOW - 5 * WEEK, NOW)
    make_appeals(items)
    groups = [compute.category_group(g) for g in ("0101", "02", "")]
    w = compute.grid_weights()
    counts = compute.window_counts(NOW, 7, 5, groups, w.codes)
    for g, group in enumerate(groups):
        for k in range(5):
            want = compute.grid_counts((NOW - (k + 1) * WEEK, NOW - k * WEEK), group)
            got = {c: int(v) for c, v in zip(w.codes, counts[g, k], strict=True) if v}
            assert got == want


def test_planted_cluster_is_hot_at_99_percent(gencity, rng):
    hot = gencity.far_apart(1)[0]
    items = spread(gencity, rng, 1.5, "010101", NOW - WEEK, NOW)
    items += cluster(gencity, hot, 25, 8, "010102", NOW - WEEK, NOW, rng)
    make_appeals(items)

    summary = compute.hotspots_recompute(window_days=(7,), categories=["0101"], now=NOW, dbscan=False)

    h = Hotspot.objects.get(kind="grid_gi", grid_code=hot, category_key="0101", window_days=7)
    assert h.statistics["bin"] == 3 and h.statistics["confidence"] == 0.99 and h.statistics["p"] < 0.01
    assert h.statistics["count"] >= 25 and len(h.appeal_ids) == h.statistics["count"]
    assert h.street_code == hot[:9] and h.active and h.state == "new"
    assert h.statistics["trend"] == stats.NEW  # nothing in the earlier windows
    assert h.geom.covers(h.geom.point_on_surface)
    found = set(Hotspot.objects.filter(kind="grid_gi").values_list("grid_code", flat=True))
    assert found <= gencity.within(hot, 2)  # only the cluster and its surroundings
    assert summary["created"] == len(found)
    assert WhistleEvent.objects.filter(object_type="hotspot", event="detect").count() == len(found)
    assert audit_verify() == []


def test_recompute_updates_instead_of_duplicating(gencity, rng):
    hot = gencity.far_apart(1)[0]
    inner = (NOW - WEEK + timedelta(hours=2), NOW - timedelta(hours=2))  # in both runs' windows
    make_appeals(spread(gencity, rng, 1.5, "010101", *inner) + cluster(gencity, hot, 25, 8, "010101", *inner, rng))
    compute.hotspots_recompute(window_days=(7,), categories=["0101"], now=NOW - timedelta(hours=1), dbscan=False)
    first = Hotspot.objects.get(grid_code=hot)
    make_appeals(cluster(gencity, hot, 5, 0, "010101", NOW - timedelta(minutes=30), NOW, rng))
    summary = compute.hotspots_recompute(window_days=(7,), categories=["0101"], now=NOW, dbscan=False)
    again = Hotspot.objects.get(grid_code=hot)
    assert again.pk == first.pk and summary["created"] == 0
    assert again.statistics["count"] == first.statistics["count"] + 5
    assert again.window_end == NOW

    # Dismissed: the next recompute updates its figures but neither reopens it nor adds another.
    Hotspot.objects.filter(pk=first.pk).update(state="dismissed", dismiss_reason="已处理", state_changed_at=NOW)
    compute.hotspots_recompute(window_days=(7,), categories=["0101"], now=NOW + timedelta(hours=1), dbscan=False)
    assert Hotspot.objects.filter(grid_code=hot).count() == 1
    assert Hotspot.objects.get(grid_code=hot).state == "dismissed"


def test_null_history_flags_nothing_beyond_the_fdr_rate(gencity, rng):
    """Twelve weeks of appeals at one rate everywhere: Gi* with FDR may flag a unit in about
    10 % of the windows (the family-wise rate at 90 %); without FDR about 10 % of all units."""
    weeks = 12
    make_appeals(spread(gencity, rng, 3.0 * weeks, "010101", NOW - weeks * WEEK, NOW))
    w = compute.grid_weights()
    counts = compute.window_counts(NOW, 7, weeks, [compute.category_group("0101")], w.codes)[0]
    assert counts.sum() > 2000
    with_fdr = [stats.hotspots(c, w.weights) for c in counts]
    raw = [stats.hotspots(c, w.weights, fdr=False) for c in counts]
    windows_flagged = sum(bool((r.bins != 0).any()) for r in with_fdr)
    assert windows_flagged <= 3
    units_flagged = sum(int((r.bins != 0).sum()) for r in with_fdr)
    raw_flagged = sum(int((r.bins != 0).sum()) for r in raw)
    assert units_flagged <= 0.02 * counts.size
    assert raw_flagged > units_flagged  # FDR is what keeps the noise out

    compute.hotspots_recompute(window_days=(7,), categories=["0101"], now=NOW, dbscan=False)
    assert Hotspot.objects.filter(statistics__bin__gte=2).count() <= 2


def _shaped(city, centre, per_window, category, rng):
    """A cluster whose size changes per weekly window: per_window oldest first, as (centre, neighbour)."""
    items = []
    for k, (nc, nn) in enumerate(reversed(per_window)):  # k = 0 is the current week
        end = NOW - k * WEEK
        items += cluster(city, centre, nc, nn, category, end - WEEK, end, rng)
    return items


def test_trend_labels_across_windows(gencity, rng):
    persistent, new, intensifying, diminishing = gencity.far_apart(4)
    background = spread(gencity, rng, 1.0, None, NOW - WEEK, NOW)
    items = []
    # One category group per trend, so each is analysed alone; the background is the same in
    # every window (copied), so a steady cluster gives exactly the same z five times.
    for leaf, centre, shape in (
        ("010101", persistent, [(30, 10)] * 5),
        ("010201", new, [(0, 0)] * 4 + [(30, 10)]),
        ("010301", intensifying, [(0, 0), (0, 0), (14, 5), (24, 8), (40, 14)]),
        # Gi* saturates once a cluster dwarfs the background (z ~7.7 here whatever its size),
        # so a fading cluster has to shrink towards the background to lose z.
        ("010401", diminishing, [(40, 14), (28, 10), (18, 6), (10, 4), (6, 2)]),
    ):
        for k in range(5):
            items += [(g, p, leaf, at - k * WEEK) for g, p, _c, at in background]
        items += _shaped(gencity, centre, shape, leaf, rng)
    make_appeals(items)

    compute.hotspots_recompute(window_days=(7,), categories=["0101", "0102", "0103", "0104"], now=NOW, dbscan=False)

    def trend(code, key):
        return Hotspot.objects.get(grid_code=code, category_key=key, window_days=7).statistics["trend"]

    assert trend(persistent, "0101") == stats.PERSISTENT
    assert trend(new, "0102") == stats.NEW
    assert trend(intensifying, "0103") == stats.INTENSIFYING
    assert trend(diminishing, "0104") == stats.DIMINISHING


def test_a_hotspot_that_fades_is_kept_inactive_and_labelled_diminishing(gencity, rng):
    hot = gencity.far_apart(1)[0]
    make_appeals(
        spread(gencity, rng, 1.0, "010101", NOW - 3 * WEEK, NOW)
        + cluster(gencity, hot, 30, 10, "010101", NOW - 2 * WEEK, NOW - WEEK, rng)
    )
    compute.hotspots_recompute(window_days=(7,), categories=["0101"], now=NOW - WEEK, dbscan=False)
    assert Hotspot.objects.get(grid_code=hot).active
    summary = compute.hotspots_recompute(window_days=(7,), categories=["0101"], now=NOW, dbscan=False)
    h = Hotspot.objects.get(grid_code=hot)
    assert not h.active and h.statistics["trend"] == stats.DIMINISHING and summary["cooled"] >= 1


@override_settings(WHISTLE_RULE_RADIUS_M=50.0, WHISTLE_RULE_N=5, WHISTLE_RULE_DAYS=7)
def test_dbscan_finds_one_buildings_repeated_leaks(gencity, rng):
    grid = gencity.codes[30]
    building = gencity.centres[grid]
    leaks = [
        (grid, offset(building, e, n), "020104", NOW - timedelta(days=d))
        for e, n, d in ((0, 0, 1), (8, 3, 2), (-6, 5, 3), (4, -9, 4), (-3, -4, 5), (10, 10, 6))
    ]
    # The same category scattered over the city (each grid's inner point is hundreds of metres
    # from the next), an old leak at the building, and another category next door.
    scattered = [(c, gencity.centres[c], "020104", NOW - timedelta(days=2)) for c in gencity.codes[::3] if c != grid]
    old = [(grid, offset(building, 2, 2), "020104", NOW - timedelta(days=20))]
    water = [(grid, offset(building, 30, 0), "020101", NOW - timedelta(days=1))] * 3
    made = make_appeals(leaks + scattered + old + water)
    leak_ids = sorted(a.pk for a in made[: len(leaks)])

    spots = compute.dbscan_spots((NOW - timedelta(days=7), NOW), 50, 5)
    assert [(s.category_code, s.appeal_ids) for s in spots] == [("020104", leak_ids)]
    assert spots[0].radius_m < 20

    compute.hotspots_recompute(window_days=(7,), categories=["02"], now=NOW)
    spot = Hotspot.objects.get(kind="dbscan")
    assert spot.appeal_ids == leak_ids and spot.category_key == "020104"
    assert spot.grid_code == grid and spot.street_code == grid[:9]
    assert spot.statistics["count"] == 6 and spot.statistics["eps_m"] == 50
    assert spot.geom.area < 1e-6  # a building, not a grid (a 100 m square is ~1e-6 deg²)

    # A seventh leak next hour: the same spot, updated.
    make_appeals([(grid, offset(building, 1, 1), "020104", NOW + timedelta(minutes=30))])
    compute.hotspots_recompute(window_days=(7,), categories=["02"], now=NOW + timedelta(hours=1))
    assert Hotspot.objects.filter(kind="dbscan").count() == 1
    spot = Hotspot.objects.get(kind="dbscan")
    assert spot.statistics["count"] == 7 and spot.statistics["trend"] == stats.INTENSIFYING


def test_dbscan_eps_is_metres_on_the_ground(gencity):
    """Two appeals 45 m apart east-west cluster at eps 50 m, not at 40 m (in EPSG:3857 without
    the latitude factor 45 m would measure ~59 m and never cluster at 50)."""
    grid = gencity.codes[5]
    p = gencity.centres[grid]
    make_appeals(
        [(grid, p, "020104", NOW - timedelta(hours=1)), (grid, offset(p, 45, 0), "020104", NOW - timedelta(hours=2))]
    )
    window = (NOW - WEEK, NOW)
    assert len(compute.dbscan_spots(window, 50, 2)) == 1
    assert compute.dbscan_spots(window, 40, 2) == []


def test_default_groups_are_the_level_two_groups_with_appeals(gencity, rng):
    make_appeals(
        spread(gencity, rng, 0.3, "010101", NOW - WEEK, NOW) + spread(gencity, rng, 0.3, "020104", NOW - WEEK, NOW)
    )
    assert [g.key for g in compute.default_groups(NOW - WEEK, NOW)] == ["0101", "0201"]
    assert [g.key for g in compute.default_groups(NOW - WEEK, NOW, level=1)] == ["01", "02"]


def test_category_group_parsing():
    assert compute.category_group(None).key == ""
    assert compute.category_group("0101,01").key == "01"
    assert compute.category_group(["020104", "020101"]).key == "020101,020104"
    with pytest.raises(ValueError):
        compute.category_group("1x")


def test_gi_star_of_the_recompute_equals_esda_on_the_same_counts_and_weights(gencity, rng):
    import warnings

    import esda
    import libpysal

    make_appeals(spread(gencity, rng, 2.0, "010101", NOW - WEEK, NOW))
    w = compute.grid_weights()
    y = compute.window_counts(NOW, 7, 1, [compute.category_group("0101")], w.codes)[0, 0]
    m = w.weights.tocsr()
    nbrs = {i: [int(j) for j in m.indices[m.indptr[i] : m.indptr[i + 1]] if j != i] for i in range(len(y))}
    lw = libpysal.weights.W(nbrs, silence_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = esda.G_Local(y, lw, transform="B", star=True, permutations=0).Zs
    np.testing.assert_allclose(stats.gi_star(y, w.weights).z, theirs, atol=1e-6)
