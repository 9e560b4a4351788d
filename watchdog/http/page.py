"""The status page as one self-contained HTML document: inline CSS, charts drawn here as SVG, no
script and no external URL (the daemon has no internet-facing address, and a page that fetches
nothing cannot leak what it shows). Pure: plain data in, text out.

An indicator card shows its series over a fixed window ending now (its length suits the series'
frequency; the server picks it), x proportional to time, its rules' thresholds as lines, the
colour of those rules' state (firing, pending, ok) and a STALE mark when the latest value is
older than its calendar says. Numbers people read come from watchdog.model.display.

Everything shown is escaped by Jinja's autoescape: speech titles, rule summaries and silence
comments are untrusted text. Links are kept only when they are http(s).
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from jinja2 import Environment
from markupsafe import Markup

from watchdog.model.display import new_york_time, quantity

CHART_W, CHART_H, PAD = 260, 64, 3


def sparkline(history: list[dict], steps: bool = False, window: dict | None = None,
              levels: list[dict] | None = None, unit: str = "") -> dict:
    """SVG coordinates of a series' values over ``window`` (``start``/``end`` ISO dates: x is
    proportional to time, so a series that stopped leaves a gap at the right) with its rules'
    ``levels`` as horizontal lines (the y range includes them). ``steps``: an administered rate
    holds until its next change, so it is drawn as a staircase up to the window's end, never as
    a slope. Floats only place pixels here; the numbers shown are display texts of the exact
    decimals."""
    values = [Decimal(p["value"]) for p in history]
    if not values:
        return {"points": "", "low": None, "high": None, "last": None, "levels": []}
    dates = [date.fromisoformat(p["date"]) for p in history]
    lo_day = date.fromisoformat(window["start"]) if window else dates[0]
    hi_day = date.fromisoformat(window["end"]) if window else dates[-1]
    days = max((hi_day - lo_day).days, 1)
    lines = [Decimal(level["value"]) for level in levels or []]
    low, high = min(values + lines), max(values + lines)
    span = (high - low) or Decimal(1)

    def x(day: date) -> float:
        return PAD + max(0, min(days, (day - lo_day).days)) / days * (CHART_W - 2 * PAD)

    def y(v: Decimal) -> float:
        return PAD + float((high - v) / span) * (CHART_H - 2 * PAD)
    coords = []
    for day, v in zip(dates, values):
        if steps and coords:
            coords.append(f"{x(day):.1f},{coords[-1].split(',')[1]}")
        coords.append(f"{x(day):.1f},{y(v):.1f}")
    if steps:
        coords.append(f"{x(hi_day):.1f},{coords[-1].split(',')[1]}")
    last_x, last_y = f"{x(dates[-1]):.1f}", f"{y(values[-1]):.1f}"
    shown_low, shown_high = min(values), max(values)
    return {"points": " ".join(coords),
            "low": quantity(shown_low, unit), "high": quantity(shown_high, unit),
            "last": {"x": last_x, "y": last_y}, "first": lo_day.isoformat(), "end": hi_day.isoformat(),
            "levels": [{**level, "y": f"{y(Decimal(level['value'])):.1f}"} for level in levels or []]}


def safe_link(url: str) -> str:
    return url if url.startswith(("https://", "http://")) else ""


def new_york(text: str) -> str:
    """A fixed-format UTC text shown in New York time with its zone (display.new_york_time)."""
    if not text:
        return ""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return new_york_time(when)


_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["ny"] = new_york
_ENV.filters["safe_link"] = safe_link
_ENV.globals.update(sparkline=sparkline, W=CHART_W, H=CHART_H)

TEMPLATE = _ENV.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>watchdog: funding-market status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2430;background:#f7f8fa}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
.meta{color:#5b6575;font-size:.85rem}.ok{color:#17753a}.bad{color:#b3261e}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:.7rem}
.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:.6rem .7rem}
.card h3{font-size:.95rem;margin:0}.card .desc{color:#5b6575;font-size:.78rem;min-height:1.1em}
.value{font-size:1.3rem;font-weight:600}.unit{font-size:.85rem;color:#5b6575}
svg.chart{display:block;margin-top:.3rem;background:#fbfcfd}
svg.chart polyline{fill:none;stroke:#2458b3;stroke-width:1.5}svg.chart circle{fill:#2458b3}
.range{font-size:.75rem;color:#5b6575;display:flex;justify-content:space-between}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.85rem}
th,td{border-bottom:1px solid #e6e9ee;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#eef1f5}.state-firing{color:#b3261e;font-weight:600}.state-pending{color:#a15c00}
.sev-critical{font-weight:700}.empty{color:#5b6575}
.card.is-firing{border-left:5px solid #b3261e}.card.is-pending{border-left:5px solid #d08a00}
.card.is-ok{border-left:5px solid #17753a}.card.stale{background:#fff8ec}
.badge{font-size:.7rem;font-weight:700;padding:0 .35rem;border-radius:3px;vertical-align:middle}
.badge.is-firing{background:#b3261e;color:#fff}.badge.is-pending{background:#d08a00;color:#fff}
.badge.is-ok{background:#e3f1e7;color:#17753a}.badge.stale{background:#8a4b00;color:#fff}
svg.chart line.level{stroke:#b3261e;stroke-width:1}svg.chart line.level.recover{stroke:#17753a;stroke-dasharray:4 3}
.levels,.stale-note{font-size:.72rem;color:#5b6575}.stale-note{color:#8a4b00;font-weight:600}
</style></head>
<body>
<h1>watchdog: funding-market status</h1>
<p class="meta">generated {{ now.strftime('%Y-%m-%dT%H:%M:%SZ') }} ({{ now.isoformat() | ny }}) &middot;
log head seq {{ head[0] }} <code>{{ head[1][:16] }}</code>{% if started_at %} &middot; daemon started {{ started_at | ny }}{% endif %}</p>
<section id="readiness">
{% if ready.ready %}<p class="ok" id="ready-state">ready</p>
{% else %}<p class="bad" id="ready-state">not ready</p>
<ul>{% for name, check in ready.checks.items() %}{% for reason in check.reasons %}
<li class="reason" data-check="{{ name }}">{{ name }}: {{ reason }}</li>{% endfor %}{% endfor %}</ul>{% endif %}
</section>

<h2>Indicators</h2>
<p class="meta">Each card: a fixed window ending now (a year of daily series, three of weekly, ten of monthly and quarterly), its rules' thresholds (solid: fires, dashed: resolves), the rules' state, and STALE where the latest value is older than its calendar says.</p>
<div class="grid" id="indicators">
{% for c in cards %}{{ card(c) }}{% endfor %}
{% if not cards %}<p class="empty">No observations in the log yet.</p>{% endif %}
</div>

<h2>Rules</h2>
<table id="rules"><thead><tr><th>rule</th><th>kind</th><th>severity</th><th>state</th><th>latest alert</th></tr></thead><tbody>
{% for r in rules %}<tr data-rule="{{ r.id }}"><td>{{ r.id }}</td><td>{{ r.kind }}</td><td class="sev-{{ r.severity }}">{{ r.severity }}</td>
<td class="state-{{ r.state }}">{{ r.state }}</td><td>{% if r.last %}{{ r.last.state }} {{ r.last.date }}: {{ r.last.summary or r.last.reason }}{% endif %}</td></tr>
{% endfor %}</tbody></table>

<h2>Recent alerts</h2>
{% if alerts %}<table id="alerts"><thead><tr><th>known at</th><th>date</th><th>rule</th><th>state</th><th>severity</th><th>value</th><th>summary</th></tr></thead><tbody>
{% for a in alerts %}<tr><td>{{ a.known_at | ny }}</td><td>{{ a.date }}</td><td>{{ a.rule }}</td><td class="state-{{ a.state }}">{{ a.state }}</td>
<td class="sev-{{ a.severity }}">{{ a.severity }}</td><td>{{ a.shown if a.shown is defined else (a.value if a.value is not none else "") }}</td>
<td>{{ a.summary or a.reason }}{% if a.link | safe_link %} <a href="{{ a.link | safe_link }}" rel="noopener noreferrer">link</a>{% endif %}</td></tr>
{% endfor %}</tbody></table>{% else %}<p class="empty" id="alerts">No alerts recorded.</p>{% endif %}

<h2>Active silences</h2>
{% if silences %}<table id="silences"><thead><tr><th>id</th><th>matchers</th><th>until</th><th>by</th><th>comment</th></tr></thead><tbody>
{% for s in silences %}<tr><td>{{ s.id }}</td><td>{% for k, v in s.matchers.items() %}{{ k }}={{ v }} {% endfor %}{% for k, v in s.matchers_re.items() %}{{ k }}=~{{ v }} {% endfor %}</td>
<td>{{ s.ends_at | ny }}</td><td>{{ s.created_by }}</td><td>{{ s.comment }}</td></tr>
{% endfor %}</tbody></table>{% else %}<p class="empty" id="silences">No active silences.</p>{% endif %}
</body></html>
""")

