"""Two replicas of `watchdog run` on one PostgreSQL log (issue 16): the leader SIGKILLed while a
Slack post is in flight, the follower takes over, and every fact is in the log once, every alert
reached Slack (with a bot token: exactly once), `audit` is clean; then the new leader is paused
(SIGSTOP) past its lease, a third replica takes over, and the paused one wakes to append nothing
and exit 75 (EX_TEMPFAIL) for a restart as a follower."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import psycopg

from killharness import FakeSlack, Publisher, daemon_env, figures, settled, write_config
from test_production import until

LEASE = "3s"


def _args(config) -> list[str]:
    return [sys.executable, "-m", "watchdog", "run", "--config", str(config), "--no-http", "--log-format", "json"]


async def _spawn(config, env) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*_args(config), env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)


def _rows(url: str, sql: str, *args) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()


def _leader(url: str) -> tuple[str, int] | None:
    """(holder, epoch) of an unexpired lease whose daemon has recorded its start."""
    if not _rows(url, "SELECT 1 FROM pg_tables WHERE tablename = 'lease'"):
        return None                              # the first replica has not created the log yet
    lease = _rows(url, "SELECT holder, epoch FROM lease WHERE expires_at >= now()")
    if not lease:
        return None
    holder, epoch = lease[0]
    pid = int(holder.rsplit("/", 1)[1])
    started = [json.loads(p)["pid"] for (p,) in _rows(url, "SELECT payload FROM events WHERE type = 'daemon-started'")]
    return (holder, epoch) if pid in started else None


def _in_flight(url: str) -> bool:
    """A notification attempted whose outcome is not recorded yet: a post is on its way."""
    attempted = {json.loads(p)["delivery"] for (p,) in _rows(
        url, "SELECT payload FROM events WHERE type = 'notification-attempted'")}
    done = {json.loads(p)["delivery"] for (p,) in _rows(
        url, "SELECT payload FROM events WHERE type IN ('notification-sent', 'notification-failed', "
             "'notification-unknown')")}
    return bool(attempted - done)


async def test_the_follower_takes_over_a_leader_killed_mid_delivery_and_a_paused_one_appends_nothing(
        pg_server, aiohttp_server, tmp_path):
    url = pg_server.new_database()
    fed, slack = Publisher(), FakeSlack(mode="bot")
    fed_server, slack_server = await aiohttp_server(fed.app()), await aiohttp_server(slack.app())
    slack_url = str(slack_server.make_url("")).rstrip("/")
    fed_url = str(fed_server.make_url("")).rstrip("/")
    configs = [write_config(tmp_path, fed_url, slack_url, "bot", name=f"replica-{n}.toml",
                            store=f'url = "{url}"\nreplica = "r{n}"\nlease_ttl = "{LEASE}"')
               for n in "abc"]
    env = daemon_env(dict(os.environ), slack_url)
    fed.publish_days(2)
    procs = []
    try:
        a = await _spawn(configs[0], env)
        procs.append(a)
        await until(lambda: _leader(url) is not None, 60, "replica a leads")
        holder_a, epoch_a = _leader(url)
        assert holder_a == f"ra/{a.pid}"
        b = await _spawn(configs[1], env)
        procs.append(b)
        await until(lambda: settled(url, fed, slack), 60, "a delivers the first days")
        # the leader is killed while a post is in flight: Slack holds it, then lets it land
        slack.hold()
        fed.publish_days(1)
        await until(lambda: _in_flight(url), 30, "a post in flight")
        a.send_signal(signal.SIGKILL)
        await a.wait()
        slack.release()
        fed.publish_days(2)
        await until(lambda: (_leader(url) or ("",))[0] == f"rb/{b.pid}", 60, "b takes over")
        holder_b, epoch_b = _leader(url)
        assert epoch_b == epoch_a + 1
        await until(lambda: settled(url, fed, slack), 60, "b delivers everything")

        # b paused past its lease: c takes over; b wakes, appends nothing, exits 75
        c = await _spawn(configs[2], env)
        procs.append(c)
        await asyncio.sleep(1.0)                 # c is following
        b.send_signal(signal.SIGSTOP)
        await until(lambda: (_leader(url) or ("",))[0] == f"rc/{c.pid}", 60, "c takes over")
        fed.publish_days(2)
        await until(lambda: settled(url, fed, slack), 60, "c delivers everything")
        written_by_b = _rows(url, "SELECT count(*) FROM events WHERE epoch = %s", epoch_b)[0][0]
        b.send_signal(signal.SIGCONT)
        _, err = await asyncio.wait_for(b.communicate(), 30)
        assert b.returncode == 75, err.decode()[-2000:]
        assert "deposed" in err.decode()
        assert _rows(url, "SELECT count(*) FROM events WHERE epoch = %s", epoch_b)[0][0] == written_by_b
        c.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(c.communicate(), 30)
        assert c.returncode == 0, err.decode()[-2000:]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                await proc.wait()

    result = figures(url, fed, slack)
    assert result.facts_lost == 0 and result.facts_duplicated == 0, result
    assert result.transitions == len(fed.sofr) - 1 and result.alerts_lost == 0 and result.flushes_owed == 0, result
    assert result.sent_not_received == 0, result
    assert result.duplicate_notifications == 0, result          # the bot: reconciled, not resent
    assert result.audit_exit == 0, result.audit_output
    epochs = [e for (e,) in _rows(url, "SELECT DISTINCT epoch FROM events ORDER BY epoch")]
    assert epochs == [epoch_a, epoch_b, epoch_b + 1]
