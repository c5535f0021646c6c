"""Basemaps: which tiles go under a map, and which coordinate system they are drawn in.

A low floor: the admin's map widget, the intake page's position picker, the
Content-Security-Policy (tile hosts) and the folium builders (maps.builders) all read the same
setting (settings.MAP_BASEMAP) through get_basemap. Nothing here imports the domain, the pages
or folium, so any of them may import it.
  none      no tiles at all, grid outlines on a plain background (the default; works offline)
  osm       OpenStreetMap tiles
  tianditu  天地图 vector map + Chinese labels (vec_w + cva_w), needs settings.TIANDITU_KEY
  amap      高德 road map; its tiles are in GCJ-02, so every overlay is shifted WGS-84 -> GCJ-02
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

BASEMAPS = ("none", "osm", "tianditu", "amap")
# Tianditu draws CGCS2000, equal to WGS-84 within centimetres here; only AMap needs a shift.
BASEMAP_CRS = {"none": "wgs84", "osm": "wgs84", "tianditu": "wgs84", "amap": "gcj02"}


@dataclass(frozen=True)
class TileSource:
    url: str
    attribution: str
    name: str
    subdomains: str = "abc"
    max_zoom: int = 18
    overlay: bool = False


@dataclass(frozen=True)
class Basemap:
    name: str
    crs: str  # what the tiles are drawn in, and so what overlays are converted to
    tiles: tuple[TileSource, ...] = ()
    max_zoom: int = 18


def basemap_name(name: object = None) -> str:
    """Validated basemap name; None means settings.MAP_BASEMAP."""
    raw = settings.MAP_BASEMAP if name is None else name
    key = str(raw).strip().lower()
    if key not in BASEMAPS:
        raise ValueError(f"unknown basemap {raw!r}: use one of {', '.join(BASEMAPS)}")
    return key


def get_basemap(name: object = None, *, tianditu_key: str | None = None) -> Basemap:
    """The Basemap for `name` (None: settings.MAP_BASEMAP); Tianditu takes settings.TIANDITU_KEY."""
    key = basemap_name(name)
    if key == "none":
        return Basemap("none", "wgs84")
    if key == "osm":
        return Basemap(
            "osm",
            "wgs84",
            (
                TileSource(
                    "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
                    "OpenStreetMap",
                    subdomains="",
                    max_zoom=19,
                ),
            ),
            max_zoom=19,
        )
    if key == "tianditu":
        tk = settings.TIANDITU_KEY if tianditu_key is None else tianditu_key
        if not tk:
            raise ImproperlyConfigured("basemap 'tianditu' needs TIANDITU_KEY (a 天地图 browser key)")
        if not (tk.isascii() and tk.isalnum()):
            raise ImproperlyConfigured("TIANDITU_KEY must be letters and digits only")
        return Basemap(
            "tianditu",
            "wgs84",
            tuple(
                TileSource(
                    f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                    f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                    f"&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={tk}",
                    "&copy; 天地图",
                    title,
                    subdomains="01234567",
                    overlay=overlay,
                )
                for layer, title, overlay in (("vec", "天地图矢量", False), ("cva", "天地图注记", True))
            ),
        )
    return Basemap(
        "amap",
        "gcj02",
        (
            TileSource(
                "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
                "&copy; 高德地图",
                "高德地图",
                subdomains="1234",
            ),
        ),
    )
