"""Routing, grouping, inhibition, mute intervals and silences: pure decisions, each with a reason.

Alertmanager's model on the daemon's event log. Nothing here does I/O or reads the clock: every
decision takes ``now`` (an aware datetime) and returns why, so ``audit`` re-derives the same
decisions from the same events.

**Routing** (``route``): ``[[routes]]`` are tried in file order; a route matches when every
``match`` label equals and every ``match_re`` regex (RE2: linear time, see watchdog.model.patterns)
matches the whole value (``rule`` is the rule id, ``severity`` the severity, other names are the
rule's labels; an absent label is ""). The first match stops the walk unless it has
``continue = true``. Each matching route yields one
``Delivery`` per receiver with the route's grouping; a receiver already reached by an earlier
route in the walk is not reached twice. No match: the default receivers (every configured
receiver, or ``console``) with the default grouping.

**Grouping** (``group_key``, ``GroupState``, ``decide_flush``): a group is (receiver, route,
``group_by`` label values). Its state is a fold of the alert events routed to it and of the
``notification-*`` events that carry its ``group`` and ``flush`` number. Alertmanager's timers:

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

**Suppression** (``suppression_reason``), first reason wins:

1. ``silence``: an active silence (operator's explicit decision about this alert; its id, author
   and comment are in the detail, so the log says who silenced what).
2. ``inhibition``: a firing source alert suppresses this target (depends on other alerts).
3. ``mute``: a mute interval of the delivery's route is in force (a policy on time, not alert).

Alertmanager runs inhibition, then time intervals, then silences; whichever runs first, the same
alerts are suppressed; only the recorded reason differs. In a grouped flush (``plan_flush``),
silenced and inhibited alerts are left out of the flush (they become "new" when the silence ends,
as in Alertmanager), and a mute holds the whole flush until the mute ends.
"""
from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchdog.market.calendar import is_business_day
from watchdog.model.config import Config, InhibitRule, MuteInterval, Route, check_matchers
from watchdog.model.events import (
    ALERT_FIRING, ALERT_FLAGGED, ALERT_RESOLVED, NOTIFICATION_FAILED, NOTIFICATION_REQUESTED,
    NOTIFICATION_SENT, SILENCE_ADDED, SILENCE_EXPIRED, NewEvent,
)
from watchdog.model.patterns import fullmatch
from watchdog.model.timefmt import parse_duration, parse_utc, utc_text

DEFAULT_RECEIVER = "console"
DEFAULT_ROUTE_ID = "default"
ALL_LABELS = "..."
_UTC = ZoneInfo("UTC")

# ---- labels and matchers ----


def alert_labels(alert: Mapping[str, Any]) -> dict[str, str]:
    """The labels routes, groups, inhibitions and silences see: the rule's ``labels`` plus
    ``rule`` (the rule id) and ``severity``, which rules may not set as labels."""
    labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
    labels["rule"] = str(alert.get("rule", ""))
    labels["severity"] = str(alert.get("severity", ""))
    return labels


def matches(labels: Mapping[str, str], exact: Mapping[str, str],
            regex: Mapping[str, str] | None = None) -> bool:
    """Every exact matcher equals and every regex matches the whole value ("" when absent)."""
    for name, wanted in exact.items():
        if labels.get(name, "") != wanted:
            return False
    for name, pattern in (regex or {}).items():
        # RE2 (watchdog.model.patterns): linear in the label, whatever the pattern
        if not fullmatch(pattern, labels.get(name, "")):
            return False
    return True


def _describe(exact: Mapping[str, str], regex: Mapping[str, str] | None = None) -> str:
    parts = [f"{k}={v}" for k, v in exact.items()] + [f"{k}=~{v}" for k, v in (regex or {}).items()]
    return ", ".join(parts) or "any alert"


# ---- routing ----


@dataclass(frozen=True)
class Delivery:
    """One receiver owed a notification about one alert, with the grouping of the route that
    sent it there. ``group`` identifies the group (and its ``GroupState``) across restarts; it
    names the route by ``name`` when the route has one, else by its position."""
    receiver: str
    route: Route
    route_id: str
    group_key: str
    reason: str

    @property
    def group(self) -> str:
        return f"{self.receiver}/{self.route_id}/{self.group_key}"


