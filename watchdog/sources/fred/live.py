"""FRED: the JSON API when an API key is configured, the keyless ``fredgraph.csv`` otherwise,
and ALFRED first prints for revised series (M2, GDP) so that history has no look-ahead.

The API key is a query parameter, so it is in every request URL: URLs are redacted before they
reach an event or a log line, free text is scrubbed, and the key is kept off ``repr``. The
parsers are pure: bytes in, observation events and reasons out, like the NY Fed parser.

Point in time: a series named in ``[sources.fred] first_release`` is asked of ALFRED for the
first print of each date (``output_type=4&realtime_start=1776-07-04``). A row's
``realtime_start`` is the day that value became public, so ``published_at`` is that day at the
series' nominal time of day (GDP 08:30 ET, M2 13:00 ET) and the instant is kept in provenance as
``vintage``. A nominal lag after the observation date would be wrong by months: GDP is dated at
the start of its quarter and first printed about four months later (Q3 2013, delayed by the
shutdown: 2013-11-07).
"""
from __future__ import annotations

import asyncio
import csv
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp

from watchdog.market.series import spec
from watchdog.model.config import FredConfig
from watchdog.model.events import NewEvent, Observation, new_observation
from watchdog.model.numbers import is_missing, norm
from watchdog.model.redact import REDACTED, redact_url, scrub
from watchdog.model.secrets import read_secret
from watchdog.model.timefmt import NEW_YORK, new_york, utc_text
from watchdog.sources.base import (
    Fetched,
    RateLimiter,
    Sleep,
    cap_published,
    failure_event,
    fetch,
    printable,
)
from watchdog.sources.fred.units import conversion
from watchdog.sources.parsing import (
    BodyError,
    Parsed,
    RowError,
    array_field,
    bounded_number,
    failures_of,
    json_kind,
    load_json,
    new_york_date,
    parse_day,
    published_text,
    vetted,
)

log = logging.getLogger(__name__)

SOURCE = "fred"
ALFRED_ORIGIN = "1776-07-04"        # FRED's earliest real-time date: "every vintage ever known"
FIRST_RELEASE_OUTPUT_TYPE = 4       # ALFRED: the initial release of each observation only

# How far back (observation dates) a poll must ask to still see the newest value. H.4.1 series
# are dated the Wednesday before their Thursday release; M2 is dated at the start of its month
# and published ~7-8 weeks later; GDP at the start of its quarter and first printed ~4 months
# later, later still in a shutdown. The configured `lookback_days` is used when it is longer.
MIN_LOOKBACK_DAYS: dict[str, int] = {
    "reserves": 21, "fed_assets": 21, "primary_credit": 21, "tga_weekly_avg": 21,
    "m2": 200, "gdp": 400,
}

CSV_DATE_HEADERS = ("observation_date", "date")  # new (2026) and old (2024) fredgraph formats


# ---- pure parsing ----

def _printable_reasons(parsed: Parsed) -> Parsed:
    if parsed.body_error:
        parsed.body_error = printable(parsed.body_error)
    parsed.bad_rows = [printable(reason) for reason in parsed.bad_rows]
    return parsed


class _RowMaker:
    """Turns one (date, raw value) pair into an event, shared by the JSON and CSV parsers."""

    def __init__(self, series: str, fred_id: str, fetched_at: datetime | None, source_url: str,
                 first_release: bool = False):
        self.series, self.fred_id, self.fetched_at = series, fred_id, fetched_at
        self.unit = conversion(series, fred_id)
        self.url = redact_url(source_url)
        self.first_release = first_release

    def event(self, raw_date: Any, raw_value: Any, date_field: str,
              realtime_start: Any = None) -> NewEvent | None:
        """None when FRED marks the value missing ("." or empty): a gap, not an error."""
        day = parse_day(raw_date, date_field)
        if is_missing(raw_value):
            return None
        value = self.unit.to_catalogue(bounded_number(raw_value, "value"))
        provenance = {"url": self.url, "raw_value": str(raw_value).strip(),
                      "raw_unit": self.unit.fred_name, "fred_id": self.fred_id}
        if self.first_release:
            first_public = parse_day(realtime_start, "realtime_start")
            published = self._vintage(first_public)
            provenance.update(realtime_start=first_public.isoformat(), vintage=published)
        else:
            published = published_text(self.series, day, self.fetched_at)
        obs = Observation(series=self.series, date=day.isoformat(), value=norm(value),
                          unit=spec(self.series).unit, source=SOURCE, provenance=provenance)
        return new_observation(obs, published)

    def _vintage(self, first_public: date) -> str:
        """The first print's instant: its real-time start at the series' time of day. Live it is
        capped at the fetch like any fact, and the vintage is that same capped instant, so the
        two never disagree about when the value was known."""
        nominal = new_york(first_public, *spec(self.series).publish_at)
        return utc_text(nominal) if self.fetched_at is None else cap_published(nominal, self.fetched_at)


