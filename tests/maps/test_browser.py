"""The map pages in headless Chromium against a real Daphne (HTTP, static files, WebSocket) on
the test database: every page loads for its role with its layers, without a console error and
without a request to any other host; 吹哨 from the street map and 报到 / 签收 from the
department map work by clicking; a live event moves the department map; another street's data
never reaches the page. Screenshots go to tests/screenshots/ (git-ignored).

    pytest -m browser tests/maps
"""

import copy
import os
import threading
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.gis.geos import MultiPolygon
from django.test import Client
from django.utils import timezone

from fixtures.testcity import build_test_city
from gridgov.accounts.models import Department, Role

from . import browser
from .conftest import INSIDE, JIA, JIA_GRIDS, YI, YI_GRIDS, local, make_appeal

REASON = browser.unavailable()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(REASON is not None, reason=f"browser tests need Chromium and Playwright: {REASON}"),
]
PREFIX = f"gridgov-maps-test-{os.getpid()}"
FOREIGN = ("乙一第1网格", "乙二第1网格", "乙街道", "YI000000", "YI000004", "YI000012", "乙街道积水问题")
LAYER_COUNTS = """() => {
  const g = window.gridgovMap, out = {};
  for (const [role, layer] of Object.entries(g.layers)) {
    out[role] = layer.getLayers ? layer.getLayers().length : (layer._latlngs || []).length;
  }
  return out;
}"""


@pytest.fixture(autouse=True)
def channel_prefix(settings):
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["prefix"] = PREFIX
    settings.CHANNEL_LAYERS = layers


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    env = {"CHANNEL_PREFIX": PREFIX, "DJANGO_DEBUG": "1", "LOG_LEVEL": "WARNING", "MAP_BASEMAP": "none"}
    with browser.daphne(env) as (base, log_path):
        yield base
    import redis

    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def chromium():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between page actions are plain blocking calls, as in any Django test.
    old = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with browser.chromium() as context:
            yield context
    finally:
        if old is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = old


@pytest.fixture
def city(transactional_db, make_user):
    """The test city, committed: two streets with appeals, hotspots and (for 乙) a call."""
    from gridgov.appeals.models import Category
    from gridgov.areas.models import Grid
    from gridgov.whistles import services as whistle_services
    from gridgov.whistles.models import Hotspot

    build_test_city()
    cg = Department.objects.get_or_create(code="chengguan", defaults={"name": "城管委"})[0]
    water = Department.objects.create(code="shuiwu", name="自来水集团", kind=Department.Kind.UTILITY)
    l1 = Category.objects.create(level=1, code="01", name="城市管理")
    l2 = Category.objects.create(level=2, code="0101", name="环境卫生", parent=l1)
    garbage = Category.objects.create(
        level=3, code="010101", name="垃圾清运不及时", parent=l2, time_limit="7d", default_department=cg
    )
    users = {
        "jia": make_user(Role.STREET_OFFICE, area_code=JIA, username="jia-office"),
        "yi": make_user(Role.STREET_OFFICE, area_code=YI, username="yi-office"),
        "dept": make_user(Role.DEPARTMENT, department=cg, username="chengguan-staff"),
        "water": make_user(Role.DEPARTMENT, department=water, username="shuiwu-staff"),
        "leader": make_user(Role.LEADER, area_code="110101", username="district-leader"),
        "worker": make_user(Role.GRID_WORKER, grid_codes=[JIA_GRIDS[0]], username="jia-worker"),
        "centre": make_user(Role.HOTLINE_CENTER, username="centre"),
    }
    for i, (grid, days_ago) in enumerate([(0, 0), (0, 1), (0, 3), (0, 9), (1, 2), (1, 20)]):
        rec = local(days_ago)
        make_appeal(
            JIA_GRIDS[grid],
            received_at=rec,
            category=garbage,
            department=cg,
            deadline=rec + timedelta(days=7),
            dispatched_at=rec + timedelta(minutes=5),
            accepted_at=rec + timedelta(hours=1),
            state="accepted",
            colour=("red", "orange", "yellow", "none")[i % 4],
            ticket=f"JIA{i:05d}",
        )
    for days_ago, grid in [(0, 0), (4, 0), (12, 1)]:
        rec = local(days_ago)
        make_appeal(
            YI_GRIDS[grid],
            received_at=rec,
            category=garbage,
            department=cg,
            deadline=rec + timedelta(days=7),
            dispatched_at=rec + timedelta(minutes=5),
            state="dispatched" if days_ago == 12 else "accepted",
            ticket=f"YI{days_ago:06d}",
        )
    make_appeal(JIA_GRIDS[1], state="located", colour="yellow", ticket="JIAWAIT01", category=garbage)
    make_appeal(JIA_GRIDS[1], state="unlocated", position=False, ticket="JIALOST01", category=garbage)
    now = timezone.now()
    hotspots = {}
    for key, grid in (("jia", JIA_GRIDS[0]), ("yi", YI_GRIDS[0])):
        geom = Grid.objects.current().get(code=grid).geom
        hotspots[key] = Hotspot.objects.create(
            kind="grid_gi",
            geom=MultiPolygon(*geom) if geom.geom_type != "MultiPolygon" else geom,
            window_days=7,
            window_start=now - timedelta(days=7),
            window_end=now,
            category_key="0101",
            category_codes=["0101"],
            grid_code=grid,
            street_code=grid[:9],
            statistics={
                "count": 4,
                "neighbourhood_count": 5,
                "z": 2.71,
                "p": 0.0067,
                "bin": 3,
                "confidence": 0.99,
                "trend": "new",
            },
        )
    in_thread(
        whistle_services.whistle_blow,
        actor=users["yi"],
        problem="乙街道积水问题",
        street_code=YI,
        lng=INSIDE[YI_GRIDS[0]][0],
        lat=INSIDE[YI_GRIDS[0]][1],
        department_codes=["shuiwu"],
    )
    return {"users": users, "hotspots": hotspots, "garbage": garbage, "chengguan": cg}


