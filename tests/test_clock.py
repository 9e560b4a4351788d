"""The serving daemon under wall-clock steps (NTP, `date -s`, a resume from suspend), in process
on a clock freezegun moves (``tick=True``: it runs at real speed between steps) while the
monotonic clock goes on: a step back of a day does not pause polling for a day, a step forward
catches up at once, each is logged and counted in /metrics, nothing is lost and audit is clean."""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import freezegun
import freezegun.api
import pytest

from test_daemon import CANARY, FakeFed, write_config
from watchdog import app
from watchdog.alerting.decisions import audit_decisions
from watchdog.tuning.replay import audit
from watchdog.store import SqliteEventStore, iter_events


def facts(db) -> list[tuple[str, str]]:
    store = SqliteEventStore(db, readonly=True)
    try:
        return [(e.payload["series"], e.payload["date"]) for e in iter_events(store)
                if e.type == "observation-recorded"]
    finally:
        store.close()


async def until(condition, what: str, timeout: float = 60.0) -> None:
    """Wait (real time) for ``condition``; the timeout only bounds a failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def clock_steps(daemon, direction: str) -> float:
    return daemon.metrics.clock_steps.labels(direction)._value.get()


@pytest.mark.timeout(120)
async def test_polling_goes_on_through_a_wall_clock_step_back_of_a_day_and_forward_of_two(
        aiohttp_server, tmp_path, caplog):
    fed = FakeFed()
    fed.iorb = {"2025-10-01": "3.90"}
    fed.sofr = {"2025-10-29": "3.91", "2025-10-30": "3.92", "2025-10-31": "3.93"}
    server = await aiohttp_server(fed.app())
    config_path = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    text = config_path.read_text().replace('rates = ["sofr"]', 'rates = ["sofr"]\npoll_every = "2s"')
    config_path.write_text(text.replace('series = { iorb = "IORB" }', 'series = { iorb = "IORB" }\npoll_every = "2s"'))
    db = tmp_path / "events.db"
    caplog.set_level(logging.WARNING, logger="watchdog.daemon.loop")
    with freezegun.freeze_time("2025-11-05T15:00:00Z", tick=True, real_asyncio=True) as frozen:
        daemon = app.build_daemon(app.resolve_config(str(config_path)), env={"FRED_TEST_KEY": CANARY},
                                  http=False)
        daemon.monotonic = freezegun.api.real_monotonic     # CLOCK_MONOTONIC does not step
        stop = asyncio.Event()
        serving = asyncio.create_task(daemon.serve(stop))
        try:
            await until(lambda: ("sofr", "2025-10-31") in facts(db), "the first polls")

            frozen.move_to(daemon.now() - timedelta(days=1))        # 2025-11-04 15:00 UTC
            fed.sofr["2025-11-03"] = "4.30"                          # 40 bp over IORB
            await until(lambda: ("sofr", "2025-11-03") in facts(db), "a poll after the step back")
            # a poll already in flight when the clock moved may record the fact before the next
            # cycle notices the step: wait for the notice rather than assume its order
            await until(lambda: clock_steps(daemon, "backward") == 1, "the step back noticed")

            frozen.move_to(daemon.now() + timedelta(days=2))        # 2025-11-06 15:00 UTC
            fed.sofr["2025-11-04"] = "4.31"
            fed.sofr["2025-11-05"] = "3.91"
            await until(lambda: ("sofr", "2025-11-05") in facts(db), "a poll after the step forward")
            await until(lambda: clock_steps(daemon, "forward") == 1, "the step forward noticed")
            assert clock_steps(daemon, "backward") == 1
            await until(lambda: not daemon._cycle_lock.locked(), "the cycle in flight")
        finally:
            stop.set()
            await serving
    steps = [r.getMessage() for r in caplog.records if "wall clock stepped" in r.getMessage()]
    assert len(steps) == 2 and "backward by" in steps[0] and "forward by" in steps[1]
    sofr = [d for s, d in facts(db) if s == "sofr"]
    assert sofr == sorted(set(sofr)) == ["2025-10-29", "2025-10-30", "2025-10-31", "2025-11-03",
                                         "2025-11-04", "2025-11-05"]           # each once, none lost
    store = SqliteEventStore(db, readonly=True)
    try:
        states = [(e.payload["rule"], e.payload["state"], e.payload["date"]) for e in iter_events(store)
                  if e.type in ("alert-firing", "alert-resolved")]
        assert states == [("sofr-over-iorb", "firing", "2025-11-04"),
                          ("sofr-over-iorb", "resolved", "2025-11-05")]
        assert audit(store).differences == []
        assert audit_decisions(iter_events(store)).differences == []
    finally:
        store.close()
