"""The daemon end to end: `watchdog run --once` as a real subprocess against local fake NY Fed and
FRED servers that publish new values between runs; then `audit` finds no difference."""
from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from fakes import FakeFed, Site, fixture
from watchdog.market.calendar import previous_business_day
from watchdog.model.timefmt import NEW_YORK

CANARY = "canary-SECRET-7777"


def recent_business_days(n: int) -> list[date]:
    """The last n SIFMA business days before today (New York), oldest first: live polling only
    looks back a few days, so the fake history must be recent."""
    day = datetime.now(timezone.utc).astimezone(NEW_YORK).date()
    out = []
    for _ in range(n):
        day = previous_business_day("sifma", day)
        out.append(day)
    return out[::-1]


def write_config(tmp: Path, url: str) -> Path:
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "spread.toml").write_text('''
[[rule]]
id = "sofr-over-iorb"
expr = "bp(sofr - iorb)"
above = 10
recover_below = 5
for = "2bd"
severity = "warning"
summary = "SOFR is {{ value }} bp over IORB"
''')
    config = tmp / "watchdog.toml"
    config.write_text(f'''
[store]
path = "{tmp / 'events.db'}"
[rules]
paths = ["{rules}"]
[sources.nyfed]
base_url = "{url}"
rates = ["sofr"]
timeout = "5s"
[sources.fred]
base_url = "{url}"
csv_base_url = "{url}"
api_key_env = "FRED_TEST_KEY"
series = {{ iorb = "IORB" }}
timeout = "5s"
[receivers.screen]
type = "console"
[daemon]
catchup_horizon = "10d"
''')
    return config


