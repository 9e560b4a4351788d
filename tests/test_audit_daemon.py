"""Issue "Replay and tuning", done when: `watchdog audit` on a log written by the real daemon —
fake sources, a fake Slack that rate-limits, a silence added while it runs, a reload that
changes the routes and the rules — re-derives every alert and notification decision."""
from __future__ import annotations

import json
import re
import signal

from fakes import FakeFed, FakeSlack
from test_daemon import count, recent_business_days, watchdog
from test_production import rows, serving_config, start_daemon, stop, until
from test_wire import assert_every_payload_round_trips
from watchdog.store import SqliteEventStore, iter_events

ROUTES = '''
[receivers.desk]
type = "slack"
webhook_url_env = "SLACK_DESK"
[[routes]]
match = { rule = "sofr-over-iorb" }
receivers = ["desk", "screen"]
group_wait = "1s"
group_interval = "2s"
'''
EXTRA_RULE = '''
[[rule]]
id = "sofr-level"
expr = "sofr"
above = 4.28
severity = "warning"
summary = "SOFR is {{ value }}%"
'''


async def test_audit_re_derives_a_daemon_run_with_slack_429s_a_silence_and_a_reload(aiohttp_server, tmp_path):
    fed, slack = FakeFed(), FakeSlack(webhooks={"T0/B0/desk"})
    slack.fail_next(3, status=429, body="rate_limited", headers={"Retry-After": "1"})   # its first three posts
    fed_server, slack_server = await aiohttp_server(fed.app()), await aiohttp_server(slack.app())
    config = serving_config(tmp_path, str(fed_server.make_url("")).rstrip("/"))
    base = config.read_text()
    config.write_text(base.replace("[receivers.screen]", ROUTES + "[receivers.screen]", 1))
    days = [d.isoformat() for d in recent_business_days(5)]
    fed.iorb, fed.sofr = {days[0]: "3.90"}, {days[1]: "4.22", days[2]: "4.25"}
    db = tmp_path / "events.db"
    proc = await start_daemon(config, SLACK_DESK=str(slack_server.make_url("/services/T0/B0/desk")))
    try:
        await until(lambda: len(slack.webhook_posts) == 1, 30, "the firing at Slack after its 429s")
        # the operator silences the next episode of the rule from another process
        code, out, err = await watchdog("silence", "add", "--db", str(db), "--rule", "sofr-level",
                                        "--until", "2h", "--comment", "known: month-end", "--by", "desk")
        assert code == 0, err
        # a reload: a new rule, and the desk route now takes every warning
        (tmp_path / "rules" / "level.toml").write_text(EXTRA_RULE)
        config.write_text(config.read_text().replace('match = { rule = "sofr-over-iorb" }',
                                                     'match = { severity = "warning" }'))
        proc.send_signal(signal.SIGHUP)
        await until(lambda: count(db, "config-loaded") == 2, 20, "the reloaded config")
        # Slack's 429s held a cycle past the next poll's instant: polling must go on (a poll job
        # re-armed from inside its own run was once skipped by APScheduler, and never ran again)
        fed.sofr[days[3]] = "4.30"                        # the new rule fires, silenced
        await until(lambda: count(db, "notification-suppressed") >= 1, 20, "the silenced firing")
        fed.sofr[days[4]] = "3.92"                        # sofr recovers: resolved to desk
        await until(lambda: any("RESOLVED" in p["text"] for p in slack.webhook_posts), 30, "the resolve at Slack")
    finally:
        code, out, err = await stop(proc)
    assert code == 0, err[-2000:]
    suppressed = [json.loads(p) for (p,) in rows(db, "SELECT payload FROM events WHERE type = 'notification-suppressed'")]
    assert {(s["rule"], s["reason"]) for s in suppressed} == {("sofr-level", "silence")}
    assert slack.refusals == 3 and count(db, "notification-failed") == 0  # Retry-After honoured in the send
    code, out, err = await watchdog("audit", "--db", str(db))
    assert code == 0, out + err
    checked = re.search(r"(\d+) notification decisions", err)
    assert checked and int(checked.group(1)) >= 6, err
    # the typed wire format: everything this run recorded decodes to its model and back
    store = SqliteEventStore(db, readonly=True)
    try:
        events = list(iter_events(store))
    finally:
        store.close()
    assert assert_every_payload_round_trips(events) == len(events)
    assert {"daemon-started", "daemon-stopped", "config-loaded", "rules-loaded", "silence-added",
            "notification-requested", "notification-attempted", "notification-sent",
            "notification-suppressed", "alert-firing", "alert-resolved"} <= {e.type for e in events}
