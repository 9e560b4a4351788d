"""The rules engine: pure. It folds fact events into series data and rule states and returns alert
transitions. Time comes in as ``now`` (the engine time of the event being applied, or of a
deadline being ticked); it never reads a clock, never does I/O.

Joining (series.py): a threshold rule is evaluated for an observation date D of its *driver*
series (its ``market`` series, or all of them when it has none) once every input has a value for
D: a market series exactly on D — never forward-filled — and step/as-of series from their latest
value on or before D. ``for = "Nbd"`` fires on the N-th consecutive evaluated date on which the
condition holds, so days on which an input was not published neither count nor break the streak;
so do dates excluded by ``skip_on``/``only_on``. ``keep_firing_for = "Nbd"`` keeps a recovered
alert firing until the recovery has held N more evaluated dates.

A fact for a date older than the rule's last evaluated date is kept as data but does not move the
rule backwards in time; a fact for the same date (a revision, a late input) re-evaluates that date
from the state before it, so a revision can fire or resolve an alert.

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

Other kinds: keyword rules flag speeches (one-shot ``flagged``), revision rules flag revised
values, composite rules follow the firing states of other rules, and staleness rules fire on
deadlines (``next_deadline``/``tick``) when a series has not published what its calendar says
is due — the only transitions that need no new event.
"""
from __future__ import annotations

import ast
import bisect
import heapq
from datetime import date as Date, timedelta
from decimal import Decimal
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from watchdog.market.calterms import business_day_of_month, is_term, terms_on
from watchdog.model.events import (
    OBSERVATION_RECORDED, OBSERVATION_REVISED, RULES_LOADED, SPEECH_RECORDED, AlertTransition,
    InputValue,
)
from watchdog.rules.expr import EvalError
from watchdog.rules.keywords import compile_keyword_rule
from watchdog.model.numbers import norm
from watchdog.rules.ruleset import (
    CompositeRule, Rule, RuleSet, StalenessRule, render_summary, ruleset_from_canonical,
)
from watchdog.market.calendar import business_days_between, next_business_day
from watchdog.market.series import SERIES, dated_ahead, nominal_publication
from watchdog.market.staleness import expected_date
from watchdog.model.timefmt import NEW_YORK, parse_utc, utc_text

_FACTS = (OBSERVATION_RECORDED, OBSERVATION_REVISED)
_NO_TERMS: frozenset[str] = frozenset()
_UNKNOWN = object()       # Engine._due not computed since the deadlines last changed


class RuleState(NamedTuple):
    """Immutable; a NamedTuple rather than a frozen dataclass because two are built per
    evaluated date (``_step``) and a frozen dataclass's ``__init__`` costs several times more."""
    status: str = "inactive"          # inactive | pending | firing
    streak: int = 0                   # consecutive evaluated dates with the condition true
    recovering: int = 0               # consecutive evaluated dates recovered while firing
    since: str | None = None          # engine time a wall-clock `for` started (pending)
    last_date: str | None = None
    before_last: "RuleState | None" = None   # the state before last_date was applied


_INACTIVE = RuleState()


def _cut(state: RuleState) -> RuleState:
    """``state`` without its own ``before_last``: only one level is ever read (re-evaluating
    ``last_date`` starts from ``before_last``), and the full chain kept every state ever reached
    alive (memory and GC time grow with the history)."""
    return RuleState(status=state.status, streak=state.streak, recovering=state.recovering,
                     since=state.since, last_date=state.last_date)


def _next(state: RuleState, date: str, prev: RuleState, *, status: str | None = None,
          streak: int | None = None, recovering: int | None = None) -> RuleState:
    """``state._replace`` without its per-call generality (a third of ``_step``)."""
    return RuleState(status=state.status if status is None else status,
                     streak=state.streak if streak is None else streak,
                     recovering=state.recovering if recovering is None else recovering,
                     since=state.since, last_date=date, before_last=prev)


