import numpy as np
import pytest

from gridgov.areas import coords


def test_gcj02_offset_is_hundreds_of_metres_in_beijing():
    lng, lat = coords.wgs84_to_gcj02(116.397, 39.909)
    d_m = np.hypot((lng - 116.397) * 111320 * np.cos(np.radians(39.909)), (lat - 39.909) * 111320)
    assert 100 < d_m < 700


@pytest.mark.parametrize(
    "fwd,back", [(coords.wgs84_to_gcj02, coords.gcj02_to_wgs84), (coords.wgs84_to_bd09, coords.bd09_to_wgs84)]
)
def test_round_trip_within_a_millimetre(fwd, back):
    rng = np.random.default_rng(1)
    lng = rng.uniform(74, 134, 1000)
    lat = rng.uniform(18, 53, 1000)
    rlng, rlat = back(*fwd(lng, lat))
    err_m = np.hypot((rlng - lng) * 111320 * np.cos(np.radians(lat)), (rlat - lat) * 111320)
    assert err_m.max() < 0.001


def test_outside_china_is_not_offset():
    assert coords.wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)


def test_crs_names():
    assert coords.normalise_crs("GCJ-02") == "gcj02"
    assert coords.normalise_crs("EPSG:4549") == "epsg:4549"
    assert coords.normalise_crs("CGCS2000") == "wgs84"
    with pytest.raises(coords.UnknownCRS):
        coords.normalise_crs("mars")
