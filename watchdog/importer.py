"""History importer: turn the shipped history files (``data/history``) into fact events.

Pure-ish: the parsers read files and yield ``NewEvent``s of type ``observation-recorded``; they
never touch the store, the network, asyncio or the clock. Appending them (and deduplicating by
``(series, date)``, keeping each series' primary source) is the store's job.

Every event carries:

- ``value``: the file's number parsed **as text** into a ``Decimal`` (never through a float) and
  normalised with ``numbers.norm`` (``"2.30"``, ``"2.3"`` and ``"2.300"`` are all ``"2.3"``);
- ``unit`` from the series catalogue, ``source`` naming where the number came from (``nyfed``,
  ``fomc``, ``fred``);
- ``provenance``: ``file`` (the name relative to the history folder, e.g. ``rates/SOFR.csv``, so
  events do not depend on where the folder lives), ``raw_value`` (the text exactly as in the
  file), ``raw_unit`` and a few source-specific fields (URLs, FRED series id, raw percentiles);
- ``published_at``: the real publication instant. Where the file gives one (FOMC
  implementation-note tables: announcement date, time and zone) it is that instant; otherwise it
  is the series' nominal publication time (``series.nominal_publication``: SOFR for T at T+1
  SIFMA business day 08:00 New York time, EFFR T+1 Fed business day 09:00, ...).

Order (``iter_history_events``): files in the fixed order of ``HISTORY_FILES`` -- primary sources
first (NY Fed JSON with percentiles, then the FOMC tables), FRED fills last -- so the fact the
store keeps for a ``(series, date)`` is the primary's; within a file, ascending observation date.

Malformed input raises ``ImportFailed("FILE:LINE: reason")``. A value that is clearly missing
(``numbers.is_missing``: empty, ``.``, ``NA`` ...) is skipped, not an error.

Memory: CSV files are streamed row by row (and must therefore be sorted by date: out-of-order or
duplicate dates are an error). The NY Fed JSON files are single documents (newest first); each is
loaded whole (under 0.5 MB) and its records sorted, events are still produced lazily.
"""
from __future__ import annotations

import csv
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

from watchdog.errors import ImportFailed
from watchdog.events import NewEvent, Observation, new_observation
from watchdog.numbers import is_missing, norm, to_decimal
from watchdog.redact import redact_url
from watchdog.series import SERIES, nominal_publication
from watchdog.timefmt import utc_text

__all__ = [
    "COMPANION_FILES", "HISTORY_FILES", "KINDS", "HistoryParser", "infer_kind",
    "iter_file_events", "iter_history_events",
]

SOURCE_FRED = "fred"
SOURCE_FOMC = "fomc"
SOURCE_NYFED = "nyfed"

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
                 published: datetime, attributes: dict[str, str] | None = None) -> NewEvent:
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
                 change_points_only: bool) -> Iterator[NewEvent]:
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
        provenance = {"file": rel, "raw_value": raw, "raw_unit": "percent", "fred_series": fred_id}
        yield _observation(series, day, value, SOURCE_FRED, provenance,
                           nominal_publication(series, day))


# --------------------------------------------------------------------------------------------
# FOMC implementation-note tables (one row per change of an administered rate)

_FOMC_COLUMNS = ("announcement_date", "announcement_time", "timezone", "effective_date",
                 "rate_percent")


def _fomc_events(path: Path, rel: str, display: str, *, series: str,
                 extra_columns: tuple[str, ...], url_columns: tuple[str, ...],
                 fields: frozenset[str] = frozenset()) -> Iterator[NewEvent]:
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
        yield _observation(series, effective, value, SOURCE_FOMC, provenance, announced)


# --------------------------------------------------------------------------------------------
# NY Fed Markets API JSON (`{"refRates": [...]}`, newest first)

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


# Numbers come back as their exact source text (``"5.40"``), never as floats.
_JSON_DECODER = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_reject_constant)
_WS = re.compile(r"[ \t\n\r]*")
_PERCENTILES = (("p1", "percentPercentile1"), ("p25", "percentPercentile25"),
                ("p75", "percentPercentile75"), ("p99", "percentPercentile99"))