class Point(NamedTuple):
    value: Decimal
    attributes: dict[str, str]       # as in the payload: parsed only when a rule reads one
    published_at: str

    def get(self, attr: str | None) -> Decimal | None:
        if attr is None:
            return self.value
        text = self.attributes.get(attr)
        return None if text is None else Decimal(text)


class SeriesData:
    """Every known value per series and date (the latest revision wins), with sorted dates."""

    def __init__(self) -> None:
        self.points: dict[str, dict[str, Point]] = {}
        self.dates: dict[str, list[str]] = {}

    def add(self, payload: dict[str, Any], published_at: str) -> None:
        series, date = payload["series"], payload["date"]
        by_date = self.points.get(series)
        if by_date is None:
            by_date = self.points[series] = {}
            self.dates[series] = []
        if date not in by_date:
            dates = self.dates[series]
            if not dates or dates[-1] < date:
                dates.append(date)
            else:
                bisect.insort(dates, date)
        by_date[date] = Point(Decimal(payload["value"]), payload.get("attributes") or {}, published_at)

    def forget_before(self, series: str, cutoff: str) -> None:
        """Drop the points of ``series`` dated before ``cutoff`` except the latest of them: an
        as-of join (and ``days_since``) on a date at or after ``cutoff`` may still read it."""
        dates = self.dates.get(series)
        if not dates:
            return
        drop = bisect.bisect_left(dates, cutoff) - 1
        if drop <= 0:
            return
        by_date = self.points[series]
        for date in dates[:drop]:
            del by_date[date]
        del dates[:drop]

    def at(self, series: str, date: str, join: str) -> tuple[str, Point] | None:
        by_date = self.points.get(series)
        if not by_date:
            return None
        if join == "market":
            point = by_date.get(date)
            return (date, point) if point else None
        dates = self.dates[series]
        i = bisect.bisect_right(dates, date)
        return (dates[i - 1], by_date[dates[i - 1]]) if i else None


def _base(name: str) -> tuple[str, str | None]:
    series, _, attr = name.partition(".")
    return series, attr or None


_NAMES: dict[str, tuple[str, str | None, str]] = {}


def _name(name: str) -> tuple[str, str | None, str]:
    """(series, attribute, join) of an input name, parsed once."""
    found = _NAMES.get(name)
    if found is None:
        series, attr = _base(name)
        found = _NAMES[name] = (series, attr, SERIES[series].join)
    return found


_EAGER = frozenset({"bp", "abs", "min", "max"})   # functions that evaluate every argument at d


def _strict_series(node: ast.AST) -> set[str]:
    """Series read at the evaluation date on every evaluation path of an expression: both sides
    of arithmetic, the arguments of bp/abs and value-form min/max, the first comparison of a
    chain, the first operand of and/or. Windows, lag, days_since and later operands are left out
    (they read other dates, or may not be reached)."""
    if isinstance(node, ast.Expression):
        return _strict_series(node.body)
    if isinstance(node, ast.Name):
        return {node.id} if node.id in SERIES else set()
    if isinstance(node, ast.Attribute):
        return {node.value.id} if isinstance(node.value, ast.Name) and node.value.id in SERIES else set()
    if isinstance(node, ast.BinOp):
        return _strict_series(node.left) | _strict_series(node.right)
    if isinstance(node, ast.UnaryOp):
        return _strict_series(node.operand)
    if isinstance(node, ast.Compare):
        return _strict_series(node.left) | _strict_series(node.comparators[0])
    if isinstance(node, ast.BoolOp):
        return _strict_series(node.values[0])
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _EAGER
            and not any(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)):
        return set().union(*(_strict_series(a) for a in node.args))
    return set()


