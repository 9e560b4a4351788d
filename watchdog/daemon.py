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
    CONFIG_LOADED, DAEMON_STARTED, DAEMON_STOPPED, RULES_LOADED, FACT_TYPES, NewEvent, new_alert,
)
from watchdog.config import Config
from watchdog.delivery import Delivery
from watchdog.outbox import Outbox
from watchdog.routing import default_receivers
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
    one_shot: bool = False        # run --once / --exit-when-idle: no later instant to wait for
    next_delivery_at: datetime | None = None   # a held group's timer or a retry's backoff
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
        wakes = [t for t in (due and parse_utc(due), self.next_delivery_at) if t is not None]
        if wakes:                          # engine deadlines and outbox timers share one job
            scheduler.add_job(self._deadline_job, DateTrigger(run_date=max(min(wakes), self.now())),
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
        """Send what the outbox owes (watchdog.delivery), folding each round's outcomes back."""
        self.next_delivery_at = await Delivery(
            self.writer, self.outbox, self.notifiers, self.config, self.now, self.catchup_horizon,
            one_shot=self.one_shot).deliver(report, self.evaluate)


def _rules_payload(ruleset: RuleSet, paths: list[str]) -> dict:
    return {"hash": ruleset.hash, "paths": list(paths),
            "rules": [{"id": r.id, "hash": r.hash, "text": r.canonical_text} for r in ruleset.all_rules]}
