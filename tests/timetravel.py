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
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:                     # `demo` is imported as a package from the repo
    sys.path.insert(0, str(REPO))

from demo import servers  # noqa: E402
from watchdog.model.timefmt import new_york, parse_utc, utc_text  # noqa: E402

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


@contextmanager
def fold_preserving_freezegun():
    """freezegun 1.5.5 loses ``fold`` when it makes a FakeDatetime (``datetime_to_fakedatetime``
    copies the fields but not ``fold``, and ``FakeDatetime.now(tz)`` adds a zero tz_offset, which
    resets it). In New York's repeated hour after the autumn clock change (06:00-07:00 UTC) every
    ``datetime.now(NEW_YORK)`` and ``astimezone(NEW_YORK)`` is then an hour early: APScheduler
    (timezone America/New_York) sees the jobs due at 06:00 UTC as an hour ahead, computes a
    one-hour wait in real seconds, and the simulated clock never gets there. These replacements
    keep ``fold`` (the real datetime does) for the duration of the run."""
    import freezegun.api as api
    saved = (api.datetime_to_fakedatetime, api.FakeDatetime.__dict__["now"])

    def to_fake(moment):
        return api.FakeDatetime(moment.year, moment.month, moment.day, moment.hour, moment.minute,
                                moment.second, moment.microsecond, moment.tzinfo, fold=moment.fold)

    def now(cls, tz=None):
        frozen = cls._time_to_freeze() or api.real_datetime.now()
        offset = cls._tz_offset()
        if tz:
            result = tz.fromutc(frozen.replace(tzinfo=tz))
            return to_fake(result + offset if offset else result)
        return to_fake(frozen + offset)

    api.datetime_to_fakedatetime = to_fake
    api.FakeDatetime.now = classmethod(now)
    try:
        yield
    finally:
        api.datetime_to_fakedatetime = saved[0]
        api.FakeDatetime.now = saved[1]


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
    from watchdog.model.events import NewEvent
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
repeat_interval = "1d"
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

    def advance(self, frozen, until: datetime) -> None:
        """While no daemon runs: the clock moves to ``until``, announcing on the way."""
        while (at := self.next_at()) is not None and at < until:
            frozen.move_to(at)
            self.append_due()
        frozen.move_to(until)
        self.append_due()

    def append_due(self) -> int:
        from watchdog.model.events import NewEvent
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
        unarmed: set[str] = set()
        while True:
            await wait_idle(daemon, tracker, task)
            now = utc_now()
            jobs = {j.id: j for j in daemon._scheduler.get_jobs()}
            for source in daemon.sources:          # a source with no poll armed never polls again
                if source.name not in jobs and "catch-up" not in jobs and source.name not in unarmed:
                    unarmed.add(source.name)
                    tracker.problems.append(f"{utc_text(now)}: source {source.name} has no poll scheduled")
            times = [j.next_run_time for j in jobs.values() if j.next_run_time is not None]
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
        operator.advance(frozen, until)
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
        with fold_preserving_freezegun(), freeze_time(window.start, tick=False, real_asyncio=True) as frozen:
            log(f"serving {window.name} from {_short(window.start)} (log seeded with {seeded} "
                f"events), down {_short(window.down_from)} .. {_short(window.down_until)}, to {_short(end)}")
            first = await serve_phase(config, db, window.down_from, frozen, operator, tap, env)
            operator.advance(frozen, window.down_until)
            second = await serve_phase(config, db, end, frozen, operator, tap, env)
    finally:
        await runner.cleanup()
    return Run(window, work, db, config_path, window.start, end, seeded, [first, second], tap.lines,
               publication.requests, operator.appended, _real_monotonic() - began)


# ---- what each side says ----------------------------------------------------------------------

@dataclass(frozen=True)
class Transition:
    rule: str
    date: str
    state: str
    value: str | None           # normalised decimal text
    at: str                     # live: evaluated_at; replay: known_at
    reason: str = ""
    seq: int = 0                # live only
    recorded_at: str = ""       # live only
    cause_seq: int = 0          # live only

    @property
    def row(self) -> tuple:
        return (self.date, self.state, self.value)

    def text(self) -> str:
        where = f"seq {self.seq}, evaluated {self.at[:19]}Z, recorded {self.recorded_at[:19]}Z" if self.seq \
            else f"known {self.at[:19]}Z"
        return f"{self.state} {self.date} value {self.value} ({where}; {self.reason[:90]})"


