"""Bounded answers (the "hostile world"): every source reads an answer with a size cap, on the
wire and decompressed, streaming and stopping as soon as the cap is passed; a speech text and
an event payload have a maximum size. Real local servers serve a gzip bomb (1 MB that inflates to
1 GiB), a 52 MB JSON body (declared and chunked) and a 20 MB speech page; the good answers of
the other requests are still recorded, and `watchdog run --once` stays under 300 MB peak RSS."""
from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import sqlite3
import struct
import sys
import zlib
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from helpers import failures, observations
from test_daemon import recent_business_days
from watchdog.app import build_sources
from watchdog.model.config import Config, parse_config
from watchdog.model.errors import ConfigError
from watchdog.model.events import (MAX_PAYLOAD_BYTES, SPEECH_RECORDED, AlertTransition, NewEvent,
                             PayloadTooLarge, Speech, canonical_json, content_hash, new_alert)
from watchdog.rules.keywords import MAX_SENTENCES, compile_keyword_rule
from watchdog.rules.ruleset import KeywordRule
from watchdog.sources.base import BodyLimit, failure_event, fetch
from watchdog.sources.speeches.live import MAX_TEXT_BYTES, _recorded, parse_feed

NOW = datetime.now(timezone.utc)
MB = 1_000_000
RSS_BOUND_KB = 300 * 1024            # the bound on `run --once`, in ru_maxrss units (KiB)


# ---- hostile payloads ----

def gzip_bomb(mebibytes: int = 1024) -> bytes:
    """A valid gzip member of ``mebibytes`` MiB of zeros, about 1 kB per MiB: built from one
    full-flushed deflate block repeated (identical after each dictionary reset), CRC included."""
    zero = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    middle = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
    end = c.flush(zlib.Z_FINISH)[:-8]           # the final empty block; trailer replaced below
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(zero, crc)
    return first + middle * (mebibytes - 1) + end + struct.pack("<II", crc, (mebibytes << 20) & 0xFFFFFFFF)


BOMB = gzip_bomb()
BIG_JSON = (b'{"observations": [' + b'{"date": "2024-06-03", "value": "5.33"},' * 1_300_000)[:52 * MB - 2] + b"]}"


def speech_html(paragraph: str, count: int) -> bytes:
    return ("<html><body><div id='article'>" + f"<p>{paragraph}</p>" * count
            + "</div></body></html>").encode()


GOOD_PAGE = speech_html("Reserves remain ample and money markets are functioning well today.", 10)
HUGE_PAGE = speech_html("x" * 1000, 21_000)                      # about 21 MB: over the body cap
LONG_TEXT_PAGE = speech_html("Reserves are ample. " * 50, 3000)     # 3 MB page, 3 MB of text
SPEECH = "/newsevents/speech/"


def rss(base: str, *pages: str) -> bytes:
    items = "".join(f"""<item><title>Powell, Speech {i}</title>
<link><![CDATA[{base}{SPEECH}{page}]]></link><guid><![CDATA[{base}{SPEECH}{page}]]></guid>
<description><![CDATA[At a conference]]></description>
<pubDate>{format_datetime(datetime(2026, 6, 1 + i, 14, tzinfo=timezone.utc), usegmt=True)}</pubDate>
</item>""" for i, page in enumerate(pages))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>FRB</title>'
            f"<link>{base}</link><description>Speeches</description>{items}</channel></rss>").encode()


def fred_rows(series_id: str) -> bytes:
    day = recent_business_days(1)[0].isoformat()
    return json.dumps({"observations": [{"realtime_start": day, "realtime_end": day,
                                         "date": day, "value": "3.90"}],
                       "count": 1}).encode()


