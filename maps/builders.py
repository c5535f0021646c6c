"""Map builders: GeoJSON dicts in (WGS-84, as the database stores them), folium objects out.

No ORM, no request: views query (aggregated, see STYLE.md "Maps"), call a builder, and render
the result with maps.offline.render_parts. Every map comes back offline (assets from
static/vendor), so it works on an intranet.

The basemap (gridgov.basemaps) comes from settings.MAP_BASEMAP unless a builder is told otherwise:
  none      no tiles at all, grid outlines on a plain background (the default; works offline)
  osm       OpenStreetMap tiles
  tianditu  天地图 vector map + Chinese labels (vec_w + cva_w), needs settings.TIANDITU_KEY
  amap      高德 road map; its tiles are in GCJ-02, so every overlay is shifted WGS-84 -> GCJ-02
            (gridgov.areas.coords) to line up with the streets drawn on them
Layers (heatmap_layer, markers_layer) are built for a basemap too; pass them to a map builder
through `layers=` and it refuses a layer built for another coordinate system.
"""

import html
import math

import branca.colormap
import folium
import numpy as np
from folium import plugins

from gridgov.areas.coords import wgs84_to_gcj02
from gridgov.basemaps import BASEMAP_CRS, basemap_name, get_basemap

from . import offline

_GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
# Shown when a map has no data to fit to: all of China.
_DEFAULT_CENTER, _DEFAULT_ZOOM = (35.0, 105.0), 4
_PLAIN_BACKGROUND = "#f4f3ef"
NO_DATA_COLOR = "#d9d9d9"
CHOROPLETH_FILL_OPACITY = 0.75
CHOROPLETH_COLORS = ("#fff5eb", "#fdae6b", "#e6550d", "#7f2704")
# The colours Leaflet.awesome-markers has sprites for.
MARKER_COLORS = frozenset(
    {
        *("red", "darkred", "lightred", "orange", "beige", "green", "darkgreen", "lightgreen", "blue"),
        *("darkblue", "lightblue", "cadetblue", "purple", "darkpurple", "pink", "white", "gray"),
        *("lightgray", "black"),
    }
)


# --- maps ----------------------------------------------------------------------------------------


def grid_map(
    areas_geojson,
    *,
    basemap=None,
    tianditu_key=None,
    layers=(),
    highlight_codes=(),
    code_property="code",
    name_property="name",
    name="网格",
):
    """Area outlines (grids, communities, streets); `highlight_codes` are drawn in red."""
    bm = get_basemap(basemap, tianditu_key=tianditu_key)
    features = _prepare(areas_geojson, bm.crs, shown=(name_property, code_property))
    m = _new_map(bm, features)
    highlighted = {str(c) for c in highlight_codes}

    def style(feature):
        hit = str(feature["properties"].get(code_property)) in highlighted
        return {
            "color": "#c0392b" if hit else "#1f4e79",
            "weight": 3 if hit else 1.5,
            "fillColor": "#c0392b" if hit else "#1f4e79",
            "fillOpacity": 0.15 if hit else 0.04,
        }

    folium.GeoJson(
        _collection(features),
        name=name,
        style_function=style,
        highlight_function=lambda _f: {"weight": 3, "fillOpacity": 0.25},
        tooltip=_tooltip(features, (name_property, code_property), ("名称", "编码")),
    ).add_to(m)
    _add_layers(m, bm, layers)
    return offline.make_offline(m)


def choropleth_map(
    areas_geojson,
    values_by_code,
    *,
    caption="",
    colors=CHOROPLETH_COLORS,
    vmin=None,
    vmax=None,
    basemap=None,
    tianditu_key=None,
    layers=(),
    code_property="code",
    name_property="name",
    name="分布",
):
    """Areas filled by `values_by_code[area code]` (e.g. appeals per grid), with a legend."""
    bm = get_basemap(basemap, tianditu_key=tianditu_key)
    values = {}
    for code, value in values_by_code.items():
        if value is not None and math.isfinite(float(value)):
            values[str(code)] = float(value)
    lo = min(values.values(), default=0.0) if vmin is None else float(vmin)
    hi = max(values.values(), default=1.0) if vmax is None else float(vmax)
    if hi <= lo:  # one value everywhere: a colour scale still needs a width
        hi = lo + 1.0
    cmap = branca.colormap.LinearColormap(list(colors), vmin=lo, vmax=hi, caption=caption)

    features = _prepare(areas_geojson, bm.crs, shown=(name_property, code_property))
    for f in features:
        value = values.get(str(f["properties"].get(code_property)))
        f["properties"]["value"] = "无数据" if value is None else _fmt(value)
    m = _new_map(bm, features)

    def style(feature):
        value = values.get(str(feature["properties"].get(code_property)))
        return {
            "color": "#555555",
            "weight": 0.8,
            "fillColor": NO_DATA_COLOR if value is None else cmap(min(max(value, lo), hi)),
            "fillOpacity": CHOROPLETH_FILL_OPACITY,
        }

    folium.GeoJson(
        _collection(features),
        name=name,
        style_function=style,
        highlight_function=lambda _f: {"weight": 2.5, "color": "#222222"},
        tooltip=_tooltip(features, (name_property, code_property, "value"), ("名称", "编码", caption or "数值")),
    ).add_to(m)
    cmap.add_to(m)
    _add_layers(m, bm, layers)
    return offline.make_offline(m)