def _load_ref_rates(path: Path, display: str) -> list[tuple[int, dict[str, Any]]]:
    """(line, record) for each element of ``refRates``, in file order."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{display}:1: not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise ImportFailed(f"{display}: cannot read: {exc.strerror or exc}") from None
    try:
        document = _JSON_DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed(f"{display}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:
        raise ImportFailed(f"{display}:1: invalid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("refRates"), list):
        raise ImportFailed(f"{display}:1: expected an object with a \"refRates\" array")
    records = document["refRates"]
    return list(zip(_record_lines(text, len(records)), records))


def _record_lines(text: str, count: int) -> list[int]:
    """The line on which each ``refRates`` element starts (for error messages). The document was
    already validated; this walk only locates the elements. Falls back to line 1."""
    match = re.match(r'\s*\{\s*"refRates"\s*:\s*\[', text)
    if match is None:
        return [1] * count
    lines, position = [], match.end()
    newlines_before, counted_to = 0, 0
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
                  volume_path: Path | None = None) -> Iterator[NewEvent]:
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
                           nominal_publication(series, day), attributes)


def _sofr_volume_companion(path: Path) -> Path | None:
    """``sofr_rate_percentiles_<range>.json`` -> ``sofr_volume_<range>.json`` beside it, if any."""
    prefix = "sofr_rate_percentiles_"
    if not path.name.startswith(prefix):
        return None
    companion = path.with_name("sofr_volume_" + path.name[len(prefix):])
    return companion if companion.is_file() else None


def _volume_only(path: Path, rel: str, display: str) -> Iterator[NewEvent]:
    raise ImportFailed(
        f"{display}: SOFR volume is imported as the 'volume' attribute of sofr: import the rate "
        f"file sofr_rate_percentiles_<same dates>.json beside it, which joins this file by date")
    yield  # pragma: no cover


# --------------------------------------------------------------------------------------------
# registry

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

    def __call__(self, path: Path, rel: str | None = None) -> Iterator[NewEvent]:
        path = Path(path)
        return self.parse(path, rel if rel is not None else _relative_name(path), str(path))


def _fred(kind: str, series: str, fred_id: str, *, change_points_only: bool = False,
          description: str = "") -> HistoryParser:
    def parse(path: Path, rel: str, display: str) -> Iterator[NewEvent]:
        return _fred_events(path, rel, display, series=series, fred_id=fred_id,
                            change_points_only=change_points_only)
    return HistoryParser(kind, series, SOURCE_FRED, (f"{fred_id}.csv",), parse, description)


def _fomc(kind: str, series: str, pattern: str, *, extra: tuple[str, ...], urls: tuple[str, ...],
          fields: frozenset[str] = frozenset(), description: str = "") -> HistoryParser:
    def parse(path: Path, rel: str, display: str) -> Iterator[NewEvent]:
        return _fomc_events(path, rel, display, series=series, extra_columns=extra,
                            url_columns=urls, fields=fields)
    return HistoryParser(kind, series, SOURCE_FOMC, (pattern,), parse, description)


def _nyfed(kind: str, series: str, rate_type: str, *, join_volume: bool = False,
           description: str = "") -> HistoryParser:
    def parse(path: Path, rel: str, display: str) -> Iterator[NewEvent]:
        volume = _sofr_volume_companion(path) if join_volume else None
        return _nyfed_events(path, rel, display, series=series, rate_type=rate_type,
                             volume_path=volume)
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

KINDS: dict[str, HistoryParser] = {p.kind: p for p in (
    _NYFED_SOFR, _NYFED_TGCR, _NYFED_BGCR, _FOMC_IORB, _FOMC_ONRRP, _FOMC_SRF,
    _FRED_SOFR, _FRED_EFFR, _FRED_IORB, _FRED_TARU, _FRED_TARL, _NYFED_SOFR_VOLUME)}

# The shipped history, in import order: primary sources first (NY Fed with percentiles, FOMC
# announcement tables), then FRED, which only fills dates the primary lacks.
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
}

# Files that produce no events of their own but are joined into another file's events.
COMPANION_FILES: dict[str, str] = {
    "nyfed/sofr_volume_2018-04-03_2026-09-03.json":
        "nyfed/sofr_rate_percentiles_2018-04-03_2026-09-03.json",
}


def infer_kind(path: Path) -> str:
    """The kind of a history file, from its name (``SOFR.csv`` -> ``fred-sofr``)."""
    name = Path(path).name
    for kind, parser in KINDS.items():
        if any(fnmatchcase(name, pattern) for pattern in parser.patterns):
            return kind
    raise ImportFailed(f"{path}: unknown history file name; known kinds: {', '.join(KINDS)} "
                       "(pass kind= to choose one)")


def iter_file_events(path: Path, kind: str | None = None) -> Iterator[NewEvent]:
    """The events of one history file, in ascending observation date.

    ``kind`` is one of ``KINDS`` (inferred from the file name when ``None``). Raises
    ``ImportFailed("FILE:LINE: reason")`` on the first malformed row; missing values are skipped.
    """
    path = Path(path)
    if kind is None:
        kind = infer_kind(path)
    parser = KINDS.get(kind)
    if parser is None:
        raise ImportFailed(f"{path}: unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    return parser(path)


def iter_history_events(data_dir: Path) -> Iterator[NewEvent]:
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
        yield from parser(data_dir / rel, rel)


def import_paths(store, paths: list[Path], chunk: int = 5000) -> dict[str, tuple[int, int]]:
    """Append the facts of every path (a history folder or single files) to ``store``.

    Returns ``{name: (facts read, events appended)}``. Idempotent: the store deduplicates, so a
    second import of the same files appends nothing; a changed value becomes a revision.
    """
    counts: dict[str, tuple[int, int]] = {}
    for path in paths:
        events = iter_history_events(path) if path.is_dir() else iter_file_events(path)
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
