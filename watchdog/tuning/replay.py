"""Replay and audit: the same engine over a stored log, no network, no wall clock.

- ``replay`` (tuning, "what would I have known"): fact events in (``published_at``, ``seq``)
  order with the given rules; engine time = each fact's ``published_at``. ``as_of`` drops every
  fact published after it, so nothing later can leak.
- ``audit`` (trust, "what did the daemon do"): every event in ``seq`` order with the rule sets
  recorded in ``rules-loaded`` events; re-derives every alert transition and diffs it against the
  alert events the daemon recorded.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from watchdog.engine.bulk import BulkRules, split
from watchdog.engine.fold import PRUNE_EVERY, Engine, _ahead_of, replay_events
from watchdog.model.events import (
    ALERT_TYPES, FACT_TYPES, OBSERVATION_RECORDED, OBSERVATION_REVISED, SPEECH_RECORDED, AlertTransition,
    StoredEvent, alert_key, decode,
)
from watchdog.rules.ruleset import RuleSet
from watchdog.store import EventStore, iter_events, iter_published


def replay(store: EventStore, ruleset: RuleSet, as_of: str | None = None,
           on_fact: Callable[[StoredEvent], None] | None = None,
           recorded_by: str | None = None) -> Iterator[AlertTransition]:
    """Transitions in (known_at, rule, date) order, known_at being the engine time: a fact's
    publication, or a deadline (staleness) merged into the stream at its own instant.
    ``on_fact`` sees each fact before the engine does (a progress bar, a report's series), so
    one pass over the log serves them all. ``recorded_by`` also leaves out the facts this log
    recorded after that instant (what this log knew then; history imported later is not)."""
    types, series, until = FACT_TYPES, None, as_of
    narrowed = _narrowed(store, ruleset, as_of, recorded_by) if on_fact is None else None
    if narrowed is not None:
        types, series, until = narrowed
    facts = iter_published(store, types=types, until=as_of, series=series)
    if recorded_by is not None:
        facts = (f for f in facts if f.recorded_at <= recorded_by)
    if on_fact is not None:
        facts = _tapped(facts, on_fact)
    bulk_rules, rest = split(ruleset)
    if narrowed is not None and bulk_rules:
        # no fact of a series read is held back (``_narrowed``): threshold rules in bulk
        transitions = _bulk_events(bulk_rules, rest, facts, until)
    else:
        # one rule set for the whole run: only what its windows reach is kept (flat memory)
        transitions = replay_events(Engine(ruleset, prune_every=PRUNE_EVERY), facts, until=until)
    pending: list[AlertTransition] = []
    for t in transitions:
        if pending and t.evaluated_at != pending[0].evaluated_at:
            yield from sorted(pending, key=_order)     # same instant: (rule, date) order
            pending = []
        pending.append(t)
    yield from sorted(pending, key=_order)


CHUNK = 16384       # facts the bulk rules take at once: memory stays flat, the jumps stay long


def _bulk_events(bulk_rules: list, rest: RuleSet, facts: Iterable[StoredEvent],
                 until: str | None) -> Iterator[AlertTransition]:
    """``replay_events`` with the threshold rules evaluated in bulk (watchdog.engine.bulk), the
    other rules by the engine: each chunk of facts goes to the bulk rules first; then the engine
    takes the facts its own rules read and every fact at which a bulk rule moved, with those
    transitions as the fact's own (composites judge them), ticking deadlines at their instants
    as ``replay_events`` does."""
    bulk = BulkRules(bulk_rules)
    engine = Engine(rest, prune_every=PRUNE_EVERY)
    own = series_read(rest)
    observations = (OBSERVATION_RECORDED, OBSERVATION_REVISED)
    last = None
    for chunk in _chunks(facts, CHUNK):
        placed: list[tuple[StoredEvent, int]] = []
        for event in chunk:
            if event.type in observations and event.payload["series"] in bulk.series:
                placed.append((event, bulk.facts.add(event)))
            else:
                placed.append((event, -1))
        moved: dict[int, list[AlertTransition]] = {}
        for pos, t in bulk.run():
            moved.setdefault(pos, []).append(t)
        for event, pos in placed:
            extra = moved.get(pos) if pos >= 0 else None
            if not extra and event.type in observations and event.payload["series"] not in own:
                continue                   # only bulk rules read it, and none moved
            last = event.published_at
            ticked = engine.tick(last)
            if ticked:
                yield from ticked
            applied = engine.apply(event, now=last, extra=extra)
            if applied:
                yield from applied
    if until or last:
        yield from engine.tick(until or last)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def series_read(ruleset: RuleSet) -> frozenset[str]:
    """Every series a rule of the set reads: threshold rules' inputs (derived series' too),
    staleness and revision rules' series. Composites read rules; keyword rules read speeches."""
    found: set[str] = set()
    for rule in ruleset.rules:
        found |= rule.input_series
    found |= {rule.series for rule in ruleset.staleness_rules}
    found |= {rule.series for rule in ruleset.revision_rules}
    return frozenset(found)


