"""The shipped systemd unit is one systemd accepts, and it asks for what the daemon provides."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "deploy" / "watchdog.service"
REPLICA = UNIT.with_name("watchdog-replica.service")


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze") or ("/usr/bin/systemd-analyze"
                                                if Path("/usr/bin/systemd-analyze").exists() else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing (install systemd) and CI=true")
        pytest.skip("systemd-analyze is not installed")
    return found


@pytest.mark.parametrize("shipped", [UNIT, REPLICA], ids=lambda p: p.name)
def test_systemd_analyze_verify_accepts_the_unit(tmp_path, shipped):
    # verify needs ExecStart's binary to exist: point a copy at this venv's console script
    binary = Path(sys.executable).parent / "watchdog"
    assert binary.exists()
    text = shipped.read_text().replace("/opt/watchdog/.venv/bin/watchdog", str(binary))
    unit = tmp_path / shipped.name
    unit.write_text(text)
    done = subprocess.run([_systemd_analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert shipped.name not in done.stderr, done.stderr     # no warning about our unit


def test_a_broken_unit_is_rejected_by_the_same_check(tmp_path):
    """The check above can fail: a typo in a directive is reported."""
    binary = Path(sys.executable).parent / "watchdog"
    text = UNIT.read_text().replace("/opt/watchdog/.venv/bin/watchdog", str(binary))
    unit = tmp_path / "watchdog.service"
    unit.write_text(text.replace("Type=notify", "Type=notifyy"))
    done = subprocess.run([_systemd_analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert "notifyy" in done.stderr


def test_the_unit_is_type_notify_with_watchdog_reload_and_credentials():
    lines = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in UNIT.read_text().splitlines()
             if "=" in line and not line.startswith("#")}
    assert lines["Type"] == "notify" and lines["NotifyAccess"] == "main"
    assert int(lines["WatchdogSec"]) > 0
    assert lines["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert lines["DynamicUser"] == "yes" and lines["ProtectSystem"] == "strict" and lines["NoNewPrivileges"] == "yes"
    credentials = [line.split("=", 1)[1].split(":")[0] for line in UNIT.read_text().splitlines()
                   if line.startswith("LoadCredential=")]
    assert {"fred_api_key", "slack_webhook_url", "slack_bot_token", "smtp_password"} <= set(credentials)


def test_the_replica_unit_restarts_a_deposed_leader_and_gives_libpq_its_passfile():
    # a deposed leader exits 75 (LeaseLost.exit_code): on-failure restarts it, soon, as a follower
    from watchdog.model.errors import LeaseLost
    lines = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in REPLICA.read_text().splitlines()
             if "=" in line and not line.startswith("#")}
    assert LeaseLost.exit_code == 75 and lines["Restart"] == "on-failure" and int(lines["RestartSec"]) <= 5
    assert lines["Type"] == "notify" and lines["ExecStart"] == open(UNIT).read().split("ExecStart=")[1].split("\n")[0]
    assert "LoadCredential=pgpass:/etc/watchdog/credentials/pgpass" in REPLICA.read_text()
    assert lines["Environment"] == "PGPASSFILE=%d/pgpass"
