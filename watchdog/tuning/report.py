"""HTML report of a replay or backtest: one self-contained page (PNG charts inlined as base64 data
URIs, inline CSS, no script, no external URL), so it can be mailed or archived as one file.

What is charted, per rule kind (README "Replay report"):
- **threshold rules** (number expressions): one chart per *indicator*, the expression a rule
  evaluates (``bp(sofr - iorb)`` is charted as the SOFR−IORB spread in bp, ``reserves / gdp *
  100`` as the ratio), computed on every evaluation date with the engine's joins (market series
  on the date itself, step and as-of series from their latest value on or before it) from the
  final data (the latest revision of each value). Rules sharing an expression share its chart.
  A constant threshold is a solid horizontal line, a recovery level dashed, a calendar-dependent
  threshold (``above_on``) dotted and labelled with its terms; an ``only_on`` rule's line says
  so. Firing (▲) and resolved (▼) markers sit at the value the alert had when it was known,
  which for as-of ratios can differ from the final-data line (a GDP print published later).
- **condition expressions, composites, staleness, revision and keyword rules** have no indicator
  of their own to chart: they appear in the alert table only, and the page says so.
Episodes (objects with ``name``, ``start``, ``end``, ``kind``) are shaded on every chart.

Values are ``Decimal`` throughout watchdog; they become floats only here, at the plotting edge,
where a float decides nothing.
"""
from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date as Date
from decimal import Decimal
from typing import Any

import matplotlib

matplotlib.use("Agg")          # no display, no GUI toolkit: the report is rendered to bytes
from matplotlib.figure import Figure  # noqa: E402  (a Figure needs no pyplot global state)

from watchdog.engine.data import JoinedContext, SeriesData, split_name  # noqa: E402
from watchdog.model.events import AlertTransition  # noqa: E402
from watchdog.rules.expr import EvalError  # noqa: E402
from watchdog.rules.ruleset import Rule, RuleSet  # noqa: E402
from watchdog.model.timefmt import new_york_minute, parse_utc  # noqa: E402

MAX_POINTS = 1500              # per chart: min/max per bucket beyond this keeps every spike
EPISODE_COLOURS = ("#8e44ad", "#2980b9", "#16a085", "#d35400", "#7f8c8d")


@dataclass
class Indicator:
    expr: str
    rules: list[Rule]
    points: list[tuple[Date, Decimal]]


# ---- series data ----

def series_names(ruleset: RuleSet) -> set[str]:
    """The input names (``sofr``, ``sofr.p99``) the threshold rules read: what to collect."""
    return {name for rule in ruleset.rules for name in rule.compiled.names}


class SeriesCollector:
    """Collects the report's data from fact events as a replay streams them (pass it as
    ``replay(..., on_fact=collector)``) into the engine's own ``SeriesData`` (each date's latest
    revision wins, attributes such as ``sofr.p99`` kept on the observation), for the series the
    rules read only: it holds what the charts need and nothing else."""

    def __init__(self, names: set[str]):
        self._wanted = frozenset(split_name(name)[0] for name in names)
        self._data = SeriesData()

    def __call__(self, event: Any) -> None:
        if event.payload.get("series") in self._wanted:
            self._data.add(event.payload, event.published_at)

    def series(self) -> SeriesData:
        return self._data


def collect_series(events: Iterable[Any], names: set[str]) -> SeriesData:
    """Fact events (in publication order) -> the joined data of the series ``names`` read."""
    collector = SeriesCollector(names)
    for event in events:
        collector(event)
    return collector.series()


def indicator_points(rule: Rule, data: SeriesData) -> list[tuple[Date, Decimal]]:
    """The rule's expression on every date it is evaluated, read through the engine's join (a
    missing input or a short window leaves the date out, as in the engine)."""
    ctx = JoinedContext(data, rule.compiled.names, rule.drivers, rule.calendar)
    out = []
    for day in ctx.evaluation_dates():
        try:
            value = rule.compiled.evaluate_at(ctx, day)
        except EvalError:
            continue
        out.append((Date.fromisoformat(day), value))
    return out


def indicators(ruleset: RuleSet, data: SeriesData) -> list[Indicator]:
    """One indicator per distinct number expression of the threshold rules, in rule id order."""
    by_expr: dict[str, list[Rule]] = {}
    for rule in ruleset.rules:
        if rule.compiled.kind == "number":
            by_expr.setdefault(" ".join(rule.expr.split()), []).append(rule)
    return [Indicator(expr, rules, indicator_points(rules[0], data)) for expr, rules in by_expr.items()]