def in_thread(fn, *args, **kwargs):
    """Run a service that publishes events in a thread of its own: Playwright's event loop runs
    in the test thread, where asgiref refuses to start another one to reach Redis."""
    from django.db import connection

    box = {}

    def run():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 — re-raised in the test thread
            box["error"] = exc
        finally:
            connection.close()

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def login(context, base, user):
    c = Client()
    c.force_login(user)
    context.clear_cookies()
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": c.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": base,
            }
        ]
    )


def open_map(context, base, user, path):
    login(context, base, user)
    page = context.new_page()
    rec = browser.Recorder(page, base)
    response = page.goto(base + path, wait_until="networkidle")
    assert response.status == 200, (path, response.status)
    # Waits are functions: Playwright evals a bare expression again on every poll, and the pages'
    # Content-Security-Policy (no 'unsafe-eval') refuses that.
    page.wait_for_function("() => window.gridgovMap && window.gridgovMap.ready", timeout=15000)
    return page, rec


def refresh_all(page):
    page.evaluate("Promise.all(Object.keys(window.gridgovMap.layers).map(r => window.gridgovMap.refresh(r)))")
    page.wait_for_load_state("networkidle")


def assert_clean(rec):
    assert rec.errors == [], rec.errors
    assert rec.foreign() == [], rec.foreign()


def marker_point(page, role, key, value):
    """Page coordinates of the feature of layer `role` whose property `key` equals `value`."""
    return page.evaluate(
        """([role, key, value]) => {
          const g = window.gridgovMap; let target = null;
          g.layers[role].eachLayer(l => { if (l.feature && l.feature.properties[key] === value) target = l; });
          if (!target) return null;
          const p = g.map.latLngToContainerPoint(target.getLatLng());
          const r = g.map.getContainer().getBoundingClientRect();
          return [r.left + p.x, r.top + p.y];
        }""",
        [role, key, value],
    )


PAGES = [
    ("street", "jia", "/maps/street/", {"choropleth": 2, "appeals": 7, "hotspots": 1, "calls": 0}),
    ("department", "dept", "/maps/department/", {"tasks": 9, "calls": 0}),
    ("leader", "leader", "/maps/leader/?level=grid", {"choropleth": 4}),
    ("worker", "worker", "/maps/worker/", {"tasks": 4}),
    ("hotline", "centre", "/maps/hotline/", {"queue": 1}),
]


