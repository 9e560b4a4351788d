"""HTML report of a replay or backtest: one self-contained page (PNG charts inlined as base64 data
URIs, inline CSS, no script, no external URL), so it can be mailed or archived as one file.

What is charted, per rule kind (README "Replay report"):
- **threshold rules** (number expressions): one chart per *indicator*, the expression a rule
  evaluates (``bp(sofr - iorb)`` is charted as the SOFR−IORB spread in bp, ``reserves / gdp *
  100`` as the ratio), computed on every evaluation date with the engine's joins (market series
  on the date itself, step and as-of series from their latest value on or before it) from the
  final data (the latest revision of each value). Rules sharing an expression share its chart.
  The title is a readable name of the expression (``SOFR − IORB``), the raw expression its
  subtitle; the unit (``bp``, ``USD bn``, ``%``) is inferred from the expression and the series
  catalogue and labels the y axis and every value shown.
  A constant threshold is a solid horizontal line, a recovery level (hysteresis) dashed, a
  calendar-dependent threshold (``above_on``) dotted and labelled with its terms; an ``only_on``
  rule's line says so. Firing (▲) and resolved (▼) markers sit at the value the alert had when
  it was known, which for as-of ratios can differ from the final-data line.
- Charts are grouped in **sections by unit**; the charts of a section share one time axis
  (the section's first to last date), and each has a zoom panel on the section's last 18 months.
  An indicator with nothing to draw says why (an input with no values in the log, inputs that
  never overlap, nothing in the period) instead of drawing an empty frame.
- **derived series** (``[[series]]`` tables, ``rules/series.toml``): each has a chart, computed
  the same way (``engine.data.derived_values``) in its declared unit, whether or not a rule reads
  it; a rule whose expression is a derived series' name shares that chart.
- **condition expressions, composites, staleness, revision and keyword rules** have no indicator
  of their own to chart: they appear in the alert table only, and the page says so.
Episodes (objects with ``name``, ``start``, ``end``, ``kind``) are shaded on every chart and listed.
The alert table pairs each rule's transitions into alert episodes (fired, resolved, peak,
duration), one ``<details>`` per rule, filterable by severity with CSS alone.

Values are ``Decimal`` throughout watchdog; they become floats only here, at the plotting edge,
where a float decides nothing. Every number and time a person reads goes through
``watchdog.model.display``.
"""
from __future__ import annotations

import ast
import base64
import html
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import timedelta
from decimal import Decimal
from typing import Any

import matplotlib

matplotlib.use("Agg")          # no display, no GUI toolkit: the report is rendered to bytes
from matplotlib import dates as mdates  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402  (a Figure needs no pyplot global state)
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from watchdog.engine.data import JoinedContext, SeriesData, derived_values, split_name  # noqa: E402
from watchdog.market.series import SERIES  # noqa: E402
from watchdog.model.display import duration, new_york_time, plain, quantity  # noqa: E402
from watchdog.model.events import AlertTransition  # noqa: E402
from watchdog.rules.expr import EvalError  # noqa: E402
from watchdog.rules.derived import DerivedSeries, catalogue_of  # noqa: E402
from watchdog.rules.ruleset import Rule, RuleSet  # noqa: E402

MAX_POINTS = 1500              # per chart: min/max per bucket beyond this keeps every spike
ZOOM_DAYS = 548                # the zoom panel: the last 18 months of the section
EPISODE_COLOURS = {"stress": "#c0392b", "selected-date": "#d35400", "calm": "#16a085"}
OTHER_EPISODE_COLOUR = "#7f8c8d"
LEVEL_COLOURS = ("#e67e22", "#8e44ad", "#2980b9", "#2c3e50")

# Sections of the report, in order: the unit (watchdog.model.display.quantity's) and its heading.
SECTIONS = (("bp", "Spreads", "basis points (bp)"),
            ("%", "Rates", "percent a year (%)"),
            ("USD bn", "Amounts", "USD bn"),
            ("USD bn/month", "Monthly amounts", "USD bn a month"),
            ("ratio", "Ratios", "percent (%)"),
            ("days", "Days", "days"),
            ("index", "Indexes", "index points"),
            ("", "Other indicators", "value"))
