"""At a glance: what is firing, every series' latest value and whether it is stale, what is
owed (``watchdog status``), and a series' values as rows (``watchdog series``). Pure: events and
``now`` come in, frozen values go out; no I/O, no clock.

- **Firing.** Either the alert events the log recorded (folded per rule: the last firing or
  resolved transition wins), or the log's facts replayed through the engine with a rule set,
  deadlines ticked up to ``now`` (a staleness rule fires as it would have live).
- **Series.** Per catalogued series, the newest observation date known at ``now`` (facts
  published by then), its latest revision, and whether it is stale:
  - market series (``join = "market"``: SOFR, EFFR, ON RRP, TGA, ...): on the publication
    calendar of the series (``market.staleness.expected_date``) with a grace (a staleness
    rule's ``grace`` for that series, else ``DEFAULT_GRACE``): stale when its newest date is
    older than the newest date already due at ``now``;
  - weekly, monthly and quarterly series (``join = "asof"``): by their own frequency, read
    from the data (the median gap between their last observation dates: 7 days weekly, 28-31
    monthly, 89-92 quarterly, else that many days): stale when the next date's nominal
    publication plus the grace has passed;
  - administered rates (``join = "step"``: IORB, the target range, ...) hold until changed:
    never stale.
- **Rows.** ``series_rows``: the values of named series, latest revision per date or every
  revision, with their attributes.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from watchdog.engine.data import SeriesData, derived_values
from watchdog.engine.fold import PRUNE_EVERY, Engine, replay_events
from watchdog.market.series import SERIES
from watchdog.market.staleness import CADENCE_GAPS, DEFAULT_GRACE, judge
from watchdog.model import display
from watchdog.model.errors import RuleError
from watchdog.model.events import (
    ALERT_FIRING,
    ALERT_RESOLVED,
    OBSERVATION_RECORDED,
    OBSERVATION_REVISED,
    RULES_LOADED,
    SPEECH_RECORDED,
    AlertTransition,
    decode,
)
from watchdog.model.numbers import norm
from watchdog.model.timefmt import parse_utc, utc_text
from watchdog.rules.derived import DerivedSeries, catalogue_of
from watchdog.rules.ruleset import CompositeRule, Rule, RuleSet, rule_from_canonical

RECENT_POINTS = 24          # values in a series' sparkline
OBSERVATION_TYPES = frozenset({OBSERVATION_RECORDED, OBSERVATION_REVISED})
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}

# How people name the series in a spread ("SOFR−IORB"); the catalogue name otherwise.
SHORT_NAMES = {
    "sofr": "SOFR", "tgcr": "TGCR", "bgcr": "BGCR", "effr": "EFFR", "obfr": "OBFR", "iorb": "IORB",
    "onrrp": "ON RRP", "onrrp_rate": "ON RRP rate", "srf": "SRF", "srf_rate": "SRF rate",
    "fftarget_upper": "target top", "fftarget_lower": "target bottom", "tga": "TGA",
    "tga_weekly_avg": "TGA week avg", "gdp": "GDP", "m2": "M2", "fed_assets": "Fed assets",
    "primary_credit": "primary credit", "reserves": "reserves",
}
MINUS = "\u2212"


# ---- what status returns ----

@dataclass(frozen=True)
class SeriesStatus:
    """One catalogued series as known at ``now``: its newest observation (latest revision)."""
    series: str
    unit: str
    date: str
    value: str
    published_at: str
    recorded_at: str
    source: str
    revision: int
    age: timedelta                 # now - published_at
    judged_by: str                 # "sifma calendar, 3h grace", "weekly, 2h grace", "administered"
    stale: bool | None             # None: not judged (administered rates hold until changed)
    expected_date: str | None      # the observation date that should be in at now
    recent: tuple[str, ...] = ()   # the last RECENT_POINTS values, oldest first (not for step series)


@dataclass(frozen=True)
class FiringAlert:
    """One rule firing at ``now``: since the observation date it fired for, known when."""
    rule: str
    severity: str
    since: str
    known_at: str
    value: str | None
    threshold: str | None
    indicator: str                 # "SOFR−IORB", the expression, or "" for rules without one
    unit: str | None               # bp, %, USD bn, ratio; None: a count or no unit
    op: str                        # ">" or "<" for threshold rules, "" otherwise
    headline: str                  # "SOFR−IORB 32 bp > 10 bp", what a person reads first
    summary: str
    reason: str


@dataclass(frozen=True)
class DerivedStatus:
    """One derived series ([[series]]) as known at ``now``: its newest computable value."""
    series: str
    unit: str                      # as declared: bp, %, USD bn, ...
    display_unit: str              # what display.quantity formats it as
    date: str
    value: str
    description: str
    recent: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataGap:
    """A series the rules read with no fact in the log (by ``now``), or speeches that stop long
    before it: those rules are silent for want of data, not for want of stress."""
    series: str                    # a catalogued series, or "speeches"
    rules: tuple[str, ...]         # the rules that read it
    latest: str | None             # the newest date held (speeches), None: nothing at all
    source: str                    # the live source `watchdog backfill --source` fetches it from


@dataclass(frozen=True)
class Status:
    now: str
    alerts_from: str               # "recorded" | "replayed" | "none"
    rule_paths: tuple[str, ...]    # the rules replayed (alerts_from == "replayed")
    firing: tuple[FiringAlert, ...]
    series: tuple[SeriesStatus, ...]
    owed: tuple[Mapping[str, Any], ...] = ()
    log_has_alerts: bool = False   # replayed although the log records alerts: --rules said so
    derived: tuple[DerivedStatus, ...] = ()
    gaps: tuple[DataGap, ...] = ()

    @property
    def stale(self) -> tuple[SeriesStatus, ...]:
        return tuple(s for s in self.series if s.stale)

    def as_json(self) -> dict[str, Any]:
        """Exact: decimal strings, UTC times, ages in whole seconds."""
        return {
            "now": self.now,
            "alerts": {"from": self.alerts_from, "rules": list(self.rule_paths),
                       "log_has_alerts": self.log_has_alerts},
            "firing": [{"rule": a.rule, "severity": a.severity, "since": a.since, "known_at": a.known_at,
                        "value": a.value, "threshold": a.threshold, "indicator": a.indicator,
                        "unit": a.unit, "op": a.op, "summary": a.summary, "reason": a.reason}
                       for a in self.firing],
            "series": [{"series": s.series, "unit": s.unit, "date": s.date, "value": s.value,
                        "published_at": s.published_at, "recorded_at": s.recorded_at,
                        "source": s.source, "revision": s.revision,
                        "age_seconds": int(s.age.total_seconds()), "judged_by": s.judged_by,
                        "stale": s.stale, "expected_date": s.expected_date, "recent": list(s.recent)}
                       for s in self.series],
            "owed": [dict(row) for row in self.owed],
            "gaps": [{"series": g.series, "rules": list(g.rules), "latest": g.latest,
                      "source": g.source} for g in self.gaps],
            "derived": [{"series": d.series, "unit": d.unit, "date": d.date, "value": d.value,
                         "recent": list(d.recent)} for d in self.derived],
        }


# ---- series: the newest facts per series ----

@dataclass
class SeriesFold:
    """The newest observation dates of every series, latest revision per date (by publication,
    then seq). Keeps at most ``2 * keep`` dates per series, so a long log costs little."""
    keep: int = max(RECENT_POINTS, CADENCE_GAPS + 1)
    dates: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest_speech: str | None = None   # the newest speech date (keyword rules' data)

    def apply(self, event: Any) -> None:
        if event.type == SPEECH_RECORDED:
            day = event.payload.get("date") or None
            if day and (self.latest_speech is None or day > self.latest_speech):
                self.latest_speech = day
            return
        if event.type not in OBSERVATION_TYPES:
            return
        series, day = event.payload["series"], event.payload["date"]
        per_date = self.dates.setdefault(series, {})
        held = per_date.get(day)
        if held is None or (held.published_at, held.seq) <= (event.published_at, event.seq):
            per_date[day] = event
        if len(per_date) > 2 * self.keep:
            for old in sorted(per_date)[:-self.keep]:
                del per_date[old]

    def statuses(self, now: datetime, graces: Mapping[str, timedelta] | None = None) -> tuple[SeriesStatus, ...]:
        """Every catalogued series the fold holds, in catalogue order."""
        graces = graces or {}
        out = []
        for name in SERIES:
            per_date = self.dates.get(name)
            if per_date:
                out.append(_series_status(name, per_date, now, graces.get(name, DEFAULT_GRACE)))
        return tuple(out)


def _series_status(name: str, per_date: Mapping[str, Any], now: datetime, grace: timedelta) -> SeriesStatus:
    spec = SERIES[name]
    days = sorted(per_date)
    newest = per_date[days[-1]]
    payload = newest.payload
    recent: tuple[str, ...] = tuple(per_date[d].payload["value"] for d in days[-RECENT_POINTS:])
    judgement = judge(name, days, now, grace)          # the status page judges alike
    expected = judgement.due.isoformat() if judgement.due else None
    stale, judged = judgement.stale, judgement.judged_by
    if judgement.cadence == "administered":
        recent = ()
    return SeriesStatus(
        series=name, unit=payload.get("unit", spec.unit), date=days[-1], value=payload["value"],
        published_at=newest.published_at, recorded_at=newest.recorded_at,
        source=payload.get("source", ""), revision=int(payload.get("revision", 0)),
        age=now - parse_utc(newest.published_at), judged_by=judged, stale=stale,
        expected_date=expected, recent=recent)


def staleness_graces(ruleset: RuleSet | None) -> dict[str, timedelta]:
    """The grace a series' staleness rules give it (``RuleSet.staleness_graces``); none without rules."""
    return ruleset.staleness_graces() if ruleset is not None else {}


