"""Rule files: what loads, what is refused (with the exact FILE:LINE message), and the canonical
text that rules-loaded events record."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from watchdog.model.errors import RuleError
from watchdog.rules.ruleset import (
    KeywordRule, Rule, RuleSet, load_rules, parse_rules, render_summary, rule_from_canonical,
    ruleset_from_canonical,
)

REPO = Path(__file__).resolve().parent.parent
D = Decimal

GOOD = '''\
# A complete rule, every optional field used.
[[rule]]
id = "sofr-over-iorb"
expr = "bp(sofr - iorb)"
above = 10
recover_below = 5.0
for = "2bd"
severity = "warning"
summary = "SOFR is {{ value }} bp over IORB ({{ sofr }} vs {{ iorb }})"
description = """
Secured funding above the rate on reserves.
"""
labels = { area = "repo" }

[[rule]]
id = "onrrp-drained"
expr = "onrrp"
below = 50
recover_above = 100.25
for = "6h"
severity = "info"

[[keyword_rule]]
id = "reserves-not-abundant"
phrases = ["no longer abundant", "reserves are ample", "asset purchases"]
ignore = ["Federal Reserve", "Reserve Bank"]
speakers = ["Powell", "Logan", "Perli", "Williams"]
severity = "info"
'''


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str | bytes, name: str = "r.toml") -> list[str]:
    """Load one file and return its problems with the folder replaced by FILE's bare name."""
    path = write(tmp_path, name, text)
    with pytest.raises(RuleError) as caught:
        load_rules([str(path)])
    return [line.replace(f"{tmp_path}/", "") for line in caught.value.problems]


def one_rule(**fields: str) -> str:
    """A valid [[rule]] table with some lines replaced or added (value is raw TOML)."""
    base = {"id": '"r1"', "expr": '"bp(sofr - iorb)"', "above": "10", "severity": '"warning"'}
    base.update(fields)
    lines = [f"{key} = {value}" for key, value in base.items() if value is not None]
    return "[[rule]]\n" + "\n".join(lines) + "\n"


# ---- loading what is valid ----

def test_valid_file_loads_every_field(tmp_path):
    rules = load_rules([str(write(tmp_path, "good.toml", GOOD))])
    sofr = rules.by_id["sofr-over-iorb"]
    assert isinstance(sofr, Rule)
    assert sofr.above == D("10") and sofr.below is None
    assert sofr.recover_below == D("5")
    assert sofr.for_business_days == 2 and sofr.for_duration is None
    assert sofr.labels == {"area": "repo"}
    assert sofr.description == "Secured funding above the rate on reserves.\n"
    assert sofr.source == f"{tmp_path}/good.toml:2"
    assert sofr.compiled.names == frozenset({"sofr", "iorb"})
    drained = rules.by_id["onrrp-drained"]
    assert drained.below == D("50") and drained.recover_above == D("100.25")
    assert drained.for_business_days == 1 and drained.for_duration == timedelta(hours=6)
    keyword = rules.by_id["reserves-not-abundant"]
    assert isinstance(keyword, KeywordRule) and keyword.speakers[0] == "Powell"
    assert [r.id for r in rules.rules] == ["onrrp-drained", "sofr-over-iorb"]
    assert [r.id for r in rules.keyword_rules] == ["reserves-not-abundant"]


def test_floats_in_toml_become_exact_decimals(tmp_path):
    rules = load_rules([str(write(tmp_path, "r.toml", one_rule(above="0.1", recover_below="0.10")))])
    rule = rules.by_id["r1"]
    assert rule.above == D("0.1") and rule.recover_below == D("0.1")
    assert '"above":"0.1"' in rule.canonical_text


def test_absent_for_fires_on_the_first_day(tmp_path):
    rule = load_rules([str(write(tmp_path, "r.toml", one_rule()))]).by_id["r1"]
    assert rule.for_ is None
    assert rule.for_business_days == 1 and rule.for_duration is None


def test_default_ruleset_loads_and_fires_on_the_2019_repo_spike():
    rules = load_rules([str(REPO / "rules")])
    ids = {rule.id for rule in rules.rules}
    assert {"sofr-over-iorb", "effr-over-iorb", "effr-above-target", "sofr-over-effr"} <= ids
    spike = {"sofr": D("5.25"), "effr": D("2.3"), "iorb": D("2.10"), "fftarget_upper": D("2.25")}
    for rule_id in ["sofr-over-iorb", "effr-over-iorb", "effr-above-target", "sofr-over-effr"]:
        rule = rules.by_id[rule_id]
        assert rule.compiled.evaluate(spike) > rule.above, rule_id
    sofr = rules.by_id["sofr-over-iorb"]
    assert sofr.compiled.evaluate(spike) == D("315")
    assert sofr.for_business_days == 2 and sofr.for_duration is None   # DESIGN: for = "2bd"
    assert sofr.above == D("10") and sofr.recover_below == D("5") and sofr.severity == "warning"
    assert render_summary(sofr, {"value": "315"}) == "SOFR is 315 bp over IORB"


