"""The daemon's cycle: poll sources, append facts, evaluate, deliver. ``run --once`` is one cycle
of exactly the code the long-running loop repeats.

Start-up re-folds the whole log in seq order (as ``audit`` does), so a crash at any point loses
nothing: facts committed but never evaluated are evaluated now, and alert events are keyed
deterministically, so re-deriving one that was already recorded appends nothing.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from watchdog import __version__
from watchdog.engine import Engine
from watchdog.events import (
    CONFIG_LOADED, DAEMON_STARTED, DAEMON_STOPPED, NOTIFICATION_ATTEMPTED, NOTIFICATION_FAILED,
    NOTIFICATION_SENT, NOTIFICATION_SUPPRESSED, NOTIFICATION_UNKNOWN, RULES_LOADED, FACT_TYPES,
    NewEvent, new_alert,
)
from watchdog.config import Config
from watchdog.notify import SendResult
from watchdog.outbox import MAX_ATTEMPTS, Outbox, backoff, outcome, too_old
from watchdog.routing import default_receivers, suppression_reason
from watchdog.rules import RuleSet
from watchdog.schedule import apscheduler_job_defaults, jittered, plan_poll
from watchdog.store import EventStore, AsyncWriter, iter_events
from watchdog.timefmt import parse_duration, parse_utc, utc_text

log = logging.getLogger("watchdog.daemon")
UNSCHEDULED_EVERY = timedelta(minutes=30)


@dataclass
class CycleReport:
    facts: int = 0
    failures: int = 0
    transitions: int = 0
    sent: int = 0
    suppressed: int = 0
    failed: int = 0


@dataclass
class Daemon:
    store: EventStore
    writer: AsyncWriter
    sources: list
    ruleset: RuleSet
    rule_paths: list[str]
    config_payload: dict
    notifiers: dict
    config: Config
    now: Callable[[], datetime]
    catchup_horizon: timedelta
    engine: Engine = field(default_factory=Engine)
    outbox: Outbox | None = None
    cursor: int = 0
    _cycle_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _now(self) -> str:
        return utc_text(self.now())

    # ---- start and stop ----
    async def start(self) -> None:
        seq, digest = self.store.head()
        await self.writer.append([NewEvent(type=DAEMON_STARTED, key=f"daemon-started/{self._now()}/{os.getpid()}",
                                           payload={"version": __version__, "pid": os.getpid(),
                                                    "head_seq": seq, "head_hash": digest})])
        await self._record_if_changed(CONFIG_LOADED, self.config_payload["hash"], self.config_payload)
        await self._record_if_changed(RULES_LOADED, self.ruleset.hash, _rules_payload(self.ruleset, self.rule_paths))
        self.outbox = Outbox(routes=list(self.config.routes),
                             default_receivers=default_receivers(self.config))
        await self.evaluate()

    async def _record_if_changed(self, kind: str, digest: str, payload: dict) -> None:
        last = None
        for event in iter_events(self.store, types={kind}):
            last = event
        if last is not None and last.payload["hash"] == digest:
            return
        after = last.seq if last else 0
        await self.writer.append([NewEvent(type=kind, key=f"{kind}/{digest[:16]}/after/{after}", payload=payload)])

    async def stop(self, reason: str = "finished") -> None:
        seq, digest = self.store.head()
        await self.writer.append([NewEvent(type=DAEMON_STOPPED, key=f"daemon-stopped/{self._now()}/{os.getpid()}",
                                           payload={"reason": reason, "head_seq": seq + 1, "previous_hash": digest})])

    # ---- one cycle ----
    async def run_once(self) -> CycleReport:
        await self.start()
        report = await self.cycle()
        await self.stop()
        return report

    async def cycle(self, sources: list | None = None) -> CycleReport:
        """Poll ``sources`` (all by default), append, evaluate, deliver. Cycles never overlap:
        two at once would feed the engine the same events twice."""
        async with self._cycle_lock:
            report = CycleReport()
            await self.poll(report, sources if sources is not None else self.sources)
            report.transitions = await self.evaluate()
            await self.deliver(report)
            return report

    async def poll(self, report: CycleReport, sources: list) -> None:
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            results = await asyncio.gather(*[s.poll(session, self.now()) for s in sources])
        for source, events in zip(sources, results):
            stored = await self.writer.append(events)
            report.facts += sum(1 for e in stored if e.type in FACT_TYPES)
            report.failures += sum(1 for e in stored if e.type == "source-failed")
            log.info("polled %s: %d new events", source.name, len(stored))

    # ---- long-running: one scheduled job per source ----
    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set: each source polls at its publication-aware instants
        (schedule.plan_poll), or every ``poll_every`` when its config says so."""
        await self.start()
        scheduler = AsyncIOScheduler(timezone="America/New_York", job_defaults=apscheduler_job_defaults())
        scheduler.start()
        try:
            for source in self.sources:                  # a start-up poll of every source
                self._arm(scheduler, source, self.now())
            self._arm_deadline(scheduler)
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            async with self._cycle_lock:                 # let an in-flight cycle finish
                await self.stop("stopped")

    def _arm_deadline(self, scheduler) -> None:
        """Staleness needs evaluation without any new event: wake at the engine's next deadline."""
        due = self.engine.next_deadline()
        if due is not None:
            scheduler.add_job(self._deadline_job, DateTrigger(run_date=max(parse_utc(due), self.now())),
                              args=[scheduler], id="engine-deadline", replace_existing=True)

    async def _deadline_job(self, scheduler) -> None:
        try:
            async with self._cycle_lock:
                report = CycleReport(transitions=await self.evaluate())
                await self.deliver(report)
        except Exception:
            log.exception("deadline evaluation failed")
        finally:
            self._arm_deadline(scheduler)

    def _arm(self, scheduler, source, at: datetime) -> None:
        scheduler.add_job(self._poll_job, DateTrigger(run_date=at), args=[scheduler, source],
                          id=source.name, replace_existing=True)

    async def _poll_job(self, scheduler, source) -> None:
        started = self.now()
        try:
            report = await self.cycle([source])
            log.info("cycle %s: %s", source.name, report)
        except Exception:                                # re-arm whatever happened
            log.exception("cycle %s failed", source.name)
        finally:
            self._arm(scheduler, source, self.next_poll_at(source, started))
            self._arm_deadline(scheduler)

    def next_poll_at(self, source, last_poll: datetime) -> datetime:
        every = getattr(getattr(source, "config", None), "poll_every", None)
        if every:
            return last_poll + parse_duration(every)
        series = tuple(getattr(source, "series", ()))
        if not series:                                   # no publication calendar (speeches)
            return last_poll + UNSCHEDULED_EVERY
        latest = {s: date.fromisoformat(d[-1]) if (d := self.engine.data.dates.get(s)) else None
                  for s in series}
        plan = plan_poll(series, latest, self.now(), last_poll=last_poll)
        return jittered(plan.at, source.name, 30)

    async def evaluate(self) -> int:
        """Feed every committed event after the cursor to the engine and the outbox, in seq order,
        and append the transitions; repeat until nothing new (other writers may append too)."""
        appended = 0
        while True:
            events = list(iter_events(self.store, after=self.cursor))
            if not events:
                return appended
            transitions = []
            for event in events:
                # deadlines that passed before this event was recorded, exactly as audit does
                transitions += self.engine.tick(event.recorded_at)
                transitions += self.engine.feed(event, now=self._now())
                self.outbox.apply(event)
                self.cursor = event.seq
            transitions += self.engine.tick(self._now())
            stored = await self.writer.append([new_alert(t) for t in transitions])
            appended += len(stored)

    async def deliver(self, report: CycleReport) -> None:
        """Send what the outbox owes; a permanent failure makes its fallback owed, which the next
        round sends at once (bounded: retryable failures wait out their backoff)."""
        for _ in range(3):
            before = (report.sent, report.suppressed, report.failed)
            await self._deliver_round(report)
            if (report.sent, report.suppressed, report.failed) == before:
                return

    async def _deliver_round(self, report: CycleReport) -> None:
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
        await self.evaluate()

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

    async def _attempt(self, delivery, report: CycleReport) -> None:
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

    async def _record(self, delivery, attempt: int, result, report: CycleReport) -> None:
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


def _rules_payload(ruleset: RuleSet, paths: list[str]) -> dict:
    return {"hash": ruleset.hash, "paths": list(paths),
            "rules": [{"id": r.id, "hash": r.hash, "text": r.canonical_text} for r in ruleset.all_rules]}
