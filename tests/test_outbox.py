"""The outbox end to end on a real event store with an injected clock: alerts are grouped,
flushes requested, delivered in order, suppressed with reasons, and every decision survives a
restart because it is folded back from the log (real calendar dates throughout)."""
from __future__ import annotations

import io
from datetime import datetime, timedelta

from test_notify_slack import CHANNEL, TOKEN, WEBHOOK_TAIL, Sleeps, slack  # noqa: F401 (fixture)

from watchdog.alerting.decisions import audit_decisions
from watchdog.alerting.dispatch import default_receivers
from watchdog.alerting.outbox import Outbox
from watchdog.alerting.silences import silence_added_event
from watchdog.app import config_payload
from watchdog.daemon.delivery import Delivery
from watchdog.daemon.loop import CycleReport
from watchdog.model.config import SlackReceiver, parse_config
from watchdog.model.events import (
    CONFIG_LOADED,
    NOTIFICATION_REQUESTED,
    AlertTransition,
    FlushRequested,
    NewEvent,
    SilenceAdded,
    ToldAlert,
    new_alert,
    typed_event,
)
from watchdog.model.timefmt import parse_utc, utc_text
from watchdog.notify.console import ConsoleNotifier
from watchdog.notify.slack.send import SlackNotifier
from watchdog.store import AsyncWriter, MemoryEventStore, iter_events

CONFIG = '''
[receivers.screen]
type = "console"
[[routes]]
match = { area = "repo" }
receivers = ["screen"]
group_by = ["area"]
group_wait = "30s"
group_interval = "5m"
repeat_interval = "4h"
mute = []
[[routes]]
match = { area = "reserves" }
receivers = ["screen"]
group_by = ["rule"]
group_wait = "0s"
group_interval = "1m"
mute = ["weekends"]
[[inhibit]]
source = { severity = "critical" }
target = { severity = "warning" }
equal = ["area"]
[mute.weekends]
timezone = "America/New_York"
weekdays = ["saturday", "sunday"]
[daemon]
catchup_horizon = "3d"
'''


def utc(text: str) -> datetime:
    """'2025-10-31T13:00:00Z' as an aware datetime."""
    return parse_utc(text if "." in text else text.replace("Z", ".000000Z"))


class Desk:
    """One daemon's outbox half: a store, the outbox folded from it, and a clock we move."""

    def __init__(self, config_text: str = CONFIG, store=None, notifiers=None, at: str = "2025-10-31T13:00:00Z"):
        self.config = parse_config(config_text, "watchdog.toml")
        self.clock = utc(at)
        self.store = store or MemoryEventStore(now=lambda: self.clock)
        self.writer = AsyncWriter(self.store)
        self.stream = io.StringIO()
        self.notifiers = notifiers or {"screen": ConsoleNotifier(self.stream)}
        self.outbox = Outbox(routes=list(self.config.routes), default_receivers=default_receivers(self.config))
        self.cursor = 0
        self.wake: datetime | None = None
        if store is None:                     # what the daemon records at start, for audit
            loaded = config_payload(self.config)
            self.store.append([typed_event(CONFIG_LOADED, f"config-loaded/{loaded.hash[:16]}", loaded)])

    def audit(self) -> list[str]:
        return audit_decisions(iter_events(self.store)).differences

    def at(self, text: str) -> Desk:
        self.clock = utc(text)
        return self

    async def evaluate(self) -> int:
        for event in iter_events(self.store, after=self.cursor):
            self.outbox.apply(event)
            self.cursor = event.seq
        return 0

    async def fire(self, rule: str, *, state: str = "firing", severity: str = "warning",
                   area: str = "repo", date: str | None = None) -> None:
        t = AlertTransition(rule=rule, rule_hash="0" * 64, state=state,
                            date=date or self.clock.date().isoformat(), value="12",
                            severity=severity, evaluated_at=utc_text(self.clock), reason="threshold",
                            labels={"area": area}, summary=f"{rule} {state}")
        await self.writer.append([new_alert(t)])

    async def deliver(self) -> CycleReport:
        await self.evaluate()
        report = CycleReport()
        delivery = Delivery(self.writer, self.outbox, self.notifiers, self.config, lambda: self.clock,
                            timedelta(days=3))
        self.wake = await delivery.deliver(report, self.evaluate)
        return report

    def events(self, kind: str) -> list:
        return [e for e in iter_events(self.store) if e.type == kind]

    def lines(self) -> list[str]:
        return [line.strip() for line in self.stream.getvalue().splitlines()]


