"""Business-day calendars per publication calendar (pure: no clock, no I/O).

- ``sifma``: SIFMA bond-market holidays (``holidays`` XSIF, public category) **plus every Good
  Friday**: SOFR/TGCR/BGCR are not published on Good Friday even when SIFMA only recommends an
  early close (2021-04-02, 2023-04-07, 2026-04-03).
- ``fed``: Federal Reserve Bank holidays (XFED): EFFR, OBFR, the DTS. Saturday holidays are not
  moved (the Banks open the Friday before).
- ``daily``: every calendar day (administered rates are defined on weekends too).

``OVERRIDES`` lists dates where the published record disagrees with the library, checked
against the shipped history by the tests.
"""
from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays
from dateutil.easter import easter

# (calendar, date) -> True closed / False open, where the real publication record disagrees
# with the holiday library. Kept small and each entry justified by data.
OVERRIDES: dict[tuple[str, date], bool] = {}


@lru_cache(maxsize=None)
def _library_closed(calendar: str, year: int) -> frozenset[date]:
    code = {"sifma": "XSIF", "fed": "XFED"}[calendar]
    days = set(holidays.financial_holidays(code, years=year, categories=("public",)))
    if calendar == "sifma":
        days.add(easter(year) - timedelta(days=2))  # Good Friday: no SOFR, even on an early close
    return frozenset(days)


def is_business_day(calendar: str, day: date) -> bool:
    if calendar == "daily":
        return True
    override = OVERRIDES.get((calendar, day))
    if override is not None:
        return not override
    return day.weekday() < 5 and day not in _library_closed(calendar, day.year)


def next_business_day(calendar: str, day: date) -> date:
    """The first business day strictly after ``day``."""
    day += timedelta(days=1)
    while not is_business_day(calendar, day):
        day += timedelta(days=1)
    return day


def previous_business_day(calendar: str, day: date) -> date:
    """The last business day strictly before ``day``."""
    day -= timedelta(days=1)
    while not is_business_day(calendar, day):
        day -= timedelta(days=1)
    return day


def add_business_days(calendar: str, day: date, n: int) -> date:
    """``day`` moved by ``n`` business days (``n=0`` returns ``day`` itself)."""
    for _ in range(abs(n)):
        day = next_business_day(calendar, day) if n > 0 else previous_business_day(calendar, day)
    return day


def business_days_between(calendar: str, start: date, end: date) -> int:
    """Business days in (start, end]; negative when end < start."""
    if end < start:
        return -business_days_between(calendar, end, start)
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        count += is_business_day(calendar, day)
    return count
