from datetime import UTC, date, datetime, time, timedelta

import pytest

from gridgov.appeals.timelimits.clock import (
    SHANGHAI,
    TIERS,
    Colour,
    Mode,
    NaiveDatetimeError,
    UnknownYear,
    WorkCalendar,
    calendar_from_csv,
    calendar_from_json,
    china_calendar,
    colour_changes,
    deadline,
    next_colour_change,
    warning_colour,
)


def bj(*args):
    return datetime(*args, tzinfo=SHANGHAI)


WEEKENDS_ONLY = WorkCalendar(set(), set())


# --- deadlines on the calendar clock


def test_2h_across_midnight():
    assert deadline(bj(2026, 3, 10, 23, 10), "2h") == bj(2026, 3, 11, 1, 10)


def test_2h_runs_through_holidays_and_keeps_the_instant_for_utc_input():
    received = datetime(2026, 10, 1, 16, 0, tzinfo=UTC)  # 00:00 on 2 October in Beijing
    due = deadline(received, "2h")
    assert due == received + timedelta(hours=2)
    assert due.tzinfo is SHANGHAI and due.hour == 2


def test_24h_ignores_weekends():
    assert deadline(bj(2026, 3, 13, 9, 0), "24h") == bj(2026, 3, 14, 9, 0)  # Friday → Saturday


def test_2h_has_no_working_day_reading():
    with pytest.raises(ValueError, match="calendar clock only"):
        deadline(bj(2026, 3, 10, 9), "2h", mode=Mode.WORKING_DAYS)


def test_mode_is_configurable_per_call():
    assert deadline(bj(2026, 3, 12, 10), "7d", mode=Mode.CALENDAR) == bj(2026, 3, 19, 10)
    # 24h counted as one working day: Friday evening → end of Monday.
    assert deadline(bj(2026, 3, 13, 20), "24h", WEEKENDS_ONLY, Mode.WORKING_DAYS) == bj(2026, 3, 16, 17, 30)


# --- deadlines in working days


def test_7_working_days_over_a_weekend():
    # Thursday: Fri 13 (1), Mon 16 – Fri 20 (2–6), Mon 23 (7).
    assert deadline(bj(2026, 3, 12, 10, 0), "7d") == bj(2026, 3, 23, 17, 30)


def test_day_of_receipt_never_counts_even_after_hours():
    assert deadline(bj(2026, 3, 12, 23, 59), "7d") == deadline(bj(2026, 3, 12, 0, 1), "7d")


def test_receipt_time_is_read_in_beijing():
    # 2026-03-12 20:00 UTC is already Friday 13 in Beijing.
    received = datetime(2026, 3, 12, 20, 0, tzinfo=UTC)
    assert deadline(received, "7d") == deadline(bj(2026, 3, 13, 4, 0), "7d") == bj(2026, 3, 24, 17, 30)


def test_7_working_days_over_national_day_with_make_up_workday():
    # Tue 29 Sep: Wed 30 (1); 1–7 Oct holiday; Thu 8 (2), Fri 9 (3), Sat 10 make-up (4),
    # Mon 12 (5), Tue 13 (6), Wed 14 (7).
    assert deadline(bj(2026, 9, 29, 10, 0), "7d") == bj(2026, 10, 14, 17, 30)


def test_make_up_sunday_and_mid_autumn():
    # Fri 18 Sep: Sun 20 make-up (1), Mon 21 – Thu 24 (2–5), 25–27 Mid-Autumn, Mon 28 (6), Tue 29 (7).
    assert deadline(bj(2026, 9, 18, 9, 0), "7d") == bj(2026, 9, 29, 17, 30)


def test_receipt_on_a_holiday_starts_on_the_next_working_day():
    # Sat 3 Oct, National Day: Thu 8 (1), Fri 9 (2), Sat 10 (3), Mon 12 – Thu 15 (4–7).
    assert deadline(bj(2026, 10, 3, 15, 0), "7d") == bj(2026, 10, 15, 17, 30)
    assert deadline(bj(2026, 10, 3, 15, 0), "2h") == bj(2026, 10, 3, 17, 0)


