"""The replay report: one self-contained HTML page (charts inlined as PNG data URIs, nothing
loaded from elsewhere), a chart per indicator the rules evaluate with its unit, levels and a
shared time axis per section, empty charts that say why, the alert table by episode, escaped;
and the real history's report as headless Chromium renders it (DOM and screenshot)."""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from backtest_logs import write_log
from browser import rendered_dom, screenshot
from click.testing import CliRunner
from PIL import Image

from watchdog.cli import cli
from watchdog.engine.data import SeriesData
from watchdog.model.events import AlertTransition
from watchdog.rules.ruleset import load_rules, parse_rules
from watchdog.tuning.report import (
    alert_episodes,
    build_report,
    downsample,
    expression_unit,
    indicator_points,
    indicators,
    readable_name,
)

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


def test_units_and_titles_come_from_the_expression_and_the_series_catalogue():
    assert [expression_unit(e) for e in ("bp(sofr - iorb)", "reserves", "sofr", "reserves / gdp * 100",
                                         'change(tga, "5bd") - lag(onrrp, 5)', "sofr.volume",
                                         'primary_credit - min(primary_credit, "13bd")', "reserves / gdp")] == [
        "bp", "USD bn", "%", "ratio", "USD bn", "USD bn", "USD bn", ""]
    assert readable_name("bp(sofr - iorb)") == "SOFR − IORB"
    assert readable_name("bp(sofr.p99 - iorb)") == "SOFR 99th percentile − IORB"
    assert readable_name("reserves / gdp * 100") == "Reserves as % of GDP"
    assert readable_name('change(tga, "5bd") - lag(onrrp, 5)') == \
        "5-business-day change in TGA − ON RRP take-up 5-business-day earlier"


def test_a_spread_chart_is_labelled_in_bp_with_its_levels_and_the_expression_as_subtitle():
    page = build_report(series=september_2019(), ruleset=parse_rules(SPREAD), transitions=[transition()])
    spreads = page.split("<h2>Spreads, in basis points (bp): one time axis, 2019-09-13 to 2019-09-18</h2>")[1]
    assert "<h3>SOFR − IORB</h3>" in spreads and "<code>bp(sofr - iorb)</code> · unit: basis points (bp)" in spreads
    assert ("<code>sofr-over-iorb</code> (warning): fires above 10 bp, resolves below 5 bp, "
            "fires above 25 bp on quarter turn") in spreads
    assert "fires above 20 bp on month end only" in spreads
    ratios = page.split("<h2>Ratios, in percent (%)")[1]
    assert "<h3>Reserves as % of GDP</h3>" in ratios and "fires below 10.00%" in ratios


def test_charts_of_a_section_share_one_time_axis():
    data = september_2019()
    for day, value in (("2019-08-05", "2.14"), ("2019-08-06", "2.13")):   # EFFR starts earlier
        data.add({"series": "effr", "date": day, "value": value}, "2019-09-20T00:00:00.000000Z")
    rules = parse_rules(SPREAD + '[[rule]]\nid = "effr-over-iorb"\nexpr = "bp(effr - iorb)"\nabove = 5\n')
    page = build_report(series=data, ruleset=rules, transitions=[])
    assert "<h2>Spreads, in basis points (bp): one time axis, 2019-08-05 to 2019-09-18</h2>" in page
    assert "SOFR − IORB in basis points (bp), 2019-09-13 to 2019-09-18" in page     # its own data ...
    assert "EFFR − IORB in basis points (bp), 2019-08-05 to 2019-08-06" in page     # ... on one axis


def test_a_chart_without_data_says_why_instead_of_drawing_nothing():
    data = september_2019()
    data.points.pop("gdp"), data.dates.pop("gdp")
    page = build_report(series=data, ruleset=parse_rules(SPREAD), transitions=[])
    assert "No chart: no values of gdp in this log." in page
    cut = build_report(series=data, ruleset=parse_rules(SPREAD), transitions=[], as_of="2019-09-20T00:00:00Z")
    assert "No chart: no values of gdp published by 2019-09-20T00:00:00Z in this log." in cut
    late = SeriesData()                              # IORB only from after SOFR's last date
    for series, day, value in (("sofr", "2019-09-17", "5.25"), ("iorb", "2019-10-01", "1.8")):
        late.add({"series": series, "date": day, "value": value}, "2019-10-02T00:00:00.000000Z")
    page = build_report(series=late, ruleset=parse_rules(SPREAD), transitions=[])
    assert ("No chart: no date on which every input has a value (no values of iorb before 2019-10-01 "
            "in this log; iorb from 2019-10-01 to 2019-10-01; sofr from 2019-09-17 to 2019-09-17).") in page
    period = build_report(series=september_2019(), ruleset=parse_rules(SPREAD), transitions=[],
                          since=D("2020-01-01"))
    assert "No chart: no evaluation date from 2020-01-01 (its values run from 2019-09-13 to 2019-09-18" in period
    assert page.count("<img ") == 0 and period.count("<img ") == 0


