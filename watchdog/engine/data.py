"""Joined data: every known value per series and date, and what an expression reads from it.

One home for the join (DESIGN: a market series exactly on the date, never forward-filled; step and
as-of series from their latest value on or before it): the engine folds facts into ``SeriesData``
and evaluates rules through a ``JoinedContext``; the report and the sweep read the same classes, so
what they chart or score is what the engine judged. Pure: no I/O, no clock.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import date as Date
from decimal import Decimal
from typing import Any, NamedTuple

from watchdog.market.calterms import business_day_of_month, is_term
from watchdog.market.series import SERIES
from watchdog.rules.derived import DerivedSeries, drivers_of
from watchdog.rules.expr import EvalError


class Point(NamedTuple):
    value: Decimal
    attributes: dict[str, str]       # as in the payload: parsed only when a rule reads one
    published_at: str

    def get(self, attr: str | None) -> Decimal | None:
        if attr is None:
            return self.value
        text = self.attributes.get(attr)
        return None if text is None else Decimal(text)


class SeriesData:
    """Every known value per series and date (the latest revision wins), with sorted dates."""

    def __init__(self) -> None:
        self.points: dict[str, dict[str, Point]] = {}
        self.dates: dict[str, list[str]] = {}
        # raised by every change: what was computed from the data at one version (the engine's
        # shared expression values) holds until it moves, whoever shares this data (the sweep)
        self.version = 0

    def add(self, payload: dict[str, Any], published_at: str) -> None:
        self.version += 1
        series, date = payload["series"], payload["date"]
        by_date = self.points.get(series)
        if by_date is None:
            by_date = self.points[series] = {}
            self.dates[series] = []
        if date not in by_date:
            dates = self.dates[series]
            if not dates or dates[-1] < date:
                dates.append(date)
            else:
                bisect.insort(dates, date)
        by_date[date] = Point(Decimal(payload["value"]), payload.get("attributes") or {}, published_at)

    def forget_before(self, series: str, cutoff: str) -> None:
        """Drop the points of ``series`` dated before ``cutoff`` except the latest of them: an
        as-of join (and ``days_since``) on a date at or after ``cutoff`` may still read it."""
        dates = self.dates.get(series)
        if not dates:
            return
        drop = bisect.bisect_left(dates, cutoff) - 1
        if drop <= 0:
            return
        self.version += 1
        by_date = self.points[series]
        for date in dates[:drop]:
            del by_date[date]
        del dates[:drop]

    def at(self, series: str, date: str, join: str) -> tuple[str, Point] | None:
        by_date = self.points.get(series)
        if not by_date:
            return None
        if join == "market":
            point = by_date.get(date)
            return (date, point) if point else None
        dates = self.dates[series]
        i = bisect.bisect_right(dates, date)
        return (dates[i - 1], by_date[dates[i - 1]]) if i else None


def split_name(name: str) -> tuple[str, str | None]:
    series, _, attr = name.partition(".")
    return series, attr or None


_NAMES: dict[str, tuple[str, str | None, str]] = {}


def input_name(name: str) -> tuple[str, str | None, str]:
    """(series, attribute, join) of an input name, parsed once."""
    found = _NAMES.get(name)
    if found is None:
        series, attr = split_name(name)
        found = _NAMES[name] = (series, attr, SERIES[series].join)
    return found



class JoinedContext:
    """What an expression may read at a date (expr.EvalContext), for one rule: joined values,
    the rule's own evaluation dates for windows, and calendar terms on its driver's calendar.
    The engine evaluates through it, and the report charts through it, so a chart shows exactly
    the values the rule was judged on."""

    def __init__(self, data: SeriesData, names: Iterable[str], drivers: Iterable[str], calendar: str):
        # Stateless (no memo: a read is a dict look-up or a bisect, cheaper than memoising it),
        # so the engine keeps one per rule instead of building one per evaluation.
        self.data, self.calendar = data, calendar
        self.points = data.points
        self.names = {name: input_name(name) for name in names}   # one look-up per read
        self.drivers = sorted(drivers)

    def value(self, name: str, date: str) -> Decimal | None:
        series, attr, join = self.names.get(name) or input_name(name)
        if join == "market":                 # the common read: a market value on ``date``
            by_date = self.points.get(series)
            point = by_date.get(date) if by_date else None
        else:
            found = self.data.at(series, date, join)
            point = found[1] if found else None
        if point is None:
            return None
        return point.value if attr is None else point.get(attr)

    def history(self, date: str, n: int) -> list[str]:
        """The last ``n`` evaluation dates of the rule ending at ``date``: its drivers' dates."""
        if len(self.drivers) == 1:           # the common case: already sorted and distinct
            dates = self.data.dates.get(self.drivers[0], [])
            end = bisect.bisect_right(dates, date)
            return dates[max(0, end - n):end]
        found: set[str] = set()
        for series in self.drivers:
            dates = self.data.dates.get(series, [])
            end = bisect.bisect_right(dates, date)
            found.update(dates[max(0, end - n):end])
        return sorted(found)[-n:]

    def latest_date(self, name: str, date: str) -> str | None:
        found = self.data.at(split_name(name)[0], date, "asof")
        return found[0] if found else None

    def term(self, term: str, date: str, window: int) -> bool:
        return is_term(term, Date.fromisoformat(date), self.calendar, window)

    def business_day_of_month(self, date: str) -> int:
        return business_day_of_month(Date.fromisoformat(date), self.calendar)

    def evaluation_dates(self) -> list[str]:
        """Every date the rule is evaluated on: its drivers' dates, in order."""
        if len(self.drivers) == 1:
            return list(self.data.dates.get(self.drivers[0], []))
        return sorted({d for series in self.drivers for d in self.data.dates.get(series, [])})


def derived_values(item: DerivedSeries, catalogue: dict[str, str], data: SeriesData,
                   since: str | None = None, until: str | None = None,
                   last: int | None = None) -> list[tuple[str, Decimal]]:
    """A derived series' values on its evaluation dates (within ``since``..``until``; with
    ``last``, only the latest ``last`` computable ones, evaluated from the end), computed from
    ``data`` through the same join and windows a rule reading it is judged on. A date it cannot
    be computed on (an input missing, a window longer than the history) is left out."""
    compiled = item.compiled(catalogue)
    drivers = drivers_of(compiled.names)
    ctx = JoinedContext(data, compiled.names, drivers, SERIES[drivers[0]].calendar)
    dates = [d for d in ctx.evaluation_dates()
             if not ((since and d < since) or (until and d > until))]
    out: list[tuple[str, Decimal]] = []
    for date in (reversed(dates) if last else dates):
        try:
            value = compiled.evaluate_at(ctx, date)
        except EvalError:
            continue
        out.append((date, value))   # type: ignore[arg-type]  # a derived series is a number
        if last and len(out) == last:
            break
    return out[::-1] if last else out
