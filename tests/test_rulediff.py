"""Rule diffs: the alerts that appear, disappear or move between two rule sets replayed over the
same hand-built log, per rule, with a summary per rule; and `replay --diff` on the command line."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from click.testing import CliRunner

from watchdog.cli import cli
from watchdog.model.events import Observation, new_observation
from watchdog.tuning.replay import replay
from watchdog.tuning.rulediff import diff_rulesets, difference_line, summary_line
from watchdog.rules.ruleset import load_rules
from watchdog.market.series import SERIES, nominal_publication_text
from watchdog.store import MemoryEventStore, SqliteEventStore

# SOFR−IORB in bp by SOFR date (IORB 2.10 throughout): a two-day breach in September, a
# one-day blip at 15 bp in October, a breach at 25 bp in November.
SPREADS = {"2019-09-09": 2, "2019-09-10": 12, "2019-09-11": 14, "2019-09-12": 3,
           "2019-10-01": 15, "2019-10-02": 4,
           "2019-11-05": 25, "2019-11-06": 26, "2019-11-07": 1}

RULE = """
[[rule]]
id = "spread"
expr = "bp(sofr - iorb)"
above = {above}
{persistence}

[[rule]]
id = "{other_id}"
expr = "bp(sofr - iorb)"
above = 100
"""


def log(store) -> None:
    facts = [("iorb", "2019-08-01", "2.1")] + [
        ("sofr", day, str((210 + bp) / 100)) for day, bp in SPREADS.items()]
    for series, day, value in facts:
        obs = Observation(series=series, date=day, value=value, unit="%",
                          source=SERIES[series].primary_source)
        store.append([new_observation(obs, nominal_publication_text(series, date.fromisoformat(day)))])


def rules(tmp_path: Path, name: str, above=10, persistence='for = "2bd"', other_id="quiet"):
    path = tmp_path / name
    path.mkdir()
    (path / "r.toml").write_text(RULE.format(above=above, persistence=persistence, other_id=other_id))
    return load_rules([str(path)])


def diff(base, other, **kwargs):
    store = MemoryEventStore()
    log(store)
    return diff_rulesets(list(replay(store, base)), list(replay(store, other)),
                         base_rules=base, other_rules=other, **kwargs)


def changes(result):
    return [(d.rule, d.change, d.state, d.base and d.base.date, d.other and d.other.date, d.shift)
            for d in result.differences]


def test_identical_rule_sets_have_no_differences_and_count_every_alert_unchanged(tmp_path):
    base = rules(tmp_path, "a")
    result = diff(base, rules(tmp_path, "b"))
    assert result.differences == []
    summary = {s.rule: s for s in result.summaries}
    assert summary["spread"].definition == "same"
    # Sept fires 09-11 (2nd day) and resolves 09-12; Nov fires 11-06, resolves 11-07
    assert summary["spread"].counts["unchanged"] == 4


def test_dropping_the_persistence_moves_firings_one_business_day_earlier_and_adds_the_blip(tmp_path):
    result = diff(rules(tmp_path, "a"), rules(tmp_path, "b", persistence=""))
    assert changes(result) == [
        ("spread", "moved", "firing", "2019-09-11", "2019-09-10", -1),
        ("spread", "appeared", "firing", None, "2019-10-01", 0),
        ("spread", "appeared", "resolved", None, "2019-10-02", 0),
        ("spread", "moved", "firing", "2019-11-06", "2019-11-05", -1),
    ]
    summary = {s.rule: s for s in result.summaries}["spread"]
    assert summary.definition == "changed"
    assert summary.counts == {"unchanged": 2, "changed": 0, "moved": 2, "appeared": 2, "disappeared": 0}


def test_a_higher_threshold_makes_the_smaller_breach_disappear(tmp_path):
    result = diff(rules(tmp_path, "a"), rules(tmp_path, "b", above=20))
    assert changes(result) == [("spread", "disappeared", "firing", "2019-09-11", None, 0),
                               ("spread", "disappeared", "resolved", "2019-09-12", None, 0)]


def test_a_shift_beyond_max_shift_is_a_disappearance_and_an_appearance(tmp_path):
    result = diff(rules(tmp_path, "a"), rules(tmp_path, "b", persistence=""), max_shift=0)
    assert ("spread", "disappeared", "firing", "2019-09-11", None, 0) in changes(result)
    assert ("spread", "appeared", "firing", None, "2019-09-10", 0) in changes(result)


def test_the_same_date_known_at_another_instant_is_a_move_of_zero_days(tmp_path):
    """A rule on EFFR's 09:00 ET publication instead of SOFR's 08:00 ET: same dates, learnt an
    hour later. Both are `moved` with shift 0 and both known_at shown."""
    base = rules(tmp_path, "a")
    store = MemoryEventStore()
    log(store)
    mine = list(replay(store, base))
    later = [t.model_copy(update={"evaluated_at": t.evaluated_at.replace("T12:", "T13:")}) for t in mine]
    result = diff_rulesets(mine, later, base_rules=base, other_rules=base)
    assert {(d.change, d.shift) for d in result.differences} == {("moved", 0)}
    line = difference_line(result.differences[0])
    assert "known 2019-09-12 08:00 ET -> 2019-09-12 09:00 ET" in line


def test_rules_only_in_one_set_are_named_in_the_summary(tmp_path):
    result = diff(rules(tmp_path, "a"), rules(tmp_path, "b", other_id="loud"))
    summary = [summary_line(s) for s in result.summaries]
    assert "loud: only in --diff; 0 unchanged, 0 changed, 0 moved, 0 appeared, 0 disappeared" in summary
    assert "quiet: only in --rules; 0 unchanged, 0 changed, 0 moved, 0 appeared, 0 disappeared" in summary


def test_since_and_until_keep_the_differences_dated_in_range_on_either_side(tmp_path):
    result = diff(rules(tmp_path, "a"), rules(tmp_path, "b", persistence=""),
                  since="2019-10-01", until="2019-10-31")
    assert [d.change for d in result.differences] == ["appeared", "appeared"]


def test_replay_diff_on_the_command_line_prints_differences_then_one_summary_per_rule(tmp_path):
    db = tmp_path / "log.db"
    store = SqliteEventStore(db)
    log(store)
    store.close()
    rules(tmp_path, "a")
    rules(tmp_path, "b", persistence="")
    args = ["replay", "--db", str(db), "--rules", str(tmp_path / "a"), "--diff", str(tmp_path / "b")]
    text = CliRunner().invoke(cli, args)
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0].split()[:5] == ["spread", "moved", "firing", "2019-09-11", "->"]
    assert lines[-2:] == ["quiet: rule unchanged; 0 unchanged, 0 changed, 0 moved, 0 appeared, 0 disappeared",
                          "spread: rule changed; 2 unchanged, 0 changed, 2 moved, 2 appeared, 0 disappeared"]
    as_json = CliRunner().invoke(cli, args + ["--json"])
    objects = [json.loads(line) for line in as_json.output.splitlines()]
    assert objects[0] == {"rule": "spread", "change": "moved", "state": "firing", "shift_bd": -1,
                          "date": "2019-09-11", "known_at": "2019-09-12T12:00:00.000000Z",
                          "value": 14, "severity": "warning",
                          "other_date": "2019-09-10", "other_known_at": "2019-09-11T12:00:00.000000Z",
                          "other_value": 12, "other_severity": "warning"}
    assert objects[-1] == {"rule": "spread", "change": "summary", "definition": "changed", "unchanged": 2,
                           "changed": 0, "moved": 2, "appeared": 2, "disappeared": 0}