@dataclass(frozen=True)
class Note:
    """One notification: a flush of one group."""
    group: str
    reason: str
    alerts: tuple               # ((rule, state, date), ...) sorted
    at: str                     # decided (live: requested_at; dry run: its instant)
    flush: int
    sent_at: str = ""           # live: notification-sent's instant ('' = never sent)

    @property
    def content(self) -> tuple:
        return (self.reason, self.alerts)

    def text(self) -> str:
        what = ", ".join(f"{r} {s} {d}" for r, s, d in self.alerts)
        sent = "" if not self.sent_at or self.sent_at == self.at else f", sent {self.sent_at[:19]}Z"
        return f"{self.at[:19]}Z flush {self.flush} ({self.reason}): {what}{sent}"


def norm_value(value) -> str | None:
    """A value as `replay --json` can state it: a JSON number is a double, so the log's exact
    decimals (28 digits for a ratio) are compared at double precision (the texts show both)."""
    if value is None:
        return None
    return format(Decimal(repr(float(Decimal(str(value))))).normalize(), "f")


def live_events(db: Path, after: int):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT seq, type, key, published_at, recorded_at, payload FROM events "
                            "WHERE seq > ? ORDER BY seq", (after,)).fetchall()
    finally:
        conn.close()


@dataclass
class LiveLog:
    transitions: list[Transition]           # every alert transition the daemon recorded
    notes: list[Note]                       # every flush it requested (with its sent instant)
    warm_up: set[tuple]                     # (rule, state, date, at) derived by a rule-set load
    suppressed: list[dict]                  # notification-suppressed payloads
    load_seqs: dict[int, str]               # rules-loaded events: seq -> recorded_at
    facts: list[tuple]                      # (series, date, published_at, recorded_at)


def read_live(db: Path, seeded: int) -> LiveLog:
    rows = live_events(db, seeded)
    transitions, notes, suppressed, facts = [], [], [], []
    load_seqs: dict[int, str] = {}
    instance_alert: dict[str, tuple] = {}           # firing/flagged instance -> (rule, state, date)
    firing_instance: dict[str, str] = {}            # rule -> its current firing instance
    resolved_of: dict[str, tuple] = {}              # firing instance -> the resolve's (rule, state, date)
    sent: dict[str, str] = {}
    requested = []
    for seq, type_, key, published_at, recorded_at, text in rows:
        p = json.loads(text)
        if type_ == "rules-loaded":
            load_seqs[seq] = recorded_at
        elif type_ in ALERT_TYPES:
            t = Transition(p["rule"], p["date"], p["state"], norm_value(p.get("value")), p["evaluated_at"],
                           p.get("reason", ""), seq, recorded_at, int(p.get("cause_seq") or 0))
            transitions.append(t)
            alert = (p["rule"], p["state"], p["date"])
            if p["state"] == "firing":
                instance = f"{p['rule']}@{p['evaluated_at']}"
                instance_alert[instance] = alert
                firing_instance[p["rule"]] = instance
            elif p["state"] == "resolved":
                if p["rule"] in firing_instance:
                    resolved_of[firing_instance.pop(p["rule"])] = alert
            else:
                instance_alert[key] = alert
        elif type_ == "notification-requested" and "flush" in p:
            alerts = [instance_alert.get(i, (i.split("@")[0], "firing?", "")) for i in p.get("firing", [])]
            alerts += [resolved_of.get(i, (i.split("@")[0], "resolved?", "")) for i in p.get("resolved", [])]
            alerts += [instance_alert.get(i, (i, "flagged?", "")) for i in p.get("flagged", [])]
            # short episodes (fired and resolved before any flush): told as their resolve
            alerts += [resolved_of.get(i, (i.split("@")[0], "episode?", "")) for i in p.get("episodes", [])]
            requested.append((p["group"], p["reason"], tuple(sorted(alerts)), p["requested_at"], int(p["flush"])))
        elif type_ == "notification-sent" and "group" in p and "flush" in p:
            sent[f"{p['group']}/{p['flush']}"] = p.get("sent_at") or recorded_at
        elif type_ == "notification-suppressed":
            suppressed.append(p)
        elif type_.startswith("observation-"):
            facts.append((p["series"], p["date"], published_at, recorded_at))
    for group, reason, alerts, at, flush in requested:
        notes.append(Note(group, reason, alerts, at, flush, sent.get(f"{group}/{flush}", "")))
    # derived when a rules-loaded event was folded at the instant it was recorded: the warm-up of
    # a start (a re-fold of the same event by a later start is not a warm-up)
    warm_up = {(t.rule, t.state, t.date, t.at) for t in transitions if load_seqs.get(t.cause_seq) == t.at}
    return LiveLog(transitions, notes, warm_up, suppressed, load_seqs, facts)


