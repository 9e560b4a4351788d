"""Backtests: hand-computed catches, lead times (business days across holidays), false alarms,
precision, recall and alert-days on small real logs; the episodes file's errors with lines; the
command on the shipped history."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from backtest_logs import write_log
from click.testing import CliRunner

import watchdog
from watchdog.app import open_store
from watchdog.cli import cli
from watchdog.model.errors import RuleError
from watchdog.rules.ruleset import parse_rules
from watchdog.tuning.backtest import OVERALL, backtest, lead_days, scored_rules, window
from watchdog.tuning.episodes import load_episodes, packaged_episodes, parse_episodes
from watchdog.tuning.replay import replay

REPO = Path(__file__).resolve().parent.parent

RULES = """
[[rule]]
id = "spread"
expr = "bp(sofr - iorb)"
above = 10

[[staleness_rule]]
id = "sofr-stale"
series = "sofr"
grace = "2h"
"""

# SOFR over IORB (5.40) by 20-30 bp on four dates, 10 bp under it the next business day:
# firing known at T+1 08:00 ET, resolved the day after.
SOFR = {"2024-03-26": "5.6", "2024-03-27": "5.3",      # known 03-27 (Wed), before Good Friday
        "2024-05-14": "5.6", "2024-05-15": "5.3",      # known 05-15, inside the calm May
        "2024-06-10": "5.6", "2024-06-11": "5.3",      # known 06-11, outside every episode
        "2024-07-02": "5.7", "2024-07-05": "5.3"}      # known 07-03, resolved known 07-08 (after July 4)

EPISODES = """
lookback = "10bd"

[[episode]]
name = "after-good-friday"
start = 2024-04-01
end = 2024-04-05
kind = "stress"
split = "calibration"

[[episode]]
name = "quiet-may"
start = 2024-05-01
end = 2024-05-31
kind = "calm"
split = "held-back"

[[episode]]
name = "quarter-end"
start = 2024-07-01
end = 2024-07-03
kind = "selected-date"
split = "held-back"
lookback = "1bd"

[[episode]]
name = "after-july-4"
start = 2024-07-05
end = 2024-07-12
kind = "stress"
split = "held-back"

[[episode]]
name = "labor-day"
start = 2024-09-03
end = 2024-09-06
kind = "stress"
split = "calibration"
"""


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("backtest") / "events.db"
    return write_log(path, {"iorb": {"2024-01-01": "5.4"}, "sofr": SOFR})


def run(log: Path, episodes_text: str = EPISODES, split: str = "all"):
    ruleset = parse_rules(RULES)
    store = open_store(log, readonly=True)
    try:
        transitions = list(replay(store, ruleset))
    finally:
        store.close()
    return backtest(transitions, parse_episodes(episodes_text).select(split), scored_rules(ruleset))


def test_lead_time_counts_business_days_across_good_friday_and_july_4():
    # known Wed 03-27; 03-28 Thu, Good Friday closed, weekend, Mon 04-01: two business days
    assert lead_days("sifma", date(2024, 3, 27), date(2024, 4, 1)) == 2
    # known Wed 07-03; July 4 closed; Fri 07-05: one business day
    assert lead_days("sifma", date(2024, 7, 3), date(2024, 7, 5)) == 1
    assert lead_days("sifma", date(2024, 7, 3), date(2024, 7, 1)) == -2    # after the start
    assert lead_days("sifma", date(2024, 7, 5), date(2024, 7, 5)) == 0


def test_window_reaches_back_lookback_business_days_skipping_holidays():
    episodes = parse_episodes(EPISODES)
    by_name = {e.name: e for e in episodes.episodes}
    assert window(by_name["after-good-friday"], episodes) == (date(2024, 3, 15), date(2024, 4, 5))
    # Juneteenth (06-19) is a SIFMA holiday: ten business days before 07-05 is 06-20
    assert window(by_name["after-july-4"], episodes) == (date(2024, 6, 20), date(2024, 7, 12))
    assert window(by_name["quarter-end"], episodes) == (date(2024, 6, 28), date(2024, 7, 3))


def test_catches_and_lead_times_are_the_first_alert_known_in_each_window(small_log):
    score = run(small_log).score_of("spread")
    assert [(c.episode, c.known_day.isoformat(), c.lead) for c in score.catches] == [
        ("after-good-friday", "2024-03-27", 2),
        ("quarter-end", "2024-07-03", -2),
        ("after-july-4", "2024-07-03", 1),
    ]
    assert (score.caught, score.episodes, score.recall) == (3, 4, Decimal("0.75"))
    assert score.median_lead == 1


def test_false_alarm_is_an_alert_known_in_a_calm_episode_and_outside_is_not_scored(small_log):
    score = run(small_log).score_of("spread")
    assert [(a.rule, a.date, a.known_day.isoformat()) for a in score.false_alarms] == [
        ("spread", "2024-05-14", "2024-05-15")]
    assert (score.matched, score.outside) == (2, 1)       # 07-03 matches two episodes: counted once
    assert score.precision == Decimal(2) / Decimal(3)


def test_alert_days_are_business_days_firing_until_the_resolution_is_known(small_log):
    result = run(small_log)
    # 03-27, 05-15, 06-11 one day each; 07-03 to 07-08 exclusive: 07-03 and 07-05 (July 4 closed)
    assert result.score_of("spread").alert_days == 5
    assert result.span == (date(2024, 3, 15), date(2024, 9, 6))


def test_staleness_and_pending_are_not_alerts_and_overall_follows_the_scored_rules(small_log):
    result = run(small_log)
    assert [s.rule for s in result.rules] == ["spread"]
    assert "sofr-stale" not in result.alerts
    assert result.overall.rule == OVERALL
    assert result.overall.catches == result.score_of("spread").catches
    assert len(result.alerts["spread"]) == 4
    assert all(t.rule == "spread" for t in result.transitions["spread"])


def test_split_scores_only_its_episodes_and_the_rest_is_outside(small_log):
    score = run(small_log, split="held-back").score_of("spread")
    assert [c.episode for c in score.catches] == ["quarter-end", "after-july-4"]
    assert score.episodes == 2
    assert (score.matched, len(score.false_alarms), score.outside) == (1, 1, 2)


def test_no_alert_in_a_window_is_a_miss_with_no_lead(small_log):
    only_labor_day = EPISODES.split("[[episode]]")[0] + "[[episode]]" + EPISODES.split("[[episode]]")[5]
    score = run(small_log, only_labor_day).score_of("spread")
    assert (score.caught, score.episodes, score.recall, score.median_lead) == (0, 1, Decimal(0), None)
    assert score.precision is None                         # no alert in a labelled period


# ---- the episodes file ----

def errors_of(text: str) -> list[str]:
    with pytest.raises(RuleError) as caught:
        parse_episodes(text, "eps.toml")
    return caught.value.problems


def test_episode_errors_name_file_line_episode_and_field():
    text = """lookback = "10bd"