def count(db: Path, kind: str) -> int:
    """Events of one type in the log (0 while it does not exist yet)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM events WHERE type = ?", (kind,)).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


async def watchdog(*args: str) -> tuple[int, str, str]:
    env = {**os.environ, "FRED_TEST_KEY": CANARY, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "watchdog", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_runs_once_three_times_then_audit_finds_no_difference(aiohttp_server, tmp_path):
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    url = str(server.make_url("")).rstrip("/")
    config = write_config(tmp_path, url)
    days = [d.isoformat() for d in recent_business_days(5)]
    fed.iorb = {days[0]: "3.90"}
    fed.sofr = {days[0]: "4.00", days[1]: "3.95"}

    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0, err
    assert "FIRING" not in out

    fed.sofr.update({days[2]: "4.22", days[3]: "4.25"})        # two business days over 10 bp
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0, err
    assert f"[FIRING warning] sofr-over-iorb {days[3]}: SOFR is 35 bp over IORB" in out

    fed.sofr[days[4]] = "3.80"
    fed.bad_row = True                                          # a malformed row among good ones
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0, err                                       # a recorded failure is the daemon working
    assert f"[RESOLVED warning] sofr-over-iorb {days[4]}" in out

    db = str(tmp_path / "events.db")
    code, out, err = await watchdog("audit", "--db", db)
    assert code == 0, out + err
    code, out, err = await watchdog("verify", "--db", db)
    assert code == 0, err

    conn = sqlite3.connect(db)
    types = [t for (t,) in conn.execute("SELECT type FROM events ORDER BY seq")]
    facts = conn.execute("SELECT count(*) FROM events WHERE type = 'observation-recorded'").fetchone()[0]
    failures = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM events WHERE type = 'source-failed'")]
    assert facts == 6                                           # 5 SOFR + 1 IORB, each exactly once
    assert types.count("alert-firing") == 1 and types.count("alert-resolved") == 1
    assert types.count("notification-sent") == 2
    assert len(failures) == 1 and "2020-13-45" in failures[0]["bad_rows"][0]
    assert failures[0]["recorded_rows"] == 5
    # the canary key reached the server but nothing we wrote
    assert fed.fred_keys and all(k == CANARY for k in fed.fred_keys)
    conn.close()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path


async def test_a_crash_after_facts_before_alerts_is_repaired_on_the_next_start(aiohttp_server, tmp_path):
    """Facts committed by a run that died before evaluating are evaluated by the next start."""
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    days = [d.isoformat() for d in recent_business_days(3)]
    fed.iorb = {days[0]: "3.90"}
    fed.sofr = {days[1]: "4.22", days[2]: "4.25"}
    # Simulate the crash: the facts reach the log through `import`-like appends, no daemon ran.
    from watchdog.model.events import Observation, new_observation
    from watchdog.store import SqliteEventStore
    store = SqliteEventStore(tmp_path / "events.db")
    store.append([new_observation(Observation(series="iorb", date=days[0], value="3.9", unit="%", source="fred"),
                                  f"{days[0]}T04:00:00.000000Z")])
    store.close()
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0, err
    assert "[FIRING warning] sofr-over-iorb" in out
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert "[FIRING" not in out                                 # delivered once, not again
    code, out, err = await watchdog("audit", "--db", str(tmp_path / "events.db"))
    assert code == 0, out + err


async def test_run_cycles_until_idle_then_stops_by_itself(aiohttp_server, tmp_path):
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    days = [d.isoformat() for d in recent_business_days(3)]
    fed.iorb = {days[0]: "3.90"}
    fed.sofr = {days[1]: "4.22", days[2]: "4.25"}
    code, out, err = await watchdog("run", "--config", str(config), "--exit-when-idle", "--every", "1s")
    assert code == 0, err
    assert out.count("[FIRING warning] sofr-over-iorb") == 1
    cycles = [line for line in err.splitlines() if line.startswith("cycle:")]
    assert len(cycles) == 2 and cycles[-1].startswith("cycle: 0 new facts")
    conn = sqlite3.connect(tmp_path / "events.db")
    last = conn.execute("SELECT type, payload FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    assert last[0] == "daemon-stopped" and json.loads(last[1])["reason"] == "exit-when-idle"


async def test_serving_daemon_polls_on_schedule_and_stops_cleanly_on_sigterm(aiohttp_server, tmp_path):
    import signal
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    config.write_text(config.read_text().replace('rates = ["sofr"]', 'rates = ["sofr"]\npoll_every = "1s"')
                      + '[[routes]]\nreceivers = ["screen"]\ngroup_wait = "1s"\n')
    days = [d.isoformat() for d in recent_business_days(3)]
    fed.iorb = {days[0]: "3.90"}
    fed.sofr = {days[1]: "4.22"}
    env = {**os.environ, "FRED_TEST_KEY": CANARY, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "watchdog", "run", "--config", str(config),
                                                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    db = tmp_path / "events.db"

    def sofr_days() -> int:
        if not db.exists():
            return 0
        conn = sqlite3.connect(db)
        try:
            return conn.execute("SELECT count(*) FROM events WHERE key LIKE 'obs/sofr/%'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
        finally:
            conn.close()
    for _ in range(100):
        if sofr_days() == 1:
            break
        await asyncio.sleep(0.1)
    fed.sofr[days[2]] = "4.25"                      # published while the daemon runs
    for _ in range(100):
        if sofr_days() == 2:
            break
        await asyncio.sleep(0.1)
    for _ in range(100):                            # group_wait (1s) held the flush: the
        if count(db, "notification-sent") == 1:     # outbox timer wakes the daemon for it
            break
        await asyncio.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert f"[FIRING warning] sofr-over-iorb {days[2]}" in out.decode()
    conn = sqlite3.connect(db)
    last = conn.execute("SELECT type FROM events ORDER BY seq DESC LIMIT 1").fetchone()[0]
    conn.close()
    assert last == "daemon-stopped"


async def test_backfill_fetches_history_through_the_same_parsers_without_duplicates(aiohttp_server, tmp_path):
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    fed.sofr = {"2019-09-16": "2.43", "2019-09-17": "5.25"}
    db = str(tmp_path / "events.db")
    code, out, err = await watchdog("backfill", "--config", str(config), "--source", "nyfed", "--since", "2019-09-01")
    assert code == 0, err
    assert "2 new facts" in out
    code, out, err = await watchdog("backfill", "--config", str(config), "--source", "nyfed", "--since", "2019-09-01")
    assert "0 new facts" in out
    conn = sqlite3.connect(db)
    published = conn.execute("SELECT published_at FROM events WHERE key = 'obs/sofr/2019-09-17'").fetchone()[0]
    conn.close()
    assert published == "2019-09-18T12:00:00.000000Z"          # its real publication, not the fetch time
    code, out, err = await watchdog("backfill", "--config", str(config), "--source", "nope", "--since", "2019-09-01")
    assert code == 1 and "no source 'nope'" in err and "Traceback" not in err


async def test_every_source_in_one_run_records_its_real_fixture(aiohttp_server, tmp_path):
    site = await Site({
        "/api/rates/secured/sofr/search.json": fixture("nyfed/sofr_search_2024-06-01_2024-06-06.json"),
        "/api/rp/results/search.json": fixture("nyfed/rp_all_all_results_last_500.json"),
        "/graph/fredgraph.csv": fixture("fred/fredgraph_IORB_2026-06.csv"),
        "/services/api/fiscal_service/v1/accounting/dts/operating_cash_balance":
            fixture("fiscaldata/operating_cash_balance_2025-07-07_2025-07-11.json"),
        "/newsevents/speech/powell20160628a.htm": fixture("fedspeeches/speech_powell20160628a_legacy-layout.html"),
        # the real feed with its links pointed at this server
        "/feeds/speeches.xml": fixture("fedspeeches/speeches_2016-08_rss1-rdf.xml").decode()
            .replace("http://www.federalreserve.gov", "{base}"),
    }).serve(aiohttp_server)
    base = site.base
    config = tmp_path / "all.toml"
    config.write_text(f'''
[store]
path = "{tmp_path / 'events.db'}"
[rules]
paths = ["{Path(__file__).parent.parent / 'rules'}"]
[sources.nyfed]
base_url = "{base}"
rates = ["sofr"]
operations = true
retries = 0
[sources.fred]
base_url = "{base}"
csv_base_url = "{base}"
api_key_env = "NO_SUCH_KEY_IN_THIS_TEST"
retries = 0
[sources.fiscaldata]
base_url = "{base}"
retries = 0
[sources.speeches]
feeds = ["{base}/feeds/speeches.xml"]
retries = 0
''')
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0, err
    conn = sqlite3.connect(tmp_path / "events.db")
    series = {s for (s,) in conn.execute(
        "SELECT DISTINCT json_extract(payload, '$.series') FROM events WHERE type = 'observation-recorded'")}
    speakers = [s for (s,) in conn.execute("SELECT json_extract(payload, '$.speaker') FROM events WHERE type = 'speech-recorded'")]
    conn.close()
    assert {"sofr", "srf", "onrrp", "iorb", "tga"} <= series
    assert speakers == ["Jerome H. Powell"]           # the only speech page this server has
    code, out, err = await watchdog("audit", "--db", str(tmp_path / "events.db"))
    assert code == 0, out + err


async def test_a_stale_feed_fires_once_across_runs_and_audit_re_derives_it(aiohttp_server, tmp_path):
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    (tmp_path / "rules" / "stale.toml").write_text(
        '[[staleness_rule]]\nid = "sofr-stale"\nseries = "sofr"\ngrace = "1h"\nsummary = "SOFR for {{ date }} is late"\n')
    days = [d.isoformat() for d in recent_business_days(5)]
    fed.iorb = {days[0]: "3.90"}
    fed.sofr = {days[0]: "3.95", days[1]: "3.96"}       # the NY Fed stopped three business days ago
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0, err
    assert "[FIRING warning] sofr-stale" in out
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert "FIRING" not in out                              # still stale: not fired again
    code, out, err = await watchdog("audit", "--db", str(tmp_path / "events.db"))
    assert code == 0, out + err
    conn = sqlite3.connect(tmp_path / "events.db")
    firing = conn.execute("SELECT count(*) FROM events WHERE type = 'alert-firing' AND key LIKE 'alert/sofr-stale/%'").fetchone()[0]
    conn.close()
    assert firing == 1
