"""Delivery at the edge: send what the outbox owes, recording every step as an event (attempted
before the send; sent, failed or unknown after), so a crash at any point loses nothing."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from watchdog.config import Config
from watchdog.events import (
    NOTIFICATION_ATTEMPTED, NOTIFICATION_FAILED, NOTIFICATION_SENT, NOTIFICATION_SUPPRESSED,
    NOTIFICATION_UNKNOWN,
)
from watchdog.notify import SendResult
from watchdog.outbox import MAX_ATTEMPTS, Outbox, backoff, outcome, too_old
from watchdog.routing import suppression_reason
from watchdog.store import AsyncWriter
from watchdog.timefmt import utc_text

log = logging.getLogger("watchdog.delivery")


@dataclass
class Delivery:
    writer: AsyncWriter
    outbox: Outbox
    notifiers: dict
    config: Config
    now: Callable[[], datetime]
    catchup_horizon: timedelta
    one_shot: bool = False

    async def deliver(self, report, evaluate: Callable[[], Awaitable[int]]) -> None:
        """Send what the outbox owes; a permanent failure makes its fallback owed, which the next
        round sends at once (bounded: retryable failures wait out their backoff)."""
        for _ in range(3):
            before = (report.sent, report.suppressed, report.failed)
            await self._deliver_round(report)
            await evaluate()          # fold this round's outcomes into the outbox
            if (report.sent, report.suppressed, report.failed) == before:
                return

    async def _deliver_round(self, report) -> None:
        """One pass: suppress (catch-up, silence, inhibition, mute), reconcile an unknown
        outcome, else attempt; every step is recorded before and after the send."""
        now = self.now()
        for delivery in self.outbox.owed(utc_text(now)):
            suppressed = self._suppression(delivery, now)
            if suppressed is not None:
                reason, detail = suppressed
                await self.writer.append([outcome(delivery, NOTIFICATION_SUPPRESSED, reason=reason, detail=detail)])
                report.suppressed += 1
                continue
            if await self._reconciled(delivery):
                report.sent += 1
                continue
            await self._attempt(delivery, report)

    def _suppression(self, delivery, now: datetime) -> tuple[str, str] | None:
        if too_old(delivery.alert, now, self.catchup_horizon):
            return "catch-up", f"observation date {delivery.alert['date']} is older than the catch-up horizon"
        if delivery.routed is None:                  # a fallback delivery: only catch-up applies
            return None
        why = suppression_reason(delivery.alert, now, silences=self.outbox.silences(),
                                 firing_alerts=list(self.outbox.firing.values()),
                                 inhibit_rules=self.config.inhibit, mutes=self.config.mute,
                                 delivery=delivery.routed)
        return (why.reason, why.detail) if why else None

    async def _reconciled(self, delivery) -> bool:
        """After an unknown outcome, a receiver that can look its messages up is asked first."""
        notifier = self.notifiers.get(delivery.receiver)
        if not self.outbox.status(delivery.key).unknown or not getattr(notifier, "can_reconcile", False):
            return False
        try:
            found = await notifier.find_delivered(delivery.key)
        except Exception as exc:
            log.warning("reconcile %s: %s", delivery.key, exc)
            return False
        if found:
            await self.writer.append([outcome(delivery, NOTIFICATION_SENT, reference=found, reconciled=True)])
        return bool(found)

    async def _attempt(self, delivery, report) -> None:
        notifier = self.notifiers.get(delivery.receiver)
        attempt = self.outbox.status(delivery.key).attempts + 1
        await self.writer.append([outcome(delivery, NOTIFICATION_ATTEMPTED, attempt=attempt)])
        if notifier is None:
            result = SendResult("failed", permanent=True, detail=f"no receiver named {delivery.receiver!r}")
        else:
            try:
                extra = {"firing_reference": self.outbox.firing_reference(delivery.receiver, delivery.alert)} \
                    if delivery.alert["state"] == "resolved" and getattr(notifier, "can_reconcile", False) else {}
                result = await notifier.send(delivery.alert, key=delivery.key, **extra)
            except Exception as exc:                 # one receiver's failure never stops the rest
                result = SendResult("failed", detail=f"{type(exc).__name__}: {exc}")
        await self._record(delivery, attempt, result, report)

    async def _record(self, delivery, attempt: int, result, report) -> None:
        if result.outcome == "sent":
            await self.writer.append([outcome(delivery, NOTIFICATION_SENT, attempt=attempt, reference=result.reference)])
            report.sent += 1
            return
        if result.outcome == "unknown":
            await self.writer.append([outcome(delivery, NOTIFICATION_UNKNOWN, attempt=attempt, detail=result.detail)])
            return
        permanent = result.permanent or attempt >= MAX_ATTEMPTS
        fallback = delivery.routed.route.fallback if (permanent and delivery.routed) else None
        wait = backoff(attempt, result.retry_after)
        await self.writer.append([outcome(
            delivery, NOTIFICATION_FAILED, attempt=attempt, detail=result.detail, permanent=permanent,
            **({"fallback": fallback} if fallback else {}),
            **({} if permanent else {"not_before": utc_text(self.now() + wait)}))])
        log.warning("notify %s via %s failed (%s): %s", delivery.alert_key, delivery.receiver,
                    "permanent" if permanent else f"retry in {wait}", result.detail)
        report.failed += 1


