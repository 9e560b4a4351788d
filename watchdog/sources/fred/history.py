"""FRED history files: what ``fred.live`` fetches, from the shipped copies -- FRED CSVs, ALFRED
first releases and the current vintages of revised series.

- FRED CSVs (FRED-native ``observation_date,ID`` and fredapi-derived ``Date,Value``), sorted by
  date and streamed row by row (out-of-order or duplicate dates are an error). Values are
  converted exactly through the unit table (``fred.units``: ``$ millions`` -> ``USD bn``:
  ``1394122`` -> ``"1394.122"``), published at the series' nominal time (EFFR for T: T+1 Fed
  business day 09:00 New York; H.4.1 the next Fed business day after the Wednesday at 16:30).
  Step series (the target range) keep their change points only.

Vintages (M2 and GDP are revised for years after their first print; DOMAIN.md: history must use
first prints, or replay would show a later revision at the original publication time):

- GDP first prints come from an ALFRED ``output_type=4`` (initial release) payload
  (``fred/GDP_observations_output_type4_initial_release.json``): each value is published at its
  ``realtime_start`` date, 08:30 New York (BEA's release time), and ``provenance.vintage`` is
  that instant. It covers 1991 Q4 .. 2024 Q3.
- ``macro/M2SL.csv`` and ``macro/GDP.csv`` are *current* (revised) vintages. No first print is
  invented: M2 (every month) and the GDP quarters the first-release file does not cover (1980 Q1
  .. 1991 Q3 and 2024 Q4 .. 2025 Q3) are imported with their current-vintage value, published at
  the file's snapshot instant -- the end (23:59:59.999999 New York) of the origin commit date in
  ``data/history/PROVENANCE.md`` (M2SL 2026-07-29, GDP 2026-01-02) -- which is when this vintage
  is known to have existed: honest, but late. Replay therefore has no M2 before 2026-07-29 and,
  for 2024 Q4 onwards, no GDP before 2026-01-02. Quarters the first-release file covers are *not*
  imported from the current vintage at all. The snapshot date is bound to the exact bytes of the
  shipped copy (SHA-256); another ``M2SL.csv``/``GDP.csv`` is refused, because nothing says when
  its vintage was taken.

FRED's ``WTREGEN`` (a week average) goes to ``tga_weekly_avg``, never into ``tga``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from watchdog.market.series import SERIES, nominal_publication
from watchdog.model.errors import ImportFailed
from watchdog.model.events import NewEvent
from watchdog.model.numbers import is_missing
from watchdog.model.timefmt import end_of_day_new_york, new_york, utc_text
from watchdog.sources.files import (
    FileRowError,
    HistoryParser,
    csv_rows,
    exact_decimal,
    iso_date,
    observation,
    read_json,
    record_lines,
)
from watchdog.sources.fred.live import (
    CSV_DATE_HEADERS,
    FIRST_RELEASE_OUTPUT_TYPE,
    SOURCE,
)
from watchdog.sources.fred.units import FRED_SERIES, FredUnit

GDP_FIRST_RELEASE_FILE = "GDP_observations_output_type4_initial_release.json"


def _csv_events(path: Path, rel: str, display: str, *, series: str, fred_id: str, unit: FredUnit,
                change_points_only: bool = False,
                published: Callable[[date], datetime] | None = None,
                skip: frozenset[date] = frozenset(),
                extra_provenance: dict[str, str] | None = None,
                today: date | None = None) -> Iterator[NewEvent]:
    """One observation per dated value of a FRED CSV, converted by ``unit``; ``published``
    replaces the nominal publication time (current vintages: their snapshot instant); dates in
    ``skip`` are left out (GDP quarters that have a first print)."""
    rows = csv_rows(path, display)
    header = next(rows, None)
    if header is None:
        raise ImportFailed(f"{display}:1: empty file (expected a header like observation_date,{fred_id})")
    line, cells = header
    names = [c.strip() for c in cells]
    if (len(names) != 2 or names[0].lower() not in CSV_DATE_HEADERS
            or names[1] not in (fred_id, "Value", "value")):
        raise ImportFailed(f"{display}:{line}: unexpected header {','.join(cells)!r} "
                           f"(expected observation_date,{fred_id} or Date,Value)")
    previous_day: date | None = None
    previous_value: Decimal | None = None
    for line, cells in rows:
        try:
            if len(cells) != 2:
                raise FileRowError(f"expected 2 columns (date,value), got {len(cells)}")
            day = iso_date(cells[0], "date")
            if previous_day is not None and day <= previous_day:
                raise FileRowError(f"date {day} is not after the previous row's {previous_day} "
                                   "(the file must be sorted by date, one row per date)")
            previous_day = day
            raw = cells[1].strip()
            if is_missing(raw):
                continue
            value = exact_decimal(raw, "value")
        except FileRowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        if change_points_only and previous_value is not None and value == previous_value:
            continue
        previous_value = value
        if day in skip:
            continue
        provenance = {"file": rel, "raw_value": raw, "raw_unit": unit.short, "fred_series": fred_id}
        if extra_provenance:
            provenance.update(extra_provenance)
        yield observation(series, day, unit.to_catalogue(value), SOURCE, provenance,
                          published(day) if published else nominal_publication(series, day),
                          where=f"{display}:{line}", today=today)


# ALFRED initial-release payload (FRED API JSON, ``output_type=4``): first prints with the date
# each became public.

_ALFRED_OPENING = r'[^\[]*"observations"\s*:\s*\['


def _alfred_first_release(path: Path, display: str) -> list[tuple[int, date, date, str, str]]:
    """(line, observation date, realtime_start, realtime_end text, raw value) per first print, in
    ascending date; missing values (``"."``) are left out. Refuses any payload that is not an
    initial-release (``output_type`` 4) response: other output types mix in revised values."""
    text, document = read_json(path, display)
    if not isinstance(document, dict) or not isinstance(document.get("observations"), list):
        raise ImportFailed(f"{display}:1: expected a FRED API object with an \"observations\" array")
    if str(document.get("output_type")) != str(FIRST_RELEASE_OUTPUT_TYPE):
        raise ImportFailed(f"{display}:1: output_type is {document.get('output_type')!r}, not "
                           f"{FIRST_RELEASE_OUTPUT_TYPE}: only an initial-release (first print) "
                           "payload can be dated by its realtime_start")
    records = document["observations"]
    parsed: list[tuple[int, date, date, str, str]] = []
    seen: dict[date, int] = {}
    for line, record in zip(record_lines(text, len(records), _ALFRED_OPENING), records):
        try:
            if not isinstance(record, dict):
                raise FileRowError("observation is not an object")
            day = iso_date(record.get("date"), "date")
            start = iso_date(record.get("realtime_start"), "realtime_start")
            if start <= day:
                raise FileRowError(f"realtime_start {start} is not after the observation date {day}")
            if day in seen:
                raise FileRowError(f"date {day} appears twice (first on line {seen[day]})")
            seen[day] = line
            raw = record.get("value")
            if is_missing(raw):
                continue
            exact_decimal(raw, "value")
        except FileRowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        parsed.append((line, day, start, str(record.get("realtime_end", "")), raw))
    parsed.sort(key=lambda item: item[1])
    return parsed


def _alfred_events(path: Path, rel: str, display: str, *, series: str, fred_id: str,
                   unit: FredUnit, today: date | None = None) -> Iterator[NewEvent]:
    """First prints, each published at its ``realtime_start`` date at the series' release time
    (GDP: 08:30 New York); ``provenance.vintage`` is that instant."""
    hour, minute = SERIES[series].publish_at
    for line, day, start, end, raw in _alfred_first_release(path, display):
        published = new_york(start, hour, minute)
        provenance = {"file": rel, "raw_value": raw, "raw_unit": unit.short, "fred_series": fred_id,
                      "output_type": str(FIRST_RELEASE_OUTPUT_TYPE),
                      "realtime_start": start.isoformat(), "realtime_end": end,
                      "vintage": utc_text(published)}
        yield observation(series, day, unit.to_catalogue(exact_decimal(raw, "value")), SOURCE,
                          provenance, published, where=f"{display}:{line}", today=today)


# Current (revised) vintages of revised series: dated by the snapshot they were taken from.

@dataclass(frozen=True)
class _Snapshot:
    """A current-vintage file we know the age of: the origin commit that holds these bytes."""
    repo: str
    commit: str
    committed_on: date          # the commit date recorded in data/history/PROVENANCE.md

    @property
    def instant(self) -> datetime:
        """The end of the commit date in New York: by then this vintage certainly existed."""
        return end_of_day_new_york(self.committed_on)


# SHA-256 of the exact bytes -> the snapshot they come from. A file not listed here cannot be
# dated, so it is refused rather than imported at a guessed time.
_CURRENT_VINTAGES: dict[str, _Snapshot] = {
    "452b9747d2a457bf717952a79cd41871064b1e44536116531f5b031332fcac08":     # macro/M2SL.csv
        _Snapshot("Thecoderstef/Macro-Charts", "f47e819c2262bb25e57d15420e1b406362d18082", date(2026, 7, 29)),
    "4cf662f6d09f7fe90b984cdc3f37390eb5cce8eec069d5f1e31cb102ab3b45c4":     # macro/GDP.csv
        _Snapshot("sivamsapingali/Codex_Macro-Monitor", "8d636dd589646aa850fbf7f75bcafa51542aab4f",
                  date(2026, 1, 2)),
}


def _snapshot_of(path: Path, display: str) -> _Snapshot:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ImportFailed(f"{display}: cannot read: {exc.strerror or exc}") from None
    snapshot = _CURRENT_VINTAGES.get(digest)
    if snapshot is None:
        raise ImportFailed(
            f"{display}: a current (revised) vintage whose snapshot date is unknown (sha256 {digest}): "
            "its values carry later revisions and cannot be dated; add its origin commit to "
            "_CURRENT_VINTAGES in watchdog/sources/fred/history.py and data/history/PROVENANCE.md")
    return snapshot


def _first_release_companion(path: Path, name: str) -> Path | None:
    """The ALFRED first-release file ``name`` beside ``path`` or in ``../fred/``, if any."""
    for candidate in (path.with_name(name), path.parent.parent / "fred" / name):
        if candidate.is_file():
            return candidate
    return None


def _current_vintage_events(path: Path, rel: str, display: str, *, series: str, fred_id: str,
                            unit: FredUnit, first_release: str | None = None,
                            today: date | None = None) -> Iterator[NewEvent]:
    """A current-vintage FRED CSV, every value published at the snapshot instant (honest but
    late). With ``first_release`` (the ALFRED payload's file name) present beside the file or in
    ``../fred/``, the dates it has a first print for are left out entirely."""
    snapshot = _snapshot_of(path, display)
    skip: frozenset[date] = frozenset()
    companion = _first_release_companion(path, first_release) if first_release else None
    if companion is not None:
        skip = frozenset(day for _, day, _, _, _ in _alfred_first_release(companion, str(companion)))
    instant = snapshot.instant
    provenance = {"vintage": utc_text(instant), "vintage_kind": "current",
                  "origin": f"{snapshot.repo}@{snapshot.commit}"}
    return _csv_events(path, rel, display, series=series, fred_id=fred_id, unit=unit,
                       published=lambda _day: instant, skip=skip, extra_provenance=provenance,
                       today=today)


# The kinds: each names its FRED id; the series and unit come from the unit table.

def _fred(kind: str, fred_id: str, *, change_points_only: bool = False,
          description: str = "") -> HistoryParser:
    series, unit = FRED_SERIES[fred_id]

    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        return _csv_events(path, rel, display, series=series, fred_id=fred_id, unit=unit,
                           change_points_only=change_points_only, today=today)
    return HistoryParser(kind, series, SOURCE, (f"{fred_id}.csv",), parse, description)


def _fred_current(kind: str, fred_id: str, *, first_release: str | None = None,
                  description: str = "") -> HistoryParser:
    series, unit = FRED_SERIES[fred_id]

    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        return _current_vintage_events(path, rel, display, series=series, fred_id=fred_id,
                                       unit=unit, first_release=first_release, today=today)
    return HistoryParser(kind, series, SOURCE, (f"{fred_id}.csv",), parse, description)


def _alfred(kind: str, fred_id: str, *, description: str = "") -> HistoryParser:
    series, unit = FRED_SERIES[fred_id]

    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        return _alfred_events(path, rel, display, series=series, fred_id=fred_id, unit=unit,
                              today=today)
    pattern = f"{fred_id}_observations_output_type4_*.json"
    return HistoryParser(kind, series, SOURCE, (pattern,), parse, description)


SOFR = _fred("fred-sofr", "SOFR", description="FRED SOFR (fills dates NY Fed lacks)")
EFFR = _fred("fred-effr", "EFFR", description="FRED EFFR")
IORB = _fred("fred-iorb", "IORB",
             description="FRED IORB, daily incl. weekends (fills dates the FOMC table lacks)")
# The target range is a step function: FRED repeats the same value every calendar day, so only
# the change points are facts worth a log row. The engine joins step series by "latest value on
# or before D", which reconstructs every day exactly; a missing (empty) FRED day neither ends a
# run nor starts one.
TARGET_UPPER = _fred("fred-fftarget-upper", "DFEDTARU", change_points_only=True,
                     description="FOMC target range top: change points only (step series)")
TARGET_LOWER = _fred("fred-fftarget-lower", "DFEDTARL", change_points_only=True,
                     description="FOMC target range bottom: change points only (step series)")
RESERVES = _fred("fred-reserves", "WRESBAL",
                 description="H.4.1 reserve balances, week average ($ mn -> USD bn)")
FED_ASSETS = _fred("fred-fed-assets", "WALCL",
                   description="H.4.1 Fed total assets, Wednesday level ($ mn -> USD bn)")
TGA_WEEKLY_AVG = _fred("fred-tga-weekly-avg", "WTREGEN",
                       description="H.4.1 TGA week average ($ mn -> USD bn); never spliced into tga")
GDP_FIRST_RELEASE = _alfred(
    "alfred-gdp-first-release", "GDP",
    description="GDP first prints (ALFRED output_type=4), at their vintage date 08:30")
GDP_CURRENT = _fred_current(
    "fred-gdp-current", "GDP", first_release=GDP_FIRST_RELEASE_FILE,
    description="GDP current vintage, only quarters without a first print, at the snapshot instant")
M2_CURRENT = _fred_current(
    "fred-m2-current", "M2SL",
    description="M2 current vintage (no first prints available), at the snapshot instant")
ONRRP = _fred("fred-onrrp", "RRPONTSYD",
              description="FRED ON RRP take-up (fills dates the NY Fed primary lacks)")