def test_default_ruleset_is_quiet_in_abundant_reserves():
    # 2023-03-13 (SVB weekend): SOFR 4.55, EFFR 4.58, IORB 4.65, target top 4.75.
    rules = load_rules([str(REPO / "rules")])
    calm = {"sofr": D("4.55"), "effr": D("4.58"), "iorb": D("4.65"), "fftarget_upper": D("4.75")}
    spreads = [r for r in rules.rules if r.above is not None and r.compiled.names <= calm.keys()
               and not r.compiled.max_window]     # one day's values: no windows
    assert len(spreads) >= 4
    for rule in spreads:
        assert not rule.compiled.evaluate(calm) > rule.above, rule.id


def test_folder_is_read_non_recursively_and_sorted(tmp_path):
    write(tmp_path, "b.toml", one_rule(id='"b-rule"'))
    write(tmp_path, "a.toml", one_rule(id='"a-rule"'))
    write(tmp_path, "tests/case.toml", "this is not [[rule]] toml = = =")
    write(tmp_path, "notes.txt", "not a rule")
    rules = load_rules([str(tmp_path)])
    assert [r.id for r in rules.rules] == ["a-rule", "b-rule"]
    assert rules.by_id["a-rule"].source.endswith("a.toml:1")


def test_same_file_named_twice_is_read_once(tmp_path):
    path = write(tmp_path, "r.toml", one_rule())
    rules = load_rules([str(tmp_path), str(path)])
    assert len(rules.rules) == 1


def test_a_single_path_string_is_accepted(tmp_path):
    path = write(tmp_path, "r.toml", one_rule())
    assert load_rules(str(path)).by_id["r1"].id == "r1"


def test_parse_rules_validates_text_without_a_file():
    rules = parse_rules(one_rule(), "inline.toml")
    assert rules.by_id["r1"].source == "inline.toml:1"
    with pytest.raises(RuleError) as caught:
        parse_rules(one_rule(severity='"loud"'), "inline.toml")
    assert caught.value.problems[0].startswith("inline.toml:5: rule r1: severity: ")


# ---- refusing what is not, with the exact message ----

def test_syntax_error_gives_the_toml_line(tmp_path):
    text = '[[rule]]\nid = "x"\nexpr = \nabove = 10\n'
    assert problems_of(tmp_path, text) == ["r.toml:3: TOML syntax error: Invalid value (column 8)"]


RULE_FIELDS = ", ".join(sorted(info.alias or name for name, info in Rule.model_fields.items()))


def test_unknown_field_names_the_known_fields(tmp_path):
    assert problems_of(tmp_path, one_rule(treshold="10")) == [
        f"r.toml:6: rule r1: treshold: unknown field; known fields: {RULE_FIELDS}"]


def test_unknown_series_is_refused(tmp_path):
    [problem] = problems_of(tmp_path, one_rule(expr='"bp(sofx - iorb)"'))
    assert problem.startswith("r.toml:3: rule r1: expr: unknown series 'sofx'; known series: ")
    assert "sofr" in problem


def test_unknown_function_is_refused(tmp_path):
    [problem] = problems_of(tmp_path, one_rule(expr='"log(sofr)"'))
    assert problem.startswith("r.toml:3: rule r1: expr: unknown function 'log'; functions: abs, avg, bp, ")
    assert problem.endswith("(column 1)")


def test_unsafe_expression_is_refused(tmp_path):
    assert problems_of(tmp_path, one_rule(expr='"().__class__.__bases__"')) == [
        "r.toml:3: rule r1: expr: attribute access '.__bases__' is not allowed "
        "(only series attributes such as sofr.p99) (column 1)"]
    [problem] = problems_of(tmp_path, one_rule(expr='"__import__(\'os\').system(\'true\')"'), "s.toml")
    assert problem.startswith("s.toml:3: rule r1: expr: calling attribute '.system' is not allowed (functions: ")


def test_condition_expression_is_refused_because_thresholds_compare_numbers(tmp_path):
    [problem] = problems_of(tmp_path, one_rule(expr='"sofr > iorb"'))
    assert problem.startswith("r.toml:3: rule r1: expr: must be a number to compare with above/below")


