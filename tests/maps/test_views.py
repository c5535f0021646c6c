"""The map pages through Django's test client: each role lands on its page, pages are offline
(no asset from outside) and show nothing of another street."""

import json
import re

import pytest
from django.contrib.staticfiles import finders

from maps import offline

from .conftest import JIA_GRIDS, YI_GRIDS

pytestmark = pytest.mark.django_db

PAGES = {
    "street": ["jia", "yi"],
    "department": ["dept"],
    "leader": ["leader", "city", "centre"],
    "worker": ["worker"],
    "hotline": ["operator", "centre"],
}
HOME = {
    "jia": "street",
    "dept": "department",
    "leader": "leader",
    "worker": "worker",
    "operator": "hotline",
    "centre": "hotline",
}


def page(client, user, url):
    client.force_login(user)
    return client.get(url)


def config_of(html):
    m = re.search(r'<script id="map-config" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def test_login_required(client, mapdata):
    for name in ("", *PAGES):
        r = client.get(f"/maps/{name + '/' if name else ''}")
        assert r.status_code == 302 and "/login/" in r["Location"]


@pytest.mark.parametrize("who,target", sorted(HOME.items()))
def test_index_redirects_by_role(client, mapdata, users, who, target):
    r = page(client, users[who], "/maps/")
    assert r.status_code == 302 and r["Location"] == f"/maps/{target}/"


@pytest.mark.parametrize("name,who", [(n, w) for n, ws in PAGES.items() for w in ws])
def test_page_renders_offline_in_chinese(client, mapdata, users, name, who):
    r = page(client, users[who], f"/maps/{name}/")
    assert r.status_code == 200
    html = r.content.decode()
    assert '<html lang="zh-hans">' in html
    offline.assert_offline(html)
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html)
    cfg = config_of(html)
    assert cfg["page"] == name and window_var(cfg["map"]) in html
    for title, var in cfg["layers"].items():
        assert f"var {var} = " in html, title
    for path in re.findall(r'(?:src|href)="/static/([^"]+)"', html):
        assert finders.find(path), path


def window_var(name):
    return f"var {name} = L.map("


@pytest.mark.parametrize(
    "name,who",
    [
        ("street", "dept"),
        ("street", "leader"),
        ("department", "jia"),
        ("leader", "jia"),
        ("leader", "worker"),
        ("worker", "jia"),
        ("hotline", "jia"),
        ("hotline", "dept"),
    ],
)
def test_page_refused_for_other_roles(client, mapdata, users, name, who):
    assert page(client, users[who], f"/maps/{name}/").status_code == 403


def test_street_page_shows_only_its_street(client, mapdata, users):
    html = page(client, users["jia"], "/maps/street/").content.decode()
    assert "甲一第1网格" in html and "甲一第2网格" in html
    for foreign in ("乙一第1网格", "乙二第1网格", *YI_GRIDS, "YI000000", "YI000004"):
        assert foreign not in html, foreign
    cfg = config_of(html)
    assert set(cfg["roles"].values()) == {"choropleth", "appeals", "hotspots", "suggestions", "calls"}
    assert "满意率" in html and "回访" in html  # satisfaction is left out, and the page says why


def test_street_page_filters(client, mapdata, users):
    html = page(client, users["yi"], "/maps/street/?days=7&category=0101").content.decode()
    assert "近7天诉求量" in html
    assert '<option value="0101" selected>' in html
    cfg = config_of(html)
    assert "days=7" in cfg["api"]["choropleth"] and "category=0101" in cfg["api"]["choropleth"]
    # A bad value falls back to the default instead of failing.
    assert page(client, users["yi"], "/maps/street/?days=13&category=x").status_code == 200


def test_leader_page_levels_and_rates(client, mapdata, users):
    html = page(client, users["leader"], "/maps/leader/").content.decode()
    assert "甲街道" in html and "乙街道" in html  # default level for a district leader: streets
    assert 'id="week-slider"' in html and "响应率" in html and "解决率" in html
    html = page(client, users["leader"], "/maps/leader/?level=grid&days=30").content.decode()
    for code in (*JIA_GRIDS, *YI_GRIDS):
        assert code in html
    cfg = config_of(html)
    assert set(cfg["roles"].values()) == {"choropleth", "heat"}
    assert cfg["api"]["choropleth"] == "/maps/api/areas?days=30&level=grid&counts_only=1"
    assert "grid_tiles" not in cfg["api"] and cfg["grid_tiles"] is None


def test_leader_grid_level_over_many_grids_uses_tiles(client, mapdata, users, settings):
    embedded = page(client, users["leader"], "/maps/leader/?level=grid&days=30").content.decode()
    assert config_of(embedded)["grid_tiles"] is None and "Leaflet.VectorGrid" not in embedded
    assert '"Polygon"' in embedded or '"MultiPolygon"' in embedded
    settings.MAP_GRID_TILES_ABOVE = 3  # the city has 4 grids
    html = page(client, users["leader"], "/maps/leader/?level=grid&days=30&category=01").content.decode()
    cfg = config_of(html)
    assert cfg["grid_tiles"] == "/maps/tiles/grids/{z}/{x}/{y}.mvt?days=30&category=01"
    assert set(cfg["roles"].values()) == {"heat"}  # no embedded choropleth layer
    # No choropleth to refresh: the grid counts recolour the tiles' features (map-page.js).
    assert "choropleth" not in cfg["api"]
    assert cfg["api"]["grid_tiles"] == "/maps/api/areas?days=30&category=01&level=grid&counts_only=1"
    assert cfg["choropleth"]["vmax"] >= 1  # the scale the tiles and the live colours share
    assert "vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js" in html
    assert '"Polygon"' not in html and '"MultiPolygon"' not in html  # no grid geometry in the page
    for code in (*JIA_GRIDS, *YI_GRIDS):
        assert code in html  # the rates table still lists them
    # Other levels are few areas: embedded as before.
    assert config_of(page(client, users["leader"], "/maps/leader/?level=street").content.decode())["grid_tiles"] is None


def test_worker_page_is_its_grid(client, mapdata, users):
    html = page(client, users["worker"], "/maps/worker/").content.decode()
    assert "甲一第1网格" in html and "甲一第2网格" not in html and "乙一第1网格" not in html
    assert 'id="locate-me"' in html
    assert config_of(html)["geolocate"] is True


def test_department_page_lists_its_tasks(client, mapdata, users):
    html = page(client, users["dept"], "/maps/department/").content.decode()
    assert 'data-accept="YI000012"' in html  # dispatched, not yet accepted: 签收 from the list
    assert page(client, users["water"], "/maps/department/").content.decode().count("data-accept=") == 0


def test_hotline_page(client, mapdata, users):
    html = page(client, users["centre"], "/maps/hotline/").content.decode()
    assert "待派单" in html and "待人工定位" in html
