"""Routing, grouping timers, inhibition, mute intervals and silences: pure decisions with
reasons, on real calendar dates (Friday 2025-10-31 .. Tuesday 2025-11-04 crosses the end of US
daylight saving time on Sunday 2025-11-02)."""
from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from watchdog.model.config import InhibitRule, MuteInterval, Route, parse_config
from watchdog.model.events import (
    NOTIFICATION_SENT, AlertTransition, StoredEvent, new_alert,
)
from watchdog.alerting.dispatch import Delivery, alert_labels, default_receivers, group_key, route
from watchdog.alerting.grouping import (
    GroupState,
    decide_flush,
    flush_requested,
    fold_groups,
    plan_flush,
)
from watchdog.alerting.silences import (
    Silence,
    SilenceAdded,
    SilenceExpired,
    fold_silences,
    silence_added_event,
    silence_expired_event,
    silenced,
)
from watchdog.alerting.inhibit import inhibited
from watchdog.alerting.mutes import mute_ends_at, muted
from watchdog.alerting.suppression import suppression_reason
from watchdog.model.timefmt import parse_utc, utc_text

CONFIG = '''\
[receivers.desk]
type = "slack"
webhook_url_env = "SLACK_WEBHOOK_URL"
[receivers.oncall]
type = "email"
smtp_host = "smtp.example.org"
from = "watchdog@example.org"
to = ["desk@example.org"]
[receivers.screen]
type = "console"

[[routes]]
name = "repo-desk"
match = { rule = "sofr-over-iorb", area = "repo" }
receivers = ["desk"]
continue = true
group_by = ["area"]

[[routes]]
match = { severity = "critical" }
receivers = ["desk", "oncall"]
group_by = ["area"]
group_wait = "30s"
group_interval = "5m"
repeat_interval = "1d"

[[routes]]
match_re = { rule = "tga-.*" }
receivers = ["screen"]
send_resolved = false

[[inhibit]]
name = "critical-over-warning"
source = { severity = "critical" }
target = { severity = "warning" }
equal = ["area"]

[mute.weekends]
timezone = "America/New_York"
weekdays = ["saturday", "sunday"]
match = { severity = "info" }
'''


def utc(text: str) -> datetime:
    """'2025-10-31T13:00:00Z' as an aware datetime."""
    return parse_utc(text.replace("Z", ".000000Z") if "." not in text else text)


def alert(rule: str, severity: str = "critical", state: str = "firing",
          at: str = "2025-10-31T13:00:00Z", **labels: str) -> dict:
    return AlertTransition(rule=rule, rule_hash="0" * 64, state=state, date=at[:10], value="12",
                           severity=severity, evaluated_at=utc_text(utc(at)), reason="threshold",
                           labels=labels).model_dump()


def stored(event, seq: int = 1, recorded_at: str = "2025-10-31T13:00:00.000000Z") -> StoredEvent:
    return StoredEvent(seq=seq, type=event.type, key=event.key, published_at=recorded_at,
                       recorded_at=recorded_at, payload=event.payload, hash="0" * 64)


def alert_event(payload: dict) -> StoredEvent:
    t = AlertTransition.model_validate(payload)
    return stored(new_alert(t), recorded_at=t.evaluated_at)


@pytest.fixture(scope="module")
def config():
    return parse_config(CONFIG, "watchdog.toml")


# ---- routing ----

def test_continue_lets_a_later_route_add_its_receivers(config):
    deliveries = route(alert("sofr-over-iorb", area="repo"), config.routes, default_receivers(config))
    assert [(d.receiver, d.route_id) for d in deliveries] == [("desk", "repo-desk"),
                                                               ("oncall", "routes[1]")]
    assert deliveries[0].reason == "repo-desk matched rule=sofr-over-iorb, area=repo"
    # desk is reached by both routes but notified once, with the first route's grouping
    assert deliveries[0].group == 'desk/repo-desk/{area="repo"}'


def test_first_match_without_continue_stops_the_walk(config):
    deliveries = route(alert("tgcr-over-iorb", area="repo"), config.routes, default_receivers(config))
    assert [(d.receiver, d.route_id) for d in deliveries] == [("desk", "routes[1]"),
                                                               ("oncall", "routes[1]")]


def test_regex_matchers_match_the_whole_value(config):
    tga = route(alert("tga-drawdown", severity="warning"), config.routes, ["screen"])
    assert [(d.receiver, d.route_id) for d in tga] == [("screen", "routes[2]")]
    assert tga[0].reason == "routes[2] matched rule=~tga-.*"
    not_anchored = Route(match_re={"rule": "tga"}, receivers=["screen"])
    assert route(alert("tga-drawdown"), [not_anchored], ["desk"])[0].route_id == "default"