async def test_two_rules_of_one_area_are_one_message_after_group_wait():
    desk = Desk()
    await desk.fire("sofr-over-iorb")
    await desk.at("2025-10-31T13:00:10Z").fire("tgcr-over-iorb")
    await desk.at("2025-10-31T13:00:20Z").deliver()
    assert desk.lines() == [] and desk.wake == utc("2025-10-31T13:00:30Z")   # group_wait
    await desk.at("2025-10-31T13:00:30Z").deliver()
    assert desk.lines() == ['[GROUP 2 alerts] {area="repo"}',
                            "[FIRING warning] sofr-over-iorb 2025-10-31: sofr-over-iorb firing (threshold)",
                            "[FIRING warning] tgcr-over-iorb 2025-10-31: tgcr-over-iorb firing (threshold)"]
    [requested] = desk.events("notification-requested")
    assert requested.key == 'flush/screen/routes[0]/{area="repo"}/1'
    assert requested.payload["reason"] == "first-notification"
    [sent] = desk.events("notification-sent")
    assert (sent.payload["group"], sent.payload["flush"]) == (requested.payload["group"], 1)
    assert sent.payload["delivery"] == 'notify/screen/routes[0]/{area="repo"}/1'
    await desk.at("2025-10-31T13:01:00Z").deliver()
    assert len(desk.events("notification-requested")) == 1        # nothing new: not sent again
    assert desk.audit() == []
    assert audit_decisions(iter_events(desk.store)).checked == 2   # the request and the attempt


async def test_a_restarted_outbox_rebuilds_the_group_timers_from_the_log():
    first = Desk()
    await first.fire("sofr-over-iorb")
    await first.at("2025-10-31T13:00:30Z").deliver()               # flush 1
    await first.at("2025-10-31T13:01:00Z").fire("bgcr-over-iorb")
    # the process dies here; a new one folds the same log
    second = Desk(store=first.store, at="2025-10-31T13:02:00Z")
    await second.deliver()
    assert second.lines() == [] and second.wake == utc("2025-10-31T13:05:30Z")   # group_interval
    await second.at("2025-10-31T13:05:30Z").deliver()
    assert second.lines()[0] == '[GROUP 2 alerts] {area="repo"}'
    flushes = [e.payload["flush"] for e in second.events("notification-requested")]
    assert flushes == [1, 2]                                        # flush 1 was not re-decided
    assert second.events("notification-requested")[1].payload["reason"] == "firing-changed"
    assert second.audit() == []


async def test_repeat_interval_resends_a_still_firing_alert_from_friday_into_the_weekend():
    desk = Desk()
    await desk.fire("sofr-over-iorb")
    await desk.at("2025-10-31T13:00:30Z").deliver()
    await desk.at("2025-10-31T17:00:00Z").deliver()
    assert len(desk.events("notification-requested")) == 1 and desk.wake == utc("2025-10-31T17:00:30Z")
    await desk.at("2025-10-31T17:00:30Z").deliver()                # 4 h after the first flush
    reasons = [e.payload["reason"] for e in desk.events("notification-requested")]
    assert reasons == ["first-notification", "repeat-interval"]
    await desk.at("2025-11-01T09:00:00Z").fire("sofr-over-iorb", state="resolved")   # Saturday
    await desk.deliver()                            # this route has no mute: sent at once
    assert desk.lines()[-1].startswith("[RESOLVED warning] sofr-over-iorb 2025-11-01")


