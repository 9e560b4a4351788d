"""Every command that takes --db takes a postgresql:// URL too: the same history imported into
PostgreSQL and into SQLite gives the same chain head, replays the same, and verifies."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from watchdog.cli import cli
from watchdog.model.config import parse_config
from watchdog.model.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
RECORDED_AT = "2026-09-05T00:00:00Z"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_import_verify_replay_and_status_on_a_url_match_the_sqlite_file(pg_server, tmp_path):
    url = pg_server.new_database()
    rates = REPO / "data" / "history" / "rates"
    files = [str(rates / "iorb_ioer_changes.csv"), str(rates / "EFFR.csv")]
    for db in (url, str(tmp_path / "e.db")):
        result = run("import", "--db", db, "--recorded-at", RECORDED_AT, *files)
        assert result.exit_code == 0, result.output
    pg, lite = run("verify", "--db", url), run("verify", "--db", str(tmp_path / "e.db"))
    assert pg.exit_code == 0 and pg.output == lite.output and pg.output.startswith("ok: ")
    rules = str(REPO / "rules" / "funding.toml")
    replays = [run("replay", "--db", db, "--rules", rules, "--json", "--since", "2019-09-01",
                   "--until", "2019-10-31").output for db in (url, str(tmp_path / "e.db"))]
    assert replays[0] == replays[1] and '"effr-over-iorb"' in replays[0]
    status = run("status", "--db", url, "--rules", rules, "--now", "2019-09-20", "--json")
    assert status.exit_code == 0, status.output
    assert {s["series"] for s in json.loads(status.output)["series"]} == {"effr", "iorb"}


def test_a_url_with_a_password_is_refused_and_the_password_never_printed(pg_server):
    url = pg_server.new_database().replace("watchdog_test@", "watchdog_test:hunter2@")
    for command in (["verify", "--db", url], ["events", "--db", url]):
        result = run(*command)
        assert result.exit_code == 1
        assert "PGPASSWORD" in result.output and "hunter2" not in result.output


@pytest.mark.parametrize("url, message", [
    ("postgresql://watchdog:secret@db/watchdog", "must not hold a password"),
    ("mysql://db/watchdog", "must be a postgresql:// URL"),
    ("postgresql://db", "must be a postgresql:// URL naming a database"),
])
def test_the_store_url_is_checked_at_load(url, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[store]\nurl = "{url}"\n', "w.toml")
    assert f"w.toml:2: store.url: {message}" in str(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("line, message", [
    ('lease_ttl = "1s"', "store.lease_ttl: must be between 2s and 10m"),
    ('lease_ttl = "1h"', "store.lease_ttl: must be between 2s and 10m"),
    ('replica = "desk a"', "store.replica: String should match pattern"),
])
def test_the_replica_settings_are_checked_at_load(line, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[store]\nurl = "postgresql://watchdog@db/watchdog"\n{line}\n', "w.toml")
    assert f"w.toml:3: {message}" in str(caught.value)


async def test_the_daemon_runs_on_a_postgresql_log_and_audit_re_derives_it(pg_server, aiohttp_server, tmp_path):
    # test_daemon's three runs, with `[store] url` instead of a file: facts once, the alert fired
    # and resolved, told twice, and audit and verify agree on the URL.
    import asyncio
    import os
    import sys
    from datetime import datetime

    import psycopg

    from fakes import FakeFed
    from watchdog.market.calendar import previous_business_day
    from watchdog.model.timefmt import NEW_YORK

    day, days = datetime.now(NEW_YORK).date(), []
    for _ in range(5):
        day = previous_business_day("sifma", day)
        days.append(day.isoformat())
    days.reverse()
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    base = str(server.make_url("")).rstrip("/")
    url = pg_server.new_database()
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "spread.toml").write_text(
        '[[rule]]\nid = "sofr-over-iorb"\nexpr = "bp(sofr - iorb)"\nabove = 10\nrecover_below = 5\n'
        'for = "2bd"\nsummary = "SOFR is {{ value }} bp over IORB"\n')
    config = tmp_path / "watchdog.toml"
    config.write_text(f'[store]\nurl = "{url}"\n[rules]\npaths = ["{tmp_path / "rules"}"]\n'
                      f'[sources.nyfed]\nbase_url = "{base}"\nrates = ["sofr"]\ntimeout = "5s"\n'
                      f'[sources.fred]\nbase_url = "{base}"\ncsv_base_url = "{base}"\n'
                      'series = { iorb = "IORB" }\ntimeout = "5s"\n'
                      '[receivers.screen]\ntype = "console"\n[daemon]\ncatchup_horizon = "10d"\n')

    async def watchdog(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "watchdog", *args, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode, out.decode(), err.decode()

    fed.iorb = {days[0]: "3.90"}
    fed.sofr = {days[0]: "4.00", days[1]: "3.95"}
    assert (await watchdog("run", "--config", str(config), "--once"))[0] == 0
    fed.sofr.update({days[2]: "4.22", days[3]: "4.25"})
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0 and f"[FIRING warning] sofr-over-iorb {days[3]}" in out, err
    fed.sofr[days[4]] = "3.80"
    code, out, err = await watchdog("run", "--config", str(config), "--once")
    assert code == 0 and f"[RESOLVED warning] sofr-over-iorb {days[4]}" in out, err
    for command in ("audit", "verify"):
        code, out, err = await watchdog(command, "--db", url)
        assert code == 0, out + err
    with psycopg.connect(url) as conn:
        types = [t for (t,) in conn.execute("SELECT type FROM events ORDER BY seq")]
    assert types.count("observation-recorded") == 6                # 5 SOFR + 1 IORB, once each
    assert types.count("alert-firing") == 1 and types.count("alert-resolved") == 1
    assert types.count("notification-sent") == 2


def test_migrate_copies_a_log_to_postgresql_and_back_with_every_hash(pg_server, tmp_path):
    import shutil
    import sqlite3

    lite, back = tmp_path / "events.db", tmp_path / "back.db"
    rates = REPO / "data" / "history" / "rates"
    assert run("import", "--db", str(lite), "--recorded-at", RECORDED_AT,
               str(rates / "iorb_ioer_changes.csv"), str(rates / "SOFR.csv")).exit_code == 0
    head = run("verify", "--db", str(lite)).output.split("head ")[1].strip()
    url = pg_server.new_database()
    there = run("migrate", "--from", str(lite), "--to", url)
    assert there.exit_code == 0, there.output
    assert there.output.startswith("copied ") and head in there.output
    again = run("migrate", "--from", str(lite), "--to", url)          # nothing left to copy
    assert again.exit_code == 0 and again.output.startswith("copied 0 events")
    home = run("migrate", "--from", url, "--to", str(back))
    assert home.exit_code == 0 and head in home.output
    assert run("verify", "--db", str(back)).output == run("verify", "--db", str(lite)).output

    # an interrupted copy continues where it stopped
    part = tmp_path / "part.db"
    shutil.copy(lite, part)
    conn = sqlite3.connect(part)
    conn.execute("DROP TRIGGER events_no_delete")
    conn.execute("DELETE FROM events WHERE seq > 100")
    conn.commit()
    conn.close()
    resumed = run("migrate", "--from", str(lite), "--to", str(part))
    assert resumed.exit_code == 0 and head in resumed.output
    # a log that is not the start of the source is refused, untouched
    other = pg_server.new_database()
    assert run("import", "--db", other, str(rates / "EFFR.csv")).exit_code == 0
    refused = run("migrate", "--from", str(lite), "--to", other)
    assert refused.exit_code == 1 and "not the start of the source log" in refused.output


def test_migrate_refuses_a_source_row_that_does_not_match_its_hash(pg_server, tmp_path):
    import sqlite3

    lite = tmp_path / "events.db"
    rates = REPO / "data" / "history" / "rates"
    assert run("import", "--db", str(lite), str(rates / "iorb_ioer_changes.csv")).exit_code == 0
    conn = sqlite3.connect(lite)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("""UPDATE events SET payload = replace(payload, '"2.35"', '"9.35"') WHERE seq = 5""")
    conn.commit()
    conn.close()
    url = pg_server.new_database()
    result = run("migrate", "--from", str(lite), "--to", url)
    assert result.exit_code == 1 and "seq 5" in result.output
    assert run("verify", "--db", url).output.startswith("ok: 0 events")   # nothing written