@pytest.mark.parametrize("name,who,path,expected", PAGES, ids=[p[0] for p in PAGES])
def test_page_loads_with_its_layers(server, chromium, city, name, who, path, expected):
    page, rec = open_map(chromium, server, city["users"][who], path)
    try:
        counts = page.evaluate(LAYER_COUNTS)
        for role, n in expected.items():
            assert counts.get(role) == n, (role, counts)
        assert page.locator(".leaflet-container canvas").count() >= 1  # preferCanvas: layers draw on canvas
        assert page.locator("html").get_attribute("lang") == "zh-hans"
        if name == "leader":
            page.wait_for_function("() => !document.getElementById('week-slider').disabled", timeout=10000)
            heat = page.evaluate("window.gridgovMap.layers.heat._latlngs.length")
            assert heat == 4
            page.locator("#week-slider").fill("12")  # the current week
            assert "第 13 周" in page.locator("#week-label").inner_text()
            page.locator("#week-slider").fill("13")  # back to the page's range: the embedded heat
            assert "所选时段合计" in page.locator("#week-label").inner_text()
            assert page.evaluate("window.gridgovMap.layers.heat._latlngs.length") == 4
            assert not [u for u in rec.requests if u.split("?")[0].endswith("/maps/api/heat")]
        page.wait_for_function("() => document.getElementById('live-status').dataset.state === 'on'", timeout=15000)
        refresh_all(page)
        assert page.evaluate(LAYER_COUNTS) == counts  # the API gives the page what the view gave
        browser.screenshot(page, f"maps-{name}")
        assert_clean(rec)
        assert any(u.startswith("ws://") for u in rec.sockets)
    finally:
        page.close()


@pytest.fixture(scope="module")
def tiled_server(django_db_setup, django_db_blocker):
    """A server that draws the leader's grids from vector tiles above 3 grids (the city has 4)."""
    env = {"CHANNEL_PREFIX": PREFIX, "DJANGO_DEBUG": "1", "LOG_LEVEL": "WARNING", "MAP_BASEMAP": "none"}
    with browser.daphne({**env, "MAP_GRID_TILES_ABOVE": "3"}) as (base, _log_path):
        yield base


TILE_CODES = """() => {
  const out = new Set(), tiles = window.gridgovMap.layers.grid_tiles._vectorTiles;
  for (const key in tiles) {
    for (const id in tiles[key]._layers) { const l = tiles[key]._layers[id]; if (l.properties) out.add(l.properties.code); }
  }
  return [...out].sort();
}"""


def test_leader_grid_level_from_vector_tiles(tiled_server, chromium, city):
    page, rec = open_map(chromium, tiled_server, city["users"]["leader"], "/maps/leader/?level=grid&days=90")
    try:
        assert "choropleth" not in page.evaluate(LAYER_COUNTS)  # no polygons embedded
        page.wait_for_function("() => (" + TILE_CODES + ")().length === 4", timeout=10000)
        assert page.evaluate(TILE_CODES) == sorted([*JIA_GRIDS, *YI_GRIDS])
        tiles = [u for u in rec.requests if "/maps/tiles/grids/" in u]
        assert tiles and all("days=90" in u for u in tiles)
        browser.screenshot(page, "maps-leader-grid-tiles")
        assert_clean(rec)
    finally:
        page.close()


GRID_FILL = """(code) => {
  const tiles = window.gridgovMap.layers.grid_tiles._vectorTiles, out = [];
  for (const key in tiles) { const f = tiles[key]._features[code]; if (f) out.push(f.feature.options.fillColor); }
  return [...new Set(out)];
}"""