def _narrowed(store: EventStore, ruleset: RuleSet, as_of: str | None,
               recorded_by: str | None) -> tuple[frozenset[str], frozenset[str], str | None] | None:
    """(types, series, the last instant) for a replay that reads only the facts its rules can
    see: the observations of the series they read, and speeches if a keyword rule reads them.
    The engine's transitions are the same, because each rule's steps depend only on the facts
    of its own series, each applied at its own instant, and deadlines are ticked at their own
    instants up to the last fact of the whole log (which is why that instant is returned).
    The one exception is a fact dated ahead of the instant it became known (fold's module
    doc): it is applied with the first later fact of any series, which a narrowed read may not
    see; a log with such a fact of a series read is replayed whole. None: replay it whole
    (a store without a read model, or nothing to leave out)."""
    summary = getattr(store, "facts_summary", None)
    if summary is None or not getattr(store, "reads_by_series", False):
        return None
    series = series_read(ruleset)
    types = FACT_TYPES if ruleset.keyword_rules else FACT_TYPES - {SPEECH_RECORDED}
    last, maybe_ahead = summary(FACT_TYPES, until=as_of, recorded_by=recorded_by, series=series)
    if any(s in series and _ahead_of({"series": s, "date": d}, known) for s, d, known in maybe_ahead):
        return None
    return types, series, as_of or last


def _tapped(events: Iterable[StoredEvent], on_fact: Callable[[StoredEvent], None]) -> Iterator[StoredEvent]:
    for event in events:
        on_fact(event)
        yield event


def _order(t: AlertTransition) -> tuple:
    return (t.evaluated_at, t.rule, t.date)


def transition_json(t: AlertTransition) -> str:
    """One line of ``replay --json``: DESIGN's fields, values as JSON numbers."""
    line = {
        "rule": t.rule, "state": t.state, "date": t.date, "known_at": t.evaluated_at,
        "value": _number(t.value), "severity": t.severity, "threshold": _number(t.threshold),
        "reason": t.reason, "summary": t.summary, "rule_hash": t.rule_hash,
        **({"link": t.link} if t.link else {}), **({"sentences": t.sentences} if t.sentences else {}),
        "inputs": {n: {"date": i.date, "value": _number(i.value), "published_at": i.published_at}
                   for n, i in t.inputs.items()},
    }
    return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _number(text: str | None):
    if text is None:
        return None
    return json.loads(text)  # exact for the short decimals we emit; int when integral


def _comparable(payload: dict) -> dict:
    """What must match between a recorded and a re-derived transition (the evaluation instant is
    the daemon's wall clock and is checked separately)."""
    return {k: v for k, v in payload.items() if k != "evaluated_at"}


@dataclass
class AuditReport:
    checked: int = 0
    differences: list[str] = field(default_factory=list)


def derive(store: EventStore) -> Iterator[tuple[object, list[AlertTransition]]]:
    """The daemon's computation: every event in seq order, rule sets as recorded. Yields each
    event with the transitions the engine derives at it."""
    engine = Engine()
    for event in iter_events(store):
        ticked = engine.tick(event.recorded_at)     # the daemon ticks deadlines as they pass
        yield event, ticked + engine.feed(event, now=event.recorded_at)


def audit(store: EventStore) -> AuditReport:
    report = AuditReport()
    derived: dict[str, AlertTransition] = {}
    cause_time: dict[str, str] = {}
    recorded: dict[str, object] = {}
    for event, transitions in derive(store):
        for t in transitions:
            derived[alert_key(t)] = t
            cause_time[alert_key(t)] = event.recorded_at
        if event.type in ALERT_TYPES:
            recorded[event.key] = event
    for key, t in derived.items():
        row = recorded.pop(key, None)
        if row is None:
            report.differences.append(f"missing: the daemon did not record {t.state} of {t.rule} for {t.date} ({key})")
            continue
        report.checked += 1
        want, got = _comparable(t.model_dump(mode="json")), _comparable(row.payload)
        if want != got:
            fields = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
            report.differences.append(f"seq {row.seq}: {key}: differs in {', '.join(fields)}")
        elif decode(row).evaluated_at < cause_time[key]:
            report.differences.append(f"seq {row.seq}: evaluated before its cause was recorded")
    for key, row in recorded.items():
        report.differences.append(f"seq {row.seq}: unexpected: {row.type} {key} is not derived from the log")
    return report
