"""Audit of notification decisions: re-derive, from the log alone, every flush the daemon
requested and every notification it suppressed, and check every attempt was owed.

The daemon decides in rounds: it folds the log into the outbox, plans at ``now`` and appends the
plan's events together (``notification-requested`` with ``requested_at``, ``-suppressed`` with
``decided_at``, all at that one instant). So the audit folds the log in seq order into a fresh
outbox (with the config the daemon had loaded then: ``config-loaded``, and its mode:
``daemon-started``), and at the first event of each recorded round plans at the round's instant
and compares: the same keys with the same payloads, or a difference naming the seq. Pure: it
takes the events, does no I/O.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from watchdog.alerting.dispatch import default_receivers
from watchdog.alerting.outbox import Outbox
from watchdog.model.config import Config
from watchdog.model.events import (
    ALERT_FIRING,
    ALERT_FLAGGED,
    ALERT_RESOLVED,
    CONFIG_LOADED,
    DAEMON_STARTED,
    NOTIFICATION_ATTEMPTED,
    NOTIFICATION_REQUESTED,
    NOTIFICATION_SUPPRESSED,
    SILENCE_ADDED,
    SILENCE_EXPIRED,
    ConfigLoaded,
    decode,
)
from watchdog.model.timefmt import parse_utc

DECISION_TYPES = frozenset({NOTIFICATION_REQUESTED, NOTIFICATION_SUPPRESSED})
OUTBOX_TYPES = frozenset({ALERT_FIRING, ALERT_RESOLVED, ALERT_FLAGGED, SILENCE_ADDED, SILENCE_EXPIRED})


@dataclass
class DecisionReport:
    checked: int = 0
    differences: list[str] = field(default_factory=list)


def _instant(event: Any) -> str:
    """When a decision was taken: a flush's ``requested_at``, a suppression's ``decided_at``."""
    decided = decode(event)
    return decided.requested_at if event.type == NOTIFICATION_REQUESTED else decided.decided_at


@dataclass
class _Auditor:
    report: DecisionReport = field(default_factory=DecisionReport)
    config: Config = field(default_factory=Config)
    one_shot: bool = False
    outbox: Outbox = field(default_factory=Outbox)
    round: list = field(default_factory=list)
    round_at: str = ""          # the instant the recorded round was decided at

    seen: list = field(default_factory=list)

    def configure(self, loaded: ConfigLoaded) -> None:
        """A new config: like the daemon (at start, or on reload), a new routing tree applies
        to the whole log, so the outbox is folded again from the start under it."""
        self.config = Config.model_validate(loaded.config)
        self.outbox = Outbox(routes=list(self.config.routes),
                             default_receivers=default_receivers(self.config))
        for event in self.seen:
            self.outbox.apply(event)

    def close_round(self) -> None:
        """Compare a recorded round with the plan at its instant, then fold it."""
        if not self.round:
            return
        at = self.round_at
        plan = self.outbox.plan(parse_utc(at), horizon=self.config.daemon.catchup_horizon,
                                inhibit=list(self.config.inhibit), mutes=dict(self.config.mute),
                                wait_over=self.one_shot)
        wanted = {e.key: e for e in plan.events}
        for event in self.round:
            want = wanted.pop(event.key, None)
            if want is None:
                self.report.differences.append(
                    f"seq {event.seq}: unexpected: {event.type} {event.key} is not derived from the log")
            elif want.payload != event.payload:
                fields = sorted(k for k in set(want.payload) | set(event.payload)
                                if want.payload.get(k) != event.payload.get(k))
                self.report.differences.append(f"seq {event.seq}: {event.key}: differs in {', '.join(fields)}")
            else:
                self.report.checked += 1
        for key, want in wanted.items():
            self.report.differences.append(
                f"missing at {at}: the round of seq {self.round[0].seq} did not record {want.type} {key}")
        for event in self.round:
            self.apply(event)
        self.round = []

    def apply(self, event: Any) -> None:
        if event.type in OUTBOX_TYPES or event.type.startswith("notification-"):
            self.seen.append(event)
            self.outbox.apply(event)

    def attempted(self, event: Any) -> None:
        key = decode(event).delivery
        owed = {n.key for n in self.outbox.owed(None)}
        status = self.outbox.status(key)
        if key not in owed:
            self.report.differences.append(f"seq {event.seq}: attempted {key}, which was not owed")
        elif status.not_before and event.recorded_at < status.not_before:
            self.report.differences.append(
                f"seq {event.seq}: attempted {key} before its backoff ended ({status.not_before})")
        else:
            self.report.checked += 1


def audit_decisions(events: Iterable[Any]) -> DecisionReport:
    """Every recorded notification decision re-derived (module docstring)."""
    a = _Auditor()
    for event in events:
        at = _instant(event) if event.type in DECISION_TYPES else ""
        if at:
            if a.round and a.round_at != at:
                a.close_round()
            a.round.append(event)
            a.round_at = at
            continue
        a.close_round()
        if event.type == CONFIG_LOADED:
            a.configure(decode(event))
        elif event.type == DAEMON_STARTED:
            a.one_shot = decode(event).mode == "one-shot"
        elif event.type == NOTIFICATION_ATTEMPTED:
            a.attempted(event)
        a.apply(event)
    a.close_round()
    return a.report
