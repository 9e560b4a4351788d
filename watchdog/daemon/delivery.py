"""Delivery at the edge: ask the outbox what to flush, then send what it owes, recording every
step as an event (attempted before the send; sent, failed or unknown after), so a crash at any
point loses nothing and nothing is decided twice."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watchdog.model.config import Config
from watchdog.model.events import (
    NOTIFICATION_ATTEMPTED, NOTIFICATION_FAILED, NOTIFICATION_SENT, NOTIFICATION_SUPPRESSED,
    NOTIFICATION_UNKNOWN,
)
from watchdog.notify import SendResult
from watchdog.alerting.outbox import MAX_ATTEMPTS, Notification, Outbox, backoff, outcome
from watchdog.store import AsyncWriter
from watchdog.model.timefmt import utc_text

log = logging.getLogger("watchdog.daemon.delivery")
ROUNDS = 3


@dataclass
class Delivery:
    writer: AsyncWriter
    outbox: Outbox
    notifiers: dict
    config: Config
    now: Callable[[], datetime]
    catchup_horizon: timedelta
    one_shot: bool = False
    metrics: object = None
    # replicas: asked before each send (a send cannot be fenced like an append); False holds it
    may_send: Callable[[], Awaitable[bool]] | None = None
    _paused: set = field(default_factory=set)      # receivers that get nothing more this delivery

    async def deliver(self, report, evaluate: Callable[[], Awaitable[int]]) -> datetime | None:
        """Plan flushes, send what is owed, fold the outcomes back; a permanent failure makes its
        fallback owed, which the next round sends at once (bounded: retryable failures wait out
        their backoff). Returns when to look again: a held group's timer or a retry's backoff."""
        next_check = None
        for _ in range(ROUNDS):
            before = (report.sent, report.suppressed, report.failed)
            next_check = await self._plan(report)
            await evaluate()                     # fold the requests before asking what is owed
            await self._deliver_round(report)
            await evaluate()                     # fold this round's outcomes into the outbox
            if (report.sent, report.suppressed, report.failed) == before:
                break
        retry = self.outbox.next_retry_at()
        wakes = [t for t in (next_check, retry) if t is not None]
        return min(wakes) if wakes else None

    async def _plan(self, report) -> datetime | None:
        plan = self.outbox.plan(self.now(), horizon=self.catchup_horizon, inhibit=list(self.config.inhibit),
                                mutes=dict(self.config.mute), wait_over=self.one_shot)
        stored = await self.writer.append(plan.events)
        report.suppressed += sum(1 for e in stored if e.type == NOTIFICATION_SUPPRESSED)
        return plan.next_check_at

    async def _deliver_round(self, report) -> None:
        """One pass over what is owed: reconcile an unknown outcome, else attempt. Each receiver
        is a lane of its own, in order within it, the lanes side by side: a hanging receiver
        holds no other. A receiver that asked us to wait (429 Retry-After) or did not answer
        within send_deadline gets nothing more in this delivery (any of its rounds)."""
        lanes: dict[str, list[Notification]] = {}
        for n in self.outbox.owed(utc_text(self.now())):
            if n.receiver not in self._paused:
                lanes.setdefault(n.receiver, []).append(n)
        await asyncio.gather(*[self._lane(owed, report) for owed in lanes.values()])

    async def _lane(self, owed: list[Notification], report) -> None:
        for n in owed:
            if n.receiver in self._paused:
                return
            if await self._reconciled(n):
                report.sent += 1
                continue
            result = await self._attempt(n, report)
            if result is not None and result.outcome in ("failed", "unknown") and not result.permanent:
                self._paused.add(n.receiver)

    async def _reconciled(self, n: Notification) -> bool:
        """After a crash mid-send or an unknown outcome, a receiver that can look its messages up
        is asked first; one that cannot is sent again (at-least-once)."""
        notifier = self.notifiers.get(n.receiver)
        if not self.outbox.status(n.key).unknown or not getattr(notifier, "can_reconcile", False):
            return False
        try:
            found = await notifier.find_delivered(n.key)
        except Exception as exc:
            log.warning("reconcile %s: %s", n.key, exc)
            return False
        if found:
            await self.writer.append([outcome(n, NOTIFICATION_SENT, reference=found, reconciled=True)])
        return bool(found)

    async def _attempt(self, n: Notification, report) -> SendResult | None:
        notifier = self.notifiers.get(n.receiver)
        attempt = self.outbox.status(n.key).attempts + 1
        await self.writer.append([outcome(n, NOTIFICATION_ATTEMPTED, attempt=attempt)])   # fenced
        if self.may_send is not None and not await self.may_send():
            # deposed between the fenced append and the send: the new leader reconciles it
            self._paused.add(n.receiver)
            return None
        if notifier is None:
            result = SendResult("failed", permanent=True, detail=f"no receiver named {n.receiver!r}")
        else:
            deadline = self.config.daemon.send_deadline
            try:
                result = await asyncio.wait_for(self._send(notifier, n), deadline.total_seconds())
            except asyncio.TimeoutError:             # it may have landed: reconciled or resent later
                result = SendResult("unknown", detail=f"no answer within [daemon].send_deadline = "
                                                      f"{self.config.daemon.send_deadline}")
                if self.metrics is not None:
                    self.metrics.send_timeouts.labels(n.receiver).inc()
                log.error("notify %s via %s: %s", n.key, n.receiver, result.detail)
            except Exception as exc:                 # one receiver's failure never stops the rest
                result = SendResult("failed", detail=f"{type(exc).__name__}: {exc}")
        await self._record(n, attempt, result, report)
        return result

    async def _send(self, notifier, n: Notification) -> SendResult:
        if not n.alerts:                 # the log holds none of its alerts (Outbox._told)
            return SendResult("failed", permanent=True,
                              detail=f"nothing to tell: the log holds no alert of {', '.join(n.instances)}")
        if len(n.alerts) > 1:
            return await notifier.send_group(list(n.alerts), key=n.key, group=n.group)
        extra = {}
        if getattr(notifier, "can_reconcile", False) and n.alert.state == "resolved":
            extra["firing_reference"] = self.outbox.firing_reference(n)
        return await notifier.send(n.alert, key=n.key, **extra)

    async def _record(self, n: Notification, attempt: int, result: SendResult, report) -> None:
        if result.outcome == "sent":
            await self.writer.append([outcome(n, NOTIFICATION_SENT, attempt=attempt, reference=result.reference,
                                              sent_at=utc_text(self.now()))])
            report.sent += 1
            return
        if result.outcome == "unknown":
            await self.writer.append([outcome(n, NOTIFICATION_UNKNOWN, attempt=attempt, detail=result.detail)])
            return
        permanent = result.permanent or attempt >= MAX_ATTEMPTS
        fallback = n.routed.route.fallback if (permanent and n.routed) else None
        wait = backoff(attempt, result.retry_after)
        await self.writer.append([outcome(
            n, NOTIFICATION_FAILED, attempt=attempt, detail=result.detail, permanent=permanent,
            **({"fallback": fallback} if fallback else {}),
            **({} if permanent else {"not_before": utc_text(self.now() + wait)}))])
        log.warning("notify %s via %s failed (%s): %s", n.key, n.receiver,
                    "permanent" if permanent else f"retry in {wait}", result.detail)
        report.failed += 1
