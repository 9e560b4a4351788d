"""The catalogue of canonical series (DOMAIN.md): unit, how rules join them, publication calendar,
nominal publication time, and the one primary source.

How a rule joins a series on observation date D:
- ``market``: the value *for D itself*; never forward-filled across a day the series lacks.
- ``step``: administered rates (IORB, target range, ON RRP and SRF rates) and the QT runoff caps,
  a step function defined on every day by the latest change effective on or before D.
- ``asof``: weekly/monthly/quarterly series (reserves, GDP): the latest observation dated on or
  before D that is already public.

``published_at`` of a fact, when the source gives no timestamp, is the nominal publication
instant of its series: ``publish_lag`` business days after D on its calendar, at ``publish_at``
New York time (SOFR for T: T+1 08:00 ET). Live, the source caps it at the fetch time.

Plausibility (DESIGN "Facts"): each series declares, as data, what a row must satisfy to be a
fact -- a date no earlier than ``first_date`` and no later than the New York date it became
known plus ``lead_days``, a value inside ``band``, each attribute inside its band, and the
attributes named in ``ordered`` non-decreasing. ``implausible`` is the one check, shared by the
sources, the importer and (for the date alone, ``dated_ahead``) the engine. The bands, and why:

- Money-market rates (SOFR, TGCR, BGCR, EFFR, OBFR) and the administered rates: -1 % to 25 %.
  The shipped history spans 0 % (the ON RRP rate and the range's floor, 2020-21) and 0.01 %
  (SOFR, 2020-03) to 7.03 % (EFFR, 2000-07-03); the top leaves room for a return to the early
  1980s (a fed funds rate near 20 %), the bottom for a modestly negative policy rate (tails
  already printed below zero in 2021). Percentiles (p1 .. p99) get a wider band, -5 % to 50 %:
  tails run far from the median
  (SOFR p99 9.00 % against a median of 5.25 % on 2019-09-17, p1 -0.05 % in 2021-03), and a
  crisis tail must not cost the day's median, as refusing a row refuses all of it.
- The percentiles and the rate, a volume-weighted median, are ordered: p1 <= p25 <= value <=
  p75 <= p99 (true of all 6,462 rows with percentiles in the shipped history).
- Volume (USD bn): more than 0 (a median of no trades is not a rate) and at most 50,000
  (the record is SOFR's 3,508 on 2026-01-02).
- Amounts (USD bn): 0 (facilities unused, e.g. ON RRP in 2019-20) to 50,000; the largest
  shipped is Fed total assets, 8,965.5 on 2022-04-13. M2 and GDP: 0 to 1,000,000 (23,155 and
  31,095 shipped).
- QT runoff caps (USD bn a month; 0 = no runoff): 0 to 1,000. The shipped caps run 0 to 60
  (Treasuries from 2022-09); the top leaves room for a far faster runoff, never a negative cap.
- OFR Financial Stress Index and its components (index points; 0 = average stress): -20 to 100.
  The shipped history spans -5.334 (2007-02-22) to 29.32 (2008-10-10) for the index, -2.7 to 14.1
  for the components; the index is a sum of z-scored variables, so a crisis worse than 2008 may
  print far above 30, and the top leaves room for that rather than refuse the worst day. The
  components (five categories, three regions) are each a part of that sum, so they share the
  band.
- Dates: not after the New York date the fact became known (the fetch, the import), except
  administered rates, which are announced before they take effect (the next day in all 82
  implementation-note rows shipped): up to 31 days ahead, room for a note announcing a change
  further out; and the QT caps, whose phase-in was announced four months ahead (2022-05-04 for
  2022-09-01, 120 days): up to 183 days. Not before the series began (``first_date``, per series
  below).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from watchdog.market.calendar import add_business_days
from watchdog.model.timefmt import new_york, utc_text

RATE_ATTRIBUTES = ("p1", "p25", "p75", "p99", "volume")
# The OFR FSI's columns after the index: five categories, then three regions (each set sums to
# the index, within rounding).
FSI_ATTRIBUTES = ("credit", "equity_valuation", "safe_assets", "funding", "volatility",
                  "united_states", "other_advanced", "emerging")


@dataclass(frozen=True)
class Band:
    """Where a number must lie: ``low`` (exclusive when ``above``) to ``high``, inclusive; None
    is unbounded. ``unit`` when it is not the series' own (SOFR's volume is in USD bn)."""
    low: Decimal | None = None
    high: Decimal | None = None
    above: bool = False
    unit: str | None = None

    def breach(self, value: Decimal, unit: str) -> str | None:
        """Which end of the band ``value`` is beyond, as text; None inside it."""
        unit = self.unit or unit
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            edge = "is not above" if self.above else "is below"
            return f"{edge} the plausible minimum {self.low} {unit} ({self.text(unit)})"
        if self.high is not None and value > self.high:
            return f"is above the plausible maximum {self.high} {unit} ({self.text(unit)})"
        return None

    def text(self, unit: str) -> str:
        low = None if self.low is None else f"{'more than' if self.above else 'at least'} {self.low}"
        high = None if self.high is None else f"at most {self.high}"
        return f"{', '.join(part for part in (low, high) if part) or 'any value'} {self.unit or unit}"


ANY_ATTRIBUTE = "*"     # attribute_bands key: every attribute without a band of its own


@dataclass(frozen=True)
class SeriesSpec:
    name: str
    unit: str               # "%", "USD bn" or "index" (the OFR FSI)
    join: str               # market | step | asof
    calendar: str           # sifma | fed | daily
    primary_source: str
    publish_lag: int        # business days after the observation date
    publish_at: tuple[int, int]  # New York wall time (hour, minute)
    attributes: tuple[str, ...] = ()
    description: str = ""
    # ---- plausibility (module doc): what a row must satisfy to be a fact ----
    first_date: date = date(1900, 1, 1)    # no observation is dated before the series began
    lead_days: int = 0      # how far a date may run ahead of the New York date it became known
    band: Band = Band()     # the value
    attribute_bands: tuple[tuple[str, Band], ...] = ()   # (attribute or ANY_ATTRIBUTE, band)
    ordered: tuple[str, ...] = ()   # "value" and attributes that must not decrease in this order
    # How often an as-of series is observed (weekly | monthly | quarterly): when its next value
    # is due (watchdog.market.staleness); "" for market series and administered rates.
    cadence: str = ""

    def attribute_band(self, name: str) -> Band | None:
        for key, band in self.attribute_bands:
            if key == name:
                return band
        for key, band in self.attribute_bands:
            if key == ANY_ATTRIBUTE:
                return band
        return None


_D = Decimal
RATE_BAND = Band(_D(-1), _D(25))                  # money-market and administered rates, %
TAIL_BAND = Band(_D(-5), _D(50))                  # their percentiles, %
VOLUME_BAND = Band(_D(0), _D(50_000), above=True, unit="USD bn")  # USD bn traded: more than nothing
AMOUNT_BAND = Band(_D(0), _D(50_000))             # facility take-up, balances, USD bn
AGGREGATE_BAND = Band(_D(0), _D(1_000_000))       # M2, nominal GDP, USD bn
ANNOUNCED_AHEAD_DAYS = 31                         # administered rates: announced, then effective
QT_CAP_BAND = Band(_D(0), _D(1_000))              # QT runoff caps, USD bn a month
QT_ANNOUNCED_AHEAD_DAYS = 183                     # a phase-in step announced months ahead
FSI_BAND = Band(_D(-20), _D(100))                 # OFR FSI and its components, index points

_MARKET_RATE = dict(band=RATE_BAND, ordered=("p1", "p25", "value", "p75", "p99"),
                    attribute_bands=(("p1", TAIL_BAND), ("p25", TAIL_BAND), ("p75", TAIL_BAND),
                                     ("p99", TAIL_BAND), ("volume", VOLUME_BAND),
                                     # EFFR rows carry the target range in force
                                     ("target_from", RATE_BAND), ("target_to", RATE_BAND)))
_ADMINISTERED = dict(band=RATE_BAND, lead_days=ANNOUNCED_AHEAD_DAYS)
_AMOUNT = dict(band=AMOUNT_BAND, attribute_bands=((ANY_ATTRIBUTE, AMOUNT_BAND),))
_QT_CAP = dict(band=QT_CAP_BAND, lead_days=QT_ANNOUNCED_AHEAD_DAYS)


def _spec(name, unit, join, calendar, primary, lag, at, attrs=(), description="", *,
          first_date: date, **contract):
    return SeriesSpec(name, unit, join, calendar, primary, lag, at, attrs, description,
                      first_date=first_date, **contract)


# First dates: the first observation date of the series (shipped files, FRED metadata,
# the Fed's announcements); where a source's copy starts later, the series' own start is used.
_SPECS = [
    # NY Fed: first rates for 2018-04-03 (the NY Fed files and FRED's SOFR both begin then)
    _spec("sofr", "%", "market", "sifma", "nyfed", 1, (8, 0), RATE_ATTRIBUTES,
          "Secured Overnight Financing Rate", first_date=date(2018, 4, 3), **_MARKET_RATE),
    _spec("tgcr", "%", "market", "sifma", "nyfed", 1, (8, 0), RATE_ATTRIBUTES,
          "Tri-party General Collateral Rate", first_date=date(2018, 4, 3), **_MARKET_RATE),
    _spec("bgcr", "%", "market", "sifma", "nyfed", 1, (8, 0), RATE_ATTRIBUTES,
          "Broad General Collateral Rate", first_date=date(2018, 4, 3), **_MARKET_RATE),
    # the daily effective federal funds rate exists from 1954-07-01 (FRED's EFFR copy: 2000-07-03)
    _spec("effr", "%", "market", "fed", "nyfed", 1, (9, 0), RATE_ATTRIBUTES,
          "Effective federal funds rate", first_date=date(1954, 7, 1), **_MARKET_RATE),
    _spec("obfr", "%", "market", "fed", "nyfed", 1, (9, 0), RATE_ATTRIBUTES,
          "Overnight bank funding rate", first_date=date(2016, 3, 1), **_MARKET_RATE),
    # Administered rates: the rate in force on D was public no later than the start of D
    # (announced the day before); the implementation notes give the exact announcement time.
    _spec("iorb", "%", "step", "daily", "fomc", 0, (0, 0), (),
          "Interest on reserve balances (IOER before 2021-07-29)",
          first_date=date(2008, 10, 9), **_ADMINISTERED),          # IOER first paid
    _spec("onrrp_rate", "%", "step", "daily", "fomc", 0, (0, 0), (), "ON RRP offering rate",
          first_date=date(2013, 9, 23), **_ADMINISTERED),          # the first ON RRP exercise
    _spec("srf_rate", "%", "step", "daily", "fomc", 0, (0, 0), (), "SRF minimum bid rate",
          first_date=date(2021, 7, 29), **_ADMINISTERED),          # the SRF's first day
    _spec("fftarget_upper", "%", "step", "daily", "fred", 0, (0, 0), (), "FOMC target range, top",
          first_date=date(2008, 12, 16), **_ADMINISTERED),         # the range replaced a target
    _spec("fftarget_lower", "%", "step", "daily", "fred", 0, (0, 0), (), "FOMC target range, bottom",
          first_date=date(2008, 12, 16), **_ADMINISTERED),
    _spec("onrrp", "USD bn", "market", "sifma", "nyfed", 0, (13, 15), (), "ON RRP take-up",
          first_date=date(2003, 2, 7), **_AMOUNT),                 # RRPONTSYD's first day
    # the SRF's first day: overnight repo operations before it (2019-21) were open market
    # operations, not take-up of the standing facility
    _spec("srf", "USD bn", "market", "sifma", "nyfed", 0, (13, 45), (), "Standing Repo Facility take-up",
          first_date=date(2021, 7, 29), **_AMOUNT),
    _spec("reserves", "USD bn", "asof", "fed", "fred", 1, (16, 30), (),
          "Reserve balances with Federal Reserve Banks (H.4.1, week average, Wednesday date)",
          first_date=date(1984, 2, 1), cadence="weekly", **_AMOUNT),                 # WRESBAL's first week
    _spec("fed_assets", "USD bn", "asof", "fed", "fred", 1, (16, 30), (), "Fed total assets (H.4.1)",
          first_date=date(2002, 12, 18), cadence="weekly", **_AMOUNT),               # WALCL's first week
    _spec("primary_credit", "USD bn", "asof", "fed", "fred", 1, (16, 30), (),
          "Discount window primary credit (H.4.1)", first_date=date(2002, 12, 18), cadence="weekly",
          **_AMOUNT),
    _spec("tga", "USD bn", "market", "fed", "fiscaldata", 1, (16, 0), (),
          "Treasury General Account closing balance (DTS)",
          first_date=date(2005, 10, 3), **_AMOUNT),                # Fiscal Data's DTS begins
    _spec("tga_weekly_avg", "USD bn", "asof", "fed", "fred", 1, (16, 30), (),
          "TGA week average (H.4.1), never spliced into tga",
          first_date=date(1986, 1, 8), cadence="weekly", **_AMOUNT),                 # WTREGEN's first date
    # Monthly and quarterly series are dated on the first day of their period and published weeks
    # after it ends (H.6 about four weeks after the month; the advance GDP estimate about four
    # weeks after the quarter). The nominal lag errs late so a fallback time never leaks a value
    # early; first prints from ALFRED carry their real vintage date instead.
    _spec("m2", "USD bn", "asof", "fed", "fred", 45, (13, 0), (), "M2 money stock (first print)",
          first_date=date(1959, 1, 1), cadence="monthly", band=AGGREGATE_BAND),
    _spec("gdp", "USD bn", "asof", "fed", "fred", 90, (8, 30), (), "Nominal GDP, SAAR (first print)",
          first_date=date(1947, 1, 1), cadence="quarterly", band=AGGREGATE_BAND),   # FRED metadata
    # QT runoff caps: FOMC decisions like the administered rates (a step function, in force from
    # the effective date, published at the announcement). Amounts per month; 0 when runoff ended
    # (2019-08-01, 2025-12-01). Dated from the first cap in force, 2017-10-01.
    _spec("qt_cap_treasury", "USD bn", "step", "daily", "fomc", 0, (0, 0), (),
          "QT runoff cap, Treasury securities (USD bn a month; 0 = no runoff)",
          first_date=date(2017, 10, 1), **_QT_CAP),
    _spec("qt_cap_mbs", "USD bn", "step", "daily", "fomc", 0, (0, 0), (),
          "QT runoff cap, agency debt and MBS (USD bn a month; 0 = no runoff)",
          first_date=date(2017, 10, 1), **_QT_CAP),
    # OFR Financial Stress Index: a value per NYSE trading day until early 2022, per weekday
    # since (US holidays included: 2022-04-15, 2025-09-01 ...). Of the catalogue's calendars
    # SIFMA's is the one that never expects a row the OFR does not print (staleness, late polls);
    # a holiday row is recorded all the same, and a nominal time next to a holiday is a day late,
    # never early. The latest row is two business days old, the file updated ~10:00-11:00 ET.
    _spec("ofr_fsi", "index", "market", "sifma", "ofr", 2, (11, 0), FSI_ATTRIBUTES,
          "OFR Financial Stress Index (0 = average stress; funding is its funding category)",
          first_date=date(2000, 1, 3), band=FSI_BAND,
          attribute_bands=((ANY_ATTRIBUTE, FSI_BAND),)),
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


# ---- plausibility ----

def implausible(series: str, day: date, value: Decimal,
                attributes: Mapping[str, str | Decimal] | None = None, *,
                today: date | None = None) -> str | None:
    """The first bound an observation of ``series`` breaks, as text naming the field, its value
    and the bound; None when it is plausible. Pure. ``today`` is the New York date the fact
    became known (the fetch, the import); None skips that one bound."""
    s = spec(series)
    if today is not None and dated_ahead(series, day, today):
        ahead = f" by more than {s.lead_days} days" if s.lead_days else ""
        return (f"date {day.isoformat()} is after {today.isoformat()}{ahead}, "
                f"the New York date it became known")
    if day < s.first_date:
        return f"date {day.isoformat()} is before {series} began ({s.first_date.isoformat()})"
    breach = s.band.breach(value, s.unit)
    if breach:
        return f"value {shown(value)} {breach}"
    numbers: dict[str, Decimal] = {"value": value}
    for name, raw in (attributes or {}).items():
        number = raw if isinstance(raw, Decimal) else Decimal(raw)
        numbers[name] = number
        band = s.attribute_band(name)
        breach = band.breach(number, s.unit) if band is not None else None
        if breach:
            return f"{name} {shown(number)} {breach}"
    present = [name for name in s.ordered if name in numbers]
    for lower, upper in zip(present, present[1:]):
        if numbers[lower] > numbers[upper]:
            return (f"{lower} {shown(numbers[lower])} is above {upper} {shown(numbers[upper])}: "
                    f"out of order (must be {' <= '.join(s.ordered)})")
    return None


def dated_ahead(series: str, day: date, today: date) -> bool:
    """True when an observation dated ``day`` cannot have been known on New York date ``today``:
    later than ``today`` plus the series' ``lead_days``."""
    return day > today + timedelta(days=spec(series).lead_days)


def shown(value: Decimal) -> str:
    """A number as a reason quotes it: exact when short, in scientific notation when huge."""
    text = format(value, "f")
    return text if len(text) <= 24 else format(value, ".6E")
