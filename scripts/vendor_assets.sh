#!/usr/bin/env bash
# Rebuild static/vendor/ (the front-end assets folium maps and the GeoDjango admin map widget
# would otherwise load from CDNs) so maps work on an intranet with no internet.
#
#   scripts/vendor_assets.sh           rebuild static/vendor from the registries
#   scripts/vendor_assets.sh --check   rebuild into a temp dir and diff it against static/vendor
#
# Versions are pinned to the ones folium 0.20.0 (folium/folium.py, plugins) and Django 5.2
# (django/contrib/gis/forms/widgets.py) reference, so behaviour matches the CDN build; upgrade
# them together with folium / Django and update the sha256 sums (npm pack prints the tarball).
# Every tarball is checked against a pinned sha256. Only the dist files a page loads are kept,
# plus each package's licence; no node_modules.
#
# Deviations from the upstream files, all made below and nowhere else:
#   * "//# sourceMappingURL" / "/*# sourceMappingURL */" comments are removed: the .map files are
#     not vendored, and ManifestStaticFilesStorage (collectstatic) fails on a missing map.
#   * Font Awesome and Glyphicons ship woff2 only; the .ttf/.eot/.svg fallbacks (for browsers
#     older than anything Bootstrap 5 supports) are dropped from the CSS and not vendored.
#   * bootstrap-glyphicons.css: folium loads Bootstrap 3.0.0's separate glyphicons stylesheet
#     from netdna (not on npm); its equivalent is cut from bootstrap@3.4.1's dist/css/bootstrap.css
#     (only the .glyphicon rules, so it does not fight Bootstrap 5).
#   * leaflet.awesome-markers 2.0.2 (what folium loads from cdnjs) is on npm only as the shim
#     package drmonty-leaflet-awesome-markers@2.0.2 (byte-identical JS/CSS/images); it carries no
#     licence file, so the upstream MIT text is written here.
#   * Leaflet.VectorGrid 1.3.0 (the leader's grid choropleth from /maps/tiles/grids/) carries its
#     Beerware licence in README.md only; the notice is written here as its LICENSE.
#   * folium's own leaflet_heat.min.js (Leaflet.heat 0.2.0 + the weights patch) and
#     leaflet.awesome.rotate.css come from folium's sdist on PyPI: they are not on npm.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEST="$ROOT/static/vendor"
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT="$WORK/vendor"
mkdir -p "$OUT" "$WORK/src"

die() { echo "vendor_assets: $*" >&2; exit 1; }