def test_no_matching_route_goes_to_every_receiver_or_console(config):
    deliveries = route(alert("reserves-not-abundant", severity="info"), config.routes,
                       default_receivers(config))
    assert [d.receiver for d in deliveries] == ["desk", "oncall", "screen"]
    assert {d.reason for d in deliveries} == {"no route matched: default receivers"}
    assert default_receivers(parse_config("")) == ["console"]
    assert [d.receiver for d in route(alert("x"), [], ["console"])] == ["console"]


def test_group_key_takes_the_group_by_labels_the_alert_has():
    a = alert("sofr-over-iorb", area="repo", venue="tri-party")
    assert group_key(a, ["area", "rule"]) == '{area="repo",rule="sofr-over-iorb"}'
    assert group_key(a, ["desk"]) == "{}"
    assert group_key(a, ["..."]) == ('{area="repo",rule="sofr-over-iorb",severity="critical",'
                                     'venue="tri-party"}')
    assert alert_labels(a)["rule"] == "sofr-over-iorb"


# ---- grouping timers ----

class Timeline:
    """One group (oncall, routes[1], area=repo) driven through the real events."""

    def __init__(self, config, receiver: str = "oncall", routes=None):
        self.routes = routes if routes is not None else config.routes
        self.receivers = default_receivers(config)
        self.receiver = receiver
        self.groups: dict[str, GroupState] = {}
        self.delivery: Delivery | None = None
        self.flushes: list[dict] = []

    def fire(self, rule: str, at: str, state: str = "firing", severity: str = "critical") -> None:
        payload = alert(rule, severity=severity, state=state, at=at, area="repo")
        (self.delivery,) = [d for d in route(payload, self.routes, self.receivers)
                            if d.receiver == self.receiver]
        self.groups = fold_groups([alert_event(payload)], self.routes, self.receivers, self.groups)

    @property
    def state(self) -> GroupState:
        return self.groups[self.delivery.group]

    def check(self, at: str, **kw):
        """Decide at ``at``; a send is recorded (requested, then sent) like the daemon would."""
        now = utc(at)
        decision = decide_flush(self.state, now, self.delivery.route, **kw)
        if decision.send:
            event = flush_requested(self.state, self.delivery, decision, now)
            sent = StoredEvent(0, NOTIFICATION_SENT, event.key + "/sent", utc_text(now),
                               utc_text(now), {"delivery": f"notify/{self.state.group}/{decision.flush}",
                                               "receiver": self.delivery.receiver,
                                               "group": self.state.group, "flush": decision.flush},
                               "0" * 64)
            self.groups = fold_groups([stored(event), sent], self.routes, self.receivers, self.groups)
            self.flushes.append(event.payload)
        return decision


def rules_of(instances) -> list[str]:
    return [i.split("@")[0] for i in instances]