def test_the_alert_table_pairs_transitions_into_episodes_with_peak_and_duration():
    transitions = [transition(state="pending", date="2019-09-16"), transition(),
                   transition(state="resolved", date="2019-09-18", value="4", summary="SOFR is 4 bp over IORB"),
                   transition(date="2019-09-30", value="12"),
                   transition(rule="ratio", severity="info", value="9.5", state="firing", date="2019-09-18")]
    grouped = alert_episodes(transitions)
    first, second = grouped["sofr-over-iorb"]
    assert (first.fired.date, first.resolved.date, second.fired.date, second.resolved) == \
        ("2019-09-17", "2019-09-18", "2019-09-30", None)
    page = build_report(series=september_2019(), ruleset=parse_rules(SPREAD), transitions=transitions)
    table = page.split("<h2>Alerts</h2>")[1]
    assert '<details class="rule sev-warning open" data-rule="sofr-over-iorb">' in table
    assert "<strong>sofr-over-iorb</strong> · warning · 2 episodes · <span class=firing>firing at the end</span>" in table
    assert ("<tr class=firing><td>2019-09-17</td><td>2019-09-18 08:00 EDT</td><td>2019-09-18</td>"
            "<td class=num>1d</td><td class=num>315 bp</td><td class=num>315 bp</td>") in table
    assert "<td>still firing</td>" in table
    assert "<td class=num>9.50%</td>" in table                     # the ratio's value, via display
    assert table.index('data-rule="sofr-over-iorb"') < table.index('data-rule="ratio"')   # warning first
    assert 'type=radio name=sev id=only-critical' in table and "<script" not in page


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
    # one chart per distinct rule expression and per derived series (a rule reading a derived
    # series by its bare name shares its chart)
    charts = {" ".join(r.expr.split()) for r in ruleset.rules} | {s.name for s in ruleset.series}
    assert len(ruleset.series) >= 12
    for item in ruleset.series:
        assert f"<h3>{item.name} (derived: " in page
    # the example log has no SRF take-up and no primary credit: those two say so
    assert "No chart: no values of primary_credit in this log." in page
    assert "No chart: no values of srf in this log." in page
    drawn = len(charts) - 2
    assert page.count("<img ") == drawn >= 10
    # the test, not the report, adds a script: it writes down how many images decoded
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", DECODED + "</body>"), encoding="utf-8")
    dom = await rendered_dom(probe.as_uri())
    assert f'<p id="decoded">{drawn} of {drawn}</p>' in dom
    assert "<h2>Spreads, in basis points (bp): one time axis, " in dom and "<h2>Amounts, in USD bn: " in dom
    assert "<code>sofr-over-iorb</code> (warning): fires above 10 bp, resolves below 5 bp" in dom
    assert "<code>reserves-low</code> (warning): fires below $2,900bn, resolves above $3,000bn" in dom
    assert "repo-spike-2019-09" in dom                              # default episodes, shaded and listed
    spike = re.search(r'<details class="rule sev-warning[^"]*" data-rule="sofr-over-iorb">.*?</details>', dom, re.S)
    row = re.search(r'<tr class="firing"><td>2019-09-17</td>.*?</tr>', spike.group(0))
    assert row and "<td class=\"num\">315 bp</td>" in row.group(0)
    shot = tmp_path / "report.png"
    await screenshot(out.as_uri(), str(shot), size="1280,2400")
    with Image.open(shot) as image:
        image.load()                                               # decodes every pixel
        assert image.size == (1280, 2400) and len(image.getcolors(1 << 20) or range(1 << 20)) > 50


def test_backtest_report_shades_the_scored_episodes(tmp_path):
    db = write_log(tmp_path / "events.db", {
        "sofr": {"2019-09-13": "2.2", "2019-09-16": "2.43", "2019-09-17": "5.25", "2019-09-18": "2.55",
                 "2019-09-19": "1.95", "2019-09-20": "1.86"},
        "iorb": {"2019-08-01": "2.1", "2019-09-19": "1.8"}})
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nid = "sofr-over-iorb"\nexpr = "bp(sofr - iorb)"\nabove = 10\n'
                     'recover_below = 5\n', encoding="utf-8")
    episodes = tmp_path / "episodes.toml"
    episodes.write_text('[[episode]]\nname = "repo-spike-2019-09"\nstart = 2019-09-16\nend = 2019-09-20\n'
                        'kind = "stress"\nsplit = "calibration"\n', encoding="utf-8")
    out = tmp_path / "backtest.html"
    result = CliRunner().invoke(cli, ["backtest", "--db", str(db), "--rules", str(rules), "--episodes",
                                      str(episodes), "--report", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "<title>watchdog backtest of events.db (all episodes of " in page
    assert "<td><span style=\"color:#c0392b\">■</span> repo-spike-2019-09</td><td>stress</td>" in page
    assert "<td class=num>315 bp</td>" in page and page.count("<img ") == 1
    refused = CliRunner().invoke(cli, ["backtest", "--db", str(db), "--rules", str(rules), "--episodes",
                                       str(episodes), "--set", "sofr-over-iorb.above=5,10", "--report", str(out)])
    assert refused.exit_code == 2 and "--report charts one rule set" in refused.output
