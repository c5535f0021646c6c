"""WGS-84 ⇄ GCJ-02 ⇄ BD-09 at the edges of the system; the database stores WGS-84 only.

GCJ-02 is a published obfuscation, not a datum, so PROJ does not implement it. The forward
formulas are the widely reproduced ones; the inverses are solved by fixed-point iteration
(converges to < 1 mm in a few steps), not the one-step approximation with its 1–2 m error.
All functions take and return numpy arrays or scalars (lng, lat) and are vectorised.
"""

import numpy as np

from gridgov.errors import DomainError

A = 6378245.0  # Krasovsky 1940 semi-major axis, as the GCJ-02 algorithm uses
EE = 0.00669342162296594323
X_PI = np.pi * 3000.0 / 180.0

CRS_ALIASES = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "cgcs2000": "wgs84",  # equal to WGS-84 within centimetres for this work
    "epsg:4490": "wgs84",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
}


class UnknownCRS(DomainError, ValueError):
    code = "bad_point"  # what the APIs have always answered for a point in an unknown system


def normalise_crs(name):
    """'GCJ-02' → 'gcj02'; 'EPSG:n' kept as 'epsg:n' for GDAL to transform; else UnknownCRS."""
    key = str(name or "wgs84").strip().lower()
    if key in CRS_ALIASES:
        return CRS_ALIASES[key]
    if key.startswith("epsg:") and key[5:].isdigit():
        return key
    raise UnknownCRS(f"未知坐标系 / unknown CRS {name!r}: use wgs84, gcj02, bd09 or EPSG:n")


def in_china(lng, lat):
    """The GCJ-02 offset applies only inside China's rough bounding box."""
    lng = np.asarray(lng, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lng > 72.004) & (lng < 137.8347) & (lat > 0.8293) & (lat < 55.8271)


def _transform_lat(x, y):
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lng(x, y):
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _offset(lng, lat):
    dlat = _transform_lat(lng - 105.0, lat - 35.0)
    dlng = _transform_lng(lng - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtmagic) * np.pi)
    dlng = (dlng * 180.0) / (A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = in_china(lng, lat)
    return np.where(inside, dlng, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lng, lat):
    lng = np.asarray(lng, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlng, dlat = _offset(lng, lat)
    return lng + dlng, lat + dlat


def gcj02_to_wgs84(lng, lat, iterations=6):
    glng = np.asarray(lng, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlng, wlat = glng.copy(), glat.copy()
    for _ in range(iterations):
        flng, flat = wgs84_to_gcj02(wlng, wlat)
        wlng = wlng - (flng - glng)
        wlat = wlat - (flat - glat)
    return wlng, wlat


def gcj02_to_bd09(lng, lat):
    x = np.asarray(lng, dtype=float)
    y = np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lng, lat, iterations=3):
    blng = np.asarray(lng, dtype=float)
    blat = np.asarray(lat, dtype=float)
    x, y = blng - 0.0065, blat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * X_PI)
    glng, glat = z * np.cos(theta), z * np.sin(theta)
    # The published inverse is approximate (~0.1 m); refine it against the forward formula.
    for _ in range(iterations):
        flng, flat = gcj02_to_bd09(glng, glat)
        glng, glat = glng - (flng - blng), glat - (flat - blat)
    return glng, glat


def wgs84_to_bd09(lng, lat):
    return gcj02_to_bd09(*wgs84_to_gcj02(lng, lat))


def bd09_to_wgs84(lng, lat):
    return gcj02_to_wgs84(*bd09_to_gcj02(lng, lat))


_TO_WGS84 = {
    "wgs84": lambda x, y: (np.asarray(x, float), np.asarray(y, float)),
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}
_FROM_WGS84 = {
    "wgs84": lambda x, y: (np.asarray(x, float), np.asarray(y, float)),
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


def to_wgs84(lng, lat, crs):
    """Convert from 'wgs84' / 'gcj02' / 'bd09' (any alias) to WGS-84."""
    key = normalise_crs(crs)
    if key not in _TO_WGS84:
        raise UnknownCRS(f"{crs!r} is handled by GDAL on import, not here")
    return _TO_WGS84[key](lng, lat)


def from_wgs84(lng, lat, crs):
    key = normalise_crs(crs)
    if key not in _FROM_WGS84:
        raise UnknownCRS(f"{crs!r} is handled by GDAL on import, not here")
    return _FROM_WGS84[key](lng, lat)