class _Compiled:
    """A threshold rule plus what the engine precomputes about it."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.names = sorted(rule.compiled.names)
        self.series = sorted(rule.input_series)
        self.drivers = frozenset(rule.drivers)
        self.calendar = rule.calendar          # calendar terms are read on it (SOFR: SIFMA)
        self.calendar_aware = bool(rule.skip_on or rule.only_on or rule.above_on or rule.below_on)
        self.only_on = bool(rule.only_on)
        # the only terms that decide anything for this rule (the full set is shown on alerts)
        self.terms_used = tuple(sorted({*rule.skip_on, *rule.only_on, *rule.above_on, *rule.below_on}))
        # read once: these are properties that re-parse their text on every access
        self.expr = rule.compiled
        self.for_business_days = rule.for_business_days
        self.for_duration = rule.for_duration
        self.keep_firing_business_days = rule.keep_firing_business_days
        self.above = rule.above is not None
        self.plain_threshold = rule.threshold_on(frozenset())
        self.thresholds: dict[frozenset[str], Decimal] = {}
        # market series the expression reads at the date itself on every path: without a value
        # on that date the evaluation cannot succeed, so it is not attempted (see _value)
        self.market_inputs = tuple(sorted(
            s for s in _strict_series(ast.parse(rule.expr, mode="eval")) if SERIES[s].join == "market"))
        self.context: _Context | None = None     # set by the engine, on its SeriesData

    def threshold_on(self, terms: frozenset[str]) -> Decimal:
        if not terms:
            return self.plain_threshold
        found = self.thresholds.get(terms)
        if found is None:
            found = self.thresholds[terms] = self.rule.threshold_on(terms)
        return found


class _Context:
    """What an expression may read at a date (expr.EvalContext), for one rule: joined values,
    the rule's own evaluation dates for windows, and calendar terms on its driver's calendar."""

    def __init__(self, data: SeriesData, compiled: _Compiled):
        # Stateless (no memo: a read is a dict look-up or a bisect, cheaper than memoising it),
        # so the engine keeps one per rule instead of building one per evaluation.
        self.data, self.compiled = data, compiled
        self.points = data.points
        self.names = {name: _name(name) for name in compiled.names}   # one look-up per read
        self.drivers = sorted(compiled.drivers)

    def value(self, name: str, date: str) -> Decimal | None:
        series, attr, join = self.names.get(name) or _name(name)
        if join == "market":                 # the common read: a market value on ``date``
            by_date = self.points.get(series)
            point = by_date.get(date) if by_date else None
        else:
            found = self.data.at(series, date, join)
            point = found[1] if found else None
        if point is None:
            return None
        return point.value if attr is None else point.get(attr)

    def history(self, date: str, n: int) -> list[str]:
        """The last ``n`` evaluation dates of the rule ending at ``date``: its drivers' dates."""
        if len(self.drivers) == 1:           # the common case: already sorted and distinct
            dates = self.data.dates.get(self.drivers[0], [])
            end = bisect.bisect_right(dates, date)
            return dates[max(0, end - n):end]
        found: set[str] = set()
        for series in self.drivers:
            dates = self.data.dates.get(series, [])
            end = bisect.bisect_right(dates, date)
            found.update(dates[max(0, end - n):end])
        return sorted(found)[-n:]

    def latest_date(self, name: str, date: str) -> str | None:
        found = self.data.at(_base(name)[0], date, "asof")
        return found[0] if found else None

    def term(self, term: str, date: str, window: int) -> bool:
        return is_term(term, Date.fromisoformat(date), self.compiled.calendar, window)

    def business_day_of_month(self, date: str) -> int:
        return business_day_of_month(Date.fromisoformat(date), self.compiled.calendar)


PRUNE_EVERY = 4096      # facts between two prunings in replay: rare enough to cost nothing
TERMS_CACHE = 8192      # (calendar, date) entries kept: a few years of dates