def test_group_wait_then_group_interval_then_repeat_interval_from_friday_to_tuesday(config):
    t = Timeline(config)
    t.fire("sofr-over-iorb", "2025-10-31T13:00:00Z")
    d = t.check("2025-10-31T13:00:10Z")
    assert (d.send, d.reason, d.next_check_at) == (False, "group-wait", utc("2025-10-31T13:00:30Z"))
    d = t.check("2025-10-31T13:00:30Z")
    assert (d.send, d.reason, d.flush, rules_of(d.firing)) == (
        True, "first-notification", 1, ["sofr-over-iorb"])
    assert d.next_check_at == utc("2025-10-31T13:05:30Z")

    t.fire("tgcr-over-iorb", "2025-10-31T13:02:00Z")          # same group: area=repo
    d = t.check("2025-10-31T13:02:00Z")
    assert (d.send, d.reason, d.next_check_at) == (False, "group-interval", utc("2025-10-31T13:05:30Z"))
    d = t.check("2025-10-31T13:05:30Z")
    assert (d.send, d.reason, d.flush) == (True, "firing-changed", 2)
    assert rules_of(d.firing) == ["sofr-over-iorb", "tgcr-over-iorb"]

    d = t.check("2025-10-31T13:10:30Z")                       # nothing new: hold for repeat
    assert (d.send, d.reason, d.next_check_at) == (False, "repeat-interval", utc("2025-11-01T13:05:30Z"))
    assert t.check("2025-11-01T13:05:29Z").send is False
    d = t.check("2025-11-01T13:05:30Z")                       # Saturday
    assert (d.send, d.reason, d.flush) == (True, "repeat-interval", 3)
    # repeat_interval is elapsed time: across the DST change 1d is 24 h, 13:05:30Z again
    d = t.check("2025-11-02T13:05:30Z")
    assert (d.send, d.reason, d.flush) == (True, "repeat-interval", 4)
    assert t.check("2025-11-03T13:05:30Z").reason == "repeat-interval"   # flush 5 (Monday)

    t.fire("sofr-over-iorb", "2025-11-03T14:00:00Z", state="resolved")
    d = t.check("2025-11-03T14:00:00Z")
    assert (d.send, d.reason, d.flush) == (True, "resolved", 6)
    assert rules_of(d.firing) == ["tgcr-over-iorb"] and rules_of(d.resolved) == ["sofr-over-iorb"]

    t.fire("tgcr-over-iorb", "2025-11-04T15:00:00Z", state="resolved")
    d = t.check("2025-11-04T15:00:00Z")
    assert (d.send, d.reason, d.flush, d.firing, rules_of(d.resolved)) == (
        True, "resolved", 7, (), ["tgcr-over-iorb"])
    d = t.check("2025-11-04T15:00:10Z")
    assert (d.send, d.reason, d.next_check_at) == (False, "idle", None)

    # a new episode waits group_wait, but never beats group_interval after the last flush
    t.fire("sofr-over-iorb", "2025-11-04T15:01:00Z")
    d = t.check("2025-11-04T15:01:30Z")
    assert (d.send, d.reason, d.next_check_at) == (False, "group-interval", utc("2025-11-04T15:05:00Z"))
    d = t.check("2025-11-04T15:05:00Z")
    assert (d.send, d.reason, d.flush) == (True, "first-notification", 8)
    assert d.firing[0] == "sofr-over-iorb@2025-11-04T15:01:00.000000Z"   # a new instance

    assert [f["flush"] for f in t.flushes] == list(range(1, 9))
    assert t.state.flushes == t.state.sent_flushes == 8 and not t.state.in_flight


def test_an_alert_that_fires_and_resolves_within_group_wait_is_told_once_as_a_short_episode(config):
    # Alertmanager drops it; a one-day spike must not vanish (a route may suppress it instead)
    t = Timeline(config)
    t.fire("sofr-over-iorb", "2025-10-31T13:00:00Z")
    t.fire("sofr-over-iorb", "2025-10-31T13:00:20Z", state="resolved")
    d = t.check("2025-10-31T13:00:30Z")
    assert (d.send, d.reason, d.firing, d.resolved) == (True, "first-notification", (), ())
    assert d.episodes == ("sofr-over-iorb@2025-10-31T13:00:00.000000Z",)
    assert t.flushes[0]["episodes"] == list(d.episodes)
    assert t.check("2025-10-31T13:10:00Z").reason == "idle"          # told once


def test_re_deriving_a_firing_alert_is_not_news(config):
    t = Timeline(config)
    t.fire("sofr-over-iorb", "2025-10-31T13:00:00Z")
    t.check("2025-10-31T13:00:30Z")
    t.fire("sofr-over-iorb", "2025-10-31T13:03:00Z")          # already firing
    assert t.check("2025-10-31T13:05:30Z").reason == "repeat-interval"


def test_send_resolved_false_sends_no_resolution_and_drops_it_from_the_repeat(config):
    routes = [Route(receivers=["screen"], group_by=["area"], repeat_interval="1d",
                    send_resolved=False)]
    t = Timeline(config, receiver="screen", routes=routes)
    t.fire("tga-drawdown", "2025-10-31T20:00:00Z")
    t.fire("tga-low", "2025-10-31T20:00:05Z")
    assert t.check("2025-10-31T20:00:30Z").reason == "first-notification"
    t.fire("tga-drawdown", "2025-11-01T09:00:00Z", state="resolved")
    d = t.check("2025-11-01T09:00:00Z")
    assert (d.send, d.reason, d.next_check_at) == (False, "repeat-interval", utc("2025-11-01T20:00:30Z"))
    d = t.check("2025-11-01T20:00:30Z")
    assert (d.send, d.reason, rules_of(d.firing), d.resolved) == (
        True, "repeat-interval", ["tga-low"], ())
    t.fire("tga-low", "2025-11-02T09:00:00Z", state="resolved")
    d = t.check("2025-11-02T09:00:00Z")
    assert (d.send, d.reason, d.next_check_at) == (False, "send-resolved-false", None)


