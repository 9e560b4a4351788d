"""Reserve Bank speeches and speaker names.

- ``model.speakers.normalise_speaker`` on every speaker line of the shipped archives and of the
  example log, and on the real page samples;
- the New York Fed's and the Dallas Fed's speech pages, read from the real samples in
  tests/fixtures/reserve_banks/ (abridged excerpts of the live pages: PROVENANCE.md there);
- their index parsers and sources, against a local aiohttp server on 127.0.0.1 serving those
  samples behind **hand-built** index pages (no real index page was found:
  tests/reserve_bank_pages.py says what they follow);
- that what these sources record reaches keyword rules, and that a speech recorded before
  speaker lines were normalised reads as its speaker's name in rules and alert summaries.
"""
from __future__ import annotations

import json
import socket
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import Site, fixture
from helpers import failures
from reserve_bank_pages import (DALLAS_INDEX_PATH, DALLAS_PAGE, NY_INDEX_PATH, NY_PAGE, NY_ROWS,
                                dallas_index, dallas_site, ny_index, ny_site)
from watchdog.app import build_sources, source_named
from watchdog.engine.fold import Engine
from watchdog.model.config import Config, SpeechesConfig, load_config
from watchdog.model.errors import ConfigError
from watchdog.model.events import SPEECH_RECORDED, NewEvent, Speech, content_hash, new_speech
from watchdog.model.speakers import name_tokens, normalise_speaker
from watchdog.rules.keywords import compile_keyword_rule
from watchdog.rules.ruleset import KeywordRule, load_rules
from watchdog.sources.registry import SOURCE_NAMES
from watchdog.sources.speeches import dallas, nyfed
from watchdog.sources.speeches.banks import ReserveBankSource
from watchdog.sources.speeches.history import BOARD
from watchdog.sources.speeches.live import parse_feed, read_speech_page
from watchdog.store import MemoryEventStore

REPO = Path(__file__).resolve().parents[1]
SPEECH_FILES = sorted((REPO / "data" / "history" / "speeches").glob("*_speeches_*.json"))
INFOS = REPO / "data" / "history" / "speeches" / "bog_speech_infos.json"
NY_URL = "https://www.newyorkfed.org/newsevents/speeches/2026/wil260303"
DALLAS_URL = "https://www.dallasfed.org/news/speeches/logan/2026/lkl260210"
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)

# Every official the shipped archives name, as the person's name alone.
OFFICIALS = {
    "Adriana D. Kugler", "Ben S. Bernanke", "Brian F. Madigan", "Christopher J. Waller",
    "Daniel K. Tarullo", "Donald L. Kohn", "Elizabeth A. Duke", "Frederic S. Mishkin",
    "Janet L. Yellen", "Jeremy C. Stein", "Jerome H. Powell", "John C. Williams", "Kevin Warsh",
    "Lael Brainard", "Lisa D. Cook", "Mark W. Olson", "Michael S. Barr", "Michelle W. Bowman",
    "Philip N. Jefferson", "Randal K. Quarles", "Randall S. Kroszner", "Richard H. Clarida",
    "Roger W. Ferguson, Jr.", "Sarah Bloom Raskin", "Stanley Fischer", "Susan S. Bies",
    "Susan Schmidt Bies",
}
TITLE_WORDS = {"chair", "chairman", "vice", "governor", "president", "supervision", "board",
               "for", "and", "of", "the", "director", "officer"}


def archive_lines() -> set[tuple[str, str]]:
    """Every distinct (speaker, position) of the shipped speech files and the Board's index."""
    lines = set()
    for path in [*SPEECH_FILES, INFOS]:
        document = json.loads(path.read_text(encoding="utf-8"))
        records = ([r for year in document.values() for r in year] if isinstance(document, dict)
                   else document)
        lines |= {(r["speaker"], r.get("position", "")) for r in records}
    return lines


# ---- speaker names ----

