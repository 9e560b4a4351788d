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
