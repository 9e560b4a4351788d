"""In-process: the daemon's metrics follow what it polls and folds, and a reload applies a
changed config the way a restart would (or refuses what only a restart can do)."""
from __future__ import annotations

import json
import sqlite3

from prometheus_client import generate_latest

from test_daemon import CANARY, FakeFed, recent_business_days, write_config
from watchdog import app


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


async def test_one_cycle_fills_the_metrics_of_this_daemon_only(aiohttp_server, tmp_path):
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config_path = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    (tmp_path / "rules" / "spread.toml").write_text(
        (tmp_path / "rules" / "spread.toml").read_text().replace('for = "2bd"\n', ""))
    days = [d.isoformat() for d in recent_business_days(3)]
    fed.iorb, fed.sofr = {days[0]: "3.90"}, {days[1]: "4.22", days[2]: "4.25"}
    fed.bad_row = True
    config = app.resolve_config(str(config_path))
    daemon = app.build_daemon(config, env={"FRED_TEST_KEY": CANARY}, config_path=str(config_path), http=False)
    other = app.build_daemon(config, db=str(tmp_path / "other.db"), env={}, http=False)
    try:
        daemon.one_shot = True
        await daemon.run_once()
    finally:
        app.close_daemon(daemon)
        app.close_daemon(other)
    text = generate_latest(daemon.metrics.registry).decode()
    assert 'watchdog_fetch_seconds_count{source="nyfed"} 1.0' in text
    assert 'watchdog_fetch_seconds_count{source="fred"} 1.0' in text
    assert 'watchdog_fetch_failures_total{source="nyfed"} 1.0' in text      # the bad row
    assert 'watchdog_events_appended_total{family="observation"} 3.0' in text
    assert 'watchdog_alert_transitions_total{state="firing"} 1.0' in text
    assert 'watchdog_notifications_total{outcome="sent",receiver="screen"} 1.0' in text
    assert 'watchdog_rule_evaluations_total 3.0' in text                    # 3 facts x 1 rule
    conn = sqlite3.connect(tmp_path / "events.db")
    head = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    conn.close()
    assert _sample(text, "watchdog_chain_head_seq") >= head - 1             # daemon-stopped follows
    assert _sample(text, "watchdog_last_evaluation_timestamp_seconds") > 1.7e9
    assert "watchdog_store_writable 1.0" in text and "watchdog_ready 1.0" in text
    assert "watchdog_events_appended_total{" not in generate_latest(other.metrics.registry).decode()


async def test_reload_applies_a_changed_config_and_refuses_a_new_store_path(aiohttp_server, tmp_path):
    fed = FakeFed()
    server = await aiohttp_server(fed.app())
    config_path = write_config(tmp_path, str(server.make_url("")).rstrip("/"))
    daemon = app.build_daemon(app.resolve_config(str(config_path)), env={}, config_path=str(config_path), http=False)
    try:
        await daemon.start()
        assert await daemon.reload() == "unchanged"
        config_path.write_text(config_path.read_text().replace('catchup_horizon = "10d"', 'catchup_horizon = "2d"'))
        assert await daemon.reload() == "applied"
        assert daemon.catchup_horizon.days == 2
        text = config_path.read_text()
        config_path.write_text(text.replace("events.db", "elsewhere.db"))
        assert await daemon.reload() == "refused"
        config_path.write_text(text.replace("[daemon]", "[daemon]\nno_such_key = 1"))
        line = config_path.read_text().splitlines().index("no_such_key = 1") + 1
        assert await daemon.reload() == "refused"
        assert daemon.catchup_horizon.days == 2                 # still the last good config
        await daemon.stop()
    finally:
        app.close_daemon(daemon)
    conn = sqlite3.connect(tmp_path / "events.db")
    loaded = conn.execute("SELECT count(*) FROM events WHERE type = 'config-loaded'").fetchone()[0]
    refused = [json.loads(p)["reason"] for (p,) in conn.execute(
        "SELECT payload FROM events WHERE type = 'reload-refused' ORDER BY seq")]
    conn.close()
    assert loaded == 2
    assert refused[0].startswith("[store].path changed to ")
    assert refused[1] == f"{config_path}:{line}: daemon.no_such_key: unknown key; known keys: " \
                         "catchup_horizon, deadman_after, evaluate_every, poll_deadline, send_deadline"
