"""Bulk evaluation (watchdog.engine.bulk, what replay runs on a SQLite log) and the incremental
engine (what the daemon runs, the reference) give identical transitions: values, dates,
``known_at``, inputs, reasons, summaries; on random logs (late backfills, revisions, gaps) and
random rule sets (thresholds above and below, ``for``, hysteresis, ``keep_firing_for``,
skip/only/above_on calendar terms, shared expressions, windows, several drivers, composites of
them). Plus what the bulk path must refuse: a wall-clock ``for``, a fact dated ahead."""
from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_replay_full import RULES, logs, store_of
from test_replay_narrowed import sqlite_of

from watchdog.engine.bulk import split
from watchdog.engine.fold import PRUNE_EVERY, Engine, replay_events
from watchdog.model.events import FACT_TYPES
from watchdog.rules.ruleset import RuleError, parse_rules
from watchdog.store import iter_published
from watchdog.tuning import replay as replay_module
from watchdog.tuning.replay import _narrowed, replay, transition_json

EXPRESSIONS = [
    ("bp(sofr - iorb)", 10, 5),            # one driver, an as-of step: the ordinary case
    ("bp(sofr - iorb)", 2, -3),            # the same expression again: values shared
    ("bp(effr - iorb) + 1", 5, 0),
    ("-bp(iorb - sofr)", 8, 2),
    ("abs(bp(sofr - iorb))", 12, 6),
    ("sofr * 100 - iorb * 100", 9, 1),
    ("bp(sofr - effr)", 3, -2),            # two drivers
    ('avg(bp(sofr - effr), "3bd")', 4, 1),  # a window
    ('change(sofr, "2bd") * 100', 3, -3),
    ("reserves / 1000 + bp(lag(sofr, 2) - iorb)", 12, 8),
    ("sofr_iorb", 7, 3),                   # a derived series
    ("bp(sofr - iorb) + bp(lag(effr, 1) - iorb)", 6, 0),   # a driver read only on other dates
]


@st.composite
def rule_sets(draw):
    """A few threshold rules drawn from EXPRESSIONS with random shapes, maybe a composite."""
    picked = draw(st.lists(st.integers(0, len(EXPRESSIONS) - 1), min_size=1, max_size=6))
    parts = ['[[series]]\nname = "sofr_iorb"\nexpr = "bp(sofr - iorb)"\nunit = "bp"\n']
    ids = []
    for n, k in enumerate(picked):
        expr, level, clear = EXPRESSIONS[k]
        level += draw(st.integers(-3, 3))
        above = draw(st.booleans())
        lines = [f'id = "r{n}"', f"expr = {expr!r}".replace("'", '"') if '"' not in expr else f"expr = '{expr}'"]
        if above:
            lines.append(f"above = {level}")
            if draw(st.booleans()):
                lines.append(f"recover_below = {min(clear, level)}")
        else:
            lines.append(f"below = {-level}")
            if draw(st.booleans()):
                lines.append(f"recover_above = {max(-clear, -level)}")
        days = draw(st.integers(0, 3))
        if days > 1:
            lines.append(f'for = "{days}bd"')
        if draw(st.integers(0, 3)) == 0:
            lines.append(f'keep_firing_for = "{draw(st.integers(1, 2))}bd"')
        calendar = draw(st.sampled_from(["", "skip", "only", "above_on"]))
        if calendar == "skip":
            lines.append('skip_on = ["month_end", "turn"]')
        elif calendar == "only":
            lines.append('only_on = ["month_end", "turn", "tax_date"]')
        elif calendar == "above_on" and above:
            lines.append(f"above_on = {{ month_end = {level + 5} }}")
        parts.append("[[rule]]\n" + "\n".join(lines) + "\n")
        ids.append(f"r{n}")
    if len(ids) >= 2 and draw(st.booleans()):
        parts.append(f'[[composite_rule]]\nid = "both"\nat_least = 2\nof = {ids!r}\n'.replace("'", '"'))
    try:
        return parse_rules("\n".join(parts))
    except RuleError:
        assume(False)