# --- layers --------------------------------------------------------------------------------------


def heatmap_layer(points_or_weighted_cells, *, basemap=None, name="热力图", radius=18, blur=15, min_opacity=0.3):
    """A heatmap from appeal points or from cells aggregated in the database.

    Accepts GeoJSON (FeatureCollection, Feature list) of Points, or of Polygons (cells, e.g.
    ST_SquareGrid / ST_HexagonGrid, weighted at their centre), with the weight in properties
    "weight" or "count" (default 1); or plain (lng, lat) / (lng, lat, weight) tuples.
    """
    crs = BASEMAP_CRS[basemap_name(basemap)]
    rows = [_weighted_point(item) for item in _iter_items(points_or_weighted_cells)]
    rows = [r for r in rows if r[2] > 0]
    if rows:
        arr = np.asarray(rows, dtype=float)
        lng, lat = _to_crs(arr[:, 0], arr[:, 1], crs)
        # Leaflet.heat saturates at weight 1 (its "max"); scale so the heaviest cell is 1.
        weight = arr[:, 2] / arr[:, 2].max()
        data = [[float(y), float(x), float(w)] for x, y, w in zip(lng, lat, weight)]
    else:
        data = []
    layer = plugins.HeatMap(data, name=name, radius=radius, blur=blur, min_opacity=min_opacity)
    layer.gridgov_crs = crs
    return layer


def markers_layer(
    features,
    cluster=True,
    *,
    basemap=None,
    name="标记",
    tooltip_property="title",
    popup_property=None,
    color_property="color",
    icon="info-sign",
    icon_prefix="glyphicon",
):
    """One marker per GeoJSON Point feature (appeals, grid reports, whistle sites).

    Meant for tens to hundreds of points; more belong in heatmap_layer or aggregated cells.
    Text is escaped: titles come from citizens.
    """
    crs = BASEMAP_CRS[basemap_name(basemap)]
    group = plugins.MarkerCluster(name=name) if cluster else folium.FeatureGroup(name=name)
    for feature in _features(features):
        geometry = feature.get("geometry") or {}
        if geometry.get("type") != "Point":
            raise ValueError(f"markers_layer takes Point features, got {geometry.get('type')!r}")
        lng, lat = _to_crs(*geometry["coordinates"][:2], crs)
        props = feature.get("properties") or {}
        tooltip = props.get(tooltip_property) if tooltip_property else None
        popup = props.get(popup_property) if popup_property else None
        color = props.get(color_property) if color_property else None
        folium.Marker(
            [float(lat), float(lng)],
            tooltip=None if tooltip is None else _js_safe_html(tooltip),
            popup=None if popup is None else folium.Popup(_js_safe_html(popup), max_width=320),
            icon=folium.Icon(color=color if color in MARKER_COLORS else "blue", icon=icon, prefix=icon_prefix),
        ).add_to(group)
    group.gridgov_crs = crs
    return group


POINT_COLORS = {
    "red": "#d7301f",
    "orange": "#f16913",
    "yellow": "#e3b505",
    "none": "#2b8cbe",
    "blue": "#2b8cbe",
    "green": "#31a354",
    "gray": "#8c8c8c",
    "purple": "#756bb1",
}