def test_leader_tiled_grids_recolour_on_a_live_event(tiled_server, chromium, city, make_user):
    """A new appeal in 乙's second grid (1 → 2 appeals in 90 days) turns its tile feature the colour
    of 乙's first grid (2 appeals) without a reload, and stays so over tiles loaded again."""
    from gridgov.appeals.services import appeal_register

    leader = make_user(Role.LEADER, username="city-leader")  # the city group hears every appeal.changed
    page, rec = open_map(chromium, tiled_server, leader, "/maps/leader/?level=grid&days=90")
    try:
        page.wait_for_function("() => document.getElementById('live-status').dataset.state === 'on'", timeout=15000)
        page.wait_for_function("() => (" + TILE_CODES + ")().length === 4", timeout=10000)
        low, two = page.evaluate(GRID_FILL, YI_GRIDS[1]), page.evaluate(GRID_FILL, YI_GRIDS[0])
        assert len(low) == 1 and len(two) == 1 and low != two
        lng, lat = INSIDE[YI_GRIDS[1]]
        appeal, _ = in_thread(
            appeal_register,
            data={"text": "路灯不亮，晚上看不见路", "lng": lng, "lat": lat},
            actor=city["users"]["centre"],
        )
        assert appeal.grid_code == YI_GRIDS[1]
        page.wait_for_function(f"() => ({GRID_FILL})('{YI_GRIDS[1]}')[0] === '{two[0]}'", timeout=20000)
        refreshes = [u for u in rec.requests if "/maps/api/areas?" in u]
        # Only the grid the event named is asked for, not the 1.3 MB of every grid in view.
        assert refreshes and all(
            "counts_only=1" in u and "days=90" in u and f"codes={YI_GRIDS[1]}" in u for u in refreshes
        )
        assert page.evaluate(GRID_FILL, YI_GRIDS[0]) == two  # the others keep their colour
        # Tiles drawn again (from the browser's cache, with the old count) keep the live colour.
        page.evaluate("(() => { const m = window.gridgovMap.map; m.setZoom(m.getZoom() + 1, {animate: false}); })()")
        page.evaluate("(() => { const m = window.gridgovMap.map; m.setZoom(m.getZoom() - 1, {animate: false}); })()")
        page.wait_for_load_state("networkidle")
        page.wait_for_function("() => (" + TILE_CODES + ")().length === 4", timeout=10000)
        assert page.evaluate(GRID_FILL, YI_GRIDS[1]) == two
        browser.screenshot(page, "maps-leader-grid-tiles-live")
        assert_clean(rec)
    finally:
        page.close()


def test_street_map_never_shows_another_street(server, chromium, city):
    page, rec = open_map(chromium, server, city["users"]["jia"], "/maps/street/?days=90")
    try:
        refresh_all(page)
        page.evaluate("window.gridgovMap.map.setZoom(11)")
        html = page.content()
        for foreign in FOREIGN:
            assert foreign not in html, foreign
        data_requests = [u for u in rec.requests if "/maps/api/" in u]
        assert {u.split("?")[0].rsplit("/", 1)[-1] for u in data_requests} >= {"areas", "appeals", "hotspots", "calls"}
        for url, body in rec.bodies.items():
            text = body.decode("utf-8", "replace")
            for foreign in (*FOREIGN, *YI_GRIDS):
                assert foreign not in text, (url, foreign)
        assert_clean(rec)
    finally:
        page.close()


def test_blow_from_street_map_and_answer_from_department_map(server, chromium, city):
    from gridgov.whistles.models import Muster, WhistleCall

    hotspot = city["hotspots"]["jia"]
    page, rec = open_map(chromium, server, city["users"]["jia"], "/maps/street/")
    try:
        x, y = marker_point(page, "hotspots", "id", hotspot.pk)
        page.mouse.click(x, y)
        popup = page.locator(".leaflet-popup .map-popup[data-kind=hotspot]")
        popup.wait_for(timeout=5000)
        assert "置信度" in popup.inner_text() and "99%" in popup.inner_text()
        browser.screenshot(page, "maps-street-hotspot-popup")
        popup.locator("button[data-action=whistle]").click()
        popup.locator(".action-result", has_text="已完成").wait_for(timeout=15000)
        call = WhistleCall.objects.get(hotspot=hotspot)
        assert call.street_code == JIA and call.musters.get().department.code == "chengguan"
        page.wait_for_function("() => window.gridgovMap.layers.calls.getLayers().length === 1", timeout=10000)
        assert "已吹哨" in page.locator("#live-log").inner_text()
        assert_clean(rec)
    finally:
        page.close()

    muster = Muster.objects.get(call=call)
    page, rec = open_map(chromium, server, city["users"]["dept"], "/maps/department/")
    try:
        assert page.evaluate(LAYER_COUNTS)["calls"] == 1
        x, y = marker_point(page, "calls", "id", call.pk)
        page.mouse.click(x, y)
        popup = page.locator(".leaflet-popup .map-popup[data-kind=call]")
        popup.wait_for(timeout=5000)
        browser.screenshot(page, "maps-department-call-popup")
        popup.locator(f"button[data-action=muster-{muster.pk}]").click()
        popup.locator(".action-result", has_text="已完成").wait_for(timeout=15000)
        muster.refresh_from_db()
        assert muster.state == "acknowledged" and muster.acknowledged_by == city["users"]["dept"]
        # 签收 of a dispatched appeal from the list beside the map.
        page.locator("button[data-accept=YI000012]").click()
        page.locator("button[data-accept=YI000012]", has_text="已签收").wait_for(timeout=15000)
        from gridgov.appeals.models import Appeal

        assert Appeal.objects.get(ticket_no="YI000012").state == "accepted"
        assert_clean(rec)
    finally:
        page.close()


