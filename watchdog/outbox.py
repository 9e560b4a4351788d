"""The outbox, decided purely from the log: which alert notifications are still owed, to whom.

Every delivery step is an event (``notification-attempted`` before the send, then ``-sent``,
``-failed`` or ``-unknown``), so after a crash the owed deliveries are exactly the alert events
whose delivery has no final outcome: at-least-once, never lost.

- Routing (watchdog.routing) picks each alert's receivers; a resolved alert goes only to the
  receivers whose route sends resolved notifications.
- A retryable failure stays owed and is retried after a backoff (honouring the receiver's
  Retry-After); after ``MAX_ATTEMPTS`` it becomes permanent.
- A permanent failure is final for that receiver and owes the alert to the route's ``fallback``.
- An ``unknown`` outcome (the send may or may not have happened) is reconciled before a resend
  where the receiver can look its messages up (Slack bot token), else resent (at-least-once).
- Suppressions (silence, inhibition, mute, catch-up) are final ``notification-suppressed``
  outcomes with their reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from watchdog.events import (
    ALERT_FIRING, ALERT_FLAGGED, ALERT_RESOLVED, NOTIFICATION_ATTEMPTED, NOTIFICATION_FAILED,
    NOTIFICATION_SENT, NOTIFICATION_SUPPRESSED, NOTIFICATION_UNKNOWN, SILENCE_ADDED,
    SILENCE_EXPIRED, NewEvent,
)
from watchdog.routing import Delivery as Routed
from watchdog.routing import fold_silences, route, sends_resolved
from watchdog.timefmt import NEW_YORK

NOTIFIED_TYPES = frozenset({ALERT_FIRING, ALERT_RESOLVED, ALERT_FLAGGED})
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)


@dataclass(frozen=True)
class Delivery:
    receiver: str
    alert_key: str
    alert: dict
    alert_seq: int
    routed: Routed | None = None

    @property
    def key(self) -> str:
        """The idempotency key of this delivery (receiver + alert)."""
        return f"notify/{self.receiver}/{self.alert_key}"


@dataclass
class _Status:
    attempts: int = 0
    done: bool = False
    unknown: bool = False
    not_before: str = ""
    reference: str = ""


@dataclass
class Outbox:
    """Folds alert, notification and silence events; ``owed(now)`` lists what to send."""
    routes: list = field(default_factory=list)
    default_receivers: list[str] = field(default_factory=lambda: ["console"])
    _alerts: dict[str, tuple[int, dict]] = field(default_factory=dict)
    _status: dict[str, _Status] = field(default_factory=dict)
    _fallbacks: dict[str, list[str]] = field(default_factory=dict)   # alert key -> receivers
    _silence_events: list = field(default_factory=list)
    firing: dict[str, dict] = field(default_factory=dict)            # rule -> firing alert

    def apply(self, event: Any) -> None:
        p = event.payload
        if event.type in NOTIFIED_TYPES:
            self._alerts[event.key] = (event.seq, p)
            if event.type == ALERT_FIRING:
                self.firing[p["rule"]] = p
            elif event.type == ALERT_RESOLVED:
                self.firing.pop(p["rule"], None)
        elif event.type in (SILENCE_ADDED, SILENCE_EXPIRED):
            self._silence_events.append(event)
        elif event.type.startswith("notification-") and "delivery" in p:
            self._outcome(event.type, p)

    def _outcome(self, kind: str, p: dict) -> None:
        status = self._status.setdefault(p["delivery"], _Status())
        if kind == NOTIFICATION_ATTEMPTED:
            status.attempts = max(status.attempts, int(p.get("attempt", 1)))
        elif kind in (NOTIFICATION_SENT, NOTIFICATION_SUPPRESSED):
            status.done, status.unknown, status.reference = True, False, p.get("reference", "")
        elif kind == NOTIFICATION_UNKNOWN:
            status.unknown = True
        elif kind == NOTIFICATION_FAILED:
            status.unknown = False
            status.not_before = p.get("not_before", "")
            if p.get("permanent"):
                status.done = True
                if p.get("fallback"):
                    self._fallbacks.setdefault(p["alert"], []).append(p["fallback"])

    def silences(self):
        return list(fold_silences(self._silence_events).values())

    def status(self, delivery_key: str) -> _Status:
        return self._status.get(delivery_key, _Status())

    def firing_reference(self, receiver: str, alert: dict) -> str:
        """The message of the firing alert a resolved one answers (Slack: to update it)."""
        found = ""
        for key, (_, p) in self._alerts.items():
            if p["rule"] == alert["rule"] and p["state"] == "firing" and p["date"] <= alert["date"]:
                found = self.status(f"notify/{receiver}/{key}").reference or found
        return found

    def owed(self, now: str | None = None) -> list[Delivery]:
        out = []
        for key, (seq, payload) in sorted(self._alerts.items(), key=lambda kv: kv[1][0]):
            targets = [(r.receiver, r) for r in route(payload, self.routes, self.default_receivers)
                       if payload["state"] != "resolved" or sends_resolved(r.route, r.receiver)]
            targets += [(f, None) for f in self._fallbacks.get(key, [])]
            for receiver, routed in targets:
                delivery = Delivery(receiver, key, payload, seq, routed)
                status = self.status(delivery.key)
                if status.done or (now and status.not_before and status.not_before > now):
                    continue
                out.append(delivery)
        return out


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


def outcome(delivery: Delivery, kind: str, **details) -> NewEvent:
    suffix = {NOTIFICATION_ATTEMPTED: f"attempt/{details.get('attempt', 1)}",
              NOTIFICATION_FAILED: f"failed/{details.get('attempt', 1)}",
              NOTIFICATION_UNKNOWN: f"unknown/{details.get('attempt', 1)}"}.get(kind, "outcome")
    payload = {"delivery": delivery.key, "receiver": delivery.receiver, "alert": delivery.alert_key,
               "rule": delivery.alert.get("rule", ""), **details}
    return NewEvent(type=kind, key=f"{delivery.key}/{suffix}", payload=payload)

