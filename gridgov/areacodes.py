"""Area codes: the city's hierarchy lives in them. A grid code is 15 digits: the 6-digit
district (GB/T 2260), then 3 digits each for the street, the community and the grid, so an
area's code starts with every enclosing area's code, whatever boundary version either is at.

The one place that knows the lengths: everything else asks these names and functions.
Plain strings in and out, no database.
"""

DISTRICT_LENGTH = 6
STREET_LENGTH = 9
COMMUNITY_LENGTH = 12
GRID_LENGTH = 15

# Level name → code length, from the top (the order the maps and the models list them in).
LEVEL_LENGTH = {
    "district": DISTRICT_LENGTH,
    "street": STREET_LENGTH,
    "community": COMMUNITY_LENGTH,
    "grid": GRID_LENGTH,
}
LEVEL_OF_LENGTH = {n: level for level, n in LEVEL_LENGTH.items()}
# The areas that enclose grids.
AREA_LENGTHS = (DISTRICT_LENGTH, STREET_LENGTH, COMMUNITY_LENGTH)


def district_code_of(code: str) -> str:
    """The district of an area (or grid) code; '' for a shorter one."""
    return code[:DISTRICT_LENGTH] if len(code or "") >= DISTRICT_LENGTH else ""


def street_code_of(code: str) -> str:
    """The street of a street, community or grid code; '' for a district or shorter."""
    return code[:STREET_LENGTH] if len(code or "") >= STREET_LENGTH else ""


def community_code_of(code: str) -> str:
    """The community of a community or grid code; '' otherwise."""
    return code[:COMMUNITY_LENGTH] if len(code or "") >= COMMUNITY_LENGTH else ""


def level_of(code: str) -> str | None:
    """'district', 'street', 'community' or 'grid' by the code's length; None for any other."""
    return LEVEL_OF_LENGTH.get(len(code or ""))


def parent_code(code: str) -> str:
    """The code of the enclosing area ('' for a district or a code of no level)."""
    if level_of(code) is None:
        return ""
    shorter = [n for n in AREA_LENGTHS if n < len(code)]
    return code[: shorter[-1]] if shorter else ""


def ancestor_codes(code: str) -> list[str]:
    """The codes of every area enclosing `code`, district first."""
    return [code[:n] for n in AREA_LENGTHS if n < len(code or "")]


def area_codes_of(code: str) -> list[str]:
    """The district, street and community codes a (grid) code starts with, as long as it has them."""
    return [code[:n] for n in AREA_LENGTHS if n <= len(code or "")]
