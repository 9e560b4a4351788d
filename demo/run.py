"""`make demo`, live part: the real daemon (`watchdog run --exit-when-idle`) polls local stand-ins
for the NY Fed, FRED and Fiscal Data APIs (demo/servers.py) that publish Oct-Dec 2025 two
publication days per polling round, records what they serve in a temporary copy of the log, evaluates the default rules and
notifies on the console (and on Slack when SLACK_WEBHOOK_URL is set). Then it verifies and audits
that log and saves the status page the daemon's HTTP surface (watchdog.http.server) serves for it.

    python -m demo.run [--out out] [--quick]

The temporary log starts as the example log *as it stood on 2025-10-01*: every fact published by
then, plus the administered rates announced later in the quarter (IORB, SRF and ON RRP rates
from the FOMC implementation notes, and the target range), which no polled API serves. No network beyond 127.0.0.1 unless Slack is configured; the
FRED "key" is a placeholder the stand-in requires, not a secret.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from demo import servers

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "events.db.example"
FIRST, LAST = "2025-10-01", "2025-12-31"
CUT = "2025-10-01T04:00:00.000000Z"                 # 2025-10-01 00:00 New York
# Announced administered rates: the FOMC implementation notes (IORB, SRF and ON RRP rates) and the
# target range. No polled API serves the notes, and a rate is announced before it applies.
ANNOUNCED_FRED = ("fftarget_upper", "fftarget_lower")
# Staleness is judged against today's clock: the served quarter ended long ago, so those rules
# would fire at once and say only that 2025 is over.
LIVE_RULES = sorted(str(p) for p in (REPO / "rules").glob("*.toml") if p.name != "stale.toml")
FRED_KEY_ENV = "WATCHDOG_DEMO_FRED_KEY"


def seed_log(path: Path) -> int:
    """The example log as of CUT (plus later announced administered rates), as a new log."""
    from watchdog.model.events import NewEvent
    from watchdog.store import SqliteEventStore
    src = sqlite3.connect(f"file:{EXAMPLE}?mode=ro", uri=True)
    rows = src.execute(
        "SELECT type, key, published_at, payload FROM events WHERE published_at <= ? OR "
        "(type = 'observation-recorded' AND json_extract(payload, '$.date') <= ? AND "
        " (json_extract(payload, '$.source') = 'fomc' OR json_extract(payload, '$.series') IN (?, ?))) "
        "ORDER BY seq", (CUT, LAST, *ANNOUNCED_FRED)).fetchall()
    src.close()
    store = SqliteEventStore(path)
    try:
        for i in range(0, len(rows), 5000):
            store.append([NewEvent(type=t, key=k, payload=json.loads(p), published_at=pub)
                          for t, k, pub, p in rows[i:i + 5000]])
    finally:
        store.close()
    return len(rows)


def catchup_days() -> int:
    """The horizon that lets alerts dated from FIRST be notified today (older ones, from the
    history the log starts with, are recorded as catch-up suppressions, as a daemon would)."""
    from watchdog.model.timefmt import NEW_YORK
    today = datetime.now(timezone.utc).astimezone(NEW_YORK).date()
    return (today - datetime.fromisoformat(FIRST).date()).days


def write_config(work: Path, url: str, slack: bool) -> Path:
    lookback = catchup_days() + 10
    rules = ", ".join(json.dumps(p) for p in LIVE_RULES)
    text = f"""# written by demo/run.py: the real daemon against local stand-ins of the real APIs
[store]
path = {json.dumps(str(work / "events.db"))}
[rules]
paths = [{rules}]
[sources.nyfed]
base_url = "{url}"
rates = ["sofr", "tgcr", "bgcr", "effr"]
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
continue = true
[daemon]
catchup_horizon = "{catchup_days()}d"
[http]
enabled = false
"""
    if slack:
        text += """[receivers.desk]
