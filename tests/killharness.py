"""What the kill test (tests/test_kill.py) and the soak (soak/soak.py) share: the shared fake NY
Fed/FRED (tests/fakes.py) publishing day after day, the shared fake Slack remembering every
message, a config for a `watchdog run` polling every second, and the figures read back from the
log afterwards.

Delivery is at-least-once (a webhook cannot be asked whether a post landed before a crash), so
duplicates are counted, not forbidden; a lost fact or a lost alert is a failure.
"""
from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from fakes import CHANNEL, FakeFed, FakeSlack

RULE = '''
[[rule]]
id = "sofr-over-iorb"
expr = "bp(sofr - iorb)"
above = 10
recover_below = 5
severity = "warning"
summary = "SOFR is {{ value }} bp over IORB"
'''
WEBHOOK_ENV = "KILL_TEST_SLACK_WEBHOOK"
TOKEN_ENV = "KILL_TEST_SLACK_TOKEN"
BOT_CHANNEL = CHANNEL
FRED_ENV = "KILL_TEST_FRED_KEY"
_ENTRY = re.compile(r"(FIRING|RESOLVED) (?:\(\w+\) )?([a-z0-9-]+) (\d{4}-\d{2}-\d{2})")
FIRST_DAY = date(2024, 1, 2)


def Publisher(first: date = FIRST_DAY) -> FakeFed:
    """The shared fake NY Fed/FRED (by the name soak/soak.py knows) with IORB 3.90 from
    ``first``: ``publish_days`` adds business days whose SOFR alternates across the rule's
    thresholds, so every new day is an alert transition."""
    return FakeFed(iorb={first.isoformat(): "3.90"}, first=first)


def delivery_identity(text: str) -> tuple:
    """What a message says: its (state, rule, date) entries. The webhook payload carries no
    idempotency key, so two messages saying the same are the same flush sent twice."""
    return tuple(sorted(_ENTRY.findall(text)))


def write_config(tmp: Path, fed_url: str, slack_url: str = "", mode: str = "webhook",
                 store: str = "", name: str = "watchdog.toml") -> Path:
    """``store``: the [store] table's body (default: events.db in ``tmp``)."""
    rules = tmp / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "spread.toml").write_text(RULE)
    config = tmp / name
    store = store or f'path = "{tmp / "events.db"}"'
    config.write_text(f'''
[store]
{store}
[rules]
paths = ["{rules}"]
[sources.nyfed]
base_url = "{fed_url}"
rates = ["sofr"]
timeout = "5s"
poll_every = "1s"
retries = 0
[sources.fred]
base_url = "{fed_url}"
csv_base_url = "{fed_url}"
api_key_env = "{FRED_ENV}"
series = {{ iorb = "IORB" }}
timeout = "5s"
poll_every = "1s"
retries = 0
[receivers.desk]
type = "slack"
{_receiver(mode, slack_url)}
[[routes]]
receivers = ["desk"]
group_wait = "0s"
group_interval = "1s"
[daemon]
catchup_horizon = "36500d"
evaluate_every = "1s"
''')
    return config


def _receiver(mode: str, slack_url: str) -> str:
    if mode == "bot":
        return f'token_env = "{TOKEN_ENV}"\nchannel = "{BOT_CHANNEL}"\napi_base_url = "{slack_url}/api/"'
    return f'webhook_url_env = "{WEBHOOK_ENV}"'


def run_args(config: Path) -> list[str]:
    return [sys.executable, "-m", "watchdog", "run", "--config", str(config), "--no-http", "--log-format", "json"]


def daemon_env(base: dict, slack_url: str) -> dict:
    return {**base, WEBHOOK_ENV: slack_url + "/services/T000/B000/XXXX", FRED_ENV: "kill-test-key",
            TOKEN_ENV: "xoxb-kill-test", "PYTHONUNBUFFERED": "1"}


def _query(db: Path | str, sql: str) -> list[tuple]:
    """``sql`` (portable: no JSON functions) on the log, a SQLite file or a postgresql:// URL."""
    if isinstance(db, str) and db.startswith("postgresql://"):
        import psycopg
        with psycopg.connect(db, autocommit=True) as conn:
            return conn.execute(sql.replace("%", "%%")).fetchall()
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def pg_rows(url: str, sql: str, *args) -> list[tuple]:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()


def pg_leader(url: str) -> tuple[str, int, float] | None:
    """Replicas on a PostgreSQL log: (holder, epoch, when its ``daemon-started`` was recorded,
    in epoch seconds) of the replica leading now: an unexpired lease whose holder (``name/pid``)
    has recorded its start. None before the log exists or while nobody leads."""
    if not pg_rows(url, "SELECT 1 FROM pg_tables WHERE tablename = 'lease'"):
        return None
    lease = pg_rows(url, "SELECT holder, epoch FROM lease WHERE expires_at >= now()")
    if not lease:
        return None
    holder, epoch = lease[0]
    pid = int(holder.rsplit("/", 1)[1])
    for recorded, payload in pg_rows(url, "SELECT recorded_at, payload FROM events WHERE type = "
                                          "'daemon-started' ORDER BY seq DESC LIMIT 20"):
        if json.loads(payload)["pid"] == pid:
            return holder, epoch, datetime.fromisoformat(recorded.replace("Z", "+00:00")).timestamp()
    return None


