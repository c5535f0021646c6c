"""Template syntax in any string the maps draw is shown as text, never run (#11).

The probe: a whistle call's problem of `S[{{7*7}}]E` showed `S[49]E` on the street and
department maps, `{{lipsum.__globals__.os.name}}` reached Python's `os`, and `{% debug %}` or a
stray `{{` made both pages answer 500. Here template syntax (and markup) goes into every string
the maps draw: call problems, appeal text, area, category, department and place names, hotspot
categories and suggestion summaries; every map page must answer 200 and carry each string
literally (as the JSON / escaped HTML it travels in), and none evaluated.
"""

import html
import json
from datetime import timedelta

import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.utils import timezone

from gridgov.appeals.models import Category
from gridgov.areas.models import LEVELS
from gridgov.places.models import Place
from gridgov.whistles.models import Hotspot, WhistleSuggestion
from maps import folium_adapter, offline

from .conftest import INSIDE, JIA, JIA_GRIDS, YI_GRIDS, make_appeal

pytestmark = pytest.mark.django_db

# Each evaluates, fails to compile or fails to render if it is ever compiled as a Jinja2 template.
PAYLOADS = {
    "expr": "注入S[{{7*7}}]E",
    "globals": "O[{{lipsum.__globals__.os.name}}]E",
    "debug": "调试{% debug %}完",
    "comment": "注释{#未闭合",
    "cut": "半截{{占位",
    "markup": '标记</script><img src=x onerror="alert(1)">',
}
EVALUATED = ("S[49]E", "O[posix]E", "O[nt]E")
# Names hold at most 100 characters: every payload at once, shortened, for area, category,
# department and place names (a compile of it fails or evaluates, whichever part it meets first).
NAME = "S[{{7*7}}]EO[{{lipsum.__globals__.os.name}}]E调{% debug %}注{#截{{<img src=x onerror=alert(1)>"

PAGES = {
    "street": "jia",
    "department": "dept",
    "leader": "leader",
    "worker": "worker",
    "hotline": "centre",
}


def encodings(text):
    """The forms a string takes in a page: raw, HTML-escaped (tooltips, escaped before folium
    puts them into innerHTML), and each of those as JSON (GeoJSON data, the page config) with
    Jinja's or Django's HTML-safe escaping of < > & '."""
    forms = set()
    for s in (text, html.escape(text)):
        forms.add(s)
        for ensure_ascii in (True, False):
            j = json.dumps(s, ensure_ascii=ensure_ascii)[1:-1]
            forms.add(j)
            safe = j.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")
            forms.add(safe)
    return forms


def shown_literally(page, text):
    return any(form in page for form in encodings(text))


@pytest.fixture
def poisoned(mapdata, users, api, cats, depts):
    """The test city with a payload in every string a map draws."""
    for level in ("district", "street", "community", "grid"):
        for area in LEVELS[level].objects.current():
            area.name = f"{NAME}{area.code[-3:]}"
            area.save(update_fields=["name"])
    for cat in Category.objects.all():
        cat.name = NAME
        cat.save(update_fields=["name"])
    for dept in depts.values():
        dept.name = NAME
        dept.save(update_fields=["name"])
    Place.objects.create(
        name=NAME,
        aliases=[PAYLOADS["cut"]],
        address=PAYLOADS["debug"],
        point=Point(*INSIDE[JIA_GRIDS[0]], srid=4326),
        grid_code=JIA_GRIDS[0],
    )
    # Open appeals with payload text in the places every role sees them: the department's and
    # the worker's tasks, the hotline's queue (located, not yet dispatched).
    for key, text in PAYLOADS.items():
        make_appeal(
            JIA_GRIDS[0],
            text=text,
            category=cats["010101"],
            department=depts["chengguan"],
            state="accepted",
            deadline=timezone.now() + timedelta(days=2),
            ticket=f"INJ{key}"[:20],
        )
        make_appeal(YI_GRIDS[0], text=text, state="located", ticket=f"Q{key}"[:20])
    # A hotspot over a payload category and a suggestion with a payload summary (street page).
    x, y = INSIDE[JIA_GRIDS[0]]
    square = MultiPolygon(Polygon.from_bbox((x - 0.002, y - 0.002, x + 0.002, y + 0.002)), srid=4326)
    now = timezone.now()
    hotspot = Hotspot.objects.create(
        kind="grid_gi",
        geom=square,
        window_days=7,
        window_start=now - timedelta(days=7),
        window_end=now,
        category_key="010101",
        category_codes=["010101"],
        grid_code=JIA_GRIDS[0],
        street_code=JIA,
        statistics={"count": 9, "z": 3.1, "p": 0.001, "confidence": 0.99, "trend": "new"},
    )
    WhistleSuggestion.objects.create(
        street_code=JIA,
        rule="hotspot",
        hotspot=hotspot,
        category_key="010102",
        appeal_ids=[],
        evidence={"count": 9, "summary": PAYLOADS["debug"], "centroid": [x, y]},
    )
    # Whistle calls through the API, as the probe made them: one per payload, to the department.
    street = api(users["jia"])
    for text in PAYLOADS.values():
        r = street.post(
            "/api/v1/whistles/calls", {"problem": text, "departments": ["chengguan"], "lng": x, "lat": y}, format="json"
        )
        assert r.status_code == 201, r.content
    return users


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_map_page_draws_template_syntax_as_text(client, poisoned, name):
    client.force_login(poisoned[PAGES[name]])
    r = client.get(f"/maps/{name}/")
    assert r.status_code == 200
    page = r.content.decode()
    for evaluated in EVALUATED:
        assert evaluated not in page
    assert "<img src=x" not in page  # markup is escaped wherever it lands
    # The page draws area names (and categories, departments) with every payload in them.
    assert shown_literally(page, NAME), name


