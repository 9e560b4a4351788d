"""The OFR Financial Stress Index (series ``ofr_fsi``): one CSV, ``/financial-stress-index/data/
fsi.csv`` on www.financialresearch.gov, no key. research/official-monitors.md §2.1.

The format (the real file, ``data/history/ofr/fsi_2000-01-03_2025-09-11.csv``): a header
``Date,OFR FSI,Credit,Equity valuation,Safe assets,Funding,Volatility,United States,Other advanced
economies,Emerging markets``, then one row per weekday (NYSE trading days before 2022), oldest
first, ISO dates. Values have three decimals, except 2022-01-03 .. 2023-06-23 (382 rows), written
at full float precision (``-2.537443708510041``), twice in exponent notation
(``-9.076749291912794e-05``, Funding on 2022-04-29). Columns are found by their header name, never
by position (the OFR has replaced variables before, and a reordered file must not swap two
components); the index is the value, the eight components its ``attributes`` (``funding`` is the
official funding-stress category). Values are parsed as text into ``Decimal``, exactly as written
(an exponent included: the text is a finite decimal, normalised to ``-0.00009076749291912794``);
a date may also be ``M/D/YYYY`` (a third-party parser accepts it; every real file seen is ISO).
An empty index cell is a day without a value (skipped), an empty component cell leaves that
attribute out.

The whole history (~500 KB) comes with every answer: a poll records only the rows dated within
``lookback_days`` of today (New York), which holds the latest days and any revision of them -- the
store drops facts it already has and records a changed value as a revision. ``backfill`` takes
every row from its ``since``. Rows outside the window are not read past their date. The answer
is fetched conditionally (ETag / Last-Modified) after a poll that recorded everything, so an
unchanged file costs a 304, not half a megabyte.

A row for day T is nominally public at T+2 business days, 11:00 New York (the file's latest row
is two business days old; it is updated about 10:00-11:00): live, ``published_at`` is capped at
the fetch time, in a backfill it stays nominal.

Refused, as a whole answer (``source-failed``, nothing recorded): a body that is not UTF-8, is
empty or HTML, lacks the ``Date`` or ``OFR FSI`` column, repeats a column name, or does not end
with a line end -- a CSV cut short would otherwise pass its last row with a truncated number.
Refused, row by row (named by line, the good rows still recorded): a bad date, a value that is
not a plain decimal, a wrong number of cells, and what ``parsing.vetted`` refuses (a date after
today, a value outside the band, two values for one date). A component column missing from the
header is one ``source-failed`` saying the rows were recorded without it.
"""
from __future__ import annotations

import asyncio
import csv
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import aiohttp

from watchdog.market.series import spec
from watchdog.model.config import OfrConfig
from watchdog.model.events import NewEvent, Observation, new_observation
from watchdog.model.numbers import is_missing, norm
from watchdog.model.redact import redact_url
from watchdog.sources.base import LookbackSource, Sleep, failure_event, fetch, printable
from watchdog.sources.parsing import (
    BodyError,
    Parsed,
    RowError,
    bounded_number,
    failures_of,
    new_york_date,
    published_text,
    vetted,
)

log = logging.getLogger(__name__)

SOURCE = "ofr"
SERIES = "ofr_fsi"
ENDPOINT = "/financial-stress-index/data/fsi.csv"
WHAT = "financial stress index"
RAW_UNIT = "index"
DATE_COLUMN = "Date"
VALUE_COLUMN = "OFR FSI"
# header name -> attribute, in the file's order (series.FSI_ATTRIBUTES)
COMPONENTS: dict[str, str] = {
    "Credit": "credit",
    "Equity valuation": "equity_valuation",
    "Safe assets": "safe_assets",
    "Funding": "funding",
    "Volatility": "volatility",
    "United States": "united_states",
    "Other advanced economies": "other_advanced",
    "Emerging markets": "emerging",
}

# A decimal as the OFR writes it (2.14, -0.051, and in the real file -9.076749291912794e-05): an
# exponent is allowed, a thousands separator, NaN or Infinity is not; anything else is a bad row.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


# ---- pure parsing, shared with history.py ----

