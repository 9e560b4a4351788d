"""Alert latency: a value published on a source to its Slack message, through the real daemon.

    BENCH alert-latency-p99 <seconds> goal < 2 s
        the 99th percentile, nearest rank, of the wall time from the instant the fake NY Fed
        (tests/fakes.py ``FakeFed``, on 127.0.0.1) starts serving a new SOFR value to the
        instant the fake Slack (``FakeSlack``, on 127.0.0.1) receives the message about it,
        over ``publications`` (default 50) values published one after another to a real
        `watchdog run` (a subprocess of this interpreter, ``python -m watchdog run``, as the kill
        test and the soak start it) that polls the source every second and routes with
        ``group_wait = "0s"``.

The percentile is the nearest-rank one: the ceil(0.99 n)-th smallest latency, the smallest that
at least 99% of the publications did not exceed. With the default 50 publications that is the
largest of the 50 (49 of 50 is only 98%), so one slow publication sets the figure; from 101 on
it is the second largest. No interpolation.

What runs, on 127.0.0.1 only, in a temporary directory removed at the end (also on failure,
SIGINT or SIGTERM; the daemon is stopped with SIGTERM, killed if it has not stopped within
30 s, and on Linux gets SIGTERM from the kernel if this process is SIGKILLed):

- the fake NY Fed/FRED (one ``FakeFed``): IORB 3.90 from a business day before the first SOFR
  date, SOFR 3.92 on the first date (2 bp: no alert) before the daemon starts. The daemon's
  config polls ``[sources.nyfed]`` (rates = ["sofr"]) with ``poll_every = "1s"``;
  ``[sources.fred]`` (IORB only, its JSON API with a fake key) with ``poll_every = "1h"``, so it
  is read at start and IORB never changes: the measured path is one source's poll;
- one threshold rule, ``bp(sofr - iorb)`` ``above = 10``, ``recover_below = 5``, no ``for``,
  so one value fires it and one value resolves it;
- one Slack receiver, the incoming webhook (default; slack-sdk's ``AsyncWebhookClient``) or a
  bot token (``--slack bot``: ``AsyncWebClient``, a resolve edits the firing message and
  replies in its thread; the first of those to land is the receipt), on one route with
  ``group_wait = "0s"`` and ``group_interval = "1s"`` (it must be longer than zero);
- ``[daemon] catchup_horizon`` long enough to cover the dates used, so every transition is
  sent; everything else at its default, ``--no-http``, JSON logs to a file.

Then ``publications`` times: pause, publish, wait. Publication i adds the next SIFMA business
day's SOFR, alternately 4.25 (35 bp over IORB: fires) and 3.92 (2 bp: resolves), so each one
is one alert transition and one Slack message, named ``FIRING sofr-over-iorb <date>`` or
``RESOLVED sofr-over-iorb <date>``. The dates are recent past days ending at the last business
day before today (New York). The clock starts when the value is put into the fake's state
(the next request is answered with it: ``time.perf_counter()`` in the same event loop) and
stops when the fake Slack's handler is entered with the message naming that transition. Each
publication waits for its message (at most ``TIMEOUT`` = 30 s: then the bench fails, with the
daemon's last log lines) before the next one's pause. The pause is ``group_interval`` plus a
seeded uniform 0-1 s: a group's next flush never comes sooner than ``group_interval`` after its
previous one, so without it that wait would be measured instead of the daemon; the random
part spreads the publications evenly over the phase of the 1 s poll.

So a latency is: the wait for the daemon's next poll (0-1 s by construction, half a second on
average), the fetch and parse, the durable append of the fact, the evaluation and the alert's
append, the flush decision (``notification-requested``, then ``-attempted``, each appended
durably) and the send. stderr gets min/median/p90/max, then the median and max of each stage,
read from the daemon's log afterwards: the bench's wall clock at publication and at receipt,
the fake's at each SOFR answer, and each event's ``recorded_at`` (stamped when its batch is
planned, before the commit, so a batch's fsync shows in the stage after it). The stages are
"wait for the poll" (publication to the first SOFR answer after it), "fetch+parse+append fact"
(to the fact's ``recorded_at``), "evaluate+append alert" (to ``alert-firing``/``-resolved``),
"decide flush" (to ``notification-requested``), "attempted" (to ``notification-attempted``) and
"send to Slack" (to the receipt).

Run standalone: ``.venv/bin/python bench/latency.py [--publications N] [--slack webhook|bot]
[--seed S]``. No network beyond 127.0.0.1.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import json
import math
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))          # the shared fakes, as soak/soak.py imports them
sys.path.insert(0, str(REPO))

from aiohttp import web  # noqa: E402
from fakes import CHANNEL, FakeFed, FakeSlack  # noqa: E402
from killharness import delivery_identity  # noqa: E402

from watchdog.market.calendar import previous_business_day  # noqa: E402
from watchdog.model.timefmt import NEW_YORK  # noqa: E402

RULE_ID = "sofr-over-iorb"
RULE = f'''
[[rule]]
id = "{RULE_ID}"
expr = "bp(sofr - iorb)"
above = 10
recover_below = 5
severity = "warning"
summary = "SOFR is {{{{ value }}}} bp over IORB"
'''
IORB = "3.90"
FIRES, RESOLVES = "4.25", "3.92"                  # 35 bp and 2 bp over IORB
POLL_EVERY = 1.0                                  # [sources.nyfed] poll_every, seconds
GROUP_INTERVAL = 1.0                              # [[routes]] group_interval, seconds
TIMEOUT = 30.0                                    # per publication: fail, never hang
START_TIMEOUT = 60.0                              # the daemon's start-up catch-up
STOP_TIMEOUT = 30.0
WEBHOOK_ENV = "BENCH_LATENCY_SLACK_WEBHOOK"
TOKEN_ENV = "BENCH_LATENCY_SLACK_TOKEN"
TOKEN = "xoxb-bench-latency"
FRED_ENV = "BENCH_LATENCY_FRED_KEY"


# ---- the fakes, with a stopwatch ----

class TimedFed(FakeFed):
    """The shared fake NY Fed/FRED, noting when each SOFR answer is made (wall clock)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.served: list[float] = []

    def rates(self) -> web.Response:
        self.served.append(time.time())
        return super().rates()