# ---- charts ----

def downsample(points: list[tuple[Date, Decimal]], limit: int = MAX_POINTS) -> list[tuple[Date, Decimal]]:
    """At most about ``limit`` points: each bucket keeps its lowest and highest value (in date
    order), so a one-day spike such as 2019-09-17 survives any zoom level."""
    if len(points) <= limit:
        return points
    size = -(-len(points) * 2 // limit)           # ceil: two points kept per bucket
    out: list[tuple[Date, Decimal]] = []
    for start in range(0, len(points), size):
        bucket = points[start:start + size]
        low, high = min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1])
        out += sorted({low, high})
    return out


def _threshold_lines(ax, rule: Rule, colour: str) -> None:
    """The rule's constant levels as horizontal lines (see the module docstring)."""
    op = ">" if rule.above is not None else "<"
    where = f" only on {', '.join(rule.only_on)}" if rule.only_on else ""
    ax.axhline(float(rule.threshold), color=colour, linewidth=1.2,
               label=f"{rule.id}: fires {op} {rule.threshold}{where}")
    recover = rule.recover_below if rule.above is not None else rule.recover_above
    if recover is not None:
        ax.axhline(float(recover), color=colour, linewidth=1, linestyle="--",
                   label=f"{rule.id}: resolves {'<' if op == '>' else '>'} {recover}")
    for term, level in {**rule.above_on, **rule.below_on}.items():
        ax.axhline(float(level), color=colour, linewidth=1, linestyle=":",
                   label=f"{rule.id}: fires {op} {level} on {term}")


def _markers(ax, ind: Indicator, transitions: Sequence[AlertTransition]) -> None:
    ids = {r.id for r in ind.rules}
    for state, marker, colour in (("firing", "^", "#c0392b"), ("resolved", "v", "#27ae60")):
        hits = [(Date.fromisoformat(t.date), float(t.value)) for t in transitions
                if t.rule in ids and t.state == state and t.value is not None]
        if hits:
            xs, ys = zip(*hits)
            ax.scatter(xs, ys, marker=marker, color=colour, s=36, zorder=5, label=f"{state} ({len(hits)})")


def _episodes(ax, episodes: Sequence[Any], lo: Date, hi: Date) -> None:
    kinds = sorted({str(getattr(e, "kind", "")) for e in episodes})
    for e in episodes:
        start, end = _as_date(e.start), _as_date(e.end)
        if end < lo or start > hi:
            continue
        colour = EPISODE_COLOURS[kinds.index(str(getattr(e, "kind", ""))) % len(EPISODE_COLOURS)]
        ax.axvspan(start, end, color=colour, alpha=0.15, linewidth=0)
        ax.annotate(str(e.name), xy=(start, 1), xycoords=("data", "axes fraction"), fontsize=7,
                    rotation=90, va="top", ha="right", color=colour)


def _as_date(value: Any) -> Date:
    return value if isinstance(value, Date) else Date.fromisoformat(str(value)[:10])


def chart_png(ind: Indicator, transitions: Sequence[AlertTransition], episodes: Sequence[Any]) -> bytes:
    """One indicator as a PNG: its line, its rules' levels, alert markers, shaded episodes."""
    fig = Figure(figsize=(12, 3.4), dpi=90)
    ax = fig.add_subplot()
    shown = downsample(ind.points)
    if shown:
        xs = [d for d, _ in shown]
        ax.plot(xs, [float(v) for _, v in shown], color="#34495e", linewidth=0.8, label=ind.expr)
        _episodes(ax, episodes, xs[0], xs[-1])
    else:
        ax.text(0.5, 0.5, "no evaluation date in the data", transform=ax.transAxes, ha="center")
        ax.set_xticks([])
    colours = ("#e67e22", "#c0392b", "#8e44ad", "#2c3e50")
    for i, rule in enumerate(ind.rules):
        _threshold_lines(ax, rule, colours[i % len(colours)])
    _markers(ax, ind, transitions)
    ax.grid(True, linewidth=0.3)
    # outside the axes, so it never hides a spike or a marker
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, borderaxespad=0)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# ---- the page ----