def test_every_archive_speaker_line_is_the_plain_name_of_a_known_official():
    lines = archive_lines()
    assert len(lines) >= 39
    for line, position in lines:
        speaker = normalise_speaker(line, position)
        assert speaker.name in OFFICIALS, (line, position, speaker)
        assert not {w.lower().strip(",.") for w in speaker.name.split()} & TITLE_WORDS, speaker
        assert speaker.title, (line, position)


@pytest.mark.parametrize("line, position, name, title", [
    ("For Supervision Randal K. Quarles", "Vice Chairman", "Randal K. Quarles",
     "Vice Chairman for Supervision"),
    ("And Chair Of The Financial Stability Board Randal K. Quarles", "Vice Chair For Supervision",
     "Randal K. Quarles", "Vice Chair for Supervision and Chair of the Financial Stability Board"),
    ("For Supervision And Chair Of The Financial Stability Board Randal K. Quarles",
     "Vice Chairman", "Randal K. Quarles",
     "Vice Chairman for Supervision and Chair of the Financial Stability Board"),
    ("Michael S. Barr", "Vice Chair For Supervision", "Michael S. Barr",
     "Vice Chair for Supervision"),
    ("Brian F. Madigan, Director, Division of Monetary Affairs", "Unknown", "Brian F. Madigan",
     "Director, Division of Monetary Affairs"),
    ("Roger W. Ferguson, Jr.", "Vice Chairman", "Roger W. Ferguson, Jr.", "Vice Chairman"),
    ("Vice Chair for Supervision Michael S. Barr", "", "Michael S. Barr",
     "Vice Chair for Supervision"),
    ("John C. Williams, President and Chief Executive Officer", "", "John C. Williams",
     "President and Chief Executive Officer"),
    ("Speech by President Lorie K. Logan", "", "Lorie K. Logan", "President"),
    ("Waller", "", "Waller", ""),                 # an RSS 2.0 item's surname
    ("", "", "", ""),
    ("Governor", "", "Governor", ""),             # only a title: left as it is
])
def test_a_speaker_line_becomes_the_name_and_the_whole_title(line, position, name, title):
    speaker = normalise_speaker(line, position)
    assert (speaker.name, speaker.title) == (name, title)


def test_normalising_twice_changes_nothing():
    for line, position in archive_lines():
        once = normalise_speaker(line, position)
        assert normalise_speaker(once.name, once.title) == once


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200), st.text(max_size=80))
def test_any_line_normalises_without_raising(line, position):
    speaker = normalise_speaker(line, position)
    assert isinstance(speaker.name, str) and isinstance(speaker.title, str)
    assert len(speaker.name) <= len(line)


def test_the_example_log_names_every_speaker_plainly():
    """Also the lines it recorded before speakers were normalised (eleven Quarles speeches)."""
    with sqlite3.connect(f"file:{REPO / 'events.db.example'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT json_extract(payload, '$.speaker'), "
                            "json_extract(payload, '$.position') FROM events "
                            "WHERE type = 'speech-recorded'").fetchall()
    assert rows
    assert {normalise_speaker(line, position).name for line, position in rows} <= OFFICIALS


def test_the_live_samples_name_their_speakers():
    ny = read_speech_page(NY_PAGE, url=NY_URL)
    logan = read_speech_page(DALLAS_PAGE, url=DALLAS_URL)
    assert (ny.speaker, ny.position) == ("John C. Williams",
                                         "President and Chief Executive Officer")
    assert (logan.speaker, logan.position) == ("Lorie Logan", "President")
    items, _ = parse_feed(fixture("fedspeeches/speeches_2016-08_rss1-rdf.xml"),
                          source_url="https://www.federalreserve.gov/feeds/speeches.xml")
    assert {normalise_speaker(i.speaker, i.position).name for i in items} <= OFFICIALS


