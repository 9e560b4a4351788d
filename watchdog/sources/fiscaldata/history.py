"""Fiscal Data history: the TGA closing balance (series ``tga``) from the Daily Treasury Statement,
Table I "Operating Cash Balance" -- what ``fiscaldata.live`` reads from the API, here from the
fiscaldata.treasury.gov website CSV export (``treasury/DTS_OpCashBal_*.csv``: human column
labels, UTF-8 BOM, newest first, $ millions). See ``_dts_events`` for how the closing balance is
read and, before 2022-04-18, derived, and how that derivation was verified.

The export is newest first: its rows are streamed and one small tuple per record date is kept to
emit ascending.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from watchdog.market.calendar import next_business_day
from watchdog.market.series import nominal_publication
from watchdog.model.errors import ImportFailed
from watchdog.model.events import NewEvent
from watchdog.model.numbers import is_missing, scale
from watchdog.sources.files import (
    FileRowError,
    HistoryParser,
    csv_rows,
    exact_decimal,
    iso_date,
    observation,
)
from watchdog.sources.fiscaldata.live import MILLIONS_TO_BILLIONS, SERIES, SOURCE

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
    rows = csv_rows(path, display)
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
                raise FileRowError(f"expected {len(names)} columns, got {len(cells)}")
            day = iso_date(cells[i_date], _DTS_DATE)
            if day != current:
                if current is not None and day > current:
                    raise FileRowError(f"record date {day} is after the previous row's {current} "
                                       "(the export must be sorted newest first)")
                if day in days:
                    raise FileRowError(f"record date {day} appears again after other dates")
                days[day] = _DtsDay()
                current = day
            account = cells[i_account].strip()
            raw = cells[i_open].strip()
            if account in _DTS_OTHER_ROWS:
                continue
            if account not in _DTS_OPENING_ROWS and account != _DTS_CLOSING_ROW:
                raise FileRowError(f"{_DTS_ACCOUNT}: unexpected account {account!r}")
            record = days[day]
            if account == _DTS_CLOSING_ROW:
                if record.closing is not None:
                    raise FileRowError(f"a second {account!r} row for {day}")
                if not is_missing(raw):
                    record.closing = (exact_decimal(raw, _DTS_OPENING), raw)
                    record.closing_line = line
            else:
                if record.opening is not None:
                    raise FileRowError(f"a second opening-balance row for {day} ({account!r})")
                if not is_missing(raw):
                    record.opening = (exact_decimal(raw, _DTS_OPENING), raw, account)
                    record.opening_line = line
        except FileRowError as exc:
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
        yield observation(SERIES, day, scale(value, MILLIONS_TO_BILLIONS), SOURCE,
                          provenance, nominal_publication(SERIES, day), where=f"{display}:{line}",
                          today=today)


TGA = HistoryParser(
    "fiscaldata-dts-tga", SERIES, SOURCE, ("DTS_OpCashBal_*.csv",), _dts_events,
    "DTS Table I website export: TGA closing balance ($ mn -> USD bn; derived before 2022-04-18)")
