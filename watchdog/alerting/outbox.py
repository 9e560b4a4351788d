"""The outbox, decided purely from the log: which notifications are owed, to whom, and why not.

Alert events are routed (watchdog.alerting.routing) into groups: (receiver, route, ``group_by`` labels).
Each group's timers (group_wait, group_interval, repeat_interval) decide when it *flushes*; a
flush is recorded as ``notification-requested`` whose key (``flush/<group>/<n>``) is the
idempotency key of the notification, so re-deciding after a crash appends nothing. Then every
delivery step is an event: ``notification-attempted`` before the send, ``-sent``, ``-failed`` or
``-unknown`` after. After a crash the owed notifications are exactly the requested flushes with
no final outcome: at-least-once, never lost; group timers are rebuilt by folding the same events.

- Within a group, flushes are delivered in order: a later flush waits while an earlier one is
  owed (so "resolved" never overtakes "firing" under a sustained 429).
- A retryable failure stays owed and is retried after a backoff (honouring the receiver's
  Retry-After); after ``MAX_ATTEMPTS`` it becomes permanent.
- A permanent failure is final for that receiver and owes the flush to the route's ``fallback``.
- An attempt with no outcome (a crash mid-send) or an ``unknown`` outcome is reconciled before a
  resend where the receiver can look its messages up (Slack bot token), else resent.
- Alerts left out of a flush are ``notification-suppressed`` events with their reason, once per
  alert instance and group: ``silence``, ``inhibition``, ``catch-up`` (observation older than the
  horizon), and ``mute`` (a mute holds the flush until it ends: alerts still firing then are sent
  then, as in Alertmanager).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from watchdog.alerting.dispatch import Delivery as Routed
from watchdog.alerting.dispatch import route
from watchdog.alerting.grouping import GroupState, flush_requested, plan_flush
from watchdog.alerting.silences import fold_silences
from watchdog.alerting.suppression import Suppression
from watchdog.model.config import InhibitRule, MuteInterval
from watchdog.model.events import (
    ALERT_FIRING,
    ALERT_FLAGGED,
    ALERT_RESOLVED,
    NOTIFICATION_ATTEMPTED,
    NOTIFICATION_FAILED,
    NOTIFICATION_REQUESTED,
    NOTIFICATION_SENT,
    NOTIFICATION_SUPPRESSED,
    NOTIFICATION_UNKNOWN,
    RULES_LOADED,
    SILENCE_ADDED,
    SILENCE_EXPIRED,
    EpisodeNote,
    FlushRequested,
    NewEvent,
    NotificationOutcome,
    NotificationSuppressed,
    ToldAlert,
    decode,
    decode_or_none,
    typed_event,
)
from watchdog.model.timefmt import NEW_YORK, parse_utc, utc_text

NOTIFIED_TYPES = frozenset({ALERT_FIRING, ALERT_RESOLVED, ALERT_FLAGGED})
OUTCOME_TYPES = frozenset({NOTIFICATION_ATTEMPTED, NOTIFICATION_SENT, NOTIFICATION_FAILED, NOTIFICATION_UNKNOWN})
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)


@dataclass(frozen=True)
class Notification:
    """One flush of one group, owed to one receiver (the group's, or a fallback)."""
    receiver: str
    key: str                         # idempotency key: receiver, group key and flush number
    group: str
    flush: int
    reason: str
    alerts: tuple[ToldAlert, ...]    # firing, then resolved, then flagged: what the receiver is told
    instances: tuple[str, ...]
    seq: int                         # of the notification-requested event
    routed: Routed | None = None     # None: a fallback delivery

    @property
    def alert(self) -> ToldAlert:
        """The alert of a one-alert flush (the usual case with ``group_by = ["rule"]``)."""
        return self.alerts[0]


@dataclass
class _Status:
    attempts: int = 0
    done: bool = False
    unknown: bool = False            # attempted with no outcome yet, or an unknown outcome
    not_before: str = ""
    reference: str = ""


@dataclass(frozen=True)
class _Flush:
    group: str
    flush: int
    reason: str
    instances: tuple[str, ...]
    firing: frozenset[str]
    seq: int
    alerts: tuple[ToldAlert, ...]    # as they were when the flush was decided


@dataclass(frozen=True)
class Plan:
    """What the outbox decided at ``now``: events to append (flush requests, suppressions) and
    when to look again (None: only on news)."""
    events: list[NewEvent]
    next_check_at: datetime | None


@dataclass
class Outbox:
    """Folds alert, notification and silence events; ``plan(now)`` decides flushes and
    suppressions, ``owed(now)`` lists what to send.

    Alerts stay their payload dicts in here (routing, grouping, silences and inhibitions match
    labels on them); a flush's alerts become ``ToldAlert`` models, validated once, when the flush
    is folded: what every ``Notification`` hands a receiver."""
    routes: list = field(default_factory=list)
    default_receivers: list[str] = field(default_factory=lambda: ["console"])
    groups: dict[str, GroupState] = field(default_factory=dict)
    firing: dict[str, dict] = field(default_factory=dict)            # rule -> firing alert
    _routed: dict[str, Routed] = field(default_factory=dict)          # group -> its routing
    _instances: dict[str, dict] = field(default_factory=dict)        # instance -> latest alert
    _flushes: dict[str, _Flush] = field(default_factory=dict)        # delivery key -> flush
    _open: dict[str, _Flush] = field(default_factory=dict)           # not yet delivered, in seq order
    _status: dict[str, _Status] = field(default_factory=dict)
    _fallbacks: dict[str, list[str]] = field(default_factory=dict)   # delivery key -> receivers
    _suppressed: set[str] = field(default_factory=set)
    _sent_refs: dict[tuple[str, str], str] = field(default_factory=dict)  # (receiver, instance)
    _silences: dict = field(default_factory=dict)                    # id -> Silence, folded as they come
    _kept_out: dict[tuple[str, str], str] = field(default_factory=dict)  # (group, instance) -> reason
    # instance -> (firing, resolved) payloads of a resolved episode: told as one message only
    # when a flush names it, so the message's model is built then, not on every resolve
    _episodes: dict[str, tuple[Mapping, Mapping]] = field(default_factory=dict)
    # rule hash -> the rule's description, from rules-loaded: what a message says the alert means
    _descriptions: dict[str, str] = field(default_factory=dict)

    # ---- the fold ----
    def apply(self, event: Any) -> None:
        if event.type in NOTIFIED_TYPES:
            self._alert(event)
        elif event.type == RULES_LOADED:
            self._descriptions.update(rule_descriptions(decode(event)))
        elif event.type in (SILENCE_ADDED, SILENCE_EXPIRED):
            self._silences = fold_silences([event], self._silences)
        elif event.type == NOTIFICATION_REQUESTED:
            flush = decode_or_none(event)
            if flush is not None:             # an early version's flush had no group: not ours
                self._requested(event, flush)
        elif event.type == NOTIFICATION_SUPPRESSED:
            self._suppressed.add(event.key)
            left_out = decode_or_none(event)
            if left_out is not None and left_out.reason in KEPT_OUT:
                self._kept_out.setdefault((left_out.group, left_out.instance), left_out.reason)
        elif event.type in OUTCOME_TYPES:
            step = decode_or_none(event)
            if step is None:
                return
            self._outcome(event.type, step)
            if step.group is not None and step.group in self.groups:
                self.groups[step.group] = self.groups[step.group].apply(event, step)

    def _alert(self, event: Any) -> None:
        p = event.payload
        if event.type == ALERT_FIRING:
            self.firing[p["rule"]] = p
        elif event.type == ALERT_RESOLVED:
            self.firing.pop(p["rule"], None)
        at = parse_utc(p.get("evaluated_at") or event.recorded_at)
        for routed in route(p, self.routes, self.default_receivers):
            state = self.groups.get(routed.group) or GroupState(group=routed.group, receiver=routed.receiver)
            state = state.with_alert(p, at, event.key)
            member = state.members.get(event.key if event.type == ALERT_FLAGGED else p["rule"])
            if member is not None:
                self._instances[member.instance] = member.alert
                if member.status == "resolved" and member.fired is not None:
                    self._episodes[member.instance] = (member.fired, member.alert)
            self.groups[routed.group] = state
            self._routed[routed.group] = routed

    def _requested(self, event: Any, p: FlushRequested) -> None:
        episodes, since = set(p.episodes), set(p.since)
        instances = tuple(p.firing) + tuple(p.resolved) + tuple(p.episodes) + tuple(p.flagged)
        # The message says what was true when the flush was decided: a firing flush still
        # owed when its alert resolves must not turn into the resolve (that is the next flush).
        told = (self._told(i, episodes, since) for i in instances)
        alerts = tuple(alert for alert in told if alert is not None)
        flush = _Flush(p.group, p.flush, p.reason, instances, frozenset(p.firing), event.seq, alerts)
        self._flushes[delivery_key(p.group, flush.flush)] = flush
        self._open[delivery_key(p.group, flush.flush)] = flush
        state = self.groups.get(p.group) or GroupState(group=p.group, receiver=p.receiver)
        self.groups[p.group] = state.apply(event, p)

    def _told(self, instance: str, episodes: set[str], since: set[str]) -> ToldAlert | None:
        """What a receiver is told of one instance of a flush: the short episode, the firing
        alert saying since when, or the alert itself. None for an instance no alert event of
        the log made (a flush names only instances the fold saw, so only a log the daemon did
        not write has one): the message tells what is known and leaves it out."""
        if instance in episodes and instance in self._episodes:
            fired, resolved = self._episodes[instance]
            return episode_alert(fired, resolved, self._description(resolved))
        alert = self._instances.get(instance)
        if alert is None:
            return None
        if instance in since:
            return still_firing(alert, self._description(alert))
        return ToldAlert.model_validate({**alert, "description": self._description(alert)})

    def _description(self, alert: Mapping) -> str:
        """The description of the rule version that made ``alert`` ('' if none was recorded)."""
        return self._descriptions.get(alert.get("rule_hash", ""), "")

    def _outcome(self, kind: str, p: NotificationOutcome) -> None:
        status = self._status.setdefault(p.delivery, _Status())
        if kind == NOTIFICATION_ATTEMPTED:
            status.attempts = max(status.attempts, p.attempt or 1)
            status.unknown = True            # until an outcome says otherwise (crash mid-send)
        elif kind == NOTIFICATION_SENT:
            status.done, status.unknown, status.reference = True, False, p.reference or ""
            flush = self._flushes.get(p.flush_delivery or p.delivery)
            if flush is not None and status.reference:
                for instance in flush.firing:
                    self._sent_refs[(p.receiver, instance)] = status.reference
        elif kind == NOTIFICATION_UNKNOWN:
            status.unknown = True
        elif kind == NOTIFICATION_FAILED:
            status.unknown = False
            status.not_before = p.not_before or ""
            if p.permanent:
                status.done = True
                if p.fallback:
                    self._fallbacks.setdefault(p.delivery, []).append(p.fallback)

    # ---- queries ----
    def silences(self):
        return list(self._silences.values())

    def status(self, delivery_key: str) -> _Status:
        return self._status.get(delivery_key, _Status())

    def firing_reference(self, notification: Notification) -> str:
        """The message that announced the firing alert a one-alert resolved flush answers
        (Slack bot token: to update it), or ''."""
        if len(notification.instances) != 1 or [a.state for a in notification.alerts] != ["resolved"]:
            return ""
        return self._sent_refs.get((notification.receiver, notification.instances[0]), "")

    def owed(self, now: str | None = None) -> list[Notification]:
        """Requested flushes not yet delivered, oldest first; within a group in order."""
        out: list[Notification] = []
        blocked: set[str] = set()
        closed = []
        for key, flush in self._open.items():         # folded in seq order: oldest first
            targets = self._targets(key, flush)
            if all(self.status(dkey).done for _, dkey, _ in targets):
                closed.append(key)                    # delivered (or given up): never owed again
                continue
            for receiver, dkey, via in targets:
                status = self.status(dkey)
                if status.done:
                    continue
                lane = f"{receiver}|{flush.group}"
                if lane in blocked:
                    continue
                blocked.add(lane)            # later flushes of this group wait for this one
                if now and status.not_before and status.not_before > now:
                    continue
                out.append(Notification(receiver, dkey, flush.group, flush.flush, flush.reason,
                                        flush.alerts, flush.instances, flush.seq, via))
        for key in closed:
            del self._open[key]
        return out

    def pending(self, now: str) -> list[dict]:
        """Every undelivered notification with why it waits (``watchdog outbox``): ``due``,
        ``backoff`` (until ``not_before``), ``unknown`` (to reconcile or resend) or ``queued``
        (behind an earlier flush of its group)."""
        due = {n.key for n in self.owed(now)}
        out = []
        for key, flush in self._open.items():
            for receiver, dkey, _ in self._targets(key, flush):
                status = self.status(dkey)
                if status.done:
                    continue
                state = ("unknown" if status.unknown else "due") if dkey in due else (
                    "backoff" if status.not_before and status.not_before > now else "queued")
                out.append({"delivery": dkey, "receiver": receiver, "group": flush.group,
                            "flush": flush.flush, "reason": flush.reason, "state": state,
                            "attempts": status.attempts, "not_before": status.not_before,
                            "rules": sorted({a.rule for a in flush.alerts})})
        return out

    def _targets(self, key: str, flush: _Flush) -> list[tuple[str, str, Routed | None]]:
        """(receiver, delivery key, routing) of a flush: its group's receiver, then the
        fallbacks a permanent failure made owed (they carry no routing)."""
        routed = self._routed.get(flush.group)
        targets = [(routed.receiver if routed else flush.group.split("/", 1)[0], key, routed)]
        return targets + [(f, f"{key}/fallback/{f}", None) for f in self._fallbacks.get(key, [])]

    def next_retry_at(self) -> datetime | None:
        """The earliest backoff expiry of an owed delivery (the daemon wakes then)."""
        keys = [dkey for key, flush in self._open.items() for _, dkey, _ in self._targets(key, flush)]
        times = [parse_utc(s.not_before) for k in keys if not (s := self.status(k)).done and s.not_before]
        return min(times) if times else None

    # ---- decisions ----
    def plan(self, now: datetime, *, horizon: timedelta, inhibit: list[InhibitRule] = (),
             mutes: dict[str, MuteInterval] | None = None, wait_over: bool = False) -> Plan:
        """Every group's flush decision at ``now`` (routing.plan_flush), with catch-up applied:
        the events to append and the next instant a held group must be looked at again. Pure:
        the caller appends the events and folds them back (``apply``) before asking ``owed``."""
        events: list[NewEvent] = []
        checks: list[datetime] = []
        silences, firing = self.silences(), list(self.firing.values())
        recorded = set(self._suppressed)        # a copy: planning changes nothing until folded
        for name, state in sorted(self.groups.items()):
            routed = self._routed.get(name)
            if routed is None or not state.members and not state.notified_firing:
                continue
            left_out = self._catch_up(state, routed, now, horizon)
            result = plan_flush(state, routed, now, silences=silences, firing_alerts=firing,
                                inhibit_rules=inhibit, mutes=mutes, exclude=left_out, wait_over=wait_over)
            events += self._suppressions(state, routed, result, now, recorded)
            decision = result.decision
            if decision.send:
                # still firing although it began before the horizon: the message says since when
                since = [m.instance for m in state.firing
                         if m.instance in decision.firing and too_old(m.alert, now, horizon)]
                events.append(flush_requested(state, routed, decision, now, since=since))
            if decision.next_check_at is not None:     # a flush sent now is looked at again too
                checks.append(decision.next_check_at)
        return Plan(events, min(checks) if checks else None)

    def _catch_up(self, state: GroupState, routed: Routed, now: datetime,
                  horizon: timedelta) -> dict[str, Suppression]:
        """Members left out of this group's flush before silences and timers are considered:

        - a flag (speech, revision) dated before the horizon: ``catch-up`` (old news);
        - an episode that fired and resolved with no flush telling of it (inside one catch-up
          batch, or within group_wait): ``catch-up`` when it ended before the horizon; else it is
          news, told as a short episode unless the route says ``short_episodes = "suppress"``
          (``resolved-before-flush``); one a silence, inhibition or mute kept out while it fired
          stays out for that reason.
        An alert still firing is never left out for its age: ongoing stress is news, whatever its
        start date, and is reminded per repeat_interval while it fires."""
        out: dict[str, Suppression] = {}
        for m in state.members.values():
            if m.status == "flagged" and too_old(m.alert, now, horizon):
                out[m.alert_id] = Suppression("catch-up", f"observation date {m.alert.get('date')} is "
                                                          f"older than the catch-up horizon ({_horizon_text(horizon)})")
            elif m.status == "resolved" and m.instance not in state.notified_firing:
                kept_out = self._kept_out.get((state.group, m.instance))
                fired = (m.fired or {}).get("date", "?")
                if kept_out is not None:
                    out[m.alert_id] = Suppression(kept_out, "kept out while it fired")
                elif too_old(m.alert, now, horizon):
                    out[m.alert_id] = Suppression(
                        "catch-up", f"fired for {fired} and resolved for {m.alert.get('date')}, both before "
                                    f"the catch-up horizon ({_horizon_text(horizon)}): over before it could be told")
                elif routed.route.short_episodes == "suppress":
                    out[m.alert_id] = Suppression(
                        "resolved-before-flush", f"fired for {fired} and resolved for {m.alert.get('date')} "
                                                 "before its group flushed (short_episodes = \"suppress\")")
        return out

    def _suppressions(self, state: GroupState, routed: Routed, result, now: datetime,
                      recorded: set[str]) -> list[NewEvent]:
        out: list[NewEvent] = []
        members = {m.alert_id: m for m in state.members.values()}
        left_out = list(result.suppressed)
        if result.decision.reason == "mute":
            news = [m for m in members.values() if m.status == "flagged"
                    or (m.status == "firing" and m.instance not in state.notified_firing)]
            mute = Suppression("mute", "a mute interval of the route is in force; the flush waits for its end")
            left_out += [(m.alert_id, mute) for m in news if m.alert_id not in dict(left_out)]
        for alert_id, why in left_out:
            member = members.get(alert_id)
            if member is None:
                continue
            key = f"suppressed/{state.group}/{member.instance}/{why.reason}"
            if key in recorded:
                continue
            recorded.add(key)
            out.append(typed_event(NOTIFICATION_SUPPRESSED, key, NotificationSuppressed(
                group=state.group, receiver=routed.receiver, route=routed.route_id,
                rule=member.alert.get("rule", ""), instance=member.instance,
                date=member.alert.get("date", ""), reason=why.reason, detail=why.detail,
                decided_at=utc_text(now))))
        return out


KEPT_OUT = frozenset({"silence", "inhibition", "mute"})


def episode_alert(fired: Mapping, resolved: Mapping, description: str = "") -> ToldAlert:
    """A short episode as one message: the resolve, with when it fired and at what value
    (``watchdog.notify.text.catch_up_note`` words it for every receiver)."""
    note = EpisodeNote(fired_date=fired["date"], fired_value=fired["value"], fired_at=fired["evaluated_at"])
    return ToldAlert.model_validate({**resolved, "episode": note, "description": description})


def still_firing(alert: Mapping, description: str = "") -> ToldAlert:
    """A firing alert told late (it began before the catch-up horizon): it says since when."""
    return ToldAlert.model_validate({**alert, "since": alert["date"], "description": description})


def rule_descriptions(loaded: Any) -> dict[str, str]:
    """rule hash -> description of each rule of a ``rules-loaded`` payload that has one (its
    canonical text is the rule's canonical JSON)."""
    out = {}
    for rule in loaded.rules:
        try:
            description = json.loads(rule.text).get("description", "")
        except (ValueError, AttributeError):
            continue                      # a text that is not a JSON object: nothing to tell
        if isinstance(description, str) and description.strip():
            out[rule.hash] = description.strip()
    return out


def _horizon_text(horizon: timedelta) -> str:
    """The horizon as recorded in suppression details since the first release: a plain
    timedelta's text ("3 days, 0:00:00"), even when the config's Duration says "3d"."""
    return timedelta.__str__(horizon)


def delivery_key(group: str, flush: int) -> str:
    return f"notify/{group}/{flush}"


def backoff(attempts: int, retry_after: float | None) -> timedelta:
    """Wait before the next attempt: what the receiver asked, else exponential (30 s … 1 h)."""
    wait = BACKOFF_BASE * (2 ** max(0, attempts - 1))
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    return min(wait, BACKOFF_MAX)


def too_old(alert: dict, now: datetime, horizon: timedelta) -> bool:
    """True when the alert's observation date is older than the catch-up horizon."""
    today = now.astimezone(NEW_YORK).date()
    return date.fromisoformat(alert["date"]) < today - horizon if alert.get("date") else False


def outcome(n: Notification, kind: str, **details) -> NewEvent:
    """A delivery step of ``n``. The primary delivery's events carry ``group`` and ``flush`` (the
    group's state folds them); a fallback's name the flush it stands in for."""
    suffix = {NOTIFICATION_ATTEMPTED: f"attempt/{details.get('attempt', 1)}",
              NOTIFICATION_FAILED: f"failed/{details.get('attempt', 1)}",
              NOTIFICATION_UNKNOWN: f"unknown/{details.get('attempt', 1)}"}.get(kind, "outcome")
    where = ({"group": n.group, "flush": n.flush} if n.routed is not None
             else {"fallback_for": n.group, "flush_number": n.flush,
                   "flush_delivery": delivery_key(n.group, n.flush)})
    step = NotificationOutcome(delivery=n.key, receiver=n.receiver, **where,
                               rules=sorted({a.rule for a in n.alerts}), **details)
    return typed_event(kind, f"{n.key}/{suffix}", step)