def default_receivers(config: Config) -> list[str]:
    """Where an alert no route matches goes: every configured receiver, or ``console``."""
    return sorted(config.receivers) or [DEFAULT_RECEIVER]


@lru_cache(maxsize=64)
def _default_route(receivers: tuple[str, ...]) -> Route:
    return Route(receivers=list(receivers) or [DEFAULT_RECEIVER])


def route(alert: Mapping[str, Any], routes: Sequence[Route],
          default_receivers: Sequence[str]) -> list[Delivery]:
    """The deliveries of ``alert``: walk ``routes`` in order (see the module docstring)."""
    labels = alert_labels(alert)
    out: list[Delivery] = []
    seen: set[str] = set()
    matched = False
    for index, r in enumerate(routes):
        if not matches(labels, r.match, r.match_re):
            continue
        matched = True
        route_id = r.name or f"routes[{index}]"
        why = f"{route_id} matched {_describe(r.match, r.match_re)}"
        for receiver in r.receivers:
            if receiver not in seen:
                seen.add(receiver)
                out.append(Delivery(receiver, r, route_id, group_key(alert, r.group_by), why))
        if not r.continue_:
            break
    if not matched:
        fallback = _default_route(tuple(default_receivers))
        for receiver in fallback.receivers:
            out.append(Delivery(receiver, fallback, DEFAULT_ROUTE_ID,
                                group_key(alert, fallback.group_by),
                                "no route matched: default receivers"))
    return out


def group_key(alert: Mapping[str, Any], group_by: Sequence[str]) -> str:
    """``{area="repo",rule="sofr-over-iorb"}``: the ``group_by`` labels the alert has, sorted by
    name (labels it lacks are left out, as in Alertmanager); ``["..."]`` means every label."""
    labels = alert_labels(alert)
    names = sorted(labels) if ALL_LABELS in group_by else sorted(set(group_by) & set(labels))
    return "{" + ",".join(f"{n}={json.dumps(labels[n], ensure_ascii=False)}" for n in names) + "}"


def sends_resolved(r: Route, receiver: str) -> bool:
    """Whether ``receiver`` gets resolved notifications on route ``r``."""
    return r.send_resolved if isinstance(r.send_resolved, bool) else receiver in r.send_resolved


@lru_cache(maxsize=256)
def _duration(text: str) -> timedelta:
    return parse_duration(text)


