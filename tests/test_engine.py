"""The pure engine: joins on observation dates, exact thresholds, persistence over business days,
hysteresis, revisions, and rule-set changes. No I/O: events are built in memory."""
from __future__ import annotations

from pathlib import Path


from watchdog.engine.fold import Engine
from watchdog.model.events import Observation, new_observation
from watchdog.rules.ruleset import load_rules
from watchdog.store import MemoryEventStore


def ruleset(tmp_path: Path, text: str):
    path = tmp_path / f"r{abs(hash(text))}.toml"
    path.write_text(text)
    return load_rules([str(path)])


SPREAD = """
[[rule]]
id = "sofr-over-iorb"
expr = "bp(sofr - iorb)"
above = 10
recover_below = 5
severity = "warning"
summary = "SOFR is {{ value }} bp over IORB"
"""


class Feed:
    """Appends facts to an in-memory store and feeds each stored event to the engine."""

    def __init__(self, engine: Engine):
        self.engine, self.store = engine, MemoryEventStore()

    def __call__(self, series: str, date: str, value: str, published: str | None = None, source="nyfed", **attrs):
        published = published or f"{date}T23:00:00.000000Z"
        obs = Observation(series=series, date=date, value=value, unit="%", source=source, attributes=attrs)
        rows = self.store.append([new_observation(obs, published)])
        out = []
        for row in rows:
            out += self.engine.apply(row, now=row.published_at)
        return out


def states(transitions):
    return [(t.state, t.date, t.value) for t in transitions]


def test_rule_fires_on_the_2019_repo_spike_with_exact_basis_points(tmp_path):
    feed = Feed(Engine(ruleset(tmp_path, SPREAD)))
    feed("iorb", "2019-08-01", "2.1", source="fomc")
    assert feed("sofr", "2019-09-13", "2.20") == []          # 10 bp: not above 10
    fired = feed("sofr", "2019-09-17", "5.25")
    assert states(fired) == [("firing", "2019-09-17", "315")]
    assert fired[0].summary == "SOFR is 315 bp over IORB"
    assert fired[0].inputs["iorb"].date == "2019-08-01" and fired[0].inputs["sofr"].value == "5.25"


def test_exactly_ten_basis_points_does_not_exceed_above_ten(tmp_path):
    feed = Feed(Engine(ruleset(tmp_path, SPREAD)))
    feed("iorb", "2025-10-01", "3.9", source="fomc")
    assert feed("sofr", "2025-10-02", "4.00") == []
    assert states(feed("sofr", "2025-10-03", "4.01")) == [("firing", "2025-10-03", "11")]


def test_hysteresis_latch_holds_until_the_recovery_threshold(tmp_path):
    feed = Feed(Engine(ruleset(tmp_path, SPREAD)))
    feed("iorb", "2025-10-01", "3.9", source="fomc")
    assert states(feed("sofr", "2025-10-30", "4.22")) == [("firing", "2025-10-30", "32")]
    assert feed("sofr", "2025-10-31", "3.98") == []          # 8 bp: inside the latch
    assert feed("sofr", "2025-11-03", "3.95") == []          # 5 bp: not strictly below 5
    resolved = feed("sofr", "2025-11-04", "3.94")
    assert states(resolved) == [("resolved", "2025-11-04", "4")]
    assert resolved[0].reason == "recovered: 4 < 5"


PERSIST = """
[[rule]]
id = "sofr-over-effr"
expr = "bp(sofr - effr)"
above = 10
for = "2bd"
severity = "warning"
"""


def test_rule_fires_after_two_business_days_and_holidays_neither_count_nor_break(tmp_path):
    feed = Feed(Engine(ruleset(tmp_path, PERSIST)))
    feed("effr", "2023-04-06", "4.83")
    assert states(feed("sofr", "2023-04-06", "5.00")) == [("pending", "2023-04-06", "17")]
    # Good Friday: EFFR published, SOFR not. One side only: never forward-filled, not evaluated.
    assert feed("effr", "2023-04-07", "4.83") == []
    feed("effr", "2023-04-10", "4.83")
    assert states(feed("sofr", "2023-04-10", "5.00")) == [("firing", "2023-04-10", "17")]