@dataclass
class Arrival:
    perf: float                   # time.perf_counter() as the handler was entered
    wall: float                   # time.time(), the same instant
    text: str


class TimedSlack(FakeSlack):
    """The shared fake Slack, noting when each message that lands arrived."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.arrivals: list[Arrival] = []
        self.landed = asyncio.Event()

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        return await self._timed(super().webhook, request)

    async def api(self, request: web.Request) -> web.StreamResponse:
        return await self._timed(super().api, request)

    async def _timed(self, handler, request: web.Request) -> web.StreamResponse:
        perf, wall = time.perf_counter(), time.time()
        before = len(self.texts)
        response = await handler(request)
        for text in self.texts[before:]:          # what this request landed (post or edit)
            self.arrivals.append(Arrival(perf, wall, text))
        if len(self.texts) > before:
            self.landed.set()
        return response


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


# ---- the daemon's setup ----

def sofr_dates(n: int) -> list[date]:
    """n + 1 SIFMA business days ending at the last one before today (New York), oldest first."""
    day = datetime.now(UTC).astimezone(NEW_YORK).date()
    out = []
    for _ in range(n + 1):
        day = previous_business_day("sifma", day)
        out.append(day)
    return out[::-1]


def write_config(tmp: Path, fed_url: str, slack_url: str, slack: str, horizon_days: int) -> Path:
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "latency.toml").write_text(RULE)
    if slack == "bot":
        receiver = f'token_env = "{TOKEN_ENV}"\nchannel = "{CHANNEL}"\napi_base_url = "{slack_url}/api/"'
    else:
        receiver = f'webhook_url_env = "{WEBHOOK_ENV}"'
    config = tmp / "watchdog.toml"
    config.write_text(f'''
[store]
path = "{tmp / 'events.db'}"
[rules]
paths = ["{rules}"]
[sources.nyfed]
base_url = "{fed_url}"
rates = ["sofr"]
poll_every = "{POLL_EVERY:g}s"
[sources.fred]
base_url = "{fed_url}"
csv_base_url = "{fed_url}"
api_key_env = "{FRED_ENV}"
series = {{ iorb = "IORB" }}
poll_every = "1h"
[receivers.desk]
type = "slack"
{receiver}
[[routes]]
receivers = ["desk"]
group_wait = "0s"
group_interval = "{GROUP_INTERVAL:g}s"
[daemon]
catchup_horizon = "{horizon_days}d"
''')
    return config


def query(db: Path, sql: str, *args) -> list[tuple]:
    """Read the log (None of it while the daemon has not created it yet)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:                 # no table yet
        return []
    finally:
        conn.close()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no daemon log)"


class BenchFailed(RuntimeError):
    pass


@dataclass
class Run:
    tmp: Path
    fed: TimedFed
    slack: TimedSlack
    proc: asyncio.subprocess.Process | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.tmp / "daemon.log"

    def fail(self, why: str) -> BenchFailed:
        code = self.proc.returncode if self.proc is not None else None
        state = f"the daemon exited {code}" if code is not None else "the daemon is running"
        return BenchFailed(f"bench alert-latency: {why} ({state}); its last log lines:\n{tail(self.log)}")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            raise self.fail("the daemon stopped")