# ---- grouping: state folded from events ----

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

    def apply(self, event: Any) -> GroupState:
        """Fold one ``notification-*`` event of this group (payload ``group`` and ``flush``).
        Alert events need routing first: ``fold_groups`` routes them to ``with_alert``."""
        payload = event.payload
        if payload.get("group") != self.group or "flush" not in payload:
            return self
        flush = int(payload["flush"])
        if event.type == NOTIFICATION_REQUESTED:
            at = _time(payload.get("requested_at"), event)
            firing = frozenset(payload.get("firing", ()))
            flagged = set(payload.get("flagged", ()))
            members = {k: m for k, m in self.members.items()
                       if m.status == "firing" or (m.status == "flagged" and m.instance not in flagged)}
            return replace(self, receiver=payload.get("receiver", self.receiver),
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
            name = payload.get("group")
            if name is not None and "flush" in payload:
                state = out.get(name) or GroupState(group=name, receiver=payload.get("receiver", ""))
                out[name] = state.apply(event)
    return out


# ---- grouping: the flush decision ----


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
    _aware(now)
    s = group_state
    wait, interval = _duration(route.group_wait), _duration(route.group_interval)
    if wait_over:
        wait = interval = timedelta(0)
    repeat = _duration(route.repeat_interval)
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


class FlushRequested(BaseModel):
    """``notification-requested`` payload of a group flush; ``notification-sent``/``-failed``
    for it carry the same ``group`` and ``flush`` (``GroupState.apply`` reads those two)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    group: str
    receiver: str
    route: str
    flush: int = Field(ge=1)
    requested_at: str
    reason: str
    firing: list[str] = Field(default_factory=list)
    resolved: list[str] = Field(default_factory=list)
    flagged: list[str] = Field(default_factory=list)
    episodes: list[str] = Field(default_factory=list)   # short episodes (told as resolved)
    since: list[str] = Field(default_factory=list)      # firing from before the catch-up horizon


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
    body = payload.model_dump()
    for name in ("episodes", "since"):     # absent when empty: flushes read as they always did
        if not body[name]:
            del body[name]
    return NewEvent(type=NOTIFICATION_REQUESTED, key=f"flush/{group_state.group}/{decision.flush}",
                    payload=body)


# ---- inhibition ----


def inhibited(alert: Mapping[str, Any], firing_alerts: Iterable[Mapping[str, Any]],
              inhibit_rules: Sequence[InhibitRule]) -> str | None:
    """Why ``alert`` is inhibited, naming the inhibit rule and the source alert, or None.

    A firing alert matching a rule's ``source`` suppresses an alert matching its ``target``
    when the ``equal`` labels have the same values (absent on both counts as equal). An alert
    does not inhibit itself; alerts whose ``state`` is not firing are not sources."""
    labels = alert_labels(alert)
    candidates = [r for r in enumerate(inhibit_rules)
                  if matches(labels, r[1].target, r[1].target_re)]
    if not candidates:
        return None
    sources = [(a, alert_labels(a)) for a in firing_alerts if a.get("state", "firing") == "firing"]
    for index, rule in candidates:
        for source, source_labels in sources:
            if source_labels["rule"] == labels["rule"]:
                continue
            if not matches(source_labels, rule.source, rule.source_re):
                continue
            if all(source_labels.get(n, "") == labels.get(n, "") for n in rule.equal):
                name = rule.name or f"inhibit[{index}]"
                same = ", ".join(f"{n}={labels.get(n, '')}" for n in rule.equal)
                return (f"{name}: {source_labels['rule']} ({source_labels['severity']}) is firing"
                        + (f" with {same}" if same else ""))
    return None


# ---- mute intervals ----


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _clock(text: str) -> time | None:
    """"HH:MM" as a time; "24:00" as None (the end of the day)."""
    return None if text == "24:00" else time.fromisoformat(text)


def _in_range(t: time, start: str, end: str) -> bool:
    a, b = _clock(start), _clock(end)
    assert a is not None
    if b is None:
        return t >= a
    return a <= t < b if a < b else (t >= a or t < b)


def muted(now: datetime, mute: MuteInterval) -> bool:
    """Whether ``mute`` is in force at ``now``: the local time in its time zone satisfies every
    condition it gives: a weekday named, a time range, a day its calendar is closed."""
    local = _aware(now).astimezone(_zone(mute.timezone))
    day = local.date()
    if mute.weekdays and day.weekday() not in mute.weekday_numbers():
        return False
    if mute.calendar is not None and is_business_day(mute.calendar, day):
        return False
    if mute.times:
        wall = local.time().replace(tzinfo=None)
        if not any(_in_range(wall, r.start, r.end) for r in mute.times):
            return False
    return True


MUTE_SEARCH_DAYS = 400


def mute_ends_at(now: datetime, mute: MuteInterval) -> datetime | None:
    """The first instant after ``now`` at which ``mute`` is no longer in force (a local
    midnight or the end of a time range), or None when it is not in force at ``now`` or does not
    end within ``MUTE_SEARCH_DAYS`` days. The daemon's next wake-up for a held flush."""
    if not muted(now, mute):
        return None
    zone = _zone(mute.timezone)
    today = now.astimezone(zone).date()
    for offset in range(MUTE_SEARCH_DAYS + 1):
        day = today + timedelta(days=offset)
        for instant in _boundaries(day, mute, zone):
            if instant > now and not muted(instant, mute):
                return instant
    return None


def _boundaries(day: date, mute: MuteInterval, zone: ZoneInfo) -> list[datetime]:
    """The instants of ``day`` where ``muted`` can change, in order."""
    walls = {time(0)}
    for r in mute.times:
        for text in (r.start, r.end):
            t = _clock(text)
            if t is not None:
                walls.add(t)
    return sorted({_local_instant(day, t, zone) for t in walls})


def _local_instant(day: date, t: time, zone: ZoneInfo) -> datetime:
    """The instant of the wall time ``day t``: a repeated wall time (autumn) is its first
    occurrence; a skipped one (in a spring-forward gap) is the end of the gap, the instant the
    wall clock passes it."""
    local = datetime.combine(day, t, zone)
    early = local.astimezone(_UTC)
    if early.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return early
    late = local.replace(fold=1).astimezone(_UTC)
    lo, hi = min(early, late), max(early, late)      # the transition lies between the two
    before = lo.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0)


