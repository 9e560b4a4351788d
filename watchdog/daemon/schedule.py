"""Publication-aware polling decisions (pure: ``now`` comes in; no clock, no scheduler, no I/O).

A source serves a few series (the NY Fed: sofr, tgcr, bgcr, effr, obfr …). Each series publishes
the value for business day D at its nominal instant (``series.nominal_publication``: SOFR for D
at D+1 08:00 New York). ``plan_poll`` turns "what is recorded" and ``now`` into the next instant
the source should be polled:

1. **late**: a series' latest published date (by its calendar) is newer than what is recorded →
   poll now, then every ``retry_every`` after the last poll, until it is in;
2. **publication**: otherwise sleep until the next nominal publication of any of its series;
3. **revision**: plus one afternoon re-poll on each publication day at ``revision_poll`` New York
   time, because the NY Fed republishes a same-day correction at about 14:30 ET.
The earliest of the three wins. Nothing is polled for a series on a day its calendar is closed:
no SOFR poll on Good Friday or on a SIFMA holiday. Only ``market`` series (one value per business
day) can be late; ``step`` and ``asof`` series (change points, weekly/monthly) are polled at each
of their nominal publication instants but never chased.

How the daemon uses this (the wiring lives in the daemon, not here): one APScheduler 3 job per
source with a ``DateTrigger``, ``id`` = the source name and :func:`apscheduler_job_defaults`.
The job polls, appends what it got, then computes ``plan_poll`` again from the latest recorded
dates (passing ``last_poll`` = when this poll started) and re-arms itself with
``add_job(poll, DateTrigger(run_date=jittered(plan.at, source, 30)), id=source,
replace_existing=True)``. A start-up poll of each source is the daemon's business: with
everything recorded this module alone would wait for the next publication.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
import hashlib

from watchdog.market.calendar import business_day_on_or_before, is_business_day, next_business_day
from watchdog.market.calendar import previous_business_day
from watchdog.market.series import SeriesSpec, nominal_publication, spec
from watchdog.model.timefmt import NEW_YORK, UTC, new_york, utc_text

# A revision poll is searched this many days ahead: closures last a few days at most (a weekend
# plus a holiday, or an unscheduled closure), so two weeks is ample and bounds the loop.
_REVISION_HORIZON_DAYS = 14


@dataclass(frozen=True)
class PollPlan:
    """When to poll next and why (for logs, ``/metrics`` and tests)."""
    at: datetime                # aware UTC, before jitter
    reason: str                 # "late" | "publication" | "revision"
    series: tuple[str, ...]     # the series that asked for this instant


def _aware(now: datetime) -> datetime:
    """``now`` in UTC; a naive time is refused (guessing a zone is how look-ahead bugs start)."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: `now` must carry a zone")
    return now.astimezone(UTC)


def _latest_due(s: SeriesSpec, now: datetime) -> date:
    """The newest business day of ``s``'s calendar whose nominal publication is <= now."""
    # Publication is never before the observation date itself, so start at today's NY date.
    day = business_day_on_or_before(s.calendar, now.astimezone(NEW_YORK).date())
    while nominal_publication(s.name, day) > now:
        day = previous_business_day(s.calendar, day)
    return day


def latest_published_date(series: str, now: datetime) -> date | None:
    """The newest observation date of ``series`` whose nominal publication is at or before ``now``.

    ``None`` for ``step`` and ``asof`` series: they do not have one value per business day (a
    step series records change points, an asof series is weekly or monthly and the catalogue has
    no frequency), so the calendar cannot say which date is due.
    """
    s = spec(series)
    if s.join != "market":
        return None
    return _latest_due(s, _aware(now))


def next_publication(series: str, now: datetime) -> datetime:
    """The first nominal publication instant of ``series`` strictly after ``now``."""
    s = spec(series)
    after = next_business_day(s.calendar, _latest_due(s, _aware(now)))
    return nominal_publication(series, after)


def _late(names: Iterable[str], recorded: Mapping[str, date | None],
          now: datetime) -> tuple[str, ...]:
    late = []
    for name in names:
        due = latest_published_date(name, now)
        have = recorded.get(name)
        if due is not None and (have is None or have < due):
            late.append(name)
    return tuple(late)


