"""What every source shares: the poll contract and how a family is built from its config table,
HTTP fetching with timeouts, failure events.

A source's ``poll(session, now)`` returns a list of ``NewEvent``: observations for every good row
and one ``source-failed`` event per failure (HTTP error, timeout, malformed payload, bad rows). It
never raises: a failing source is recorded and the daemon carries on.

Answers are read with a size cap (``BodyLimit``: the source table's ``max_body``, 20 MB by
default), streamed and counted both on the wire (``Content-Length``, compressed bytes) and after
decompression: past the cap the read stops at once, so a gzip bomb or an endless body costs at
most the cap in memory, and the answer is a ``source-failed`` naming the cap and its setting.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp

from watchdog.model.config import MAX_BODY_DEFAULT
from watchdog.model.events import SOURCE_FAILED, NewEvent, SourceFailure
from watchdog.model.numbers import parse_size
from watchdog.model.redact import redact_url, scrub
from watchdog.model.timefmt import NEW_YORK, utc_text

_counter = itertools.count(1)


class Source(Protocol):
    name: str

    async def poll(self, session: aiohttp.ClientSession, now: datetime) -> list[NewEvent]:
        ...


log = logging.getLogger(__name__)


class LookbackSource:
    """What a source shares when it re-reads its last ``config.lookback_days`` on every poll
    and can backfill from any date (FiscalData, the OFR index): ``poll`` and ``backfill`` both
    run the subclass's ``_collect(session, now, since, live)``; live, facts are published when
    fetched (capped), backfilled at their nominal times. A bug in ``_collect`` is recorded as a
    ``source-failed`` naming ``what`` (the data read) and never raised."""
    name: str
    what: str
    config: Any

    @property
    def url(self) -> str:                       # pragma: no cover - every subclass says
        raise NotImplementedError

    def start_date(self, now: datetime) -> date:
        return now.astimezone(NEW_YORK).date() - timedelta(days=self.config.lookback_days)

    async def poll(self, session: aiohttp.ClientSession, now: datetime) -> list[NewEvent]:
        return await self._guarded(session, now, self.start_date(now), live=True)

    async def backfill(self, session: aiohttp.ClientSession, since: date,
                       now: datetime) -> list[NewEvent]:
        """Everything from ``since``, with nominal publication times (not capped at the fetch
        time, which is years later)."""
        return await self._guarded(session, now, since, live=False)

    async def _guarded(self, session: aiohttp.ClientSession, now: datetime, since: date,
                       live: bool) -> list[NewEvent]:
        try:
            return await self._collect(session, now, since, live)
        except Exception as exc:  # a bug must not stop the daemon: record it and carry on
            log.exception("%s: unexpected error", self.name)
            return [failure_event(self.name, f"{self.what}: internal error: {type(exc).__name__}: {exc}",
                                  now, url=redact_url(self.url))]

    async def _collect(self, session: aiohttp.ClientSession, now: datetime, since: date,
                       live: bool) -> list[NewEvent]:     # pragma: no cover - every subclass says
        raise NotImplementedError


@dataclass(frozen=True)
class Family:
    """How a source family is built from its ``[sources.<table>]`` config table: ``build(table,
    env)`` returns the sources the table enables, ``sources`` names every source it can build
    (their ``name``, what ``backfill --source`` takes). ``sources.registry`` lists the families."""
    table: str
    sources: tuple[str, ...]
    build: Callable[[Any, Mapping[str, str]], list[Source]]


@dataclass
class Fetched:
    """The body of a successful response, or the reason it failed (already redacted)."""
    url: str                       # redacted
    status: int | None = None
    body: bytes = b""
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 1


RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
Sleep = Callable[[float], Awaitable[None]]
READ_CHUNK = 64 * 1024          # bytes handed over per read while streaming an answer
ERROR_BODY_BYTES = 64 * 1024    # read of an error answer: enough for its message, never more


@dataclass(frozen=True)
class BodyLimit:
    """The largest answer a source reads, in bytes, both on the wire and decompressed, and the
    setting that changes it (named in the refusal)."""
    max_bytes: int = parse_size(MAX_BODY_DEFAULT)
    setting: str = f'max_body = "{MAX_BODY_DEFAULT}" (the default)'

    @classmethod
    def of(cls, table: str, max_body: str) -> "BodyLimit":
        """The limit of ``[sources.<table>]`` whose ``max_body`` is ``max_body``."""
        return cls(parse_size(max_body), f'[sources.{table}] max_body = "{max_body}"')

    def refusal(self, detail: str = "") -> str:
        """``detail``: where the cap was passed ("" for a plain body, " after gzip
        decompression", " on the wire (compressed)", ": Content-Length says N bytes")."""
        return (f"answer larger than the {self.max_bytes:,}-byte cap{detail} ({self.setting}); "
                "not read further")


# The limit of the source being polled; ``limit_bodies`` sets it around a source's poll and
# backfill, so every ``fetch`` they make (tasks they start included) reads under it.
_BODY_LIMIT: ContextVar[BodyLimit] = ContextVar("watchdog_body_limit", default=BodyLimit())


def limit_bodies(source, limit: BodyLimit):
    """``source`` (returned) with its ``poll`` and ``backfill`` reading every answer under
    ``limit`` (its config table's ``max_body``), without passing it to each ``fetch``."""
    for name in ("poll", "backfill"):
        method = getattr(source, name, None)
        if method is not None:
            setattr(source, name, _under(limit, method))
    return source


def _under(limit: BodyLimit, method):
    @functools.wraps(method)
    async def call(*args, **kwargs):
        token = _BODY_LIMIT.set(limit)
        try:
            return await method(*args, **kwargs)
        finally:
            _BODY_LIMIT.reset(token)
    return call


async def fetch(session: aiohttp.ClientSession, url: str, *, params: dict | None = None,
                timeout_s: float = 30.0, secrets: list[str] | None = None, retries: int = 0,
                backoff_s: float = 1.0, max_wait_s: float = 300.0,
                headers: dict[str, str] | None = None, sleep: Sleep = asyncio.sleep,
                limit: BodyLimit | None = None) -> Fetched:
    """GET ``url``; on a timeout, a connection error, 429 or 5xx retry up to ``retries`` times,
    waiting what ``Retry-After`` asks (capped at ``max_wait_s``) or an exponential backoff with
    jitter. Returns the body, or a precise, secret-free reason naming the attempts made.

    The body is read under ``limit`` (by default the polled source's, see ``limit_bodies``): an
    answer over it is an error naming the cap and its setting, and is not retried."""
    limit = limit or _BODY_LIMIT.get()
    attempt = 0
    while True:
        attempt += 1
        got = await _fetch_once(session, url, params=params, timeout_s=timeout_s,
                                secrets=secrets or [], headers=headers, limit=limit)
        got.attempts = attempt
        retryable = got.error is not None and (got.status is None or got.status in RETRYABLE_STATUS)
        if not retryable or attempt > retries:
            if got.error and attempt > 1:
                got.error = f"{got.error} (after {attempt} attempts)"
            return got
        await sleep(_wait_s(got, attempt, backoff_s, max_wait_s))


def _wait_s(got: Fetched, attempt: int, backoff_s: float, max_wait_s: float) -> float:
    asked = retry_after_s(got.headers.get("Retry-After") or got.headers.get("retry-after"))
    if asked is not None:
        return min(asked, max_wait_s)
    return min(backoff_s * 2 ** (attempt - 1) * (1 + random.random() / 4), max_wait_s)


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked by a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


async def _fetch_once(session: aiohttp.ClientSession, url: str, *, params: dict | None,
                      timeout_s: float, secrets: list[str], headers: dict[str, str] | None,
                      limit: BodyLimit) -> Fetched:
    shown = redact_url(str(aiohttp.client.URL(url).with_query(params or {})) if params else url)
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with session.get(url, params=params, timeout=timeout, headers=headers) as response:
            got_headers = {k: v for k, v in response.headers.items()}
            if response.status >= 400:
                # only the start of an error answer is shown: read no more than that
                body, _ = await read_capped(response, min(ERROR_BODY_BYTES, limit.max_bytes),
                                            partial=True)
                # scrub the whole body before cutting it: a secret spanning the cut would leak
                text = scrub(body.decode("utf-8", "replace"), secrets)
                snippet = " ".join(text[:120].split())
                return Fetched(shown, response.status, body, f"HTTP {response.status}: {snippet}", got_headers)
            declared = response.content_length      # bytes on the wire, compressed or not
            if declared is not None and declared > limit.max_bytes:
                return Fetched(shown, response.status, b"", limit.refusal(
                    f": Content-Length says {declared:,} bytes"), got_headers)
            body, over = await read_capped(response, limit.max_bytes)
            if over is not None:
                return Fetched(shown, response.status, b"", limit.refusal(over), got_headers)
            return Fetched(shown, response.status, body, None, got_headers)
    except asyncio.TimeoutError:
        return Fetched(shown, error=f"timeout after {timeout_s:g}s")
    except aiohttp.ClientError as exc:
        return Fetched(shown, error=scrub(f"{type(exc).__name__}: {exc}", secrets))


async def read_capped(response: aiohttp.ClientResponse, cap: int,
                      partial: bool = False) -> tuple[bytes, str | None]:
    """The body of ``response``, streamed (aiohttp decompresses gzip, deflate, br and zstd as it
    goes, a bounded piece at a time) and counted on the wire and decompressed. Past ``cap``
    either way the read stops at once: where the cap was passed (``BodyLimit.refusal``'s
    detail; None when the whole body was read) and nothing, or with ``partial`` what was read."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    compressed = encoding not in ("", "identity")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(READ_CHUNK):
        size += len(chunk)
        if size > cap:
            return b"".join(chunks) if partial else b"", (
                f" after {encoding} decompression" if compressed else "")
        chunks.append(chunk)
        # compressed bytes received (not necessarily read yet): an answer that inflates little
        # must not stream on past the cap either
        if compressed and response.content.total_raw_bytes > cap:
            return b"".join(chunks) if partial else b"", " on the wire (compressed)"
    return b"".join(chunks), None


class RateLimiter:
    """At most ``per_minute`` request starts in any 60-second window (FRED allows 120)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] | None = None, sleep: Sleep = asyncio.sleep):
        self.per_minute = per_minute
        self._starts: list[float] = []
        self._clock = clock or time.monotonic
        self._sleep = sleep
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._starts = [t for t in self._starts if now - t < 60.0]
                if len(self._starts) < self.per_minute:
                    self._starts.append(now)
                    return
                await self._sleep(60.0 - (now - self._starts[0]))


