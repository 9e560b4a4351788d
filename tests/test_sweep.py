"""Sweeps: --set parsing, variants re-validated with clear errors, and the property that each
variant of a one-pass sweep equals a separate replay with that variant's rule set."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from backtest_logs import write_log
from watchdog.app import open_store
from watchdog.cli import cli
from watchdog.model.errors import RuleError
from watchdog.model.events import FACT_TYPES
from watchdog.model.numbers import norm
from watchdog.tuning.replay import replay
from watchdog.rules.ruleset import load_rules, parse_rules
from watchdog.store import iter_published
from watchdog.tuning.sweep import affected_ids, build_variants, parse_setting, run_sweep

REPO = Path(__file__).resolve().parent.parent

RULES = """
[[rule]]
id = "sofr-spread"
expr = "bp(sofr - iorb)"
above = 10
recover_below = 5
for = "2bd"

[[rule]]
id = "tgcr-spread"
expr = "bp(tgcr - iorb)"
above = 5
for = "2bd"

[[rule]]
id = "effr-spread"
expr = "bp(effr - iorb)"
above = 5

[[composite_rule]]
id = "stress"
at_least = 2
of = ["sofr-spread", "tgcr-spread", "effr-spread"]
severity = "critical"

[[composite_rule]]                 # a composite of a composite: the variants carry copies of members
id = "everything"
all = ["stress", "effr-spread"]

