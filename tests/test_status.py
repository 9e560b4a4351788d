"""`watchdog status`: what fires (recorded, or replayed with rules), every series' latest value
and whether it is stale at `now`, and what is owed — readable on 80 columns, exact in --json."""
from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from watchdog.cli import cli
from watchdog.market.series import nominal_publication_text
from watchdog.model.events import (
    NOTIFICATION_REQUESTED,
    RULES_LOADED,
    FlushRequested,
    Observation,
    RulesLoaded,
    RuleText,
    new_alert,
    new_observation,
    typed_event,
)
from watchdog.rules.ruleset import load_rules
from watchdog.store import SqliteEventStore
from watchdog.tuning.replay import replay
from watchdog.tuning.status import indicator

REPO = Path(__file__).resolve().parent.parent
RECORDED = datetime(2025, 11, 3, 14, 0, tzinfo=UTC)     # 09:00 EST, after SOFR for 10-31

RULES = '''
[[rule]]
id = "sofr-over-iorb"
expr = "bp(sofr - iorb)"
above = 10
severity = "warning"
summary = "SOFR is {{ value }} bp over IORB"

[[rule]]
id = "reserves-low"
expr = "reserves"
below = 2900
severity = "warning"
summary = "Reserves are {{ value }}"
'''

SOFR = {"2025-10-27": "3.95", "2025-10-28": "3.97", "2025-10-29": "3.96", "2025-10-30": "4.10",
        "2025-10-31": "4.22"}
RESERVES = {"2025-10-08": "3010.5", "2025-10-15": "2950.25", "2025-10-22": "2931", "2025-10-29": "2848.021"}


def observation(series: str, day: str, value: str, unit: str = "%", source: str = "nyfed",
                published: str | None = None, **attributes: str):
    obs = Observation(series=series, date=day, value=value, unit=unit, source=source, attributes=attributes)
    return new_observation(obs, published or nominal_publication_text(series, date.fromisoformat(day)))


@pytest.fixture
def log(tmp_path) -> Path:
    """A small real log: SOFR for a week (32 bp over IORB by 10-31), IORB, weekly reserves."""
    path = tmp_path / "events.db"
    store = SqliteEventStore(path, now=lambda: RECORDED)
    store.append([observation("iorb", "2025-09-18", "3.9", source="fomc",
                              published="2025-09-17T18:00:00.000000Z")]
                 + [observation("sofr", d, v, p1="3.8", p99="4.4", volume="3000") for d, v in SOFR.items()]
                 + [observation("reserves", d, v, unit="USD bn", source="fred") for d, v in RESERVES.items()])
    store.close()
    return path


@pytest.fixture
def rules(tmp_path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "desk.toml").write_text(RULES)
    return folder


