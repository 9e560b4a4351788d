"""Calendar terms of the money markets: the "pressure dates" of DOMAIN.md (pure: no clock, no I/O).

An elevated funding rate on one of these days is usually *selected-date pressure* (DESIGN.md): a
known, tolerable calendar effect, to be reported with its reason and told apart from persistent
elevation. Every term is defined on the business days of a publication calendar of
``watchdog.market.calendar`` ("sifma", "fed", "daily"), so a SOFR reading and an EFFR reading are each
judged against the days their own series can have.

Terms (an *instance* of a term is always a business day of the calendar):

- ``month_end``: the last business day of the calendar month. Banks window-dress balance sheets
  for month-end reporting and cash is withdrawn from repo, so overnight rates print high.
- ``quarter_end``: the month_end of March, June, September and December. Foreign banks report
  (and pay leverage-ratio charges on) quarter-end snapshots, so they shrink repo intermediation
  then: the strongest recurring pressure after year-end.
- ``year_end``: the month_end of December: the quarter-end effect plus annual G-SIB surcharge
  snapshots (2018-12-31).
- ``turn``: the first business day after a month_end (2025-11-03 after 2025-10-31). Trades
  "over the turn" settle on the month_end and unwind on this day, and some dislocation lingers
  into it; it is also the first day of the new month's flows.
- ``quarter_turn`` / ``year_turn``: the turn after a quarter_end / year_end (2024-10-01,
  2026-01-02).
- ``tax_date``: corporate tax dates, the 15th of April, June, September and December, rolled to
  the next business day when the 15th is not one. Tax payments move reserves into the TGA and
  drain the banking system (2019-09-16, the 15th being a Sunday: the day the 2019 repo spike
  began, with coupon settlement on the same day).
- ``coupon_settlement``: Treasury coupon settlement, the 15th and the last calendar day of each
  month, each rolled to the next business day (2025-08-31 is a Sunday and 09-01 Labor Day, so
  the month-end settlement is 2025-09-02). Dealers must finance newly settled notes and bonds in
  repo, and the cash paid drains reserves into the TGA.
- ``gse_cycle``: business days whose calendar day is 18..25 (approximately the GSE cash cycle:
  Fannie/Freddie MBS principal and interest is parked with the GSEs, lent in repo around the
  18th and withdrawn for the 25th payment date, which moves repo supply).

Definition choices: rolling (tax_date, coupon_settlement) uses the calendar asked about, so the
same rule can land on different days for "sifma" and "fed" (and never moves for "daily"). A day
that is not a business day of its calendar carries no term at any window: the series has no
value there to explain.
"""
from __future__ import annotations

from functools import lru_cache

import calendar as _stdcal
from datetime import date

from watchdog.market.calendar import (add_business_days, business_day_on_or_before, business_days,
                               business_days_between, is_business_day, next_business_day)

TERMS: tuple[str, ...] = ("month_end", "quarter_end", "year_end", "turn", "quarter_turn",
                          "year_turn", "tax_date", "coupon_settlement", "gse_cycle")
# Number-valued calendar names (rules' expressions); both spellings mean the same and are
# recorded as "bdom".
NUMBER_TERMS: tuple[str, ...] = ("bdom", "business_day_of_month")

_QUARTER_END_MONTHS = (3, 6, 9, 12)
_TAX_MONTHS = (4, 6, 9, 12)
_GSE_DAYS = range(18, 26)


def _last_calendar_day(year: int, month: int) -> date:
    return date(year, month, _stdcal.monthrange(year, month)[1])


def _roll_forward(calendar: str, day: date) -> date:
    """``day`` when it is a business day, else the next one (the settlement convention)."""
    return day if is_business_day(calendar, day) else next_business_day(calendar, day)


def _month_end_of(calendar: str, day: date) -> date:
    """The last business day of ``day``'s month."""
    return _month_end(calendar, day.year, day.month)


@lru_cache(maxsize=4096)    # asked for every date of the month; calendars never change at run time
def _month_end(calendar: str, year: int, month: int) -> date:
    return business_day_on_or_before(calendar, _last_calendar_day(year, month))


def _is_month_end(calendar: str, day: date, months: tuple[int, ...] = tuple(range(1, 13))) -> bool:
    return day.month in months and _month_end_of(calendar, day) == day


@lru_cache(maxsize=4096)
def _month_start(calendar: str, year: int, month: int) -> date:
    """The first business day of a month."""
    first = date(year, month, 1)
    return first if is_business_day(calendar, first) else next_business_day(calendar, first)


def _is_turn(calendar: str, day: date, months: tuple[int, ...] = tuple(range(1, 13))) -> bool:
    # The first business day after a month_end is the first business day of the next month
    # (every month has business days): the turn of the previous calendar month.
    if _month_start(calendar, day.year, day.month) != day:
        return False
    return (day.month - 2) % 12 + 1 in months