def test_department_map_moves_on_a_live_event(server, chromium, city):
    from gridgov.appeals import services

    page, rec = open_map(chromium, server, city["users"]["dept"], "/maps/department/")
    try:
        page.wait_for_function("() => document.getElementById('live-status').dataset.state === 'on'", timeout=15000)
        before = page.evaluate(LAYER_COUNTS)["tasks"]
        appeal = make_appeal(JIA_GRIDS[1], state="located", category=city["garbage"], ticket="JIALIVE01")
        in_thread(services.appeal_dispatch, appeal, actor=city["users"]["centre"])  # publishes after commit
        page.wait_for_function(
            "() => { let hit = false; window.gridgovMap.layers.tasks.eachLayer(l => {"
            " if (l.feature.properties.ticket_no === 'JIALIVE01') hit = true; }); return hit; }",
            timeout=20000,
        )
        assert page.evaluate(LAYER_COUNTS)["tasks"] == before + 1
        assert "JIALIVE01" in page.locator("#live-log").inner_text()
        browser.screenshot(page, "maps-department-live")
        assert_clean(rec)
    finally:
        page.close()


def test_worker_page_on_a_phone(server, chromium, city):
    login(chromium, server, city["users"]["worker"])
    page = chromium.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    rec = browser.Recorder(page, server)
    try:
        chromium.grant_permissions(["geolocation"], origin=server)
        chromium.set_geolocation({"longitude": 116.405, "latitude": 39.911, "accuracy": 20})
        page.goto(server + "/maps/worker/", wait_until="networkidle")
        page.wait_for_function("() => window.gridgovMap && window.gridgovMap.ready", timeout=15000)
        page.locator("#locate-me").click()
        page.locator("#locate-result", has_text="我的位置").wait_for(timeout=10000)
        centre = page.evaluate("window.gridgovMap.map.getCenter()")
        assert abs(centre["lng"] - 116.405) < 1e-3 and abs(centre["lat"] - 39.911) < 1e-3
        browser.screenshot(page, "maps-worker-phone")
        assert_clean(rec)
    finally:
        page.close()
        chromium.clear_permissions()


def test_template_syntax_in_a_whistle_call_stays_text(server, chromium, city):
    """The probe's attack through the screens: a street office blows with template syntax and
    markup in the problem; the street and department maps answer 200 and show it as typed (#11)."""
    from gridgov.whistles.models import WhistleCall

    problem = 'S[{{7*7}}]E {% debug %} {# 半截{{ <img src=x onerror="window.__pwned=1">'
    hotspot = city["hotspots"]["jia"]
    page, rec = open_map(chromium, server, city["users"]["jia"], "/maps/street/")
    try:
        x, y = marker_point(page, "hotspots", "id", hotspot.pk)
        page.mouse.click(x, y)
        popup = page.locator(".leaflet-popup .map-popup[data-kind=hotspot]")
        popup.wait_for(timeout=5000)
        popup.locator("textarea.whistle-problem").fill(problem)
        popup.locator("button[data-action=whistle]").click()
        popup.locator(".action-result", has_text="已完成").wait_for(timeout=15000)
        call = WhistleCall.objects.get(hotspot=hotspot)
        assert call.problem == problem
    finally:
        page.close()

    for who, path in (("jia", "/maps/street/"), ("dept", "/maps/department/")):
        page, rec = open_map(chromium, server, city["users"][who], path)  # a fresh render: 200
        try:
            x, y = marker_point(page, "calls", "id", call.pk)
            page.mouse.click(x, y)
            popup = page.locator(".leaflet-popup .map-popup[data-kind=call]")
            popup.wait_for(timeout=5000)
            assert problem in popup.inner_text()
            assert "S[49]E" not in page.content()
            assert page.evaluate("window.__pwned === undefined")
            browser.screenshot(page, f"maps-{who}-call-template-syntax")
            assert_clean(rec)
        finally:
            page.close()
