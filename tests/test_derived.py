"""Derived series ([[series]] tables): declared once, read by any rule as a name, recorded whole
in the rule's canonical text, computed by the engine from facts exactly as a rule reads them."""
from __future__ import annotations

from decimal import Decimal

import pytest

from watchdog.engine.data import SeriesData, derived_values
from watchdog.model.errors import RuleError
from watchdog.rules.derived import catalogue_of
from watchdog.rules.expr import EvalError, ExprError, compile_expr
from watchdog.rules.ruleset import load_rules, parse_rules, rule_from_canonical, ruleset_from_canonical
from watchdog.tuning.ruletest import run_rule_tests

SERIES = """
[[series]]
name = "effr_iorb"
expr = "bp(effr - iorb)"
unit = "bp"

[[series]]
name = "effr_iorb_trend"
expr = 'change(effr_iorb, "2bd")'
unit = "bp"
"""

RULE = """
[[rule]]
id = "effr-drift"
expr = "effr_iorb_trend"
above = 1
summary = "EFFR-IORB moved {{ value }} bp ({{ effr }} against {{ iorb }})"
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_rule_reads_a_series_declared_in_another_file(tmp_path):
    _write(tmp_path, "a_series.toml", SERIES)
    _write(tmp_path, "b_rules.toml", RULE)
    ruleset = load_rules([tmp_path])
    rule = ruleset.by_id["effr-drift"]
    assert rule.compiled.names == {"effr", "iorb"}
    assert rule.drivers == ("effr",)
    assert rule.derived == {"effr_iorb": "bp(effr - iorb)",
                            "effr_iorb_trend": 'change(effr_iorb, "2bd")'}
    assert [s.name for s in ruleset.series] == ["effr_iorb", "effr_iorb_trend"]
    assert ruleset.series[0].source.endswith("a_series.toml:2")


def test_the_canonical_text_is_whole_without_the_files_and_changes_with_a_definition(tmp_path):
    ruleset = parse_rules(SERIES + RULE)
    rule = ruleset.by_id["effr-drift"]
    rebuilt = rule_from_canonical(rule.canonical_text)
    assert rebuilt == rule and rebuilt.compiled.names == {"effr", "iorb"}
    assert ruleset_from_canonical(list(ruleset.canonical_texts)).hash == ruleset.hash
    redefined = parse_rules(SERIES.replace('"2bd"', '"3bd"') + RULE).by_id["effr-drift"]
    assert redefined.hash != rule.hash            # a redefinition is a changed rule
    plain = parse_rules('[[rule]]\nid = "x"\nexpr = "bp(effr - iorb)"\nabove = 1\n').by_id["x"]
    assert "derived" not in plain.canonical_text  # rules without derived series keep their hash


@pytest.mark.parametrize("text, message", [
    ('[[series]]\nname = "sofr"\nexpr = "sofr"\nunit = "bp"\n',
     "r.toml:2: series sofr: name: 'sofr' is already a recorded series"),
    ('[[series]]\nname = "turn"\nexpr = "sofr"\nunit = "bp"\n',
     "r.toml:2: series turn: name: 'turn' is a reserved word"),
    ('[[series]]\nname = "x"\nexpr = "y + 1"\nunit = "bp"\n[[series]]\nname = "y"\nexpr = "x * 2"\nunit = "bp"\n',
     "r.toml:1: series x: expr: derived series form a cycle: y -> x -> y"),
    ('[[series]]\nname = "x"\nexpr = "nope"\nunit = "bp"\n',
     "r.toml:1: series x: expr: unknown series 'nope'"),
    ('[[series]]\nname = "x"\nexpr = "sofr > iorb"\nunit = "bp"\n',
     "r.toml:1: series x: expr: must be a number, not a condition"),
    ('[[series]]\nname = "x"\nexpr = "sofr"\nunit = "furlongs"\n',
     "r.toml:4: series x: unit: Input should be"),
    ('[[series]]\nname = "x"\nexpr = "sofr"\nunit = "bp"\n[[series]]\nname = "x"\nexpr = "iorb"\nunit = "bp"\n',
     "r.toml:6: duplicate series name 'x' (first declared at r.toml:2)"),
    ('[[rule]]\nid = "r"\nexpr = "x"\nabove = 1\nderived = { x = "sofr" }\n',
     "r.toml:1: rule r: derived: not written in a rule"),
    ('[[series]]\nname = "x"\nexpr = "sofr"\nunit = "bp"\n[[rule]]\nid = "r"\nexpr = "x.p99"\nabove = 1\n',
     "r.toml:7: rule r: expr: derived series 'x' has no attributes"),
])
def test_a_bad_series_is_named_with_its_file_and_line(text, message):
    with pytest.raises(RuleError) as caught:
        parse_rules(text, "r.toml")
    assert any(problem.startswith(message) for problem in caught.value.problems), caught.value.problems


def test_a_rule_reading_an_undeclared_name_lists_the_derived_series():
    with pytest.raises(RuleError) as caught:
        parse_rules(SERIES + '[[rule]]\nid = "r"\nexpr = "effr_iorb_trnd"\nabove = 1\n', "r.toml")
    assert "unknown series 'effr_iorb_trnd'" in str(caught.value)
    assert "derived series ([[series]]): effr_iorb, effr_iorb_trend" in str(caught.value)


def _data(values: dict[str, dict[str, str]]) -> SeriesData:
    data = SeriesData()
    for series, by_date in values.items():
        for date, value in by_date.items():
            data.add({"series": series, "date": date, "value": value}, date + "T14:00:00Z")
    return data


def test_derived_values_are_what_a_rule_reading_them_is_judged_on():
    # Real prints: EFFR 4.33 (IORB 4.40) through 2025-10-07, 4.35 on 10-08 (IORB - 5).
    ruleset = parse_rules(SERIES + RULE)
    data = _data({"iorb": {"2025-09-18": "4.40"},
                  "effr": {"2025-10-06": "4.33", "2025-10-07": "4.33", "2025-10-08": "4.35"}})
    catalogue = catalogue_of(ruleset.series)
    trend = next(s for s in ruleset.series if s.name == "effr_iorb_trend")
    assert derived_values(trend, catalogue, data) == [("2025-10-08", Decimal("2.00"))]
    spread = next(s for s in ruleset.series if s.name == "effr_iorb")
    assert derived_values(spread, catalogue, data, since="2025-10-07") == [
        ("2025-10-07", Decimal("-7.00")), ("2025-10-08", Decimal("-5.00"))]
    # the latest n, evaluated from the end (what status shows), are the tail of the whole
    assert derived_values(spread, catalogue, data, last=2) == derived_values(spread, catalogue, data)[-2:]
    assert derived_values(trend, catalogue, data, last=5) == [("2025-10-08", Decimal("2.00"))]


def test_count_and_pct_rank_windows():
    values = {"sofr": [Decimal("4.30"), Decimal("4.42"), Decimal("4.41"), Decimal("4.38")],
              "iorb": [Decimal("4.40")] * 4}

    class Ctx:
        dates = ["d1", "d2", "d3", "d4"]

        def value(self, name, date):
            return values[name][self.dates.index(date)]

        def history(self, date, n):
            end = self.dates.index(date) + 1
            return self.dates[max(0, end - n):end]

    assert compile_expr('count(sofr > iorb, "4bd")').evaluate_at(Ctx(), "d4") == 2
    assert compile_expr('count(sofr > iorb, "2bd")').evaluate_at(Ctx(), "d3") == 2
    assert compile_expr('pct_rank(sofr, "2bd")').evaluate_at(Ctx(), "d2") == 100   # a new high
    assert compile_expr('pct_rank(sofr, "4bd")').evaluate_at(Ctx(), "d4") == 50
    with pytest.raises(EvalError, match="needs 4 evaluation dates"):
        compile_expr('count(sofr > iorb, "4bd")').evaluate_at(Ctx(), "d3")
    with pytest.raises(ExprError, match="count\\(\\) needs a condition"):
        compile_expr('count(sofr, "4bd")')


@pytest.mark.parametrize("iorb, share", [
    ("4.19", 99), ("4.20", 99),    # p1 at or above IORB: at least 99 %
    ("4.25", 75), ("4.28", 75),    # p25 >= IORB
    ("4.30", 50),                  # the median (the rate itself) = IORB: at least half
    ("4.35", 25), ("4.45", 1), ("4.60", 0),
])
def test_share_at_or_above_is_the_lower_bound_from_the_percentiles(iorb, share):
    # SOFR on 2025-10-15: p1 4.20, p25 4.28, median 4.30, p75 4.40, p99 4.55 (illustrative of the
    # ordering p1 <= p25 <= rate <= p75 <= p99 every published row satisfies).
    values = {"sofr": "4.30", "sofr.p1": "4.20", "sofr.p25": "4.28", "sofr.p75": "4.40",
              "sofr.p99": "4.55", "iorb": iorb}
    got = compile_expr("share_at_or_above(sofr, iorb)").evaluate(
        {k: Decimal(v) for k, v in values.items()})
    assert got == share


def test_a_rule_test_checks_a_derived_value_and_says_when_it_cannot_be_computed(tmp_path):
    _write(tmp_path, "series.toml", SERIES)
    _write(tmp_path, "rules.toml", RULE)
    tests = _write(tmp_path, "t_test.toml", """
