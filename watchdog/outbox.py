"""The outbox, decided purely from the log: which alert notifications are still owed.

Every delivery step is an event (``notification-attempted`` before the send, then ``-sent`` or
``-failed``), so after a crash the owed deliveries are exactly the alert events with no outcome
for a receiver: at-least-once, never lost. Transitions about observation dates older than the
catch-up horizon are recorded but not sent (``notification-suppressed``, reason ``catch-up``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from watchdog.events import (
    ALERT_FIRING, ALERT_FLAGGED, ALERT_RESOLVED, NOTIFICATION_ATTEMPTED, NOTIFICATION_FAILED,
    NOTIFICATION_SENT, NOTIFICATION_SUPPRESSED, NewEvent,
)
from watchdog.timefmt import NEW_YORK

NOTIFIED_TYPES = frozenset({ALERT_FIRING, ALERT_RESOLVED, ALERT_FLAGGED})
OUTCOME_TYPES = frozenset({NOTIFICATION_SENT, NOTIFICATION_SUPPRESSED, NOTIFICATION_FAILED})


@dataclass(frozen=True)
class Delivery:
    receiver: str
    alert_key: str
    alert: dict
    alert_seq: int

    @property
    def key(self) -> str:
        """The idempotency key of this delivery (receiver + alert)."""
        return f"notify/{self.receiver}/{self.alert_key}"


class Outbox:
    """Folds alert and notification events; ``owed()`` lists deliveries with no outcome yet."""

    def __init__(self, receivers: list[str]):
        self.receivers = receivers
        self._alerts: dict[str, tuple[int, dict]] = {}
        self._done: set[str] = set()
        self.attempts: dict[str, int] = {}

    def apply(self, event) -> None:
        if event.type in NOTIFIED_TYPES:
            self._alerts[event.key] = (event.seq, event.payload)
        elif event.type in OUTCOME_TYPES:
            self._done.add(event.payload["delivery"])
        elif event.type == NOTIFICATION_ATTEMPTED:
            delivery = event.payload["delivery"]
            self.attempts[delivery] = self.attempts.get(delivery, 0) + 1

    def owed(self) -> list[Delivery]:
        out = []
        for key, (seq, payload) in sorted(self._alerts.items(), key=lambda kv: kv[1][0]):
            for receiver in self.receivers:
                delivery = Delivery(receiver, key, payload, seq)
                if delivery.key not in self._done:
                    out.append(delivery)
        return out


def too_old(alert: dict, now: datetime, horizon: timedelta) -> bool:
    """True when the alert's observation date is older than the catch-up horizon."""
    today = now.astimezone(NEW_YORK).date()
    return date.fromisoformat(alert["date"]) < today - horizon if alert.get("date") else False


def outcome(delivery: Delivery, kind: str, **details) -> NewEvent:
    suffix = {NOTIFICATION_ATTEMPTED: f"attempt/{details.get('attempt', 1)}"}.get(kind, "outcome")
    payload = {"delivery": delivery.key, "receiver": delivery.receiver, "alert": delivery.alert_key,
               "rule": delivery.alert.get("rule", ""), **details}
    return NewEvent(type=kind, key=f"{delivery.key}/{suffix}", payload=payload)
