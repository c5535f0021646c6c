"""Make folium maps load their JavaScript and CSS from our own static files, never a CDN.

Government intranets have no internet: a folium map that pulls Leaflet from jsDelivr renders
as an empty box there. `make_offline(m)` points every asset of the map's element tree at
static/vendor/ (filled by scripts/vendor_assets.sh) and keeps doing so at render time, so
plugins added after the call are covered too; an asset it does not know raises instead of
leaking a CDN URL into the page. Basemap tile URLs are not assets: they are the one external
thing a page may reference, and only when a basemap other than "none" is configured.
"""

import re

from branca.element import Element, Figure, Link
from django.templatetags.static import static
from folium.elements import JSCSSMixin

from . import folium_adapter

# Rendered folium output is never compiled as a template again (see maps.folium_adapter).
folium_adapter.install()


class ExternalAssetError(ValueError):
    """A map references a script or stylesheet outside our static files."""


class TemplateInjectionError(RuntimeError):
    """Rendered map output was about to be compiled and run as a template."""


# The exact URLs folium 0.20.0 / branca 0.8.2 use -> file under static/vendor/. Exact matches on
# purpose: a folium upgrade that moves to another version must fail here until
# scripts/vendor_assets.sh vendors that version, not silently serve the old file.
VENDORED = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "leaflet/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "leaflet/leaflet.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": "bootstrap/js/bootstrap.bundle.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": "bootstrap/css/bootstrap.min.css",
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css": (
        "bootstrap-glyphicons/css/bootstrap-glyphicons.css"
    ),
    "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": "fontawesome-free/css/all.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": (
        "leaflet.awesome-markers/leaflet.awesome-markers.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": (
        "leaflet.awesome-markers/leaflet.awesome-markers.css"
    ),
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css": (
        "folium/leaflet.awesome.rotate.css"
    ),
    "https://cdn.jsdelivr.net/gh/python-visualization/folium@main/folium/templates/leaflet_heat.min.js": (
        "folium/leaflet_heat.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/leaflet.markercluster.js": (
        "leaflet.markercluster/leaflet.markercluster.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.css": (
        "leaflet.markercluster/MarkerCluster.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet.markercluster/1.1.0/MarkerCluster.Default.css": (
        "leaflet.markercluster/MarkerCluster.Default.css"
    ),
    # branca's colormap legend (choropleth) adds this link directly to the header while rendering.
    "https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.5/d3.min.js": "d3/d3.min.js",
}

_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
# The URL of a <script src>, <link href> or CSS @import in the final HTML.
_LOADED_IN_HTML = re.compile(
    r"""<script\b[^>]*?\bsrc\s*=\s*["']?([^"'\s>]+)"""
    r"""|<link\b[^>]*?\bhref\s*=\s*["']?([^"'\s>]+)"""
    r"""|@import\s+(?:url\()?\s*["']?([^"'\s);]+)""",
    re.IGNORECASE,
)


def vendor_url(url):
    """CDN URL -> URL of the vendored copy; our own (relative or static) URLs pass through."""
    if url in VENDORED:
        return static("vendor/" + VENDORED[url])
    if not _EXTERNAL.match(url) or url.startswith(static("")):
        return url
    raise ExternalAssetError(
        f"no vendored copy of {url!r}: add it to scripts/vendor_assets.sh and maps.offline.VENDORED"
    )


def make_offline(m):
    """Rewrite map `m` (and everything in its figure) to vendored assets; returns `m`.

    Raises ExternalAssetError for any script or stylesheet that has no vendored copy, now and
    again whenever the figure is rendered.
    """
    figure = m.get_root()
    if not isinstance(figure, Figure):
        raise TypeError("make_offline needs a map that belongs to a Figure (folium.Map always does)")
    _rewrite_tree(figure)
    # Plugins added later (m.add_child(...)) and links added during rendering (branca's colormap
    # adds d3 to the header inside its render) only exist at render time, so the figure itself
    # must rewrite and check again then. Switching the class keeps the Figure object that
    # m.get_root() and every child's _parent already point to.
    if type(figure) is Figure:
        figure.__class__ = OfflineFigure
    elif not isinstance(figure, OfflineFigure):
        raise TypeError(f"make_offline cannot take over the render of a {type(figure).__name__}")
    return m


def assert_offline(html):
    """Raise ExternalAssetError if rendered map HTML loads a script or stylesheet from elsewhere."""
    own = static("")
    loaded = (url for groups in _LOADED_IN_HTML.findall(html) for url in groups if url)
    found = sorted({url for url in loaded if _EXTERNAL.match(url) and not url.startswith(own)})
    if found:
        raise ExternalAssetError(f"map HTML still loads external assets: {found}")
    return html


def render_parts(m):
    """Render an offline map for a Django template: {"header", "html", "script"} strings."""
    figure = make_offline(m).get_root()
    figure.render()
    parts = {
        "header": figure.header.render(),
        "html": figure.html.render(),
        "script": figure.script.render(),
    }
    for part in parts.values():
        assert_offline(part)
    return parts


class OfflineFigure(Figure):
    """A Figure whose render rewrites CDN links to vendored ones and refuses any it cannot."""

    def render(self, **kwargs):
        _rewrite_tree(self)
        for child in self._children.values():
            child.render(**kwargs)
        _rewrite_tree(self)
        # A render path the adapter does not cover (a new folium element) would compile text
        # with data in it; refuse before that text is rendered, i.e. before it can run.
        leaked = folium_adapter.compiled_from_data(self)
        if leaked:
            raise TemplateInjectionError(f"map elements compiled from rendered text: {leaked}")
        return assert_offline(self._template.render(this=self, kwargs=kwargs))


def _rewrite_tree(figure):
    for element in _walk(figure):
        if isinstance(element, JSCSSMixin):
            # Instance attributes: default_js/default_css are class-level lists shared by every
            # map in the process, which must keep working for code that wants the CDN.
            element.default_js = [(name, vendor_url(url)) for name, url in element.default_js]
            element.default_css = [(name, vendor_url(url)) for name, url in element.default_css]
        if isinstance(element, Link):
            element.url = vendor_url(element.url)


def _walk(root):
    stack = [root]
    seen = set()
    while stack:
        element = stack.pop()
        if id(element) in seen:
            continue
        seen.add(id(element))
        yield element
        stack.extend(getattr(element, "_children", {}).values())
        if isinstance(element, Figure):
            stack.extend([element.header, element.html, element.script])
        elif isinstance(element, Element):
            # Elements that render parts of themselves into the figure keep them as attributes
            # (e.g. a Map's GlobalSwitches), not only as children.
            stack.extend(v for v in vars(element).values() if isinstance(v, Element) and v is not element._parent)
