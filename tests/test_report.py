"""The replay report: one self-contained HTML page (charts inlined as PNG data URIs, nothing
loaded from elsewhere), a chart per indicator the rules evaluate, the alert table escaped; and
the real history's report as headless Chromium renders it."""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from browser import rendered_dom
from watchdog.cli import cli
from watchdog.model.events import AlertTransition
from watchdog.engine.data import SeriesData
from watchdog.tuning.report import build_report, downsample, indicator_points, indicators
from watchdog.rules.ruleset import load_rules, parse_rules

REPO = Path(__file__).resolve().parent.parent

SPREAD = """
[[rule]]
id = "sofr-over-iorb"
expr = "bp(sofr - iorb)"
above = 10
recover_below = 5
above_on = { quarter_turn = 25 }

[[rule]]
id = "sofr-over-iorb-selected-date"
expr = "bp(sofr  -  iorb)"
above = 20
only_on = ["month_end"]
severity = "info"

[[rule]]
id = "ratio"
expr = "reserves / gdp * 100"
below = 10

[[composite_rule]]
id = "stress"
any = ["sofr-over-iorb", "ratio"]
"""

D = date.fromisoformat


@dataclass
class Episode:
    name: str
    start: date
    end: date
    kind: str


def september_2019() -> SeriesData:
    data = SeriesData()
    points_by_series = {
        "sofr": [(D("2019-09-13"), Decimal("2.2")), (D("2019-09-16"), Decimal("2.43")),
                 (D("2019-09-17"), Decimal("5.25")), (D("2019-09-18"), Decimal("2.55"))],
        "iorb": [(D("2019-08-01"), Decimal("2.1")), (D("2019-09-19"), Decimal("1.8"))],
        "reserves": [(D("2019-09-11"), Decimal("1400")), (D("2019-09-18"), Decimal("1390"))],
        "gdp": [(D("2019-04-01"), Decimal("21000"))]}
    for series, points in points_by_series.items():
        for day, value in points:
            data.add({"series": series, "date": day.isoformat(), "value": str(value)},
                     "2019-09-20T00:00:00.000000Z")
    return data


def transition(**fields) -> AlertTransition:
    base = dict(rule="sofr-over-iorb", rule_hash="0" * 64, state="firing", date="2019-09-17", value="315",
                severity="warning", threshold="10", evaluated_at="2019-09-18T12:00:00.000000Z",
                reason="315 > 10", summary="SOFR is 315 bp over IORB")
    return AlertTransition(**{**base, **fields})


def test_a_spread_rule_is_charted_as_the_spread_it_evaluates_in_exact_bp():
    rules = parse_rules(SPREAD)
    points = indicator_points(rules.by_id["sofr-over-iorb"], september_2019())
    assert points == [(D("2019-09-13"), 10), (D("2019-09-16"), 33), (D("2019-09-17"), 315),
                      (D("2019-09-18"), 45)]


def test_as_of_inputs_join_on_their_latest_value_and_market_dates_drive_the_chart():
    ratio = indicator_points(parse_rules(SPREAD).by_id["ratio"], september_2019())
    assert [d for d, _ in ratio] == [D("2019-09-11"), D("2019-09-18")]   # reserves' own dates
    assert ratio[0][1] == Decimal("1400") / Decimal("21000") * 100


def test_rules_sharing_an_expression_share_one_chart_and_composites_get_none():
    found = indicators(parse_rules(SPREAD), september_2019())
    assert [(i.expr, [r.id for r in i.rules]) for i in found] == [
        ("reserves / gdp * 100", ["ratio"]),
        ("bp(sofr - iorb)", ["sofr-over-iorb", "sofr-over-iorb-selected-date"])]


def test_downsampling_keeps_every_spike():
    start = date(1990, 1, 1)
    points = [(start + timedelta(days=i), Decimal(i % 7)) for i in range(20_000)]
    points[12_345] = (points[12_345][0], Decimal(315))
    shown = downsample(points, limit=1000)
    assert len(shown) <= 1002 and (points[12_345] in shown)
    assert shown == sorted(shown)


def test_the_page_is_self_contained_and_escapes_what_it_shows():
    hostile = "<script>alert('x')</script> & <b>"
    page = build_report(series=september_2019(), ruleset=parse_rules(SPREAD),
                        transitions=[transition(summary=hostile), transition(state="pending")],
                        episodes=[Episode("repo <spike>", D("2019-09-16"), D("2019-09-20"), "stress")],
                        title="report & <title>")
    assert "<script" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;" in page
    assert "repo &lt;spike&gt;" in page and "<title>report &amp; &lt;title&gt;</title>" in page
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in page and "url(" not in page
    assert page.count('<tr class=firing>') == 1                   # pending is not an alert
    assert "stress</code> (composite)" in page                     # named as not charted


def copy_example(tmp_path: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        source = REPO / f"events.db.example{suffix}"
        if source.exists():
            shutil.copy(source, tmp_path / f"events.db{suffix}")
    return tmp_path / "events.db"


DECODED = """<script>
addEventListener("load", () => {
  const images = [...document.images];
  const decoded = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  document.body.insertAdjacentHTML("beforeend", `<p id="decoded">${decoded} of ${images.length}</p>`);
});
</script>"""


async def test_the_example_history_report_renders_every_chart_in_chromium(tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["replay", "--db", str(copy_example(tmp_path)), "--rules",
                                      str(REPO / "rules"), "--report", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    ruleset = load_rules([str(REPO / "rules")])
    charts = {" ".join(r.expr.split()) for r in ruleset.rules}
    assert page.count("<img ") == len(charts) >= 10
    # the test, not the report, adds a script: it writes down how many images decoded
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", DECODED + "</body>"), encoding="utf-8")
    dom = await rendered_dom(probe.as_uri())
    assert f'<p id="decoded">{len(charts)} of {len(charts)}</p>' in dom
    assert '<table id="alerts">' in dom
    spike = re.search(r'<tr class="firing"><td>2019-09-17</td><td class="state">firing</td>'
                      r'<td>sofr-over-iorb</td>.*?</tr>', dom)
    assert spike and "<td>315</td>" in spike.group(0)