CARD = _ENV.from_string("""<div class="card is-{{ c.state }}{% if c.stale %} stale{% endif %}" data-series="{{ c.key }}" data-state="{{ c.state }}">
<h3>{{ c.label }}{% if c.state != "none" %} <span class="badge is-{{ c.state }}">{{ c.state }}</span>{% endif %}{% if c.stale %} <span class="badge stale">STALE</span>{% endif %}</h3>
<div class="desc">{{ c.description }}</div>
<div><span class="value">{{ c.latest.shown }}</span> <span class="meta">{{ c.latest.date }}{% if c.scheduled %} &middot; {{ c.scheduled.shown }} from {{ c.scheduled.date }} (announced){% endif %}</span></div>
{% set g = sparkline(c.history, c.steps, c.window, c.levels, c.unit) %}<svg class="chart" data-series="{{ c.key }}" width="{{ W }}" height="{{ H }}" viewBox="0 0 {{ W }} {{ H }}" role="img" aria-label="{{ c.label }}, {{ c.history | length }} values from {{ g.first }} to {{ g.end }}">
{% for l in g.levels %}<line class="level {{ l.style }}" x1="0" x2="{{ W }}" y1="{{ l.y }}" y2="{{ l.y }}"><title>{{ l.label }}</title></line>
{% endfor %}<polyline points="{{ g.points }}"/><circle cx="{{ g.last.x }}" cy="{{ g.last.y }}" r="2.5"/></svg>
<div class="range"><span>{{ g.first }}</span><span>{{ c.window.text }}</span><span>{{ g.end }}</span></div>
<div class="range"><span>low {{ g.low }} &middot; high {{ g.high }}</span></div>
{% if c.levels %}<div class="levels">{% for l in c.levels %}{{ l.label }}{% if not loop.last %}; {% endif %}{% endfor %}</div>{% endif %}
{% if c.stale %}<div class="stale-note">{{ c.stale.text }}</div>{% endif %}</div>
""")


def _card(card: dict) -> Markup:
    return Markup(CARD.render(c=card))


_ENV.globals["card"] = _card


def render(snapshot: dict) -> str:
    """The page for a snapshot (watchdog.http.server.index builds it)."""
    return TEMPLATE.render(**snapshot)
