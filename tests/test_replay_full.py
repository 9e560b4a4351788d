"""Replay in full (DESIGN "Two times, two replays"): ``--as-of T`` is the replay of a copy of the
log without the facts published after T, on random logs with late backfills and revisions;
``--since``/``--until`` only filter the output; the bounded engine replay uses gives the same
transitions as an unbounded one while its memory stays flat; a progress bar on a terminal only."""
from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from click.testing import CliRunner
from fakes import Clock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog.cli import cli
from watchdog.engine.fold import Engine, replay_events
from watchdog.market.calendar import business_days
from watchdog.market.series import SERIES, nominal_publication_text
from watchdog.model.events import FACT_TYPES, NewEvent, Observation, new_observation
from watchdog.model.timefmt import parse_utc, utc_text
from watchdog.rules.ruleset import parse_rules
from watchdog.store import (
    MemoryEventStore,
    SqliteEventStore,
    iter_events,
    iter_published,
)
from watchdog.tuning.replay import replay, transition_json

REPO = Path(__file__).resolve().parent.parent

RULES = parse_rules("""
[[rule]]
id = "spread"
expr = "bp(sofr - iorb)"
above = 10
recover_below = 5
for = "2bd"

[[rule]]
id = "avg-spread"
expr = 'avg(bp(sofr - effr), "3bd")'
above = 4

[[rule]]
id = "lagged"
expr = "reserves / 1000 + bp(lag(sofr, 2) - iorb)"
above = 12

[[composite_rule]]
id = "stress"
at_least = 2
of = ["spread", "avg-spread", "lagged"]

[[staleness_rule]]
id = "sofr-stale"
series = "sofr"
grace = "2h"

[[revision_rule]]
id = "sofr-revised"
series = "sofr"
bp = 1
""")

DAYS = list(business_days("sifma", date(2019, 9, 2), date(2019, 10, 31)))
LOG_START = datetime(2019, 1, 1, tzinfo=timezone.utc)


def observation(series: str, day: date, value: str, published: str) -> NewEvent:
    return new_observation(Observation(series=series, date=day.isoformat(), value=value,
                                       unit=SERIES[series].unit, source=SERIES[series].primary_source),
                           published)


@st.composite
def logs(draw):
    """Facts with (recorded) instants: most recorded a minute after publication, some backfilled
    days or weeks later, some SOFR values revised later (published when revised)."""
    days = DAYS[:draw(st.integers(5, len(DAYS)))]
    facts: list[tuple[datetime, NewEvent]] = []

    def add(event: NewEvent, late_days: int, public: str | None = None) -> None:
        public = public or event.published_at
        facts.append((parse_utc(public) + timedelta(minutes=1, days=late_days), event))

    rate = st.integers(190, 230).map(lambda bp: str(bp / 100))
    late = st.sampled_from([0, 0, 0, 0, 3, 20])
    for i, day in enumerate(days):
        for series in ("sofr", "effr"):
            if draw(st.integers(0, 9)):              # a day without a value now and then
                add(observation(series, day, draw(rate), nominal_publication_text(series, day)), draw(late))
        if i == 0 or draw(st.integers(0, 14)) == 0:
            add(observation("iorb", day, draw(rate), nominal_publication_text("iorb", day)), draw(late))
        if day.weekday() == 2:
            add(observation("reserves", day, str(draw(st.integers(1000, 3000))),
                            nominal_publication_text("reserves", day)), draw(late))
        if draw(st.integers(0, 7)) == 0:             # a revision, learnt days later
            revised = observation("sofr", day, draw(rate), nominal_publication_text("sofr", day))
            add(NewEvent(revised.type, revised.key, revised.payload, None), draw(st.integers(1, 4)),
                public=revised.published_at)
    facts.sort(key=lambda f: f[0])
    recorded, event = draw(st.sampled_from(facts))
    return facts, event.published_at or utc_text(recorded)


def store_of(facts) -> MemoryEventStore:
    clock = Clock(LOG_START)                     # the log's recording clock: set per fact
    store = MemoryEventStore(now=clock)
    for recorded, event in facts:
        clock.set(recorded)
        store.append([event])
    return store


def copy_where(store, keep) -> MemoryEventStore:
    """A copy of the log's rows for which ``keep(row)`` holds (same types, keys, payloads and
    times; seq renumbered, which replay does not read)."""
    clock = Clock(LOG_START)
    copy = MemoryEventStore(now=clock)
    for row in iter_events(store):
        if keep(row):
            clock.set(parse_utc(row.recorded_at))
            copy.append([NewEvent(row.type, row.key, row.payload, row.published_at)])
    return copy


