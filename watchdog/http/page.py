"""The status page as one self-contained HTML document: inline CSS, charts drawn here as SVG, no
script and no external URL (the daemon has no internet-facing address, and a page that fetches
nothing cannot leak what it shows). Pure: plain data in, text out.

Everything shown is escaped by Jinja's autoescape: speech titles, rule summaries and silence
comments are untrusted text. Links are kept only when they are http(s).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from jinja2 import Environment
from markupsafe import Markup

from watchdog.model.timefmt import new_york_minute

CHART_W, CHART_H, PAD = 260, 56, 3


def sparkline(history: list[dict], steps: bool = False) -> dict:
    """SVG coordinates of a series' recent values (``steps``: an administered rate holds until
    its next change, so it is drawn as a staircase, never as a slope). Floats only place pixels
    here; the numbers shown next to the chart are the exact decimal strings."""
    values = [Decimal(p["value"]) for p in history]
    if not values:
        return {"points": "", "low": None, "high": None, "last": None}
    low, high = min(values), max(values)
    span = (high - low) or Decimal(1)
    step = (CHART_W - 2 * PAD) / max(len(values) - 1, 1)
    coords = []
    for i, v in enumerate(values):
        x = PAD + i * step
        y = PAD + float((high - v) / span) * (CHART_H - 2 * PAD)
        if steps and coords:
            coords.append(f"{x:.1f},{coords[-1].split(',')[1]}")
        coords.append(f"{x:.1f},{y:.1f}")
    last_x, last_y = coords[-1].split(",")
    return {"points": " ".join(coords), "low": history[values.index(low)], "high": history[values.index(high)],
            "last": {"x": last_x, "y": last_y}, "first": history[0]["date"], "end": history[-1]["date"]}


def safe_link(url: str) -> str:
    return url if url.startswith(("https://", "http://")) else ""


def new_york(text: str) -> str:
    """A fixed-format UTC text shown in New York time (display only)."""
    if not text:
        return ""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return new_york_minute(when)


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
<div class="grid" id="indicators">
{% for key, s in spreads.items() %}{{ card(key, s.label, "exact basis points, administered rate as in force", s.latest, s.unit, s.history) }}{% endfor %}
{% for name, s in series.items() %}{{ card(name, name, s.description, s.latest, s.unit, s.history, s.join == "step") }}{% endfor %}
{% if not spreads and not series %}<p class="empty">No observations in the log yet.</p>{% endif %}
</div>

<h2>Rules</h2>
<table id="rules"><thead><tr><th>rule</th><th>kind</th><th>severity</th><th>state</th><th>latest alert</th></tr></thead><tbody>
{% for r in rules %}<tr data-rule="{{ r.id }}"><td>{{ r.id }}</td><td>{{ r.kind }}</td><td class="sev-{{ r.severity }}">{{ r.severity }}</td>
<td class="state-{{ r.state }}">{{ r.state }}</td><td>{% if r.last %}{{ r.last.state }} {{ r.last.date }}: {{ r.last.summary or r.last.reason }}{% endif %}</td></tr>
{% endfor %}</tbody></table>

<h2>Recent alerts</h2>
{% if alerts %}<table id="alerts"><thead><tr><th>known at</th><th>date</th><th>rule</th><th>state</th><th>severity</th><th>value</th><th>summary</th></tr></thead><tbody>
{% for a in alerts %}<tr><td>{{ a.known_at | ny }}</td><td>{{ a.date }}</td><td>{{ a.rule }}</td><td class="state-{{ a.state }}">{{ a.state }}</td>
<td class="sev-{{ a.severity }}">{{ a.severity }}</td><td>{{ a.value if a.value is not none else "" }}</td>
<td>{{ a.summary or a.reason }}{% if a.link | safe_link %} <a href="{{ a.link | safe_link }}" rel="noopener noreferrer">link</a>{% endif %}</td></tr>
{% endfor %}</tbody></table>{% else %}<p class="empty" id="alerts">No alerts recorded.</p>{% endif %}

<h2>Active silences</h2>
{% if silences %}<table id="silences"><thead><tr><th>id</th><th>matchers</th><th>until</th><th>by</th><th>comment</th></tr></thead><tbody>
{% for s in silences %}<tr><td>{{ s.id }}</td><td>{% for k, v in s.matchers.items() %}{{ k }}={{ v }} {% endfor %}{% for k, v in s.matchers_re.items() %}{{ k }}=~{{ v }} {% endfor %}</td>
<td>{{ s.ends_at | ny }}</td><td>{{ s.created_by }}</td><td>{{ s.comment }}</td></tr>
{% endfor %}</tbody></table>{% else %}<p class="empty" id="silences">No active silences.</p>{% endif %}
</body></html>
""")

CARD = _ENV.from_string("""<div class="card" data-series="{{ key }}"><h3>{{ label }}</h3><div class="desc">{{ desc }}</div>
<div><span class="value">{{ latest.value }}</span> <span class="unit">{{ unit }}</span> <span class="meta">{{ latest.date }}</span></div>
{% set c = sparkline(history, steps) %}<svg class="chart" data-series="{{ key }}" width="{{ W }}" height="{{ H }}" viewBox="0 0 {{ W }} {{ H }}" role="img" aria-label="{{ label }}, {{ history | length }} values from {{ c.first }} to {{ c.end }}">
<polyline points="{{ c.points }}"/><circle cx="{{ c.last.x }}" cy="{{ c.last.y }}" r="2.5"/></svg>
<div class="range"><span>{{ c.first }}</span><span>low {{ c.low.value }} &middot; high {{ c.high.value }}</span><span>{{ c.end }}</span></div></div>
""")


def _card(key: str, label: str, desc: str, latest: dict, unit: str, history: list[dict],
          steps: bool = False) -> Markup:
    return Markup(CARD.render(key=key, label=label, desc=desc, latest=latest, unit=unit,
                              history=history, steps=steps))


_ENV.globals["card"] = _card


def render(snapshot: dict) -> str:
    """The page for a snapshot (watchdog.http.server.index builds it)."""
    return TEMPLATE.render(**snapshot)