def test_send_resolved_can_name_the_receivers_that_get_resolutions(config):
    r = Route(receivers=["desk", "oncall"], send_resolved=["desk"])
    results = {}
    for receiver in ("desk", "oncall"):
        t = Timeline(config, receiver=receiver, routes=[r])
        t.fire("sofr-over-iorb", "2025-10-31T13:00:00Z")
        t.check("2025-10-31T13:00:30Z")
        t.fire("sofr-over-iorb", "2025-10-31T14:00:00Z", state="resolved")
        results[receiver] = t.check("2025-10-31T14:00:00Z").reason
    assert results == {"desk": "resolved", "oncall": "send-resolved-false"}


def test_keyword_flags_are_sent_once_and_batched_per_group_interval(config):
    r = Route(receivers=["screen"], group_by=["rule"])
    t = Timeline(config, receiver="screen", routes=[r])
    t.fire("reserves-not-abundant", "2025-11-03T15:00:00Z", state="flagged", severity="info")
    d = t.check("2025-11-03T15:00:30Z")
    assert (d.reason, len(d.flagged), d.firing) == ("first-notification", 1, ())
    assert t.check("2025-11-03T15:06:00Z").reason == "idle"       # never repeated nor resolved
    t.fire("reserves-not-abundant", "2025-11-03T15:07:00Z", state="flagged", severity="info")
    d = t.check("2025-11-03T15:07:30Z")
    assert (d.send, d.reason) == (True, "first-notification")    # a new episode; group_wait over


def test_a_silenced_member_is_left_out_and_is_news_when_the_silence_ends(config):
    t = Timeline(config)
    t.fire("sofr-over-iorb", "2025-10-31T13:00:00Z")
    t.fire("tgcr-over-iorb", "2025-10-31T13:00:05Z")
    silence = Silence.from_added(SilenceAdded(
        id="tgcr-maint", matchers={"rule": "tgcr-over-iorb"}, starts_at="2025-10-31T12:00:00.000000Z",
        ends_at="2025-10-31T16:00:00.000000Z", comment="TGCR methodology change",
        created_by="alice"))
    plan = plan_flush(t.state, t.delivery, utc("2025-10-31T13:00:30Z"), silences=[silence])
    assert plan.decision.send and rules_of(plan.decision.firing) == ["sofr-over-iorb"]
    assert [(i, s.reason) for i, s in plan.suppressed] == [("tgcr-over-iorb", "silence")]
    t.check("2025-10-31T13:00:30Z", exclude={"tgcr-over-iorb"})
    d = t.check("2025-10-31T16:00:00Z")                        # silence over: tgcr is new
    assert (d.send, d.reason, rules_of(d.firing)) == (True, "firing-changed",
                                                       ["sofr-over-iorb", "tgcr-over-iorb"])


def test_a_mute_holds_a_due_flush_until_the_mute_ends(config):
    weekends = MuteInterval(timezone="America/New_York", weekdays=["saturday", "sunday"])
    t = Timeline(config)
    t.fire("sofr-over-iorb", "2025-11-01T13:00:00Z")           # Saturday
    plan = plan_flush(t.state, t.delivery, utc("2025-11-01T13:00:30Z"), mutes={"weekends": weekends})
    # Monday 00:00 in New York is 05:00Z after the DST change (it was 04:00Z on Saturday)
    assert (plan.decision.send, plan.decision.reason, plan.decision.next_check_at) == (
        False, "mute", utc("2025-11-03T05:00:00Z"))
    plan = plan_flush(t.state, t.delivery, utc("2025-11-03T05:00:00Z"), mutes={"weekends": weekends})
    assert (plan.decision.send, plan.decision.reason) == (True, "first-notification")


# ---- inhibition ----

def test_a_firing_critical_inhibits_a_warning_with_the_same_area(config):
    critical = alert("sofr-over-iorb", severity="critical", area="repo")
    warning = alert("tgcr-over-iorb", severity="warning", area="repo")
    assert inhibited(warning, [critical], config.inhibit) == (
        "critical-over-warning: sofr-over-iorb (critical) is firing with area=repo")
    other_area = alert("tga-drawdown", severity="warning", area="tga")
    assert inhibited(other_area, [critical], config.inhibit) is None
    resolved = alert("sofr-over-iorb", severity="critical", state="resolved", area="repo")
    assert inhibited(warning, [resolved], config.inhibit) is None
    assert inhibited(critical, [critical, warning], config.inhibit) is None


