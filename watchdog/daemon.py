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
from datetime import datetime, timedelta

import aiohttp

from watchdog import __version__
from watchdog.engine import Engine
from watchdog.events import (
    CONFIG_LOADED, DAEMON_STARTED, DAEMON_STOPPED, NOTIFICATION_ATTEMPTED, NOTIFICATION_FAILED,
    NOTIFICATION_SENT, NOTIFICATION_SUPPRESSED, RULES_LOADED, FACT_TYPES, NewEvent, new_alert,
)
from watchdog.outbox import Outbox, outcome, too_old
from watchdog.rules import RuleSet
from watchdog.store import EventStore, AsyncWriter, iter_events
from watchdog.timefmt import utc_text

log = logging.getLogger("watchdog.daemon")


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
    now: Callable[[], datetime]
    catchup_horizon: timedelta
    engine: Engine = field(default_factory=Engine)
    outbox: Outbox | None = None
    cursor: int = 0

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
        self.outbox = Outbox(sorted(self.notifiers))
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

    async def cycle(self) -> CycleReport:
        report = CycleReport()
        await self.poll(report)
        report.transitions = await self.evaluate()
        await self.deliver(report)
        return report

    async def poll(self, report: CycleReport) -> None:
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            results = await asyncio.gather(*[s.poll(session, self.now()) for s in self.sources])
        for source, events in zip(self.sources, results):
            stored = await self.writer.append(events)
            report.facts += sum(1 for e in stored if e.type in FACT_TYPES)
            report.failures += sum(1 for e in stored if e.type == "source-failed")
            log.info("polled %s: %d new events", source.name, len(stored))

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
                transitions += self.engine.feed(event, now=self._now())
                self.outbox.apply(event)
                self.cursor = event.seq
            stored = await self.writer.append([new_alert(t) for t in transitions])
            appended += len(stored)

    async def deliver(self, report: CycleReport) -> None:
        for delivery in self.outbox.owed():
            if too_old(delivery.alert, self.now(), self.catchup_horizon):
                await self.writer.append([outcome(delivery, NOTIFICATION_SUPPRESSED, reason="catch-up")])
                report.suppressed += 1
                continue
            attempt = self.outbox.attempts.get(delivery.key, 0) + 1
            await self.writer.append([outcome(delivery, NOTIFICATION_ATTEMPTED, attempt=attempt)])
            try:
                await self.notifiers[delivery.receiver].send(delivery.alert)
            except Exception as exc:                 # one receiver's failure never stops the rest
                await self.writer.append([outcome(delivery, NOTIFICATION_FAILED, attempt=attempt,
                                                  error=f"{type(exc).__name__}: {exc}")])
                report.failed += 1
                continue
            await self.writer.append([outcome(delivery, NOTIFICATION_SENT, attempt=attempt)])
            report.sent += 1
        await self.evaluate()


def _rules_payload(ruleset: RuleSet, paths: list[str]) -> dict:
    return {"hash": ruleset.hash, "paths": list(paths),
            "rules": [{"id": r.id, "hash": r.hash, "text": r.canonical_text} for r in ruleset.rules]}