# ---- firing: recorded or replayed ----

def replayed_firing(facts: Iterable[Any], ruleset: RuleSet, until: str) -> tuple[FiringAlert, ...]:
    """What fires at ``until`` when ``facts`` (publication order, published by ``until``) are
    replayed with ``ruleset``: the engine's own fold, deadlines ticked up to ``until``. Keyword
    and revision rules only flag (one-shot, never firing), so they and the speeches are left
    out: a third less work on the shipped history, the same answer."""
    last: dict[str, AlertTransition] = {}
    firing_kinds = RuleSet(rules=ruleset.rules, composite_rules=ruleset.composite_rules,
                           staleness_rules=ruleset.staleness_rules)
    engine = Engine(firing_kinds, prune_every=PRUNE_EVERY)
    observations = (f for f in facts if f.type in OBSERVATION_TYPES)
    for t in replay_events(engine, observations, until=until):
        if t.state in ("firing", "resolved"):
            last[t.rule] = t
    return _firing(last.values(), ruleset.by_id)


def recorded_firing(events: Iterable[Any]) -> tuple[FiringAlert, ...]:
    """What fires after the alert events the log recorded (``alert-firing``/``resolved``), rules
    read from the recorded ``rules-loaded`` events (to name the indicator and its unit)."""
    last: dict[str, AlertTransition] = {}
    rules: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for event in events:
        if event.type == RULES_LOADED:
            texts.update({r.hash: r.text for r in decode(event).rules})
        elif event.type in (ALERT_FIRING, ALERT_RESOLVED):
            t = decode(event)
            last[t.rule] = t
    for t in last.values():
        if t.rule_hash in texts:
            try:
                rules[t.rule] = rule_from_canonical(texts[t.rule_hash])
            except RuleError:           # a rule this version no longer reads: shown plainly
                pass
    return _firing(last.values(), rules)