def _key(name: str) -> str:
    """How header names are compared: case and runs of blanks do not matter."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class Layout:
    """Where each known column is in a header: ``date`` and ``value`` cell indexes, the
    components found (attribute, index), the component headers missing, and the row width."""
    date: int
    value: int
    components: tuple[tuple[str, int], ...]
    missing: tuple[str, ...]
    width: int


def read_header(cells: list[str]) -> Layout:
    """The layout of a header row, or BodyError when it is not the FSI's (no ``Date`` or no
    ``OFR FSI`` column, or a column named twice). Unknown columns are ignored."""
    names = [_key(cell.lstrip("\ufeff")) for cell in cells]
    shown = " ".join(",".join(cells).split())[:120]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise BodyError(f"header names {', '.join(map(repr, repeated))} more than once: {shown!r}")
    where = {name: index for index, name in enumerate(names)}
    for needed in (DATE_COLUMN, VALUE_COLUMN):
        if _key(needed) not in where:
            raise BodyError(f"not the OFR FSI CSV: no {needed!r} column in the header {shown!r}")
    found = tuple((attribute, where[_key(header)]) for header, attribute in COMPONENTS.items()
                  if _key(header) in where)
    missing = tuple(header for header in COMPONENTS if _key(header) not in where)
    return Layout(where[_key(DATE_COLUMN)], where[_key(VALUE_COLUMN)], found, missing, len(cells))


def fsi_date(text: str) -> date:
    """An FSI date: ``YYYY-MM-DD``, or ``M/D/YYYY`` defensively; RowError otherwise."""
    raw = text.strip()
    iso, us = _ISO_DATE.fullmatch(raw), _US_DATE.fullmatch(raw)
    try:
        if iso:
            day = date(int(iso[1]), int(iso[2]), int(iso[3]))
        elif us:
            day = date(int(us[3]), int(us[1]), int(us[2]))
        else:
            raise RowError(f"{DATE_COLUMN}: not a date (YYYY-MM-DD or M/D/YYYY): {raw[:40]!r}")
    except ValueError:
        raise RowError(f"{DATE_COLUMN}: not a valid date: {raw[:40]!r}") from None
    # a year before 1900 or after 2199 is a corrupt row (and would break the log's time format)
    if not 1900 <= day.year <= 2199:
        raise RowError(f"{DATE_COLUMN}: date out of range (1900-2199): {raw[:40]!r}")
    return day


def fsi_number(text: str, column: str) -> Decimal:
    """A cell's value, exactly, from its text; RowError naming the column otherwise."""
    raw = text.strip()
    if not _DECIMAL_TEXT.fullmatch(raw):
        raise RowError(f"{column}: not a decimal number: {raw[:40]!r}")
    return bounded_number(raw, column)


def row_date(layout: Layout, cells: list[str]) -> date:
    """The date of a data row (its width checked first); RowError otherwise."""
    if len(cells) != layout.width:
        raise RowError(f"expected {layout.width} cells like the header, got {len(cells)}")
    return fsi_date(cells[layout.date])


def row_values(layout: Layout, cells: list[str]) -> tuple[Decimal, str, dict[str, str]] | None:
    """(index value, its raw text, the components present as normalised text) of a data row
    whose width was checked; None when the index cell is empty. RowError on a bad number."""
    raw = cells[layout.value].strip()
    if is_missing(raw):
        return None
    value = fsi_number(raw, VALUE_COLUMN)
    attributes: dict[str, str] = {}
    for attribute, index in layout.components:
        cell = cells[index].strip()
        if not is_missing(cell):
            attributes[attribute] = norm(fsi_number(cell, _header_of(attribute)))
    return value, raw, attributes


def _header_of(attribute: str) -> str:
    return next(header for header, name in COMPONENTS.items() if name == attribute)


@dataclass
class FsiParsed(Parsed):
    """What an FSI answer yielded, and the component columns its header lacked."""
    missing_columns: list[str] = field(default_factory=list)


def parse_fsi(body: bytes, *, fetched_at: datetime | None, source_url: str,
              since: date | None = None, today: date | None = None) -> FsiParsed:
    """The ``ofr_fsi`` observations of an ``fsi.csv`` answer dated ``since`` or later (every row
    when None), bad rows named by line. ``fetched_at`` caps ``published_at`` live (None:
    nominal); ``today`` (by default the New York date of ``fetched_at``) is the latest date a
    row may carry."""
    try:
        lines = _csv_lines(body)
        layout = read_header(lines[0][1])
    except BodyError as exc:
        return FsiParsed(body_error=printable(str(exc)))
    parsed = FsiParsed(missing_columns=list(layout.missing))
    url = redact_url(source_url)
    candidates: list[tuple[str, NewEvent]] = []
    for line, cells in lines[1:]:
        label = f"line {line} ({cells[layout.date].strip()[:40] if len(cells) > layout.date else '?'})"
        try:
            # a row before the window is judged by its date alone: an old row gone wrong must
            # not fail every poll from now on (a date that cannot be read may be in the window)
            if since is not None and len(cells) > layout.date and fsi_date(cells[layout.date]) < since:
                continue
            event = _event(layout, cells, row_date(layout, cells), fetched_at, url)
        except RowError as exc:
            parsed.bad_rows.append(printable(f"{label}: {exc}"))
            continue
        if event is not None:
            candidates.append((label, event))
    today = today if today is not None else new_york_date(fetched_at)
    parsed.events = vetted(candidates, today, parsed.bad_rows)
    parsed.bad_rows = [printable(reason) for reason in parsed.bad_rows]
    parsed.in_date_order()
    return parsed