def test_a_day_below_the_threshold_breaks_the_streak(tmp_path):
    feed = Feed(Engine(ruleset(tmp_path, PERSIST)))
    for date, sofr in [("2023-04-03", "5.00"), ("2023-04-04", "4.83"), ("2023-04-05", "5.00")]:
        feed("effr", date, "4.83")
        out = feed("sofr", date, sofr)
    assert states(out) == [("pending", "2023-04-05", "17")]


def test_market_series_are_joined_on_the_same_date_only(tmp_path):
    feed = Feed(Engine(ruleset(tmp_path, PERSIST.replace('for = "2bd"', ""))))
    feed("effr", "2023-04-06", "4.83")
    assert feed("sofr", "2023-04-10", "5.00") == []           # no EFFR for 04-10 yet
    assert states(feed("effr", "2023-04-10", "4.83")) == [("firing", "2023-04-10", "17")]


def test_a_revision_of_the_last_date_can_resolve_and_a_late_old_date_moves_nothing(tmp_path):
    feed = Feed(Engine(ruleset(tmp_path, SPREAD)))
    feed("iorb", "2025-10-01", "3.9", source="fomc")
    feed("sofr", "2025-10-30", "3.95")
    assert states(feed("sofr", "2025-10-31", "4.22")) == [("firing", "2025-10-31", "32")]
    assert feed("sofr", "2025-10-31", "4.22") == []           # same fact again: nothing
    assert feed("sofr", "2025-10-29", "4.50") == []           # older date arriving late: data only
    revised = feed("sofr", "2025-10-31", "3.92")
    assert [(t.state, t.reason) for t in revised] == [("resolved", "revised input: condition no longer holds")]


def test_an_administered_rate_change_applies_from_its_effective_date(tmp_path):
    feed = Feed(Engine(ruleset(tmp_path, SPREAD)))
    feed("iorb", "2019-08-01", "2.1", "2019-07-31T18:00:00.000000Z", source="fomc")
    feed("iorb", "2019-09-19", "1.8", "2019-09-18T18:00:00.000000Z", source="fomc")
    assert states(feed("sofr", "2019-09-18", "2.25")) == [("firing", "2019-09-18", "15")]
    assert states(feed("sofr", "2019-09-19", "1.95")) == []   # 15 bp over the new 1.80: still latched


def test_changing_a_rule_warms_up_silently_and_reports_the_change(tmp_path):
    engine = Engine(ruleset(tmp_path, SPREAD))
    feed = Feed(engine)
    feed("iorb", "2025-10-01", "3.9", source="fomc")
    feed("sofr", "2025-10-31", "4.22")
    stricter = ruleset(tmp_path, SPREAD.replace("above = 10", "above = 50").replace("recover_below = 5", ""))
    changed = engine.load(stricter, now="2025-11-05T00:00:00.000000Z", cause_seq=99)
    assert [(t.state, t.reason, t.date) for t in changed] == [("resolved", "rules-changed", "2025-10-31")]
    removed = Engine(ruleset(tmp_path, SPREAD))
    f2 = Feed(removed)
    f2("iorb", "2025-10-01", "3.9", source="fomc")
    f2("sofr", "2025-10-31", "4.22")
    gone = removed.load(ruleset(tmp_path, PERSIST), now="2025-11-05T00:00:00.000000Z", cause_seq=5)
    assert [(t.rule, t.state, t.reason) for t in gone] == [("sofr-over-iorb", "resolved", "rule-removed")]


def test_loading_rules_over_existing_history_fires_only_for_the_current_state(tmp_path):
    engine = Engine()
    feed = Feed(engine)
    feed("iorb", "2019-08-01", "2.1", source="fomc")
    feed("sofr", "2019-09-17", "5.25")                         # fired long ago
    feed("sofr", "2019-09-18", "2.10")                         # and recovered
    assert engine.load(ruleset(tmp_path, SPREAD), now="2026-01-01T00:00:00.000000Z", cause_seq=3) == []


def test_an_administered_rate_arriving_after_market_data_evaluates_the_dates_that_waited(tmp_path):
    feed = Feed(Engine(ruleset(tmp_path, SPREAD)))
    assert feed("sofr", "2025-10-30", "3.95") == []            # no IORB known yet: nothing to join
    assert feed("sofr", "2025-10-31", "4.22") == []
    fired = feed("iorb", "2025-10-01", "3.9", source="fomc")
    assert states(fired) == [("firing", "2025-10-31", "32")]