def _revision(names: Iterable[str], now: datetime, at: tuple[int, int]) -> PollPlan | None:
    """The next revision re-poll strictly after ``now``: a business day of some market series
    whose publication time that day is before the re-poll (re-polling the DTS at 14:45 before
    its 16:00 release would catch nothing)."""
    specs = [spec(n) for n in names]
    specs = [s for s in specs if s.join == "market" and s.publish_at < at]
    day = now.astimezone(NEW_YORK).date()
    for _ in range(_REVISION_HORIZON_DAYS):
        instant = new_york(day, *at)
        publishing = tuple(s.name for s in specs if is_business_day(s.calendar, day))
        if publishing and instant > now:
            return PollPlan(instant, "revision", publishing)
        day += timedelta(days=1)
    return None


def plan_poll(series_names: Iterable[str], latest_recorded: Mapping[str, date | None],
              now: datetime, *, last_poll: datetime | None = None,
              retry_every: timedelta = timedelta(minutes=5),
              revision_poll: tuple[int, int] | None = (14, 45)) -> PollPlan:
    """When the source serving ``series_names`` should poll next (see the module docstring).

    ``latest_recorded``: the newest observation date in the log per series (missing = none).
    ``last_poll``: when this source last polled; a late series is retried ``retry_every`` after
    it, or at once when there was none. ``revision_poll=None`` turns the re-poll off.
    """
    names = tuple(dict.fromkeys(series_names))
    if not names:
        raise ValueError("plan_poll needs at least one series")
    if retry_every <= timedelta(0):
        raise ValueError("retry_every must be positive")
    now = _aware(now)
    plans = []
    late = _late(names, latest_recorded, now)
    if late:
        at = now if last_poll is None else max(now, _aware(last_poll) + retry_every)
        plans.append(PollPlan(at, "late", late))
    upcoming = {name: next_publication(name, now) for name in names}
    first = min(upcoming.values())
    plans.append(PollPlan(first, "publication", tuple(n for n in names if upcoming[n] == first)))
    if revision_poll is not None:
        revision = _revision(names, now, revision_poll)
        if revision is not None:
            plans.append(revision)
    # Earliest wins; on a tie the order above (late, publication, revision) names the reason.
    return min(plans, key=lambda plan: plan.at)


def next_poll(series_names: Iterable[str], latest_recorded: Mapping[str, date | None],
              now: datetime, *, last_poll: datetime | None = None,
              retry_every: timedelta = timedelta(minutes=5),
              revision_poll: tuple[int, int] | None = (14, 45)) -> datetime:
    """``plan_poll(...).at``: the instant (aware UTC, before jitter) of the next poll."""
    return plan_poll(series_names, latest_recorded, now, last_poll=last_poll,
                     retry_every=retry_every, revision_poll=revision_poll).at


def jittered(instant: datetime, key: str, max_seconds: float) -> datetime:
    """``instant`` delayed by a deterministic offset in [0, max_seconds).

    The offset is a hash of ``key`` (the source name) and the instant, so two sources do not hit
    a server in the same second, and a test or an audit recomputes the same time. Only ever
    later: polling before the nominal publication would find nothing.
    """
    instant = _aware(instant)
    span = int(max_seconds * 1_000_000)
    if span <= 0:
        return instant
    digest = hashlib.sha256(f"{key}\n{utc_text(instant)}".encode()).digest()
    return instant + timedelta(microseconds=int.from_bytes(digest[:8], "big") % span)


def apscheduler_job_defaults() -> dict[str, object]:
    """``job_defaults`` for the daemon's APScheduler 3 scheduler (one DateTrigger job per source).

    - ``coalesce``: runs missed while the loop was busy collapse into one poll;
    - ``max_instances=1``: a slow poll is never overlapped by the next one of the same source;
    - ``misfire_grace_time=None``: a late run still runs, however late. A DateTrigger job fires
      once and re-arms itself; with a finite grace a run missed (laptop suspend, a long catch-up)
      would be dropped and the source would never poll again until a restart. Polling late is
      always right here, because ``next_poll`` recomputes what is due from the log.
    """
    return {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