def failure_event(source: str, reason: str, now: datetime, *, url: str = "",
                  bad_rows: list[str] | None = None, recorded_rows: int = 0) -> NewEvent:
    """A ``source-failed`` event; the key is unique per failure (time and a process counter).
    Reasons quote hostile payloads: anything that is not valid UTF-8 (a lone surrogate from a JSON
    escape) is escaped, or the log could not hash the event."""
    rows = [cut(printable(row), MAX_ROW_CHARS) for row in (bad_rows or [])[:MAX_BAD_ROWS]]
    if bad_rows and len(bad_rows) > MAX_BAD_ROWS:
        rows.append(f"… and {len(bad_rows) - MAX_BAD_ROWS:,} more bad rows (not listed)")
    payload = SourceFailure(source=source, reason=cut(printable(reason), MAX_REASON_CHARS),
                            url=cut(printable(url), MAX_URL_CHARS), bad_rows=rows,
                            recorded_rows=recorded_rows)
    key = f"fail/{source}/{utc_text(now)}/{next(_counter)}"
    return NewEvent(type=SOURCE_FAILED, key=key, payload=payload.model_dump())


# A source-failed event quotes a hostile answer: it stays far below the 1 MB payload limit
# (each character is at most 6 bytes of JSON, a control character escaped as \u0001).
MAX_REASON_CHARS = 4000
MAX_URL_CHARS = 2000
MAX_ROW_CHARS = 500
MAX_BAD_ROWS = 100


def cut(text: str, most: int) -> str:
    """``text``, or its first ``most`` characters and a note saying how long it was."""
    if len(text) <= most:
        return text
    return f"{text[:most]}… [cut: {len(text):,} characters]"


def printable(text: str) -> str:
    """Text safe to hash as UTF-8: a lone surrogate from a JSON ``\\ud800`` escape would make
    the log writer fail on a reason quoting it, so it is shown escaped instead."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def cap_published(nominal: datetime, fetched_at: datetime) -> str:
    """Live, a fact cannot have been published after we fetched it."""
    return utc_text(min(nominal, fetched_at))