[[episode]]
name = "spike"
start = 2019-09-16
end = 2019-09-13
kind = "stress"
split = "calibration"

[[episode]]
name = "turn"
start = "2019-09-30"
end = 2019-10-01
kind = "pressure"
split = "held-back"
colour = "red"
"""
    assert errors_of(text) == [
        "eps.toml:5: episode spike: end: end 2019-09-13 is before start 2019-09-16",
        "eps.toml:11: episode turn: start: must be a TOML date such as 2019-09-16, got '2019-09-30' "
        "(write it without quotes: start = 2019-09-16)",
        "eps.toml:13: episode turn: kind: must be one of 'stress', 'selected-date' or 'calm', got 'pressure'",
        "eps.toml:15: episode turn: colour: unknown field; known fields: description, end, kind, "
        "lookback, name, split, start",
    ]


def test_episode_errors_for_missing_fields_duplicates_and_overlaps():
    text = """[[episode]]
name = "calm-2022"
start = 2022-01-03
end = 2022-12-30
kind = "calm"
split = "held-back"

[[episode]]
name = "calm-2022"
start = 2022-06-01
end = 2022-06-03
kind = "stress"
split = "held-back"

[[episode]]
name = "no-split"
start = 2023-01-03
end = 2023-01-04
kind = "stress"
"""
    assert errors_of(text) == [
        "eps.toml:9: episode calm-2022: name: duplicate name (first defined at line 2)",
        "eps.toml:9: episode calm-2022: start: overlaps the calm episode calm-2022 (line 2)",
        "eps.toml:15: episode no-split: split: required field is missing",
    ]


def test_episode_file_level_errors_and_syntax_errors_have_lines():
    assert errors_of('lookback = "ten"\ncalendar = "lse"\nepisodes = []\n') == [
        "eps.toml:1: lookback: lookback must be business days such as '10bd' (0 to 260), got 'ten'",
        "eps.toml:2: calendar: unknown calendar 'lse'; known: sifma, fed, daily",
        "eps.toml:3: unknown table or key 'episodes'; an episodes file holds lookback, calendar "
        "and [[episode]] tables",
    ]
    assert errors_of('[[episode]]\nname = "x"\nstart = 2019-09-16\nend = \n')[0].startswith(
        "eps.toml:4: TOML syntax error: ")
    assert errors_of("") == ["eps.toml:1: no [[episode]] tables: nothing to score"]


def test_default_episodes_are_real_split_and_labelled():
    episodes = load_episodes(str(REPO / "episodes" / "default.toml"))
    assert len(episodes.episodes) >= 10
    kinds = {e.kind for e in episodes.episodes}
    assert kinds == {"stress", "selected-date", "calm"}
    assert {e.split for e in episodes.episodes} == {"calibration", "held-back"}
    names = {e.name for e in episodes.episodes}
    assert {"repo-spike-2019-09", "dash-for-cash-2020-03", "svb-2023-03", "calm-abundant-2022"} <= names


def test_the_repository_episodes_file_is_the_one_shipped_in_the_package():
    assert (REPO / "episodes" / "default.toml").read_bytes() == Path(packaged_episodes()).read_bytes()
    assert Path(packaged_episodes()).is_relative_to(Path(watchdog.__file__).parent)


def test_default_episodes_come_from_the_package_where_the_working_directory_has_none(small_log, tmp_path,
                                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)                          # no ./episodes/default.toml here
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    shipped = CliRunner().invoke(cli, ["backtest", "--db", str(small_log), "--rules", str(rules)])
    assert shipped.exit_code == 0, shipped.output
    assert shipped.output.startswith("backtest: 16 episodes (")
    assert "repo-spike-2019-09" in shipped.output
    # a ./episodes/default.toml of the working directory is the default where there is one
    (tmp_path / "episodes").mkdir()
    (tmp_path / "episodes" / "default.toml").write_text(EPISODES)
    local = CliRunner().invoke(cli, ["backtest", "--db", str(small_log), "--rules", str(rules)])
    assert local.exit_code == 0, local.output
    assert local.output.startswith("backtest: 5 episodes (4 to catch)") and "after-good-friday" in local.output


# ---- the command ----

def test_backtest_command_prints_episodes_and_scores_on_the_shipped_history():
    result = CliRunner().invoke(cli, ["backtest", "--db", str(REPO / "events.db.example"), "--rules",
                                      str(REPO / "rules"), "--episodes", str(REPO / "episodes" / "default.toml"),
                                      "--split", "held-back"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("backtest: 10 episodes (8 to catch), lookback 10bd, sifma business days")
    svb = next(line for line in lines if line.startswith("svb-2023-03"))
    assert "missed" in svb
    dash = next(line for line in lines if line.startswith("dash-for-cash-2020-03"))
    assert dash.split()[-3:] == ["sofr-p99-over-iorb", "2020-03-05", "+2"]
    overall = next(line for line in lines if line.startswith("all rules"))
    assert overall.split()[2:4] == ["7/8", "0.88"]
    assert not any(line.startswith("calibration") for line in lines)


def test_backtest_command_reports_a_bad_episodes_file_in_one_located_line(tmp_path):
    bad = tmp_path / "eps.toml"
    bad.write_text('[[episode]]\nname = "x"\nstart = 2019-09-16\nend = 2019-09-17\nkind = "panic"\nsplit = "held-back"\n')
    result = CliRunner().invoke(cli, ["backtest", "--db", str(REPO / "events.db.example"),
                                      "--rules", str(REPO / "rules"), "--episodes", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip() == (f"{bad}:5: episode x: kind: must be one of 'stress', "
                                     "'selected-date' or 'calm', got 'panic'")


def test_a_group_of_rules_is_scored_as_one(small_log):
    result = run(small_log)
    assert result.combined(["spread"], "group").catches == result.score_of("spread").catches
    empty = result.combined([], "nothing")
    assert (empty.caught, empty.episodes, empty.precision, empty.alert_days) == (0, 4, None, 0)


def test_backtest_lookback_option_narrows_every_window_to_its_start():
    result = CliRunner().invoke(cli, ["backtest", "--db", str(REPO / "events.db.example"), "--rules",
                                      str(REPO / "rules"), "--split", "held-back", "--lookback", "0bd"])
    assert result.exit_code == 0, result.output
    dash = next(line for line in result.output.splitlines() if line.startswith("dash-for-cash-2020-03"))
    # the tail's warning of 03-05 is now too early to count: the first alert is the OFR stress
    # index's on 03-11 (before it, funding-stress on 03-18)
    assert dash.split()[3:] == ["2020-03-09..2020-03-20", "ofr-fsi-high", "2020-03-11", "-2"]


def test_episode_error_lines_survive_multiline_strings_and_inline_comments():
    text = '''[[episode]]
name = "long"
description = """First line,
second line with "quotes" and [brackets],
third."""
start = 2019-09-16   # the spike
end = 2019-09-20
kind = "stress"
split = "spring"
'''
    assert errors_of(text) == [
        "eps.toml:9: episode long: split: must be one of 'calibration' or 'held-back', got 'spring'"]


def test_backtest_json_carries_the_scores_as_numbers():
    import json
    result = CliRunner().invoke(cli, ["backtest", "--db", str(REPO / "events.db.example"), "--rules",
                                      str(REPO / "rules"), "--split", "held-back", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    overall = data["overall"]
    assert (overall["caught"], overall["episodes"], overall["recall"], overall["false_alarms"]) == (7, 8, 0.875, 0)
    dash = next(c for c in overall["catches"] if c["episode"] == "dash-for-cash-2020-03")
    assert dash == {"episode": "dash-for-cash-2020-03", "rule": "sofr-p99-over-iorb",
                    "known_at": "2020-03-05T13:00:00.000000Z", "lead": 2}
    assert {e["split"] for e in data["episodes"]} == {"held-back"}


def test_readme_shows_the_real_held_back_scores_of_the_default_rules():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    after = readme.split("**The held-back scores of the default rules**", 1)[1]
    shown = after.split("```\n", 1)[1].split("```", 1)[0]
    result = CliRunner().invoke(cli, ["backtest", "--db", str(REPO / "events.db.example"), "--rules",
                                      str(REPO / "rules"), "--episodes", str(REPO / "episodes" / "default.toml"),
                                      "--split", "held-back"])
    assert result.exit_code == 0, result.output
    assert shown == result.output