async def test_every_flush_reaches_slack_in_order_per_rule_after_a_sustained_429_and_500s(slack):  # noqa: F811
    config = SlackReceiver(type="slack", webhook_url_env="SLACK_WEBHOOK_URL")
    hook = SlackNotifier("screen", config, {"SLACK_WEBHOOK_URL": f"{slack.base}/services/{WEBHOOK_TAIL}"},
                         sleep=Sleeps(), timeout=0.5, max_attempts=2)
    limited = ("status", 429, "rate_limited", {"Retry-After": "120"})     # longer than max_wait
    slack.script["webhook"] = [limited] * 5 + [("status", 500, "oops", {})] * 2
    desk = Desk(CONFIG.replace('group_by = ["area"]', 'group_by = ["rule"]'), notifiers={"screen": hook})
    await desk.fire("sofr-over-iorb")
    await desk.fire("bgcr-over-iorb")
    minutes = iter(range(0, 120, 3))
    async def step() -> None:
        await desk.at(utc_text(utc("2025-10-31T13:00:30Z") + timedelta(minutes=next(minutes)))).deliver()
    await step()
    await step()
    await desk.at("2025-10-31T13:06:00Z").fire("sofr-over-iorb", state="resolved")
    await desk.at("2025-10-31T13:06:00Z").fire("bgcr-over-iorb", state="resolved")
    for _ in range(20):
        await step()
    assert slack.script["webhook"] == []                                 # the outage was spent
    texts = [p["text"] for p in slack.webhook_posts]
    per_rule = {rule: ["RESOLVED" if "RESOLVED" in t else "FIRING" for t in texts if rule in t]
                for rule in ("sofr-over-iorb", "bgcr-over-iorb")}
    assert per_rule == {"sofr-over-iorb": ["FIRING", "RESOLVED"],      # in order per rule
                        "bgcr-over-iorb": ["FIRING", "RESOLVED"]}
    assert len(slack.webhook_posts) == 4                                 # none lost, none doubled
    keys = [e.payload["delivery"] for e in desk.events("notification-sent")]
    assert len(keys) == len(set(keys)) == 4
    assert len(desk.events("notification-failed")) >= 3
    assert desk.audit() == []


async def test_a_silence_leaves_the_alert_out_once_then_it_is_news_when_the_silence_ends():
    desk = Desk()
    silence = SilenceAdded(id="month-end", matchers={"rule": "sofr-over-iorb"}, starts_at=utc_text(desk.clock),
                           ends_at="2025-10-31T15:00:00.000000Z", created_by="desk", comment="month-end, known")
    await desk.writer.append([silence_added_event(silence)])
    await desk.fire("sofr-over-iorb")
    await desk.at("2025-10-31T13:00:30Z").deliver()
    await desk.at("2025-10-31T14:00:00Z").deliver()
    [suppressed] = desk.events("notification-suppressed")
    assert suppressed.payload["reason"] == "silence" and "month-end, known" in suppressed.payload["detail"]
    assert desk.lines() == []
    await desk.at("2025-10-31T15:00:00Z").deliver()
    assert desk.lines() == ["[FIRING warning] sofr-over-iorb 2025-10-31: sofr-over-iorb firing (threshold)"]
    assert desk.audit() == []


async def test_a_firing_critical_inhibits_a_warning_of_the_same_area():
    desk = Desk()
    await desk.fire("funding-stress", severity="critical")
    await desk.fire("sofr-over-iorb", severity="warning")
    await desk.at("2025-10-31T13:00:30Z").deliver()
    assert desk.lines() == ["[FIRING critical] funding-stress 2025-10-31: funding-stress firing (threshold)"]
    [suppressed] = desk.events("notification-suppressed")
    assert (suppressed.payload["rule"], suppressed.payload["reason"]) == ("sofr-over-iorb", "inhibition")


async def test_a_weekend_mute_holds_saturday_news_until_monday_midnight_new_york():
    desk = Desk(at="2025-11-01T14:00:00Z")                          # Saturday
    await desk.fire("reserves-low", area="reserves", date="2025-10-31")
    await desk.deliver()
    assert desk.lines() == []
    [suppressed] = desk.events("notification-suppressed")
    assert suppressed.payload["reason"] == "mute"
    assert desk.wake == utc("2025-11-03T05:00:00Z")                 # Monday 00:00 EST (after DST)
    await desk.at("2025-11-02T20:00:00Z").deliver()                 # Sunday: still muted, once
    assert len(desk.events("notification-suppressed")) == 1 and desk.lines() == []
    await desk.at("2025-11-03T05:00:00Z").deliver()
    assert desk.lines() == ["[FIRING warning] reserves-low 2025-10-31: reserves-low firing (threshold)"]
    assert desk.audit() == []


