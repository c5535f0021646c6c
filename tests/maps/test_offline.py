"""Maps must work on an intranet: no asset from a CDN, every vendored file present, overlays
lined up with the basemap. No database needed."""

import functools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import folium
import numpy as np
import pytest
from branca.colormap import LinearColormap
from branca.element import JavascriptLink
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders
from django.core.exceptions import ImproperlyConfigured
from folium import plugins

from gridgov import basemaps
from gridgov.areas.coords import wgs84_to_gcj02
from maps import builders, offline

ROOT = Path(django_settings.BASE_DIR)
VENDOR_DIR = ROOT / "static" / "vendor"
TIANDITU_KEY = "0123456789abcdef0123456789abcdef"  # shape of a real key; no request is made
CDN_HOSTS = ("jsdelivr", "cdnjs", "code.jquery.com", "bootstrapcdn", "unpkg", "d3js.org")
BASEMAPS = basemaps.BASEMAPS
# A URL anywhere in the page; folium writes "&" in JSON as \u0026.
URL_RE = re.compile(r"""(?:https?:)?//[^\s"'<>()`\\]+(?:\\u0026[^\s"'<>()`\\]+)*""")


def square(code, name, lng, lat, size=0.005):
    ring = [[lng, lat], [lng + size, lat], [lng + size, lat + size], [lng, lat + size], [lng, lat]]
    return {
        "type": "Feature",
        "properties": {"code": code, "name": name},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def make_areas():
    """Four grids in a 2 x 2 block near Tiananmen, numbered west→east, north→south."""
    cells = [(116.400, 39.905), (116.405, 39.905), (116.400, 39.900), (116.405, 39.900)]
    return {
        "type": "FeatureCollection",
        "features": [square(f"11010100100100{i + 1}", f"网格{i + 1}", lng, lat) for i, (lng, lat) in enumerate(cells)],
    }


def make_points():
    coords = [(116.4021, 39.9021, "red"), (116.4071, 39.9023, "orange"), (116.4032, 39.9078, "blue")]
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"title": f"诉求 {i}", "color": color, "weight": i + 1},
                "geometry": {"type": "Point", "coordinates": [lng, lat]},
            }
            for i, (lng, lat, color) in enumerate(coords)
        ],
    }


VALUES = {"110101001001001": 3, "110101001001002": 12, "110101001001003": 27}


def build(kind, basemap):
    areas, points = make_areas(), make_points()
    kw = {"basemap": basemap, "tianditu_key": TIANDITU_KEY}
    if kind == "grid":
        return builders.grid_map(areas, highlight_codes=["110101001001002"], **kw)
    if kind == "choropleth":
        return builders.choropleth_map(areas, VALUES, caption="诉求量", **kw)
    if kind == "heatmap":
        return builders.grid_map(areas, layers=[builders.heatmap_layer(points, basemap=basemap)], **kw)
    if kind == "markers":
        return builders.grid_map(areas, layers=[builders.markers_layer(points, basemap=basemap)], **kw)
    if kind == "markers-flat":
        return builders.grid_map(areas, layers=[builders.markers_layer(points, cluster=False, basemap=basemap)], **kw)
    raise AssertionError(kind)


KINDS = ("grid", "choropleth", "heatmap", "markers", "markers-flat")


def allowed_urls(basemap):
    """The tile URL templates of the basemap, and the links in their attributions."""
    bm = basemaps.get_basemap(basemap, tianditu_key=TIANDITU_KEY)
    urls = {t.url for t in bm.tiles}
    for t in bm.tiles:
        urls.update(re.findall(r'href="([^"]+)"', t.attribution))
    return urls


def page_urls(html):
    return {u.replace("\\u0026", "&") for u in URL_RE.findall(html)}


def vendor_refs(html):
    prefix = re.escape(django_settings.STATIC_URL + "vendor/")
    return set(re.findall(prefix + r"""([^"'\s)>?#]+)""", html))