rule_files = ["series.toml", "rules.toml"]

[[test]]
name = "values"
[test.series]
iorb = { 2025-09-18 = 4.40 }
effr = { 2025-10-06 = 4.33, 2025-10-07 = 4.33, 2025-10-08 = 4.35 }
[[test.expect_value]]
series = "effr_iorb_trend"
date = 2025-10-08
value = 2
[[test.expect_value]]
series = "effr_iorb_trend"
date = 2025-10-07
value = 0
[[test.expect_value]]
series = "effr_iorb"
date = 2025-10-08
value = -4
[[test.expect_value]]
series = "no_such"
date = 2025-10-08
value = 1
""")
    (result,) = run_rule_tests([tests])
    assert not result.passed
    assert len(result.failures) == 3, result.failures
    assert "effr_iorb_trend cannot be computed on 2025-10-07" in result.failures[0]
    assert "effr_iorb on 2025-10-08: expected -4, got -5" in result.failures[1]
    assert "unknown derived series 'no_such'; the rule files declare: effr_iorb, effr_iorb_trend" \
        in result.failures[2]


def test_the_default_rules_warn_of_the_2025_firming_and_stay_quiet_in_the_calm_windows(tmp_path):
    # README "Default rules": the counts printed there are these.
    import json
    import shutil
    from pathlib import Path

    from click.testing import CliRunner

    from watchdog.cli import cli
    repo = Path(__file__).resolve().parent.parent
    db = tmp_path / "events.db"
    shutil.copy(repo / "events.db.example", db)
    result = CliRunner().invoke(cli, ["replay", "--db", str(db), "--rules", str(repo / "rules"),
                                      "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    loud = [r for r in rows if r["state"] == "firing" and r["severity"] in ("warning", "critical")]
    for since, until in (("2021-08-01", "2022-12-31"), ("2023-01-01", "2024-08-31")):
        assert [(r["rule"], r["date"]) for r in loud if since <= r["date"] <= until] == []
    early = {(r["rule"], r["date"]) for r in loud if "2025-01-01" <= r["date"] < "2025-10-16"}
    assert {("effr-iorb-drift", "2025-10-10"), ("repo-above-iorb-routinely", "2025-09-15")} <= early
