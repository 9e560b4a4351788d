"""OFR history: the Financial Stress Index (series ``ofr_fsi``) from a shipped copy of the CSV
``ofr.live`` polls (``ofr/fsi_*.csv``: 6,496 days, 2000-01-03 .. 2025-09-11).

Read with the live parser's own pieces (``live.read_header``, ``row_date``, ``row_values``): by
header name, values as text into ``Decimal``, ISO or ``M/D/YYYY`` dates, the eight components as
attributes (a column the header lacks, or an empty cell, leaves that attribute out; an empty index
cell skips the day). The file must be sorted by date, one row per date. Each value is published at
its nominal instant, T+2 SIFMA business days 11:00 New York (``series.nominal_publication``): the
OFR publishes no timestamps, and the day it first printed a value the file does not say.

The copy is one download's vintage: the OFR re-weights history when it replaces variables (2023),
so early values may differ from what was printed on the day. No first print is available; the
importer takes the file as it is, like FRED's non-revised series.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

from watchdog.market.series import nominal_publication
from watchdog.model.errors import ImportFailed
from watchdog.model.events import NewEvent
from watchdog.sources.files import HistoryParser, csv_rows, observation
from watchdog.sources.ofr.live import (
    DATE_COLUMN,
    RAW_UNIT,
    SERIES,
    SOURCE,
    VALUE_COLUMN,
    read_header,
    row_date,
    row_values,
)
from watchdog.sources.parsing import BodyError, RowError


def _fsi_events(path: Path, rel: str, display: str, *,
                today: date | None = None) -> Iterator[NewEvent]:
    rows = csv_rows(path, display)
    header = next(rows, None)
    if header is None:
        raise ImportFailed(f"{display}:1: empty file (expected a header with {DATE_COLUMN}, "
                           f"{VALUE_COLUMN} and the components)")
    line, cells = header
    try:
        layout = read_header(cells)
    except BodyError as exc:
        raise ImportFailed(f"{display}:{line}: {exc}") from None
    previous: date | None = None
    for line, cells in rows:
        try:
            day = row_date(layout, cells)
            if previous is not None and day <= previous:
                raise RowError(f"date {day} is not after the previous row's {previous} "
                               "(the file must be sorted by date, one row per date)")
            previous = day
            values = row_values(layout, cells)
        except RowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        if values is None:
            continue
        value, raw, attributes = values
        provenance = {"file": rel, "raw_value": raw, "raw_unit": RAW_UNIT}
        yield observation(SERIES, day, value, SOURCE, provenance, nominal_publication(SERIES, day),
                          attributes, where=f"{display}:{line}", today=today)


def _parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
    return _fsi_events(path, rel, display, today=today)


FSI = HistoryParser(
    "ofr-fsi", SERIES, SOURCE, ("fsi.csv", "fsi_*.csv"), _parse,
    "OFR Financial Stress Index with its 8 components, T+2 SIFMA business days 11:00 New York")
