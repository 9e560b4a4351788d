"""The HTTP surface (watchdog.http.server) over a real daemon: a log built from the shipped history
(Jul-Dec 2025 plus each series' last earlier value), the default rules, a fixed clock. The status
page is checked as headless Chromium renders it."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiohttp import web
from browser import rendered_dom, screenshot
from fakes import Clock
from PIL import Image

from watchdog.app import build_daemon, close_daemon
from watchdog.http.server import HttpSettings, build_app, parse_listen, start_http
from watchdog.model.config import Config, NyFedConfig, SourcesConfig
from watchdog.model.events import NOTIFICATION_FAILED, NewEvent, Speech, new_speech

REPO = Path(__file__).resolve().parent.parent
SINCE, CUT = "2025-07-01", "2026-01-02T14:00:00.000000Z"
HOSTILE_TITLE = "<script>document.title='pwned'</script><img src=x onerror=alert(1)> & more"


def history_facts() -> list[NewEvent]:
    """Facts of the example log published by CUT: dates from SINCE, plus each series' latest
    earlier value (administered rates, GDP), in publication order as a live daemon meets them;
    and one speech whose title is hostile markup."""
    src = sqlite3.connect(f"file:{REPO / 'events.db.example'}?mode=ro", uri=True)
    rows = src.execute("SELECT type, key, published_at, payload FROM events "
                       "WHERE type LIKE 'observation-%' AND published_at <= ?", (CUT,)).fetchall()
    src.close()
    keep, before = [], {}
    for type_, key, published, payload in rows:
        p = json.loads(payload)
        if p["date"] >= SINCE:
            keep.append((published, type_, key, p))
        elif p["series"] not in before or before[p["series"]][3]["date"] < p["date"]:
            before[p["series"]] = (published, type_, key, p)
    events = [NewEvent(type=t, key=k, payload=p, published_at=pub)
              for pub, t, k, p in sorted([*before.values(), *keep], key=lambda r: (r[0], r[2]))]
    text = "Money markets tightened. In my view reserves are no longer abundant."
    events.append(new_speech(Speech(speaker="Lorie K. Logan", institution="Federal Reserve Bank of Dallas",
                                    date="2025-12-30", title=HOSTILE_TITLE, url="javascript:alert(1)",
                                    text=text, content_hash=hashlib.sha256(text.encode()).hexdigest(),
                                    source="speeches"), "2025-12-31T04:59:59.999999Z"))
    return events


async def record_small_log(path: Path) -> None:
    """A daemon starts on an empty log (rules loaded first), then learns the facts and evaluates
    them: the log holds the transitions of the whole half-year, as a live run would."""
    daemon = build_daemon(Config(), db=str(path), rule_paths=[str(REPO / "rules")], env={},
                          now=Clock(datetime(2026, 1, 2, 14, tzinfo=timezone.utc)))
    try:
        await daemon.start()
        await daemon.writer.append(history_facts())
        await daemon.evaluate()
    finally:
        close_daemon(daemon)


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weblog") / "events.db"
    asyncio.run(record_small_log(path))
    return path


@pytest.fixture
async def daemon_for(small_log, tmp_path):
    """A started daemon over a copy of the small log, with the default rules and a given clock."""
    made = []

    async def make(at: datetime, config: Config | None = None):
        db = tmp_path / f"events-{len(made)}.db"
        for suffix in ("", "-wal"):                                # the WAL too, if not checkpointed
            if Path(f"{small_log}{suffix}").exists():
                Path(f"{db}{suffix}").write_bytes(Path(f"{small_log}{suffix}").read_bytes())
        daemon = build_daemon(config or Config(), db=str(db), rule_paths=[str(REPO / "rules")],
                              env={}, now=Clock(at))
        made.append(daemon)
        await daemon.start()
        return daemon
    yield make
    for daemon in made:
        close_daemon(daemon)


JAN_2 = datetime(2026, 1, 2, 15, 0, tzinfo=timezone.utc)      # after SOFR for 12-31 was published


async def sofr_stub_config(aiohttp_server, sofr_search) -> Config:
    """A config whose only source is a NY Fed stand-in answering SOFR searches with ``sofr_search``."""
    app = web.Application()
    app.router.add_get("/api/rates/secured/sofr/search.json", sofr_search)
    server = await aiohttp_server(app)
    return Config(sources=SourcesConfig(nyfed=NyFedConfig(
        base_url=str(server.make_url("")).rstrip("/"), rates=["sofr"], retries=0, timeout="5s")))


async def test_api_series_gives_latest_values_and_history_as_decimal_strings(daemon_for, aiohttp_client):
    client = await aiohttp_client(build_app(await daemon_for(JAN_2)))
    resp = await client.get("/api/series?points=5")
    assert resp.status == 200
    body = await resp.json()
    sofr = body["series"]["sofr"]
    assert sofr["unit"] == "%" and sofr["latest"]["date"] == "2025-12-31"
    assert sofr["latest"]["value"] == "3.87" and sofr["latest"]["attributes"]["p99"]
    assert len(sofr["history"]) == 5 and sofr["history"][-1] == {"date": "2025-12-31", "value": "3.87"}
    # SOFR 3.87 vs IORB 3.65 on 2025-12-31 (DOMAIN.md): exactly 22 bp
    assert body["spreads"]["sofr-iorb"]["latest"] == {"date": "2025-12-31", "value": "22"}
    assert body["series"]["tga"]["unit"] == "USD bn"
    for values in body["series"].values():
        assert all(isinstance(p["value"], str) for p in values["history"])
    text = await resp.text()
    assert "3.87" in text and "3.8700" not in text


async def test_api_alerts_lists_rule_states_and_recent_transitions(daemon_for, aiohttp_client):
    client = await aiohttp_client(build_app(await daemon_for(JAN_2)))
    body = await (await client.get("/api/alerts?limit=200")).json()
    assert (await client.get("/api/alerts?limit=abc")).status == 400
    rules = {r["id"]: r for r in body["rules"]}
    assert {"sofr-over-iorb", "funding-stress", "sofr-stale", "reserves-not-abundant"} <= set(rules)
    assert rules["sofr-over-iorb"]["kind"] == "threshold" and rules["funding-stress"]["kind"] == "composite"
    states = [r["state"] for r in body["rules"]]
    assert states == sorted(states, key=["firing", "pending", "inactive"].index)   # firing first
    recent = body["recent"]
    assert len(recent) <= 200 and recent == sorted(recent, key=lambda a: -a["seq"])
    fired = [a for a in recent if a["rule"] == "sofr-over-iorb" and a["state"] == "firing"]
    assert any(a["date"] == "2025-10-16" for a in fired)           # the October 2025 episode
    flag = next(a for a in recent if a["state"] == "flagged")
    assert flag["rule"].startswith("reserves-") and HOSTILE_TITLE in flag["summary"]


async def test_api_silences_shows_a_cli_silence_as_active(daemon_for, aiohttp_client):
    daemon = await daemon_for(JAN_2)
    client = await aiohttp_client(build_app(daemon))
    assert (await (await client.get("/api/silences")).json()) == {"silences": []}
    await daemon.writer.append([NewEvent(type="silence-added", key="silence/s1/added", payload={
        "id": "s1", "matchers": {"rule": "sofr-over-iorb"}, "matchers_re": {},
        "starts_at": "2026-01-02T00:00:00.000000Z", "ends_at": "2026-01-03T00:00:00.000000Z",
        "comment": "year-end <b>noise</b>", "created_by": "desk"})])
    body = await (await client.get("/api/silences")).json()
    assert body["silences"][0]["id"] == "s1" and body["silences"][0]["active"] is True
    assert body["silences"][0]["comment"] == "year-end <b>noise</b>"


async def test_readyz_is_ok_on_a_fresh_log_and_names_a_stale_feed_later(daemon_for, aiohttp_client):
    client = await aiohttp_client(build_app(await daemon_for(JAN_2)))
    resp = await client.get("/readyz")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["ready"] is True
    daemon = await daemon_for(JAN_2)
    late = await aiohttp_client(build_app(daemon))
    daemon.now.set(datetime(2026, 1, 9, 18, tzinfo=timezone.utc))  # a week passes, nothing new
    await daemon.evaluate()                                         # the deadline tick
    resp = await late.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and body["ready"] is False
    reasons = body["checks"]["sources"]["reasons"]
    assert any(r.startswith("stale: sofr from nyfed (sofr-stale): sofr for 2026-01-0") for r in reasons), reasons
    assert body["checks"]["store"] == {"ok": True, "reasons": []}
    assert (await late.get("/healthz")).status == 200             # liveness ignores late feeds


async def test_readyz_names_a_failing_source_until_it_records_a_fact_again(daemon_for, aiohttp_client, aiohttp_server):
    fed = {"up": False}

    async def sofr_search(request: web.Request) -> web.Response:
        if not fed["up"]:
            return web.Response(status=500, text="maintenance")
        day = request.query["endDate"]                            # a value for the last day asked
        return web.Response(text='{"refRates": [{"effectiveDate": "%s", "type": "SOFR", '
                                 '"percentRate": 3.65}]}' % day, content_type="application/json")
    config = await sofr_stub_config(aiohttp_server, sofr_search)
    daemon = await daemon_for(datetime.now(timezone.utc), config)
    client = await aiohttp_client(build_app(daemon))
    await daemon.cycle()                                           # the real poll: a source-failed event
    body = await (await client.get("/readyz")).json()
    assert body["checks"]["sources"]["ok"] is False
    failing = [r for r in body["checks"]["sources"]["reasons"] if r.startswith("failing: ")]
    assert len(failing) == 1 and failing[0].startswith("failing: nyfed at ") and "HTTP 500" in failing[0]
    fed["up"] = True
    await daemon.cycle()                                           # a fact recorded after the failure
    body = await (await client.get("/readyz")).json()
    assert not [r for r in body["checks"]["sources"]["reasons"] if r.startswith("failing: ")]


async def test_readyz_clears_a_failing_source_after_a_clean_poll_with_nothing_new(daemon_for, aiohttp_client, aiohttp_server):
    fed = {"up": True}

    async def sofr_search(request: web.Request) -> web.Response:
        if not fed["up"]:
            return web.Response(status=500, text="maintenance")
        return web.Response(text='{"refRates": [{"effectiveDate": "2025-12-31", "type": "SOFR", '
                                 '"percentRate": 3.87}]}', content_type="application/json")
    config = await sofr_stub_config(aiohttp_server, sofr_search)
    daemon = await daemon_for(datetime.now(timezone.utc), config)
    client = await aiohttp_client(build_app(daemon))
    await daemon.cycle()                                           # the value: recorded
    fed["up"] = False
    daemon.now.advance(timedelta(minutes=5))
    await daemon.cycle()
    body = await (await client.get("/readyz")).json()
    assert any(r.startswith("failing: nyfed at ") for r in body["checks"]["sources"]["reasons"])
    fed["up"] = True
    daemon.now.advance(timedelta(minutes=5))
    report = await daemon.cycle()                                  # the same value again: nothing new
    assert report.facts == 0 and report.failures == 0
    body = await (await client.get("/readyz")).json()
    assert not [r for r in body["checks"]["sources"]["reasons"] if r.startswith("failing: ")]


async def test_readyz_names_a_receiver_that_failed_permanently(daemon_for, aiohttp_client):
    daemon = await daemon_for(datetime.now(timezone.utc))
    client = await aiohttp_client(build_app(daemon))
    await daemon.writer.append([NewEvent(type=NOTIFICATION_FAILED, key="notify/desk/g/1/failed/1", payload={
        "delivery": "notify/desk/g/1", "receiver": "desk", "attempt": 1, "permanent": True,
        "detail": "HTTP 404 no_service: the webhook was disabled or removed", "rules": ["sofr-over-iorb"]})])
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503
    assert body["checks"]["receivers"]["reasons"][0].startswith("failing: desk at ")
    assert "no_service" in body["checks"]["receivers"]["reasons"][0]


async def test_an_unwritable_log_fails_readiness_but_not_liveness(daemon_for, aiohttp_client):
    daemon = await daemon_for(JAN_2)
    client = await aiohttp_client(build_app(daemon))
    daemon.store._w.execute("PRAGMA query_only = 1")              # SQLite refuses every write now
    with pytest.raises(Exception, match="readonly"):
        await daemon.writer.append([NewEvent(type="silence-expired", key="silence/x/expired", payload={
            "id": "x", "expired_at": "2026-01-02T00:00:00.000000Z"})])
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and "readonly" in body["checks"]["store"]["reasons"][0]
    assert (await client.get("/healthz")).status == 200


async def test_healthz_fails_while_the_writer_is_stuck_and_recovers(daemon_for, aiohttp_client):
    daemon = await daemon_for(JAN_2)
    client = await aiohttp_client(build_app(daemon, HttpSettings(writer_stall_after=1.0)))
    assert (await client.get("/healthz")).status == 200
    blocker = sqlite3.connect(daemon.store.path, isolation_level=None, timeout=1)
    blocker.execute("BEGIN EXCLUSIVE")                              # another process holds the write lock
    stuck = asyncio.ensure_future(daemon.writer.append([NewEvent(
        type="silence-expired", key="silence/y/expired", payload={"id": "y", "expired_at": "2026-01-02T00:00:00.000000Z"})]))
    await asyncio.sleep(0.2)
    await client.get("/healthz")                                    # the probe queues behind the stuck batch
    await asyncio.sleep(1.2)
    resp = await client.get("/healthz")
    assert resp.status == 503 and "no-op append has waited" in (await resp.json())["reasons"][0]
    blocker.execute("ROLLBACK")
    blocker.close()
    await asyncio.wait_for(stuck, 10)
    assert (await client.get("/healthz")).status == 200


async def test_metrics_page_is_prometheus_text_with_head_and_readiness(daemon_for, aiohttp_client):
    daemon = await daemon_for(JAN_2)
    client = await aiohttp_client(build_app(daemon))
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await resp.text()
    seq, digest = daemon.store.head()
    assert f'watchdog_chain_head_info{{hash="{digest}"}} {float(seq)}' in text
    assert 'watchdog_readiness_check{check="store"} 1.0' in text
    assert "# TYPE watchdog_chain_head_seq gauge" in text


async def test_start_http_serves_on_loopback_and_stops(daemon_for):
    import aiohttp
    daemon = await daemon_for(JAN_2)
    runner = await start_http(daemon, "127.0.0.1:0")
    try:
        host, port = runner.addresses[0][:2]
        assert host == "127.0.0.1"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200 and (await resp.json()) == {"status": "ok"}
    finally:
        await runner.cleanup()
    assert parse_listen("9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ValueError):
        parse_listen("localhost:http")


async def test_status_page_renders_indicators_charts_and_escaped_titles_in_chromium(
        daemon_for, aiohttp_client, tmp_path):
    daemon = await daemon_for(JAN_2)
    await daemon.writer.append([NewEvent(type="silence-added", key="silence/s2/added", payload={
        "id": "s2", "matchers": {"severity": "info"}, "matchers_re": {},
        "starts_at": "2026-01-01T00:00:00.000000Z", "ends_at": "2026-01-05T00:00:00.000000Z",
        "comment": "speech flags during the holidays", "created_by": "desk"})])
    client = await aiohttp_client(build_app(daemon))
    resp = await client.get("/")
    assert resp.status == 200 and "default-src 'none'" in resp.headers["Content-Security-Policy"]
    html = await resp.text()
    for external in ("<script", "<img", "<link", ' src="', "javascript:"):
        assert external not in html, external                       # nothing loads, nothing runs
    url = str(client.make_url("/"))
    dom = await rendered_dom(url)
    cards = {key: state for state, key in re.findall(r'<div class="card is-(\w+)[^"]*" data-series="([\w-]+)"', dom)}
    for key in ("sofr-iorb", "sofr", "iorb", "effr", "reserves", "tga", "onrrp"):
        assert key in cards, key
        assert f'<svg class="chart" data-series="{key}"' in dom, key
    assert dom.count("<polyline points=\"") >= 10
    # a card per derived series the facts allow, computed as the rules read it, with the levels
    # of the rules reading it by name
    assert "effr_iorb (derived)" in card_html(dom, "effr_iorb")
    assert "effr-iorb-drift fires above 1.5 bp" in card_html(dom, "effr_iorb_trend")
    # a card per indicator over its own window, its rules' levels, their state's colour, STALE
    sofr_iorb = card_html(dom, "sofr-iorb")
    assert "sofr-over-iorb fires above 10 bp; sofr-over-iorb resolves below 5 bp" in sofr_iorb
    assert sofr_iorb.count('<line class="level fire"') == 2 and '<line class="level recover"' in sofr_iorb
    assert "<span>2025-01-02</span><span>1 year</span><span>2026-01-02</span>" in sofr_iorb
    assert cards["sofr-iorb"] in ("firing", "pending", "ok") and cards["iorb"] == "none"
    assert f'<span class="badge is-{cards["onrrp"]}">{cards["onrrp"]}</span>' in card_html(dom, "onrrp")
    assert '<span class="value">$' in card_html(dom, "reserves") and "3 years" in card_html(dom, "reserves")
    weekly = card_html(dom, "tga_weekly_avg")                      # its H.4.1 line ends 2025-11-19
    assert '<span class="badge stale">STALE</span>' in weekly and "3 years" in weekly
    # Thanksgiving: the week of 11-26 is published on the 28th, 16:30 New York, plus the 2 h
    # grace `watchdog status` gives it too (one judgement: watchdog.market.staleness.judge)
    assert ("STALE: latest 2025-11-19; the value for 2025-11-26 was due by 2025-11-28 18:30 EST"
            in weekly)
    assert "10 years" in card_html(dom, "gdp") and "STALE" in card_html(dom, "gdp")
    assert "STALE" not in card_html(dom, "sofr") and "STALE" not in card_html(dom, "iorb")
    assert '<tr data-rule="sofr-over-iorb">' in dom and "speech flags during the holidays" in dom
    assert "<script" not in dom and "<img" not in dom and "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    assert "&lt;script&gt;document.title" in dom and "javascript:" not in dom
    shot = Path(os.environ.get("WATCHDOG_SCREENSHOT", tmp_path / "status.png"))
    await screenshot(url, str(shot))
    with Image.open(shot) as image:
        image.load()                                               # decodes every pixel
        assert image.size == (1280, 2000) and shot.stat().st_size > 20_000


def card_html(dom: str, key: str) -> str:
    """One indicator card of the rendered status page."""
    start = dom.index(f'data-series="{key}" data-state=')
    return dom[dom.rindex("<div", 0, start):dom.index('<div class="card', start + 1)
               if '<div class="card' in dom[start + 1:] else len(dom)]


async def test_readyz_says_starting_until_the_daemon_has_folded_its_log(small_log, tmp_path, aiohttp_client):
    db = tmp_path / "unstarted.db"
    db.write_bytes(small_log.read_bytes())
    daemon = build_daemon(Config(), db=str(db), rule_paths=[str(REPO / "rules")], env={}, now=Clock(JAN_2))
    try:
        client = await aiohttp_client(build_app(daemon))
        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503 and body["checks"]["daemon"]["reasons"][0].startswith("starting")
        assert (await client.get("/healthz")).status == 200
        page = await (await client.get("/")).text()                # an empty fold still renders
        assert "not ready" in page and "No observations in the log yet." in page
        await daemon.start()
        assert (await client.get("/readyz")).status == 200
    finally:
        close_daemon(daemon)


class _RateLimited:
    """A receiver whose server keeps answering 429 (the Slack fakes elsewhere test the HTTP)."""

    async def send(self, alert: dict, *, key: str):
        from watchdog.notify import SendResult
        return SendResult("failed", detail="429 rate_limited", retry_after=600)


async def test_api_outbox_lists_what_is_owed_and_why_it_waits(daemon_for, aiohttp_client):
    from watchdog.daemon.loop import CycleReport
    from watchdog.model.events import AlertTransition, new_alert
    daemon = await daemon_for(JAN_2)
    daemon.notifiers = {"console": _RateLimited()}
    await daemon.writer.append([new_alert(AlertTransition(
        rule="sofr-over-iorb-desk", rule_hash="0" * 64, state="firing", date="2025-12-31", value="22",
        severity="warning", evaluated_at="2026-01-02T15:00:00.000000Z", reason="22 > 10"))])
    await daemon.evaluate()
    await daemon.deliver(CycleReport())                             # group_wait holds the new alert
    daemon.now.advance(timedelta(seconds=30))
    await daemon.deliver(CycleReport())
    client = await aiohttp_client(build_app(daemon))
    body = await (await client.get("/api/outbox")).json()
    # the history's alerts still firing are owed too (told whatever their start date); the first
    # attempt met the 429, so the receiver got nothing more that round: the rest are due
    owed = {row["rules"][0]: row for row in body["owed"]}
    assert "sofr-over-iorb-desk" in owed and all(row["receiver"] == "console" for row in owed.values())
    tried = [row for row in owed.values() if row["attempts"]]
    assert tried and all((row["state"], row["attempts"]) == ("backoff", 1) for row in tried)
    # Retry-After: 600 s after the attempt (at the first deliver, 15:00, or the second, 15:00:30)
    assert {row["not_before"] for row in tried} <= {"2026-01-02T15:10:00.000000Z", "2026-01-02T15:10:30.000000Z"}
    assert {row["state"] for row in owed.values() if not row["attempts"]} == {"due"}


async def test_a_daemon_started_today_on_a_copy_of_the_example_log_is_not_ready_and_names_its_stale_feeds(
        tmp_path, aiohttp_client):
    """The example log's feeds stopped in 2026 (SOFR 09-03, EFFR 06-04, the DTS 06-23): the first
    evaluation at start fires the three staleness rules — judged when their rules are loaded,
    not at the next deadline — and /readyz names each feed, its source and how late it is."""
    import shutil
    db = tmp_path / "events.db"
    shutil.copy(REPO / "events.db.example", db)
    daemon = build_daemon(Config(), db=str(db), rule_paths=[str(REPO / "rules")], env={}, http=False)
    try:
        await daemon.start()                                        # one evaluation
        client = await aiohttp_client(build_app(daemon))
        resp = await client.get("/readyz")
        body = await resp.json()
        assert resp.status == 503 and body["ready"] is False
        reasons = body["checks"]["sources"]["reasons"]
        assert [r.split(":")[1].strip() for r in reasons] == [
            "effr from nyfed (effr-stale)", "sofr from nyfed (sofr-stale)", "tga from fiscaldata (tga-stale)"]
        sofr = next(r for r in reasons if "sofr-stale" in r)
        assert "nothing since 2026-09-03" in sofr and "last value 3.66 published 2026-09-04T12:00Z" in sofr
        fired = {e.payload["rule"]: e.payload for e in daemon.store.read(after=0, limit=100000)
                 if e.type == "alert-firing" and e.payload["rule"].endswith("-stale")}
        assert sorted(fired) == ["effr-stale", "sofr-stale", "tga-stale"]
        assert fired["sofr-stale"]["inputs"] == {"sofr": {"date": "2026-09-03", "value": "3.66",
                                                          "published_at": "2026-09-04T12:00:00.000000Z"}}
    finally:
        close_daemon(daemon)
