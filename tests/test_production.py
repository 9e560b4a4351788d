"""The daemon in production, as a real `watchdog run` subprocess against local fake sources:
systemd's notify protocol on a real datagram socket, SIGHUP reload, the deadman timer, SIGTERM,
and catch-up after downtime."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path


from test_daemon import CANARY, FakeFed, count, recent_business_days, watchdog, write_config
from watchdog.daemon.sdnotify import Notifier

GOOD_RULE = '''
[[rule]]
id = "sofr-over-iorb-fast"
expr = "bp(sofr - iorb)"
above = 10
severity = "warning"
summary = "SOFR is {{ value }} bp over IORB"
'''
IORB_RULE = '''
[[rule]]
id = "iorb-high"
expr = "iorb"
above = 3.8
severity = "info"
'''
BROKEN_RULE = '''
[[rule]]
id = "broken"
expr = "bp(sofr - iorb)"
above = "ten"
severity = "warning"
'''


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket collecting every message."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[tuple[float, str]] = []

    def drain(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return [m for _, m in self.messages]
            self.messages.append((time.monotonic(), data.decode()))

    def fields(self) -> list[dict[str, str]]:
        self.drain()
        return [dict(line.split("=", 1) for line in m.splitlines()) for _, m in self.messages]

    def pings_between(self, start: float, end: float) -> int:
        self.drain()
        return sum(1 for t, m in self.messages if start <= t <= end and "WATCHDOG=1" in m.splitlines())

    def close(self):
        self.sock.close()


ROUTE_AT_ONCE = '[[routes]]\nreceivers = ["screen"]\ngroup_wait = "0s"\n'


def serving_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    """test_daemon's config, polling every second, flushing alerts without a group_wait."""
    config = write_config(tmp_path, url)
    config.write_text(config.read_text().replace('rates = ["sofr"]', 'rates = ["sofr"]\npoll_every = "1s"')
                      .replace('catchup_horizon = "10d"', 'catchup_horizon = "10d"\n' + extra)
                      + ROUTE_AT_ONCE)
    return config


async def start_daemon(config: Path, **env: str) -> asyncio.subprocess.Process:
    full_env = {**os.environ, "FRED_TEST_KEY": CANARY, "PYTHONUNBUFFERED": "1", **env}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watchdog", "run", "--config", str(config), "--no-http", "--log-format", "json",
        env=full_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


def rows(db: Path, sql: str, *args) -> list[tuple]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


async def until(predicate, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.1)


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


# ---- sd_notify ----

def test_notify_reaches_a_path_socket_and_an_abstract_one(tmp_path):
    listener = NotifySocket(tmp_path / "notify")
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")}).notify(READY=1, STATUS="two\nlines")
    assert listener.drain() == ["READY=1\nSTATUS=two lines"]
    name = f"watchdog-test-{os.getpid()}-{time.monotonic_ns()}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract.bind("\0" + name)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).notify(WATCHDOG=1)
        assert abstract.recv(100) == b"WATCHDOG=1"
    finally:
        abstract.close()
        listener.close()


def test_without_systemd_notify_is_a_no_op_and_another_pids_watchdog_is_ignored():
    assert Notifier({}).notify(READY=1) is False
    assert Notifier({"WATCHDOG_USEC": "2000000"}).watchdog_interval == 1.0
    assert Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}).watchdog_interval is None


async def test_serving_daemon_reports_ready_status_pings_and_stopping(aiohttp_server, tmp_path):
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config = serving_config(tmp_path, str(server.make_url("")).rstrip("/"))
    days = [d.isoformat() for d in recent_business_days(2)]
    fed.iorb, fed.sofr = {days[0]: "3.90"}, {days[1]: "3.95"}
    listener = NotifySocket(tmp_path / "notify")
    proc = await start_daemon(config, NOTIFY_SOCKET=str(listener.path), WATCHDOG_USEC="1000000")
    try:
        await until(lambda: any("READY" in f for f in listener.fields()), what="READY=1")
        await until(lambda: listener.pings_between(0, time.monotonic()) >= 3, what="three WATCHDOG=1 pings")
    finally:
        code, out, err = await stop(proc)
    assert code == 0, err
    fields = listener.fields()
    ready = next(f for f in fields if "READY" in f)
    assert ready["READY"] == "1" and "head seq" in ready["STATUS"] and "1 rules" in ready["STATUS"]
    assert fields[-1].get("STOPPING") == "1"
    # the status follows the log: the last STATUS before stopping names a head at least that far
    statuses = [f["STATUS"] for f in fields if "STATUS" in f and "head seq" in f["STATUS"]]
    assert any("last evaluation 20" in s for s in statuses)
    listener.close()
    last = rows(tmp_path / "events.db", "SELECT type, payload FROM events ORDER BY seq DESC LIMIT 1")[0]
    assert last[0] == "daemon-stopped" and json.loads(last[1])["reason"] == "stopped"


