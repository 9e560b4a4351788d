"""Notifications end to end: `watchdog run --once` routes a real alert to a fake Slack that is
rate-limited and failing for a while, and to a receiver that fails for good and falls back."""
from __future__ import annotations

import json
import sqlite3

from fakes import FakeFed, FakeSlack
from test_daemon import CANARY, count, recent_business_days, watchdog, write_config


async def test_an_alert_reaches_slack_after_429_and_500_and_a_dead_receiver_falls_back(aiohttp_server, tmp_path, monkeypatch):
    fed, slack = FakeFed(), FakeSlack(webhooks={"T0/B0/desk"})         # "gone" is no webhook
    slack.fail_next(endpoint="webhook", status=429, body="rate_limited", headers={"Retry-After": "1"})
    slack.fail_next(endpoint="webhook", status=500, body="oops")
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
    assert len(slack.webhook_posts) == 1 and "sofr-over-iorb" in slack.webhook_posts[0]["text"]
    assert slack.refusals == 2                                  # the 429 and the 500 were answered
    shown = json.dumps(slack.webhook_posts[0], ensure_ascii=False)
    assert "2 readings: 32 bp → 35 bp\\nlow 32 bp, high 35 bp" in shown   # the sparkline of the rule's values
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
    assert "FIRING" not in out and len(slack.webhook_posts) == 1     # delivered once, not again
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


# ---- a delivery killed mid-send ----

async def _killed_mid_send(config, env: dict, posted) -> None:
    """Run the daemon once and SIGKILL it while its Slack post hangs (after it landed)."""
    import asyncio
    import os
    import signal
    import sys
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watchdog", "run", "--config", str(config), "--once",
        env={**os.environ, "FRED_TEST_KEY": CANARY, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    for _ in range(300):
        if posted() or proc.returncode is not None:
            break
        await asyncio.sleep(0.05)
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    out, err = await proc.communicate()
    assert posted(), "the daemon never reached Slack: " + err.decode()[-3000:]
    assert proc.returncode == -signal.SIGKILL


def _slack_config(tmp_path, fed_url: str, receiver: str) -> object:
    config = write_config(tmp_path, fed_url)
    config.write_text(config.read_text().replace('[receivers.screen]\ntype = "console"\n', receiver))
    return config


async def test_a_bot_delivery_killed_mid_send_is_found_in_the_channel_not_posted_again(aiohttp_server, tmp_path, monkeypatch):
    from test_notify_slack import CHANNEL, TOKEN
    fed, slack = FakeFed(), FakeSlack(token=TOKEN)
    fed_server, slack_server = await aiohttp_server(fed.app()), await aiohttp_server(slack.app())
    config = _slack_config(tmp_path, str(fed_server.make_url("")).rstrip("/"), f'''
[receivers.desk]
type = "slack"
token_env = "SLACK_BOT_TOKEN"
channel = "{CHANNEL}"
api_base_url = "{str(slack_server.make_url("/api/"))}"
''')
    days = [d.isoformat() for d in recent_business_days(3)]
    fed.iorb, fed.sofr = {days[0]: "3.90"}, {days[1]: "4.22", days[2]: "4.25"}
    slack.script["chat.postMessage"] = [("land_then_hang", 60)]      # lands, answers too late
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    await _killed_mid_send(config, {"SLACK_BOT_TOKEN": TOKEN}, lambda: len(slack.history) == 1)
    db = tmp_path / "events.db"
    assert count(db, "notification-attempted") == 1 and count(db, "notification-sent") == 0

    code, out, err = await watchdog("run", "--config", str(config), "--once")   # restarted
    assert code == 0, err
    assert len(slack.api_calls("chat.postMessage")) == 1 and len(slack.history) == 1   # not again
    conn = sqlite3.connect(db)
    [(payload,)] = conn.execute("SELECT payload FROM events WHERE type = 'notification-sent'").fetchall()
    conn.close()
    assert json.loads(payload)["reconciled"] is True
    code, out, err = await watchdog("audit", "--db", str(db))
    assert code == 0, out + err


async def test_a_webhook_delivery_killed_mid_send_is_sent_again_at_least_once(aiohttp_server, tmp_path, monkeypatch):
    from test_notify_slack import WEBHOOK_TAIL
    fed, slack = FakeFed(), FakeSlack(webhooks={WEBHOOK_TAIL})
    fed_server, slack_server = await aiohttp_server(fed.app()), await aiohttp_server(slack.app())
    config = _slack_config(tmp_path, str(fed_server.make_url("")).rstrip("/"),
                           '[receivers.desk]\ntype = "slack"\nwebhook_url_env = "SLACK_DESK"\n')
    hook = str(slack_server.make_url(f"/services/{WEBHOOK_TAIL}"))
    monkeypatch.setenv("SLACK_DESK", hook)
    days = [d.isoformat() for d in recent_business_days(3)]
    fed.iorb, fed.sofr = {days[0]: "3.90"}, {days[1]: "4.22", days[2]: "4.25"}
    slack.script["webhook"] = [("land_then_hang", 60)]
    await _killed_mid_send(config, {"SLACK_DESK": hook}, lambda: len(slack.webhook_posts) == 1)
    code, out, err = await watchdog("outbox", "--db", str(tmp_path / "events.db"), "--json")
    [owed] = [json.loads(line) for line in out.splitlines()]
    assert (owed["receiver"], owed["state"], owed["attempts"], owed["rules"]) == (
        "desk", "unknown", 1, ["sofr-over-iorb"])                 # the send the kill interrupted
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0, err
    assert len(slack.webhook_posts) == 2                # a webhook cannot be asked: resent
    assert slack.webhook_posts[0]["text"] == slack.webhook_posts[1]["text"]
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert len(slack.webhook_posts) == 2                # and then never again
    code, out, err = await watchdog("outbox", "--db", str(tmp_path / "events.db"))
    assert out == "" and "0 notifications owed" in err
    code, out, err = await watchdog("audit", "--db", str(tmp_path / "events.db"))
    assert code == 0, out + err