def test_the_archives_record_the_line_as_written_and_reading_normalises_it(tmp_path):
    # A re-import of the shipped files must give the same facts (earlier example logs stay a
    # prefix, nothing is recorded twice): the archive's line is kept, and read as the person.
    record = {"speaker": "For Supervision Randal K. Quarles", "position": "Vice Chairman",
              "date": "May 4, 2018", "title": "T", "href": "", "content": "Reserves are ample."}
    path = tmp_path / "bog_speeches_2018.json"
    path.write_text(json.dumps([record]))
    [event] = BOARD(path, "speeches/bog_speeches_2018.json")
    assert (event.payload["speaker"], event.payload["position"]) == (
        "For Supervision Randal K. Quarles", "Vice Chairman")
    assert normalise_speaker(event.payload["speaker"], event.payload["position"]).name == \
        "Randal K. Quarles"


def _old_quarles_speech() -> Speech:
    """A speech as logs recorded before speaker lines were normalised."""
    text = "We will keep reserves ample as the balance sheet shrinks."
    return Speech(speaker="For Supervision Randal K. Quarles", institution="Board of Governors",
                  date="2019-05-03", title="Balance sheet", url="https://www.federalreserve.gov/x.htm",
                  text=text, content_hash=content_hash(text), source="fed-speeches-archive",
                  position="Vice Chairman")


@pytest.mark.parametrize("speakers", [["Quarles"], ["Randal Quarles"], ["Randal K. Quarles"]])
def test_a_speaker_filter_matches_a_speech_recorded_with_the_raw_line(speakers):
    matcher = compile_keyword_rule(KeywordRule(id="k", phrases=["ample"], speakers=speakers))
    assert matcher.match(_old_quarles_speech().model_dump()) is not None
    other = compile_keyword_rule(KeywordRule(id="k", phrases=["ample"], speakers=["Supervision"]))
    assert other.match(_old_quarles_speech().model_dump()) is None     # a title is no name


def test_an_alert_summary_names_the_person_of_an_old_speech(tmp_path):
    rules_file = tmp_path / "speech.toml"
    rules_file.write_text('[[keyword_rule]]\nid = "ample"\nphrases = ["ample"]\n'
                          'speakers = ["Quarles"]\nseverity = "info"\n'
                          'summary = "{{ speaker }} said {{ phrase }}"\n')
    store = MemoryEventStore()
    store.append([new_speech(_old_quarles_speech(), "2019-05-04T03:59:59.999999Z")])
    engine = Engine(load_rules([str(rules_file)]))
    [event] = list(store.read(after=0, limit=10))
    [flag] = engine.apply(event, now=event.published_at)
    assert flag.state == "flagged" and flag.summary == "Randal K. Quarles said ample"


# ---- the real speech page samples ----

def test_new_york_page_states_its_date_title_speaker_and_text():
    page = read_speech_page(NY_PAGE, url=NY_URL)
    assert (page.date, page.published) == (date(2026, 3, 3), None)
    assert page.title == "Two Sides of a Coin"
    assert page.text.startswith("Introduction\n\nNow, as president of the New York Fed, I oversee")
    assert page.text.endswith("dynamics in the economy, the labor market, and inflation.")
    for meta in ("March 03, 2026", "Chief Executive Officer", "Speech", "As prepared for delivery",
                 "Credit Unions"):
        assert meta not in page.text


def test_a_meta_author_naming_the_bank_is_no_speaker_and_the_speaker_line_wins():
    bank = b'<meta name="author" content="Federal Reserve Bank of New York">'
    assert read_speech_page(bank + NY_PAGE, url=NY_URL).speaker == "John C. Williams"
    nameless = NY_PAGE.replace(b"John C. Williams</a>, President and Chief Executive Officer",
                               b"</a>")
    assert read_speech_page(bank + nameless, url=NY_URL).speaker == ""


def test_dallas_page_states_its_date_title_speaker_and_text():
    page = read_speech_page(DALLAS_PAGE, url=DALLAS_URL)
    assert (page.date, page.published) == (date(2026, 2, 10), None)
    assert page.title == "Outlook for the economy and monetary policy"
    assert page.text.startswith("Good afternoon, everyone, and I appreciate the opportunity")
    assert "\n\nU.S. economy and monetary policy\n\n" in page.text       # a heading, its own block
    assert page.text.endswith("additional risk on the inflation side of our mandate.")
    for meta in ("Speech by", "February 10, 2026", "delivered these remarks", "Lorie Logan"):
        assert meta not in page.text


