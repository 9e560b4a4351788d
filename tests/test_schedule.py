"""Publication-aware polling: when each source polls, from its series' calendars and what is
recorded. Times are written in New York wall time (``ny``) as the desk reads them."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest

from watchdog.market.calendar import is_business_day
from watchdog.daemon.schedule import (PollPlan, apscheduler_job_defaults, jittered,
                               latest_published_date, next_poll, next_publication, plan_poll)
from watchdog.model.timefmt import NEW_YORK, new_york

D = date.fromisoformat
NYFED_RATES = ("sofr", "tgcr", "bgcr")


def ny(text: str) -> datetime:
    """'2025-11-03 08:00' in New York -> aware UTC."""
    day, clock = text.split()
    hour, minute = map(int, clock.split(":"))
    return new_york(D(day), hour, minute)


def everything_recorded(names, now):
    return {name: latest_published_date(name, now) for name in names}


# ---- latest_published_date --------------------------------------------------------------------

def test_sofr_for_friday_becomes_due_at_monday_0800():
    assert latest_published_date("sofr", ny("2025-11-03 07:59")) == D("2025-10-30")
    assert latest_published_date("sofr", ny("2025-11-03 08:00")) == D("2025-10-31")


def test_onrrp_is_due_the_same_day_at_1315():
    assert latest_published_date("onrrp", ny("2025-10-31 13:14")) == D("2025-10-30")
    assert latest_published_date("onrrp", ny("2025-10-31 13:15")) == D("2025-10-31")


def test_effr_for_good_friday_is_due_on_monday():
    # EFFR follows the Fed calendar: Good Friday 2025-04-18 is an EFFR date, published Monday 09:00.
    assert latest_published_date("effr", ny("2025-04-18 09:00")) == D("2025-04-17")
    assert latest_published_date("effr", ny("2025-04-21 08:59")) == D("2025-04-17")
    assert latest_published_date("effr", ny("2025-04-21 09:00")) == D("2025-04-18")
    # ... while SOFR has no Good Friday date: Thursday's SOFR is published on Monday.
    assert latest_published_date("sofr", ny("2025-04-21 08:00")) == D("2025-04-17")


def test_series_without_one_value_per_business_day_have_no_due_date():
    assert latest_published_date("iorb", ny("2025-11-03 12:00")) is None       # step
    assert latest_published_date("reserves", ny("2025-11-03 12:00")) is None   # weekly asof


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="naive"):
        latest_published_date("sofr", datetime(2025, 11, 3, 8))


# ---- publication polls ------------------------------------------------------------------------

def test_sofr_for_friday_2025_10_31_is_polled_for_from_monday_0800_exactly():
    plan = plan_poll(["sofr"], {"sofr": D("2025-10-30")}, ny("2025-11-01 12:00"))
    assert plan == PollPlan(ny("2025-11-03 08:00"), "publication", ("sofr",))
    assert plan.at == datetime(2025, 11, 3, 13, 0, tzinfo=timezone.utc)   # EST after 2025-11-02


def test_no_sofr_poll_on_good_friday():
    now = ny("2025-04-18 07:00")
    at = next_poll(NYFED_RATES, everything_recorded(NYFED_RATES, now), now)
    assert at == ny("2025-04-21 08:00")      # Monday, for Thursday's rates
    local = at.astimezone(NEW_YORK)
    assert local.date() != D("2025-04-18") and local.weekday() < 5


@pytest.mark.parametrize("holiday, next_morning", [
    ("2025-10-13", "2025-10-14 08:00"),     # Columbus Day: SIFMA and Fed closed
    ("2026-07-03", "2026-07-06 08:00"),     # SIFMA closed, Fed open
    ("2026-04-03", "2026-04-06 08:00"),     # Good Friday with only a SIFMA early close
])
def test_no_sofr_poll_on_a_sifma_holiday(holiday, next_morning):
    now = ny(f"{holiday} 06:00")
    assert next_poll(["sofr"], everything_recorded(["sofr"], now), now) == ny(next_morning)


def test_sofr_polls_only_fall_on_sifma_business_days_all_year():
    day = D("2025-01-01")
    while day.year == 2025:
        for hour in (7, 12):
            now = new_york(day, hour)
            at = next_poll(NYFED_RATES, everything_recorded(NYFED_RATES, now), now)
            local = at.astimezone(NEW_YORK)
            assert at > now
            assert is_business_day("sifma", local.date()), (now, at)
            assert (local.hour, local.minute) in ((8, 0), (14, 45)), (now, at)
        day += timedelta(days=1)


def test_effr_is_published_and_polled_on_good_friday_and_the_next_business_day():
    # Thursday's EFFR is published on Good Friday 09:00 (the Fed is open) ...
    thursday = next_poll(["effr"], {"effr": D("2025-04-16")}, ny("2025-04-17 15:00"))
    assert thursday == ny("2025-04-18 09:00")
    # ... and once in, the Good Friday EFFR itself is polled for on Monday 09:00.
    plan = plan_poll(["effr"], {"effr": D("2025-04-17")}, ny("2025-04-18 15:00"))
    assert plan == PollPlan(ny("2025-04-21 09:00"), "publication", ("effr",))
    late = plan_poll(["effr"], {"effr": D("2025-04-17")}, ny("2025-04-21 09:00"))
    assert late == PollPlan(ny("2025-04-21 09:00"), "late", ("effr",))


def test_a_mixed_source_polls_effr_on_good_friday_but_not_sofr():
    now = ny("2025-04-18 07:00")
    names = ("sofr", "effr")
    plan = plan_poll(names, everything_recorded(names, now), now)
    assert plan == PollPlan(ny("2025-04-18 09:00"), "publication", ("effr",))


# ---- late values and retries ------------------------------------------------------------------

def test_a_late_value_is_polled_at_once_then_every_retry_every():
    recorded = {"sofr": D("2025-10-30")}
    start = ny("2025-11-03 08:00")
    assert plan_poll(["sofr"], recorded, start) == PollPlan(start, "late", ("sofr",))
    polled, polls = start, []
    for _ in range(4):     # the daemon polls, finds nothing, asks again a second later
        polled = next_poll(["sofr"], recorded, polled + timedelta(seconds=1), last_poll=polled)
        polls.append(polled)
    assert polls == [start + timedelta(minutes=5 * k) for k in (1, 2, 3, 4)]
    faster = next_poll(["sofr"], recorded, start, last_poll=start, retry_every=timedelta(seconds=90))
    assert faster == start + timedelta(seconds=90)


def test_a_late_value_after_a_restart_is_polled_at_once():
    now = ny("2025-11-03 10:17")
    # last poll long ago (Friday's revision poll): no reason to wait another retry interval
    assert next_poll(["sofr"], {"sofr": D("2025-10-30")}, now, last_poll=ny("2025-10-31 14:45")) == now


def test_once_recorded_only_the_revision_poll_remains_that_day():
    recorded = {"sofr": D("2025-10-31")}
    first = plan_poll(["sofr"], recorded, ny("2025-11-03 08:05"), last_poll=ny("2025-11-03 08:05"))
    assert first == PollPlan(ny("2025-11-03 14:45"), "revision", ("sofr",))
    after = plan_poll(["sofr"], recorded, ny("2025-11-03 14:45") + timedelta(seconds=3))
    assert after == PollPlan(ny("2025-11-04 08:00"), "publication", ("sofr",))


def test_revision_poll_can_be_turned_off():
    at = next_poll(["sofr"], {"sofr": D("2025-10-31")}, ny("2025-11-03 08:05"), revision_poll=None)
    assert at == ny("2025-11-04 08:00")


def test_no_revision_poll_before_a_later_publication():
    # The DTS comes out at 16:00: re-polling it at 14:45 would catch nothing.
    now = ny("2025-11-03 08:00")
    assert next_poll(["tga"], everything_recorded(["tga"], now), now) == ny("2025-11-03 16:00")


def test_late_series_are_named_and_weekly_series_never_count_as_late():
    now = ny("2025-11-03 09:30")
    recorded = {"sofr": D("2025-10-31"), "tgcr": D("2025-10-30"), "reserves": D("2025-10-29")}
    plan = plan_poll(["sofr", "tgcr", "effr", "reserves"], recorded, now)
    assert plan == PollPlan(now, "late", ("tgcr", "effr"))     # effr: never recorded


# ---- daylight saving time ---------------------------------------------------------------------

@pytest.mark.parametrize("friday, monday_utc, revision_utc", [
    ("2025-03-07", datetime(2025, 3, 10, 12, 0), datetime(2025, 3, 10, 18, 45)),   # EDT from 03-09
    ("2025-10-31", datetime(2025, 11, 3, 13, 0), datetime(2025, 11, 3, 19, 45)),   # EST from 11-02
])
def test_dst_transitions_keep_new_york_wall_time(friday, monday_utc, revision_utc):
    monday, revision = (t.replace(tzinfo=timezone.utc) for t in (monday_utc, revision_utc))
    thursday = D(friday) - timedelta(days=1)
    assert next_poll(["sofr"], {"sofr": thursday}, ny(f"{friday} 15:00")) == monday
    assert next_poll(["sofr"], {"sofr": D(friday)}, monday + timedelta(minutes=1)) == revision
    assert monday.astimezone(NEW_YORK).hour == 8 and revision.astimezone(NEW_YORK).hour == 14


def test_next_publication_is_strictly_after_now():
    assert next_publication("sofr", ny("2025-11-03 08:00")) == ny("2025-11-04 08:00")
    assert next_publication("sofr", ny("2025-11-03 07:59")) == ny("2025-11-03 08:00")


# ---- jitter and APScheduler defaults ----------------------------------------------------------

def test_jitter_is_deterministic_bounded_and_only_later():
    at = ny("2025-11-03 08:00")
    offsets = {key: jittered(at, key, 30) - at for key in ("nyfed", "fred", "fiscaldata", "speeches")}
    assert offsets == {key: jittered(at, key, 30) - at for key in offsets}    # reproducible
    assert all(timedelta(0) <= off < timedelta(seconds=30) for off in offsets.values())
    assert len(set(offsets.values())) == len(offsets)                          # sources spread out
    tomorrow = at + timedelta(days=1)
    assert jittered(at, "nyfed", 30) - at != jittered(tomorrow, "nyfed", 30) - tomorrow   # per instant
    assert jittered(at, "nyfed", 0) == at


def test_plan_poll_refuses_nonsense():
    with pytest.raises(ValueError):
        plan_poll([], {}, ny("2025-11-03 08:00"))
    with pytest.raises(ValueError):
        plan_poll(["sofr"], {}, ny("2025-11-03 08:00"), retry_every=timedelta(0))
    with pytest.raises(KeyError, match="unknown series"):
        plan_poll(["sofrr"], {}, ny("2025-11-03 08:00"))


def test_job_defaults_let_a_late_date_trigger_still_run():
    # The job re-arms itself; if a misfired run were dropped the source would go silent.
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.date import DateTrigger

    defaults = apscheduler_job_defaults()
    assert defaults["coalesce"] is True and defaults["max_instances"] == 1
    ran = threading.Event()
    scheduler = BackgroundScheduler(job_defaults=defaults, timezone="UTC")
    scheduler.start()
    try:
        an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
        scheduler.add_job(ran.set, DateTrigger(run_date=an_hour_ago), id="nyfed")
        assert ran.wait(5), "a DateTrigger an hour late was dropped as a misfire"
        deadline = time.monotonic() + 5
        while scheduler.get_job("nyfed") is not None and time.monotonic() < deadline:
            time.sleep(0.01)     # let the scheduler retire the one-shot job before shutting down
    finally:
        scheduler.shutdown()


def test_instants_come_back_in_utc_whatever_zone_now_is_given_in():
    now = ny("2025-11-03 08:00").astimezone(NEW_YORK)
    plan = plan_poll(["sofr"], {"sofr": D("2025-10-30")}, now)
    assert plan.at == now and plan.at.tzinfo == timezone.utc
    assert jittered(now, "nyfed", 30).tzinfo == timezone.utc