def _missing(db: Path | str) -> bool:
    return not isinstance(db, str) and not db.exists()


def settled(db: Path, fed: FakeFed, slack: FakeSlack) -> bool:
    """Every published SOFR day is in the log, the outbox owes nothing (each requested flush has
    its notification-sent) and Slack's last word on each rule is its final state."""
    if _missing(db):
        return False
    try:
        sofr = _query(db, "SELECT count(*) FROM events WHERE type = 'observation-recorded' AND key LIKE 'obs/sofr/%'")[0][0]
        owed = _owed(db)
        transitions = _query(db, "SELECT count(*) FROM events WHERE type LIKE 'alert-%'")[0][0]
    except Exception:                  # not created yet (a file, a table): not settled
        return False
    return sofr == len(fed.sofr) and transitions >= len(fed.sofr) - 1 and not owed and not _lost(db, slack)


def _owed(db: Path) -> list[str]:
    requested = {k.replace("flush/", "notify/", 1)          # a flush's delivery key
                 for (k,) in _query(db, "SELECT key FROM events WHERE type = 'notification-requested'")}
    sent = {json.loads(p)["delivery"] for (p,) in _query(db, "SELECT payload FROM events WHERE type = 'notification-sent'")}
    return sorted(requested - sent)


def _lost(db: Path, slack: FakeSlack) -> list[str]:
    """Rules whose final state Slack was not told last. Episodes that fired and resolved between
    two flushes (group_interval) are grouping at work, as in Alertmanager: a group reports its
    current state, not every intermediate one."""
    final = {json.loads(p)["rule"]: t.split("-", 1)[1].upper() for t, p in _query(
        db, "SELECT type, payload FROM events WHERE type IN ('alert-firing', 'alert-resolved') ORDER BY seq")}
    last_said: dict[str, str] = {}
    for text in list(slack.texts):
        # one message may resolve an older instance and fire a newer one: the latest date speaks
        for state, rule, _ in sorted(delivery_identity(text), key=lambda entry: entry[2]):
            last_said[rule] = state
    return [rule for rule, state in final.items() if last_said.get(rule) != state]


@dataclass
class Figures:
    facts_published: int
    facts_lost: int
    facts_duplicated: int
    transitions: int
    alerts_lost: int
    flushes_owed: int
    notifications_received: int
    duplicate_notifications: int
    sent_not_received: int          # deliveries recorded as sent that Slack never got
    audit_exit: int
    audit_output: str = ""

    @property
    def ok(self) -> bool:
        return not (self.facts_lost or self.facts_duplicated or self.alerts_lost or self.flushes_owed
                    or self.sent_not_received or self.audit_exit)


def figures(db: Path, fed: FakeFed, slack: FakeSlack) -> Figures:
    published = {("sofr", d) for d in fed.sofr} | {("iorb", d) for d in fed.iorb}
    rows = _query(db, "SELECT payload FROM events WHERE type IN ('observation-recorded', 'observation-revised')")
    logged = [(p["series"], p["date"]) for p in (json.loads(text) for (text,) in rows)]
    transitions = [json.loads(p) for (p,) in _query(
        db, "SELECT payload FROM events WHERE type IN ('alert-firing', 'alert-resolved') ORDER BY seq")]
    # a webhook post carries no key: a duplicate is the same message twice; a bot post carries
    # the delivery's idempotency key in its metadata: a duplicate is the same key twice
    received = list(slack.keys) if slack.mode == "bot" else [delivery_identity(t) for t in slack.texts]
    lost = _lost(db, slack)
    sent = {json.loads(p)["delivery"] for (p,) in _query(db, "SELECT payload FROM events WHERE type = 'notification-sent'")}
    audit = subprocess.run([sys.executable, "-m", "watchdog", "audit", "--db", str(db)],
                           capture_output=True, text=True, timeout=300)
    return Figures(
        facts_published=len(published), facts_lost=len(published - set(logged)),
        facts_duplicated=len(logged) - len(set(logged)), transitions=len(transitions),
        alerts_lost=len(lost), flushes_owed=len(_owed(db)), notifications_received=len(received),
        sent_not_received=max(0, len(sent) - len(set(received))),
        duplicate_notifications=len(received) - len(set(received)), audit_exit=audit.returncode,
        audit_output=(audit.stdout + audit.stderr)[-2000:])
