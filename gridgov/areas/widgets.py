"""The GeoDjango admin map widget, without the internet.

Django's OSMWidget loads OpenLayers from jsDelivr and draws OpenStreetMap tiles: on an intranet
both fail and the admin shows an empty box. This widget loads the vendored OpenLayers
(static/vendor/ol, see scripts/vendor_assets.sh) and takes its base layer from
settings.MAP_BASEMAP, like the folium maps (maps/builders.py): with "none" there are no tiles,
only the geometry on a plain background.
"""

import json
from typing import ClassVar

from django.conf import settings
from django.contrib.gis.forms import OSMWidget
from django.forms.renderers import get_default_renderer
from django.template import engines
from django.utils.safestring import mark_safe

from gridgov.basemaps import get_basemap

# Replaces the base_layer block of Django's template; everything else (options, the MapWidget
# call) stays Django's.
_TEMPLATE = (
    '{% extends "gis/openlayers-osm.html" %}'
    "{% block base_layer %}var base_layer = {{ base_layer_js|safe }};{% endblock %}"
)
# OLMapWidget.js swaps in OpenStreetMap when base_layer is falsy, so "no tiles" is an empty layer.
_NO_TILES = "new ol.layer.Vector({source: new ol.source.Vector()})"


class OfflineMapWidget(OSMWidget):
    class Media:
        # extend = False: the parent's Media would otherwise add the CDN ol.js/ol.css back.
        extend = False
        css: ClassVar[dict] = {"all": ("vendor/ol/ol.css", "gis/css/ol3.css")}
        js = ("vendor/ol/ol.js", "gis/js/OLMapWidget.js")

    def _render(self, template_name, context, renderer=None):
        context["base_layer_js"] = base_layer_js()
        engine = getattr(renderer or get_default_renderer(), "engine", None) or engines["django"]
        html = engine.from_string(_TEMPLATE).render(context)
        # Django's template starts the map in an inline <script>; under the Content-Security-Policy
        # it runs only with the page's nonce, which AreaAdmin hands the widget with the request.
        nonce = getattr(self, "csp_nonce", None)
        if nonce is not None:  # django-csp's lazy nonce: str() makes it and puts it in the header
            html = html.replace("<script>", f'<script nonce="{nonce!s}">', 1)
        return mark_safe(html)


def base_layer_js(basemap: str | None = None) -> str:
    """OpenLayers expression for the admin map's base layer under `basemap` (default: settings)."""
    bm = get_basemap(settings.MAP_BASEMAP if basemap is None else basemap)
    if bm.crs != "wgs84" or not bm.tiles:
        # AMap tiles are GCJ-02: boundaries edited over them would be saved ~500 m off. Better no
        # basemap than a wrong one.
        return _NO_TILES
    layers = []
    for t in bm.tiles:
        source = json.dumps(
            {"url": _ol_url(t.url, t.subdomains), "attributions": t.attribution, "maxZoom": t.max_zoom},
            ensure_ascii=False,
        ).replace("</", "<\\/")
        layers.append(f"new ol.layer.Tile({{source: new ol.source.XYZ({source})}})")
    if len(layers) == 1:
        return layers[0]
    return f"new ol.layer.Group({{layers: [{', '.join(layers)}]}})"


def _ol_url(url, subdomains):
    # Leaflet's {s} + subdomains "01234567" is OpenLayers' {0-7} (our subdomains are ranges).
    if "{s}" in url and subdomains:
        return url.replace("{s}", f"{{{subdomains[0]}-{subdomains[-1]}}}")
    return url