@pytest.fixture(autouse=True)
def _no_basemap(settings):
    settings.MAP_BASEMAP = "none"
    settings.TIANDITU_KEY = ""


@pytest.mark.parametrize("basemap", BASEMAPS)
@pytest.mark.parametrize("kind", KINDS)
def test_rendered_map_has_no_external_url_but_the_basemap(kind, basemap):
    html = build(kind, basemap).get_root().render()

    external = page_urls(html)
    if basemap == "none":
        assert external == set()
        assert not re.search(r"https?:", html)
    else:
        assert external <= allowed_urls(basemap), external - allowed_urls(basemap)
        assert external  # the tiles are really there
    for host in CDN_HOSTS:
        assert host not in html
    assert vendor_refs(html), "the map loads nothing from static/vendor"


def test_settings_basemap_is_the_default(settings):
    settings.MAP_BASEMAP = "osm"
    html = builders.grid_map(make_areas()).get_root().render()
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in html

    settings.MAP_BASEMAP = "none"
    html = builders.grid_map(make_areas()).get_root().render()
    assert "tile.openstreetmap.org" not in html
    assert "L.tileLayer" not in html
    assert ".leaflet-container { background:" in html  # a plain background instead of tiles


@pytest.mark.parametrize("kind", KINDS)
def test_every_referenced_vendor_file_exists(kind):
    html = build(kind, "none").get_root().render()
    refs = vendor_refs(html)
    assert refs
    for ref in refs:
        path = VENDOR_DIR / ref
        assert path.is_file(), f"{ref} is referenced by the map but missing from static/vendor"
        if path.suffix == ".css":
            assert_css_urls_resolve(path)


def test_every_known_cdn_url_has_its_vendored_file():
    for url, path in offline.VENDORED.items():
        assert (VENDOR_DIR / path).is_file(), f"{url} -> static/vendor/{path} missing"


