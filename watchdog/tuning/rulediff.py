"""Rule diffs (pure): how the alerts of one rule set differ from another's over the same replay.

``watchdog replay --rules A --diff B`` replays the log once with each set and compares their
transitions rule by rule. Only what ``replay --json`` prints is compared (``firing``,
``resolved``, ``flagged``; pending is not an alert). Per rule id, in this order:

1. **unchanged**: both sets have a transition with the same state, observation date and
   ``known_at``; **changed**: same state, date and ``known_at``, but another value or severity.
2. **moved**: the same state and observation date but another ``known_at`` (learnt earlier or
   later), or, among the transitions still unpaired, the same state on a date at most
   ``max_shift`` business days away (on the rule's calendar), paired in date order. ``shift``
   is the signed business-day distance from A's date to B's (positive: later in B).
3. **appeared**: a transition only B has; **disappeared**: one only A has.

This module does no I/O: the CLI replays, this compares and renders.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date as Date

from watchdog.market.calendar import business_days_between
from watchdog.model.events import AlertTransition
from watchdog.rules.ruleset import Rule, RuleSet, RevisionRule, StalenessRule
from watchdog.market.series import SERIES
from watchdog.model.display import plain
from watchdog.model.timefmt import new_york_minute, parse_utc

CHANGES = ("unchanged", "changed", "moved", "appeared", "disappeared")
COMPARED = ("firing", "resolved", "flagged")


@dataclass(frozen=True)
class Difference:
    rule: str
    change: str                             # changed | moved | appeared | disappeared
    state: str
    base: AlertTransition | None            # the --rules side (None: appeared)
    other: AlertTransition | None           # the --diff side (None: disappeared)
    shift: int = 0                          # business days from base.date to other.date

    @property
    def date(self) -> str:
        return (self.base or self.other).date


@dataclass
class RuleSummary:
    rule: str
    definition: str                         # same | changed | only-base | only-other
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANGES, 0))


@dataclass
class RuleDiff:
    differences: list[Difference]
    summaries: list[RuleSummary]


def diff_rulesets(base: Iterable[AlertTransition], other: Iterable[AlertTransition], *,
                  base_rules: RuleSet, other_rules: RuleSet, max_shift: int = 5,
                  since: str | None = None, until: str | None = None) -> RuleDiff:
    """Compare two replays' transitions. ``since``/``until`` keep the differences (and counts)
    with a date in range on either side; the pairing itself uses the whole replay, so a move
    across the boundary is still a move."""
    mine, theirs = _by_rule(base), _by_rule(other)
    differences, summaries = [], []
    for rule_id in sorted(set(base_rules.by_id) | set(other_rules.by_id) | set(mine) | set(theirs)):
        calendar = _calendar(other_rules.by_id.get(rule_id) or base_rules.by_id.get(rule_id))
        summary = RuleSummary(rule_id, _definition(rule_id, base_rules, other_rules))
        pairs = _pair(mine.get(rule_id, []), theirs.get(rule_id, []), calendar, max_shift)
        for found in pairs:
            if not _in_range(found, since, until):
                continue
            summary.counts[found.change] += 1
            if found.change != "unchanged":
                differences.append(found)
        summaries.append(summary)
    differences.sort(key=lambda d: (d.rule, d.date, d.state))
    return RuleDiff(differences, summaries)


def _by_rule(transitions: Iterable[AlertTransition]) -> dict[str, list[AlertTransition]]:
    out: dict[str, list[AlertTransition]] = {}
    for t in transitions:
        if t.state in COMPARED:
            out.setdefault(t.rule, []).append(t)
    return out


def _definition(rule_id: str, base: RuleSet, other: RuleSet) -> str:
    mine, theirs = base.by_id.get(rule_id), other.by_id.get(rule_id)
    if mine is None or theirs is None:
        return "only-other" if mine is None else "only-base"
    return "same" if mine.hash == theirs.hash else "changed"


def _calendar(rule) -> str:
    """The calendar business days are counted on: the one the engine reads the rule's calendar
    terms on (its first market series, SOFR: SIFMA), a staleness or revision rule's series';
    SIFMA for rules tied to no series (composites, keyword flags)."""
    if isinstance(rule, (StalenessRule, RevisionRule)):
        return SERIES[rule.series].calendar
    if isinstance(rule, Rule):
        return rule.calendar
    return "sifma"


def _pair(mine: list[AlertTransition], theirs: list[AlertTransition], calendar: str,
          max_shift: int) -> list[Difference]:
    """Pair one rule's transitions of both sides (see the module docstring for the order)."""
    out: list[Difference] = []
    left = _exact(mine, theirs, out)
    for state in COMPARED:
        a = sorted((t for t in left[0] if t.state == state), key=lambda t: (t.date, t.evaluated_at))
        b = sorted((t for t in left[1] if t.state == state), key=lambda t: (t.date, t.evaluated_at))
        out += _shifted(a, b, calendar, max_shift)
    return out


