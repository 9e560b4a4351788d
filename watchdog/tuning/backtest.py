"""Backtest scores: alert transitions (from ``replay`` or a sweep) against labelled episodes.

Pure: transitions and an ``EpisodeSet`` in, a ``BacktestResult`` out; no store, no clock.

Definitions (README "Backtests and sweeps" says the same in prose):

- **Alert**: one ``firing`` transition of a scored rule, open until its ``resolved``. Scored
  rules are the market rules — threshold and composite rules, of every severity (so the
  ``info`` selected-date rule counts). ``pending`` is not an alert; ``flagged`` one-shots
  (keyword and revision rules) and staleness rules are information about speeches and feeds,
  not a call on the market, and are not scored.
- **Known day**: the New York calendar day of the alert's ``known_at`` (its engine time: when it
  could first have been known). Every comparison below uses it, never the observation date, so
  a value published months late (M2) cannot "catch" an episode it could not have warned of.
- **Window** of a stress or selected-date episode: ``[start - lookback, end]``, ``lookback`` in
  business days of the file's calendar (default 10, SIFMA).
- **Caught**: a rule catches an episode when one of its alerts is *first known* inside the
  window. An alert already open when the window starts does not count (it warned of something
  earlier). The rule set as a whole catches an episode when any scored rule does.
- **Lead time**: business days from the known day of the first catching alert to the episode
  start: ``business_days_between(known_day, start)``; positive = known before the start, 0 =
  on the start day, negative = after it.
- **False alarm**: an alert first known inside a calm episode (``[start, end]``) and inside no
  window of an episode to catch. An alert known outside every labelled period is counted as
  ``outside``: neither right nor wrong, and not part of precision.
- **Precision** = alerts known inside some window ÷ (those + false alarms); **recall** =
  episodes caught ÷ stress and selected-date episodes. Both are None when undefined (0 ÷ 0).
- **Alert-days**: business days on which the rule is firing (from the known day of the firing,
  up to but excluding the known day of its resolution), counted inside the scored span — the
  first window start to the last episode end of the selected episodes. Overall: days on which
  at least one scored rule fires.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from statistics import median

from watchdog.market.calendar import add_business_days, business_days, business_days_between
from watchdog.tuning.episodes import Episode, EpisodeSet
from watchdog.model.events import AlertTransition
from watchdog.rules.ruleset import RuleSet
from watchdog.model.timefmt import NEW_YORK, parse_utc

OVERALL = "all rules"


@dataclass(frozen=True)
class Alert:
    """One firing of one rule, from its ``firing`` transition to its ``resolved`` (if any)."""
    rule: str
    severity: str
    date: str                       # observation date of the firing transition
    known_at: str                   # its engine time (UTC text)
    known_day: date                 # New York day of known_at
    value: str | None
    resolved_at: str | None = None
    resolved_day: date | None = None


@dataclass(frozen=True)
class Catch:
    """The first alert of a rule (or of the rule set) known inside an episode's window."""
    episode: str
    rule: str
    known_at: str
    known_day: date
    lead: int                       # business days before the episode start (negative: after)


@dataclass(frozen=True)
class Score:
    """How one rule (or the whole rule set, ``rule == OVERALL``) did on the episodes."""
    rule: str
    episodes: int                   # stress and selected-date episodes to catch
    catches: tuple[Catch, ...]      # one per caught episode, in episode order
    false_alarms: tuple[Alert, ...]
    matched: int                    # alerts known inside a window of an episode to catch
    outside: int                    # alerts known outside every labelled period
    alert_days: int

    @property
    def caught(self) -> int:
        return len(self.catches)

    @property
    def recall(self) -> Decimal | None:
        return Decimal(self.caught) / Decimal(self.episodes) if self.episodes else None

    @property
    def precision(self) -> Decimal | None:
        labelled = self.matched + len(self.false_alarms)
        return Decimal(self.matched) / Decimal(labelled) if labelled else None

    @property
    def median_lead(self) -> Decimal | None:
        return Decimal(median(Decimal(c.lead) for c in self.catches)) if self.catches else None


@dataclass(frozen=True)
class BacktestResult:
    """Everything a report needs: the episodes scored, each scored rule's transitions and
    alerts, and the scores per rule (id order) and overall."""
    episodes: EpisodeSet
    span: tuple[date, date] | None
    transitions: dict[str, tuple[AlertTransition, ...]]
    alerts: dict[str, tuple[Alert, ...]]
    rules: tuple[Score, ...]
    overall: Score
    windows: dict[str, tuple[date, date]] = field(default_factory=dict)

    def score_of(self, rule: str) -> Score:
        return self.overall if rule == OVERALL else next(s for s in self.rules if s.rule == rule)

    def combined(self, rules: Iterable[str], name: str) -> Score:
        """The score of a group of the scored rules taken together (as ``overall`` is for all):
        e.g. the rules a sweep changes."""
        alerts = [a for rule in sorted(rules) for a in self.alerts.get(rule, ())]
        return _score(name, alerts, self.episodes, self.windows, self.span)