def recorded_graces(events: Iterable[Any]) -> dict[str, timedelta]:
    """The staleness graces of the rule set the log last recorded (``rules-loaded``)."""
    last = None
    for event in events:
        if event.type == RULES_LOADED:
            last = event
    if last is None:
        return {}
    rules = []
    for text in decode(last).rules:
        try:
            rules.append(rule_from_canonical(text.text))
        except RuleError:
            continue
    return staleness_graces(RuleSet.of(rules))


def _firing(transitions: Iterable[AlertTransition], rules: Mapping[str, Any]) -> tuple[FiringAlert, ...]:
    alerts = [_alert(t, rules.get(t.rule)) for t in transitions if t.state == "firing"]
    return tuple(sorted(alerts, key=lambda a: (SEVERITY_ORDER.get(a.severity, 9), a.since, a.rule)))


def _alert(t: AlertTransition, rule: Any) -> FiringAlert:
    label, unit, op = "", None, ""
    if isinstance(rule, Rule):
        label, unit = indicator(rule.expr, rule.derived)
        unit = t.labels.get("unit") or unit          # a rule may say its unit as a label
        op = ">" if rule.direction == "above" else "<"
    if op and display.as_decimal(t.value) is not None and display.as_decimal(t.threshold) is not None:
        headline = f"{label} {display.quantity(t.value, unit)} {op} {display.quantity(t.threshold, unit)}"
    elif isinstance(rule, CompositeRule):
        headline = t.reason.split(" (", 1)[0]          # "3 of 9 member rules firing"
    else:
        headline = t.summary or t.reason
    return FiringAlert(rule=t.rule, severity=t.severity, since=t.date, known_at=t.evaluated_at,
                       value=t.value, threshold=t.threshold, indicator=label, unit=unit, op=op,
                       headline=headline, summary=t.summary, reason=t.reason)


