"""Business-day calendars per publication calendar (pure: no clock, no I/O).

- ``sifma``: SIFMA bond-market holidays (``holidays`` XSIF, public category) **plus every Good
  Friday**: SOFR/TGCR/BGCR and ON RRP are not published on Good Friday even when SIFMA only
  recommends an early close (2021-04-02, 2023-04-07, 2026-04-03). SIFMA early closes
  (``half_day``: 2025-01-09, the day before Good Friday, 2025-11-28 …) are business days.
- ``fed``: Federal Reserve Bank holidays (XFED): EFFR, OBFR, the DTS (TGA). Saturday holidays
  are not moved (the Banks are open the Friday before, e.g. 2026-07-03), and Good Friday is open.
- ``daily``: every calendar day (administered rates are defined on weekends too).

Checked against the shipped history by ``tests/test_calendar.py`` (every weekday of every daily
file: "the calendar says business day <=> the file has a value"):

- ``sifma``: SOFR, TGCR, BGCR 2018-04-03 .. 2026-09-04 (NY Fed and FRED files) and ON RRP
  (FRED RRPONTSYD) 2013-09-23 .. 2026-07-31 agree with no override. RRPONTSYD has 7 gaps on
  open days (2014-2019), kept as record anomalies in the test, not as holidays.
- ``fed``: EFFR 2000-07-03 .. 2026-06-04 agrees except 7 anomalies of that file (listed in the
  test); the DTS 2021-06-24 .. 2026-06-23 agrees exactly.

The library covers XSIF from 1996 and XFED from 1999; earlier years have no holidays at all.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from functools import lru_cache

import holidays
from dateutil.easter import easter

CALENDARS = ("sifma", "fed", "daily")

# (calendar, date) -> True closed / False open, where the real publication record disagrees
# with the holiday library. Each entry needs evidence in the shipped history (or an official
# notice) in a comment. Empty on purpose: the library plus the Good Friday rule reproduce every
# SOFR/TGCR/BGCR/ON RRP/EFFR/DTS publication day in the history; the leftover disagreements are
# defects of single files (see tests/test_calendar.py), and a calendar bent to fit one file's
# gap would wrongly tell the other series on that calendar not to publish.
OVERRIDES: dict[tuple[str, date], bool] = {}


@lru_cache(maxsize=None)
def _library_closed(calendar: str, year: int) -> frozenset[date]:
    code = {"sifma": "XSIF", "fed": "XFED"}[calendar]
    days = set(holidays.financial_holidays(code, years=year, categories=("public",)))
    if calendar == "sifma":
        days.add(easter(year) - timedelta(days=2))  # Good Friday: no SOFR, even on an early close
    return frozenset(days)


def _check(calendar: str) -> None:
    # A typo must not silently mean "open every weekday" (weekends would short-circuit the lookup).
    if calendar not in CALENDARS:
        raise ValueError(f"unknown calendar {calendar!r}; known: {', '.join(CALENDARS)}")


# hot in replay (calendar terms, staleness); OVERRIDES never change at run time. Bounded: replay
# walks forward through the dates, and an unbounded cache grew with the length of the history.
@lru_cache(maxsize=1 << 14)
def is_business_day(calendar: str, day: date) -> bool:
    _check(calendar)
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


def business_day_on_or_before(calendar: str, day: date) -> date:
    """``day`` itself when it is a business day, else the last one before it."""
    return day if is_business_day(calendar, day) else previous_business_day(calendar, day)


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


def business_days(calendar: str, start: date, end: date) -> Iterator[date]:
    """The business days in [start, end], in order."""
    day = start
    while day <= end:
        if is_business_day(calendar, day):
            yield day
        day += timedelta(days=1)
