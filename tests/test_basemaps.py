"""Basemaps live on a low floor (gridgov/basemaps.py): the domain reads them without loading the
map pages or folium."""

import subprocess
import sys

from django.conf import settings

from gridgov import basemaps
from maps import builders

_PROBE = """
import os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridgov.settings")
django.setup()
from gridgov.appeals.views import map_config
from gridgov.areas.widgets import base_layer_js
from gridgov.security import tile_origins
for basemap in ("none", "osm", "amap"):
    base_layer_js(basemap)
    tile_origins(basemap)
map_config()
print(sorted(m for m in sys.modules if m == "folium" or m.startswith(("folium.", "maps."))))
"""


def test_domain_reads_basemaps_without_the_map_app():
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=settings.BASE_DIR, capture_output=True, text=True, check=True
    ).stdout
    loaded = eval(out.strip().splitlines()[-1])  # noqa: S307 (our own probe's printed list)
    # maps.apps and maps.models come with django.setup(); builders and folium must not.
    assert set(loaded) <= {"maps.apps", "maps.models"}, loaded


def test_builders_use_the_same_basemaps():
    assert builders.get_basemap is basemaps.get_basemap
    assert set(basemaps.BASEMAP_CRS) == set(basemaps.BASEMAPS)