type = "slack"
webhook_url_env = "SLACK_WEBHOOK_URL"
[[routes]]
match_re = { severity = "warning|critical" }
receivers = ["desk"]
group_by = ["severity"]
"""
    path = work / "watchdog.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def run_daemon(config: Path, out: Path, every: str) -> tuple[int, list[str]]:
    """`watchdog run --exit-when-idle` as a subprocess; its lines are shown as they come and the
    notifications (stdout) saved to out/notifications.txt."""
    env = {**os.environ, FRED_KEY_ENV: "demo-placeholder", "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watchdog", "run", "--config", str(config), "--exit-when-idle",
        "--every", every, "--log-format", "text", "--log-level", "warning", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    notifications: list[str] = []

    async def pump(stream, keep: list | None, prefix: str) -> None:
        async for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            print(prefix + line, flush=True)
            if keep is not None:
                keep.append(line)
    await asyncio.gather(pump(proc.stdout, notifications, "  "), pump(proc.stderr, None, "  | "))
    code = await proc.wait()
    (out / "notifications.txt").write_text("\n".join(notifications) + "\n", encoding="utf-8")
    return code, notifications


async def live(work: Path, out: Path, quick: bool) -> int:
    history = servers.load_history(EXAMPLE, FIRST, LAST)
    clock = servers.PublicationClock.over(history, days_per_round=1000 if quick else 2)
    runner, url, fake = await servers.start(history, clock)
    try:
        slack = bool(os.environ.get("SLACK_WEBHOOK_URL"))
        config = write_config(work, url, slack)
        print(f"== live: watchdog run --exit-when-idle against {url} (NY Fed, FRED, Fiscal Data "
              f"stand-ins publishing {FIRST} .. {LAST} {'at once' if quick else 'two publication days per polling round'}); "
              f"notifications to the console{' and Slack' if slack else ''}", flush=True)
        code, notes = await run_daemon(config, out, "1s")
        print(f"== the daemon exited {code} after {clock.rounds} polling rounds ({fake.requests} requests); "
              f"{sum(1 for n in notes if n.startswith(('[', '  [')))} notification lines", flush=True)
        return code
    finally:
        await runner.cleanup()


def summarize(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    counts = dict(conn.execute("SELECT type, count(*) FROM events WHERE recorded_at >= "
                               "(SELECT recorded_at FROM events WHERE type = 'daemon-started' ORDER BY seq LIMIT 1) "
                               "GROUP BY type").fetchall())
    conn.close()
    keys = ("observation-recorded", "alert-pending", "alert-firing", "alert-resolved",
            "notification-sent", "notification-suppressed", "source-failed")
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in keys)


async def status_page(work: Path, config: Path, out: Path) -> str:
    """Start watchdog.http.server over a daemon on a copy of the demo log (so the log stays as the run
    left it) and save what it serves: the status page, /readyz, /metrics, /api/alerts."""
    import aiohttp
    from watchdog.app import build_daemon, close_daemon, resolve_config
    from watchdog.http.server import start_http
    copy = work / "status.db"
    for suffix in ("", "-wal"):
        if Path(f"{work / 'events.db'}{suffix}").exists():
            Path(f"{copy}{suffix}").write_bytes(Path(f"{work / 'events.db'}{suffix}").read_bytes())
    daemon = build_daemon(resolve_config(str(config)), db=str(copy), env={FRED_KEY_ENV: "demo-placeholder"},
                          http=False)
    try:
        await daemon.start()
        runner = await start_http(daemon, "127.0.0.1:0")
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                for path, name in (("/", "status.html"), ("/readyz", "readyz.json"),
                                   ("/metrics", "metrics.txt"), ("/api/alerts", "api-alerts.json")):
                    async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                        (out / name).write_bytes(await resp.read())
                        if path == "/readyz":
                            ready = f"/readyz {resp.status}: {(await resp.text())[:300]}"
        finally:
            await runner.cleanup()
    finally:
        close_daemon(daemon)
    return ready


async def check(*args: str) -> int:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "watchdog", *args)
    return await proc.wait()


async def main(out: Path, quick: bool) -> int:
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="watchdog-demo-"))
    print(f"== seeding {work / 'events.db'}: the example log as of {CUT} "
          f"({seed_log(work / 'events.db')} events)", flush=True)
    code = await live(work, out, quick)
    if code != 0:
        return code
    db = str(work / "events.db")
    print(f"== recorded by the run: {summarize(work / 'events.db')}", flush=True)
    print("== watchdog verify, then watchdog audit (re-derives every alert and notification decision):", flush=True)
    if await check("verify", "--db", db) or await check("audit", "--db", db):
        return 1
    ready = await status_page(work, work / "watchdog.toml", out)
    print(f"== status page served by watchdog.http.server for that log: {out / 'status.html'} ({ready})", flush=True)
    print(f"== live outputs: {out / 'notifications.txt'}, {out / 'status.html'}, {out / 'readyz.json'}, "
          f"{out / 'metrics.txt'}, {out / 'api-alerts.json'}; the demo log and config: {work}", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out", help="where the outputs go (default: out/)")
    parser.add_argument("--quick", action="store_true", help="publish the whole quarter in one round")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(Path(args.out), args.quick)))