def indicator(expr: str, derived: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """What a rule's expression measures, for people, and its unit: ``bp(sofr - iorb)`` is
    ("SOFR−IORB", "bp"), ``reserves / gdp * 100`` ("reserves/GDP", "ratio"), ``onrrp``
    ("ON RRP", "USD bn"); any other expression is named by its text, with the unit its series
    share when it only adds and subtracts them (else None: shown as a plain number). A derived
    series (``derived``: name -> expression, as the rule records them) is named by its name and
    has the unit of its expression (``effr_iorb_trend``: bp)."""
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        return expr, None
    return _label(node) or expr, _unit(node, derived or {})


def _label(node: ast.AST) -> str | None:
    match node:
        case ast.Call(func=ast.Name(id="bp"), args=[inner]):
            return _label(inner)
        case ast.Name(id=name) if name in SERIES:
            return SHORT_NAMES.get(name, name)
        case ast.Attribute(value=ast.Name(id=name), attr=attr) if name in SERIES:
            return f"{SHORT_NAMES.get(name, name)} {attr}"
        case ast.BinOp(left=left, op=ast.Sub(), right=right):
            a, b = _label(left), _label(right)
            return f"{a}{MINUS}{b}" if a and b else None
        case ast.BinOp(left=ast.BinOp(left=left, op=ast.Div(), right=right), op=ast.Mult(),
                       right=ast.Constant(value=100)):
            a, b = _label(left), _label(right)
            return f"{a}/{b}" if a and b else None
    return None


_SAME_UNIT_CALLS = {"change", "lag", "min", "max", "avg", "abs"}


def _unit(node: ast.AST, derived: Mapping[str, str], seen: frozenset[str] = frozenset()) -> str | None:
    match node:
        case ast.Call(func=ast.Name(id="bp")):
            return "bp"
        case ast.Name(id=name) if name in derived and name not in seen:
            try:
                inner = ast.parse(derived[name].strip(), mode="eval").body
            except SyntaxError:
                return None
            return _unit(inner, derived, seen | {name})
        case ast.Name(id=name) if name in SERIES:
            return SERIES[name].unit
        case ast.Attribute(value=ast.Name(id=name), attr=attr) if name in SERIES:
            band = SERIES[name].attribute_band(attr)
            return (band.unit if band is not None and band.unit else None) or SERIES[name].unit
        case ast.BinOp(left=ast.BinOp(op=ast.Div()), op=ast.Mult(), right=ast.Constant(value=100)):
            return "ratio"
        case ast.BinOp(left=left, op=ast.Add() | ast.Sub(), right=right):
            a, b = _unit(left, derived, seen), _unit(right, derived, seen)
            return a if a == b else None
        case ast.Call(func=ast.Name(id=name), args=[first, *_]) if name in _SAME_UNIT_CALLS:
            return _unit(first, derived, seen)
    return None


def status(now: datetime, *, series: tuple[SeriesStatus, ...], firing: tuple[FiringAlert, ...],
           alerts_from: str, rule_paths: Sequence[str] = (), owed: Sequence[Mapping[str, Any]] = (),
           log_has_alerts: bool = False, derived: tuple[DerivedStatus, ...] = (),
           gaps: tuple[DataGap, ...] = ()) -> Status:
    return Status(now=utc_text(now), alerts_from=alerts_from, rule_paths=tuple(rule_paths),
                  firing=firing, series=series, owed=tuple(owed), log_has_alerts=log_has_alerts,
                  derived=derived, gaps=gaps)


SPEECH_GAP = timedelta(days=90)   # Fed officials speak every week: a quarter without one is a gap


def data_gaps(ruleset: RuleSet, held: Iterable[str], latest_speech: str | None, now: datetime,
              sources: Mapping[str, str]) -> tuple[DataGap, ...]:
    """The series ``ruleset``'s threshold rules read that the log ``held`` no fact of, and the
    speeches when the newest is more than ``SPEECH_GAP`` before ``now`` (keyword rules have
    nothing to read). ``sources`` maps a series (and "speeches") to its live source name."""
    held = set(held)
    readers: dict[str, list[str]] = {}
    for rule in ruleset.rules:
        for series in sorted(rule.input_series):
            if series not in held:
                readers.setdefault(series, []).append(rule.id)
    gaps = [DataGap(series, tuple(rules), None, sources.get(series, SERIES[series].primary_source))
            for series, rules in sorted(readers.items())]
    if ruleset.keyword_rules:
        cutoff = (now - SPEECH_GAP).date().isoformat()
        if latest_speech is None or latest_speech < cutoff:
            gaps.append(DataGap("speeches", tuple(r.id for r in ruleset.keyword_rules), latest_speech,
                                sources.get("speeches", "speeches")))
    return tuple(gaps)


def derived_statuses(items: Sequence[DerivedSeries], data: SeriesData) -> tuple[DerivedStatus, ...]:
    """The newest value of each derived series computable from ``data`` (the facts known at
    ``now``), with its recent values; a series with no computable date is left out."""
    catalogue = catalogue_of(items)
    out = []
    for item in items:
        values = derived_values(item, catalogue, data, last=RECENT_POINTS)
        if values:
            date, value = values[-1]
            out.append(DerivedStatus(item.name, item.unit, item.display_unit, date, norm(value),
                                     item.description,
                                     tuple(norm(v) for _, v in values[-RECENT_POINTS:])))
    return tuple(out)


def tapped(events: Iterable[Any], fold: SeriesFold, data: SeriesData | None = None) -> Iterator[Any]:
    """``events`` unchanged, each shown to ``fold`` (and, given, added to ``data``, for the
    derived series) on the way: one pass feeds the engine, the series and the derived series."""
    for event in events:
        fold.apply(event)
        if data is not None and event.type in OBSERVATION_TYPES:
            data.add(event.payload, event.published_at)
        yield event


# ---- rows of named series (`watchdog series`) ----

@dataclass(frozen=True)
class SeriesRow:
    series: str
    date: str
    value: str
    published_at: str
    recorded_at: str
    source: str
    revision: int
    attributes: Mapping[str, str]


ROW_COLUMNS = ("series", "date", "value", "published_at", "recorded_at", "source")


def unknown_series(names: Iterable[str]) -> str | None:
    """The one-line error for names outside the catalogue, None when every name is known."""
    unknown = [n for n in names if n not in SERIES]
    if not unknown:
        return None
    listed = ", ".join(repr(n) for n in unknown)
    return f"unknown series {listed}; known: {', '.join(SERIES)}"


def series_rows(events: Iterable[Any], names: Sequence[str], *, since: str | None = None,
                until: str | None = None, revisions: bool = False) -> list[SeriesRow]:
    """The observations of ``names`` dated ``since``..``until`` (inclusive), in the order of
    ``names`` then date: the latest revision per date (the last in the log), or every revision
    (``revisions``), oldest first."""
    wanted = set(names)
    found: dict[tuple[str, str], list[SeriesRow]] = {}
    for event in events:
        if event.type not in OBSERVATION_TYPES:
            continue
        p = event.payload
        if p["series"] not in wanted or (since and p["date"] < since) or (until and p["date"] > until):
            continue
        row = SeriesRow(series=p["series"], date=p["date"], value=p["value"],
                        published_at=event.published_at, recorded_at=event.recorded_at,
                        source=p.get("source", ""), revision=int(p.get("revision", 0)),
                        attributes=dict(p.get("attributes", {})))
        found.setdefault((row.series, row.date), []).append(row)
    order = {name: i for i, name in enumerate(dict.fromkeys(names))}
    rows = []
    for key in sorted(found, key=lambda k: (order[k[0]], k[1])):
        kept = found[key]
        rows.extend(kept if revisions else kept[-1:])
    return rows


def attribute_columns(rows: Iterable[SeriesRow]) -> list[str]:
    """Every attribute the rows carry: the catalogue's order (p1, p25, p75, p99, volume) first,
    then the others by name."""
    names = {name for row in rows for name in row.attributes}
    first = [n for spec in SERIES.values() for n in spec.attributes if n in names]
    first = list(dict.fromkeys(first))
    return first + sorted(names - set(first))
