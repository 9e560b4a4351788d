"""Mute intervals (Alertmanager's time intervals): when a route's notifications are held.

A mute is a policy on time, not on alerts: weekdays, clock ranges in a zone, and business days of
a calendar. ``muted`` says whether one is in force at ``now``; ``mute_ends_at`` when it lifts, so
a held flush is re-decided then. Pure: every decision takes ``now``.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from watchdog.alerting.dispatch import alert_labels, matches
from watchdog.market.calendar import is_business_day
from watchdog.model.config import MuteInterval, Route
from watchdog.model.timefmt import aware

_UTC = ZoneInfo("UTC")


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _clock(text: str) -> time | None:
    """"HH:MM" as a time; "24:00" as None (the end of the day)."""
    return None if text == "24:00" else time.fromisoformat(text)


def _in_range(t: time, start: str, end: str) -> bool:
    a, b = _clock(start), _clock(end)
    assert a is not None
    if b is None:
        return t >= a
    return a <= t < b if a < b else (t >= a or t < b)


def muted(now: datetime, mute: MuteInterval) -> bool:
    """Whether ``mute`` is in force at ``now``: the local time in its time zone satisfies every
    condition it gives: a weekday named, a time range, a day its calendar is closed."""
    local = aware(now).astimezone(_zone(mute.timezone))
    day = local.date()
    if mute.weekdays and day.weekday() not in mute.weekday_numbers():
        return False
    if mute.calendar is not None and is_business_day(mute.calendar, day):
        return False
    if mute.times:
        wall = local.time().replace(tzinfo=None)
        if not any(_in_range(wall, r.start, r.end) for r in mute.times):
            return False
    return True


MUTE_SEARCH_DAYS = 400


def mute_ends_at(now: datetime, mute: MuteInterval) -> datetime | None:
    """The first instant after ``now`` at which ``mute`` is no longer in force (a local
    midnight or the end of a time range), or None when it is not in force at ``now`` or does not
    end within ``MUTE_SEARCH_DAYS`` days. The daemon's next wake-up for a held flush."""
    if not muted(now, mute):
        return None
    zone = _zone(mute.timezone)
    today = now.astimezone(zone).date()
    for offset in range(MUTE_SEARCH_DAYS + 1):
        day = today + timedelta(days=offset)
        for instant in _boundaries(day, mute, zone):
            if instant > now and not muted(instant, mute):
                return instant
    return None


def _boundaries(day: date, mute: MuteInterval, zone: ZoneInfo) -> list[datetime]:
    """The instants of ``day`` where ``muted`` can change, in order."""
    walls = {time(0)}
    for r in mute.times:
        for text in (r.start, r.end):
            t = _clock(text)
            if t is not None:
                walls.add(t)
    return sorted({_local_instant(day, t, zone) for t in walls})


def _local_instant(day: date, t: time, zone: ZoneInfo) -> datetime:
    """The instant of the wall time ``day t``: a repeated wall time (autumn) is its first
    occurrence; a skipped one (in a spring-forward gap) is the end of the gap, the instant the
    wall clock passes it."""
    local = datetime.combine(day, t, zone)
    early = local.astimezone(_UTC)
    if early.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return early
    late = local.replace(fold=1).astimezone(_UTC)
    lo, hi = min(early, late), max(early, late)      # the transition lies between the two
    before = lo.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0)


def applicable_mutes(alert: Mapping[str, Any], route: Route | None,
                     mutes: Mapping[str, MuteInterval]) -> list[str]:
    """The names of the mute intervals that apply to a delivery of ``alert`` on ``route``: the
    route's ``mute`` list when it has one (``[]``: never muted), else every interval; either way
    only those whose ``match``/``match_re`` the alert satisfies."""
    names = route.mute if route is not None and route.mute is not None else sorted(mutes)
    labels = alert_labels(alert)
    return [n for n in names if n in mutes and matches(labels, mutes[n].match, mutes[n].match_re)]


def _mute_text(mute: MuteInterval) -> str:
    parts = [mute.timezone]
    if mute.weekdays:
        parts.append(",".join(mute.weekdays))
    if mute.times:
        parts.append(",".join(f"{r.start}-{r.end}" for r in mute.times))
    if mute.calendar:
        parts.append(f"{mute.calendar} closed")
    return " ".join(parts)
