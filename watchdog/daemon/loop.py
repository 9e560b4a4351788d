"""The daemon's cycle: poll sources, append facts, evaluate, deliver. ``run --once`` is one cycle
of exactly the code the long-running loop repeats.

Start-up re-folds the whole log in seq order (as ``audit`` does), so a crash at any point loses
nothing: facts committed but never evaluated are evaluated now, and alert events are keyed
deterministically, so re-deriving one that was already recorded appends nothing.

In production (``serve``) the daemon also: reloads config and rules on SIGHUP (a bad set is
refused and recorded, the old one keeps running); speaks systemd's notify protocol (``READY=1``
once the log is folded, ``STATUS=``, ``WATCHDOG=1`` only while the event loop and the writer make
progress, ``STOPPING=1``); evaluates at least every ``[daemon].evaluate_every``; and runs a
deadman timer beside the engine that trips when no evaluation completed for
``[daemon].deadman_after``.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from watchdog import __version__
from watchdog.alerting.dispatch import default_receivers
from watchdog.alerting.outbox import Outbox
from watchdog.daemon.delivery import Delivery
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.replica import Replica
from watchdog.daemon.schedule import apscheduler_job_defaults, jittered, plan_poll
from watchdog.daemon.sdnotify import Notifier as SystemdNotifier
from watchdog.engine.fold import Engine
from watchdog.model.config import Config
from watchdog.model.errors import (
    ChainBroken,
    ConfigError,
    LeaseLost,
    RuleError,
    StoreError,
    StoreReplaced,
)
from watchdog.model.events import (
    ALERT_TYPES,
    CONFIG_LOADED,
    DAEMON_STARTED,
    DAEMON_STOPPED,
    DEADMAN_CLEARED,
    DEADMAN_TRIPPED,
    FACT_TYPES,
    RELOAD_REFUSED,
    RULES_LOADED,
    SPEECH_RECORDED,
    ConfigLoaded,
    DaemonStarted,
    DaemonStopped,
    DeadmanCleared,
    DeadmanTripped,
    NewEvent,
    ReloadRefused,
    RulesLoaded,
    RuleText,
    ToldAlert,
    alert_key,
    decode,
    new_alert,
    typed_event,
)
from watchdog.model.timefmt import NEW_YORK, parse_utc, utc_text
from watchdog.rules.ruleset import RuleSet
from watchdog.sources.base import failure_event
from watchdog.store import AsyncWriter, EventStore, iter_events

log = logging.getLogger("watchdog.daemon.loop")
UNSCHEDULED_EVERY = timedelta(minutes=30)
BATCH_WAIT = timedelta(seconds=30)   # a cycle's sources appended as one batch if all answer by then
CLOCK_CHECK_EVERY = 1.0    # seconds (monotonic) between two comparisons of wall and monotonic time
STORE_PROBE_EVERY = 5      # clock checks between two probes of the log file (deleted, replaced)
CLOCK_STEP = timedelta(seconds=5)   # a larger disagreement is a step (NTP slews far less)
REARM_GAP = timedelta(milliseconds=500)     # see Daemon._after_this_run
EVALUATE_PAGE = 5000       # events read per query while folding (short read transactions)
YIELD_EVERY = 1000         # events folded between two yields to the loop (pings keep flowing)


REASON_CHARS = 200         # of a source failure's reason in a log line (the event holds all of it)
REASONS_SHOWN = 3          # distinct failure reasons per source in a log line


def failure_reasons(failures: list) -> str:
    """Why a source's polls failed, at a glance, from its ``source-failed`` events: each
    distinct reason once, naming what it hit when the reasons say (``HTTP 503: Service
    Unavailable (sofr, tgcr)`` from ``sofr: HTTP 503: …`` and ``tgcr: HTTP 503: …``), else with how
    many times (``timeout (2x)``); the first few reasons, each cut short."""
    hits: dict[str, list[str]] = {}
    for event in failures:
        reason = " ".join(str(event.payload.get("reason", "")).split()) or "no reason given"
        head, sep, rest = reason.partition(": ")
        what, reason = (head, rest) if sep and rest and " " not in head else ("", reason)
        reason = reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 1] + "…"
        hits.setdefault(reason, []).append(what)
    shown = []
    for reason, whats in list(hits.items())[:REASONS_SHOWN]:
        named = list(dict.fromkeys(w for w in whats if w))
        if named:
            shown.append(f"{reason} ({', '.join(named)})")
        else:
            shown.append(f"{reason} ({len(whats)}x)" if len(whats) > 1 else reason)
    if len(hits) > REASONS_SHOWN:
        more = len(hits) - REASONS_SHOWN
        shown.append(f"and {more} more reason{'s' if more > 1 else ''}")
    return "; ".join(shown)


def poll_text(source: str, facts: int, failures: list) -> str:
    """What one poll of ``source`` brought, for people: ``nyfed: 3 new, 0 failed``, or
    ``nyfed: 0 new, 2 failed: HTTP 503: Service Unavailable (sofr, tgcr)``. New facts and
    failures are counted apart: a failure is never news."""
    head = f"{source}: {facts} new, {len(failures)} failed"
    return f"{head}: {failure_reasons(failures)}" if failures else head


@dataclass
class CycleReport:
    facts: int = 0
    failures: int = 0
    transitions: int = 0
    sent: int = 0
    suppressed: int = 0
    failed: int = 0
    # "nyfed: HTTP 503: … (sofr, tgcr)": why each failing source failed, in the order they settled
    failing: list[str] = field(default_factory=list)

    def text(self) -> str:
        """One line for people: the log's and ``watchdog run``'s words for a cycle."""
        why = f" ({'; '.join(self.failing)})" if self.failing else ""
        return (f"{self.facts} new facts, {self.failures} source failures{why}; {self.transitions} alert "
                f"transitions; notifications: {self.sent} sent, {self.suppressed} suppressed, "
                f"{self.failed} failed")


@dataclass
class Health:
    """Liveness and readiness as the daemon sees them (``STATUS=``, ``/healthz``, ``/readyz``).
    Liveness is the loop and the writer making progress; readiness also needs the log folded and
    an evaluation within ``deadman_after`` — a late source never makes the daemon unready."""
    ready: bool = False
    reason: str = "starting: folding the event log"
    last_evaluation: datetime | None = None
    deadman_tripped: bool = False
    # source name -> when its last poll ended without a source-failed event (UTC text): a poll
    # that brings nothing new records nothing, yet shows the source works again (/readyz)
    last_ok_poll: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reloaded:
    """What a SIGHUP re-reads (built by ``app``, the composition root)."""
    config: Config
    ruleset: RuleSet
    rule_paths: list[str]
    config_payload: ConfigLoaded
    notifiers: dict
    sources: list
    store_path: str


@dataclass
class Daemon:
    store: EventStore
    writer: AsyncWriter
    sources: list
    ruleset: RuleSet
    rule_paths: list[str]
    config_payload: ConfigLoaded
    notifiers: dict
    config: Config
    now: Callable[[], datetime]
    catchup_horizon: timedelta
    engine: Engine = field(default_factory=Engine)
    outbox: Outbox | None = None
    cursor: int = 0
    one_shot: bool = False        # run --once / --exit-when-idle: no later instant to wait for
    next_delivery_at: datetime | None = None   # a held group's timer or a retry's backoff
    metrics: Metrics = field(default_factory=Metrics)
    health: Health = field(default_factory=Health)
    systemd: SystemdNotifier = field(default_factory=SystemdNotifier)
    reload_config: Callable[[], Reloaded] | None = None      # SIGHUP: re-read config and rules
    start_http: Callable[["Daemon", str], Awaitable] | None = None   # watchdog.http.server.start_http
    _cycle_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _started_seq: int = 0          # events after it were appended while this process ran
    _stopping: bool = False
    _reload_pending: bool = False
    _scheduler: object = None
    _tasks: set = field(default_factory=set)
    # the clock a wall-clock step is measured against (CLOCK_MONOTONIC: it does not step, and
    # does not count a suspend); looked up per call so a test's patched clock is the one read
    monotonic: Callable[[], float] = field(default=lambda: time.monotonic())
    _clock_ref: tuple | None = None                # (wall, monotonic) at the last clock check
    _evaluated_mono: float | None = None           # loop time of the last evaluation (deadman)
    accept_broken_chain: bool = False              # run --accept-broken-chain
    _store_alerted: bool = False                   # receivers told the log file was lost
    # one of several replicas on a shared log (watchdog.daemon.replica): None for a single daemon
    replica: Replica | None = None
    # a follower's transitions the leader has not appended yet (key -> event): appended at takeover
    _derived: dict = field(default_factory=dict)
    _stop_event: asyncio.Event | None = None

    def _now(self) -> str:
        return utc_text(self.now())

    @property
    def deadman_after(self) -> timedelta:
        return self.config.daemon.deadman_after

    @property
    def evaluate_every(self) -> timedelta:
        return self.config.daemon.evaluate_every

    async def _append(self, events: list[NewEvent]) -> list:
        """Append through the writer, keeping the store's health figures. A log file deleted or
        replaced under the daemon is told to every receiver directly, once (the log cannot
        carry that news); readiness names the store until a real write succeeds."""
        try:
            stored = await self.writer.append(events)
        except StoreError as exc:
            if isinstance(exc, LeaseLost):       # another replica leads: not a store failure
                self._depose(str(exc))
                raise
            self.metrics.store_write(False)
            self.metrics.ready.set(0)            # not ready from the first refused write ...
            if isinstance(exc, StoreReplaced):
                self._store_lost(exc)
            raise
        if events:                               # ... until a real write succeeds
            self.metrics.store_write(True)
            self.metrics.ready.set(1 if self.health.ready else 0)
        return stored

    def _store_lost(self, exc: StoreError) -> None:
        if self._store_alerted:
            return
        self._store_alerted = True
        log.critical("%s", exc)
        self._spawn(self._tell_receivers(store_alert(self.now(), str(exc))))

    async def _probe_store(self) -> None:
        """An empty append: the writer checks that its file is still the one it opened."""
        try:
            await self._append([])
        except StoreError:
            pass

    # ---- start and stop ----
    async def _verify_chain(self) -> str:
        """Re-hash what was appended since the last verified point (not the whole log at every
        start). A log that fails is not extended unless ``accept_broken_chain``, and then the
        start records that it was (in ``daemon-started``). Returns the problem, or ''."""
        try:              # in a thread: a first verification of a long log must not stop the pings
            await asyncio.to_thread(self.store.verify_since_point)
        except ChainBroken as exc:
            if not self.accept_broken_chain:
                raise StoreError(f"{getattr(self.store, 'path', 'event log')}: the hash chain does not verify "
                                 f"({exc}): refusing to extend it. `watchdog verify --db "
                                 f"{getattr(self.store, 'path', 'F')}` names the first bad row; "
                                 "`watchdog run --accept-broken-chain` extends it anyway and records that it did") from exc
            log.critical("the event log's chain does not verify (%s): extending it anyway "
                         "(--accept-broken-chain), recorded in daemon-started", exc)
            return str(exc)
        return ""

    async def start(self) -> None:
        if self.replica is not None and not self.replica.leading and not await self.replica.try_lead():
            # run --once / --exit-when-idle beside a serving replica would poll and send twice
            raise LeaseLost(f"event log {getattr(self.store, 'path', '')}: {self.replica.leader} leads "
                            f"(epoch {self.replica.leader_epoch}): this run would poll and notify beside it; "
                            "start it as a replica (watchdog run without --once) or stop the leader")
        broken = await self._verify_chain()
        seq, digest = self.store.head()
        self._started_seq = seq
        await self._append([typed_event(DAEMON_STARTED, f"daemon-started/{self._now()}/{os.getpid()}", DaemonStarted(
            version=__version__, pid=os.getpid(), head_seq=seq, head_hash=digest,
            mode="one-shot" if self.one_shot else "serve", accepted_broken_chain=broken or None))])
        if not broken:
            self.store.mark_verified(*self.store.head())
        await self._record_if_changed(CONFIG_LOADED, self.config_payload)
        await self._record_if_changed(RULES_LOADED, _rules_payload(self.ruleset, self.rule_paths))
        if self.outbox is None:                  # a follower taking over has its own, folded
            self.outbox = self._new_outbox(self.config)
        if self._derived:                        # what the old leader derived but never appended
            await self._append(list(self._derived.values()))
            self._derived.clear()
        await self.evaluate()
        self._set_ready(True, "ready")

    def _new_outbox(self, config: Config) -> Outbox:
        return Outbox(routes=list(config.routes), default_receivers=default_receivers(config))

    async def _record_if_changed(self, kind: str, loaded: ConfigLoaded | RulesLoaded) -> bool:
        last = None
        for event in iter_events(self.store, types={kind}):
            last = event
        if last is not None and decode(last).hash == loaded.hash:
            return False
        after = last.seq if last else 0
        await self._append([typed_event(kind, f"{kind}/{loaded.hash[:16]}/after/{after}", loaded)])
        return True

    async def stop(self, reason: str = "finished") -> None:
        seq, digest = self.store.head()
        stored = await self._append([typed_event(DAEMON_STOPPED, f"daemon-stopped/{self._now()}/{os.getpid()}",
                                                 DaemonStopped(reason=reason, head_seq=seq + 1,
                                                               previous_hash=digest))])
        try:          # what this run appended is its own: the next start re-hashes from here
            if stored and not self._store_alerted:
                self.store.mark_verified(stored[-1].seq, stored[-1].hash)
        except StoreError as exc:
            log.warning("could not record the verified point: %s", exc)
        if self.replica is not None:             # daemon-stopped is this term's last word
            await self.replica.release()

    # ---- one cycle ----
    async def run_once(self) -> CycleReport:
        await self.start()
        report = await self.cycle()
        await self.stop()
        return report

    async def cycle(self, sources: list | None = None,
                    on_settled: Callable[[list], None] | None = None) -> CycleReport:
        """Poll ``sources`` (all by default), append, evaluate, deliver. The polls run outside
        the cycle lock, each within ``poll_deadline``: a slow source holds no other source, no
        evaluation and no delivery. Appending and what follows never overlap: two at once would
        feed the engine the same events twice."""
        report = CycleReport()
        if self._stopping:
            return report
        sources = sources if sources is not None else self.sources
        if not sources:                          # nothing to poll: evaluate and deliver
            await self._settle(report, [], [])
            return report
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            polls = {asyncio.ensure_future(self._timed_poll(s, session)): s for s in sources}
            # One batch of what every source brought within BATCH_WAIT (knowledge order across
            # sources: a catch-up); a source slower than that is appended on its own when it ends.
            done, pending = await asyncio.wait(polls, timeout=BATCH_WAIT.total_seconds())
            while True:
                batch = [t for t in polls if t in done]          # in the sources' order
                if batch:
                    settled = [polls[t] for t in batch]
                    await self._settle(report, settled, [t.result() for t in batch])
                    if on_settled is not None:
                        on_settled(settled)
                if not pending:
                    return report
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)

    async def _settle(self, report: CycleReport, sources: list, results: list[list[NewEvent]]) -> None:
        """Append one batch, evaluate, deliver — under the cycle lock."""
        async with self._cycle_lock:
            if self._stopping:                   # SIGTERM came meanwhile: daemon-stopped is last;
                return                           # what was fetched is fetched again next start
            await self._append_polled(report, sources, results)
            report.transitions += await self.evaluate()
            await self.deliver(report)

    async def _append_polled(self, report: CycleReport, sources: list, results: list[list[NewEvent]]) -> None:
        """Append what ``sources`` brought (``results``, one list per source) as one batch."""
        for source, events in zip(sources, results):
            if not any(e.type == "source-failed" for e in events):
                self.health.last_ok_poll[source.name] = self._now()
        # One batch in knowledge order: what one poll (or the start-up catch-up of every source)
        # brought is appended by publication time, so the live fold meets the facts in the order
        # replay does (a catch-up of several days must not fold SOFR's week before EFFR's days).
        batch = knowledge_order([e for events in results for e in events])
        stored = await self._append(batch)
        by_key = {e.key: e for e in stored}
        for source, events in zip(sources, results):
            mine = [by_key[e.key] for e in events if e.key in by_key]
            facts = sum(1 for e in mine if e.type in FACT_TYPES)
            failures = [e for e in mine if e.type == "source-failed"]
            report.facts += facts
            report.failures += len(failures)
            if failures:
                report.failing.append(f"{source.name}: {failure_reasons(failures)}")
            log.info("polled %s", poll_text(source.name, facts, failures),
                     extra={"source": source.name, "new_facts": facts, "failures": len(failures)})

    async def _timed_poll(self, source, session) -> list:
        """One poll of one source within ``poll_deadline`` (connect, headers, body, retries): past
        it, the poll is cancelled and recorded as a source-failed naming the deadline."""
        started, at = time.monotonic(), self.now()
        deadline = self.config.daemon.poll_deadline
        try:
            return await asyncio.wait_for(source.poll(session, at), deadline.total_seconds())
        except asyncio.TimeoutError:
            self.metrics.poll_timeouts.labels(source.name).inc()
            log.error("poll of %s cancelled: no answer within [daemon].poll_deadline = %s",
                      source.name, self.config.daemon.poll_deadline, extra={"source": source.name})
            return [failure_event(source.name, f"poll did not finish within [daemon].poll_deadline = "
                                               f"{self.config.daemon.poll_deadline}: cancelled", at)]
        finally:
            self.metrics.fetch_seconds.labels(source.name).observe(time.monotonic() - started)

    # ---- long-running: one scheduled job per source ----
    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set: each source polls at its publication-aware instants
        (schedule.plan_poll), or every ``poll_every`` when its config says so. SIGHUP reloads."""
        self._spawn(self._watchdog_pings())              # from the start: the re-fold may be long
        # SIGHUP's default action kills the process: take it over before the (long) start
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
        runner = None
        self._stop_event = stop
        try:
            if self.replica is not None:             # /readyz and /metrics while following too
                runner = await self._start_http()
                if not await self._follow(stop):
                    return
                started = time.monotonic()
                self._spawn(self._keep_lease(stop))      # renewed during a long start too
            await self.start()
            if self.replica is not None:
                self.replica.took_over_s = round(time.monotonic() - started, 3)
            else:
                runner = await self._start_http()
            self._schedule()
            self._spawn(self._deadman())
            self._spawn(self._clock_watch())
            if self._reload_pending:
                self._spawn(self.reload())
            self.systemd.notify(READY=1, STATUS=self.status_line())
            log.info("ready: %s", self.status_line())
            await stop.wait()
        finally:
            await self._shutdown(runner)
        if self.replica is not None and self.replica.role == "deposed":
            raise LeaseLost(f"{self.replica.holder} was deposed: another replica leads "
                            f"({self.health.reason}); exiting for a restart as a follower")

    # ---- replicas: follow, take over, keep the lease (watchdog.daemon.replica) ----
    async def _follow(self, stop: asyncio.Event) -> bool:
        """Fold what the leader appends until this replica takes the lease (True) or is stopped
        (False). Nothing is appended, polled or sent meanwhile."""
        replica = self.replica
        self.outbox = self._new_outbox(self.config)
        url = getattr(self.store, "url", "")
        from watchdog.store.postgres import CHANNEL   # only a PostgreSQL log has replicas
        await replica.listen(url, CHANNEL)
        announced = False
        try:
            while not stop.is_set():
                try:
                    await self._follow_fold()
                    if await replica.try_lead():
                        return True
                except StoreError as exc:        # the database is away: keep trying, say so
                    log.error("following: %s", exc)
                    self._set_ready(False, f"following: the event log cannot be read: {exc}")
                    await asyncio.sleep(replica.retry_every)
                    continue
                self._set_ready(True, f"following {replica.leader} (epoch {replica.leader_epoch})")
                if not announced:                # warm: READY for systemd
                    announced = True
                    self.systemd.notify(READY=1, STATUS=self.status_line())
                    log.info("following %s (epoch %s): %s", replica.leader, replica.leader_epoch,
                             self.status_line())
                if not replica.listening:        # dropped with the database: listen again
                    await replica.listen(url, CHANNEL)
                waiter = asyncio.ensure_future(replica.wait(replica.retry_every))
                stopped = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopped}, return_when=asyncio.FIRST_COMPLETED)
                for task in (waiter, stopped):
                    task.cancel()
                await asyncio.gather(waiter, stopped, return_exceptions=True)
            return False
        finally:
            await replica.close()

    async def _follow_fold(self) -> None:
        """A follower's fold of the leader's events, exactly as a restart re-folds the log: each
        at the instant it was recorded. The transitions it derives are the leader's to append;
        those the log does not hold yet are kept for a takeover (keys are deterministic)."""
        while True:
            events = await self._read_page()
            if len(events) < EVALUATE_PAGE:
                self.replica.caught_up()                 # this page reaches the head
            if not events:
                return
            self._started_seq = events[-1].seq           # the leader's: folded at recorded_at
            for transition in await self._fold(events):
                self._derived[alert_key(transition)] = new_alert(transition)
            for event in events:
                if event.type in ALERT_TYPES:
                    self._derived.pop(event.key, None)
            self.metrics.head_seq.set(self.cursor)
            if len(events) < EVALUATE_PAGE:
                return

    async def _keep_lease(self, stop: asyncio.Event) -> None:
        """Renew the lease every lease_ttl/3; deposed (another holds it) ends this daemon."""
        replica = self.replica
        while not stop.is_set() and replica.leading:
            await asyncio.sleep(replica.renew_every)
            try:
                if not await replica.renew():
                    self._depose(f"{replica.holder} no longer holds the leader lease")
                    return
            except StoreError as exc:       # unreachable: the fence stops a lost lease writing
                log.error("cannot renew the leader lease: %s", exc)

    def _depose(self, reason: str) -> None:
        """Another replica leads: stop at once (no new cycle, no send) and exit EX_TEMPFAIL."""
        if self.replica is None or self.replica.role == "deposed":
            return
        self.replica.deposed()
        log.error("deposed: %s; stopping (systemd restarts this replica as a follower)", reason)
        self._set_ready(False, f"deposed: {reason}")
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()

    def _schedule(self) -> None:
        self._scheduler = scheduler = AsyncIOScheduler(timezone="America/New_York",
                                                       job_defaults=apscheduler_job_defaults())
        scheduler.start()
        self._arm_catch_up(scheduler)                # a start-up poll of every source, one batch
        self._arm_deadline(scheduler)
        self._arm_heartbeat(scheduler)

    def _arm_catch_up(self, scheduler) -> None:
        """Poll every source now as one cycle, so what they bring (days of facts after a
        downtime) is appended as one batch in knowledge order; then each source goes back to
        its own schedule. At start, after a clock step or a resume."""
        for source in self.sources:                  # the catch-up stands in for their next poll
            if scheduler.get_job(source.name) is not None:
                scheduler.remove_job(source.name)
        scheduler.add_job(self._catch_up_job, DateTrigger(run_date=self._after_this_run(self.now())),
                          args=[scheduler], id="catch-up", replace_existing=True)

    async def _catch_up_job(self, scheduler) -> None:
        started = self.now()
        sources = list(self.sources)
        armed: set[str] = set()

        def back_on_schedule(settled: list) -> None:   # as each source is in, not the slowest
            if self._stopping:
                return
            for source in settled:
                if source in self.sources:
                    armed.add(source.name)
                    self._arm(scheduler, source, self.next_poll_at(source, started))
            self._arm_deadline(scheduler)
        try:
            report = await self.cycle(sources, on_settled=back_on_schedule)
            log.info("catch-up of %d sources: %s", len(sources), report.text())
        except Exception:
            log.exception("catch-up poll failed")
        finally:
            if not self._stopping:
                for source in self.sources:
                    if source.name not in armed:
                        self._arm(scheduler, source, self.now() if source not in sources
                                  else self.next_poll_at(source, started))
                self._arm_deadline(scheduler)

    def wake(self) -> None:
        """Make the scheduler look at its jobs now (it sleeps until the next run time it
        computed from the wall clock): after a clock step, and for a test's simulated clock."""
        if self._scheduler is not None:
            self._scheduler.wakeup()

    def _arm_heartbeat(self, scheduler) -> None:
        scheduler.add_job(self._deadline_job, IntervalTrigger(seconds=self.evaluate_every.total_seconds()),
                          args=[scheduler], id="evaluate-every", replace_existing=True)

    async def _shutdown(self, runner) -> None:
        """SIGTERM: no new cycle starts, the one in flight finishes, ``daemon-stopped`` is the
        log's last word."""
        self._stopping = True
        self.systemd.notify(STOPPING=1, STATUS="stopping: finishing the current cycle")
        loop = asyncio.get_running_loop()
        loop.remove_signal_handler(signal.SIGHUP)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        async with self._cycle_lock:                 # let an in-flight cycle finish
            if self.replica is None or self.replica.leading:   # a follower wrote nothing
                try:
                    await self.stop("stopped")
                except LeaseLost:
                    pass
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        self.systemd.close()

    async def _start_http(self):
        """``/healthz``, ``/readyz``, ``/metrics`` (watchdog.http.server). A port that cannot be bound is
        an error in the log, not a dead daemon: alerting matters more than its status page."""
        http = self.config.http
        if self.start_http is None or not http.enabled or not http.listen:
            return None
        try:
            return await self.start_http(self, http.listen)
        except OSError as exc:
            log.error("cannot serve HTTP on %s: %s; running without /metrics and /healthz", http.listen, exc)
            return None

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _arm_deadline(self, scheduler) -> None:
        """Staleness needs evaluation without any new event: wake at the engine's next deadline."""
        due = self.engine.next_deadline()
        wakes = [t for t in (due and parse_utc(due), self.next_delivery_at) if t is not None]
        if wakes:                          # engine deadlines and outbox timers share one job
            scheduler.add_job(self._deadline_job, DateTrigger(run_date=self._after_this_run(min(wakes))),
                              args=[scheduler], id="engine-deadline", replace_existing=True)

    def _after_this_run(self, at: datetime) -> datetime:
        """``at``, but never before the job arming it has ended. Jobs re-arm themselves from
        inside their own run; a DateTrigger due while that run still counts as running is
        skipped by APScheduler (max_instances=1), and a skipped one-shot job is gone: the
        source would never poll again (seen when a slow Slack delivery held a cycle past the
        next poll's instant)."""
        return max(at, self.now() + REARM_GAP)

    async def _deadline_job(self, scheduler) -> None:
        try:
            async with self._cycle_lock:
                if self._stopping:
                    return
                report = CycleReport(transitions=await self.evaluate())
                await self.deliver(report)
        except Exception:
            log.exception("deadline evaluation failed")
        finally:
            if not self._stopping:
                self._arm_deadline(scheduler)

    def _arm(self, scheduler, source, at: datetime) -> None:
        scheduler.add_job(self._poll_job, DateTrigger(run_date=self._after_this_run(at)), args=[scheduler, source],
                          id=source.name, replace_existing=True)

    async def _poll_job(self, scheduler, source) -> None:
        started = self.now()
        try:
            report = await self.cycle([source])
            log.info("cycle %s: %s", source.name, report.text(), extra={"source": source.name})
        except Exception:                                # re-arm whatever happened
            log.exception("cycle %s failed", source.name)
        finally:
            if not self._stopping and source in self.sources:     # a reload may have dropped it
                self._arm(scheduler, source, self.next_poll_at(source, started))
                self._arm_deadline(scheduler)

    def next_poll_at(self, source, last_poll: datetime) -> datetime:
        every = getattr(getattr(source, "config", None), "poll_every", None)
        if every is not None:
            return last_poll + every
        series = tuple(getattr(source, "series", ()))
        if not series:                                   # no publication calendar (speeches)
            return last_poll + UNSCHEDULED_EVERY
        latest = {s: date.fromisoformat(d[-1]) if (d := self.engine.data.dates.get(s)) else None
                  for s in series}
        plan = plan_poll(series, latest, self.now(), last_poll=last_poll)
        return jittered(plan.at, source.name, 30)

    # ---- evaluation ----
    async def evaluate(self) -> int:
        """Feed every committed event after the cursor to the engine and the outbox, in seq order,
        and append the transitions; repeat until nothing new (other writers may append too).
        Deadlines up to now are ticked once caught up, so an evaluation with no new event still
        fires a staleness rule whose deadline passed."""
        appended = 0
        while True:
            events = await self._read_page()
            transitions = await self._fold(events)
            if len(events) < EVALUATE_PAGE:
                transitions += self.engine.tick(self._now())
            stored = await self._append([new_alert(t) for t in transitions])
            appended += len(stored)
            if not events and not stored:
                break
        await self._evaluated()
        return appended

    async def aclose(self) -> None:
        """Before the event loop ends: a server log's asyncio readers belong to this loop."""
        aclose = getattr(self.store, "aclose", None)
        if aclose is not None:
            await aclose()

    async def _read_page(self) -> list:
        """The events after the cursor, a page: on a server log through asyncio (``aread``), so
        the loop never waits on the network; a file is read in place (a local page is quicker
        than a thread hop)."""
        aread = getattr(self.store, "aread", None)
        if aread is not None:
            return await aread(after=self.cursor, limit=EVALUATE_PAGE)
        return self.store.read(after=self.cursor, limit=EVALUATE_PAGE)

    async def _fold(self, events: list) -> list:
        """Fold a page of events, yielding to the loop every YIELD_EVERY of them: a start-up
        re-fold of a long log must not starve the WATCHDOG=1 pings (or the HTTP server)."""
        transitions: list = []
        for i, event in enumerate(events, 1):
            # deadlines that passed before this event was recorded, exactly as audit does
            transitions += self.engine.tick(event.recorded_at)
            # An event of an earlier run is re-derived at the instant it was recorded, exactly as
            # audit does (a rules-loaded event re-read at a restart must judge staleness on the
            # log as it stood then, not at the restart). A new one at the time it is evaluated,
            # never before it was recorded: after the wall clock stepped back, the log's
            # recorded_at holds (it never decreases) and so does this.
            now = event.recorded_at if event.seq <= self._started_seq else max(self._now(), event.recorded_at)
            transitions += self.engine.feed(event, now=now)
            self.outbox.apply(event)
            self.cursor = event.seq
            if event.seq > self._started_seq:
                self._observe(event)
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return transitions

    def _observe(self, event) -> None:
        self.metrics.observe_event(event)
        if event.type in FACT_TYPES and event.type != SPEECH_RECORDED:
            self.metrics.rule_evaluations.inc(len(self.engine.by_series.get(event.payload.get("series"), ())))
        elif event.type == SPEECH_RECORDED:
            self.metrics.rule_evaluations.inc(len(self.engine.keywords))

    async def _evaluated(self) -> None:
        moment = self.now()
        self.health.last_evaluation = moment
        self._evaluated_mono = asyncio.get_running_loop().time()
        m = self.metrics
        m.evaluations.inc()
        m.last_evaluation.set(moment.timestamp())
        m.head_seq.set(self.cursor)
        m.outbox_depth.set(len(self.outbox.owed()))
        if self.writer.last_error is not None:       # delivery's own appends failed
            m.store_writable.set(0)
        if self.health.deadman_tripped:
            await self._deadman_cleared(moment)
        if self.systemd.enabled:                     # status_line reads the store's head
            self.systemd.notify(STATUS=self.status_line())

    def status_line(self) -> str:
        last = self.health.last_evaluation
        seq, digest = self.store.head()          # DESIGN: the head is published in STATUS=
        return (f"head seq {seq} ({digest[:12]}); {len(self.ruleset)} rules ({self.ruleset.hash[:12]}); "
                f"last evaluation {utc_text(last)[:19] + 'Z' if last else 'never'}; {self.health.reason}")

    def _set_ready(self, ready: bool, reason: str) -> None:
        self.health.ready, self.health.reason = ready, reason
        self.metrics.ready.set(1 if ready else 0)

    async def deliver(self, report: CycleReport) -> None:
        """Send what the outbox owes (watchdog.daemon.delivery), folding each round's outcomes back."""
        try:
            await self._deliver(report)
        except LeaseLost as exc:                 # an outcome refused: another replica leads
            self._depose(str(exc))

    async def _deliver(self, report: CycleReport) -> None:
        self.next_delivery_at = await Delivery(
            self.writer, self.outbox, self.notifiers, self.config, self.now, self.catchup_horizon,
            one_shot=self.one_shot, metrics=self.metrics,
            may_send=self.replica.may_send if self.replica is not None else None).deliver(report, self.evaluate)

    # ---- SIGHUP: reload ----
    def _on_sighup(self) -> None:
        if self._scheduler is None:                  # still folding the log: reload once started
            log.info("SIGHUP during start-up: reloading once the log is folded")
            self._reload_pending = True
            return
        log.info("SIGHUP: reloading config and rules")
        self._spawn(self.reload())

    async def reload(self) -> str:
        """Re-read config and rules. A valid set replaces the old one exactly as a restart would
        (``config-loaded``/``rules-loaded`` recorded, the engine warmed up on the new rules by
        folding that event, the outbox re-folded with the new routes); an invalid one is refused,
        recorded as ``reload-refused`` and the daemon keeps running on what it had.
        Returns ``applied``, ``unchanged`` or ``refused``."""
        if self.reload_config is None:
            return await self._refuse("this daemon was started without files to re-read")
        async with self._cycle_lock:
            try:
                new = self.reload_config()
            except (RuleError, ConfigError, OSError, ValueError) as exc:
                return await self._refuse(str(exc))
            # a PostgreSQL store's path is its URL for messages (no user): compare the URL itself
            if new.store_path != getattr(self.store, "url", getattr(self.store, "path", new.store_path)):
                return await self._refuse(f"[store].path changed to {new.store_path}: restart the daemon to "
                                          "switch event logs")
            result = await self._apply(new)
            report = CycleReport(transitions=await self.evaluate())
            await self.deliver(report)
        self.metrics.reloads.labels(result).inc()
        log.info("reload %s: %s", result, self.status_line())
        return result

    async def _refuse(self, reason: str) -> str:
        problems = reason.splitlines() or [reason]
        for line in problems:
            log.error("reload refused: %s", line)
        log.error("reload refused: still running rule set %s (%d rules)", self.ruleset.hash[:12], len(self.ruleset))
        # recorded within the payload bound (1 MB): a rule folder of thousands of broken files
        # still yields a reload-refused event, its problems cut and counted
        kept = [p if len(p) <= 2000 else p[:2000] + " …" for p in problems[:200]]
        if len(problems) > len(kept):
            kept.append(f"… and {len(problems) - len(kept)} more problems (see the log)")
        shown = reason if len(reason) <= 100_000 else reason[:100_000] + " …"
        await self._append([typed_event(RELOAD_REFUSED, f"reload-refused/{self._now()}/{os.getpid()}", ReloadRefused(
            reason=shown, problems=kept, kept_rules_hash=self.ruleset.hash,
            kept_config_hash=self.config_payload.hash))])
        self.metrics.reloads.labels("refused").inc()
        return "refused"

    async def _apply(self, new: Reloaded) -> str:
        old_config = self.config
        self.config, self.config_payload, self.notifiers = new.config, new.config_payload, new.notifiers
        self.ruleset, self.rule_paths = new.ruleset, new.rule_paths
        self.catchup_horizon = new.config.daemon.catchup_horizon
        config_changed = await self._record_if_changed(CONFIG_LOADED, new.config_payload)
        rules_changed = await self._record_if_changed(RULES_LOADED, _rules_payload(new.ruleset, new.rule_paths))
        if (old_config.routes, old_config.receivers) != (new.config.routes, new.config.receivers):
            self.outbox = await self._refold_outbox(self._new_outbox(new.config))
        if old_config.sources != new.config.sources:
            self._replace_sources(new.sources)
        if old_config.daemon != new.config.daemon and self._scheduler is not None:
            self._arm_heartbeat(self._scheduler)
        if old_config.http != new.config.http:
            log.warning("[http] changes take effect at the next restart")
        return "applied" if (config_changed or rules_changed) else "unchanged"

    async def _refold_outbox(self, outbox: Outbox) -> Outbox:
        """A new routing tree applies to the whole log, as it would after a restart."""
        for i, event in enumerate(iter_events(self.store), 1):
            if event.seq > self.cursor:
                break
            outbox.apply(event)
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return outbox

    def _replace_sources(self, sources: list) -> None:
        old = {s.name for s in self.sources}
        self.sources = sources
        if self._scheduler is None:
            return
        for name in old - {s.name for s in sources}:
            if self._scheduler.get_job(name) is not None:
                self._scheduler.remove_job(name)
        self._arm_catch_up(self._scheduler)          # new settings: poll each once now

    # ---- wall-clock steps and resumes ----
    async def _clock_watch(self) -> None:
        """APScheduler sleeps until run times computed on the wall clock: stepped back a day, it
        would poll nothing for a day; stepped forward (or resumed from suspend) it owes a
        catch-up. Compare wall and monotonic time every CLOCK_CHECK_EVERY and re-plan on a step."""
        self._clock_ref = (self.now(), self.monotonic())
        for tick in itertools.count(1):
            await asyncio.sleep(CLOCK_CHECK_EVERY)
            self.check_clock()
            if tick % STORE_PROBE_EVERY == 0:       # and: is the log file still ours?
                await self._probe_store()

    def check_clock(self) -> timedelta | None:
        """The wall-clock step since the last check (None: none). A step is logged, counted in
        /metrics, and every source polls at once as one catch-up batch, then evaluation ticks
        every deadline that has passed; jobs are re-planned from the new time."""
        wall, mono = self.now(), self.monotonic()
        previous, self._clock_ref = self._clock_ref, (wall, mono)
        if previous is None:
            return None
        step = (wall - previous[0]) - timedelta(seconds=mono - previous[1])
        if abs(step) < CLOCK_STEP:
            return None
        direction = "forward" if step > timedelta(0) else "backward"
        log.warning("wall clock stepped %s by %s (now %s): polling every source and evaluating now",
                    direction, _duration_text(abs(step)), utc_text(wall),
                    extra={"clock_step_seconds": step.total_seconds()})
        self.metrics.clock_steps.labels(direction).inc()
        self.metrics.clock_step_seconds.set(step.total_seconds())
        if self._scheduler is not None and not self._stopping:
            self._arm_catch_up(self._scheduler)
            self._arm_heartbeat(self._scheduler)
            if self.outbox is not None:
                self._arm_deadline(self._scheduler)
            self.wake()
        return step

    # ---- systemd watchdog and the deadman ----
    async def _watchdog_pings(self) -> None:
        """``WATCHDOG=1`` every WatchdogSec/2, sent only when the loop runs this task on time and
        the writer thread answers a probe: a hung loop or writer is restarted by systemd, while a
        late source or a full disk (the writer answers with an error) is not a reason to."""
        interval = self.systemd.watchdog_interval
        if not interval:
            return
        while True:
            if await self._writer_alive(timeout=interval):
                self.systemd.notify(WATCHDOG=1)
            await asyncio.sleep(interval)

    async def _writer_alive(self, timeout: float) -> bool:
        """An empty append queues behind whatever the writer has (FIFO) and returns at once when
        it gets its turn, without touching the disk."""
        try:
            await asyncio.wait_for(self.writer.append([]), timeout)
        except asyncio.TimeoutError:
            log.error("the event-log writer did not answer within %.1fs: withholding the watchdog ping", timeout)
            return False
        except Exception:                            # an answer, even an error, is progress
            pass
        return True

    async def _deadman(self) -> None:
        """A timer beside the engine (the engine cannot notice it is not being run)."""
        after = self.deadman_after
        period = min(max(after.total_seconds() / 10, 0.2), 30.0)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            last, since = self.health.last_evaluation, self._evaluated_mono
            # measured on the loop's monotonic clock: a wall-clock step is not silence
            if last is None or since is None or self.health.deadman_tripped:
                continue
            silent = timedelta(seconds=loop.time() - since)
            if silent <= self.deadman_after:
                continue
            self.health.deadman_tripped = True
            self._set_ready(False, f"deadman: no evaluation for {_duration_text(silent)}")
            log.error("deadman: no evaluation completed since %s (deadman_after = %s)", utc_text(last),
                      self.config.daemon.deadman_after, extra={"last_evaluation": utc_text(last)})
            self.systemd.notify(STATUS=self.status_line())
            # recorded in its own task: a hung writer must not hang the timer too
            self._spawn(self._append([typed_event(DEADMAN_TRIPPED, f"deadman-tripped/{utc_text(last)}", DeadmanTripped(
                last_evaluation=utc_text(last), deadman_after=str(self.config.daemon.deadman_after),
                detected_at=self._now()))]))
            self._spawn(self._tell_receivers(deadman_alert(
                "firing", self.now(), f"watchdog has completed no evaluation for {_duration_text(silent)} "
                                      f"(last at {utc_text(last)}): alerts may be missed")))

    async def _deadman_cleared(self, moment: datetime) -> None:
        self.health.deadman_tripped = False
        self._set_ready(True, "ready")
        log.warning("deadman cleared: evaluation completed again at %s", utc_text(moment))
        await self._append([typed_event(DEADMAN_CLEARED, f"deadman-cleared/{utc_text(moment)}",
                                        DeadmanCleared(evaluated_at=utc_text(moment)))])
        self._spawn(self._tell_receivers(deadman_alert(
            "resolved", moment, f"watchdog evaluates again (at {utc_text(moment)})")))

    async def _tell_receivers(self, alert: ToldAlert) -> None:
        """The deadman goes to every receiver directly, not through the outbox: the outbox needs
        the event log, which may be what is stuck. Best effort, once per trip and per clear."""
        what = alert.rule
        for name, notifier in list(self.notifiers.items()):
            try:
                result = await notifier.send(alert, key=f"{what}/{alert.state}/{alert.evaluated_at}/{name}")
                log.warning("%s %s told %s: %s", what, alert.state, name, result.outcome)
            except Exception as exc:             # a receiver's failure never stops the others
                log.error("%s %s: receiver %s failed: %s", what, alert.state, name, exc)


