"""Safe templates and patterns (the "hostile world"): a summary is a small template language whose
rendering is bounded in time and size, and `check` refuses what cannot be bounded, at its line;
label patterns (routes, mutes, inhibitions, silences) run on RE2, linear in the label whatever
the pattern, and `check` refuses what RE2 cannot run, at its line."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from watchdog.alerting.dispatch import matches, route
from watchdog.alerting.silences import Silence
from watchdog.model.config import parse_config
from watchdog.model.errors import ConfigError, RuleError
from watchdog.model.events import SilenceAdded
from watchdog.rules.ruleset import (
    KeywordRule,
    Rule,
    parse_rules,
    render_summary,
    rule_from_canonical,
)
from watchdog.rules.schema import rules_json_schema
from watchdog.rules.templates import (
    SUMMARY_FILTERS,
    SUMMARY_MAX_CHARS,
    language_problem,
)

REPO = Path(__file__).resolve().parent.parent
CUT = f"… [cut at {SUMMARY_MAX_CHARS} characters]"
LANGUAGE = ("allowed: text, {{ name }} placeholders and the filters abs, capitalize, default, float, "
            "int, lower, round, title, trim, truncate, upper, bp, spread, usd_bn, pct, rate, num with "
            "literal arguments")


def watchdog(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "watchdog", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=120)


def rule(rule_id: str, summary: str) -> str:
    return f"""
[[rule]]
id = "{rule_id}"
expr = "bp(sofr - iorb)"
above = 10
summary = '''{summary}'''
"""


# ---- summaries: what check refuses, at its line ----

def test_check_refuses_string_multiplication_and_nested_loops_at_their_lines(tmp_path):
    rules = tmp_path / "bad.toml"
    rules.write_text(rule("bomb", "{{ 'ab'*100000000 }}")
                     + rule("loops", "{% for a in value %}{% for b in value %}{{ a }}{{ b }}{% endfor %}{% endfor %}"))
    started = time.monotonic()
    proc = watchdog("check", "--rules", str(rules))
    assert time.monotonic() - started < 30                     # nothing was evaluated
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"{rules}:6: rule bomb: summary: operator * is not allowed in a summary; {LANGUAGE}",
        f"{rules}:12: rule loops: summary: {{% for %}} is not allowed in a summary; {LANGUAGE}",
    ]


@pytest.mark.parametrize("summary, message", [
    ("{% if value %}high{% endif %}", "{% if %} is not allowed"),
    ("{% set x = value %}{{ x }}", "{% set %} is not allowed"),
    ("{{ value ~ value }}", "operator ~ is not allowed"),
    ("{{ value + 1 }}", "operator + is not allowed"),
    ("{{ value if value else date }}", "operator inline if/else is not allowed"),
    ("{{ value | format('%099999999d') }}", "filter 'format' is not allowed"),
    ("{{ value | center(100000000) }}", "filter 'center' is not allowed"),
    ("{{ value | round(value) }}", "filter 'round' with an argument that is not a literal is not allowed"),
    ("{{ range(100000) }}", "a call is not allowed"),
    ("{{ value.__class__ }}", "attribute '__class__' is not allowed"),
    ("{{ value[0] }}", "a subscript ([…]) is not allowed"),
    ("{{ [value] * 3 }}", "operator * is not allowed"),
])
def test_check_refuses_every_construct_outside_the_language(summary, message):
    with pytest.raises(RuleError) as caught:
        parse_rules(rule("r1", summary), "r.toml")
    assert str(caught.value) == f"r.toml:6: rule r1: summary: {message} in a summary; {LANGUAGE}"


def test_every_kind_of_rule_has_its_summary_checked_at_the_summary_line():
    text = """
[[composite_rule]]
id = "c"
any = ["r1"]
summary = "{% for x in rule %}{{ x }}{% endfor %}"

[[staleness_rule]]
id = "s"
series = "sofr"
summary = "{{ series * 9 }}"

[[revision_rule]]
id = "v"
series = "sofr"
summary = "{{ change ~ change }}"

