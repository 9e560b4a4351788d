"""Threshold rules evaluated rule by rule over a stretch of history at once: what replay runs.

The incremental engine (``fold.Engine``) takes one fact at a time and asks every rule that reads
its series; it is what the daemon runs, and it is the reference. Replay has the history in hand,
so it can turn the loop inside out: for each threshold rule, walk only the facts of the series it
reads, in the order they became known, and take each step exactly as the engine's
``_consider``/``_advance`` would (the same dates, instants, values, inputs and reasons), while

- a rule *at rest* (inactive, no streak) skips at once over every ordinary evaluation that
  cannot move it: a driver's value for a new date that does not breach (or is skipped by its
  calendar terms). A rule spends nearly all of history there, and nothing observable happens;
- the value of an ordinary evaluation is computed once per expression (``value_key``) for all
  the rules sharing it: ten thresholds on ``bp(sofr - iorb)`` compute the spread once;
- every value is the rule's own compiled expression evaluated on the data as it was known at
  that fact (``_KnownAt``): the latest known version of each point, the as-of step known then,
  the window over the driver dates known then.

The history is taken in chunks (``Facts.add`` then ``BulkRules.run``): between chunks it forgets
the points no rule can read again, as the engine's ``prune_every`` does, so memory stays flat.

Limits, each sent to the engine instead (``split``): a wall-clock ``for`` (deadlines between
facts). And the whole of it assumes every fact is applied at its own instant: a log holding a
fact dated ahead of its time is replayed by the engine alone (``watchdog.tuning.replay``).

tests/test_bulk.py shows bulk and incremental evaluation give identical transitions on random
logs and rule sets. Pure: facts in, transitions out; no I/O, no clock.
"""
from __future__ import annotations

import ast
import bisect
from collections.abc import Sequence
from datetime import date as Date
from decimal import Decimal
from typing import Any

import numpy as np

from watchdog.engine.data import input_name, split_name
from watchdog.engine.fold import Engine
from watchdog.engine.state import _INACTIVE, _NO_TERMS, RuleState
from watchdog.engine.threshold import TERMS_CACHE, ThresholdRules, _Compiled, inputs_at
from watchdog.market.calterms import business_day_of_month, instances_on, is_term
from watchdog.model.events import AlertTransition
from watchdog.market.series import SERIES
from watchdog.rules import expr as _expr
from watchdog.rules.expr import EvalError
from watchdog.rules.ruleset import Rule, RuleSet

_unbound_step = ThresholdRules._step
_correction = ThresholdRules._correction
_applies = ThresholdRules._applies


def split(ruleset: RuleSet) -> tuple[list[Rule], RuleSet]:
    """(threshold rules evaluated in bulk, the rule set the engine still runs). A wall-clock
    ``for`` waits on deadlines between facts: the engine keeps those rules."""
    bulk = [r for r in ruleset.rules if not r.for_duration]
    ids = {r.id for r in bulk}
    rest = RuleSet(series=ruleset.series, rules=tuple(r for r in ruleset.rules if r.id not in ids),
                   keyword_rules=ruleset.keyword_rules, composite_rules=ruleset.composite_rules,
                   revision_rules=ruleset.revision_rules, staleness_rules=ruleset.staleness_rules)
    return bulk, rest


# ---- the facts, by series, as they became known ----

class _Point:
    """A version of a series' value on a date (``data.Point`` with its knowledge position)."""
    __slots__ = ("pos", "value", "attributes", "published_at")

    def __init__(self, pos: int, value: Decimal, attributes: dict, published_at: str):
        self.pos, self.value, self.attributes, self.published_at = pos, value, attributes, published_at

    def get(self, attr: str | None) -> Decimal | None:
        if attr is None:
            return self.value
        text = self.attributes.get(attr)
        return None if text is None else Decimal(text)


