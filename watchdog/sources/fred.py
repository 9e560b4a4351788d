"""FRED: the JSON API when an API key is configured, the keyless ``fredgraph.csv`` otherwise.

The API key is a query parameter, so it is in every request URL: URLs are redacted before they
reach an event or a log line, free text is scrubbed, and the key is kept off ``repr``. The
parsers are pure: bytes in, observation events and reasons out, like the NY Fed parser.
"""
from __future__ import annotations

import asyncio
import csv
import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from watchdog.config import FredConfig
from watchdog.events import NewEvent, Observation, new_observation
from watchdog.numbers import is_missing, norm, scale
from watchdog.redact import REDACTED, redact_url, scrub
from watchdog.series import spec
from watchdog.sources.base import failure_event, fetch
from watchdog.sources.parsing import (BodyError, Parsed, RowError, array_field, failures_of,
                                      json_kind, load_json, number, parse_day, published_text)
from watchdog.timefmt import NEW_YORK, parse_duration

log = logging.getLogger(__name__)

SOURCE = "fred"
MILLIONS_TO_BILLIONS = Decimal("0.001")


# FRED series id -> (canonical series, factor to the catalogue unit, FRED's own unit).
# Only ids whose units were checked (data-sources.md) are here: a wrong factor would record
# millions as billions without any error, so an unknown id is refused rather than guessed.
FRED_SERIES: dict[str, tuple[str, Decimal, str]] = {
    "IORB": ("iorb", Decimal(1), "percent"),
    "DFEDTARU": ("fftarget_upper", Decimal(1), "percent"),
    "DFEDTARL": ("fftarget_lower", Decimal(1), "percent"),
    "EFFR": ("effr", Decimal(1), "percent"),
    "SOFR": ("sofr", Decimal(1), "percent"),
    "RRPONTSYD": ("onrrp", Decimal(1), "billions of dollars"),
    "WRESBAL": ("reserves", MILLIONS_TO_BILLIONS, "millions of dollars"),
    "WALCL": ("fed_assets", MILLIONS_TO_BILLIONS, "millions of dollars"),
    "WLCFLPCL": ("primary_credit", MILLIONS_TO_BILLIONS, "millions of dollars"),
}

CSV_DATE_HEADERS = ("observation_date", "date")  # new (2026) and old (2024) fredgraph formats


def conversion(series: str, fred_id: str) -> tuple[Decimal, str]:
    """(factor, FRED unit) for a FRED id feeding ``series``; ValueError when not a known pair."""
    known = FRED_SERIES.get(fred_id)
    if known is None:
        raise ValueError(f"FRED series {fred_id!r} has no checked unit conversion "
                         f"(known: {', '.join(sorted(FRED_SERIES))})")
    if known[0] != series:
        raise ValueError(f"FRED series {fred_id!r} is {known[0]!r}, not {series!r}")
    return known[1], known[2]


# ---- pure parsing ----

class _RowMaker:
    """Turns one (date, raw value) pair into an event, shared by the JSON and CSV parsers."""

    def __init__(self, series: str, fred_id: str, fetched_at: datetime | None, source_url: str):
        self.series, self.fred_id, self.fetched_at = series, fred_id, fetched_at
        self.factor, self.raw_unit = conversion(series, fred_id)
        self.url = redact_url(source_url)

    def event(self, raw_date: Any, raw_value: Any, date_field: str) -> NewEvent | None:
        """None when FRED marks the value missing ("." or empty): a gap, not an error."""
        day = parse_day(raw_date, date_field)
        if is_missing(raw_value):
            return None
        value = scale(number(raw_value, "value"), self.factor)
        obs = Observation(
            series=self.series, date=day.isoformat(), value=norm(value),
            unit=spec(self.series).unit, source=SOURCE,
            provenance={"url": self.url, "raw_value": str(raw_value).strip(),
                        "raw_unit": self.raw_unit, "fred_id": self.fred_id},
        )
        return new_observation(obs, published_text(self.series, day, self.fetched_at))


def parse_observations_json(body: bytes, *, series: str, fred_id: str,
                            fetched_at: datetime | None,
                            source_url: str) -> tuple[list[NewEvent], list[str]]:
    """Events from a ``/fred/series/observations?file_type=json`` body, and reasons."""
    parsed = parse_observations_body(body, series=series, fred_id=fred_id,
                                     fetched_at=fetched_at, source_url=source_url)
    return parsed.events, parsed.reasons()


