"""Rule unit tests (watchdog.tuning.ruletest): the shipped tests pass, a wrong expectation fails with a
readable expected-vs-got message at its FILE:LINE, mistakes in a test file are FILE:LINE
problems rather than crashes, and the JUnit XML is what CI tools read."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from watchdog.tuning.ruletest import (FILE_CASE, CaseResult, exit_code, junit_xml, render_text,
                               run_rule_tests)

REPO = Path(__file__).resolve().parent.parent
FUNDING = (REPO / "rules" / "funding.toml").as_posix()

# Real values (data/history): SOFR 2019-09-16 2.43, 2019-09-17 5.25 (rates/SOFR.csv); IOER 2.10
# from 2019-08-01 (rates/iorb_ioer_changes.csv); SOFR p99 4.60 and 9.00 on those days
# (nyfed/sofr_rate_percentiles_*.json).
SPIKE = f'''\
rule_files = ["{FUNDING}"]

[[test]]
name = "spike"
[test.series]
iorb = {{ 2019-08-01 = 2.10 }}
sofr = {{ 2019-09-16 = 2.43, 2019-09-17 = 5.25 }}
'''


PASSING = SPIKE + '[[test.expect_none]]\nuntil = 2019-09-15\n'   # quiet before the spike


def write(folder: Path, name: str, text: str | bytes) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def expect(rule: str, state: str, date: str, **extra: str) -> str:
    lines = [f'rule = "{rule}"', f'state = "{state}"', f"date = {date}"]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "[[test.expect]]\n" + "\n".join(lines) + "\n"


def run_one(tmp_path: Path, text: str, name: str = "t.toml") -> CaseResult:
    results = run_rule_tests([write(tmp_path, name, text)])
    assert len(results) == 1, results
    return results[0]


def strip(result: CaseResult, tmp_path: Path) -> list[str]:
    return [line.replace(f"{tmp_path}{os.sep}", "") for line in result.failures]


# ---- the shipped tests ----

def test_the_default_rules_pass_their_unit_tests():
    results = run_rule_tests([str(REPO / "rules" / "tests")])
    assert len(results) >= 8
    assert [r for r in results if not r.passed] == []
    assert exit_code(results) == 0
    names = " ".join(r.name for r in results)
    for topic in ("September 2019", "hysteresis", "Thanksgiving", "Good Friday", "quiet"):
        assert topic in names


def test_a_rules_folder_is_read_without_its_tests_subfolder():
    """load_rules reads rules/ non-recursively: rules/tests/*.toml are not rules."""
    from watchdog.rules.ruleset import load_rules
    assert len(load_rules([str(REPO / "rules")]).rules) >= 4


# ---- passing and failing expectations ----

def test_exact_expectations_pass(tmp_path):
    text = SPIKE + expect("sofr-over-iorb", "pending", "2019-09-16", value="33") + expect(
        "sofr-over-iorb", "firing", "2019-09-17", value="315.0",
        known_at="2019-09-18T08:00:00-04:00")
    result = run_one(tmp_path, text)
    assert result.passed, result.failures
    assert result.name == "spike" and result.duration_s >= 0


def test_quoted_dates_work_as_well_as_bare_ones(tmp_path):
    text = f'''\
rule_files = ["{FUNDING}"]
[[test]]
name = "sofr-over-iorb fires on the second business day over 10 bp"
[test.series]
sofr = {{ "2019-09-13" = 2.20, "2019-09-16" = 2.43, "2019-09-17" = 5.25 }}
iorb = {{ "2019-08-01" = 2.10 }}
[test.attributes]
"sofr.p99" = {{ "2019-09-17" = 9.00 }}
[[test.expect]]
rule = "sofr-over-iorb"
state = "firing"
date = "2019-09-17"
value = 315
[[test.expect]]
rule = "sofr-over-iorb"
state = "pending"
date = "2019-09-16"
[[test.expect_none]]
rule = "effr-above-target"
'''
    [result] = run_rule_tests([write(tmp_path, "t.toml", text)])
    # effr-above-target cannot run without EFFR: the expect_none is refused as vacuous.
    assert strip(result, tmp_path) == [
        "t.toml:18: test 'sofr-over-iorb fires on the second business day over 10 bp': expected "
        "no transition of effr-above-target, but effr-above-target was never evaluated: give "
        "each of its inputs (effr, fftarget_upper) a value on the same dates"]
    assert run_one(tmp_path, text.rsplit("[[test.expect_none]]", 1)[0], "u.toml").passed


def test_a_wrong_value_says_expected_and_got_at_the_expectation_line(tmp_path):
    text = SPIKE + expect("sofr-over-iorb", "pending", "2019-09-16") + expect(
        "sofr-over-iorb", "firing", "2019-09-17", value="300")
    result = run_one(tmp_path, text)
    assert not result.passed
    assert strip(result, tmp_path) == [
        "t.toml:12: test 'spike': sofr-over-iorb firing on 2019-09-17: "
        "expected value 300, got 315"]


def test_a_wrong_known_at_says_both_instants(tmp_path):
    text = SPIKE + expect("sofr-over-iorb", "pending", "2019-09-16") + expect(
        "sofr-over-iorb", "firing", "2019-09-17", known_at="2019-09-17T08:00:00-04:00")
    assert strip(run_one(tmp_path, text), tmp_path) == [
        "t.toml:12: test 'spike': sofr-over-iorb firing on 2019-09-17: expected known_at "
        "2019-09-17T12:00:00.000000Z, got 2019-09-18T12:00:00.000000Z"]


def test_a_missing_transition_lists_what_the_rule_did(tmp_path):
    text = SPIKE + expect("sofr-over-iorb", "firing", "2019-09-16") + expect(
        "sofr-over-iorb", "pending", "2019-09-16")
    assert strip(run_one(tmp_path, text), tmp_path) == [
        "t.toml:8: test 'spike': expected sofr-over-iorb firing on 2019-09-16, got no such "
        "transition; sofr-over-iorb had: pending on 2019-09-16 (33), firing on 2019-09-17 (315)",
        "t.toml:8: test 'spike': unexpected sofr-over-iorb firing on 2019-09-17 (value 315, "
        "known at 2019-09-18T12:00:00.000000Z); expected only: firing on 2019-09-16, "
        "pending on 2019-09-16",
    ]


def test_an_unexpected_transition_of_a_checked_rule_fails(tmp_path):
    """Pending counts: a rule with expectations must list all its transitions."""
    result = run_one(tmp_path, SPIKE + expect("sofr-over-iorb", "firing", "2019-09-17"))
    assert strip(result, tmp_path) == [
        "t.toml:8: test 'spike': unexpected sofr-over-iorb pending on 2019-09-16 (value 33, "
        "known at 2019-09-17T12:00:00.000000Z); expected only: firing on 2019-09-17"]


def test_rules_without_expectations_are_not_checked(tmp_path):
    # effr and fftarget_upper given: effr-above-target fires, but nothing expects about it.
    text = SPIKE.replace("sofr = {", "effr = { 2019-09-17 = 2.3 }\nfftarget_upper = "
                         "{ 2019-08-01 = 2.25 }\nsofr = {") + expect(
        "sofr-over-iorb", "pending", "2019-09-16") + expect("sofr-over-iorb", "firing", "2019-09-17")
    assert run_one(tmp_path, text).passed


def test_expect_none_fails_on_any_matching_transition(tmp_path):
    text = SPIKE + '[[test.expect_none]]\nrule = "sofr-over-iorb"\nstate = "firing"\n' \
        'since = 2019-09-01\nuntil = 2019-09-30\n'
    assert strip(run_one(tmp_path, text), tmp_path) == [
        "t.toml:8: test 'spike': expected no firing transition of sofr-over-iorb dated "
        "2019-09-01..2019-09-30, got sofr-over-iorb firing on 2019-09-17 (value 315, known at "
        "2019-09-18T12:00:00.000000Z)"]


def test_expect_none_outside_its_date_range_passes(tmp_path):
    text = SPIKE + '[[test.expect_none]]\nrule = "sofr-over-iorb"\nsince = 2019-10-01\n'
    assert run_one(tmp_path, text).passed


def test_expect_none_about_a_rule_never_evaluated_is_refused(tmp_path):
    """No EFFR given: effr-over-iorb never runs, so 'no alert' would prove nothing."""
    text = SPIKE + '[[test.expect_none]]\nrule = "effr-over-iorb"\n'
    assert strip(run_one(tmp_path, text), tmp_path) == [
        "t.toml:8: test 'spike': expected no transition of effr-over-iorb, but effr-over-iorb "
        "was never evaluated: give each of its inputs (effr, iorb) a value on the same dates"]


def test_a_quiet_case_where_no_rule_can_run_is_refused(tmp_path):
    text = SPIKE.replace("iorb = {{ 2019-08-01 = 2.10 }}\n".replace("{{", "{").replace("}}", "}"), "") \
        + "[[test.expect_none]]\n"
    assert strip(run_one(tmp_path, text), tmp_path) == [
        "t.toml:7: test 'spike': expected no transition of any rule, but no rule was evaluated "
        "at all: give every input of a rule a value on the same dates"]


def test_attributes_are_joined_into_their_observation(tmp_path):
    write(tmp_path, "p99.toml", '[[rule]]\nid = "sofr-tail"\nexpr = "bp(sofr.p99 - sofr)"\n'
          'above = 300\n')
    text = '''\
rule_files = ["p99.toml"]
[[test]]
name = "tail"
[test.series]
sofr = { 2019-09-16 = 2.43, 2019-09-17 = 5.25 }
[test.attributes]
"sofr.p99" = { 2019-09-16 = 4.60, 2019-09-17 = 9.00 }
''' + expect("sofr-tail", "firing", "2019-09-17", value="375")
    result = run_one(tmp_path, text)
    assert result.passed, result.failures


def test_speeches_are_accepted_for_keyword_rules(tmp_path):
    write(tmp_path, "kw.toml", '[[keyword_rule]]\nid = "ample"\nphrases = ["ample reserves"]\n')
    text = '''\
rule_files = ["kw.toml"]
[[test]]
name = "speech"
[[test.speech]]
speaker = "Logan"
institution = "Dallas Fed"
date = 2024-05-08
title = "Remarks"
text = "Money markets are calm."
[[test.expect_none]]
rule = "ample"
'''
    result = run_one(tmp_path, text)
    assert result.passed, result.failures


def test_as_of_leaves_out_later_facts_like_replay(tmp_path):
    """SOFR for 09-17 is published 09-18 08:00 New York: as of 07:59 it is not known yet."""
    text = SPIKE.replace('name = "spike"', 'name = "spike"\nas_of = 2019-09-18T07:59:00-04:00') \
        + expect("sofr-over-iorb", "pending", "2019-09-16")
    assert run_one(tmp_path, text).passed


def test_deadlines_are_ticked_up_to_as_of(tmp_path):
    """A staleness rule fires at its deadline with no new fact: SOFR for 2019-09-17 is due
    09-18 08:00 New York, late after one hour of grace."""
    write(tmp_path, "late.toml", '[[staleness_rule]]\nid = "sofr-late"\nseries = "sofr"\n'
          'grace = "1h"\n')
    case = '''\
rule_files = ["late.toml"]
[[test]]
name = "late"
{as_of}
[test.series]
sofr = {{ 2019-09-13 = 2.2, 2019-09-16 = 2.43 }}
[[test.expect_none]]
since = 2019-09-18
'''
    # Without as_of the run ends at the last publication (09-17 08:00): nothing is late yet.
    assert run_one(tmp_path, case.format(as_of="")).passed
    late = case.format(as_of="as_of = 2019-09-18T12:00:00-04:00") + expect(
        "sofr-late", "firing", "2019-09-17", known_at="2019-09-18T09:00:00-04:00")
    result = run_one(tmp_path, late, "u.toml")
    assert result.passed, result.failures


# ---- mistakes in test files: FILE:LINE, never a crash ----

def test_toml_syntax_error_is_a_file_failure_with_its_line(tmp_path):
    result = run_one(tmp_path, 'rule_files = ["x.toml"]\n[[test]]\nname = "a\n')
    assert result.name == FILE_CASE and not result.passed
    assert strip(result, tmp_path)[0].startswith("t.toml:3: TOML syntax error: ")


def test_unknown_series_names_its_line(tmp_path):
    text = SPIKE.replace("sofr = {", "sofrr = {") + expect("sofr-over-iorb", "firing", "2019-09-17")
    [problem] = strip(run_one(tmp_path, text), tmp_path)
    assert problem.startswith("t.toml:7: test 'spike': series.sofrr: unknown series 'sofrr'; known: ")
    assert "sofr, srf, srf_rate" in problem


def test_case_mistakes_each_have_their_own_line(tmp_path):
    text = f'''\
rule_files = ["{FUNDING}"]
[[test]]
name = "bad"
colour = "red"
[test.series.sofr]
2019-09-31 = 2.43
2019-10-01 = "2.43"
[test.attributes]
"sofr.p98" = {{ 2019-10-01 = 1 }}
"iorb.p99" = {{ 2019-10-01 = 1 }}
[[test.expect]]
rule = "nope"
state = "fired"
date = 2019-10-01
[[test.expect]]
rule = "sofr-over-iorb"
state = "firing"
date = 2019-10-01
known_at = 2019-10-02T08:00:00
'''
    assert strip(run_one(tmp_path, text), tmp_path) == [
        "t.toml:4: test 'bad': colour: unknown key; known: name, as_of, series, attributes, "
        "speech, expect, expect_value, expect_none",
        "t.toml:6: test 'bad': series.sofr.2019-09-31: '2019-09-31' is not a real date",
        "t.toml:7: test 'bad': series.sofr.2019-10-01: must be a number, got the string '2.43' "
        "(write it without quotes)",
        "t.toml:9: test 'bad': attributes.sofr.p98: unknown attribute 'p98' of sofr; known: p1, "
        "p25, p75, p99, volume",
        "t.toml:10: test 'bad': attributes.iorb.p99: iorb has no attributes",
        "t.toml:13: test 'bad': expect[0].state: 'fired' is not one of pending, firing, "
        "resolved, flagged",
        "t.toml:19: test 'bad': expect[1].known_at: has no UTC offset (write e.g. "
        "2019-09-18T08:00:00-04:00)",
    ]


def test_unknown_rule_in_an_expectation(tmp_path):
    result = run_one(tmp_path, SPIKE + expect("sofr-over-iorbb", "firing", "2019-09-17"))
    assert strip(result, tmp_path) == [
        "t.toml:9: test 'spike': rule: unknown rule 'sofr-over-iorbb'; the rule files define: "
        "effr-above-target, effr-over-iorb, sofr-over-effr, sofr-over-iorb"]


def test_flagged_is_only_for_one_shot_rules(tmp_path):
    [problem] = strip(run_one(tmp_path, SPIKE + expect("sofr-over-iorb", "flagged", "2019-09-17")),
                      tmp_path)
    assert problem == ("t.toml:8: test 'spike': state: sofr-over-iorb is a threshold rule: its "
                       "transitions are pending, firing or resolved, not flagged")


def test_a_case_that_checks_nothing_is_refused(tmp_path):
    assert strip(run_one(tmp_path, SPIKE), tmp_path) == [
        "t.toml:3: test 'spike': no [[test.expect]], [[test.expect_value]] or "
        "[[test.expect_none]]: the case would check nothing"]


def test_duplicate_names_and_top_level_keys(tmp_path):
    text = PASSING + PASSING.split("\n", 1)[1]
    results = run_rule_tests([write(tmp_path, "t.toml", text)])
    assert [r.passed for r in results] == [True, False]
    assert strip(results[1], tmp_path) == ["t.toml:12: duplicate test name 'spike' (first at t.toml:4)"]
    bad = run_one(tmp_path, "rule_file = []\n[[test]]\nname = 'x'\n", "u.toml")
    assert strip(bad, tmp_path) == [
        "u.toml:1: unknown key 'rule_file'; a rule test file holds rule_files = [...] and "
        "[[test]] tables",
        "u.toml:1: rule_files is missing: list the rule files this file tests, relative to it "
        '(e.g. rule_files = ["../funding.toml"])']


def test_a_broken_rule_file_fails_its_test_file_not_the_run(tmp_path):
    write(tmp_path, "broken.toml", '[[rule]]\nid = "x"\nexpr = "bp(sofr - iorb)"\nabove = "10"\n')
    broken = write(tmp_path, "a.toml", 'rule_files = ["broken.toml"]\n[[test]]\nname = "n"\n'
                   "[[test.expect_none]]\n")
    good = write(tmp_path, "b.toml", PASSING)
    results = run_rule_tests([broken, good])
    assert [(Path(r.file).name, r.name, r.passed) for r in results] == [
        ("a.toml", FILE_CASE, False), ("b.toml", "spike", True)]
    assert strip(results[0], tmp_path) == [
        "a.toml:1: rule_files: the rules do not load:",
        "broken.toml:4: rule x: above: must be a number, got str (write it without quotes)"]
    assert exit_code(results) == 1


def test_missing_paths_and_empty_folders_are_failures(tmp_path):
    (tmp_path / "empty").mkdir()
    results = run_rule_tests([str(tmp_path / "nope.toml"), str(tmp_path / "empty")])
    assert [strip(r, tmp_path) for r in results] == [
        ["nope.toml:1: no such rule test file or folder"],
        ["empty:1: no *.toml rule test files in this folder"]]
    assert exit_code([]) == 1


# ---- reports ----

def test_text_report_and_junit_xml(tmp_path):
    passing = write(tmp_path, "a.toml", PASSING)
    failing = write(tmp_path, "b.toml", SPIKE.replace('"spike"', '"spike <&> \\u0001"')
                    + expect("sofr-over-iorb", "firing", "2019-09-17", value="1"))
    results = run_rule_tests([passing, failing])
    text = render_text(results)
    assert text.splitlines()[0] == f"PASS {passing}: spike"
    assert text.splitlines()[1].startswith(f"FAIL {failing}: spike <&> \x01")
    assert text.endswith("2 tests, 1 failed\n")

    root = ET.fromstring(junit_xml(results))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    suites = root.findall("testsuite")
    assert [(s.get("name"), s.get("tests"), s.get("failures")) for s in suites] == [
        (passing, "1", "0"), (failing, "1", "1")]
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 2 and cases[1].get("name") == "spike <&> \ufffd"
    [failure] = root.findall(".//failure")
    assert "expected value 1" in failure.get("message")
    assert "unexpected sofr-over-iorb pending on 2019-09-16" in failure.text
    assert all(float(c.get("time")) >= 0 for c in cases)


def test_junit_of_a_file_failure(tmp_path):
    results = run_rule_tests([write(tmp_path, "t.toml", "[[test]\n")])
    root = ET.fromstring(junit_xml(results))
    [case] = root.findall("./testsuite/testcase")
    assert case.get("name") == FILE_CASE
    assert case.find("failure").get("type") == "load"


# ---- layering ----

def test_ruletest_does_not_import_the_upper_layers():
    code = ("import sys, watchdog.tuning.ruletest, watchdog.rules.schema; "
            "print(sorted(m for m in sys.modules if m in {'watchdog.tuning.replay', 'watchdog.daemon.loop', "
            "'watchdog.app', 'watchdog.cli', 'watchdog.sources.history'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=True, timeout=30)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["tuning/ruletest", "rules/schema"])
def test_modules_import_only_what_their_layer_allows(module):
    import ast
    tree = ast.parse((REPO / "watchdog" / f"{module}.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module if node.module != "watchdog" else
                         f"watchdog.{node.names[0].name}")
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    ours = {name for name in imported if name.startswith("watchdog")}
    if module == "tuning/ruletest":
        allowed = {m for m in ours if m.split(".")[1] in ("engine", "store", "rules", "model", "market")}
    else:
        allowed = {"watchdog.rules", "watchdog.rules.ruleset", "watchdog.rules.derived"}
        assert {n.split(".")[0] for n in imported - ours} <= {
            "__future__", "json", "typing", "pydantic", "pydantic_core"}
    assert ours <= allowed, ours - allowed