def test_15_working_days_over_spring_festival():
    # Thu 12 Feb: Fri 13 (1), Sat 14 make-up (2), 15–23 holiday, Tue 24 – Fri 27 (3–6),
    # Sat 28 make-up (7), 2–6 Mar (8–12), 9–11 Mar (13–15).
    assert deadline(bj(2026, 2, 12, 11, 0), "15d") == bj(2026, 3, 11, 17, 30)


def test_deadline_across_the_year_end_uses_the_next_year():
    # Thu 24 Dec 2026: 25, 28, 29, 30, 31 Dec (1–5), 1–3 Jan 2027 holiday, Mon 4 (6), Tue 5 (7).
    assert deadline(bj(2026, 12, 24, 9), "7d") == bj(2027, 1, 5, 17, 30)


def test_day_end_is_configurable():
    cal = WorkCalendar(set(), set(), day_end=time(18, 0))
    assert deadline(bj(2026, 3, 12, 10), "7d", cal) == bj(2026, 3, 23, 18, 0)


def test_naive_datetimes_are_rejected():
    with pytest.raises(NaiveDatetimeError, match="naive"):
        deadline(datetime(2026, 3, 12, 10), "7d")
    with pytest.raises(NaiveDatetimeError):
        warning_colour(bj(2026, 3, 12, 10), bj(2026, 3, 12, 12), datetime(2026, 3, 12, 11))


# --- calendar data


def test_china_calendar_2026_official():
    cal = china_calendar(2026)
    assert cal.estimated_years == frozenset()
    assert not cal.is_workday(date(2026, 1, 2))  # Friday, 元旦 调休
    assert cal.is_workday(date(2026, 1, 4))  # Sunday, make-up
    assert not cal.is_workday(date(2026, 2, 23))
    assert cal.is_workday(date(2026, 2, 14)) and cal.is_workday(date(2026, 2, 28))
    assert cal.is_workday(date(2026, 5, 9))
    assert not cal.is_workday(date(2026, 6, 19))
    assert cal.is_workday(date(2026, 9, 20)) and cal.is_workday(date(2026, 10, 10))
    assert sum(not cal.is_workday(date(2026, 10, d)) for d in range(1, 8)) == 7


def test_china_calendar_2027_is_marked_estimated():
    cal = china_calendar(2027)
    assert cal.estimated_years == {2027}
    assert not cal.is_workday(date(2027, 2, 8)) and not cal.is_workday(date(2027, 10, 4))
    for day in cal.extra_workdays:
        assert day.weekday() >= 5


def test_unknown_year():
    with pytest.raises(UnknownYear):
        china_calendar(1999)


def test_uncovered_year_falls_back_to_weekends(caplog):
    cal = china_calendar(2026)
    assert cal.add_workdays(date(2026, 12, 31), 1) == date(2027, 1, 1)  # really a holiday
    assert "no holiday data for 2027" in caplog.text


def test_calendar_from_json_dict_and_csv(tmp_path):
    cal = calendar_from_json(
        {
            "2030": {
                "status": "official",
                "holidays": [{"from": "2030-10-01", "to": "2030-10-03"}],
                "workdays": [{"date": "2030-09-29"}],
            }
        }
    )
    assert cal.years == {2030} and not cal.estimated_years
    assert not cal.is_workday(date(2030, 10, 2)) and cal.is_workday(date(2030, 9, 29))
    path = tmp_path / "holidays.csv"
    path.write_text("kind,from,to,name\nholiday,2030-10-01,2030-10-03,国庆节\nworkday,2030-09-29,,国庆节\n")
    from_csv = calendar_from_csv(path)
    assert from_csv.holidays == cal.holidays and from_csv.extra_workdays == cal.extra_workdays
    assert from_csv.estimated_years == {2030}
    path.write_text("kind,from,to,name\nworkday,2030-09-30,,oops\n")  # a Monday
    with pytest.raises(ValueError, match="Saturday or Sunday"):
        calendar_from_csv(path)


def test_a_day_cannot_be_both_holiday_and_workday():
    with pytest.raises(ValueError):
        WorkCalendar({date(2026, 1, 4)}, {date(2026, 1, 4)})


