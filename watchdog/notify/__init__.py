"""Notifiers: one per receiver type. Each formats purely (golden-file tested) and sends at the
edge, returning what happened instead of raising, so the outbox can record it as an event.

    class Notifier(Protocol):
        async def send(self, alert: dict, *, key: str) -> SendResult

``alert`` is an alert event payload (AlertTransition fields); ``key`` is the delivery's
idempotency key (receiver + alert), which a notifier that can look messages up again (Slack bot
token: message metadata) uses to avoid a duplicate after a crash.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class SendResult:
    outcome: Literal["sent", "failed", "unknown"]
    permanent: bool = False          # a failure retrying cannot fix (invalid_auth, bad address)
    detail: str = ""                 # secret-free, for the event and the log line
    retry_after: float | None = None # seconds the receiver asked us to wait (429)
    reference: str = ""              # e.g. Slack channel:ts, to update the message on resolve


class Notifier(Protocol):
    async def send(self, alert: dict, *, key: str) -> SendResult: ...


def catch_up_note(alert: dict) -> str:
    """What a late message must say (the outbox marks it): an alert told although it began
    before the catch-up horizon says since when it fires; a short episode (fired and resolved
    before any notification) says when it fired and at what value. '' otherwise."""
    if alert.get("since") and alert.get("state") == "firing":
        return f"still firing since {alert['since']}"
    episode = alert.get("episode")
    if isinstance(episode, dict) and alert.get("state") == "resolved":
        value = f" at {episode['fired_value']}" if episode.get("fired_value") not in (None, "") else ""
        return (f"short episode: fired for {episode.get('fired_date')}{value} and resolved for "
                f"{alert.get('date')} before a notification went out")
    return ""