def test_bad_duration_is_refused(tmp_path):
    assert problems_of(tmp_path, one_rule(**{"for": '"2 weeks"'})) == [
        "r.toml:6: rule r1: for: bad duration '2 weeks': use business days such as '2bd' "
        "or a duration such as '30m', '6h', '3d'"]
    [zero] = problems_of(tmp_path, one_rule(**{"for": '"0bd"'}), "z.toml")
    assert zero.startswith("z.toml:6: rule r1: for: business days must be between 1 and ")


def test_bad_severity_is_refused(tmp_path):
    assert problems_of(tmp_path, one_rule(severity='"urgent"')) == [
        "r.toml:5: rule r1: severity: Input should be 'info', 'warning' or 'critical'"]


def test_inverted_hysteresis_is_refused(tmp_path):
    assert problems_of(tmp_path, one_rule(recover_below="12")) == [
        "r.toml:6: rule r1: recover_below: inverted hysteresis: recover_below (12) must be "
        "<= above (10), or the alert would resolve while firing"]
    text = one_rule(above=None, below="10", recover_above="5")
    assert problems_of(tmp_path, text, "b.toml") == [
        "b.toml:6: rule r1: recover_above: inverted hysteresis: recover_above (5) must be "
        ">= below (10), or the alert would resolve while firing"]


def test_recovery_on_the_wrong_side_is_refused(tmp_path):
    assert problems_of(tmp_path, one_rule(recover_above="12")) == [
        "r.toml:6: rule r1: recover_above: recover_above goes with below "
        "(with above, use recover_below)"]


def test_recovery_equal_to_the_threshold_is_allowed(tmp_path):
    rule = load_rules([str(write(tmp_path, "r.toml", one_rule(recover_below="10")))]).by_id["r1"]
    assert rule.recover == D("10")


def test_both_above_and_below_is_refused(tmp_path):
    assert problems_of(tmp_path, one_rule(below="1")) == [
        "r.toml:4: rule r1: above: give either above or below, not both"]


def test_neither_above_nor_below_is_refused(tmp_path):
    # No `above` line: the problem points at the rule's table.
    assert problems_of(tmp_path, one_rule(above=None)) == [
        "r.toml:1: rule r1: above: one of above or below is required"]


def test_quoted_threshold_is_refused(tmp_path):
    assert problems_of(tmp_path, one_rule(above='"10"')) == [
        "r.toml:4: rule r1: above: must be a number, got str (write it without quotes)"]


def test_non_finite_threshold_is_refused(tmp_path):
    assert problems_of(tmp_path, one_rule(above="inf")) == [
        "r.toml:4: rule r1: above: must be a finite number"]


def test_id_must_be_kebab_case_and_present(tmp_path):
    [bad] = problems_of(tmp_path, one_rule(id='"Sofr_Over"'))
    assert bad.startswith("r.toml:2: rule Sofr_Over: id: 'Sofr_Over' is not kebab-case")
    assert problems_of(tmp_path, one_rule(id=None), "n.toml") == [
        "n.toml:1: rule #1: id: required field is missing"]


def test_unknown_placeholder_in_summary_is_refused(tmp_path):
    [problem] = problems_of(tmp_path, one_rule(summary='"{{ valeu }} bp"'))
    assert problem == ("r.toml:6: rule r1: summary: unknown placeholder {{ valeu }}; "
                       "known: date, iorb, rule, severity, sofr, threshold, value")


def test_reserved_label_is_refused(tmp_path):
    assert problems_of(tmp_path, one_rule(labels='{ severity = "page" }')) == [
        "r.toml:6: rule r1: labels: label 'severity' is reserved: it is set from the rule's "
        "own severity"]


def test_duplicate_id_across_two_files_names_both_places(tmp_path):
    write(tmp_path, "a.toml", one_rule(id='"same"'))
    write(tmp_path, "b.toml", "# second file\n\n" + one_rule(id='"same"'))
    with pytest.raises(RuleError) as caught:
        load_rules([str(tmp_path)])
    assert caught.value.problems == [
        f"{tmp_path}/b.toml:4: duplicate rule id 'same' (first defined at {tmp_path}/a.toml:2)"]


def test_duplicate_id_between_a_rule_and_a_keyword_rule_is_refused(tmp_path):
    text = one_rule(id='"same"') + '[[keyword_rule]]\nid = "same"\nphrases = ["x"]\n'
    assert problems_of(tmp_path, text) == [
        "r.toml:7: duplicate rule id 'same' (first defined at r.toml:2)"]


