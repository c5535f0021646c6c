"""The area-code lengths have one source, gridgov.areacodes (#12)."""

from gridgov import areacodes as codes
from gridgov.areas.models import LEVELS, parent_code
from gridgov.realtime.broadcast import AREA_LEVELS
from maps.aggregates import LEVEL_LENGTH

GRID = "110101001002003"


def test_the_parts_of_a_grid_code():
    assert codes.district_code_of(GRID) == "110101"
    assert codes.street_code_of(GRID) == "110101001"
    assert codes.community_code_of(GRID) == "110101001002"
    assert codes.ancestor_codes(GRID) == ["110101", "110101001", "110101001002"]
    assert codes.area_codes_of("110101001") == ["110101", "110101001"]
    assert [codes.level_of(c) for c in ("110101", "110101001", "110101001002", GRID, "1101", "")] == [
        "district",
        "street",
        "community",
        "grid",
        None,
        None,
    ]


def test_short_codes_have_no_enclosing_parts():
    assert codes.street_code_of("110101") == "" and codes.community_code_of("110101001") == ""
    assert codes.district_code_of("") == "" and codes.street_code_of(None) == ""
    assert [parent_code(c) for c in (GRID, "110101001002", "110101001", "110101", "1101010")] == [
        "110101001002",
        "110101001",
        "110101",
        "",
        "",
    ]


def test_the_models_the_maps_and_the_channel_groups_use_the_same_lengths():
    assert {level: model.CODE_LENGTH for level, model in LEVELS.items()} == codes.LEVEL_LENGTH
    assert LEVEL_LENGTH is codes.LEVEL_LENGTH
    assert AREA_LEVELS == {n: level for level, n in codes.LEVEL_LENGTH.items()}
