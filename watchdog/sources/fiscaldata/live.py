"""Treasury Fiscal Data: the daily TGA closing balance (series ``tga``) from the Daily Treasury
Statement, endpoint ``/v1/accounting/dts/operating_cash_balance``. No key, no published limit.

Quirks handled here (research/data-sources.md §3): every value is a string and null is the
*string* ``"null"``; balances are millions of dollars (``dataFormats`` ``$1,000,000``), checked
when the response states it; ``links`` are query fragments, not URLs, so pages are rebuilt from
our own URL and ``meta.total-pages``; and the closing balance moved twice:

- until 2021-09-30: the ``Federal Reserve Account`` row, ``close_today_bal``;
- 2021-10-01 .. 2022-04-15: the ``Treasury General Account (TGA)`` row, ``close_today_bal``;
- from 2022-04-18: the ``Treasury General Account (TGA) Closing Balance`` row, whose
  ``close_today_bal`` is "null" and whose closing balance is in ``open_today_bal``.

A day that has rows but no closing balance is an error, not a gap: that is how the next schema
change will show itself. The DTS for day T is public at 16:00 ET on T+1 (Fed calendar); live,
``published_at`` is capped at the fetch time, in a backfill it stays nominal.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import aiohttp

from watchdog.model.config import FiscalDataConfig
from watchdog.model.events import NewEvent, Observation, new_observation
from watchdog.model.numbers import is_missing, norm, scale
from watchdog.model.redact import redact_url
from watchdog.market.series import spec
from watchdog.sources.base import Fetched, LookbackSource, Sleep, failure_event, fetch, printable
from watchdog.sources.parsing import (BodyError, Parsed, RowError, array_field, bounded_number,
                                      failures_of, json_kind, load_json, new_york_date, number,
                                      parse_day, published_text, vetted)

log = logging.getLogger(__name__)

SOURCE = "fiscaldata"
SERIES = "tga"
ENDPOINT = "/services/api/fiscal_service/v1/accounting/dts/operating_cash_balance"
MILLIONS_TO_BILLIONS = Decimal("0.001")
RAW_UNIT = "millions of dollars"
MILLIONS_FORMAT = "$1,000,000"      # meta.dataFormats of the balance columns
BALANCE_FIELDS = ("open_today_bal", "close_today_bal")
REQUIRED_FIELDS = ("record_date", "account_type") + BALANCE_FIELDS
MAX_PAGES = 1000                    # 1M rows at the largest page size: centuries of DTS
WHAT = "operating cash balance"

# account_type -> the fields that may hold that day's closing balance, in order of preference.
CLOSING_FIELDS: dict[str, tuple[str, ...]] = {
    "Federal Reserve Account": ("close_today_bal",),                    # until 2021-09-30
    "Treasury General Account (TGA)": ("close_today_bal",),             # to 2022-04-15
    # From 2022-04-18 close_today_bal is "null" here; should Treasury ever fill it, it must agree.
    "Treasury General Account (TGA) Closing Balance": ("open_today_bal", "close_today_bal"),
}


# ---- pure parsing ----

def parse_operating_cash_balance(body: bytes, *, fetched_at: datetime | None,
                                 source_url: str, today: date | None = None) -> Parsed:
    """One ``tga`` observation per day of an ``operating_cash_balance`` page; bad rows and days
    named. ``fetched_at`` caps ``published_at`` live; None (backfill) keeps it nominal."""
    try:
        rows, _ = read_page(body)
    except BodyError as exc:
        return Parsed(body_error=printable(str(exc)))
    url = redact_url(source_url)
    return parse_rows([(url, row) for row in rows], fetched_at=fetched_at, today=today)


def read_page(body: bytes) -> tuple[list[Any], int]:
    """(rows, meta.total-pages) of one page, or BodyError when the envelope is not the DTS."""
    data = load_json(body)
    rows = array_field(data, "data")
    _check_fields(rows)
    meta = data.get("meta")
    if not isinstance(meta, dict):
        raise BodyError(f"no 'meta' object (got a JSON {json_kind(meta)}): cannot tell how many "
                        f"pages there are")
    _check_units(meta)
    return rows, _total_pages(meta)


def _check_fields(rows: list[Any]) -> None:
    """A renamed column shows as a field no row has: one clear reason, not a bad row per row."""
    objects = [row for row in rows if isinstance(row, dict)]
    for name in REQUIRED_FIELDS if objects else ():
        if not any(name in row for row in objects):
            present = ", ".join(repr(key) for key in list(objects[0])[:16])
            raise BodyError(f"no row has the field {name!r} (row fields: {present})")


def _check_units(meta: dict) -> None:
    formats = meta.get("dataFormats")
    for name in BALANCE_FIELDS if isinstance(formats, dict) else ():
        shown = formats.get(name)
        if shown is not None and shown != MILLIONS_FORMAT:
            raise BodyError(f"{name} is given in {str(shown)[:40]!r}, expected millions "
                            f"({MILLIONS_FORMAT!r}): refusing to guess the unit")


def _total_pages(meta: dict) -> int:
    raw = meta.get("total-pages")
    try:
        pages = number(raw, "meta.total-pages")
    except RowError:
        pages = None
    if pages is None or pages != pages.to_integral_value() or pages < 0:
        raise BodyError(f"meta.total-pages is {str(raw)[:20]!r}, not a page count: cannot tell "
                        f"whether more pages follow")
    if pages > MAX_PAGES:
        raise BodyError(f"meta.total-pages is {pages}, more than {MAX_PAGES}: use a larger "
                        f"page_size or a shorter span")
    return int(pages)


@dataclass
class _Day:
    """What the rows of one record_date said: closing balances found, account types seen."""
    closing: list[tuple[str, str, str, Decimal, str]] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    failed: bool = False        # a closing row was there but unreadable (already named)


def parse_rows(rows: list[tuple[str, Any]], *, fetched_at: datetime | None,
               today: date | None = None) -> Parsed:
    """Events from (source url, row) pairs, possibly from several pages: a day's rows may
    straddle a page boundary, so days are judged only once every row is in. A day whose
    balance is not a fact (``parsing.vetted``: after ``today``, by default the New York date of
    ``fetched_at``, before the DTS began, outside the amount band) is named with its reason."""
    days: dict[date, _Day] = {}
    parsed = Parsed()
    for index, (url, row) in enumerate(rows, start=1):
        try:
            _read_row(url, row, days)
        except RowError as exc:
            parsed.bad_rows.append(printable(f"row {index} ({_row_label(row)}): {exc}"))
    candidates: list[tuple[str, NewEvent]] = []
    for day, seen in sorted(days.items()):
        try:
            event = _day_event(day, seen, fetched_at)
        except RowError as exc:
            parsed.bad_rows.append(printable(f"{day.isoformat()}: {exc}"))
            continue
        if event is not None:
            candidates.append((day.isoformat(), event))
    today = today if today is not None else new_york_date(fetched_at)
    parsed.events = vetted(candidates, today, parsed.bad_rows)
    return parsed


def _read_row(url: str, row: Any, days: dict[date, _Day]) -> None:
    day, account = _identity(row)
    seen = days.setdefault(day, _Day())
    seen.accounts.append(account)
    if account not in CLOSING_FIELDS:
        return                  # deposits, withdrawals, other accounts: not the closing balance
    try:
        seen.closing.append((url, account, *_closing_value(row, CLOSING_FIELDS[account])))
    except RowError:
        seen.failed = True
        raise


def _identity(row: Any) -> tuple[date, str]:
    if not isinstance(row, dict):
        raise RowError(f"expected a JSON object, got a JSON {json_kind(row)}")
    day = parse_day(row.get("record_date"), "record_date")
    account = row.get("account_type")
    if is_missing(account) or not isinstance(account, str):
        raise RowError(f"account_type: missing or not a string: {str(account)[:40]!r}")
    return day, account.strip()


def _closing_value(row: dict, fields: tuple[str, ...]) -> tuple[str, Decimal, str]:
    """(field, $mn value, raw text) of a closing row; RowError if absent or contradictory."""
    found = [(name, bounded_number(row.get(name), name), str(row.get(name)).strip())
             for name in fields if not is_missing(row.get(name))]
    if not found:
        raise RowError(f"{' and '.join(fields)}: null, so no closing balance")
    if any(value != found[0][1] for _, value, _ in found[1:]):
        shown = ", ".join(f"{name}={raw[:20]!r}" for name, _, raw in found)
        raise RowError(f"conflicting closing balances: {shown}")
    return found[0]


def _day_event(day: date, seen: _Day, fetched_at: datetime | None) -> NewEvent | None:
    if seen.failed:
        return None     # a closing row was unreadable (already named): the day is in doubt
    if not seen.closing:
        accounts = ", ".join(repr(a[:60]) for a in dict.fromkeys(seen.accounts))
        raise RowError(f"no TGA closing balance among the account types: {accounts}")
    values = {value for _, _, _, value, _ in seen.closing}
    if len(values) > 1:
        shown = ", ".join(f"{account!r} {raw}" for _, account, _, _, raw in seen.closing)
        raise RowError(f"conflicting closing balances: {shown}")
    url, account, name, value, raw = seen.closing[0]
    obs = Observation(
        series=SERIES, date=day.isoformat(), value=norm(scale(value, MILLIONS_TO_BILLIONS)),
        unit=spec(SERIES).unit, source=SOURCE,
        provenance={"url": url, "raw_value": raw, "raw_unit": RAW_UNIT,
                    "account_type": account, "field": name},
    )
    return new_observation(obs, published_text(SERIES, day, fetched_at))


def _row_label(row: Any) -> str:
    day = row.get("record_date") if isinstance(row, dict) else None
    return day[:40] if isinstance(day, str) else "?"


def without_last_day(rows: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Rows are sorted by date and a day's rows may straddle pages: when a later page could not
    be read, the last day read may be incomplete, so it is left for the next poll."""
    if not rows:
        return rows
    last = _row_label(rows[-1][1])
    return [(url, row) for url, row in rows if _row_label(row) != last]


