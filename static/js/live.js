// Live updates for the map pages: one WebSocket to /ws/v1/events/ (the page's session signs
// it in), each event re-dispatched as a "gridgov:event" DOM event for map-page.js. Reconnects
// with a growing pause and resumes from the last event id; without a socket the page still
// works, it just does not move by itself.
(function () {
  "use strict";
  var cfgEl = document.getElementById("map-config");
  if (!cfgEl) { return; }
  var cfg = JSON.parse(cfgEl.textContent);
  var status = document.getElementById("live-status");
  var lastId = null;
  var pause = 2000;
  var stopped = false;

  function show(state, text) {
    if (!status) { return; }
    status.dataset.state = state;
    status.textContent = "实时更新：" + text;
  }

  if (!cfg.ws || !("WebSocket" in window)) {
    show("off", "不可用（页面可手动刷新）");
    return;
  }

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + cfg.ws;
    if (lastId !== null) { url += "?last_id=" + encodeURIComponent(lastId); }
    var ws;
    try {
      ws = new WebSocket(url, ["gridgov.v1"]);
    } catch (err) {
      show("off", "不可用");
      return;
    }
    show("connecting", "连接中…");
    ws.onmessage = function (msg) {
      var frame;
      try { frame = JSON.parse(msg.data); } catch (err) { return; }
      if (frame.type === "hello") {
        pause = 2000;
        show("on", "已连接");
      } else if (frame.type === "event") {
        lastId = frame.id;
        window.dispatchEvent(new CustomEvent("gridgov:event", { detail: frame }));
      } else if (frame.type === "resumed" && frame.complete === false) {
        // Too much was missed to replay: reload the layers from the API instead.
        window.dispatchEvent(new CustomEvent("gridgov:event", { detail: { type: "event", event: "reload" } }));
      }
    };
    ws.onclose = function (ev) {
      if (ev.code === 4401) {
        stopped = true;
        show("off", "登录已失效，请刷新页面");
        return;
      }
      if (stopped) { return; }
      show("off", "已断开，" + Math.round(pause / 1000) + " 秒后重连");
      setTimeout(connect, pause);
      pause = Math.min(pause * 2, 60000);
    };
    ws.onerror = function () { /* onclose follows and schedules the retry */ };
    window.addEventListener("beforeunload", function () { stopped = true; ws.close(); });
  }
  connect();
}());
