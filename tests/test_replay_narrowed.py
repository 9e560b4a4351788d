"""A replay reads only the facts its rules can see (the series they read, from the SQLite read
model) and says exactly what a replay of the whole log says: on random logs with late backfills,
revisions and facts dated ahead of their time, for each rule alone and for the whole set, with
and without ``--as-of`` and ``--as-recorded``."""
from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from fakes import Clock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_replay_full import DAYS, LOG_START, RULES, logs, observation

from watchdog.market.series import nominal_publication_text
from watchdog.model.timefmt import parse_utc, utc_text
from watchdog.rules.ruleset import RuleSet, load_rules
from watchdog.store import SqliteEventStore, iter_published
from watchdog.tuning.replay import _narrowed, replay, transition_json

REPO = Path(__file__).resolve().parent.parent


def whole(store, ruleset, **kw) -> list[str]:
    # a fact tap makes replay read every fact (the report's series need them all)
    return [transition_json(t) for t in replay(store, ruleset, on_fact=lambda e: None, **kw)]


def narrowed(store, ruleset, **kw) -> list[str]:
    return [transition_json(t) for t in replay(store, ruleset, **kw)]


def sqlite_of(folder: str, facts) -> SqliteEventStore:
    clock = Clock(LOG_START)
    store = SqliteEventStore(Path(folder) / "events.db", now=clock)
    for recorded, event in facts:
        clock.set(recorded)
        store.append([event])
    return store


@st.composite
def logs_with_ahead(draw):
    """The random logs of test_replay_full, some with a fact dated weeks after it was published
    (an IORB change typed with the wrong year, or a reserves figure for a future week)."""
    facts, cut = draw(logs())
    facts = list(facts)
    if draw(st.booleans()):
        series = draw(st.sampled_from(["iorb", "reserves"]))
        day = DAYS[draw(st.integers(0, 10))]
        published = nominal_publication_text(series, day)
        ahead = observation(series, day + timedelta(days=draw(st.sampled_from([30, 400]))), "2.1", published)
        facts.append((parse_utc(published) + timedelta(minutes=1), ahead))
        facts.sort(key=lambda f: f[0])
    return facts, cut


SUBSETS = [RuleSet.of([rule]) for rule in RULES.all_rules] + [RULES]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs_with_ahead())
def test_a_replay_reading_only_its_rules_series_says_what_the_whole_log_says(log):
    facts, cut = log
    with tempfile.TemporaryDirectory() as folder:
        store = sqlite_of(folder, facts)
        try:
            for ruleset in SUBSETS:
                if not any(event.payload.get("date", "") > (event.published_at or "9")[:10] for _, event in facts):
                    assert _narrowed(store, ruleset, None, None) is not None
                assert narrowed(store, ruleset) == whole(store, ruleset), [r.id for r in ruleset.all_rules]
                assert narrowed(store, ruleset, as_of=cut) == whole(store, ruleset, as_of=cut)
                assert narrowed(store, ruleset, recorded_by=cut) == whole(store, ruleset, recorded_by=cut)
        finally:
            store.close()


def test_the_shipped_history_replays_identically_reading_only_what_each_rule_reads(tmp_path):
    import shutil
    shutil.copy(REPO / "events.db.example", tmp_path / "events.db")
    store = SqliteEventStore(tmp_path / "events.db", readonly=True)
    rules = load_rules([str(REPO / "rules")])
    try:
        assert _narrowed(store, rules, None, None) is not None
        assert narrowed(store, rules) == whole(store, rules)
        for rule in [rules.by_id[i] for i in ("sofr-over-iorb", "tga-stale")]:
            alone = RuleSet.of([rule])
            assert narrowed(store, alone) == whole(store, alone)
    finally:
        store.close()


def test_a_fact_dated_ahead_in_a_series_read_makes_the_replay_read_everything(tmp_path):
    day = DAYS[3]
    published = nominal_publication_text("iorb", day)
    clock = Clock(parse_utc(published) + timedelta(minutes=1))
    store = SqliteEventStore(tmp_path / "events.db", now=clock)
    store.append([observation("sofr", day, "2.2", nominal_publication_text("sofr", day)),
                  observation("iorb", day + timedelta(days=40), "2.1", published)])
    only_spread = RuleSet.of([RULES.by_id["spread"]])
    only_sofr_effr = RuleSet.of([RULES.by_id["avg-spread"]])
    assert _narrowed(store, only_spread, None, None) is None
    types, series, last = _narrowed(store, only_sofr_effr, None, None)
    assert series == {"sofr", "effr"} and last == utc_text(clock())     # sofr, capped at recording
    # and what a narrowed read leaves out: other series' observations only
    kept = [e.payload["series"] for e in iter_published(store, series={"sofr"})]
    assert kept == ["sofr"]
    store.close()