def copy_published_by(store, cut: str) -> MemoryEventStore:
    """A copy of the log's rows without the facts published after ``cut``."""
    return copy_where(store, lambda row: row.published_at <= cut)


def lines(transitions) -> list[str]:
    return [transition_json(t) for t in transitions]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs())
def test_as_of_is_the_replay_of_a_copy_cut_at_that_instant(log):
    facts, cut = log
    store = store_of(facts)
    copy = copy_published_by(store, cut)
    assert all(row.published_at <= cut for row in iter_events(copy))
    # the copy replayed up to the same instant: deadlines (staleness) tick to T on both sides
    assert lines(replay(store, RULES, as_of=cut)) == lines(replay(copy, RULES, as_of=cut))


def copy_known_by(store, cut: str) -> MemoryEventStore:
    """A copy of the log as it stood at ``cut``: the rows recorded by then (the issue's "what was
    published and recorded by T"), facts among them published by then."""
    return copy_where(store, lambda row: row.recorded_at <= cut and row.published_at <= cut)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs())
def test_as_of_as_recorded_is_the_replay_of_the_log_as_it_stood_at_that_instant(log):
    facts, cut = log
    store = store_of(facts)
    copy = copy_known_by(store, cut)
    assert all(row.recorded_at <= cut for row in iter_events(copy))
    assert lines(replay(store, RULES, as_of=cut, recorded_by=cut)) == lines(replay(copy, RULES, as_of=cut))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs())
def test_forgetting_what_no_rule_can_read_changes_no_transition(log):
    store = store_of(log[0])
    facts = list(iter_published(store, types=FACT_TYPES))
    everything = lines(replay_events(Engine(RULES), facts))
    assert lines(replay_events(Engine(RULES, prune_every=1), facts)) == everything


def test_the_real_history_replays_identically_when_pruned_after_every_fact(history_db):
    from watchdog.rules.ruleset import load_rules
    rules = load_rules([str(REPO / "rules")])
    store = SqliteEventStore(history_db, readonly=True)
    try:
        facts = list(iter_published(store, types=FACT_TYPES))
    finally:
        store.close()
    full = lines(replay_events(Engine(rules), facts))
    assert len(full) > 300
    assert lines(replay_events(Engine(rules, prune_every=1), facts)) == full


def test_a_bounded_engine_keeps_only_what_its_longest_window_reaches():
    rules = parse_rules("""
[[rule]]
id = "avg"
expr = 'avg(bp(sofr - iorb), "20bd")'
above = 10

[[rule]]
id = "never-evaluated"
expr = "bp(tgcr - srf_rate)"
above = 10
""")
    store = MemoryEventStore()
    days = list(business_days("sifma", date(2000, 1, 3), date(2009, 12, 31)))
    store.append([observation("iorb", days[0], "2", nominal_publication_text("iorb", days[0]))])
    store.append([observation(s, d, "2.05", nominal_publication_text(s, d)) for d in days for s in ("sofr", "tgcr")])
    bounded, unbounded = Engine(rules, prune_every=100), Engine(rules)
    for engine in (bounded, unbounded):
        for _ in replay_events(engine, iter_published(store)):
            pass
    assert len(unbounded.data.dates["sofr"]) == len(days) > 2500
    assert len(bounded.data.dates["sofr"]) <= 20 + 100 + 1
    assert bounded.data.dates["iorb"] == [days[0].isoformat()]       # the as-of anchor stays
    # a rule whose input never arrived may still evaluate every waiting date once it does
    assert len(bounded.data.dates["tgcr"]) == len(days)


def test_since_and_until_filter_the_output_of_a_replay_warmed_up_on_everything(history_db):
    args = ["replay", "--db", str(history_db), "--rules", str(REPO / "rules")]
    runner = CliRunner()
    for extra in (["--json"], ["--pending"]):
        full = runner.invoke(cli, args + extra).output.splitlines()
        window = runner.invoke(cli, args + extra + ["--since", "2019-09-10", "--until", "2020-03-20"])
        got = window.output.splitlines()
        if extra == ["--pending"]:                 # the text: a header line and a counts line
            full, got = full[1:-1], got[1:-1]
        dates = [json.loads(x)["date"] if extra == ["--json"] else x.split()[0] for x in full]
        assert got == [x for x, d in zip(full, dates) if "2019-09-10" <= d <= "2020-03-20"]
        assert len(got) > 20


