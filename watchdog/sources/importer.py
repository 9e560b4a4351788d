"""History importer: turn the shipped history files (``data/history``) into fact events.

Pure-ish: the parsers read files and yield ``NewEvent``s (``observation-recorded`` and
``speech-recorded``); they never touch the store, the network, asyncio or the clock. Appending
them (and deduplicating by key, keeping each series' primary source) is the store's job.

Every observation carries:

- ``value``: the file's number parsed **as text** into a ``Decimal`` (never through a float),
  converted exactly to the catalogue unit (``$ millions`` -> ``USD bn``: ``1394122`` ->
  ``"1394.122"``) and normalised with ``numbers.norm`` (``"2.30"``, ``"2.3"`` and ``"2.300"`` are
  all ``"2.3"``);
- ``unit`` from the series catalogue, ``source`` naming where the number came from (``nyfed``,
  ``fomc``, ``fred``, ``fiscaldata``);
- ``provenance``: ``file`` (the name relative to the history folder, e.g. ``rates/SOFR.csv``, so
  events do not depend on where the folder lives), ``raw_value`` (the text exactly as in the
  file), ``raw_unit`` and a few source-specific fields (URLs, FRED series id, raw percentiles,
  the DTS row a TGA balance was read from, the ``vintage`` of a revised series);
- ``published_at``: the real publication instant. Where the file gives one (FOMC
  implementation-note tables: announcement date, time and zone; ALFRED: the vintage date) it is
  that instant; otherwise it is the series' nominal publication time
  (``series.nominal_publication``: SOFR for T at T+1 SIFMA business day 08:00 New York time, EFFR
  T+1 Fed business day 09:00, ON RRP T 13:15, H.4.1 the next Fed business day after the Wednesday
  at 16:30, DTS T+1 Fed business day 16:00, ...). See "Vintages" and "Speeches" for the two
  exceptions.

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

TGA (``treasury/DTS_OpCashBal_*.csv``, the fiscaldata.treasury.gov website export of DTS Table I;
$ millions): see ``_dts_events`` for how the closing balance is read and, before 2022-04-18,
derived, and how that derivation was verified. FRED's ``WTREGEN`` (a week average) goes to
``tga_weekly_avg``, never into ``tga``.

Speeches (``speeches/bog_speeches_<YEAR>.json``, ``newyork_speeches_<YEAR>.json``): one
``speech-recorded`` event per speech with text (``events.Speech``; ``text`` is ``content`` as
given, ``content_hash`` its SHA-256). The archive has dates but no time of day, so ``published_at``
is the **end** of the speech date in New York (23:59:59.999999 ET): the latest instant it can
have become public, so replay never shows a speech early (it may show it up to a day late). A
record with no ``content`` (one 2024 Board entry, an interview page) has nothing to record and
is skipped. Duplicates (same ``events.speech_key``) are the store's business: the first is kept.

Files shipped but not imported are listed in ``REFERENCE_FILES`` with the reason.

Order (``iter_history_events``): files in the fixed order of ``HISTORY_FILES``. For every series,
its primary source's files come before any fill (NY Fed JSON before FRED's SOFR/EFFR copies, the
FOMC tables before FRED IORB, ALFRED first prints before the current GDP vintage), so the fact
the store keeps for a ``(series, date)`` is the primary's. Files added later are appended, so a
log built from the earlier registry is a prefix of the one built from this one. Within a file,
ascending observation date.

Malformed input raises ``ImportFailed("FILE:LINE: reason")``. A value that is clearly missing
(``numbers.is_missing``: empty, ``.``, ``NA`` ...) is skipped, not an error. So is a row that
breaks its series' plausibility contract (``series.implausible``: value or attribute outside
its band, percentiles out of order, dated before the series began or, given the import's New
York date ``today``, after it): ``FILE:LINE: <series> <date>: <the bound>``, the same contract
the sources apply to live answers.

Memory: date-sorted CSV files are streamed row by row (out-of-order or duplicate dates are an
error). The DTS export is newest first: its rows are streamed and one small tuple per record date
is kept to emit ascending. The JSON files are single documents (each under 2 MB) loaded whole and
sorted; events are still produced lazily.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watchdog.market.calendar import next_business_day
from watchdog.model.errors import ImportFailed
from watchdog.model.events import NewEvent, Observation, Speech, content_hash, new_observation, new_speech
from watchdog.model.numbers import is_missing, norm, scale, to_decimal
from watchdog.model.redact import redact_url
from watchdog.market.series import SERIES, implausible, nominal_publication
from watchdog.model.timefmt import end_of_day_new_york, new_york, utc_text

__all__ = [
    "COMPANION_FILES", "HISTORY_FILES", "KINDS", "REFERENCE_FILES", "HistoryParser", "infer_kind",
    "iter_file_events", "iter_history_events",
]

SOURCE_FRED = "fred"
SOURCE_FOMC = "fomc"
SOURCE_NYFED = "nyfed"
SOURCE_FISCALDATA = "fiscaldata"
SOURCE_SPEECHES = "fed-speeches-archive"

_MILLIONS_TO_BILLIONS = Decimal("0.001")

# A plain decimal as written by FRED, the FOMC tables and the NY Fed API: no exponent, no
# thousands separator, no NaN/Infinity. Anything else is malformed (and reported), not guessed.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME_TEXT = re.compile(r"(\d{1,2}):(\d{2})")


class _RowError(ValueError):
    """A problem with one row; the caller adds ``FILE:LINE``."""


# --------------------------------------------------------------------------------------------
# small helpers


def _decimal(text: Any, what: str) -> Decimal:
    if not isinstance(text, str) or not _DECIMAL_TEXT.fullmatch(text.strip()):
        raise _RowError(f"{what}: not a decimal number: {text!r}")
    try:
        value = to_decimal(text)
    except ValueError as exc:  # pragma: no cover - the regex already guarantees a number
        raise _RowError(f"{what}: {exc}") from None
    return value


def _date(text: Any, what: str) -> date:
    if not isinstance(text, str) or not _DATE_TEXT.fullmatch(text.strip()):
        raise _RowError(f"{what}: not a YYYY-MM-DD date: {text!r}")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise _RowError(f"{what}: not a valid date: {text!r}") from None


def _announcement_instant(day_text: str, time_text: str, zone_text: str) -> datetime:
    day = _date(day_text, "announcement_date")
    match = _TIME_TEXT.fullmatch((time_text or "").strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise _RowError(f"announcement_time: not HH:MM: {time_text!r}")
    try:
        zone = ZoneInfo((zone_text or "").strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise _RowError(f"timezone: unknown time zone: {zone_text!r}") from None
    return datetime.combine(day, time(int(match.group(1)), int(match.group(2))), zone)


def _relative_name(path: Path) -> str:
    """The provenance name of a file: its ``HISTORY_FILES``/``COMPANION_FILES`` name when it is
    one of the known files (``rates/SOFR.csv``), else its bare file name. Never an absolute path:
    the same file must give the same events wherever the folder lives."""
    candidate = f"{path.parent.name}/{path.name}"
    if candidate in HISTORY_FILES or candidate in COMPANION_FILES:
        return candidate
    return path.name


def _observation(series: str, day: date, value: Decimal, source: str, provenance: dict[str, str],
                 published: datetime, attributes: dict[str, str] | None = None, *, where: str,
                 today: date | None = None) -> NewEvent:
    """The observation event of one row (``where`` is its ``FILE:LINE``), or ``ImportFailed``
    naming the bound when the row breaks its series' plausibility contract
    (``series.implausible``; ``today``, when given, is the import's New York date)."""
    reason = implausible(series, day, value, attributes or {}, today=today)
    if reason is not None:
        raise ImportFailed(f"{where}: {series} {day.isoformat()}: {reason}")
    obs = Observation(series=series, date=day.isoformat(), value=norm(value),
                      unit=SERIES[series].unit, source=source, attributes=attributes or {},
                      provenance=provenance)
    return new_observation(obs, utc_text(published))


def _open_text(path: Path, display: str):
    try:
        return path.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFailed(f"{display}: cannot read: {exc.strerror or exc}") from None


def _csv_rows(path: Path, display: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for every non-blank row, header included; decoding errors and CSV
    syntax errors become ``ImportFailed`` with the line."""
    with _open_text(path, display) as handle:
        reader = csv.reader(handle, strict=True)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise ImportFailed(f"{display}:{reader.line_num + 1}: unreadable row: {exc}") from None
            if not any(cell.strip() for cell in row):
                continue  # a blank line (or a row of empty cells) is not a record
            yield reader.line_num, row


# --------------------------------------------------------------------------------------------
# FRED CSVs (FRED-native `observation_date,ID` and fredapi-derived `Date,Value`)

_FRED_DATE_COLUMNS = {"observation_date", "date"}


def _fred_events(path: Path, rel: str, display: str, *, series: str, fred_id: str,
                 change_points_only: bool = False, raw_unit: str = "percent",
                 factor: Decimal | None = None,
                 published: Callable[[date], datetime] | None = None,
                 skip: frozenset[date] = frozenset(),
                 extra_provenance: dict[str, str] | None = None,
                 today: date | None = None) -> Iterator[NewEvent]:
    """One observation per dated value of a FRED CSV. ``factor`` converts the file's unit to the
    catalogue's exactly (``0.001``: $ millions -> USD bn); ``published`` replaces the nominal
    publication time (current vintages: their snapshot instant); dates in ``skip`` are left out
    (GDP quarters that have a first print)."""
    rows = _csv_rows(path, display)
    header = next(rows, None)
    if header is None:
        raise ImportFailed(f"{display}:1: empty file (expected a header like observation_date,{fred_id})")
    line, cells = header
    names = [c.strip() for c in cells]
    if (len(names) != 2 or names[0].lower() not in _FRED_DATE_COLUMNS
            or names[1] not in (fred_id, "Value", "value")):
        raise ImportFailed(f"{display}:{line}: unexpected header {','.join(cells)!r} "
                           f"(expected observation_date,{fred_id} or Date,Value)")
    previous_day: date | None = None
    previous_value: Decimal | None = None
    for line, cells in rows:
        try:
            if len(cells) != 2:
                raise _RowError(f"expected 2 columns (date,value), got {len(cells)}")
            day = _date(cells[0], "date")
            if previous_day is not None and day <= previous_day:
                raise _RowError(f"date {day} is not after the previous row's {previous_day} "
                                "(the file must be sorted by date, one row per date)")
            previous_day = day
            raw = cells[1].strip()
            if is_missing(raw):
                continue
            value = _decimal(raw, "value")
        except _RowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        if change_points_only and previous_value is not None and value == previous_value:
            continue
        previous_value = value
        if day in skip:
            continue
        if factor is not None:
            value = scale(value, factor)
        provenance = {"file": rel, "raw_value": raw, "raw_unit": raw_unit, "fred_series": fred_id}
        if extra_provenance:
            provenance.update(extra_provenance)
        yield _observation(series, day, value, SOURCE_FRED, provenance,
                           published(day) if published else nominal_publication(series, day),
                           where=f"{display}:{line}", today=today)


# --------------------------------------------------------------------------------------------
# FOMC implementation-note tables (one row per change of an administered rate)

_FOMC_COLUMNS = ("announcement_date", "announcement_time", "timezone", "effective_date",
                 "rate_percent")


def _fomc_events(path: Path, rel: str, display: str, *, series: str,
                 extra_columns: tuple[str, ...], url_columns: tuple[str, ...],
                 fields: frozenset[str] = frozenset(),
                 today: date | None = None) -> Iterator[NewEvent]:
    rows = _csv_rows(path, display)
    header = next(rows, None)
    if header is None:
        raise ImportFailed(f"{display}:1: empty file (expected a header with {', '.join(_FOMC_COLUMNS)})")
    line, names = header
    names = [n.strip() for n in names]
    required = _FOMC_COLUMNS + extra_columns + url_columns
    missing = [c for c in required if c not in names]
    if missing:
        raise ImportFailed(f"{display}:{line}: header lacks column(s) {', '.join(missing)}")
    if len(set(names)) != len(names):
        raise ImportFailed(f"{display}:{line}: duplicate column names in header")
    previous: date | None = None
    for line, cells in rows:
        try:
            if len(cells) != len(names):
                raise _RowError(f"expected {len(names)} columns, got {len(cells)}")
            row = dict(zip(names, (c.strip() for c in cells)))
            effective = _date(row["effective_date"], "effective_date")
            announced = _announcement_instant(row["announcement_date"], row["announcement_time"],
                                              row["timezone"])
            if announced.date() > effective:
                raise _RowError(f"announced on {announced.date()} after its effective date {effective}")
            if previous is not None and effective <= previous:
                raise _RowError(f"effective_date {effective} is not after the previous row's "
                                f"{previous} (the table must be sorted, one row per date)")
            previous = effective
            if fields and row["field"] not in fields:
                raise _RowError(f"field: expected one of {', '.join(sorted(fields))}, got {row['field']!r}")
            raw = row["rate_percent"]
            if is_missing(raw):
                continue
            value = _decimal(raw, "rate_percent")
        except _RowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        provenance = {"file": rel, "raw_value": raw, "raw_unit": "percent",
                      "announcement": f"{row['announcement_date']} {row['announcement_time']} "
                                      f"{row['timezone']}"}
        for column in extra_columns:
            provenance[column] = row[column]
        for column in url_columns:
            if row[column]:
                provenance[column] = redact_url(row[column])
        yield _observation(series, effective, value, SOURCE_FOMC, provenance, announced,
                           where=f"{display}:{line}", today=today)


# --------------------------------------------------------------------------------------------
# NY Fed Markets API JSON (`{"refRates": [...]}`, newest first)

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


# Numbers come back as their exact source text (``"5.40"``), never as floats.
_JSON_DECODER = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_reject_constant)
_WS = re.compile(r"[ \t\n\r]*")
_PERCENTILES = (("p1", "percentPercentile1"), ("p25", "percentPercentile25"),
                ("p75", "percentPercentile75"), ("p99", "percentPercentile99"))


def _load_json(path: Path, display: str) -> tuple[str, Any]:
    """(text, document) of a JSON file; numbers come back as their exact source text."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{display}:1: not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise ImportFailed(f"{display}: cannot read: {exc.strerror or exc}") from None
    try:
        return text, _JSON_DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed(f"{display}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:
        raise ImportFailed(f"{display}:1: invalid JSON: {exc}") from None


_REF_RATES_OPENING = r'\s*\{\s*"refRates"\s*:\s*\['


def _load_ref_rates(path: Path, display: str) -> list[tuple[int, dict[str, Any]]]:
    """(line, record) for each element of ``refRates``, in file order."""
    text, document = _load_json(path, display)
    if not isinstance(document, dict) or not isinstance(document.get("refRates"), list):
        raise ImportFailed(f"{display}:1: expected an object with a \"refRates\" array")
    records = document["refRates"]
    return list(zip(_record_lines(text, len(records), _REF_RATES_OPENING), records))


def _record_lines(text: str, count: int, opening: str) -> list[int]:
    """The line on which each element of the array that ``opening`` (a regex matched at the start
    of the text, ending with the array's ``[``) opens starts, for error messages. The document was
    already validated; this walk only locates the elements. Falls back to line 1."""
    match = re.match(opening, text)
    if match is None:
        return [1] * count
    lines, position = [], match.end()
    newlines_before, counted_to = text.count("\n", 0, position), position
    for _ in range(count):
        position = _WS.match(text, position).end()
        newlines_before += text.count("\n", counted_to, position)
        counted_to = position
        lines.append(newlines_before + 1)
        try:
            _, position = _JSON_DECODER.raw_decode(text, position)
        except ValueError:
            return lines + [lines[-1]] * (count - len(lines))
        position = _WS.match(text, position).end()
        if position < len(text) and text[position] == ",":
            position += 1
    return lines


def _nyfed_volumes(path: Path, display: str) -> dict[date, str]:
    """date -> raw ``volumeInBillions`` text of a NY Fed volume file."""
    volumes: dict[date, str] = {}
    for line, record in _load_ref_rates(path, display):
        try:
            if not isinstance(record, dict):
                raise _RowError("refRates element is not an object")
            day = _date(record.get("effectiveDate"), "effectiveDate")
            if day in volumes:
                raise _RowError(f"effectiveDate {day} appears twice")
            raw = record.get("volumeInBillions")
            if is_missing(raw):
                continue
            _decimal(raw, "volumeInBillions")
        except _RowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        volumes[day] = raw
    return volumes


def _nyfed_events(path: Path, rel: str, display: str, *, series: str, rate_type: str,
                  volume_path: Path | None = None,
                  today: date | None = None) -> Iterator[NewEvent]:
    """One observation per record: value = ``percentRate``, attributes p1/p25/p75/p99 (a percentile
    the API gives as ``"NA"`` is left out) and, when a volume file is joined, ``volume`` (USD bn).
    Records are emitted in ascending date order whatever the file's order."""
    records = _load_ref_rates(path, display)
    volumes: dict[date, str] = {}
    volume_rel = ""
    if volume_path is not None:
        volume_rel = _relative_name(volume_path)
        volumes = _nyfed_volumes(volume_path, str(volume_path))
    parsed: list[tuple[date, int, dict[str, Any]]] = []
    seen: dict[date, int] = {}
    for line, record in records:
        try:
            if not isinstance(record, dict):
                raise _RowError("refRates element is not an object")
            day = _date(record.get("effectiveDate"), "effectiveDate")
            if record.get("type") != rate_type:
                raise _RowError(f"type: expected {rate_type!r}, got {record.get('type')!r}")
            if day in seen:
                raise _RowError(f"effectiveDate {day} appears twice (first on line {seen[day]})")
            seen[day] = line
        except _RowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        parsed.append((day, line, record))
    parsed.sort(key=lambda item: item[0])
    del records, seen
    for day, line, record in parsed:
        try:
            raw = record.get("percentRate")
            if is_missing(raw):
                continue
            value = _decimal(raw, "percentRate")
            attributes: dict[str, str] = {}
            provenance = {"file": rel, "raw_value": raw, "raw_unit": "percent"}
            for name, field in _PERCENTILES:
                raw_attr = record.get(field)
                if is_missing(raw_attr):
                    continue
                attributes[name] = norm(_decimal(raw_attr, field))
                provenance[f"raw_{name}"] = raw_attr
            if day in volumes:
                attributes["volume"] = norm(to_decimal(volumes[day]))
                provenance["raw_volume"] = volumes[day]
                provenance["volume_file"] = volume_rel
            if record.get("footnoteId") not in (None, ""):
                provenance["footnote_id"] = str(record["footnoteId"])
            if record.get("revisionIndicator") not in (None, ""):
                provenance["revision_indicator"] = str(record["revisionIndicator"])
        except _RowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        yield _observation(series, day, value, SOURCE_NYFED, provenance,
                           nominal_publication(series, day), attributes,
                           where=f"{display}:{line}", today=today)


def _sofr_volume_companion(path: Path) -> Path | None:
    """``sofr_rate_percentiles_<range>.json`` -> ``sofr_volume_<range>.json`` beside it, if any."""
    prefix = "sofr_rate_percentiles_"
    if not path.name.startswith(prefix):
        return None
    companion = path.with_name("sofr_volume_" + path.name[len(prefix):])
    return companion if companion.is_file() else None


def _volume_only(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
    raise ImportFailed(
        f"{display}: SOFR volume is imported as the 'volume' attribute of sofr: import the rate "
        f"file sofr_rate_percentiles_<same dates>.json beside it, which joins this file by date")
    yield  # pragma: no cover


# --------------------------------------------------------------------------------------------
# ALFRED initial-release payload (FRED API JSON, ``output_type=4``): first prints with the date
# each became public.

_ALFRED_OPENING = r'[^\[]*"observations"\s*:\s*\['


def _alfred_first_release(path: Path, display: str) -> list[tuple[int, date, date, str, str]]:
    """(line, observation date, realtime_start, realtime_end text, raw value) per first print, in
    ascending date; missing values (``"."``) are left out. Refuses any payload that is not an
    initial-release (``output_type`` 4) response: other output types mix in revised values."""
    text, document = _load_json(path, display)
    if not isinstance(document, dict) or not isinstance(document.get("observations"), list):
        raise ImportFailed(f"{display}:1: expected a FRED API object with an \"observations\" array")
    if str(document.get("output_type")) != "4":
        raise ImportFailed(f"{display}:1: output_type is {document.get('output_type')!r}, not 4: only an "
                           "initial-release (first print) payload can be dated by its realtime_start")
    records = document["observations"]
    parsed: list[tuple[int, date, date, str, str]] = []
    seen: dict[date, int] = {}
    for line, record in zip(_record_lines(text, len(records), _ALFRED_OPENING), records):
        try:
            if not isinstance(record, dict):
                raise _RowError("observation is not an object")
            day = _date(record.get("date"), "date")
            start = _date(record.get("realtime_start"), "realtime_start")
            if start <= day:
                raise _RowError(f"realtime_start {start} is not after the observation date {day}")
            if day in seen:
                raise _RowError(f"date {day} appears twice (first on line {seen[day]})")
            seen[day] = line
            raw = record.get("value")
            if is_missing(raw):
                continue
            _decimal(raw, "value")
        except _RowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        parsed.append((line, day, start, str(record.get("realtime_end", "")), raw))
    parsed.sort(key=lambda item: item[1])
    return parsed


def _alfred_events(path: Path, rel: str, display: str, *, series: str, fred_id: str,
                   raw_unit: str, today: date | None = None) -> Iterator[NewEvent]:
    """First prints, each published at its ``realtime_start`` date at the series' release time
    (GDP: 08:30 New York); ``provenance.vintage`` is that instant."""
    hour, minute = SERIES[series].publish_at
    for line, day, start, end, raw in _alfred_first_release(path, display):
        published = new_york(start, hour, minute)
        provenance = {"file": rel, "raw_value": raw, "raw_unit": raw_unit, "fred_series": fred_id,
                      "output_type": "4", "realtime_start": start.isoformat(),
                      "realtime_end": end, "vintage": utc_text(published)}
        yield _observation(series, day, _decimal(raw, "value"), SOURCE_FRED, provenance, published,
                           where=f"{display}:{line}", today=today)


# --------------------------------------------------------------------------------------------
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
            "importer._CURRENT_VINTAGES and data/history/PROVENANCE.md")
    return snapshot


def _first_release_companion(path: Path, name: str) -> Path | None:
    """The ALFRED first-release file ``name`` beside ``path`` or in ``../fred/``, if any."""
    for candidate in (path.with_name(name), path.parent.parent / "fred" / name):
        if candidate.is_file():
            return candidate
    return None


def _current_vintage_events(path: Path, rel: str, display: str, *, series: str, fred_id: str,
                            raw_unit: str, first_release: str | None = None,
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
    return _fred_events(path, rel, display, series=series, fred_id=fred_id, raw_unit=raw_unit,
                        published=lambda _day: instant, skip=skip, extra_provenance=provenance,
                        today=today)


# --------------------------------------------------------------------------------------------
# Daily Treasury Statement, Table I "Operating Cash Balance" (fiscaldata.treasury.gov website
# CSV export: human column labels, UTF-8 BOM, newest first, $ millions)

_DTS_DATE, _DTS_ACCOUNT, _DTS_OPENING = "Record Date", "Type of Account", "Opening Balance Today"
_DTS_CLOSING_ROW = "Treasury General Account (TGA) Closing Balance"
# The Treasury's account at the Fed, by era: one of these rows per record date holds its opening
# balance. "Federal Reserve Account" was renamed "Treasury General Account (TGA)" on 2021-10-01.
_DTS_OPENING_ROWS = frozenset({"Federal Reserve Account", "Treasury General Account (TGA)",
                               "Treasury General Account (TGA) Opening Balance"})
_DTS_OTHER_ROWS = frozenset({"Supplementary Financing Program Account",
                             "Short-Term Cash Investments (Table V)",
                             "Total TGA Deposits (Table II)", "Total TGA Withdrawals (Table II) (-)"})


@dataclass
class _DtsDay:
    opening: tuple[Decimal, str, str] | None = None   # value, raw text, row label
    closing: tuple[Decimal, str] | None = None        # value, raw text
    opening_line: int = 0
    closing_line: int = 0


def _dts_days(path: Path, display: str) -> dict[date, _DtsDay]:
    rows = _csv_rows(path, display)
    header = next(rows, None)
    if header is None:
        raise ImportFailed(f"{display}:1: empty file (expected a header with {_DTS_DATE}, "
                           f"{_DTS_ACCOUNT}, {_DTS_OPENING})")
    line, names = header
    names = [n.strip() for n in names]
    missing = [c for c in (_DTS_DATE, _DTS_ACCOUNT, _DTS_OPENING) if c not in names]
    if missing:
        raise ImportFailed(f"{display}:{line}: header lacks column(s) {', '.join(missing)}")
    i_date, i_account, i_open = (names.index(c) for c in (_DTS_DATE, _DTS_ACCOUNT, _DTS_OPENING))
    days: dict[date, _DtsDay] = {}
    current: date | None = None
    for line, cells in rows:
        try:
            if len(cells) != len(names):
                raise _RowError(f"expected {len(names)} columns, got {len(cells)}")
            day = _date(cells[i_date], _DTS_DATE)
            if day != current:
                if current is not None and day > current:
                    raise _RowError(f"record date {day} is after the previous row's {current} "
                                    "(the export must be sorted newest first)")
                if day in days:
                    raise _RowError(f"record date {day} appears again after other dates")
                days[day] = _DtsDay()
                current = day
            account = cells[i_account].strip()
            raw = cells[i_open].strip()
            if account in _DTS_OTHER_ROWS:
                continue
            if account not in _DTS_OPENING_ROWS and account != _DTS_CLOSING_ROW:
                raise _RowError(f"{_DTS_ACCOUNT}: unexpected account {account!r}")
            record = days[day]
            if account == _DTS_CLOSING_ROW:
                if record.closing is not None:
                    raise _RowError(f"a second {account!r} row for {day}")
                if not is_missing(raw):
                    record.closing = (_decimal(raw, _DTS_OPENING), raw)
                    record.closing_line = line
            else:
                if record.opening is not None:
                    raise _RowError(f"a second opening-balance row for {day} ({account!r})")
                if not is_missing(raw):
                    record.opening = (_decimal(raw, _DTS_OPENING), raw, account)
                    record.opening_line = line
        except _RowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
    return days


def _dts_events(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
    """``tga``: the TGA closing balance for each record date T, $ millions -> USD bn exactly.

    - From 2022-04-18 the export has a row "Treasury General Account (TGA) Closing Balance"; its
      ``Opening Balance Today`` column holds T's closing balance (the export has no "Closing
      Balance Today" column at all). ``provenance.method`` = ``closing-row``.
    - Before that (2021-06-24 .. 2022-04-15) the export has opening balances only, so T's closing
      balance is taken as the opening balance of the **next record date** of the same account
      ("Federal Reserve Account" to 2021-09-30, renamed "Treasury General Account (TGA)" on
      2021-10-01, then the "... Opening Balance" row from 2022-04-18): ``method`` =
      ``next-opening``, ``derived_from`` names that date and row. This is done only when the next
      record date is the next Fed business day after T (no statement missing in between);
      otherwise T is not imported.

    Verified on the shipped export (tests/test_importer.py): (1) on all 1,046 consecutive pairs
    from 2022-04-18, where both are printed, T's closing balance equals the next record date's
    opening balance exactly (0 differences), and the record dates are consecutive Fed business
    days with no gap; (2) the derived 2021-06-24 .. 2022-04-15 closings, averaged over each H.4.1
    week (Thursday..Wednesday, a weekend or holiday carrying the previous balance), reproduce
    FRED WTREGEN (an independent series) within $1 million on every week, as the printed
    closings do; (3) 2021-10-01's "Opening Balance This Fiscal Year" equals its opening balance,
    i.e. the closing of 2021-09-30 across the renaming. The derivation is exact, so every record
    date is imported (the last one, 2026-06-23, has its closing row).

    ``published_at`` is the DTS nominal publication, T+1 Fed business day 16:00 New York, also for
    derived dates: the statement for T printed T's closing balance (the column the export drops);
    the value read here is the same number, as printed one statement later.
    """
    days = _dts_days(path, display)
    ordered = sorted(days)
    for index, day in enumerate(ordered):
        record = days[day]
        provenance = {"file": rel, "raw_unit": "USD mn", "column": _DTS_OPENING}
        if record.closing is not None:
            value, raw = record.closing
            line = record.closing_line
            provenance.update(raw_value=raw, account=_DTS_CLOSING_ROW, method="closing-row")
        else:
            following = ordered[index + 1] if index + 1 < len(ordered) else None
            if (following is None or following != next_business_day("fed", day)
                    or days[following].opening is None):
                continue
            value, raw, account = days[following].opening
            line = days[following].opening_line
            provenance.update(raw_value=raw, account=account, method="next-opening",
                              derived_from=f"{following.isoformat()} {account}")
        yield _observation("tga", day, scale(value, _MILLIONS_TO_BILLIONS), SOURCE_FISCALDATA,
                           provenance, nominal_publication("tga", day), where=f"{display}:{line}",
                           today=today)


# --------------------------------------------------------------------------------------------
# Fed speeches archive (JSON arrays, newest first; dates like "December 18, 2019")

_MONTHS = {name: number for number, name in enumerate(
    ("January", "February", "March", "April", "May", "June", "July", "August", "September",
     "October", "November", "December"), start=1)}
_SPEECH_DATE = re.compile(r"([A-Z][a-z]+) (\d{1,2}), (\d{4})")


def _speech_date(text: Any) -> date:
    match = _SPEECH_DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or match.group(1) not in _MONTHS:
        raise _RowError(f"date: not a date like 'December 18, 2019': {text!r}")
    try:
        return date(int(match.group(3)), _MONTHS[match.group(1)], int(match.group(2)))
    except ValueError:
        raise _RowError(f"date: not a valid date: {text!r}") from None


def _text_field(record: dict[str, Any], name: str, required: bool) -> str:
    value = record.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _RowError(f"{name}: expected a non-empty string, got {value!r}")
    return value


def _speech_events(path: Path, rel: str, display: str, *, institution: str,
                   today: date | None = None) -> Iterator[NewEvent]:
    """One ``speech-recorded`` per record with text, ascending by date (records of one date in
    the reverse of the file's newest-first order). ``published_at``: end of the speech date in
    New York (the archive gives no time of day). A record without ``content`` is skipped."""
    text, document = _load_json(path, display)
    if not isinstance(document, list):
        raise ImportFailed(f"{display}:1: expected a JSON array of speeches")
    parsed: list[tuple[date, Speech]] = []
    for line, record in zip(_record_lines(text, len(document), r"\s*\["), document):
        try:
            if not isinstance(record, dict):
                raise _RowError("speech is not an object")
            day = _speech_date(record.get("date"))
            speaker = _text_field(record, "speaker", True)
            title = _text_field(record, "title", True)
            position = _text_field(record, "position", False)
            href = _text_field(record, "href", False)
            content = record.get("content")
            if content is None or (isinstance(content, str) and not content.strip()):
                continue
            if not isinstance(content, str):
                raise _RowError(f"content: expected a string, got {type(content).__name__}")
        except _RowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        speech = Speech(speaker=speaker, institution=institution, date=day.isoformat(),
                        title=title, url=redact_url(href.strip()) if href.strip() else "",
                        text=content, content_hash=content_hash(content), source=SOURCE_SPEECHES,
                        position=position,
                        provenance={"file": rel, "raw_date": record["date"]})
        parsed.append((day, speech))
    parsed.reverse()                          # the files are newest first
    parsed.sort(key=lambda item: item[0])     # stable: ties keep the reversed file order
    for day, speech in parsed:
        yield new_speech(speech, utc_text(end_of_day_new_york(day)))


# --------------------------------------------------------------------------------------------
# registry

# --------------------------------------------------------------------------------------------
# NY Fed Markets "reference rates" CSV export (all five rates, MM/DD/YYYY, newest first)

_NYFED_CSV_ATTRIBUTES = {"1st Percentile (%)": "p1", "25th Percentile (%)": "p25",
                         "75th Percentile (%)": "p75", "99th Percentile (%)": "p99",
                         "Volume ($Billions)": "volume"}


def _nyfed_csv_events(path: Path, rel: str, display: str, *, series: str,
                      rate_type: str, today: date | None = None) -> Iterator[NewEvent]:
    """The rows of one ``Rate Type``: value = ``Rate (%)``, percentiles and volume as attributes,
    published at the series' nominal time (OBFR: T+1 09:00 ET, Fed calendar). Only one rate type
    is taken: the others are already in the log from the NY Fed JSON history with the same
    values, and a second, differently shaped copy would only add attribute-only revisions."""
    rows = _csv_rows(path, display)
    header = next(rows, (1, []))[1]
    column = {name.strip().lstrip("\ufeff"): i for i, name in enumerate(header)}
    needed = ["Effective Date", "Rate Type", "Rate (%)", *_NYFED_CSV_ATTRIBUTES]
    if missing := [name for name in needed if name not in column]:
        raise ImportFailed(f"{display}:1: not a NY Fed reference-rates export (missing {', '.join(missing)})")
    records = []
    for line, cells in rows:
        if cells[column["Rate Type"]].strip() != rate_type:
            continue
        try:
            day = datetime.strptime(cells[column["Effective Date"]].strip(), "%m/%d/%Y").date()
            value = _decimal(cells[column["Rate (%)"]], "Rate (%)")
            attributes = {name: norm(_decimal(cells[column[label]], label))
                          for label, name in _NYFED_CSV_ATTRIBUTES.items() if cells[column[label]].strip()}
        except (ValueError, _RowError) as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        records.append((day, line, value, attributes, cells[column["Rate (%)"]].strip()))
    for day, line, value, attributes, raw in sorted(records, key=lambda r: r[:2]):
        yield _observation(series, day, value, SOURCE_NYFED, {"file": rel, "raw_value": raw, "raw_unit": "percent"},
                           nominal_publication(series, day), attributes, where=f"{display}:{line}",
                           today=today)


@dataclass(frozen=True)
class HistoryParser:
    """A parser for one kind of history file: ``parser(path, rel)`` yields its events.

    ``rel`` is the provenance name of the file (default: see ``_relative_name``)."""
    kind: str
    series: str
    source: str
    patterns: tuple[str, ...]          # file-name globs that identify this kind
    parse: Callable[..., Iterator[NewEvent]]
    description: str = ""

    def __call__(self, path: Path, rel: str | None = None, *,
                 today: date | None = None) -> Iterator[NewEvent]:
        """``today``, when given, is the import's New York date: a row dated after it (plus its
        series' ``lead_days``) is refused like any implausible row."""
        path = Path(path)
        return self.parse(path, rel if rel is not None else _relative_name(path), str(path),
                          today=today)


def _fred(kind: str, series: str, fred_id: str, *, change_points_only: bool = False,
          raw_unit: str = "percent", factor: Decimal | None = None,
          description: str = "") -> HistoryParser:
    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        return _fred_events(path, rel, display, series=series, fred_id=fred_id,
                            change_points_only=change_points_only, raw_unit=raw_unit,
                            factor=factor, today=today)
    return HistoryParser(kind, series, SOURCE_FRED, (f"{fred_id}.csv",), parse, description)


def _fred_current(kind: str, series: str, fred_id: str, *, raw_unit: str,
                  first_release: str | None = None, description: str = "") -> HistoryParser:
    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        return _current_vintage_events(path, rel, display, series=series, fred_id=fred_id,
                                       raw_unit=raw_unit, first_release=first_release, today=today)
    return HistoryParser(kind, series, SOURCE_FRED, (f"{fred_id}.csv",), parse, description)


def _alfred(kind: str, series: str, fred_id: str, *, raw_unit: str,
            description: str = "") -> HistoryParser:
    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        return _alfred_events(path, rel, display, series=series, fred_id=fred_id, raw_unit=raw_unit,
                              today=today)
    pattern = f"{fred_id}_observations_output_type4_*.json"
    return HistoryParser(kind, series, SOURCE_FRED, (pattern,), parse, description)


def _speeches(kind: str, institution: str, pattern: str, description: str) -> HistoryParser:
    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        return _speech_events(path, rel, display, institution=institution, today=today)
    return HistoryParser(kind, "", SOURCE_SPEECHES, (pattern,), parse, description)


def _fomc(kind: str, series: str, pattern: str, *, extra: tuple[str, ...], urls: tuple[str, ...],
          fields: frozenset[str] = frozenset(), description: str = "") -> HistoryParser:
    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        return _fomc_events(path, rel, display, series=series, extra_columns=extra,
                            url_columns=urls, fields=fields, today=today)
    return HistoryParser(kind, series, SOURCE_FOMC, (pattern,), parse, description)


def _nyfed(kind: str, series: str, rate_type: str, *, join_volume: bool = False,
           description: str = "") -> HistoryParser:
    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        volume = _sofr_volume_companion(path) if join_volume else None
        return _nyfed_events(path, rel, display, series=series, rate_type=rate_type,
                             volume_path=volume, today=today)
    pattern = f"{series}_rate_percentiles_*.json"
    return HistoryParser(kind, series, SOURCE_NYFED, (pattern,), parse, description)


_NYFED_SOFR = _nyfed("nyfed-sofr", "sofr", "SOFR", join_volume=True,
                     description="NY Fed SOFR with percentiles; joins sofr_volume_<same dates>.json")
_NYFED_TGCR = _nyfed("nyfed-tgcr", "tgcr", "TGCR", description="NY Fed TGCR with percentiles")
_NYFED_BGCR = _nyfed("nyfed-bgcr", "bgcr", "BGCR", description="NY Fed BGCR with percentiles")
_FOMC_IORB = _fomc(
    "fomc-iorb", "iorb", "iorb_ioer_changes.csv", extra=("field",),
    urls=("implementation_note_url", "statement_url"), fields=frozenset({"IOER", "IORB"}),
    description="IOER (to 2021-07-28) and IORB (from 2021-07-29) changes: one canonical series")
_FOMC_ONRRP = _fomc("fomc-onrrp-rate", "onrrp_rate", "on_rrp_rate_changes.csv", extra=(),
                    urls=("source_url",), description="ON RRP offering rate changes")
_FOMC_SRF = _fomc("fomc-srf-rate", "srf_rate", "srf_min_bid_rate_changes.csv", extra=(),
                  urls=("source_url",), description="SRF minimum bid rate changes")
_FRED_SOFR = _fred("fred-sofr", "sofr", "SOFR", description="FRED SOFR (fills dates NY Fed lacks)")
_FRED_EFFR = _fred("fred-effr", "effr", "EFFR", description="FRED EFFR")
_FRED_IORB = _fred("fred-iorb", "iorb", "IORB",
                   description="FRED IORB, daily incl. weekends (fills dates the FOMC table lacks)")
# The target range is a step function: FRED repeats the same value every calendar day, so only
# the change points are facts worth a log row. The engine joins step series by "latest value on
# or before D", which reconstructs every day exactly; a missing (empty) FRED day neither ends a
# run nor starts one.
_FRED_TARU = _fred("fred-fftarget-upper", "fftarget_upper", "DFEDTARU", change_points_only=True,
                   description="FOMC target range top: change points only (step series)")
_FRED_TARL = _fred("fred-fftarget-lower", "fftarget_lower", "DFEDTARL", change_points_only=True,
                   description="FOMC target range bottom: change points only (step series)")
_NYFED_SOFR_VOLUME = HistoryParser(
    "nyfed-sofr-volume", "sofr", SOURCE_NYFED, ("sofr_volume_*.json",), _volume_only,
    "NY Fed SOFR volume: joined into the sofr percentile file's events, not imported alone")
_DTS_TGA = HistoryParser(
    "fiscaldata-dts-tga", "tga", SOURCE_FISCALDATA, ("DTS_OpCashBal_*.csv",),
    lambda path, rel, display, today=None: _dts_events(path, rel, display, today),
    "DTS Table I website export: TGA closing balance ($ mn -> USD bn; derived before 2022-04-18)")
_FRED_RESERVES = _fred("fred-reserves", "reserves", "WRESBAL", raw_unit="USD mn",
                       factor=_MILLIONS_TO_BILLIONS,
                       description="H.4.1 reserve balances, week average ($ mn -> USD bn)")
_FRED_FED_ASSETS = _fred("fred-fed-assets", "fed_assets", "WALCL", raw_unit="USD mn",
                         factor=_MILLIONS_TO_BILLIONS,
                         description="H.4.1 Fed total assets, Wednesday level ($ mn -> USD bn)")
_FRED_TGA_WEEKLY = _fred("fred-tga-weekly-avg", "tga_weekly_avg", "WTREGEN", raw_unit="USD mn",
                         factor=_MILLIONS_TO_BILLIONS,
                         description="H.4.1 TGA week average ($ mn -> USD bn); never spliced into tga")
_GDP_FIRST_RELEASE_FILE = "GDP_observations_output_type4_initial_release.json"
_ALFRED_GDP = _alfred("alfred-gdp-first-release", "gdp", "GDP", raw_unit="USD bn SAAR",
                      description="GDP first prints (ALFRED output_type=4), at their vintage date 08:30")
_FRED_GDP_CURRENT = _fred_current(
    "fred-gdp-current", "gdp", "GDP", raw_unit="USD bn SAAR", first_release=_GDP_FIRST_RELEASE_FILE,
    description="GDP current vintage, only quarters without a first print, at the snapshot instant")
_FRED_M2_CURRENT = _fred_current(
    "fred-m2-current", "m2", "M2SL", raw_unit="USD bn",
    description="M2 current vintage (no first prints available), at the snapshot instant")
_FRED_ONRRP = _fred("fred-onrrp", "onrrp", "RRPONTSYD", raw_unit="USD bn",
                    description="FRED ON RRP take-up (fills dates the NY Fed primary lacks)")
_NYFED_CSV_OBFR = HistoryParser(
    "nyfed-csv-obfr", "obfr", SOURCE_NYFED, ("nyfed_reference_rates_*.csv",),
    functools.partial(_nyfed_csv_events, series="obfr", rate_type="OBFR"),
    "NY Fed reference-rates CSV export: its OBFR rows (the only OBFR history shipped)")
_SPEECHES_BOARD = _speeches("speeches-board", "Board of Governors", "bog_speeches_*.json",
                            "Board of Governors speeches with full text (federalreserve.gov)")
_SPEECHES_NEW_YORK = _speeches("speeches-new-york", "New York Fed", "newyork_speeches_*.json",
                               "New York Fed speeches with full text (newyorkfed.org)")

KINDS: dict[str, HistoryParser] = {p.kind: p for p in (
    _NYFED_SOFR, _NYFED_TGCR, _NYFED_BGCR, _FOMC_IORB, _FOMC_ONRRP, _FOMC_SRF,
    _FRED_SOFR, _FRED_EFFR, _FRED_IORB, _FRED_TARU, _FRED_TARL, _NYFED_SOFR_VOLUME,
    _DTS_TGA, _FRED_RESERVES, _FRED_FED_ASSETS, _FRED_TGA_WEEKLY, _ALFRED_GDP, _FRED_GDP_CURRENT,
    _FRED_M2_CURRENT, _FRED_ONRRP, _SPEECHES_BOARD, _SPEECHES_NEW_YORK, _NYFED_CSV_OBFR)}

_SPEECH_YEARS = range(2019, 2025)

# The shipped history, in import order. For each series its primary source comes first (NY Fed
# with percentiles and the FOMC announcement tables before FRED's copies; ALFRED first prints
# before the current GDP vintage); a later file only fills dates the earlier ones lack. Files
# added later are appended, so the log built from the earlier registry stays a prefix.
HISTORY_FILES: dict[str, HistoryParser] = {
    "nyfed/sofr_rate_percentiles_2018-04-03_2026-09-03.json": _NYFED_SOFR,
    "nyfed/tgcr_rate_percentiles_2018-04-03_2026-09-04.json": _NYFED_TGCR,
    "nyfed/bgcr_rate_percentiles_2018-04-03_2026-09-04.json": _NYFED_BGCR,
    "rates/iorb_ioer_changes.csv": _FOMC_IORB,
    "rates/on_rrp_rate_changes.csv": _FOMC_ONRRP,
    "rates/srf_min_bid_rate_changes.csv": _FOMC_SRF,
    "rates/SOFR.csv": _FRED_SOFR,
    "rates/EFFR.csv": _FRED_EFFR,
    "rates/IORB.csv": _FRED_IORB,
    "rates/DFEDTARU.csv": _FRED_TARU,
    "rates/DFEDTARL.csv": _FRED_TARL,
    "treasury/DTS_OpCashBal_20210624_20260623.csv": _DTS_TGA,
    "balance_sheet/WRESBAL.csv": _FRED_RESERVES,
    "balance_sheet/WALCL.csv": _FRED_FED_ASSETS,
    "treasury/WTREGEN.csv": _FRED_TGA_WEEKLY,
    f"fred/{_GDP_FIRST_RELEASE_FILE}": _ALFRED_GDP,
    "macro/GDP.csv": _FRED_GDP_CURRENT,
    "macro/M2SL.csv": _FRED_M2_CURRENT,
    "facilities/RRPONTSYD.csv": _FRED_ONRRP,
    **{f"speeches/bog_speeches_{year}.json": _SPEECHES_BOARD for year in _SPEECH_YEARS},
    **{f"speeches/newyork_speeches_{year}.json": _SPEECHES_NEW_YORK for year in _SPEECH_YEARS},
    "rates/nyfed_reference_rates_2026-01-02_2026-08-03.csv": _NYFED_CSV_OBFR,   # appended last:
}                                                     # earlier example logs stay a prefix

# Files that produce no events of their own but are joined into another file's events.
COMPANION_FILES: dict[str, str] = {
    "nyfed/sofr_volume_2018-04-03_2026-09-03.json":
        "nyfed/sofr_rate_percentiles_2018-04-03_2026-09-03.json",
}

# Files shipped in data/history but not imported, and why.
REFERENCE_FILES: dict[str, str] = {
    "balance_sheet/qt_runoff_caps.csv":
        "QT runoff caps (Treasury and MBS, $bn/month) map to no series of the catalogue "
        "(watchdog/market/series.py); add a series such as qt_cap_treasury/qt_cap_mbs first",
    "speeches/bog_speech_infos.json":
        "metadata only (no text): for 2019-2024 it equals the speech files' speaker, position, "
        "date, title and URL exactly (checked by the tests), and 2006-2018 have no text to record",
}


def infer_kind(path: Path) -> str:
    """The kind of a history file, from its name (``SOFR.csv`` -> ``fred-sofr``)."""
    name = Path(path).name
    for kind, parser in KINDS.items():
        if any(fnmatchcase(name, pattern) for pattern in parser.patterns):
            return kind
    for rel, reason in REFERENCE_FILES.items():
        if name == Path(rel).name:
            raise ImportFailed(f"{path}: not imported: {reason}")
    raise ImportFailed(f"{path}: unknown history file name; known kinds: {', '.join(KINDS)} "
                       "(pass kind= to choose one)")


def iter_file_events(path: Path, kind: str | None = None, *,
                     today: date | None = None) -> Iterator[NewEvent]:
    """The events of one history file, in ascending observation date.

    ``kind`` is one of ``KINDS`` (inferred from the file name when ``None``). Raises
    ``ImportFailed("FILE:LINE: reason")`` on the first malformed or implausible row (``today``:
    the import's New York date, if given); missing values are skipped.
    """
    path = Path(path)
    if kind is None:
        kind = infer_kind(path)
    parser = KINDS.get(kind)
    if parser is None:
        raise ImportFailed(f"{path}: unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    return parser(path, today=today)


def iter_history_events(data_dir: Path, *, today: date | None = None) -> Iterator[NewEvent]:
    """The events of every ``HISTORY_FILES`` file present under ``data_dir``, file by file in the
    registry's fixed order (primary sources first), each file in date order. Deterministic: the
    same files give the same events in the same order. Raises ``ImportFailed`` when ``data_dir``
    holds none of the known files (most likely a wrong folder)."""
    data_dir = Path(data_dir)
    present = [(rel, parser) for rel, parser in HISTORY_FILES.items() if (data_dir / rel).is_file()]
    if not present:
        raise ImportFailed(f"{data_dir}: none of the known history files is there "
                           f"(expected e.g. {next(iter(HISTORY_FILES))})")
    for rel, parser in present:
        yield from parser(data_dir / rel, rel, today=today)


def import_paths(store, paths: list[Path], chunk: int = 5000, *,
                 today: date | None = None) -> dict[str, tuple[int, int]]:
    """Append the facts of every path (a history folder or single files) to ``store``.

    Returns ``{name: (facts read, events appended)}``. Idempotent: the store deduplicates, so a
    second import of the same files appends nothing; a changed value becomes a revision.
    ``today`` is the New York date the import runs on: no row may be dated after it (beyond its
    series' ``lead_days``). The CLI passes the wall clock's, not ``--recorded-at``'s.
    """
    counts: dict[str, tuple[int, int]] = {}
    for path in paths:
        events = (iter_history_events(path, today=today) if path.is_dir()
                  else iter_file_events(path, today=today))
        seen = added = 0
        batch: list[NewEvent] = []
        for event in events:
            batch.append(event)
            seen += 1
            if len(batch) >= chunk:
                added += len(store.append(batch))
                batch = []
        added += len(store.append(batch))
        counts[str(path)] = (seen, added)
    return counts