# ---- index pages (hand-built: see tests/reserve_bank_pages.py) ----

def test_new_york_index_gives_each_rows_page_date_surname_and_letters():
    html = ny_index(*NY_ROWS, ("Feb 01, 2026", "", "A row with no page"),
                    ("Jan 20, 2026", "https://www.youtube.com/watch?v=x", "Williams: Video"),
                    ("Jan 19, 2026", "/medialibrary/media/newsevents/speeches/2026/x.pdf",
                     "Perli: Slides"),
                    ("Jan 15, 2026", "/newsevents/speeches/2026/wil260303", "Williams: again"))
    parsed = nyfed.parse_index(html.encode(), "https://www.newyorkfed.org" + NY_INDEX_PATH)
    base = "https://www.newyorkfed.org/newsevents/speeches/2026/"
    assert [(e.url, e.date, e.surname, e.code, e.title) for e in parsed.entries] == [
        (base + "wil260303", date(2026, 3, 3), "Williams", "wil", "Two Sides of a Coin"),
        (base + "per260219", date(2026, 2, 19), "Perli", "per", "Money Markets Today"),
        (base + "log260212", date(2026, 2, 12), "Logan", "log", "A Talk Not Configured"),
    ]
    assert parsed.bad_rows == ["row 4 (Feb 01, 2026): no link to a speech page"]


def test_new_york_index_in_another_layout_still_gives_the_speech_addresses():
    html = (b"<html><body><ul><li><a href='/newsevents/speeches/2026/per260219'>Perli: Money "
            b"Markets</a> Feb 19, 2026</li><li><a href='/newsevents/speeches/index'>All</a></li>"
            b"<li><a href='/aboutthefed/orgchart/perli'>Roberto Perli</a></li></ul></body></html>")
    parsed = nyfed.parse_index(html, "https://www.newyorkfed.org/newsevents/speeches/index")
    [entry] = parsed.entries
    assert (entry.url, entry.surname, entry.code, entry.date) == (
        "https://www.newyorkfed.org/newsevents/speeches/2026/per260219", "Perli", "per", None)


def test_dallas_index_gives_the_speakers_own_speeches_dated_by_their_own_paragraph():
    html = dallas_index(("2026", "/news/speeches/logan/2026/lkl260210", "February 10, 2026"),
                        ("2026", "/news/speeches/logan/2026/lkl260115", "Jan. 15, 2026"),
                        ("2025", "https://www.dallasfed.org/news/speeches/logan/2025/lkl251031",
                         "October 31, 2025"),
                        ("2025", "/news/speeches/kaplan/2021/rsk210101", "January 1, 2021"))
    html = html.replace("</div>\n</body>", "<a href='/news/speeches/logan/2024/lkl240515'>May"
                        "</a></div>\n</body>")                 # a link outside any paragraph
    parsed = dallas.parse_index(html.encode(), "https://www.dallasfed.org" + DALLAS_INDEX_PATH)
    base = "https://www.dallasfed.org/news/speeches/logan/"
    assert [(e.url, e.date) for e in parsed.entries] == [
        (base + "2026/lkl260210", date(2026, 2, 10)), (base + "2026/lkl260115", date(2026, 1, 15)),
        (base + "2025/lkl251031", date(2025, 10, 31)), (base + "2024/lkl240515", None)]
    assert {e.surname for e in parsed.entries} == {"logan"} and parsed.bad_rows == []


@pytest.mark.parametrize("parse", [nyfed.parse_index, dallas.parse_index])
@pytest.mark.parametrize("body", [b"", b"\x00\xff<<<", b"<html>" * 1000, NY_PAGE, DALLAS_PAGE,
                                  b"<a href='http://[::1'>x</a><a href='http://h:99999/'>y</a>"])
def test_index_parsers_never_raise(parse, body):
    parsed = parse(body, "https://www.dallasfed.org/news/speeches/logan")
    assert isinstance(parsed.entries, list) and isinstance(parsed.bad_rows, list)


