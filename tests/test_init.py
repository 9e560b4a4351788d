"""`watchdog init DIR`: a new install that checks and runs, from what the package ships."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from watchdog.model.config import load_config

REPO = Path(__file__).resolve().parent.parent
WATCHDOG = str(Path(sys.executable).parent / "watchdog")


def watchdog(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("FRED_API_KEY", "CREDENTIALS_DIRECTORY")}
    return subprocess.run([WATCHDOG, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_init_writes_a_config_that_checks_with_the_default_rules_and_a_unit(tmp_path):
    done = watchdog("init", "new", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    new = tmp_path / "new"
    assert sorted(p.name for p in (new / "rules").iterdir()) == sorted(p.name for p in (REPO / "rules").glob("*.toml"))
    for rule in (new / "rules").iterdir():
        assert rule.read_bytes() == (REPO / "rules" / rule.name).read_bytes()
    assert f"wrote {Path('new') / 'watchdog.toml'}" in done.stdout and "next:" in done.stdout
    # the Done-when command as written: --config alone checks the rules the config names too
    checked = watchdog("check", "--config", "new/watchdog.toml", cwd=tmp_path)
    assert checked.returncode == 0 and "ok: 30 rules" in checked.stdout, checked.stderr
    (new / "rules" / "zz-mine.toml").write_text('[[rule]]\nid = "Bad_ID"\nexpr = "sofr"\nabove = 1\n')
    broken = watchdog("check", "--config", "new/watchdog.toml", cwd=tmp_path)
    assert broken.returncode == 1 and "zz-mine.toml:2: rule Bad_ID: id:" in broken.stderr, broken.stderr
    (new / "rules" / "zz-mine.toml").unlink()
    # relative to the config's folder, whatever the working directory
    config = load_config(tmp_path / "new" / "watchdog.toml")
    assert config.store.path == str(new / "events.db") and config.rules.paths == [str(new / "rules")]
    unit = (new / "watchdog.service").read_text()
    assert f"ExecStart={WATCHDOG} run --config {new / 'watchdog.toml'}" in unit
    assert f"LoadCredential=fred_api_key:{new / 'credentials' / 'fred_api_key'}" in unit
    credentials = new / "credentials"
    assert (credentials.stat().st_mode & 0o777) == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in credentials.iterdir()} == {
        "fred_api_key": 0o600, "slack_webhook_url": 0o600, "slack_bot_token": 0o600, "smtp_password": 0o600}


def test_init_refuses_to_overwrite_unless_forced_and_never_overwrites_a_credential(tmp_path):
    assert watchdog("init", "new", cwd=tmp_path).returncode == 0
    edited = tmp_path / "new" / "rules" / "funding.toml"
    edited.write_text("# mine\n")
    (tmp_path / "new" / "credentials" / "fred_api_key").write_text("my-key")
    refused = watchdog("init", "new", cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: new: would overwrite new/watchdog.toml")
    assert edited.read_text() == "# mine\n"                                  # nothing written
    forced = watchdog("init", "new", "--force", "--store", "/var/lib/watchdog/events.db", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert edited.read_bytes() == (REPO / "rules" / "funding.toml").read_bytes()
    assert (tmp_path / "new" / "credentials" / "fred_api_key").read_text() == "my-key"
    assert load_config(tmp_path / "new" / "watchdog.toml").store.path == "/var/lib/watchdog/events.db"
    assert "note:" not in forced.stdout        # the unit's state directory: no warning


def test_the_written_config_runs_once_from_elsewhere_without_a_fred_key(tmp_path):
    """Pointed at a closed local port (no network): the rules load from the config's folder, the
    log is written beside it, m2 and gdp are skipped with one warning, and the run exits 0."""
    assert watchdog("init", "new", cwd=tmp_path).returncode == 0
    config = tmp_path / "new" / "watchdog.toml"
    text = config.read_text()
    paths, rest = text.split("# NY Fed", 1)              # [store] and [rules] as init wrote them
    fred = ('[sources.fred]\nbase_url = "http://127.0.0.1:9"\ncsv_base_url = "http://127.0.0.1:9"\n'
            'series = { iorb = "IORB", m2 = "M2SL", gdp = "GDP" }\nretries = 0\n\n')
    config.write_text(paths + fred + "[receivers.screen]" + rest.split("[receivers.screen]", 1)[1])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = watchdog("run", "--config", str(config), "--once", "--log-format", "text", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "events.db").exists() and not (elsewhere / "events.db").exists()
    warnings = [line for line in done.stderr.splitlines() if "not polled" in line]
    assert len(warnings) == 1 and "m2 (M2SL), gdp (GDP)" in warnings[0] and "$FRED_API_KEY" in warnings[0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_written_unit_is_one_systemd_accepts(tmp_path):
    assert watchdog("init", "new", cwd=tmp_path).returncode == 0
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "new" / "watchdog.service")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "watchdog.service" not in done.stderr, done.stderr
