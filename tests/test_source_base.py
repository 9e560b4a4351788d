"""Fetching: retries with backoff that honour Retry-After, precise failure reasons, rate limits."""
from __future__ import annotations

from datetime import datetime, timezone

import aiohttp

from fakes import Site
from watchdog.sources.base import RateLimiter, fetch, retry_after_s


async def serve(aiohttp_server, *answers: tuple[int, dict]) -> tuple[str, Site]:
    """The shared local site at /x: ``answers`` (status, headers) in turn, then 200 "ok"."""
    site = Site({"/x": "ok"})
    for status, headers in answers:
        site.misbehave("status", path="/x", status=status, headers=headers,
                       body="ok" if status == 200 else "busy")
    return (await site.serve(aiohttp_server)).url("/x"), site


async def test_429_with_retry_after_is_retried_after_the_asked_wait(aiohttp_server):
    url, _ = await serve(aiohttp_server, (429, {"Retry-After": "7"}), (503, {}), (200, {}))
    waits = []

    async def sleep(s):
        waits.append(s)
    async with aiohttp.ClientSession() as session:
        got = await fetch(session, url, retries=3, backoff_s=0.5, sleep=sleep)
    assert got.error is None and got.body == b"ok" and got.attempts == 3
    assert waits[0] == 7 and 0.5 <= waits[1] <= 0.5 * 2 * 1.25


async def test_giving_up_names_the_status_and_the_attempts(aiohttp_server):
    url, site = await serve(aiohttp_server, *[(500, {})] * 5)

    async def sleep(s):
        pass
    async with aiohttp.ClientSession() as session:
        got = await fetch(session, url, retries=2, sleep=sleep)
    assert got.error == "HTTP 500: busy (after 3 attempts)" and len(site.requests) == 3


async def test_client_errors_other_than_429_are_not_retried(aiohttp_server):
    url, site = await serve(aiohttp_server, (404, {}), (200, {}))
    async with aiohttp.ClientSession() as session:
        got = await fetch(session, url, retries=3)
    assert got.error.startswith("HTTP 404") and len(site.requests) == 1


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2025, 11, 3, 13, 0, tzinfo=timezone.utc)
    assert retry_after_s("120") == 120
    assert retry_after_s("Mon, 03 Nov 2025 13:00:30 GMT", now=now) == 30
    assert retry_after_s("soon") is None and retry_after_s(None) is None


async def test_rate_limiter_holds_the_121st_request_of_a_minute():
    clock = [0.0]
    slept = []

    async def sleep(s):
        slept.append(s)
        clock[0] += s
    limiter = RateLimiter(120, clock=lambda: clock[0], sleep=sleep)
    for _ in range(120):
        await limiter.acquire()
    assert slept == []
    clock[0] = 10.0
    await limiter.acquire()
    assert slept == [50.0]


def test_a_failure_quoting_a_lone_surrogate_can_still_be_stored():
    from watchdog.sources.base import failure_event
    from watchdog.store import MemoryEventStore
    event = failure_event("nyfed", "bad row: '\ud800'", datetime(2025, 1, 2, tzinfo=timezone.utc),
                          bad_rows=["row 1: '\udfff'"])
    assert len(MemoryEventStore().append([event])) == 1


def test_numbers_of_absurd_magnitude_are_bad_rows_not_overflows():
    import pytest
    from watchdog.sources.parsing import RowError, number
    for raw in ["1E+999999999", "1e-50", "9" * 80]:
        with pytest.raises(RowError):
            number(raw, "percentRate")
    assert str(number("0.000001", "x")) == "0.000001" and number("0", "x") == 0
