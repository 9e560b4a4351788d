"""Sweeps: --set parsing, variants re-validated with clear errors (an invalid variant skipped with
its reason, the sweep going on), the property that each variant of a one-pass sweep equals a
separate replay with that variant's rule set, and the progress bar on a terminal."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from backtest_logs import write_log
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog.app import open_store
from watchdog.cli import cli
from watchdog.model.errors import RuleError
from watchdog.model.events import FACT_TYPES
from watchdog.model.numbers import norm
from watchdog.rules.ruleset import load_rules, parse_rules
from watchdog.store import iter_published
from watchdog.tuning.replay import replay
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


# ---- invalid variants are skipped, not fatal ----

SWEEP_EPISODES = """
[[episode]]
name = "spike"
start = 2019-09-16
end = 2019-09-20
kind = "stress"
split = "calibration"

[[episode]]
name = "quiet"
start = 2019-09-25
end = 2019-10-02
kind = "calm"
split = "calibration"
"""


@pytest.fixture(scope="module")
def sweep_files(tmp_path_factory) -> dict[str, str]:
    """A small real log (SOFR, TGCR, EFFR around IORB in 2019-09), RULES and two episodes."""
    where = tmp_path_factory.mktemp("sweep-cli")
    spike = [0, 2, 3, 12, 14, 30, 300, 40, 15, 6, 3, 2, 1, 0, 1, 2, 0, 1]
    log = write_log(where / "events.db", {"iorb": {"2019-08-01": "2.1"}, "sofr": _rates(spike),
                                           "tgcr": _rates([s // 2 for s in spike]), "effr": _rates([0] * len(DAYS))})
    (where / "rules.toml").write_text(RULES)
    (where / "episodes.toml").write_text(SWEEP_EPISODES)
    return {"db": str(log), "rules": str(where / "rules.toml"), "episodes": str(where / "episodes.toml")}


def backtest_args(files: dict[str, str], *settings: str) -> list[str]:
    return ["backtest", "--db", files["db"], "--rules", files["rules"], "--episodes", files["episodes"],
            *(arg for s in settings for arg in ("--set", s))]


def test_a_variant_the_rule_loader_refuses_is_skipped_with_its_reason():
    ruleset = parse_rules(RULES)
    # a threshold under the rule's recover_below (5) makes the rule invalid
    lowered = build_variants(ruleset, [parse_setting("sofr-spread.above=3,20")])
    assert [(v.label, v.problem) for v in lowered] == [
        ("sofr-spread.above=3", "rule sofr-spread: recover_below: inverted hysteresis: recover_below (5) must be "
                                "<= above (3), or the alert would resolve while firing"),
        ("sofr-spread.above=20", "")]
    assert lowered[0].skipped and lowered[0].ruleset is None
    assert lowered[1].ruleset.by_id["sofr-spread"].above == Decimal(20)
    # in a product, only the combinations the loader refuses are skipped
    variants = build_variants(ruleset, [parse_setting("sofr-spread.above=3,20"),
                                        parse_setting("sofr-spread.recover_below=2,50")])
    assert [(v.label, v.skipped) for v in variants] == [
        ("sofr-spread.above=3 sofr-spread.recover_below=2", False),
        ("sofr-spread.above=3 sofr-spread.recover_below=50", True),
        ("sofr-spread.above=20 sofr-spread.recover_below=2", False),
        ("sofr-spread.above=20 sofr-spread.recover_below=50", True)]
    assert variants[3].problem.endswith("recover_below (50) must be <= above (20), or the alert would resolve while firing")
    with pytest.raises(ValueError, match="skipped variants cannot run"):
        next(run_sweep(iter([]), ruleset, variants))


def test_only_when_every_variant_is_refused_is_the_sweep_an_error_listing_each():
    with pytest.raises(RuleError) as caught:
        build_variants(parse_rules(RULES), [parse_setting("sofr-spread.recover_below=20,x")])
    assert caught.value.problems == [
        "--set sofr-spread.recover_below=20: rule sofr-spread: recover_below: inverted hysteresis: "
        "recover_below (20) must be <= above (10), or the alert would resolve while firing",
        "--set sofr-spread.recover_below=x: rule sofr-spread: recover_below: must be a number, got 'x'"]


def test_skipped_variants_are_shown_in_the_table_and_the_others_scored_as_without_them(sweep_files):
    both = CliRunner().invoke(cli, backtest_args(sweep_files, "sofr-spread.recover_below=2,50,8"))
    assert both.exit_code == 0, both.output
    lines = both.output.splitlines()
    assert lines[0].startswith("sweep: 3 variants (1 skipped: the rule loader refuses them), one pass; ")
    rows = {line.split()[0]: line for line in lines[3:]}
    assert rows["sofr-spread.recover_below=50"].split(None, 1)[1] == (
        "skipped: rule sofr-spread: recover_below: inverted hysteresis: recover_below (50) must be <= above (10), "
        "or the alert would resolve while firing")
    alone = CliRunner().invoke(cli, backtest_args(sweep_files, "sofr-spread.recover_below=2,8"))
    assert alone.exit_code == 0, alone.output
    scored = {line.split()[0]: line for line in alone.output.splitlines()[3:]}
    assert scored.keys() == {"sofr-spread.recover_below=2", "sofr-spread.recover_below=8"}
    for label, line in scored.items():             # the same scores
        assert rows[label].split() == line.split()
    assert rows["sofr-spread.recover_below=2"].split()[1] == "1/1"


def test_skipped_variants_in_json_carry_their_reason_and_the_others_stay_exact(sweep_files):
    import json
    both = CliRunner().invoke(cli, [*backtest_args(sweep_files, "sofr-spread.recover_below=2,50"), "--json"])
    alone = CliRunner().invoke(cli, [*backtest_args(sweep_files, "sofr-spread.recover_below=2"), "--json"])
    assert both.exit_code == 0 and alone.exit_code == 0, both.output + alone.output
    first, skipped = both.output.splitlines()
    assert first == alone.output.strip()
    assert json.loads(skipped) == {
        "variant": {"sofr-spread.recover_below": "50"},
        "skipped": "rule sofr-spread: recover_below: inverted hysteresis: recover_below (50) must be <= above (10), "
                   "or the alert would resolve while firing"}


def _on_a_terminal(args: list[str]) -> tuple[int, str, str]:
    """Run ``watchdog ARGS`` with stderr on a pseudo-terminal (stdout a pipe); exit code, stdout, stderr."""
    import os
    import pty
    import subprocess
    import sys
    import threading
    main, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "watchdog", *args], stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    err = bytearray()

    def drain():                                    # keep the terminal read while the sweep runs
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:                         # EIO: the process closed its side
                return
            if not chunk:
                return
            err.extend(chunk)
    reader = threading.Thread(target=drain)
    reader.start()
    out = proc.stdout.read()
    code = proc.wait(timeout=120)
    reader.join(timeout=30)
    os.close(main)
    return code, out.decode(), err.decode()


def test_a_sweep_draws_a_progress_bar_on_a_terminal_and_none_with_json(sweep_files):
    code, out, err = _on_a_terminal(backtest_args(sweep_files, "sofr-spread.above=10,20"))
    assert code == 0, err
    assert "backtest --set [##############################] 100%" in err
    assert out.startswith("sweep: 2 variants, one pass") and "[" not in out and "#" not in out
    code, out, err = _on_a_terminal([*backtest_args(sweep_files, "sofr-spread.above=10,20"), "--json"])
    assert code == 0, err
    assert "backtest --set" not in err and "%" not in err
    assert [line[0] for line in out.splitlines()] == ["{", "{"]