def test_an_alert_never_inhibits_itself_and_absent_equal_labels_are_equal():
    rule = InhibitRule(source_re={"severity": "warning|critical"}, target={"severity": "warning"},
                       equal=["area"])
    warning = alert("tgcr-over-iorb", severity="warning")
    assert inhibited(warning, [warning], [rule]) is None
    other = alert("bgcr-over-iorb", severity="warning")
    assert inhibited(warning, [other], [rule]) == (
        "inhibit[0]: bgcr-over-iorb (warning) is firing with area=")


# ---- mute intervals ----

def test_weekend_mute_in_new_york_spans_the_2025_11_02_dst_change():
    weekends = MuteInterval(timezone="America/New_York", weekdays=["saturday", "sunday"])
    assert not muted(utc("2025-11-01T03:59:59Z"), weekends)   # Friday 23:59:59 EDT
    assert muted(utc("2025-11-01T04:00:00Z"), weekends)       # Saturday 00:00 EDT
    assert muted(utc("2025-11-02T06:30:00Z"), weekends)       # Sunday 01:30 EST, the second time
    assert muted(utc("2025-11-03T04:59:59Z"), weekends)       # Sunday 23:59:59 EST
    assert not muted(utc("2025-11-03T05:00:00Z"), weekends)   # Monday 00:00 EST
    # 49 hours long in UTC: the Sunday had 25
    assert mute_ends_at(utc("2025-11-01T04:00:00Z"), weekends) == utc("2025-11-03T05:00:00Z")
    assert mute_ends_at(utc("2025-10-31T20:00:00Z"), weekends) is None   # not muted now


def test_overnight_time_range_covers_both_ends_of_each_named_day():
    nights = MuteInterval(timezone="America/New_York", weekdays=["monday:friday"],
                          times=[{"start": "17:00", "end": "08:00"}])
    assert not muted(utc("2025-10-31T20:59:00Z"), nights)     # Friday 16:59 EDT
    assert muted(utc("2025-10-31T21:00:00Z"), nights)         # Friday 17:00 EDT
    assert not muted(utc("2025-11-01T04:00:00Z"), nights)     # Saturday 00:00: not a named day
    assert mute_ends_at(utc("2025-10-31T21:00:00Z"), nights) == utc("2025-11-01T04:00:00Z")
    assert muted(utc("2025-11-03T12:59:00Z"), nights)         # Monday 07:59 EST
    assert mute_ends_at(utc("2025-11-03T05:00:00Z"), nights) == utc("2025-11-03T13:00:00Z")


def test_sifma_calendar_mute_on_good_friday_and_columbus_day():
    closed = MuteInterval(timezone="America/New_York", calendar="sifma")
    assert not muted(utc("2025-04-17T16:00:00Z"), closed)     # early close: a business day
    assert muted(utc("2025-04-18T16:00:00Z"), closed)         # Good Friday
    # the long weekend: closed until Monday 00:00 EDT
    assert mute_ends_at(utc("2025-04-18T16:00:00Z"), closed) == utc("2025-04-21T04:00:00Z")
    assert muted(utc("2025-10-13T16:00:00Z"), closed)         # Columbus Day
    assert not muted(utc("2025-10-14T16:00:00Z"), closed)
    weekday_holidays = MuteInterval(calendar="sifma", weekdays=["monday:friday"])
    assert muted(utc("2025-10-13T16:00:00Z"), weekday_holidays)
    assert not muted(utc("2025-10-11T16:00:00Z"), weekday_holidays)   # a Saturday


def test_decisions_refuse_a_naive_now():
    with pytest.raises(ValueError, match="naive"):
        muted(datetime(2025, 11, 1, 12), MuteInterval(weekdays=["saturday"]))


# ---- silences ----

SILENCE = {"id": "repo-maint", "matchers": {"rule": "sofr-over-iorb", "area": "repo"},
           "starts_at": "2025-10-31T12:00:00.000000Z", "ends_at": "2025-11-03T14:00:00.000000Z",
           "comment": "NY Fed SOFR publication delayed", "created_by": "alice"}