def _event(layout: Layout, cells: list[str], day: date, fetched_at: datetime | None,
           url: str) -> NewEvent | None:
    values = row_values(layout, cells)
    if values is None:
        return None                 # no index that day: a gap, not an error
    value, raw, attributes = values
    obs = Observation(series=SERIES, date=day.isoformat(), value=norm(value),
                      unit=spec(SERIES).unit, source=SOURCE, attributes=attributes,
                      provenance={"url": url, "raw_value": raw, "raw_unit": RAW_UNIT})
    return new_observation(obs, published_text(SERIES, day, fetched_at))


def _csv_lines(body: bytes) -> list[tuple[int, list[str]]]:
    """(line number, cells) of the header and every non-blank line; BodyError when the body is
    not a whole CSV."""
    try:
        text = body.decode("utf-8-sig")     # "-sig": a BOM is not part of the first name
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise BodyError("empty body where the OFR FSI CSV was expected")
    head = " ".join(text.lstrip()[:60].split())
    if head.startswith("<"):
        raise BodyError(f"not a CSV: the body looks like HTML/XML, starting {head!r}")
    if not text.endswith(("\n", "\r")):
        last = " ".join(text.rstrip().rsplit("\n", 1)[-1].split())[:60]
        raise BodyError(f"truncated: the answer does not end with a line end (it ends {last!r}), "
                        f"so its last row may be cut short")
    try:
        rows = list(csv.reader(text.splitlines()))     # splitlines: CRLF and LF alike
    except csv.Error as exc:                           # e.g. a field over the csv size limit
        raise BodyError(f"not a readable CSV: {exc}") from None
    lines = [(n, row) for n, row in enumerate(rows, start=1) if any(c.strip() for c in row)]
    if not lines:
        raise BodyError("empty body where the OFR FSI CSV was expected")
    return lines


# ---- the source ----

class OfrSource(LookbackSource):
    """Polls (or backfills) the OFR FSI CSV. Never raises.

    ``series`` is what the daemon schedules the polls by (the publication calendar of
    ``ofr_fsi``); ``clock_now`` (optional) stamps when the answer arrived, which caps
    ``published_at`` live; ``sleep`` is the wait between retries (injectable for tests)."""
    name = SOURCE
    what = WHAT
    series = (SERIES,)

    def __init__(self, config: OfrConfig, clock_now: Callable[[], datetime] | None = None, *,
                 sleep: Sleep = asyncio.sleep):
        self.config = config
        self._clock_now = clock_now
        self._timeout_s = config.timeout.total_seconds()
        self._sleep = sleep
        self._validators: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"OfrSource(base_url={self.config.base_url!r})"

    @property
    def url(self) -> str:
        return f"{self.config.base_url.rstrip('/')}{ENDPOINT}"

    async def _collect(self, session: aiohttp.ClientSession, now: datetime, since: date,
                       live: bool) -> list[NewEvent]:
        asked = dict(self._validators) if live else {}
        got = await fetch(session, self.url, timeout_s=self._timeout_s,
                          retries=self.config.retries, sleep=self._sleep, headers=asked or None)
        if got.error is not None:
            log.warning("ofr: %s (%s)", got.error, got.url)
            return [failure_event(SOURCE, f"{WHAT}: {got.error}", now, url=got.url)]
        if got.status == 304:
            return []               # unchanged since a poll that recorded everything
        fetched_at = (self._clock_now() if self._clock_now else now) if live else None
        parsed = parse_fsi(got.body, fetched_at=fetched_at, source_url=got.url, since=since,
                           today=new_york_date(now))
        events = parsed.events + failures_of(SOURCE, parsed, WHAT, now, got.url)
        if parsed.missing_columns and not parsed.body_error:
            events.append(failure_event(
                SOURCE, f"{WHAT}: the header lacks the column(s) "
                        f"{', '.join(map(repr, parsed.missing_columns))}: "
                        f"{len(parsed.events)} row(s) recorded without those components",
                now, url=got.url, recorded_rows=len(parsed.events)))
        if live:
            self._remember(got.headers, complete=len(events) == len(parsed.events))
        return events

    def _remember(self, headers: dict[str, str], *, complete: bool) -> None:
        """Keep the validators only after a poll that recorded everything: a 304 must never
        hide a row that was refused last time (the next changed file brings it again)."""
        lowered = {k.lower(): v for k, v in headers.items()}
        self._validators = {}
        if complete and lowered.get("etag"):
            self._validators["If-None-Match"] = lowered["etag"]
        if complete and lowered.get("last-modified"):
            self._validators["If-Modified-Since"] = lowered["last-modified"]