def assert_css_urls_resolve(css_path):
    """Fonts and images a vendored stylesheet points at must be vendored too."""
    for ref in re.findall(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)""", css_path.read_text(encoding="utf-8")):
        if ref.startswith(("data:", "#")):
            continue
        assert not URL_RE.match(ref), f"{css_path.name} loads {ref}"
        target = (css_path.parent / ref.split("?")[0].split("#")[0]).resolve()
        assert target.is_file(), f"{css_path.relative_to(VENDOR_DIR)} -> {ref} missing"


def test_vendored_set_is_small_and_has_versions():
    files = [p for p in VENDOR_DIR.rglob("*") if p.is_file()]
    assert not any("node_modules" in p.parts or p.suffix == ".map" for p in files)
    assert sum(p.stat().st_size for p in files) < 4 * 1024 * 1024
    versions = (VENDOR_DIR / "VERSIONS.txt").read_text(encoding="utf-8")
    for package, version in [("leaflet", "1.9.3"), ("ol", "7.2.2"), ("d3", "3.5.5"), ("jquery", "3.7.1")]:
        assert re.search(rf"^{re.escape(package)}/ .*\b{re.escape(version)}\b", versions, re.MULTILINE)


# --- AMap / GCJ-02 ---------------------------------------------------------------------------------


def geojson_layers(m):
    return [c for c in m._children.values() if isinstance(c, folium.GeoJson)]


def test_amap_shifts_overlays_to_gcj02():
    areas = make_areas()
    before = json.dumps(areas, sort_keys=True)
    m = builders.grid_map(areas, basemap="amap")
    assert json.dumps(areas, sort_keys=True) == before, "the builder changed the caller's GeoJSON"

    (layer,) = geojson_layers(m)
    for src, out in zip(areas["features"], layer.data["features"]):
        ring = np.asarray(src["geometry"]["coordinates"][0])
        want_lng, want_lat = wgs84_to_gcj02(ring[:, 0], ring[:, 1])
        got = np.asarray(out["geometry"]["coordinates"][0])
        np.testing.assert_allclose(got[:, 0], want_lng, atol=1e-9)
        np.testing.assert_allclose(got[:, 1], want_lat, atol=1e-9)
        # Beijing's GCJ-02 offset is some hundreds of metres, mostly eastwards.
        dx = (got[0, 0] - ring[0, 0]) * 111_320 * math.cos(math.radians(ring[0, 1]))
        dy = (got[0, 1] - ring[0, 1]) * 110_540
        assert 100 < math.hypot(dx, dy) < 700
        assert dx > 0

    html = m.get_root().render()
    first_lng = float(layer.data["features"][0]["geometry"]["coordinates"][0][0][0])
    assert repr(first_lng) in html
    assert "116.4," not in html.replace(" ", "")  # no unshifted corner left in the page


@pytest.mark.parametrize("basemap", ["none", "osm", "tianditu"])
def test_wgs84_basemaps_do_not_shift(basemap):
    m = builders.grid_map(make_areas(), basemap=basemap, tianditu_key=TIANDITU_KEY)
    (layer,) = geojson_layers(m)
    assert layer.data["features"][0]["geometry"] == make_areas()["features"][0]["geometry"]


def test_amap_shifts_heatmap_and_markers():
    points = make_points()
    lng, lat = points["features"][0]["geometry"]["coordinates"]
    glng, glat = wgs84_to_gcj02(lng, lat)

    heat = builders.heatmap_layer(points, basemap="amap")
    assert heat.data[0][:2] == pytest.approx([float(glat), float(glng)], abs=1e-9)
    assert heat.data[-1][2] == 1.0  # weights scaled to Leaflet.heat's max

    cluster = builders.markers_layer(points, basemap="amap")
    marker = next(iter(cluster._children.values()))
    assert marker.location == pytest.approx([float(glat), float(glng)], abs=1e-9)

    plain = builders.heatmap_layer(points, basemap="none")
    assert plain.data[0][:2] == pytest.approx([lat, lng])


def test_layer_built_for_another_basemap_is_refused():
    heat = builders.heatmap_layer(make_points(), basemap="none")
    with pytest.raises(ValueError, match="gcj02"):
        builders.grid_map(make_areas(), basemap="amap", layers=[heat])


def test_heatmap_accepts_cells_and_tuples():
    cells = make_areas()
    for f, n in zip(cells["features"], [1, 0, 4, 2]):
        f["properties"]["count"] = n
    layer = builders.heatmap_layer(cells)
    assert len(layer.data) == 3  # the empty cell adds nothing
    assert layer.data[0][:2] == pytest.approx([39.9075, 116.4025])

    layer = builders.heatmap_layer([(116.40, 39.90), (116.41, 39.91, 3)])
    assert layer.data == [[39.90, 116.40, pytest.approx(1 / 3)], [39.91, 116.41, 1.0]]


# --- offline rewriting ------------------------------------------------------------------------------


def test_plugins_added_after_the_builder_are_rewritten_too():
    m = builders.grid_map(make_areas())
    plugins.MarkerCluster(name="later").add_to(m)
    plugins.HeatMap([[39.9, 116.4, 1.0]]).add_to(m)
    LinearColormap(["#ffffff", "#ff0000"], vmin=0, vmax=1).add_to(m)  # branca adds d3 while rendering

    html = m.get_root().render()
    assert page_urls(html) == set()
    assert {"leaflet.markercluster/leaflet.markercluster.js", "folium/leaflet_heat.min.js", "d3/d3.min.js"} <= (
        vendor_refs(html)
    )
    # The class-level lists folium shares between all maps stay untouched.
    assert folium.Map.default_js[0][1].startswith("https://")
    assert plugins.MarkerCluster.default_js[0][1].startswith("https://")


def test_make_offline_on_a_plain_folium_map():
    m = folium.Map(tiles=None)
    folium.Marker([39.9, 116.4], icon=folium.Icon(icon="flag")).add_to(m)
    html = offline.make_offline(m).get_root().render()
    assert page_urls(html) == set()
    assert "vendor/leaflet/leaflet.js" in html


def test_unknown_external_asset_raises():
    m = builders.grid_map(make_areas())
    plugins.Fullscreen().add_to(m)  # not vendored: must fail loudly, not load from a CDN
    with pytest.raises(offline.ExternalAssetError, match="no vendored copy"):
        m.get_root().render()

    m = builders.grid_map(make_areas())
    m.get_root().header.add_child(JavascriptLink("https://example.com/tracker.js"))
    with pytest.raises(offline.ExternalAssetError):
        m.get_root().render()

    m = builders.grid_map(make_areas())
    m.get_root().header.add_child(folium.Element('<script src="//cdn.example.com/x.js"></script>'))
    with pytest.raises(offline.ExternalAssetError, match="cdn.example.com"):
        m.get_root().render()


def test_render_parts_for_templates():
    parts = offline.render_parts(builders.choropleth_map(make_areas(), VALUES))
    assert "vendor/leaflet/leaflet.js" in parts["header"]
    assert "vendor/d3/d3.min.js" in parts["header"]
    assert "folium-map" in parts["html"]
    assert "L.map(" in parts["script"]


def test_marker_text_is_escaped():
    points = make_points()
    points["features"][0]["properties"]["title"] = "</div><script>alert(1)</script>`${document.cookie}`\\"
    areas = make_areas()
    areas["features"][0]["properties"]["name"] = "<img src=x onerror=alert(2)>"
    m = builders.grid_map(areas, layers=[builders.markers_layer(points, popup_property="title")])
    html = m.get_root().render()
    assert "<script>alert(1)" not in html
    assert "${document.cookie}" not in html
    assert "<img src=x" not in html


def test_basemap_validation():
    with pytest.raises(ValueError, match="unknown basemap"):
        basemaps.get_basemap("google")
    with pytest.raises(ImproperlyConfigured, match="TIANDITU_KEY"):
        basemaps.get_basemap("tianditu", tianditu_key="")
    with pytest.raises(ImproperlyConfigured):
        basemaps.get_basemap("tianditu", tianditu_key="abc&evil=1")
    bm = basemaps.get_basemap("tianditu", tianditu_key=TIANDITU_KEY)
    assert [t.url.split("/")[3] for t in bm.tiles] == ["vec_w", "cva_w"]
    assert all(t.url.endswith("tk=" + TIANDITU_KEY) for t in bm.tiles)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MAP_BASEMAP": "google"}, "MAP_BASEMAP='google'"),
        ({"MAP_BASEMAP": "tianditu"}, "needs TIANDITU_KEY"),
        ({"MAP_BASEMAP": "none", "TIANDITU_KEY": "key with spaces"}, "TIANDITU_KEY"),
    ],
)
def test_settings_fail_loudly_on_bad_map_values(env, message):
    proc = subprocess.run(
        [sys.executable, "-c", "import gridgov.settings"],
        cwd=ROOT,
        env={**os.environ, "TIANDITU_KEY": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr and message in proc.stderr


def test_settings_accept_good_map_values():
    code = "import gridgov.settings as s; print(s.MAP_BASEMAP, s.TIANDITU_KEY)"
    env = {**os.environ, "MAP_BASEMAP": " Tianditu ", "TIANDITU_KEY": TIANDITU_KEY}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["tianditu", TIANDITU_KEY]


# --- the GeoDjango admin map widget -------------------------------------------------------------------


def test_admin_widget_media_is_only_static_files():
    from gridgov.areas.admin import AreaAdmin
    from gridgov.areas.widgets import OfflineMapWidget

    assert AreaAdmin.gis_widget is OfflineMapWidget
    media = OfflineMapWidget().media
    paths = list(media._js) + [p for paths in media._css.values() for p in paths]
    assert "vendor/ol/ol.js" in paths and "vendor/ol/ol.css" in paths
    for path in paths:
        assert not URL_RE.match(path) and not path.startswith("/"), path
        assert finders.find(path), f"{path} is not a static file"
    assert "http" not in str(media)


@pytest.mark.parametrize("basemap", BASEMAPS)
def test_admin_widget_base_layer_follows_map_basemap(settings, basemap):
    from django.contrib.gis.geos import Polygon

    from gridgov.areas.widgets import OfflineMapWidget

    settings.MAP_BASEMAP = basemap
    settings.TIANDITU_KEY = TIANDITU_KEY
    html = OfflineMapWidget().render("geom", Polygon.from_bbox((116.40, 39.90, 116.41, 39.91)), {"id": "id_geom"})
    assert "new MapWidget(options)" in html
    assert "ol.source.OSM" not in html
    urls = page_urls(html)
    if basemap in ("none", "amap"):  # AMap is GCJ-02: editing WGS-84 boundaries over it would shift them
        assert urls == set()
        assert "var base_layer = new ol.layer.Vector(" in html
    else:
        assert urls
        assert all(u.split("/")[2].endswith(("openstreetmap.org", "tianditu.gov.cn")) for u in urls), urls


# --- a real browser, no internet ----------------------------------------------------------------------


class _RecordingHandler(SimpleHTTPRequestHandler):
    requests = None  # set per test: [(path, status)]

    def log_request(self, code="-", size="-"):
        self.requests.append((self.path, int(getattr(code, "value", code))))

    def log_message(self, *args):
        pass


@pytest.mark.browser
def test_map_renders_offline_in_headless_chromium(tmp_path):
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    Image = pytest.importorskip("PIL.Image")

    areas = make_areas()
    m = builders.choropleth_map(
        areas,
        VALUES,
        caption="诉求量",
        basemap="none",
        layers=[builders.markers_layer(make_points(), basemap="none")],
    )
    site = tmp_path / "site"
    site.mkdir()
    (site / "static").symlink_to(ROOT / "static", target_is_directory=True)
    (site / "map.html").write_text(m.get_root().render(), encoding="utf-8")

    requests = []
    handler = type("Handler", (_RecordingHandler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    shot = tmp_path / "map.png"
    try:
        proc = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                # Every host but ours is unresolvable: the page must not need the internet.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=5000",
                f"--user-data-dir={tmp_path / 'profile'}",
                f"--screenshot={shot}",
                "--window-size=800,600",
                f"http://127.0.0.1:{server.server_address[1]}/map.html",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert shot.is_file(), f"no screenshot; chromium said:\n{proc.stderr[-2000:]}"
    static_requests = [(path, status) for path, status in requests if path.startswith("/static/")]
    assert any(path.endswith("/leaflet.js") for path, _ in static_requests)
    assert all(status == 200 for _, status in static_requests), static_requests

    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 1, "blank screenshot"
    counts = {rgb: n for n, rgb in colours}

    def rgb(hex_colour):
        return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))

    def filled(hex_colour):  # a choropleth fill as it looks over the plain background
        a = builders.CHOROPLETH_FILL_OPACITY
        return tuple(round(a * c + (1 - a) * b) for c, b in zip(rgb(hex_colour), rgb(builders._PLAIN_BACKGROUND)))

    def pixels_near(target, tolerance):
        return sum(n for colour, n in counts.items() if max(abs(a - b) for a, b in zip(colour, target)) <= tolerance)

    # Leaflet ran and its CSS loaded: the plain map background fills most of the window ...
    assert pixels_near(rgb(builders._PLAIN_BACKGROUND), 2) > 800 * 600 // 4
    # ... and the grids are drawn in the choropleth's colours (the fullest grid in the darkest),
    # the grid without data in grey; markers sit on top, so only part of each cell counts.
    assert pixels_near(filled(builders.CHOROPLETH_COLORS[-1]), 8) > 5000
    assert pixels_near(filled(builders.NO_DATA_COLOR), 4) > 5000
