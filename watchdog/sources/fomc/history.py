"""FOMC implementation-note tables (``rates/iorb_ioer_changes.csv``, ``on_rrp_rate_changes.csv``,
``srf_min_bid_rate_changes.csv``): one row per change of an administered rate, the primary
history of ``iorb``, ``onrrp_rate`` and ``srf_rate``. No live source reads them; live, a
decision is recorded by ``watchdog announce`` the same way (source ``fomc``, published at the
announcement).

Each row gives the effective date and the announcement date, time and zone: ``published_at`` is
that announcement instant (never after the effective date), and the announcement, the table's
extra columns and its (redacted) URLs go into provenance.

The QT runoff caps (``balance_sheet/qt_runoff_caps.csv``) are FOMC decisions read the same way:
one row per decision with ``treasury_cap_bn`` and ``mbs_cap_bn`` ($ billions a month), each row
two step observations, ``qt_cap_treasury`` and ``qt_cap_mbs``, dated on the effective date and
published at the announcement. A cap the decision left unchanged (the MBS cap of 2019-05-01,
2024-06-01, 2025-04-01) is recorded as restated, which changes no day of the step series. Two rows
share the 2022-05-04 announcement (the phase-in: 30/17.5 from June, 60/35 from September), so
one announcement may set several effective dates, each published at that same instant. Caps of
0 mean runoff ended (2019-08-01, 2025-12-01): no runoff, not "no cap".
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watchdog.model.errors import ImportFailed
from watchdog.model.events import NewEvent
from watchdog.model.numbers import is_missing
from watchdog.model.redact import redact_url
from watchdog.sources.files import (
    FileRowError,
    HistoryParser,
    csv_rows,
    exact_decimal,
    iso_date,
    observation,
)

SOURCE = "fomc"

_COLUMNS = ("announcement_date", "announcement_time", "timezone", "effective_date",
            "rate_percent")
_TIME_TEXT = re.compile(r"(\d{1,2}):(\d{2})")


def _announcement_instant(day_text: str, time_text: str, zone_text: str) -> datetime:
    day = iso_date(day_text, "announcement_date")
    match = _TIME_TEXT.fullmatch((time_text or "").strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise FileRowError(f"announcement_time: not HH:MM: {time_text!r}")
    try:
        zone = ZoneInfo((zone_text or "").strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise FileRowError(f"timezone: unknown time zone: {zone_text!r}") from None
    return datetime.combine(day, time(int(match.group(1)), int(match.group(2))), zone)


def _decisions(path: Path, display: str, required: tuple[str, ...]
               ) -> Iterator[tuple[int, dict[str, str], date, datetime]]:
    """The rows of an FOMC decision table, checked: (line, row, effective date, announcement
    instant), effective dates strictly ascending, announced no later than effective. A bad row
    raises ``FileRowError`` from inside the loop, so the caller names its line."""
    rows = csv_rows(path, display)
    header = next(rows, None)
    if header is None:
        raise ImportFailed(f"{display}:1: empty file (expected a header with {', '.join(required)})")
    line, names = header
    names = [n.strip() for n in names]
    missing = [c for c in required if c not in names]
    if missing:
        raise ImportFailed(f"{display}:{line}: header lacks column(s) {', '.join(missing)}")
    if len(set(names)) != len(names):
        raise ImportFailed(f"{display}:{line}: duplicate column names in header")
    previous: date | None = None
    for line, cells in rows:
        try:
            if len(cells) != len(names):
                raise FileRowError(f"expected {len(names)} columns, got {len(cells)}")
            row = dict(zip(names, (c.strip() for c in cells)))
            effective = iso_date(row["effective_date"], "effective_date")
            announced = _announcement_instant(row["announcement_date"], row["announcement_time"],
                                              row["timezone"])
            if announced.date() > effective:
                raise FileRowError(f"announced on {announced.date()} after its effective date {effective}")
            if previous is not None and effective <= previous:
                raise FileRowError(f"effective_date {effective} is not after the previous row's "
                                   f"{previous} (the table must be sorted, one row per date)")
            previous = effective
        except FileRowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        yield line, row, effective, announced


def _announcement(row: dict[str, str]) -> str:
    return f"{row['announcement_date']} {row['announcement_time']} {row['timezone']}"


def _table_events(path: Path, rel: str, display: str, *, series: str,
                  extra_columns: tuple[str, ...], url_columns: tuple[str, ...],
                  fields: frozenset[str] = frozenset(),
                  today: date | None = None) -> Iterator[NewEvent]:
    for line, row, effective, announced in _decisions(path, display,
                                                      _COLUMNS + extra_columns + url_columns):
        try:
            if fields and row["field"] not in fields:
                raise FileRowError(f"field: expected one of {', '.join(sorted(fields))}, got {row['field']!r}")
            raw = row["rate_percent"]
            if is_missing(raw):
                continue
            value = exact_decimal(raw, "rate_percent")
        except FileRowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        provenance = {"file": rel, "raw_value": raw, "raw_unit": "percent",
                      "announcement": _announcement(row)}
        for column in extra_columns:
            provenance[column] = row[column]
        for column in url_columns:
            if row[column]:
                provenance[column] = redact_url(row[column])
        yield observation(series, effective, value, SOURCE, provenance, announced,
                          where=f"{display}:{line}", today=today)


def _table(kind: str, series: str, pattern: str, *, extra: tuple[str, ...], urls: tuple[str, ...],
           fields: frozenset[str] = frozenset(), description: str = "") -> HistoryParser:
    def parse(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
        return _table_events(path, rel, display, series=series, extra_columns=extra,
                             url_columns=urls, fields=fields, today=today)
    return HistoryParser(kind, series, SOURCE, (pattern,), parse, description)


IORB = _table(
    "fomc-iorb", "iorb", "iorb_ioer_changes.csv", extra=("field",),
    urls=("implementation_note_url", "statement_url"), fields=frozenset({"IOER", "IORB"}),
    description="IOER (to 2021-07-28) and IORB (from 2021-07-29) changes: one canonical series")
ONRRP_RATE = _table("fomc-onrrp-rate", "onrrp_rate", "on_rrp_rate_changes.csv", extra=(),
                    urls=("source_url",), description="ON RRP offering rate changes")
SRF_RATE = _table("fomc-srf-rate", "srf_rate", "srf_min_bid_rate_changes.csv", extra=(),
                  urls=("source_url",), description="SRF minimum bid rate changes")


# ---- QT runoff caps: one decision per row, two series ----

_QT_COLUMNS = ("announcement_date", "announcement_time", "timezone", "effective_date")
# column -> series, in the order each row's observations are emitted
_QT_CAPS = (("treasury_cap_bn", "qt_cap_treasury"), ("mbs_cap_bn", "qt_cap_mbs"))
_QT_RAW_UNIT = "$ billions per month"


def _qt_cap_events(path: Path, rel: str, display: str, *,
                   today: date | None = None) -> Iterator[NewEvent]:
    """Per row, the Treasury cap then the MBS cap, for its effective date (ascending)."""
    caps = tuple(column for column, _ in _QT_CAPS)
    for line, row, effective, announced in _decisions(path, display, _QT_COLUMNS + caps):
        try:
            values = [(column, series, row[column], None if is_missing(row[column])
                       else exact_decimal(row[column], column)) for column, series in _QT_CAPS]
        except FileRowError as exc:
            raise ImportFailed(f"{display}:{line}: {exc}") from None
        for column, series, raw, value in values:
            if value is None:
                continue
            provenance = {"file": rel, "raw_value": raw, "raw_unit": _QT_RAW_UNIT, "column": column,
                          "announcement": _announcement(row)}
            if row.get("source_url"):
                provenance["source_url"] = redact_url(row["source_url"])
            if row.get("page"):
                provenance["page"] = row["page"]
            yield observation(series, effective, value, SOURCE, provenance, announced,
                              where=f"{display}:{line}", today=today)


def _qt_caps(path: Path, rel: str, display: str, today: date | None = None) -> Iterator[NewEvent]:
    return _qt_cap_events(path, rel, display, today=today)


QT_CAPS = HistoryParser(
    "fomc-qt-caps", "qt_cap_treasury", SOURCE, ("qt_runoff_caps.csv",), _qt_caps,
    "QT runoff caps, USD bn a month: qt_cap_treasury and qt_cap_mbs from each FOMC decision")
