"""What every source shares: the poll contract, HTTP fetching with timeouts, failure events.

A source's ``poll(session, now)`` returns a list of ``NewEvent``: observations for every good row
and one ``source-failed`` event per failure (HTTP error, timeout, malformed payload, bad rows). It
never raises: a failing source is recorded and the daemon carries on.
"""
from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Protocol

import aiohttp

from watchdog.events import SOURCE_FAILED, NewEvent, SourceFailure
from watchdog.redact import redact_url, scrub
from watchdog.timefmt import utc_text

_counter = itertools.count(1)


class Source(Protocol):
    name: str

    async def poll(self, session: aiohttp.ClientSession, now: datetime) -> list[NewEvent]:
        ...


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


async def fetch(session: aiohttp.ClientSession, url: str, *, params: dict | None = None,
                timeout_s: float = 30.0, secrets: list[str] | None = None, retries: int = 0,
                backoff_s: float = 1.0, max_wait_s: float = 300.0,
                headers: dict[str, str] | None = None, sleep: Sleep = asyncio.sleep) -> Fetched:
    """GET ``url``; on a timeout, a connection error, 429 or 5xx retry up to ``retries`` times,
    waiting what ``Retry-After`` asks (capped at ``max_wait_s``) or an exponential backoff with
    jitter. Returns the body, or a precise, secret-free reason naming the attempts made."""
    attempt = 0
    while True:
        attempt += 1
        got = await _fetch_once(session, url, params=params, timeout_s=timeout_s,
                                secrets=secrets or [], headers=headers)
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
                      timeout_s: float, secrets: list[str], headers: dict[str, str] | None) -> Fetched:
    shown = redact_url(str(aiohttp.client.URL(url).with_query(params or {})) if params else url)
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with session.get(url, params=params, timeout=timeout, headers=headers) as response:
            body = await response.read()
            got_headers = {k: v for k, v in response.headers.items()}
            if response.status >= 400:
                # scrub the whole body before cutting it: a secret spanning the cut would leak
                text = scrub(body.decode("utf-8", "replace"), secrets)
                snippet = " ".join(text[:120].split())
                return Fetched(shown, response.status, body, f"HTTP {response.status}: {snippet}", got_headers)
            return Fetched(shown, response.status, body, None, got_headers)
    except asyncio.TimeoutError:
        return Fetched(shown, error=f"timeout after {timeout_s:g}s")
    except aiohttp.ClientError as exc:
        return Fetched(shown, error=scrub(f"{type(exc).__name__}: {exc}", secrets))


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
    payload = SourceFailure(source=source, reason=printable(reason), url=printable(url),
                            bad_rows=[printable(row) for row in bad_rows or []],
                            recorded_rows=recorded_rows)
    key = f"fail/{source}/{utc_text(now)}/{next(_counter)}"
    return NewEvent(type=SOURCE_FAILED, key=key, payload=payload.model_dump())


def printable(text: str) -> str:
    """Text safe to hash as UTF-8: a lone surrogate from a JSON ``\\ud800`` escape would make
    the log writer fail on a reason quoting it, so it is shown escaped instead."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def cap_published(nominal: datetime, fetched_at: datetime) -> str:
    """Live, a fact cannot have been published after we fetched it."""
    return utc_text(min(nominal, fetched_at))