# ---- the source ----

class _PageFailed(Exception):
    """A page could not be read; the message is the (secret-free) reason."""


class FiscalDataSource(LookbackSource):
    """Polls (or backfills) the DTS operating cash balance, following every page. Never raises.

    ``clock_now`` (optional) stamps when the response arrived, which caps published_at live;
    ``sleep`` is the wait between retries (injectable for tests)."""
    name = SOURCE
    what = WHAT

    def __init__(self, config: FiscalDataConfig, clock_now: Callable[[], datetime] | None = None,
                 *, sleep: Sleep = asyncio.sleep):
        self.config = config
        self._clock_now = clock_now
        self._timeout_s = config.timeout.total_seconds()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"FiscalDataSource(base_url={self.config.base_url!r})"

    @property
    def url(self) -> str:
        return f"{self.config.base_url.rstrip('/')}{ENDPOINT}"

    def params(self, start: date, page: int) -> dict[str, str]:
        return {"filter": f"record_date:gte:{start.isoformat()}", "sort": "record_date",
                "page[number]": str(page), "page[size]": str(self.config.page_size)}

    async def _collect(self, session: aiohttp.ClientSession, now: datetime, start: date,
                       live: bool) -> list[NewEvent]:
        rows, problems = await self._read_pages(session, start, now)
        fetched_at = (self._clock_now() if self._clock_now else now) if live else None
        parsed = parse_rows(rows, fetched_at=fetched_at, today=new_york_date(now))
        url = rows[0][0] if rows else redact_url(self.url)
        return parsed.events + failures_of(SOURCE, parsed, WHAT, now, url) + problems

    async def _read_pages(self, session: aiohttp.ClientSession, start: date,
                          now: datetime) -> tuple[list[tuple[str, Any]], list[NewEvent]]:
        """(source url, row) of every row on every page; a page that fails ends the reading
        with a failure event, keeping the complete days read before it."""
        rows: list[tuple[str, Any]] = []
        page, total = 1, 1
        while page <= total:
            got = await fetch(session, self.url, params=self.params(start, page),
                              timeout_s=self._timeout_s, retries=self.config.retries,
                              sleep=self._sleep)
            try:
                page_rows, total = _page_of(got, page)
            except _PageFailed as exc:
                log.warning("fiscaldata: %s (%s)", exc, got.url)
                return without_last_day(rows), [failure_event(SOURCE, str(exc), now, url=got.url)]
            rows += [(got.url, row) for row in page_rows]
            page += 1
        return rows, []


def _page_of(got: Fetched, page: int) -> tuple[list[Any], int]:
    what = f"{WHAT} page {page}"
    if got.error is not None:
        raise _PageFailed(f"{what}: {got.error}")
    try:
        return read_page(got.body)
    except BodyError as exc:
        raise _PageFailed(printable(f"{what}: bad response body: {exc}")) from None
