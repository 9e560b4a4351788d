"""Rule kinds beyond plain thresholds: calendar-aware thresholds and skips, keep_firing_for,
revision flags, composites, staleness on deadlines, keyword flags — and a restart in the middle
of a `for` or a `keep_firing_for` resumes exactly (state is a fold over the log)."""
from __future__ import annotations

from pathlib import Path

from watchdog.engine.fold import Engine
from watchdog.model.events import Observation, new_observation
from watchdog.rules.ruleset import load_rules
from watchdog.market.series import nominal_publication_text
from watchdog.store import MemoryEventStore, iter_published


def ruleset(tmp_path: Path, text: str):
    path = tmp_path / f"r{abs(hash(text))}.toml"
    path.write_text(text)
    return load_rules([str(path)])


class Log:
    """Facts at their nominal publication; replayed in (published_at, seq) order with deadlines
    merged in, like `watchdog replay`."""

    def __init__(self):
        self.store = MemoryEventStore()

    def obs(self, series, date, value, source=None, **attrs):
        from watchdog.market.series import SERIES
        o = Observation(series=series, date=date, value=value, unit=SERIES[series].unit,
                        source=source or SERIES[series].primary_source, attributes=attrs)
        self.store.append([new_observation(o, nominal_publication_text(series, __import__("datetime").date.fromisoformat(date)))])
        return self

    def replay(self, engine: Engine, until: str | None = None):
        out = []
        last = None
        for event in iter_published(self.store):
            out += engine.tick(event.published_at) + engine.apply(event, now=event.published_at)
            last = event.published_at
        out += engine.tick(until or last)
        return [(t.rule, t.state, t.date) for t in out if t.state != "pending"]


BASE = """
[[rule]]
id = "spread"
expr = "bp(sofr - iorb)"
above = 10
"""


def test_a_higher_threshold_on_quarter_turns_tells_selected_date_pressure_apart(tmp_path):
    rules = ruleset(tmp_path, BASE + "above_on = { quarter_turn = 25 }\n")
    log = Log().obs("iorb", "2024-09-19", "4.9").obs("sofr", "2024-09-30", "4.96")
    log.obs("sofr", "2024-10-01", "5.05").obs("sofr", "2024-10-02", "4.92")   # turn: 15 bp < 25
    assert log.replay(Engine(rules)) == []
    log.obs("sofr", "2024-10-03", "5.05")                                   # ordinary day: 15 > 10
    assert log.replay(Engine(rules)) == [("spread", "firing", "2024-10-03")]


def test_skip_on_turns_neither_counts_nor_breaks_a_streak(tmp_path):
    rules = ruleset(tmp_path, BASE + 'for = "2bd"\nskip_on = ["turn"]\n')
    log = Log().obs("iorb", "2025-10-01", "3.9")
    for date, value in [("2025-10-31", "4.22"), ("2025-11-03", "3.80"), ("2025-11-04", "4.10")]:
        log.obs("sofr", date, value)
    # 11-03 (the turn, below threshold) is skipped: 10-31 and 11-04 are consecutive evaluations
    assert log.replay(Engine(rules)) == [("spread", "firing", "2025-11-04")]


def test_keep_firing_for_holds_the_alert_through_a_short_recovery(tmp_path):
    rules = ruleset(tmp_path, BASE + 'keep_firing_for = "2bd"\n')
    log = Log().obs("iorb", "2025-10-01", "3.9")
    for date, value in [("2025-10-27", "4.22"), ("2025-10-28", "3.85"), ("2025-10-29", "3.85"),
                        ("2025-10-30", "3.85")]:
        log.obs("sofr", date, value)
    assert log.replay(Engine(rules)) == [("spread", "firing", "2025-10-27"), ("spread", "resolved", "2025-10-30")]


def test_a_relapse_during_keep_firing_for_restarts_the_count(tmp_path):
    rules = ruleset(tmp_path, BASE + 'keep_firing_for = "2bd"\n')
    log = Log().obs("iorb", "2025-10-01", "3.9")
    for date, value in [("2025-10-27", "4.22"), ("2025-10-28", "3.85"), ("2025-10-29", "4.30"),
                        ("2025-10-30", "3.85"), ("2025-10-31", "3.85")]:
        log.obs("sofr", date, value)
    assert log.replay(Engine(rules)) == [("spread", "firing", "2025-10-27")]


def test_a_revision_of_two_basis_points_is_flagged_once(tmp_path):
    rules = ruleset(tmp_path, '[[revision_rule]]\nid = "sofr-revised"\nseries = "sofr"\nbp = 1\n')
    log = Log().obs("sofr", "2025-10-31", "4.22").obs("sofr", "2025-10-31", "4.24")
    engine = Engine(rules)
    assert log.replay(engine) == [("sofr-revised", "flagged", "2025-10-31")]


COMPOSITE = BASE + """
[[rule]]
id = "effr-spread"
expr = "bp(effr - iorb)"
above = 5
[[composite_rule]]
id = "funding-stress"
all = ["spread", "effr-spread"]
severity = "critical"
"""


