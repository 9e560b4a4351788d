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

from killharness import FakeSlack, Publisher, daemon_env, figures, pg_leader, pg_rows, settled, write_config
from test_production import until

LEASE = "3s"


def _args(config) -> list[str]:
    return [sys.executable, "-m", "watchdog", "run", "--config", str(config), "--no-http", "--log-format", "json"]


async def _spawn(config, env) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*_args(config), env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)


def _leader(url: str) -> tuple[str, int] | None:
    found = pg_leader(url)
    return found[:2] if found else None


def _in_flight(url: str) -> bool:
    """A notification attempted whose outcome is not recorded yet: a post is on its way."""
    attempted = {json.loads(p)["delivery"] for (p,) in pg_rows(
        url, "SELECT payload FROM events WHERE type = 'notification-attempted'")}
    done = {json.loads(p)["delivery"] for (p,) in pg_rows(
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
        written_by_b = pg_rows(url, "SELECT count(*) FROM events WHERE epoch = %s", epoch_b)[0][0]
        b.send_signal(signal.SIGCONT)
        _, err = await asyncio.wait_for(b.communicate(), 30)
        assert b.returncode == 75, err.decode()[-2000:]
        assert "deposed" in err.decode()
        assert pg_rows(url, "SELECT count(*) FROM events WHERE epoch = %s", epoch_b)[0][0] == written_by_b
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
    epochs = [e for (e,) in pg_rows(url, "SELECT DISTINCT epoch FROM events ORDER BY epoch")]
    assert epochs == [epoch_a, epoch_b, epoch_b + 1]


def test_run_once_beside_a_leading_replica_is_refused_and_appends_nothing(pg_server, tmp_path):
    from click.testing import CliRunner

    from watchdog.cli import cli
    from watchdog.store.postgres import PostgresEventStore

    url = pg_server.new_database()
    leader = PostgresEventStore(url)
    assert leader.acquire_lease("desk-a/1", 60.0) == 1
    config = tmp_path / "watchdog.toml"
    config.write_text(f'[store]\nurl = "{url}"\n[rules]\npaths = []\n')
    done = CliRunner().invoke(cli, ["run", "--config", str(config), "--once", "--no-http"])
    assert done.exit_code == 75, done.output
    assert "desk-a/1 leads (epoch 1)" in done.output and "beside it" in done.output
    assert leader.head()[0] == 0
    leader.close()


async def test_a_follower_says_who_leads_in_readyz_and_metrics_then_takes_over_a_released_lease(
        pg_server, tmp_path):
    from pgserver import _free_port

    from watchdog import app
    from datetime import datetime, timezone

    from watchdog.sources.base import failure_event
    from watchdog.store.postgres import PostgresEventStore

    url = pg_server.new_database()
    other = PostgresEventStore(url)
    assert other.acquire_lease("desk-a/1", 60.0) == 1
    port = _free_port()
    config = tmp_path / "watchdog.toml"
    config.write_text(f'[store]\nurl = "{url}"\nreplica = "desk-b"\nlease_ttl = "2s"\n[rules]\npaths = []\n'
                      f'[http]\nlisten = "127.0.0.1:{port}"\n')
    daemon = app.build_daemon(app.resolve_config(str(config)), env={}, config_path=str(config))
    import socket

    from watchdog.daemon.sdnotify import Notifier
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)   # systemd's end of NOTIFY_SOCKET
    systemd.bind(str(tmp_path / "notify"))
    systemd.setblocking(False)
    daemon.systemd = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})
    stop = asyncio.Event()
    serving = asyncio.ensure_future(daemon.serve(stop))
    try:
        import aiohttp
        async with aiohttp.ClientSession() as http:
            async def ready() -> tuple[int, dict]:
                for _ in range(100):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/readyz") as answer:
                            return answer.status, await answer.json()
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
                raise AssertionError("no /readyz")

            await until(lambda: daemon.health.ready, 20, "the follower is warm")
            told = systemd.recv(4096).decode()                  # Type=notify: started, as a follower
            assert "READY=1" in told and "following desk-a/1 (epoch 1)" in told, told
            status, body = await ready()
            assert status == 200 and body["replica"]["role"] == "follower", body
            assert body["checks"]["replica"] == {"ok": True, "reasons": []}
            assert body["replica"]["leader"] == "desk-a/1" and body["replica"]["epoch"] == 1
            assert body["replica"]["holder"] == f"desk-b/{os.getpid()}" and body["replica"]["lag_events"] == 0
            async with http.get(f"http://127.0.0.1:{port}/metrics") as answer:
                metrics = await answer.text()
            assert f'watchdog_replica_leader{{holder="desk-b/{os.getpid()}",role="follower"}} 0.0' in metrics
            assert "watchdog_lease_epoch 1.0" in metrics
            assert other.head()[0] == 0                  # a follower appends nothing

            # the database drops every session (a restart): the follower reads and listens again
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                              "datname = current_database() AND pid <> pg_backend_pid()")
            writer = PostgresEventStore(url)             # (the test's own sessions were dropped too)
            writer.append([failure_event("nyfed", "HTTP 503: after the restart", datetime.now(timezone.utc))])
            writer.close()
            await until(lambda: daemon.cursor == 1 and daemon.replica.listening, 20, "following again")

            other.release_lease()                        # a clean stop of the leader
            await until(lambda: daemon.replica.leading and daemon._scheduler is not None, 20, "desk-b leads")
            status, body = await ready()
            assert body["replica"]["role"] == "leader" and body["replica"]["epoch"] == 2, body
            assert body["replica"]["last_takeover_s"] is not None
            assert other.lease()[:2] == (f"desk-b/{os.getpid()}", 2)
            started = [e for e in other.read(limit=100) if e.type == "daemon-started"]
            assert [e.payload["pid"] for e in started] == [os.getpid()]
            assert await daemon.reload() == "unchanged"       # SIGHUP on the same log URL
    finally:
        stop.set()
        await asyncio.wait_for(serving, 30)
        await daemon.aclose()
        app.close_daemon(daemon)
        systemd.close()
    assert other.lease()[2] is False                     # a clean stop releases the lease
    other.close()


def test_a_follower_behind_its_lag_bound_and_a_deposed_leader_are_not_ready_as_replicas():
    import time

    from watchdog.daemon.replica import Replica
    from watchdog.model.timefmt import Duration

    replica = Replica(store=None, holder="desk-b/7", ttl=Duration("2s"), leader="desk-a/3")
    assert replica.lag_reasons(cursor=0, head_seq=40)            # never caught up yet
    replica.caught_up()
    assert replica.lag_reasons(cursor=40, head_seq=40) == []
    replica.caught_up_at = time.monotonic() - 5                  # stuck for longer than the lease
    assert replica.lag_reasons(cursor=12, head_seq=40) == [
        "following: 28 events behind the log, not caught up within the lag bound (2s, the lease)"]
    replica.role = "leader"
    assert replica.lag_reasons(cursor=12, head_seq=40) == []
    replica.deposed()
    assert replica.lag_reasons(cursor=12, head_seq=40) == ["deposed: desk-b/7 lost the leader lease to desk-a/3"]
