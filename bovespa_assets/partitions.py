"""B3 trading sessions as Dagster partitions, from the maintained BVMF exchange calendar.

Keys are ``YYYY-MM-DD`` in America/Sao_Paulo. Weekends are excluded by cron, every B3 holiday by
date, both taken from ``exchange_calendars`` (no hand-written holiday list here). ``end_offset=1``
makes today's session (on a non-trading day, the next one) a valid key from midnight São Paulo time,
so the morning schedule can load the session of the day.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache

import exchange_calendars as xcals
import pandas as pd
from dagster import DailyPartitionsDefinition, MonthlyPartitionsDefinition

from .settings import Settings

B3_CALENDAR = "BVMF"
B3_TIMEZONE = "America/Sao_Paulo"
WEEKENDS = "0 0 * * 6,0"


@cache
def b3_calendar() -> xcals.ExchangeCalendar:
    return xcals.get_calendar(B3_CALENDAR)


def sessions_between(start: date, end: date) -> list[date]:
    """B3 sessions in [start, end], clipped to the calendar's known range."""
    calendar = b3_calendar()
    lo = max(pd.Timestamp(start), calendar.first_session)
    hi = min(pd.Timestamp(end), calendar.last_session)
    if lo > hi:
        return []
    return [ts.date() for ts in calendar.sessions_in_range(lo, hi)]


def is_session(day: date) -> bool:
    calendar = b3_calendar()
    ts = pd.Timestamp(day)
    return calendar.first_session <= ts <= calendar.last_session and calendar.is_session(ts)


def holidays_between(start: date, end: date) -> list[date]:
    """Weekdays on which B3 does not trade (national holidays, Carnival, year-end, ...)."""
    sessions = set(sessions_between(start, end))
    weekdays = pd.bdate_range(start, min(pd.Timestamp(end), b3_calendar().last_session))
    return [d.date() for d in weekdays if d.date() not in sessions]


@cache
def b3_sessions_partitions(start_date: str) -> DailyPartitionsDefinition:
    holidays = holidays_between(date.fromisoformat(start_date), b3_calendar().last_session.date())
    return DailyPartitionsDefinition(
        start_date=start_date,
        timezone=B3_TIMEZONE,
        end_offset=1,
        exclusions=[WEEKENDS, *(datetime(d.year, d.month, d.day) for d in holidays)],
    )


def partitions_for(settings: Settings) -> DailyPartitionsDefinition:
    return b3_sessions_partitions(settings.start_date)


@cache
def months_partitions(start_date: str) -> MonthlyPartitionsDefinition:
    """Calendar months (keys ``YYYY-MM-01``) from the month of the first session; the current month included."""
    first = date.fromisoformat(start_date).replace(day=1)
    return MonthlyPartitionsDefinition(start_date=first.isoformat(), timezone=B3_TIMEZONE, end_offset=1)


def month_partitions_for(settings: Settings) -> MonthlyPartitionsDefinition:
    return months_partitions(settings.start_date)