[[staleness_rule]]
id = "sofr-stale"
series = "sofr"
grace = "2h"
"""

DAYS = ["2019-09-09", "2019-09-10", "2019-09-11", "2019-09-12", "2019-09-13", "2019-09-16",
        "2019-09-17", "2019-09-18", "2019-09-19", "2019-09-20", "2019-09-23", "2019-09-24",
        "2019-09-25", "2019-09-26", "2019-09-27", "2019-09-30", "2019-10-01", "2019-10-02"]


def test_setting_parses_ranges_with_steps_lists_and_single_values():
    assert parse_setting("sofr-over-iorb.above=5..30:5").values == ("5", "10", "15", "20", "25", "30")
    assert parse_setting("a.above=0.5..1.5:0.25").values == ("0.5", "0.75", "1", "1.25", "1.5")
    assert parse_setting("a.above=1..3").values == ("1", "2", "3")
    assert parse_setting("a.for=1bd, 2bd,3bd").values == ("1bd", "2bd", "3bd")
    setting = parse_setting("sofr-over-iorb.severity=critical")
    assert (setting.rule, setting.field, setting.values) == ("sofr-over-iorb", "severity", ("critical",))


@pytest.mark.parametrize("text", ["above=5", "a.above", "a.above=", "a.above=30..5:5", "a.above=5..30:0",
                                  "a.above=x..y:1", "a.above=1,,2"])
def test_setting_refuses_malformed_text(text):
    with pytest.raises(ValueError, match="--set"):
        parse_setting(text)


def test_variants_are_the_cartesian_product_revalidated():
    ruleset = parse_rules(RULES)
    variants = build_variants(ruleset, [parse_setting("sofr-spread.above=10,20"),
                                        parse_setting("sofr-spread.for=1bd,3bd")])
    assert [v.label for v in variants] == [
        "sofr-spread.above=10 sofr-spread.for=1bd", "sofr-spread.above=10 sofr-spread.for=3bd",
        "sofr-spread.above=20 sofr-spread.for=1bd", "sofr-spread.above=20 sofr-spread.for=3bd"]
    rule = variants[3].ruleset.by_id["sofr-spread"]
    assert (str(rule.above), rule.for_business_days) == ("20", 3)
    assert rule.hash != ruleset.by_id["sofr-spread"].hash
    assert variants[3].ruleset.by_id["tgcr-spread"] is ruleset.by_id["tgcr-spread"]


@pytest.mark.parametrize("text, message", [
    ("sofr-spread.recover_below=50",
     "--set sofr-spread.recover_below=50: rule sofr-spread: recover_below: inverted hysteresis: "
     "recover_below (50) must be <= above (10), or the alert would resolve while firing"),
    ("sofr-spread.for=2x", "--set sofr-spread.for=2x: rule sofr-spread: for: bad duration '2x'"),
    ("sofr-spread.abvoe=5", "--set sofr-spread.abvoe=5: rule sofr-spread: abvoe: unknown field; known fields:"),
    ("nope.above=5", "--set nope.above=5: rule nope: no such rule in the rule set"),
    ("sofr-spread.skip_on=turn", "--set sofr-spread.skip_on=turn: rule sofr-spread: skip_on: cannot be swept"),
    ("stress.at_least=0", "--set stress.at_least=0: rule stress: at_least: Input should be greater than or equal to 1"),
])
def test_invalid_variant_names_the_rule_and_field(text, message):
    with pytest.raises(RuleError) as caught:
        build_variants(parse_rules(RULES), [parse_setting(text)])
    assert str(caught.value).startswith(message)


def test_affected_rules_are_the_swept_ones_and_composites_over_them():
    ruleset = parse_rules(RULES)
    assert affected_ids(ruleset, ["sofr-spread"]) == {"sofr-spread", "stress", "everything"}
    assert affected_ids(ruleset, ["sofr-stale"]) == {"sofr-stale"}


def _rates(bp_over_iorb: list[int]) -> dict[str, str]:
    """Daily rates as IORB (2.10%) plus the given basis points, exact decimal text."""
    return {day: norm(Decimal(210 + bp) / 100) for day, bp in zip(DAYS, bp_over_iorb)}


def one_pass_equals_replays(log: Path, ruleset, settings_text: list[str]) -> None:
    variants = build_variants(ruleset, [parse_setting(s) for s in settings_text])
    store = open_store(log, readonly=True)
    try:
        swept = list(run_sweep(iter_published(store, types=FACT_TYPES), ruleset, variants))
        for variant, got in zip(variants, swept, strict=True):
            assert got == list(replay(store, variant.ruleset)), variant.label
    finally:
        store.close()


spreads = st.lists(st.integers(min_value=-10, max_value=40), min_size=len(DAYS), max_size=len(DAYS))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sofr=spreads, tgcr=spreads, effr=spreads,
       setting=st.sampled_from(["sofr-spread.above=5..35:6", "sofr-spread.for=1bd,3bd,6h",
                                "stress.at_least=1..3:1", "effr-spread.above=0,5,15",
                                "sofr-stale.grace=1h,30h", "sofr-spread.expr=bp(sofr - iorb),bp(tgcr - iorb)"]),
       nested=st.booleans())
def test_each_variant_of_a_sweep_equals_a_separate_replay(tmp_path_factory, sofr, tgcr, effr, setting, nested):
    log = tmp_path_factory.mktemp("sweep") / "events.db"
    write_log(log, {"iorb": {"2019-08-01": "2.1"},
                    "sofr": _rates(sofr), "tgcr": _rates(tgcr), "effr": _rates(effr)})
    # without the nested composite, `stress` follows its members across the shared and the
    # variant engines (the shortcut); with it, each variant runs copies of the members
    text = RULES if nested else _without_nested(RULES)
    one_pass_equals_replays(log, parse_rules(text), [setting])


def _without_nested(text: str) -> str:
    head, _, rest = text.partition("[[composite_rule]]                 #")
    return head + "[[staleness_rule]]" + rest.partition("[[staleness_rule]]")[2]


def test_sweep_equals_replays_on_the_shipped_history_through_a_composite():
    ruleset = load_rules([str(REPO / "rules")])
    one_pass_equals_replays(REPO / "events.db.example", ruleset, ["sofr-over-iorb.above=5,20"])


def test_backtest_sweep_prints_one_row_per_variant():
    result = CliRunner().invoke(cli, ["backtest", "--db", str(REPO / "events.db.example"),
                                      "--rules", str(REPO / "rules"), "--split", "calibration",
                                      "--set", "sofr-over-iorb.above=10,30"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == ("sweep: 2 variants, one pass; swept rules and the composites over them: "
                        "funding-stress, sofr-over-iorb; then all rules")
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    # a lower threshold warns of the 2019-09 spike six business days early; at 30 bp it is late
    assert rows["sofr-over-iorb.above=10"][1:4] == ["2/4", "+1.5", "(-3..+6)"]
    assert rows["sofr-over-iorb.above=30"][1:4] == ["2/4", "-2.5", "(-3..-2)"]


def test_backtest_sweep_with_an_invalid_value_exits_1_naming_rule_and_field():
    result = CliRunner().invoke(cli, ["backtest", "--db", str(REPO / "events.db.example"),
                                      "--rules", str(REPO / "rules"), "--set", "sofr-over-iorb.above=abc"])
    assert result.exit_code == 1
    assert result.output.startswith("--set sofr-over-iorb.above=abc: rule sofr-over-iorb: above: must be a number")


def test_the_same_field_set_twice_is_refused():
    with pytest.raises(ValueError, match="sofr-spread.above is given twice"):
        build_variants(parse_rules(RULES), [parse_setting("sofr-spread.above=10"),
                                            parse_setting("sofr-spread.above=20")])


def test_backtest_sweep_json_prints_one_object_per_variant():
    import json
    result = CliRunner().invoke(cli, ["backtest", "--db", str(REPO / "events.db.example"),
                                      "--rules", str(REPO / "rules"), "--split", "calibration",
                                      "--set", "sofr-over-iorb.above=10,30", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [row["variant"] for row in rows] == [{"sofr-over-iorb.above": "10"}, {"sofr-over-iorb.above": "30"}]
    assert [row["swept"]["median_lead"] for row in rows] == [1.5, -2.5]
    assert rows[0]["all"]["rule"] == "all rules"