def knowledge_order(events: list[NewEvent]) -> list[NewEvent]:
    """Facts by ``published_at`` (a stable sort: a source's own order breaks ties), after the
    events that are not facts (a ``source-failed`` says what the poll could not read)."""
    others = [e for e in events if e.published_at is None]
    facts = [e for e in events if e.published_at is not None]
    return others + sorted(facts, key=lambda e: e.published_at)


def store_alert(at: datetime, reason: str) -> ToldAlert:
    """The lost event log as an alert, told to every receiver directly (no rule: no rule hash)."""
    return ToldAlert(rule="watchdog-store", rule_hash="", state="firing", severity="critical",
                     date=at.astimezone(NEW_YORK).date().isoformat(), value=None,
                     evaluated_at=utc_text(at), reason=reason, labels={"area": "watchdog"},
                     summary="watchdog cannot record: its event log file was deleted or replaced")


def deadman_alert(state: str, at: datetime, reason: str) -> ToldAlert:
    """The deadman as an alert the notifiers format like any other (no rule: no rule hash)."""
    return ToldAlert(rule="watchdog-deadman", rule_hash="", state=state, severity="critical",
                     date=at.astimezone(NEW_YORK).date().isoformat(), value=None,
                     evaluated_at=utc_text(at), reason=reason, labels={"area": "watchdog"},
                     summary=("watchdog is not evaluating its rules" if state == "firing"
                              else "watchdog is evaluating its rules again"))


def _duration_text(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _rules_payload(ruleset: RuleSet, paths: list[str]) -> RulesLoaded:
    return RulesLoaded(hash=ruleset.hash, paths=list(paths),
                       rules=[RuleText(id=r.id, hash=r.hash, text=r.canonical_text) for r in ruleset.all_rules])
