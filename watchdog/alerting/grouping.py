"""Grouping and flushes (Alertmanager's dispatch timers and notification log): when a group is told.

A group is (receiver, route, ``group_by`` label values). Its state (``GroupState``) is a fold of
the alert events routed to it and of the ``notification-*`` events that carry its ``group`` and
``flush`` number. Nothing here does I/O or reads the clock: every decision takes ``now`` (an aware
datetime) and returns why, so ``audit`` re-derives the same decisions from the same events.
Alertmanager's timers (``decide_flush``):

====================  =====  =============================================================
reason                send   when
====================  =====  =============================================================
group-wait            no     the group's first alert arrived less than group_wait ago
first-notification    yes    group_wait is over: the first flush of an episode
group-interval        no     less than group_interval since the last flush
firing-changed        yes    a new firing (or flagged) alert since the last flush
resolved              yes    an alert of the last flush resolved, and send_resolved is on
repeat-interval       no/yes still firing, unchanged: held until / re-sent at repeat_interval
send-resolved-false   no     only resolutions are new and this receiver does not get them
idle                  no     nothing firing and nothing owed
mute                  no     (``plan_flush``) a mute interval of the route is in force
====================  =====  =============================================================

An *episode* starts when an alert fires into a group with nothing firing; its first flush waits
group_wait, and never comes sooner than group_interval after the group's previous flush (so a
flapping alert cannot beat group_interval). A flush is decided when it is *requested*
(``notification-requested``): the outbox then owns retries, so an in-flight flush is not
re-decided. Flagged alerts (keyword hits) are one-shot: sent in one flush, never repeated, never
resolved.

In a grouped flush (``plan_flush``), silenced and inhibited alerts are left out of the flush (they
become "new" when the silence ends, as in Alertmanager), and a mute holds the whole flush until the
mute ends (watchdog.alerting.suppression says which reason wins).
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from watchdog.alerting.dispatch import (
    Delivery,
    route,
    sends_resolved,
)
from watchdog.alerting.mutes import applicable_mutes, mute_ends_at, muted
from watchdog.alerting.silences import Silence
from watchdog.alerting.suppression import Suppression, suppression_reason
from watchdog.model.config import InhibitRule, MuteInterval, Route
from watchdog.model.events import (
    ALERT_FIRING,
    ALERT_FLAGGED,
    ALERT_RESOLVED,
    NOTIFICATION_FAILED,
    NOTIFICATION_REQUESTED,
    NOTIFICATION_SENT,
    FlushRequested,
    NewEvent,
    decode_or_none,
    typed_event,
)
from watchdog.model.timefmt import aware, parse_utc, utc_text

MemberStatus = Literal["firing", "resolved", "flagged"]


@dataclass(frozen=True)
class Member:
    """One alert of a group. ``instance`` names one firing episode of it (a rule that resolves
    and fires again is a new instance, hence news); for a flagged alert it is the flag itself."""
    alert_id: str
    instance: str
    status: MemberStatus
    since: datetime
    alert: Mapping[str, Any]
    fired: Mapping[str, Any] | None = None     # a resolved member's firing alert


@dataclass(frozen=True)
class GroupState:
    """One group's state: its alerts and its notification log (Alertmanager's nflog entry)."""
    group: str
    receiver: str = ""
    members: Mapping[str, Member] = field(default_factory=lambda: MappingProxyType({}))
    episode_start: datetime | None = None     # an alert fired into the group with none firing
    flushes: int = 0                          # number of the last requested flush
    last_flush_at: datetime | None = None
    notified_firing: frozenset[str] = frozenset()   # instances in the last flush's firing list
    sent_flushes: int = 0                     # highest flush number reported sent
    failed_flushes: frozenset[int] = frozenset()

    @property
    def firing(self) -> list[Member]:
        return [m for m in self.members.values() if m.status == "firing"]

    @property
    def in_flight(self) -> bool:
        """A requested flush has no outcome yet."""
        done = {*self.failed_flushes, *range(1, self.sent_flushes + 1)}
        return self.flushes > 0 and self.flushes not in done

    def with_alert(self, alert: Mapping[str, Any], at: datetime, key: str = "") -> GroupState:
        """The state after an alert transition routed to this group (``at``: its engine time)."""
        state = alert.get("state")
        rule = str(alert.get("rule", ""))
        members = dict(self.members)
        episode_start = self.episode_start
        idle = not any(m.status in ("firing", "flagged") for m in members.values())
        if state == "firing":
            current = members.get(rule)
            if current is not None and current.status == "firing":
                return self        # already firing (e.g. re-derived): not news
            if current is not None and current.status == "resolved" and current.instance not in self.notified_firing:
                # an episode no flush told of yet (fired, resolved, fires again in one batch):
                # kept under its own instance, so it is told or accounted for, not overwritten
                members[current.instance] = replace(current, alert_id=current.instance)
            members[rule] = Member(rule, f"{rule}@{utc_text(at)}", "firing", at, alert)
        elif state == "flagged":
            flag = key or f"{rule}@{utc_text(at)}/{alert.get('date', '')}/{alert.get('link', '')}"
            if flag in members:
                return self
            members[flag] = Member(flag, flag, "flagged", at, alert)
        elif state == "resolved":
            current = members.get(rule)
            if current is None or current.status != "firing":
                return self
            members[rule] = replace(current, status="resolved", since=at, alert=alert, fired=current.alert)
            return replace(self, members=MappingProxyType(members))
        else:
            return self            # pending alerts are not notified
        if idle:
            episode_start = at
        return replace(self, members=MappingProxyType(members), episode_start=episode_start)

    def apply(self, event: Any, told: Any = None) -> GroupState:
        """Fold one ``notification-*`` event of this group (payload ``group`` and ``flush``);
        ``told`` is its payload already decoded, when the caller has it. Alert events need
        routing first: ``fold_groups`` routes them to ``with_alert``."""
        told = told if told is not None else decode_or_none(event)   # FlushRequested or NotificationOutcome
        if told is None or told.group != self.group or told.flush is None:
            return self
        flush = told.flush
        if event.type == NOTIFICATION_REQUESTED:
            at = _time(told.requested_at, event)
            firing = frozenset(told.firing)
            flagged = set(told.flagged)
            members = {k: m for k, m in self.members.items()
                       if m.status == "firing" or (m.status == "flagged" and m.instance not in flagged)}
            return replace(self, receiver=told.receiver,
                           members=MappingProxyType(members), flushes=max(self.flushes, flush),
                           last_flush_at=at, notified_firing=firing)
        if event.type == NOTIFICATION_SENT:
            return replace(self, sent_flushes=max(self.sent_flushes, flush))
        if event.type == NOTIFICATION_FAILED:
            return replace(self, failed_flushes=self.failed_flushes | {flush})
        return self


def _time(text: str | None, event: Any) -> datetime:
    return parse_utc(text) if text else parse_utc(event.recorded_at)


ALERT_EVENT_TYPES = frozenset({ALERT_FIRING, ALERT_RESOLVED, ALERT_FLAGGED})


def fold_groups(events: Iterable[Any], routes: Sequence[Route],
                default_receivers: Sequence[str],
                groups: Mapping[str, GroupState] | None = None) -> dict[str, GroupState]:
    """Fold alert and notification events (objects with ``type``, ``key``, ``payload``,
    ``recorded_at``; e.g. ``StoredEvent``) into every group's state. An alert's time is its
    ``evaluated_at`` (engine time: the same live and in audit), a flush's its ``requested_at``.
    Pass ``groups`` to continue an earlier fold."""
    out = dict(groups or {})
    for event in events:
        payload = event.payload
        if event.type in ALERT_EVENT_TYPES:
            at = _time(payload.get("evaluated_at"), event)
            for d in route(payload, routes, default_receivers):
                state = out.get(d.group) or GroupState(group=d.group, receiver=d.receiver)
                out[d.group] = state.with_alert(payload, at, event.key)
        elif event.type in (NOTIFICATION_REQUESTED, NOTIFICATION_SENT, NOTIFICATION_FAILED):
            told = decode_or_none(event)
            if told is not None and told.group is not None and told.flush is not None:
                state = out.get(told.group) or GroupState(group=told.group, receiver=told.receiver)
                out[told.group] = state.apply(event, told)
    return out


@dataclass(frozen=True)
class FlushDecision:
    """Whether to flush the group now, why, and when to look again (None: only on news).
    ``firing``/``resolved``/``flagged`` are the alert instances the flush carries."""
    send: bool
    reason: str
    next_check_at: datetime | None
    flush: int = 0
    firing: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    flagged: tuple[str, ...] = ()
    episodes: tuple[str, ...] = ()     # fired and resolved before any flush told of them


def decide_flush(group_state: GroupState, now: datetime, route: Route, *,
                 exclude: Collection[str] = (), wait_over: bool = False) -> FlushDecision:
    """Alertmanager's aggregation-group timers plus its dedup stage, for one group at ``now``
    (reasons: module docstring). ``exclude`` names members (alert ids) left out of this flush,
    e.g. silenced or inhibited ones: they do not count as firing, nor as resolved.
    ``wait_over``: a one-shot run (``run --once``) has no later instant to wait for, so
    group_wait and group_interval are taken as elapsed; repeat_interval still holds."""
    aware(now)
    s = group_state
    wait, interval = route.group_wait, route.group_interval
    if wait_over:
        wait = interval = timedelta(0)
    repeat = route.repeat_interval
    firing_all = {m.instance for m in s.firing}
    firing = tuple(sorted(m.instance for m in s.firing if m.alert_id not in exclude))
    flagged = tuple(sorted(m.instance for m in s.members.values()
                           if m.status == "flagged" and m.alert_id not in exclude))
    owed = tuple(sorted(s.notified_firing - firing_all))   # notified, then resolved or replaced
    resolves = sends_resolved(route, s.receiver)
    resolved = owed if resolves else ()
    # short episodes: fired and resolved before a flush could tell of them; news like a flag
    episodes = tuple(sorted(m.instance for m in s.members.values()
                            if m.status == "resolved" and m.instance not in s.notified_firing
                            and m.alert_id not in exclude))

    def hold(reason: str, until: datetime | None) -> FlushDecision:
        return FlushDecision(False, reason, until)

    def send(reason: str) -> FlushDecision:
        return FlushDecision(True, reason, now + interval, s.flushes + 1, firing, resolved, flagged, episodes)

    if not firing and not flagged and not episodes:
        if not owed or s.last_flush_at is None:
            return hold("idle", None)
        if now < s.last_flush_at + interval:
            return hold("group-interval", s.last_flush_at + interval)
        return send("resolved") if resolves else hold("send-resolved-false", None)

    fresh = s.last_flush_at is None or (s.episode_start is not None
                                        and s.last_flush_at < s.episode_start)
    if fresh:
        due, reason = (s.episode_start or now) + wait, "group-wait"
        if s.last_flush_at is not None and s.last_flush_at + interval > due:
            due, reason = s.last_flush_at + interval, "group-interval"
        return hold(reason, due) if now < due else send("first-notification")
    assert s.last_flush_at is not None
    if now < s.last_flush_at + interval:
        return hold("group-interval", s.last_flush_at + interval)
    if flagged or episodes or not set(firing) <= s.notified_firing:
        return send("firing-changed")
    if resolved:
        return send("resolved")
    if now >= s.last_flush_at + repeat:
        return send("repeat-interval")
    return hold("repeat-interval", s.last_flush_at + repeat)


def flush_requested(group_state: GroupState, delivery: Delivery, decision: FlushDecision,
                    now: datetime, since: Sequence[str] = ()) -> NewEvent:
    """The ``notification-requested`` event of a flush decided to send. Its key is
    deterministic (group and flush number), so re-deciding after a crash appends nothing."""
    if not decision.send:
        raise ValueError(f"no flush to request: {decision.reason}")
    payload = FlushRequested(group=group_state.group, receiver=delivery.receiver,
                             route=delivery.route_id, flush=decision.flush,
                             requested_at=utc_text(now), reason=decision.reason,
                             firing=list(decision.firing), resolved=list(decision.resolved),
                             flagged=list(decision.flagged), episodes=list(decision.episodes),
                             since=list(since))
    return typed_event(NOTIFICATION_REQUESTED, f"flush/{group_state.group}/{decision.flush}", payload)


@dataclass(frozen=True)
class FlushPlan:
    """``decide_flush`` with suppression applied: the decision for the alerts left, and the
    members (alert ids) left out of it with their reasons."""
    decision: FlushDecision
    suppressed: tuple[tuple[str, Suppression], ...] = ()


def plan_flush(group_state: GroupState, delivery: Delivery, now: datetime, *,
               silences: Iterable[Silence] = (),
               firing_alerts: Iterable[Mapping[str, Any]] = (),
               inhibit_rules: Sequence[InhibitRule] = (),
               mutes: Mapping[str, MuteInterval] | None = None,
               exclude: Mapping[str, Suppression] | None = None,
               wait_over: bool = False) -> FlushPlan:
    """One group's flush at ``now``: silenced and inhibited members are left out (so they are
    news once the silence ends or the source resolves), then the timers decide, then a mute of
    the route in force holds a due flush until it ends (reason ``mute``). ``exclude``: members
    left out for a reason decided by the caller (the outbox's catch-up horizon)."""
    silences, firing_alerts, mutes = list(silences), list(firing_alerts), mutes or {}
    left_out: list[tuple[str, Suppression]] = list((exclude or {}).items())
    for member in group_state.members.values():
        if member.status == "resolved" or member.alert_id in (exclude or {}):
            continue
        why = suppression_reason(member.alert, now, silences=silences, firing_alerts=firing_alerts,
                                 inhibit_rules=inhibit_rules)
        if why:
            left_out.append((member.alert_id, why))
    decision = decide_flush(group_state, now, delivery.route,
                            exclude={alert_id for alert_id, _ in left_out}, wait_over=wait_over)
    if decision.send:
        in_force = [mutes[n] for n in _route_mutes(group_state, delivery, mutes) if muted(now, mutes[n])]
        if in_force:
            ends = [mute_ends_at(now, m) for m in in_force]
            until = None if any(end is None for end in ends) else max(e for e in ends if e)
            decision = FlushDecision(False, "mute", until)
    return FlushPlan(decision, tuple(sorted(left_out, key=lambda item: item[0])))


def _route_mutes(group_state: GroupState, delivery: Delivery,
                 mutes: Mapping[str, MuteInterval]) -> list[str]:
    """Intervals that mute this flush: those that apply to any of its alerts."""
    names: list[str] = []
    for member in group_state.members.values():
        for name in applicable_mutes(member.alert, delivery.route, mutes):
            if name not in names:
                names.append(name)
    return names