def watchdog_cli(*args: str) -> list[str]:
    """`watchdog ...` as a subprocess (the CLI a user runs); its stdout lines."""
    proc = subprocess.run([sys.executable, "-m", "watchdog", *args], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONUTF8": "1"})
    if proc.returncode != 0:
        raise SimError(f"watchdog {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return [line for line in proc.stdout.splitlines() if line.strip()]


def read_replay(run: Run) -> list[Transition]:
    lines = watchdog_cli("replay", "--db", str(run.db), "--rules", str(RULES), "--json",
                         "--since", run.window.first, "--until", run.window.last)
    out = []
    for line in lines:
        p = json.loads(line)
        out.append(Transition(p["rule"], p["date"], p["state"], norm_value(p.get("value")), p["known_at"],
                              p.get("reason") or ""))
    return out


def read_dry_run(run: Run) -> list[Note]:
    lines = watchdog_cli("replay", "--db", str(run.db), "--rules", str(RULES), "--notify-dry-run",
                         "--config", str(run.config), "--json")
    out = []
    for line in lines:
        p = json.loads(line)
        alerts = tuple(sorted((a["rule"], a["state"], a["date"]) for a in p["alerts"]))
        out.append(Note(p["group"], p["reason"], alerts, p["at"], int(p["flush"])))
    return out


# ---- the comparison ---------------------------------------------------------------------------

@dataclass
class Difference:
    what: str                   # "transition" | "notification"
    key: str                    # the rule, or the group
    kind: str                   # "live only" | "replay only" | "changed" | "late" | "not sent"
    text: str
    explained: str = ""         # a named reason (explain_*), or "" = a difference
    live: object = None
    other: object = None

    def line(self) -> str:
        tag = f"[{self.explained}] " if self.explained else ""
        return f"  {tag}{self.what} {self.key}: {self.kind}: {self.text}"


@dataclass
class Context:
    """What the explanations may use: the run's instants and the live log."""
    run: Run
    live: LiveLog
    ruleset: object
    config: object

    @property
    def down_from(self) -> str:
        return utc_text(self.run.window.down_from)

    @property
    def down_until(self) -> str:
        return utc_text(self.run.window.down_until)

    def latest_before_down(self, series: str) -> str | None:
        """The newest date of ``series`` the log had recorded when the daemon stopped."""
        dates = [d for s, d, _, rec in self.live.facts if s == series and rec <= self.down_from]
        seed = _seed_latest(self.run, series)
        return max([*dates, *([seed] if seed else [])], default=None)


def _seed_latest(run: Run, series: str) -> str | None:
    conn = sqlite3.connect(f"file:{run.db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT max(json_extract(payload, '$.date')) FROM events WHERE seq <= ? AND "
                           "type LIKE 'observation-%' AND json_extract(payload, '$.series') = ?",
                           (run.seeded, series)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def check_facts(run: Run, history: dict[str, list[servers.Fact]], example: Path = EXAMPLE) -> list[Difference]:
    """Replay runs on the log the daemon wrote, so a fact it failed to record would go unseen by
    the comparison: every fact the stand-ins published by the end must be in the log, with the
    example's value and publication instant."""
    want = {f"obs/{f.series}/{f.date}": f for facts in history.values() for f in facts
            if f.published_at <= utc_text(run.end)}
    src = sqlite3.connect(f"file:{example}?mode=ro", uri=True)
    dst = sqlite3.connect(f"file:{run.db}?mode=ro", uri=True)
    out = []
    try:
        for key, fact in sorted(want.items()):
            ref = src.execute("SELECT published_at, json_extract(payload, '$.value') FROM events WHERE key = ?",
                              (key,)).fetchone()
            got = dst.execute("SELECT published_at, json_extract(payload, '$.value') FROM events WHERE key = ?",
                              (key,)).fetchone()
            if got is None:
                out.append(Difference("fact", fact.series, "not recorded",
                                      f"{fact.date} (published {fact.published_at[:19]}Z) is not in the log"))
            elif ref is not None and tuple(got) != tuple(ref):
                out.append(Difference("fact", fact.series, "changed",
                                      f"{fact.date}: log has {got[1]} published {got[0][:19]}Z, the history "
                                      f"{ref[1]} published {ref[0][:19]}Z"))
    finally:
        src.close()
        dst.close()
    return out


def check_clock(run: Run) -> None:
    """Every event the run appended was stamped on the simulated clock (a writer thread or a store
    reading the real clock would make the whole comparison meaningless)."""
    conn = sqlite3.connect(f"file:{run.db}?mode=ro", uri=True)
    try:
        lo, hi, n = conn.execute("SELECT min(recorded_at), max(recorded_at), count(*) FROM events WHERE seq > ?",
                                 (run.seeded,)).fetchone()
    finally:
        conn.close()
    if n and (lo < utc_text(run.start) or hi > utc_text(run.end)):
        raise SimError(f"events recorded at {lo} .. {hi}, outside the simulated {utc_text(run.start)} .. "
                       f"{utc_text(run.end)}: the simulated clock did not reach every writer")


def explain_transition(d: Difference, ctx: Context) -> str:
    """The named catch-up reason for a transition difference, or '' (unexplained).

    ``stale-while-down``: a staleness rule fired, live only, for a value that fell due while the
    daemon was down (its deadline, publication + grace, inside the downtime), with the number of
    business days late counted from the last value the log had when the daemon stopped; or the
    resolve of such a firing, recorded by the restarted daemon. A stale feed is what a daemon that
    was not polling rightly reports; replay saw every fact on time."""
    from watchdog.market.calendar import business_days_between
    from watchdog.market.series import SERIES, nominal_publication
    rule = ctx.ruleset.by_id.get(d.key)
    t = d.live
    if d.kind != "live only" or t is None or getattr(rule, "KIND", "") != "staleness":
        return ""
    if t.recorded_at < ctx.down_until:                       # not derived by the restarted daemon
        return ""
    if t.state == "firing":
        due = utc_text(nominal_publication(rule.series, date.fromisoformat(t.date)) + rule.grace_period)
        last = ctx.latest_before_down(rule.series)
        if not (ctx.down_from <= due <= ctx.down_until) or last is None:
            return ""
        late = business_days_between(SERIES[rule.series].calendar, date.fromisoformat(last),
                                     date.fromisoformat(t.date))
        return "stale-while-down" if t.value == str(late) else ""
    if t.state == "resolved":
        # the value arrived in the restart's catch-up, ending an episode the restarted daemon
        # began for a value that fell due while it was down (however it worded that firing)
        before = [x for x in ctx.live.transitions if x.rule == t.rule and x.seq < t.seq]
        settle = utc_text(ctx.run.window.down_until + RESTART_SETTLE)
        if before and before[-1].state == "firing" and ctx.down_until <= before[-1].recorded_at \
                and t.recorded_at <= settle and t.value == "0":
            fired = before[-1]
            due = utc_text(nominal_publication(rule.series, date.fromisoformat(fired.date)) + rule.grace_period)
            return "stale-while-down" if ctx.down_from <= due <= ctx.down_until else ""
    return ""


def _repeat_interval(ctx: Context) -> timedelta:
    return max(r.repeat_interval for r in ctx.config.routes)     # Durations, parsed at load


def compare_transitions(live: list[Transition], replay: list[Transition]) -> list[Difference]:
    """Per rule, the ordered sequences of (date, state, value): every insertion, deletion and
    change (difflib's alignment)."""
    out: list[Difference] = []
    rules = sorted({t.rule for t in live} | {t.rule for t in replay})
    for rule in rules:
        a = [t for t in live if t.rule == rule]
        b = [t for t in replay if t.rule == rule]
        matcher = difflib.SequenceMatcher(None, [t.row for t in a], [t.row for t in b], autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            pairs = list(zip(a[i1:i2], b[j1:j2])) if op == "replace" else []
            for x, y in pairs:
                out.append(Difference("transition", rule, "changed", f"live {x.text()} / replay {y.text()}",
                                      live=x, other=y))
            for x in a[i1 + len(pairs):i2]:
                out.append(Difference("transition", rule, "live only", x.text(), live=x))
            for y in b[j1 + len(pairs):j2]:
                out.append(Difference("transition", rule, "replay only", y.text(), other=y))
    return out


# The named reasons a difference may be explained by (explain_transition, explain_notification).
EXPLAINED_REASONS = ("stale-while-down", "daemon-down", "told-at-restart", "repeat-phase-after-downtime")
RESTART_SETTLE = timedelta(minutes=10)     # the restarted daemon's catch-up and first flushes
MATCH_WITHIN = timedelta(seconds=1)        # re-arm gaps and the writer's clock reads


def _seconds(a: str, b: str) -> float:
    return (parse_utc(a) - parse_utc(b)).total_seconds()


def align(live: list[Note], dry: list[Note], max_offset: timedelta) -> list[tuple[Note | None, Note | None]]:
    """Align one group's notifications (each side in time order): equal (reason, alerts) may pair
    when at most ``max_offset`` apart, nearer pairs preferred; the rest are gaps. Minimum-cost
    alignment (gap 1, pair < 1 growing with the time between them)."""
    n, m = len(live), len(dry)
    span = max_offset.total_seconds()
    inf = float("inf")

    def pair_cost(x: Note, y: Note) -> float:
        if x.content != y.content:
            return inf
        off = abs(_seconds(x.at, y.at))
        return inf if off > span else 0.9 * off / span

    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = float(i)
    for j in range(1, m + 1):
        cost[0][j] = float(j)
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + pair_cost(live[i - 1], dry[j - 1]))
    out: list[tuple[Note | None, Note | None]] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + pair_cost(live[i - 1], dry[j - 1]):
            out.append((live[i - 1], dry[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            out.append((live[i - 1], None))
            i -= 1
        else:
            out.append((None, dry[j - 1]))
            j -= 1
    return out[::-1]


@dataclass
class NoteComparison:
    differences: list[Difference]
    compared_live: int
    compared_dry: int
    warm_up: int                 # flushes about episodes dated before the window (both sides)
    after_cut: int               # live flushes after the dry run's last instant
    pairs: int


def compare_notifications(ctx: Context, dry_all: list[Note], replay: list[Transition]) -> NoteComparison:
    """The daemon's flushes against the dry run's, per group, from the window start to the dry
    run's last transition (`--notify-dry-run` runs no group timer after it)."""
    run, live_log = ctx.run, ctx.live
    start = utc_text(run.start)
    cut = max((t.at for t in replay), default=start)
    first = run.window.first
    warm_instances = {(r, s, d) for r, s, d, _ in live_log.warm_up if s == "firing"}

    def warm(note: Note) -> bool:
        # about episodes dated before the window (as the transitions compared are), such as
        # those already firing when the daemon first started: the daemon tells them at its start
        # (their state at the rule-set load), the dry run reminds of them on its own schedule
        firing = [a for a in note.alerts if a[1] == "firing"]
        return bool(firing) and all(a[2] < first or a in warm_instances for a in firing)

    latency: dict[tuple, float] = {}
    known = {(t.rule, t.state, t.date): t.at for t in replay}
    for t in live_log.transitions:
        if (t.rule, t.state, t.date) in known:
            latency[(t.rule, t.state, t.date)] = _seconds(t.at, known[(t.rule, t.state, t.date)])

    slack = POLL_JITTER + timedelta(minutes=30)      # FRED and Fiscal Data: polled every 30 min
    live_notes = [x for x in live_log.notes if x.at >= start]
    dry_notes = [x for x in dry_all if x.at >= start and x.at <= cut]
    warm_count = sum(warm(x) for x in live_notes) + sum(warm(x) for x in dry_notes)
    live_notes = [x for x in live_notes if not warm(x)]
    dry_notes = [x for x in dry_notes if not warm(x)]
    live_notes = [x for x in live_notes if x.at <= utc_text(parse_utc(cut) + slack)]
    after_cut = 0        # live flushes after the cut with no counterpart: the dry run stopped first
    groups = sorted({x.group for x in live_notes} | {x.group for x in dry_notes})
    out: list[Difference] = []
    pairs = 0
    max_offset = run.window.down_until - run.window.down_from + timedelta(days=1)
    for group in groups:
        mine = [x for x in live_notes if x.group == group]
        theirs = [x for x in dry_notes if x.group == group]
        previous_offset = None
        for x, y in align(mine, theirs, max_offset):
            label = group.split("/", 2)[-1]
            if x is not None and y is not None:
                pairs += 1
                offset = _seconds(x.at, y.at)
                lat = [latency[a] for a in x.alerts if a in latency] + [0.0]
                if previous_offset is not None:
                    lat.append(previous_offset)
                previous_offset = offset
                if not any(abs(offset - c) <= MATCH_WITHIN.total_seconds() for c in lat):
                    out.append(Difference("notification", label, "late",
                                          f"live {x.text()} / dry run {y.at[:19]}Z ({offset:+.0f} s; "
                                          f"the alerts' own knowledge delays: "
                                          f"{', '.join(f'{c:+.0f} s' for c in sorted(set(lat)))})",
                                          live=x, other=y))
                if x.at <= cut and not x.sent_at:
                    out.append(Difference("notification", label, "not sent", x.text(), live=x))
            elif x is not None and x.at > cut:
                after_cut += 1
            elif x is not None:
                out.append(Difference("notification", label, "live only", x.text(), live=x))
            else:
                out.append(Difference("notification", label, "replay only", f"dry run {y.text()}", other=y))
    return NoteComparison(out, len(live_notes) - after_cut, len(dry_notes), warm_count, after_cut, pairs)


def explain_notification(d: Difference, ctx: Context, transition_diffs: list[Difference]) -> str:
    """The named catch-up reason for a notification difference, or '' (unexplained).

    ``daemon-down``: the dry run notifies at an instant the daemon was stopped; nothing could be
    sent then (what it said is told at restart, or suppressed as catch-up, below).
    ``told-at-restart``: the restarted daemon sends, in its catch-up, what became owed while it
    was down (news of the downtime, or a reminder whose repeat_interval ran out meanwhile),
    about alerts that are the replay's own or explained transitions.
    ``repeat-phase-after-downtime``: a reminder of a group whose reminder schedule the restart
    reset (it sent at restart): its time, or one reminder more or fewer before the episode ends."""
    down_from, down_until = ctx.down_from, ctx.down_until
    settle = utc_text(ctx.run.window.down_until + RESTART_SETTLE)
    live, dry = d.live, d.other
    if d.kind == "replay only" and down_from <= dry.at < down_until:
        return "daemon-down"
    unexplained = {(t.live.rule, t.live.state, t.live.date) for t in transition_diffs
                   if t.live is not None and not t.explained}
    if live is not None and down_until <= live.at <= settle and not any(a in unexplained for a in live.alerts):
        if d.kind == "live only":
            return "told-at-restart"
        # paired with what the dry run said while the daemon was down, or (a reminder sent at
        # restart) with the dry run's next reminder, which the restart's one stands for
        repeat = utc_text(ctx.run.window.down_until + _repeat_interval(ctx))
        if d.kind == "late" and dry is not None and down_from <= dry.at <= repeat:
            return "told-at-restart"
    note = live or dry
    if note.reason == "repeat-interval" and note.at > settle:
        restarted = [x for x in ctx.live.notes if x.group == note.group and down_until <= x.at <= settle]
        firing = {a for a in note.alerts if a[1] == "firing"}
        if any(firing <= set(x.alerts) for x in restarted) and d.kind in ("late", "live only", "replay only"):
            return "repeat-phase-after-downtime"
    return ""


# ---- the report ------------------------------------------------------------------------------

@dataclass
class Report:
    run: Run
    live_compared: list[Transition]
    replay: list[Transition]
    excluded_warm_up: list[Transition]
    excluded_outside: int
    transitions: list[Difference]
    notes: NoteComparison
    live: LiveLog
    real_seconds: float = 0.0

    @property
    def caught_up(self) -> int:
        """Facts published while the daemon was down and recorded by the restarted one."""
        w = self.run.window
        down_from, down_until = utc_text(w.down_from), utc_text(w.down_until)
        return sum(1 for _, _, published, recorded in self.live.facts
                   if down_from <= published < down_until and recorded >= down_until)

    @property
    def differences(self) -> list[Difference]:
        return self.transitions + self.notes.differences

    @property
    def explained(self) -> list[Difference]:
        return [d for d in self.differences if d.explained]

    @property
    def unexplained(self) -> list[Difference]:
        return [d for d in self.differences if not d.explained]

    @property
    def figure(self) -> str:
        return (f"LIVE-REPLAY {self.run.window.name}: {len(self.replay)} transitions, "
                f"{len(self.unexplained)} differences")

    def lines(self) -> list[str]:
        run, w = self.run, self.run.window
        p1, p2 = run.phases
        out = [
            f"time travel {w.name}: daemon served {_short(p1.started)} .. {_short(p1.stopped)}, down "
            f"{w.down_days} days, served again {_short(p2.started)} .. {_short(p2.stopped)} "
            f"({p1.steps + p2.steps} clock steps, {run.requests} requests to the stand-ins, "
            f"{run.announced} announcements, {self.real_seconds:.1f} s real)",
            f"  log: {run.db} (seeded with {run.seeded} events as of {_short(run.start)}); config: {run.config}; "
            f"{self.caught_up} facts published while the daemon was down, recorded at its restart",
            f"  transitions dated {w.first} .. {w.last}: live {len(self.live_compared)}, replay {len(self.replay)}; "
            f"not compared: {len(self.excluded_warm_up)} warm-up at the first start (derived by loading the "
            f"rules: the state on {_short(run.start)} of episodes replay dates before the window), "
            f"{self.excluded_outside} live ones dated outside the window",
            f"  notifications {_short(run.start)} .. the dry run's last transition: live {self.notes.compared_live}, "
            f"dry run {self.notes.compared_dry}, {self.notes.pairs} paired; not compared: {self.notes.warm_up} "
            f"flushes about episodes dated before the window, {self.notes.after_cut} live ones after the dry "
            f"run's end",
        ]
        for phase in run.phases:
            out += [f"  daemon problem: {p}" for p in phase.problems]
        out.append(f"explained differences ({len(self.explained)}):")
        out += [d.line() for d in self.explained] or ["  none"]
        out.append(f"unexplained differences ({len(self.unexplained)}):")
        out += [d.line() for d in self.unexplained] or ["  none"]
        out.append(self.figure)
        return out


def _short(moment: datetime | None) -> str:
    return utc_text(moment)[:16] + "Z" if moment else "-"


def compare(run: Run) -> Report:
    from watchdog.app import resolve_config
    from watchdog.rules.ruleset import load_rules
    began = _real_monotonic()
    check_clock(run)
    live = read_live(run.db, run.seeded)
    ctx = Context(run, live, load_rules([str(RULES)]), resolve_config(str(run.config)))
    w = run.window
    with ThreadPoolExecutor(2) as pool:            # two processes: two cores
        replay_job, dry_job = pool.submit(read_replay, run), pool.submit(read_dry_run, run)
        replay, dry = replay_job.result(), dry_job.result()
    inside = [t for t in live.transitions if w.first <= t.date <= w.last]
    warm = [t for t in inside if (t.rule, t.state, t.date, t.at) in live.warm_up]
    compared = [t for t in inside if (t.rule, t.state, t.date, t.at) not in live.warm_up]
    transitions = compare_transitions(compared, replay)
    for d in transitions:
        d.explained = explain_transition(d, ctx)
    notes = compare_notifications(ctx, dry, replay)
    for d in notes.differences:
        d.explained = explain_notification(d, ctx, transitions)
    transitions += check_facts(run, served_history(w))
    for phase in run.phases:                 # a job skipped or raising is a daemon bug
        for problem in phase.problems:
            transitions.append(Difference("daemon", "scheduler", "problem", problem))
    return Report(run, compared, replay, warm, len(live.transitions) - len(inside), transitions, notes, live,
                  run.real_seconds + _real_monotonic() - began)


async def time_travel(window: Window, work: Path | None = None, log=print) -> Report:
    work = work or Path(tempfile.mkdtemp(prefix="watchdog-timetravel-"))
    run = await run_window(window, work, log=log)
    report = await asyncio.to_thread(compare, run)
    for line in report.lines():
        log(line)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", help="first observation date of the window (YYYY-MM-DD)")
    parser.add_argument("last", help="last observation date of the window")
    parser.add_argument("--down-days", type=int, default=4, help="days the daemon is down, mid-window")
    parser.add_argument("--down-at", default="", help="the downtime's first day (default: the middle)")
    parser.add_argument("--keep", help="work here (log, config) instead of a temporary directory")
    args = parser.parse_args(argv)
    window = Window(args.first, args.last, args.down_days, args.down_at)
    report = asyncio.run(time_travel(window, Path(args.keep) if args.keep else None,
                                     log=lambda line: print(line, flush=True)))
    return 1 if report.unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