async def test_a_blocked_event_log_withholds_pings_and_trips_the_deadman_until_it_frees(aiohttp_server, tmp_path):
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config = serving_config(tmp_path, str(server.make_url("")).rstrip("/"),
                            'deadman_after = "2s"\nevaluate_every = "1s"')
    days = [d.isoformat() for d in recent_business_days(2)]
    fed.iorb, fed.sofr = {days[0]: "3.90"}, {days[1]: "3.95"}
    db = tmp_path / "events.db"
    listener = NotifySocket(tmp_path / "notify")
    proc = await start_daemon(config, NOTIFY_SOCKET=str(listener.path), WATCHDOG_USEC="1000000")
    try:
        await until(lambda: any("READY" in f for f in listener.fields()), what="READY=1")
        blocker = sqlite3.connect(db, timeout=30, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")             # every write of the daemon now waits
        held_at = time.monotonic()
        # until the deadman has tripped and the writer has been blocked for a while (a window
        # long enough to hold pings, were any sent): conditions, not a fixed sleep
        await until(lambda: any("deadman" in f.get("STATUS", "") for f in listener.fields())
                    and time.monotonic() > held_at + 5, timeout=60, what="the deadman while blocked")
        blocked_pings = listener.pings_between(held_at + 2.5, time.monotonic())
        not_ready = [f["STATUS"] for f in listener.fields() if "deadman" in f.get("STATUS", "")]
        blocker.execute("COMMIT")
        blocker.close()
        freed_at = time.monotonic()
        await until(lambda: count(db, "deadman-cleared") == 1, what="deadman-cleared")
        await until(lambda: listener.pings_between(freed_at, time.monotonic()) >= 2, what="pings again")
    finally:
        code, out, err = await stop(proc)
    assert code == 0, err
    assert blocked_pings == 0                          # systemd would have restarted a hung writer
    assert not_ready and "no evaluation for" in not_ready[0]
    assert count(db, "deadman-tripped") == 1
    errors = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e["level"] == "ERROR" and e["msg"].startswith("deadman:") for e in errors)
    assert any("withholding the watchdog ping" in e["msg"] for e in errors)
    # the receivers are told directly (the outbox needs the log, which was what hung)
    assert "[FIRING critical] watchdog-deadman" in out and "[RESOLVED critical] watchdog-deadman" in out
    listener.close()


# ---- SIGHUP ----

async def test_sighup_refuses_a_broken_rule_file_keeps_running_then_applies_a_good_one(aiohttp_server, tmp_path):
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config = serving_config(tmp_path, str(server.make_url("")).rstrip("/"))
    days = [d.isoformat() for d in recent_business_days(3)]
    fed.iorb, fed.sofr = {days[0]: "3.90"}, {days[1]: "3.95", days[2]: "4.25"}
    db = tmp_path / "events.db"
    proc = await start_daemon(config)
    try:
        await until(lambda: count(db, "observation-recorded") == 3, what="the first facts")
        (tmp_path / "rules" / "broken.toml").write_text(BROKEN_RULE)
        proc.send_signal(signal.SIGHUP)
        await until(lambda: count(db, "reload-refused") == 1, what="reload-refused")
        await asyncio.sleep(1.5)
        assert proc.returncode is None                    # still running, on the old rules
        (tmp_path / "rules" / "broken.toml").unlink()
        (tmp_path / "rules" / "fast.toml").write_text(GOOD_RULE)
        proc.send_signal(signal.SIGHUP)
        await until(lambda: count(db, "rules-loaded") == 2, what="the new rules-loaded")
        await until(lambda: count(db, "alert-firing") == 1, what="the new rule firing")
        await until(lambda: count(db, "notification-sent") == 1, what="its notification")
    finally:
        code, out, err = await stop(proc)
    assert code == 0, err
    refused = json.loads(rows(db, "SELECT payload FROM events WHERE type = 'reload-refused'")[0][0])
    problem = refused["problems"][0]
    assert problem.startswith(f"{tmp_path / 'rules' / 'broken.toml'}:5: rule broken: above:"), problem
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e["msg"] == f"reload refused: {problem}" and e["level"] == "ERROR" for e in logged)
    loaded = json.loads(rows(db, "SELECT payload FROM events WHERE type = 'rules-loaded' ORDER BY seq DESC")[0][0])
    assert sorted(r["id"] for r in loaded["rules"]) == ["sofr-over-iorb", "sofr-over-iorb-fast"]
    firing = json.loads(rows(db, "SELECT payload FROM events WHERE type = 'alert-firing'")[0][0])
    assert firing["rule"] == "sofr-over-iorb-fast" and firing["date"] == days[2]
    assert f"[FIRING warning] sofr-over-iorb-fast {days[2]}" in out
    code, out, err = await watchdog("audit", "--db", str(db))
    assert code == 0, out + err