def test_call_problems_reach_street_and_department_maps_literally(client, poisoned):
    for who, url in (("jia", "/maps/street/"), ("dept", "/maps/department/")):
        client.force_login(poisoned[who])
        page = client.get(url).content.decode()
        for text in PAYLOADS.values():
            assert shown_literally(page, f"{text}"), (who, text)


def test_leader_grid_level_and_windows_render(client, poisoned, settings):
    client.force_login(poisoned["city"])
    for query in ("?level=grid", "?level=community&days=7", "?level=street&category=01"):
        r = client.get("/maps/leader/" + query)
        assert r.status_code == 200, query
        assert "S[49]E" not in r.content.decode()
    settings.MAP_GRID_TILES_ABOVE = 1  # the tiled grid level: names come from the tiles
    r = client.get("/maps/leader/?level=grid")
    assert r.status_code == 200


def test_intake_page_and_map_api_answer_literally(client, poisoned):
    client.force_login(poisoned["operator"])
    r = client.get("/intake/")
    assert r.status_code == 200
    assert "S[49]E" not in r.content.decode()
    for url in ("/maps/api/areas?level=street", "/maps/api/areas?level=grid"):
        r = client.get(url)
        assert r.status_code == 200, url
        names = [f["properties"].get("name") for f in r.json()["features"]]
        assert any("{{" in (n or "") for n in names), url


def test_rendered_output_is_never_compiled_again():
    """The adapter is in place, and a compile of data is refused before it runs."""
    import folium
    from branca.element import Element, MacroElement
    from folium.map import Popup

    assert MacroElement.__dict__["render"] is folium_adapter._macro_render
    assert Popup.__dict__["render"] is folium_adapter._popup_render
    m = folium.Map(tiles=None)
    folium.Marker([39.9, 116.4], tooltip="{{7*7}}", popup=folium.Popup("{% debug %}Q{{ 6*7 }}Q")).add_to(m)
    parts = offline.render_parts(m)
    assert "{{7*7}}" in parts["script"] and "{{ 6*7 }}" in parts["script"]
    assert "Q42Q" not in parts["script"]

    # An element that compiles data (what the library did) is refused before it can run.
    m2 = folium.Map(tiles=None)
    offline.make_offline(m2)
    m2.get_root().script.add_child(Element("var x = '{{7*7}}';"), name="leak")
    with pytest.raises(offline.TemplateInjectionError):
        m2.get_root().render()


def test_the_library_methods_mirrored_have_not_changed():
    """maps.folium_adapter copies two library methods; an upgrade that changes them must re-read
    the adapter (and its version pins refuse to start with other versions)."""
    from branca.element import MacroElement
    from folium.map import Popup

    macro = folium_adapter.original_source(MacroElement)
    for line in (
        "figure.header.add_child(Element(header(self, kwargs)), name=self.get_name())",
        "figure.html.add_child(Element(html(self, kwargs)), name=self.get_name())",
        "figure.script.add_child(Element(script(self, kwargs)), name=self.get_name())",
        "for name, element in self._children.items():",
    ):
        assert line in macro
    popup = folium_adapter.original_source(Popup)
    assert "Element(self._template.render(this=self, kwargs=kwargs))" in popup
