"""Business-day calendars, checked against the shipped history: for every weekday a daily series
covers, "the series' calendar says business day" <=> "the file has a value". The files are read
directly (csv/json), not through the importer, so an importer bug cannot hide a calendar bug."""
from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import holidays
import pytest
from dateutil.easter import easter

from watchdog.market import calendar
from watchdog.market.calendar import (OVERRIDES, add_business_days, business_day_on_or_before,
                               business_days, business_days_between, is_business_day,
                               next_business_day, previous_business_day)
from watchdog.market.series import spec

HISTORY = Path(__file__).resolve().parent.parent / "data" / "history"
D = date.fromisoformat


# ---- readers: the set of dates on which each file has a value --------------------------------

def fred_csv(name: str) -> set[date]:
    """FRED CSV (``observation_date,X`` with empty cells, or ``Date,Value`` without holiday rows)."""
    with open(HISTORY / name, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    return {D(day) for day, value in rows if value.strip() not in ("", ".")}


def nyfed_json(name: str) -> set[date]:
    rates = json.loads((HISTORY / "nyfed" / name).read_text(encoding="utf-8"))["refRates"]
    return {D(row["effectiveDate"]) for row in rates if row.get("percentRate") not in (None, "")}


# The TGA closing balance has a different account name in each of the DTS's three eras.
TGA_ACCOUNTS = ("Federal Reserve Account",                          # .. 2021-09-30
                "Treasury General Account (TGA)",                   # 2021-10-01 .. 2022-04-15
                "Treasury General Account (TGA) Closing Balance")   # 2022-04-18 ..


def dts_tga() -> set[date]:
    path = HISTORY / "treasury" / "DTS_OpCashBal_20210624_20260623.csv"
    with open(path, newline="", encoding="utf-8-sig") as handle:   # the export has a BOM
        return {D(row["Record Date"]) for row in csv.DictReader(handle)
                if row["Type of Account"] in TGA_ACCOUNTS and row["Opening Balance Today"].strip()}


def disagreements(calendar_name: str, published: set[date], start: date, end: date) -> dict[date, str]:
    """Every day in [start, end] where the calendar and the record disagree."""
    out = {}
    day = start
    while day <= end:
        open_ = is_business_day(calendar_name, day)
        if open_ and day not in published:
            out[day] = "missing on a business day"
        elif not open_ and day in published:
            out[day] = "value on a closed day"
        day += timedelta(days=1)
    return out


# ---- anomalies of single files (the calendar stays right; see each reason) --------------------

# rates/EFFR.csv (FRED EFFR, fredapi-derived): also noted in data/history/PROVENANCE.md.
EFFR_ANOMALIES = {
    # Presidents Day, a Fed holiday: the value 1.73 repeats Friday 2002-02-15's, a carried-forward
    # row rather than a fixing (no other Fed holiday in 26 years has a row).
    D("2002-02-18"): "value on a closed day",
    # Gaps on ordinary Fed business days: no holiday or closure, both neighbours have a value.
    D("2001-03-27"): "missing on a business day",
    D("2003-10-10"): "missing on a business day",
    D("2003-10-30"): "missing on a business day",
    D("2003-10-31"): "missing on a business day",
    D("2006-11-06"): "missing on a business day",
    D("2006-11-14"): "missing on a business day",
}

# facilities/RRPONTSYD.csv (FRED ON RRP take-up): no value on the eve of Good Friday in 2014-2019
# nor on 2018-12-04, the eve of the unscheduled 2018-12-05 closure (national day of mourning for
# G. H. W. Bush), although the bond market was open (at most a SIFMA 14:00 early close; SOFR,
# which starts 2018-04-03, is published on 2018-12-04 and 2019-04-18, asserted below). Every Good
# Friday eve from 2020 on has a value, and so does the eve of other closures then (2015-07-02).
# The operation on those days matured after a closure on which the Fed was open; the NY Fed
# operations fixture labels the 2023-04-06 one "Overnight" (4 calendar days). Our reading, not
# verified: before 2020 FRED's overnight series left such operations out. A record quirk, not a
# closed day: the calendar stays SIFMA.
ONRRP_ANOMALIES = {day: "missing on a business day" for day in map(D, (
    "2014-04-17", "2015-04-02", "2016-03-24", "2017-04-13", "2018-03-29", "2019-04-18",
    "2018-12-04"))}

# Daily ON RRP operations began on 2013-09-23; before it the file has a few ad-hoc operations a
# year (10 in 2003, 1 in 2010) and no business-day calendar to check.
ONRRP_DAILY_SINCE = D("2013-09-23")

CASES = [
    # series, the file's value dates, first day to check, known anomalies
    ("sofr", lambda: fred_csv("rates/SOFR.csv"), None, {}),
    ("sofr", lambda: nyfed_json("sofr_rate_percentiles_2018-04-03_2026-09-03.json"), None, {}),
    ("tgcr", lambda: nyfed_json("tgcr_rate_percentiles_2018-04-03_2026-09-04.json"), None, {}),
    ("bgcr", lambda: nyfed_json("bgcr_rate_percentiles_2018-04-03_2026-09-04.json"), None, {}),
    ("effr", lambda: fred_csv("rates/EFFR.csv"), None, EFFR_ANOMALIES),
    ("onrrp", lambda: fred_csv("facilities/RRPONTSYD.csv"), ONRRP_DAILY_SINCE, ONRRP_ANOMALIES),
    ("tga", dts_tga, None, {}),
]


@pytest.mark.parametrize("series, read, since, anomalies", CASES,
                         ids=["sofr-fred", "sofr-nyfed", "tgcr", "bgcr", "effr", "onrrp", "tga"])
def test_series_calendar_matches_every_day_of_the_record(series, read, since, anomalies):
    published = read()
    start = since or min(published)
    found = disagreements(spec(series).calendar, published, start, max(published))
    assert found == anomalies


def test_record_covers_the_periods_claimed():
    # Guards against a reader silently returning too little (an empty set matches nothing wrong).
    assert len(fred_csv("rates/SOFR.csv")) == 2079
    assert len(nyfed_json("sofr_rate_percentiles_2018-04-03_2026-09-03.json")) == 2104
    assert len(fred_csv("rates/EFFR.csv")) == 6508
    assert min(dts_tga()) == D("2021-06-24") and max(dts_tga()) == D("2026-06-23")
    assert len(dts_tga()) == 1252


def test_onrrp_anomalies_are_open_bond_market_days():
    sofr = nyfed_json("sofr_rate_percentiles_2018-04-03_2026-09-03.json")
    assert {D("2018-12-04"), D("2019-04-18")} <= sofr
    # ... and from 2020 every Good Friday eve has an ON RRP value.
    rrp = fred_csv("facilities/RRPONTSYD.csv")
    for year in range(2020, 2027):
        assert easter(year) - timedelta(days=3) in rrp


def test_sifma_series_skip_every_good_friday_in_the_record():
    sofr, effr = fred_csv("rates/SOFR.csv"), fred_csv("rates/EFFR.csv")
    rrp = fred_csv("facilities/RRPONTSYD.csv")
    for year in range(2019, 2026):
        good_friday = easter(year) - timedelta(days=2)
        assert good_friday not in sofr and good_friday not in rrp
        assert good_friday in effr       # EFFR (Fed calendar) is published for Good Friday


# ---- named days -------------------------------------------------------------------------------

def test_good_friday_2026_early_close_is_not_a_sofr_business_day():
    # SIFMA recommends only a 12:00 close, so the library calls it a half day; SOFR still skips it.
    half_days = holidays.financial_holidays("XSIF", years=2026, categories=("half_day",))
    assert "12:00" in half_days[D("2026-04-03")]
    assert not is_business_day("sifma", D("2026-04-03"))
    assert is_business_day("fed", D("2026-04-03"))
    assert next_business_day("sifma", D("2026-04-02")) == D("2026-04-06")


def test_2026_07_03_fed_open_sifma_closed():
    # July 4 2026 is a Saturday: SIFMA observes it on Friday, the Fed Banks do not.
    assert is_business_day("fed", D("2026-07-03"))
    assert not is_business_day("sifma", D("2026-07-03"))


def test_saturday_christmas_2021_fed_open_sifma_closed():
    assert is_business_day("fed", D("2021-12-24")) and not is_business_day("sifma", D("2021-12-24"))


@pytest.mark.parametrize("day", ["2025-10-13", "2025-11-11"])
def test_columbus_and_veterans_day_closed_for_both(day):
    assert not is_business_day("sifma", D(day)) and not is_business_day("fed", D(day))


@pytest.mark.parametrize("cal", ["sifma", "fed"])
def test_next_business_day_across_thanksgiving(cal):
    assert next_business_day(cal, D("2025-11-26")) == D("2025-11-28")   # Fri early close is open
    assert previous_business_day(cal, D("2025-11-28")) == D("2025-11-26")
    assert add_business_days(cal, D("2025-11-26"), 2) == D("2025-12-01")


@pytest.mark.parametrize("day", ["2025-01-09", "2025-04-17", "2025-11-28", "2025-12-24", "2025-12-31"])
def test_sifma_early_closes_are_business_days(day):
    assert is_business_day("sifma", D(day))


def test_good_friday_closed_for_sifma_open_for_fed_every_year():
    for year in range(2000, 2031):
        good_friday = easter(year) - timedelta(days=2)
        assert not is_business_day("sifma", good_friday)
        assert is_business_day("fed", good_friday)


def test_daily_calendar_has_weekends():
    assert is_business_day("daily", D("2025-11-01"))      # a Saturday
    assert next_business_day("daily", D("2025-11-01")) == D("2025-11-02")


def test_unknown_calendar_is_refused_even_on_weekends():
    with pytest.raises(ValueError, match="unknown calendar 'nyse'"):
        is_business_day("nyse", D("2025-11-01"))


def test_helpers_agree_with_each_other():
    days = list(business_days("sifma", D("2025-12-20"), D("2026-01-05")))
    assert days == list(map(D, ["2025-12-22", "2025-12-23", "2025-12-24", "2025-12-26",
                                "2025-12-29", "2025-12-30", "2025-12-31", "2026-01-02",
                                "2026-01-05"]))
    assert business_days_between("sifma", D("2025-12-19"), D("2026-01-05")) == len(days)
    assert business_days_between("sifma", D("2026-01-05"), D("2025-12-19")) == -len(days)
    assert business_day_on_or_before("sifma", D("2025-12-25")) == D("2025-12-24")
    assert business_day_on_or_before("sifma", D("2025-12-24")) == D("2025-12-24")
    assert add_business_days("sifma", D("2026-01-05"), -len(days)) == D("2025-12-19")


def test_every_override_is_needed_and_well_formed():
    # An override must change the library's answer; a redundant one hides what the evidence was.
    for (cal, day), closed in OVERRIDES.items():
        assert cal in calendar.CALENDARS and cal != "daily"
        library_open = day.weekday() < 5 and day not in calendar._library_closed(cal, day.year)
        assert library_open == closed, (cal, day)