class _Series:
    """One series: its distinct dates (sorted) and, per date, its versions in knowledge order."""

    def __init__(self) -> None:
        self.dates: list[str] = []
        self.versions: dict[str, list[_Point]] = {}
        self.chunk: list[tuple[int, str, bool]] = []      # this chunk: (pos, date, new latest date)

    def add(self, point: _Point, date: str) -> None:
        found = self.versions.get(date)
        newest = False
        if found is None:
            self.versions[date] = [point]
            dates = self.dates
            if not dates or dates[-1] < date:
                dates.append(date)
                newest = True
            else:
                bisect.insort(dates, date)
        else:
            found.append(point)
        self.chunk.append((point.pos, date, newest))

    def forget_before(self, cutoff: str) -> None:
        """Drop dates before ``cutoff`` except the latest of them (an as-of read may need it)."""
        drop = bisect.bisect_left(self.dates, cutoff) - 1
        if drop <= 0:
            return
        for date in self.dates[:drop]:
            del self.versions[date]
        del self.dates[:drop]


class Facts:
    """The facts of a replay so far, each with its knowledge position (its index in the stream
    of facts), its engine time (``published_at``) and ``seq``."""

    def __init__(self) -> None:
        self.series: dict[str, _Series] = {}
        self.now: dict[int, str] = {}       # this chunk's positions -> engine time
        self.seq: dict[int, int] = {}
        self.next_pos = 0

    def add(self, event: Any) -> int:
        """Take one observation (recorded or revised); returns its knowledge position."""
        pos = self.next_pos
        self.next_pos += 1
        self.now[pos] = event.published_at
        self.seq[pos] = event.seq
        payload = event.payload
        series = self.series.get(payload["series"])
        if series is None:
            series = self.series[payload["series"]] = _Series()
        series.add(_Point(pos, Decimal(payload["value"]), payload.get("attributes") or {},
                          event.published_at), payload["date"])
        return pos

    def end_chunk(self) -> None:
        self.now.clear()
        self.seq.clear()
        for series in self.series.values():
            series.chunk = []


class _KnownAt:
    """What an expression reads at a date once the fact at position ``pos`` is applied: the
    engine's ``JoinedContext`` over the data known then."""

    def __init__(self, facts: Facts, drivers: Sequence[str], calendar: str):
        self.facts, self.drivers, self.calendar = facts, tuple(drivers), calendar
        self.pos = 0

    def version(self, data: _Series, date: str) -> _Point | None:
        versions = data.versions.get(date)
        if not versions or versions[0].pos > self.pos:
            return None
        if len(versions) == 1 or versions[-1].pos <= self.pos:
            return versions[-1]                      # the latest known version wins
        best = None
        for point in versions:
            if point.pos > self.pos:
                break
            best = point
        return best

    def point(self, series: str, date: str, join: str) -> tuple[str, _Point] | None:
        data = self.facts.series.get(series)
        if data is None:
            return None
        if join == "market":
            found = self.version(data, date)
            return None if found is None else (date, found)
        i = bisect.bisect_right(data.dates, date)
        while i:
            i -= 1
            found = self.version(data, data.dates[i])
            if found is not None:
                return data.dates[i], found
        return None

    def value(self, name: str, date: str) -> Decimal | None:
        series, attr, join = input_name(name)
        found = self.point(series, date, join)
        return None if found is None else found[1].get(attr)

    def _last_known(self, series: str, date: str, n: int) -> list[str]:
        data = self.facts.series.get(series)
        if data is None:
            return []
        out: list[str] = []
        i = bisect.bisect_right(data.dates, date)
        while i and len(out) < n:
            i -= 1
            d = data.dates[i]
            if data.versions[d][0].pos <= self.pos:
                out.append(d)
        out.reverse()
        return out

    def history(self, date: str, n: int) -> list[str]:
        if len(self.drivers) == 1:
            return self._last_known(self.drivers[0], date, n)
        found: set[str] = set()
        for series in self.drivers:
            found.update(self._last_known(series, date, n))
        return sorted(found)[-n:]

    def latest_date(self, name: str, date: str) -> str | None:
        found = self.point(split_name(name)[0], date, "asof")
        return found[0] if found else None

    def term(self, term: str, date: str, window: int) -> bool:
        return is_term(term, Date.fromisoformat(date), self.calendar, window)

    def business_day_of_month(self, date: str) -> int:
        return business_day_of_month(Date.fromisoformat(date), self.calendar)


