"""Threshold rules' state machine: an expression against a threshold on each evaluated date.

A threshold rule is evaluated for an observation date D of its *driver* series once every input has
a value for D (the join: watchdog.engine.data). ``for = "Nbd"`` fires on the N-th consecutive
evaluated date on which the condition holds, so days on which an input was not published neither
count nor break the streak; so do dates excluded by ``skip_on``/``only_on``. ``for = "6h"`` waits
wall-clock time (a deadline). ``keep_firing_for = "Nbd"`` keeps a recovered alert firing until
the recovery has held N more evaluated dates; hysteresis (``clear_below``/``clear_above``) decides
what counts as recovered. A fact for a date older than the rule's last evaluated date is kept as
data but does not move the rule backwards; a fact for the same date (a revision, a late input)
re-evaluates that date from the state before it.
"""
from __future__ import annotations

import bisect
from datetime import date as Date
from decimal import Decimal

from watchdog.engine.data import JoinedContext, SeriesData, input_name
from watchdog.engine.state import _INACTIVE, _NO_TERMS, RuleState, _cut, _next
from watchdog.market.calterms import instances_on, terms_on
from watchdog.market.series import SERIES
from watchdog.model.events import AlertTransition
from watchdog.model.numbers import norm
from watchdog.model.timefmt import parse_utc, utc_text
from watchdog.rules.expr import EvalError
from watchdog.rules.ruleset import Rule


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
            s for s in rule.compiled.strict_series if SERIES[s].join == "market"))
        self.context: JoinedContext | None = None     # set by the engine, on its SeriesData
        # what the value at a date depends on besides the data: rules with equal keys share
        # their values (a str: its hash is computed once)
        self.shared = False            # another rule of the set has the same value_key
        self.value_key = rule.expr + "\x00" + "\x00".join(f"{k}={v}" for k, v in sorted(rule.derived.items()))

    def joined(self, data: SeriesData) -> JoinedContext:
        return JoinedContext(data, self.names, self.drivers, self.calendar)

    def threshold_on(self, terms: frozenset[str]) -> Decimal:
        if not terms:
            return self.plain_threshold
        found = self.thresholds.get(terms)
        if found is None:
            found = self.thresholds[terms] = self.rule.threshold_on(terms)
        return found


TERMS_CACHE = 8192      # (calendar, date) entries kept: a few years of dates
VALUES_KEPT = 65536     # shared expression values kept at one version of the data
_UNSET = object()


def inputs_at(names, date: str, at) -> dict:
    """Each input name's (date, value, published_at) as ``at(series, date, join)`` finds its
    point (``SeriesData.at``; bulk replay's data as known at a fact), the inputs an alert shows;
    an input without a value is left out."""
    inputs = {}
    for name in names:
        series, attr, join = input_name(name)
        found = at(series, date, join)
        value = None if found is None else found[1].get(attr)
        if value is not None:
            inputs[name] = (found[0], value, found[1].published_at)
    return inputs


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


class ThresholdRules:
    """The engine's threshold-rule steps (mixed into ``Engine``, whose state they read: ``rules``,
    ``states``, ``data``, ``emitted``, ``deadlines``)."""

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

    def _duration_elapsed(self, compiled: _Compiled, due: str) -> list[AlertTransition]:
        """A wall-clock ``for`` ran out: still pending means it held the whole time — fire."""
        state = self.states.get(compiled.rule.id, RuleState())
        if state.status != "pending" or state.last_date is None:
            return []
        self.states[compiled.rule.id] = state._replace(status="firing", since=None)
        t = self._transition(compiled, "firing", state.last_date, due, 0,
                             f"held for {compiled.rule.for_} (since {state.since})")
        return [t.model_copy(update={"deadline": due})]

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
            calendar = compiled.calendar
            held = self._terms_used[key] = instances_on(Date.fromisoformat(date), calendar,
                                                        self._calendar_terms[calendar])
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
        """The rule's value at ``date``, computed once per expression, date and version of the
        data: rules that share an expression (ten thresholds on ``bp(sofr - iorb)``) share its
        value, since it depends on nothing else: not the rule's thresholds, ``for`` or calendar
        terms (``value_key``: the expression's text and the definitions it reads)."""
        if not compiled.shared:                         # no other rule reads the same
            return self._compute(compiled, date)
        data, values = self._data, self._values
        if data.version != self._values_version or data is not self._values_data:
            values.clear()                              # any change to the data: start afresh
            self._values_version, self._values_data = data.version, data
        key = (compiled.value_key, date)
        value = values.get(key, _UNSET)
        if value is _UNSET:
            if len(values) >= VALUES_KEPT:             # a warm-up over years at one version
                values.clear()
            value = values[key] = self._compute(compiled, date)
        return value

    def _compute(self, compiled: _Compiled, date: str) -> Decimal | None:
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
        return inputs_at(compiled.names, date, self.data.at)

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
