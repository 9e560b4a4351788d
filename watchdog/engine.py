"""The rules engine: pure. It folds fact events into series data and rule states and returns alert
transitions. Time comes in as ``now`` (the engine time of the event being applied); it never
reads a clock, never does I/O.

Joining (series.py): a rule is evaluated for an observation date D of its *driver* series (its
``market`` series, or all of them when it has none) once every input has a value for D: a market
series exactly on D — never forward-filled — and step/as-of series from their latest value on or
before D. ``for = "Nbd"`` fires on the N-th consecutive evaluated date on which the condition
holds, so days on which an input was not published neither count nor break the streak.

A fact for a date older than the rule's last evaluated date is kept as data but does not move the
rule backwards in time; a fact for the same date (a revision, a late input) re-evaluates that date
from the state before it, so a revision can fire or resolve an alert.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from watchdog.events import (
    OBSERVATION_RECORDED, OBSERVATION_REVISED, RULES_LOADED, AlertTransition, InputValue,
)
from watchdog.expr import EvalError
from watchdog.numbers import norm
from watchdog.rules import Rule, RuleSet, render_summary, ruleset_from_canonical
from watchdog.series import SERIES

_FACTS = (OBSERVATION_RECORDED, OBSERVATION_REVISED)


@dataclass(frozen=True)
class RuleState:
    status: str = "inactive"          # inactive | pending | firing
    streak: int = 0                   # consecutive evaluated dates with the condition true
    last_date: str | None = None
    before_last: "RuleState | None" = None   # the state before last_date was applied


@dataclass(frozen=True)
class Point:
    value: Decimal
    attributes: dict[str, Decimal]
    published_at: str


class SeriesData:
    """Every known value per series and date (the latest revision wins), with sorted dates."""

    def __init__(self) -> None:
        self.points: dict[str, dict[str, Point]] = {}
        self.dates: dict[str, list[str]] = {}

    def add(self, payload: dict[str, Any], published_at: str) -> None:
        series, date = payload["series"], payload["date"]
        attrs = {k: Decimal(v) for k, v in payload.get("attributes", {}).items()}
        by_date = self.points.setdefault(series, {})
        if date not in by_date:
            dates = self.dates.setdefault(series, [])
            if not dates or dates[-1] < date:
                dates.append(date)
            else:
                bisect.insort(dates, date)
        by_date[date] = Point(Decimal(payload["value"]), attrs, published_at)

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


class _Compiled:
    """A rule plus what the engine precomputes about it."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.names = sorted(rule.compiled.names)
        self.series = sorted({_base(n)[0] for n in self.names})
        market = [s for s in self.series if SERIES[s].join == "market"]
        self.drivers = frozenset(market or self.series)