# ---- the ordinary evaluations' values, vectorised ----

def _ufunc(method, arity: int):
    return np.frompyfunc(method, arity, 1)


_CONTEXT = _expr._CONTEXT
_BINARY = {ast.Add: _ufunc(_CONTEXT.add, 2), ast.Sub: _ufunc(_CONTEXT.subtract, 2),
           ast.Mult: _ufunc(_CONTEXT.multiply, 2)}
_UNARY = {"minus": _ufunc(_CONTEXT.minus, 1), "abs": _ufunc(_CONTEXT.abs, 1),
          "bp": _ufunc(lambda x: _CONTEXT.multiply(x, _expr._HUNDRED), 1)}


class _NotVectorised(Exception):
    pass


def _parsed(text: str) -> ast.AST:
    """The expression's tree, each number carrying the Decimal of its source text (as the
    compiler reads it)."""
    source = text.strip()
    tree = ast.parse(source, mode="eval").body
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            node.decimal = Decimal((ast.get_source_segment(source, node) or "").replace("_", ""))  # type: ignore[attr-defined]
    return tree


class _Vector:
    """A plain expression (series and their attributes, numbers, + - *, unary -, bp, abs,
    derived series made of those) over many evaluations at once, each operation the one ``expr``
    does, in its decimal context, so every value is the same ``Decimal``; anything else
    (windows, division, terms, comparisons...) is refused and evaluated one at a time."""

    def __init__(self, rule: Rule):
        self.derived = {name: _parsed(text) for name, text in rule.derived.items()}
        self.tree = _parsed(rule.expr)
        try:
            self._check(self.tree, 0)
            self.usable = True
        except _NotVectorised:
            self.usable = False

    def _check(self, node: ast.AST, depth: int) -> None:
        if depth > 40:
            raise _NotVectorised
        if isinstance(node, ast.Constant):
            if not hasattr(node, "decimal"):
                raise _NotVectorised
        elif isinstance(node, ast.Name):
            if node.id in self.derived:
                self._check(self.derived[node.id], depth + 1)
            elif node.id not in SERIES:
                raise _NotVectorised                    # a calendar term, bdom
        elif isinstance(node, ast.Attribute):
            if not isinstance(node.value, ast.Name) or node.value.id not in SERIES:
                raise _NotVectorised
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            self._check(node.left, depth + 1)
            self._check(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            self._check(node.operand, depth + 1)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("bp", "abs") and len(node.args) == 1 and not node.keywords:
            self._check(node.args[0], depth + 1)
        else:
            raise _NotVectorised

    def evaluate(self, read, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(values, ok) of n evaluations; ``read(name)`` gives an input's (values, ok)."""
        return self._node(self.tree, read, n)

    def _node(self, node: ast.AST, read, n: int) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(node, ast.Constant):
            values = np.empty(n, dtype=object)
            values[:] = [node.decimal] * n                 # type: ignore[attr-defined]
            return values, np.ones(n, dtype=bool)
        if isinstance(node, ast.Name):
            if node.id in self.derived:
                return self._node(self.derived[node.id], read, n)
            return read(node.id)
        if isinstance(node, ast.Attribute):
            return read(f"{node.value.id}.{node.attr}")    # type: ignore[attr-defined]
        if isinstance(node, ast.BinOp):
            a, ok_a = self._node(node.left, read, n)
            b, ok_b = self._node(node.right, read, n)
            return _apply(_BINARY[type(node.op)], ok_a & ok_b, a, b)
        if isinstance(node, ast.UnaryOp):
            a, ok = self._node(node.operand, read, n)
            return _apply(_UNARY["minus"], ok, a)
        a, ok = self._node(node.args[0], read, n)          # type: ignore[attr-defined]
        return _apply(_UNARY[node.func.id], ok, a)        # type: ignore[attr-defined]


def _apply(ufunc, ok: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.empty(ok.size, dtype=object)
    if ok.any():
        try:
            out[ok] = ufunc(*(c[ok] for c in columns))
        except (ArithmeticError, ValueError) as exc:   # an overflow: one at a time says which
            raise _NotVectorised from exc
    return out, ok


# ---- one rule ----

_AT_REST = ("inactive", 0, 0, None)


class _RuleRun:
    """The engine's threshold steps for one rule, over the facts of its series."""

    def __init__(self, compiled: _Compiled, bulk: "BulkRules"):
        self.compiled, self.bulk, self.facts = compiled, bulk, bulk.facts
        self.rule = compiled.rule
        self.ctx = _KnownAt(bulk.facts, compiled.rule.drivers, compiled.calendar)
        self.state: RuleState = _INACTIVE
        self.single = len(compiled.drivers) == 1
        self.pending: list[str] = []      # driver dates known, after the last evaluated, sorted
        self.latest: str | None = None    # the latest driver date of the facts taken so far
        self.strict = set(compiled.drivers) <= set(compiled.market_inputs)
        self.vector: _Vector | None = _Vector(compiled.rule) if self.single else None
        self.driver = next(iter(compiled.drivers)) if self.single else None

    # ---- as the engine computes them ----
    def terms(self, date: str) -> frozenset[str]:
        compiled = self.compiled
        if not compiled.calendar_aware:
            return _NO_TERMS
        held = self.bulk.terms_of(compiled.calendar, date)
        return held.intersection(compiled.terms_used) if held else _NO_TERMS

    def value(self, date: str, pos: int) -> Decimal | None:
        """The rule's value at ``date`` on the data known at ``pos`` (``_compute``), shared by
        the rules with the same expression."""
        cache = self.bulk.values.setdefault(self.compiled.value_key, {})
        key = (date, pos)
        if key in cache:
            return cache[key]
        compiled, ctx = self.compiled, self.ctx
        ctx.pos = pos
        value: Decimal | None = None
        for series in compiled.market_inputs:
            data = self.facts.series.get(series)
            if data is None or ctx.version(data, date) is None:
                break
        else:
            try:
                result = compiled.expr.evaluate_at(ctx, date)
            except EvalError:
                result = None
            if result is not None:
                value = Decimal(int(result)) if isinstance(result, bool) else result
        cache[key] = value
        return value

    def inputs(self, date: str, pos: int) -> dict:
        self.ctx.pos = pos
        return inputs_at(self.compiled.names, date, self.ctx.point)

    def advance(self, date: str, pos: int, out: list) -> None:
        """``_advance`` for one date at the fact at ``pos``."""
        compiled = self.compiled
        terms = self.terms(date) if compiled.calendar_aware else _NO_TERMS
        if (terms or compiled.only_on) and not _applies(compiled.rule, terms):
            return
        state = self.state
        again = date == state.last_date
        value = self.value(date, pos)
        if value is None:
            return
        threshold = compiled.threshold_on(terms) if terms else compiled.plain_threshold
        start = (state.before_last or _INACTIVE) if again else state
        new_state, target, reason = _unbound_step(None, compiled, start, date, value, threshold)  # type: ignore[arg-type]
        self.state = new_state
        if again:
            target, reason = _correction(state, new_state)
        if target is not None:
            facts = self.facts
            out.append((pos, self.bulk.maker._transition(
                compiled, target, date, facts.now[pos], facts.seq[pos], reason, value,
                self.inputs(date, pos), threshold, ThresholdRules._all_terms(None, compiled, date))))  # type: ignore[arg-type]

    def waiting(self, start: str) -> list[str]:
        """``_waiting_dates``: the driver dates known so far, after the last evaluated date and
        from ``start`` on (kept as they arrive: ``pending``)."""
        pending = self.pending
        return pending[bisect.bisect_left(pending, start):] if pending else []

    def _settle(self) -> None:
        """Drop the pending dates the last evaluated date has passed."""
        last = self.state.last_date
        if last is not None and self.pending and self.pending[0] <= last:
            del self.pending[:bisect.bisect_right(self.pending, last)]

    def _arrived(self, date: str) -> None:
        """A driver date became known: pending unless already evaluated past."""
        last = self.state.last_date
        if last is None or date > last:
            pending = self.pending
            i = bisect.bisect_left(pending, date)
            if i == len(pending) or pending[i] != date:
                pending.insert(i, date)

    # ---- a chunk ----
    def run(self, out: list) -> None:
        compiled = self.compiled
        drivers = compiled.drivers
        # the chunk's facts of its series, in knowledge order, and which are ordinary: shared by
        # the rules reading the same series with the same drivers (they took the same facts)
        key = (tuple(compiled.series), tuple(drivers), self.strict, self.latest)
        found = self.bulk.streams.get(key)
        if found is None:
            found = self.bulk.streams[key] = self._stream()
        stream, plain, self.latest = found
        if not stream:
            return
        quiet = self._quiet(stream, plain)
        i, n = 0, len(stream)
        while i < n:
            pos, series, date, newest = stream[i]
            if plain[i]:
                state = self.state
                if (state.status, state.streak, state.recovering, state.since) == _AT_REST:
                    j = int(quiet[i])
                    if j > i:                         # i .. j-1 cannot move it: jump
                        self._rest(stream, i, j)
                        i = j
                        continue
                self._arrived(date)
                self.advance(date, pos, out)
                self._settle()
                i += 1
                continue
            last = self.state.last_date
            if series in drivers:
                self._arrived(date)
                if last is None or date >= last:
                    self.advance(date, pos, out)
            else:
                dates = [last] if last is not None and date <= last else []
                dates += self.waiting(date)
                for d in dates:
                    self.advance(d, pos, out)
            self._settle()
            i += 1

    def _stream(self) -> tuple[list, list[bool], str | None]:
        compiled, facts = self.compiled, self.facts
        stream: list[tuple[int, str, str, bool]] = []
        for series in compiled.series:
            data = facts.series.get(series)
            if data is not None and data.chunk:
                stream.extend((pos, series, date, newest) for pos, date, newest in data.chunk)
        stream.sort()
        drivers = compiled.drivers
        # the ordinary evaluations: a driver's first value for a date no driver had passed (its
        # date is then after the last evaluated one: the engine evaluates it, alone)
        plain: list[bool] = []
        latest, strict = self.latest, self.strict
        for _, series, date, newest in stream:
            if series in drivers:
                # equal to the latest: another driver's first value came first, and (every driver
                # read on the date itself) could not be evaluated without this one
                plain.append(newest and (latest is None or date > latest or (strict and date == latest)))
                if latest is None or date > latest:
                    latest = date
            else:
                plain.append(False)
        return stream, plain, latest

    def _quiet(self, stream: list, plain: list[bool]) -> np.ndarray:
        """For each stream index in a run of quiet ordinary evaluations (driver facts for a new
        latest date that a rule at rest takes without moving: skipped by its terms, no value, or
        no breach), the stream index just after the run; -1 elsewhere. The values and calendar
        terms of the ordinary evaluations are shared by the rules with the same expression; each
        rule only compares."""
        compiled = self.compiled
        rows = np.flatnonzero(np.array(plain, dtype=bool))
        shared = self.bulk.plain.get(compiled.value_key)
        if shared is None:       # the rules with this expression share the stream (run)
            items = [(stream[k][0], stream[k][2]) for k in rows.tolist()]
            if self.single:
                self._plain_values(items)
            values = np.empty(len(items), dtype=object)
            values[:] = [self.value(date, pos) for pos, date in items]
            ok = np.fromiter((v is not None for v in values.tolist()), dtype=bool, count=len(items))
            shared = self.bulk.plain[compiled.value_key] = [stream, values, ok, None]
        _, values, ok, all_terms = shared
        if compiled.calendar_aware and all_terms is None:
            all_terms = shared[3] = [self.bulk.terms_of(compiled.calendar, stream[k][2]) for k in rows.tolist()]
        n_items = rows.size
        applies = np.ones(n_items, dtype=bool)
        thresholds = np.empty(n_items, dtype=object)
        thresholds[:] = [compiled.plain_threshold] * n_items
        if compiled.calendar_aware:
            classes: dict[frozenset[str], tuple[bool, Decimal]] = {}
            for k, held in enumerate(all_terms):
                if not held:
                    if compiled.only_on:
                        applies[k] = False
                    continue
                found = classes.get(held)
                if found is None:
                    terms = held.intersection(compiled.terms_used)
                    rule_applies = not ((terms or compiled.only_on) and not _applies(compiled.rule, terms))
                    found = classes[held] = (rule_applies, compiled.threshold_on(terms) if terms
                                             else compiled.plain_threshold)
                applies[k], thresholds[k] = found
        elif compiled.only_on:
            applies[:] = False
        judged = applies & ok
        breach = np.zeros(n_items, dtype=bool)
        if judged.any():
            compare = np.greater if compiled.above else np.less
            breach[judged] = compare(values[judged], thresholds[judged]).astype(bool)
        n = len(stream)
        calm = np.zeros(n, dtype=bool)
        calm[rows] = ~breach
        # the index just after each calm run: the next index that is not calm
        stops = np.flatnonzero(~calm)
        after = np.searchsorted(stops, np.arange(n), "left")
        ends = np.where(after < stops.size, stops[np.minimum(after, max(stops.size - 1, 0))] if stops.size
                        else n, n)
        return np.where(calm, ends, -1)

    def _plain_values(self, items: list[tuple[int, str]]) -> None:
        """The values of the ordinary evaluations (the driver's newest date, at its own fact),
        vectorised into the shared cache when the expression allows it (``_Vector``)."""
        vector = self.vector
        cache = self.bulk.values.setdefault(self.compiled.value_key, {})
        items = [item for item in items if (item[1], item[0]) not in cache]
        if vector is None or not vector.usable or len(items) < 8:
            return
        n = len(items)
        positions = np.fromiter((pos for pos, _ in items), dtype=np.int64, count=n)
        dates = np.array([date for _, date in items])
        driver = self.facts.series[self.driver]
        points = [driver.versions[date][0] for _, date in items]
        reads: dict[str, tuple[np.ndarray, np.ndarray]] = {}

        def read(name: str) -> tuple[np.ndarray, np.ndarray]:
            found = reads.get(name)
            if found is None:
                found = reads[name] = self._column(name, points, dates, positions)
            return found

        try:
            values, ok = vector.evaluate(read, n)
        except _NotVectorised:
            self.vector = None
            return
        for (pos, date), value, good in zip(items, values.tolist(), ok.tolist()):
            cache[(date, pos)] = value if good else None

    def _column(self, name: str, points: list, dates: np.ndarray, positions: np.ndarray):
        """An input's values at the ordinary evaluations: the driver's own point, or an as-of
        series' latest date on or before each date among those known at each fact."""
        series, attr, join = input_name(name)
        n = len(points)
        values = np.empty(n, dtype=object)
        if series == self.driver:
            found = [p.get(attr) for p in points]
        else:
            data = self.facts.series.get(series)
            if data is None:
                found = [None] * n
            else:
                firsts = np.fromiter((data.versions[d][0].pos for d in data.dates), dtype=np.int64,
                                     count=len(data.dates))
                single = all(len(data.versions[d]) == 1 for d in data.dates)
                if join != "market" and single and (firsts.size < 2 or bool((firsts[1:] > firsts[:-1]).all())):
                    # known at a fact: a prefix of the dates (first known in date order)
                    known = np.searchsorted(firsts, positions, "right")
                    upto = np.searchsorted(np.array(data.dates), dates, "right")
                    index = np.minimum(known, upto) - 1
                    dates_of = data.dates
                    found = [None if i < 0 else data.versions[dates_of[i]][0].get(attr) for i in index.tolist()]
                else:
                    ctx = self.ctx
                    found = []
                    for pos, date in zip(positions.tolist(), dates.tolist()):
                        ctx.pos = pos
                        hit = ctx.point(series, date, join)
                        found.append(None if hit is None else hit[1].get(attr))
        values[:] = found
        ok = np.fromiter((v is not None for v in found), dtype=bool, count=n)
        return values, ok

    def _rest(self, stream: list, i: int, j: int) -> None:
        """Take the quiet evaluations stream[i:j] at rest: still at rest, its last date the last
        one evaluated (applied, with a value), before it the one before; the dates after the
        last evaluated one wait (they were skipped or had no value)."""
        compiled = self.compiled
        state = self.state
        evaluated: list[str] = []
        trailing: list[str] = []
        for k in range(j - 1, i - 1, -1):
            pos, _, date, _ = stream[k]
            terms = self.terms(date) if compiled.calendar_aware else _NO_TERMS
            if ((terms or compiled.only_on) and not _applies(compiled.rule, terms)) \
                    or self.value(date, pos) is None:
                if not evaluated:
                    trailing.append(date)
                continue
            evaluated.append(date)
            if len(evaluated) == 2:
                break
        if evaluated:
            before = evaluated[1] if len(evaluated) == 2 else state.last_date
            prev = RuleState(status=state.status, streak=state.streak, recovering=state.recovering,
                             since=state.since, last_date=before)
            self.state = RuleState(status="inactive", streak=0, recovering=state.recovering,
                                   since=state.since, last_date=evaluated[0], before_last=prev)
            self.pending = []              # every earlier arrival is at or before that date
        else:
            trailing = [stream[k][2] for k in range(i, j)]
        for date in reversed(trailing):
            self._arrived(date)
        self._settle()

    def readable_from(self) -> str | None:
        """The earliest date the rule can still read (``_readable_from``); None: all of it."""
        last = self.state.last_date
        if last is None:
            return None
        reach = max(self.compiled.expr.max_window, 1)
        earliest = last
        for series in self.compiled.drivers:
            data = self.facts.series.get(series)
            if data is None:
                continue
            end = bisect.bisect_right(data.dates, last)
            if end:
                earliest = min(earliest, data.dates[max(0, end - reach)])
        return earliest


class BulkRules:
    """Threshold rules over a replay's facts, chunk by chunk: ``facts.add`` each fact of the
    chunk (in knowledge order), then ``run`` for the chunk's transitions as (position,
    transition) in the engine's order for each position."""

    def __init__(self, rules: Sequence[Rule]):
        self.facts = Facts()
        self.maker = Engine()                   # builds transitions as the engine does
        self.values: dict[str, dict] = {}
        self.plain: dict[str, list] = {}        # value_key -> this chunk's ordinary evaluations
        self.streams: dict[tuple, tuple] = {}   # (series, drivers, ...) -> this chunk's facts of them
        self._terms: dict[tuple[str, str], frozenset[str]] = {}
        self.runs = [_RuleRun(_Compiled(rule), self) for rule in rules]
        # the terms any rule reads on each calendar (the engine's _calendar_terms)
        terms: dict[str, set[str]] = {}
        for run in self.runs:
            if run.compiled.calendar_aware:
                terms.setdefault(run.compiled.calendar, set()).update(run.compiled.terms_used)
        self._calendar_terms = {calendar: tuple(sorted(t)) for calendar, t in terms.items()}
        self.series = frozenset(s for run in self.runs for s in run.compiled.series)

    def terms_of(self, calendar: str, date: str) -> frozenset[str]:
        key = (calendar, date)
        held = self._terms.get(key)
        if held is None:
            if len(self._terms) > TERMS_CACHE:      # keyed by date: it grows with history
                self._terms.clear()
            held = self._terms[key] = instances_on(Date.fromisoformat(date), calendar,
                                                   self._calendar_terms.get(calendar, ()))
        return held

    def run(self) -> list[tuple[int, AlertTransition]]:
        out: list[tuple[int, AlertTransition]] = []
        for run in self.runs:
            run.run(out)
        # the engine's order at one fact: the rules reading its series in rule-set order
        out.sort(key=lambda item: item[0])
        self.values.clear()
        self.plain.clear()
        self.streams.clear()
        self.facts.end_chunk()
        self._forget()
        return out

    def _forget(self) -> None:
        """Forget what no rule can read again (``Engine._prune``)."""
        keep_from: dict[str, str | None] = {}
        for run in self.runs:
            cutoff = run.readable_from()
            for series in run.compiled.series:
                kept = keep_from.get(series, "9999")
                keep_from[series] = None if cutoff is None or kept is None else min(kept, cutoff)
        for name, series in self.facts.series.items():
            cutoff = keep_from.get(name, series.dates[-1] if series.dates else "")
            if cutoff is not None:
                series.forget_before(cutoff)
