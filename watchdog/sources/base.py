"""What every source shares: the poll contract, HTTP fetching with timeouts, failure events.

A source's ``poll(session, now)`` returns a list of ``NewEvent``: observations for every good row
and one ``source-failed`` event per failure (HTTP error, timeout, malformed payload, bad rows). It
never raises: a failing source is recorded and the daemon carries on.
"""
from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import datetime
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


async def fetch(session: aiohttp.ClientSession, url: str, *, params: dict | None = None,
                timeout_s: float = 30.0, secrets: list[str] | None = None) -> Fetched:
    """GET ``url`` and return its body, or a precise, secret-free failure reason."""
    secrets = secrets or []
    shown = redact_url(str(aiohttp.client.URL(url).with_query(params or {})) if params else url)
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with session.get(url, params=params, timeout=timeout) as response:
            body = await response.read()
            headers = {k: v for k, v in response.headers.items()}
            if response.status >= 400:
                # scrub the whole body before cutting it: a secret spanning the cut would leak
                text = scrub(body.decode("utf-8", "replace"), secrets)
                snippet = text[:120].strip().replace("\n", " ")
                return Fetched(shown, response.status, body, f"HTTP {response.status}: {snippet}", headers)
            return Fetched(shown, response.status, body, None, headers)
    except asyncio.TimeoutError:
        return Fetched(shown, error=f"timeout after {timeout_s:g}s")
    except aiohttp.ClientError as exc:
        return Fetched(shown, error=scrub(f"{type(exc).__name__}: {exc}", secrets))


def failure_event(source: str, reason: str, now: datetime, *, url: str = "",
                  bad_rows: list[str] | None = None, recorded_rows: int = 0) -> NewEvent:
    """A ``source-failed`` event; the key is unique per failure (time and a process counter)."""
    payload = SourceFailure(source=source, reason=reason, url=url, bad_rows=bad_rows or [],
                            recorded_rows=recorded_rows)
    key = f"fail/{source}/{utc_text(now)}/{next(_counter)}"
    return NewEvent(type=SOURCE_FAILED, key=key, payload=payload.model_dump())


def cap_published(nominal: datetime, fetched_at: datetime) -> str:
    """Live, a fact cannot have been published after we fetched it."""
    return utc_text(min(nominal, fetched_at))