def test_a_silence_ends_at_its_end_time():
    silences = fold_silences([stored(silence_added_event(SilenceAdded(**SILENCE)))])
    a = alert("sofr-over-iorb", area="repo")
    assert silenced(a, silences.values(), utc("2025-10-31T11:59:59Z")) is None
    assert silenced(a, silences.values(), utc("2025-11-03T13:59:59Z")) == (
        "silence repo-maint by alice until 2025-11-03T14:00:00.000000Z: "
        "NY Fed SOFR publication delayed")
    assert silenced(a, silences.values(), utc("2025-11-03T14:00:00Z")) is None
    assert silenced(alert("sofr-over-iorb", area="tga"), silences.values(),
                    utc("2025-11-01T12:00:00Z")) is None


def test_a_silence_expired_early_by_an_event_ends_then():
    expired = SilenceExpired(id="repo-maint", expired_at="2025-11-01T09:00:00.000000Z",
                             expired_by="bob", comment="publication resumed")
    silences = fold_silences([stored(silence_added_event(SilenceAdded(**SILENCE))),
                              stored(silence_expired_event(expired), seq=2)])
    a = alert("sofr-over-iorb", area="repo")
    assert silenced(a, silences.values(), utc("2025-11-01T08:59:59Z")) is not None
    assert silenced(a, silences.values(), utc("2025-11-01T09:00:00Z")) is None
    assert silences["repo-maint"].expired_by == "bob"
    # expiry is final: re-adding the same id does not revive it
    again = fold_silences([stored(silence_added_event(SilenceAdded(**SILENCE)))], silences)
    assert silenced(a, again.values(), utc("2025-11-02T09:00:00Z")) is None


def test_silence_payloads_are_validated():
    with pytest.raises(ValidationError, match="at least one matcher"):
        SilenceAdded(**{**SILENCE, "matchers": {}})
    with pytest.raises(ValidationError, match="after starts_at"):
        SilenceAdded(**{**SILENCE, "ends_at": SILENCE["starts_at"]})
    with pytest.raises(ValidationError):
        SilenceAdded(**{**SILENCE, "ends_at": "2025-11-03"})
    with pytest.raises(ValidationError, match="who and why"):
        SilenceAdded(**{**SILENCE, "comment": " "})


# ---- suppression order ----

def test_suppression_order_is_silence_then_inhibition_then_mute(config):
    warning = alert("tgcr-over-iorb", severity="warning", area="repo")
    critical = alert("sofr-over-iorb", severity="critical", area="repo")
    silence = Silence.from_added({**SILENCE, "matchers": {"rule": "tgcr-over-iorb"}})
    weekends = {"weekends": MuteInterval(weekdays=["saturday", "sunday"])}
    saturday = utc("2025-11-01T15:00:00Z")
    everything = dict(silences=[silence], firing_alerts=[critical], inhibit_rules=config.inhibit,
                      mutes=weekends)
    why = suppression_reason(warning, saturday, **everything)
    assert (why.reason, why.detail.split(" by ")[0]) == ("silence", "silence repo-maint")
    everything["silences"] = []
    assert suppression_reason(warning, saturday, **everything).reason == "inhibition"
    everything["firing_alerts"] = []
    why = suppression_reason(warning, saturday, **everything)
    assert (why.reason, why.detail) == ("mute", "mute weekends (America/New_York saturday,sunday)")
    assert suppression_reason(warning, utc("2025-11-03T15:00:00Z"), **everything) is None


def test_a_route_chooses_its_mutes_and_a_mute_may_match_alerts(config):
    weekends = {"weekends": MuteInterval(weekdays=["saturday", "sunday"])}
    saturday = utc("2025-11-01T15:00:00Z")
    a = alert("sofr-over-iorb", area="repo")
    never = route(a, [Route(receivers=["oncall"], mute=[])], ["desk"])[0]
    assert suppression_reason(a, saturday, mutes=weekends, delivery=never) is None
    chosen = route(a, [Route(receivers=["oncall"], mute=["weekends"])], ["desk"])[0]
    assert suppression_reason(a, saturday, mutes=weekends, delivery=chosen).reason == "mute"
    # the example's weekend mute matches info alerts only
    assert suppression_reason(a, saturday, mutes=config.mute) is None
    info = alert("reserves-not-abundant", severity="info")
    assert suppression_reason(info, saturday, mutes=config.mute).reason == "mute"


def test_silence_matchers_are_checked_like_route_matchers():
    with pytest.raises(ValidationError, match="unknown severity 'crit'"):
        SilenceAdded(**{**SILENCE, "matchers": {"severity": "crit"}})
    with pytest.raises(ValidationError, match="bad regular expression"):
        SilenceAdded(**{**SILENCE, "matchers_re": {"rule": "("}})