async def test_an_alert_still_firing_from_before_the_catch_up_horizon_is_told_once_saying_since_when():
    desk = Desk(at="2025-11-10T14:00:00Z")
    await desk.fire("sofr-over-iorb", date="2025-10-31")            # six business days late
    await desk.fire("bgcr-over-iorb", date="2025-11-07")
    await desk.at("2025-11-10T14:00:30Z").deliver()
    assert desk.events("notification-suppressed") == []
    [flush] = desk.events("notification-requested")
    assert flush.payload["since"] == ["sofr-over-iorb@2025-11-10T14:00:00.000000Z"]
    assert desk.lines() == [
        '[GROUP 2 alerts] {area="repo"}',
        "[FIRING warning] bgcr-over-iorb 2025-11-07: bgcr-over-iorb firing (threshold)",
        "[FIRING warning] sofr-over-iorb 2025-10-31: sofr-over-iorb firing "
        "(still firing since 2025-10-31; threshold)"]
    assert desk.audit() == []


async def test_reminders_go_on_while_an_alert_fires_however_old_its_start():
    desk = Desk(at="2025-11-05T14:00:00Z")
    await desk.fire("sofr-over-iorb", date="2025-11-05")
    await desk.at("2025-11-05T14:00:30Z").deliver()
    for day in ("2025-11-10", "2025-11-20", "2025-12-15"):          # 4h repeat_interval, weeks on
        await desk.at(f"{day}T15:00:00Z").deliver()
    flushes = desk.events("notification-requested")
    assert [f.payload["reason"] for f in flushes] == ["first-notification"] + ["repeat-interval"] * 3
    assert len(desk.lines()) == 4 and desk.events("notification-suppressed") == []


async def test_a_firing_that_resolves_before_its_flush_is_told_as_a_short_episode():
    desk = Desk(at="2025-12-02T14:00:00Z")
    await desk.fire("sofr-over-iorb", date="2025-12-01")            # one catch-up batch: a one-day
    await desk.fire("sofr-over-iorb", state="resolved", date="2025-12-02")   # spike, over already
    await desk.at("2025-12-02T14:00:30Z").deliver()
    [flush] = desk.events("notification-requested")
    assert flush.payload["episodes"] == ["sofr-over-iorb@2025-12-02T14:00:00.000000Z"]
    assert desk.lines() == ["[RESOLVED warning] sofr-over-iorb 2025-12-02: sofr-over-iorb resolved "
                            "(short episode: fired for 2025-12-01 at 12 and resolved for 2025-12-02 "
                            "before a notification went out; threshold)"]
    await desk.at("2025-12-02T20:00:00Z").deliver()                  # told once
    assert len(desk.lines()) == 1 and desk.audit() == []


async def test_a_flush_naming_an_alert_the_log_never_recorded_tells_only_what_it_knows():
    """Only a log the daemon did not write names such an instance (a flush names what the fold
    saw): the message leaves it out, and a flush of nothing known fails for good, saying why."""
    desk = Desk()
    await desk.fire("sofr-over-iorb")
    await desk.at("2025-10-31T13:00:30Z").deliver()
    [first] = desk.events("notification-requested")
    group, real, ghost = first.payload["group"], first.payload["firing"][0], "ghost@2025-10-31T13:00:00.000000Z"
    await desk.writer.append([typed_event(NOTIFICATION_REQUESTED, f"flush/{group}/{n}", FlushRequested(
        group=group, receiver="screen", route=first.payload["route"], flush=n, requested_at=utc_text(desk.clock),
        reason="firing-changed", firing=firing)) for n, firing in ((2, [real, ghost]), (3, [ghost]))])
    await desk.deliver()
    assert desk.lines()[1:] == ["[FIRING warning] sofr-over-iorb 2025-10-31: sofr-over-iorb firing (threshold)"]
    [failed] = desk.events("notification-failed")
    assert failed.payload["flush"] == 3 and failed.payload["permanent"] and failed.payload["rules"] == []
    assert failed.payload["detail"] == f"nothing to tell: the log holds no alert of {ghost}"


async def test_a_route_can_record_short_episodes_as_suppressed_and_old_ones_are_catch_up():
    desk = Desk(CONFIG.replace('mute = []', 'mute = []\nshort_episodes = "suppress"'),
                at="2025-12-02T14:00:00Z")
    await desk.fire("sofr-over-iorb", date="2025-12-01")
    await desk.fire("sofr-over-iorb", state="resolved", date="2025-12-02")
    await desk.fire("tgcr-over-iorb", date="2025-11-03")            # over before the horizon
    await desk.fire("tgcr-over-iorb", state="resolved", date="2025-11-04")
    await desk.at("2025-12-02T14:00:30Z").deliver()
    reasons = {e.payload["rule"]: (e.payload["reason"], e.payload["detail"])
               for e in desk.events("notification-suppressed")}
    assert reasons == {
        "sofr-over-iorb": ("resolved-before-flush", "fired for 2025-12-01 and resolved for 2025-12-02 "
                                                    "before its group flushed (short_episodes = \"suppress\")"),
        "tgcr-over-iorb": ("catch-up", "fired for 2025-11-03 and resolved for 2025-11-04, both before the "
                                       "catch-up horizon (3 days, 0:00:00): over before it could be told")}
    assert desk.lines() == [] and desk.audit() == []