def test_composite_fires_when_all_members_fire_and_resolves_when_one_stops(tmp_path):
    rules = ruleset(tmp_path, COMPOSITE)
    log = Log().obs("iorb", "2019-08-01", "2.1", source="fomc")
    log.obs("sofr", "2019-09-17", "5.25").obs("effr", "2019-09-17", "2.3")
    log.obs("sofr", "2019-09-18", "2.55").obs("effr", "2019-09-18", "2.13")
    got = log.replay(Engine(rules))
    assert ("funding-stress", "firing", "2019-09-17") in got
    assert ("funding-stress", "resolved", "2019-09-18") in got


STALE = '[[staleness_rule]]\nid = "sofr-stale"\nseries = "sofr"\ngrace = "1h"\n'


def test_a_missing_sofr_fires_at_its_deadline_and_resolves_when_it_arrives(tmp_path):
    rules = ruleset(tmp_path, STALE)
    log = Log().obs("sofr", "2025-10-29", "4.3").obs("sofr", "2025-10-30", "4.25")
    engine = Engine(rules)
    # SOFR for 10-31 is due Monday 11-03 08:00 ET + 1h; nothing came
    assert log.replay(engine, until="2025-11-03T14:00:00.000000Z") == [("sofr-stale", "firing", "2025-10-31")]
    assert engine.next_deadline() == "2025-11-04T14:00:00.000000Z"
    log.obs("sofr", "2025-10-31", "4.22")                       # published late: resolves on arrival
    event = log.store.read(after=2)[0]
    resolved = engine.apply(event, now="2025-11-03T15:00:00.000000Z")
    assert [(t.state, t.date) for t in resolved] == [("resolved", "2025-10-31")]


def test_a_deadline_transition_is_dated_and_keyed_by_its_deadline(tmp_path):
    from watchdog.model.events import alert_key
    engine = Engine(ruleset(tmp_path, STALE))
    log = Log().obs("sofr", "2025-10-30", "4.25")
    for event in iter_published(log.store):
        engine.apply(event, now=event.published_at)
    [t] = engine.tick("2025-11-03T14:00:00.000000Z")
    assert t.evaluated_at == t.deadline == "2025-11-03T14:00:00.000000Z"
    assert alert_key(t).endswith("/t2025-11-03T14:00:00.000000Z")


def test_restart_mid_for_and_mid_keep_firing_for_resumes_without_refiring(tmp_path):
    rules = ruleset(tmp_path, BASE + 'for = "2bd"\nkeep_firing_for = "1bd"\n')
    log = Log().obs("iorb", "2025-10-01", "3.9")
    days = [("2025-10-27", "4.22"), ("2025-10-28", "4.22"), ("2025-10-29", "3.85"), ("2025-10-30", "3.85")]
    for date, value in days:
        log.obs("sofr", date, value)
    events = list(iter_published(log.store))
    continuous = Engine(rules)
    per_event = [[(t.state, t.date) for t in continuous.apply(e, e.published_at)] for e in events]
    assert [t for ts in per_event for t in ts] == [("pending", "2025-10-27"), ("firing", "2025-10-28"),
                                                    ("resolved", "2025-10-30")]
    for cut in range(1, len(events)):
        # a restart after `cut` events: the new process re-folds the log so far (its transitions
        # were already recorded), then carries on with the rest
        resumed = Engine(rules)
        for e in events[:cut]:
            resumed.apply(e, e.published_at)
        rest = [(t.state, t.date) for e in events[cut:] for t in resumed.apply(e, e.published_at)]
        assert rest == [t for ts in per_event[cut:] for t in ts], cut


def test_a_wall_clock_for_fires_at_its_deadline_only_if_the_breach_still_holds(tmp_path):
    rules = ruleset(tmp_path, BASE + 'for = "6h"\n')
    log = Log().obs("iorb", "2025-10-01", "3.9").obs("sofr", "2025-10-30", "4.22")
    engine = Engine(rules)
    got = log.replay(engine, until="2025-10-31T20:00:00.000000Z")
    # SOFR for 10-30 published 10-31 08:00 ET (12:00Z): pending then, firing 6 hours later
    assert got == [("spread", "firing", "2025-10-30")]
    assert engine.tick("2025-10-31T20:00:00.000000Z") == []     # a deadline fires once


def test_a_recovery_before_the_wall_clock_deadline_cancels_the_alert(tmp_path):
    # pending from 10-31 12:00Z (SOFR for 10-30); the recovery (SOFR for 10-31) is published
    # 11-03 08:00 EST = 13:00Z, before the 4-day deadline of 11-04 12:00Z: nothing fires
    rules = ruleset(tmp_path, BASE + 'for = "4d"\n')
    log = Log().obs("iorb", "2025-10-01", "3.9").obs("sofr", "2025-10-30", "4.22").obs("sofr", "2025-10-31", "3.85")
    assert log.replay(Engine(rules), until="2025-11-10T00:00:00.000000Z") == []
    # with 3 days the deadline (11-03 12:00Z) comes first: it fires, then resolves
    rules = ruleset(tmp_path, BASE + 'for = "3d"\n')
    assert log.replay(Engine(rules)) == [("spread", "firing", "2025-10-30"), ("spread", "resolved", "2025-10-31")]