def run(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def status_json(*args: str) -> dict:
    result = run("status", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def record_alerts(path: Path, rules: Path) -> None:
    """What the daemon records: the rule set in force, then the engine's alert transitions."""
    ruleset = load_rules([str(rules)])
    store = SqliteEventStore(path, now=lambda: RECORDED)
    loaded = RulesLoaded(hash=ruleset.hash, paths=[str(rules)], rules=[
        RuleText(id=r.id, hash=r.hash, text=r.canonical_text) for r in ruleset.all_rules])
    store.append([typed_event(RULES_LOADED, f"rules/{ruleset.hash}", loaded)])
    store.append([new_alert(t) for t in replay(store, ruleset)])
    store.close()


def test_status_replays_the_rules_and_reads_the_firing_value_against_its_threshold_in_bp(log, rules, monkeypatch):
    monkeypatch.chdir(rules.parent)             # the folder as the user typed it, whatever pytest's tmp
    result = run("status", "--db", str(log), "--rules", "rules", "--now", "2025-11-03T09:00:00-05:00")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "watchdog status at 2025-11-03 09:00 EST"
    assert "Firing: 2 (replayed with rules: the log holds no alert events)" in lines
    assert max(len(line) for line in lines) <= 80
    at = lines.index("  sofr-over-iorb  warning  since 2025-10-30")
    assert lines[at + 1] == "    SOFR−IORB 20 bp > 10 bp; known 2025-10-31 08:00 EDT"
    assert "    reserves $2,848bn < $2,900bn; known 2025-10-30 16:30 EDT" in lines
    assert max(len(line) for line in lines) <= 80


def test_status_shows_each_series_latest_value_with_its_unit_date_publication_and_sparkline(log, rules):
    result = run("status", "--db", str(log), "--rules", str(rules), "--now", "2025-11-03T09:00:00-05:00")
    lines = result.output.splitlines()
    sofr = next(line for line in lines if line.startswith("  sofr "))
    assert sofr.split()[:4] == ["sofr", "4.22%", "2025-10-31", "ok"]
    assert sofr.split()[4] == "▁▂▁▅█"                       # 3.95 3.97 3.96 4.10 4.22
    assert lines[lines.index(sofr) + 1] == "    published 2025-11-03 08:00 EST, 1h ago"
    reserves = next(line for line in lines if line.startswith("  reserves "))
    assert reserves.split()[:4] == ["reserves", "$2,848bn", "2025-10-29", "ok"]
    iorb = next(line for line in lines if line.startswith("  iorb "))
    assert iorb.split() == ["iorb", "3.90%", "2025-09-18", "-"]       # a rate in force: not judged
    assert "    administered: holds until changed: iorb" in lines
    assert "Series: 3, 0 stale (STALE: a newer value is overdue)" in lines
    assert "Owed: nothing (the outbox is empty)" in lines


def test_a_week_later_every_feed_is_stale_on_its_own_calendar_and_frequency(log, rules):
    body = status_json("--db", str(log), "--rules", str(rules), "--now", "2025-11-10T12:00:00-05:00")
    by_name = {s["series"]: s for s in body["series"]}
    # SOFR for Friday 11-07 was due Monday 08:00 ET (+2h grace); the H.4.1 week of 11-05 on 11-06
    assert by_name["sofr"]["stale"] is True and by_name["sofr"]["expected_date"] == "2025-11-07"
    assert by_name["sofr"]["judged_by"] == "sifma calendar, 2h grace"
    assert by_name["reserves"]["stale"] is True and by_name["reserves"]["expected_date"] == "2025-11-05"
    assert by_name["reserves"]["judged_by"] == "weekly, 2h grace"
    assert by_name["iorb"]["stale"] is None
    text = run("status", "--db", str(log), "--rules", str(rules), "--now", "2025-11-10T12:00:00-05:00").output
    assert "Series: 3, 2 stale (STALE: a newer value is overdue)" in text
    assert "    published 2025-11-03 08:00 EST, 7d 4h ago; due: the value for 2025-11-07" in text
    assert "    published 2025-10-30 16:30 EDT, 10d 20h ago; due: the value for 2025-11-05" in text
    assert all(len(line) <= 80 for line in text.splitlines())


def test_a_staleness_rule_sets_the_grace_of_its_series(log, rules):
    (rules / "stale.toml").write_text('[[staleness_rule]]\nid = "sofr-stale"\nseries = "sofr"\ngrace = "3h"\n'
                                      'severity = "warning"\nsummary = "Stale feed: SOFR (value for {{ date }})"\n')
    # SOFR for 11-03 is due 11-04 08:00 EST: at 10:30 it is late by 2h's measure, not by 3h's
    body = status_json("--db", str(log), "--rules", str(rules), "--now", "2025-11-04T10:30:00-05:00")
    sofr = next(s for s in body["series"] if s["series"] == "sofr")
    assert sofr["judged_by"] == "sifma calendar, 3h grace"
    assert sofr["expected_date"] == "2025-10-31" and sofr["stale"] is False


def test_json_is_exact_decimal_strings_and_utc_times(log, rules):
    body = status_json("--db", str(log), "--rules", str(rules), "--now", "2025-11-03T09:00:00-05:00")
    assert body["now"] == "2025-11-03T14:00:00.000000Z"
    assert body["alerts"] == {"from": "replayed", "rules": [str(rules)], "log_has_alerts": False}
    [sofr_alert] = [a for a in body["firing"] if a["rule"] == "sofr-over-iorb"]
    assert {k: sofr_alert[k] for k in ("since", "known_at", "value", "threshold", "unit", "op", "indicator")} == {
        "since": "2025-10-30", "known_at": "2025-10-31T12:00:00.000000Z", "value": "20", "threshold": "10",
        "unit": "bp", "op": ">", "indicator": "SOFR−IORB"}
    reserves = next(s for s in body["series"] if s["series"] == "reserves")
    assert reserves["value"] == "2848.021" and Decimal(reserves["value"]) == Decimal("2848.021")
    assert reserves["published_at"] == "2025-10-30T20:30:00.000000Z"
    assert reserves["age_seconds"] == 4 * 86400 - 6 * 3600 - 30 * 60
    assert next(s for s in body["series"] if s["series"] == "sofr")["recent"] == ["3.95", "3.97", "3.96", "4.1", "4.22"]
    assert body["owed"] == []


def test_now_in_the_past_counts_only_what_was_published_by_then(log, rules):
    body = status_json("--db", str(log), "--rules", str(rules), "--now", "2025-10-31T07:59:00-04:00")
    sofr = next(s for s in body["series"] if s["series"] == "sofr")
    assert (sofr["date"], sofr["value"]) == ("2025-10-29", "3.96")        # 10-30 is out at 08:00
    # SOFR was 6 bp over IORB on 10-29; reserves for 10-29 ($2,848bn) were out on 10-30
    assert [(a["rule"], a["since"]) for a in body["firing"]] == [("reserves-low", "2025-10-29")]


def test_recorded_alerts_are_read_when_the_log_holds_them_and_resolved_ones_are_not_firing(log, rules):
    record_alerts(log, rules)
    body = status_json("--db", str(log), "--now", "2025-11-03T09:00:00-05:00")
    assert body["alerts"] == {"from": "recorded", "rules": [], "log_has_alerts": True}
    assert {a["rule"]: a["value"] for a in body["firing"]} == {"sofr-over-iorb": "20", "reserves-low": "2848.021"}
    text = run("status", "--db", str(log), "--now", "2025-11-03T09:00:00-05:00").output
    assert "Firing: 2 (recorded alerts)" in text
    assert "    SOFR−IORB 20 bp > 10 bp; known 2025-10-31 08:00 EDT" in text    # the unit, from rules-loaded
    # SOFR falls back under IORB + 10 bp on 11-03: the daemon records the resolution
    store = SqliteEventStore(log, now=lambda: RECORDED)
    store.append([observation("sofr", "2025-11-03", "3.95")])
    store.close()
    record_alerts(log, rules)
    later = status_json("--db", str(log), "--now", "2025-11-05T09:00:00-05:00")
    assert [a["rule"] for a in later["firing"]] == ["reserves-low"]
    replayed = status_json("--db", str(log), "--rules", str(rules), "--now", "2025-11-05T09:00:00-05:00")
    assert replayed["alerts"]["from"] == "replayed" and replayed["alerts"]["log_has_alerts"] is True
    assert [a["rule"] for a in replayed["firing"]] == ["reserves-low"]


def test_the_outbox_shows_what_is_still_owed(log, rules):
    record_alerts(log, rules)
    store = SqliteEventStore(log, now=lambda: RECORDED)
    firing = [f"{e.payload['rule']}@{e.payload['evaluated_at']}" for e in store.read(types={"alert-firing"})]
    store.append([typed_event(NOTIFICATION_REQUESTED, "flush/console/1", FlushRequested(
        group="console/", receiver="console", route="default", flush=1,
        requested_at="2025-11-03T14:00:00.000000Z", reason="firing-changed", firing=firing))])
    store.close()
    body = status_json("--db", str(log), "--now", "2025-11-03T09:00:00-05:00")
    assert [(row["receiver"], row["state"], row["rules"]) for row in body["owed"]] == [
        ("console", "due", ["reserves-low", "sofr-over-iorb"])]
    text = run("status", "--db", str(log), "--now", "2025-11-03T09:00:00-05:00").output
    assert "Owed: 1 notifications" in text
    assert "  console due: reserves-low, sofr-over-iorb (attempts 0)" in text


def test_a_log_without_alerts_or_rules_to_replay_still_shows_its_series(log, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                     # no ./rules to replay, and no --rules
    body = status_json("--db", str(log), "--now", "2025-11-03T09:00:00-05:00")
    assert body["alerts"]["from"] == "none" and body["firing"] == []
    assert [s["series"] for s in body["series"]] == ["sofr", "iorb", "reserves"]
    text = run("status", "--db", str(log), "--now", "2025-11-03T09:00:00-05:00").output
    assert "Firing: 0 (the log holds no alert events and no rules to replay: give --rules)" in text


def test_status_errors_are_one_line(tmp_path, log):
    missing = run("status", "--db", str(tmp_path / "nope.db"))
    assert missing.exit_code == 1 and missing.output.strip() == f"error: event log {tmp_path / 'nope.db'}: no such file"
    bad_now = run("status", "--db", str(log), "--now", "yesterday")
    assert bad_now.exit_code == 1 and len(bad_now.output.strip().splitlines()) == 1
    assert run("status").exit_code == 2


def test_indicators_are_named_with_their_units():
    assert indicator("bp(sofr - iorb)") == ("SOFR−IORB", "bp")
    assert indicator("bp(sofr.p99 - iorb)") == ("SOFR p99−IORB", "bp")
    assert indicator("reserves / gdp * 100") == ("reserves/GDP", "ratio")
    assert indicator("onrrp") == ("ON RRP", "USD bn")
    assert indicator('change(tga, "5bd") - lag(onrrp, 5)') == ('change(tga, "5bd") - lag(onrrp, 5)', "USD bn")
    assert indicator("sofr.volume") == ("SOFR volume", "USD bn")
    assert indicator('zscore(bp(sofr - iorb), "250bd")')[1] is None


def readme_status_commands() -> list[str]:
    section = (REPO / "README.md").read_text().split("## At a glance: status, series and CSV", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.startswith("watchdog status") and "--json" not in line]


def test_on_the_example_log_today_every_feed_is_stale_and_the_firing_alerts_are_replayed(monkeypatch):
    """The README's `watchdog status --db events.db.example`, as written: the shipped history
    ends in 2026, so today every market, weekly, monthly and quarterly series is stale, the
    administered rates are not judged, and what fires at the log's end is replayed with the
    default rules folder (the log records no alerts), the staleness rules ticked up to today."""
    monkeypatch.chdir(REPO)
    today = readme_status_commands()[0]
    assert today == "watchdog status --db events.db.example"
    result = run(*shlex.split(today)[1:])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "Firing: 7 (replayed with rules: the log holds no alert events)" in lines
    assert [line.split()[0] for line in lines if re.match(r"^  \S+  (critical|warning|info)  since ", line)] == [
        "onrrp-near-zero", "reserves-to-gdp-low", "reserves-to-m2-low", "effr-stale", "tga-stale",
        "repo-above-iorb-routinely", "sofr-stale"]
    assert "    reserves/GDP 9.70% < 10.00%; known 2025-10-30 16:30 EDT" in lines
    block = lines[lines.index(next(line for line in lines if line.startswith("Series: "))):]
    block = block[:block.index("")]
    flags = {line.split()[0]: line.split()[3] for line in block
             if re.match(r"^  [a-z_0-9]+ +\S+ +\d{4}-\d\d-\d\d ", line)}
    assert len(flags) == 20
    administered = ("iorb", "onrrp_rate", "srf_rate", "fftarget_upper", "fftarget_lower",
                    "qt_cap_treasury", "qt_cap_mbs")
    assert {name for name, flag in flags.items() if flag != "STALE"} == set(administered)
    assert {flags[name] for name in administered} == {"-"}


def test_the_readme_sample_is_what_status_prints_on_the_example_log(monkeypatch):
    monkeypatch.chdir(REPO)
    [_, at_noon] = readme_status_commands()
    result = run(*shlex.split(at_noon)[1:])
    assert result.exit_code == 0, result.output
    printed = result.output.splitlines()
    assert max(len(line) for line in printed) <= 80
    section = (REPO / "README.md").read_text().split("## At a glance: status, series and CSV", 1)[1]
    sample = next(body for lang, body in re.findall(r"```(\w*)\n(.*?)```", section, re.DOTALL) if not lang).splitlines()
    assert sample and all(line in printed for line in sample if line.strip() and line.strip() != "…")


def test_status_names_the_data_the_rules_lack_and_shows_every_derived_series(monkeypatch):
    # The shipped log has no SRF take-up, no primary credit and no speech after 2024-12-03: the
    # rules reading them are silent for want of data, and status says which source fetches it.
    monkeypatch.chdir(REPO)
    result = run("status", "--db", "events.db.example", "--rules", "rules",
                 "--now", "2025-11-03T12:00:00-05:00", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    gaps = {g["series"]: g for g in body["gaps"]}
    assert gaps["srf"]["rules"] == ["srf-takeup", "srf-takeup-selected-date"]
    assert gaps["srf"]["source"] == "nyfed-operations" and gaps["srf"]["latest"] is None
    assert gaps["primary_credit"]["source"] == "fred"
    assert gaps["speeches"]["latest"] == "2024-12-03" and "reserves-not-abundant" in gaps["speeches"]["rules"]
    assert "sofr" not in gaps and "ofr_fsi" not in gaps
    derived = {d["series"]: d for d in body["derived"]}
    assert set(derived) == {s.name for s in load_rules([str(REPO / "rules")]).series}
    # EFFR 3.86 against IORB 3.90 on 2025-10-31 (EFFR for T is out at T+1 09:00)
    assert derived["effr_iorb"] == {**derived["effr_iorb"], "date": "2025-10-31", "value": "-4", "unit": "bp"}
    # the caps are step series dated on their effective date: on 2025-11-03 the latest known is
    # the end of runoff announced 2025-10-29 for 2025-12-01; before it, $5bn + $35bn a month
    assert derived["qt_pace"] == {**derived["qt_pace"], "date": "2025-12-01", "value": "0",
                                  "unit": "USD bn/month"}
    assert derived["qt_pace"]["recent"][-2:] == ["40", "0"]
    assert derived["sofr_days_above_iorb"]["value"] == "15"
    text = run("status", "--db", "events.db.example", "--rules", "rules",
               "--now", "2025-11-03T12:00:00-05:00").output
    assert "    fetch it: watchdog backfill --source nyfed-operations --since <date>" in text
    assert "  sofr_days_above_iorb                  15  2025-10-31" in text


def test_recorded_alerts_are_shown_even_when_the_configured_rule_files_are_broken(log, rules, tmp_path, monkeypatch):
    # The alerts are the log's own; the rule files only add the derived series. A broken rules
    # folder (mid-edit) must not stop `watchdog status` from saying what fires.
    record_alerts(log, rules)
    broken = tmp_path / "broken-rules"
    broken.mkdir()
    (broken / "r.toml").write_text('[[rule]]\nid = "x"\nexpr = "nope"\nabove = 1\n')
    config = tmp_path / "watchdog.toml"
    config.write_text(f'[store]\npath = "{log}"\n[rules]\npaths = ["{broken}"]\n')
    body = status_json("--config", str(config), "--now", "2025-11-03T09:00:00-05:00")
    assert body["alerts"]["from"] == "recorded" and len(body["firing"]) == 2
    assert body["derived"] == [] and body["gaps"] == []