def parse_observations_json(body: bytes, *, series: str, fred_id: str,
                            fetched_at: datetime | None, source_url: str,
                            first_release: bool = False,
                            today: date | None = None) -> tuple[list[NewEvent], list[str]]:
    """Events from a ``/fred/series/observations?file_type=json`` body, and reasons."""
    parsed = parse_observations_body(body, series=series, fred_id=fred_id, fetched_at=fetched_at,
                                     source_url=source_url, first_release=first_release,
                                     today=today)
    return parsed.events, parsed.reasons()


def parse_observations_body(body: bytes, *, series: str, fred_id: str,
                            fetched_at: datetime | None, source_url: str,
                            first_release: bool = False, today: date | None = None) -> Parsed:
    """``first_release``: the body is ALFRED's ``output_type=4``; each value is dated by its
    row's ``realtime_start`` rather than by the series' nominal publication lag. Rows that are
    not facts (``parsing.vetted``; ``today`` defaults to the New York date of ``fetched_at``)
    are named with their reason."""
    try:
        maker = _RowMaker(series, fred_id, fetched_at, source_url, first_release)
        rows = _observation_rows(body, first_release)
    except ValueError as exc:  # BodyError, or a FRED id without a checked conversion
        return _printable_reasons(Parsed(body_error=str(exc)))
    return _rows_parsed(((f"row {index} ({fred_id} {_row_date(row)})", partial(_observation_event, maker, row))
                         for index, row in enumerate(rows, start=1)), _today(today, fetched_at))


def _rows_parsed(rows: Iterable[tuple[str, Callable[[], NewEvent | None]]], today: date | None) -> Parsed:
    """The JSON and the CSV answers alike: each (label, make) row's event, or its RowError named
    by its label; the events vetted against the series' plausibility contract, in date order."""
    parsed = Parsed()
    candidates: list[tuple[str, NewEvent]] = []
    for label, make in rows:
        try:
            event = make()
        except RowError as exc:
            parsed.bad_rows.append(f"{label}: {exc}")
            continue
        if event is not None:
            candidates.append((label, event))
    parsed.events = vetted(candidates, today, parsed.bad_rows)
    return _printable_reasons(parsed.in_date_order())


def _today(today: date | None, fetched_at: datetime | None) -> date | None:
    return today if today is not None else new_york_date(fetched_at)


def _observation_event(maker: _RowMaker, row: Any) -> NewEvent | None:
    if not isinstance(row, dict):
        raise RowError(f"expected a JSON object, got a JSON {json_kind(row)}")
    if "value" not in row:
        raise RowError("value: missing field")
    return maker.event(row.get("date"), row["value"], "date", row.get("realtime_start"))


def _row_date(row: Any) -> str:
    day = row.get("date") if isinstance(row, dict) else None
    return day[:40] if isinstance(day, str) else "?"