def test_the_timeline_hides_pending_filters_and_says_what_it_shows(history_db):
    args = ["replay", "--db", str(history_db), "--rules", str(REPO / "rules"),
            "--since", "2019-09-01", "--until", "2019-10-31"]
    runner = CliRunner()
    lines = runner.invoke(cli, args).output.splitlines()
    header, body, counts = lines[0], lines[1:-1], lines[-1]
    assert header.startswith(f"replay of {history_db.name} · rule set ") and "dates 2019-09-01 .. 2019-10-31" in header
    assert body and not any(line.split()[1] == "pending" for line in body)
    assert "2019-09-17  firing   sofr-over-iorb" in "\n".join(body)
    spike = next(line for line in body if line.startswith("2019-09-17  firing   sofr-over-iorb"))
    assert " 315 bp  SOFR is 315 bp over IORB" in spike
    under = next(line for line in body if line.startswith("2019-09-20  resolved sofr-over-effr"))
    assert "-4 bp  SOFR is 4 bp under EFFR" in under
    assert counts.startswith(f"{len(body)} transitions (") and "pending not shown (--pending shows them)" in counts
    with_pending = runner.invoke(cli, args + ["--pending"]).output.splitlines()
    assert any(line.split()[1] == "pending" for line in with_pending[1:-1])
    assert len(with_pending) > len(lines) and "not shown" not in with_pending[-1]

    picked = runner.invoke(cli, args + ["--rule", "sofr-over-iorb", "--rule", "funding-stress",
                                        "--state", "firing", "--severity", "critical"]).output.splitlines()
    assert "only rule funding-stress, sofr-over-iorb; state firing; severity critical" in picked[0]
    assert {(line.split()[1], line.split()[2]) for line in picked[1:-1]} == {("firing", "funding-stress")}
    unknown = runner.invoke(cli, args + ["--rule", "no-such-rule"])
    assert unknown.exit_code == 2 and "no such rule" in unknown.output


def test_csv_has_one_row_per_transition_with_exact_values_for_a_notebook(history_db):
    import csv
    import io
    args = ["replay", "--db", str(history_db), "--rules", str(REPO / "rules"), "--since", "2019-09-01",
            "--until", "2019-09-30"]
    runner = CliRunner()
    rows = list(csv.DictReader(io.StringIO(runner.invoke(cli, args + ["--format", "csv"]).output)))
    as_json = [json.loads(line) for line in runner.invoke(cli, args + ["--json"]).output.splitlines()]
    assert [(r["date"], r["rule"], r["state"], r["known_at"]) for r in rows] == [
        (j["date"], j["rule"], j["state"], j["known_at"]) for j in as_json]
    spike = next(r for r in rows if r["rule"] == "sofr-over-iorb" and r["date"] == "2019-09-17")
    assert spike == {"date": "2019-09-17", "rule": "sofr-over-iorb", "state": "firing", "severity": "warning",
                     "value": "315", "threshold": "10", "known_at": "2019-09-18T12:00:00.000000Z",
                     "summary": "SOFR is 315 bp over IORB"}
    assert runner.invoke(cli, args + ["--format", "csv", "--json"]).exit_code == 2


def run_with_terminal_stderr(args: list[str]) -> tuple[str, str]:
    """Run the CLI with stderr on a pseudo-terminal and stdout on a pipe."""
    master, slave = pty.openpty()
    received: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            received.append(chunk)
    reader = threading.Thread(target=drain)
    reader.start()
    proc = subprocess.run([sys.executable, "-m", "watchdog", *args], stdout=subprocess.PIPE,
                          stderr=slave, timeout=120)
    os.close(slave)
    reader.join(10)
    os.close(master)
    assert proc.returncode == 0
    return proc.stdout.decode(), b"".join(received).decode(errors="replace")


def test_a_progress_bar_runs_on_a_terminal_and_never_in_json_output(history_db):
    args = ["replay", "--db", str(history_db), "--rules", str(REPO / "rules"), "--json"]
    stdout, stderr = run_with_terminal_stderr(args)
    assert "replay [" in stderr and "100% 30,695/30,695 events" in stderr
    assert all(json.loads(line)["rule"] for line in stdout.splitlines())
    piped = CliRunner().invoke(cli, args)                     # stderr not a terminal: no bar
    assert "events" not in piped.stderr and "[" not in piped.stderr