def parse_observations_body(body: bytes, *, series: str, fred_id: str,
                            fetched_at: datetime | None, source_url: str) -> Parsed:
    try:
        maker = _RowMaker(series, fred_id, fetched_at, source_url)
        rows = _observation_rows(body)
    except ValueError as exc:  # BodyError, or a FRED id without a checked conversion
        return Parsed(body_error=str(exc))
    parsed = Parsed()
    for index, row in enumerate(rows, start=1):
        try:
            event = _observation_event(maker, row)
        except RowError as exc:
            parsed.bad_rows.append(f"row {index} ({fred_id} {_row_date(row)}): {exc}")
            continue
        if event is not None:
            parsed.events.append(event)
    return parsed.in_date_order()


def _observation_event(maker: _RowMaker, row: Any) -> NewEvent | None:
    if not isinstance(row, dict):
        raise RowError(f"expected a JSON object, got a JSON {json_kind(row)}")
    if "value" not in row:
        raise RowError("value: missing field")
    return maker.event(row.get("date"), row["value"], "date")


def _row_date(row: Any) -> str:
    day = row.get("date") if isinstance(row, dict) else None
    return day if isinstance(day, str) else "?"


def _observation_rows(body: bytes) -> list[Any]:
    data = load_json(body)
    if isinstance(data, dict) and "error_message" in data:
        # FRED's own error envelope, e.g. {"error_code": 400, "error_message": "Bad Request..."}
        raise BodyError(f"FRED error {data.get('error_code', '?')}: {data['error_message']}")
    return array_field(data, "observations")


def parse_graph_csv(body: bytes, *, series: str, fred_id: str, fetched_at: datetime | None,
                    source_url: str) -> tuple[list[NewEvent], list[str]]:
    """Events from a keyless ``fredgraph.csv`` body (old ``DATE`` and new ``observation_date``
    headers; missing is "." or empty), and reasons. Bad lines are named by line number."""
    parsed = parse_graph_csv_body(body, series=series, fred_id=fred_id,
                                  fetched_at=fetched_at, source_url=source_url)
    return parsed.events, parsed.reasons()


def parse_graph_csv_body(body: bytes, *, series: str, fred_id: str,
                         fetched_at: datetime | None, source_url: str) -> Parsed:
    try:
        maker = _RowMaker(series, fred_id, fetched_at, source_url)
        lines = _csv_lines(body, fred_id)
    except ValueError as exc:  # BodyError, or a FRED id without a checked conversion
        return Parsed(body_error=str(exc))
    parsed = Parsed()
    for line_no, cells in lines:
        label = f"line {line_no} ({fred_id} {cells[0] if cells else '?'})"
        try:
            if len(cells) < 2:
                raise RowError(f"expected 2 columns, got {len(cells)}: {','.join(cells)!r}")
            event = maker.event(cells[0], cells[1], "date")
        except RowError as exc:
            parsed.bad_rows.append(f"{label}: {exc}")
            continue
        if event is not None:
            parsed.events.append(event)
    return parsed.in_date_order()


