"""When a market series is late (pure: ``now`` comes in).

A value of series S for business day D is expected ``grace`` after its nominal publication
(series.nominal_publication: SOFR for D at D+1 08:00 New York). ``expected_date`` is the newest
D already due at ``now``; ``next_deadline`` the instant the next one falls due — the engine's
deadline for re-checking without any new event.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from watchdog.market.calendar import business_day_on_or_before, next_business_day, previous_business_day
from watchdog.market.series import SERIES, nominal_publication
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
