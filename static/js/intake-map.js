// Intake page: click the map to fill in lng/lat (in the basemap's coordinate system).
(function () {
  "use strict";
  var el = document.getElementById("intake-map");
  if (!el || !window.L) { return; }
  var cfg = JSON.parse(el.dataset.config || "{}");
  var lng = document.getElementById("id_lng");
  var lat = document.getElementById("id_lat");
  var crs = document.getElementById("id_crs");
  L.Icon.Default.imagePath = el.dataset.images || "/static/vendor/leaflet/images/";
  var map = L.map(el).setView([39.91, 116.40], 11);
  (cfg.tiles || []).forEach(function (t) {
    L.tileLayer(t.url, { attribution: t.attribution, subdomains: t.subdomains || "abc", maxZoom: t.maxZoom || 18 }).addTo(map);
  });
  var marker = null;
  function place(latlng) {
    if (marker) { marker.setLatLng(latlng); } else { marker = L.marker(latlng).addTo(map); }
  }
  // Keep what was typed: after a refused submit, show the position that was sent.
  if (lng.value && lat.value && crs.value === cfg.crs) {
    place([parseFloat(lat.value), parseFloat(lng.value)]);
    map.setView([parseFloat(lat.value), parseFloat(lng.value)], 15);
  }
  map.on("click", function (e) {
    lng.value = e.latlng.lng.toFixed(6);
    lat.value = e.latlng.lat.toFixed(6);
    crs.value = cfg.crs || "wgs84";
    place(e.latlng);
  });
  if (cfg.gridsUrl) {
    fetch(cfg.gridsUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || !data.features || !data.features.length) { return; }
        var layer = L.geoJSON(data, {
          style: { color: "#0b5cad", weight: 1, fillOpacity: 0.05 },
          // A string tooltip is set as innerHTML: area names come from imports, so pass a text node.
          onEachFeature: function (f, l) {
            l.bindTooltip(document.createTextNode(f.properties.name + "（" + f.properties.code + "）"));
          },
        }).addTo(map);
        if (!marker) { map.fitBounds(layer.getBounds()); }
      });
  }
}());