AXIS_LABELS = {unit: axis for unit, _, axis in SECTIONS}

# Readable names of series (and of attributes) for chart titles.
NAMES = {"sofr": "SOFR", "tgcr": "TGCR", "bgcr": "BGCR", "effr": "EFFR", "obfr": "OBFR",
         "iorb": "IORB", "onrrp_rate": "ON RRP rate", "srf_rate": "SRF rate",
         "fftarget_upper": "top of the target range", "fftarget_lower": "bottom of the target range",
         "onrrp": "ON RRP take-up", "srf": "SRF take-up", "reserves": "reserves",
         "fed_assets": "Fed assets", "primary_credit": "primary credit", "tga": "TGA",
         "tga_weekly_avg": "TGA (week average)", "m2": "M2", "gdp": "GDP",
         "ofr_fsi": "OFR Financial Stress Index", "qt_cap_treasury": "QT cap (Treasuries)",
         "qt_cap_mbs": "QT cap (MBS)"}
ATTRIBUTES = {"p1": "1st percentile", "p25": "25th percentile", "p75": "75th percentile",
              "p99": "99th percentile", "volume": "volume", "funding": "funding category"}


@dataclass
class Indicator:
    expr: str
    rules: list[Rule]
    points: list[tuple[Date, Decimal]]
    unit: str = ""
    title: str = ""
    why_empty: str = ""
    all_points: list[tuple[Date, Decimal]] = field(default_factory=list)
    description: str = ""           # a derived series' own description
    names: frozenset[str] = frozenset()   # its inputs, when no rule says (a derived series)


# ---- series data ----

def series_names(ruleset: RuleSet) -> set[str]:
    """The input names (``sofr``, ``sofr.p99``) the threshold rules and the derived series read:
    what to collect."""
    catalogue = catalogue_of(ruleset.series)
    return ({name for rule in ruleset.rules for name in rule.compiled.names}
            | {name for item in ruleset.series for name in item.compiled(catalogue).names})


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
    """One indicator per distinct number expression of the threshold rules, in rule id order,
    with its unit and readable title."""
    by_expr: dict[str, list[Rule]] = {}
    for rule in ruleset.rules:
        if rule.compiled.kind == "number":
            by_expr.setdefault(" ".join(rule.expr.split()), []).append(rule)
    derived = {item.name: item for item in ruleset.series}
    catalogue = catalogue_of(ruleset.series)
    out = []
    for expr, rules in by_expr.items():
        points = indicator_points(rules[0], data)
        item = derived.pop(expr, None)
        if item is not None:
            out.append(_derived_indicator(item, rules, points, item.compiled(catalogue).names))
        else:
            out.append(Indicator(expr, rules, points, unit=expression_unit(expr),
                                 title=readable_name(expr), all_points=points))
    for item in derived.values():     # derived series no rule reads by its bare name
        points = [(Date.fromisoformat(d), v) for d, v in derived_values(item, catalogue, data)]
        out.append(_derived_indicator(item, [], points, item.compiled(catalogue).names))
    return out


# A derived series' unit -> the report's section: "%" there is a share (ratio), not a rate.
_DERIVED_UNITS = {"bp": "bp", "%": "ratio", "USD bn": "USD bn", "USD bn/month": "USD bn/month",
                  "index": "index", "days": "days"}  # like DerivedSeries.display_unit, with sections


def _derived_indicator(item: DerivedSeries, rules: list[Rule], points: list[tuple[Date, Decimal]],
                       names: frozenset[str]) -> Indicator:
    return Indicator(item.name, rules, points, unit=_DERIVED_UNITS.get(item.unit, ""),
                     title=f"{item.name} (derived: {readable_name(item.expr)})",
                     all_points=points, description=item.description, names=names)


# ---- units and names, from the expression and the series catalogue ----

def _series_unit(name: str) -> str | None:
    series, attr = split_name(name)
    spec = SERIES.get(series)
    if spec is None:
        return ""
    return "USD bn" if attr == "volume" else spec.unit


