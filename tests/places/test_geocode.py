"""The geocoder against the place registry, on the hand-drawn test city (fixtures/testcity.py)."""

import pytest
from django.conf import settings
from django.contrib.gis.geos import Point

from gridgov.appeals.services import appeal_register
from gridgov.places.geocode import geocode
from gridgov.places.models import Place

pytestmark = pytest.mark.django_db
MIN = settings.GEOCODE_MIN_CONFIDENCE


@pytest.fixture
def places(city):
    def place(name, kind, lng, lat, grid_code, aliases=()):
        return Place.objects.create(
            name=name,
            kind=kind,
            point=Point(lng, lat, srid=4326),
            grid_code=grid_code,
            aliases=list(aliases),
            address=f"测试区{name}",
        )

    return {
        "sun": place("阳光花园小区", "compound", 116.405, 39.91, "110101001001001", ["向阳花园"]),
        # The same name in two streets, ~1.7 km apart.
        "luck_a": place("幸福里小区", "compound", 116.415, 39.91, "110101001001002"),
        "luck_b": place("幸福里小区", "compound", 116.435, 39.91, "110101002002001"),
        "road": place("文化路", "road", 116.425, 39.905, "110101002001001"),
        "school": place("实验小学", "poi", 116.438, 39.915, "110101002002001"),
    }


def test_exact_name(places):
    best = geocode("阳光花园小区")[0]
    assert best.place_id == places["sun"].pk and best.kind == "compound" and best.source == "place"
    assert best.confidence >= 0.85 and best.confidence >= MIN
    assert (best.lng, best.lat) == (116.405, 39.91) and best.grid_code == "110101001001001"
    assert best.reason["match"] == "exact" and best.reason["via"] == "name" and best.reason["rivals"] == 0
    d = best.as_dict()
    assert d["confidence"] == best.confidence and d["reason"]["matched"] == "阳光花园小区"


def test_alias_with_a_building_number(places):
    best = geocode("向阳花园3号楼")[0]
    assert best.place_id == places["sun"].pk and best.reason["via"] == "alias"
    assert MIN <= best.confidence < geocode("阳光花园小区")[0].confidence


def test_street_and_compound_score_higher_than_the_compound_alone(places):
    alone = geocode("阳光花园小区")[0]
    best = geocode("测试区甲街道甲一社区阳光花园小区3号楼2单元501室")[0]
    assert best.place_id == places["sun"].pk
    assert best.confidence > alone.confidence
    assert best.reason["area"] == "agrees"
    assert {a["code"] for a in best.reason["areas"]} >= {"110101001001"}


def test_shortened_and_misspelt_names(places):
    best = geocode("阳光花园3号楼")[0]  # the beginning of the name
    assert best.place_id == places["sun"].pk and best.reason["via"] == "prefix"
    fuzzy = geocode("阳光花圆小区")  # a typo: pg_trgm similarity
    assert fuzzy and fuzzy[0].place_id == places["sun"].pk and fuzzy[0].reason["via"] == "trigram"
    assert 0 < fuzzy[0].confidence < geocode("阳光花园小区")[0].confidence


def test_ambiguous_name_has_low_confidence(places):
    cands = geocode("幸福里小区5号楼")
    top = [c for c in cands if c.source == "place"]
    assert {c.place_id for c in top} == {places["luck_a"].pk, places["luck_b"].pk}
    assert all(c.confidence < MIN for c in top)
    assert top[0].reason["rivals"] == 1 and top[0].reason["rival_grids"]


def test_a_named_street_settles_an_ambiguous_name(places):
    best = geocode("乙街道幸福里小区5号楼")[0]
    assert best.place_id == places["luck_b"].pk and best.confidence >= MIN
    other = next(c for c in geocode("乙街道幸福里小区5号楼") if c.place_id == places["luck_a"].pk)
    assert other.reason["area"] == "conflict" and other.confidence < 0.4


def test_road_and_school(places):
    road = geocode("文化路88号")[0]
    assert road.place_id == places["road"].pk and road.kind == "road"
    school = geocode("实验小学门口")[0]
    assert school.place_id == places["school"].pk
    assert road.confidence < school.confidence  # a road's point is only representative


def test_area_only(places):
    cands = geocode("乙二社区")
    assert cands[0].source == "area" and cands[0].area_code == "110101002002"
    assert cands[0].confidence >= MIN  # a one-grid community settles the grid
    street = geocode("甲街道")
    assert street[0].kind == "street" and street[0].confidence < MIN  # two grids: which one?


def test_unknown_text_gives_nothing(places):
    assert geocode("火星基地东门") == []
    assert geocode("") == [] and geocode("  ") == []


def test_register_with_only_an_address_is_located_by_the_geocoder(places, catalogue, make_user):
    op = make_user("operator")
    appeal, _ = appeal_register(
        data={"text": "小区门口垃圾桶满了好几天没人清运", "address_text": "阳光花园小区3号楼"}, actor=op
    )
    appeal.refresh_from_db()
    assert appeal.state == "dispatched" and appeal.grid_code == "110101001001001"
    assert appeal.location["method"] == "geocode" and appeal.location["confidence"] >= MIN
    assert appeal.location["candidates"][0]["place_id"] == places["sun"].pk
    assert (appeal.position.x, appeal.position.y) == (116.405, 39.91)


def test_register_with_an_ambiguous_address_waits_for_manual_location(places, catalogue, make_user):
    appeal, _ = appeal_register(
        data={"text": "楼下垃圾没人清运", "address_text": "幸福里小区"}, actor=make_user("operator")
    )
    assert appeal.state == "unlocated" and appeal.grid_id is None
    assert appeal.location["method"] == "geocode" and len(appeal.location["candidates"]) >= 2


def test_an_explicit_geocoder_still_wins(places, catalogue, make_user):
    appeal, _ = appeal_register(
        data={"text": "垃圾没人清运", "address_text": "阳光花园小区"},
        actor=make_user("operator"),
        geocoder=lambda text: [],
    )
    assert appeal.state == "unlocated" and appeal.location["candidates"] == []
