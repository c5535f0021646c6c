// The map pages (/maps/…): finds the folium map and its layers by the names the view passed
// in #map-config, adds popups and buttons (吹哨, 报到, 签收), the leader's week slider and the
// grid worker's own position, and reloads layers from /maps/api/ when live.js hears an event.
// Popups are built with DOM text nodes: appeal and whistle texts come from people.
(function () {
  "use strict";
  var cfgEl = document.getElementById("map-config");
  if (!cfgEl || !window.L) { return; }
  var cfg = JSON.parse(cfgEl.textContent);
  var map = window[cfg.map];
  if (!map) { return; }
  var layers = {};   // role -> Leaflet layer
  Object.keys(cfg.layers || {}).forEach(function (title) {
    var role = (cfg.roles || {})[title];
    if (role && window[cfg.layers[title]]) { layers[role] = window[cfg.layers[title]]; }
  });
  var POINT_ROLES = ["appeals", "hotspots", "suggestions", "calls", "tasks", "queue"];
  window.gridgovMap = { map: map, layers: layers, config: cfg, refresh: refresh, ready: false };

  // --- small helpers -------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else if (k === "class") { node.className = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }
  function row(label, value) {
    if (value === null || value === undefined || value === "") { return null; }
    return el("tr", {}, [el("th", { text: label }), el("td", { text: String(value) })]);
  }
  function pct(x) { return x === null || x === undefined ? "无数据" : (Math.round(x * 1000) / 10) + "%"; }
  function when(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString("zh-CN", { hour12: false });
  }
  function notice(text, kind) {
    var log = document.getElementById("live-log");
    if (!log) { return; }
    var item = el("li", { text: new Date().toLocaleTimeString("zh-CN", { hour12: false }) + " " + text, class: kind || "" });
    log.insertBefore(item, log.firstChild);
    while (log.children.length > 12) { log.removeChild(log.lastChild); }
  }
  function withCrs(url) {
    if (cfg.crs !== "gcj02") { return url; }
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "crs=gcj02";
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { throw new Error(r.status + " " + url); }
      return r.json();
    });
  }
  function postJSON(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": cfg.csrf },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) { throw new Error(data.detail || data.message || ("请求失败（" + r.status + "）")); }
        return data;
      });
    });
  }

  // --- styles (the same rules as maps/builders.py) ---------------------------------------------
  function pointStyle(feature) {
    var p = feature.properties || {};
    var count = Math.max(1, Number(p.count) || 1);
    return { color: "#ffffff", weight: 1.5, fillColor: cfg.colors[p.color] || cfg.colors.gray, fillOpacity: 0.9,
      radius: Math.min(6 + 3 * Math.sqrt(count - 1), 28) };
  }
  function hexToRgb(h) { return [1, 3, 5].map(function (i) { return parseInt(h.substr(i, 2), 16); }); }
  function scaleColour(value) {
    var s = cfg.choropleth, cols = cfg.choropleth_colors;
    if (value === null || value === undefined) { return cfg.no_data_color; }
    var t = Math.max(0, Math.min(1, (value - s.vmin) / (s.vmax - s.vmin)));
    var pos = t * (cols.length - 1), i = Math.min(Math.floor(pos), cols.length - 2), f = pos - i;
    var a = hexToRgb(cols[i]), b = hexToRgb(cols[i + 1]);
    return "#" + a.map(function (x, k) { return ("0" + Math.round(x + (b[k] - x) * f).toString(16)).slice(-2); }).join("");
  }

  // --- the leader's grids as vector tiles (a scope with too many grids to embed) -------------------
  // Live counts by grid code: set by a refresh, they restyle the features in place and, kept by
  // VectorGrid as overridden styles, win over the counts in tiles loaded later (cached 60 s).
  // A refresh asks only for the grids that events named since the last one (a few hundred bytes);
  // after a reconnect that may have missed events, for every grid in view.
  var gridCounts = {}, changedGrids = {}, gridsInView = false, MAX_CODES = 300;
  function gridStyle(count) {
    return { fill: true, fillColor: scaleColour(count), fillOpacity: 0.75, color: "#555555", weight: 0.8 };
  }
  if (cfg.grid_tiles && L.vectorGrid) {
    layers.grid_tiles = L.vectorGrid.protobuf(cfg.grid_tiles, {
      rendererFactory: L.canvas.tile,
      interactive: true,
      maxNativeZoom: 22,
      getFeatureId: function (f) { return f.properties.code; },  // keeps each tile's features (_vectorTiles)
      vectorTileLayerStyles: { grids: function (p) { return gridStyle(Number(p.count)); } }
    }).addTo(map);
    layers.grid_tiles.on("mouseover", function (e) {
      var p = e.layer.properties || {};
      var count = gridCounts[p.code] === undefined ? p.count : gridCounts[p.code];
      var box = el("div", {}, [el("div", { text: "名称：" + (p.name || "") }), el("div", { text: "编码：" + (p.code || "") }),
        el("div", { text: "诉求量：" + count + " 件" })]);
      map.openTooltip(box, e.latlng);
    });
    layers.grid_tiles.on("mouseout", function () { map.eachLayer(function (l) { if (l instanceof L.Tooltip) { map.closeTooltip(l); } }); });
  }

  // --- popups ------------------------------------------------------------------------------------
  function popupFor(role, feature) {
    var p = feature.properties || {};
    var box = el("div", { class: "map-popup", "data-kind": p.kind || role });
    var table = el("table");
    if (p.kind === "cluster") {
      box.appendChild(el("h4", { text: p.count + " 件未办结诉求" }));
      [["红色提级", p.red], ["橙色督办", p.orange], ["黄色提醒", p.yellow], ["正常", p.none]].forEach(function (r) { table.appendChild(row(r[0], r[1])); });
      box.appendChild(table);
      box.appendChild(el("p", { class: "muted", text: "放大地图可看到单个工单" }));
      return box;
    }
    if (p.kind === "appeal") {
      box.appendChild(el("h4", { text: "工单 " + p.ticket_no }));
      [["类别", p.category], ["状态", p.state_label || p.state], ["预警", { red: "红色提级", orange: "橙色督办", yellow: "黄色提醒", none: "正常" }[p.colour]],
        ["办结时限", when(p.deadline)], ["承办单位", p.department], ["网格", p.grid_code]].forEach(function (r) {
        var tr = row(r[0], r[1]); if (tr) { table.appendChild(tr); }
      });
      box.appendChild(table);
      if (cfg.can_answer && cfg.actions.appeal_accept && p.state === "dispatched") {
        box.appendChild(actionButton("签收", "accept-" + p.ticket_no, function () {
          return postJSON(cfg.actions.appeal_accept.replace("TICKET", encodeURIComponent(p.ticket_no)), { note: "地图签收" })
            .then(function () { notice("已签收工单 " + p.ticket_no, "ok"); refreshSoon(["tasks"]); markListed("accept-" + p.ticket_no, "已签收"); });
        }));
      }
      return box;
    }
    if (p.kind === "hotspot") {
      box.appendChild(el("h4", { text: "热点 · " + p.category }));
      [["网格", p.grid_code], ["时间窗", "近" + p.window_days + "天"], ["诉求数", p.count], ["Gi* z 值", p.z === null || p.z === undefined ? "" : Number(p.z).toFixed(2)],
        ["p 值", p.p === null || p.p === undefined ? "" : Number(p.p).toPrecision(2)], ["置信度", p.confidence ? Math.round(p.confidence * 100) + "%" : ""],
        ["趋势", { new: "新出现", intensifying: "加剧", persistent: "持续", diminishing: "减弱", sporadic: "间歇" }[p.trend] || p.trend], ["状态", p.state_label]].forEach(function (r) {
        var tr = row(r[0], r[1]); if (tr) { table.appendChild(tr); }
      });
      box.appendChild(table);
      if (cfg.can_whistle) { box.appendChild(whistleForm(cfg.actions.whistle_blow, { hotspot: p.id }, "热点问题：" + p.category + "（网格" + p.grid_code + "，近" + p.window_days + "天" + p.count + "件）")); }
      return box;
    }
    if (p.kind === "suggestion") {
      box.appendChild(el("h4", { text: "吹哨建议" }));
      [["类别", p.category], ["依据", p.summary], ["诉求数", p.count]].forEach(function (r) { var tr = row(r[0], r[1]); if (tr) { table.appendChild(tr); } });
      box.appendChild(table);
      if (cfg.can_whistle) { box.appendChild(whistleForm(cfg.actions.suggestion_confirm && cfg.actions.suggestion_confirm.replace("/0/", "/" + p.id + "/"), {}, p.summary || ("吹哨建议：" + p.category))); }
      return box;
    }
    if (p.kind === "call") {
      box.appendChild(el("h4", { text: "吹哨 · " + p.state_label }));
      box.appendChild(el("p", { text: p.problem }));
      [["吹哨时间", when(p.blown_at)], ["报到时限", when(p.muster_deadline)]].forEach(function (r) { table.appendChild(row(r[0], r[1])); });
      box.appendChild(table);
      var list = el("ul", { class: "musters" });
      (p.musters || []).forEach(function (m) { list.appendChild(el("li", { text: m.department + "：" + m.state_label + (m.late ? "（迟到）" : "") })); });
      box.appendChild(list);
      if (cfg.can_answer && p.my_muster && p.my_muster_state === "summoned" && cfg.actions.muster_acknowledge) {
        box.appendChild(musterButton(p.my_muster));
      }
      return box;
    }
    return box;
  }

  function actionButton(label, key, run) {
    var btn = el("button", { type: "button", class: "btn map-action", "data-action": key, text: label });
    var out = el("span", { class: "action-result" });
    btn.addEventListener("click", function () {
      btn.disabled = true;
      out.textContent = "提交中…";
      run().then(function () { out.textContent = "已完成"; }).catch(function (err) { btn.disabled = false; out.textContent = "失败：" + err.message; });
    });
    return el("div", { class: "popup-action" }, [btn, out]);
  }

  function musterButton(musterId) {
    return actionButton("报到/签收", "muster-" + musterId, function () {
      return postJSON(cfg.actions.muster_acknowledge.replace("/0/", "/" + musterId + "/"), { note: "地图报到" }).then(function () {
        notice("已报到（召集单 " + musterId + "）", "ok");
        markListed("muster-" + musterId, "已报到");
        refreshSoon(["calls"]);
      });
    });
  }

  function whistleForm(url, target, problem) {
    var text = el("textarea", { rows: "2", class: "whistle-problem" });
    text.value = problem;
    var wrap = el("div", { class: "whistle-form" }, [el("label", { text: "问题描述" }), text]);
    if (!url) {
      wrap.appendChild(el("p", { class: "muted", text: "吹哨接口尚未开通" }));
      return wrap;
    }
    wrap.appendChild(actionButton("吹哨", "whistle", function () {
      var body = Object.assign({ problem: text.value }, target);
      return postJSON(url, body).then(function (call) {
        var names = (call.musters || []).map(function (m) { return m.department_name || m.department; }).join("、");
        notice("已吹哨" + (names ? "，召集：" + names : ""), "ok");
        refreshSoon(["calls", "hotspots", "suggestions"]);
      });
    }));
    return wrap;
  }

  function markListed(key, text) {
    document.querySelectorAll('[data-action="' + key + '"]').forEach(function (b) { b.disabled = true; b.textContent = text; });
  }

  function bindPopups(role, layer) {
    layer.eachLayer(function (sub) {
      if (sub.feature) { sub.bindPopup(function () { return popupFor(role, sub.feature); }, { maxWidth: 340 }); }
    });
  }

  // --- refresh from the API -----------------------------------------------------------------------
  function setPoints(role, fc) {
    var layer = layers[role];
    layer.clearLayers();
    layer.options.style = pointStyle;
    layer.options.pointToLayer = function (feature, latlng) { return L.circleMarker(latlng, pointStyle(feature)); };
    layer.addData(fc);
    bindPopups(role, layer);
  }

  function setChoropleth(fc) {
    var byCode = {};
    fc.features.forEach(function (f) { byCode[f.properties.code] = f.properties; });
    layers.choropleth.eachLayer(function (sub) {
      var p = sub.feature && sub.feature.properties;
      if (!p) { return; }
      var fresh = byCode[p.code];
      var value = fresh ? fresh.count : null;
      p.value = value === null ? "无数据" : String(value);
      sub.setStyle({ fillColor: scaleColour(value) });
    });
  }

  function setGridTiles(fc) {
    fc.features.forEach(function (f) {
      var p = f.properties;
      if (gridCounts[p.code] !== p.count) {
        gridCounts[p.code] = p.count;
        layers.grid_tiles.setFeatureStyle(p.code, gridStyle(p.count));
      }
    });
  }
  function viewBox() {
    var b = map.getBounds();
    return [Math.max(b.getWest(), -180), Math.max(b.getSouth(), -90), Math.min(b.getEast(), 180), Math.min(b.getNorth(), 90)]
      .map(function (v) { return v.toFixed(5); }).join(",");
  }

  // The heat of the page's whole time range, as drawn: the page embeds it, a refresh replaces it;
  // the week slider puts it back without asking the server again.
  var heatRange = layers.heat ? layers.heat._latlngs : null;
  function setHeat(cells) {
    var max = 0;
    cells.forEach(function (c) { max = Math.max(max, c[2]); });
    layers.heat.setLatLngs(cells.filter(function (c) { return c[2] > 0; }).map(function (c) { return [c[0], c[1], c[2] / (max || 1)]; }));
  }

  function refresh(role) {
    var url = (cfg.api || {})[role];
    if (!url || !layers[role]) { return Promise.resolve(); }
    if (POINT_ROLES.indexOf(role) >= 0) { return getJSON(withCrs(url)).then(function (fc) { setPoints(role, fc); }); }
    if (role === "choropleth") { return getJSON(url).then(setChoropleth); }
    if (role === "grid_tiles") {
      var codes = Object.keys(changedGrids);
      var whole = gridsInView || codes.length > MAX_CODES;
      changedGrids = {};
      gridsInView = false;
      if (!whole && !codes.length) { return Promise.resolve(); }
      return getJSON(url + (whole ? "&bbox=" + viewBox() : "&codes=" + codes.join(","))).then(setGridTiles);
    }
    if (role === "heat" && cfg.crs === "wgs84") { return getJSON(url).then(function (d) { setHeat(d.cells); heatRange = layers.heat._latlngs; }); }
    return Promise.resolve();
  }

  var pending = {}, timer = null;
  function refreshSoon(roles) {
    roles.forEach(function (r) { pending[r] = true; });
    if (timer) { return; }
    timer = setTimeout(function () {
      var todo = Object.keys(pending);
      pending = {};
      timer = null;
      todo.forEach(function (r) { refresh(r).catch(function (err) { notice("刷新失败：" + err.message, "error"); }); });
    }, 800);
  }

  // Which layers an event may change.
  var EVENT_LAYERS = {
    "appeal.changed": ["appeals", "tasks", "queue", "choropleth", "grid_tiles"],
    "appeal.supervision": ["appeals", "tasks", "queue"],
    "appeal.escalation": ["appeals", "tasks", "queue"],
    "whistle.call": ["calls", "hotspots", "suggestions"],
    "whistle.summoned": ["calls"],
    "whistle.muster": ["calls"],
    "whistle.escalation": ["calls"],
    "whistle.hotspot": ["hotspots", "suggestions"],
    "whistle.suggestion": ["suggestions", "hotspots"],
    "reload": Object.keys(layers)
  };
  var EVENT_TEXT = {
    "appeal.changed": function (p) { return "工单 " + (p.ticket_no || "") + " 有更新"; },
    "appeal.supervision": function (p) { return "工单 " + (p.ticket_no || "") + " 转橙色督办"; },
    "appeal.escalation": function (p) { return "工单 " + (p.ticket_no || "") + " 转红色提级"; },
    "whistle.call": function (p) { return "吹哨：" + (p.problem || "") ; },
    "whistle.summoned": function (p) { return "新的吹哨召集：" + (p.problem || ""); },
    "whistle.muster": function (p) { return "部门报到：" + (p.department || "") ; },
    "whistle.escalation": function (p) { return "部门未按时报到：" + (p.department || ""); },
    "whistle.hotspot": function () { return "热点状态有变化"; },
    "whistle.suggestion": function (p) { return "新的吹哨建议：" + (p.summary || ""); }
  };
  window.addEventListener("gridgov:event", function (e) {
    var frame = e.detail || {};
    var type = frame.event;
    var roles = (EVENT_LAYERS[type] || []).filter(function (r) { return layers[r]; });
    var code = (frame.payload || {}).grid_code;
    if (type === "appeal.changed" && code && code.length === 15) { changedGrids[code] = true; }
    if (type === "reload") { gridsInView = true; }
    if (EVENT_TEXT[type]) { notice(EVENT_TEXT[type](frame.payload || {})); }
    if (roles.length) { refreshSoon(roles); }
  });

  // --- list buttons beside the map (the same actions as in the popups) -----------------------------
  document.querySelectorAll("[data-accept]").forEach(function (b) {
    b.addEventListener("click", function () {
      b.disabled = true;
      postJSON(cfg.actions.appeal_accept.replace("TICKET", encodeURIComponent(b.dataset.accept)), { note: "地图签收" })
        .then(function () { b.textContent = "已签收"; notice("已签收工单 " + b.dataset.accept, "ok"); refreshSoon(["tasks"]); })
        .catch(function (err) { b.disabled = false; notice("签收失败：" + err.message, "error"); });
    });
  });
  document.querySelectorAll("[data-muster]").forEach(function (b) {
    b.addEventListener("click", function () {
      if (!cfg.actions.muster_acknowledge) { return; }
      b.disabled = true;
      postJSON(cfg.actions.muster_acknowledge.replace("/0/", "/" + b.dataset.muster + "/"), { note: "地图报到" })
        .then(function () { b.textContent = "已报到"; notice("已报到（召集单 " + b.dataset.muster + "）", "ok"); refreshSoon(["calls"]); })
        .catch(function (err) { b.disabled = false; notice("报到失败：" + err.message, "error"); });
    });
  });
  document.querySelectorAll("[data-focus]").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      var ll = a.dataset.focus.split(",").map(Number);
      map.setView([ll[1], ll[0]], Math.max(map.getZoom(), 16));
    });
  });

  // --- the leader's week slider --------------------------------------------------------------------
  var slider = document.getElementById("week-slider");
  if (slider && cfg.api.series && layers.heat) {
    var label = document.getElementById("week-label");
    getJSON(cfg.api.series).then(function (series) {
      slider.max = String(series.periods.length);
      slider.value = String(series.periods.length);
      slider.disabled = false;
      slider.addEventListener("input", function () {
        var i = Number(slider.value);
        if (i >= series.periods.length) {
          label.textContent = "所选时段合计";
          if (heatRange) { layers.heat.setLatLngs(heatRange); } else { refresh("heat"); }
          return;
        }
        var total = 0;
        var cells = series.cells.map(function (c) { var n = Number(c[2][i] || 0); total += n; return [c[0], c[1], n]; });
        label.textContent = "第 " + (i + 1) + " 周（" + series.periods[i] + " 起）共 " + total + " 件";
        setHeat(cells);
      });
    }).catch(function (err) { label.textContent = "周数据加载失败：" + err.message; });
  }

  // --- the grid worker's own position (shown, never sent) -------------------------------------------
  function wgs84ToGcj02(lng, lat) {
    var a = 6378245.0, ee = 0.00669342162296594323, PI = Math.PI;
    function tLat(x, y) { var r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)); r += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3; r += (20 * Math.sin(y * PI) + 40 * Math.sin(y / 3 * PI)) * 2 / 3; r += (160 * Math.sin(y / 12 * PI) + 320 * Math.sin(y * PI / 30)) * 2 / 3; return r; }
    function tLng(x, y) { var r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)); r += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3; r += (20 * Math.sin(x * PI) + 40 * Math.sin(x / 3 * PI)) * 2 / 3; r += (150 * Math.sin(x / 12 * PI) + 300 * Math.sin(x / 30 * PI)) * 2 / 3; return r; }
    var dLat = tLat(lng - 105, lat - 35), dLng = tLng(lng - 105, lat - 35), rad = lat / 180 * PI, magic = Math.sin(rad);
    magic = 1 - ee * magic * magic;
    var sq = Math.sqrt(magic);
    dLat = (dLat * 180) / ((a * (1 - ee)) / (magic * sq) * PI);
    dLng = (dLng * 180) / (a / sq * Math.cos(rad) * PI);
    return [lng + dLng, lat + dLat];
  }
  var locate = document.getElementById("locate-me");
  if (locate && cfg.geolocate) {
    var me = null;
    locate.addEventListener("click", function () {
      var out = document.getElementById("locate-result");
      if (!navigator.geolocation) { out.textContent = "浏览器不支持定位"; return; }
      out.textContent = "定位中…";
      navigator.geolocation.getCurrentPosition(function (pos) {
        var lng = pos.coords.longitude, lat = pos.coords.latitude;
        if (cfg.crs === "gcj02") { var g = wgs84ToGcj02(lng, lat); lng = g[0]; lat = g[1]; }
        if (me) { map.removeLayer(me); }
        me = L.layerGroup([
          L.circle([lat, lng], { radius: pos.coords.accuracy || 30, color: "#0b5cad", weight: 1, fillOpacity: 0.1 }),
          L.circleMarker([lat, lng], { radius: 7, color: "#ffffff", weight: 2, fillColor: "#0b5cad", fillOpacity: 1 })
        ]).addTo(map);
        map.setView([lat, lng], Math.max(map.getZoom(), 16));
        out.textContent = "我的位置（精度约 " + Math.round(pos.coords.accuracy || 0) + " 米，仅在本机显示，不上传）";
      }, function (err) { out.textContent = "无法定位：" + err.message; }, { enableHighAccuracy: true, timeout: 10000 });
    });
  }

  Object.keys(layers).forEach(function (role) { if (POINT_ROLES.indexOf(role) >= 0) { bindPopups(role, layers[role]); } });
  window.gridgovMap.ready = true;
}());
