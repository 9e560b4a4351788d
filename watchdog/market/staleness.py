"""When a series is late (pure: ``now`` comes in).

A value of series S for business day D is expected ``grace`` after its nominal publication
(series.nominal_publication: SOFR for D at D+1 08:00 New York). ``expected_date`` is the newest
D already due at ``now``; ``next_deadline`` the instant the next one falls due — the engine's
deadline for re-checking without any new event.

``judge`` is the one answer to "is this series stale at ``now``?" that ``watchdog status`` and
the status page give alike: market series on their publication calendar; weekly, monthly and
quarterly series by their own cadence, read from their latest dates (``cadence``); administered
rates hold until changed and are never stale.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise

from watchdog.market.calendar import business_day_on_or_before, next_business_day, previous_business_day
from watchdog.market.series import SERIES, nominal_publication
from watchdog.model.display import duration
from watchdog.model.timefmt import NEW_YORK


def expected_date(series: str, now: datetime, grace: timedelta) -> date:
    """The newest business day whose value is due (published + grace) at ``now``."""
    calendar = SERIES[series].calendar
    day = business_day_on_or_before(calendar, now.astimezone(NEW_YORK).date())
    # Publication is at most a few business days after the date (weekly/monthly series are not
    # market series), so a short walk back always ends.
    while nominal_publication(series, day) + grace > now:
        day = previous_business_day(calendar, day)
    return day


def next_deadline(series: str, now: datetime, grace: timedelta) -> datetime:
    """The first instant after ``now`` at which a newer value falls due."""
    following = next_business_day(SERIES[series].calendar, expected_date(series, now, grace))
    return nominal_publication(series, following) + grace


DEFAULT_GRACE = timedelta(hours=2)   # after a value's nominal publication, where no staleness rule says
CADENCE_GAPS = 8                     # observation gaps read to tell a series' cadence


@dataclass(frozen=True)
class Judgement:
    """What a series' calendar says at ``now``. ``due``: the observation date whose value is due
    (None when that cannot be told), ``by`` when it fell due; ``stale``: the newest known date is
    older than ``due`` (None for an administered rate, or a cadence unknown); ``cadence``:
    ``daily``, ``weekly``, ``monthly``, ``quarterly``, ``every N days`` or ``administered``."""
    cadence: str
    judged_by: str
    due: date | None = None
    by: datetime | None = None
    stale: bool | None = None


_PERIODS = {"weekly": (7, 0), "monthly": (0, 1), "quarterly": (0, 3)}   # (days, months)


def cadence(days: Sequence[str], declared: str = "") -> tuple[str, date | None]:
    """The cadence of an as-of series and the date of the observation that follows the newest
    of ``days``: the catalogue's (``declared``: weekly, monthly, quarterly) when it says, else
    read from the median gap between the last dates (7 days weekly, 28-31 monthly, 89-92
    quarterly, else every N days); ("", None) when neither can tell."""
    if not days:
        return "", None
    last = date.fromisoformat(days[-1])
    if declared in _PERIODS:
        step_days, months = _PERIODS[declared]
        return declared, (last + timedelta(days=step_days)) if step_days else _add_months(last, months)
    if len(days) < 2:
        return "", None
    dates = [date.fromisoformat(d) for d in days[-(CADENCE_GAPS + 1):]]
    gap = int(statistics.median((b - a).days for a, b in pairwise(dates)))
    if 5 <= gap <= 9:
        return "weekly", last + timedelta(days=7)
    if 28 <= gap <= 31:
        return "monthly", _add_months(last, 1)
    if 89 <= gap <= 92:
        return "quarterly", _add_months(last, 3)
    return f"every {gap} days", last + timedelta(days=max(gap, 1))


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last_day in (31, 30, 29, 28):       # the same day, or the month's last one
        try:
            return day.replace(year=year, month=month, day=min(day.day, last_day))
        except ValueError:
            continue
    raise ValueError(f"no date {months} months after {day}")   # unreachable


def judge(series: str, days: Sequence[str], now: datetime, grace: timedelta = DEFAULT_GRACE) -> Judgement:
    """Whether ``series``, whose known observation dates are ``days`` (sorted), is stale at
    ``now`` (module docstring)."""
    spec = SERIES[series]
    grace_text = duration(grace)
    if spec.join == "step":
        return Judgement("administered", "administered: holds until changed")
    if spec.join == "market":
        due = expected_date(series, now, grace)
        stale = bool(days) and date.fromisoformat(days[-1]) < due
        return Judgement("daily", f"{spec.calendar} calendar, {grace_text} grace", due,
                         nominal_publication(series, due) + grace, stale)
    every, following = cadence(days, spec.cadence)
    if following is None:
        return Judgement("", "frequency unknown (one value)")
    by = nominal_publication(series, following) + grace
    return Judgement(every, f"{every}, {grace_text} grace", following, by, by <= now)
