"""Time limits (限时办结) and warning colours (三色预警). Pure functions, no database.

Tiers, as Beijing uses them (`TIERS` below is their one definition: the catalogue's
choices, the settings' check of TIME_LIMIT_MODES and this table all come from it):

    "2h"   danger to life or property            2 hours, calendar clock
    "24h"  water, power, gas, heating            24 hours, calendar clock
    "7d"   general appeals                       7 working days
    "15d"  complex appeals                       15 working days

Each tier has a default mode and can be counted the other way where a city's rules say so
(`deadline(..., mode=Mode.CALENDAR)` turns "7d" into 7 × 24 hours; `parse_modes` reads a
city's choice from the TIME_LIMIT_MODES setting). A working-day limit
ends at the end of the Nth working day *after* the day of receipt (the day of receipt never
counts, whatever the hour, and an appeal received on a holiday starts counting on the next
working day); "end of day" is `WorkCalendar.day_end`, 17:30 Asia/Shanghai unless configured.

Working days come from a `WorkCalendar`: Monday–Friday, minus public holidays, plus the
Saturdays and Sundays that China's make-up rule (调休) turns into working days. The data
for each year lives in china_holidays.json beside this module, which admins maintain (a CSV
can be loaded as well, see `calendar_from_csv`). A year marked "estimated" there is a guess
until the State Council publishes its notice.

Warning colours measure the share of the time limit already used, in elapsed wall time:
yellow (提醒) from 50 %, orange (督办) from 75 %, red (提级处置) from 100 %, i.e. at the
deadline itself and after. Every boundary belongs to the later colour, so at exactly 50 %
the appeal is yellow, and at exactly the deadline it is red.

All datetimes must be timezone-aware; naive ones raise `NaiveDatetimeError`.
"""

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from fractions import Fraction
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from gridgov.appeals.tiers import MODE_NAMES, TIERS, Mode, Tier, parse_modes  # noqa: F401 (the clock's vocabulary)

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_DAY_END = time(17, 30)
HOLIDAYS_FILE = Path(__file__).with_name("china_holidays.json")
DEFAULT_THRESHOLDS = (0.5, 0.75, 1.0)

# Walking further than this many days to find N working days means the calendar is broken
# (e.g. a year of holidays typed in by mistake), not that the limit is long.
_MAX_SCAN_DAYS = 3 * 366


class NaiveDatetimeError(ValueError):
    pass


class UnknownYear(KeyError):
    pass


class Colour(StrEnum):
    NONE = "none"
    YELLOW = "yellow"  # 黄色提醒
    ORANGE = "orange"  # 橙色督办
    RED = "red"  # 红色提级处置 (overdue)


COLOUR_ORDER = (Colour.NONE, Colour.YELLOW, Colour.ORANGE, Colour.RED)