@st.composite
def rough_logs(draw):
    """Logs made to hit every path of ``_consider``: rates close to the thresholds so rules move
    often; IORB steps published days after the dates they apply to (a late as-of input:
    re-evaluating the last date and the dates that waited for it); reserves published a week
    late; SOFR revised on the same day or later (re-judging the last date, or only data);
    a SOFR date backfilled after later dates (only data); EFFR missing on some days (a second
    driver absent)."""
    from datetime import datetime, timedelta, timezone

    from test_replay_full import DAYS, observation
    from watchdog.model.events import NewEvent
    from watchdog.model.timefmt import utc_text

    days = DAYS[:draw(st.integers(6, len(DAYS)))]
    facts = []

    def at(day_index: int, hours: float) -> datetime:
        # from 14:00 UTC (10:00 in New York) of the day: never dated ahead of its instant
        day = days[min(day_index, len(days) - 1)] + timedelta(days=max(0, day_index - len(days) + 1))
        return datetime(day.year, day.month, day.day, 14, tzinfo=timezone.utc) + timedelta(hours=hours)

    def add(event, when: datetime) -> None:
        facts.append((when + timedelta(minutes=1), NewEvent(event.type, event.key, event.payload, utc_text(when))))

    bp = st.integers(180, 215)
    iorb_at = draw(st.integers(0, 3))           # the first IORB may come after the first rates
    for i, day in enumerate(days):
        sofr = draw(bp)
        if draw(st.integers(0, 12)) or i == 0:
            add(observation("sofr", day, str(sofr / 100), "2019-01-01T00:00:00.000000Z"), at(i, 1))
        if draw(st.integers(0, 4)):
            add(observation("effr", day, str(draw(bp) / 100), "2019-01-01T00:00:00.000000Z"), at(i, 2))
        if i == iorb_at or draw(st.integers(0, 9)) == 0:
            late = draw(st.sampled_from([0, 0, 3, 8]))     # hours or days after the date
            add(observation("iorb", day, str(draw(st.integers(195, 205)) / 100), "2019-01-01T00:00:00.000000Z"),
                at(i, 0.5 + late * 8))
        if day.weekday() == 2:
            add(observation("reserves", day, str(draw(st.integers(1000, 3000))), "2019-01-01T00:00:00.000000Z"),
                at(i + draw(st.integers(0, 5)), 3))
        if draw(st.integers(0, 5)) == 0:                   # revised: the same day, or days later
            add(observation("sofr", day, str(draw(bp) / 100), "2019-01-01T00:00:00.000000Z"),
                at(i + draw(st.sampled_from([0, 0, 1, 4])), 1.5))
        if i > 3 and draw(st.integers(0, 15)) == 0:        # a date backfilled late
            back = days[i - draw(st.integers(2, 3))]
            add(observation("sofr", back, str(draw(bp) / 100), "2019-01-01T00:00:00.000000Z"), at(i, 4))
    facts.sort(key=lambda f: f[0])
    return facts


# facts per chunk: a few (forgetting between chunks, runs cut anywhere), or the whole log at once
CHUNKS = [3, 17, replay_module.CHUNK]


def bulk_replay(facts, ruleset, chunk: int, must_be_bulk: bool = False) -> list[str]:
    """``watchdog replay`` on a SQLite copy of the log, its bulk rules taking ``chunk`` facts at
    a time."""
    saved = replay_module.CHUNK
    replay_module.CHUNK = chunk
    try:
        with tempfile.TemporaryDirectory() as folder:
            store = sqlite_of(folder, facts)
            try:
                if must_be_bulk:
                    assert _narrowed(store, ruleset, None, None) is not None   # the bulk path runs
                return [transition_json(t) for t in replay(store, ruleset)]
            finally:
                store.close()
    finally:
        replay_module.CHUNK = saved


def incremental(facts, ruleset) -> list[str]:
    """The reference: the engine alone over every fact of the log, in replay's order."""
    store = store_of(facts)
    out = list(replay_events(Engine(ruleset, prune_every=PRUNE_EVERY), iter_published(store, types=FACT_TYPES)))
    return _sorted(out)


def _sorted(transitions) -> list[str]:
    # replay's order: by instant, then (rule, date), the engine's order kept within
    keyed = sorted(enumerate(transitions), key=lambda it: (it[1].evaluated_at, it[1].rule, it[1].date, it[0]))
    return [transition_json(t) for _, t in keyed]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(logs(), rule_sets(), st.sampled_from(CHUNKS))
def test_bulk_and_incremental_evaluation_give_identical_transitions(log, ruleset, chunk):
    facts, _ = log
    assert bulk_replay(facts, ruleset, chunk) == incremental(facts, ruleset)


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(rough_logs(), rule_sets(), st.sampled_from(CHUNKS))
def test_bulk_and_incremental_agree_on_late_steps_revisions_and_backfills(facts, ruleset, chunk):
    assert bulk_replay(facts, ruleset, chunk, must_be_bulk=True) == incremental(facts, ruleset)


def test_a_wall_clock_for_stays_with_the_engine():
    rules = parse_rules("""
[[rule]]
id = "held"
expr = "bp(sofr - iorb)"
above = 10
for = "6h"

[[rule]]
id = "days"
expr = "bp(sofr - iorb)"
above = 10
for = "2bd"
""")
    bulk, rest = split(rules)
    assert [r.id for r in bulk] == ["days"] and [r.id for r in rest.rules] == ["held"]
    assert split(RULES)[1].composite_rules == RULES.composite_rules
