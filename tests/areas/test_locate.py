from datetime import timedelta

import pytest
from django.contrib.gis.geos import Polygon
from django.utils import timezone

from gridgov.areas import coords
from gridgov.areas.locate import INSIDE, NEAREST, BadPoint, locate, locate_many, locate_wgs84
from gridgov.areas.models import Grid
from gridgov.areas.services import areas_replace

pytestmark = pytest.mark.django_db


def test_inside_returns_the_whole_chain(city):
    c = locate(116.405, 39.91)
    assert c.grid_code == "110101001001001"
    assert (c.community_code, c.street_code, c.district_code) == ("110101001001", "110101001", "110101")
    assert (c.grid_name, c.street_name, c.district_name) == ("甲一第1网格", "甲街道", "测试区")
    assert c.match == INSIDE and c.distance_m == 0


def test_gcj02_point_and_its_wgs84_twin_locate_to_the_same_grid(city):
    glng, glat = coords.wgs84_to_gcj02(116.4155, 39.911)
    assert locate(glng, glat, "gcj02").grid_code == locate(116.4155, 39.911).grid_code == "110101001001002"
    blng, blat = coords.wgs84_to_bd09(116.4155, 39.911)
    assert locate(blng, blat, "bd09").grid_code == "110101001001002"
    # the raw GCJ-02 numbers read as WGS-84 land hundreds of metres away: conversion matters
    assert locate(glng, glat, "wgs84").grid_code != "110101001001002"


def test_shared_edge_and_vertex_are_deterministic(city):
    for _ in range(3):
        assert locate(116.41, 39.91).grid_code == "110101001001001"  # lowest code wins
        assert locate(116.41, 39.92).grid_code == "110101001001001"
    many = locate_many([(116.41, 39.91), (116.42, 39.905)])
    assert [c.grid_code for c in many] == ["110101001001001", "110101001001002"]


def test_gap_point_takes_nearest_grid_flagged(city):
    c = locate(116.4301, 39.91)  # in the 17 m strip between two grids
    assert c.match == NEAREST and 0 < c.distance_m < 20
    assert c.grid_code in ("110101002001001", "110101002002001")
    assert locate(116.4301, 39.91, tolerance_m=5) is None or locate(116.4301, 39.91, tolerance_m=5).distance_m <= 5
    [m] = locate_many([(116.4301, 39.91)])
    assert m == c


def test_outside_is_none_not_an_error(city):
    assert locate(116.5, 39.91) is None  # ~5 km east of the city
    assert locate(2.35, 48.85) is None  # Paris
    assert locate_many([(116.5, 39.91), (2.35, 48.85), (116.405, 39.91)])[:2] == [None, None]


def test_bad_points_are_refused_clearly(city):
    with pytest.raises(BadPoint):
        locate("abc", 39.9)
    with pytest.raises(BadPoint):
        locate(200, 39.9)
    with pytest.raises(BadPoint, match="#1"):
        locate_many([(116.4, 39.9), (float("nan"), 1)])


def test_located_earlier_keeps_its_version(city):
    before = locate(116.405, 39.91)
    t_before = timezone.now()
    # The grid is redrawn (it shrinks to the west half) a moment later.
    later = t_before + timedelta(seconds=1)
    areas_replace(
        Grid,
        [("110101001001001", "甲一第1网格", Polygon.from_bbox((116.40, 39.90, 116.405, 39.92)))],
        source="t",
        crs="wgs84",
        when=later,
    )
    old, new = Grid.objects.filter(code="110101001001001").order_by("version")
    assert (old.version, new.version) == (1, 2) and old.valid_to == later and new.valid_to is None
    assert before.grid_id == old.pk  # the earlier answer still names the row it was in
    assert locate(116.407, 39.91) is None or locate(116.407, 39.91).match == NEAREST
    assert locate(116.407, 39.91, at=t_before).grid_id == old.pk
    assert locate_many([(116.407, 39.91)], at=t_before)[0].grid_id == old.pk
    # an unchanged re-import makes no new version
    run = areas_replace(
        Grid,
        [("110101001001001", "甲一第1网格", Polygon.from_bbox((116.40, 39.90, 116.405, 39.92)))],
        source="t",
        crs="wgs84",
    )
    assert (run.unchanged, run.changed) == (1, 0)


def test_locate_many_agrees_with_locate_on_a_mixed_batch(city):
    """Inside, shared-edge, gap (answered by one database query for all of them), beyond
    tolerance and outside points in one batch: the in-process index answers exactly as the
    database does."""
    pts = [
        (116.405, 39.91),
        (116.4301, 39.91),
        (116.41, 39.91),
        (116.43015, 39.905),
        (116.5, 39.91),
        (116.4301, 39.915),
        (2.35, 48.85),
        (116.425, 39.91),
    ]
    many = locate_many(pts)
    assert many == [locate_wgs84(x, y) for x, y in pts] == [locate(x, y) for x, y in pts]
    assert [m.match if m else None for m in many].count(NEAREST) == 3
    assert locate_many(pts, tolerance_m=1) == [locate_wgs84(x, y, tolerance_m=1) for x, y in pts]