def point_style(props, color_property="color", count_property="count"):
    """Circle style of one point: fill from a colour name (POINT_COLORS), radius growing with
    the square root of a count (clusters). static/js/map-page.js draws refreshed data alike."""
    color = POINT_COLORS.get(str(props.get(color_property)), POINT_COLORS["gray"])
    try:
        count = max(1.0, float(props.get(count_property) or 1))
    except (TypeError, ValueError):
        count = 1.0
    return {
        "color": "#ffffff",
        "weight": 1.5,
        "fillColor": color,
        "fillOpacity": 0.9,
        "radius": round(min(6 + 3 * math.sqrt(count - 1), 28), 1),
    }


def points_layer(
    features,
    *,
    basemap=None,
    name="点位",
    color_property="color",
    count_property="count",
    label_property="label",
):
    """Circle markers for GeoJSON Point features, coloured by a colour name in `color_property`
    (red/orange/yellow/none/green/gray/purple), sized by `count_property` (1 for a single
    appeal, n for a cluster made in the database), with `label_property` as tooltip.

    Unlike markers_layer this is one L.geoJson layer: a page can swap its data (clearLayers /
    addData) when it refreshes from the API or hears an event, and finds each feature's
    properties on the Leaflet layer. Labels are escaped: they may hold citizens' words."""
    crs = BASEMAP_CRS[basemap_name(basemap)]
    items = _features(features)
    for f in items:
        geometry = f.get("geometry") or {}
        if geometry.get("type") != "Point":
            raise ValueError(f"points_layer takes Point features, got {geometry.get('type')!r}")
    shown = (label_property,) if label_property else ()
    feats = _prepare(items, crs, shown=shown)
    for i, f in enumerate(feats):
        # folium keys its per-feature styles by a unique id.
        f["id"] = str(f.get("id", i))
        f["properties"].setdefault("_fid", f["id"])
    layer = folium.GeoJson(
        _collection(feats),
        name=name,
        style_function=lambda f: point_style(f["properties"], color_property, count_property),
        marker=folium.CircleMarker(radius=6, fill=True),
        tooltip=_tooltip(feats, shown, ("",)) if shown else None,
    )
    layer.gridgov_crs = crs
    return layer


# --- helpers -------------------------------------------------------------------------------------


def _new_map(bm, features):
    bounds = _bounds(features)
    if bounds:
        (south, west), (north, east) = bounds
        center, zoom = ((south + north) / 2, (west + east) / 2), 13
    else:
        center, zoom = _DEFAULT_CENTER, _DEFAULT_ZOOM
    m = folium.Map(location=center, zoom_start=zoom, tiles=None, control_scale=True, prefer_canvas=True)
    # Without a tile layer Leaflet has no zoom limit and fitBounds on one grid zooms to the moon.
    m.options["max_zoom"] = bm.max_zoom
    for t in bm.tiles:
        folium.TileLayer(
            tiles=t.url,
            attr=t.attribution,
            name=t.name,
            subdomains=t.subdomains,
            max_zoom=t.max_zoom,
            overlay=t.overlay,
            control=False,
        ).add_to(m)
    if not bm.tiles:
        m.get_root().header.add_child(
            # leaflet.css (grey #ddd) is linked after this element: win on specificity, not order.
            folium.Element(f"<style>html body .leaflet-container {{ background: {_PLAIN_BACKGROUND}; }}</style>"),
            name="gridgov_plain_background",
        )
    if bounds:
        m.fit_bounds(bounds)
    m.gridgov_basemap = bm
    return m


def _add_layers(m, bm, layers):
    for layer in layers:
        crs = getattr(layer, "gridgov_crs", None)
        if crs is not None and crs != bm.crs:
            raise ValueError(
                f"layer {layer.layer_name!r} was built for {crs} but the {bm.name!r} basemap is {bm.crs}: "
                f"build it with basemap={bm.name!r}"
            )
        layer.add_to(m)
    if layers:
        folium.LayerControl(collapsed=True).add_to(m)


def _iter_items(data):
    if isinstance(data, dict):
        yield from _features(data)
    else:
        yield from data


def _weighted_point(item):
    if isinstance(item, dict):
        feature = item if item.get("type") == "Feature" else {"geometry": item, "properties": {}}
        geometry = feature.get("geometry") or {}
        props = feature.get("properties") or {}
        weight = props.get("weight", props.get("count", 1))
        kind = geometry.get("type")
        if kind == "Point":
            lng, lat = geometry["coordinates"][:2]
        elif kind == "Polygon":
            ring = np.asarray(geometry["coordinates"][0], dtype=float)[:-1, :2]
            lng, lat = ring.mean(axis=0)
        else:
            raise ValueError(f"heatmap_layer takes Point or Polygon (cell) features, got {kind!r}")
    else:
        lng, lat, *rest = item
        weight = rest[0] if rest else 1
    return float(lng), float(lat), float(weight or 0)