def applicable_mutes(alert: Mapping[str, Any], route: Route | None,
                     mutes: Mapping[str, MuteInterval]) -> list[str]:
    """The names of the mute intervals that apply to a delivery of ``alert`` on ``route``: the
    route's ``mute`` list when it has one (``[]``: never muted), else every interval; either way
    only those whose ``match``/``match_re`` the alert satisfies."""
    names = route.mute if route is not None and route.mute is not None else sorted(mutes)
    labels = alert_labels(alert)
    return [n for n in names if n in mutes and matches(labels, mutes[n].match, mutes[n].match_re)]


# ---- silences ----

_SILENCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SilenceAdded(BaseModel):
    """``silence-added`` payload. ``matchers`` are exact label values (``rule`` = the rule id,
    ``severity``, rule labels), ``matchers_re`` whole-value regexes; at least one is needed.
    Active from ``starts_at`` (inclusive) to ``ends_at`` (exclusive), fixed-width UTC."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    matchers: dict[str, str] = Field(default_factory=dict)
    matchers_re: dict[str, str] = Field(default_factory=dict)
    starts_at: str
    ends_at: str
    comment: str
    created_by: str

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _SILENCE_ID.match(value):
            raise ValueError("silence id: letters, digits, '.', '_' and '-'")
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: str) -> str:
        parse_utc(value)
        return value

    @field_validator("matchers")
    @classmethod
    def _exact(cls, value: dict[str, str]) -> dict[str, str]:
        return check_matchers(value)

    @field_validator("matchers_re")
    @classmethod
    def _regex(cls, value: dict[str, str]) -> dict[str, str]:
        return check_matchers(value, regex=True)

    @field_validator("comment", "created_by")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty: a silence says who and why")
        return value

    @model_validator(mode="after")
    def _sane(self) -> SilenceAdded:
        if not (self.matchers or self.matchers_re):
            raise ValueError("a silence needs at least one matcher (it would silence everything)")
        if self.ends_at <= self.starts_at:   # fixed-width UTC: text order is time order
            raise ValueError("ends_at must be after starts_at")
        return self


class SilenceExpired(BaseModel):
    """``silence-expired`` payload: the silence ends at ``expired_at`` (if before its end)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    expired_at: str
    expired_by: str = ""
    comment: str = ""

    @field_validator("expired_at")
    @classmethod
    def _utc(cls, value: str) -> str:
        parse_utc(value)
        return value


def silence_added_event(added: SilenceAdded) -> NewEvent:
    return NewEvent(type=SILENCE_ADDED, key=f"silence/{added.id}/added", payload=added.model_dump())