def expression_unit(expr: str) -> str:
    """The unit an expression's value is in, as ``display.quantity`` knows them: ``bp`` for
    ``bp(…)``, a series' own unit (``%``, ``USD bn``) through sums, differences, windows and lags,
    ``ratio`` (a percentage) for ``a / b * 100`` and ``pct_change``; ``""`` when it cannot say."""
    try:
        return _unit(ast.parse(expr, mode="eval").body) or ""
    except SyntaxError:
        return ""


def _unit(node: ast.AST) -> str | None:
    """None: a bare number (takes the unit of what it is combined with)."""
    if isinstance(node, ast.Constant):
        return None
    if isinstance(node, ast.Name):
        return _series_unit(node.id) if node.id in SERIES else ""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return _series_unit(f"{node.value.id}.{node.attr}")
    if isinstance(node, ast.UnaryOp):
        return _unit(node.operand)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name, args = node.func.id, [a for a in node.args if not isinstance(a, ast.Constant)
                                    or not isinstance(a.value, str)]
        if name == "bp":
            return "bp"
        if name == "pct_change":
            return "ratio"
        if name == "days_since":
            return "days"
        if name == "zscore":
            return ""
        units = {_unit(a) for a in args} - {None}
        return units.pop() if len(units) == 1 else ""
    if isinstance(node, ast.BinOp):
        left, right = _unit(node.left), _unit(node.right)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            units = {left, right} - {None}
            return units.pop() if len(units) == 1 else ("" if units else None)
        if isinstance(node.op, ast.Mult):
            if isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.Div) and right is None:
                return "ratio" if _is_hundred(node.right) else ""
            return right if left is None else left if right is None else ""
        if isinstance(node.op, ast.Div):
            return left if right is None else ""
    return ""