def scored_rules(ruleset: RuleSet) -> tuple[str, ...]:
    """The market rules a backtest scores: threshold and composite rules."""
    return tuple(sorted([r.id for r in ruleset.rules] + [r.id for r in ruleset.composite_rules]))


def known_day(known_at: str) -> date:
    return parse_utc(known_at).astimezone(NEW_YORK).date()


def alerts_of(transitions: Iterable[AlertTransition]) -> tuple[Alert, ...]:
    """Pair each ``firing`` with the next ``resolved`` of the same rule (transitions of one rule,
    in replay order); pending and flagged transitions are not alerts."""
    out: list[Alert] = []
    open_alert: Alert | None = None
    for t in transitions:
        if t.state == "firing" and open_alert is None:
            open_alert = Alert(rule=t.rule, severity=t.severity, date=t.date, known_at=t.evaluated_at,
                               known_day=known_day(t.evaluated_at), value=t.value)
        elif t.state == "resolved" and open_alert is not None:
            out.append(_resolve(open_alert, t.evaluated_at))
            open_alert = None
    return tuple(out + ([open_alert] if open_alert else []))


def _resolve(alert: Alert, at: str) -> Alert:
    return replace(alert, resolved_at=at, resolved_day=known_day(at))


def backtest(transitions: Iterable[AlertTransition], episodes: EpisodeSet,
             rules: Iterable[str]) -> BacktestResult:
    """Score the transitions of ``rules`` (scored rule ids) against ``episodes``."""
    rules = tuple(sorted(rules))
    by_rule: dict[str, list[AlertTransition]] = {rule: [] for rule in rules}
    for t in transitions:
        if t.rule in by_rule:
            by_rule[t.rule].append(t)
    alerts = {rule: alerts_of(ts) for rule, ts in by_rule.items()}
    windows = {e.name: window(e, episodes) for e in episodes.episodes if e.to_catch}
    span = _span(episodes, windows)
    scores = tuple(_score(rule, alerts[rule], episodes, windows, span) for rule in rules)
    every = [a for rule in rules for a in alerts[rule]]
    overall = _score(OVERALL, every, episodes, windows, span)
    return BacktestResult(episodes=episodes, span=span, windows=windows, alerts=alerts,
                          transitions={rule: tuple(ts) for rule, ts in by_rule.items()},
                          rules=scores, overall=overall)


def window(episode: Episode, episodes: EpisodeSet) -> tuple[date, date]:
    """``[start - lookback business days, end]`` of an episode to catch (the episode's own
    lookback, else the file's)."""
    lookback = episodes.lookback if episode.lookback is None else episode.lookback
    return add_business_days(episodes.calendar, episode.start, -lookback), episode.end


def lead_days(calendar: str, known: date, start: date) -> int:
    """Business days from ``known`` to ``start``: positive when the alert came first."""
    return business_days_between(calendar, known, start)


def _span(episodes: EpisodeSet, windows: dict[str, tuple[date, date]]) -> tuple[date, date] | None:
    starts = [w[0] for w in windows.values()] + [e.start for e in episodes.episodes if not e.to_catch]
    ends = [e.end for e in episodes.episodes]
    return (min(starts), max(ends)) if starts else None


def _score(rule: str, alerts: list[Alert] | tuple[Alert, ...], episodes: EpisodeSet,
           windows: dict[str, tuple[date, date]], span: tuple[date, date] | None) -> Score:
    catches = []
    for episode in episodes.episodes:
        if episode.to_catch:
            lo, hi = windows[episode.name]
            inside = [a for a in alerts if lo <= a.known_day <= hi]
            if inside:
                first = min(inside, key=lambda a: (a.known_at, a.rule))
                catches.append(Catch(episode=episode.name, rule=first.rule, known_at=first.known_at,
                                     known_day=first.known_day,
                                     lead=lead_days(episodes.calendar, first.known_day, episode.start)))
    matched, false_alarms, outside = 0, [], 0
    calm = [(e.start, e.end) for e in episodes.episodes if not e.to_catch]
    for alert in alerts:
        if any(lo <= alert.known_day <= hi for lo, hi in windows.values()):
            matched += 1
        elif any(lo <= alert.known_day <= hi for lo, hi in calm):
            false_alarms.append(alert)
        else:
            outside += 1
    return Score(rule=rule, episodes=len(windows), catches=tuple(catches),
                 false_alarms=tuple(false_alarms), matched=matched, outside=outside,
                 alert_days=_alert_days(alerts, episodes.calendar, span))