# ---- the sources against a local site ----

def sources_for(site: Site, **options) -> dict[str, ReserveBankSource]:
    table = {"retries": 0, "timeout": "5s", "new_york": True, "dallas": True,
             "new_york_pages": [site.url(NY_INDEX_PATH)],
             "dallas_pages": [site.url(DALLAS_INDEX_PATH)],
             **options}
    config = Config.model_validate({"sources": {"speeches": table}})
    return {s.name: s for s in build_sources(config, {})}


async def poll(source, now: datetime = NOW) -> list[NewEvent]:
    async with aiohttp.ClientSession() as session:
        return await source.poll(session, now)


def speeches(events: list[NewEvent]) -> dict[str, NewEvent]:
    return {e.payload["url"]: e for e in events if e.type == SPEECH_RECORDED}


async def test_new_york_records_the_configured_speakers_speeches_only(aiohttp_server):
    site = await Site({**ny_site(), DALLAS_INDEX_PATH: dallas_index()}).serve(aiohttp_server)
    source = sources_for(site)["speeches-new-york"]
    events = await poll(source)
    assert failures(events) == []
    recorded = speeches(events)
    # Logan's row (log260212) is another speaker's: its page is never fetched.
    assert sorted(site.paths()) == sorted([NY_INDEX_PATH, "/newsevents/speeches/2026/wil260303",
                                           "/newsevents/speeches/2026/per260219"])
    williams = recorded[site.url("/newsevents/speeches/2026/wil260303")]
    p = williams.payload
    assert (p["speaker"], p["position"], p["institution"], p["source"], p["date"], p["title"]) == (
        "John C. Williams", "President and Chief Executive Officer", "New York Fed",
        "speeches-new-york", "2026-03-03", "Two Sides of a Coin")
    assert p["provenance"] == {"index": site.url(NY_INDEX_PATH)}
    assert p["content_hash"] == content_hash(p["text"])
    assert williams.published_at == "2026-03-04T04:59:59.999999Z"     # end of the day in New York
    # The row listed as Perli's serves the Williams sample too (one real page is all there is).
    assert len(recorded) == 2


async def test_another_speakers_page_is_skipped_and_a_page_naming_none_fails(aiohttp_server):
    nameless = NY_PAGE.replace(b'<div class="ts-contact-info">\n  <a href="/aboutthefed/orgchart/'
                               b'williams">John C. Williams</a>, President and Chief Executive '
                               b'Officer\n</div>\n', b"")
    assert nameless != NY_PAGE
    rows = (*NY_ROWS, ("Feb 18, 2026", "/newsevents/speeches/2026/per260218", "Perli: Nameless"))
    site = await Site({**ny_site(rows), "/newsevents/speeches/2026/per260218": nameless}
                      ).serve(aiohttp_server)
    events = await poll(sources_for(site, new_york_speakers=["Roberto Perli"])["speeches-new-york"])
    # Williams' row is not fetched; the row listed as Perli's whose page is Williams' is
    # skipped by its page's own speaker line; the page with no speaker line is a failure.
    assert "/newsevents/speeches/2026/wil260303" not in site.paths()
    assert "/newsevents/speeches/2026/per260219" in site.paths()
    assert speeches(events) == {}
    [failure] = failures(events)
    assert failure["source"] == "speeches-new-york"
    assert failure["url"] == site.url("/newsevents/speeches/2026/per260218")
    assert failure["reason"].startswith("speech page: no speaker line found on the page")


async def test_an_empty_speakers_list_keeps_every_speaker(aiohttp_server):
    site = await Site(ny_site()).serve(aiohttp_server)
    events = await poll(sources_for(site, new_york_speakers=[])["speeches-new-york"])
    assert len(speeches(events)) == 3 and failures(events) == []