def test_file_that_is_not_utf8_is_refused(tmp_path):
    text = one_rule(summary='"caf\xe9"').encode("latin-1")
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith("r.toml:1: not UTF-8 text: ")


def test_missing_path_and_empty_folder_are_problems(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuleError) as caught:
        load_rules([str(tmp_path / "nope.toml"), str(tmp_path / "empty")])
    assert caught.value.problems == [
        f"{tmp_path}/nope.toml:1: no such rules file or folder",
        f"{tmp_path}/empty:1: no *.toml rule files in this folder"]


def test_unknown_top_level_table_is_refused(tmp_path):
    text = one_rule() + "\n[alerts]\nx = 1\n"
    assert problems_of(tmp_path, text) == [
        "r.toml:7: unknown table or key 'alerts'; "
        "a rules file holds [[rule]], [[keyword_rule]], [[composite_rule]], "
        "[[revision_rule]], [[staleness_rule]] and [[series]] tables"]


def test_rule_written_as_a_plain_table_is_refused(tmp_path):
    assert problems_of(tmp_path, '[rule]\nid = "x"\n') == [
        "r.toml:1: 'rule' must be written as [[rule]] tables"]


def test_keyword_rule_needs_phrases(tmp_path):
    assert problems_of(tmp_path, '[[keyword_rule]]\nid = "k"\nphrases = []\n') == [
        "r.toml:3: rule k: phrases: must not be empty"]


def test_every_problem_of_every_file_is_reported(tmp_path):
    write(tmp_path, "a.toml", one_rule(severity='"loud"') + one_rule(id='"r2"', above='"x"'))
    write(tmp_path, "b.toml", "[[rule]\n")
    with pytest.raises(RuleError) as caught:
        load_rules([str(tmp_path)])
    lines = [line.replace(f"{tmp_path}/", "") for line in caught.value.problems]
    assert [line.split(": ")[0] for line in lines] == ["a.toml:5", "a.toml:9", "b.toml:1"]
    assert str(caught.value) == "\n".join(caught.value.problems)


def test_lines_are_right_after_multiline_strings_and_inline_tables(tmp_path):
    text = '''\
title_is_not_allowed_but_first = 1
[[rule]]
id = "first"
description = """
[[rule]]
id = "fake"
above = "not me"
"""
labels = { area = "repo", note = "x = [[rule]]" }
notes = \'\'\'
[[rule]] = \'\'\'
expr = "bp(sofr - iorb)"
phrases = [
  "a", # ]
  "b",
]
above = 10
for = "3 days"
'''
    assert problems_of(tmp_path, text) == [
        "r.toml:1: unknown table or key 'title_is_not_allowed_but_first'; "
        "a rules file holds [[rule]], [[keyword_rule]], [[composite_rule]], "
        "[[revision_rule]], [[staleness_rule]] and [[series]] tables",
        f"r.toml:10: rule first: notes: unknown field; known fields: {RULE_FIELDS}",
        f"r.toml:13: rule first: phrases: unknown field; known fields: {RULE_FIELDS}",
        "r.toml:18: rule first: for: bad duration '3 days': use business days such as '2bd' "
        "or a duration such as '30m', '6h', '3d'",
    ]


def test_second_rule_problem_points_into_the_second_table(tmp_path):
    text = one_rule(id='"a"') + "\n" + one_rule(id='"b"', severity='"loud"')
    assert problems_of(tmp_path, text)[0].startswith("r.toml:11: rule b: severity: ")


def test_nothing_in_a_rule_file_is_executed(tmp_path):
    marker = tmp_path / "pwned"
    expr = f"__import__('pathlib').Path('{marker}').touch()"
    [problem] = problems_of(tmp_path, one_rule(expr=f"'''{expr}'''"))
    assert "calling attribute '.touch' is not allowed" in problem
    assert not marker.exists()


# ---- canonical text and hashes ----

def test_canonical_round_trip_keeps_the_hash(tmp_path):
    loaded = load_rules([str(write(tmp_path, "good.toml", GOOD))])
    for rule in loaded.all_rules:
        again = rule_from_canonical(rule.canonical_text)
        assert type(again) is type(rule)
        assert again.canonical_text == rule.canonical_text
        assert again.hash == rule.hash
        assert again == rule
    rebuilt = ruleset_from_canonical(list(loaded.canonical_texts))
    assert rebuilt.hash == loaded.hash
    assert rebuilt == loaded
    assert rebuilt.by_id["sofr-over-iorb"].compiled.evaluate({"sofr": D("4"), "iorb": D("3.9")}) == D("10")