def test_rules_sharing_an_expression_each_judge_as_they_would_alone():
    # ten thresholds on bp(sofr - iorb) compute the spread once per date and version of the data
    # (threshold._value's shared values), beside other expressions read on the same facts; each
    # rule still moves exactly where a replay of it alone does
    from watchdog.rules.ruleset import RuleSet, load_rules
    from watchdog.store import SqliteEventStore, iter_published
    from watchdog.tuning.replay import replay
    from watchdog.tuning.sweep import _rebuilt

    defaults = {r.id: r for r in load_rules([str(REPO / "rules")]).all_rules}
    base = defaults["sofr-over-iorb"]
    others = [defaults[i] for i in ("sofr-p99-over-iorb", "sofr-over-effr", "sofr-above-srf-rate",
                                    "tgcr-over-iorb", "repo-above-iorb-routinely", "effr-iorb-drift")]
    variants = [base] + [_rebuilt(base, {"id": f"sofr-over-iorb-{above}", "above": str(above)})
                         for above in (6, 8, 12, 15, 20, 25, 30, 40, 60)]
    store = SqliteEventStore(str(REPO / "events.db.example"), readonly=True)
    try:
        together = list(replay(store, RuleSet.of(variants + others)))
        for rule in (base, variants[4], variants[-1], others[0], others[4], others[5]):
            alone = list(replay(store, RuleSet.of([rule])))
            assert [t for t in together if t.rule == rule.id] == alone, rule.id
        # a warm-up evaluates every date at one version of the data (rules loaded after the
        # facts, as a reload does): the values shared there must be each date's own
        facts = Engine()
        for event in iter_published(store, types=FACT_TYPES):
            facts.apply(event, now=event.published_at)
        warmed = Engine()
        warmed.data = facts.data
        warmed.load(RuleSet.of(variants + others), now=utc_text(datetime(2026, 9, 5, tzinfo=timezone.utc)), cause_seq=1)
        for rule in (base, variants[3], variants[-1], *others[:3]):
            alone = Engine()
            alone.data = facts.data
            alone.load(RuleSet.of([rule]), now=utc_text(datetime(2026, 9, 5, tzinfo=timezone.utc)), cause_seq=1)
            assert warmed.states[rule.id] == alone.states[rule.id], rule.id
        for rule in variants[:2] + others:       # at one version, in any order: each date's own
            compiled = warmed.rules[rule.id]
            dates = sorted({d for s in compiled.drivers for d in facts.data.dates.get(s, [])})[-400:]
            for day in dates[::-1] + dates[::7]:
                assert warmed._value(compiled, day) == warmed._compute(compiled, day), (rule.id, day)
    finally:
        store.close()
    fired = {t.rule for t in together if t.state == "firing"}
    assert {"sofr-over-iorb", "sofr-over-iorb-6", "sofr-over-iorb-25", "sofr-p99-over-iorb"} <= fired
    assert len({len([t for t in together if t.rule == r.id]) for r in variants}) > 3   # they differ


SHARED = parse_rules("""
[[rule]]
id = "spread-0"
expr = "bp(sofr - iorb)"
above = 0

[[rule]]
id = "spread-10"
expr = "bp(sofr - iorb)"
above = 10
recover_below = 5
for = "2bd"

[[rule]]
id = "spread-20"
expr = "bp(sofr - iorb)"
above = 20
keep_firing_for = "2bd"

[[rule]]
id = "avg-spread-2"
expr = 'avg(bp(sofr - effr), "3bd")'
above = 2

[[rule]]
id = "avg-spread-8"
expr = 'avg(bp(sofr - effr), "3bd")'
above = 8
""", "shared.toml")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs())
def test_rules_sharing_an_expression_judge_random_logs_as_they_would_alone(log):
    # late facts, revisions and IORB steps re-evaluate dates at new versions of the data: a value
    # shared between rules is never one the data has moved past
    from watchdog.rules.ruleset import RuleSet
    facts, _ = log
    store = store_of(facts)
    together = list(replay(store, SHARED))
    for rule in SHARED.all_rules:
        assert lines(t for t in together if t.rule == rule.id) == lines(replay(store, RuleSet.of([rule]))), rule.id