def _features(geojson):
    """FeatureCollection / Feature / geometry / list of Features -> list of copied Features."""
    if isinstance(geojson, dict):
        kind = geojson.get("type")
        if kind == "FeatureCollection":
            items = geojson.get("features") or []
        elif kind == "Feature":
            items = [geojson]
        elif kind in _GEOMETRY_TYPES or kind == "GeometryCollection":
            items = [{"type": "Feature", "geometry": geojson, "properties": {}}]
        else:
            raise ValueError(f"not GeoJSON: type {kind!r}")
    else:
        items = list(geojson)
    # Builders never change the caller's dicts (a view may cache them). They replace a feature's
    # keys, its properties' values and its geometry's coordinates, never anything deeper, so a
    # copy of those three dicts is enough (a deep copy of 1,000 community outlines took 0.18 s).
    return [_copy_feature(f) for f in items]


def _copy_feature(f):
    out = dict(f)
    out["properties"] = dict(f.get("properties") or {})
    if isinstance(f.get("geometry"), dict):
        geometry = dict(f["geometry"])
        if "geometries" in geometry:
            geometry["geometries"] = [dict(g) for g in geometry["geometries"]]
        out["geometry"] = geometry
    return out


def _prepare(geojson, crs, shown):
    features = _features(geojson)
    for f in features:
        f["properties"] = dict(f.get("properties") or {})
        for key in shown:
            if isinstance(f["properties"].get(key), str):
                # folium's GeoJsonTooltip puts property values into innerHTML unescaped.
                f["properties"][key] = html.escape(f["properties"][key])
        if f.get("geometry"):
            f["geometry"] = _geometry_to_crs(f["geometry"], crs)
    return features


def _geometry_to_crs(geometry, crs):
    if crs == "wgs84":
        return geometry
    if geometry.get("type") == "GeometryCollection":
        geometry["geometries"] = [_geometry_to_crs(g, crs) for g in geometry.get("geometries", [])]
    else:
        geometry["coordinates"] = _coords_to_crs(geometry["coordinates"], crs)
    return geometry


def _coords_to_crs(coords, crs):
    if not coords:
        return coords
    if isinstance(coords[0], (int, float)):  # one position
        lng, lat = _to_crs(coords[0], coords[1], crs)
        return [float(lng), float(lat), *coords[2:]]
    if isinstance(coords[0][0], (int, float)):  # a ring or line: convert it in one call
        arr = np.asarray([c[:2] for c in coords], dtype=float)
        lng, lat = _to_crs(arr[:, 0], arr[:, 1], crs)
        return [[float(x), float(y)] for x, y in zip(lng, lat)]
    return [_coords_to_crs(c, crs) for c in coords]


def _to_crs(lng, lat, crs):
    if crs == "gcj02":
        return wgs84_to_gcj02(lng, lat)
    return lng, lat


def _bounds(features):
    lngs, lats = [], []

    def collect(coords):
        if not coords:
            return
        if isinstance(coords[0], (int, float)):
            lngs.append(coords[0])
            lats.append(coords[1])
        else:
            for c in coords:
                collect(c)

    def visit(geometry):
        if not geometry:
            return
        if geometry.get("type") == "GeometryCollection":
            for g in geometry.get("geometries", []):
                visit(g)
        else:
            collect(geometry.get("coordinates"))

    for f in features:
        visit(f.get("geometry"))
    if not lngs:
        return None
    return [[min(lats), min(lngs)], [max(lats), max(lngs)]]


def _collection(features):
    return {"type": "FeatureCollection", "features": features}


def _tooltip(features, fields, aliases):
    keep = [
        (field, alias)
        for field, alias in zip(fields, aliases)
        if features and all(field in (f.get("properties") or {}) for f in features)
    ]
    if not keep:
        return None
    return folium.GeoJsonTooltip(fields=[f for f, _ in keep], aliases=[a for _, a in keep], sticky=True)


def _js_safe_html(text):
    # folium puts tooltip and popup text into a JS template literal as raw HTML: escape the HTML,
    # and the characters a template literal interprets (` ${ \).
    return html.escape(str(text)).replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


def _fmt(value):
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"