def _observation_rows(body: bytes, first_release: bool) -> list[Any]:
    data = load_json(body)
    if isinstance(data, dict) and "error_message" in data:
        # FRED's own error envelope, e.g. {"error_code": 400, "error_message": "Bad Request..."}
        raise BodyError(f"FRED error {data.get('error_code', '?')}: {data['error_message']}")
    rows = array_field(data, "observations")
    if first_release and data.get("output_type") != FIRST_RELEASE_OUTPUT_TYPE:
        # Any other output type lists a date once per vintage: taking those rows as first
        # prints would record later revisions as if they had been known all along.
        raise BodyError(f"asked ALFRED for first releases (output_type 4), got output_type "
                        f"{str(data.get('output_type'))[:20]!r}")
    return rows


def parse_graph_csv(body: bytes, *, series: str, fred_id: str, fetched_at: datetime | None,
                    source_url: str, today: date | None = None) -> tuple[list[NewEvent], list[str]]:
    """Events from a keyless ``fredgraph.csv`` body (old ``DATE`` and new ``observation_date``
    headers; missing is "." or empty), and reasons. Bad lines are named by line number."""
    parsed = parse_graph_csv_body(body, series=series, fred_id=fred_id,
                                  fetched_at=fetched_at, source_url=source_url, today=today)
    return parsed.events, parsed.reasons()


def parse_graph_csv_body(body: bytes, *, series: str, fred_id: str,
                         fetched_at: datetime | None, source_url: str,
                         today: date | None = None) -> Parsed:
    try:
        maker = _RowMaker(series, fred_id, fetched_at, source_url)
        lines = _csv_lines(body, fred_id)
    except ValueError as exc:  # BodyError, or a FRED id without a checked conversion
        return _printable_reasons(Parsed(body_error=str(exc)))
    return _rows_parsed(((f"line {line_no} ({fred_id} {cells[0][:40] if cells else '?'})",
                          partial(_csv_event, maker, cells)) for line_no, cells in lines),
                        _today(today, fetched_at))


def _csv_event(maker: _RowMaker, cells: list[str]) -> NewEvent | None:
    if len(cells) < 2:
        raise RowError(f"expected 2 columns, got {len(cells)}: {','.join(cells)[:80]!r}")
    return maker.event(cells[0], cells[1], "date")