def _csv_lines(body: bytes, fred_id: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every data line, after checking the header is FRED's."""
    try:
        text = body.decode("utf-8-sig")  # "-sig" drops a BOM some exports carry
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows = list(csv.reader(text.splitlines()))  # splitlines: CRLF and LF alike
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise BodyError("empty body where a fredgraph CSV was expected")
    header = [cell.strip() for cell in rows[0]]
    if header[0].lower() not in CSV_DATE_HEADERS or len(header) < 2:
        shown = " ".join(",".join(rows[0]).split())[:60]
        raise BodyError(f"not a fredgraph CSV: expected a header 'observation_date,{fred_id}' "
                        f"or 'DATE,{fred_id}', got {shown!r}")
    if header[1].upper() != fred_id.upper():
        raise BodyError(f"column 2 is {header[1]!r}, expected the series {fred_id!r}")
    return [(n, [cell.strip() for cell in cells])
            for n, cells in enumerate(rows[1:], start=2) if any(c.strip() for c in cells)]


# ---- the API key ----

def read_api_key(env: Mapping[str, str], var: str) -> str | None:
    """The key from the environment, else from a systemd credential file; None if neither."""
    key = (env.get(var) or "").strip()
    if key:
        return key
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    for name in (var.lower(), var):
        path = Path(directory) / name
        if path.is_file():
            try:
                key = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                # The path is not secret; the content might be, so it is never shown.
                log.warning("fred: cannot read credential %s: %s", path, type(exc).__name__)
                continue
            if key:
                return key
    return None


# ---- the source ----

class FredSource:
    """Polls every configured series; JSON API with a key, keyless CSV without. Never raises."""
    name = SOURCE

    def __init__(self, config: FredConfig, env: Mapping[str, str],
                 clock_now: Callable[[], datetime] | None = None):
        self.config = config
        self._api_key = read_api_key(env, config.api_key_env)
        self._clock_now = clock_now
        self._timeout_s = parse_duration(config.timeout).total_seconds()

    def __repr__(self) -> str:  # never show the key, even in a debugger or a traceback
        mode = "json" if self._api_key else "csv"
        return f"FredSource(mode={mode}, series={sorted(self.config.series)})"

    @property
    def uses_api(self) -> bool:
        return self._api_key is not None

    def _secrets(self) -> list[str]:
        return [self._api_key] if self._api_key else []

    def request(self, fred_id: str, start: date) -> tuple[str, dict[str, str]]:
        """(url, query) of one request; the query holds the key in API mode."""
        if self._api_key:
            url = f"{self.config.base_url.rstrip('/')}/fred/series/observations"
            return url, {"series_id": fred_id, "api_key": self._api_key, "file_type": "json",
                         "observation_start": start.isoformat()}
        url = f"{self.config.csv_base_url.rstrip('/')}/graph/fredgraph.csv"
        return url, {"id": fred_id, "cosd": start.isoformat()}

    def start_date(self, now: datetime) -> date:
        return now.astimezone(NEW_YORK).date() - timedelta(days=self.config.lookback_days)

    async def poll(self, session: aiohttp.ClientSession, now: datetime) -> list[NewEvent]:
        results = await asyncio.gather(*(self._poll_series(session, series, fred_id, now)
                                         for series, fred_id in self.config.series.items()))
        return [event for events in results for event in events]

    async def _poll_series(self, session: aiohttp.ClientSession, series: str, fred_id: str,
                           now: datetime) -> list[NewEvent]:
        try:
            conversion(series, fred_id)
        except ValueError as exc:
            return [failure_event(SOURCE, f"[sources.fred] series {series} = {fred_id!r}: {exc}",
                                  now)]
        try:
            return await self._fetch_series(session, series, fred_id, now)
        except Exception as exc:  # a bug must not stop the daemon: record it and carry on
            # No traceback: its text could carry the key; the scrubbed message is enough.
            reason = scrub(f"{series} ({fred_id}): {type(exc).__name__}: {exc}", self._secrets())
            log.error("fred: %s", reason)
            return [failure_event(SOURCE, reason, now)]

    async def _fetch_series(self, session: aiohttp.ClientSession, series: str, fred_id: str,
                            now: datetime) -> list[NewEvent]:
        url, params = self.request(fred_id, self.start_date(now))
        got = await fetch(session, url, params=params, timeout_s=self._timeout_s,
                          secrets=self._secrets(), retries=self.config.retries)
        what = f"{series} ({fred_id})"
        # A server may echo the request (and so the key) in its body: remove the key from the
        # whole body before any reason quotes a slice of it, or a cut could leave a prefix.
        body = _without_secrets(got.body, self._secrets())
        if got.error is not None:
            reason = _http_reason(got.status, body, self._secrets()) or got.error
            log.warning("fred %s: %s (%s)", what, reason, got.url)
            return [failure_event(SOURCE, f"{what}: {reason}", now, url=got.url)]
        fetched_at = self._clock_now() if self._clock_now else now
        parse = parse_observations_body if self.uses_api else parse_graph_csv_body
        parsed = parse(body, series=series, fred_id=fred_id, fetched_at=fetched_at,
                       source_url=got.url)
        _scrub_parsed(parsed, self._secrets())
        return parsed.events + failures_of(SOURCE, parsed, what, now, got.url)


def _without_secrets(body: bytes, secrets: list[str]) -> bytes:
    for secret in secrets:
        body = body.replace(secret.encode("utf-8"), REDACTED.encode())
    return body


def _http_reason(status: int | None, body: bytes, secrets: list[str]) -> str | None:
    """The reason for an HTTP error, from a body already rid of the key.

    ``fetch`` cuts the body to 120 bytes and scrubs afterwards, so a key echoed across the cut
    would leave its prefix in the reason; this rebuilds the same text safely."""
    if status is None or status < 400:
        return None
    text = " ".join(body.decode("utf-8", "replace").split())
    return f"HTTP {status}: {scrub(text[:120], secrets)}"


def _scrub_parsed(parsed: Parsed, secrets: list[str]) -> None:
    """Reasons quote the body: a second pass also catches ``api_key=...`` in any form."""
    if parsed.body_error:
        parsed.body_error = scrub(parsed.body_error, secrets)
    parsed.bad_rows = [scrub(reason, secrets) for reason in parsed.bad_rows]