def _exact(mine: list[AlertTransition], theirs: list[AlertTransition],
           out: list[Difference]) -> tuple[list[AlertTransition], list[AlertTransition]]:
    """Pair transitions with the same state and date (the same known_at first); returns the
    unpaired ones of each side."""
    waiting: dict[tuple[str, str], list[AlertTransition]] = {}
    for t in theirs:
        waiting.setdefault((t.state, t.date), []).append(t)
    unpaired = []
    for t in sorted(mine, key=lambda t: t.evaluated_at):
        candidates = waiting.get((t.state, t.date))
        if not candidates:
            unpaired.append(t)
            continue
        same = [c for c in candidates if c.evaluated_at == t.evaluated_at]
        match = (same or candidates)[0]
        candidates.remove(match)
        change = "moved" if match.evaluated_at != t.evaluated_at else (
            "unchanged" if (match.value, match.severity) == (t.value, t.severity) else "changed")
        out.append(Difference(t.rule, change, t.state, t, match))
    return unpaired, [t for group in waiting.values() for t in group]


def _shifted(a: list[AlertTransition], b: list[AlertTransition], calendar: str,
             max_shift: int) -> list[Difference]:
    """Pair same-state transitions at most ``max_shift`` business days apart, in date order (a
    merge: the earlier of two unpairable transitions is left unpaired)."""
    out: list[Difference] = []
    i = j = 0
    while i < len(a) and j < len(b):
        shift = _business_shift(calendar, a[i].date, b[j].date, max_shift)
        if shift is not None:
            out.append(Difference(a[i].rule, "moved", a[i].state, a[i], b[j], shift))
            i, j = i + 1, j + 1
        elif a[i].date < b[j].date:
            out.append(Difference(a[i].rule, "disappeared", a[i].state, a[i], None))
            i += 1
        else:
            out.append(Difference(b[j].rule, "appeared", b[j].state, None, b[j]))
            j += 1
    out += [Difference(t.rule, "disappeared", t.state, t, None) for t in a[i:]]
    out += [Difference(t.rule, "appeared", t.state, None, t) for t in b[j:]]
    return out


def _business_shift(calendar: str, start: str, end: str, max_shift: int) -> int | None:
    """Business days from ``start`` to ``end`` when at most ``max_shift`` apart, else None.
    Dates far apart in calendar days are not counted day by day: N business days never span
    more than 2N + 10 calendar days (weekends and holidays included)."""
    first, last = Date.fromisoformat(start), Date.fromisoformat(end)
    if abs((last - first).days) > 2 * max_shift + 10:
        return None
    shift = business_days_between(calendar, first, last)
    return shift if abs(shift) <= max_shift else None


def _in_range(d: Difference, since: str | None, until: str | None) -> bool:
    dates = [t.date for t in (d.base, d.other) if t is not None]
    return any((since is None or x >= since) and (until is None or x <= until) for x in dates)


# ---- rendering ----

def known_text(t: AlertTransition) -> str:
    """When a transition was known (its engine time), in New York time to the minute."""
    return new_york_minute(parse_utc(t.evaluated_at))


def difference_line(d: Difference) -> str:
    """One line of the text diff."""
    head = f"{d.rule:<24} {d.change:<11} {d.state:<8}"
    a, b = d.base, d.other
    if a is not None and b is not None:
        when = a.date if a.date == b.date else f"{a.date} -> {b.date} ({d.shift:+d}bd)"
        known = known_text(a) if a.evaluated_at == b.evaluated_at else f"{known_text(a)} -> {known_text(b)}"
        return f"{head} {when}  known {known}  value {plain(a.value)} -> {plain(b.value)}"
    t = d.base or d.other
    return f"{head} {t.date}  known {known_text(t)}  value {plain(t.value)}  {t.summary or t.reason}"


def summary_line(s: RuleSummary) -> str:
    counts = ", ".join(f"{s.counts[c]} {c}" for c in CHANGES)
    definition = {"same": "rule unchanged", "changed": "rule changed", "only-base": "only in --rules",
                  "only-other": "only in --diff"}[s.definition]
    return f"{s.rule}: {definition}; {counts}"


def difference_json(d: Difference) -> str:
    """One JSON line per difference: the --rules side as ``date``/``known_at``/``value``, the
    --diff side as ``other_*`` (null when absent)."""
    def side(t: AlertTransition | None, prefix: str) -> dict:
        return {f"{prefix}date": t and t.date, f"{prefix}known_at": t and t.evaluated_at,
                f"{prefix}value": t and _number(t.value), f"{prefix}severity": t and t.severity}
    line = {"rule": d.rule, "change": d.change, "state": d.state, "shift_bd": d.shift,
            **side(d.base, ""), **side(d.other, "other_")}
    return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def summary_json(s: RuleSummary) -> str:
    line = {"rule": s.rule, "change": "summary", "definition": s.definition, **s.counts}
    return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _number(text: str | None):
    return None if text is None else json.loads(text)