# ---- catch-up after downtime ----

async def test_after_downtime_everything_missed_is_recorded_the_ongoing_is_told_and_the_old_over_is_not(
        aiohttp_server, tmp_path):
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    config.write_text(config.read_text().replace('catchup_horizon = "10d"', 'catchup_horizon = "5d"'))
    (tmp_path / "rules" / "spread.toml").write_text(GOOD_RULE + IORB_RULE)
    days = [d.isoformat() for d in recent_business_days(9)]
    fed.sofr = {days[0]: "3.95"}
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0, err
    # down while the sources publish eight days: an old episode, then a recent one
    fed.iorb = {days[0]: "3.90"}
    fed.sofr.update({d: "3.95" for d in days[1:]})
    fed.sofr.update({days[1]: "4.22", days[2]: "3.92", days[8]: "4.25"})
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0, err
    db = tmp_path / "events.db"
    assert count(db, "observation-recorded") == 10                 # every missed fact, once
    transitions = [(json.loads(p)["rule"], t, json.loads(p)["date"]) for t, p in rows(
        db, "SELECT type, payload FROM events WHERE type LIKE 'alert-%' ORDER BY seq")]
    assert transitions == [("iorb-high", "alert-firing", days[0]),   # in knowledge order
                           ("sofr-over-iorb-fast", "alert-firing", days[1]),
                           ("sofr-over-iorb-fast", "alert-resolved", days[2]),
                           ("sofr-over-iorb-fast", "alert-firing", days[8])]
    suppressed = [json.loads(p) for (p,) in rows(db, "SELECT payload FROM events WHERE type = 'notification-suppressed'")]
    # the episode of days[1]..days[2] was over before the horizon: recorded, not sent
    assert [(s["rule"], s["reason"]) for s in suppressed] == [("sofr-over-iorb-fast", "catch-up")]
    # iorb-high fires since days[0], before the horizon, and still does: told once, since when
    assert out.count("[FIRING") == 2 and f"[FIRING warning] sofr-over-iorb-fast {days[8]}" in out
    assert f"[FIRING info] iorb-high {days[0]}" in out and f"still firing since {days[0]}" in out
    assert days[1] not in out and days[2] not in out
    code, out, err = await watchdog("audit", "--db", str(db))
    assert code == 0, out + err


async def test_a_long_start_up_re_fold_keeps_watchdog_pings_flowing_and_survives_sighup(aiohttp_server, tmp_path):
    """The re-fold of a long log yields to the loop every few thousand events: no gap between
    pings comes near the re-fold's own length (systemd would kill a daemon that went quiet). A
    SIGHUP meanwhile is kept for after the start, not the default action (exit)."""
    from datetime import date, timedelta
    from watchdog.model.events import Observation, new_observation
    from watchdog.store import SqliteEventStore
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config = serving_config(tmp_path, str(server.make_url("")).rstrip("/"))
    store = SqliteEventStore(tmp_path / "events.db")
    first = date(1800, 1, 1)
    for start in range(0, 160_000, 20_000):          # long enough to fold for over a second
        store.append([new_observation(Observation(series="sofr", date=(first + timedelta(days=i)).isoformat(),
                                                  value="4.0", unit="%", source="nyfed"), "2026-01-01T00:00:00.000000Z")
                      for i in range(start, start + 20_000)])
    store.close()
    arrivals: list[tuple[float, str]] = []
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    loop.add_reader(sock.fileno(), lambda: arrivals.append((time.monotonic(), sock.recv(4096).decode())))
    proc = await start_daemon(config, NOTIFY_SOCKET=str(tmp_path / "notify"), WATCHDOG_USEC="400000")
    try:
        await until(lambda: any(m == "WATCHDOG=1" for _, m in arrivals), timeout=60, what="a first ping")
        proc.send_signal(signal.SIGHUP)                 # a reload asked for while still folding
        await until(lambda: any(m.startswith("READY=1") for _, m in arrivals), timeout=60, what="READY=1")
    finally:
        code, _, err = await stop(proc)
        loop.remove_reader(sock.fileno())
        sock.close()
    assert code == 0, err                               # SIGHUP did not kill it
    assert "SIGHUP during start-up: reloading once the log is folded" in err
    pings = [t for t, m in arrivals if m == "WATCHDOG=1"]
    ready = next(t for t, m in arrivals if m.startswith("READY=1"))
    before = [t for t in pings if t <= ready] + [ready]
    refold = ready - before[0]
    gaps = [b - a for a, b in zip(before, before[1:])]
    assert refold > 0.8 and len(gaps) >= 3, (refold, gaps)        # the re-fold took a while ...
    assert max(gaps) < min(1.0, refold / 2), (refold, gaps)        # ... and pings kept coming