async def test_a_row_without_a_page_is_named_and_the_others_recorded(aiohttp_server):
    rows = (*NY_ROWS, ("Feb 01, 2026", "", "Williams: A row with no page"))
    site = await Site(ny_site(rows)).serve(aiohttp_server)
    events = await poll(sources_for(site)["speeches-new-york"])
    assert site.url("/newsevents/speeches/2026/wil260303") in speeches(events)
    [failure] = failures(events)
    assert failure["reason"] == "index page: 1 row(s) not read; 3 speech link(s) read"
    assert failure["bad_rows"] == ["row 4 (Feb 01, 2026): no link to a speech page"]
    assert failure["url"] == site.url(NY_INDEX_PATH) and failure["recorded_rows"] == 3


@pytest.mark.parametrize("body, reason", [
    (None, "index page: bad response body: the page ends before its closing </html> tag"),
    (b"", "index page: bad response body: empty body where an index page was expected"),
])
async def test_an_index_cut_short_records_nothing(aiohttp_server, body, reason):
    site = await Site(ny_site()).serve(aiohttp_server)
    site.misbehave("malformed", path=NY_INDEX_PATH, body=body)
    events = await poll(sources_for(site)["speeches-new-york"])
    assert speeches(events) == {} and site.paths() == [NY_INDEX_PATH]
    [failure] = failures(events)
    assert failure["reason"].startswith(reason)


async def test_an_index_without_speech_links_is_a_failure(aiohttp_server):
    site = await Site({NY_INDEX_PATH: "<html><body><p>Redesigned!</p></body></html>"}
                      ).serve(aiohttp_server)
    events = await poll(sources_for(site)["speeches-new-york"])
    assert [f["reason"] for f in failures(events)] == ["index page: no speech links found"]


async def test_a_later_poll_fetches_only_the_index_and_new_pages(aiohttp_server):
    site = await Site(ny_site(NY_ROWS[1:])).serve(aiohttp_server)
    source = sources_for(site)["speeches-new-york"]
    assert failures(await poll(source)) == []
    site.requests.clear()
    site.routes.update(ny_site())               # Williams' speech appears on the index
    events = await poll(source)
    assert list(speeches(events)) == [site.url("/newsevents/speeches/2026/wil260303")]
    assert site.paths() == [NY_INDEX_PATH, "/newsevents/speeches/2026/wil260303"]


async def test_a_failed_page_is_fetched_again_next_poll(aiohttp_server):
    site = await Site(ny_site()).serve(aiohttp_server)
    site.misbehave("status", path="/newsevents/speeches/2026/wil260303", status=503, body="busy")
    source = sources_for(site)["speeches-new-york"]
    first = await poll(source)
    assert [f["reason"] for f in failures(first)] == ["speech page: HTTP 503: busy"]
    second = await poll(source)
    assert site.url("/newsevents/speeches/2026/wil260303") in speeches(second)


async def test_a_poll_reads_the_newest_max_items_rows(aiohttp_server):
    rows = (("Jan 02, 2026", "/newsevents/speeches/2026/wil260102", "Williams: Old"), *NY_ROWS)
    site = await Site(ny_site(rows)).serve(aiohttp_server)
    events = await poll(sources_for(site, max_items=1)["speeches-new-york"])
    assert list(speeches(events)) == [site.url("/newsevents/speeches/2026/wil260303")]


async def test_backfill_reads_every_row_since_the_date_without_the_poll_cap(aiohttp_server):
    rows = (("Jan 02, 2026", "/newsevents/speeches/2026/wil260102", "Williams: Old"),
            ("Dec 01, 2025", "/newsevents/speeches/2025/wil251201", "Williams: Older"), *NY_ROWS)
    site = await Site(ny_site(rows)).serve(aiohttp_server)
    source = sources_for(site, max_items=1)["speeches-new-york"]
    async with aiohttp.ClientSession() as session:
        events = await source.backfill(session, date(2026, 1, 1), NOW)
    assert failures(events) == []
    # Every row since the 1st is read (three, every page the 2026-03-03 sample); the row dated
    # before it is never fetched.
    assert len(speeches(events)) == 3
    assert "/newsevents/speeches/2025/wil251201" not in site.paths()
    assert "/newsevents/speeches/2026/wil260102" in site.paths()