def _is_hundred(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == 100


def readable_name(expr: str) -> str:
    """A title for an expression: ``bp(sofr - iorb)`` -> ``SOFR − IORB``, ``reserves / gdp * 100``
    -> ``Reserves as % of GDP``; the raw expression when it has no simple reading."""
    try:
        text = _name(ast.parse(expr, mode="eval").body)
    except (SyntaxError, ValueError):
        return expr
    return text[:1].upper() + text[1:]


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return NAMES.get(node.id, node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{NAMES.get(node.value.id, node.value.id)} {ATTRIBUTES.get(node.attr, node.attr)}"
    if isinstance(node, ast.Constant) and not isinstance(node.value, str):
        return str(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return f"−{_name(node.operand)}"
    if isinstance(node, ast.BinOp):
        if (isinstance(node.op, ast.Mult) and _is_hundred(node.right) and isinstance(node.left, ast.BinOp)
                and isinstance(node.left.op, ast.Div)):
            return f"{_name(node.left.left)} as % of {_name(node.left.right)}"
        symbol = {ast.Add: "+", ast.Sub: "−", ast.Mult: "×", ast.Div: "/"}.get(type(node.op))
        if symbol:
            return f"{_name(node.left)} {symbol} {_name(node.right)}"
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        symbol = {ast.Gt: ">", ast.GtE: "≥", ast.Lt: "<", ast.LtE: "≤"}.get(type(node.ops[0]))
        if symbol:
            return f"{_name(node.left)} {symbol} {_name(node.comparators[0])}"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        fn, args = node.func.id, node.args
        window = args[1].value if len(args) == 2 and isinstance(args[1], ast.Constant) else None
        span = _span(window) if isinstance(window, str) else ""
        if fn == "bp" and len(args) == 1:
            return _name(args[0])
        if fn == "lag" and window is not None:
            return f"{_name(args[0])} {_span(f'{window}bd')} earlier"
        if span and fn == "count":
            return f"days with {_name(args[0])} in the last {window[:-2]} business days"
        if span and fn in WINDOW_WORDS:
            return WINDOW_WORDS[fn].format(x=_name(args[0]), span=span)
        if fn in ("min", "max") and not span:
            word = "lower" if fn == "min" else "higher"
            return f"the {word} of " + " and ".join(_name(arg) for arg in args)
        if fn == "days_since" and len(args) == 1:
            return f"days since the latest {_name(args[0])}"
        if fn == "share_at_or_above" and len(args) == 2:
            return f"share of {_name(args[0])} volume at or above {_name(args[1])}"
    raise ValueError(f"no reading for {ast.dump(node)}")


WINDOW_WORDS = {"change": "{span} change in {x}", "pct_change": "{span} % change in {x}",
                "min": "{span} low of {x}", "max": "{span} high of {x}",
                "avg": "{span} average of {x}", "stdev": "{span} standard deviation of {x}",
                "zscore": "{span} z-score of {x}", "pct_rank": "rank of {x} in its {span} range"}


def _span(window: Any) -> str:
    """``"5bd"`` -> ``5-business-day``; anything else: empty."""
    if isinstance(window, str) and window.endswith("bd") and window[:-2].isdigit():
        return f"{window[:-2]}-business-day"
    if isinstance(window, int):
        return f"{window}-business-day"
    return ""


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


def levels(rule: Rule, unit: str) -> list[tuple[str, Decimal, str]]:
    """The rule's constant levels as (style, level, label): ``fire`` (solid), ``recover``
    (dashed, the hysteresis line), ``term`` (dotted, a calendar threshold)."""
    above = rule.above is not None
    op = "above" if above else "below"
    where = f" on {', '.join(t.replace('_', ' ') for t in rule.only_on)} only" if rule.only_on else ""
    out = [("fire", rule.threshold, f"{rule.id}: fires {op} {quantity(rule.threshold, unit)}{where}")]
    recover = rule.recover_below if above else rule.recover_above
    if recover is not None:
        out.append(("recover", recover, f"{rule.id}: resolves {'below' if above else 'above'} "
                                        f"{quantity(recover, unit)}"))
    for term, level in {**rule.above_on, **rule.below_on}.items():
        out.append(("term", level, f"{rule.id}: fires {op} {quantity(level, unit)} on {term.replace('_', ' ')}"))
    return out


_STYLES = {"fire": ("-", 1.3), "recover": ("--", 1.0), "term": (":", 1.2)}


def _draw_levels(ax, ind: Indicator) -> None:
    for i, rule in enumerate(ind.rules):
        colour = LEVEL_COLOURS[i % len(LEVEL_COLOURS)]
        for style, level, label in levels(rule, ind.unit):
            line, width = _STYLES[style]
            ax.axhline(float(level), color=colour, linewidth=width, linestyle=line, label=label)


def _markers(ax, ind: Indicator, transitions: Sequence[AlertTransition], lo: Date, hi: Date) -> None:
    ids = {r.id for r in ind.rules}
    for state, marker, colour in (("firing", "^", "#c0392b"), ("resolved", "v", "#27ae60")):
        hits = [(Date.fromisoformat(t.date), float(t.value)) for t in transitions
                if t.rule in ids and t.state == state and t.value is not None
                and lo <= Date.fromisoformat(t.date) <= hi]
        if hits:
            xs, ys = zip(*hits)
            ax.scatter(xs, ys, marker=marker, color=colour, s=34, zorder=5, label=f"{state} ({len(hits)})")


def _episode_colour(episode: Any) -> str:
    return EPISODE_COLOURS.get(str(getattr(episode, "kind", "")), OTHER_EPISODE_COLOUR)


def _episodes(ax, episodes: Sequence[Any], lo: Date, hi: Date, label: bool) -> None:
    for e in episodes:
        start, end = _as_date(e.start), _as_date(e.end)
        if end < lo or start > hi:
            continue
        colour = _episode_colour(e)
        # at least three days wide, so a one-day turn is visible on a 20-year axis
        ax.axvspan(start, max(end, start + timedelta(days=3)), color=colour, alpha=0.16, linewidth=0)
        if label:
            ax.annotate(str(e.name), xy=(max(start, lo), 1), xycoords=("data", "axes fraction"),
                        fontsize=6.5, rotation=90, va="top", ha="right", color=colour)


def _as_date(value: Any) -> Date:
    return value if isinstance(value, Date) else Date.fromisoformat(str(value)[:10])


def _tick_formatter(unit: str) -> FuncFormatter:
    def fmt(value: float, _pos: Any) -> str:
        return quantity(Decimal(f"{float(value):.6f}").normalize(), unit)
    return FuncFormatter(fmt)


def _ylim(ax, values: list[float], ind: Indicator) -> None:
    lines = [float(level) for rule in ind.rules for _, level, _ in levels(rule, ind.unit)]
    everything = values + lines
    if not everything:
        return
    low, high = min(everything), max(everything)
    pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
    ax.set_ylim(low - pad, high + pad)


def _panel(ax, ind: Indicator, points: list[tuple[Date, Decimal]], transitions: Sequence[AlertTransition],
           episodes: Sequence[Any], lo: Date, hi: Date, label_episodes: bool) -> None:
    shown = downsample(points)
    if shown:
        ax.plot([d for d, _ in shown], [float(v) for _, v in shown], color="#34495e", linewidth=0.8,
                label=ind.title)
    _episodes(ax, episodes, lo, hi, label_episodes)
    _draw_levels(ax, ind)
    _markers(ax, ind, transitions, lo, hi)
    _ylim(ax, [float(v) for _, v in shown], ind)
    ax.set_xlim(lo, hi)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.yaxis.set_major_formatter(_tick_formatter(ind.unit))
    ax.tick_params(labelsize=8)
    ax.grid(True, linewidth=0.3)


def chart_png(ind: Indicator, transitions: Sequence[AlertTransition], episodes: Sequence[Any],
              axis: tuple[Date, Date] | None = None) -> bytes:
    """One indicator as a PNG: the section's whole time axis (``axis``) on the left, its last 18
    months on the right; its line, its rules' levels, alert markers, shaded episodes; the y axis
    labelled with the unit."""
    lo, hi = axis or (ind.points[0][0], ind.points[-1][0])
    if hi - lo < timedelta(days=2):          # one date: a few days either side, not a singular axis
        lo, hi = lo - timedelta(days=3), hi + timedelta(days=3)
    zoom_lo = max(lo, hi - timedelta(days=ZOOM_DAYS))
    fig = Figure(figsize=(12, 3.3), dpi=90)
    grid = fig.add_gridspec(1, 2, width_ratios=(2.3, 1), wspace=0.18)
    full, zoom = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    _panel(full, ind, ind.points, transitions, episodes, lo, hi, label_episodes=False)
    recent = [(d, v) for d, v in ind.points if d >= zoom_lo]
    _panel(zoom, ind, recent, transitions, episodes, zoom_lo, hi, label_episodes=True)
    full.set_ylabel(AXIS_LABELS.get(ind.unit, "value"), fontsize=8)
    full.set_title(f"{lo.isoformat()} to {hi.isoformat()}", fontsize=8, loc="left", color="#555")
    zoom.set_title(f"last 18 months: from {zoom_lo.isoformat()}", fontsize=8, loc="left", color="#555")
    handles, labels = full.get_legend_handles_labels()
    kinds = sorted({str(getattr(e, "kind", "")) for e in episodes
                    if _as_date(e.end) >= lo and _as_date(e.start) <= hi})
    handles += [Patch(color=EPISODE_COLOURS.get(k, OTHER_EPISODE_COLOUR), alpha=0.3) for k in kinds]
    labels += [f"{k} episode" for k in kinds]
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)) or 1, fontsize=7, frameon=False)
    rows = -(-len(labels) // 4)
    fig.subplots_adjust(left=0.075, right=0.99, top=0.9, bottom=0.12 + 0.065 * rows)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def why_empty(ind: Indicator, data: SeriesData, since: Date | None, until: Date | None,
              as_of: str | None = None) -> str:
    """Why an indicator has no value to draw, in words: an input with no values in the log (by
    ``as_of``, when the replay was cut), inputs that never overlap, or nothing in the period."""
    log = f"published by {as_of} in this log" if as_of else "in this log"
    names = sorted(ind.names or ind.rules[0].compiled.names)
    missing = [name for name in names if not data.dates.get(split_name(name)[0])]
    if missing:
        return f"no values of {', '.join(missing)} {log}"
    spans = {name: (data.dates[split_name(name)[0]][0], data.dates[split_name(name)[0]][-1]) for name in names}
    if not ind.all_points:
        latest_start = max(spans, key=lambda n: spans[n][0])
        ranges = "; ".join(f"{name} from {lo} to {hi}" for name, (lo, hi) in spans.items())
        return (f"no date on which every input has a value (no values of {latest_start} before "
                f"{spans[latest_start][0]} {log}; {ranges})")
    first, last = ind.all_points[0][0], ind.all_points[-1][0]
    period = " ".join(x for x in (f"from {since}" if since else "", f"to {until}" if until else "") if x)
    return f"no evaluation date {period} (its values run from {first} to {last} {log})"


# ---- alert episodes: transitions paired per rule ----

@dataclass
class AlertEpisode:
    """One alert of one rule: fired (None when it fired before the period shown), resolved
    (None while still firing at the end), the worst value in between, or one flag."""
    rule: str
    severity: str
    fired: AlertTransition | None = None
    resolved: AlertTransition | None = None
    flag: AlertTransition | None = None
    peak: Decimal | None = None

    @property
    def first(self) -> AlertTransition:
        return self.fired or self.flag or self.resolved     # type: ignore[return-value]


def alert_episodes(transitions: Sequence[AlertTransition]) -> dict[str, list[AlertEpisode]]:
    """Per rule, in order: each firing paired with the resolution that follows it; a flag (keyword
    and revision rules) is an episode of its own; pending transitions are not alerts."""
    out: dict[str, list[AlertEpisode]] = {}
    open_: dict[str, AlertEpisode] = {}
    for t in transitions:
        if t.state == "pending":
            continue
        episodes = out.setdefault(t.rule, [])
        if t.state == "flagged":
            episodes.append(AlertEpisode(t.rule, t.severity, flag=t))
        elif t.state == "firing":
            open_[t.rule] = episode = AlertEpisode(t.rule, t.severity, fired=t)
            episodes.append(episode)
        elif t.state == "resolved":
            episode = open_.pop(t.rule, None)
            if episode is None:
                episodes.append(AlertEpisode(t.rule, t.severity, resolved=t))
            else:
                episode.resolved = t
    return out


def _peak(episode: AlertEpisode, ind: Indicator | None, rule: Any) -> Decimal | None:
    """The worst value from firing to resolution: the indicator's (final data) and the alerts'
    own values, highest for an ``above`` rule, lowest for a ``below`` rule."""
    values = [Decimal(t.value) for t in (episode.fired, episode.resolved, episode.flag)
              if t is not None and t.value is not None]
    if ind is not None and episode.fired is not None:
        start = Date.fromisoformat(episode.fired.date)
        end = Date.fromisoformat(episode.resolved.date) if episode.resolved else Date.max
        values += [v for d, v in ind.all_points if start <= d < end] if episode.resolved else \
                  [v for d, v in ind.all_points if d >= start]
    if not values:
        return None
    return min(values) if getattr(rule, "below", None) is not None else max(values)


# ---- the page ----

_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1120px}
h1{font-size:22px}h2{font-size:18px;margin:34px 0 4px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:22px 0 0}code{background:#f4f4f4;padding:0 3px}
.sub{margin:0;color:#555;font-size:12px}.desc{margin:2px 0 4px;font-size:13px}
img{display:block;max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;font-size:12px;margin:4px 0 8px}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}th{background:#f2f4f7}
.num{text-align:right;white-space:nowrap}.empty{color:#8a4b00;background:#fff7e6;border:1px solid #f0d9a8;padding:8px}
.muted{color:#666}.firing{color:#c0392b;font-weight:bold}.resolved{color:#27ae60}
details{border:1px solid #ddd;border-radius:4px;margin:4px 0;padding:2px 8px;background:#fff}
summary{cursor:pointer}.sev-critical{border-left:4px solid #c0392b}.sev-warning{border-left:4px solid #e67e22}
.sev-info{border-left:4px solid #2980b9}.filter label{margin-right:12px}
body:has(#only-critical:checked) details.rule:not(.sev-critical),
body:has(#only-warning:checked) details.rule:not(.sev-warning),
body:has(#only-info:checked) details.rule:not(.sev-info),
body:has(#only-open:checked) details.rule:not(.open){display:none}"""


def build_report(*, series: SeriesData, ruleset: RuleSet,
                 transitions: Sequence[AlertTransition], episodes: Sequence[Any] | None = None,
                 title: str = "watchdog replay", since: Date | None = None,
                 until: Date | None = None, as_of: str | None = None) -> str:
    """The whole report as one self-contained HTML string.

    :param series: the joined data of the series the rules read (``collect_series`` builds it
        from fact events; the engine's ``SeriesData``).
    :param transitions: the replay's transitions (pending ones are left out of the table).
    :param episodes: optional objects with ``name``, ``start``, ``end`` (dates or ISO text) and
        ``kind`` (and ``description``), shaded on every chart and listed.
    :param since, until: chart only these dates (inclusive); indicators are still computed on
        all the data first, so windows are warm at ``since``.
    :param as_of: the replay's cut-off, named where a chart is empty for want of data.
    """
    episodes = list(episodes or [])
    shown = [t for t in transitions if t.state != "pending"]
    found = indicators(ruleset, series)
    for ind in found:
        ind.points = [(d, v) for d, v in ind.all_points
                      if (since is None or d >= since) and (until is None or d <= until)]
        if not ind.points:
            ind.why_empty = why_empty(ind, series, since, until, as_of)
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>",
             f"<p class=muted>Rule set {ruleset.hash[:12]}: {len(ruleset)} rules, {len(shown)} alert "
             f"transitions (firing, resolved, flagged). Charts use the final data (the latest revision "
             f"of each value); ▲ firing and ▼ resolved markers show each alert's value when it was "
             f"known. Charts of a section share one time axis; the right-hand panel zooms on its last "
             f"18 months. Shaded: the labelled episodes below.</p>"]
    for unit, heading, axis_label in SECTIONS:
        members = [ind for ind in found if (ind.unit or "") == unit]
        if members:
            parts.append(_section(heading, axis_label, members, shown, episodes))
    parts.append(_uncharted(ruleset))
    if episodes:
        parts.append(_episode_table(episodes))
    parts.append(_alert_table(shown, ruleset, {r.id: ind for ind in found for r in ind.rules}))
    parts.append("</body></html>")
    return "\n".join(parts)


def _section(heading: str, axis_label: str, members: list[Indicator],
             transitions: Sequence[AlertTransition], episodes: Sequence[Any]) -> str:
    drawn = [ind for ind in members if ind.points]
    axis = (min(ind.points[0][0] for ind in drawn), max(ind.points[-1][0] for ind in drawn)) if drawn else None
    span = f": one time axis, {axis[0]} to {axis[1]}" if axis else ""
    out = [f"<section class=unit><h2>{_e(heading)}, in {_e(axis_label)}{_e(span)}</h2>"]
    for ind in members:
        out.append(_indicator_html(ind, transitions, episodes, axis))
    out.append("</section>")
    return "\n".join(out)


def _indicator_html(ind: Indicator, transitions: Sequence[AlertTransition], episodes: Sequence[Any],
                    axis: tuple[Date, Date] | None) -> str:
    rules = "; ".join(f"<code>{_e(r.id)}</code> ({_e(r.severity)}): "
                      + ", ".join(_e(label.split(": ", 1)[1]) for _, _, label in levels(r, ind.unit))
                      for r in ind.rules)
    descriptions = " ".join(_e(r.description) for r in ind.rules[:1] if r.description)
    if ind.description:
        descriptions = _e(ind.description) + (" " + descriptions if descriptions else "")
    if not ind.rules:
        rules = "No rule reads it by this name: shown for context."
    head = (f"<section class=indicator data-unit=\"{_e(ind.unit)}\"><h3>{_e(ind.title)}</h3>"
            f"<p class=sub><code>{_e(ind.expr)}</code> · unit: {_e(AXIS_LABELS.get(ind.unit, 'value'))} · "
            f"{plain(len(ind.points))} evaluation dates</p><p class=desc>{descriptions}</p>"
            f"<p class=sub>{rules}</p>")
    if not ind.points:
        return f"{head}<p class=empty>No chart: {_e(ind.why_empty)}.</p></section>"
    png = base64.b64encode(chart_png(ind, transitions, episodes, axis)).decode("ascii")
    alt = f"{ind.title} in {AXIS_LABELS.get(ind.unit, 'value')}, {ind.points[0][0]} to {ind.points[-1][0]}"
    return f"{head}<img alt=\"{_e(alt)}\" src=\"data:image/png;base64,{png}\"></section>"


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
    rows = "".join(f"<tr><td><span style=\"color:{_episode_colour(e)}\">■</span> {_e(e.name)}</td>"
                   f"<td>{_e(getattr(e, 'kind', ''))}</td><td>{_e(_as_date(e.start))}</td>"
                   f"<td>{_e(_as_date(e.end))}</td><td>{_e(getattr(e, 'description', ''))}</td></tr>"
                   for e in episodes)
    return (f"<h2>Episodes</h2><table class=episodes><tr><th>name</th><th>kind</th><th>start</th>"
            f"<th>end</th><th>what happened</th></tr>{rows}</table>")


_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def _alert_table(transitions: Sequence[AlertTransition], ruleset: RuleSet,
                 charted: dict[str, Indicator]) -> str:
    grouped = alert_episodes(transitions)
    if not grouped:
        return "<h2>Alerts</h2><p class=muted id=alerts>No alerts in this replay.</p>"
    rules = ruleset.by_id
    filters = "".join(f"<label><input type=radio name=sev id={key}{' checked' if key == 'only-all' else ''}> "
                      f"{label}</label>" for key, label in (
                          ("only-all", "all rules"), ("only-critical", "critical"), ("only-warning", "warning"),
                          ("only-info", "info"), ("only-open", "still firing at the end")))
    out = [f"<h2>Alerts</h2><p class=muted>{plain(len(transitions))} transitions in "
           f"{plain(sum(len(v) for v in grouped.values()))} alert episodes of {plain(len(grouped))} rules; "
           f"one line per episode (fired, resolved, worst value, duration). Open a rule to see its "
           f"episodes.</p><p class=filter>Show: {filters}</p><div id=alerts>"]
    order = sorted(grouped, key=lambda rule_id: (_SEVERITY_ORDER.get(grouped[rule_id][0].severity, 3), rule_id))
    for rule_id in order:
        episodes = grouped[rule_id]
        rule, ind = rules.get(rule_id), charted.get(rule_id)
        unit = ind.unit if ind else ""
        severity = episodes[-1].severity
        still = episodes[-1].fired is not None and episodes[-1].resolved is None
        rows = []
        for ep in episodes:
            ep.peak = _peak(ep, ind, rule)
            rows.append(_episode_row(ep, unit))
        last = episodes[-1].first
        status = "<span class=firing>firing at the end</span>" if still else f"last {_e(last.state)} {_e(last.date)}"
        out.append(f"<details class=\"rule sev-{_e(severity)}{' open' if still else ''}\" data-rule=\"{_e(rule_id)}\">"
                   f"<summary><strong>{_e(rule_id)}</strong> · {_e(severity)} · {plain(len(episodes))} "
                   f"{'episode' if len(episodes) == 1 else 'episodes'} · {status}</summary>"
                   f"<table><tr><th>fired</th><th>known</th><th>resolved</th><th>duration</th>"
                   f"<th>worst</th><th>at firing</th><th>summary</th></tr>{''.join(rows)}</table></details>")
    out.append("</div>")
    return "\n".join(out)


def _episode_row(ep: AlertEpisode, unit: str) -> str:
    first = ep.first
    if ep.flag is not None:
        fired, resolved, length = f"flagged {ep.flag.date}", "", ""
    else:
        fired = ep.fired.date if ep.fired else "before the period"
        resolved = ep.resolved.date if ep.resolved else "still firing"
        days = (Date.fromisoformat(ep.resolved.date) - Date.fromisoformat(ep.fired.date)
                if ep.fired and ep.resolved else None)
        length = "" if days is None else duration(days) if days.days else "under a day"
    state = "flagged" if ep.flag else "firing" if ep.fired else "resolved"
    at_fire = quantity(first.value, unit) if first.value is not None else ""
    peak = quantity(ep.peak, unit) if ep.peak is not None else ""
    known = new_york_time(first.evaluated_at) if first.evaluated_at else ""
    return (f"<tr class={state}><td>{_e(fired)}</td><td>{_e(known)}</td><td>{_e(resolved)}</td>"
            f"<td class=num>{_e(length)}</td><td class=num>{_e(peak)}</td><td class=num>{_e(at_fire)}</td>"
            f"<td>{_e(first.summary or first.reason)}</td></tr>")
