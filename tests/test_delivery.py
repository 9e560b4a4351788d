"""Notifications end to end: `watchdog run --once` routes a real alert to a fake Slack that is
rate-limited and failing for a while, and to a receiver that fails for good and falls back."""
from __future__ import annotations

import json
import sqlite3

from aiohttp import web

from test_daemon import FakeFed, recent_business_days, watchdog, write_config


class FakeSlack:
    def __init__(self):
        self.calls: list[str] = []
        self.received: list[dict] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/services/T0/B0/desk", self.desk)
        app.router.add_post("/services/T0/B0/gone", self.gone)
        return app

    async def desk(self, request: web.Request) -> web.Response:
        self.calls.append("desk")
        if len(self.calls) == 1:
            return web.Response(status=429, headers={"Retry-After": "1"}, text="rate_limited")
        if len(self.calls) == 2:
            return web.Response(status=500, text="oops")
        self.received.append(await request.json())
        return web.Response(text="ok")

    async def gone(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="no_service")


async def test_an_alert_reaches_slack_after_429_and_500_and_a_dead_receiver_falls_back(aiohttp_server, tmp_path, monkeypatch):
    fed, slack = FakeFed(), FakeSlack()
    fed_server = await aiohttp_server(fed.app())
    slack_server = await aiohttp_server(slack.app())
    config = write_config(tmp_path, str(fed_server.make_url("")).rstrip("/"))
    text = config.read_text().replace('[receivers.screen]\ntype = "console"\n', f'''
[receivers.desk]
type = "slack"
webhook_url_env = "SLACK_DESK"
[receivers.gone]
type = "slack"
webhook_url_env = "SLACK_GONE"
[receivers.screen]
type = "console"
[[routes]]
match = {{ severity = "warning" }}
receivers = ["desk", "gone"]
fallback = "screen"
''')
    config.write_text(text)
    base = str(slack_server.make_url("")).rstrip("/")
    monkeypatch.setenv("SLACK_DESK", base + "/services/T0/B0/desk")
    monkeypatch.setenv("SLACK_GONE", base + "/services/T0/B0/gone")
    days = [d.isoformat() for d in recent_business_days(3)]
    fed.iorb = {days[0]: "3.90"}
    fed.sofr = {days[1]: "4.22", days[2]: "4.25"}
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0, err
    assert len(slack.received) == 1 and "sofr-over-iorb" in slack.received[0]["text"]
    assert "[FIRING warning] sofr-over-iorb" in out            # the fallback receiver got it
    db = sqlite3.connect(tmp_path / "events.db")
    rows = [(t, json.loads(p)) for t, p in db.execute(
        "SELECT type, payload FROM events WHERE type LIKE 'notification-%' ORDER BY seq")]
    db.close()
    sent = sorted(p["receiver"] for t, p in rows if t == "notification-sent")
    failed = [p for t, p in rows if t == "notification-failed"]
    assert sent == ["desk", "screen"]
    assert len(failed) == 1 and failed[0]["receiver"] == "gone" and failed[0]["permanent"] is True
    assert failed[0]["fallback"] == "screen" and "hooks" not in json.dumps(failed[0])
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert "FIRING" not in out and len(slack.received) == 1     # delivered once, not again
    code, out, err = await watchdog("audit", "--db", str(tmp_path / "events.db"))
    assert code == 0, out + err


async def test_a_silence_added_from_the_cli_suppresses_the_notification_with_its_reason(aiohttp_server, tmp_path):
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    db = str(tmp_path / "events.db")
    code, out, err = await watchdog("silence", "add", "--db", db, "--rule", "sofr-over-iorb", "--until", "2h",
                                    "--comment", "month-end, known", "--by", "desk")
    assert code == 0, err
    days = [d.isoformat() for d in recent_business_days(3)]
    fed.iorb = {days[0]: "3.90"}
    fed.sofr = {days[1]: "4.22", days[2]: "4.25"}
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0, err
    assert "FIRING" not in out
    conn = sqlite3.connect(db)
    [(payload,)] = conn.execute("SELECT payload FROM events WHERE type = 'notification-suppressed'").fetchall()
    conn.close()
    suppressed = json.loads(payload)
    assert suppressed["reason"] == "silence" and "month-end, known" in suppressed["detail"]
    code, out, err = await watchdog("audit", "--db", db)
    assert code == 0, out + err