async def test_dallas_records_logans_speeches(aiohttp_server):
    site = await Site(dallas_site()).serve(aiohttp_server)
    events = await poll(sources_for(site)["speeches-dallas"])
    assert failures(events) == []
    assert sorted(site.paths()) == sorted([DALLAS_INDEX_PATH, "/news/speeches/logan/2026/lkl260210",
                                           "/news/speeches/logan/2025/lkl251031"])
    event = speeches(events)[site.url("/news/speeches/logan/2026/lkl260210")]
    p = event.payload
    assert (p["speaker"], p["position"], p["institution"], p["source"], p["date"], p["title"]) == (
        "Lorie Logan", "President", "Dallas Fed", "speeches-dallas", "2026-02-10",
        "Outlook for the economy and monetary policy")
    assert p["provenance"] == {"index": site.url(DALLAS_INDEX_PATH)}
    assert event.published_at == "2026-02-11T04:59:59.999999Z"   # the New York day, as everywhere


async def test_what_the_banks_record_reaches_keyword_rules_by_speaker(aiohttp_server):
    site = await Site({**ny_site(), **dallas_site()}).serve(aiohttp_server)
    built = sources_for(site)
    recorded = [e.payload for name in ("speeches-new-york", "speeches-dallas")
                for e in speeches(await poll(built[name])).values()]
    rule = KeywordRule(id="mandate", phrases=["maximum employment", "inflation"],
                       speakers=["Williams", "Logan"], institutions=["New York Fed", "Dallas Fed"])
    matcher = compile_keyword_rule(rule)
    flagged = {(p["speaker"], p["institution"]) for p in recorded if matcher.match(p)}
    assert flagged == {("John C. Williams", "New York Fed"), ("Lorie Logan", "Dallas Fed")}
    only_logan = compile_keyword_rule(KeywordRule(id="l", phrases=["inflation"],
                                                  speakers=["Logan"]))
    assert {p["speaker"] for p in recorded if only_logan.match(p)} == {"Lorie Logan"}


async def test_a_refused_connection_is_a_failure_not_an_exception():
    with socket.socket() as s:                  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{s.getsockname()[1]}"
    config = Config.model_validate({"sources": {"speeches": {
        "retries": 0, "new_york": True, "dallas": True,
        "new_york_pages": [base + NY_INDEX_PATH], "dallas_pages": [base + DALLAS_INDEX_PATH]}}})
    for source in build_sources(config, {}):
        if source.name != "speeches":
            [failure] = failures(await poll(source))
            assert failure["source"] == source.name and failure["url"].startswith(base)


# ---- configuration ----

def test_the_bank_sources_are_off_unless_switched_on_and_named_in_the_registry():
    assert {"speeches-new-york", "speeches-dallas"} <= set(SOURCE_NAMES)
    plain = Config.model_validate({"sources": {"speeches": {"feeds": ["https://x/f.xml"]}}})
    assert [s.name for s in build_sources(plain, {})] == ["speeches"]
    assert SpeechesConfig().new_york_speakers == ["Williams", "Perli"]
    assert SpeechesConfig().dallas_pages == ["https://www.dallasfed.org/news/speeches/logan"]


def test_a_bank_without_index_pages_is_refused(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text("[sources.speeches]\nfeeds = []\nnew_york = true\nnew_york_pages = []\n")
    with pytest.raises(ConfigError, match="new_york = true needs new_york_pages"):
        load_config(path)


def test_the_shipped_config_polls_both_banks_and_backfill_finds_them():
    config = load_config(REPO / "deploy" / "watchdog.toml")
    speeches_table = config.sources.speeches
    assert speeches_table.new_york and speeches_table.dallas
    names = [s.name for s in build_sources(config, {})]
    assert {"speeches", "speeches-new-york", "speeches-dallas"} <= set(names)
    for name in ("speeches-new-york", "speeches-dallas"):
        assert callable(source_named(config, name, {}).backfill)
    assert name_tokens(speeches_table.new_york_speakers[0]) == ("williams",)