class Hostile:
    """NY Fed answers SOFR with a gzip bomb; FRED answers IORB well and EFFR with 52 MB (with
    Content-Length, or chunked without it); the speeches feed lists a good page, a 21 MB page and
    a page whose text is 3 MB."""

    def __init__(self, chunked: bool = False):
        self.chunked = chunked
        self.base = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/rates/secured/sofr/search.json", self.bomb)
        app.router.add_get("/fred/series/observations", self.fred)
        app.router.add_get("/feeds/speeches.xml", self.feed)
        app.router.add_get(SPEECH + "{page}", self.page)
        return app

    async def bomb(self, request: web.Request) -> web.Response:
        return web.Response(body=BOMB, headers={"Content-Encoding": "gzip",
                                                "Content-Type": "application/json"})

    async def fred(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("series_id") != "EFFR":
            return web.Response(body=fred_rows(request.query["series_id"]), content_type="application/json")
        if not self.chunked:
            return web.Response(body=BIG_JSON, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for start in range(0, len(BIG_JSON), MB):
                await response.write(BIG_JSON[start:start + MB])
        except (ConnectionError, RuntimeError):
            pass                                 # the client stopped reading: as it should
        return response

    async def feed(self, request: web.Request) -> web.Response:
        return web.Response(body=rss(self.base, "good.htm", "huge.htm", "long.htm"),
                            content_type="application/rss+xml")

    async def page(self, request: web.Request) -> web.Response:
        body = {"good.htm": GOOD_PAGE, "huge.htm": HUGE_PAGE, "long.htm": LONG_TEXT_PAGE}.get(
            request.match_info["page"])
        return web.Response(body=body, content_type="text/html") if body else web.Response(status=404)


async def serve(aiohttp_server, chunked: bool = False) -> str:
    hostile = Hostile(chunked)
    server = await aiohttp_server(hostile.app())
    hostile.base = str(server.make_url("")).rstrip("/")
    return hostile.base


def config_text(base: str, db: Path | None = None, rules: Path | None = None, nyfed_cap: str = "") -> str:
    return f'''
{f'[store]{chr(10)}path = "{db}"' if db else ""}
{f'[rules]{chr(10)}paths = ["{rules}"]' if rules else ""}
[sources.nyfed]
base_url = "{base}"
rates = ["sofr"]
retries = 0
timeout = "20s"
{nyfed_cap}
[sources.fred]
base_url = "{base}"
csv_base_url = "{base}"
api_key_env = "FRED_TEST_KEY"
series = {{ iorb = "IORB", effr = "EFFR" }}
retries = 0
timeout = "20s"
[sources.speeches]
feeds = ["{base}/feeds/speeches.xml"]
retries = 0
timeout = "20s"
[receivers.screen]
type = "console"
'''


async def poll_all(base: str, **kw) -> dict[str, list[NewEvent]]:
    sources = build_sources(parse_config(config_text(base, **kw)), {"FRED_TEST_KEY": "k" * 32})
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(s.poll(session, NOW) for s in sources))
    return {s.name: events for s, events in zip(sources, results)}



# ---- each source, through the composition root (app.build_sources) ----

async def test_a_gzip_bomb_is_refused_at_the_cap_naming_it_and_its_setting(aiohttp_server):
    polled = await poll_all(await serve(aiohttp_server))
    [failure] = failures(polled["nyfed"])
    assert failure["reason"] == ("sofr: answer larger than the 20,000,000-byte cap after gzip "
                                 'decompression ([sources.nyfed] max_body = "20MB"); not read further')
    assert "/api/rates/secured/sofr/search.json" in failure["url"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_52mb_json_body_is_refused_and_the_other_series_still_recorded(aiohttp_server, chunked):
    polled = await poll_all(await serve(aiohttp_server, chunked=chunked))
    [failure] = failures(polled["fred"])
    how = "" if chunked else ": Content-Length says 52,000,000 bytes"
    assert failure["reason"] == (f"effr (EFFR): answer larger than the 20,000,000-byte cap{how} "
                                 '([sources.fred] max_body = "20MB"); not read further')
    assert [(e.payload["series"], e.payload["value"]) for e in observations(polled["fred"])] == [("iorb", "3.9")]


async def test_a_20mb_speech_page_and_a_3mb_speech_text_are_refused_the_good_page_recorded(aiohttp_server):
    base = await serve(aiohttp_server)
    events = (await poll_all(base))["speeches"]
    recorded = [e.payload["url"] for e in events if e.type == SPEECH_RECORDED]
    assert recorded == [f"{base}{SPEECH}good.htm"]
    reasons = {f["url"].rsplit("/", 1)[1]: f["reason"] for f in failures(events)}
    assert reasons["huge.htm"] == ("speech page: answer larger than the 20,000,000-byte cap: "
                                   f"Content-Length says {len(HUGE_PAGE):,} bytes ([sources.speeches] "
                                   'max_body = "20MB"); not read further')
    assert reasons["long.htm"].startswith("speech page: 3,") and (
        f"bytes of text, more than the {MAX_TEXT_BYTES:,} a speech may have" in reasons["long.htm"])
    assert "not cut" in reasons["long.htm"]


def test_feed_items_with_a_link_or_title_no_speech_has_are_refused_the_others_read():
    base = "https://www.federalreserve.gov"
    body = rss(base, "good.htm", "x" * 5000 + ".htm").replace(b"Speech 0", b"Speech " + b"t" * 5000)
    items, problems = parse_feed(rss(base, "good.htm", "y" * 3000 + ".htm"), source_url=base + "/feed")
    assert [i.url for i in items] == [f"{base}{SPEECH}good.htm"]
    [problem] = problems
    assert problem.startswith(f"item 2 ({base}{SPEECH}yyy") and problem.endswith(
        "): link of 3,053 characters (more than 2,000): no speech page's address")
    items, problems = parse_feed(body, source_url=base + "/feed")
    assert items == [] and problems[0].startswith("item 1 (") and problems[0].endswith(
        "title of 5,015 characters (more than 1,000): no speech title")


async def test_max_body_is_set_per_source_and_named_in_the_refusal(aiohttp_server):
    base = await serve(aiohttp_server)
    polled = await poll_all(base, nyfed_cap='max_body = "1536KiB"')    # the bomb is 1 MB gzipped
    [failure] = failures(polled["nyfed"])
    assert failure["reason"] == ('sofr: answer larger than the 1,572,864-byte cap after gzip '
                                 'decompression ([sources.nyfed] max_body = "1536KiB"); not read further')
    assert Config().model_dump()["sources"]["nyfed"] is None
    for table in ("nyfed", "fred", "fiscaldata", "speeches"):
        loaded = parse_config(f'[sources.{table}]\nmax_body = "5MB"\n')
        assert getattr(loaded.sources, table).max_body == "5MB"


@pytest.mark.parametrize("value, message", [
    ('"20 parsecs"', "bad size '20 parsecs': use a whole number of bytes or one with a unit"),
    ('"2GB"', "must be between 1kB and 1GB"),
    ('"10"', "must be between 1kB and 1GB"),
    ("20000000", "Input should be a valid string"),
])
def test_a_bad_max_body_is_refused_at_its_line(value, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[sources.nyfed]\nrates = ["sofr"]\nmax_body = {value}\n', "w.toml")
    assert str(caught.value).startswith(f"w.toml:3: sources.nyfed.max_body: {message}"), str(caught.value)


async def test_an_error_answer_is_read_only_as_far_as_its_message(aiohttp_server):
    async def endless_500(request):
        return web.Response(status=500, body=b"Internal Server Error " + b"x" * (30 * MB))
    app = web.Application()
    app.router.add_get("/", endless_500)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        got = await fetch(session, str(server.make_url("/")), limit=BodyLimit.of("nyfed", "20MB"))
    assert got.status == 500 and got.error.startswith("HTTP 500: Internal Server Error xxx")
    assert len(got.body) <= 64 * 1024


async def test_a_compressed_answer_is_capped_on_the_wire_too_and_one_under_the_cap_is_read_whole(
        aiohttp_server):
    noise = gzip.compress(os.urandom(3 * MB), compresslevel=1)       # inflates to about itself
    small = b'{"ok": true, "pad": "' + b"0" * MB + b'"}'

    async def chunked_noise(request):
        response = web.StreamResponse(headers={"Content-Encoding": "gzip"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for start in range(0, len(noise), 64 * 1024):
                await response.write(noise[start:start + 64 * 1024])
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def gzipped_small(request):
        return web.Response(body=gzip.compress(small), headers={"Content-Encoding": "gzip"})
    app = web.Application()
    app.router.add_get("/noise", chunked_noise)
    app.router.add_get("/small", gzipped_small)
    server = await aiohttp_server(app)
    limit = BodyLimit.of("fred", "2MB")
    async with aiohttp.ClientSession() as session:
        noisy = await fetch(session, str(server.make_url("/noise")), limit=limit)
        whole = await fetch(session, str(server.make_url("/small")), limit=limit)
    assert noisy.error in (
        f'answer larger than the 2,000,000-byte cap{how} ([sources.fred] max_body = "2MB"); not read further'
        for how in (" on the wire (compressed)", " after gzip decompression"))
    assert noisy.body == b"" and noisy.attempts == 1                 # not retried
    assert whole.error is None and whole.body == small


# ---- the payload limit ----

def test_an_event_payload_over_1mb_is_refused_before_it_is_hashed():
    with pytest.raises(PayloadTooLarge) as caught:
        NewEvent(type="source-failed", key="fail/x/1", payload={"reason": "x" * MAX_PAYLOAD_BYTES})
    assert str(caught.value) == ("source-failed payload of 1,000,013 bytes is over the 1,000,000-byte "
                                 "limit on one event; not recorded (fail/x/1)")
    # measured as canonical JSON: a control character is six bytes there
    with pytest.raises(PayloadTooLarge):
        NewEvent(type="source-failed", key="fail/x/2", payload={"reason": "\x01" * 200_000})
    at_limit = {"reason": "x" * (MAX_PAYLOAD_BYTES - len('{"reason":""}'))}
    assert len(canonical_json(at_limit).encode()) == MAX_PAYLOAD_BYTES
    NewEvent(type="source-failed", key="fail/x/3", payload=at_limit)


def test_a_failure_quoting_a_hostile_answer_stays_under_the_limit():
    rows = [f"row {i}: " + "\x01" * 5000 for i in range(100_000)]
    event = failure_event("fred", "bad rows: " + "\x02" * 50_000, NOW, url="http://x/" + "y" * 10_000,
                          bad_rows=rows, recorded_rows=3)
    payload = event.payload
    assert len(canonical_json(payload).encode()) < MAX_PAYLOAD_BYTES
    assert len(payload["bad_rows"]) == 101 and payload["bad_rows"][-1] == "… and 99,900 more bad rows (not listed)"
    assert payload["bad_rows"][0].endswith("… [cut: 5,007 characters]")
    assert payload["reason"].endswith("… [cut: 50,010 characters]") and payload["recorded_rows"] == 3


def test_a_speech_over_the_payload_limit_is_a_source_failed_not_a_crash():
    text = "\x01" * 200_000 + "Reserves remain ample."       # under the text cap, 1.2 MB as JSON
    speech = Speech(speaker="Powell", institution="Board", date="2026-06-01", title="Speech",
                    url="https://www.federalreserve.gov/newsevents/speech/p.htm", text=text,
                    content_hash=content_hash(text), source="fed-speeches")
    [event] = _recorded(speech, "2026-06-01T14:00:00.000000Z", NOW)
    assert event.type == "source-failed"
    assert event.payload["reason"].startswith("speech page: speech-recorded payload of 1,20")
    assert event.payload["url"] == speech.url


def test_a_keyword_flag_on_a_hostile_text_stays_under_the_payload_limit():
    # a hit every few words and no full stop: one 400-character window per hit, unless capped
    text = " ".join(f"scarce {i}" for i in range(60_000))[:MAX_TEXT_BYTES]
    found = compile_keyword_rule(KeywordRule(id="k", phrases=["scarce"])).match(
        {"speaker": "Powell", "institution": "Board", "text": text})
    assert len(found.hits) > 35_000 and len(found.sentences) == MAX_SENTENCES
    flag = AlertTransition(rule="k", rule_hash="0" * 64, state="flagged", date="2026-06-01",
                           value=str(len(found.hits)), severity="info", evaluated_at="2026-06-01T14:00:00.000000Z",
                           reason=f"{len(found.hits)} hits: scarce", sentences=list(found.sentences))
    assert len(canonical_json(new_alert(flag).payload).encode()) < 100_000


# ---- the daemon: `watchdog run --once` against all of it, peak RSS measured ----

# Peak RSS of the `watchdog run --once` process itself: VmHWM, the high-water mark of its own
# memory. getrusage(RUSAGE_SELF).ru_maxrss is printed too but not trusted: on Linux it keeps the
# high-water mark of the process that spawned it (vfork + exec), here pytest's.
MEASURE = """
import resource, sys
def hwm_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
from watchdog.cli import cli
before = hwm_kb()
code = 0
try:
    cli.main(sys.argv[1:], prog_name="watchdog")
except SystemExit as exit:
    code = exit.code or 0
after = hwm_kb()
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"PEAK_RSS_KB before={before} after={after} ru_maxrss={maxrss}", file=sys.stderr)
sys.exit(code)
"""


async def test_run_once_against_every_hostile_answer_records_failures_and_good_rows_in_flat_memory(
        aiohttp_server, tmp_path):
    base = await serve(aiohttp_server)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "iorb.toml").write_text('[[rule]]\nid = "iorb-high"\nexpr = "iorb"\nabove = 10\n')
    db = tmp_path / "events.db"
    config = tmp_path / "watchdog.toml"
    config.write_text(config_text(base, db=db, rules=rules))
    env = {**os.environ, "FRED_TEST_KEY": "k" * 32, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", MEASURE, "run", "--config", str(config), "--once", "--no-http",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    err_text = err.decode()
    assert proc.returncode == 0, err_text[-3000:]
    before, after = map(int, re.search(r"PEAK_RSS_KB before=(\d+) after=(\d+)", err_text).groups())
    print(f"run --once peak RSS: {before / 1024:.0f} MB after imports, {after / 1024:.0f} MB at exit")
    assert after < RSS_BOUND_KB, f"peak RSS {after / 1024:.0f} MB"
    assert after - before < 150 * 1024, f"grew {(after - before) / 1024:.0f} MB while polling"

    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT type, payload FROM events").fetchall()
        largest = conn.execute("SELECT max(length(CAST(payload AS BLOB))) FROM events").fetchone()[0]
    finally:
        conn.close()
    assert largest < MAX_PAYLOAD_BYTES
    failed = [json.loads(p) for t, p in rows if t == "source-failed"]
    reasons = " | ".join(f["reason"] for f in failed)
    assert '[sources.nyfed] max_body = "20MB"' in reasons and "after gzip decompression" in reasons
    assert '[sources.fred] max_body = "20MB"' in reasons and "Content-Length says 52,000,000" in reasons
    assert '[sources.speeches] max_body = "20MB"' in reasons
    assert f"more than the {MAX_TEXT_BYTES:,} a speech may have" in reasons
    facts = [json.loads(p) for t, p in rows if t in ("observation-recorded", "speech-recorded")]
    assert [(f.get("series"), f.get("value")) for f in facts if "series" in f] == [("iorb", "3.9")]
    assert [f["url"] for f in facts if "text" in f] == [f"{base}{SPEECH}good.htm"]
    from watchdog.tuning.replay import audit
    from watchdog.store import SqliteEventStore
    store = SqliteEventStore(db, readonly=True)
    try:
        assert audit(store).differences == []            # the daemon's decisions re-derive
    finally:
        store.close()
