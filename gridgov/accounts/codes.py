"""Department codes that follow from something else. No Django here: the demo city plans its
departments before any database exists."""

# The code a street office's department gets when one is made for a street (the demo city,
# a city's import). A name only: the link to the street is Department.street_code.
STREET_OFFICE_CODE_PREFIX = "jiedao-"


def street_office_code(street_code: str) -> str:
    """The department code a new street office of `street_code` is given."""
    return f"{STREET_OFFICE_CODE_PREFIX}{street_code}"