_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:16px;margin:28px 0 4px}code{background:#f4f4f4;padding:0 3px}
img{display:block;max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
tr.firing td.state{color:#c0392b;font-weight:bold}tr.resolved td.state{color:#27ae60}
.muted{color:#666}"""


def build_report(*, series: SeriesData, ruleset: RuleSet,
                 transitions: Sequence[AlertTransition], episodes: Sequence[Any] | None = None,
                 title: str = "watchdog replay", since: Date | None = None,
                 until: Date | None = None) -> str:
    """The whole report as one self-contained HTML string.

    :param series: the joined data of the series the rules read (``collect_series`` builds it
        from fact events; the engine's ``SeriesData``).
    :param transitions: the replay's transitions (pending ones are left out of the table).
    :param episodes: optional objects with ``name``, ``start``, ``end`` (dates or ISO text) and
        ``kind``, shaded on every chart and listed.
    :param since, until: chart only these dates (inclusive); indicators are still computed on
        all the data first, so windows are warm at ``since``.
    """
    episodes = list(episodes or [])
    shown = [t for t in transitions if t.state != "pending"]
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>",
             f"<p class=muted>Rule set {ruleset.hash[:12]}: {len(ruleset)} rules, {len(shown)} alert "
             f"transitions (firing, resolved, flagged). Charts use the final data; markers show "
             f"each alert's value when it was known.</p>"]
    for ind in indicators(ruleset, series):
        ind.points = [(d, v) for d, v in ind.points
                      if (since is None or d >= since) and (until is None or d <= until)]
        png = base64.b64encode(chart_png(ind, shown, episodes)).decode("ascii")
        rules = ", ".join(f"<code>{_e(r.id)}</code> ({_e(r.severity)})" for r in ind.rules)
        parts.append(f"<section class=indicator><h2><code>{_e(ind.expr)}</code></h2><p>{rules}; "
                     f"{len(ind.points)} evaluation dates</p><img alt=\"{_e(ind.expr)}\" "
                     f"src=\"data:image/png;base64,{png}\"></section>")
    parts.append(_uncharted(ruleset))
    if episodes:
        parts.append(_episode_table(episodes))
    parts.append(_alert_table(shown))
    parts.append("</body></html>")
    return "\n".join(parts)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _uncharted(ruleset: RuleSet) -> str:
    others = [(r.id, "condition") for r in ruleset.rules if r.compiled.kind != "number"]
    others += [(r.id, kind) for kind, rules in (("composite", ruleset.composite_rules),
               ("staleness", ruleset.staleness_rules), ("revision", ruleset.revision_rules),
               ("keyword", ruleset.keyword_rules)) for r in rules]
    if not others:
        return ""
    items = ", ".join(f"<code>{_e(rule_id)}</code> ({kind})" for rule_id, kind in others)
    return (f"<h2>Rules without a chart</h2><p>These have no indicator of their own to plot (a "
            f"composite follows other rules, staleness follows publication times, revision and "
            f"keyword rules flag single events): see the alert table. {items}</p>")


def _episode_table(episodes: Sequence[Any]) -> str:
    rows = "".join(f"<tr><td>{_e(e.name)}</td><td>{_e(getattr(e, 'kind', ''))}</td>"
                   f"<td>{_e(_as_date(e.start))}</td><td>{_e(_as_date(e.end))}</td></tr>" for e in episodes)
    return (f"<h2>Episodes</h2><table class=episodes><tr><th>name</th><th>kind</th><th>start</th>"
            f"<th>end</th></tr>{rows}</table>")


def _alert_table(transitions: Sequence[AlertTransition]) -> str:
    rows = []
    for t in transitions:
        known = new_york_minute(parse_utc(t.evaluated_at))
        rows.append(f"<tr class={_e(t.state)}><td>{_e(t.date)}</td><td class=state>{_e(t.state)}</td>"
                    f"<td>{_e(t.rule)}</td><td>{_e(t.severity)}</td><td>{_e(known)}</td>"
                    f"<td>{_e(t.value if t.value is not None else '')}</td>"
                    f"<td>{_e(t.threshold or '')}</td><td>{_e(t.summary or t.reason)}</td></tr>")
    return (f"<h2>Alerts</h2><table id=alerts><tr><th>date</th><th>state</th><th>rule</th>"
            f"<th>severity</th><th>known</th><th>value</th><th>threshold</th><th>summary</th></tr>"
            f"{''.join(rows)}</table>")