[[keyword_rule]]
id = "k"
phrases = ["ample"]
summary = "{{ title | wordwrap(1) }}"
""" + rule("r1", "fine {{ value }}")
    with pytest.raises(RuleError) as caught:
        parse_rules(text, "r.toml")
    assert [p.split(" in a summary")[0] for p in caught.value.problems] == [
        "r.toml:5: rule c: summary: {% for %} is not allowed",
        "r.toml:10: rule s: summary: operator * is not allowed",
        "r.toml:15: rule v: summary: operator ~ is not allowed",
        "r.toml:20: rule k: summary: filter 'wordwrap' is not allowed",
    ]


def test_a_summary_template_longer_than_the_cap_is_refused():
    with pytest.raises(RuleError) as caught:
        parse_rules(rule("r1", "x" * (SUMMARY_MAX_CHARS + 1)), "r.toml")
    assert str(caught.value) == ("r.toml:6: rule r1: summary: 2,001 characters, more than the 2000 a "
                                 "summary template may have (put the rest in description)")


def test_the_language_keeps_what_the_shipped_rules_use():
    allowed = rule("r1", "{{ rule }}: {{ value | float | round(2) }} bp on {{ date }} (SOFR {{ sofr }}, "
                         "{{ sofr.p99 | default('n/a') | upper }}) {# a comment #}{% raw %}{{ literal }}{% endraw %}")
    [parsed] = parse_rules(allowed.replace("bp(sofr - iorb)", "bp(sofr.p99 - iorb)").replace(
        "(SOFR {{ sofr }}, ", "("), "r.toml").rules
    assert render_summary(parsed, {"rule": "r1", "value": "12.345", "date": "2026-06-01",
                                   "sofr.p99": "4.5"}) == "r1: 12.35 bp on 2026-06-01 (4.5) {{ literal }}"
    assert set(SUMMARY_FILTERS) >= {"float", "round"}


# ---- summaries: bounded output ----

def test_a_long_summary_is_cut_and_says_so():
    keyword = KeywordRule(id="k", phrases=["ample"], summary="{{ speaker }}: {{ title }}")
    title = "Reserves are ample. " * 50_000                          # a 1 MB hostile feed title
    started = time.perf_counter()
    text = render_summary(keyword, {"speaker": "Powell", "title": title})
    assert time.perf_counter() - started < 0.5
    assert text == ("Powell: " + title)[:SUMMARY_MAX_CHARS] + CUT
    # repeated placeholders and a filter stop as soon as the cap is reached
    many = Rule(id="r", expr="sofr", above=1, summary="{{ value | upper }} " * 100)
    text = render_summary(many, {"value": "v" * 900})
    assert len(text) == SUMMARY_MAX_CHARS + len(CUT) and text.endswith(CUT)
    # under the cap nothing is cut
    assert render_summary(many, {"value": "4.2"}) == "4.2 " * 100


def test_a_rule_from_an_old_log_with_a_loop_still_folds_but_its_summary_is_not_run():
    text = ('{"above":"10","expr":"sofr","id":"old","kind":"threshold","severity":"warning",'
            '"summary":"{% for a in value %}{% for b in value %}x{% endfor %}{% endfor %}"}')
    old = rule_from_canonical(text)
    started = time.perf_counter()
    shown = render_summary(old, {"value": "y" * 100_000})
    assert time.perf_counter() - started < 0.5
    assert shown == f"old: summary not rendered: {{% for %}} is not allowed in a summary; {LANGUAGE}"


def test_the_schema_states_the_language_and_the_cap():
    summary = rules_json_schema()["$defs"]["Rule"]["properties"]["summary"]
    assert summary["maxLength"] == SUMMARY_MAX_CHARS
    for said in ("{{ name }}", "no {% %} tags", "round", "truncate", CUT):
        assert said in summary["description"], said


# ---- label patterns: RE2, checked at their line ----

ROUTE = '[receivers.desk]\ntype = "console"\n[[routes]]\nreceivers = ["desk"]\n'


@pytest.mark.parametrize("table, key", [
    ("[[routes]]\nreceivers = [\"desk\"]", "routes[1].match_re"),
    ("[mute.nights]\nweekdays = [\"saturday\"]", "mute.nights.match_re"),
    ("[[inhibit]]\ntarget = { severity = \"info\" }\nsource_re", "inhibit[0].source_re"),
    ("[[inhibit]]\nsource = { severity = \"critical\" }\ntarget_re", "inhibit[0].target_re"),
])
@pytest.mark.parametrize("pattern, said", [
    (r"(a)\\1", r"invalid escape sequence: \1"),
    ("(?=sofr).*", "invalid perl operator: (?="),
    ("sofr-(", "missing ): sofr-("),
])
def test_check_refuses_patterns_re2_cannot_run_at_their_line(table, key, pattern, said):
    matcher = f'{{ rule = "{pattern}" }}'
    text = ROUTE + (f"{table} = {matcher}\n" if table.endswith("_re") else f"{table}\nmatch_re = {matcher}\n")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "w.toml")
    line = len(text.splitlines())                                 # the pattern is on the last line
    assert str(caught.value) == (
        f"w.toml:{line}: {key}: rule: bad regular expression: {said} (RE2 syntax: no backreferences, "
        "look-around, atomic groups or possessive quantifiers)")


def test_a_catastrophic_backtracking_pattern_is_accepted_and_matched_in_linear_time(tmp_path):
    # (a+)+b takes 2^n steps in a backtracking engine on n a's; RE2 reads the label once
    config = parse_config('[receivers.desk]\ntype = "console"\n'
                          '[[routes]]\nreceivers = ["desk"]\nmatch_re = { rule = "(a+)+b" }\n'
                          '[[routes]]\nreceivers = ["desk"]\n'
                          '[mute.m]\nweekdays = ["sunday"]\nmatch_re = { rule = "(a|aa)*c" }\n')
    alert = {"rule": "a" * 100_000, "severity": "warning"}
    started = time.perf_counter()
    assert not matches({"rule": "a" * 100_000}, {}, {"rule": "(a+)+b"})
    assert matches({"rule": "a" * 100_000 + "b"}, {}, {"rule": "(a+)+b"})
    assert [d.route_id for d in route(alert, config.routes, ["desk"])] == ["routes[1]"]   # not [0]
    assert [d.route_id for d in route({**alert, "rule": "a" * 99 + "b"}, config.routes, ["desk"])] == ["routes[0]"]
    assert not matches({"rule": "a" * 100_000}, {}, config.mute["m"].match_re)
    assert time.perf_counter() - started < 1.0


def test_a_silence_with_a_pattern_re2_cannot_run_is_refused_and_a_catastrophic_one_is_harmless():
    base = {"id": "s1", "starts_at": "2026-01-01T00:00:00.000000Z", "ends_at": "2027-01-01T00:00:00.000000Z",
            "comment": "maintenance", "created_by": "ops"}
    with pytest.raises(ValidationError, match=r"bad regular expression: invalid escape sequence: \\1"):
        SilenceAdded(**base, matchers_re={"rule": r"(a*)\1b"})
    with pytest.raises(ValidationError, match=r"invalid perl operator: \(\?<="):
        SilenceAdded(**base, matchers_re={"rule": "(?<=x)y"})
    silence = Silence.from_added(SilenceAdded(**base, matchers_re={"rule": "(a+)+b"}))
    started = time.perf_counter()
    assert not silence.matches({"rule": "a" * 100_000, "severity": "warning"})
    assert silence.matches({"rule": "aaab", "severity": "warning"})
    assert time.perf_counter() - started < 1.0


# ---- the shipped files still pass ----

def test_the_shipped_rules_and_config_pass_check_and_the_rule_tests_pass():
    proc = watchdog("check", "--rules", "rules", "--config", "deploy/watchdog.toml")
    assert proc.returncode == 0, proc.stderr
    assert "ok: config deploy/watchdog.toml" in proc.stdout
    proc = watchdog("test-rules", "rules/tests/")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1].endswith(" 0 failed")


# ---- display filters: values as people read them (watchdog.model.display) ----

def rendered(summary: str, **values: str) -> str:
    ruleset = parse_rules(rule("r", summary))
    return render_summary(ruleset.by_id["r"], {"value": "0", "threshold": "10", "date": "2025-10-31",
                                             "sofr": "4.22", "iorb": "4.25", **values})


@pytest.mark.parametrize("summary, value, shown", [
    ("TGCR is {{ value | spread }} IORB", "-3", "TGCR is 3 bp under IORB"),
    ("TGCR is {{ value | spread }} IORB", "12", "TGCR is 12 bp over IORB"),
    ('EFFR is {{ value | spread("above", "below") }} the top', "-1.5", "EFFR is 1.5 bp below the top"),
    ("{{ value | bp }}", "314.99999999999999999999999997", "315 bp"),
    ("TGA build {{ value | usd_bn }}", "-8.224", "TGA build -$8.2bn"),
    ("Reserves {{ value | usd_bn }}", "2900", "Reserves $2,900bn"),
    ("Reserves are {{ value | pct }} of GDP", "9.703674190093303137684445111", "Reserves are 9.70% of GDP"),
    ("{{ value | pct(1) }} / {{ value | pct(99) }}", "9.75", "9.8% / 9.7500%"),
    ("SOFR {{ sofr | rate }} vs IORB {{ iorb | rate }}", "0", "SOFR 4.22% vs IORB 4.25%"),
    ("{{ value | num }}", "1234.5678", "1,234.57"),
    ("{{ value | usd_bn }} and {{ value | spread }}", "n/a", "n/a and n/a"),
])
def test_display_filters_show_values_as_people_read_them(summary, value, shown):
    assert rendered(summary, value=value) == shown


def test_display_filter_words_are_literals_and_bounded():
    assert language_problem('{{ value | spread(date, "under") }}') is not None   # a name is refused
    long = "x" * 500
    out = rendered(f'{{{{ value | spread("{long}") }}}}', value="3")
    assert out == "3 bp " + "x" * 40


def test_the_shipped_summaries_read_with_units_and_directions():
    from watchdog.rules.ruleset import load_rules
    ruleset = load_rules([str(REPO / "rules")])
    tgcr = render_summary(ruleset.by_id["tgcr-over-iorb"], {"value": "-3", "tgcr": "4.22", "iorb": "4.25"})
    assert tgcr == "TGCR is 3 bp under IORB"
    tga = render_summary(ruleset.by_id["tga-build-onrrp-low"],
                         {"value": "-8.224", "date": "2026-06-23", "tga": "925.9", "onrrp": "6.5"})
    assert tga.startswith("TGA build not absorbed by ON RRP: -$8.2bn over 5 business days")
    gdp = render_summary(ruleset.by_id["reserves-to-gdp-low"],
                         {"value": "9.703674190093303137684445111", "reserves": "2848", "gdp": "29349.9"})
    assert gdp == "Reserves are 9.70% of GDP (reserves $2,848bn, GDP $29,349.9bn SAAR)"
