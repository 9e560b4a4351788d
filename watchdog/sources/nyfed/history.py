"""NY Fed history files: what ``nyfed.rates`` reads live, from the shipped copies.

- Markets API JSON (``nyfed/<rate>_rate_percentiles_<range>.json``, ``{"refRates": [...]}``,
  newest first): SOFR, TGCR and BGCR, value ``percentRate`` and the percentiles p1/p25/p75/p99
  as attributes (a percentile the API gives as ``"NA"`` is left out). SOFR's volume comes in a
  companion file, ``sofr_volume_<same range>.json`` beside it, joined by date as the ``volume``
  attribute (USD bn); imported alone it is refused. Records are emitted in ascending date order
  whatever the file's order; each file is loaded whole and sorted.
- The reference-rates CSV export (``nyfed_reference_rates_<range>.csv``: all five rates,
  MM/DD/YYYY, newest first): only its OBFR rows, the only OBFR history shipped.

``published_at`` is the series' nominal publication (SOFR, TGCR, BGCR for T: T+1 SIFMA business
day 08:00 New York; OBFR: T+1 Fed business day 09:00).
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from watchdog.market.series import nominal_publication
from watchdog.model.errors import ImportFailed
from watchdog.model.events import NewEvent
from watchdog.model.numbers import is_missing, norm, to_decimal
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
from watchdog.sources.nyfed.fields import (
    CSV_ATTRIBUTES,
    PERCENTILE_FIELDS,
    TYPE_OF_SERIES,
    VOLUME_FIELD,
)
from watchdog.sources.nyfed.rates import SOURCE

_REF_RATES_OPENING = r'\s*\{\s*"refRates"\s*:\s*\['


def _load_ref_rates(path: Path, display: str) -> list[tuple[int, dict[str, Any]]]:
    """(line, record) for each element of ``refRates``, in file order."""
    text, document = read_json(path, display)
    if not isinstance(document, dict) or not isinstance(document.get("refRates"), list):
        raise ImportFailed(f"{display}:1: expected an object with a \"refRates\" array")
    records = document["refRates"]
    return list(zip(record_lines(text, len(records), _REF_RATES_OPENING), records))


def _volumes(path: Path, display: str) -> dict[date, str]:
    """date -> raw volume text of a NY Fed volume file."""
    volumes: dict[date, str] = {}
    for line, record in _load_ref_rates(path, display):
        try:
            if not isinstance(record, dict):
                raise FileRowError("refRates element is not an object")
            day = iso_date(record.get("effectiveDate"), "effectiveDate")
            if day in volumes:
                raise FileRowError(f"effectiveDate {day} appears twice")
            raw = record.get(VOLUME_FIELD)
            if is_missing(raw):
                continue
            exact_decimal(raw, VOLUME_FIELD)
        except FileRowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        volumes[day] = raw
    return volumes


def _rate_events(path: Path, rel: str, display: str, *, series: str,
                 volume: tuple[Path, str] | None = None,
                 today: date | None = None) -> Iterator[NewEvent]:
    """One observation per record: value = ``percentRate``, the percentiles as attributes and,
    when a volume file is joined (``volume``: its path and provenance name), ``volume``."""
    rate_type = TYPE_OF_SERIES[series]
    records = _load_ref_rates(path, display)
    volumes: dict[date, str] = {}
    volume_rel = ""
    if volume is not None:
        volume_path, volume_rel = volume
        volumes = _volumes(volume_path, str(volume_path))
    parsed: list[tuple[date, int, dict[str, Any]]] = []
    seen: dict[date, int] = {}
    for line, record in records:
        try:
            if not isinstance(record, dict):
                raise FileRowError("refRates element is not an object")
            day = iso_date(record.get("effectiveDate"), "effectiveDate")
            if record.get("type") != rate_type:
                raise FileRowError(f"type: expected {rate_type!r}, got {record.get('type')!r}")
            if day in seen:
                raise FileRowError(f"effectiveDate {day} appears twice (first on line {seen[day]})")
            seen[day] = line
        except FileRowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        parsed.append((day, line, record))
    parsed.sort(key=lambda item: item[0])
    del records, seen
    for day, line, record in parsed:
        try:
            raw = record.get("percentRate")
            if is_missing(raw):
                continue
            value = exact_decimal(raw, "percentRate")
            attributes: dict[str, str] = {}
            provenance = {"file": rel, "raw_value": raw, "raw_unit": "percent"}
            for field, name in PERCENTILE_FIELDS.items():
                raw_attr = record.get(field)
                if is_missing(raw_attr):
                    continue
                attributes[name] = norm(exact_decimal(raw_attr, field))
                provenance[f"raw_{name}"] = raw_attr
            if day in volumes:
                attributes["volume"] = norm(to_decimal(volumes[day]))
                provenance["raw_volume"] = volumes[day]
                provenance["volume_file"] = volume_rel
            if record.get("footnoteId") not in (None, ""):
                provenance["footnote_id"] = str(record["footnoteId"])
            if record.get("revisionIndicator") not in (None, ""):
                provenance["revision_indicator"] = str(record["revisionIndicator"])
        except FileRowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        yield observation(series, day, value, SOURCE, provenance,
                          nominal_publication(series, day), attributes,
                          where=f"{display}:{line}", today=today)


def _sofr_volume(path: Path, rel: str) -> tuple[Path, str] | None:
    """``sofr_rate_percentiles_<range>.json`` -> ``sofr_volume_<range>.json`` beside it, if any,
    and its provenance name: the rate file's, with the companion's file name (the two sit in
    one folder of the history tree)."""
    prefix = "sofr_rate_percentiles_"
    if not path.name.startswith(prefix):
        return None
    companion = path.with_name("sofr_volume_" + path.name[len(prefix):])
    if not companion.is_file():
        return None
    folder, slash, _ = rel.rpartition("/")
    return companion, f"{folder}{slash}{companion.name}"


def _volume_only(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
    raise ImportFailed(
        f"{display}: SOFR volume is imported as the 'volume' attribute of sofr: import the rate "
        f"file sofr_rate_percentiles_<same dates>.json beside it, which joins this file by date")
    yield  # pragma: no cover


def _csv_events(path: Path, rel: str, display: str, *, series: str,
                today: date | None = None) -> Iterator[NewEvent]:
    """The rows of one ``Rate Type``: value = ``Rate (%)``, percentiles and volume as attributes,
    published at the series' nominal time (OBFR: T+1 09:00 ET, Fed calendar). Only one rate type
    is taken: the others are already in the log from the NY Fed JSON history with the same
    values, and a second, differently shaped copy would only add attribute-only revisions."""
    rate_type = TYPE_OF_SERIES[series]
    rows = csv_rows(path, display)
    header = next(rows, (1, []))[1]
    column = {name.strip().lstrip("\ufeff"): i for i, name in enumerate(header)}
    needed = ["Effective Date", "Rate Type", "Rate (%)", *CSV_ATTRIBUTES]
    if missing := [name for name in needed if name not in column]:
        raise ImportFailed(f"{display}:1: not a NY Fed reference-rates export (missing {', '.join(missing)})")
    records = []
    for line, cells in rows:
        if cells[column["Rate Type"]].strip() != rate_type:
            continue
        try:
            day = datetime.strptime(cells[column["Effective Date"]].strip(), "%m/%d/%Y").date()
            value = exact_decimal(cells[column["Rate (%)"]], "Rate (%)")
            attributes = {name: norm(exact_decimal(cells[column[label]], label))
                          for label, name in CSV_ATTRIBUTES.items() if cells[column[label]].strip()}
        except (ValueError, FileRowError) as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        records.append((day, line, value, attributes, cells[column["Rate (%)"]].strip()))
    for day, line, value, attributes, raw in sorted(records, key=lambda r: r[:2]):
        yield observation(series, day, value, SOURCE, {"file": rel, "raw_value": raw, "raw_unit": "percent"},
                          nominal_publication(series, day), attributes, where=f"{display}:{line}",
                          today=today)


def _rates(kind: str, series: str, *, join_volume: bool = False,
           description: str = "") -> HistoryParser:
    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        volume = _sofr_volume(path, rel) if join_volume else None
        return _rate_events(path, rel, display, series=series, volume=volume, today=today)
    pattern = f"{series}_rate_percentiles_*.json"
    return HistoryParser(kind, series, SOURCE, (pattern,), parse, description)


SOFR = _rates("nyfed-sofr", "sofr", join_volume=True,
              description="NY Fed SOFR with percentiles; joins sofr_volume_<same dates>.json")
TGCR = _rates("nyfed-tgcr", "tgcr", description="NY Fed TGCR with percentiles")
BGCR = _rates("nyfed-bgcr", "bgcr", description="NY Fed BGCR with percentiles")
SOFR_VOLUME = HistoryParser(
    "nyfed-sofr-volume", "sofr", SOURCE, ("sofr_volume_*.json",), _volume_only,
    "NY Fed SOFR volume: joined into the sofr percentile file's events, not imported alone")
CSV_OBFR = HistoryParser(
    "nyfed-csv-obfr", "obfr", SOURCE, ("nyfed_reference_rates_*.csv",),
    functools.partial(_csv_events, series="obfr"),
    "NY Fed reference-rates CSV export: its OBFR rows (the only OBFR history shipped)")
