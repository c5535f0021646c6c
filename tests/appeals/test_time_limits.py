"""Deadlines and colours in composition: appeal_register puts each tier on the clock, the sweep
turns it yellow, orange and red at 50 / 75 / 100 % of the elapsed wall time."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from gridgov import settings as project_settings
from gridgov.appeals.models import TIME_LIMIT_DURATIONS, AppealEvent, TimeLimit
from gridgov.appeals.timelimits import clock
from gridgov.nlp.classify import TIER_HOURS

from .timeline import at, colour_at, register, tiers  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
SECOND = timedelta(seconds=1)


def walk(appeal, steps):
    return [(now, colour_at(appeal, now)) for now, _ in steps]


def test_7_working_days_received_on_a_friday_afternoon(city, tiers, make_user):  # noqa: F811
    appeal = register(make_user("operator"), "7d", at(2026, 11, 13, 15, 20))
    # Friday does not count: Mon 16 … Fri 20 are days 1–5, Mon 23 day 6, Tue 24 day 7.
    assert appeal.deadline == at(2026, 11, 24, 17, 30)
    assert appeal.warning_colour == "none" and appeal.next_colour_at == at(2026, 11, 19, 4, 25)
    # 266 h 10 min in all: 50 % falls in Thursday's night, 75 % on Saturday evening.
    steps = [
        (at(2026, 11, 19, 4, 25) - SECOND, "none"),
        (at(2026, 11, 19, 4, 25), "yellow"),
        (at(2026, 11, 21, 22, 57, 30) - SECOND, "yellow"),
        (at(2026, 11, 21, 22, 57, 30), "orange"),
        (at(2026, 11, 24, 17, 30) - SECOND, "orange"),
        (at(2026, 11, 24, 17, 30), "red"),
    ]
    assert walk(appeal, steps) == steps
    assert appeal.next_colour_at is None
    # The history is stamped when written; each change also says when it fell due.
    assert [(e.event, e.data["due_at"]) for e in appeal.events.filter(event__startswith="colour_")] == [
        ("colour_yellow", steps[1][0].isoformat()),
        ("colour_orange", steps[3][0].isoformat()),
        ("colour_red", steps[5][0].isoformat()),
    ]


def test_7_working_days_received_during_the_national_day_holiday(city, tiers, make_user):  # noqa: F811
    # 2026-10-01 … 10-07 off; Saturday 10-10 is a make-up workday.
    appeal = register(make_user("operator"), "7d", at(2026, 10, 3, 10, 0))
    # Thu 8 (1), Fri 9 (2), Sat 10 (3, make-up), Mon 12 … Thu 15 (4–7).
    assert appeal.deadline == at(2026, 10, 15, 17, 30)


def test_7_working_days_across_a_make_up_sunday_and_mid_autumn(city, tiers, make_user):  # noqa: F811
    # Sunday 09-20 is a make-up workday; 09-25 … 09-27 is the Mid-Autumn holiday.
    appeal = register(make_user("operator"), "7d", at(2026, 9, 18, 16, 0))
    # Sun 20 (1), Mon 21 … Thu 24 (2–5), Mon 28 (6), Tue 29 (7).
    assert appeal.deadline == at(2026, 9, 29, 17, 30)


def test_2_hours_across_midnight(city, tiers, make_user):  # noqa: F811
    appeal = register(make_user("operator"), "2h", at(2026, 11, 20, 23, 10))
    assert appeal.department.code == "ranqi"
    assert appeal.deadline == at(2026, 11, 21, 1, 10)
    steps = [
        (at(2026, 11, 21, 0, 10) - SECOND, "none"),
        (at(2026, 11, 21, 0, 10), "yellow"),
        (at(2026, 11, 21, 0, 40) - SECOND, "yellow"),
        (at(2026, 11, 21, 0, 40), "orange"),
        (at(2026, 11, 21, 1, 10) - SECOND, "orange"),
        (at(2026, 11, 21, 1, 10), "red"),
    ]
    assert walk(appeal, steps) == steps


def test_24_hours_run_through_the_weekend(city, tiers, make_user):  # noqa: F811
    appeal = register(make_user("operator"), "24h", at(2026, 11, 21, 8, 0))  # a Saturday
    assert appeal.department.code == "shuiwu"
    assert appeal.deadline == at(2026, 11, 22, 8, 0)
    steps = [
        (at(2026, 11, 21, 20, 0) - SECOND, "none"),
        (at(2026, 11, 21, 20, 0), "yellow"),
        (at(2026, 11, 22, 2, 0), "orange"),
        (at(2026, 11, 22, 8, 0), "red"),
    ]
    assert walk(appeal, steps) == steps


def test_a_dispatch_after_the_deadline_records_the_escalation(city, tiers, make_user):  # noqa: F811
    # Received on Monday 2 November, registered (a late petition) a fortnight later.
    appeal = register(make_user("operator"), "7d", at(2026, 11, 2, 9, 0), now=at(2026, 11, 16, 9, 0))
    assert appeal.deadline == at(2026, 11, 11, 17, 30)
    assert appeal.warning_colour == "red" and appeal.next_colour_at is None
    assert list(appeal.events.values_list("event", flat=True)) == ["register", "locate", "dispatch", "colour_red"]
    red = appeal.events.get(event="colour_red")
    assert red.data == {
        "old": "none",
        "new": "red",
        "supervised": True,
        "escalated": True,
        "skipped": ["yellow", "orange"],
        "due_at": "2026-11-11T17:30:00+08:00",
        "escalated_to": {"district": "110101"},
    }


# --- settings --------------------------------------------------------------------------------


def test_time_limit_modes_setting(city, tiers, make_user, settings):  # noqa: F811
    op = make_user("operator")
    settings.TIME_LIMIT_MODES = {"7d": "calendar", "24h": "working_days"}
    assert register(op, "7d", at(2026, 11, 13, 15, 20)).deadline == at(2026, 11, 20, 15, 20)
    # A 24 h limit read as one working day: received Saturday, due Monday at the end of the day.
    assert register(op, "24h", at(2026, 11, 21, 8, 0)).deadline == at(2026, 11, 23, 17, 30)


def test_warning_thresholds_setting(city, tiers, make_user, settings):  # noqa: F811
    settings.WARNING_THRESHOLDS = (0.6, 0.8, 1.0)
    appeal = register(make_user("operator"), "2h", at(2026, 11, 20, 23, 10))
    assert appeal.next_colour_at == at(2026, 11, 21, 0, 22)
    assert colour_at(appeal, at(2026, 11, 21, 0, 22)) == "yellow"
    assert appeal.next_colour_at == at(2026, 11, 21, 0, 46)
    assert colour_at(appeal, at(2026, 11, 21, 0, 46)) == "orange"


def test_the_stored_deadline_holds_when_the_settings_change(city, tiers, make_user, settings):  # noqa: F811
    appeal = register(make_user("operator"), "7d", at(2026, 11, 13, 15, 20))
    settings.TIME_LIMIT_MODES = {"7d": "calendar"}  # would make it due on Friday 20 at 15:20
    assert colour_at(appeal, at(2026, 11, 20, 16, 0)) == "yellow"
    assert appeal.deadline == at(2026, 11, 24, 17, 30)
    assert not AppealEvent.objects.filter(event="colour_red").exists()


@pytest.mark.parametrize(
    "raw,expected", [("", (0.5, 0.75, 1.0)), ("0.6, 0.8, 1", (0.6, 0.8, 1.0)), ("0.5,0.75,0.9", (0.5, 0.75, 0.9))]
)
def test_env_thresholds(monkeypatch, raw, expected):
    monkeypatch.setenv("X_THRESHOLDS", raw)
    assert project_settings.env_thresholds("X_THRESHOLDS", (0.5, 0.75, 1.0)) == expected


@pytest.mark.parametrize("raw", ["0.5,0.75", "0.5,0.5,1", "0,0.5,1", "0.5,0.75,1.2", "0.8,0.6,1", "a,b,c"])
def test_env_thresholds_refuses(monkeypatch, raw):
    monkeypatch.setenv("X_THRESHOLDS", raw)
    with pytest.raises(ImproperlyConfigured, match="X_THRESHOLDS"):
        project_settings.env_thresholds("X_THRESHOLDS", (0.5, 0.75, 1.0))


def test_env_time_limit_modes(monkeypatch):
    monkeypatch.setenv("X_MODES", "7d=workdays, 15d=Calendar,24h=working_days")
    assert project_settings.env_time_limit_modes("X_MODES") == {
        "7d": "working_days",
        "15d": "calendar",
        "24h": "working_days",
    }
    monkeypatch.setenv("X_MODES", "")
    assert project_settings.env_time_limit_modes("X_MODES") == {}


@pytest.mark.parametrize("raw", ["2h=workdays", "3d=calendar", "7d=weekly", "7d"])
def test_env_time_limit_modes_refuses(monkeypatch, raw):
    monkeypatch.setenv("X_MODES", raw)
    with pytest.raises(ImproperlyConfigured, match="X_MODES"):
        project_settings.env_time_limit_modes("X_MODES")


def test_the_settings_check_reads_the_tiers_from_the_clock(monkeypatch):
    """One definition of the tiers: a tier added to clock.TIERS is a tier TIME_LIMIT_MODES may
    name, and one without a working-day reading is held to the calendar clock like 2 h."""
    monkeypatch.setitem(clock.TIERS, "30d", clock.Tier("30d", 30 * 24, 30, clock.Mode.WORKING_DAYS, "30天"))
    monkeypatch.setitem(clock.TIERS, "4h", clock.Tier("4h", 4, None, clock.Mode.CALENDAR, "4小时"))
    monkeypatch.setenv("X_MODES", "30d=calendar,4h=calendar")
    assert project_settings.env_time_limit_modes("X_MODES") == {"30d": "calendar", "4h": "calendar"}
    monkeypatch.setenv("X_MODES", "4h=workdays")
    with pytest.raises(ImproperlyConfigured, match="X_MODES.*4h tier runs on the calendar clock only"):
        project_settings.env_time_limit_modes("X_MODES")


def test_the_catalogue_and_the_rules_name_the_clocks_tiers():
    assert TimeLimit.choices == [(code, tier.label) for code, tier in clock.TIERS.items()]
    assert (TimeLimit.HOURS_2, TimeLimit.HOURS_24, TimeLimit.DAYS_7, TimeLimit.DAYS_15) == tuple(clock.TIERS)
    assert TIME_LIMIT_DURATIONS == {code: timedelta(hours=tier.hours) for code, tier in clock.TIERS.items()}
    # The text rules (gridgov.nlp, a floor below appeals) name the same tiers and lengths.
    assert TIER_HOURS == {code: tier.hours for code, tier in clock.TIERS.items()}


def test_the_beat_schedule_runs_the_sweep():
    entry = project_settings.CELERY_BEAT_SCHEDULE["appeals-sweep-warning-colours"]
    assert entry["task"] == "gridgov.appeals.tasks.sweep_warning_colours"
    assert entry["schedule"] == float(project_settings.SWEEP_INTERVAL_SECONDS)
    assert (
        project_settings.CELERY_BEAT_SCHEDULE["appeals-review-long-term"]["task"]
        == "gridgov.appeals.tasks.review_long_term"
    )
