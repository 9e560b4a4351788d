"""The hostile cases that live in rules and config, through the real daemon (built by the
composition root, one `run --once` cycle against local fake NY Fed and FRED servers): a route
pattern that would backtrack for ever on Python's regex engine is matched in linear time by RE2
on a 30,000-character label, a long summary is rendered within its bound, the good data is
recorded and audit is clean; a summary that cannot be bounded stops `run` at its line before
anything is appended."""
from __future__ import annotations

import io
import time

import pytest

from test_daemon import CANARY, FakeFed, write_config
from watchdog import app
from watchdog.notify.console import ConsoleNotifier
from watchdog.tuning.replay import audit
from watchdog.store import SqliteEventStore, iter_events
from watchdog.rules.templates import SUMMARY_MAX_CHARS

HOSTILE_LABEL = "a" * 30_000 + "c"       # (a+)+b on this takes Python's re longer than the universe


@pytest.mark.timeout(60)
async def test_a_long_summary_and_a_catastrophic_route_pattern_cannot_stall_the_daemon(aiohttp_server, tmp_path):
    fed = FakeFed()
    fed.iorb = {"2025-10-01": "3.90"}
    fed.sofr = {"2025-10-30": "4.30", "2025-10-31": "4.31"}      # 40 bp over IORB two days
    server = await aiohttp_server(fed.app())
    config_path = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    rules = tmp_path / "rules" / "spread.toml"
    rules.write_text(rules.read_text().replace(
        'summary = "SOFR is {{ value }} bp over IORB"',
        "summary = '''" + "SOFR is {{ value }} bp over IORB; " * 50 + "'''\n"
        f'labels = {{ desk = "{HOSTILE_LABEL}" }}'))
    config_path.write_text(config_path.read_text() + (
        '[[routes]]\nmatch_re = { desk = "(a+)+b" }\nreceivers = ["screen"]\n'   # never matches
        '[[routes]]\nreceivers = ["screen"]\ngroup_wait = "0s"\n'))
    daemon = app.build_daemon(app.resolve_config(str(config_path)), env={"FRED_TEST_KEY": CANARY}, http=False)
    screen = io.StringIO()
    daemon.notifiers = {"screen": ConsoleNotifier(screen)}
    daemon.one_shot = True
    started = time.monotonic()
    try:
        await daemon.run_once()
    finally:
        app.close_daemon(daemon)
    assert time.monotonic() - started < 30                            # not a backtracking hang
    store = SqliteEventStore(tmp_path / "events.db", readonly=True)
    try:
        events = list(iter_events(store))
        assert {e.payload["date"] for e in events if e.type == "observation-recorded"
                and e.payload["series"] == "sofr"} == {"2025-10-30", "2025-10-31"}
        [fired] = [e for e in events if e.type == "alert-firing"]
        assert fired.payload["summary"] == "SOFR is 41 bp over IORB; " * 50
        assert len(fired.payload["summary"]) <= SUMMARY_MAX_CHARS
        [flush] = [e for e in events if e.type == "notification-requested"]
        assert flush.payload["route"] != "routes[0]"                   # the pattern did not match
        assert "[FIRING warning] sofr-over-iorb 2025-10-31" in screen.getvalue()
        assert audit(store).differences == []
    finally:
        store.close()


def test_a_summary_that_cannot_be_bounded_stops_run_at_its_line_before_anything_is_appended(tmp_path):
    from click.testing import CliRunner
    from watchdog.cli import cli
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bomb.toml").write_text('[[rule]]\nid = "bomb"\nexpr = "bp(sofr - iorb)"\nabove = 10\n'
                                     "summary = \"{{ 'ab' * 100000000 }}\"\n")
    db = tmp_path / "events.db"
    result = CliRunner().invoke(cli, ["run", "--db", str(db), "--rules", str(rules), "--once", "--no-http"])
    assert result.exit_code == 1
    assert result.output.startswith(f"{rules / 'bomb.toml'}:5: rule bomb: summary: operator * is not allowed"), result.output
    assert not db.exists()