def test_tiers():
    assert set(TIERS) == {"2h", "24h", "7d", "15d"}
    assert [TIERS[t].mode for t in ("2h", "24h", "7d", "15d")] == [Mode.CALENDAR] * 2 + [Mode.WORKING_DAYS] * 2


# --- warning colours

RECEIVED = bj(2026, 3, 12, 8, 0)
DUE = bj(2026, 3, 12, 16, 0)  # 8 hours: 50 % at 12:00, 75 % at 14:00


@pytest.mark.parametrize(
    "now, colour",
    [
        (RECEIVED - timedelta(minutes=5), Colour.NONE),
        (RECEIVED, Colour.NONE),
        (bj(2026, 3, 12, 11, 59, 59, 999999), Colour.NONE),
        (bj(2026, 3, 12, 12, 0), Colour.YELLOW),  # exactly 50 %
        (bj(2026, 3, 12, 13, 0), Colour.YELLOW),
        (bj(2026, 3, 12, 14, 0), Colour.ORANGE),  # exactly 75 %
        (bj(2026, 3, 12, 15, 59), Colour.ORANGE),
        (DUE, Colour.RED),  # exactly 100 %
        (DUE + timedelta(days=3), Colour.RED),
    ],
)
def test_warning_colour(now, colour):
    assert warning_colour(RECEIVED, DUE, now) == colour


def test_warning_colour_custom_thresholds_exact_on_decimal_boundary():
    # 0.8 of 10 hours is exactly 8 hours, although 0.8 has no exact binary float.
    received, due = bj(2026, 3, 12, 0), bj(2026, 3, 12, 10)
    assert warning_colour(received, due, bj(2026, 3, 12, 8), thresholds=(0.3, 0.8, 0.9)) == Colour.ORANGE
    assert warning_colour(received, due, bj(2026, 3, 12, 7, 59, 59), thresholds=(0.3, 0.8, 0.9)) == Colour.YELLOW
    assert warning_colour(received, due, bj(2026, 3, 12, 9), thresholds=(0.3, 0.8, 0.9)) == Colour.RED


def test_bad_thresholds_and_spans():
    with pytest.raises(ValueError):
        warning_colour(RECEIVED, DUE, DUE, thresholds=(0.75, 0.5, 1.0))
    with pytest.raises(ValueError):
        warning_colour(RECEIVED, RECEIVED, DUE)


def test_next_colour_change_sequence():
    now = RECEIVED
    seen = []
    while (change := next_colour_change(RECEIVED, DUE, now)) is not None:
        assert change > now
        assert warning_colour(RECEIVED, DUE, change - timedelta(microseconds=1)) == warning_colour(RECEIVED, DUE, now)
        now = change
        seen.append((now, warning_colour(RECEIVED, DUE, now)))
    assert seen == [
        (bj(2026, 3, 12, 12, 0), Colour.YELLOW),
        (bj(2026, 3, 12, 14, 0), Colour.ORANGE),
        (DUE, Colour.RED),
    ]
    assert next_colour_change(RECEIVED, DUE, DUE + timedelta(days=1)) is None


def test_next_colour_change_on_a_working_day_deadline():
    received = bj(2026, 9, 29, 10, 0)
    due = deadline(received, "7d")
    yellow, orange, red = colour_changes(received, due)
    assert red == due
    assert next_colour_change(received, due, received) == yellow
    assert next_colour_change(received, due, yellow) == orange
    assert next_colour_change(received, due, orange - timedelta(seconds=1)) == orange
    assert warning_colour(received, due, yellow) == Colour.YELLOW


def test_next_colour_change_rounds_up_to_the_microsecond():
    received, due = bj(2026, 3, 12, 0), bj(2026, 3, 12, 0, 0, 0, 3)  # 3 µs: 50 % is 1.5 µs
    change = next_colour_change(received, due, received)
    assert change == bj(2026, 3, 12, 0, 0, 0, 2)
    assert warning_colour(received, due, change) == Colour.YELLOW
    assert warning_colour(received, due, change - timedelta(microseconds=1)) == Colour.NONE