class Engine:
    """Feed events with ``apply(event, now)``; load rule sets with ``load(ruleset, ...)``."""

    def __init__(self, ruleset: RuleSet | None = None):
        self.data = SeriesData()
        self.rules: dict[str, _Compiled] = {}
        self.states: dict[str, RuleState] = {}
        self.emitted: dict[str, str] = {}        # rule id -> last emitted state
        self.by_series: dict[str, list[str]] = {}
        if ruleset is not None:
            self._install(ruleset)

    # ---- rule sets ----
    def _install(self, ruleset: RuleSet) -> None:
        self.rules = {r.id: _Compiled(r) for r in ruleset.rules}
        self.by_series = {}
        for rule_id, compiled in self.rules.items():
            for series in compiled.series:
                self.by_series.setdefault(series, []).append(rule_id)

    def load(self, ruleset: RuleSet, now: str, cause_seq: int) -> list[AlertTransition]:
        """Switch to ``ruleset``. Unchanged rules keep their state; new and changed rules are warmed
        up silently on the data so far; a change in firing state is reported with reason
        ``rules-changed`` (``rule-removed`` for a rule that is gone)."""
        old = self.rules
        self._install(ruleset)
        out: list[AlertTransition] = []
        for rule_id, compiled in self.rules.items():
            if rule_id in old and old[rule_id].rule.hash == compiled.rule.hash:
                continue
            self.states[rule_id] = state = self._warm_up(compiled)
            was_firing = self.emitted.get(rule_id) == "firing"
            if was_firing != (state.status == "firing") and state.last_date:
                target = "firing" if state.status == "firing" else "resolved"
                out.append(self._transition(compiled, target, state.last_date, now, cause_seq,
                                            "rules-changed"))
        for rule_id in set(old) - set(self.rules):
            self.states.pop(rule_id, None)
            if self.emitted.get(rule_id) == "firing":
                out.append(self._removed(old[rule_id], now, cause_seq))
        return out

    def _warm_up(self, compiled: _Compiled) -> RuleState:
        dates = sorted({d for s in compiled.drivers for d in self.data.dates.get(s, [])})
        state = RuleState()
        for date in dates:
            evaluated = self._evaluate(compiled, date)
            if evaluated is not None:
                state = self._step(compiled, state, date, evaluated[0])[0]
        return state

    def feed(self, event: Any, now: str) -> list[AlertTransition]:
        """The daemon's fold, shared by live and audit: rule sets as recorded, then facts."""
        if event.type == RULES_LOADED:
            ruleset = ruleset_from_canonical([r["text"] for r in event.payload["rules"]])
            return self.load(ruleset, now=now, cause_seq=event.seq)
        return self.apply(event, now)

    # ---- facts ----
    def apply(self, event: Any, now: str) -> list[AlertTransition]:
        """Fold one stored event; returns the transitions it causes (empty for non-facts)."""
        if event.type not in _FACTS:
            return []
        payload = event.payload
        self.data.add(payload, event.published_at)
        out: list[AlertTransition] = []
        for rule_id in self.by_series.get(payload["series"], ()):
            out.extend(self._consider(self.rules[rule_id], payload, now, event.seq))
        return out

    def _consider(self, compiled: _Compiled, payload: dict, now: str, seq: int) -> list[AlertTransition]:
        state = self.states.get(compiled.rule.id, RuleState())
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

    def _advance(self, compiled: _Compiled, dates: list[str], now: str, seq: int) -> list[AlertTransition]:
        """Evaluate ``dates`` in order; a date equal to the last evaluated one is re-evaluated
        from the state before it and reports only a change of firing state."""
        out: list[AlertTransition] = []
        for date in dates:
            state = self.states.get(compiled.rule.id, RuleState())
            again = date == state.last_date
            evaluated = self._evaluate(compiled, date)
            if evaluated is None:
                continue
            value, inputs = evaluated
            start = (state.before_last or RuleState()) if again else state
            new_state, target, reason = self._step(compiled, start, date, value)
            self.states[compiled.rule.id] = new_state
            if again:
                target, reason = self._correction(compiled, state, new_state)
            if target is not None:
                out.append(self._transition(compiled, target, date, now, seq, reason, value, inputs))
        return out

    def _correction(self, compiled: _Compiled, old: RuleState, new: RuleState):
        """Re-evaluating the same date: report only a change of firing state."""
        if old.status == "firing" and new.status != "firing":
            return "resolved", "revised input: condition no longer holds"
        if old.status != "firing" and new.status == "firing":
            return "firing", "revised input: condition now holds"
        return None, ""

    # ---- evaluation (pure functions of data and state) ----
    def _evaluate(self, compiled: _Compiled, date: str):
        values: dict[str, Decimal] = {}
        inputs: dict[str, tuple[str, Decimal, str]] = {}
        for name in compiled.names:
            series, attr = _base(name)
            found = self.data.at(series, date, SERIES[series].join)
            if found is None:
                return None
            on, point = found
            value = point.value if attr is None else point.attributes.get(attr)
            if value is None:
                return None
            values[name] = value
            inputs[name] = (on, value, point.published_at)
        try:
            result = compiled.rule.compiled.evaluate(values)
        except EvalError:
            return None
        if isinstance(result, bool):
            result = Decimal(int(result))
        return result, inputs

    def _step(self, compiled: _Compiled, state: RuleState, date: str, value: Decimal):
        """Next state for one evaluated date, and the transition it causes (if any)."""
        rule = compiled.rule
        breach = value > rule.above if rule.above is not None else value < rule.below
        base = replace(state, last_date=date, before_last=state)
        if state.status == "firing":
            if _recovered(rule, value, breach):
                return replace(base, status="inactive", streak=0), "resolved", _recovery_reason(rule, value)
            return replace(base, streak=state.streak + 1 if breach else 0), None, ""
        if not breach:
            return replace(base, status="inactive", streak=0), None, ""
        streak = state.streak + 1
        if streak >= rule.for_business_days:
            return replace(base, status="firing", streak=streak), "firing", _breach_reason(rule, value, streak)
        new = replace(base, status="pending", streak=streak)
        return new, ("pending" if state.status != "pending" else None), f"{streak} of {rule.for_business_days} business days"

    def _transition(self, compiled: _Compiled, state: str, date: str, now: str, seq: int,
                    reason: str, value: Decimal | None = None, inputs=None) -> AlertTransition:
        if inputs is None:
            evaluated = self._evaluate(compiled, date)
            value, inputs = evaluated if evaluated else (None, {})
        rule = compiled.rule
        threshold = rule.above if rule.above is not None else rule.below
        shown = {name: norm(v) for name, (_, v, _) in inputs.items()}
        summary = render_summary(rule, {"value": norm(value) if value is not None else "",
                                        "threshold": norm(threshold), "date": date, "rule": rule.id,
                                        "severity": rule.severity, **shown})
        if state in ("firing", "resolved"):
            self.emitted[rule.id] = state
        return AlertTransition(
            rule=rule.id, rule_hash=rule.hash, state=state, date=date,
            value=norm(value) if value is not None else None, severity=rule.severity,
            threshold=norm(threshold), evaluated_at=now, reason=reason, summary=summary,
            labels=dict(rule.labels), cause_seq=seq,
            inputs={n: InputValue(date=d, value=norm(v), published_at=p) for n, (d, v, p) in inputs.items()})

    def _removed(self, compiled: _Compiled, now: str, seq: int) -> AlertTransition:
        rule = compiled.rule
        self.emitted[rule.id] = "resolved"
        last = self.states.get(rule.id, RuleState()).last_date or ""
        return AlertTransition(rule=rule.id, rule_hash=rule.hash, state="resolved", date=last, value=None,
                               severity=rule.severity, evaluated_at=now, reason="rule-removed",
                               labels=dict(rule.labels), cause_seq=seq)

    def remember_emitted(self, rule_id: str, state: str) -> None:
        if state in ("firing", "resolved"):
            self.emitted[rule_id] = state


def _recovered(rule: Rule, value: Decimal, breach: bool) -> bool:
    if rule.above is not None and rule.recover_below is not None:
        return value < rule.recover_below
    if rule.below is not None and rule.recover_above is not None:
        return value > rule.recover_above
    return not breach


def _breach_reason(rule: Rule, value: Decimal, streak: int) -> str:
    op, limit = (">", rule.above) if rule.above is not None else ("<", rule.below)
    days = f" for {streak} business days" if rule.for_business_days > 1 else ""
    return f"{norm(value)} {op} {norm(limit)}{days}"


def _recovery_reason(rule: Rule, value: Decimal) -> str:
    if rule.above is not None:
        limit = rule.recover_below if rule.recover_below is not None else rule.above
        op = "<" if rule.recover_below is not None else "<="
    else:
        limit = rule.recover_above if rule.recover_above is not None else rule.below
        op = ">" if rule.recover_above is not None else ">="
    return f"recovered: {norm(value)} {op} {norm(limit)}"
