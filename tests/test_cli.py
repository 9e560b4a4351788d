"""The CLI contracts of DESIGN.md: one-line errors and exit codes, replay JSON, verify, audit."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import watchdog
from watchdog.cli import cli

REPO = Path(__file__).resolve().parent.parent


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_the_package_is_ours_not_the_file_events_library():
    assert Path(watchdog.__file__).resolve().parent == REPO / "watchdog"


def test_every_command_has_help():
    for name, command in cli.commands.items():
        result = invoke(name, "--help")
        assert result.exit_code == 0, name
        assert command.help and len(command.help) > 20, name


BROKEN = '''[[rule]]
id = "sofr-over-iorb"
expr = "__import__('os').system('touch pwned')"
above = 10
'''


@pytest.mark.parametrize("command", ["check", "replay", "run"])
def test_an_invalid_rule_file_is_refused_in_design_format_without_traceback(tmp_path, command, history_db):
    rules = tmp_path / "bad.toml"
    rules.write_text(BROKEN)
    args = {"check": ["check", "--rules", str(rules)],
            "replay": ["replay", "--db", str(history_db), "--rules", str(rules)],
            "run": ["run", "--once", "--db", str(tmp_path / "e.db"), "--rules", str(rules)]}[command]
    proc = subprocess.run([sys.executable, "-m", "watchdog", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[0]
    assert line.startswith(f"{rules}:3: rule sofr-over-iorb: expr: "), line
    assert not (tmp_path / "pwned").exists()                     # nothing in an expression ran


def test_check_accepts_the_default_rules_and_a_config(tmp_path):
    config = tmp_path / "w.toml"
    config.write_text('[store]\npath = "x.db"\n[sources.nyfed]\nbase_url = "http://127.0.0.1:1"\n')
    result = invoke("check", "--rules", str(REPO / "rules"), "--config", str(config))
    assert result.exit_code == 0 and "ok:" in result.output


def test_usage_errors_exit_2():
    assert CliRunner().invoke(cli, ["replay"]).exit_code == 2


def test_replay_json_has_design_fields_in_known_at_order_and_nothing_before_its_inputs(history_db):
    result = invoke("replay", "--db", str(history_db), "--rules", str(REPO / "rules"), "--json")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines, "the real history must produce alerts"
    keys = [(x["known_at"], x["rule"], x["date"]) for x in lines]
    assert keys == sorted(keys)
    for x in lines:
        assert {"rule", "state", "date", "known_at", "value", "severity", "inputs"} <= set(x)
        assert x["state"] in {"firing", "resolved", "flagged"}
        for name, value in x["inputs"].items():
            assert value["published_at"] <= x["known_at"], (x, name)
            assert value["date"] <= x["date"]
    spike = [x for x in lines if x["rule"] == "sofr-over-iorb" and x["state"] == "firing" and x["date"] == "2019-09-17"]
    assert spike and spike[0]["value"] == 315
    assert spike[0]["inputs"]["sofr"] == {"date": "2019-09-17", "value": 5.25, "published_at": "2019-09-18T12:00:00.000000Z"}
    assert spike[0]["known_at"] == "2019-09-18T12:00:00.000000Z"


def test_replay_is_quiet_while_reserves_were_abundant(history_db):
    result = invoke("replay", "--db", str(history_db), "--rules", str(REPO / "rules"), "--json",
                    "--since", "2021-08-01", "--until", "2022-12-31")
    warnings = [json.loads(x) for x in result.output.splitlines()]
    assert [x for x in warnings if x["state"] == "firing"] == []


def test_replay_as_of_equals_the_replay_of_a_log_cut_at_that_instant(history_db, tmp_path):
    as_of = "2019-09-18T08:30:00-04:00"
    cut_at = "2019-09-18T12:30:00.000000Z"
    full = invoke("replay", "--db", str(history_db), "--rules", str(REPO / "rules"), "--json", "--as-of", as_of)
    cut = tmp_path / "cut.db"
    shutil.copy(history_db, cut)
    conn = sqlite3.connect(cut)
    conn.execute("DROP TRIGGER events_append_only")
    # a copy without the facts published after the cut (renumbering is irrelevant to replay)
    conn.execute("CREATE TABLE keep AS SELECT * FROM events WHERE published_at <= ?", (cut_at,))
    conn.execute("DROP TABLE events")
    conn.execute("ALTER TABLE keep RENAME TO events")
    conn.execute("CREATE INDEX events_published ON events (published_at, seq)")
    conn.commit()
    conn.close()
    restricted = invoke("replay", "--db", str(cut), "--rules", str(REPO / "rules"), "--json")
    assert full.output == restricted.output
    lines = [json.loads(x) for x in full.output.splitlines()]
    assert max(x["known_at"] for x in lines) <= cut_at
    assert any(x["date"] == "2019-09-17" and x["rule"] == "sofr-over-iorb" for x in lines)
    assert not any(x["date"] >= "2019-09-18" for x in lines)


def test_a_bare_time_without_offset_is_refused(history_db):
    result = CliRunner().invoke(cli, ["replay", "--db", str(history_db), "--rules", str(REPO / "rules"),
                                      "--as-of", "2019-09-18T08:30:00"])
    assert result.exit_code == 1 and "offset" in result.output


def test_verify_passes_and_names_the_row_changed_behind_the_stores_back(history_db, tmp_path):
    assert invoke("verify", "--db", str(history_db)).exit_code == 0
    copy = tmp_path / "tampered.db"
    shutil.copy(history_db, copy)
    conn = sqlite3.connect(copy)
    conn.execute("DROP TRIGGER events_append_only")
    conn.execute("CREATE TEMP TABLE t AS SELECT 1")
    conn.commit()
    conn.close()
    conn = sqlite3.connect(copy)
    conn.executescript("""
        CREATE TABLE evil AS SELECT * FROM events;
        UPDATE evil SET payload = replace(payload, '"5.25"', '"1.25"') WHERE key = 'obs/sofr/2019-09-17';
    """)
    seq = conn.execute("SELECT seq FROM evil WHERE key = 'obs/sofr/2019-09-17'").fetchone()[0]
    conn.executescript("DROP TABLE events; ALTER TABLE evil RENAME TO events;")
    conn.commit()
    conn.close()
    result = CliRunner().invoke(cli, ["verify", "--db", str(copy)])
    assert result.exit_code == 1
    assert result.output.strip().startswith(f"seq {seq}: ")


def test_importing_the_same_files_twice_adds_nothing(history_db, tmp_path):
    copy = tmp_path / "again.db"
    shutil.copy(history_db, copy)
    result = invoke("import", "--db", str(copy), str(REPO / "data" / "history"))
    assert result.exit_code == 0
    assert "0 new events" in result.output


def test_audit_of_an_imported_log_without_daemon_is_clean(history_db):
    assert invoke("audit", "--db", str(history_db)).exit_code == 0


def test_the_shipped_deploy_config_and_default_rules_check_clean():
    result = invoke("check", "--config", str(REPO / "deploy" / "watchdog.toml"), "--rules", str(REPO / "rules"))
    assert result.exit_code == 0, result.output


def test_render_replays_a_log_of_facts_to_show_a_rules_message_for_a_date():
    from watchdog.cli import cli
    runner = CliRunner()
    result = runner.invoke(cli, ["render", "--db", "events.db.example", "--rules", "rules",
                                 "--rule", "sofr-over-iorb", "--date", "2019-09-17", "--format", "email"])
    assert result.exit_code == 0, result.output
    assert "Subject: [FIRING warning] sofr-over-iorb 2019-09-17: SOFR is 315 bp over IORB" in result.output
    missing = runner.invoke(cli, ["render", "--db", "events.db.example", "--rule", "sofr-over-iorb"])
    assert missing.exit_code == 1 and "add --rules to replay it" in missing.output


def test_a_reader_that_stops_early_gets_no_error_from_replay():
    cmd = (f"set -o pipefail; {sys.executable} -m watchdog replay --db events.db.example --rules rules "
           f"| head -n 1")
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and len(done.stdout.splitlines()) == 1


def test_an_announced_rate_hike_keeps_the_effective_days_spread_honest(tmp_path):
    from watchdog.cli import cli
    from watchdog.model.events import NewEvent
    from watchdog.store import SqliteEventStore
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "spread.toml").write_text('[[rule]]\nid = "sofr-over-iorb-now"\nexpr = "bp(sofr - iorb)"\n'
                                       'above = 10\nseverity = "warning"\n')

    def obs(series: str, day: str, value: str, published: str) -> NewEvent:
        return NewEvent(type="observation-recorded", key=f"obs/{series}/{day}", published_at=published,
                        payload={"series": series, "date": day, "value": value, "unit": "%",
                                 "source": "fred" if series == "iorb" else "nyfed"})
    facts = [obs("iorb", "2025-12-01", "3.65", "2025-12-01T05:00:00.000000Z")]
    facts += [obs("sofr", d, "3.70", p) for d, p in (("2025-12-09", "2025-12-10T13:00:00.000000Z"),
                                                      ("2025-12-10", "2025-12-11T13:00:00.000000Z"))]
    facts += [obs("sofr", "2025-12-11", "3.95", "2025-12-12T13:00:00.000000Z")]   # after the hike
    runner = CliRunner()

    def firings(db: Path) -> list[str]:
        result = runner.invoke(cli, ["replay", "--db", str(db), "--rules", str(rules), "--json"])
        assert result.exit_code == 0, result.output
        return [json.loads(line)["date"] for line in result.output.splitlines()
                if json.loads(line)["state"] == "firing"]
    for name in ("plain.db", "announced.db"):
        store = SqliteEventStore(str(tmp_path / name))
        store.append(facts)
        store.close()
    assert firings(tmp_path / "plain.db") == ["2025-12-11"]             # 30 bp over the old IORB
    result = runner.invoke(cli, ["announce", "--db", str(tmp_path / "announced.db"), "--effective", "2025-12-11",
                                 "--set", "iorb=3.90", "--announced", "2025-12-10T14:00:00-05:00"])
    assert result.exit_code == 0, result.output
    assert "observation-recorded iorb 2025-12-11 = 3.9% (published 2025-12-10T19:00:00.000000Z)" in result.output
    assert firings(tmp_path / "announced.db") == []                      # 5 bp over the new one
    bad = runner.invoke(cli, ["announce", "--db", str(tmp_path / "announced.db"), "--effective", "2025-12-11",
                              "--set", "sofr=3.9", "--announced", "2025-12-10T14:00:00-05:00"])
    assert bad.exit_code == 2 and "series must be one of iorb" in bad.output


def test_a_refused_announcement_names_the_option_at_fault_and_writes_nothing(tmp_path):
    db = tmp_path / "e.db"
    announce = ["announce", "--db", str(db), "--effective", "2025-12-11"]
    late = invoke(*announce, "--set", "iorb=3.90", "--announced", "2025-12-12T14:00:00-05:00")
    assert late.exit_code == 2
    assert "Error: --announced 2025-12-12T19:00:00.000000Z is after the effective date 2025-12-11" in late.output
    for setting, problem in (("iorb=abc", "'abc' is not a rate in percent"),
                             ("iorb=99", "'99' is not a plausible rate in percent")):
        bad = invoke(*announce, "--set", setting, "--announced", "2025-12-10T14:00:00-05:00")
        assert bad.exit_code == 2
        assert f"Error: --set {setting!r}: {problem}" in bad.output
    assert not db.exists()
    args = [*announce, "--set", "iorb=3.90", "--announced", "2025-12-10T14:00:00-05:00"]
    assert invoke(*args).exit_code == 0
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and again.stdout == ""
    assert again.stderr == "1 unchanged: the log already holds that rate\n"


def test_the_command_line_room_holds_no_event_loop_no_sql_and_no_network():
    """Parse, call, print: the loop, SQL and HTTP belong to the library (watchdog.app and below)."""
    import ast
    forbidden = {"asyncio", "sqlite3", "sqlite_utils", "aiohttp", "signal"}
    for path in sorted((REPO / "watchdog" / "cli").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & forbidden, f"{path.name} imports {sorted(imported & forbidden)}"


def test_a_silence_is_listed_while_active_and_after_expiry_only_with_all(tmp_path):
    db = tmp_path / "events.db"
    added = invoke("silence", "add", "--db", str(db), "--rule", "sofr-over-iorb", "--until", "2h",
                "--comment", "month-end, known", "--by", "desk")
    assert added.exit_code == 0, added.output
    silence_id = added.output.split()[0]
    # its end in New York time, its matchers as LABEL=VALUE (never a Python dict)
    assert re.fullmatch(rf"{silence_id}  until \d{{4}}-\d\d-\d\d \d\d:\d\d E[SD]T  rule=sofr-over-iorb\n",
                        added.output), added.output
    listed = invoke("silence", "list", "--db", str(db))
    assert listed.exit_code == 0 and silence_id in listed.output and " active " in listed.output
    assert "  rule=sofr-over-iorb  desk: month-end, known" in listed.output and "{" not in listed.output
    later = invoke("silence", "add", "--db", str(db), "--match", "area=repo", "--rule", "sofr-over-iorb",
                   "--until", "2099-07-01T13:15:00Z", "--comment", "known")
    assert later.output.split("  ", 1)[1] == "until 2099-07-01 09:15 EDT  rule=sofr-over-iorb area=repo\n"
    assert invoke("silence", "expire", "--db", str(db), later.output.split()[0]).exit_code == 0
    assert invoke("silence", "expire", "--db", str(db), silence_id).exit_code == 0
    assert silence_id not in invoke("silence", "list", "--db", str(db)).output
    assert f"{silence_id}  ended" in invoke("silence", "list", "--db", str(db), "--all").output
