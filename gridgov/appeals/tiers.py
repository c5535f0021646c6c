"""The time-limit tiers (限时办结), their one definition: the catalogue's choices
(appeals.models.TimeLimit), the clock (appeals.timelimits.clock) and the settings' check of
TIME_LIMIT_MODES all read them from here. Pure: no Django, no database, so settings.py and the
models may import it without an import circle."""

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    CALENDAR = "calendar"  # elapsed hours, nights, weekends and holidays included
    WORKING_DAYS = "working_days"  # end of the Nth working day after the day of receipt


@dataclass(frozen=True)
class Tier:
    code: str
    hours: int  # length on the calendar clock
    working_days: int | None  # length in working days; None: this tier has no such reading
    mode: Mode  # how it is counted unless the caller says otherwise
    label: str


TIERS = {
    "2h": Tier("2h", 2, None, Mode.CALENDAR, "2小时（危及生命财产安全）"),
    "24h": Tier("24h", 24, 1, Mode.CALENDAR, "24小时（水电气热）"),
    "7d": Tier("7d", 7 * 24, 7, Mode.WORKING_DAYS, "7天（一般诉求）"),
    "15d": Tier("15d", 15 * 24, 15, Mode.WORKING_DAYS, "15天（复杂诉求）"),
}


# How TIME_LIMIT_MODES may name a mode.
MODE_NAMES = {"workdays": Mode.WORKING_DAYS, "working_days": Mode.WORKING_DAYS, "calendar": Mode.CALENDAR}


def parse_modes(raw: str) -> dict[str, str]:
    """Per-tier counting modes overriding the tiers' own, from text such as
    "7d=calendar,15d=workdays"; ValueError naming what is wrong. A tier with no working-day
    reading (2 h) runs on the calendar clock only."""
    modes: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (raw or "").split(","))):
        code, _, mode = (s.strip().lower() for s in part.partition("="))
        if code not in TIERS:
            raise ValueError(f"unknown tier {code!r} ({', '.join(TIERS)})")
        if mode not in MODE_NAMES:
            raise ValueError(f"mode of {code} must be workdays or calendar")
        if TIERS[code].working_days is None and MODE_NAMES[mode] is not Mode.CALENDAR:
            raise ValueError(f"the {code} tier runs on the calendar clock only")
        modes[code] = str(MODE_NAMES[mode])
    return modes