class Engine:
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
            compiled.context = _Context(data, compiled)

    # ---- rule sets ----
    def _install(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.rules = {r.id: _Compiled(r) for r in ruleset.rules}
        for compiled in self.rules.values():
            compiled.context = _Context(self._data, compiled)   # one per rule, not per evaluation
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

    def _warm_up(self, compiled: _Compiled) -> tuple[RuleState, str | None]:
        """The rule's state after the history so far, and the date its current firing episode
        began (None when it is not firing)."""
        dates = sorted({d for s in compiled.drivers for d in self.data.dates.get(s, [])})
        state = RuleState()
        fired_on = None
        for date in dates:
            terms = self._terms(compiled, date)
            if not self._applies(compiled.rule, terms):
                continue
            evaluated = self._evaluate(compiled, date)
            if evaluated is not None:
                threshold = compiled.threshold_on(terms)
                state, target, _ = self._step(compiled, state, date, evaluated[0], threshold)
                if target == "firing":
                    fired_on = date
        return state, (fired_on if state.status == "firing" else None)

    # ---- events ----
    def feed(self, event: Any, now: str) -> list[AlertTransition]:
        """The daemon's fold, shared by live and audit: rule sets as recorded, then facts."""
        if event.type == RULES_LOADED:
            ruleset = ruleset_from_canonical([r["text"] for r in event.payload["rules"]])
            return self.load(ruleset, now=now, cause_seq=event.seq)
        return self.apply(event, now)

    def apply(self, event: Any, now: str) -> list[AlertTransition]:
        """Fold one stored event; returns the transitions it causes (empty for non-facts)."""
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

    def _fact(self, event: Any, now: str) -> list[AlertTransition]:
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

    def _readable_from(self, compiled: _Compiled, state: RuleState | None) -> str | None:
        """The earliest date a rule can still read, or None when it has never been evaluated."""
        last = state.last_date if state else None
        if last is None:
            return None
        reach = max(compiled.expr.max_window, 1)
        earliest = last
        for series in compiled.drivers:
            dates = self.data.dates.get(series, [])
            end = bisect.bisect_right(dates, last)
            if end:
                earliest = min(earliest, dates[max(0, end - reach)])
        return earliest

    # ---- for messages ----
    def recent_values(self, rule_id: str, date: str, n: int = 20) -> list[Decimal]:
        """The rule's value on its last ``n`` evaluable dates up to ``date`` (oldest first): the
        sparkline of a notification. Empty for rules without a value series (composites,
        staleness, keyword flags) or when the history has been forgotten."""
        compiled = self.rules.get(rule_id)
        if compiled is None or not compiled.drivers:
            return []
        dates = compiled.context.history(date, n)
        return [v for d in dates if (v := self._value(compiled, d)) is not None]

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

    def _duration_elapsed(self, compiled: _Compiled, due: str) -> list[AlertTransition]:
        """A wall-clock ``for`` ran out: still pending means it held the whole time — fire."""
        state = self.states.get(compiled.rule.id, RuleState())
        if state.status != "pending" or state.last_date is None:
            return []
        self.states[compiled.rule.id] = state._replace(status="firing", since=None)
        t = self._transition(compiled, "firing", state.last_date, due, 0,
                             f"held for {compiled.rule.for_} (since {state.since})")
        return [t.model_copy(update={"deadline": due})]

    def _arm(self, rule: StalenessRule, now: str) -> None:
        if self.data.dates.get(rule.series):     # a series never seen is not late yet
            self._set_deadline(rule.id, self._expected_at(rule, now)[1])

    def _expected_at(self, rule: StalenessRule, now: str) -> tuple[str, str, str, Date, Date]:
        """(from, until, expected, expected as a date, the business day after it):
        ``staleness.expected_date`` at ``now``, which holds until the next deadline ``until``
        (= ``staleness.next_deadline``). Computed once per deadline; at the deadline itself the
        expected date is the business day after the previous one (its value fell due then:
        publication times increase with the date), so no search."""
        cached = self._expected.get(rule.id)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached
        if cached is not None and now == cached[1]:
            day = cached[4]                       # the business day after the expected one
        else:
            day = expected_date(rule.series, parse_utc(now), self._grace[rule.id])
        following = next_business_day(SERIES[rule.series].calendar, day)
        until = nominal_publication(rule.series, following) + self._grace[rule.id]
        cached = self._expected[rule.id] = (now, utc_text(until), day.isoformat(), day, following)
        return cached

    def _stale_on_fact(self, series: str, now: str, seq: int) -> list[AlertTransition]:
        out = []
        for rule in self._stale_by_series.get(series, ()):
            if rule.id not in self.deadlines:
                self._arm(rule, now)
            out.extend(self._stale_check(rule, now, cause_seq=seq))
        return out

    def _stale_check(self, rule: StalenessRule, now: str, *, deadline: str = "",
                     cause_seq: int = 0) -> list[AlertTransition]:
        dates = self.data.dates.get(rule.series)
        if not dates:
            return []
        expected = self._expected_at(rule, now)[2]
        latest, firing = dates[-1], self.emitted.get(rule.id) == "firing"
        if (latest < expected) == firing:
            return []
        state, date = ("firing", expected) if latest < expected else ("resolved", latest)
        late = max(0, _business_days_late(rule.series, latest, expected))
        point = self.data.points[rule.series][latest]
        if state == "firing":
            # how late: since the first missing value fell due, not only the latest one
            first = next_business_day(SERIES[rule.series].calendar, Date.fromisoformat(latest))
            due = nominal_publication(rule.series, first)
            reason = (f"{rule.series} for {expected} not published {rule.grace} after it was due; "
                      f"nothing since {latest}: {late} business day{'s' if late != 1 else ''} "
                      f"missing, the first ({first.isoformat()}) due {utc_text(due)[:16]}Z, "
                      f"{_late_text(parse_utc(now) - due)} ago; last value {norm(point.value)} "
                      f"published {point.published_at[:16]}Z")
        else:
            reason = f"{rule.series} for {latest} arrived (published {point.published_at})"
        values = {"rule": rule.id, "severity": rule.severity, "date": date, "series": rule.series,
                  "value": str(late)}
        self.emitted[rule.id] = state
        # the series' last value is the input a desk reads: what it last knew, and when
        inputs = {rule.series: InputValue(date=latest, value=norm(point.value), published_at=point.published_at)}
        t = AlertTransition(rule=rule.id, rule_hash=rule.hash, state=state, date=date,
                                value=str(late) if state == "firing" else "0", severity=rule.severity,
                                evaluated_at=now, reason=reason, summary=render_summary(rule, values),
                                labels=dict(rule.labels), cause_seq=cause_seq, deadline=deadline,
                                inputs=inputs)
        self.moved[rule.id] = t
        return [t]

    # ---- speeches and revisions (one-shot flags) ----
    def _speech(self, event: Any, now: str) -> list[AlertTransition]:
        out = []
        p = event.payload
        for rule, matcher in self.keywords:
            match = matcher.match(p)
            if match is None:
                continue
            phrases = sorted({hit.phrase for hit in match.hits})
            values = {"rule": rule.id, "severity": rule.severity, "date": p["date"],
                      "speaker": p.get("speaker", ""), "institution": p.get("institution", ""),
                      "title": p.get("title", ""), "url": p.get("url", ""), "phrase": match.hits[0].phrase}
            out.append(AlertTransition(
                rule=rule.id, rule_hash=rule.hash, state="flagged", date=p["date"],
                value=str(len(match.hits)), severity=rule.severity, evaluated_at=now,
                reason=f"{len(match.hits)} hits: {', '.join(phrases)}",
                summary=render_summary(rule, values), labels=dict(rule.labels),
                cause_seq=event.seq, link=p.get("url", ""), sentences=list(match.sentences)))
        return out

    def _revision(self, payload: dict, now: str, seq: int) -> list[AlertTransition]:
        out = []
        for rule in self.ruleset.revision_rules:
            if rule.series != payload["series"]:
                continue
            change = abs(Decimal(payload["value"]) - Decimal(payload["previous_value"])) * 100
            if change < rule.bp or (change == 0 and rule.bp > 0):
                continue
            values = {"rule": rule.id, "severity": rule.severity, "date": payload["date"],
                      "series": rule.series, "value": payload["value"],
                      "previous": payload["previous_value"], "change": norm(change)}
            out.append(AlertTransition(
                rule=rule.id, rule_hash=rule.hash, state="flagged", date=payload["date"],
                value=norm(change), severity=rule.severity, threshold=norm(rule.bp),
                evaluated_at=now, reason=f"{rule.series} {payload['date']} revised "
                f"{payload['previous_value']} -> {payload['value']} ({norm(change)} bp)",
                summary=render_summary(rule, values), labels=dict(rule.labels), cause_seq=seq))
        return out

    # ---- composites ----
    def _composites(self, changed: list[AlertTransition], now: str, seq: int) -> list[AlertTransition]:
        """Re-evaluate composite rules whose members just changed state (to a fixpoint, so a
        composite of composites follows)."""
        if not changed or not self.ruleset.composite_rules:
            return []
        out: list[AlertTransition] = []
        moved = [t for t in changed if t.state in ("firing", "resolved")]
        for _ in range(len(self.ruleset.composite_rules) + 1):
            new = [t for rule in self.ruleset.composite_rules
                   if (t := self._composite(rule, moved, now, seq)) is not None]
            if not new:
                return out
            out += new
            moved = new
        return out

    def _composite(self, rule: CompositeRule, moved: list[AlertTransition], now: str,
                   seq: int) -> AlertTransition | None:
        causes = [t for t in moved if t.rule in rule.members]
        if not causes:
            return None
        firing = {r for r, state in self.emitted.items() if state == "firing"}
        holds, was = rule.holds(firing), rule.id in firing
        if holds == was:
            return None
        state = "firing" if holds else "resolved"
        self.emitted[rule.id] = state
        count = sum(1 for m in rule.members if m in firing)
        date = max(t.date for t in causes)
        values = {"rule": rule.id, "severity": rule.severity, "date": date, "firing": str(count)}
        # its inputs are the members that decide it: those firing now and those that just moved
        caused = {t.rule for t in causes}
        inputs = {m: _as_input(self.moved[m]) for m in rule.members
                  if (m in firing or m in caused) and m in self.moved}
        t = AlertTransition(
            rule=rule.id, rule_hash=rule.hash, state=state, date=date, value=str(count),
            severity=rule.severity, evaluated_at=now, labels=dict(rule.labels), cause_seq=seq,
            reason=f"{count} of {len(rule.members)} member rules firing "
                   f"({', '.join(m for m in rule.members if m in firing) or 'none'})",
            summary=render_summary(rule, values), deadline=causes[0].deadline,
            inputs={m: i for m, i in inputs.items() if i is not None})
        self.moved[rule.id] = t
        return t

    # ---- threshold rules ----
    def _consider(self, compiled: _Compiled, payload: dict, now: str, seq: int) -> list[AlertTransition]:
        state = self.states.get(compiled.rule.id, _INACTIVE)
        date, last = payload["date"], state.last_date
        if payload["series"] in compiled.drivers:
            if last is not None and date < last:
                return []                      # late fact for an older date: data only
            return self._advance(compiled, [date], now, seq)
        # A step/as-of input changes the value on every date from its own: re-evaluate the last
        # date if it is covered, and evaluate driver dates that were waiting for this input.
        dates = [last] if last is not None and date <= last else []
        dates += self._waiting_dates(compiled, after=last, start=date)
        return self._advance(compiled, dates, now, seq)

    def _waiting_dates(self, compiled: _Compiled, after: str | None, start: str) -> list[str]:
        lower = max(after, start) if after is not None else start
        found: set[str] = set()
        for series in compiled.drivers:
            dates = self.data.dates.get(series, [])
            for d in dates[bisect.bisect_left(dates, lower):]:
                if after is None or d > after:
                    found.add(d)
        return sorted(found)

    def _terms(self, compiled: _Compiled, date: str) -> frozenset[str]:
        """The terms of ``date`` this rule reads (skip_on, only_on, above_on, below_on): all that
        decides its evaluation. ``_all_terms`` is what an alert shows."""
        if not compiled.calendar_aware:
            return _NO_TERMS
        # computed once per (calendar, date) for every term any rule reads on that calendar:
        # the rules on one calendar read much the same terms
        key = (compiled.calendar, date)
        held = self._terms_used.get(key)
        if held is None:
            day, calendar = Date.fromisoformat(date), compiled.calendar
            held = self._terms_used[key] = frozenset(
                t for t in self._calendar_terms[calendar] if is_term(t, day, calendar))
        return held.intersection(compiled.terms_used) if held else _NO_TERMS

    def _all_terms(self, compiled: _Compiled, date: str) -> frozenset[str]:
        if not compiled.calendar_aware:
            return _NO_TERMS
        return terms_on(Date.fromisoformat(date), compiled.calendar)

    @staticmethod
    def _applies(rule: Rule, terms: frozenset[str]) -> bool:
        if rule.skip_on and terms.intersection(rule.skip_on):
            return False
        return not rule.only_on or bool(terms.intersection(rule.only_on))

    def _advance(self, compiled: _Compiled, dates: list[str], now: str, seq: int) -> list[AlertTransition]:
        """Evaluate ``dates`` in order; a date equal to the last evaluated one is re-evaluated
        from the state before it and reports only a change of firing state."""
        out: list[AlertTransition] = []
        for date in dates:
            terms = self._terms(compiled, date) if compiled.calendar_aware else _NO_TERMS
            # without terms only an only_on rule can be excluded (the common ordinary day)
            if (terms or compiled.only_on) and not self._applies(compiled.rule, terms):
                continue                       # skip_on / only_on: neither counts nor breaks
            state = self.states.get(compiled.rule.id, _INACTIVE)
            again = date == state.last_date
            value = self._value(compiled, date)
            if value is None:
                continue
            threshold = compiled.threshold_on(terms) if terms else compiled.plain_threshold
            start = (state.before_last or _INACTIVE) if again else state
            new_state, target, reason = self._step(compiled, start, date, value, threshold)
            if compiled.for_duration:
                new_state, target, reason = self._wall_clock_for(compiled, start, new_state, target, reason, now)
            self.states[compiled.rule.id] = new_state
            if again:
                target, reason = self._correction(state, new_state)
            if target is not None:
                out.append(self._transition(compiled, target, date, now, seq, reason, value,
                                            self._inputs(compiled, date), threshold,
                                            self._all_terms(compiled, date)))
        return out

    def _wall_clock_for(self, compiled: _Compiled, start: RuleState, new: RuleState, target, reason, now: str):
        """``for = "6h"``: a breach goes pending and fires at ``now + 6h`` (a deadline) if it
        still holds then; a recovery before that cancels it."""
        rule = compiled.rule
        if target == "firing" and start.status != "firing":
            if start.status == "pending":             # still holding: wait for the deadline
                return new._replace(status="pending", since=start.since), None, ""
            self._set_deadline(rule.id, utc_text(parse_utc(now) + rule.for_duration))
            return new._replace(status="pending", since=now), "pending", f"holding; fires after {rule.for_}"
        if new.status == "inactive":
            self._drop_deadline(rule.id)
        return new, target, reason

    @staticmethod
    def _correction(old: RuleState, new: RuleState):
        """Re-evaluating the same date: report only a change of firing state."""
        if old.status == "firing" and new.status != "firing":
            return "resolved", "revised input: condition no longer holds"
        if old.status != "firing" and new.status == "firing":
            return "firing", "revised input: condition now holds"
        return None, ""

    def _evaluate(self, compiled: _Compiled, date: str):
        """(value, inputs) of the rule at ``date``, or None when an input is missing (or a
        window is not yet full): that date is then simply not evaluated."""
        value = self._value(compiled, date)
        return None if value is None else (value, self._inputs(compiled, date))

    def _value(self, compiled: _Compiled, date: str) -> Decimal | None:
        """The rule's value at ``date``, or None when an input is missing (or a window is not
        yet full). A market input the expression must read on ``date`` itself and that has no
        value then is seen before evaluating: the common case (SOFR is published an hour before
        EFFR), and raising EvalError through the expression costs more."""
        points = self._data.points
        for series in compiled.market_inputs:
            by_date = points.get(series)
            if by_date is None or date not in by_date:
                return None
        try:
            result = compiled.expr.evaluate_at(compiled.context, date)
        except EvalError:
            return None
        return Decimal(int(result)) if isinstance(result, bool) else result

    def _inputs(self, compiled: _Compiled, date: str) -> dict:
        """What an alert shows: each input as of ``date`` (only built for a transition)."""
        inputs = {}
        for name in compiled.names:
            series, attr, join = _name(name)
            found = self.data.at(series, date, join)
            value = None if found is None else found[1].get(attr)
            if value is not None:
                inputs[name] = (found[0], value, found[1].published_at)
        return inputs

    def _step(self, compiled: _Compiled, state: RuleState, date: str, value: Decimal,
              threshold: Decimal):
        """Next state for one evaluated date, and the transition it causes (if any)."""
        rule = compiled.rule
        breach = value > threshold if compiled.above else value < threshold
        prev = state if state.before_last is None else _cut(state)
        status, streak, recovering = state.status, state.streak, state.recovering
        if status == "firing":
            if not _recovered(rule, value, breach):
                return _next(state, date, prev, streak=streak + 1 if breach else 0, recovering=0), None, ""
            recovering += 1
            if recovering <= compiled.keep_firing_business_days:
                return _next(state, date, prev, recovering=recovering), None, ""   # keep_firing_for
            return (_next(state, date, prev, status="inactive", streak=0, recovering=0), "resolved",
                    _recovery_reason(rule, value, recovering))
        if not breach:
            return _next(state, date, prev, status="inactive", streak=0), None, ""
        streak += 1
        if streak >= compiled.for_business_days:
            return (_next(state, date, prev, status="firing", streak=streak, recovering=0), "firing",
                    _breach_reason(rule, value, streak, threshold))
        return (_next(state, date, prev, status="pending", streak=streak),
                ("pending" if status != "pending" else None),
                f"{streak} of {compiled.for_business_days} business days")

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


def _as_input(t: AlertTransition) -> InputValue | None:
    """A member rule's last firing/resolved transition as a composite's input: its date and
    value, published when the newest fact behind it was (its engine time if it read none)."""
    if t.value is None:
        return None
    published = max((i.published_at for i in t.inputs.values()), default=t.evaluated_at)
    return InputValue(date=t.date, value=t.value, published_at=published)


def _late_text(delta: timedelta) -> str:
    """How long past due, for people: "3h05m", "2d 4h"."""
    minutes = max(0, int(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return f"{days}d {hours}h" if days else f"{hours}h{minutes:02d}m"


def _business_days_late(series: str, latest: str, expected: str) -> int:
    return business_days_between(SERIES[series].calendar, Date.fromisoformat(latest), Date.fromisoformat(expected))


def _recovered(rule: Rule, value: Decimal, breach: bool) -> bool:
    if rule.above is not None and rule.recover_below is not None:
        return value < rule.recover_below
    if rule.below is not None and rule.recover_above is not None:
        return value > rule.recover_above
    return not breach


def _breach_reason(rule: Rule, value: Decimal, streak: int, threshold: Decimal) -> str:
    op = ">" if rule.above is not None else "<"
    days = f" for {streak} business days" if rule.for_business_days > 1 else ""
    return f"{norm(value)} {op} {norm(threshold)}{days}"


def _recovery_reason(rule: Rule, value: Decimal, recovering: int = 1) -> str:
    if rule.above is not None:
        limit = rule.recover_below if rule.recover_below is not None else rule.above
        op = "<" if rule.recover_below is not None else "<="
    else:
        limit = rule.recover_above if rule.recover_above is not None else rule.below
        op = ">" if rule.recover_above is not None else ">="
    held = f" for {recovering} business days" if rule.keep_firing_business_days else ""
    return f"recovered: {norm(value)} {op} {norm(limit)}{held}"