# fetch <npm spec> <sha256> <dir>: npm pack into $WORK/src/<dir> and unpack (package/ inside)
fetch() {
  local spec=$1 sum=$2 dir="$WORK/src/$3"
  mkdir -p "$dir"
  # Run from $WORK so npm never reads a package.json of the project.
  (cd "$WORK" && npm pack "$spec" --silent --pack-destination "$dir" >/dev/null)
  local tgz
  tgz=$(ls "$dir"/*.tgz)
  echo "$sum  $tgz" | sha256sum -c --quiet - || die "$spec: sha256 mismatch"
  tar xzf "$tgz" -C "$dir"
}

# put <src> <dest relative to vendor/>
put() { install -D -m 0644 "$1" "$OUT/$2"; }

strip_sourcemaps() {
  sed -i -E -e '/^\/\/# sourceMappingURL=/d' -e 's#/\*\# sourceMappingURL=[^*]*\*/##' "$@"
}

echo "fetching packages from $(npm config get registry)"
fetch leaflet@1.9.3 10d016716b56048661eaf9cde004dc82e80bd3613b52c4f53cf5aec73088006c leaflet
fetch jquery@3.7.1 68a9f787516da47c680e09c187bcbac4536b6f85d90eb882844e12919e583f53 jquery
fetch bootstrap@5.2.2 6ae3403f9085283be866fd9bca04f3034ffc755e466e6a1ff9836e8c0a1340d4 bootstrap
fetch bootstrap@3.4.1 990c17dbc1560f3262b6a5404c6ed01ff5a58487b8f553663a284c37fb8ec5cc bootstrap3
fetch @fortawesome/fontawesome-free@6.2.0 627ba11e9f2923be8f4c3f8688b9b4f17d787ce02691f32837893f53e8276c2a fontawesome
fetch drmonty-leaflet-awesome-markers@2.0.2 462ab5a8fe53883d44d7c7a1c79c8e43c748ba026abbb9dbefe9e586645a4473 awesome
fetch leaflet.markercluster@1.1.0 47219016d91e524b329a0fb2365961bf8228109bb58e370ad0b1ab6299288b91 markercluster
fetch d3@3.5.5 1bb5833408efeba47e97c1de9d448ddb9216961b2d966a78dc9a9e30cfcd92b3 d3
fetch ol@7.2.2 08a92332623609281091f187da1fd3b7c2d2c8509a9619d1603e6b58bdf9146d ol
fetch leaflet.vectorgrid@1.3.0 4eaf00b9c3c80e53d59a84a9d3523f1b9ae3149e709db6fa293e9c292739ed7e vectorgrid

FOLIUM_SDIST=https://files.pythonhosted.org/packages/c7/76/84a1b1b00ce71f9c0c44af7d80f310c02e2e583591fe7d4cb03baecd0d3f/folium-0.20.0.tar.gz
FOLIUM_SHA256=a0d78b9d5a36ba7589ca9aedbd433e84e9fcab79cd6ac213adbcff922e454cb9
mkdir -p "$WORK/src/folium"
curl -fsSL --retry 3 -o "$WORK/src/folium/folium.tar.gz" "$FOLIUM_SDIST"
echo "$FOLIUM_SHA256  $WORK/src/folium/folium.tar.gz" | sha256sum -c --quiet - || die "folium sdist: sha256 mismatch"
tar xzf "$WORK/src/folium/folium.tar.gz" -C "$WORK/src/folium" \
  folium-0.20.0/LICENSE.txt \
  folium-0.20.0/folium/templates/leaflet_heat.min.js \
  folium-0.20.0/folium/templates/leaflet.awesome.rotate.css

S="$WORK/src"

# --- Leaflet ---------------------------------------------------------------------------------
P="$S/leaflet/package"
put "$P/dist/leaflet.js" leaflet/leaflet.js
put "$P/dist/leaflet.css" leaflet/leaflet.css
for f in layers.png layers-2x.png marker-icon.png marker-icon-2x.png marker-shadow.png; do
  put "$P/dist/images/$f" "leaflet/images/$f"
done
put "$P/LICENSE" leaflet/LICENSE

# --- jQuery ----------------------------------------------------------------------------------
put "$S/jquery/package/dist/jquery.min.js" jquery/jquery.min.js
put "$S/jquery/package/LICENSE.txt" jquery/LICENSE.txt

# --- Bootstrap 5 -------------------------------------------------------------------------------
P="$S/bootstrap/package"
put "$P/dist/css/bootstrap.min.css" bootstrap/css/bootstrap.min.css
put "$P/dist/js/bootstrap.bundle.min.js" bootstrap/js/bootstrap.bundle.min.js
put "$P/LICENSE" bootstrap/LICENSE

# --- Glyphicons (from Bootstrap 3) -------------------------------------------------------------
P="$S/bootstrap3/package"
mkdir -p "$OUT/bootstrap-glyphicons/css"
{
  printf '/*!\n * Glyphicons Halflings rules from Bootstrap v3.4.1 (https://getbootstrap.com/), MIT licence.\n'
  printf ' * Cut from dist/css/bootstrap.css by scripts/vendor_assets.sh; woff2 only.\n */\n'
  printf '@font-face {\n  font-family: "Glyphicons Halflings";\n'
  printf '  src: url("../fonts/glyphicons-halflings-regular.woff2") format("woff2");\n}\n'
  sed -n '/^\.glyphicon {$/,/^\* {$/p' "$P/dist/css/bootstrap.css" | sed '$d'
} >"$OUT/bootstrap-glyphicons/css/bootstrap-glyphicons.css"
n=$(grep -c '^\.glyphicon-[a-z0-9-]*:before {$' "$OUT/bootstrap-glyphicons/css/bootstrap-glyphicons.css" || true)
[ "$n" -gt 200 ] || die "glyphicons: expected >200 icon rules, cut $n (bootstrap.css layout changed?)"
put "$P/dist/fonts/glyphicons-halflings-regular.woff2" bootstrap-glyphicons/fonts/glyphicons-halflings-regular.woff2
put "$P/LICENSE" bootstrap-glyphicons/LICENSE

# --- Font Awesome Free ---------------------------------------------------------------------------
P="$S/fontawesome/package"
put "$P/css/all.min.css" fontawesome-free/css/all.min.css
sed -i -E 's#,url\(\.\./webfonts/[a-z0-9-]+\.ttf\) format\("truetype"\)##g' "$OUT/fontawesome-free/css/all.min.css"
! grep -q '\.ttf' "$OUT/fontawesome-free/css/all.min.css" || die "fontawesome: a .ttf reference survived"
for f in fa-brands-400 fa-regular-400 fa-solid-900 fa-v4compatibility; do
  put "$P/webfonts/$f.woff2" "fontawesome-free/webfonts/$f.woff2"
done
put "$P/LICENSE.txt" fontawesome-free/LICENSE.txt

# --- Leaflet.awesome-markers ---------------------------------------------------------------------
P="$S/awesome/package"
put "$P/js/leaflet.awesome-markers.js" leaflet.awesome-markers/leaflet.awesome-markers.js
put "$P/css/leaflet.awesome-markers.css" leaflet.awesome-markers/leaflet.awesome-markers.css
for f in markers-soft.png markers-soft@2x.png markers-shadow.png markers-shadow@2x.png; do
  put "$P/css/images/$f" "leaflet.awesome-markers/images/$f"
done
cat >"$OUT/leaflet.awesome-markers/LICENSE" <<'EOF'
Copyright (C) 2013 L. Voogdt

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated documentation files (the "Software"), to deal in the Software without restriction, including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
EOF

# --- Leaflet.markercluster ---------------------------------------------------------------------
P="$S/markercluster/package"
for f in leaflet.markercluster.js MarkerCluster.css MarkerCluster.Default.css; do
  put "$P/dist/$f" "leaflet.markercluster/$f"
done
put "$P/MIT-LICENCE.txt" leaflet.markercluster/MIT-LICENCE.txt

# --- d3 v3 (branca colormap legends) ---------------------------------------------------------------
put "$S/d3/package/d3.min.js" d3/d3.min.js
put "$S/d3/package/LICENSE" d3/LICENSE

# --- OpenLayers (GeoDjango admin map widget) -------------------------------------------------------
put "$S/ol/package/dist/ol.js" ol/ol.js
put "$S/ol/package/ol.css" ol/ol.css
put "$S/ol/package/LICENSE.md" ol/LICENSE.md

# --- Leaflet.VectorGrid (bundled: pbf, vector-tile, geojson-vt, topojson inside) ------------------
put "$S/vectorgrid/package/dist/Leaflet.VectorGrid.bundled.min.js" leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js
cat >"$OUT/leaflet.vectorgrid/LICENSE" <<'EOF'
Leaflet.VectorGrid, from its README.md:

"THE BEER-WARE LICENSE":
<ivan@sanchezortega.es> wrote this file. As long as you retain this notice you
can do whatever you want with this stuff. If we meet some day, and you think
this stuff is worth it, you can buy me a beer in return.

The bundled build includes geojson-vt (ISC), pbf (BSD-3-Clause), topojson (BSD-3-Clause) and
vector-tile (BSD-3-Clause).
EOF

# --- folium's own files ------------------------------------------------------------------------------
P="$S/folium/folium-0.20.0"
put "$P/folium/templates/leaflet_heat.min.js" folium/leaflet_heat.min.js
put "$P/folium/templates/leaflet.awesome.rotate.css" folium/leaflet.awesome.rotate.css
put "$P/LICENSE.txt" folium/LICENSE.txt

find "$OUT" -type f \( -name '*.js' -o -name '*.css' \) -print0 | xargs -0 -r bash -c "$(declare -f strip_sourcemaps); strip_sourcemaps \"\$@\"" _
! grep -rl 'sourceMappingURL' "$OUT" >/dev/null || die "a sourceMappingURL comment survived"

cat >"$OUT/VERSIONS.txt" <<'EOF'
Vendored front-end assets: generated by scripts/vendor_assets.sh, do not edit by hand.
Re-run the script to reproduce (or `scripts/vendor_assets.sh --check` to verify).

directory                 package (registry)                        version  licence                     used by
leaflet/                  leaflet (npm)                             1.9.3    BSD-2-Clause                folium Map
jquery/                   jquery (npm)                              3.7.1    MIT                         folium Map
bootstrap/                bootstrap (npm)                           5.2.2    MIT                         folium Map
bootstrap-glyphicons/     bootstrap (npm), glyphicons rules only    3.4.1    MIT                         folium Map (awesome-markers icons)
fontawesome-free/         @fortawesome/fontawesome-free (npm)       6.2.0    CC-BY-4.0 / OFL-1.1 / MIT   folium Map (awesome-markers icons)
leaflet.awesome-markers/  drmonty-leaflet-awesome-markers (npm)     2.0.2    MIT                         folium Map, Marker icons
leaflet.markercluster/    leaflet.markercluster (npm)               1.1.0    MIT                         folium.plugins.MarkerCluster
d3/                       d3 (npm)                                  3.5.5    BSD-3-Clause                branca colormap legend
folium/                   folium (PyPI sdist), templates/           0.20.0   MIT                         folium.plugins.HeatMap, awesome rotate css
ol/                       ol (npm)                                  7.2.2    BSD-2-Clause                GeoDjango admin map widget
leaflet.vectorgrid/       leaflet.vectorgrid (npm), bundled build   1.3.0    Beerware (+ISC, BSD-3)      leader's grid tiles (map-page.js)

Changes from upstream (see the script header): sourceMappingURL comments removed; Font Awesome
and Glyphicons reference woff2 fonts only; bootstrap-glyphicons.css is cut from Bootstrap 3.4.1.
EOF

if [ "$CHECK" = 1 ]; then
  diff -r "$OUT" "$DEST" && echo "static/vendor matches the registries"
  exit
fi
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
cp -r "$OUT" "$DEST"
echo "static/vendor rebuilt: $(du -sh "$DEST" | cut -f1), $(find "$DEST" -type f | wc -l) files"