def _is_coupon_settlement(calendar: str, day: date) -> bool:
    # Rolled forward, the last calendar day of the previous month can land in this month
    # (2025-08-31 -> 2025-09-02); the 15th never leaves its month.
    previous_month_end = date(day.year, day.month, 1).toordinal() - 1
    candidates = (date(day.year, day.month, 15), _last_calendar_day(day.year, day.month),
                  date.fromordinal(previous_month_end))
    return any(_roll_forward(calendar, c) == day for c in candidates)


def _is_instance(term: str, calendar: str, day: date) -> bool:
    """Whether the business day ``day`` is itself an instance of ``term``."""
    if term == "month_end":
        return _is_month_end(calendar, day)
    if term == "quarter_end":
        return _is_month_end(calendar, day, _QUARTER_END_MONTHS)
    if term == "year_end":
        return _is_month_end(calendar, day, (12,))
    if term == "turn":
        return _is_turn(calendar, day)
    if term == "quarter_turn":
        return _is_turn(calendar, day, _QUARTER_END_MONTHS)
    if term == "year_turn":
        return _is_turn(calendar, day, (12,))
    if term == "tax_date":
        return (day.month in _TAX_MONTHS
                and _roll_forward(calendar, date(day.year, day.month, 15)) == day)
    if term == "coupon_settlement":
        return _is_coupon_settlement(calendar, day)
    return day.day in _GSE_DAYS  # gse_cycle


def is_term(term: str, day: date, calendar: str = "sifma", window: int = 0) -> bool:
    """True when ``day`` is a business day of ``calendar`` within ``window`` business days (either
    side) of an instance of ``term``; ``window=0`` means ``day`` is an instance itself.

    Raises ValueError for an unknown term or calendar and for a negative window.
    """
    if term not in TERMS:
        raise ValueError(f"unknown calendar term {term!r}; known: {', '.join(TERMS)}")
    if window < 0:
        raise ValueError(f"window must be >= 0 business days, got {window}")
    if not is_business_day(calendar, day):  # also rejects an unknown calendar
        return False
    if window == 0:                         # the common case (skip_on, only_on): no scan
        return _is_instance(term, calendar, day)
    # Instances are business days, so scanning the 2*window+1 business days centred on ``day``
    # finds every instance within reach.
    start = add_business_days(calendar, day, -window)
    end = add_business_days(calendar, day, window)
    return any(_is_instance(term, calendar, d) for d in business_days(calendar, start, end))


_MONTHLY = {"month_end": (_month_end, tuple(range(1, 13))), "quarter_end": (_month_end, _QUARTER_END_MONTHS),
            "year_end": (_month_end, (12,))}
_TURNS = {"turn": tuple(range(1, 13)), "quarter_turn": _QUARTER_END_MONTHS, "year_turn": (12,)}


@lru_cache(maxsize=16384)
def _instances(term: str, calendar: str, year: int) -> frozenset[date]:
    """Every instance of ``term`` in ``year`` on ``calendar`` (all business days): a dozen
    look-ups for the month-based terms, a scan of the year's business days for the others."""
    if term in _MONTHLY:
        find, months = _MONTHLY[term]
        return frozenset(find(calendar, year, month) for month in months)
    if term in _TURNS:
        # the turn of month m is the first business day of m + 1 (of January next year for December)
        return frozenset(_month_start(calendar, year, month) for month in range(1, 13)
                         if (month - 2) % 12 + 1 in _TURNS[term])
    return frozenset(d for d in business_days(calendar, date(year, 1, 1), date(year, 12, 31))
                     if _is_instance(term, calendar, d))


def instances_on(day: date, calendar: str, terms: tuple[str, ...]) -> frozenset[str]:
    """Which of ``terms`` ``day`` is an instance of: ``is_term`` with ``window=0`` for each (an
    instance is always a business day), from each term's instances in the year, computed once:
    what skip_on/only_on read, on every date a rule is evaluated."""
    if not terms:
        return frozenset()
    year = day.year
    return frozenset(term for term in terms if day in _instances(term, calendar, year))


@lru_cache(maxsize=65536)   # replay asks the same (date, calendar) for every rule and event
def terms_on(day: date, calendar: str = "sifma", window: int = 0) -> frozenset[str]:
    """Every term ``day`` carries (see ``is_term``); empty on an ordinary day."""
    return frozenset(term for term in TERMS if is_term(term, day, calendar, window))


def business_day_of_month(day: date, calendar: str = "sifma") -> int:
    """The business days of ``day``'s month up to and including ``day``: 1 on the first business
    day of the month. For a non-business day it is the count of business days so far in the
    month (0 before the first one, e.g. Saturday 2025-11-01)."""
    first = date(day.year, day.month, 1)
    return sum(1 for _ in business_days(calendar, first, day))


def business_days_to_month_end(day: date, calendar: str = "sifma") -> int:
    """The business days of ``day``'s month strictly after ``day``: 0 on the month_end (and on
    any non-business day after it); for other non-business days, the business days still to
    come in the month."""
    return business_days_between(calendar, day, _last_calendar_day(day.year, day.month))
