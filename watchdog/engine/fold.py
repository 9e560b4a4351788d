"""The fold: the engine takes fact events, keeps the joined data and every rule's state, and returns
alert transitions. Pure: time comes in as ``now`` (the engine time of the event being applied, or
of a deadline being ticked); it never reads a clock, never does I/O.

``Engine`` dispatches each event to the state machine of the rule kinds it concerns, one module
each: watchdog.engine.threshold (expressions against thresholds; ``for``, hysteresis,
``keep_firing_for``, calendar terms), .staleness (deadlines: a series not published when due),
.keyword (speeches flagged), .revision (revised values flagged), .composite (rules of rules). The
data they read is watchdog.engine.data (the join, shared with the report and the sweep).

A fact dated ahead of its time -- after the New York date of the instant it is applied at, plus
its series' ``lead_days`` (administered rates are announced before they take effect) -- is held
back: not data, not evaluated, never a rule's last date, so one row dated 2099 in a log written
before the sources refused such rows cannot freeze every rule that reads the series. It is
applied, as if published then, with the first fact whose instant reaches its date (the facts of
that instant in date order). The instant is the engine time ``now`` but never later than the
event's ``recorded_at``: replay's engine time (``published_at``, which the store caps at
``recorded_at``), audit's (``recorded_at``) and the live daemon's (the evaluation time, a moment
after ``recorded_at``) then judge every event alike, so live, audit and replay hold back the
same facts.

To add a rule kind: its model in watchdog.rules.ruleset, a mixin with its steps in a module here,
the mixin in ``Engine``'s bases, and its dispatch in ``Engine.apply``/``tick``.
"""
from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date as Date
from datetime import timedelta
from decimal import Decimal
from typing import Any

from watchdog.engine.composite import CompositeRules
from watchdog.engine.data import SeriesData
from watchdog.engine.keyword import KeywordRules
from watchdog.engine.revision import RevisionRules
from watchdog.engine.staleness import StalenessRules
from watchdog.engine.state import RuleState
from watchdog.engine.threshold import (
    TERMS_CACHE,
    ThresholdRules,
    _Compiled,
)
from watchdog.market.series import SERIES, dated_ahead
from watchdog.model.events import (
    OBSERVATION_RECORDED,
    OBSERVATION_REVISED,
    RULES_LOADED,
    SPEECH_RECORDED,
    AlertTransition,
    InputValue,
    decode,
)
from watchdog.model.numbers import norm
from watchdog.model.timefmt import NEW_YORK, parse_utc
from watchdog.rules.keywords import compile_keyword_rule
from watchdog.rules.ruleset import (
    RuleSet,
    StalenessRule,
    render_summary,
    ruleset_from_canonical,
)

_FACTS = (OBSERVATION_RECORDED, OBSERVATION_REVISED)
_UNKNOWN = object()       # Engine._due not computed since the deadlines last changed


PRUNE_EVERY = 4096      # facts between two prunings in replay: rare enough to cost nothing