def require_aware(value, name="datetime"):
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{name} {value.isoformat()} is naive: pass a timezone-aware datetime "
            "(django.utils.timezone.now(), or .replace(tzinfo=ZoneInfo('Asia/Shanghai')))"
        )
    return value


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days. `years` lists the years whose holidays the calendar
    knows; counting into any other year falls back to plain weekends and logs a warning
    (an intake must not fail because next year's notice is not out yet)."""

    holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    day_end: time = DEFAULT_DAY_END
    tz: ZoneInfo = SHANGHAI
    years: frozenset[int] | None = None
    estimated_years: frozenset[int] = field(default=frozenset())

    def __post_init__(self):
        for name in ("holidays", "extra_workdays", "estimated_years"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        if self.years is not None:
            object.__setattr__(self, "years", frozenset(self.years))
        both = self.holidays & self.extra_workdays
        if both:
            raise ValueError(f"days both holiday and make-up workday: {sorted(both)}")

    def is_workday(self, day):
        if day in self.extra_workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_workdays(self, day, n):
        """The Nth working day after `day` (`day` itself never counts)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        current = day
        for _ in range(_MAX_SCAN_DAYS):
            current += timedelta(days=1)
            self._check_year(current.year)
            if self.is_workday(current):
                n -= 1
                if n == 0:
                    return current
        raise ValueError(f"no {n} working days within {_MAX_SCAN_DAYS} days of {day}: check the calendar")

    def __or__(self, other):
        if (self.day_end, self.tz) != (other.day_end, other.tz):
            raise ValueError("cannot merge calendars with different day_end or time zone")
        years = None if self.years is None or other.years is None else self.years | other.years
        return WorkCalendar(
            self.holidays | other.holidays,
            self.extra_workdays | other.extra_workdays,
            day_end=self.day_end,
            tz=self.tz,
            years=years,
            estimated_years=self.estimated_years | other.estimated_years,
        )

    def _check_year(self, year):
        if self.years is not None and year not in self.years:
            _warn_uncovered(year)


@cache
def _warn_uncovered(year):
    logger.warning("no holiday data for %s: counting weekends only; add the year to %s", year, HOLIDAYS_FILE.name)


# ---------------------------------------------------------------------------------------
# Calendar data


def _date(text):
    return date.fromisoformat(str(text).strip())


def _days(start, end):
    if end < start:
        raise ValueError(f"holiday range ends before it starts: {start} … {end}")
    return {start + timedelta(days=i) for i in range((end - start).days + 1)}


def _check_workday(day):
    if day.weekday() < 5:
        raise ValueError(f"make-up workday {day} is a weekday: only a Saturday or Sunday can be one")
    return day


def calendar_from_json(source=HOLIDAYS_FILE, years=None, **options):
    """A WorkCalendar from a JSON file (or an already-parsed dict) shaped like
    china_holidays.json: {"2026": {"status", "holidays": [{name, from, to}], "workdays":
    [{name, date}]}}. `years` selects some of them; `options` go to WorkCalendar."""
    data = source if isinstance(source, dict) else json.loads(Path(source).read_text(encoding="utf-8"))
    known = {int(k): v for k, v in data.items() if not k.startswith("_")}
    wanted = sorted(known) if years is None else [int(y) for y in years]
    holidays: set[date] = set()
    workdays: set[date] = set()
    estimated: set[int] = set()
    for year in wanted:
        if year not in known:
            raise UnknownYear(f"no holiday data for {year}; known years: {sorted(known)}")
        entry = known[year]
        for row in entry.get("holidays", []):
            holidays |= _days(_date(row["from"]), _date(row.get("to") or row["from"]))
        for row in entry.get("workdays", []):
            workdays.add(_check_workday(_date(row["date"])))
        if entry.get("status", "estimated") != "official":
            estimated.add(year)
    return WorkCalendar(
        frozenset(holidays),
        frozenset(workdays),
        years=frozenset(wanted),
        estimated_years=frozenset(estimated),
        **options,
    )


def calendar_from_csv(path, **options):
    """A WorkCalendar from a CSV an admin can keep in a spreadsheet, with a header row
    `kind,from,to,name[,status]`: kind is `holiday` or `workday`, `to` may be empty for a
    single day, status `official` or `estimated` (the default) per row. The years covered
    are those that appear in the file."""
    holidays: set[date] = set()
    workdays: set[date] = set()
    years: set[int] = set()
    estimated: set[int] = set()
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            kind = (row.get("kind") or "").strip().lower()
            start = _date(row["from"])
            end = _date(row.get("to") or row["from"])
            if kind == "holiday":
                holidays |= _days(start, end)
            elif kind == "workday":
                workdays |= {_check_workday(d) for d in _days(start, end)}
            else:
                raise ValueError(f"{path}:{line}: kind must be 'holiday' or 'workday', not {kind!r}")
            years |= {start.year, end.year}
            if (row.get("status") or "estimated").strip().lower() != "official":
                estimated |= {start.year, end.year}
    return WorkCalendar(
        frozenset(holidays),
        frozenset(workdays),
        years=frozenset(years),
        estimated_years=frozenset(estimated),
        **options,
    )


@cache
def china_calendar(*years):
    """China's working-day calendar for the given years (all years in china_holidays.json
    when none are given). Raises UnknownYear for a year the file does not have."""
    calendar = calendar_from_json(HOLIDAYS_FILE, years=years or None)
    for year in sorted(calendar.estimated_years):
        logger.info("holiday data for %s is estimated, not the official notice", year)
    return calendar


# ---------------------------------------------------------------------------------------
# Deadlines


def deadline(received_at, tier, calendar=None, mode=None):
    """When the time limit of `tier` ends for an appeal received at `received_at`.
    `calendar` defaults to china_calendar() (every year on file); `mode` to the tier's own."""
    require_aware(received_at, "received_at")
    tier = TIERS[tier] if isinstance(tier, str) else tier
    calendar = calendar or china_calendar()
    mode = Mode(mode or tier.mode)
    if mode is Mode.CALENDAR:
        # Add in UTC: elapsed hours, whatever a local clock change would do to wall time.
        return (received_at.astimezone(UTC) + timedelta(hours=tier.hours)).astimezone(calendar.tz)
    if tier.working_days is None:
        raise ValueError(f"tier {tier.code} runs on the calendar clock only")
    received_day = received_at.astimezone(calendar.tz).date()
    last_day = calendar.add_workdays(received_day, tier.working_days)
    return datetime.combine(last_day, calendar.day_end, tzinfo=calendar.tz)


# ---------------------------------------------------------------------------------------
# Warning colours


def _micros(delta):
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _fractions(thresholds):
    if len(thresholds) != 3:
        raise ValueError("thresholds are three shares of the time limit: (yellow, orange, red)")
    # str() first, so 0.8 means 4/5 and not the binary float nearest to it.
    shares = tuple(Fraction(str(t)) for t in thresholds)
    if not 0 < shares[0] < shares[1] < shares[2]:
        raise ValueError(f"thresholds must be positive and strictly increasing, got {thresholds}")
    return shares


def _span(received_at, deadline_at, now):
    require_aware(received_at, "received_at")
    require_aware(deadline_at, "deadline")
    require_aware(now, "now")
    # Subtract in UTC: between two datetimes sharing a tzinfo Python ignores the offsets.
    start = received_at.astimezone(UTC)
    total = _micros(deadline_at.astimezone(UTC) - start)
    if total <= 0:
        raise ValueError(f"deadline {deadline_at.isoformat()} is not after receipt {received_at.isoformat()}")
    return total, _micros(now.astimezone(UTC) - start)


def _level(total, used, shares):
    # used/total >= share, in integers, so a boundary is exact whatever the durations.
    return sum(1 for s in shares if used * s.denominator >= total * s.numerator)


def warning_colour(received_at, deadline, now, thresholds=DEFAULT_THRESHOLDS):
    """none / yellow / orange / red for the share of the time limit used at `now`."""
    total, used = _span(received_at, deadline, now)
    return COLOUR_ORDER[_level(total, used, _fractions(thresholds))]


def colour_changes(received_at, deadline, thresholds=DEFAULT_THRESHOLDS):
    """The instants at which the colour turns yellow, orange and red."""
    total, _ = _span(received_at, deadline, received_at)
    start = received_at.astimezone(UTC)
    out = []
    for share in _fractions(thresholds):
        # Round up to the microsecond, so the colour has changed at the instant returned.
        micros = math.ceil(Fraction(total) * share)
        out.append((start + timedelta(microseconds=micros)).astimezone(deadline.tzinfo))
    return tuple(out)


def next_colour_change(received_at, deadline, now, thresholds=DEFAULT_THRESHOLDS):
    """When the colour will next change after `now`, or None once it is red: a sweeper can
    sleep until then."""
    total, used = _span(received_at, deadline, now)
    level = _level(total, used, _fractions(thresholds))
    if level == len(thresholds):
        return None
    return colour_changes(received_at, deadline, thresholds)[level]
