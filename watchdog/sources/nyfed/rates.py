"""New York Fed reference rates (SOFR, TGCR, BGCR, EFFR, OBFR) from the Markets Data API.

``parse_reference_rates`` is pure: bytes in, observation events and reasons out. ``NyFedSource``
is the edge: one date search per configured rate, every failure turned into a ``source-failed``
event. The envelope is ``{"refRates": [...]}`` for both the search and the ``all/latest`` shapes;
``all/latest`` mixes observation dates (SOFRAI a business day ahead), so every row is keyed on its
own (type, effectiveDate), never on one date per response.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import aiohttp

from watchdog.market.series import spec
from watchdog.model.config import NyFedConfig
from watchdog.model.events import NewEvent, Observation, new_observation
from watchdog.model.numbers import is_missing, norm
from watchdog.model.redact import redact_url
from watchdog.model.timefmt import NEW_YORK
from watchdog.sources.base import failure_event, fetch
from watchdog.sources.nyfed.fields import EFFR_ATTRIBUTES, RATE_TYPES, ROW_ATTRIBUTES
from watchdog.sources.parsing import (
    BodyError,
    Parsed,
    RowError,
    array_field,
    failures_of,
    json_kind,
    load_json,
    new_york_date,
    number,
    parse_day,
    published_text,
    vetted,
)

log = logging.getLogger(__name__)

SOURCE = "nyfed"

# Canonical rate -> the API's path segment: repo rates are "secured", bank funding "unsecured".
RATE_GROUP = {"sofr": "secured", "tgcr": "secured", "bgcr": "secured",
              "effr": "unsecured", "obfr": "unsecured"}


# ---- pure parsing ----

def parse_reference_rates(body: bytes, *, fetched_at: datetime | None, source_url: str,
                          today: date | None = None) -> tuple[list[NewEvent], list[str]]:
    """Events for every good row of a ``{"refRates": [...]}`` body, and a reason per bad row.

    ``fetched_at`` caps ``published_at`` live; ``None`` (history, backfill) keeps the nominal
    publication time. A body that is not the envelope gives no events and one reason.
    ``today`` (default: the New York date of ``fetched_at``) is the latest date a row may carry.
    """
    parsed = parse_body(body, fetched_at=fetched_at, source_url=source_url, today=today)
    return parsed.events, parsed.reasons()


def parse_body(body: bytes, *, fetched_at: datetime | None, source_url: str,
               today: date | None = None) -> Parsed:
    """Rows that are facts (``parsing.vetted``: plausible, not contradicted by another row of
    the same answer) become events; every other row is named with its reason."""
    try:
        rows = _envelope_rows(body)
    except BodyError as exc:
        return Parsed(body_error=str(exc))
    url = redact_url(source_url)
    parsed = Parsed()
    candidates: list[tuple[str, NewEvent]] = []
    for index, row in enumerate(rows, start=1):
        label = f"row {index} ({_row_label(row)})"
        try:
            event = _row_event(row, fetched_at=fetched_at, url=url)
        except RowError as exc:
            parsed.bad_rows.append(f"{label}: {exc}")
            continue
        if event is not None:
            candidates.append((label, event))
    today = today if today is not None else new_york_date(fetched_at)
    parsed.events = vetted(candidates, today, parsed.bad_rows)
    return parsed.in_date_order()


def _envelope_rows(body: bytes) -> list[Any]:
    return array_field(load_json(body), "refRates")


def _row_label(row: Any) -> str:
    if not isinstance(row, dict):
        return "?"
    kind, day = row.get("type"), row.get("effectiveDate")
    return f"{kind if isinstance(kind, str) else '?'} {day if isinstance(day, str) else '?'}"


def _row_event(row: Any, *, fetched_at: datetime | None, url: str) -> NewEvent | None:
    """The observation event of one row; None for a type we do not track (e.g. SOFRAI)."""
    if not isinstance(row, dict):
        raise RowError(f"expected a JSON object, got a JSON {json_kind(row)}")
    kind = row.get("type")
    if not isinstance(kind, str):
        raise RowError("type: missing" if kind is None else f"type: not a string: {kind!r}")
    series = RATE_TYPES.get(kind.strip().upper())
    if series is None:
        return None
    day = parse_day(row.get("effectiveDate"), "effectiveDate")
    raw_rate = row.get("percentRate")
    if is_missing(raw_rate):
        raise RowError("percentRate: missing")
    rate = number(raw_rate, "percentRate")
    obs = Observation(
        series=series, date=day.isoformat(), value=norm(rate), unit=spec(series).unit,
        source=SOURCE, attributes=_attributes(row, series),
        provenance={"url": url, "raw_value": str(raw_rate), "raw_unit": "percent",
                    "revision_indicator": str(row.get("revisionIndicator") or "")},
    )
    return new_observation(obs, published_text(series, day, fetched_at))


def _attributes(row: dict, series: str) -> dict[str, str]:
    fields = dict(ROW_ATTRIBUTES)
    if series == "effr":
        fields.update(EFFR_ATTRIBUTES)
    # A present but malformed percentile makes the whole row suspect, so it is an error; an
    # absent one is simply not published for that row.
    return {name: norm(number(row[key], key))
            for key, name in fields.items() if not is_missing(row.get(key))}


# ---- the source ----

class NyFedSource:
    """Polls a date search per configured rate; never raises out of ``poll``.

    ``clock_now`` (optional) stamps the moment each response arrived, which caps published_at;
    without it the poll's ``now`` is used, which is never later than the real fetch.
    """
    name = SOURCE

    def __init__(self, config: NyFedConfig, clock_now: Callable[[], datetime] | None = None):
        self.config = config
        self._clock_now = clock_now
        self._timeout_s = config.timeout.total_seconds()

    def search_url(self, rate: str) -> str:
        return f"{self.config.base_url.rstrip('/')}/api/rates/{RATE_GROUP[rate]}/{rate}/search.json"

    def window(self, now: datetime) -> tuple[date, date]:
        """Search window: New York 'today' back ``lookback_days`` (holidays make gaps)."""
        end = now.astimezone(NEW_YORK).date()
        return end - timedelta(days=self.config.lookback_days), end

    @property
    def series(self) -> tuple[str, ...]:
        return tuple(rate for rate in self.config.rates if rate in RATE_GROUP)

    async def poll(self, session: aiohttp.ClientSession, now: datetime) -> list[NewEvent]:
        results = await asyncio.gather(*(self._poll_rate(session, rate, now)
                                         for rate in self.config.rates))
        return [event for events in results for event in events]

    async def backfill(self, session: aiohttp.ClientSession, since: date,
                       now: datetime) -> list[NewEvent]:
        """History from ``since``: one search per rate and calendar year (small responses), with
        nominal publication times — not capped at the fetch time, which is years later."""
        end = now.astimezone(NEW_YORK).date()
        out: list[NewEvent] = []
        for rate in self.config.rates:
            start = since
            while start <= end:
                stop = min(date(start.year, 12, 31), end)
                out += await self._poll_rate(session, rate, now, (start, stop))
                start = stop + timedelta(days=1)
        return out

    async def _poll_rate(self, session: aiohttp.ClientSession, rate: str, now: datetime,
                         history: tuple[date, date] | None = None) -> list[NewEvent]:
        if rate not in RATE_GROUP:
            known = ", ".join(sorted(RATE_GROUP))
            return [failure_event(SOURCE, f"unknown rate {rate!r} in [sources.nyfed] rates "
                                          f"(known: {known})", now)]
        try:
            return await self._fetch_rate(session, rate, now, history)
        except Exception as exc:  # a bug must not stop the daemon: record it and carry on
            log.exception("nyfed %s: unexpected error", rate)
            return [failure_event(SOURCE, f"{rate}: internal error: {type(exc).__name__}: {exc}",
                                  now, url=self.search_url(rate))]

    async def _fetch_rate(self, session: aiohttp.ClientSession, rate: str, now: datetime,
                          history: tuple[date, date] | None) -> list[NewEvent]:
        start, end = history or self.window(now)
        params = {"startDate": start.isoformat(), "endDate": end.isoformat()}
        got = await fetch(session, self.search_url(rate), params=params, timeout_s=self._timeout_s,
                          retries=self.config.retries)
        if got.error is not None:
            log.warning("nyfed %s: %s (%s)", rate, got.error, got.url)
            return [failure_event(SOURCE, f"{rate}: {got.error}", now, url=got.url)]
        fetched_at = None if history else (self._clock_now() if self._clock_now else now)
        parsed = parse_body(got.body, fetched_at=fetched_at, source_url=got.url,
                            today=new_york_date(now))
        return parsed.events + failures_of(SOURCE, parsed, f"{rate} search", now, got.url)