def _alert_days(alerts: Iterable[Alert], calendar: str, span: tuple[date, date] | None) -> int:
    """Business days inside ``span`` on which at least one of ``alerts`` is firing."""
    if span is None:
        return 0
    days: set[date] = set()
    for alert in alerts:
        start = max(alert.known_day, span[0])
        stop = span[1] if alert.resolved_day is None else min(span[1], alert.resolved_day - timedelta(days=1))
        if start <= stop:
            days.update(business_days(calendar, start, stop))
    return len(days)


# ---- text tables (the CLI prints these; a report may build its own from the result) ----

def fmt_ratio(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.quantize(Decimal('0.01'))}"


def fmt_lead(score: Score) -> str:
    """``+6 (+2..+9)``: the median lead and its range, in business days."""
    if not score.catches:
        return "-"
    leads = [c.lead for c in score.catches]
    middle = score.median_lead.normalize() if score.median_lead else Decimal(0)
    text = f"{middle:+f}"
    return text if len(leads) == 1 else f"{text} ({min(leads):+d}..{max(leads):+d})"


SCORE_HEADER = ("rule", "caught", "recall", "lead bd", "false alarms", "precision", "alert-days", "outside")


def score_cells(score: Score) -> tuple[str, ...]:
    return (score.rule, f"{score.caught}/{score.episodes}", fmt_ratio(score.recall), fmt_lead(score),
            str(len(score.false_alarms)), fmt_ratio(score.precision), str(score.alert_days), str(score.outside))


def table(header: tuple[str, ...], rows: list[tuple[str, ...]], left: int = 1) -> str:
    """The first ``left`` columns (text) left-aligned, numbers right-aligned, two spaces apart."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(w) if i < left else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_scores(result: BacktestResult) -> str:
    rows = [score_cells(s) for s in result.rules if s.catches or s.false_alarms or s.matched or s.outside]
    return table(SCORE_HEADER, rows + [score_cells(result.overall)])


def render_episodes(result: BacktestResult) -> str:
    """One line per episode: what caught it first and how early, or the false alarms in it."""
    header = ("episode", "kind", "split", "window", "first alert", "known", "lead bd")
    catches = {c.episode: c for c in result.overall.catches}
    rows = []
    for e in result.episodes.episodes:
        lo, hi = result.windows.get(e.name, (e.start, e.end))
        if e.to_catch:
            c = catches.get(e.name)
            first = (c.rule, c.known_day.isoformat(), f"{c.lead:+d}") if c else ("missed", "-", "-")
        else:
            n = sum(1 for a in result.overall.false_alarms if e.start <= a.known_day <= e.end)
            first = ("quiet" if n == 0 else f"{n} false alarms", "-", "-")
        rows.append((e.name, e.kind, e.split, f"{lo}..{hi}", *first))
    return table(header, rows, left=6)


def render(result: BacktestResult) -> str:
    eps = result.episodes
    span = f"{result.span[0]}..{result.span[1]}" if result.span else "-"
    head = (f"backtest: {len(eps.episodes)} episodes ({sum(e.to_catch for e in eps.episodes)} to catch), "
            f"lookback {eps.lookback}bd, {eps.calendar} business days, scored span {span}")
    return f"{head}\n\n{render_episodes(result)}\n\n{render_scores(result)}\n"


# ---- JSON (backtest --json): plain data, Decimals kept for the caller to write ----

def _number(value: Decimal | None) -> Decimal | int | None:
    """Ratios and medians rounded to 4 places (1/3 has no exact decimal), integral as int."""
    if value is None:
        return None
    text = f"{value.quantize(Decimal('0.0001')).normalize():f}"
    return int(text) if "." not in text else Decimal(text)


def score_json(score: Score) -> dict:
    return {"rule": score.rule, "episodes": score.episodes, "caught": score.caught,
            "recall": _number(score.recall), "precision": _number(score.precision),
            "median_lead": _number(score.median_lead), "false_alarms": len(score.false_alarms),
            "matched": score.matched, "outside": score.outside, "alert_days": score.alert_days,
            "catches": [{"episode": c.episode, "rule": c.rule, "known_at": c.known_at, "lead": c.lead}
                        for c in score.catches],
            "false_alarm_alerts": [{"rule": a.rule, "date": a.date, "known_at": a.known_at}
                                   for a in score.false_alarms]}


def result_json(result: BacktestResult) -> dict:
    """The whole result as plain JSON data (``backtest --json``)."""
    eps = result.episodes
    return {"lookback": eps.lookback, "calendar": eps.calendar,
            "span": [d.isoformat() for d in result.span] if result.span else None,
            "episodes": [{"name": e.name, "kind": e.kind, "split": e.split, "start": e.start.isoformat(),
                          "end": e.end.isoformat(), "window": [d.isoformat() for d in result.windows[e.name]]
                          if e.name in result.windows else None} for e in eps.episodes],
            "rules": [score_json(s) for s in result.rules], "overall": score_json(result.overall)}