def test_canonical_text_is_sorted_json_with_normalised_decimals():
    rule = Rule(id="x", expr="bp(sofr - iorb)", above=D("10.50"), recover_below=D("1E+1"))
    assert rule.canonical_text == (
        '{"above":"10.5","expr":"bp(sofr - iorb)","id":"x","kind":"threshold",'
        '"recover_below":"10","severity":"warning"}')


def test_tiny_threshold_is_written_without_an_exponent():
    rule = Rule(id="x", expr="sofr", above=D("0.0000001"))
    assert '"above":"0.0000001"' in rule.canonical_text


def test_float_from_python_is_converted_through_its_text():
    assert Rule(id="x", expr="sofr", above=0.1).above == D("0.1")


def test_hash_does_not_depend_on_where_the_rule_was_read_from(tmp_path):
    a = load_rules([str(write(tmp_path / "one", "r.toml", one_rule()))]).by_id["r1"]
    b = load_rules([str(write(tmp_path / "two", "other.toml", "\n\n# moved\n" + one_rule()))]).by_id["r1"]
    assert a.source != b.source
    assert a.hash == b.hash


def test_changing_a_threshold_changes_the_hash():
    a = Rule(id="x", expr="sofr", above=D("10"))
    b = Rule(id="x", expr="sofr", above=D("11"))
    assert a.hash != b.hash


def test_ruleset_hash_is_independent_of_file_order(tmp_path):
    first = write(tmp_path, "a.toml", one_rule(id='"a"'))
    second = write(tmp_path, "b.toml", one_rule(id='"b"'))
    assert load_rules([str(first), str(second)]).hash == load_rules([str(second), str(first)]).hash
    assert RuleSet().hash != load_rules([str(first)]).hash


def test_corrupt_canonical_text_is_a_rule_error():
    with pytest.raises(RuleError, match="not canonical rule JSON"):
        rule_from_canonical("{not json")
    with pytest.raises(RuleError, match=r"rule x: above: one of above or below is required"):
        rule_from_canonical('{"kind":"threshold","id":"x","expr":"sofr"}')


def test_ruleset_refuses_duplicate_ids_from_canonical_texts():
    text = Rule(id="x", expr="sofr", above=1).canonical_text
    with pytest.raises(RuleError, match="duplicate"):
        ruleset_from_canonical([text, text])


# ---- summaries ----

def test_render_summary_fills_placeholders():
    rule = Rule(id="x", expr="bp(sofr - iorb)", above=10,
                summary="{{ rule }}: {{value}} bp > {{ threshold }} on {{ date }} (SOFR {{ sofr }})")
    text = render_summary(rule, {"rule": "x", "value": "315", "threshold": "10",
                                 "date": "2019-09-17", "sofr": "5.25"})
    assert text == "x: 315 bp > 10 on 2019-09-17 (SOFR 5.25)"


def test_render_summary_marks_a_missing_value():
    rule = Rule(id="x", expr="sofr", above=1, summary="at {{ value }}")
    assert render_summary(rule, {}) == "at n/a"


def test_placeholder_may_name_a_dotted_input():
    rule = Rule(id="x", expr="bp(sofr.p99 - iorb)", above=1, summary="p99 {{ sofr.p99 }}")
    assert render_summary(rule, {"sofr.p99": "5.3"}) == "p99 5.3"


def test_unclosed_placeholder_is_refused():
    with pytest.raises(ValueError, match="template syntax error"):
        Rule(id="x", expr="sofr", above=1, summary="at {{ value")


def test_python_spelling_of_for_is_not_a_rule_field(tmp_path):
    [problem] = problems_of(tmp_path, one_rule(for_='"2bd"'))
    assert problem.startswith("r.toml:6: rule r1: for_: unknown field; known fields: ")


def test_changed_copy_is_revalidated_and_rehashed():
    # A backtest's `--set RULE.FIELD=…` must not reuse the original rule's hash.
    rule = Rule.model_validate({"id": "x", "expr": "sofr", "above": 10, "for": "2bd"})
    changed = rule.model_copy(update={"above": "11", "for_": "3bd"})
    assert changed.above == D("11") and changed.for_business_days == 3
    assert changed.hash != rule.hash
    assert changed.hash == Rule.model_validate({"id": "x", "expr": "sofr", "above": 11,
                                                "for": "3bd"}).hash
    with pytest.raises(ValueError, match="inverted hysteresis"):
        rule.model_copy(update={"recover_below": 12})