def _parent_death_signal():
    """Linux: a preexec_fn giving the daemon SIGTERM if this process dies without stopping it
    (SIGKILL); None elsewhere. libc is loaded here, in the parent: the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    return lambda: libc.prctl(1, signal.SIGTERM)     # PR_SET_PDEATHSIG


async def start_daemon(run: Run, config: Path, env: dict) -> None:
    with open(run.log, "wb") as log:             # noqa: ASYNC230 (the child keeps its own descriptor)
        run.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "watchdog", "run", "--config", str(config), "--no-http",
            "--log-format", "json", env=env, cwd=REPO, preexec_fn=_parent_death_signal(),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT)


async def wait_started(run: Run, first: date, iorb_day: date) -> None:
    """Until the start-up catch-up has recorded the seed facts (IORB, the first SOFR)."""
    db = run.tmp / "events.db"
    keys = {f"obs/sofr/{first.isoformat()}", f"obs/iorb/{iorb_day.isoformat()}"}
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        run.check_alive()
        found = {k for (k,) in query(db, "SELECT key FROM events WHERE type = 'observation-recorded'")}
        if keys <= found:
            return
        await asyncio.sleep(0.1)
    raise run.fail(f"the daemon did not record {sorted(keys)} within {START_TIMEOUT:.0f} s of starting")


async def stop_daemon(run: Run) -> None:
    proc = run.proc
    if proc is None or proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
    except TimeoutError:                  # reported: its exit code is -9
        proc.kill()
        await proc.wait()
    except asyncio.CancelledError:                # Ctrl-C: still leave no process behind
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise


async def received(run: Run, entry: tuple[str, str, str], start: int) -> Arrival:
    """The first message from ``run.slack.arrivals[start:]`` naming ``entry`` (state, rule, date)."""
    slack = run.slack
    deadline = time.monotonic() + TIMEOUT
    seen = start
    while True:
        for arrival in slack.arrivals[seen:]:
            if entry in delivery_identity(arrival.text):
                return arrival
        seen = len(slack.arrivals)
        run.check_alive()
        left = deadline - time.monotonic()
        if left <= 0:
            got = [delivery_identity(a.text) for a in slack.arrivals[start:]] or "nothing"
            raise run.fail(f"no Slack message saying {' '.join(entry)} within {TIMEOUT:.0f} s "
                           f"(received since the publication: {got})")
        slack.landed.clear()
        try:
            await asyncio.wait_for(slack.landed.wait(), min(left, 0.5))   # 0.5: notice a dead daemon
        except TimeoutError:
            pass


# ---- the figures ----

def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass
class Publication:
    day: str
    state: str                     # FIRING or RESOLVED
    perf: float                    # when the fake started serving it
    wall: float
    arrival: Arrival | None = None

    @property
    def latency(self) -> float:
        return self.arrival.perf - self.perf


def stages(db: Path, fed: TimedFed, pubs: list[Publication]) -> str:
    """Where the time went, from the daemon's log: each step's ``recorded_at`` against the bench's
    wall clock (one machine, one clock). Empty when the log cannot be matched to the publications."""
    recorded = {k: _utc(at) for k, at in query(
        db, "SELECT key, recorded_at FROM events WHERE type = 'observation-recorded'")}
    alerts = {}
    for kind, at, payload in query(db, "SELECT type, recorded_at, payload FROM events "
                                       "WHERE type IN ('alert-firing', 'alert-resolved') ORDER BY seq"):
        body = json.loads(payload)
        alerts.setdefault((kind.split("-", 1)[1].upper(), body.get("date")), _utc(at))
    steps: dict[tuple[str, int], float] = {}
    for kind, at, payload in query(db, "SELECT type, recorded_at, payload FROM events WHERE type IN "
                                       "('notification-requested', 'notification-attempted') ORDER BY seq"):
        body = json.loads(payload)
        if body.get("flush") is not None:
            steps.setdefault((kind, int(body["flush"])), _utc(at))
    rows = []
    for n, pub in enumerate(pubs, 1):             # one group, one flush per publication, in order
        fetched = next((t for t in fed.served if t >= pub.wall), None)
        marks = [pub.wall, fetched, recorded.get(f"obs/sofr/{pub.day}"), alerts.get((pub.state, pub.day)),
                 steps.get(("notification-requested", n)), steps.get(("notification-attempted", n)),
                 pub.arrival.wall if pub.arrival else None]
        if any(m is None for m in marks):
            return ""
        rows.append([b - a for a, b in pairwise(marks)])
    names = ["wait for the poll", "fetch+parse+append fact", "evaluate+append alert",
             "decide flush", "attempted", "send to Slack"]
    parts = [f"{name} {statistics.median(col):.3f}/{max(col):.3f}" for name, col in zip(names, zip(*rows))]
    return "bench alert-latency: stages, median/max s: " + ", ".join(parts)


# ---- the run ----

async def _measure(publications: int, slack_mode: str, seed: int) -> str:
    if publications < 1:
        raise ValueError("publications must be at least 1")
    dates = sofr_dates(publications)
    iorb_day = previous_business_day("sifma", dates[0])
    horizon = (datetime.now(UTC).date() - iorb_day).days + 30
    fed = TimedFed(iorb={iorb_day.isoformat(): IORB}, sofr={dates[0].isoformat(): RESOLVES})
    slack = TimedSlack(token=TOKEN if slack_mode == "bot" else None, mode=slack_mode)
    runners: list[web.AppRunner] = []
    loop, me = asyncio.get_running_loop(), asyncio.current_task()
    for sig in (signal.SIGTERM, signal.SIGINT):      # stopped: the same clean-up as a failure
        try:
            loop.add_signal_handler(sig, me.cancel)
        except (ValueError, RuntimeError, NotImplementedError):   # not the main thread
            pass
    with tempfile.TemporaryDirectory(prefix="watchdog-bench-latency-") as d:
        run = Run(Path(d), fed, slack)
        try:
            fed_runner, fed_url = await serve(fed.app())
            runners.append(fed_runner)
            slack_runner, slack_url = await serve(slack.app())
            runners.append(slack_runner)
            slack.base = slack_url
            config = write_config(run.tmp, fed_url, slack_url, slack_mode, horizon)
            env = {**os.environ, WEBHOOK_ENV: slack_url + "/services/T000/B000/XXXX",
                   TOKEN_ENV: TOKEN, FRED_ENV: "bench-latency-key", "PYTHONUNBUFFERED": "1"}
            await start_daemon(run, config, env)
            await wait_started(run, dates[0], iorb_day)
            rng = random.Random(seed)
            pubs: list[Publication] = []
            for i, day in enumerate(dates[1:]):
                await asyncio.sleep(GROUP_INTERVAL + rng.uniform(0.0, POLL_EVERY))
                run.check_alive()
                state, value = ("FIRING", FIRES) if i % 2 == 0 else ("RESOLVED", RESOLVES)
                start = len(slack.arrivals)
                fed.sofr[day.isoformat()] = value            # served from the next request on
                pub = Publication(day.isoformat(), state, time.perf_counter(), time.time())
                pubs.append(pub)
                pub.arrival = await received(run, (state, RULE_ID, pub.day), start)
            await asyncio.sleep(0.5)                         # anything sent twice would land by now
            landed = len(slack.arrivals)
        finally:
            try:
                await stop_daemon(run)
            finally:
                for runner in runners:
                    await runner.cleanup()
        latencies = [p.latency for p in pubs]
        p99 = nearest_rank(latencies, 0.99)
        print(f"bench alert-latency: {len(latencies)} publications ({slack_mode}), min {min(latencies):.3f} s, "
              f"median {statistics.median(latencies):.3f} s, p90 {nearest_rank(latencies, 0.90):.3f} s, "
              f"max {max(latencies):.3f} s (p99 nearest rank: {p99:.3f} s)"
              + (f"; {landed} Slack posts and edits landed" if landed != len(pubs) else ""), file=sys.stderr)
        breakdown = stages(run.tmp / "events.db", fed, pubs)
        if breakdown:
            print(breakdown, file=sys.stderr)
        if run.proc is not None and run.proc.returncode != 0:
            raise run.fail(f"the daemon exited {run.proc.returncode} on SIGTERM")
    return f"BENCH alert-latency-p99 {p99:.2f} goal < 2 s"


def measure(publications: int = 50, *, slack: str = "webhook", seed: int = 1) -> str:
    """``BENCH alert-latency-p99 <s> goal < 2 s``: see the module's docstring. p99 is the
    nearest-rank percentile (the largest of 50 at the default); min/median/p90/max and where
    the time went go to stderr. Raises ``BenchFailed`` when a message does not arrive in 30 s."""
    if slack not in ("webhook", "bot"):
        raise ValueError(f"slack must be 'webhook' or 'bot', not {slack!r}")
    return asyncio.run(_measure(publications, slack, seed))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publications", type=int, default=50)
    parser.add_argument("--slack", choices=["webhook", "bot"], default="webhook",
                        help="the receiver: an incoming webhook (default) or a bot token")
    parser.add_argument("--seed", type=int, default=1, help="seeds the pauses between publications")
    args = parser.parse_args()
    try:
        print(measure(args.publications, slack=args.slack, seed=args.seed))
    except BenchFailed as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("bench alert-latency: interrupted; the daemon is stopped and the temporary "
              "directory removed", file=sys.stderr)
        sys.exit(130)
