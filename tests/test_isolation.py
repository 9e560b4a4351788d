"""Isolation, on a serving daemon in process against local servers: a source that trickles its
answer a byte at a time is cancelled at [daemon].poll_deadline and recorded as source-failed,
while the other source goes on polling, evaluating and notifying; a receiver that never answers
is given up at [daemon].send_deadline (outcome unknown) while the other receiver is told."""
from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import pytest

from fakes import FRED_PATH, FakeFed, FakeSlack
from test_clock import facts, until
from test_daemon import CANARY, write_config
from watchdog import app
from watchdog.notify.console import ConsoleNotifier
from watchdog.tuning.replay import audit
from watchdog.store import SqliteEventStore, iter_events


@pytest.fixture(autouse=True)
def short_batch_wait(monkeypatch):
    """The start-up catch-up appends what every source brought within BATCH_WAIT (30 s) as one
    batch; a trickling source would make each test wait that long for its first SOFR."""
    import watchdog.daemon.loop
    monkeypatch.setattr(watchdog.daemon.loop, "BATCH_WAIT", timedelta(seconds=2))


async def serving(aiohttp_server, tmp_path, deadlines: str):
    """A daemon serving SOFR (every second) and FRED (trickling) with a Slack receiver that
    hangs and a console receiver; returns (daemon, stop, task, fed, slack, screen, db): FRED
    finishes its answer on ``fed.release()``, Slack answers on ``slack.release()``."""
    fed = FakeFed(iorb={"2025-10-01": "3.90"}, sofr={"2025-10-30": "3.92"})
    fed.misbehave("slow", path=FRED_PATH, times=None)       # 200 at once, then a byte at a time
    server = await aiohttp_server(fed.app())
    slack = FakeSlack()
    slack.hold()                                    # accepts the post, answers only when released
    slack_server = await aiohttp_server(slack.app())
    config_path = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    text = config_path.read_text().replace('rates = ["sofr"]', 'rates = ["sofr"]\npoll_every = "1s"')
    text = text.replace('timeout = "5s"\n[receivers', 'timeout = "2h"\n[receivers')   # no per-request cut
    text = text.replace('catchup_horizon = "10d"', f'catchup_horizon = "10d"\n{deadlines}')
    text += ('[receivers.desk]\ntype = "slack"\nwebhook_url_env = "ISOLATION_HOOK"\n'
             '[[routes]]\nreceivers = ["desk", "screen"]\ngroup_wait = "0s"\n')
    config_path.write_text(text)
    db = tmp_path / "events.db"
    from watchdog.model.events import Observation, new_observation
    seed = SqliteEventStore(db)                    # IORB is in the log: FRED never answers here
    seed.append([new_observation(Observation(series="iorb", date="2025-10-01", value="3.9", unit="%",
                                             source="fred"), "2025-10-01T12:00:00.000000Z")])
    seed.close()
    env = {"FRED_TEST_KEY": CANARY, "ISOLATION_HOOK": str(slack_server.make_url("/services/T0/B0/desk"))}
    daemon = app.build_daemon(app.resolve_config(str(config_path)), env=env, http=False)
    screen = io.StringIO()
    daemon.notifiers["screen"] = ConsoleNotifier(screen)
    stop = asyncio.Event()
    return daemon, stop, asyncio.create_task(daemon.serve(stop)), fed, slack, screen, db


@pytest.mark.timeout(120)
async def test_while_a_source_trickles_and_a_receiver_hangs_the_others_poll_evaluate_and_notify(
        aiohttp_server, tmp_path):
    daemon, stop, task, fed, slack, screen, db = await serving(
        aiohttp_server, tmp_path, 'poll_deadline = "1h"\nsend_deadline = "1h"')
    try:
        await until(lambda: ("sofr", "2025-10-30") in facts(db), "the first SOFR")
        fed.sofr["2025-10-31"] = "4.30"                            # 40 bp over IORB two days:
        fed.sofr["2025-11-03"] = "4.31"                            # the rule (for = 2bd) fires
        await until(lambda: ("sofr", "2025-11-03") in facts(db), "SOFR polled on while FRED trickles")
        await until(lambda: "[FIRING warning] sofr-over-iorb 2025-11-03" in screen.getvalue(),
                    "the console told while Slack hangs")
        assert not [e for e in events_of(db, "notification-sent")      # both still hanging:
                    if e.payload["receiver"] == "desk"]                # nothing waited for them
        fed.release()
        slack.release()
        await until(lambda: events_of(db, "notification-sent") and any(
            e.payload["receiver"] == "desk" for e in events_of(db, "notification-sent")), "Slack answers")
        await until(lambda: not daemon._cycle_lock.locked(), "the cycle in flight")
    finally:
        fed.release()
        slack.release()
        stop.set()
        await task
    assert audit_differences(db) == []


def audit_differences(db) -> list[str]:
    """What ``audit`` finds on the log the daemon wrote (nothing, when it kept its word)."""
    store = SqliteEventStore(db, readonly=True)
    try:
        return audit(store).differences
    finally:
        store.close()


def events_of(db, kind: str) -> list:
    store = SqliteEventStore(db, readonly=True)
    try:
        return [e for e in iter_events(store) if e.type == kind]
    finally:
        store.close()


@pytest.mark.timeout(120)
async def test_a_trickling_source_and_a_hanging_receiver_are_given_up_at_their_deadlines(aiohttp_server, tmp_path):
    daemon, stop, task, fed, slack, screen, db = await serving(
        aiohttp_server, tmp_path, 'poll_deadline = "2s"\nsend_deadline = "2s"')
    try:
        fed.sofr["2025-10-31"] = "4.30"
        fed.sofr["2025-11-03"] = "4.31"
        await until(lambda: "[FIRING warning] sofr-over-iorb 2025-11-03" in screen.getvalue(), "the console")
        await until(lambda: any("poll_deadline" in e.payload["reason"] for e in events_of(db, "source-failed")),
                    "FRED's poll cancelled at its deadline")
        await until(lambda: events_of(db, "notification-unknown"), "the Slack send given up")
        assert daemon.metrics.poll_timeouts.labels("fred")._value.get() >= 1
        assert daemon.metrics.send_timeouts.labels("desk")._value.get() >= 1
        await until(lambda: not daemon._cycle_lock.locked(), "the cycle in flight")
    finally:
        fed.release()
        slack.release()
        stop.set()
        await task
    [failed, *_] = [e for e in events_of(db, "source-failed") if "poll_deadline" in e.payload["reason"]]
    assert failed.payload["source"] == "fred"
    assert failed.payload["reason"] == 'poll did not finish within [daemon].poll_deadline = 2s: cancelled'
    unknown = events_of(db, "notification-unknown")[0]
    assert unknown.payload["receiver"] == "desk" and "send_deadline = 2s" in unknown.payload["detail"]
    assert audit_differences(db) == []
