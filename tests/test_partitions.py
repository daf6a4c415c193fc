"""Dagster partitions = B3 sessions, checked against the exchange_calendars BVMF calendar."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from dagster import DailyPartitionsDefinition, PartitionKeyRange

from bovespa_assets.partitions import (
    B3_TIMEZONE,
    b3_calendar,
    b3_sessions_partitions,
    holidays_between,
    is_session,
    sessions_between,
)
from bovespa_assets.settings import DEFAULT_START_DATE

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
START, END = "2021-09-01", "2026-10-30"
# A fixed "now" after END, so the keys do not depend on when the tests run.
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=SAO_PAULO)


@pytest.fixture(scope="module")
def partitions() -> DailyPartitionsDefinition:
    return b3_sessions_partitions(START)


@pytest.fixture(scope="module")
def keys(partitions) -> list[str]:
    return list(partitions.get_partition_keys(current_time=NOW))


def calendar_sessions(start: str, end: str) -> list[str]:
    return [ts.strftime("%Y-%m-%d") for ts in b3_calendar().sessions_in_range(start, end)]


def test_calendar_is_bvmf():
    assert b3_calendar().name == "BVMF"
    assert str(b3_calendar().tz) == "America/Sao_Paulo"


def test_keys_are_exactly_the_calendar_sessions(keys):
    in_range = [k for k in keys if START <= k <= END]
    expected = calendar_sessions(START, END)
    assert len(expected) > 1200  # several years
    assert in_range == expected
    assert keys[0] == "2021-09-01"


def test_keys_in_range_are_exactly_the_calendar_sessions(partitions):
    assert list(partitions.get_partition_keys_in_range(PartitionKeyRange(START, END))) == calendar_sessions(START, END)


def test_default_start_date_partitions_match_the_calendar():
    keys = b3_sessions_partitions(DEFAULT_START_DATE).get_partition_keys(current_time=NOW)
    assert [k for k in keys if k <= END] == calendar_sessions(DEFAULT_START_DATE, END)


def test_no_key_on_a_weekend(keys):
    assert all(date.fromisoformat(k).weekday() < 5 for k in keys)


@pytest.mark.parametrize(
    ("day", "is_key"),
    [
        ("2025-03-03", False),  # Carnival Monday
        ("2025-03-04", False),  # Carnival Tuesday
        ("2024-11-20", False),  # Dia da Consciência Negra (national holiday since 2024)
        ("2025-03-05", True),  # Ash Wednesday: B3 trades from 13:00
        ("2024-07-09", True),  # São Paulo state holiday: B3 trades
        ("2024-12-24", False),  # Christmas Eve
        ("2024-12-31", False),  # last weekday of the year
        ("2025-03-01", False),  # Saturday
        ("2025-03-02", False),  # Sunday
    ],
)
def test_named_dates(partitions, keys, day, is_key):
    assert (day in keys) is is_key
    assert partitions.has_partition_key(day) is is_key  # all named dates are in the past
    assert is_session(date.fromisoformat(day)) is is_key


def test_timezone_and_key_format(partitions, keys):
    assert partitions.timezone == B3_TIMEZONE == "America/Sao_Paulo"
    assert partitions.fmt == "%Y-%m-%d"
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", k) for k in keys)
    window = partitions.time_window_for_partition_key("2025-03-05")
    assert window.start == datetime(2025, 3, 5, tzinfo=SAO_PAULO)
    assert window.start.utcoffset() == timedelta(hours=-3)
    assert window.end == datetime(2025, 3, 6, tzinfo=SAO_PAULO)


@pytest.mark.parametrize(
    ("now", "last_key"),
    [
        (datetime(2025, 3, 11, 8, 30, tzinfo=SAO_PAULO), "2025-03-11"),  # session day, schedule time
        (datetime(2025, 3, 11, 0, 1, tzinfo=SAO_PAULO), "2025-03-11"),  # just after midnight
        (datetime(2025, 3, 2, 12, 0, tzinfo=SAO_PAULO), "2025-03-05"),  # Sunday before Carnival
        (datetime(2025, 3, 4, 20, 0, tzinfo=SAO_PAULO), "2025-03-05"),  # Carnival Tuesday evening
        (datetime(2024, 11, 20, 9, 0, tzinfo=SAO_PAULO), "2024-11-21"),  # on a holiday
    ],
)
def test_end_offset_makes_todays_or_next_session_a_key(partitions, now, last_key):
    keys = partitions.get_partition_keys(current_time=now)
    assert keys[-1] == last_key
    expected = b3_calendar().date_to_session(pd.Timestamp(now.date()), direction="next")
    assert keys[-1] == expected.strftime("%Y-%m-%d")


def test_start_before_calendar_range_gives_no_unknown_keys():
    calendar = b3_calendar()
    start = (calendar.first_session - pd.Timedelta(days=20)).strftime("%Y-%m-%d")
    end = (calendar.first_session + pd.Timedelta(days=40)).strftime("%Y-%m-%d")
    keys = b3_sessions_partitions(start).get_partition_keys(current_time=NOW)
    assert [k for k in keys if k <= end] == calendar_sessions(calendar.first_session.strftime("%Y-%m-%d"), end)


# --- helpers ---------------------------------------------------------------------------------


def test_is_session():
    assert is_session(date(2025, 3, 5))
    assert is_session(date(2024, 7, 9))
    assert not is_session(date(2025, 3, 3))
    assert not is_session(date(2025, 3, 8))  # Saturday
    # Outside the calendar's range: False, not an exchange_calendars error.
    calendar = b3_calendar()
    assert not is_session((calendar.first_session - pd.Timedelta(days=400)).date())
    assert not is_session((calendar.last_session + pd.Timedelta(days=400)).date())


def test_sessions_between():
    assert sessions_between(date(2025, 2, 28), date(2025, 3, 7)) == [
        date(2025, 2, 28),
        date(2025, 3, 5),
        date(2025, 3, 6),
        date(2025, 3, 7),
    ]
    # Inclusive at both ends; empty when reversed or when there is no session.
    assert sessions_between(date(2025, 3, 5), date(2025, 3, 5)) == [date(2025, 3, 5)]
    assert sessions_between(date(2025, 3, 7), date(2025, 3, 5)) == []
    assert sessions_between(date(2025, 3, 1), date(2025, 3, 4)) == []
    expected = [ts.date() for ts in b3_calendar().sessions_in_range(START, END)]
    assert sessions_between(date.fromisoformat(START), date.fromisoformat(END)) == expected


def test_sessions_between_is_clipped_to_the_calendar():
    calendar = b3_calendar()
    far_past = (calendar.first_session - pd.Timedelta(days=400)).date()
    far_future = (calendar.last_session + pd.Timedelta(days=400)).date()
    sessions = sessions_between(far_past, far_future)
    assert sessions[0] == calendar.first_session.date()
    assert sessions[-1] == calendar.last_session.date()
    assert sessions_between(far_future, far_future + timedelta(days=10)) == []


def test_holidays_between():
    assert holidays_between(date(2025, 3, 1), date(2025, 3, 9)) == [date(2025, 3, 3), date(2025, 3, 4)]
    holidays_2024 = holidays_between(date(2024, 1, 1), date(2024, 12, 31))
    assert date(2024, 11, 20) in holidays_2024
    assert date(2024, 12, 25) in holidays_2024
    assert date(2024, 7, 9) not in holidays_2024
    assert holidays_between(date(2025, 3, 5), date(2025, 3, 7)) == []
    assert holidays_between(date(2025, 3, 7), date(2025, 3, 5)) == []


def test_holidays_and_sessions_partition_the_weekdays():
    start, end = date.fromisoformat(START), date.fromisoformat(END)
    holidays = holidays_between(start, end)
    sessions = sessions_between(start, end)
    assert all(d.weekday() < 5 for d in holidays)
    assert not set(holidays) & set(sessions)
    weekdays = [ts.date() for ts in pd.bdate_range(start, end)]
    assert sorted([*holidays, *sessions]) == weekdays