def _csv_lines(body: bytes, fred_id: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every data line, after checking the header is FRED's."""
    try:
        text = body.decode("utf-8-sig")  # "-sig" drops a BOM some exports carry
        rows = list(csv.reader(text.splitlines()))  # splitlines: CRLF and LF alike
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:  # e.g. a field over the csv module's size limit
        raise BodyError(f"not a readable CSV: {exc}") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise BodyError("empty body where a fredgraph CSV was expected")
    header = [cell.strip() for cell in rows[0]]
    if header[0].lower() not in CSV_DATE_HEADERS or len(header) < 2:
        shown = " ".join(",".join(rows[0]).split())[:60]
        raise BodyError(f"not a fredgraph CSV: expected a header 'observation_date,{fred_id}' "
                        f"or 'DATE,{fred_id}', got {shown!r}")
    if header[1].upper() != fred_id.upper():
        raise BodyError(f"column 2 is {header[1][:40]!r}, expected the series {fred_id!r}")
    return [(n, [cell.strip() for cell in cells])
            for n, cells in enumerate(rows[1:], start=2) if any(c.strip() for c in cells)]


# ---- the API key ----

def read_api_key(env: Mapping[str, str], var: str) -> str | None:
    """The key from the environment, else from a systemd credential file; None if neither."""
    return read_secret(env, var)


# ---- the source ----

class FredSource:
    """Polls (or backfills) every configured series; JSON API with a key, keyless CSV without,
    ALFRED first prints for ``first_release`` series. Never raises.

    Without a key the ``first_release`` series are not polled (``skipped``): one warning when the
    source is built (start, reload) says which and how to enable them (``skipped_message``),
    rather than a ``source-failed`` for each on every poll.

    Every request, retries included, takes a turn from one rate limiter shared by the whole
    source, so concurrent series stay within FRED's ``requests_per_minute``. ``sleep`` is the
    wait between retries (injectable for tests); ``limiter`` replaces the default limiter.
    """
    name = SOURCE

    def __init__(self, config: FredConfig, env: Mapping[str, str],
                 clock_now: Callable[[], datetime] | None = None, *,
                 sleep: Sleep = asyncio.sleep, limiter: RateLimiter | None = None):
        self.config = config
        self._api_key = read_api_key(env, config.api_key_env)
        self._clock_now = clock_now
        self._timeout_s = config.timeout.total_seconds()
        self._sleep = sleep
        self._limiter = limiter or RateLimiter(config.requests_per_minute)
        self.skipped = self._skipped_without_key()
        if self.skipped:
            log.warning("fred: %s", self.skipped_message())

    def __repr__(self) -> str:  # never show the key, even in a debugger or a traceback
        mode = "json" if self._api_key else "csv"
        return f"FredSource(mode={mode}, series={sorted(self.config.series)})"

    @property
    def uses_api(self) -> bool:
        return self._api_key is not None

    def _secrets(self) -> list[str]:
        return [self._api_key] if self._api_key else []

    def _skipped_without_key(self) -> dict[str, str]:
        """The ``first_release`` series (canonical -> FRED id) left out without a key. Their
        first prints come from ALFRED, which needs the API; the keyless CSV holds only today's
        revised vintage, and recording it as history would be look-ahead."""
        if self.uses_api:
            return {}
        return {series: fred_id for series, fred_id in self.config.series.items()
                if series in self.config.first_release}

    def skipped_message(self) -> str:
        """One line naming what is not polled without a key, and the two ways to change that."""
        names = ", ".join(f"{series} ({fred_id})" for series, fred_id in self.skipped.items())
        env = self.config.api_key_env
        return (f"no API key, so {names} {'is' if len(self.skipped) == 1 else 'are'} not polled: "
                f"first releases come from ALFRED, which needs the key; the other series use the "
                f"keyless CSV. To poll them, set ${env} (or the systemd credential {env.lower()}), "
                f"or take FRED's latest revised values instead by leaving them out of "
                f"[sources.fred] first_release")

    def request(self, fred_id: str, start: date, *,
                first_release: bool = False) -> tuple[str, dict[str, str]]:
        """(url, query) of one request; the query holds the key in API mode."""
        if self._api_key:
            url = f"{self.config.base_url.rstrip('/')}/fred/series/observations"
            query = {"series_id": fred_id, "api_key": self._api_key, "file_type": "json",
                     "observation_start": start.isoformat()}
            if first_release:
                query.update(output_type=str(FIRST_RELEASE_OUTPUT_TYPE),
                             realtime_start=ALFRED_ORIGIN)
            return url, query
        url = f"{self.config.csv_base_url.rstrip('/')}/graph/fredgraph.csv"
        return url, {"id": fred_id, "cosd": start.isoformat()}

    def start_date(self, now: datetime, series: str | None = None) -> date:
        days = max(self.config.lookback_days, MIN_LOOKBACK_DAYS.get(series or "", 0))
        return now.astimezone(NEW_YORK).date() - timedelta(days=days)

    async def poll(self, session: aiohttp.ClientSession, now: datetime) -> list[NewEvent]:
        return await self._every_series(session, now, since=None)

    async def backfill(self, session: aiohttp.ClientSession, since: date,
                       now: datetime) -> list[NewEvent]:
        """Every configured series from ``since``, with nominal publication times (first
        prints: their vintage) — not capped at the fetch time, which is years later."""
        return await self._every_series(session, now, since=since)

    async def _every_series(self, session: aiohttp.ClientSession, now: datetime,
                            since: date | None) -> list[NewEvent]:
        results = await asyncio.gather(*(self._poll_series(session, series, fred_id, now, since)
                                         for series, fred_id in self.config.series.items()
                                         if series not in self.skipped))
        return [event for events in results for event in events]

    async def _poll_series(self, session: aiohttp.ClientSession, series: str, fred_id: str,
                           now: datetime, since: date | None) -> list[NewEvent]:
        refusal = self._refusal(series, fred_id)
        if refusal is not None:
            return [failure_event(SOURCE, refusal, now)]
        try:
            return await self._fetch_series(session, series, fred_id, now, since)
        except Exception as exc:  # a bug must not stop the daemon: record it and carry on
            # No traceback: its text could carry the key; the scrubbed message is enough.
            reason = scrub(f"{series} ({fred_id}): {type(exc).__name__}: {exc}", self._secrets())
            log.error("fred: %s", reason)
            return [failure_event(SOURCE, reason, now)]

    def _refusal(self, series: str, fred_id: str) -> str | None:
        """Why this series cannot be fetched as configured, or None."""
        try:
            conversion(series, fred_id)
        except ValueError as exc:
            return f"[sources.fred] series {series} = {fred_id!r}: {exc}"
        return None

    async def _fetch_series(self, session: aiohttp.ClientSession, series: str, fred_id: str,
                            now: datetime, since: date | None) -> list[NewEvent]:
        first = series in self.config.first_release
        start = since if since is not None else self.start_date(now, series)
        url, params = self.request(fred_id, start, first_release=first)
        got = await self._fetch(session, url, params)
        what = f"{series} ({fred_id}{', first releases' if first else ''})"
        # A server may echo the request (and so the key) in its body: remove the key from the
        # whole body before any reason quotes a slice of it, or a cut could leave a prefix.
        body = _without_secrets(got.body, self._secrets())
        if got.error is not None:
            reason = _http_reason(got, body, self._secrets()) or got.error
            log.warning("fred %s: %s (%s)", what, reason, got.url)
            return [failure_event(SOURCE, f"{what}: {reason}", now, url=got.url)]
        # Live, a fact cannot have been public after we fetched it; a backfill keeps nominal times.
        fetched_at = None if since is not None else (self._clock_now() if self._clock_now else now)
        parsed = self._parse(body, series, fred_id, fetched_at, got.url, first, new_york_date(now))
        _scrub_parsed(parsed, self._secrets())
        return parsed.events + failures_of(SOURCE, parsed, what, now, got.url)

    def _parse(self, body: bytes, series: str, fred_id: str, fetched_at: datetime | None,
               url: str, first_release: bool, today: date | None) -> Parsed:
        if not self.uses_api:
            return parse_graph_csv_body(body, series=series, fred_id=fred_id,
                                        fetched_at=fetched_at, source_url=url, today=today)
        return parse_observations_body(body, series=series, fred_id=fred_id, fetched_at=fetched_at,
                                       source_url=url, first_release=first_release, today=today)

    async def _fetch(self, session: aiohttp.ClientSession, url: str,
                     params: dict[str, str]) -> Fetched:
        async def wait_then_take_a_turn(seconds: float) -> None:
            await self._sleep(seconds)
            await self._limiter.acquire()   # a retry is a request too: it counts to the limit

        await self._limiter.acquire()
        return await fetch(session, url, params=params, timeout_s=self._timeout_s,
                           secrets=self._secrets(), retries=self.config.retries,
                           sleep=wait_then_take_a_turn)


def _without_secrets(body: bytes, secrets: list[str]) -> bytes:
    for secret in secrets:
        body = body.replace(secret.encode("utf-8"), REDACTED.encode())
    return body


def _http_reason(got: Fetched, body: bytes, secrets: list[str]) -> str | None:
    """The reason for an HTTP error, from a body already rid of the key.

    ``fetch`` cuts the body to 120 bytes and scrubs afterwards, so a key echoed across the cut
    would leave its prefix in the reason; this rebuilds the same text safely."""
    if got.status is None or got.status < 400:
        return None
    text = " ".join(body.decode("utf-8", "replace").split())
    reason = f"HTTP {got.status}: {scrub(text[:120], secrets)}"
    return reason + (f" (after {got.attempts} attempts)" if got.attempts > 1 else "")


def _scrub_parsed(parsed: Parsed, secrets: list[str]) -> None:
    """Reasons quote the body: a second pass also catches ``api_key=...`` in any form."""
    if parsed.body_error:
        parsed.body_error = scrub(parsed.body_error, secrets)
    parsed.bad_rows = [scrub(reason, secrets) for reason in parsed.bad_rows]
