"""Time travel: the real daemon served through a window of real history on a simulated clock,
then compared with `watchdog replay` on the log it wrote.

Local stand-ins of the NY Fed, FRED and Fiscal Data APIs (demo/servers.py) serve the example
history, each fact from its real publication instant on the simulated clock. The daemon is the
one `watchdog run` runs: built by `watchdog.app.build_daemon` and driven by `Daemon.serve`, with
the default rules (rules/*.toml, staleness included) and a console receiver. In the middle of the
window it is stopped for a few days (stop event set, serve awaited), the clock moves on, and a new
daemon serves the same log: a downtime, and the catch-up after it.

The clock is freezegun's (``tick=False, real_asyncio=True``): ``datetime.now()``, ``time.time()``
and ``time.monotonic()`` seen by the daemon, APScheduler and the writer thread are simulated,
while the asyncio loop keeps real monotonic time (so awaits and socket I/O work). It is driven as
a discrete-event simulation: wait until the daemon is idle (no job running or due, no cycle in
progress, nothing queued for the writer, the log's head stable), move the clock to the earliest
job run time (or the next administered-rate announcement, or the phase end), ``daemon.wake()``,
repeat. No decision depends on wall-clock timing.

The administered rates (FOMC implementation notes: IORB, ON RRP and SRF rates; FRED's target
range) are served by no polled API. As the README says to do on FOMC days (`watchdog announce`),
an operator appends each one at its announcement instant, through its own store connection, beside
(or without) the running daemon; facts published before the window start are in the seed.

The comparison (``compare``):
  (a) the alert transitions the daemon recorded (alert-firing/-resolved/-flagged), observation
      date in the window, except those its rule-set load derived at the first start (warm-up of
      history before the window: cause_seq is the ``rules-loaded`` event; replay's counterparts
      of that state are dated before the window);
  (b) `watchdog replay --json --since FIRST --until LAST` on the same log;
  compared per rule as ordered sequences of (date, state, value): live in seq order (the order
  it knew them), replay in known_at order;
  (c) the notifications the daemon sent (notification-requested with a notification-sent
      outcome) against `watchdog replay --notify-dry-run --config C --json`, per group, as
      ordered sequences of (reason, alerts), each pair also compared in time.
Every difference is listed; those explained by the downtime are classified by ``explain_*``
with a named reason, and only the rest count in the figure line
``LIVE-REPLAY <window>: <n> transitions, <k> differences``.

    python -m tests.timetravel 2025-12-01 2025-12-31 [--down-days 4] [--keep DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import difflib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time as _time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:                     # `demo` is imported as a package from the repo
    sys.path.insert(0, str(REPO))

from demo import servers  # noqa: E402
from watchdog.timefmt import NEW_YORK, new_york, parse_utc, utc_text  # noqa: E402

EXAMPLE = REPO / "events.db.example"
RULES = REPO / "rules"
FRED_KEY_ENV = "WATCHDOG_TIMETRAVEL_FRED_KEY"
# Facts dated this many days before the window are served too: those published after its start
# (Friday's SOFR on Monday) are not in the seed, and a gap there would be a stale feed of the
# harness's making.
SERVE_BEFORE_DAYS = 14
# Announced administered rates: FOMC implementation notes (source fomc) and FRED's target range.
ANNOUNCED_FRED = ("fftarget_upper", "fftarget_lower")
# Live, a fact is polled at its publication plus a deterministic jitter of up to 30 s
# (schedule.jittered) and a re-arm gap; a notification that late against the dry run is on time.
POLL_JITTER = timedelta(seconds=31)
ALERT_TYPES = ("alert-firing", "alert-resolved", "alert-flagged")
HANG_AFTER_S = 300.0     # a guard against a hung daemon only: never a timing decision


class SimError(RuntimeError):
    """The simulation could not go on (a hung or broken daemon): says what it was waiting for."""


# ---- the window --------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    first: str                      # observation dates first..last (YYYY-MM-DD)
    last: str
    down_days: int = 4              # the downtime, in the middle of the window
    down_at: str = ""               # its first day (New York); default: the middle

    @property
    def name(self) -> str:
        return f"{self.first}..{self.last}"

    @property
    def start(self) -> datetime:
        """The daemon's first start: 00:00 New York on the first day."""
        return new_york(date.fromisoformat(self.first), 0, 0)

    @property
    def down_from(self) -> datetime:
        """The daemon is stopped at 12:00 New York on ``down_at`` (after the morning fixings)."""
        if self.down_at:
            day = date.fromisoformat(self.down_at)
        else:
            a, b = date.fromisoformat(self.first), date.fromisoformat(self.last)
            day = a + (b - a) / 2 - timedelta(days=self.down_days // 2)
        return new_york(day, 12, 0)

    @property
    def down_until(self) -> datetime:
        return self.down_from + timedelta(days=self.down_days)


def utc_now() -> datetime:
    """The simulated now (freezegun's, when frozen)."""
    return datetime.now(timezone.utc)


class SimPublication:
    """The stand-ins' publication clock: a fact is out once its ``published_at`` has passed on
    the simulated clock (demo.servers asks ``on_request`` and ``published``)."""

    def __init__(self) -> None:
        self.requests = 0

    def on_request(self) -> None:
        self.requests += 1

    def published(self, fact: servers.Fact) -> bool:
        return fact.published_at <= utc_text(utc_now())


# ---- the log: seed and announcements -----------------------------------------------------

def seed_log(db: Path, start: datetime, example: Path = EXAMPLE) -> int:
    """The example log as it stood at ``start``: every event published by then, recorded at
    ``start`` (a seed recorded at the real time would make the daemon tick every deadline up to
    today: it folds each event at its recorded_at)."""
    from watchdog.events import NewEvent
    from watchdog.store import SqliteEventStore
    cut = utc_text(start)
    src = sqlite3.connect(f"file:{example}?mode=ro", uri=True)
    rows = src.execute("SELECT type, key, published_at, payload FROM events WHERE published_at <= ? "
                       "ORDER BY seq", (cut,)).fetchall()
    src.close()
    store = SqliteEventStore(db, now=lambda: start)
    try:
        for i in range(0, len(rows), 5000):
            store.append([NewEvent(type=t, key=k, payload=json.loads(p), published_at=pub)
                          for t, k, pub, p in rows[i:i + 5000]])
    finally:
        store.close()
    return len(rows)


@dataclass(frozen=True)
class Announcement:
    published_at: str
    type: str
    key: str
    payload: dict


def announcements(start: datetime, end: datetime, example: Path = EXAMPLE) -> list[Announcement]:
    """The administered rates announced in (start, end], in publication order: what an operator
    records with `watchdog announce` when the FOMC announces (no polled API serves them)."""
    src = sqlite3.connect(f"file:{example}?mode=ro", uri=True)
    rows = src.execute(
        "SELECT published_at, type, key, payload FROM events WHERE type = 'observation-recorded' "
        "AND published_at > ? AND published_at <= ? AND (json_extract(payload, '$.source') = 'fomc' "
        "OR json_extract(payload, '$.series') IN (?, ?)) ORDER BY published_at, seq",
        (utc_text(start), utc_text(end), *ANNOUNCED_FRED)).fetchall()
    src.close()
    return [Announcement(pub, t, k, json.loads(p)) for pub, t, k, p in rows]


def served_history(window: Window, example: Path = EXAMPLE) -> dict[str, list[servers.Fact]]:
    first = (date.fromisoformat(window.first) - timedelta(days=SERVE_BEFORE_DAYS)).isoformat()
    return servers.load_history(example, first, window.last)


def sim_end(history: dict[str, list[servers.Fact]], window: Window) -> datetime:
    """Just after the last served fact is out (and polled: publication + jitter), so every fact
    dated in the window is in the log; not later, or the feeds would go stale for want of data
    the stand-ins do not have."""
    last = max((f.published_at for facts in history.values() for f in facts), default=utc_text(window.start))
    return max(parse_utc(last) + timedelta(minutes=2), window.down_until + timedelta(hours=1))


# ---- the daemon's config ---------------------------------------------------------------------

def write_config(work: Path, url: str, window: Window) -> Path:
    rules = ", ".join(json.dumps(str(p)) for p in sorted(RULES.glob("*.toml")))
    lookback = window.down_days + 10          # the catch-up after the downtime reaches back that far
    text = f"""# written by tests/timetravel.py: the real daemon against local stand-ins, simulated clock
[store]
path = {json.dumps(str(work / "events.db"))}
[rules]
paths = [{rules}]
[sources.nyfed]
base_url = "{url}"
rates = ["sofr", "tgcr", "bgcr", "effr"]
operations = false
lookback_days = {lookback}
retries = 0
[sources.fred]
base_url = "{url}"
csv_base_url = "{url}"
api_key_env = "{FRED_KEY_ENV}"
series = {{ reserves = "WRESBAL", onrrp = "RRPONTSYD" }}
first_release = []
lookback_days = {lookback}
retries = 0
[sources.fiscaldata]
base_url = "{url}"
lookback_days = {lookback}
retries = 0
[receivers.screen]
type = "console"
[[routes]]
receivers = ["screen"]
group_by = ["rule"]
[daemon]
catchup_horizon = "3d"
evaluate_every = "6h"
deadman_after = "30d"
[http]
enabled = false
"""
    path = work / "watchdog.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---- driving the daemon -------------------------------------------------------------------

class JobTracker:
    """APScheduler's own job events (public listener API): how many job runs are in flight, and
    any job the scheduler skipped or that raised (a daemon bug the harness must not hide)."""

    def __init__(self, scheduler) -> None:
        from apscheduler.events import (
            EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED,
            EVENT_JOB_SUBMITTED,
        )
        self.codes = {EVENT_JOB_SUBMITTED: "submitted", EVENT_JOB_EXECUTED: "executed",
                      EVENT_JOB_ERROR: "error", EVENT_JOB_MAX_INSTANCES: "skipped",
                      EVENT_JOB_MISSED: "missed"}
        self.submitted = self.finished = 0
        self.problems: list[str] = []
        self.runs: dict[str, int] = defaultdict(int)
        mask = 0
        for code in self.codes:
            mask |= code
        scheduler.add_listener(self, mask)

    def __call__(self, event) -> None:
        kind = self.codes.get(event.code, "")
        if kind == "submitted":
            self.submitted += 1
            self.runs[event.job_id] += 1
        elif kind in ("executed", "error"):
            self.finished += 1
            if kind == "error":
                self.problems.append(f"{utc_text(utc_now())}: job {event.job_id} raised {event.exception!r}")
        else:
            self.problems.append(f"{utc_text(utc_now())}: job {event.job_id} {kind} by APScheduler")

    @property
    def running(self) -> int:
        return self.submitted - self.finished


def busy(daemon, tracker: JobTracker) -> str:
    """Why the daemon is not idle now ('' when it is, as far as its state says)."""
    scheduler = daemon._scheduler
    if scheduler is None:
        return "starting"
    if tracker.running:
        return f"{tracker.running} job run(s) in flight"
    if daemon._cycle_lock.locked():
        return "a cycle holds the lock"
    now = utc_now()
    due = [j.id for j in scheduler.get_jobs() if j.next_run_time is not None and j.next_run_time <= now]
    if due:
        return f"jobs due and not yet run: {', '.join(due)}"
    if not daemon.writer._queue.empty():
        return "appends queued for the writer"
    return ""


async def wait_idle(daemon, tracker: JobTracker, task: asyncio.Task) -> None:
    """Until the daemon is idle: nothing running, due or queued, and the log's head unchanged
    over a few turns of the loop (the writer thread commits in real time)."""
    started = _real_monotonic()
    stable, head = 0, None
    while True:
        if task.done():
            exc = task.exception()
            raise SimError(f"the daemon's serve() ended early: {exc!r}") from exc
        why = busy(daemon, tracker)
        if why:
            stable, head = 0, None
        else:
            now_head = daemon.store.head()
            stable = stable + 1 if now_head == head else 0
            head = now_head
            if stable >= 3:
                return
        if _real_monotonic() - started > HANG_AFTER_S:
            raise SimError(f"daemon not idle after {HANG_AFTER_S:.0f} s of real time at "
                           f"{utc_text(utc_now())}: {why or 'the log head kept moving'}")
        await asyncio.sleep(0.001 if why else 0)


def _real_monotonic() -> float:
    """The real monotonic clock even while frozen (freezegun keeps the original)."""
    try:
        from freezegun.api import real_monotonic
        return real_monotonic()
    except ImportError:                   # pragma: no cover
        return _time.monotonic()


@dataclass
class Phase:
    """One daemon process: from its start to its stop."""
    started: datetime
    stopped: datetime | None = None
    steps: int = 0
    runs: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)