class Engine(ThresholdRules, StalenessRules, KeywordRules, RevisionRules, CompositeRules):
    """Feed events with ``feed``/``apply``; tick deadlines with ``tick``; switch rule sets with
    ``load``.

    ``prune_every=N`` (replay: one rule set for the whole run) bounds the history: every N facts
    it forgets the series data no rule can read again. It keeps, per rule, the dates its longest
    window reaches back from its last evaluated date, and the latest earlier point of each
    series for as-of joins, so memory stays flat however long the log, with the same
    transitions. It cannot warm up a rule loaded later (``load``) on forgotten history, so the
    daemon and audit, which switch rule sets, keep everything (the default)."""

    def __init__(self, ruleset: RuleSet | None = None, *, prune_every: int | None = None):
        self.prune_every = prune_every
        self._facts_since_prune = 0
        self.rules: dict[str, _Compiled] = {}
        self.data = SeriesData()
        self.states: dict[str, RuleState] = {}
        self.emitted: dict[str, str] = {}        # rule id -> last emitted firing/resolved
        self.moved: dict[str, AlertTransition] = {}   # rule id -> that transition (composites' inputs)
        self.by_series: dict[str, list[str]] = {}
        self.ruleset = RuleSet()
        self.keywords: list = []
        self.deadlines: dict[str, str] = {}      # staleness rule id -> next deadline (UTC text)
        self._due: str | None | object = _UNKNOWN  # min(deadlines), kept until they change
        self._stale_by_series: dict[str, list[StalenessRule]] = {}
        self._terms_used: dict[tuple, frozenset[str]] = {}             # (calendar, date)
        self._calendar_terms: dict[str, tuple[str, ...]] = {}          # calendar -> terms read
        # staleness rule id -> (from, until, expected ISO date, expected date, the business day
        # after it): expected_date is constant on [from, until), until being the next deadline
        self._expected: dict[str, tuple[str, str, str, Date, Date]] = {}
        self._grace: dict[str, timedelta] = {}
        # facts dated ahead of their time: a heap by the first New York date they may be known on
        # (date - lead), then seq; a log holding years of future rows stays O(log n) per fact
        self.held: list[tuple[str, int, Any]] = []
        # (expression, date) -> value at one version of the data, shared by the rules that
        # share an expression (threshold._value); which data and which version of it
        self._values: dict[tuple[str, str], Decimal | None] = {}
        self._values_data: SeriesData | None = None
        self._values_version = -1
        if ruleset is not None:
            self._install(ruleset)

    @property
    def data(self) -> SeriesData:
        return self._data

    @data.setter
    def data(self, data: SeriesData) -> None:
        # each rule's context reads the data: the sweep swaps in a shared SeriesData
        self._data = data
        for compiled in self.rules.values():
            compiled.context = compiled.joined(data)

    # ---- rule sets ----
    def _install(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.rules = {r.id: _Compiled(r) for r in ruleset.rules}
        keys = Counter(compiled.value_key for compiled in self.rules.values())
        for compiled in self.rules.values():
            compiled.context = compiled.joined(self._data)   # one per rule, not per evaluation
            compiled.shared = keys[compiled.value_key] > 1   # its values are worth keeping
        terms: dict[str, set[str]] = {}
        for compiled in self.rules.values():
            if compiled.calendar_aware:
                terms.setdefault(compiled.calendar, set()).update(compiled.terms_used)
        self._calendar_terms = {calendar: tuple(sorted(t)) for calendar, t in terms.items()}
        self._terms_used = {}
        self.by_series = {}
        for rule_id, compiled in self.rules.items():
            for series in compiled.series:
                self.by_series.setdefault(series, []).append(rule_id)
        self.keywords = [(rule, compile_keyword_rule(rule)) for rule in ruleset.keyword_rules]
        timed = {r.id for r in ruleset.staleness_rules} | {r.id for r in ruleset.rules if r.for_duration}
        self._grace = {r.id: r.grace_period for r in ruleset.staleness_rules}
        self._expected = {}
        self.deadlines = {rule_id: d for rule_id, d in self.deadlines.items() if rule_id in timed}
        self._due = _UNKNOWN
        self._stale_by_series = {}
        for rule in ruleset.staleness_rules:
            self._stale_by_series.setdefault(rule.series, []).append(rule)

    def load(self, ruleset: RuleSet, now: str, cause_seq: int) -> list[AlertTransition]:
        """Switch to ``ruleset``. Unchanged rules keep their state; new and changed rules are warmed
        up silently on the data so far; a change in firing state is reported with reason
        ``rules-changed`` (``rule-removed`` for a rule that is gone)."""
        old, old_all = self.rules, self.ruleset.by_id
        self._install(ruleset)
        out: list[AlertTransition] = []
        for rule_id, compiled in self.rules.items():
            if rule_id in old and old[rule_id].rule.hash == compiled.rule.hash:
                continue
            state, fired_on = self._warm_up(compiled)
            self.states[rule_id] = state
            was_firing = self.emitted.get(rule_id) == "firing"
            if was_firing != (state.status == "firing") and state.last_date:
                # a firing is dated where its episode began (its value and inputs of that day),
                # as replay dates it; a resolve where the history last left it
                target, date = ("firing", fired_on or state.last_date) if state.status == "firing" \
                    else ("resolved", state.last_date)
                out.append(self._transition(compiled, target, date, now, cause_seq, "rules-changed"))
        for rule_id in set(old_all) - set(ruleset.by_id):
            self.states.pop(rule_id, None)
            if self.emitted.get(rule_id) == "firing":
                out.append(self._removed(old_all[rule_id], now, cause_seq))
        for rule in ruleset.staleness_rules:
            self._arm(rule, now)
            if old_all.get(rule.id) is None or old_all[rule.id].hash != rule.hash:
                # a new or changed staleness rule judges the log at once: a daemon started on a
                # log whose feeds stopped months ago is told now, not at the next deadline
                out.extend(self._stale_check(rule, now, cause_seq=cause_seq))
        return out + self._composites(out, now, cause_seq)


    # ---- events ----
    def feed(self, event: Any, now: str) -> list[AlertTransition]:
        """The daemon's fold, shared by live and audit: rule sets as recorded, then facts."""
        if event.type == RULES_LOADED:
            ruleset = ruleset_from_canonical([r.text for r in decode(event).rules])
            return self.load(ruleset, now=now, cause_seq=event.seq)
        return self.apply(event, now)

    def apply(self, event: Any, now: str, extra: list[AlertTransition] | None = None) -> list[AlertTransition]:
        """Fold one stored event; returns the transitions it causes (empty for non-facts).
        ``extra``: transitions of rules evaluated elsewhere at this fact (bulk replay's threshold
        rules), counted as this fact's own before composites judge them."""
        if extra:                  # bulk replay: no fact is held back in its stream
            return self._fact(event, now, extra)
        if event.type == SPEECH_RECORDED:
            return self._speech(event, now)
        if event.type not in _FACTS:
            return []
        known = _known_at(event, now)
        ahead = _ahead_of(event.payload, known)
        due = self._due_held(known) if self.held else None
        if ahead:                              # not a fact yet (module doc)
            heapq.heappush(self.held, (_release_day(event.payload), event.seq, event))
        if due:
            # facts reaching the engine at one instant go in date order (seq within a date), so
            # a held fact does not make the rule pass over the date of the fact applied with it
            batch = sorted(due if ahead else [*due, event], key=lambda e: (e.payload["date"], e.seq))
            return [t for e in batch for t in self._fact(e, now)]
        return [] if ahead else self._fact(event, now)

    def _due_held(self, known: str) -> list[Any]:
        """Take out the held facts whose date the instant ``known`` has reached."""
        due = []
        while self.held and not _ahead_of(self.held[0][2].payload, known):
            due.append(heapq.heappop(self.held)[2])
        return due

    def _fact(self, event: Any, now: str, extra: list[AlertTransition] = ()) -> list[AlertTransition]:  # type: ignore[assignment]
        payload = event.payload
        self.data.add(payload, event.published_at)
        if self.prune_every:
            self._facts_since_prune += 1
            if self._facts_since_prune >= self.prune_every:
                self._prune()
        out: list[AlertTransition] = []
        series, rules = payload["series"], self.rules
        for rule_id in self.by_series.get(series, ()):
            out.extend(self._consider(rules[rule_id], payload, now, event.seq))
        for t in extra:
            if t.state in ("firing", "resolved"):
                self.emitted[t.rule] = t.state
                self.moved[t.rule] = t
            out.append(t)
        if event.type == OBSERVATION_REVISED:
            out.extend(self._revision(payload, now, event.seq))
        if series in self._stale_by_series:
            out.extend(self._stale_on_fact(series, now, event.seq))
        return (out + self._composites(out, now, event.seq)) if out else out

    # ---- bounded history ----
    def _prune(self) -> None:
        """Forget series points no rule can read again (``prune_every`` engines only). A rule only
        ever evaluates its last evaluated date again (a revision, a late as-of input) or later
        dates, and an evaluation at d reads at most ``max_window`` of the rule's dates ending at
        d. A rule never evaluated yet may still evaluate every waiting date once its missing
        input arrives: its series are kept whole. Other series keep their latest point
        (staleness reads it)."""
        self._facts_since_prune = 0
        keep_from: dict[str, str | None] = {}       # series -> earliest readable date, None = all
        for rule_id, compiled in self.rules.items():
            cutoff = self._readable_from(compiled, self.states.get(rule_id))
            for series in compiled.series:
                kept = keep_from.get(series, "9999")
                keep_from[series] = None if cutoff is None or kept is None else min(kept, cutoff)
        for series, dates in self.data.dates.items():
            cutoff = keep_from.get(series, dates[-1] if dates else "")
            if cutoff is not None:
                self.data.forget_before(series, cutoff)
        if len(self._terms_used) > TERMS_CACHE:    # keyed by date: it grows with history
            self._terms_used.clear()


    # ---- deadlines (staleness) ----
    def next_deadline(self) -> str | None:
        """The next instant the engine must be ticked at without a new event, if any."""
        # replay ticks before every event: the minimum is cached until a deadline changes
        # (every change goes through _set_deadline/_drop_deadline)
        due = self._due
        if due is _UNKNOWN:
            due = self._due = min(self.deadlines.values(), default=None)
        return due

    def _set_deadline(self, rule_id: str, when: str) -> None:
        self.deadlines[rule_id] = when
        self._due = _UNKNOWN

    def _drop_deadline(self, rule_id: str) -> None:
        if self.deadlines.pop(rule_id, None) is not None:
            self._due = _UNKNOWN

    def tick(self, until: str) -> list[AlertTransition]:
        """Process every deadline at or before ``until``, each at its own instant (the engine
        time of a deadline-driven transition is its deadline, live, in audit and in replay)."""
        due = self.next_deadline()
        if due is None or due > until:
            return []                              # the usual case: nothing due yet
        out: list[AlertTransition] = []
        while (due := self.next_deadline()) is not None and due <= until:
            for rule in self.ruleset.staleness_rules:
                if self.deadlines.get(rule.id) == due:
                    out.extend(self._stale_check(rule, due, deadline=due))
                    self._arm(rule, due)
            for rule_id in [r for r, d in self.deadlines.items() if d == due and r in self.rules]:
                self._drop_deadline(rule_id)
                out.extend(self._duration_elapsed(self.rules[rule_id], due))
            out.extend(self._composites(out, due, 0))
        return out


    def _transition(self, compiled: _Compiled, state: str, date: str, now: str, seq: int,
                    reason: str, value: Decimal | None = None, inputs=None,
                    threshold: Decimal | None = None, terms: frozenset[str] = frozenset()) -> AlertTransition:
        if inputs is None:
            evaluated = self._evaluate(compiled, date)
            value, inputs = evaluated if evaluated else (None, {})
        rule = compiled.rule
        threshold = rule.threshold if threshold is None else threshold
        shown = {name: norm(v) for name, (_, v, _) in inputs.items()}
        summary = render_summary(rule, {"value": norm(value) if value is not None else "",
                                        "threshold": norm(threshold), "date": date, "rule": rule.id,
                                        "severity": rule.severity, **shown})
        if terms:
            reason = f"{reason} [{', '.join(sorted(terms))}]"
        t = AlertTransition(
            rule=rule.id, rule_hash=rule.hash, state=state, date=date,
            value=norm(value) if value is not None else None, severity=rule.severity,
            threshold=norm(threshold), evaluated_at=now, reason=reason, summary=summary,
            labels=dict(rule.labels), cause_seq=seq,
            inputs={n: InputValue(date=d, value=norm(v), published_at=p) for n, (d, v, p) in inputs.items()})
        if state in ("firing", "resolved"):
            self.emitted[rule.id] = state
            self.moved[rule.id] = t
        return t

    def _removed(self, rule: Any, now: str, seq: int) -> AlertTransition:
        self.emitted[rule.id] = "resolved"
        last = self.states.get(rule.id, RuleState()).last_date or ""
        return AlertTransition(rule=rule.id, rule_hash=rule.hash, state="resolved", date=last, value=None,
                               severity=rule.severity, evaluated_at=now, reason="rule-removed",
                               labels=dict(rule.labels), cause_seq=seq)


def _known_at(event: Any, now: str) -> str:
    """The instant a fact is judged at: the engine time, never later than the log learned it."""
    recorded = getattr(event, "recorded_at", None)
    return recorded if recorded is not None and recorded < now else now


def _release_day(payload: dict) -> str:
    """The first New York date on which a held fact is no longer ahead (its date less its
    series' lead): the heap order of ``Engine.held``."""
    lead = SERIES[payload["series"]].lead_days if payload["series"] in SERIES else 0
    return (Date.fromisoformat(payload["date"]) - timedelta(days=lead)).isoformat()


def _ahead_of(payload: dict, known: str) -> bool:
    """True when the fact is dated after the New York date of ``known`` plus its series'
    ``lead_days`` (series.dated_ahead)."""
    date = payload["date"]
    if date < known[:10]:
        return False        # before the UTC date, so on or before the New York date (UTC-4/-5)
    today = parse_utc(known).astimezone(NEW_YORK).date()
    if payload["series"] not in SERIES:
        return date > today.isoformat()
    return dated_ahead(payload["series"], Date.fromisoformat(date), today)


def replay_events(engine: Engine, events: Iterable[Any], until: str | None = None) -> Iterator[AlertTransition]:
    """Facts in (``published_at``, ``seq``) order with the engine's deadlines merged in, each at
    its own instant — what ``watchdog replay`` and ``watchdog test-rules`` run — then deadlines
    up to ``until`` (or the last publication). Engine time is each fact's ``published_at``."""
    last = None
    for event in events:
        last = event.published_at
        ticked = engine.tick(last)
        if ticked:                 # rarely: most events come with no deadline and no transition
            yield from ticked
        applied = engine.apply(event, now=last)
        if applied:
            yield from applied
    if until or last:
        yield from engine.tick(until or last)