def silence_expired_event(expired: SilenceExpired) -> NewEvent:
    return NewEvent(type=SILENCE_EXPIRED, key=f"silence/{expired.id}/expired",
                    payload=expired.model_dump())


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: Mapping[str, str]
    matchers_re: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    expired_at: datetime | None = None
    expired_by: str = ""

    @classmethod
    def from_added(cls, payload: Mapping[str, Any] | SilenceAdded) -> Silence:
        added = payload if isinstance(payload, SilenceAdded) else SilenceAdded.model_validate(payload)
        return cls(added.id, MappingProxyType(dict(added.matchers)),
                   MappingProxyType(dict(added.matchers_re)), parse_utc(added.starts_at),
                   parse_utc(added.ends_at), added.comment, added.created_by)

    def expire(self, payload: Mapping[str, Any] | SilenceExpired) -> Silence:
        expired = payload if isinstance(payload, SilenceExpired) else SilenceExpired.model_validate(payload)
        at = parse_utc(expired.expired_at)
        if self.expired_at is not None and self.expired_at <= at:
            return self
        return replace(self, expired_at=at, expired_by=expired.expired_by)

    @property
    def end(self) -> datetime:
        return min(self.ends_at, self.expired_at) if self.expired_at else self.ends_at

    def active(self, now: datetime) -> bool:
        return self.starts_at <= _aware(now) < self.end

    def matches(self, alert: Mapping[str, Any]) -> bool:
        return matches(alert_labels(alert), self.matchers, self.matchers_re)


def fold_silences(events: Iterable[Any],
                  silences: Mapping[str, Silence] | None = None) -> dict[str, Silence]:
    """Silences by id from ``silence-added``/``silence-expired`` events (any objects with
    ``type`` and ``payload``). A later ``silence-added`` for an id replaces it (an edit) unless
    it was expired: expiry is final. An expiry for an unknown id is ignored."""
    out = dict(silences or {})
    for event in events:
        if event.type == SILENCE_ADDED:
            old = out.get(event.payload.get("id", ""))
            if old is None or old.expired_at is None:
                out[event.payload["id"]] = Silence.from_added(event.payload)
        elif event.type == SILENCE_EXPIRED:
            old = out.get(event.payload.get("id", ""))
            if old is not None:
                out[old.id] = old.expire(event.payload)
    return out


def silenced(alert: Mapping[str, Any], silences: Iterable[Silence], now: datetime) -> str | None:
    """Why ``alert`` is silenced at ``now`` (the first active matching silence by start time,
    then id: its id, author, end and comment), or None."""
    _aware(now)
    for s in sorted(silences, key=lambda s: (s.starts_at, s.id)):
        if s.active(now) and s.matches(alert):
            return f"silence {s.id} by {s.created_by} until {utc_text(s.end)}: {s.comment}"
    return None


# ---- suppression: silence, then inhibition, then mute ----


@dataclass(frozen=True)
class Suppression:
    """A ``notification-suppressed`` reason (``silence``, ``inhibition`` or ``mute``) and the
    detail that says which silence, inhibit rule or mute interval."""
    reason: Literal["silence", "inhibition", "mute", "catch-up", "resolved-before-flush"]
    detail: str


def suppression_reason(alert: Mapping[str, Any], now: datetime, *,
                       silences: Iterable[Silence] = (),
                       firing_alerts: Iterable[Mapping[str, Any]] = (),
                       inhibit_rules: Sequence[InhibitRule] = (),
                       mutes: Mapping[str, MuteInterval] | None = None,
                       delivery: Delivery | None = None) -> Suppression | None:
    """Why a notification of ``alert`` (to ``delivery``'s receiver) is not sent at ``now``, or
    None. Order, first reason wins: silence, inhibition, mute (module docstring). Mutes apply
    per route (``applicable_mutes``): without a ``delivery`` every matching interval applies."""
    why = silenced(alert, silences, now)
    if why:
        return Suppression("silence", why)
    why = inhibited(alert, firing_alerts, inhibit_rules)
    if why:
        return Suppression("inhibition", why)
    mutes = mutes or {}
    for name in applicable_mutes(alert, delivery.route if delivery else None, mutes):
        if muted(now, mutes[name]):
            return Suppression("mute", f"mute {name} ({_mute_text(mutes[name])})")
    return None


def _mute_text(mute: MuteInterval) -> str:
    parts = [mute.timezone]
    if mute.weekdays:
        parts.append(",".join(mute.weekdays))
    if mute.times:
        parts.append(",".join(f"{r.start}-{r.end}" for r in mute.times))
    if mute.calendar:
        parts.append(f"{mute.calendar} closed")
    return " ".join(parts)


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


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("naive datetime: decisions take an aware 'now'")
    return now