class Operator:
    """Appends the announced administered rates at their instants, through its own store
    connection (as `watchdog announce` does beside a running daemon)."""

    def __init__(self, db: Path, pending: list[Announcement]):
        self.db, self.pending = db, list(pending)
        self.appended = 0

    def next_at(self) -> datetime | None:
        return parse_utc(self.pending[0].published_at) if self.pending else None

    def append_due(self) -> int:
        from watchdog.events import NewEvent
        from watchdog.store import SqliteEventStore
        now = utc_text(utc_now())
        due = [a for a in self.pending if a.published_at <= now]
        if not due:
            return 0
        self.pending = self.pending[len(due):]
        store = SqliteEventStore(self.db)         # recorded_at: the simulated now
        try:
            store.append([NewEvent(type=a.type, key=a.key, payload=a.payload, published_at=a.published_at)
                          for a in due])
        finally:
            store.close()
        self.appended += len(due)
        return len(due)


@dataclass
class Run:
    window: Window
    work: Path
    db: Path
    config: Path
    start: datetime
    end: datetime
    seeded: int
    phases: list[Phase]
    console: list[str]
    requests: int
    announced: int
    real_seconds: float


class ConsoleTap(io.TextIOBase):
    """Stands in for the console receiver's stdout: keeps every line, stamped with sim time."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._part = ""

    def write(self, text: str) -> int:
        self._part += text
        while "\n" in self._part:
            line, self._part = self._part.split("\n", 1)
            self.lines.append(f"{utc_text(utc_now())[:19]}Z {line}")
        return len(text)


async def serve_phase(config, db: Path, until: datetime, frozen, operator: Operator,
                      tap: ConsoleTap, env: dict) -> Phase:
    """Build a daemon as `watchdog run` does, serve it until ``until`` on the simulated clock,
    stop it (stop event, serve awaited) and close it."""
    from watchdog.app import build_daemon, close_daemon
    from watchdog.notify.console import ConsoleNotifier
    phase = Phase(started=utc_now())
    operator.append_due()
    daemon = build_daemon(config, db=str(db), rule_paths=[str(RULES)], env=env, http=False)
    for notifier in daemon.notifiers.values():
        if isinstance(notifier, ConsoleNotifier):
            notifier.stream = tap
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.serve(stop))
    try:
        started = _real_monotonic()
        while daemon._scheduler is None:           # start(): the log folded, then the scheduler
            if task.done():
                exc = task.exception()
                raise SimError(f"the daemon's serve() ended during start-up: {exc!r}") from exc
            if _real_monotonic() - started > HANG_AFTER_S:
                raise SimError("the daemon did not finish starting")
            await asyncio.sleep(0.005)
        tracker = JobTracker(daemon._scheduler)
        while True:
            await wait_idle(daemon, tracker, task)
            now = utc_now()
            times = [j.next_run_time for j in daemon._scheduler.get_jobs() if j.next_run_time is not None]
            announced = operator.next_at()
            nxt = min([t for t in [*times, announced] if t is not None], default=until)
            if nxt >= until:
                break
            if nxt > now:
                frozen.move_to(nxt)
            operator.append_due()
            daemon.wake()
            phase.steps += 1
            await asyncio.sleep(0)               # the wake-up runs on the loop's next turn
        frozen.move_to(until)
        operator.append_due()
        phase.problems = list(tracker.problems)
        phase.runs = dict(tracker.runs)
    finally:
        stop.set()
        try:
            await task
        finally:
            close_daemon(daemon)
    phase.stopped = utc_now()
    return phase


async def run_window(window: Window, work: Path, log=print) -> Run:
    """Seed, serve the window with a downtime in the middle, and return where it all is."""
    from freezegun import freeze_time
    from watchdog.app import resolve_config
    work.mkdir(parents=True, exist_ok=True)
    db = work / "events.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    began = _real_monotonic()
    history = served_history(window)
    end = sim_end(history, window)
    seeded = seed_log(db, window.start)
    publication = SimPublication()
    operator = Operator(db, announcements(window.start, end))
    tap = ConsoleTap()
    env = {FRED_KEY_ENV: "timetravel-placeholder"}
    runner, url, _fake = await servers.start(history, publication)
    try:
        config_path = write_config(work, url, window)
        config = resolve_config(str(config_path))
        with freeze_time(window.start, tick=False, real_asyncio=True) as frozen:
            first = await serve_phase(config, db, window.down_from, frozen, operator, tap, env)
            frozen.move_to(window.down_until)
            operator.append_due()
            second = await serve_phase(config, db, end, frozen, operator, tap, env)
    finally:
        await runner.cleanup()
    return Run(window, work, db, config_path, window.start, end, seeded, [first, second], tap.lines,
               publication.requests, operator.appended, _real_monotonic() - began)