async def test_a_crash_mid_send_is_reconciled_from_slack_metadata_not_posted_twice(slack):  # noqa: F811
    config = SlackReceiver(type="slack", token_env="SLACK_BOT_TOKEN", channel=CHANNEL,
                           api_base_url=f"{slack.base}/api/")
    bot = SlackNotifier("screen", config, {"SLACK_BOT_TOKEN": TOKEN}, sleep=Sleeps(), timeout=0.5)
    desk = Desk(notifiers={"screen": bot})
    await desk.fire("sofr-over-iorb")
    await desk.at("2025-10-31T13:00:30Z").deliver()
    assert len(slack.api_calls("chat.postMessage")) == 1
    # Simulate the crash window: the message landed, but the process died before recording
    # notification-sent. Rebuild a log whose last step for this flush is the attempt.
    log = [e for e in iter_events(desk.store) if e.type != "notification-sent"]
    store = MemoryEventStore(now=lambda: utc("2025-10-31T13:01:00Z"))
    store.append([NewEvent(type=e.type, key=e.key, payload=e.payload, published_at=e.published_at)
                  for e in log])
    restarted = Desk(store=store, notifiers={"screen": bot}, at="2025-10-31T13:01:00Z")
    report = await restarted.deliver()
    assert report.sent == 1 and len(slack.api_calls("chat.postMessage")) == 1
    [sent] = restarted.events("notification-sent")
    assert sent.payload["reconciled"] is True and sent.payload["reference"].startswith(CHANNEL)


async def test_audit_names_a_flush_or_suppression_the_log_does_not_justify():
    desk = Desk()
    await desk.fire("funding-stress", severity="critical")
    await desk.fire("sofr-over-iorb", severity="warning")
    await desk.at("2025-10-31T13:00:30Z").deliver()
    assert desk.audit() == []
    forged = []
    for e in iter_events(desk.store):
        payload = dict(e.payload)
        if e.type == "notification-requested":
            payload["firing"] = payload["firing"] + ["sofr-over-iorb@2025-10-31T13:00:00.000000Z"]
        forged.append(NewEvent(type=e.type, key=e.key, payload=payload, published_at=e.published_at))
    forged.append(NewEvent(type="notification-attempted", key="notify/screen/nowhere/1/attempt/1",
                           payload={"delivery": "notify/screen/nowhere/1", "receiver": "screen", "attempt": 1}))
    store = MemoryEventStore(now=lambda: desk.clock)
    store.append(forged)
    differences = audit_decisions(iter_events(store)).differences
    assert any("differs in firing" in d for d in differences)
    assert any("attempted notify/screen/nowhere/1, which was not owed" in d for d in differences)


async def test_pending_says_why_each_notification_waits():
    desk = Desk(notifiers={"screen": _Refusing()})
    await desk.fire("sofr-over-iorb")
    await desk.at("2025-10-31T13:00:30Z").deliver()
    await desk.at("2025-10-31T13:06:00Z").fire("sofr-over-iorb", state="resolved")
    await desk.deliver()
    rows = desk.outbox.pending(utc_text(desk.clock))
    assert [(r["flush"], r["state"], r["attempts"]) for r in rows] == [(1, "backoff", 2), (2, "queued", 0)]
    assert rows[0]["not_before"] > utc_text(desk.clock) and rows[0]["rules"] == ["sofr-over-iorb"]
    later = desk.outbox.pending(rows[0]["not_before"])
    assert [(r["flush"], r["state"]) for r in later] == [(1, "due"), (2, "queued")]


class _Refusing:
    """A receiver whose server keeps answering 429 (the fake Slack tests cover the HTTP)."""

    async def send(self, alert: ToldAlert, *, key: str):
        from watchdog.notify import SendResult
        return SendResult("failed", detail="429 rate_limited", retry_after=300)
