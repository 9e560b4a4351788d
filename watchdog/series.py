"""The catalogue of canonical series (DOMAIN.md): unit, how rules join them, publication calendar,
nominal publication time, and the one primary source.

How a rule joins a series on observation date D:
- ``market``: the value *for D itself*; never forward-filled across a day the series lacks.
- ``step``: administered rates (IORB, target range, ON RRP and SRF rates), a step function defined
  on every day by the latest change effective on or before D.
- ``asof``: weekly/monthly/quarterly series (reserves, GDP): the latest observation dated on or
  before D that is already public.

``published_at`` of a fact, when the source gives no timestamp, is the nominal publication
instant of its series: ``publish_lag`` business days after D on its calendar, at ``publish_at``
New York time (SOFR for T: T+1 08:00 ET). Live, the source caps it at the fetch time.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from watchdog.calendar import add_business_days
from watchdog.timefmt import new_york, utc_text

RATE_ATTRIBUTES = ("p1", "p25", "p75", "p99", "volume")


@dataclass(frozen=True)
class SeriesSpec:
    name: str
    unit: str               # "%" or "USD bn"
    join: str               # market | step | asof
    calendar: str           # sifma | fed | daily
    primary_source: str
    publish_lag: int        # business days after the observation date
    publish_at: tuple[int, int]  # New York wall time (hour, minute)
    attributes: tuple[str, ...] = ()
    description: str = ""


def _spec(name, unit, join, calendar, primary, lag, at, attrs=(), description=""):
    return SeriesSpec(name, unit, join, calendar, primary, lag, at, attrs, description)


_SPECS = [
    _spec("sofr", "%", "market", "sifma", "nyfed", 1, (8, 0), RATE_ATTRIBUTES,
          "Secured Overnight Financing Rate"),
    _spec("tgcr", "%", "market", "sifma", "nyfed", 1, (8, 0), RATE_ATTRIBUTES,
          "Tri-party General Collateral Rate"),
    _spec("bgcr", "%", "market", "sifma", "nyfed", 1, (8, 0), RATE_ATTRIBUTES,
          "Broad General Collateral Rate"),
    _spec("effr", "%", "market", "fed", "nyfed", 1, (9, 0), RATE_ATTRIBUTES,
          "Effective federal funds rate"),
    _spec("obfr", "%", "market", "fed", "nyfed", 1, (9, 0), RATE_ATTRIBUTES,
          "Overnight bank funding rate"),
    # Administered rates: the rate in force on D was public no later than the start of D
    # (announced the day before); the implementation notes give the exact announcement time.
    _spec("iorb", "%", "step", "daily", "fomc", 0, (0, 0), (),
          "Interest on reserve balances (IOER before 2021-07-29)"),
    _spec("onrrp_rate", "%", "step", "daily", "fomc", 0, (0, 0), (), "ON RRP offering rate"),
    _spec("srf_rate", "%", "step", "daily", "fomc", 0, (0, 0), (), "SRF minimum bid rate"),
    _spec("fftarget_upper", "%", "step", "daily", "fred", 0, (0, 0), (), "FOMC target range, top"),
    _spec("fftarget_lower", "%", "step", "daily", "fred", 0, (0, 0), (), "FOMC target range, bottom"),
    _spec("onrrp", "USD bn", "market", "sifma", "nyfed", 0, (13, 15), (), "ON RRP take-up"),
    _spec("srf", "USD bn", "market", "sifma", "nyfed", 0, (13, 45), (), "Standing Repo Facility take-up"),
    _spec("reserves", "USD bn", "asof", "fed", "fred", 1, (16, 30), (),
          "Reserve balances with Federal Reserve Banks (H.4.1, week average, Wednesday date)"),
    _spec("fed_assets", "USD bn", "asof", "fed", "fred", 1, (16, 30), (), "Fed total assets (H.4.1)"),
    _spec("primary_credit", "USD bn", "asof", "fed", "fred", 1, (16, 30), (),
          "Discount window primary credit (H.4.1)"),
    _spec("tga", "USD bn", "market", "fed", "fiscaldata", 1, (16, 0), (),
          "Treasury General Account closing balance (DTS)"),
    _spec("tga_weekly_avg", "USD bn", "asof", "fed", "fred", 1, (16, 30), (),
          "TGA week average (H.4.1), never spliced into tga"),
    # Monthly and quarterly series are dated on the first day of their period and published weeks
    # after it ends (H.6 about four weeks after the month; the advance GDP estimate about four
    # weeks after the quarter). The nominal lag errs late so a fallback time never leaks a value
    # early; first prints from ALFRED carry their real vintage date instead.
    _spec("m2", "USD bn", "asof", "fed", "fred", 45, (13, 0), (), "M2 money stock (first print)"),
    _spec("gdp", "USD bn", "asof", "fed", "fred", 90, (8, 30), (), "Nominal GDP, SAAR (first print)"),
]

SERIES: dict[str, SeriesSpec] = {spec.name: spec for spec in _SPECS}


def spec(name: str) -> SeriesSpec:
    try:
        return SERIES[name]
    except KeyError:
        raise KeyError(f"unknown series {name!r}; known: {', '.join(sorted(SERIES))}") from None


def nominal_publication(series: str, day: date) -> datetime:
    """When the value of ``series`` for observation date ``day`` nominally becomes public."""
    s = spec(series)
    published_day = add_business_days(s.calendar, day, s.publish_lag)
    return new_york(published_day, *s.publish_at)


def nominal_publication_text(series: str, day: date) -> str:
    return utc_text(nominal_publication(series, day))


def attribute_names(series: str) -> tuple[str, ...]:
    return spec(series).attributes
